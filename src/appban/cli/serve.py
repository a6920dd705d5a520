"""appban serve: the HTTP API and the dashboard."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from appban.cli.apps import app
from appban.cli.common import RulebookOption, err, fail
from appban.service.settings import ServiceSettings


@app.command("serve")
def serve(
    db: Annotated[str | None, typer.Option(help="Audit store: sqlite:///file.db (default) or postgresql://...")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    open_reads: Annotated[bool, typer.Option(help="Let callers without a token read and decide.")] = False,
    max_upload_mb: Annotated[int, typer.Option(min=1, help="Largest file accepted for screening.")] = 1024,
    upload_dir: Annotated[Path | None, typer.Option(help="Where uploads wait for their run.")] = None,
    demo: Annotated[bool, typer.Option(help="Screen the bundled examples when the store has no runs yet.")] = False,
    access_log: Annotated[
        bool, typer.Option(help="Log every request to stderr (the audit store records decisions either way).")
    ] = True,
    rulebook: RulebookOption = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) and the dashboard (at /)."""
    import uvicorn

    from appban.service.protocol import uvicorn_http_options

    settings = ServiceSettings.from_env().model_copy(
        update={
            "db_url": db or os.environ.get("APPBAN_DB"),
            "open_reads": open_reads,
            "max_upload_bytes": max_upload_mb << 20,
            "upload_dir": upload_dir,
            "rulebook": rulebook,
            "demo": demo,
        }
    )
    # Worker processes build their own app from the environment: hand the settings over that way.
    os.environ.update(settings.to_env())
    try:
        from appban.store import AuditStore

        AuditStore(settings.db_url).close()  # create or migrate the store once, before the workers start
    except Exception as exc:  # any failure to open the store is the user's to fix
        fail(f"cannot open the audit store: {exc}")
    where = f"http://{host}:{port}/"
    err.print(f"appban: serving the API and dashboard at {where} (reads {'open' if open_reads else 'need a token'})")
    config = uvicorn.Config(
        "appban.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        proxy_headers=False,
        **uvicorn_http_options(),  # caps on the request line and headers, enforced as they arrive
    )
    if workers == 1:
        try:
            uvicorn.Server(config).run()
        except SystemExit as exc:
            # uvicorn exits 3 when it cannot start (the port taken, say): the CLI's code for that is 2.
            if exc.code:
                fail(f"cannot serve on {host}:{port}; see the log above")
            raise
        return
    from appban.service.workers import run_workers

    try:
        status = run_workers(config, workers)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc}")
    if status:
        fail("a worker could not start; see its log above")

"""appban serve: the HTTP API and the dashboard.

`--demo` is for trying the service on one's own machine: a fresh audit store in a temporary folder (unless
`--db` or APPBAN_DB names one), the bundled examples screened, reads open, and a write token made and printed at
start, so that an upload works at once. It serves on a loopback address only, since whoever holds the printed
token may upload; when the server stops, the token is revoked and a temporary store removed.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from appban.cli.apps import app
from appban.cli.common import RulebookOption, err, fail


@app.command("serve")
def serve(
    db: Annotated[
        str | None, typer.Option(metavar="URL", help="Audit store: sqlite:///file.db (default) or postgresql://...")
    ] = None,
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(metavar="N", min=1, help="Worker processes.")] = 1,
    open_reads: Annotated[bool, typer.Option(help="Let callers without a token read and decide.")] = False,
    max_upload_mb: Annotated[
        int, typer.Option(metavar="MB", min=1, help="Largest file accepted for screening.")
    ] = 1024,
    upload_dir: Annotated[Path | None, typer.Option(metavar="DIR", help="Where uploads wait for their run.")] = None,
    demo: Annotated[
        bool,
        typer.Option(
            help="Try it on this machine: a fresh temporary store (unless --db), the bundled examples screened,"
            " reads open, and a write token printed at start. Loopback addresses only."
        ),
    ] = False,
    access_log: Annotated[
        bool, typer.Option(help="Log every request to stderr (the audit store records decisions either way).")
    ] = True,
    rulebook: RulebookOption = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) and the dashboard (at /)."""
    from appban.service.settings import ServiceSettings

    if demo and not _loopback(host):
        fail(f"--demo serves on a loopback address only (it prints a write token), not {host[:100]!r}: drop --host")
    db_url = db or os.environ.get("APPBAN_DB") or None
    demo_folder = Path(tempfile.mkdtemp(prefix="appban-demo-")) if demo and db_url is None else None
    if demo_folder is not None:
        db_url = f"sqlite:///{demo_folder / 'audit.db'}"
    settings = ServiceSettings.from_env().model_copy(
        update={
            "db_url": db_url,
            "open_reads": open_reads or demo,
            "max_upload_bytes": max_upload_mb << 20,
            "upload_dir": upload_dir,
            "rulebook": rulebook,
            "demo": demo,
        }
    )
    # Worker processes build their own app from the environment: hand the settings over that way.
    os.environ.update(settings.to_env())
    demo_token_id = None
    stopped = None
    # uvicorn ends by raising again the signal that stopped it; caught here, it lets a demo clean up first.
    previous = signal.signal(signal.SIGTERM, _stop) if demo else None
    try:
        demo_token_id = _open_store(settings.db_url, host, port, demo, demo_folder)
        _run(host, port, workers, access_log, settings.open_reads)
    except _Stopped as exc:
        stopped = exc.signum
    finally:
        if demo_token_id is not None and demo_folder is None:
            _revoke(settings.db_url, demo_token_id)
        if demo_folder is not None:
            shutil.rmtree(demo_folder, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if stopped is not None:
        signal.raise_signal(stopped)  # ends as the signal would have ended it


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    raise _Stopped(signum)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _open_store(db_url: str | None, host: str, port: int, demo: bool, demo_folder: Path | None) -> str | None:
    """Create or migrate the store once, before the workers start; in demo mode, make a write token and say
    so. Returns the demo token's id."""
    try:
        from appban.store import AuditStore

        with AuditStore(db_url) as store:
            made = store.create_token(name="demo", scope="write") if demo else None
    except Exception as exc:  # any failure to open the store is the user's to fix
        fail(f"cannot open the audit store: {exc}")
    if made is None:
        return None
    where = f"http://{host}:{port}/"
    token_id, secret = made
    kept = "a temporary store, removed when the server stops" if demo_folder else "revoked when the server stops"
    # Plain lines, never wrapped, so that the token can be copied (and read by scripts) whole.
    err.print(f"appban: demo: reads are open; uploads take this write token ({kept}):", soft_wrap=True)
    err.print(f"appban: demo token: {secret}", soft_wrap=True, highlight=False)
    err.print(f"appban: demo: the dashboard with the token: {where}#token={secret}", soft_wrap=True, highlight=False)
    if demo_folder is not None:
        err.print(f"appban: demo store: {demo_folder}", soft_wrap=True, highlight=False)
    return token_id


def _revoke(db_url: str | None, token_id: str) -> None:
    try:
        from appban.store import AuditStore

        with AuditStore(db_url) as store:
            store.revoke_token(token_id)
    except Exception as exc:  # the server has stopped; say so and leave the token to `appban tokens revoke`
        err.print(f"appban: could not revoke the demo token {token_id}: {exc}", soft_wrap=True)


def _run(host: str, port: int, workers: int, access_log: bool, open_reads: bool) -> None:
    import uvicorn

    from appban.service.protocol import uvicorn_http_options

    reads = "open" if open_reads else "need a token"
    err.print(f"appban: serving the API and dashboard at http://{host}:{port}/ (reads {reads})")
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
        # SIGHUP reloads the knowledge once the app has started (appban.service.reload); before that it has
        # nothing to reload, since the app loads the knowledge as it starts, and must not end the server.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
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

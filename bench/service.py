"""Benchmark: the HTTP service under load on loopback, against named baselines measured in the same run.

Every server runs under uvicorn, two worker processes each, connections dealt out to them in turn by
appban's supervisor (appban/service/workers.py):
- "appban": `appban serve` as shipped (SQLite audit store, every decision hashed into the audit chain and
  synced to disk, synchronous=FULL, before it is answered);
- "bare route": a bare FastAPI app whose route takes the same request body and returns a constant (the
  framework's own ceiling on this machine);
- "appban, synchronous=NORMAL": the same server with APPBAN_SQLITE_SYNCHRONOUS=NORMAL (commits not synced
  one by one: what a power cut may lose), so the price of FULL shows;
- with `--compare-src DIR`, "appban at DIR": the appban of another source tree (e.g. a `git worktree` of an
  earlier commit), served the same way, so the price of a change shows.
The servers take turns within each pass, so they see the same machine. A bounded load generator
(bench/loadgen.py: prepared requests over keep-alive connections, stopped by a request count or a time
limit, whichever comes first) measures requests/s and the p50/p99 latency of:
- POST /v1/decide, one question per request, as ratios against each baseline;
- POST /v1/decide/batch with Arrow IPC batches, in decisions/s.

    .venv/bin/python bench/service.py [--requests N] [--seconds S] [--connections C ...]
                                      [--compare-src DIR] [--markdown]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import LoadResult, load, prepared
from report import print_report

BARE_APP = """
import sys

import uvicorn
from fastapi import FastAPI, Request

from appban.service.workers import run_workers

app = FastAPI()


@app.post("/v1/decide")
async def constant(request: Request) -> dict[str, str]:
    await request.body()
    return {"verdict": "enjoined"}


if __name__ == "__main__":
    # Served as `appban serve --workers 2` serves: two processes, each handed every other connection.
    config = uvicorn.Config("bare_app:app", port=int(sys.argv[1]), log_level="warning")
    sys.exit(run_workers(config, 2))
"""


ARROW = "application/vnd.apache.arrow.stream"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_up(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not start")


def questions(count: int, seed: int = 3) -> list[bytes]:
    """`count` different /v1/decide bodies: apps, transaction types, places and instants from 2020 to 2025
    (different questions, so that nothing the server might remember answers them for it)."""
    rng = np.random.default_rng(seed)
    apps = ["tiktok", "wechat"]
    categories = ["app_store_distribution", "app_store_update", "internet_hosting", "cdn", "transit_peering",
                  "constituent_code_use", "funds_transfer", "payment_processing"]  # fmt: skip
    start = 1_577_836_800  # 2020-01-01
    bodies = []
    for _ in range(count):
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + int(rng.integers(0, 6 * 365 * 86400))))
        question = {"app": str(rng.choice(apps)), "transaction": str(rng.choice(categories)),
                    "where": "US" if rng.random() < 0.9 else "IN", "at": at}  # fmt: skip
        bodies.append(json.dumps(question).encode())
    return bodies


def arrow_batch(rows: int) -> bytes:
    rng = np.random.default_rng(5)
    apps = np.array(["tiktok", "wechat", "wechat_pay", "capcut", "douyin"])
    categories = np.array(["app_store_distribution", "internet_hosting", "payment_processing", "cdn"])
    seconds = 1_577_836_800 + rng.integers(0, 200_000_000, rows)
    table = pa.table(
        {
            "app": pa.array(apps[rng.integers(0, len(apps), rows)]),
            "transaction": pa.array(categories[rng.integers(0, len(categories), rows)]),
            "where": pa.array(np.where(rng.random(rows) < 0.9, "US", "IN")),
            "at": pa.array(seconds * 1_000_000, pa.timestamp("us", tz="UTC")),
        }
    )
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def serve_appban(folder: Path, name: str, env: dict[str, str]) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    db = f"sqlite:///{folder / (name + '.db')}"
    command = [sys.executable, "-m", "appban", "serve", "--db", db, "--port", str(port), "--workers", "2",
               "--open-reads", "--no-access-log"]  # fmt: skip
    return port, subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--connections",
        type=int,
        nargs="+",
        default=[4, 8],
        help="concurrent connections; each level is measured in turn",
    )
    parser.add_argument("--batch-rows", type=int, default=200_000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--compare-src", type=Path, help="another source tree whose appban is served as a baseline")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    ours, bare, normal = "appban", "bare route", "appban, synchronous=NORMAL"
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "bare_app.py").write_text(BARE_APP)
        # A PYTHONPATH given to the benchmark still applies to "appban" (to serve a tree other than the installed one).
        env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")]))}
        env.pop("APPBAN_SQLITE_SYNCHRONOUS", None)
        try:
            servers[ours] = serve_appban(base, "ours", env)
            servers[normal] = serve_appban(base, "normal", env | {"APPBAN_SQLITE_SYNCHRONOUS": "NORMAL"})
            if args.compare_src is not None:
                source = args.compare_src.resolve() / "src"
                servers[f"appban at {args.compare_src}"] = serve_appban(
                    base, "compared", env | {"PYTHONPATH": f"{folder}{os.pathsep}{source}"}
                )
            port = free_port()
            servers[bare] = port, subprocess.Popen([sys.executable, str(base / "bare_app.py"), str(port)], env=env,
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            for port, process in servers.values():
                wait_up(port, process)
            asked = [prepared("/v1/decide", body, "application/json") for body in questions(2000)]
            single: dict[int, dict[str, LoadResult]] = {}
            for connections in args.connections:
                for port, _ in servers.values():
                    load(port, asked, 1000, 10, connections)  # warm-up
                passes: dict[str, list[LoadResult]] = {name: [] for name in servers}
                for _ in range(2):  # alternate them, so that all see the same machine
                    for name, (port, _) in servers.items():
                        passes[name].append(load(port, asked, args.requests // 2, args.seconds / 2, connections))
                single[connections] = {name: max(runs, key=lambda r: r.rate) for name, runs in passes.items()}
            batch_request = [prepared("/v1/decide/batch", arrow_batch(args.batch_rows), ARROW)]
            load(servers[ours][0], batch_request, 2, 60, 2)
            batch = load(servers[ours][0], batch_request, args.batches, 300, 2)
        finally:
            for _, process in servers.values():
                process.terminate()
                process.wait(timeout=30)
    decisions_per_second = batch.rate * args.batch_rows
    report: list[tuple[str, str]] = []
    for connections, best in single.items():
        report += [(f"{connections} connections: {name}", result.line()) for name, result in best.items()]
        report += [
            (f"{connections} connections: {ours} / {name}", f"{best[ours].rate / result.rate:.0%}")
            for name, result in best.items()
            if name != ours
        ]
    report += [
        (
            "POST /v1/decide/batch (Arrow IPC)",
            f"{decisions_per_second:,.0f} decisions/s ({args.batch_rows:,} rows per "
            f"request, p50 {batch.p50:.0f} ms, {batch.requests} requests, {batch.failures} failed)",
        ),
        (
            "load",
            f"bench/loadgen.py, keep-alive connections as above, at most {args.requests // 2:,} requests or "
            f"{args.seconds / 2:.0f} s per pass, best of 2 passes, the servers taking turns; 2,000 different "
            "questions in turn",
        ),
        (
            "servers",
            "two uvicorn workers each (httptools, uvloop), connections dealt out to them in turn, TCP_NODELAY; "
            "no access log; appban records every decision in SQLite (WAL), each in its own file",
        ),
        (
            "python / machine",
            f"{platform.python_version()} / {os.cpu_count()} CPUs, load generator on the same machine",
        ),
    ]
    print_report(report, args.markdown)


if __name__ == "__main__":
    main()

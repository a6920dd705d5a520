"""Benchmark: the HTTP service under load on loopback, against a bare FastAPI route in the same run.

Both servers run under uvicorn, two worker processes each, connections dealt out to them in turn by
appban's supervisor (appban/service/workers.py): `appban serve` (SQLite
audit store, every decision recorded) and a bare FastAPI app whose route takes the same request body
and returns a constant (the framework's own ceiling on this machine). A bounded load generator
(bench/loadgen.py: prepared requests over keep-alive connections, stopped by a request count or a
time limit, whichever comes first) measures requests/s and the p50/p99 latency of:
- POST /v1/decide, one question per request, against the bare route;
- POST /v1/decide/batch with Arrow IPC batches, in decisions/s.

    .venv/bin/python bench/service.py [--requests N] [--seconds S] [--connections C ...] [--markdown]
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
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = f"sqlite:///{Path(folder) / 'audit.db'}"
        (Path(folder) / "bare_app.py").write_text(BARE_APP)
        appban_port, bare_port = free_port(), free_port()
        env = os.environ | {"PYTHONPATH": folder}
        appban = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appban",
                "serve",
                "--db",
                db,
                "--port",
                str(appban_port),
                "--workers",
                "2",
                "--open-reads",
                "--no-access-log",  # as the bare server, which logs only warnings
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bare = subprocess.Popen(
            [sys.executable, str(Path(folder) / "bare_app.py"), str(bare_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_up(appban_port, appban)
            wait_up(bare_port, bare)
            asked = [prepared("/v1/decide", body, "application/json") for body in questions(2000)]
            single: dict[int, tuple[LoadResult, LoadResult]] = {}
            for connections in args.connections:
                load(appban_port, asked, 1000, 10, connections)  # warm-up
                load(bare_port, asked, 1000, 10, connections)
                passes: dict[int, list[LoadResult]] = {bare_port: [], appban_port: []}
                for _ in range(2):  # alternate the two, so that both see the same machine
                    for port in (bare_port, appban_port):
                        passes[port].append(load(port, asked, args.requests // 2, args.seconds / 2, connections))
                best = {port: max(runs, key=lambda r: r.rate) for port, runs in passes.items()}
                single[connections] = (best[bare_port], best[appban_port])
            batch_request = [prepared("/v1/decide/batch", arrow_batch(args.batch_rows), ARROW)]
            load(appban_port, batch_request, 2, 60, 2)
            batch = load(appban_port, batch_request, args.batches, 300, 2)
        finally:
            for process in (appban, bare):
                process.terminate()
                process.wait(timeout=30)
    decisions_per_second = batch.rate * args.batch_rows
    report: list[tuple[str, str]] = []
    for connections, (bare_best, ours_best) in single.items():
        report += [
            (f"{connections} connections: bare route (ceiling)", bare_best.line()),
            (f"{connections} connections: POST /v1/decide", ours_best.line()),
            (f"{connections} connections: /v1/decide / ceiling", f"{ours_best.rate / bare_best.rate:.0%}"),
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
            f"{args.seconds / 2:.0f} s per pass, best of 2 alternating passes; 2,000 different questions in turn",
        ),
        (
            "servers",
            "two uvicorn workers each (httptools, uvloop), connections dealt out to them in turn, TCP_NODELAY; "
            "no access log; appban records every decision in SQLite (WAL)",
        ),
        (
            "python / machine",
            f"{platform.python_version()} / {os.cpu_count()} CPUs, load generator on the same machine",
        ),
    ]
    print_report(report, args.markdown)


if __name__ == "__main__":
    main()

"""Benchmark: the HTTP service under load on loopback, against a bare FastAPI route in the same run.

Both servers run under uvicorn, two worker processes on one listening socket: `appban serve` (SQLite
audit store, every decision recorded) and a bare FastAPI app whose route takes the same request body
and returns a constant (the framework's own ceiling on this machine). A bounded load generator
(httpx's async client over keep-alive connections, stopped by a request count or a time limit,
whichever comes first) measures requests/s and the p50/p99 latency of:
- POST /v1/decide, one question per request, against the bare route;
- POST /v1/decide/batch with Arrow IPC batches, in decisions/s.

    .venv/bin/python bench/service.py [--requests N] [--seconds S] [--connections C ...] [--markdown]
"""

from __future__ import annotations

import argparse
import asyncio
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

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import print_report

BARE_APP = """
import socket
import sys

import uvicorn
from fastapi import FastAPI, Request
from uvicorn.supervisors import Multiprocess

app = FastAPI()


@app.post("/v1/decide")
async def constant(request: Request) -> dict[str, str]:
    await request.body()
    return {"verdict": "enjoined"}


if __name__ == "__main__":
    # Served like `appban serve --workers 2`: two processes on one listening socket, with TCP_NODELAY.
    config = uvicorn.Config("bare_app:app", port=int(sys.argv[1]), workers=2, log_level="warning")
    listening = config.bind_socket()
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[listening]).run()
"""
QUESTION = {"app": "wechat", "transaction": "payment_processing", "where": "US", "at": "2020-10-15T12:00:00Z"}


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


async def _load(
    url: str, body: bytes, content_type: str, requests: int, seconds: float, connections: int
) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    issued = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def worker() -> None:
            nonlocal issued, failures
            while issued < requests and time.monotonic() < stop:
                issued += 1
                start = time.perf_counter()
                response = await client.post(url, content=body, headers={"content-type": content_type})
                latencies.append(time.perf_counter() - start)
                failures += response.status_code != 200

        await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, failures


def load(
    port: int, path: str, body: bytes, content_type: str, requests: int, seconds: float, connections: int
) -> dict[str, float]:
    start = time.perf_counter()
    url = f"http://127.0.0.1:{port}{path}"
    latencies, failures = asyncio.run(_load(url, body, content_type, requests, seconds, connections))
    elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "failures": failures,
        "rate": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
    }


def _line(result: dict[str, float]) -> str:
    return (
        f"{result['rate']:,.0f} requests/s, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms "
        f"({result['requests']:,.0f} requests, {result['failures']:.0f} failed)"
    )


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
    parser.add_argument("--requests", type=int, default=20_000)
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
            question = json.dumps(QUESTION).encode()
            single: dict[int, tuple[dict[str, float], dict[str, float]]] = {}
            for connections in args.connections:
                load(appban_port, "/v1/decide", question, "application/json", 1000, 10, connections)
                load(bare_port, "/v1/decide", question, "application/json", 1000, 10, connections)
                passes: dict[int, list[dict[str, float]]] = {bare_port: [], appban_port: []}
                for _ in range(2):  # alternate the two, so that both see the same machine
                    for port in (bare_port, appban_port):
                        passes[port].append(
                            load(
                                port,
                                "/v1/decide",
                                question,
                                "application/json",
                                args.requests // 2,
                                args.seconds / 2,
                                connections,
                            )
                        )
                best = {port: max(runs, key=lambda r: r["rate"]) for port, runs in passes.items()}
                single[connections] = (best[bare_port], best[appban_port])
            body = arrow_batch(args.batch_rows)
            load(appban_port, "/v1/decide/batch", body, "application/vnd.apache.arrow.stream", 2, 60, 2)
            batch = load(
                appban_port, "/v1/decide/batch", body, "application/vnd.apache.arrow.stream", args.batches, 300, 2
            )
        finally:
            for process in (appban, bare):
                process.terminate()
                process.wait(timeout=30)
    decisions_per_second = batch["rate"] * args.batch_rows
    report: list[tuple[str, str]] = []
    for connections, (bare_best, ours_best) in single.items():
        report += [
            (f"{connections} connections: bare route (ceiling)", _line(bare_best)),
            (f"{connections} connections: POST /v1/decide", _line(ours_best)),
            (f"{connections} connections: /v1/decide / ceiling", f"{ours_best['rate'] / bare_best['rate']:.0%}"),
        ]
    report += [
        (
            "POST /v1/decide/batch (Arrow IPC)",
            f"{decisions_per_second:,.0f} decisions/s ({args.batch_rows:,} rows per "
            f"request, p50 {batch['p50']:.0f} ms, {batch['requests']:.0f} requests, "
            f"{batch['failures']:.0f} failed)",
        ),
        (
            "load",
            f"keep-alive connections as above, at most {args.requests // 2:,} requests or {args.seconds / 2:.0f} s "
            "per pass, best of 2 alternating passes",
        ),
        (
            "servers",
            "two uvicorn workers each (httptools, uvloop), TCP_NODELAY; appban records every decision in SQLite (WAL)",
        ),
        (
            "python / machine",
            f"{platform.python_version()} / {os.cpu_count()} CPUs, load generator on the same machine",
        ),
    ]
    print_report(report, args.markdown)


if __name__ == "__main__":
    main()

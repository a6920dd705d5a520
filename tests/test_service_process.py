"""`appban serve` as a real process on a loopback port: it serves, and a kill -9 in the middle of a screening
run loses no committed decision; on restart the run is marked failed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from appban.service.workers import _QUICK_DEATH
from appban.store import AuditStore

QUESTION = {"app": "wechat", "transaction": "payment_processing", "where": "US", "at": "2020-10-15T12:00:00Z"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, db_url: str, folder: Path) -> None:
        self.db_url = db_url
        self.folder = folder
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "appban", "serve", "--db", self.db_url, "--port", str(self.port),
                   "--upload-dir", str(self.folder)]  # fmt: skip
        log = (self.folder / f"server-{time.monotonic_ns()}.log").open("wb")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.process.returncode}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path)
    yield running
    running.stop()


def big_payments(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(3)
    pacsv.write_csv(
        pa.table({
            "id": pa.array(np.char.mod("p%d", np.arange(rows))),
            "created": pa.array(np.full(rows, "2020-10-15T12:00:00Z")),
            "amount": pa.array(np.char.mod("%.2f", rng.integers(100, 10_000, rows) / 100)),
            "currency": pa.array(np.full(rows, "USD")),
            "payment_method_type": pa.array(np.where(rng.random(rows) < 0.05, "wechat_pay", "card")),
            "merchant": pa.array(np.full(rows, "Acme Tea")),
            "merchant_country": pa.array(np.full(rows, "US")),
        }),
        path,
    )  # fmt: skip
    return path


def test_kill_9_during_a_run_loses_no_decision(server: Server, tmp_path: Path) -> None:
    store = AuditStore(server.db_url)
    _, secret = store.create_token(name="robustness", scope="write")
    store.close()
    headers = {"Authorization": f"Bearer {secret}"}
    server.start()
    decided = []
    for day in range(1, 21):
        answer = httpx.post(f"{server.base}/v1/decide", json=QUESTION | {"at": f"2020-10-{day:02d}T12:00:00Z"},
                            headers=headers, timeout=30)  # fmt: skip
        assert answer.status_code == 200
        decided.append(answer.json()["decision_id"])
    upload = big_payments(tmp_path / "payments.csv", 3_000_000)
    with upload.open("rb") as handle:
        started = httpx.post(f"{server.base}/v1/screens/payments", files={"file": ("payments.csv", handle)},
                             headers=headers, timeout=120)  # fmt: skip
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    status: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = httpx.get(f"{server.base}/v1/runs/{run_id}", headers=headers, timeout=30).json()
        if status["status"] != "queued":
            break
        time.sleep(0.02)
    assert status["status"] == "running", status
    server.kill()

    server.start()  # a new process on the same store
    after = httpx.get(f"{server.base}/v1/runs/{run_id}", headers=headers, timeout=30).json()
    assert after["status"] == "failed" and "interrupted" in after["error"]
    recorded = {r["id"] for r in httpx.get(f"{server.base}/v1/audit", params={"limit": 1000}, headers=headers,
                                           timeout=30).json()}  # fmt: skip
    assert set(decided) <= recorded
    again = httpx.post(f"{server.base}/v1/decide", json=QUESTION, headers=headers, timeout=30)
    assert again.status_code == 200


def _answer_to_raw(port: int, head: bytes) -> bytes:
    """The status line the server answers a raw request head with (it may close before reading it all)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with contextlib.suppress(OSError):  # refused part way: the answer is already waiting
            sock.sendall(head)
        return sock.makefile("rb").readline()


def test_oversized_request_heads_are_refused_as_they_arrive(server: Server) -> None:
    server.start()
    assert server.process is not None
    resident = _resident(server.process.pid)
    bogus = b"Bearer appban_" + b"a" * (4 << 20)
    for _ in range(10):  # megabytes of token, refused before the app or its token cache sees them
        answer = _answer_to_raw(
            server.port, b"GET /v1/apps HTTP/1.1\r\nHost: x\r\nAuthorization: " + bogus + b"\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 431"), answer
    long_url = b"GET /v1/apps?x=" + b"a" * (64 << 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert _answer_to_raw(server.port, long_url).startswith(b"HTTP/1.1 414")
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(1000))
    assert _answer_to_raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n").startswith(
        b"HTTP/1.1 431"
    )
    assert httpx.get(f"{server.base}/healthz", timeout=30).status_code == 200
    # 40 MB of headers were sent; what the server kept of them is nowhere near that.
    assert _resident(server.process.pid) - resident < 20 << 20


def _resident(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _age(pid: int) -> float:
    """Seconds since a process started, from the kernel's own record (clock ticks since boot)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    return float(Path("/proc/uptime").read_text().split()[0]) - ticks / os.sysconf("SC_CLK_TCK")


def _reaped(pid: int) -> bool:
    """Whether a child process has ended and its parent has collected it. Until then, even as a zombie, some
    of its threads may still hold its files open (a connection handed to it then is lost with them)."""
    return not Path(f"/proc/{pid}").exists()


def _workers_answering(port: int, connections: int) -> Counter[int]:
    """Open `connections` at once, as a client's pool does, and ask /healthz on each: how many connections
    each worker (by pid) answered."""

    async def ask() -> Counter[int]:
        opened = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(connections)))
        try:
            for _, writer in opened:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            workers: Counter[int] = Counter()
            for reader, _ in opened:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length"))
                             .split(b":")[1])  # fmt: skip
                workers[json.loads(await reader.readexactly(length))["worker"]] += 1
            return workers
        finally:
            for _, writer in opened:
                writer.close()

    return asyncio.run(asyncio.wait_for(ask(), 30))


def test_workers_share_connections_that_arrive_together_and_stop_together(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "appban", "serve", "--db", f"sqlite:///{tmp_path / 'audit.db'}",
               "--port", str(port), "--workers", "2", "--no-access-log"]  # fmt: skip
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:  # both workers up
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            try:
                if len(_workers_answering(port, 24)) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        # With one shared listening socket, the first worker to wake accepts every waiting connection, and
        # with a socket each (SO_REUSEPORT) the kernel picks at random. Here they are dealt out in turn.
        assert sorted(_workers_answering(port, 4).values()) == [2, 2]
        workers = _workers_answering(port, 24)
        assert sorted(workers.values()) == [12, 12]
        children = [int(pid) for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
        assert set(workers) <= set(children)
        # A worker killed outright (after its first 10 s: sooner reads as a failed start) is skipped while
        # it is gone, and started again.
        victim, survivor = sorted(workers)
        while _age(victim) <= _QUICK_DEATH + 1:  # the supervisor's clock starts just after the process's own
            assert time.monotonic() < deadline + 60, "the worker never outlived a failed start"
            time.sleep(0.2)
        os.kill(victim, signal.SIGKILL)
        while not _reaped(victim):  # the supervisor notices a worker has gone when it collects it
            assert time.monotonic() < deadline + 60, "the killed worker was never collected"
            time.sleep(0.05)
        # Every connection is still answered: by the survivor, or by the worker started in the victim's place.
        answered = _workers_answering(port, 4)
        assert victim not in answered and sum(answered.values()) == 4 and survivor in answered
        while len(again := _workers_answering(port, 4)) < 2:
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.3)
        assert survivor in again and victim not in again
        workers.update(again)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()

"""A lean HTTP/1.1 load generator: asyncio streams, keep-alive connections, one request in flight on each.

A general client such as httpx spends over a millisecond of CPU per request, so on a two-core machine it,
not the server, sets the pace: a bare FastAPI route then looks ten times slower than it is. This one
writes each request as prepared bytes and reads the answer by its Content-Length (about 0.1 ms per
request), so that the servers' own ceilings show. It is bounded: it stops at a request count or a time
limit, whichever comes first.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class LoadResult:
    requests: int
    failures: int  # answers other than 200
    rate: float  # requests per second
    p50: float  # latency, milliseconds
    p99: float

    def line(self) -> str:
        return (
            f"{self.rate:,.0f} requests/s, p50 {self.p50:.1f} ms, p99 {self.p99:.1f} ms "
            f"({self.requests:,} requests, {self.failures} failed)"
        )


def prepared(path: str, body: bytes, content_type: str) -> bytes:
    """One POST request, ready to write."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of one answer, read whole, and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
        elif name == b"transfer-encoding":
            raise ValueError("chunked answers are not supported by this load generator")
    await reader.readexactly(length)
    return status, keep


async def _run(port: int, requests: Sequence[bytes], count: int, seconds: float, connections: int) -> LoadResult:
    latencies: list[float] = []
    failures = 0
    turns = itertools.count()
    cycle = itertools.cycle(requests)
    start = time.perf_counter()
    stop = start + seconds

    async def connection() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while next(turns) < count and time.perf_counter() < stop:
                began = time.perf_counter()
                writer.write(next(cycle))
                status, keep = await _read_answer(reader)
                latencies.append(time.perf_counter() - began)
                failures += status != 200
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return LoadResult(
        requests=len(latencies),
        failures=failures,
        rate=len(latencies) / elapsed,
        p50=float(np.percentile(ms, 50)),
        p99=float(np.percentile(ms, 99)),
    )


def load(port: int, requests: Sequence[bytes], count: int, seconds: float, connections: int) -> LoadResult:
    """Send `count` requests (cycling through `requests`) over `connections` keep-alive connections."""
    return asyncio.run(_run(port, requests, count, seconds, connections))

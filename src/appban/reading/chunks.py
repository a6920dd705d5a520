"""A file as chunks of whole lines, valid UTF-8 and numbered, parsed a few at a time on threads in order."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from appban.reading.stats import Lines, ReadStats
from appban.reading.streams import UTF8_BOM, compression_of, cr_only, open_stream

# Decompressed bytes parsed at a time. It bounds memory, and it is also the longest line accepted: a longer
# one is reported as malformed rather than held in memory whole. Tests lower it to exercise the limit.
CHUNK_BYTES = 4 << 20
_PIECE_BYTES = 256 << 10
Job = TypeVar("Job")


# Chunks parsed at once. Arrow's kernels release the GIL, so threads use the cores.
def _usable_cpus() -> int:
    # The CPUs this process may run on (a container, taskset or a pinned benchmark), not the machine's.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # platforms without affinity
        return os.cpu_count() or 1


WORKERS = max(1, min(4, _usable_cpus()))
# Threads per file read in this context; None: WORKERS. A cluster task sets 1 (`parse_threads`).
_THREADS: ContextVar[int | None] = ContextVar("appban_parse_threads", default=None)


@contextmanager
def parse_threads(count: int) -> Iterator[None]:
    """Files read inside the block parse on `count` threads (the reads must be consumed inside it).

    A task on a cluster worker uses this with 1: the engine gives each task one core (a Dask worker's
    threads, Spark's spark.task.cpus), so a reader's own threads would take the core of the task beside it
    and, on a worker with one slot, borrow a core the engine does not count."""
    token = _THREADS.set(max(1, count))
    try:
        yield
    finally:
        _THREADS.reset(token)


@dataclass(frozen=True)
class LineChunk:
    """Whole lines of decompressed text, valid UTF-8, each ending with a newline."""

    data: bytes
    first_line: int
    count: int

    def numbers(self) -> Lines:
        return np.arange(self.first_line, self.first_line + self.count, dtype=np.int64)

    def lines(self) -> Any:
        """The lines as an Arrow string array, without their line ends."""
        body = _string_array(self.data, len(self.data) - 1, pa.string())  # the last newline adds no line
        lines = pc.split_pattern(body, "\n").flatten()
        return pc.utf8_rtrim(lines, characters="\r") if b"\r" in self.data else lines


def iter_line_chunks(path: Path, stats: ReadStats, chunk_bytes: int | None = None) -> Iterator[LineChunk]:
    """The decompressed file as chunks of whole lines, numbered from 1.

    A line longer than the chunk size is reported and skipped without being held in memory; a stream
    that breaks off (a truncated .gz) is reported at the line where it stops, after the lines before it.
    """
    limit = chunk_bytes or CHUNK_BYTES
    # A damaged archive loses only the piece being inflated when it fails; a plain file is read in one go.
    piece = limit if compression_of(path) is None else _PIECE_BYTES
    line, carry, skipping, broken = 1, b"", False, None
    bare_cr: bool | None = None  # decided on the first block, for the whole file
    with open_stream(path) as stream:
        while broken is None:
            block, broken = _read_block(stream, limit, piece)
            if not block:
                break
            if line == 1 and not carry:
                block = block.removeprefix(UTF8_BOM)  # spreadsheet exports start with one
            if bare_cr is None:
                bare_cr = cr_only(block)
            if bare_cr:
                block = block.replace(b"\r", b"\n")
            if skipping or carry:
                end = block.find(b"\n")
                if skipping and end < 0:
                    continue
                if skipping or (end >= 0 and len(carry) + end > limit):
                    if not skipping:
                        stats.error(path, line, f"line longer than {limit} bytes")
                    block, carry, skipping, line = block[end + 1 :], b"", False, line + 1
            cut = block.rfind(b"\n") + 1
            if not cut:
                carry += block
            else:
                # One copy at most: the carried start of a line joined to the block's whole lines.
                whole = block if not carry and cut == len(block) else b"".join((carry, memoryview(block)[:cut]))
                chunk = _chunk(whole, line, stats)
                line += chunk.count
                yield chunk
                carry = block[cut:]
            if len(carry) > limit:
                stats.error(path, line, f"line longer than {limit} bytes")
                carry, skipping = b"", True
    if broken is not None:
        stats.error(path, line, f"the input breaks off here ({broken})")  # its last line is cut: dropped
    elif carry and not skipping:
        yield _chunk(carry + b"\n", line, stats)


def _read_block(stream: BinaryIO, size: int, piece_bytes: int) -> tuple[bytes, str | None]:
    """Up to `size` bytes, read `piece_bytes` at a time, and why the stream broke off if it did."""
    pieces: list[bytes] = []
    got = 0
    try:
        while got < size:
            piece = stream.read(min(piece_bytes, size - got))
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
    except (OSError, pa.ArrowException) as exc:
        return b"".join(pieces), str(exc)
    return (pieces[0] if len(pieces) == 1 else b"".join(pieces)), None


def _string_array(data: bytes, length: int, kind: Any = None) -> Any:
    """One value: the first `length` bytes of `data`, without a copy."""
    offsets = pa.py_buffer(np.array([0, length], dtype=np.int32))
    return pa.Array.from_buffers(kind or pa.binary(), 1, [None, offsets, pa.py_buffer(data)])


def _chunk(data: bytes, first_line: int, stats: ReadStats) -> LineChunk:
    try:
        _string_array(data, len(data)).cast(pa.string())  # Arrow's UTF-8 check is far faster than decoding
    except pa.ArrowInvalid:
        data = _replace_non_utf8(data, stats)
    # numpy counts newlines several times faster than bytes.count.
    return LineChunk(data, first_line, int(np.count_nonzero(np.frombuffer(data, np.uint8) == 0x0A)))


def _replace_non_utf8(data: bytes, stats: ReadStats) -> bytes:
    # Keep such lines: a Latin-1 user agent must not hide the TikTok host on the same line.
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            lines[i] = line.decode("utf-8", "replace").encode("utf-8")
            stats.non_utf8 += 1
    return b"\n".join(lines)


def keep_lines(chunk: LineChunk, comment: bytes | None = None) -> tuple[bytes, Lines]:
    """The chunk without blank (and comment) lines, and the line number of each line kept."""
    kept: list[bytes] = []
    numbers: list[int] = []
    for i, line in enumerate(chunk.data.split(b"\n")[:-1]):
        if line.strip() and not (comment is not None and line.startswith(comment)):
            kept.append(line)
            numbers.append(chunk.first_line + i)
    return (b"\n".join(kept) + b"\n" if kept else b""), np.array(numbers, dtype=np.int64)


def starts_a_line(data: bytes, marker: bytes) -> bool:
    """Whether a line of `data` starts with the byte `marker`; fast when that byte is rare, as `#` is."""
    return next(line_starts(data, marker), None) is not None


def line_starts(data: bytes, marker: bytes) -> Iterator[int]:
    """The offsets of the lines of `data` that start with the byte `marker`."""
    # Searching for b"\n#" instead would stop at every newline and costs ten times more.
    at = data.find(marker)
    while at >= 0:
        if at == 0 or data[at - 1] == 0x0A:
            yield at
        at = data.find(marker, at + 1)


def parse_in_order(
    jobs: Iterable[Job],
    parse: Callable[[Job, ReadStats], pa.RecordBatch | None],
    notes: ReadStats,
    stats: ReadStats,
    workers: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """`parse(job, job_stats)` for every job, a few at a time on threads; batches and errors in job order.

    `notes` is where producing the jobs records problems (a line too long, bytes that are not UTF-8);
    they are merged in before the job produced after them, so errors stay in line order.
    """
    count = workers or _THREADS.get() or WORKERS
    if count == 1:
        for job in jobs:
            stats.merge(notes.drain())
            batch = parse(job, stats)
            if batch is not None:
                yield batch
        stats.merge(notes.drain())
        return
    with ThreadPoolExecutor(count) as pool:
        # At most count + 1 jobs are in flight: memory stays at a few chunks.
        waiting: deque[tuple[ReadStats, ReadStats, Future[pa.RecordBatch | None]]] = deque()
        for job in jobs:
            own = ReadStats(max_errors=stats.max_errors)
            waiting.append((notes.drain(), own, pool.submit(parse, job, own)))
            if len(waiting) > count:
                yield from _collect(waiting.popleft(), stats)
        while waiting:
            yield from _collect(waiting.popleft(), stats)
        stats.merge(notes.drain())


def _collect(
    done: tuple[ReadStats, ReadStats, Future[pa.RecordBatch | None]], stats: ReadStats
) -> Iterator[pa.RecordBatch]:
    before, own, future = done
    batch = future.result()
    stats.merge(before)
    stats.merge(own)
    if batch is not None:
        yield batch


def parse_line_chunks(
    path: Path, parse: Callable[[LineChunk, ReadStats], pa.RecordBatch | None], stats: ReadStats
) -> Iterator[pa.RecordBatch]:
    """`parse` over the file's chunks of whole lines, with `parse_in_order`'s ordering of batches and errors."""
    notes = ReadStats()
    return parse_in_order(iter_line_chunks(path, notes), parse, notes, stats)

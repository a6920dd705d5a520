"""Group commit on an event loop: the audit records of one burst of requests share one transaction.

A server process answers requests on one event loop. When several requests arrive together, the loop
starts all of them before it runs anything scheduled meanwhile; each queues its record here and waits,
and the first schedules one write a few turns of the loop later, after the whole burst has queued. So a
burst pays for one transaction (the writers' lock, BEGIN, the commit and its sync to disk) instead of one
each, and no answer is sent before its record is committed.

The write runs on a thread of its own, one at a time: a commit synced to disk waits milliseconds for the
disk (SQLite with synchronous=FULL, PostgreSQL's commit), and the loop meanwhile reads the next requests,
whose records queue up and go together in the next write as soon as this one is done. The drivers release
the interpreter lock while they wait, so the loop keeps running.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Item = TypeVar("Item")

# Turns of the event loop between a burst's first record and its write. Requests whose data the loop reads
# meanwhile join the burst. With bench/service.py at 4 and 8 connections, /v1/decide's share of the bare
# route's rate was 47-64% after 2 turns, 51-63% after 3, 55-67% after 4 and 50-65% after 6; one turn did
# worse than two. A turn costs microseconds when the loop is idle.
_TURNS = 4


class LoopCommitter(Generic[Item]):
    """Calls `write(items)` once per burst, on a writer thread, for the items submitted during that burst."""

    def __init__(self, write: Callable[[Sequence[Item]], None]) -> None:
        self._write = write
        # Per loop: a Desk normally serves one, but tests may drive one app from several.
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Item, asyncio.Future[None]]]] = {}
        self._writing: set[asyncio.AbstractEventLoop] = set()  # loops with a write in flight
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid = 0
        self._lock = threading.Lock()

    async def commit(self, item: Item) -> None:
        """Returns once `item` is committed; raises what the write raised."""
        loop = asyncio.get_running_loop()
        waiting = self._pending.setdefault(loop, [])
        if not waiting and loop not in self._writing:
            loop.call_soon(self._flush_later, loop, _TURNS - 1)
        future: asyncio.Future[None] = loop.create_future()
        waiting.append((item, future))
        await future

    def _flush_later(self, loop: asyncio.AbstractEventLoop, turns: int) -> None:
        if turns:
            loop.call_soon(self._flush_later, loop, turns - 1)
        else:
            self._flush(loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        group = self._pending.pop(loop, [])
        if not group:
            return
        self._writing.add(loop)
        written = loop.run_in_executor(self._writer(), self._write, [item for item, _ in group])
        written.add_done_callback(lambda done: self._written(loop, group, done))

    def _written(
        self,
        loop: asyncio.AbstractEventLoop,
        group: list[tuple[Item, asyncio.Future[None]]],
        done: asyncio.Future[None],
    ) -> None:
        self._writing.discard(loop)
        failure = None if done.cancelled() else done.exception()
        for _, future in group:
            if future.done():
                continue
            if done.cancelled():
                future.cancel()
            elif failure is not None:  # each waiter's request fails with it
                future.set_exception(failure)
            else:
                future.set_result(None)
        if self._pending.get(loop):  # queued while this write was in flight: they go together, now
            self._flush(loop)

    def _writer(self) -> ThreadPoolExecutor:
        with self._lock:
            # A forked child has the executor but not its thread: it starts its own.
            if self._executor is None or self._executor_pid != os.getpid():
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="appban-commit")
                self._executor_pid = os.getpid()
            return self._executor

    def close(self) -> None:
        """Stop the writer thread once any write in flight is done."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None and self._executor_pid == os.getpid():
            executor.shutdown(wait=True)

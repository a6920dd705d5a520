"""Group commit on an event loop: the audit records of one burst of requests share one transaction.

A server process answers requests on one event loop. When several requests arrive together, the loop
starts all of them before it runs anything scheduled meanwhile; each queues its record here and waits,
and the first schedules one write a few turns of the loop later, after the whole burst has queued. So a
burst pays for one transaction (the writers' lock, BEGIN, the commit) instead of one each, no answer is
sent before its record is committed, and there is no thread to hand over to: with the interpreter lock,
a writer thread cost more than it saved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")

# Turns of the event loop between a burst's first record and its write. Requests whose data the loop reads
# meanwhile join the burst. With bench/service.py at 4 and 8 connections, /v1/decide's share of the bare
# route's rate was 47-64% after 2 turns, 51-63% after 3, 55-67% after 4 and 50-65% after 6; one turn did
# worse than two. A turn costs microseconds when the loop is idle.
_TURNS = 4


class LoopCommitter(Generic[Item]):
    """Calls `write(items)` once per burst, on the loop, for the items submitted during that burst."""

    def __init__(self, write: Callable[[Sequence[Item]], None]) -> None:
        self._write = write
        # Per loop: a Desk normally serves one, but tests may drive one app from several.
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Item, asyncio.Future[None]]]] = {}

    async def commit(self, item: Item) -> None:
        """Returns once `item` is committed; raises what the write raised."""
        loop = asyncio.get_running_loop()
        waiting = self._pending.setdefault(loop, [])
        if not waiting:
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
        try:
            self._write([item for item, _ in group])
        except Exception as exc:  # each waiter's request fails with it
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
        else:
            for _, future in group:
                if not future.done():
                    future.set_result(None)

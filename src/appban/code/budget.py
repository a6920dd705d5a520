"""The per-file time budget, checked where the work happens rather than only between archive members.

A reader of untrusted input can spend a long time inside one member (a DEX with millions of strings,
a static library with thousands of objects), so the walker's check between members alone never stops
it. The walker opens a deadline for each file it scans; readers call `check()` (or `tick(i)` in tight
loops) and an `OutOfTime` raised there unwinds to the walker, which reports the file as cut short.
Outside a walk there is no deadline and the checks cost one comparison.

What runs between two checks is bounded by the size caps: one RE2 search over text at the cap
(extractors/_text.py) or one decompression step, a few seconds at most, so a file can overrun its
budget by that much and no more.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEADLINE: ContextVar[float] = ContextVar("appban_code_deadline", default=math.inf)
# A tight loop looks at the clock once every this many steps (a power of two, used as a mask).
_TICK = 1 << 12


class OutOfTime(Exception):
    """The current file's time budget is used up. Deliberately not a ValueError: readers that turn
    malformed input into warnings must let it through to the walker."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check() -> None:
    if time.monotonic() > _DEADLINE.get():
        raise OutOfTime


def tick(step: int) -> None:
    """check() once every few thousand steps of a loop (`step` is the loop's counter)."""
    if not step & (_TICK - 1):
        check()

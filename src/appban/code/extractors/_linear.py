"""Regular expressions that run in time linear in the text, for text the scanner does not control.

Python's `re` backtracks: a pattern such as `<data\\s[^>]*android:scheme` costs O(n) for every `<data`
in an unclosed tag, so a few hundred kilobytes take minutes, and a running match cannot be interrupted.
RE2 (google-re2) compiles patterns to automata with a linear-time guarantee, so every pattern that
extractors apply to file contents is compiled here.

RE2's syntax is Python's minus backreferences and lookaround; its `\\s`, `\\w` and `\\b` are ASCII-only,
which is all the build files, manifests and identifiers read here need.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, cast

import re2  # type: ignore[import-untyped]


class Match(Protocol):
    def __getitem__(self, group: int) -> Any: ...  # str, or None for a group that did not take part

    def start(self, group: int = 0) -> int: ...

    def span(self, group: int = 0) -> tuple[int, int]: ...


class Pattern(Protocol):
    def match(self, text: str) -> Match | None: ...

    def search(self, text: str) -> Match | None: ...

    def finditer(self, text: str) -> Iterator[Match]: ...

    def findall(self, text: str) -> list[Any]: ...


def linear(pattern: str) -> Pattern:
    """A linear-time pattern. Flags go inline (`(?s)` for DOTALL); RE2 rejects what it cannot do in
    linear time (backreferences, lookaround) when the pattern is compiled, so at import."""
    return cast(Pattern, re2.compile(pattern))

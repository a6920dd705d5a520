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

from appban.code import budget


class Match(Protocol):
    def __getitem__(self, group: int) -> Any: ...  # str, or None for a group that did not take part

    def start(self, group: int = 0) -> int: ...

    def span(self, group: int = 0) -> tuple[int, int]: ...

    def group(self, group: int = 0) -> Any: ...

    def groups(self, default: Any = None) -> tuple[Any, ...]: ...


class Pattern:
    """A compiled RE2 pattern with the parts of `re.Pattern` the extractors use. Each match is found in
    linear time, but a text can hold millions of them, so iterating matches looks at the time budget
    every few thousand."""

    def __init__(self, pattern: str) -> None:
        # RE2 rejects, at compile time and so at import, what it cannot do in linear time
        # (backreferences, lookaround). Flags go inline: (?s) for DOTALL.
        self._compiled = re2.compile(pattern)
        self.groups: int = self._compiled.groups

    def match(self, text: str) -> Match | None:
        return cast(Match | None, self._compiled.match(text))

    def search(self, text: str) -> Match | None:
        return cast(Match | None, self._compiled.search(text))

    def finditer(self, text: str) -> Iterator[Match]:
        for step, found in enumerate(self._compiled.finditer(text)):
            budget.tick(step)
            yield cast(Match, found)

    def findall(self, text: str) -> list[Any]:
        """As re.findall: the whole match, the one group, or a tuple of the groups ("" if unmatched)."""
        if self.groups == 0:
            return [found.group() for found in self.finditer(text)]
        if self.groups == 1:
            return [found.groups("")[0] for found in self.finditer(text)]
        return [found.groups("") for found in self.finditer(text)]


def linear(pattern: str) -> Pattern:
    return Pattern(pattern)

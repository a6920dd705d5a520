"""Helpers shared by text extractors: a size cap, decoding, lines and line numbers in linear time."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator

from appban.code import budget
from appban.code.model import Skipped

#: The most text (in bytes, before decoding) an extractor reads from one lockfile, JSON document or source
#: file: the largest real ones are tens of megabytes. Larger input is reported as skipped.
MAX_TEXT_BYTES = 64 << 20
#: The same for manifests and build files (pom.xml, AndroidManifest.xml, plugin.xml, Gradle, CocoaPods,
#: go.mod, Package.swift, pyproject.toml), which are kilobytes. Every pattern is linear (RE2), but one
#: search whose match spans the whole text cannot be interrupted, and at this size it takes about a second.
MAX_MANIFEST_BYTES = 8 << 20


def text_of(data: bytes, limit: int = MAX_TEXT_BYTES) -> str:
    if len(data) > limit:
        raise Skipped(f"{len(data):,} bytes of text is over the {limit:,}-byte limit for this kind of file")
    return data.decode("utf-8", errors="replace")


def lines(data: bytes, limit: int = MAX_TEXT_BYTES) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text_of(data, limit).splitlines(), start=1):
        budget.tick(number)
        yield number, line


class LineIndex:
    """Line numbers (1-based, counting "\\n") of offsets in one text. Counting from the start for every
    match would make a file with many matches quadratic, so the newlines are found once."""

    def __init__(self, text: str) -> None:
        self._newlines: list[int] = []
        at = text.find("\n")
        while at >= 0:
            budget.tick(len(self._newlines))
            self._newlines.append(at)
            at = text.find("\n", at + 1)

    def line(self, offset: int) -> int:
        return bisect_left(self._newlines, offset) + 1


class FirstFind:
    """Line of the first occurrence of a substring, for reporting where a parsed name is written.

    Each look-up is a plain str.find from the start; their total cost is capped at a multiple of the text
    length, after which the line is reported as unknown (None) instead of searching on, so that many
    names that are absent from the text (escaped, or forged) cannot make the look-ups quadratic."""

    def __init__(self, text: str, lines: LineIndex | None = None, factor: int = 64) -> None:
        self.text = text
        self.lines = lines or LineIndex(text)
        self._budget = factor * len(text) + (1 << 20)
        self._found: dict[str, int | None] = {}

    def line(self, needle: str) -> int | None:
        if needle not in self._found:
            if self._budget <= 0:
                return None
            at = self.text.find(needle)
            self._budget -= (at if at >= 0 else len(self.text)) + len(needle)
            self._found[needle] = self.lines.line(at) if at >= 0 else None
        return self._found[needle]


# A quote and the text up to the next quote, overlapping (each quote starts one run): linear, since each
# run stops at the first quote after its own.
_QUOTED_RUN = re.compile(r'"[^"]*(?=")')


class QuotedTokens:
    """Line of the first occurrence of '"name"' in a text (a JSON file), for all names in one pass.

    For a name without quotes, '"name"' starts at some quote and ends at the very next one, so indexing
    the run after every quote gives exactly what text.find would, without one search per name."""

    def __init__(self, text: str, lines: LineIndex | None = None) -> None:
        self.lines = lines or LineIndex(text)
        self._first: dict[str, int] = {}
        for step, run in enumerate(_QUOTED_RUN.finditer(text)):
            budget.tick(step)
            self._first.setdefault(run.group(), run.start())

    def line(self, name: str) -> int | None:
        if '"' in name:
            return None  # '"a"b"' is not JSON: such a key was written with an escape
        at = self._first.get('"' + name)
        return self.lines.line(at) if at is not None else None

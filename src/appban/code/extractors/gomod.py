"""Go modules: go.mod require directives."""

from __future__ import annotations

from collections.abc import Iterator

from appban.code.extractors._linear import linear
from appban.code.extractors._text import MAX_MANIFEST_BYTES, lines
from appban.code.model import FileNames, Observation

_REQUIRE = linear(r"^\s*(?:require\s+)?([a-zA-Z0-9.\-]+\.[a-z]{2,}/[^\s]+)\s+(v[^\s]+)")


class GoMod:
    name = "go"
    names = FileNames(frozenset({"go.mod"}))

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        for number, line in lines(data, MAX_MANIFEST_BYTES):
            if line.strip().startswith(("module ", "//")):
                continue
            if match := _REQUIRE.match(line):
                yield Observation("go", match[1], number, match[2])

"""Gradle build scripts (Groovy and Kotlin) and version catalogs: Maven coordinates."""

from __future__ import annotations

from collections.abc import Iterator

from appban.code.extractors._linear import linear
from appban.code.extractors._text import MAX_MANIFEST_BYTES, lines
from appban.code.model import FileNames, Observation

_COORDINATE = linear(r"""["']([A-Za-z0-9_.\-]+):([A-Za-z0-9_.\-]+)(?::([^"'@\s]+))?(?:@\w+)?["']""")
_GROUP_NAME = linear(r"""group\s*[=:]\s*["']([\w.\-]+)["']\s*,\s*name\s*[=:]\s*["']([\w.\-]+)["']""")
_MODULE = linear(r"""module\s*=\s*["']([\w.\-]+):([\w.\-]+)["']""")


class Gradle:
    name = "gradle"
    names = FileNames(suffixes=(".gradle", ".gradle.kts", ".versions.toml"))

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        for number, line in lines(data, MAX_MANIFEST_BYTES):
            if line.lstrip().startswith("//") or ('"' not in line and "'" not in line):
                continue  # every pattern needs a quoted string
            for match in _COORDINATE.finditer(line):
                yield Observation("maven", f"{match[1]}:{match[2]}", number, match[3])
            if "group" in line:
                for match in _GROUP_NAME.finditer(line):
                    yield Observation("maven", f"{match[1]}:{match[2]}", number)
            if "module" in line:
                for match in _MODULE.finditer(line):
                    yield Observation("maven", f"{match[1]}:{match[2]}", number)

"""Gradle build scripts (Groovy and Kotlin) and version catalogs: Maven coordinates."""

from __future__ import annotations

import re
from collections.abc import Iterator

from appban.code.extractors._text import lines
from appban.code.model import Observation

_COORDINATE = re.compile(r"""["']([A-Za-z0-9_.\-]+):([A-Za-z0-9_.\-]+)(?::([^"'@\s]+))?(?:@\w+)?["']""")
_GROUP_NAME = re.compile(r"""group\s*[=:]\s*["']([\w.\-]+)["']\s*,\s*name\s*[=:]\s*["']([\w.\-]+)["']""")
_MODULE = re.compile(r"""module\s*=\s*["']([\w.\-]+):([\w.\-]+)["']""")


class Gradle:
    name = "gradle"

    def wants(self, name: str, head: bytes) -> bool:
        return name.endswith((".gradle", ".gradle.kts", ".versions.toml"))

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        for number, line in lines(data):
            if line.lstrip().startswith("//"):
                continue
            for match in _COORDINATE.finditer(line):
                yield Observation("maven", f"{match[1]}:{match[2]}", number, match[3])
            for match in _GROUP_NAME.finditer(line):
                yield Observation("maven", f"{match[1]}:{match[2]}", number)
            for match in _MODULE.finditer(line):
                yield Observation("maven", f"{match[1]}:{match[2]}", number)

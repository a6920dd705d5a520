"""Swift Package Manager: Package.swift and Package.resolved."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from appban.code.extractors._text import lines, text_of
from appban.code.model import Observation

_PACKAGE_URL = re.compile(r"""\.package\s*\(\s*(?:name:\s*"[^"]*"\s*,\s*)?url:\s*"([^"]+)\"""")
_PRODUCT = re.compile(r"""\.product\s*\(\s*name:\s*"([^"]+)"\s*,\s*package:\s*"([^"]+)\"""")


def _repo(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


class SwiftPM:
    name = "swiftpm"

    def wants(self, name: str, head: bytes) -> bool:
        return name in {"package.swift", "package.resolved"}

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        if name == "package.resolved":
            yield from self._resolved(data)
            return
        for number, line in lines(data):
            for url in _PACKAGE_URL.findall(line):
                yield Observation("swiftpm", _repo(url), number, url)
            for product, package in _PRODUCT.findall(line):
                yield Observation("modules", product, number)
                yield Observation("swiftpm", package, number)

    def _resolved(self, data: bytes) -> Iterator[Observation]:
        try:
            document = json.loads(text_of(data))
        except json.JSONDecodeError:
            return
        pins = document.get("pins") or document.get("object", {}).get("pins") or []
        text = text_of(data)
        for pin in pins if isinstance(pins, list) else []:
            if not isinstance(pin, dict):
                continue
            url = pin.get("location") or pin.get("repositoryURL") or ""
            identity = pin.get("identity") or pin.get("package") or _repo(str(url))
            line = text[: text.find(str(identity))].count("\n") + 1 if identity else None
            yield Observation("swiftpm", str(identity), line, str(url) or None)
            if url:
                yield Observation("swiftpm", _repo(str(url)), line, str(url))

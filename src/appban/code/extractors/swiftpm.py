"""Swift Package Manager: Package.swift and Package.resolved."""

from __future__ import annotations

from collections.abc import Iterator

from appban import safejson
from appban.code.extractors._linear import linear
from appban.code.extractors._text import MAX_MANIFEST_BYTES, FirstFind, lines, text_of
from appban.code.model import FileNames, Observation

_PACKAGE_URL = linear(r"""\.package\s*\(\s*(?:name:\s*"[^"]*"\s*,\s*)?url:\s*"([^"]+)\"""")
_PRODUCT = linear(r"""\.product\s*\(\s*name:\s*"([^"]+)"\s*,\s*package:\s*"([^"]+)\"""")


def _repo(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


class SwiftPM:
    name = "swiftpm"
    names = FileNames(frozenset({"package.swift", "package.resolved"}))

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        if name == "package.resolved":
            yield from self._resolved(data)
            return
        for number, line in lines(data, MAX_MANIFEST_BYTES):
            if ".package" in line:
                for url in _PACKAGE_URL.findall(line):
                    yield Observation("swiftpm", _repo(url), number, url)
            if ".product" in line:
                for product, package in _PRODUCT.findall(line):
                    yield Observation("modules", product, number)
                    yield Observation("swiftpm", package, number)

    def _resolved(self, data: bytes) -> Iterator[Observation]:
        text = text_of(data)
        document = safejson.loads(text)  # errors are reported by the walker
        if not isinstance(document, dict):
            return
        inner = document.get("object")
        pins = document.get("pins") or (inner.get("pins") if isinstance(inner, dict) else None) or []
        where = FirstFind(text)
        for pin in pins if isinstance(pins, list) else []:
            if not isinstance(pin, dict):
                continue
            url = pin.get("location") or pin.get("repositoryURL") or ""
            identity = pin.get("identity") or pin.get("package") or _repo(str(url))
            line = where.line(str(identity)) if identity else None
            state = pin.get("state")
            version = state.get("version") if isinstance(state, dict) else None
            pinned = version if isinstance(version, str) else None  # absent when pinned to a branch or revision
            yield Observation("swiftpm", str(identity), line, str(url) or None, version=pinned)
            if url:
                yield Observation("swiftpm", _repo(str(url)), line, str(url), version=pinned)

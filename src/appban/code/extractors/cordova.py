"""Cordova / Capacitor plugin.xml: frameworks, pods, library files and declared schemes."""

from __future__ import annotations

from collections.abc import Iterator

from appban.code.extractors._linear import linear
from appban.code.extractors._text import MAX_MANIFEST_BYTES, LineIndex, text_of
from appban.code.model import FileNames, Observation

_FRAMEWORK = linear(r"""<framework\s[^>]*src\s*=\s*["']([^"']+)["']""")
_POD = linear(r"""<pod\s[^>]*name\s*=\s*["']([^"']+)["']""")
_LIB_FILE = linear(r"""<(?:lib-file|source-file|resource-file)\s[^>]*src\s*=\s*["']([^"']+)["']""")
_SCHEMES = linear(r"""(?s)<config-file[^>]*parent\s*=\s*["']LSApplicationQueriesSchemes["'][^>]*>(.*?)</config-file>""")
_STRING = linear(r"<string>\s*([A-Za-z][A-Za-z0-9+.\-]*)\s*</string>")
_ANDROID_PACKAGE = linear(r"""<package\s[^>]*android:name\s*=\s*["']([^"']+)["']""")
_ANDROID_SCHEME = linear(r"""<data\s[^>]*android:scheme\s*=\s*["']([^"']+)["']""")


class Cordova:
    name = "cordova"
    names = FileNames(frozenset({"plugin.xml"}))

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        text = text_of(data, MAX_MANIFEST_BYTES)
        lines = LineIndex(text)
        for match in _FRAMEWORK.finditer(text):
            src = match[1]
            line = lines.line(match.start())
            if src.count(":") >= 1 and "/" not in src:
                yield Observation("maven", ":".join(src.split(":")[:2]), line, src)
            elif src.endswith((".framework", ".xcframework")):
                yield Observation("frameworks", src.rsplit("/", 1)[-1].rsplit(".", 1)[0], line)
        for match in _POD.finditer(text):
            yield Observation("cocoapods", match[1].split("/")[0], lines.line(match.start()))
        for match in _LIB_FILE.finditer(text):
            base = match[1].rsplit("/", 1)[-1]
            kind = "jar_names" if base.endswith(".jar") else "static_libraries" if base.endswith(".a") else None
            if kind:
                yield Observation(kind, base, lines.line(match.start()))
        for block in _SCHEMES.finditer(text):
            for scheme in _STRING.finditer(block[1]):
                yield Observation("url_schemes", scheme[1], lines.line(block.start(1) + scheme.start()))
        for match in _ANDROID_PACKAGE.finditer(text):
            yield Observation("android_packages", match[1], lines.line(match.start()))
        for match in _ANDROID_SCHEME.finditer(text):
            yield Observation("url_schemes", match[1], lines.line(match.start()))

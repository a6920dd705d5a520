"""AndroidManifest.xml, as text (source trees) or compiled binary XML (inside APKs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from appban.code.extractors._linear import linear
from appban.code.extractors._text import MAX_MANIFEST_BYTES, LineIndex, text_of
from appban.code.model import FileNames, Observation

if TYPE_CHECKING:
    from appban.code.binary.protoxml import ProtoElement

# Matched as text, not parsed, so that source-tree manifests with build placeholders still read.
_PACKAGE = linear(r"""<package\s[^>]*android:name\s*=\s*["']([^"']+)["']""")
_SCHEME = linear(r"""<data\s[^>]*android:scheme\s*=\s*["']([^"']+)["']""")
_COMPONENT = linear(
    r"""<(?:activity|activity-alias|service|receiver|provider)\s[^>]*android:name\s*=\s*["']([^"']+)["']"""
)
_AXML_MAGIC = b"\x03\x00\x08\x00"


class AndroidManifest:
    name = "android-manifest"

    # Build variants keep extra manifests beside the main one (AndroidManifestNew.xml, ...).
    names = FileNames(prefixed=(("androidmanifest", (".xml",)),))

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        if data.startswith(_AXML_MAGIC):
            yield from self._binary(data)
            return
        if data[:1] == b"\x0a":  # a protobuf XmlNode (an App Bundle's manifest), or text after a newline
            from appban.code.binary import MalformedBinary
            from appban.code.binary.protoxml import read_proto_manifest

            try:
                root = read_proto_manifest(data)
            except MalformedBinary:
                if not data.lstrip().startswith(b"<"):
                    raise
            else:
                yield from self._proto(root)
                return
        text = text_of(data, MAX_MANIFEST_BYTES)
        lines = LineIndex(text)
        for match in _PACKAGE.finditer(text):
            yield Observation("android_packages", match[1], lines.line(match.start()))
        for match in _SCHEME.finditer(text):
            yield Observation("url_schemes", match[1], lines.line(match.start()))
        for match in _COMPONENT.finditer(text):
            if not match[1].startswith("."):  # relative names belong to the app itself
                yield Observation("java", match[1], lines.line(match.start()))

    def _proto(self, root: ProtoElement) -> Iterator[Observation]:
        from appban.code.binary.protoxml import walk

        if root.attributes.get("package"):
            yield Observation("manifest_package", root.attributes["package"])
        for element in walk(root):
            if element.name == "queries":
                for child in element.children:
                    if child.name == "package" and child.attributes.get("name"):
                        yield Observation("android_packages", child.attributes["name"])
            elif element.name == "data" and element.attributes.get("scheme"):
                yield Observation("url_schemes", element.attributes["scheme"])

    def _binary(self, data: bytes) -> Iterator[Observation]:
        from appban.code.binary.axml import read_manifest

        manifest = read_manifest(data)  # a MalformedBinary (a ValueError) is reported by the walker
        if manifest.package:
            yield Observation("manifest_package", manifest.package)
        for package in manifest.queries_packages:
            yield Observation("android_packages", package)
        for scheme in manifest.schemes:
            yield Observation("url_schemes", scheme)
        for activity in manifest.activities:
            if not activity.startswith("."):
                yield Observation("java", activity)

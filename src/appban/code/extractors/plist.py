"""Info.plist (XML or binary): URL schemes the app registers and queries."""

from __future__ import annotations

import plistlib
from collections.abc import Iterator
from typing import Any

from appban.code.extractors._text import MAX_TEXT_BYTES
from appban.code.model import FileNames, Observation, Skipped

# plistlib parses XML with expat, which fetches no external DTD or entity, and refuses entity
# declarations itself; the byte search only names the refusal. A DOCTYPE alone is allowed: every
# Info.plist written by Xcode or plistlib carries one.
_ENTITY = b"<!ENTITY"


class InfoPlist:
    name = "info-plist"
    names = FileNames(frozenset({"info.plist"}))

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        if len(data) > MAX_TEXT_BYTES:
            raise Skipped(f"{len(data):,} bytes is over the {MAX_TEXT_BYTES:,}-byte limit for property lists")
        if not data.startswith(b"bplist") and _ENTITY in data:
            raise Skipped("XML with entity declarations is refused")
        try:
            document: Any = plistlib.loads(data)
        except RecursionError:
            raise Skipped("property list nested too deeply to parse") from None
        except Exception:
            return  # not a property list: an Info.plist template, or unrelated data of the same name
        if not isinstance(document, dict):
            return
        for url_type in _items(document.get("CFBundleURLTypes")):
            if isinstance(url_type, dict):
                for scheme in _items(url_type.get("CFBundleURLSchemes")):
                    if isinstance(scheme, str):
                        yield Observation("url_schemes", scheme, None, "CFBundleURLSchemes")
        for scheme in _items(document.get("LSApplicationQueriesSchemes")):
            if isinstance(scheme, str):
                yield Observation("url_schemes", scheme, None, "LSApplicationQueriesSchemes")
        identifier = document.get("CFBundleIdentifier")
        if isinstance(identifier, str):
            yield Observation("bundle_id", identifier)


def _items(value: Any) -> list[Any]:
    # A hostile plist may put a string or a number where a list belongs.
    return value if isinstance(value, list) else []

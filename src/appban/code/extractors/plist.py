"""Info.plist (XML or binary): URL schemes the app registers and queries."""

from __future__ import annotations

import plistlib
from collections.abc import Iterator
from typing import Any

from appban.code.extractors._text import has_entities
from appban.code.model import Observation


class InfoPlist:
    name = "info-plist"

    def wants(self, name: str, head: bytes) -> bool:
        return name == "info.plist"

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        if has_entities(data) and not data.startswith(b"bplist"):
            return
        try:
            document: Any = plistlib.loads(data)
        except Exception:
            return
        if not isinstance(document, dict):
            return
        for url_type in document.get("CFBundleURLTypes") or []:
            if isinstance(url_type, dict):
                for scheme in url_type.get("CFBundleURLSchemes") or []:
                    if isinstance(scheme, str):
                        yield Observation("url_schemes", scheme, None, "CFBundleURLSchemes")
        for scheme in document.get("LSApplicationQueriesSchemes") or []:
            if isinstance(scheme, str):
                yield Observation("url_schemes", scheme, None, "LSApplicationQueriesSchemes")
        identifier = document.get("CFBundleIdentifier")
        if isinstance(identifier, str):
            yield Observation("bundle_id", identifier)

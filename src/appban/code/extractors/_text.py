"""Helpers shared by text extractors: decoding and line numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator


def text_of(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def lines(data: bytes) -> Iterator[tuple[int, str]]:
    yield from enumerate(text_of(data).splitlines(), start=1)


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


def has_entities(data: bytes) -> bool:
    """XML with a DOCTYPE may expand entities without bound (the 'billion laughs'): such files are refused."""
    return _DOCTYPE.search(data[:65536]) is not None

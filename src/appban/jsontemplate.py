"""JSON text with named gaps, so that answers which differ in a few values share one template.

A server answers the same question at many instants with the same JSON apart from the app as asked and
the instant: it keeps the JSON once, as a template, and the audit store keeps it once too, each record
holding only the values that fill its gaps. A gap is a JSON string value made of a marker no answer
contains otherwise; filling it puts the value's own JSON in the place of the marker and its quotes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_MARK = "\u2063"  # INVISIBLE SEPARATOR: never part of an app name, an instant or the rulebook's texts
# The marker as it is, or escaped by a serialiser that writes ASCII only.
_GAP = re.compile(r'"(?:\u2063|\\u2063)gap:([a-z_]+)(?:\u2063|\\u2063)"')


def gap(name: str) -> str:
    """The string value that stands for gap `name` in a template."""
    return f"{_MARK}gap:{name}{_MARK}"


@dataclass(frozen=True)
class JSONTemplate:
    """JSON text in which some string values are gaps (see `gap`)."""

    text: str
    digest: str = field(init=False)  # SHA-256 of the text: the template's name in the audit store
    _names: tuple[str, ...] = field(init=False, repr=False)  # the gaps, in order
    _utf8: tuple[bytes, ...] = field(init=False, repr=False)  # the text around the gaps, encoded once

    def __post_init__(self) -> None:
        split = _GAP.split(self.text)  # text, name, text, name, ..., text
        object.__setattr__(self, "digest", hashlib.sha256(self.text.encode()).hexdigest())
        object.__setattr__(self, "_names", tuple(split[1::2]))
        object.__setattr__(self, "_utf8", tuple(piece.encode() for piece in split[0::2]))

    @property
    def gaps(self) -> frozenset[str]:
        return frozenset(self._names)

    def fill(self, values: Mapping[str, Any]) -> str:
        """The JSON text with each gap replaced by its value. Raises KeyError naming a gap without one."""
        return self.fill_utf8(values).decode()

    def fill_utf8(self, values: Mapping[str, Any], members: bytes = b"") -> bytes:
        """`fill(values).encode()`, without encoding the template's text again. `members` (JSON object members,
        each followed by a comma) are put first in the object that the template must then be."""
        from pydantic_core import to_json  # here: a command that prints one answer never fills a template

        encoded = {name: to_json(values[name]) for name in self.gaps}
        first = self._utf8[0]
        if members and not first.startswith(b"{"):
            raise ValueError("members can only be added to a JSON object")
        out = [b"{", members, first[1:]] if members else [first]
        for name, piece in zip(self._names, self._utf8[1:], strict=True):
            out += (encoded[name], piece)
        return b"".join(out)


@dataclass(frozen=True, slots=True)
class FilledJSON:
    """A template and the values of its gaps: JSON text kept in two parts (see `JSONTemplate`)."""

    template: JSONTemplate
    values: dict[str, Any]

    @property
    def text(self) -> str:
        return self.template.fill(self.values)

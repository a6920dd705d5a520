"""The hash chain of the audit trail: what a recorded decision's hash covers, and how records link.

Each decision has a content digest: the SHA-256 of its logical content as canonical JSON (keys sorted,
no whitespace, non-ASCII written as \\u escapes so the text is the same bytes in any encoding; plain
JSON only, no NaN). The content is every field that matters: id, kind, time of asking, caller,
rulebook version, the instant asked about, the question, the whole answer, the run, and for a batch
the row count and the SHA-256 of each Arrow IPC table. An answer kept as a template and its gaps'
values is hashed as the whole answer, so the digest does not depend on how the store lays it out.

Records are numbered 0, 1, 2... in the order they were committed (`seq`) and each one's link hash is
    SHA-256(canonical {"content": content digest, "prev": previous link hash, "seq": seq})
with the first one's "prev" the store's genesis hash, SHA-256 of its random store id: a chain copied
from another store does not verify. The digests are hex strings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from pydantic_core import to_json

from appban import safejson
from appban.jsontemplate import JSONTemplate, gap

VERSION = 1
_MARK = gap("x")[0]  # the character a template's gaps are made of


class ChainError(ValueError):
    """A value that has no canonical form (not plain JSON, nested too deep, a gap without a value)."""


# One encoder for every call: json.dumps with options builds a new one each time, which costs more than
# encoding a small value.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
_string: Callable[[str], str] = encode_basestring_ascii  # what the encoder does with a string, called directly


def canonical(value: Any) -> str:
    """Canonical JSON of a parsed JSON value."""
    if type(value) is str:
        return _string(value)
    try:
        return _ENCODER.encode(value)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ChainError(f"not plain JSON: {exc}") from None


def stored_form(value: Any) -> Any:
    """`value` as it reads back from a JSON column: what the store writes (pydantic-core's JSON), parsed again
    by the parser verification uses, so that what is hashed at write time is what verification will read."""
    if _reads_back_as_it_is(value):  # a small question or gap values: the round trip would change nothing
        return value
    try:
        return safejson.loads(to_json(value).decode())
    except (ValueError, TypeError) as exc:  # UnsafeJSON, or pydantic-core's refusal of a value
        raise ChainError(f"not plain JSON: {exc}") from None


_AS_IT_IS = (str, bool, type(None))


def _reads_back_as_it_is(value: Any, budget: int = 32) -> bool:
    """Whether a value is made only of what JSON writes and reads back unchanged (objects with text keys,
    arrays, text, booleans, null, small integers), nested two levels at most and small. Anything else,
    floats included, takes the round trip."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        budget -= 1
        kind = type(item)
        if budget < 0:
            return False
        if kind in _AS_IT_IS or (kind is int and -(2**53) < item < 2**53):
            continue
        if depth >= 2:
            return False
        if kind is dict:
            if not all(type(key) is str for key in item):
                return False
            stack.extend((child, depth + 1) for child in item.values())
        elif kind is list:
            stack.extend((child, depth + 1) for child in item)
        else:
            return False
    return True


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def stamp(value: dt.datetime | None) -> str | None:
    """An instant in the content: ISO 8601 UTC with a Z, with microseconds when it has any."""
    return None if value is None else _stamp(value)


def _stamp(value: dt.datetime) -> str:
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


def genesis(store_id: str) -> str:
    """The "prev" of a store's first record."""
    return sha256(canonical({"appban_audit_chain": VERSION, "store": store_id}))


def link(prev: str, seq: int, content: str) -> str:
    """The link hash of record `seq`, whose content digest is `content`, following `prev`: the SHA-256 of
    canonical {"content", "prev", "seq"} (written out, as this is done for every record)."""
    return sha256(f'{{"content":{_string(content)},"prev":{_string(prev)},"seq":{int(seq)}}}')


def content_digest(
    *,
    id: str,
    kind: str,
    asked_at: dt.datetime,
    caller: str,
    rulebook_version: str,
    instant: dt.datetime | None,
    input: str,
    result: str,
    run_id: str | None,
    batch: Mapping[str, Any] | None,
) -> str:
    """The content digest of a record; `input` and `result` are already canonical JSON texts."""
    # The canonical serialisation of the object (its keys in sorted order), with the two nested texts
    # spliced in as they are.
    text = _CONTENT.format(
        asked_at=_string(_stamp(asked_at)),
        batch="null" if batch is None else canonical(batch),
        caller=_string(caller),
        id=_string(id),
        input=input,
        instant="null" if instant is None else _string(_stamp(instant)),
        kind=_string(kind),
        result=result,
        rulebook_version=_string(rulebook_version),
        run_id="null" if run_id is None else _string(run_id),
        v=VERSION,
    )
    return sha256(text)


_CONTENT_KEYS = ("asked_at", "batch", "caller", "id", "input", "instant", "kind", "result", "rulebook_version",
                 "run_id", "v")  # fmt: skip
assert list(_CONTENT_KEYS) == sorted(_CONTENT_KEYS)
_CONTENT = "{{" + ",".join(f'"{key}":{{{key}}}' for key in _CONTENT_KEYS) + "}}"  # a str.format template


def batch_content(rows: int, questions: bytes, answers: bytes) -> dict[str, Any]:
    """A batch's tables in the content: the Arrow IPC bytes as stored are the record, so their digests."""
    return {"answers": sha256(answers), "questions": sha256(questions), "rows": rows}


@dataclass(frozen=True, slots=True)
class CanonicalTemplate:
    """An answer template in canonical form, so a templated answer's canonical JSON costs a few joins.

    Canonical serialisation is compositional: replacing a string value by another value in a parsed
    object and serialising gives the template's canonical text with that value's canonical text in the
    gap's place, provided no gap is an object key (key order would then depend on the value).
    """

    pieces: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def of(cls, body: str, gaps: frozenset[str]) -> CanonicalTemplate | None:
        """The canonical form of a template's text, or None if a gap is a key (the slow path then applies)."""
        parsed = safejson.loads(body)
        if _gap_in_a_key(parsed):
            return None
        text = canonical(parsed)
        markers = {canonical(gap(name)): name for name in gaps}
        if not markers:
            return cls((text,), ())
        split = re.split("(" + "|".join(re.escape(marker) for marker in markers) + ")", text)
        return cls(tuple(split[0::2]), tuple(markers[marker] for marker in split[1::2]))

    def fill(self, values: Mapping[str, Any]) -> str:
        """The canonical JSON of the answer these (parsed, stored-form) gap values make."""
        try:
            filled = [canonical(values[name]) for name in self.names]
        except KeyError as exc:
            raise ChainError(f"no value for the template's gap {exc}") from None
        except ValueError as exc:
            raise ChainError(f"the answer does not read: {exc}") from None
        out = [self.pieces[0]]
        for value, piece in zip(filled, self.pieces[1:], strict=True):
            out += (value, piece)
        return "".join(out)


def _gap_in_a_key(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if any(_MARK in key for key in item):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class TemplateForms:
    """Canonical forms of answer templates, kept by digest (bounded: templates are few, but a store is long-lived)."""

    def __init__(self) -> None:
        self._forms: dict[str, CanonicalTemplate | None] = {}

    def answer(self, template: JSONTemplate, values: Mapping[str, Any]) -> str:
        """The canonical JSON of `template` filled with `values` (parsed, stored-form)."""
        form = self._forms.get(template.digest, self)
        if form is self:
            if len(self._forms) > 10_000:
                self._forms.clear()
            try:
                form = CanonicalTemplate.of(template.text, template.gaps)
            except ValueError as exc:
                raise ChainError(f"the answer template is not JSON: {exc}") from None
            self._forms[template.digest] = form
        if isinstance(form, CanonicalTemplate):
            return form.fill(values)
        try:  # a gap in a key: fill the text, then serialise it canonically
            return canonical(safejson.loads(template.fill(values)))
        except KeyError as exc:
            raise ChainError(f"no value for the template's gap {exc}") from None
        except ValueError as exc:
            raise ChainError(f"the answer does not read: {exc}") from None

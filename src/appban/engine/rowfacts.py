"""A row's facts as tables bring them: a `facts` cell holding a JSON object or `NAME=VALUE;NAME=VALUE`, and
cells of columns named after a fact. Both end in what decide() takes as `facts`, checked by parse_facts(), so
an unknown fact or a value that is not true or false is refused in the same words as everywhere else."""

from __future__ import annotations

from typing import Any

from appban.engine.decide import DecisionInputError, parse_facts
from appban.rulebook.loader import Rulebook
from appban.safejson import UnsafeJSON
from appban.safejson import loads as safe_loads

_SHOWN = 60  # characters of a malformed pair shown back: the cell came from outside and may be long
_FORMS = "facts are a JSON object or NAME=VALUE pairs separated by ';'"


def facts_from_text(rulebook: Rulebook, text: str) -> dict[str, bool | str]:
    """The facts a `facts` cell names; an empty cell names none."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            parsed = safe_loads(text)
        except UnsafeJSON as exc:
            raise DecisionInputError("facts", f"not a JSON object: {exc}") from None
        if not isinstance(parsed, dict):
            raise DecisionInputError("facts", "not a JSON object")
        return parse_facts(rulebook, parsed)
    pairs: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue  # "a=true;" and "a=true; ;b=no" are read as they are meant
        name, equals, value = (piece.strip() for piece in part.partition("="))
        if not equals or not name:
            shown = part.strip()
            shown = shown if len(shown) <= _SHOWN else shown[:_SHOWN] + "…"
            raise DecisionInputError("facts", f"{shown!r} is not NAME=VALUE ({_FORMS})")
        if pairs.get(name, value) != value:
            raise DecisionInputError("facts", f"fact {name!r} is given twice, as {pairs[name]!r} and {value!r}")
        pairs[name] = value
    return parse_facts(rulebook, pairs)


def fact_from_cell(rulebook: Rulebook, name: str, value: Any) -> bool | str | None:
    """A cell of the column named after fact `name`: its value, or None (unknown) for an empty cell."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_facts(rulebook, {name: value})[name]

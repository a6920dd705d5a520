"""JSON from untrusted input: bounded nesting, bounded numbers, one error type.

The standard parser recurses once per nesting level, so a few kilobytes of `[[[[...` end in a
RecursionError, and anything that later walks a parsed value recursively (dumping it again, converting it to
Arrow) can fail the same way at a lower depth. Here the recursion error becomes an ordinary parse error and
values nested beyond MAX_DEPTH are refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Deeper than any record, export or manifest appban reads; far below the interpreter's recursion limit.
MAX_DEPTH = 64


class UnsafeJSON(ValueError):
    """Text that is not JSON, or JSON nested or sized beyond what appban reads."""


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply arrays and objects nest in a parsed value (walked without recursion); stops counting
    once `limit` is exceeded."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _constant(name: str) -> Any:
    raise UnsafeJSON(f"{name} is not JSON")


# One decoder for every call: building one per call costs more than parsing a short line.
_DECODER = json.JSONDecoder(parse_constant=_constant)


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON that came from outside. Raises UnsafeJSON (a ValueError) for anything not plain JSON:
    bad syntax, nesting deeper than `max_depth`, NaN/Infinity, integers beyond CPython's 4,300-digit limit.
    Numbers are otherwise returned as parsed (an int may exceed 64 bits; 1e999 is inf): callers that
    store them check their range."""
    try:
        if isinstance(text, bytes | bytearray):
            text = text.decode(json.detect_encoding(text), "replace")  # as every reader does: U+FFFD
        value = _DECODER.decode(text)
    except UnsafeJSON:
        raise
    except RecursionError:
        raise UnsafeJSON(f"nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        raise UnsafeJSON(str(exc)) from None
    if _could_nest_beyond(text, max_depth) and nesting_depth(value, max_depth) > max_depth:
        raise UnsafeJSON(f"nested more than {max_depth} levels deep")
    return value


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")


def _could_nest_beyond(text: str | bytes, limit: int) -> bool:
    """A fast, exact-or-over estimate done in C: drop strings and everything but brackets, then peel the
    innermost pairs `limit` times. Anything left was nested deeper (or the text did not parse)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(limit):
        peeled = _EMPTY_PAIR.sub("", brackets)
        if not peeled:
            return False
        brackets = peeled
    return True

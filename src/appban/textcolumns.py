"""Columns of a Parquet file, in whatever type its writer chose, as values appban's readers can use.

Readers expect text, numbers or instants in each cell. Parquet may hold anything: dictionary-encoded or
large strings and raw bytes are read as text (bytes that are not UTF-8 are replaced, as in text logs);
numbers, decimals, dates, times, durations and nulls are kept for the reader to convert or reject row by
row. Lists, structs, maps and unions have no single value a cell could stand for: a column of such a type
is refused up front, naming the file and the column, instead of failing deep inside a conversion.

JSON text may also hold what no UTF-8 column can: a `\\ud800` escape with no partner parses to a lone
surrogate, which Arrow and every UTF-8 writer refuse. `without_surrogates` replaces those (U+FFFD), as bytes
that are not UTF-8 are replaced, so every JSON reader keeps the rest of the row.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import pyarrow as pa


class UnreadableColumn(ValueError):
    """A column whose type holds no text, number or instant; the message names file and column."""


def type_problem(kind: Any) -> str | None:
    """Why a column of Arrow type `kind` cannot be read as text, or None when it can."""
    if pa.types.is_dictionary(kind):
        return type_problem(kind.value_type)
    nested = pa.types.is_nested(kind) or pa.types.is_union(kind)
    if nested or pa.types.is_interval(kind) or isinstance(kind, pa.ExtensionType):
        return f"holds {kind} values, not text, numbers or instants"
    return None


def check_columns(schema: Any, wanted: Iterable[str], path: Path | str) -> None:
    """Raise UnreadableColumn when a wanted column cannot be read: its type holds no single value, or its
    name appears twice (which of the two was meant cannot be told). Absent columns are the caller's concern."""
    counts = Counter(schema.names)
    for name in dict.fromkeys(wanted):
        if counts[name] > 1:
            raise UnreadableColumn(f"{path}: column {name!r}: appears {counts[name]} times; rename all but one")
        if counts[name] == 1:
            problem = type_problem(schema.field(name).type)
            if problem is not None:
                raise UnreadableColumn(f"{path}: column {name!r}: {problem}")


def readable(values: Any) -> Any:
    """`values` (an array of a type `type_problem` accepts) with text-like types turned into strings."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    kind = values.type
    if pa.types.is_dictionary(kind):
        return readable(values.dictionary_decode())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        # Parquet and Arrow files are not checked for UTF-8 as they are read; bytes that are not UTF-8 are
        # replaced here, as in every other reader, rather than fail whoever decodes them later.
        text = values if pa.types.is_string(kind) else values.cast(pa.string())
        try:
            text.validate(full=True)
        except pa.ArrowInvalid:
            return _decoded(text.view(pa.binary()))
        return text
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return _decoded(values)
    if pa.types.is_binary_view(kind):
        return _decoded(values.cast(pa.binary()))
    return values


def as_text(values: Any) -> Any:
    """`values` as an Arrow string array (numbers and instants written as Arrow writes them)."""
    values = readable(values)
    return values if pa.types.is_string(values.type) else values.cast(pa.string())


def _decoded(values: Any) -> Any:
    try:
        return values.cast(pa.string())
    except pa.ArrowInvalid:  # bytes that are not UTF-8: replaced, the rest of the value kept
        return pa.array([None if v is None else v.decode("utf-8", "replace") for v in values.to_pylist()], pa.string())


def unique_names(names: Iterable[str]) -> list[str]:
    """The names, with each repeat of an earlier one suffixed " (2)", " (3)", ... so every column can be told
    apart; the first keeps its name."""
    seen: Counter[str] = Counter()
    taken = set(names := list(names))
    out = []
    for name in names:
        seen[name] += 1
        if seen[name] == 1:
            out.append(name)
            continue
        number = seen[name]
        while f"{name} ({number})" in taken:
            number += 1
        out.append(f"{name} ({number})")
        taken.add(out[-1])
    return out


# A `\\uD800`-`\\uDFFF` escape (a pair parses to one character; only a lone half is left a surrogate), a
# surrogate already in the text, or the bytes one has when bytes are decoded with "surrogatepass".
_SURROGATE_TEXT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def could_hold_surrogates(text: str | bytes) -> bool:
    """Whether JSON parsed from `text` might hold a lone surrogate: a search done in C, so that the walk
    of `without_surrogates` is paid only by text that needs it."""
    found = _SURROGATE_TEXT.search(text) if isinstance(text, str) else _SURROGATE_BYTES.search(text)
    return found is not None


def without_surrogates(value: Any) -> Any:
    """A parsed JSON value with every lone surrogate in its strings and keys replaced by U+FFFD. Recursive:
    callers pass values whose nesting safejson has bounded."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {without_surrogates(key): without_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_surrogates(item) for item in value]
    return value


def python_values(values: Any) -> list[Any]:
    """`values.to_pylist()`, except that a value Python's datetime types cannot hold (a timestamp or date
    past year 9999, a duration past 999,999,999 days) comes as the text Arrow writes for it ("<value out of
    range: N>"), not an OverflowError. Only a column holding such a value is converted value by value."""
    try:
        return cast(list[Any], values.to_pylist())
    except (OverflowError, ValueError):
        pass
    if isinstance(values, pa.ChunkedArray):
        return [item for chunk in values.chunks for item in python_values(chunk)]
    return [python_value(values, row) for row in range(len(values))]


def python_value(values: Any, row: int) -> Any:
    """`values[row].as_py()`, with a value out of Python's datetime range written as text (see python_values)."""
    try:
        return values[row].as_py()
    except (OverflowError, ValueError):
        one = values.slice(row, 1)
        return one.cast(_temporal_as_text(one.type))[0].as_py()


def _temporal_as_text(kind: Any) -> Any:
    """`kind` with every date, time, timestamp and duration in it (inside lists, structs and maps too) a string."""
    if pa.types.is_temporal(kind):
        return pa.string()
    if pa.types.is_dictionary(kind):
        return _temporal_as_text(kind.value_type)
    if pa.types.is_map(kind):
        return pa.map_(_temporal_as_text(kind.key_type), _temporal_as_text(kind.item_type))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return pa.list_(_temporal_as_text(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([field.with_type(_temporal_as_text(field.type)) for field in kind])
    return kind

"""decide_table(): the same decisions as decide(), for millions of rows at once.

The work is per distinct value and per distinct question, never per row in Python: each key column is
dictionary-encoded and its distinct values resolved once; rows are numbered by their combination of codes
(a mixed-radix number marked in a dense table, or sorted when the combinations are too many for one); each
distinct question is looked up in the law compiled once per rulebook (`appban.engine.compiled`); and every
row is answered by one binary search for its epoch and integer gathers of answer ids. The compiled answers
come from `evaluate()` itself, so the batch form agrees with the scalar form by construction.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from appban.engine.compiled import CATEGORIES, ENFORCEMENTS, VERDICTS, compiled
from appban.engine.decide import (
    DecisionInputError,
    default_rulebook,
    resolve_category,
    resolve_place,
    resolve_subject,
)
from appban.engine.instants import ROW_ZONE_FIX, InstantError, parse_instant
from appban.engine.rowfacts import fact_from_cell, facts_from_text
from appban.rulebook.loader import Rulebook

INPUT_COLUMNS = ("app", "transaction", "where", "at")
OUTPUT_COLUMNS = ("verdict", "as_written", "enforcement", "rule_ids")
# The instants parse_instant() accepts (years 0001 to 9999 in UTC), as seconds since 1970.
_FIRST_SECOND = int(dt.datetime(1, 1, 1, tzinfo=dt.UTC).timestamp())
_LAST_SECOND = int(dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp())
_TEXT_COLUMNS = ("app", "transaction", "where", "facts", "tz")
_MAX_BAD_VALUES = 100  # distinct bad values reported per column; checking stops there
# Distinct zones a table's `tz` column may name for instants without an offset: each is read in one pass of its
# own, and there are about 600 IANA zones; a column of a million made-up names is refused, not looked up.
_MAX_ZONES = 1_000
_SHOWN_CHARS = 300  # of one error line: a row's value came from outside and may be megabytes long
# Combinations of key codes numbered through a dense table of this many entries at most (a byte and an int32
# each); beyond it they are sorted instead.
_DENSE_COMBINATIONS = 1 << 21


@dataclass(frozen=True)
class RowError:
    row: int  # 0-based row of the input table
    column: str
    value: Any
    message: str


class TableInputError(ValueError):
    def __init__(self, errors: list[RowError], total: int, unit: str = "row"):
        self.errors = errors
        self.total = total
        lines = [_cut(f"{unit} {e.row}: {e.column}: {e.message}") for e in errors[:20]]
        if total > len(errors[:20]):
            lines.append(f"... {total - len(errors[:20])} more")
        super().__init__("\n".join(lines))


def _cut(line: str) -> str:
    return line if len(line) <= _SHOWN_CHARS else line[:_SHOWN_CHARS] + "…"


def _encode(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[Any]]:
    """Dictionary codes per row (-1 for null) and the distinct values, so work is per value, not per row."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_null(column.type):
        return np.full(len(column), -1, dtype=np.int64), []
    encoded = column if pa.types.is_dictionary(column.type) else column.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    if encoded.null_count:
        codes = np.where(encoded.is_valid().to_numpy(zero_copy_only=False), codes, -1)
    return codes.astype(np.int64), encoded.dictionary.to_pylist()


def _seconds(column: pa.ChunkedArray | pa.Array, tz: str | None, errors: list[RowError]) -> np.ndarray:
    """The `at` column as int64 UTC seconds (floored); bad rows are reported and set to 0."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    stamps: pa.Array | None = None
    if pa.types.is_timestamp(kind):
        stamps = column
        if kind.tz is None:
            if tz is None:
                errors.append(RowError(0, "at", None, f"timestamps have no time zone; {ROW_ZONE_FIX}"))
                return np.zeros(len(column), dtype=np.int64)
            try:
                stamps = pc.assume_timezone(column, timezone=tz)
            except (pa.ArrowInvalid, ValueError) as exc:
                errors.append(RowError(0, "at", None, f"cannot read the timestamps in {tz!r}: {exc}"))
                return np.zeros(len(column), dtype=np.int64)
    elif _is_text(kind):
        stamps = _cast_text(column, tz)
        if stamps is None:
            return _seconds_slow(column, tz, errors)
    elif pa.types.is_null(kind):
        errors.extend(RowError(row, "at", None, "missing instant") for row in range(min(len(column), 100)))
        return np.zeros(len(column), dtype=np.int64)
    else:
        errors.append(RowError(0, "at", None, f"column type {kind} is not a timestamp or ISO 8601 text"))
        return np.zeros(len(column), dtype=np.int64)
    unit = stamps.type.unit
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    raw = pc.cast(stamps, pa.int64()).to_numpy(zero_copy_only=False)
    valid = stamps.is_valid().to_numpy(zero_copy_only=False) if stamps.null_count else np.ones(len(raw), bool)
    for row in np.flatnonzero(~valid)[:100]:
        errors.append(RowError(int(row), "at", None, "missing instant"))
    seconds: np.ndarray = np.floor_divide(np.where(valid, raw, 0), per_second).astype(np.int64)
    # Arrow reads instants Python's calendar cannot hold (0001-01-01T00:00:00+14:00): the same error as decide().
    outside = valid & ((seconds < _FIRST_SECOND) | (seconds > _LAST_SECOND))
    if outside.any():
        rows = np.flatnonzero(outside)[:100].tolist()
        # Text is shown as sent; a timestamp this far out has no Python value to show.
        shown = column.take(pa.array(rows)).to_pylist() if _is_text(kind) else [None] * len(rows)
        for row, value in zip(rows, shown, strict=True):
            what = "the instant" if value is None else f"{value!r:.66}"
            errors.append(RowError(row, "at", value, f"{what} falls outside the years 0001 to 9999 in UTC"))
        seconds[outside] = 0
    return seconds


def _zoned_seconds(
    column: pa.ChunkedArray, zones: pa.ChunkedArray | None, tz: str | None, errors: list[RowError]
) -> np.ndarray:
    """`_seconds()` with a zone per row: a row's `tz` (when not empty), else `tz`. The rows are read a zone at a
    time, each zone's rows in one vectorised pass, unless every instant has an offset and needs no zone."""
    if zones is None:
        return _seconds(column, tz, errors)
    zone_codes, zone_names = _encode(zones)
    named = [str(name) or tz for name in zone_names] + [tz]  # the last entry stands for a missing zone
    groups: dict[str | None, int] = {}
    group_of_code = np.array([groups.setdefault(name, len(groups)) for name in named], dtype=np.int64)
    group_of_row = group_of_code[zone_codes]  # code -1 picks the last entry
    if len(groups) == 1:
        return _seconds(column, next(iter(groups)), errors)
    values = column.combine_chunks()
    kind = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
    if pa.types.is_timestamp(kind) and kind.tz is not None:
        return _seconds(values, None, errors)  # as decide() does, a zone is not read when the offset is given
    if _is_text(kind):
        text = values.cast(kind)
        if _offset_first(text) and _cast_utc(text) is not None:
            return _seconds(text, None, errors)
    counts = np.bincount(group_of_row, minlength=len(groups))
    used = np.flatnonzero(counts)  # zones only named by rows that are not in this table are not read
    if len(used) > _MAX_ZONES:
        beyond = np.isin(group_of_row, used[_MAX_ZONES:])
        row = int(np.flatnonzero(beyond)[0])
        message = f"more than {_MAX_ZONES:,} distinct time zones for instants without an offset"
        errors.append(RowError(row, "tz", None, message))
        return np.zeros(len(values), dtype=np.int64)
    order = np.argsort(group_of_row, kind="stable")
    ends = np.cumsum(counts)
    seconds = np.zeros(len(values), dtype=np.int64)
    for zone, group in groups.items():
        rows = order[ends[group] - counts[group] : ends[group]]
        if not len(rows):
            continue
        found: list[RowError] = []
        seconds[rows] = _seconds(values.take(pa.array(rows)), zone, found)
        errors.extend(RowError(int(rows[e.row]), e.column, e.value, e.message) for e in found)
    return seconds


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _cast_text(column: pa.Array, tz: str | None) -> pa.Array | None:
    """ISO 8601 text as timestamps, read by Arrow; None when some value needs Python's reading (or is bad)."""
    # A cast that fails costs Arrow about as much as twenty that succeed: the likelier one is tried first, as
    # the first value suggests. Which one succeeds does not depend on the order: instants with an offset fail
    # the local reading, and instants without one the UTC reading.
    if tz is not None and not _offset_first(column):
        local = _cast_local(column, tz)
        return local if local is not None else _cast_utc(column)
    found = _cast_utc(column)
    return found if found is not None or tz is None else _cast_local(column, tz)


def _cast_utc(column: pa.Array) -> pa.Array | None:
    # Microseconds reach every year Python's calendar holds; nanoseconds keep 7 to 9 fractional digits.
    for unit in ("us", "ns"):
        try:
            cast: pa.Array = pc.cast(column, pa.timestamp(unit, tz="UTC"))
            return cast
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return None


def _cast_local(column: pa.Array, tz: str) -> pa.Array | None:
    try:
        local: pa.Array = pc.assume_timezone(pc.cast(column, pa.timestamp("us")), timezone=tz)
        return local
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return None


def _offset_first(column: pa.Array) -> bool:
    """Whether the first instant given ends in an offset (a guess at the others, for the order of casts)."""
    valid = column.is_valid().to_numpy(zero_copy_only=False) if column.null_count else None
    if valid is not None and not valid.any():
        return True
    first = column[int(np.argmax(valid)) if valid is not None else 0].as_py() if len(column) else None
    if not isinstance(first, str):
        return True
    try:
        return dt.datetime.fromisoformat(first.strip().replace("Z", "+00:00").replace("z", "+00:00")).tzinfo is not None
    except ValueError:
        return True


def _seconds_slow(column: pa.Array, tz: str | None, errors: list[RowError]) -> np.ndarray:
    """parse_instant() once per distinct value; a bad value is reported at its first row, with its count."""
    codes, values = _encode(column)
    parsed = np.zeros(len(values) + 1, dtype=np.int64)  # the last entry stands for a missing value
    for index, value in enumerate(values):
        try:
            parsed[index] = int(np.floor(parse_instant(value, tz, zone_fix=ROW_ZONE_FIX).timestamp()))
        except InstantError as exc:
            bad = np.flatnonzero(codes == index)
            more = f" ({len(bad)} rows)" if len(bad) > 1 else ""
            errors.append(RowError(int(bad[0]), "at", value, f"{exc}{more}"))
    for row in np.flatnonzero(codes < 0)[:100]:
        errors.append(RowError(int(row), "at", None, "missing instant"))
    out: np.ndarray = parsed[codes]  # code -1 picks the last entry
    return out


def _check_types(table: pa.Table, fact_columns: list[str]) -> list[RowError]:
    """Columns that hold what decide_table() reads, each named once: text (or, for `at`, timestamps; for a
    fact, true/false or 1/0 as Parquet and CSV readers type them)."""
    errors: list[RowError] = []
    names = table.column_names
    counts = Counter(names)  # one pass: a header line of tens of thousands of names is no reason to hang
    for name in sorted(n for n in {*INPUT_COLUMNS, *_TEXT_COLUMNS, *fact_columns} if counts[n] > 1):
        errors.append(RowError(0, name, None, f"the column appears {counts[name]} times"))
    for name in (*_TEXT_COLUMNS, *fact_columns):
        if counts[name] != 1:
            continue
        kind = table.schema.field(name).type
        value_kind = kind.value_type if pa.types.is_dictionary(kind) else kind
        if _is_text(value_kind) or pa.types.is_null(value_kind):
            continue
        if name in _TEXT_COLUMNS:
            errors.append(RowError(0, name, None, f"column type {kind} is not text"))
        elif not (pa.types.is_boolean(value_kind) or pa.types.is_integer(value_kind)):
            errors.append(RowError(0, name, None, f"column type {kind} is not true/false, 1/0 or text"))
    return errors


def _codes_for(
    column: pa.ChunkedArray, name: str, convert: Any, errors: list[RowError], *, optional: bool = False
) -> tuple[np.ndarray, list[Any]]:
    """Dictionary codes of column `name` and each distinct value converted; a value `convert` refuses is
    reported once, at its first row with its count, and so is a missing one unless the column is optional."""
    codes, values = _encode(column)
    mapped: list[Any] = [None] * len(values)
    bad: list[tuple[int, str]] = []  # (value index, message)
    for index, value in enumerate(values):
        try:
            mapped[index] = convert(value)
        except DecisionInputError as exc:
            bad.append((index, str(exc).split(": ", 1)[1]))
            if len(bad) == _MAX_BAD_VALUES:  # a batch of distinct bad values: enough has been said
                break
    if bad:
        # Each bad value's first row and count, from one pass over the codes (not one per value).
        found, first, counts = np.unique(codes, return_index=True, return_counts=True)
        for index, message in bad:
            at = int(np.searchsorted(found, index))
            more = f" ({counts[at]} rows)" if counts[at] > 1 else ""
            errors.append(RowError(int(first[at]), name, values[index], message + more))
    if not optional:
        for row in np.flatnonzero(codes < 0)[:100]:
            errors.append(RowError(int(row), name, None, "missing value"))
    return codes, mapped


def _dense(columns: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """One code per row for the combination of several columns' codes (each with its count of values).
    The codes are combined a column at a time and made dense again, so that their product cannot overflow."""
    combined = columns[0][0]
    for codes, count in columns[1:]:
        _, dense = np.unique(combined, return_inverse=True)
        combined = dense.astype(np.int64).reshape(-1) * count + codes
    return combined


def _combinations(columns: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per row the number of its distinct combination of the columns' codes (each column with its count of
    values, every code valid), and per combination each column's code; combinations are numbered in the
    order np.unique would give them. When the combinations fit a dense table they are marked in it (two
    passes over the rows, no sort); otherwise they are sorted."""
    counts = [max(count, 1) for _, count in columns]
    if math.prod(counts) <= _DENSE_COMBINATIONS:
        combined = columns[0][0]
        for codes, count in columns[1:]:
            combined = combined * count + codes
        present = np.zeros(math.prod(counts), dtype=bool)
        present[combined] = True
        found = np.flatnonzero(present)
        number = np.zeros(len(present), dtype=np.int64)
        number[found] = np.arange(len(found))
        key_of_row: np.ndarray = number[combined]
        per_key = []
        for count in reversed(counts):  # the mixed-radix digits back, last column first
            found, digit = np.divmod(found, count)
            per_key.append(digit)
        return key_of_row, per_key[::-1]
    _, first_row, inverse = np.unique(_dense(columns), return_index=True, return_inverse=True)
    return inverse.reshape(-1), [codes[first_row] for codes, _ in columns]


def _row_facts(
    table: pa.Table, rulebook: Rulebook, fact_columns: list[str], errors: list[RowError]
) -> tuple[np.ndarray, list[str]]:
    """Per row, a code into the distinct fact sets (each as decide()'s `facts`, in JSON with sorted keys),
    from the `facts` column and the columns named after a fact. A fact given both ways with different values
    is an error at the first row of each such combination."""
    n = table.num_rows
    if "facts" in table.column_names:
        convert = lambda v: facts_from_text(rulebook, str(v))  # noqa: E731
        text_codes, text_facts = _codes_for(table.column("facts"), "facts", convert, errors, optional=True)
    else:
        text_codes, text_facts = np.full(n, -1, dtype=np.int64), []
    if not fact_columns:  # the common case: no combination to work out
        texts = [json.dumps(facts, sort_keys=True) if facts is not None else "{}" for facts in text_facts]
        return np.where(text_codes < 0, len(text_facts), text_codes), [*texts, "{}"]
    sources = [(text_codes + 1, len(text_facts) + 1)]  # code 0 stands for an empty cell
    cells: list[tuple[str, np.ndarray, list[Any]]] = []
    for name in fact_columns:
        read = lambda v, name=name: fact_from_cell(rulebook, name, v)  # noqa: E731
        codes, values = _codes_for(table.column(name), name, read, errors, optional=True)
        cells.append((name, codes, values))
        sources.append((codes + 1, len(values) + 1))
    _, first_rows, combination = np.unique(_dense(sources), return_index=True, return_inverse=True)
    combination = combination.reshape(-1)
    counts = np.bincount(combination, minlength=len(first_rows))
    keys: dict[str, int] = {}  # combinations that come to the same facts are one question
    key_of_combination = np.zeros(len(first_rows), dtype=np.int64)
    for index, row in enumerate(first_rows.tolist()):
        given = text_facts[text_codes[row]] if text_codes[row] >= 0 else None
        facts = dict(given or {})
        for name, codes, values in cells:
            value = values[codes[row]] if codes[row] >= 0 else None
            if value is None:
                continue
            if name in facts and facts[name] != value:
                more = f" ({counts[index]} rows)" if counts[index] > 1 else ""
                said, other = json.dumps(value), json.dumps(facts[name])
                errors.append(RowError(row, name, None, f"{said} here, but {other} in the facts column{more}"))
            facts[name] = value
        key_of_combination[index] = keys.setdefault(json.dumps(facts, sort_keys=True), len(keys))
    return key_of_combination[combination], list(keys)


def decide_table(
    table: pa.Table,
    *,
    tz: str | None = None,
    rulebook: Rulebook | None = None,
    max_questions: int | None = None,
    later: bool = False,
) -> pa.Table:
    """Decide every row of a table with columns app, transaction, where, at (and optional facts, tz and
    columns named after a fact), each row as decide() would decide it alone.

    Returns the input with `verdict`, `as_written`, `enforcement` and `rule_ids` appended; the
    rulebook version is in the schema metadata. `facts`, if present, holds per row a JSON object or
    `NAME=VALUE;NAME=VALUE`; a column named after a fact holds true/false, yes/no or 1/0 (empty: unknown),
    and must agree with `facts` where both name it. `tz`, if present, is the zone of the row's `at` when that
    has no offset; the `tz` argument stands in for rows without one.
    With `later`, a `later` column lists per row the instruments made after its instant that would change its
    answer (decide()'s coming changes, by id); it never changes the other columns.
    Raises TableInputError listing the bad rows when any value is unknown or malformed, or when the table
    asks more than `max_questions` distinct questions (app, transaction, place class and facts): each one is
    compiled at about a millisecond, so a server bounds the work one request can ask for.
    """
    rulebook = rulebook or default_rulebook()
    missing = [name for name in INPUT_COLUMNS if name not in table.column_names]
    if missing:
        raise TableInputError([RowError(0, name, None, "column is missing") for name in missing], len(missing))
    fact_columns = [name for name in dict.fromkeys(table.column_names) if name in rulebook.facts.facts]
    wrong = _check_types(table, fact_columns)
    if wrong:
        raise TableInputError(wrong, len(wrong))
    law = compiled(rulebook)
    errors: list[RowError] = []

    app_codes, subjects = _codes_for(table.column("app"), "app", lambda v: resolve_subject(rulebook, str(v)), errors)
    tx_codes, categories = _codes_for(table.column("transaction"), "transaction", resolve_category, errors)
    where_codes, places = _codes_for(table.column("where"), "where", lambda v: resolve_place(str(v)), errors)
    fact_codes, fact_keys = _row_facts(table, rulebook, fact_columns, errors)
    zones = table.column("tz") if "tz" in table.column_names else None
    seconds = _zoned_seconds(table.column("at"), zones, tz, errors)
    if errors:
        errors.sort(key=lambda e: e.row)
        raise TableInputError(errors[:100], len(errors))

    # One number per row for its combination of codes: work per distinct question, not per row.
    columns = [(app_codes, len(subjects)), (tx_codes, len(categories)), (where_codes, len(places))]
    key_of_row, key_codes = _combinations([*columns, (fact_codes, len(fact_keys))])
    if max_questions is not None and len(key_codes[0]) > max_questions:
        first_row = np.unique(key_of_row, return_index=True)[1]
        message = f"{len(first_row):,} distinct questions (app, transaction, where, facts); at most {max_questions:,}"
        raise TableInputError([RowError(int(np.sort(first_row)[max_questions]), "*", None, message)], 1)
    # Each distinct value resolved to the compiled law's ids once, then each question's ids by gathering.
    subject_of_code = np.array([law.subject_id(s) for s in subjects], dtype=np.int64)
    category_of_code = np.array([CATEGORIES.index(c) for c in categories], dtype=np.int64)
    class_of_code = np.array([law.place_class(p) for p in places], dtype=np.int64)
    facts_of_code = np.array([law.facts_id(f) for f in fact_keys], dtype=np.int64)
    a, t, w, f = key_codes
    found = law.lookup(
        subject_of_code[a],
        category_of_code[t],
        class_of_code[w],
        facts_of_code[f],
        later=later,
    )
    # The row's epoch, then its cell in the (question, epoch) table of answer ids.
    width = found.answers.shape[1]
    epoch = np.searchsorted(found.epochs, seconds, side="right")
    cell = (found.rows * width)[key_of_row] + epoch
    answer = found.answers.reshape(-1)[cell]

    def dictionary(codes: np.ndarray, names: list[str]) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(codes[answer]), pa.array(names))

    # A table decided before (e.g. a re-run over an earlier output) gets fresh decisions, not duplicates.
    out = table.drop_columns([name for name in (*OUTPUT_COLUMNS, "later") if name in table.column_names])
    out = out.append_column("verdict", dictionary(found.verdict, [v.value for v in VERDICTS]))
    out = out.append_column("as_written", dictionary(found.as_written, [v.value for v in VERDICTS]))
    out = out.append_column("enforcement", dictionary(found.enforcement, [e.value for e in ENFORCEMENTS]))
    out = out.append_column("rule_ids", found.rule_lists.take(pa.array(found.rules[answer])))
    if later:
        assert found.later is not None and found.later_lists is not None
        out = out.append_column("later", found.later_lists.take(pa.array(found.later.reshape(-1)[cell])))
    metadata = dict(out.schema.metadata or {})
    metadata[b"appban.rulebook_version"] = rulebook.version.encode()
    return out.replace_schema_metadata(metadata)

"""Whole lines of delimited text or JSON, and Parquet files, as Arrow columns with their line numbers."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from appban import safejson
from appban.reading.chunks import LineChunk, keep_lines
from appban.reading.stats import Columns, Lines, ReadStats
from appban.reading.values import flags, select, whole
from appban.textcolumns import check_columns, could_hold_surrogates, readable, without_surrogates


@dataclass(frozen=True)
class Delimited:
    """A delimited text layout: every field's name, the ones to keep, and how fields are written."""

    names: tuple[str, ...]
    include: tuple[str, ...]
    delimiter: str = ","
    quoted: bool = False
    nulls: tuple[str, ...] = ()
    # Arrow types for included fields the format declares (Zeek's `#types`): parsed as such, which is much
    # faster than strings converted later. A chunk where one value does not parse is read as strings.
    types: tuple[tuple[str, Any], ...] = ()


_SMALL_BYTES = 4096


def parse_delimited(
    data: bytes, numbers: Lines, spec: Delimited, path: Path, stats: ReadStats
) -> tuple[Columns, Lines]:
    """The `include` columns of whole lines of delimited text, one row per line: as strings, or as
    `spec.types` where every value of the chunk parses so.

    A line with the wrong number of fields is reported and dropped, a blank one silently. `numbers` are the
    lines' numbers.
    """
    if not data:
        return {name: pa.array([], pa.string()) for name in spec.include}, numbers
    if len(data) < _SMALL_BYTES:
        # Arrow's reader costs about a millisecond to set up, however few the lines: a file of many short
        # runs (a Zeek header block every line or two) would pay it per run.
        return _parse_delimited_slowly(data, numbers, spec, path, stats)
    invalid: list[tuple[int | None, int]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.number, row.actual_columns))
        return "skip"

    table = None
    # A blank line yields empty fields, which a typed column rejects unless "" means null.
    typed = [dict(spec.types)] if spec.types and "" not in spec.nulls else []
    for types in [*typed, {}]:
        invalid.clear()
        try:
            table = pacsv.read_csv(pa.py_buffer(data), **_csv_options(spec, len(data), on_invalid, types))
            break
        except pa.ArrowInvalid:
            continue
    # Arrow lets a quote opened on one line run on into the next; then rows no longer match lines.
    if table is None or table.num_rows + len(invalid) != len(numbers) or any(n is None for n, _ in invalid):
        return _parse_delimited_slowly(data, numbers, spec, path, stats)
    if invalid:
        rows = np.array([number for number, _ in invalid], dtype=np.int64) - 1
        stats.errors_at(path, numbers[rows], lambda i: _field_count(len(spec.names), invalid[i][1]))
        numbers = np.delete(numbers, rows)
    columns = {name: whole(table.column(name)) for name in spec.include}
    return _without_blank_rows(columns, numbers)


def _without_blank_rows(columns: Columns, numbers: Lines) -> tuple[Columns, Lines]:
    # Arrow turns a blank line into a row of empty strings (it never nulls them); dropping such rows here is
    # cheaper than finding blank lines in the text first.
    blank = None
    for values in columns.values():
        if not pa.types.is_string(values.type):
            return columns, numbers  # typed: a blank line would not have parsed (see parse_delimited)
        empty = pc.equal(pc.binary_length(values), 0)
        blank = empty if blank is None else pc.and_(blank, empty)
    if blank is None or not pc.any(blank).as_py():
        return columns, numbers
    keep = ~flags(blank)
    return select(columns, keep), numbers[keep]


def _csv_options(
    spec: Delimited, size: int, on_invalid: Callable[[Any], str], types: Mapping[str, Any]
) -> dict[str, Any]:
    # One block per chunk and one thread: the invalid-row handler then knows each row's number.
    return {
        "read_options": pacsv.ReadOptions(column_names=list(spec.names), block_size=size + 1, use_threads=False),
        "parse_options": pacsv.ParseOptions(
            delimiter=spec.delimiter,
            quote_char='"' if spec.quoted else False,
            ignore_empty_lines=False,
            newlines_in_values=False,
            invalid_row_handler=on_invalid,
        ),
        "convert_options": pacsv.ConvertOptions(
            include_columns=list(spec.include),
            column_types={name: types.get(name, pa.string()) for name in spec.include},
            null_values=list(spec.nulls),
            strings_can_be_null=bool(spec.nulls),
            quoted_strings_can_be_null=False,
            # The text is valid UTF-8 already (reading.chunks checks every chunk, or mends its bad lines), and
            # a field cut out of it at ASCII separators and quotes stays valid: Arrow's check would repeat it.
            check_utf8=False,
        ),
    }


def _field_count(expected: int, found: int) -> str:
    return f"expected {expected} fields, found {found}"


def _parse_delimited_slowly(
    data: bytes, numbers: Lines, spec: Delimited, path: Path, stats: ReadStats
) -> tuple[Columns, Lines]:
    # Python's csv module, one line at a time: for a short run, and for the rare chunk Arrow could not map
    # to its lines.
    dialect: dict[str, Any] = {"delimiter": spec.delimiter, "quotechar": '"'}
    if not spec.quoted:
        dialect = {"delimiter": spec.delimiter, "quoting": csv.QUOTE_NONE}
    wanted = [spec.names.index(name) for name in spec.include]
    values: list[list[str | None]] = [[] for _ in wanted]
    kept: list[int] = []
    for i, line in enumerate(data.decode("utf-8").split("\n")[:-1]):
        if not line.strip():
            continue
        try:
            fields = next(csv.reader([line.rstrip("\r")], **dialect), [])
        except csv.Error as exc:
            stats.error(path, int(numbers[i]), f"bad CSV: {exc}")
            continue
        if len(fields) != len(spec.names):
            stats.error(path, int(numbers[i]), _field_count(len(spec.names), len(fields)))
            continue
        kept.append(i)
        for column, index in zip(values, wanted, strict=True):
            column.append(None if fields[index] in spec.nulls else fields[index])
    columns = {name: pa.array(column, pa.string()) for name, column in zip(spec.include, values, strict=True)}
    return columns, numbers[kept]


def parse_json_lines(chunk: LineChunk, schema: Any, path: Path, stats: ReadStats) -> tuple[Columns, Lines]:
    """The `schema` fields of JSON objects, one per line (blank lines are ignored).

    Arrow parses the chunk when every line fits the schema's types; otherwise the chunk is parsed line by
    line, so one bad line costs only its own row and values of another type are kept as they are.
    """
    table = read_json_table(chunk.data, schema)
    if table is not None and table.num_rows == chunk.count:
        return {name: whole(table.column(name)) for name in schema.names}, chunk.numbers()
    data, numbers = keep_lines(chunk)  # Arrow skips blank lines: find which lines its rows are
    if table is not None and table.num_rows == len(numbers):
        return {name: whole(table.column(name)) for name in schema.names}, numbers
    return _parse_json_slowly(data, numbers, schema.names, path, stats)


def read_json_table(data: bytes, schema: Any) -> Any:
    """The lines as one Arrow table of the `schema` fields (others ignored), or None where any line does not fit."""
    try:
        return pajson.read_json(
            pa.py_buffer(data),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=False
            ),
        )
    except pa.ArrowInvalid:
        return None


def json_objects(data: bytes, numbers: Lines, path: Path, stats: ReadStats) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each line's JSON object with its index, for a chunk read line by line (blank lines already dropped): a
    line that is not a JSON object is reported as an error on its own line number and skipped."""
    for i, line in enumerate(data.split(b"\n")[:-1]):
        try:
            record = safejson.loads(line)
        except ValueError as exc:  # safejson.UnsafeJSON, and bytes that do not decode
            stats.error(path, int(numbers[i]), f"not JSON: {exc}")
            continue
        if not isinstance(record, dict):
            stats.error(path, int(numbers[i]), f"not a JSON object: {line[:60].decode('utf-8', 'replace')!r}")
            continue
        if could_hold_surrogates(line):
            record = without_surrogates(record)
        yield i, record


def _parse_json_slowly(
    data: bytes, numbers: Lines, names: Sequence[str], path: Path, stats: ReadStats
) -> tuple[Columns, Lines]:
    values: dict[str, list[Any]] = {name: [] for name in names}
    kept: list[int] = []
    for i, record in json_objects(data, numbers, path, stats):
        kept.append(i)
        for name in names:
            values[name].append(record.get(name))
    return {name: python_column(column) for name, column in values.items()}, numbers[kept]


def python_column(values: list[Any]) -> Any:
    """An Arrow array of JSON values; a column of mixed types becomes strings (JSON text for containers)."""
    plain = [v if v is None or isinstance(v, str | int | float | bool) else json.dumps(v) for v in values]
    try:
        return pa.array(plain)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in plain], pa.string())


def iter_parquet(path: Path, columns: Sequence[str], batch_rows: int) -> Iterator[tuple[Columns, Lines]]:
    """Some columns of a Parquet file, batch by batch, with each row's number + 1 as its line.

    Text-like columns (dictionary, large strings, bytes) come as strings. A column of a type that holds no
    single value (a list, struct or map), or one named twice, is refused before the first batch; a file that
    cannot be read raises a ValueError naming it.
    """
    try:
        parquet = pq.ParquetFile(str(path))
        check_columns(parquet.schema_arrow, columns, path)
        batches = parquet.iter_batches(batch_size=batch_rows, columns=list(dict.fromkeys(columns)))
        first = 1
        for batch in batches:
            values = {name: readable(batch.column(name)) for name in columns}
            yield values, np.arange(first, first + batch.num_rows, dtype=np.int64)
            first += batch.num_rows
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:  # names or metadata not UTF-8, too
        raise ValueError(f"{path}: cannot read this Parquet file: {exc}") from None


def parquet_columns(path: Path) -> list[str]:
    try:
        return list(pq.read_schema(str(path)).names)
    except (OSError, pa.ArrowException, UnicodeDecodeError):
        return []

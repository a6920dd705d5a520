"""Reading a whole input table (CSV, JSON, JSON Lines, Parquet) for `decide` and inventory screening.

Whatever a file holds ends in a table, a list of unreadable lines, or a TableReadError naming the file (and
the line or column): never a crash deep inside a parser. The reasons a line is unreadable: bytes that
stop it from parsing as CSV (a wrong number of fields, a field longer than Python's csv limit of 128 KiB),
a JSON line that is not an object, nests deeper than `safejson.MAX_DEPTH`, holds NaN or is longer than
MAX_LINE_CHARS. Bytes that are not UTF-8, and lone surrogates JSON escapes such as `\\ud800` stand for, are
replaced (U+FFFD), so the rest of their row is still read.

CSV goes through Arrow's reader when the file is plain; only a file Arrow refuses, or whose rows Arrow
would not map one-to-one onto lines (quoted line breaks, blank lines), is read again with Python's csv
module, which can say which line is at fault. JSON is parsed with appban.safejson, line by line.

Strict reads (`decide`) raise TableReadError listing the unreadable lines: a batch with a bad row decides
nothing. Lenient reads (screening) keep each unreadable line as a row of nulls whose READ_ERROR_COLUMN
says why, so that row numbers still map onto lines and the screener reports them and goes on.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from appban import safejson
from appban.textcolumns import (
    as_text,
    could_hold_surrogates,
    readable,
    type_problem,
    unique_names,
    without_surrogates,
)

TEXT_COLUMNS = ("app", "transaction", "where", "at", "facts", "tz")
#: The column a lenient read adds, only when some line could not be read: why, per such row (else null).
READ_ERROR_COLUMN = "appban:unreadable"
#: Longer lines are reported, not parsed (a CSV field is also bounded by the csv module's limit, 128 KiB).
MAX_LINE_CHARS = 1 << 20
#: A table is read whole (decide asks for every row at once): bigger files are refused, not swapped in.
#: A JSON document becomes Python objects first, about ten times its size, so its cap is lower.
MAX_TABLE_BYTES = int(os.environ.get("APPBAN_MAX_TABLE_BYTES", 2 << 30))
MAX_JSON_DOCUMENT_BYTES = min(MAX_TABLE_BYTES, 256 << 20)
#: Keys under which an API's page of a JSON document holds its records, the page's other keys (counts,
#: links) set aside: Microsoft Graph collections ("value", with "@odata.nextLink";
#: https://learn.microsoft.com/en-us/graph/api/resources/intune-devices-detectedapp), Jamf Pro API searches
#: ("results", with "totalCount"; GET /api/v1/computers-inventory, https://developer.jamf.com/jamf-pro/reference)
#: and Workspace ONE UEM device searches ("Devices", with "Page", "PageSize" and "Total"; GET /API/mdm/devices/search).
#: Any other object is one record.
PAGE_KEYS = ("value", "results", "Devices")
_SHOWN_ERRORS = 20
_BOM = b"\xef\xbb\xbf"


class TableReadError(ValueError):
    pass


@dataclass(frozen=True)
class BadLine:
    row: int  # 0-based row of the table the line would have been
    line: int
    message: str


def input_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in {".csv", ".tsv"}:
            return "csv"
        if suffix in {".jsonl", ".ndjson"}:
            return "jsonl"
        if suffix in {".parquet", ".pq"}:
            return "parquet"
        if suffix == ".json":
            return "json"
    raise TableReadError(f"{path}: unknown input format (use .csv, .json, .jsonl/.ndjson or .parquet)")


def read_table(path: Path, *, all_text: bool = False) -> pa.Table:
    """A whole input table, with the decision columns (or, with all_text, every column) read as text:
    never guessed as numbers, dates or nulls.

    all_text is the screening read, and lenient: unreadable lines come back as rows with READ_ERROR_COLUMN
    set. Otherwise any unreadable line raises TableReadError listing them.
    """
    fmt = input_format(path)
    if not path.is_file():
        raise TableReadError(f"{path}: no such file")
    try:
        if fmt == "parquet":
            return _read_parquet(path, all_text)
        size, cap = path.stat().st_size, MAX_JSON_DOCUMENT_BYTES if fmt == "json" else MAX_TABLE_BYTES
        if size > cap:
            hint = "; use JSON Lines" if fmt == "json" else " (APPBAN_MAX_TABLE_BYTES)"
            raise TableReadError(f"{path}: {size} bytes is over the {cap}-byte limit for a table read whole{hint}")
        data = path.read_bytes().removeprefix(_BOM)
        if fmt == "json":
            return _read_json_document(path, data, all_text)
        table, bad = _read_csv(path, data, all_text) if fmt == "csv" else _read_jsonl(data, all_text)
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:  # names or metadata not UTF-8
        raise TableReadError(f"{path}: {exc}") from None
    if not bad:
        return table
    if not all_text:
        raise TableReadError(_listing(path, bad))
    # A table of no columns has no rows either, though every line of the file was a bad one.
    errors: list[str | None] = [None] * max(table.num_rows, bad[-1].row + 1)
    for item in bad:
        errors[item.row] = f"line unreadable: {item.message}"
    if table.num_columns == 0:
        return pa.table({READ_ERROR_COLUMN: pa.array(errors, pa.string())})
    return table.append_column(READ_ERROR_COLUMN, pa.array(errors, pa.string()))


def _listing(path: Path, bad: list[BadLine]) -> str:
    lines = [f"{path}:{item.line}: {item.message}" for item in bad[:_SHOWN_ERRORS]]
    if len(bad) > _SHOWN_ERRORS:
        lines.append(f"... and {len(bad) - _SHOWN_ERRORS} more")
    return f"{len(bad)} unreadable line(s) in {path}; nothing was read:\n" + "\n".join(lines)


def _check_names(path: Path, names: list[str], all_text: bool) -> list[str]:
    """Names every column can be told apart by. A decision column named twice is an error (which one is
    meant?); other repeats get a suffix, " (2)"."""
    if READ_ERROR_COLUMN in names:
        raise TableReadError(f"{path}: column {READ_ERROR_COLUMN!r}: the name is reserved")
    if not all_text:
        for name in TEXT_COLUMNS:
            if names.count(name) > 1:
                raise TableReadError(f"{path}: column {name!r}: appears {names.count(name)} times; rename all but one")
    return unique_names(names)


# --- Parquet ---------------------------------------------------------------------------------------------------


def _read_parquet(path: Path, all_text: bool) -> pa.Table:
    table = pq.ParquetFile(path).read()  # read_table refuses a file with a column name repeated
    names = _check_names(path, table.column_names, all_text)
    columns = []
    for name, values in zip(names, table.columns, strict=True):
        problem = type_problem(values.type)
        if all_text:
            # Screening looks for names and identifiers in any column: a list or struct is searched as JSON.
            values = as_text(values) if problem is None else _json_text(values)
        elif name in TEXT_COLUMNS:
            objects = name == "facts" and (pa.types.is_struct(values.type) or pa.types.is_map(values.type))
            if problem is not None and not objects:  # facts may be objects: decisions read them as such
                raise TableReadError(f"{path}: column {name!r}: {problem}")
            values = values if objects else readable(values)
        columns.append(values)
    return pa.table(columns, names=names)


def _json_text(values: Any) -> Any:
    """Nested values as JSON text (anything JSON has no form for, such as bytes or dates, written with str)."""
    return pa.array(
        [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in values.to_pylist()],
        pa.string(),
    )


# --- CSV -------------------------------------------------------------------------------------------------------


def _read_csv(path: Path, data: bytes, all_text: bool) -> tuple[pa.Table, list[BadLine]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    text = data.decode("utf-8", "replace")
    rows = _csv_records(text, delimiter)
    header = next(rows, None)
    if header is None:
        raise TableReadError(f"{path}: empty file: no header line")
    if isinstance(header[1], str):
        raise TableReadError(f"{path}:{header[0]}: header line unreadable: {header[1]}")
    names = _check_names(path, [name.strip() for name in header[1]], all_text)
    starts = record_starts(data, delimiter)
    if starts is not None:
        table = _arrow_csv(data, names, delimiter, all_text, quoted=b'"' in data)
        if table is not None and table.num_rows == len(starts) - 1:
            return table, []
    return _python_csv(rows, names, all_text)


def record_starts(data: bytes, delimiter: str) -> np.ndarray | None:
    """The line each record of a CSV starts at (the header first), as the csv module counts them in
    _csv_records, worked out over the bytes at once; None when the file is not regular enough for that, and
    for Arrow to read it as the csv module would (it is then read line by line).

    Regular: lines end with LF or CRLF, none is over the cap, no NUL byte, the first byte is no space, and
    every quote opens a field, closes one (before a separator, a line end or the end), or is doubled inside
    one. Then a quote's meaning follows from how many come before it, and a line end is inside a quoted
    value exactly when an odd number of quotes precede it. A blank line (outside quotes) is no record.
    """
    if data[:1].isspace() or b"\0" in data or data.count(b"\r") != data.count(b"\r\n"):
        return None
    raw = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(raw == 0x0A)
    if int(np.diff(ends, prepend=-1, append=len(data)).max(initial=0)) > MAX_LINE_CHARS:
        return None
    quotes = np.flatnonzero(raw == 0x22)
    if len(quotes) % 2:
        return None
    if len(quotes):
        opening, closing = quotes[0::2], quotes[1::2]
        separator = ord(delimiter)
        before = np.where(opening > 0, raw[np.maximum(opening - 1, 0)], 0x0A)
        doubled_before = np.zeros(len(opening), bool)
        doubled_before[1:] = closing[:-1] == opening[1:] - 1
        if not np.all((before == separator) | (before == 0x0A) | doubled_before):
            return None
        after = np.where(closing + 1 < len(raw), raw[np.minimum(closing + 1, len(raw) - 1)], 0x0A)
        doubled_after = np.zeros(len(closing), bool)
        doubled_after[:-1] = opening[1:] == closing[:-1] + 1
        if not np.all((after == separator) | (after == 0x0A) | (after == 0x0D) | doubled_after):
            return None
        outside = np.searchsorted(quotes, ends) % 2 == 0
    else:
        outside = np.ones(len(ends), bool)
    # The line ends that end records (a blank line is a record of no fields, passed over), and the line each
    # record starts on: the one after the previous record's end.
    record_ends = ends[outside]
    first_lines = np.concatenate(([1], np.flatnonzero(outside) + 2)).astype(np.int64)
    begins = np.concatenate(([0], record_ends + 1)).astype(np.int64)
    stops = np.append(record_ends, len(data))  # the last "record" runs to the end, and is often empty
    length = stops - begins
    blank = (length == 0) | ((length == 1) & (raw[np.maximum(stops - 1, 0)] == 0x0D))
    starts: np.ndarray = first_lines[~blank]
    return starts


def _arrow_csv(data: bytes, names: list[str], delimiter: str, all_text: bool, quoted: bool) -> pa.Table | None:
    types = {name: pa.string() for name in names if all_text or name in TEXT_COLUMNS}
    try:
        return pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=quoted),
            # "NA" is Namibia and "IN" is India: only an empty cell is missing, quoted or not, as in _python_csv.
            convert_options=pacsv.ConvertOptions(
                column_types=types, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # read again, line by line, to say which line is at fault


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | str]]:
    """(the line a record starts at, its fields or why it cannot be read), skipping blank lines.

    Lines end with LF, CRLF or a bare CR, as the csv module reads them; a quoted field may span lines. A
    line longer than MAX_LINE_CHARS is read as a blank one, and the record holding it reported."""
    too_long: list[int] = []
    reader = csv.reader(_capped_lines(text, too_long), delimiter=delimiter)
    end = 0  # the last line the previous record took
    while True:
        try:
            fields: list[str] | str = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields = f"bad CSV: {exc}"
        if too_long and too_long[-1] > end:
            fields = f"line {too_long[-1]} longer than {MAX_LINE_CHARS} characters"
        if fields:
            yield end + 1, fields
        end = reader.line_num


def _capped_lines(text: str, too_long: list[int]) -> Iterator[str]:
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        if len(line) > MAX_LINE_CHARS:
            too_long.append(number)
            line = "\n"
        yield line


def _python_csv(
    rows: Iterator[tuple[int, list[str] | str]], names: list[str], all_text: bool
) -> tuple[pa.Table, list[BadLine]]:
    columns: list[list[str | None]] = [[] for _ in names]
    bad: list[BadLine] = []
    for row, (line, fields) in enumerate(rows):
        if isinstance(fields, list) and len(fields) != len(names):
            fields = f"expected {len(names)} fields, found {len(fields)}"
        if isinstance(fields, str):
            bad.append(BadLine(row, line, fields))
            fields = [""] * len(names)
        for column, value in zip(columns, fields, strict=True):
            column.append(value or None)
    arrays = [pa.array(values, pa.string()) for values in columns]
    table = pa.table(arrays, names=names)
    return (table if all_text else _infer(table)), bad


def _infer(table: pa.Table) -> pa.Table:
    """Columns other than the decision columns typed as Arrow's CSV reader would have typed them."""
    others = [name for name in table.column_names if name not in TEXT_COLUMNS]
    if not others or table.num_rows == 0:
        return table
    buffer = io.BytesIO()
    pacsv.write_csv(table.select(others), buffer)
    try:
        typed = pacsv.read_csv(pa.py_buffer(buffer.getvalue()), convert_options=pacsv.ConvertOptions(null_values=[""]))
    except pa.ArrowInvalid:
        return table
    for name in others:
        table = table.set_column(table.column_names.index(name), name, typed.column(name))
    return table


def csv_record_lines(path: Path) -> Sequence[int] | None:
    """The line each data row of a CSV starts at; None when that is simply row + 2."""
    data = path.read_bytes().removeprefix(_BOM)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    starts = record_starts(data, delimiter)
    if starts is not None:
        rows = starts[1:]
        return None if np.array_equal(rows, np.arange(2, len(rows) + 2)) else rows.tolist()
    records = _csv_records(data.decode("utf-8", "replace"), delimiter)
    next(records, None)  # the header
    return [line for line, _ in records]


# --- JSON ------------------------------------------------------------------------------------------------------


def json_lines(data: bytes) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line; lines end as Python's text files end them."""
    with io.StringIO(data.decode("utf-8", "replace"), newline=None) as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                yield number, text


def _read_jsonl(data: bytes, all_text: bool) -> tuple[pa.Table, list[BadLine]]:
    lines = list(json_lines(data))
    records = _all_at_once([text for _, text in lines])
    bad: list[BadLine] = []
    if records is None:
        records = []
        for row, (line, text) in enumerate(lines):
            problem, record = _json_record(text)
            if problem is not None:
                bad.append(BadLine(row, line, problem))
            records.append(record)
    if could_hold_surrogates(data):
        records = [without_surrogates(record) for record in records]
    return _from_records(records, all_text), bad


def _all_at_once(lines: list[str]) -> list[dict[str, Any]] | None:
    """The lines' objects parsed as one JSON array, many times faster than line by line; None when any line
    is not one whole object within the limits (the lines are then parsed one by one, to say which)."""
    if not lines or any(len(text) > MAX_LINE_CHARS for text in lines):
        return None
    stripped = [text.strip() for text in lines]
    # Each line one object: a value cut over two lines would join into one element, and the count catch it.
    if not all(text.startswith("{") and text.endswith("}") for text in stripped):
        return None
    joined = "[" + ",".join(stripped) + "]"
    try:
        if max(text.count("{") + text.count("[") for text in stripped) <= safejson.MAX_DEPTH:
            # No line can nest deeper than its brackets: the plain parser is safe, and far cheaper than
            # safejson's estimate over the whole file. NaN and Infinity are refused all the same.
            records = json.loads(joined, parse_constant=_refuse)
        else:  # one level more than a line may nest: the array that holds the lines
            records = safejson.loads(joined, max_depth=safejson.MAX_DEPTH + 1)
    except ValueError:  # safejson.UnsafeJSON, or what _refuse and json raise
        return None
    if len(records) != len(lines) or not all(isinstance(record, dict) for record in records):
        return None
    return cast(list[dict[str, Any]], records)


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _json_record(text: str) -> tuple[str | None, dict[str, Any]]:
    if len(text) > MAX_LINE_CHARS:
        return f"line longer than {MAX_LINE_CHARS} characters", {}
    try:
        record = safejson.loads(text)
    except safejson.UnsafeJSON as exc:
        return f"not JSON: {exc}", {}
    if not isinstance(record, dict):
        return f"not a JSON object: {text.strip()[:60]!r}", {}
    return None, record


def _read_json_document(path: Path, data: bytes, all_text: bool) -> pa.Table:
    """A JSON array of objects; an API page holding one under a key of PAGE_KEYS; or one object, read as a
    table of one record (an API's answer about a single item, such as one device and its apps)."""
    try:
        document = safejson.loads(data.decode("utf-8", "replace"))
    except safejson.UnsafeJSON as exc:
        raise TableReadError(f"{path}: not valid JSON: {exc}") from None
    if isinstance(document, dict):
        key = next((key for key in PAGE_KEYS if isinstance(document.get(key), list)), None)
        document = document[key] if key is not None else [document]
    if not isinstance(document, list):
        raise TableReadError(f"{path}: expected a JSON object or an array of objects, found {type(document).__name__}")
    if not all(isinstance(row, dict) for row in document):
        where = next(n for n, row in enumerate(document, start=1) if not isinstance(row, dict))
        raise TableReadError(f"{path}: record {where}: not a JSON object (expected an array of objects)")
    if could_hold_surrogates(data):
        document = without_surrogates(document)
    return _from_records(document, all_text)


def _from_records(records: list[dict[str, Any]], all_text: bool) -> pa.Table:
    names = list(dict.fromkeys(key for record in records for key in record))
    columns = {}
    for name in names:
        values = [record.get(name) for record in records]
        if all_text or name in TEXT_COLUMNS:
            text = [v if v is None or isinstance(v, str) else _text(v, name) for v in values]
            columns[name] = pa.array(text, pa.string())
        else:
            columns[name] = _column(values)
    return pa.table(columns) if columns else pa.table({})


def _text(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if name == "facts" and isinstance(value, dict):
        value = {key: item for key, item in value.items() if item is not None}
    # Depth is bounded by safejson; 1e999 is written "Infinity", which no field accepts.
    return _ENCODER.encode(value)


_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one for every value: json.dumps would build one per call


def _column(values: list[Any]) -> Any:
    """Values of a column no decision reads: as Arrow infers them, or as text when their types are mixed."""
    plain = [v if v is None or isinstance(v, str | int | float | bool) else json.dumps(v) for v in values]
    try:
        return pa.array(plain)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in plain], pa.string())


# --- rows to lines -------------------------------------------------------------------------------------------


def line_mapper(path: Path) -> Callable[[int], int]:
    """Maps a 0-based table row to the 1-based line of the input file that holds it (where it starts).

    CSV: the line after the header, unless quoted line breaks or blank lines shift it; JSON Lines: the
    row's own line (blank lines skipped); JSON and Parquet have no lines, so the record number (row + 1)
    stands in. Worked out on first use.
    """
    fmt = input_format(path)
    if fmt not in ("csv", "jsonl"):
        return lambda row: row + 1
    known: list[Sequence[int] | None] = []

    def line_of(row: int) -> int:
        if not known:
            known.append(_known_lines(path, fmt))
        lines = known[0]
        if lines is None:
            return row + 2
        return lines[row] if row < len(lines) else row + 2

    return line_of


def row_lines(path: Path, rows: int) -> np.ndarray:
    """line_mapper(path)'s answers for rows 0 to rows - 1, at once (int64)."""
    fmt = input_format(path)
    if fmt not in ("csv", "jsonl"):
        return np.arange(1, rows + 1, dtype=np.int64)
    lines = np.arange(2, rows + 2, dtype=np.int64)
    known = _known_lines(path, fmt)
    if known is not None:
        count = min(rows, len(known))
        lines[:count] = np.asarray(known[:count], dtype=np.int64)
    return lines


def _known_lines(path: Path, fmt: str) -> Sequence[int] | None:
    if fmt == "csv":
        return csv_record_lines(path)
    return [line for line, _ in json_lines(path.read_bytes().removeprefix(_BOM))]

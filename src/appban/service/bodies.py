"""Batch request bodies as Arrow tables, decoded in bounded memory, and the answers encoded back.

JSON lines are decoded as they arrive, a block of lines at a time: each line is parsed with `safejson`, its
fields are checked, and every few thousand rows become an Arrow table, so a million-row batch is never a
million Python dictionaries. A line is what `POST /v1/decide` takes (a DecideRequest): a field it does not
know is refused, not dropped, and a field first seen on a later line is still a column of the table.

An Arrow IPC stream is read where it lies (no copy), after checking what its compressed buffers would grow to
and before anything is decompressed; then it is validated in full, since its offsets come from the caller.
"""

from __future__ import annotations

import json
import struct
from array import array
from collections.abc import Iterator
from types import NoneType
from typing import Any, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from appban.engine.batch import RowError, TableInputError
from appban.safejson import UnsafeJSON
from appban.safejson import loads as safe_loads
from appban.service.schemas import DecideRequest
from appban.textcolumns import could_hold_surrogates, without_surrogates

_TEXT_FIELDS = frozenset(name for name in DecideRequest.model_fields if name != "facts")
_FIELDS = frozenset(DecideRequest.model_fields)
_LISTED = ", ".join(DecideRequest.model_fields)
# The fields /v1/decide takes as null (facts, tz): a null anywhere else is refused there, so it is here too.
# Not at: /v1/decide takes a null at as now, but a batch's rows are each decided at their own instant.
_NULLABLE = frozenset(
    name for name, field in DecideRequest.model_fields.items() if NoneType in get_args(field.annotation)
) - {"at"}
_MAX_ERRORS = 20  # bad lines reported; decoding stops there
_ROWS_PER_TABLE = 8192
_OUT_ROWS = 65_536  # rows per block of an answer in JSON lines


class BatchBodyError(ValueError):
    """A batch body that is not what its content type says; the message names the line and field."""


class JSONLines:
    """Decodes JSON lines block by block (`feed` whole lines, then `table`); not thread-safe, one per request."""

    def __init__(self) -> None:
        self._tables: list[pa.Table] = []
        self._rows: list[dict[str, Any]] = []
        self._row_lines = array("q")  # the line number of every row, to name lines in errors
        self._line = 0
        self._columns: dict[str, None] = {}  # every field seen, in order of appearance
        self._errors: list[str] = []

    def feed(self, block: bytes) -> None:
        """Decode complete lines (a block ending in a newline, or the body's last piece)."""
        for raw in block.split(b"\n"):
            self._line += 1
            if raw.strip():
                self._row(raw)
            if len(self._errors) >= _MAX_ERRORS:
                raise BatchBodyError("\n".join(self._errors))
        self._line -= 1  # the piece after the block's last newline is the next block's first line
        self._flush(_ROWS_PER_TABLE)

    def table(self) -> tuple[pa.Table, np.ndarray]:
        """The rows decoded, and the line each came from."""
        if self._errors:
            raise BatchBodyError("\n".join(self._errors))
        self._flush(1)
        if not self._tables:
            raise BatchBodyError("no rows: send one JSON object per line")
        try:
            table = pa.concat_tables(self._tables, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise BatchBodyError(f"the lines do not form a table (a field's type changes): {exc}") from None
        return table, np.frombuffer(self._row_lines, dtype=np.int64)

    def _row(self, raw: bytes) -> None:
        try:
            row = safe_loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self._errors.append(f"line {self._line}: not UTF-8")
            return
        except UnsafeJSON as exc:
            self._errors.append(f"line {self._line}: not JSON: {exc}")
            return
        if not isinstance(row, dict):
            self._errors.append(f"line {self._line}: not a JSON object")
            return
        if could_hold_surrogates(raw):  # a lone "\\ud800" escape: replaced, as the file readers do
            row = without_surrogates(row)
        if not _FIELDS.issuperset(row):
            # As /v1/decide refuses it: a misspelt "fact" or "timezone" dropped would change the answer unseen.
            key = next(key for key in row if key not in _FIELDS)
            self._errors.append(f"line {self._line}: {key[:64]}: unknown field (a line holds {_LISTED})")
            return
        for key, value in row.items():
            if value is None and key not in _NULLABLE:
                self._errors.append(f"line {self._line}: {key}: null (leave the field out, or give a value)")
                return
            if value is None or (type(value) is str and key != "facts"):  # what nearly every field is
                continue
            problem = _field_problem(key, value)
            if problem is not None:
                self._errors.append(f"line {self._line}: {key}: {problem}")
                return
            if key == "facts":
                row["facts"] = json.dumps(value, ensure_ascii=False)
        if not self._columns.keys() >= row.keys():
            self._columns.update(dict.fromkeys(row))
        self._rows.append(row)
        self._row_lines.append(self._line)

    def _flush(self, at_least: int) -> None:
        if len(self._rows) < at_least or not self._rows:
            return
        first, last = self._row_lines[-len(self._rows)], self._row_lines[-1]
        rows = self._rows
        try:
            # Every field seen so far is a column (from_pylist would take the first row's fields only).
            self._tables.append(pa.table({name: pa.array([row.get(name) for row in rows]) for name in self._columns}))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            message = f"lines {first} to {last} do not form a table (a field's type changes): {exc}"
            raise BatchBodyError(message) from None
        self._rows = []


def _field_problem(key: str, value: Any) -> str | None:
    """Why a field of a line cannot be a column value, or None (a null is a field not given)."""
    if key in _TEXT_FIELDS:
        return None if value is None or isinstance(value, str) else "not text"
    # facts: an object, as /v1/decide takes it; its values are checked against the rulebook with the rows'.
    return None if value is None or isinstance(value, dict) else "not a JSON object"


def rows_as_json_lines(table: pa.Table) -> Iterator[bytes]:
    """The table as JSON lines (as `json.dumps` writes each row), a block of rows at a time: each distinct
    value of a column is written once and the rows are joined by Arrow, not one Python dict per row."""
    for start in range(0, table.num_rows, _OUT_ROWS):
        block = table.slice(start, _OUT_ROWS)
        pieces: list[Any] = []
        for index, name in enumerate(block.column_names):
            key = ("{" if index == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ": "
            pieces += [pa.scalar(key), _json_texts(block.column(index))]
        joined = pc.binary_join_element_wise(*pieces, pa.scalar("}\n"), "")
        yield _contiguous(joined)


def _json_texts(column: pa.ChunkedArray) -> pa.Array:
    """Each row's value as JSON text."""
    values = column.combine_chunks()
    kind = values.type
    split = False
    if pa.types.is_list(kind) and pa.types.is_string(kind.value_type):
        flat = pc.list_flatten(values)
        # A list of strings as one string per row: exact when no element is null, empty or holds the separator.
        split = len(flat) == 0 or not (
            flat.null_count or pc.any(pc.equal(flat, "")).as_py() or pc.any(pc.match_substring(flat, "\x00")).as_py()
        )
        if split:
            values = pc.binary_join(values, "\x00")
    if pa.types.is_dictionary(values.type):
        encoded = values
    elif _encodable(values.type):
        encoded = values.dictionary_encode()
    else:
        return pa.array([_json(value) for value in values.to_pylist()], pa.string())
    distinct = encoded.dictionary.to_pylist()
    if split:
        distinct = [text.split("\x00") if text else [] for text in distinct]
    texts = pa.array([_json(value) for value in distinct] + ["null"], pa.string())
    indices = encoded.indices.fill_null(len(distinct)) if encoded.null_count else encoded.indices
    return texts.take(indices)


def _encodable(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
    )


def _json(value: Any) -> str:
    if hasattr(value, "isoformat"):
        value = str(value)  # as appban.tables.to_records writes dates and times
    return json.dumps(value, ensure_ascii=False, default=str)


def _contiguous(rows: pa.Array) -> bytes:
    """The text of consecutive string values, which Arrow keeps back to back."""
    width = np.int64 if pa.types.is_large_string(rows.type) else np.int32
    offsets = np.frombuffer(rows.buffers()[1], dtype=width)[rows.offset : rows.offset + len(rows) + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    text: bytes = rows.buffers()[2].slice(first, last - first).to_pybytes()
    return text


def lines_named(error: TableInputError, line_numbers: np.ndarray) -> TableInputError:
    """A decide_table() error about rows, told about the lines they came from."""
    errors = [
        RowError(int(line_numbers[e.row]) if 0 <= e.row < len(line_numbers) else e.row, e.column, e.value, e.message)
        for e in error.errors
    ]
    return TableInputError(errors, error.total, unit="line")


# --- Arrow IPC ---------------------------------------------------------------------------------------


def read_arrow_stream(body: bytes | bytearray, max_decoded_bytes: int) -> pa.Table:
    """An Arrow IPC stream as a table, refused when its buffers would decode to more than `max_decoded_bytes`
    or when it does not hold together (offsets beyond their buffers, say)."""
    buffer = pa.py_buffer(body)
    try:
        decoded = _decoded_size(buffer)
        if decoded > max_decoded_bytes:
            raise BatchBodyError(
                f"the Arrow stream decodes to {decoded:,} bytes; at most {max_decoded_bytes:,} (send smaller batches)"
            )
        table = ipc.open_stream(buffer).read_all()
        table.validate(full=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowIndexError, OSError) as exc:
        raise BatchBodyError(f"not an Arrow IPC stream: {exc}") from None
    except (struct.error, IndexError, ValueError) as exc:
        if isinstance(exc, BatchBodyError):
            raise
        raise BatchBodyError(f"not an Arrow IPC stream: malformed message metadata ({exc})") from None
    return table


_RECORD_BATCH, _DICTIONARY_BATCH = 3, 4  # MessageHeader in Arrow's Message.fbs


def _decoded_size(buffer: pa.Buffer) -> int:
    """The bytes a stream's record and dictionary batches take once decoded: a compressed buffer starts with
    its decoded length (Arrow's IPC format), read here from the messages' metadata before anything is
    decompressed, since a few kilobytes of compressed zeros may claim gigabytes."""
    total = 0
    reader = ipc.MessageReader.open_stream(pa.BufferReader(buffer))
    while True:
        try:
            message = reader.read_next_message()
        except StopIteration:
            return total
        meta = message.metadata.to_pybytes()
        root = _u32(meta, 0)
        header_type = _field(meta, root, 1)
        header = _field(meta, root, 2)
        if header_type is None or header is None:
            continue
        kind = meta[header_type]
        batch = _deref(meta, header)
        if kind == _DICTIONARY_BATCH:
            data = _field(meta, batch, 1)
            if data is None:
                continue
            batch = _deref(meta, data)
        elif kind != _RECORD_BATCH:
            continue
        total += _batch_size(meta, batch, message.body)


def _batch_size(meta: bytes, batch: int, body: pa.Buffer | None) -> int:
    buffers = _field(meta, batch, 2)
    if buffers is None or body is None:
        return 0
    if _field(meta, batch, 3) is None:  # no BodyCompression: the buffers are as large as they are sent
        return int(body.size)
    vector = _deref(meta, buffers)
    total = 0
    head = body.to_pybytes() if body.size <= 1 << 16 else None
    for index in range(_u32(meta, vector)):
        offset, length = struct.unpack_from("<qq", meta, vector + 4 + 16 * index)
        if length < 8:
            continue
        prefix = head[offset : offset + 8] if head is not None else body.slice(offset, 8).to_pybytes()
        (decoded,) = struct.unpack("<q", prefix)
        total += length - 8 if decoded < 0 else decoded  # -1: this buffer was sent uncompressed
    return total


def _u32(data: bytes, at: int) -> int:
    value: int = struct.unpack_from("<I", data, at)[0]
    return value


def _deref(data: bytes, at: int) -> int:
    """Where a flatbuffer offset stored at `at` points."""
    return at + _u32(data, at)


def _field(data: bytes, table: int, index: int) -> int | None:
    """Where field `index` of the flatbuffer table at `table` is stored, or None when it is absent."""
    (back,) = struct.unpack_from("<i", data, table)
    vtable = table - back
    (size,) = struct.unpack_from("<H", data, vtable)
    slot = 4 + 2 * index
    if slot + 2 > size:
        return None
    (offset,) = struct.unpack_from("<H", data, vtable + slot)
    return table + offset if offset else None

"""Tables in and out: results written as CSV or records, rows grouped; reading lives in appban.tablereader and
writing files in appban.outputs, whose names stay importable from here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from appban.outputs import write_atomically as write_atomically
from appban.tablereader import READ_ERROR_COLUMN, TEXT_COLUMNS, TableReadError, input_format, line_mapper, read_table
from appban.textcolumns import python_values

__all__ = [
    "READ_ERROR_COLUMN",
    "TEXT_COLUMNS",
    "TableReadError",
    "grouped",
    "input_format",
    "instant_text",
    "line_mapper",
    "line_of_row",
    "read_table",
    "to_records",
    "write_atomically",
    "write_csv",
]


def line_of_row(path: Path, row: int) -> int:
    return line_mapper(path)(row)


def to_records(table: pa.Table) -> list[dict[str, object]]:
    """The rows as dictionaries, instants as text. A passed-through column may hold a date or timestamp
    past year 9999 (Parquet allows it): such a value is Arrow's text for it, not an OverflowError."""
    if table.num_columns == 0:
        return [{} for _ in range(table.num_rows)]
    names = table.column_names
    columns = [python_values(column) for column in table.columns]
    return [
        {name: (instant_text(v) if hasattr(v, "isoformat") else v) for name, v in zip(names, row, strict=True)}
        for row in zip(*columns, strict=True)
    ]


def instant_text(value: dt.date | dt.time) -> str:
    """ISO 8601, as every machine output writes instants (README, "Exit codes and outputs"): an aware instant
    in UTC with a Z (2024-01-01T00:00:00Z, with its fraction when it has one); a date, a time, or a timestamp
    that names no zone (a passed-through column), as ISO 8601 without inventing one."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"
    return value.isoformat()


def _instants_as_text(table: pa.Table) -> pa.Table:
    """Timestamp columns as ISO 8601 text (pyarrow's CSV writer would write "2024-01-01 00:00:00.000000Z")."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            values = [None if v is None else instant_text(v) for v in python_values(table.column(index))]
            table = table.set_column(index, field.name, pa.array(values, pa.string()))
    return table


def write_csv(table: pa.Table, path: Path | BinaryIO) -> None:
    flat = table
    for name in ("rule_ids", "later"):  # lists of ids, joined by ";" (an id never holds one)
        if name in flat.column_names:
            joined = [";".join(ids or []) for ids in flat.column(name).to_pylist()]
            flat = flat.set_column(flat.column_names.index(name), name, pa.array(joined, pa.string()))
    flat = flat.cast(
        pa.schema(
            [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in flat.schema]
        )
    )
    pacsv.write_csv(_instants_as_text(flat), path)


def grouped(
    batches: Iterable[pa.RecordBatch], rows: int, progress: Callable[[int], None] | None = None
) -> Iterator[pa.Table]:
    """Tables of about `rows` rows made of consecutive batches (side by side, not copied), so that work
    done once per call (a dictionary encoding, one look-up per distinct value) is small next to the rows.
    `progress` is told each batch's row count as it arrives."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        pending.append(batch)
        size += batch.num_rows
        if progress is not None:
            progress(batch.num_rows)
        if size >= rows:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)

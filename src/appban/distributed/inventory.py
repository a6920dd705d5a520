"""Inventory screening (app-store catalogs, MDM device inventories) as a table Screener for Spark and Dask.

Each worker screens its batches with the in-process `appban.screen.inventory.Screener`, built once per
process for the options given (its resolvers and pre-filter keys are the costly part), so a cluster's
findings are row for row those of `appban screen inventory` on the same rows.

Input rows are inventory rows as the inventory readers give them (`appban.tablereader.read_table(path,
all_text=True)`; a Spark CSV read without schema inference gives the same text), plus two optional columns
saying where each row came from: `file` (the input file's name) and `line` (its 1-based line).
`inventory_rows(path)` reads a file that way on the driver. Rows without them are reported with file "-"
and a null line. List and struct columns (a Spark or Parquet read of nested JSON) are searched as JSON
text, as the in-process read does.

Rows are screened file by file under the columns of the table they come in (as in process, where a file's
columns say which holds the name, the identifiers, the instant): give a table of one layout (one catalog
export, one MDM report) per call. Files of several layouts or formats go one file per task instead
(`InventoryFileScreener`, `screen_inventory_files_spark/_dask`), each read on the worker as the CLI reads it.

Output: one row per finding (FINDING columns, then the decision's verdict, as_written, enforcement,
rule_ids) and one row per row error. Error rows have `error` set (the message), with `file`, `line`,
`error_column` (the column at fault, "-" for the whole line) and `error_value`; every finding column is
null on them. `split_errors` parts the two on the driver.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pyarrow as pa
import pyarrow.compute as pc

from appban.screen.columns import detect, normalise_header
from appban.screen.inventory import FINDING_COLUMNS, NESTED_APPS, InventoryOptions, RowError, Screener
from appban.tablereader import READ_ERROR_COLUMN, line_mapper, read_table
from appban.textcolumns import as_text, type_problem

FILE_COLUMN = "file"
LINE_COLUMN = "line"
ERROR_FIELDS = [
    pa.field("error_column", pa.string()),
    pa.field("error_value", pa.string()),
    pa.field("error", pa.string()),
]
_DECISION_FIELDS = [
    pa.field("verdict", pa.string()),
    pa.field("as_written", pa.string()),
    pa.field("enforcement", pa.string()),
    pa.field("rule_ids", pa.list_(pa.string())),
]
_TYPES = {"line": pa.int64(), "confidence": pa.float64(), "at": pa.timestamp("us", tz="UTC")}
# Instants in microseconds (what Spark holds), not the in-process seconds: the same values.
FINDINGS_SCHEMA = pa.schema(
    [pa.field(name, _TYPES.get(name, pa.string())) for name in FINDING_COLUMNS] + _DECISION_FIELDS
)
OUTPUT_SCHEMA = pa.schema(list(FINDINGS_SCHEMA) + ERROR_FIELDS)
_NO_LINE = -1


@dataclass(frozen=True)
class InventoryParams:
    """The factory engines ship to workers: InventoryOptions as hashable values (the per-process cache key);
    calling it builds the screener."""

    where: str = "US"
    at: str | None = None
    at_column: str | None = None
    tz: str | None = None
    fleet: str = "corporate"
    mapping: tuple[tuple[str, str], ...] = ()
    kind: str | None = None

    @classmethod
    def of(cls, options: InventoryOptions) -> Self:
        return cls(options.where, options.at, options.at_column, options.tz, options.fleet,
                   tuple(sorted(options.mapping.items())), options.kind)  # fmt: skip

    def options(self) -> InventoryOptions:
        return InventoryOptions(self.where, self.at, self.at_column, self.tz, self.fleet,  # type: ignore[arg-type]
                                dict(self.mapping), self.kind)  # fmt: skip

    def __call__(self) -> InventoryScreener:
        return InventoryScreener(self)


class InventoryScreener:
    """A table Screener: batches of inventory rows in, findings and row errors (OUTPUT_SCHEMA) out. Holds
    the in-process screener (resolvers, pre-filter keys), built once per worker process by the engines."""

    name = "inventory"

    def __init__(self, params: InventoryParams | None = None) -> None:
        self.params = params or InventoryParams()
        self.screener = Screener(None, self.params.options())

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        """OUTPUT_SCHEMA, once the input is known to be screenable: ValueError (a ColumnMapError) naming
        what is missing, raised on the driver rather than in every task."""
        names = [name for name in input_schema.names if name not in (FILE_COLUMN, LINE_COLUMN, READ_ERROR_COLUMN)]
        nested = any(normalise_header(name) in NESTED_APPS for name in names)
        if not nested:  # an app list's columns (device records' apps) are only known once it is unnested
            detect(names, dict(self.params.mapping), self.params.kind)
        if self.params.at_column and self.params.at_column not in names:
            raise ValueError(f"--at-column {self.params.at_column!r}: no such column")
        return OUTPUT_SCHEMA

    def screen_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if batch.num_rows == 0:
            return _empty_batch()
        out = screen_inventory_table(pa.Table.from_batches([batch]), self.screener).combine_chunks()
        return out.to_batches()[0] if out.num_rows else _empty_batch()


class InventoryFileScreener:
    """A PathScreener: one inventory file (CSV, JSON, JSON Lines, Parquet) read on the worker and screened
    whole, exactly as `appban screen inventory` screens it: for files of several layouts, whose union of
    columns a table screener would read every row under. A file that cannot be read or screened at all is
    one error row (line null)."""

    name = "inventory-files"

    def __init__(self, params: InventoryFiles) -> None:
        self.params = params
        self.screener = Screener(None, params.options())

    def output_schema(self) -> pa.Schema:
        return OUTPUT_SCHEMA

    def screen_path(self, path: str) -> pa.Table:
        try:
            table = read_table(Path(path), all_text=True)
            result = self.screener.screen(table, path, line_mapper(Path(path)))
        except ValueError as exc:  # TableReadError and ColumnMapError among them: the file, not a row
            message = str(exc)
            return _errors([RowError(path, _NO_LINE, "-", None, message if path in message else f"{path}: {message}")])
        pieces = [_findings(result.findings)] + ([_errors(result.errors)] if result.errors else [])
        return pa.concat_tables(pieces)


@dataclass(frozen=True)
class InventoryFiles(InventoryParams):
    """InventoryParams whose call builds the per-file screener."""

    def __call__(self) -> InventoryFileScreener:  # type: ignore[override]
        return InventoryFileScreener(self)


def _empty_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=OUTPUT_SCHEMA)


def screen_inventory_table(table: pa.Table, screener: Screener) -> pa.Table:
    """Findings and row errors (OUTPUT_SCHEMA) of one table of inventory rows, file by file in the order
    the files first occur; each file's rows are screened as `appban screen inventory` screens that file."""
    files = _file_names(table)
    lines = table.column(LINE_COLUMN).to_pylist() if LINE_COLUMN in table.column_names else None
    data = table.drop_columns([n for n in (FILE_COLUMN, LINE_COLUMN) if n in table.column_names])
    data = pa.table([_as_text(column) for column in data.columns], names=data.column_names)
    pieces = []
    for file in dict.fromkeys(files):
        rows = [i for i, name in enumerate(files) if name == file]
        part = data.take(pa.array(rows, pa.int64())) if len(rows) < len(files) else data
        line_of = _line_of(rows, lines)
        try:
            result = screener.screen(part, file, line_of)
        except ValueError as exc:  # a file that cannot be screened at all (no line read, too many apps)
            pieces.append(_errors([RowError(file, _NO_LINE, "-", None, str(exc))]))
            continue
        pieces.append(_findings(result.findings))
        if result.errors:
            pieces.append(_errors(result.errors))
    if not pieces:
        return OUTPUT_SCHEMA.empty_table()
    return pa.concat_tables(pieces)


def _file_names(table: pa.Table) -> list[str]:
    if FILE_COLUMN not in table.column_names:
        return ["-"] * table.num_rows
    return ["-" if name is None else str(name) for name in table.column(FILE_COLUMN).to_pylist()]


def _line_of(rows: list[int], lines: list[Any] | None) -> Callable[[int], int]:
    def line_of(row: int) -> int:
        if lines is None:
            return _NO_LINE
        line = lines[rows[row]]
        return _NO_LINE if line is None or line != line else int(line)  # None, or NaN from a pandas column

    return line_of


def _as_text(values: Any) -> Any:
    """A column as the all-text read gives it: lists and structs as JSON text, other values as text."""
    if type_problem(values.type) is None:
        return as_text(values)
    return pa.array(
        [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in values.to_pylist()],
        pa.string(),
    )


def _findings(findings: pa.Table) -> pa.Table:
    columns = []
    for field in FINDINGS_SCHEMA:
        values = findings.column(field.name).combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        columns.append(values.cast(field.type))
    out = pa.table(columns, schema=FINDINGS_SCHEMA)
    out = out.set_column(
        1, LINE_COLUMN, pc.if_else(pc.equal(out.column(LINE_COLUMN), _NO_LINE), None, out.column(LINE_COLUMN))
    )
    for field in ERROR_FIELDS:
        out = out.append_column(field, pa.nulls(out.num_rows, field.type))
    return out


def _errors(errors: list[RowError]) -> pa.Table:
    n = len(errors)
    columns = {field.name: pa.nulls(n, field.type) for field in FINDINGS_SCHEMA}
    columns[FILE_COLUMN] = pa.array([e.file for e in errors], pa.string())
    columns[LINE_COLUMN] = pa.array([None if e.line == _NO_LINE else e.line for e in errors], pa.int64())
    columns["error_column"] = pa.array([e.column for e in errors], pa.string())
    columns["error_value"] = pa.array([e.value for e in errors], pa.string())
    columns["error"] = pa.array([e.message for e in errors], pa.string())
    return pa.table(columns, schema=OUTPUT_SCHEMA)


def split_errors(output: pa.Table) -> tuple[pa.Table, list[RowError]]:
    """The findings (FINDINGS_SCHEMA) and the row errors, ordered by file and line as in process."""
    is_error = pc.is_valid(output.column("error"))
    findings = output.filter(pc.invert(is_error)).select(FINDINGS_SCHEMA.names)
    errors = [
        RowError(
            row[FILE_COLUMN],
            _NO_LINE if row[LINE_COLUMN] is None else row[LINE_COLUMN],
            row["error_column"],
            row["error_value"],
            row["error"],
        )
        for row in output.filter(is_error).to_pylist()
    ]
    errors.sort(key=lambda e: (e.file, e.line))
    return findings, errors


def inventory_rows(path: Path | str, name: str | None = None) -> pa.Table:
    """A file's rows as `appban screen inventory` reads them, with `file` (`name`, or the path as given)
    and `line` columns: input for the distributed screen that reports rows by the same file and line."""
    path = Path(path)
    table = read_table(path, all_text=True)
    line_of = line_mapper(path)
    lines = pa.array([line_of(row) for row in range(table.num_rows)], pa.int64())
    file = pa.repeat(pa.scalar(name or str(path), pa.string()), table.num_rows)
    return table.append_column(FILE_COLUMN, file).append_column(LINE_COLUMN, lines)


def screen_inventory_spark(df: Any, options: InventoryOptions | None = None) -> Any:
    """Findings and row errors (OUTPUT_SCHEMA, then rulebook_version and bundle) of a pyspark DataFrame of
    inventory rows (text columns, and `file` and `line` where known). Lazy; the columns are checked now."""
    from appban.distributed.spark import run_spark

    return run_spark(df, InventoryParams.of(options or InventoryOptions()))


def screen_inventory_dask(ddf: Any, options: InventoryOptions | None = None) -> Any:
    """The same for a dask DataFrame: a new frame (default index, unknown divisions) of ArrowDtype
    columns, null where a value is missing. Lazy; the columns are checked now."""
    from appban.distributed.dask import run_dask

    return run_dask(ddf, InventoryParams.of(options or InventoryOptions()))


def screen_inventory_files_spark(df: Any, options: InventoryOptions | None = None, path_column: str = "path") -> Any:
    """Each inventory file named in `df`'s `path_column` read and screened whole by one task, in any format
    and layout (OUTPUT_SCHEMA, then rulebook_version and bundle). Lazy."""
    from appban.distributed.spark import run_spark

    return run_spark(df, InventoryFiles.of(options or InventoryOptions()), path_column=path_column)


def screen_inventory_files_dask(paths: Any, options: InventoryOptions | None = None) -> Any:
    """The same for a dask bag of paths."""
    from appban.distributed.dask import run_dask

    return run_dask(paths, InventoryFiles.of(options or InventoryOptions()))

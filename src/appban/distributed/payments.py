"""Payment screening on Spark and Dask: export tables as a table Screener, payment files (ISO 20022
messages, or exports) one file per task as a PathScreener.

Both run what `appban screen payments` runs on each group of records (`appban.screen.payments`): the
markers of covered services flag or set aside each record, and the flagged ones are decided at their own
instant with their U.S. nexus. Every step is per record, so a batch screened alone gives the rows the
whole run would. The marker matcher is built once per worker process (engines cache the screener).

Output, one schema for both (OUTPUT_SCHEMA): the flagged payments with their evidence and decision
(the in-process `PaymentResult.payments` columns, `file` among them), then three columns:

- `reason`, `end_wallet`, `note`: set on a payment set aside (the in-process `apart` table: a wallet the
  payment method contradicts, another wallet than the service's own, an attempt that did not complete);
  such a row has no decision.
- `error`: set on a record or a file that could not be read, as the in-process run reports it
  ("file:line: message" for a record, "file: message" for a whole file), with `file` and `line` (null
  for a whole file) beside it; every other column is null.

`split_payments` parts an output into the three in-process tables; `totals` (appban.screen.payments)
then counts the payments as the in-process summary does.

Export tables come in as the readers give them (`appban.payments.records.RECORD_SCHEMA`), with an
optional `file` column naming each record's file ("-" without one). Files are read on the workers, each by
one task, streamed in batches (`appban.payments.records.DEFAULT_BATCH_ROWS`) and screened a batch at a time
(TASK_GROUP_ROWS), so a task's memory is bounded by a batch and the file's output rows whatever the file's
size. Like every per-file task, it parses its file on its own thread (`appban.distributed.core.screen_paths`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pyarrow as pa
import pyarrow.compute as pc

from appban.engine.decide import default_rulebook
from appban.payments.markers import PaymentMatcher, default_markers
from appban.payments.records import DEFAULT_BATCH_ROWS, RECORD_SCHEMA
from appban.rulebook.loader import Rulebook

# What `appban screen payments` does to each group of records; shared rather than copied, so the two agree.
from appban.screen.payments import (
    PaymentOptions,
    decide_payments,
    flag_payments,
    read_payments,
    with_constants,
)
from appban.tables import grouped

FILE_COLUMN = "file"
# Records a task screens at once: one reader batch, not the in-process command's million (GROUP_ROWS).
# A group's working set (its columns, the matcher's and decide_table's arrays) then stays in the worker's
# allocator and caches from one group to the next instead of being faulted in afresh: in one worker process,
# a 400,000-record file took 1.6 to 2.1 s a task against 1.9 to 3.2 s in groups of a million (bench/RESULTS.md),
# a worker's first task most of all. The rows are the same: every step is per record.
TASK_GROUP_ROWS = DEFAULT_BATCH_ROWS
_EVIDENCE_FIELDS = [
    pa.field("service", pa.string()),
    pa.field("subject", pa.string()),
    pa.field("marker", pa.string()),
    pa.field("marker_kind", pa.string()),
    pa.field("marker_field", pa.string()),
    pa.field("marker_source", pa.string()),
    pa.field("confidence", pa.float32()),
    pa.field("purpose_fact", pa.string()),
    pa.field(FILE_COLUMN, pa.string()),
    pa.field("us_nexus", pa.bool_()),
    pa.field("nexus", pa.string()),
    pa.field("where", pa.string()),
    pa.field("transaction", pa.string()),
    pa.field("facts", pa.string()),
    pa.field("verdict", pa.string()),
    pa.field("as_written", pa.string()),
    pa.field("enforcement", pa.string()),
    pa.field("rule_ids", pa.list_(pa.string())),
]
PAYMENTS_SCHEMA = pa.schema(list(RECORD_SCHEMA) + _EVIDENCE_FIELDS)
APART_FIELDS = [pa.field("reason", pa.string()), pa.field("end_wallet", pa.string()), pa.field("note", pa.string())]
ERROR_FIELD = pa.field("error", pa.string())
OUTPUT_SCHEMA = pa.schema(list(PAYMENTS_SCHEMA) + APART_FIELDS + [ERROR_FIELD])
# The in-process apart table's columns (appban.screen.payments.APART_COLUMNS), all in OUTPUT_SCHEMA.
APART_COLUMNS = ("file", "line", "id", "ts", "amount", "currency", "method", "merchant", "reason", "marker",
                 "marker_field", "end_wallet", "note")  # fmt: skip


@dataclass(frozen=True)
class PaymentParams:
    """What a worker's screener is built from (hashable: the per-process cache key). `constants` are the
    whole-file values of --set; the other fields are PaymentOptions' and apply to reading files."""

    input_format: str | None = None
    column_map: tuple[tuple[str, str], ...] | None = None
    tz: str | None = None
    constants: tuple[tuple[str, str], ...] = ()
    decimal: str | None = None
    date_order: str | None = None

    @classmethod
    def of(cls, options: PaymentOptions) -> Self:
        column_map = None if options.column_map is None else tuple(sorted(options.column_map.items()))
        constants = tuple(sorted((options.constants or {}).items()))
        return cls(options.input_format, column_map, options.tz, constants, options.decimal, options.date_order)

    def options(self) -> PaymentOptions:
        column_map = None if self.column_map is None else dict(self.column_map)
        return PaymentOptions(self.input_format, column_map, self.tz, dict(self.constants) or None, self.decimal,
                              self.date_order)  # fmt: skip


class _Screening:
    """The matcher and rulebook a worker screens with, and the screening of one group of records."""

    def __init__(self, params: PaymentParams) -> None:
        self.params = params
        self.rulebook: Rulebook = default_rulebook()
        self.matcher = PaymentMatcher(default_markers())

    def screen(self, records: pa.Table, file: str) -> pa.Table:
        """The flagged payments, decided, then the payments set aside, of a group of one file's records."""
        flagged, aside, _ = flag_payments(self.matcher, with_constants(records, dict(self.params.constants)))
        name = pa.scalar(file, pa.string())
        pieces = []
        if flagged.num_rows:
            flagged = flagged.append_column(FILE_COLUMN, pa.repeat(name, flagged.num_rows))
            pieces.append(_conform(decide_payments(flagged, self.matcher, self.rulebook)))
        if aside.num_rows:
            pieces.append(_conform(aside.add_column(0, FILE_COLUMN, pa.repeat(name, aside.num_rows))))
        return pa.concat_tables(pieces) if pieces else OUTPUT_SCHEMA.empty_table()


class PaymentTableScreener(_Screening):
    """A table Screener over payment records (RECORD_SCHEMA columns, and `file`)."""

    name = "payments"

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        """OUTPUT_SCHEMA; ValueError naming the record fields the input lacks. Types are not checked here
        (a Dask frame's may not be known until its values are): each batch is cast to the records' types."""
        missing = [name for name in RECORD_SCHEMA.names if name not in input_schema.names]
        if missing:
            raise ValueError(
                "payment records need the readers' columns (appban.payments.records.RECORD_SCHEMA); missing: "
                + ", ".join(missing)
            )
        return OUTPUT_SCHEMA

    def screen_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        table = pa.Table.from_batches([batch])
        files = ["-"] * table.num_rows
        if FILE_COLUMN in table.column_names:
            files = ["-" if f is None else str(f) for f in table.column(FILE_COLUMN).to_pylist()]
        records = table.select(RECORD_SCHEMA.names).cast(RECORD_SCHEMA)
        pieces = []
        for file in dict.fromkeys(files):  # each file's records as a group of that file, as in process
            rows = pa.array([i for i, name in enumerate(files) if name == file], pa.int64())
            pieces.append(self.screen(records if len(rows) == len(files) else records.take(rows), file))
        out = pa.concat_tables(pieces) if pieces else OUTPUT_SCHEMA.empty_table()
        if out.num_rows == 0:
            return pa.RecordBatch.from_pylist([], schema=OUTPUT_SCHEMA)
        return out.combine_chunks().to_batches()[0]


class PaymentFileScreener(_Screening):
    """A PathScreener: one payment file (an ISO 20022 message, or an export; its format detected, or as
    `input_format` says) read and screened on the worker, streamed."""

    name = "payment-files"

    def output_schema(self) -> pa.Schema:
        return OUTPUT_SCHEMA

    def screen_path(self, path: str) -> pa.Table:
        # A task runs this inside parse_threads(1) (distributed.core.screen_paths): one task, one core.
        return pa.Table.from_batches(list(self.screen_file(path)), schema=OUTPUT_SCHEMA)

    def screen_file(self, path: str) -> Iterator[pa.RecordBatch]:
        """The file's output group by group (as `appban screen payments` reads it), then its read errors."""
        try:
            batches, stats = read_payments(Path(path), self.params.options())
            for records in grouped(batches, TASK_GROUP_ROWS):
                yield from self.screen(records, path).to_batches()
        except (ValueError, OSError) as exc:
            message = str(exc)
            yield _error(path, None, message if path in message else f"{path}: {message}")
            return
        for error in stats.errors:
            yield _error(error.path, error.line, str(error))


@dataclass(frozen=True)
class TableFactory(PaymentParams):
    """PaymentParams whose call builds the table screener (the factory engines ship)."""

    def __call__(self) -> PaymentTableScreener:
        return PaymentTableScreener(self)


@dataclass(frozen=True)
class FileFactory(PaymentParams):
    """PaymentParams whose call builds the per-file screener."""

    def __call__(self) -> PaymentFileScreener:
        return PaymentFileScreener(self)


def _error(file: str, line: int | None, message: str) -> pa.RecordBatch:
    columns = {field.name: pa.nulls(1, field.type) for field in OUTPUT_SCHEMA}
    columns[FILE_COLUMN] = pa.array([file], pa.string())
    columns["line"] = pa.array([line], pa.int64())
    columns["error"] = pa.array([message], pa.string())
    return pa.RecordBatch.from_pydict(columns, schema=OUTPUT_SCHEMA)


# How split_payments orders its tables; sort an in-process result by it to compare the two.
ORDER = [(FILE_COLUMN, "ascending"), ("line", "ascending"), ("id", "ascending")]


def split_payments(output: pa.Table) -> tuple[pa.Table, pa.Table, list[str]]:
    """An output's payments (PAYMENTS_SCHEMA), payments set aside (the apart columns) and errors (as the
    in-process run words them), each ordered by file, line and id (ORDER)."""
    is_error = pc.is_valid(output.column("error"))
    is_apart = pc.and_(pc.invert(is_error), pc.is_valid(output.column("reason")))
    is_payment = pc.invert(pc.or_(is_error, is_apart))
    order = ORDER
    payments = output.filter(is_payment).select(PAYMENTS_SCHEMA.names).sort_by(order)
    apart = output.filter(is_apart).select(list(APART_COLUMNS)).sort_by(order)
    errors = output.filter(is_error).sort_by(order).column("error").to_pylist()
    return payments, apart, [str(e) for e in errors]


def _conform(table: pa.Table) -> pa.Table:
    """`table` in OUTPUT_SCHEMA: its columns cast, the ones it does not have null."""
    columns = []
    for field in OUTPUT_SCHEMA:
        if field.name in table.column_names:
            values = table.column(field.name).combine_chunks()
            if pa.types.is_dictionary(values.type):
                values = values.cast(values.type.value_type)
            columns.append(values.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.table(columns, schema=OUTPUT_SCHEMA)


def screen_payments_spark(df: Any, options: PaymentOptions | None = None) -> Any:
    """Payments, payments set aside and their errors (OUTPUT_SCHEMA, then rulebook_version and bundle) of a
    pyspark DataFrame of payment records (RECORD_SCHEMA columns, and `file`). Lazy; columns checked now."""
    from appban.distributed.spark import run_spark

    return run_spark(df, TableFactory.of(options or PaymentOptions()))


def screen_payments_dask(ddf: Any, options: PaymentOptions | None = None) -> Any:
    """The same for a dask DataFrame of payment records: a new frame of ArrowDtype columns."""
    from appban.distributed.dask import run_dask

    return run_dask(ddf, TableFactory.of(options or PaymentOptions()))


def screen_iso20022_files_spark(df: Any, options: PaymentOptions | None = None, path_column: str = "path") -> Any:
    """Each payment file named in `df`'s `path_column` read and screened by one task (ISO 20022 messages;
    exports too: the format is detected per file unless `options.input_format` names it). Lazy."""
    from appban.distributed.spark import run_spark

    return run_spark(df, FileFactory.of(options or PaymentOptions()), path_column=path_column)


def screen_iso20022_files_dask(paths: Any, options: PaymentOptions | None = None) -> Any:
    """The same for a dask bag of paths: one frame partition per bag partition."""
    from appban.distributed.dask import run_dask

    return run_dask(paths, FileFactory.of(options or PaymentOptions()))

"""decide_table as a distributed screener: each batch of (app, transaction, where, at, facts, tz and fact
columns) decided by the engine's `decide_table`, row for row as in process.

In process, a table with a bad row is refused whole (TableInputError lists the rows). A cluster job over
billions of rows should not fail on one, so here a bad row gets null verdict, as_written, enforcement and
rule_ids and an `error` saying what `decide_table` says of that row ("transaction: unknown ..."), and every
other row is decided as `decide_table` decides it. What would refuse every row (a missing column, a fact
column of the wrong type) is refused on the driver before any task runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from appban.distributed import core
from appban.engine.batch import INPUT_COLUMNS, TableInputError, decide_table
from appban.engine.decide import default_rulebook

DECISION_FIELDS: list[pa.Field] = [
    pa.field("verdict", pa.string()),
    pa.field("as_written", pa.string()),
    pa.field("enforcement", pa.string()),
    pa.field("rule_ids", pa.list_(pa.string())),
]
LATER_FIELD = pa.field("later", pa.list_(pa.string()))
ERROR_FIELD = pa.field("error", pa.string())
_SHOWN_CHARS = 300  # of one row's error, as in process: a value came from outside and may be megabytes long


def _decision_fields(later: bool) -> list[pa.Field]:
    return [*DECISION_FIELDS, *([LATER_FIELD] if later else []), ERROR_FIELD]


@dataclass(frozen=True)
class DecideScreener:
    tz: str | None
    later: bool
    name: str = "decide"
    keeps_rows: bool = True

    def _decide(self, table: pa.Table) -> pa.Table:
        return decide_table(table, tz=self.tz, rulebook=default_rulebook(), later=self.later)

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        fields = _decision_fields(self.later)
        core.check_clash(input_schema.names, [f.name for f in fields], "decided")
        missing = [name for name in INPUT_COLUMNS if name not in input_schema.names]
        if missing:
            raise ValueError(f"column(s) {', '.join(missing)} missing; decide needs {', '.join(INPUT_COLUMNS)}")
        try:
            # Null columns (types Dask's meta does not know) are read as text: their values are checked per row.
            known = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in input_schema])
            self._decide(known.empty_table())  # what refuses a whole table: its columns' types
        except TableInputError as error:
            raise ValueError(str(error).replace("row 0: ", "")) from None
        return pa.schema([*input_schema, *fields])

    def screen_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        table = pa.Table.from_batches([batch])
        messages: dict[int, str] = {}
        rows = np.arange(batch.num_rows)  # the batch's rows still being decided
        while True:
            try:
                decided = self._decide(table.take(pa.array(rows)) if len(messages) else table)
                break
            except TableInputError as error:
                # decide_table names at most a hundred bad rows per call: set those aside and decide the rest.
                before = len(messages)
                for row_error in error.errors:
                    original = int(rows[row_error.row])
                    said = f"{row_error.column}: {row_error.message}"
                    known = messages.get(original)
                    said = said if known is None else f"{known}; {said}"
                    messages[original] = said if len(said) <= _SHOWN_CHARS else said[:_SHOWN_CHARS] + "…"
                if len(messages) == before:  # nothing set aside: not a row's error, so no progress to make
                    raise
                rows = np.array([row for row in rows if row not in messages], dtype=np.int64)
        names = [f.name for f in DECISION_FIELDS] + (["later"] if self.later else [])
        fields = _decision_fields(self.later)
        if not messages:
            columns = [decided.column(name).cast(f.type) for name, f in zip(names, fields, strict=False)]
            errors = pa.nulls(batch.num_rows, pa.string())
        else:
            # Decided rows back to their places in the batch; set-aside rows are null.
            position = np.full(batch.num_rows, -1, dtype=np.int64)
            position[rows] = np.arange(len(rows))
            take = pa.array(position, mask=position < 0)
            columns = [decided.column(name).cast(f.type).take(take) for name, f in zip(names, fields, strict=False)]
            errors = pa.array([messages.get(row) for row in range(batch.num_rows)], pa.string())
        arrays = [*batch.columns, *(c.combine_chunks() for c in columns), errors]
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([*batch.schema, *fields]))


@dataclass(frozen=True)
class DecideFactory:
    tz: str | None = None
    later: bool = False

    def __call__(self) -> DecideScreener:
        return DecideScreener(self.tz, self.later)


def decide_batches(table: pa.Table, *, tz: str | None = None, later: bool = False) -> pa.Table:
    """In process, what decide_spark and decide_dask give: the table decided, bad rows set aside with an
    `error`, stamped with rulebook_version and bundle."""
    return core.screen_table(table, DecideFactory(tz, later))


def decide_spark(df: Any, *, tz: str | None = None, later: bool = False) -> Any:
    """`df` (a pyspark DataFrame with app, transaction, where, at and optional facts, tz and fact columns)
    with verdict, as_written, enforcement, rule_ids (and later), error, rulebook_version and bundle appended.
    Lazy; the columns are checked now."""
    from appban.distributed.spark import run_spark

    return run_spark(df, DecideFactory(tz, later))


def decide_dask(ddf: Any, *, tz: str | None = None, later: bool = False) -> Any:
    """`ddf` (a dask DataFrame) decided as decide_spark decides, the added columns as pandas ArrowDtype
    (null, not NaN, where a row has no answer). Lazy; partitions, index and divisions are unchanged."""
    from appban.distributed.dask import run_dask

    return run_dask(ddf, DecideFactory(tz, later))

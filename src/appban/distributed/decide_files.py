"""decide_table one file per task, as `appban decide --engine` runs it.

Each task reads one file of transactions as `appban decide` reads it (`appban.tablereader.read_table`, the
decision columns as text) and decides it with the distributed decide screener, so every row is answered as
`decide_table` answers it in process. Where `appban decide` refuses a whole file for one bad row, a file
here gives its bad rows an `error` ("column: message") and decides the others: a job over many files does
not stop for one row. A file that cannot be read or lacks a column is one error row (line null).

Output (OUTPUT_SCHEMA): `file`, `line` (the row's line in its file, as `appban decide` names bad rows), the
question's columns (app, transaction, where, at) and the answer's (verdict, as_written, enforcement,
rule_ids, with `later` the later instruments), then `error`. Other input columns (facts, tz, fact columns,
notes) are not carried: `file` and `line` find the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from appban.distributed.decide import DECISION_FIELDS, LATER_FIELD, DecideScreener
from appban.tablereader import read_table, row_lines
from appban.textcolumns import as_text

QUESTION_COLUMNS = ("app", "transaction", "where", "at")


def output_schema(later: bool) -> pa.Schema:
    return pa.schema(
        [pa.field("file", pa.string()), pa.field("line", pa.int64())]
        + [pa.field(name, pa.string()) for name in QUESTION_COLUMNS]
        + DECISION_FIELDS
        + ([LATER_FIELD] if later else [])
        + [pa.field("error", pa.string())]
    )


@dataclass(frozen=True)
class DecideFiles:
    """What a worker decides with (the per-process cache key): the zone for instants without one, and
    whether to add the later instruments."""

    tz: str | None = None
    later: bool = False

    def __call__(self) -> DecideFileScreener:
        return DecideFileScreener(self)


class DecideFileScreener:
    """A PathScreener: one file of transactions, decided row by row."""

    name = "decide-files"

    def __init__(self, params: DecideFiles) -> None:
        self.decider = DecideScreener(params.tz, params.later)
        self.schema = output_schema(params.later)

    def output_schema(self) -> pa.Schema:
        return self.schema

    def screen_path(self, path: str) -> pa.Table:
        try:
            table = read_table(Path(path))
            self.decider.output_schema(table.schema)  # a missing column or a fact column of the wrong type
        except ValueError as exc:  # TableReadError among them: it names the file and the lines
            message = str(exc)
            return self._error(path, message if path in message else f"{path}: {message}")
        if table.num_rows == 0:
            return self.schema.empty_table()
        decided = pa.Table.from_batches([self.decider.screen_batch(table.combine_chunks().to_batches()[0])])
        columns = {
            "file": pa.repeat(pa.scalar(path, pa.string()), decided.num_rows),
            "line": pa.array(row_lines(Path(path), decided.num_rows), pa.int64()),
        }
        for name in QUESTION_COLUMNS:
            columns[name] = as_text(decided.column(name).combine_chunks())
        for field in self.schema:
            if field.name not in columns:
                columns[field.name] = decided.column(field.name).cast(field.type)
        return pa.table(columns, schema=self.schema)

    def _error(self, path: str, message: str) -> pa.Table:
        columns = {field.name: pa.nulls(1, field.type) for field in self.schema}
        columns["file"] = pa.array([path], pa.string())
        columns["error"] = pa.array([message], pa.string())
        return pa.table(columns, schema=self.schema)

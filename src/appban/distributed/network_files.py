"""Network screening one log file per task, as `appban screen network --engine` runs it.

Each task screens one log file with `appban.screen.network.screen_network`, the function the in-process
command runs, so a file's records (classified, attributed to a customer, decided for the role) are those the
command gives for it. Every record of `screen_network` is per line, so files screened apart give the rows the
whole run would; the per-customer exposure, which spans files, is the driver's to total.

Output (OUTPUT_SCHEMA): the records as the in-process command's JSON `records` hold them, then `error`: a
malformed line or an unreadable file is one row with `file`, `line` (null for a whole file) and `error`
(the message the in-process run gives), every record column null.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pyarrow as pa

from appban.engine.decide import default_rulebook
from appban.network.classify import CLASS_FIELDS
from appban.network.records import RECORD_SCHEMA
from appban.screen.network import NetworkOptions, Role, screen_network

_DECISION_FIELDS = [
    pa.field("transaction", pa.string()),
    pa.field("verdict", pa.string()),
    pa.field("as_written", pa.string()),
    pa.field("enforcement", pa.string()),
    pa.field("rule_ids", pa.list_(pa.string())),
]
# The in-process records' columns, in their order: the reader's record (its own customer column replaced by
# the attributed one), the classification, the customer, the file and the decision.
RECORDS_SCHEMA = pa.schema(
    [field for field in RECORD_SCHEMA if field.name != "customer"]
    + CLASS_FIELDS
    + [pa.field("customer", pa.string()), pa.field("file", pa.string())]
    + _DECISION_FIELDS
)
OUTPUT_SCHEMA = pa.schema([*RECORDS_SCHEMA, pa.field("error", pa.string())])


@dataclass(frozen=True)
class NetworkFiles:
    """NetworkOptions as hashable values (the per-process cache key); calling it builds the screener."""

    role: str = "hosting"
    where: str = "US"
    scope: str = "all"
    customer_column: str | None = None
    customer_prefixes: tuple[tuple[str, str], ...] = ()
    asn_table: tuple[tuple[str, int], ...] = ()
    log_format: str | None = None
    column_map: tuple[tuple[str, str], ...] | None = None
    log_tz: str | None = None
    log_year: int | None = None

    @classmethod
    def of(cls, options: NetworkOptions) -> NetworkFiles:
        column_map = None if options.column_map is None else tuple(sorted(options.column_map.items()))
        return cls(options.role, options.where, options.scope, options.customer_column,
                   tuple(options.customer_prefixes), tuple(options.asn_table), options.log_format, column_map,
                   options.log_tz, options.log_year)  # fmt: skip

    def options(self) -> NetworkOptions:
        return NetworkOptions(
            role=cast(Role, self.role),
            where=self.where,
            scope=self.scope,  # type: ignore[arg-type]
            customer_column=self.customer_column,
            customer_prefixes=list(self.customer_prefixes),
            asn_table=list(self.asn_table),
            log_format=self.log_format,
            column_map=None if self.column_map is None else dict(self.column_map),
            log_tz=self.log_tz,
            log_year=self.log_year,
        )

    def __call__(self) -> NetworkFileScreener:
        return NetworkFileScreener(self)


class NetworkFileScreener:
    """A PathScreener: one log file's classified, decided records and its malformed lines."""

    name = "network-files"

    def __init__(self, params: NetworkFiles) -> None:
        self.options = params.options()
        self.rulebook = default_rulebook()

    def output_schema(self) -> pa.Schema:
        return OUTPUT_SCHEMA

    def screen_path(self, path: str) -> pa.Table:
        try:
            result = screen_network([Path(path)], self.options, self.rulebook)
        except (ValueError, OSError) as exc:  # a file no reader takes, or that cannot be opened
            message = str(exc)
            return _errors([(path, None, message if path in message else f"{path}: {message}")])
        pieces = [_conform(result.records)] if result.records.num_rows else []
        if result.errors:
            pieces.append(_errors([_located(error, path) for error in result.errors]))
        return pa.concat_tables(pieces) if pieces else OUTPUT_SCHEMA.empty_table()


def _located(error: str, path: str) -> tuple[str, int | None, str]:
    """(file, line, message) of an in-process error line "path:line: message"."""
    head, _, _ = error[len(path) + 1 :].partition(":") if error.startswith(path + ":") else ("", "", "")
    return path, int(head) if head.isdigit() else None, error


def _conform(records: pa.Table) -> pa.Table:
    columns = []
    for field in OUTPUT_SCHEMA:
        if field.name not in records.column_names:
            columns.append(pa.nulls(records.num_rows, field.type))
            continue
        values = records.column(field.name).combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        columns.append(values.cast(field.type))
    return pa.table(columns, schema=OUTPUT_SCHEMA)


def _errors(errors: list[tuple[str, int | None, str]]) -> pa.Table:
    columns = {field.name: pa.nulls(len(errors), field.type) for field in OUTPUT_SCHEMA}
    columns["file"] = pa.array([file for file, _, _ in errors], pa.string())
    columns["line"] = pa.array([line for _, line, _ in errors], pa.int64())
    columns["error"] = pa.array([message for _, _, message in errors], pa.string())
    return pa.table(columns, schema=OUTPUT_SCHEMA)

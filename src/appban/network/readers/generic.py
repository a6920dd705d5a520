"""Any CSV, JSON-lines or Parquet log, read through a column map.

The map names, for each record field, the column that holds it:
`{"ts": "Time", "host": "QueryName", "client": "Client", "customer": "Account"}`. Without a map, columns
already named like the record's fields (any case) are used; `ts` is always required. CSV may be
comma-, tab-, semicolon- or pipe-separated and may quote fields (see appban.columnar).

Timestamps are ISO 8601 with an offset ("2020-09-20T04:01:02.5+02:00", "...Z") or epoch seconds. One
without an offset is a malformed row unless `tz` names its zone. Ports and byte counts that are not
whole numbers become null.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from appban.network.records import MAPPABLE, make_batch
from appban.reading.batches import rebatch
from appban.reading.columnar import file_columns, read_columns
from appban.reading.stats import DEFAULT_BATCH_ROWS, Columns, Lines, ReadStats
from appban.reading.values import (
    check_zone,
    describe_time,
    null_mask,
    reject,
    select,
    to_count,
    to_port,
    to_text,
    to_timestamp,
)


class GenericReader:
    name = "generic"

    def __init__(self, column_map: Mapping[str, str] | None = None, tz: str | None = None) -> None:
        unknown = sorted(set(column_map or {}) - set(MAPPABLE))
        if unknown:
            raise ValueError(f"cannot map {', '.join(unknown)}: the fields are {', '.join(MAPPABLE)}")
        self.column_map = dict(column_map) if column_map is not None else None
        self.tz = check_zone(tz) if tz else None

    def sniff(self, path: Path, head: bytes) -> bool:
        """Detection picks this reader only for files whose columns carry the record's own names."""
        mapping = self._mapping(file_columns(path, head))
        return "ts" in mapping and ("host" in mapping or "dst_ip" in mapping)

    def _mapping(self, columns: list[str]) -> dict[str, str]:
        """Record field -> column, for the columns present."""
        if self.column_map is not None:
            return {field: column for field, column in self.column_map.items() if column in columns}
        by_lower = {column.lower(): column for column in columns}
        return {field: by_lower[field] for field in MAPPABLE if field in by_lower}

    def _checked_mapping(self, path: Path, columns: list[str]) -> dict[str, str]:
        mapping = self._mapping(columns)
        wanted = self.column_map if self.column_map is not None else mapping
        missing = [f"{column!r} (for {field})" for field, column in wanted.items() if field not in mapping]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)}; the columns are {', '.join(columns)}")
        if "ts" not in mapping:
            raise ValueError(f"{path}: no timestamp column; map one with ts=COLUMN (columns: {', '.join(columns)})")
        return mapping

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        # Checked now, not on the first batch: a wrong column map is the caller's error, raised at once.
        mapping = self._checked_mapping(path, file_columns(path))
        batches = read_columns(path, list(mapping.values()), functools.partial(self._batch, mapping=mapping), stats,
                               batch_rows)  # fmt: skip
        return rebatch(batches, batch_rows, stats)

    def _batch(
        self, values: Columns, numbers: Lines, path: Path, stats: ReadStats, *, mapping: dict[str, str]
    ) -> pa.RecordBatch:
        def column(field: str) -> Any:
            return values.get(mapping[field]) if field in mapping else None

        ts = to_timestamp(column("ts"), self.tz)
        keep = reject(stats, path, numbers, null_mask(ts), describe_time(column("ts"), self.tz, "--log-tz"))
        record = {field: to_text(column(field)) for field in ("client", "host", "src_ip", "dst_ip", "customer")}
        record |= {"ts": ts, "dst_port": to_port(column("dst_port")), "bytes": to_count(column("bytes"))}
        return make_batch(self.name, numbers[keep], select(record, keep))

"""Any CSV, JSON-lines or Parquet log, read through a column map.

The map names, for each record field, the column that holds it:
`{"ts": "Time", "host": "QueryName", "client": "Client", "customer": "Account"}`. Without a map, columns
already named like the record's fields (any case) are used; `ts` is always required. CSV may be
comma-, tab-, semicolon- or pipe-separated (told from the header line) and may quote fields.

Timestamps are ISO 8601 with an offset ("2020-09-20T04:01:02.5+02:00", "...Z") or epoch seconds. One
without an offset is a malformed row unless `tz` names its zone. Ports and byte counts that are not
whole numbers become null.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from appban.network.records import (
    DEFAULT_BATCH_ROWS,
    MAPPABLE,
    Columns,
    Delimited,
    LineChunk,
    Lines,
    ReadStats,
    check_zone,
    head_lines,
    iter_line_chunks,
    iter_parquet,
    make_batch,
    null_mask,
    parquet_columns,
    parse_delimited,
    parse_in_order,
    parse_json_lines,
    parse_line_chunks,
    read_head,
    rebatch,
    reject,
    select,
    to_count,
    to_port,
    to_text,
    to_timestamp,
)

_DELIMITERS = (",", "\t", ";", "|")
_SAMPLE_LINES = 200


def _delimiter(header: str) -> str:
    return max(_DELIMITERS, key=header.count)  # ties go to the comma, listed first


def _csv_names(header: str, delimiter: str) -> list[str]:
    return [name.strip() for name in next(csv.reader([header], delimiter=delimiter), [])]


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
        mapping = self._mapping(self._columns(path, head))
        return "ts" in mapping and ("host" in mapping or "dst_ip" in mapping)

    def _columns(self, path: Path, head: bytes) -> list[str]:
        if head.startswith(b"PAR1"):
            return parquet_columns(path)
        lines = head_lines(head, limit=_SAMPLE_LINES)
        if not lines:
            return []
        if lines[0].lstrip().startswith("{"):
            return sorted(_json_samples(lines))
        return _csv_names(lines[0], _delimiter(lines[0]))

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
        head = read_head(path)
        mapping = self._checked_mapping(path, self._columns(path, head))
        if head.startswith(b"PAR1"):
            batches = self._read_parquet(path, mapping, stats, batch_rows)
        elif head.lstrip().startswith(b"{"):
            batches = self._read_json(path, mapping, head, stats)
        else:
            batches = self._read_csv(path, mapping, stats)
        return rebatch(batches, batch_rows, stats)

    def _read_parquet(
        self, path: Path, mapping: dict[str, str], stats: ReadStats, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        columns = list(dict.fromkeys(mapping.values()))
        for values, numbers in iter_parquet(path, columns, batch_rows):
            yield self._batch(values, numbers, mapping, path, stats)

    def _read_json(
        self, path: Path, mapping: dict[str, str], head: bytes, stats: ReadStats
    ) -> Iterator[pa.RecordBatch]:
        samples = _json_samples(head_lines(head, limit=_SAMPLE_LINES))
        columns = list(dict.fromkeys(mapping.values()))
        schema = pa.schema([(column, _json_type(samples.get(column, []))) for column in columns])

        def parse(chunk: LineChunk, own: ReadStats) -> pa.RecordBatch | None:
            values, numbers = parse_json_lines(chunk, schema, path, own)
            return self._batch(values, numbers, mapping, path, own) if len(numbers) else None

        return parse_line_chunks(path, parse, stats)

    def _read_csv(self, path: Path, mapping: dict[str, str], stats: ReadStats) -> Iterator[pa.RecordBatch]:
        notes = ReadStats()
        columns = tuple(dict.fromkeys(mapping.values()))

        def parse(job: tuple[Delimited, bytes, Lines], own: ReadStats) -> pa.RecordBatch | None:
            spec, data, numbers = job
            values, numbers = parse_delimited(data, numbers, spec, path, own)
            return self._batch(values, numbers, mapping, path, own) if len(numbers) else None

        return parse_in_order(_csv_jobs(iter_line_chunks(path, notes), columns), parse, notes, stats)

    def _batch(
        self, values: Columns, numbers: Lines, mapping: dict[str, str], path: Path, stats: ReadStats
    ) -> pa.RecordBatch:
        def column(field: str) -> Any:
            return values.get(mapping[field]) if field in mapping else None

        ts = to_timestamp(column("ts"), self.tz)
        keep = reject(stats, path, numbers, null_mask(ts), _describe_time(column("ts"), self.tz))
        record = {field: to_text(column(field)) for field in ("client", "host", "src_ip", "dst_ip", "customer")}
        record |= {"ts": ts, "dst_port": to_port(column("dst_port")), "bytes": to_count(column("bytes"))}
        return make_batch(self.name, numbers[keep], select(record, keep))


def _csv_jobs(chunks: Iterator[LineChunk], columns: tuple[str, ...]) -> Iterator[tuple[Delimited, bytes, Lines]]:
    """Each chunk's data lines with the layout its header line set (the first non-blank line)."""
    spec: Delimited | None = None
    for chunk in chunks:
        data, numbers = chunk.data, chunk.numbers()
        if spec is None:
            stream = io.BytesIO(data)
            for line in stream:
                numbers = numbers[1:]
                if line.strip():
                    header = line.decode("utf-8").strip("\r\n")
                    delimiter = _delimiter(header)
                    spec = Delimited(tuple(_csv_names(header, delimiter)), columns, delimiter, quoted=True)
                    break
            data = data[stream.tell() :]
        if spec is not None:
            yield spec, data, numbers


def _json_samples(lines: list[str]) -> dict[str, list[Any]]:
    """Key -> the values the sampled lines give it."""
    samples: dict[str, list[Any]] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            for key, value in record.items():
                samples.setdefault(key, []).append(value)
    return samples


def _json_type(values: list[Any]) -> Any:
    """The Arrow type for a key, guessed from sampled values. A chunk that breaks the guess is still read,
    line by line."""
    present = [value for value in values if value is not None]
    if present and all(isinstance(value, bool) for value in present):
        return pa.bool_()
    if present and all(isinstance(value, int) and not isinstance(value, bool) for value in present):
        return pa.int64()  # ids stay exact (a double would round those above 2**53)
    if present and all(isinstance(value, int | float) and not isinstance(value, bool) for value in present):
        return pa.float64()
    return pa.string()


def _describe_time(values: Any, tz: str | None) -> Any:
    def describe(row: int) -> str:
        value = None if values is None else values[row].as_py()
        if value is None:
            return "missing timestamp"
        parsed = to_timestamp(pa.array([str(value)]), "UTC")[0].as_py() if tz is None else None
        if parsed is not None:
            return f"timestamp {str(value)[:40]!r} has no UTC offset; give its time zone (--log-tz)"
        return f"bad timestamp {str(value)[:40]!r}"

    return describe

"""Flow records: nfdump's CSV export and AWS VPC flow logs, as text or Parquet.

nfdump (`nfdump -o csv`): a header `ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,...`, one
flow a line, and a trailing `Summary` block, which is skipped. `ts` is the first-seen time, local and
without a zone: `tz` names it (default "UTC"). `bytes` = ibyt + obyt (or `byt`).

AWS VPC flow logs: space-separated, with the header `version account-id interface-id srcaddr dstaddr
srcport dstport protocol packets bytes start end action log-status` (version 2's default format; custom
formats name their own fields in the header, and a headerless file is read as version 2). `start` is in
epoch seconds; `-` is null; NODATA and SKIPDATA records are skipped. Parquet deliveries use the same
names with underscores.

Records: `ts` the flow start, `client` and `src_ip` the source address, `dst_ip`/`dst_port` the
destination; `host` is null (match flows by address).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from appban.network.records import make_batch
from appban.reading.batches import rebatch
from appban.reading.chunks import LineChunk, iter_line_chunks, parse_in_order, starts_a_line
from appban.reading.parse import Delimited, iter_parquet, parquet_columns, parse_delimited
from appban.reading.stats import DEFAULT_BATCH_ROWS, Columns, Lines, ReadStats
from appban.reading.streams import head_lines
from appban.reading.values import (
    UTC_US,
    check_zone,
    describe_value,
    flags,
    null_mask,
    reject,
    select,
    to_count,
    to_port,
    to_text,
    to_timestamp,
    total,
)

_AWS_V2 = (
    *("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport"),
    *("protocol", "packets", "bytes", "start", "end", "action", "log-status"),
)
# A headerless version 2 record: version, account (or "unknown"), interface.
_AWS_ROW = re.compile(r"^\d+ (?:\d{12}|unknown|-) (?:eni-\S+|-) ")
_NO_DATA = pa.array(["NODATA", "SKIPDATA"])


@dataclass(frozen=True)
class _Layout:
    """Which field plays which part, in one flow format (names as normalised by `_normalise`)."""

    ts: str
    src: str
    dst: str
    port: str
    byte_fields: tuple[str, ...]
    status: str | None = None

    def wanted(self, names: Iterable[str]) -> tuple[str, ...]:
        fields = (self.ts, self.src, self.dst, self.port, *self.byte_fields, self.status)
        present = set(names)
        return tuple(name for name in fields if name is not None and name in present)


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


class _FlowReader:
    name = ""
    delimiter = ","
    nulls: tuple[str, ...] = ()
    layout = _Layout("", "", "", "", ())
    tz = "UTC"

    def sniff(self, path: Path, head: bytes) -> bool:
        if head.startswith(b"PAR1"):
            return self._fits({_normalise(name) for name in parquet_columns(path)})
        lines = head_lines(head, limit=2)
        return bool(lines) and self._sniff_text(lines[0])

    def _sniff_text(self, first: str) -> bool:
        return self._fits({_normalise(name) for name in first.split(self.delimiter)})

    def _fits(self, names: set[str]) -> bool:
        required = {self.layout.ts, self.layout.src, self.layout.dst}
        return required <= names and any(name in names for name in self.layout.byte_fields)

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        with Path(path).open("rb") as raw:
            parquet = raw.read(4) == b"PAR1"
        return rebatch(
            self._read_parquet(path, stats, batch_rows) if parquet else self._read_text(path, stats), batch_rows, stats
        )

    def _read_parquet(self, path: Path, stats: ReadStats, batch_rows: int) -> Iterator[pa.RecordBatch]:
        actual = {_normalise(name): name for name in parquet_columns(path)}
        wanted = self.layout.wanted(actual)
        for columns, numbers in iter_parquet(path, [actual[name] for name in wanted], batch_rows):
            yield self._batch({name: columns[actual[name]] for name in wanted}, numbers, path, stats)

    def _read_text(self, path: Path, stats: ReadStats) -> Iterator[pa.RecordBatch]:
        notes = ReadStats()

        def parse(job: tuple[tuple[str, ...], bytes, Lines], own: ReadStats) -> pa.RecordBatch | None:
            names, data, numbers = job
            spec = Delimited(names, self.layout.wanted(names), delimiter=self.delimiter, nulls=self.nulls)
            columns, numbers = parse_delimited(data, numbers, spec, path, own)
            return self._batch(columns, numbers, path, own) if len(numbers) else None

        return parse_in_order(self._jobs(iter_line_chunks(path, notes), notes), parse, notes, stats)

    def _jobs(self, chunks: Iterator[LineChunk], notes: ReadStats) -> Iterator[tuple[tuple[str, ...], bytes, Lines]]:
        names: tuple[str, ...] | None = None
        for chunk in chunks:
            data, numbers = chunk.data, chunk.numbers()
            if names is None:
                names, data, numbers = self._header(data, numbers)
            yield names, data, numbers

    def _header(self, data: bytes, numbers: Lines) -> tuple[tuple[str, ...], bytes, Lines]:
        """The field names, and the data without the header line."""
        end = data.find(b"\n") + 1
        first = data[:end].decode("utf-8").strip()
        names = tuple(_normalise(name) for name in first.split(self.delimiter))
        return names, data[end:], numbers[1:]

    def _batch(self, columns: Columns, numbers: Lines, path: Path, stats: ReadStats) -> pa.RecordBatch:
        layout = self.layout
        if layout.status in columns:
            # NODATA / SKIPDATA records say an interface was idle or lost records: nothing to screen.
            idle = flags(pc.is_in(columns[layout.status], value_set=_NO_DATA))
            stats.skipped += int(idle.sum())
            columns, numbers = select(columns, ~idle), numbers[~idle]
        ts = to_timestamp(columns[layout.ts], self.tz) if layout.ts in columns else pa.nulls(len(numbers), UTC_US)
        keep = reject(stats, path, numbers, null_mask(ts), describe_value(columns.get(layout.ts), "flow start"))
        source = to_text(columns.get(layout.src))
        counts = [to_count(columns.get(name)) for name in layout.byte_fields if name in columns]
        record = {
            "ts": ts,
            "client": source,
            "src_ip": source,
            "dst_ip": to_text(columns.get(layout.dst)),
            "dst_port": to_port(columns.get(layout.port)),
            "bytes": _sum(counts),
        }
        return make_batch(self.name, numbers[keep], select(record, keep))


def _sum(counts: list[Any]) -> Any:
    result = None
    for count in counts:
        result = count if result is None else total(result, count)
    return result


class NfdumpReader(_FlowReader):
    name = "nfdump"
    layout = _Layout("ts", "sa", "da", "dp", ("ibyt", "obyt", "byt"))

    def __init__(self, tz: str = "UTC") -> None:
        self.tz = check_zone(tz)

    def _jobs(self, chunks: Iterator[LineChunk], notes: ReadStats) -> Iterator[tuple[tuple[str, ...], bytes, Lines]]:
        summary = False
        for names, data, numbers in super()._jobs(chunks, notes):
            if summary:
                notes.skipped += len(numbers)
                continue
            if starts_a_line(data, b"Summary"):
                # nfdump closes its CSV with a summary block of other columns: not flows.
                data, numbers, summary = _before_summary(data, numbers, notes)
            yield names, data, numbers


def _before_summary(data: bytes, numbers: Lines, notes: ReadStats) -> tuple[bytes, Lines, bool]:
    at = 0 if data.startswith(b"Summary") else data.find(b"\nSummary") + 1
    before = data[:at].count(b"\n")
    notes.skipped += len(numbers) - before
    return data[:at], numbers[:before], True


class AwsVpcReader(_FlowReader):
    name = "aws-vpc"
    delimiter = " "
    nulls = ("-",)
    layout = _Layout("start", "srcaddr", "dstaddr", "dstport", ("bytes",), status="log_status")

    def _sniff_text(self, first: str) -> bool:
        return super()._sniff_text(first) or bool(_AWS_ROW.match(first) and len(first.split()) == len(_AWS_V2))

    def _header(self, data: bytes, numbers: Lines) -> tuple[tuple[str, ...], bytes, Lines]:
        if _AWS_ROW.match(data[:200].decode("utf-8", "replace")):
            return tuple(_normalise(name) for name in _AWS_V2), data, numbers  # no header: version 2
        return super()._header(data, numbers)

"""Network log records: one Arrow schema for every log format, the reader interface, detection and the entry
point. How files are read (streams, chunks of lines, parsing, values) lives in appban.reading, which every
screener shares.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from appban.reading import batches
from appban.reading.stats import DEFAULT_BATCH_ROWS, Lines, ReadStats
from appban.reading.streams import read_head
from appban.reading.values import UTC_US

RECORD_SCHEMA = pa.schema(
    [
        ("ts", UTC_US),
        ("client", pa.string()),  # the querying or source address
        ("host", pa.string()),  # DNS query name, TLS SNI or HTTP Host; null for flows
        ("src_ip", pa.string()),  # flows only
        ("dst_ip", pa.string()),  # flow destination, or the server that answered a DNS/TLS/HTTP request
        ("dst_port", pa.int32()),
        ("bytes", pa.int64()),  # total bytes when the format tells them
        ("customer", pa.string()),  # filled only through the generic reader's column map
        ("source", pa.string()),  # the reader's name, e.g. "zeek-dns"
        ("line", pa.int64()),  # 1-based line of the decompressed input (row number + 1 for Parquet)
    ]
)
# The record fields a column map may fill; `source` and `line` always come from the reader.
MAPPABLE = ("ts", "client", "host", "src_ip", "dst_ip", "dst_port", "bytes", "customer")


class LogReader(Protocol):
    """One log format."""

    name: str

    def sniff(self, path: Path, head: bytes) -> bool:
        """Whether the file name and `head` (its first decompressed bytes) look like this format."""
        ...

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """RECORD_SCHEMA batches of at most `batch_rows` rows; malformed lines are counted in `stats`."""
        ...


def detect(path: Path, readers: Sequence[LogReader] | None = None) -> LogReader:
    """The first reader (in detection order) that recognises the file; ValueError when none does."""
    from appban.network.readers import make_readers

    candidates = make_readers() if readers is None else readers
    head = read_head(Path(path))
    for reader in candidates:
        if reader.sniff(Path(path), head):
            return reader
    names = ", ".join(reader.name for reader in candidates)
    raise ValueError(f"{path}: cannot tell the log format; use --log-format (one of: {names})")


def read_log(
    path: Path,
    fmt: str | None = None,
    column_map: dict[str, str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    *,
    tz: str | None = None,
    year: int | None = None,
) -> tuple[Iterator[pa.RecordBatch], ReadStats]:
    """Batches of RECORD_SCHEMA from one log file, and the stats the read fills in as it is consumed.

    `fmt` names a reader ("bind", "zeek-dns", ...) or a family ("zeek", "flows") to detect within; without
    it the format is detected. A `column_map` (record field -> column) selects the generic reader. `tz` is
    the zone of timestamps written without one (formats that never carry one default to UTC; the generic
    reader rejects them without it); `year` completes syslog timestamps, which have none.
    """
    from appban.network.readers import FAMILIES, make_readers
    from appban.network.readers.generic import GenericReader

    if batch_rows < 1:
        raise ValueError(f"batch_rows must be positive, not {batch_rows}")
    path = Path(path)
    stats = ReadStats()
    reader: LogReader
    if column_map is not None or fmt == "generic":
        if fmt not in (None, "generic"):
            raise ValueError(f"a column map is for --log-format generic, not {fmt!r}")
        reader = GenericReader(column_map, tz=tz)
    else:
        readers = make_readers(tz=tz, year=year)
        chosen = _named(readers, fmt, FAMILIES) if fmt is not None else readers
        if len(chosen) > 1 and not read_head(path).strip():
            return iter(()), stats  # an empty log holds no records whatever its format
        reader = chosen[0] if len(chosen) == 1 else detect(path, chosen)
    return reader.read(path, stats, batch_rows), stats


def _named(readers: Sequence[LogReader], fmt: str, families: Mapping[str, Sequence[str]]) -> list[LogReader]:
    names = families.get(fmt, (fmt,))
    chosen = [reader for reader in readers if reader.name in names]
    if not chosen:
        known = ", ".join([*(reader.name for reader in readers), *families, "generic"])
        raise ValueError(f"unknown log format {fmt!r} (known: {known})")
    return chosen


def make_batch(source: str, numbers: Lines, columns: Mapping[str, Any], schema: Any = RECORD_SCHEMA) -> pa.RecordBatch:
    """A network record batch (or one of `schema`): the given columns, nulls for the others, `source` and
    `line` filled."""
    return batches.make_batch(source, numbers, columns, schema)

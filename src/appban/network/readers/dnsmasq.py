"""dnsmasq query logs (`log-queries`), as syslog writes them or dnsmasq's own `log-facility` file.

    Sep 20 04:01:02 gw dnsmasq[123]: query[A] www.tiktok.com from 192.0.2.10

Only `query[...]` lines are records (`host` the name, `client` the asker); `reply`, `forwarded`, `cached`
and other dnsmasq lines, and lines of other programs in the same syslog file, are skipped, not malformed.
`log-queries=extra` adds a serial number and the client's address and port before `query`. An RFC 3339
time ("2020-09-20T04:01:02.123+02:00", rsyslog's high-precision format) is read with its offset.

Pi-hole's `pihole.log` is this format. Year: a syslog time has none. `year` gives it; without it the file's
modification time does, a line from a month after that time's month belonging to the year before (a log
rotated in January holds December's lines), and the read says so once in its notes. Time zone: the time is
local; `tz` names the zone, default "UTC".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from appban.network.records import make_batch
from appban.reading.batches import rebatch
from appban.reading.chunks import LineChunk, parse_line_chunks
from appban.reading.stats import DEFAULT_BATCH_ROWS, ReadStats
from appban.reading.streams import head_lines, log_name
from appban.reading.values import (
    UTC_US,
    check_zone,
    first_present,
    flags,
    null_mask,
    only,
    reject,
    report_unmatched,
    select,
    syslog_timestamps,
    to_text,
    to_timestamp,
    yearless_note,
)

_STAMP = (
    r"^(?:(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d\d?) (?P<clock>\d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))?"
    r"|(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?))"
)
# A syslog line: time, optional host name, then the program's tag.
PREFIX = _STAMP + r" (?:\S+ )?[\w./-]+(?:\[\d+\])?: "
_QUERY = r"dnsmasq(?:\[\d+\])?: (?:\d+ \S+ )?query\[[^\]]+\] (?P<host>\S+) from (?P<client>[^\s#]+)(?:#\d+)?\s*$"
PATTERN = _STAMP + r" (?:\S+ )?" + _QUERY
_QUERYISH = r"dnsmasq(?:\[\d+\])?: (?:\d+ \S+ )?query\["
_LINE = _STAMP + r" (?:\S+ )?dnsmasq(?:\[\d+\])?: "
_SNIFF_LINES = 400  # in a shared syslog file dnsmasq's first line may come after many others


class DnsmasqReader:
    name = "dnsmasq"

    def __init__(self, tz: str = "UTC", year: int | None = None) -> None:
        self.tz = check_zone(tz)
        self.year = year

    def sniff(self, path: Path, head: bytes) -> bool:
        lines = head_lines(head, limit=_SNIFF_LINES)
        if not lines:
            return "dnsmasq" in log_name(path)
        # Arrow's regular expressions are RE2's: linear in the text, whatever the head holds.
        return bool(pc.any(pc.match_substring_regex(pa.array(lines, pa.string()), _LINE)).as_py())

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        batches = parse_line_chunks(path, lambda chunk, own: self._batch(chunk, path, own), stats)
        return rebatch(batches, batch_rows, stats)

    def _batch(self, chunk: LineChunk, path: Path, stats: ReadStats) -> pa.RecordBatch | None:
        lines = chunk.lines()
        numbers = chunk.numbers()
        parts = pc.extract_regex(lines, PATTERN)
        matched = flags(pc.is_valid(parts))
        if not matched.all():
            report_unmatched(lines, matched, numbers, path, stats, PREFIX, _QUERYISH, "dnsmasq log")
        if not matched.any():
            return None
        # Most lines of a dnsmasq log are replies and forwards: keep only the queries before converting.
        parts = parts.filter(pa.array(matched))
        numbers = numbers[matched]
        ts = self._timestamps(parts, path, stats)
        keep = reject(stats, path, numbers, null_mask(ts), _bad_time(parts))
        record = {
            "ts": ts,
            "client": to_text(pc.struct_field(parts, "client")),
            "host": to_text(pc.struct_field(parts, "host")),
        }
        return make_batch(self.name, numbers[keep], select(record, keep))

    def _timestamps(self, parts: Any, path: Path, stats: ReadStats) -> Any:
        stamps = []
        day = pc.struct_field(parts, "day")
        if pc.any(pc.not_equal(day, "")).as_py():
            month, clock, fraction = (pc.struct_field(parts, name) for name in ("mon", "clock", "frac"))
            stamps.append(syslog_timestamps(month, day, clock, fraction, path, self.year, self.tz))
            if self.year is None:
                stats.note(path, yearless_note(path, self.tz))
        iso = pc.struct_field(parts, "iso")
        if pc.any(pc.not_equal(iso, "")).as_py():
            stamps.append(to_timestamp(only(iso, pc.not_equal(iso, "")), self.tz))
        return first_present(stamps, len(parts), UTC_US)


def _bad_time(parts: Any) -> Any:
    def describe(row: int) -> str:
        fields = parts[row].as_py()
        shown = fields["iso"] or f"{fields['mon']} {fields['day']} {fields['clock']}"
        return f"bad time {shown!r}"

    return describe

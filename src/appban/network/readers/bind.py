"""BIND 9 query logs (the `queries` category), from a file channel or through syslog.

A query line, shown on two lines here:

    19-Sep-2020 23:59:01.123 queries: info: client @0x7f1 192.0.2.10#53421 (www.tiktok.com):
        query: www.tiktok.com IN A +E(0)K (198.51.100.53)

Older servers write no `@0x...` (before 9.11) and no `(name)` after the client (before 9.10); `print-category`
and `print-severity` add the `queries: info:` prefix; a view adds `view NAME:` and a TSIG key `/key NAME`.
The time is `print-time`'s `DD-Mon-YYYY HH:MM:SS.mmm`, one of its ISO 8601 forms, or, through syslog, a
syslog prefix naming `named`: the traditional `Mon DD HH:MM:SS host named[pid]:`, rsyslog's high-precision
`2020-09-20T23:59:01.123456+00:00 host named[pid]:`, or RFC 5424's `<30>1 2020-09-20T23:59:01Z host named
812 - -`. Records: `client` the querying address, `host` the query name, `dst_ip` the server address the
query came in on (the last parenthesis), when written.

Time zone: BIND writes local time without a zone (except `print-time iso8601-utc`), so `tz` names the
server's zone: an IANA name or a fixed offset, default "UTC". Traditional syslog lines have no year: `year`
gives it, else the file's modification time does (see `appban.reading.values.syslog_timestamps`), and the
read says so once in its notes.

A shared syslog file (`/var/log/syslog`, `/var/log/messages`) holds every program's lines: those of other
programs are skipped, as are BIND lines of other categories. A BIND line that mentions `query:` but does
not parse is malformed, and so is a line that is neither BIND's nor syslog's.
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
    civil_timestamps,
    first_present,
    flags,
    month_numbers,
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

_OWN_DATE = r"(?P<day>\d\d?)-(?P<mon>[A-Za-z]{3})-(?P<year>\d{4}) (?P<clock>\d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))?"
_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_SYSLOG_TIME = r"[A-Z][a-z]{2} +\d\d? \d\d:\d\d:\d\d"
_PRI = r"(?:<\d{1,3}>\d{1,2} )?"  # RFC 5424's priority and version
# After a syslog time: the host, then `named[pid]:` (traditional, rsyslog) or `named PROCID MSGID SD` (RFC 5424).
_NAMED = r" \S+ named(?:(?:\[\d+\])?:| \S+ \S+ (?:-|(?:\[[^\]]*\])+))"
_STAMP = (
    rf"(?:{_OWN_DATE}"
    rf"|{_PRI}(?P<iso>{_ISO})(?:{_NAMED})?"
    r"|(?P<smon>[A-Z][a-z]{2}) +(?P<sday>\d\d?) (?P<sclock>\d\d:\d\d:\d\d)" + _NAMED + ")"
)
_CATEGORY = r" (?:[a-z][a-z-]*: )?(?:(?:critical|error|warning|notice|info|debug(?: \d+)?|dynamic): )?"
_QUERY = (
    r"client (?:@0x[0-9A-Fa-f]+ )?(?P<client>[^\s#]+)#\d+(?:/key \S+)?(?: \([^)]*\))?: "
    r"(?:view [^:]*: )?query: (?P<host>\S+) \S+ \S+ \S+(?: \((?P<server>[^)]*)\))?\s*$"
)
PREFIX = "^" + _STAMP + _CATEGORY
PATTERN = PREFIX + _QUERY
# Lines that are not records but belong in the file: BIND's own lines of other categories, and any program's
# syslog lines (a shared /var/log/syslog). They are skipped unless they look like a query (below).
_LOGGED = rf"^(?:{_OWN_DATE}|{_PRI}{_ISO}|{_SYSLOG_TIME})"
# A BIND line that looks like a query but did not parse: malformed. An ISO time alone cannot tell BIND's own
# line from another program's syslog line, so there the line must go on as BIND's query lines do.
_QUERYISH = (
    rf"^{_OWN_DATE}.*query: "
    rf"|^{_PRI}{_ISO}{_CATEGORY}client .*query: "
    rf"|^{_PRI}(?:{_ISO}|{_SYSLOG_TIME}){_NAMED}.*query: "
)
_SNIFF_LINES = 400  # a shared syslog file may hold many other lines before the first query


class BindReader:
    name = "bind"

    def __init__(self, tz: str = "UTC", year: int | None = None) -> None:
        self.tz = check_zone(tz)
        self.year = year

    def sniff(self, path: Path, head: bytes) -> bool:
        lines = head_lines(head, limit=_SNIFF_LINES)
        if not lines:
            name = log_name(path)
            return "named" in name or "quer" in name
        # Arrow's regular expressions are RE2's: linear in the text, whatever the head holds.
        return bool(pc.any(pc.match_substring_regex(pa.array(lines, pa.string()), PATTERN)).as_py())

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        batches = parse_line_chunks(path, lambda chunk, own: self._batch(chunk, path, own), stats)
        return rebatch(batches, batch_rows, stats)

    def _batch(self, chunk: LineChunk, path: Path, stats: ReadStats) -> pa.RecordBatch:
        lines = chunk.lines()
        numbers = chunk.numbers()
        parts = pc.extract_regex(lines, PATTERN)
        matched = flags(pc.is_valid(parts))
        if not matched.all():
            report_unmatched(lines, matched, numbers, path, stats, _LOGGED, _QUERYISH, "BIND query")
        ts = self._timestamps(parts, path, stats)
        bad_ts = null_mask(ts) & matched
        keep = reject(stats, path, numbers, bad_ts, lambda row: f"bad time in {lines[row].as_py()[:40]!r}")
        keep &= matched
        record = {
            "ts": ts,
            "client": to_text(pc.struct_field(parts, "client")),
            "host": to_text(pc.struct_field(parts, "host")),
            "dst_ip": to_text(pc.struct_field(parts, "server")),
        }
        return make_batch(self.name, numbers[keep], select(record, keep))

    def _timestamps(self, parts: Any, path: Path, stats: ReadStats) -> Any:
        def field(name: str) -> Any:
            return pc.struct_field(parts, name)

        stamps = []
        day = field("day")
        if pc.any(pc.not_equal(day, "")).as_py():
            months = month_numbers(field("mon"))
            stamps.append(civil_timestamps(field("year"), months, day, field("clock"), field("frac"), self.tz))
        iso = field("iso")
        if pc.any(pc.not_equal(iso, "")).as_py():
            stamps.append(to_timestamp(only(iso, pc.not_equal(iso, "")), self.tz))
        sday = field("sday")
        if pc.any(pc.not_equal(sday, "")).as_py():
            sclock = field("sclock")
            stamps.append(syslog_timestamps(field("smon"), sday, sclock, None, path, self.year, self.tz))
            if self.year is None:
                stats.note(path, yearless_note(path, self.tz))
        return first_present(stamps, len(parts), UTC_US)

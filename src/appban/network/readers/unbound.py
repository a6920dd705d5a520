"""Unbound's query and reply logs (`log-queries: yes`, `log-replies: yes`), in its own log file or syslog.

    [1600645141] unbound[1234:0] info: 192.0.2.10 www.tiktok.com. A IN
    [1600645141] unbound[1234:0] info: 192.0.2.10 www.tiktok.com. A IN NOERROR 0.000000 0 45

A query line names the client, the name, its type and class; a reply line adds the rcode, the time taken,
whether it came from the cache and the reply's size (and, with `log-destaddr`, " on udp 192.0.2.1 53").
`log-tag-queryreply: yes` writes `query:` and `reply:` instead of `info:`. The time is Unbound's epoch
seconds in brackets, or with `log-time-ascii` a local "Sep 20 23:59:01" (with `log-time-iso` too, an ISO
8601 time with its offset); through syslog, the syslog time and tag come first and Unbound writes only
`[pid:thread] info: ...`. Records: `client` and `host` (without the final dot).

A lookup logged by both options is one record: where a stretch of the log read at once (a few megabytes)
holds query lines, its reply lines are skipped; a log of replies only has a record per reply. Unbound's
other lines (start-up, verbosity output, `log-local-actions`), and other programs' lines in a syslog
file, are skipped; a line that starts like a query or reply but does not parse is malformed.

Year and zone: as for dnsmasq, a syslog-style time has no year (`year`, else the file's modification
time) and is local (`tz`, default "UTC"); epoch seconds are UTC.

Sources: unbound.conf(5) (log-queries, log-replies, log-tag-queryreply, log-time-ascii, log-time-iso,
log-destaddr) and Unbound's code that writes these lines: util/log.c (log_vmsg), util/net_help.c
(log_query_in) and util/data/msgreply.c (log_reply_info), https://github.com/NLnetLabs/unbound.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import re2  # type: ignore[import-untyped]

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
)

_TIME = (
    r"^(?:\[(?P<epoch>\d{1,11})\]"
    r"|(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r"|(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d\d?) (?P<clock>\d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))?)"
)
# Unbound's own file writes "ident[pid:thread]"; syslog writes its tag, then Unbound's "[pid:thread]".
_THREAD = r"\[\d+:[0-9a-f]+\]"
_TAG = r" (?:[\w./-]+" + _THREAD + r"|(?:\S+ )?[\w./-]+(?:\[\d+\])?: " + _THREAD + r")"
PREFIX = _TIME + _TAG + r" "
_ADDRESS = r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)"
_LOGGED = r"(?P<kind>info|query|reply): (?P<client>" + _ADDRESS + r") (?P<host>\S+) \S+ \S+"
# A reply adds rcode, time, cached and size (a FORMERR reply writes "-" for all but the rcode), and with
# log-destaddr " on PROTOCOL ADDRESS PORT".
_REPLY = r"(?P<reply> \S+ (?:\d+\.\d+|-) [\d-]+ [\d-]+(?: .*)?)?\s*$"
PATTERN = PREFIX + _LOGGED + _REPLY
# A line Unbound writes about a query or reply: malformed when it does not parse.
_QUERYISH = PREFIX + r"(?:query: |reply: |info: " + _ADDRESS + r" )"
_LINE = re2.compile(PREFIX + r"[a-z ]+: ")
# Any syslog line, so that other programs' lines in the same file are skipped, not malformed.
_LOGGED_LINE = "(?:" + PREFIX + "|" + _TIME + r" (?:\S+ )?[\w./-]+(?:\[\d+\])?: )"


class UnboundReader:
    name = "unbound"

    def __init__(self, tz: str = "UTC", year: int | None = None) -> None:
        self.tz = check_zone(tz)
        self.year = year

    def sniff(self, path: Path, head: bytes) -> bool:
        lines = head_lines(head)
        if not lines:
            return "unbound" in log_name(path)
        return any(_LINE.match(line) for line in lines)

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        batches = parse_line_chunks(path, lambda chunk, own: self._batch(chunk, path, own), stats)
        return rebatch(batches, batch_rows, stats)

    def _batch(self, chunk: LineChunk, path: Path, stats: ReadStats) -> pa.RecordBatch | None:
        lines = chunk.lines()
        numbers = chunk.numbers()
        parts = pc.extract_regex(lines, PATTERN)
        matched = flags(pc.is_valid(parts))
        if not matched.all():
            report_unmatched(
                lines, matched, numbers, path, stats, _LOGGED_LINE, _QUERYISH, "recognised Unbound query or reply"
            )
        if not matched.any():
            return None
        parts = parts.filter(pa.array(matched))
        numbers = numbers[matched]
        kind = pc.struct_field(parts, "kind")
        replies = flags(pc.or_(pc.equal(kind, "reply"), pc.not_equal(pc.struct_field(parts, "reply"), "")))
        if replies.any() and not replies.all():
            # Queries and replies both logged: each lookup once, as its query.
            stats.skipped += int(replies.sum())
            parts = parts.filter(pa.array(~replies))
            numbers = numbers[~replies]
        # A FORMERR reply names no query: "192.0.2.10 - - - FORMERR - - -".
        nameless = flags(pc.equal(pc.struct_field(parts, "host"), "-"))
        if nameless.any():
            stats.skipped += int(nameless.sum())
            parts = parts.filter(pa.array(~nameless))
            numbers = numbers[~nameless]
        ts = self._timestamps(parts, path)
        keep = reject(stats, path, numbers, null_mask(ts), _bad_time(parts))
        record = {
            "ts": ts,
            "client": to_text(pc.struct_field(parts, "client")),
            "host": to_text(pc.utf8_rtrim(pc.struct_field(parts, "host"), characters=".")),
        }
        return make_batch(self.name, numbers[keep], select(record, keep))

    def _timestamps(self, parts: Any, path: Path) -> Any:
        stamps = []
        epoch = pc.struct_field(parts, "epoch")
        if pc.any(pc.not_equal(epoch, "")).as_py():
            stamps.append(to_timestamp(only(epoch, pc.not_equal(epoch, "")).cast(pa.int64()), "UTC"))
        iso = pc.struct_field(parts, "iso")
        if pc.any(pc.not_equal(iso, "")).as_py():
            stamps.append(to_timestamp(only(iso, pc.not_equal(iso, "")), self.tz))
        day = pc.struct_field(parts, "day")
        if pc.any(pc.not_equal(day, "")).as_py():
            month, clock, fraction = (pc.struct_field(parts, name) for name in ("mon", "clock", "frac"))
            stamps.append(syslog_timestamps(month, day, clock, fraction, path, self.year, self.tz))
        return first_present(stamps, len(parts), UTC_US)


def _bad_time(parts: Any) -> Any:
    def describe(row: int) -> str:
        fields = parts[row].as_py()
        shown = fields["epoch"] or fields["iso"] or f"{fields['mon']} {fields['day']} {fields['clock']}"
        return f"bad time {shown!r}"

    return describe

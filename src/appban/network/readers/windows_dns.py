"""The Windows DNS Server debug log (`dns.log`, "Log packets for debugging" in the DNS console).

A header block ("DNS Server log file creation at ...", "Message logging key (for packets - other items
use a subset of these fields):" and its table), then one line per packet, shown on two lines here:

    9/20/2020 11:59:01 PM 0E4C PACKET  000000D5E3A3C0F0 UDP Rcv 192.0.2.10      a1b2   Q
        [0001   D   NOERROR] A      (3)www(6)tiktok(3)com(0)

Date, time, thread, context, packet id, UDP/TCP, Snd/Rcv, remote address, transaction id, `R` for a
response (blank for a query), opcode (`Q` standard query), flags and rcode in brackets, question type
and question name, its labels each preceded by their length. Records are the queries the server
received (`Rcv`, blank, `Q`): `client` the remote address, `host` the decoded name. Sent packets,
responses, notifies and updates are skipped, as are the header and the packet details that the
"Details" option adds; a PACKET line that does not parse is malformed, whatever its date and time
look like (a time format not listed below is reported line by line, never passed over).

Time: the server's local time, without a zone (`tz`, default "UTC"), written in the short date and time
format of the server's locale: "9/20/2020 11:59:01 PM" (United States), "20/09/2020 23:59:01" (United
Kingdom, France), "20.09.2020 23:59:01" (Germany), "2020-09-20 23:59:01" (Sweden), "2019/08/20 11:48:27"
(Japan). A date with the year first is year-month-day, and one with dots or dashes day-month-year. With
slashes and the year last, the order is told from the dates themselves: a first number above 12 makes it
day/month, a second number above 12 month/day. A file whose dates never tell (all in the first 12 days of
months) is refused: read it with `--log-format windows-dns-mdy` or `windows-dns-dmy`, which name the order.

Sources: Microsoft's LogLevel registry entry for Dns.log (https://technet.microsoft.com/en-us/library/cc940779.aspx)
and DNS_LOG_LEVELS in [MS-DNSP] 2.2.9.1.1 (https://learn.microsoft.com/en-us/openspecs/windows_protocols/
ms-dnsp/fc6275ba-b4d3-4e81-9417-03d004369075) for what is logged; the log's own field key, and lines
quoted in https://community.splunk.com/t5/Getting-Data-In/DNS-debug-log-dns-log-Format-Review/m-p/137289,
https://qiita.com/urushibata/items/8728708e7737371e6ba1 (a Japanese Windows Server 2012) and
https://github.com/reighnman/Graylog_Content_Pack_WinDNS/issues/12 (French and Swedish servers). AM/PM
markers in other languages (午前/午後, 오전/오후, 上午/下午) are not read: no source shows the debug log
writing them, so such lines are reported as malformed rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import re2  # type: ignore[import-untyped]

from appban.network.records import make_batch
from appban.reading.batches import rebatch
from appban.reading.chunks import LineChunk, iter_line_chunks, parse_line_chunks
from appban.reading.stats import DEFAULT_BATCH_ROWS, ReadStats
from appban.reading.streams import head_lines, read_head
from appban.reading.values import (
    check_zone,
    civil_timestamps,
    flags,
    null_mask,
    reject,
    report_unmatched,
    select,
    to_text,
)

_DATE = r"(?P<first>\d{1,4})(?P<sep>[/.-])(?P<second>\d{1,2})[/.-](?P<third>\d{1,4})\.?"
_CLOCK = r"(?P<hour>\d{1,2}):(?P<minute>\d\d):(?P<second_>\d\d)(?: (?P<half>[AaPp]\.?[Mm]\.?))?"
PREFIX = r"^" + _DATE + " " + _CLOCK + r" +[0-9A-Fa-f]+ PACKET +"
# Any packet line, and (with the fields a record needs) a query received: blank for "not a response", Q.
_PACKET_LINE = (
    re.sub(r"\(\?P<\w+>", "(?:", PREFIX)
    + r"[0-9A-Fa-f]+ +(?:UDP|TCP) +(?:Snd|Rcv) +\S+ +[0-9A-Fa-f]+ [ R] [A-Z?] \[[^\]]*\] +\S+ +\S+\s*$"
)
PATTERN = (
    PREFIX + r"[0-9A-Fa-f]+ +(?:UDP|TCP) +Rcv +(?P<client>\S+) +[0-9A-Fa-f]+   Q \[[^\]]*\] +\S+ +(?P<name>\S+)\s*$"
)
# A packet line whatever its date and time look like: one that does not parse is malformed, never skipped.
_PACKETISH = r"^\S.{0,60} [0-9A-Fa-f]{1,8} PACKET "
_HEADER = re2.compile(r"^(?:DNS Server log file creation at |Message logging key \(for packets)")
_PACKET = re2.compile(_PACKET_LINE)
# Which number of a date is the day and which the month, for each order a reader may be told.
ORDERS = {"mdy": ("second", "first", "third"), "dmy": ("first", "second", "third")}
_YEAR_FIRST = ("third", "second", "first")


class WindowsDnsReader:
    """`order` None tells the date order from the file; "mdy" or "dmy" names it (reader windows-dns-mdy...)."""

    def __init__(self, tz: str = "UTC", order: str | None = None) -> None:
        if order is not None and order not in ORDERS:
            raise ValueError(f"unknown date order {order!r} (known: {', '.join(ORDERS)})")
        self.tz = check_zone(tz)
        self.order = order
        self.name = "windows-dns" if order is None else f"windows-dns-{order}"

    def sniff(self, path: Path, head: bytes) -> bool:
        if self.order is not None:
            return False  # chosen by name only: detection tells the order itself
        return any(_HEADER.match(line) or _PACKET.match(line) for line in head_lines(head, limit=40))

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        order = self.order or _order_of(path)  # told before the first batch: a refusal stops the read whole
        batches = parse_line_chunks(path, lambda chunk, own: self._batch(chunk, path, own, order), stats)
        return rebatch(batches, batch_rows, stats)

    def _batch(self, chunk: LineChunk, path: Path, stats: ReadStats, order: str) -> pa.RecordBatch | None:
        lines = chunk.lines()
        numbers = chunk.numbers()
        # Matching without captures is several times faster than extracting: classify the lines first, and
        # extract the fields of the queries only.
        packet = flags(pc.match_substring_regex(lines, _PACKET_LINE))
        if not packet.all():
            # Outside PACKET lines the log is its header and packet details: skipped.
            queryish = "(?:" + PREFIX + "|" + _PACKETISH + ")"
            report_unmatched(lines, packet, numbers, path, stats, r"", queryish, "Windows DNS packet")
        query = packet & flags(pc.match_substring_regex(lines, PATTERN))
        stats.skipped += int((packet & ~query).sum())
        if not query.any():
            return None
        parts = pc.extract_regex(lines.filter(pa.array(query)), PATTERN)
        numbers = numbers[query]

        def field(name: str) -> Any:
            return pc.struct_field(parts, name)

        ts = self._timestamps(parts, order)
        keep = reject(stats, path, numbers, null_mask(ts), _bad_time(parts))
        record = {"ts": ts, "client": to_text(field("client")), "host": to_text(_decoded(field("name")))}
        return make_batch(self.name, numbers[keep], select(record, keep))

    def _timestamps(self, parts: Any, order: str) -> Any:
        def field(name: str) -> Any:
            return pc.struct_field(parts, name)

        day, month, year = (field(name) for name in (_YEAR_FIRST if order == "ymd" else ORDERS[order]))
        # A year-first date read in another order, or a day-first one read year-first, names no date.
        year_first = pc.equal(pc.utf8_length(field("first")), 4)
        fits = year_first if order == "ymd" else pc.and_(pc.invert(year_first), pc.equal(pc.utf8_length(year), 4))
        year = pc.if_else(fits, year, pa.scalar(None, pa.string()))
        hour = pc.cast(field("hour"), pa.int64())
        half = pc.utf8_lower(pc.replace_substring(field("half"), ".", ""))
        clock24 = pc.equal(half, "")  # no AM/PM: a 24-hour clock
        valid_hour = pc.if_else(clock24, pc.less(hour, 24), pc.and_(pc.greater(hour, 0), pc.less(hour, 13)))
        hour = pc.add(
            pc.if_else(pc.and_(pc.invert(clock24), pc.equal(hour, 12)), 0, hour),
            pc.if_else(pc.equal(half, "pm"), 12, 0),
        )
        hour = pc.if_else(valid_hour, hour, pa.scalar(None, pa.int64()))
        padded = pc.utf8_lpad(pc.cast(hour, pa.string()), width=2, padding="0")
        clock = pc.binary_join_element_wise(padded, field("minute"), field("second_"), ":")
        return civil_timestamps(year, pc.cast(month, pa.int64()), day, clock, None, self.tz)


def _decoded(names: Any) -> Any:
    """ "(3)www(6)tiktok(3)com(0)" as "www.tiktok.com"; a name already dotted stays as it is."""
    dotted = pc.replace_substring_regex(names, r"\(\d{1,3}\)", ".")
    return pc.utf8_trim(dotted, characters=".")


def _bad_time(parts: Any) -> Any:
    def describe(row: int) -> str:
        fields = parts[row].as_py()
        date = f"{fields['first']}{fields['sep']}{fields['second']}{fields['sep']}{fields['third']}"
        clock = f"{fields['hour']}:{fields['minute']}:{fields['second_']} {fields['half']}".rstrip()
        return f"bad time {date + ' ' + clock!r}"

    return describe


_DATES = r"^(?:DNS Server log file creation at )?" + _DATE + " "


def _order_of(path: Path) -> str:
    """ "ymd", "dmy" or "mdy": the order of the file's dates, from the first one that tells."""
    found = _told(pa.array(head_lines(read_head(path), limit=2000), pa.string()))
    if found is None:
        # The head was not enough: look through the whole file, stopping at the first date that tells.
        for chunk in iter_line_chunks(path, ReadStats()):
            found = _told(chunk.lines())
            if found is not None:
                break
    if found is None:
        raise ValueError(
            f"{path}: the dates of this Windows DNS log read both as month/day and as day/month (every day "
            "is 12 or less); name the order with --log-format windows-dns-mdy or --log-format windows-dns-dmy"
        )
    return found


def _told(lines: Any) -> str | None:
    """The order the first telling date of `lines` shows, or None."""
    parts = pc.extract_regex(lines, _DATES)
    first, second = pc.struct_field(parts, "first"), pc.struct_field(parts, "second")
    year_first = flags(pc.equal(pc.utf8_length(first), 4))
    not_slashed = flags(pc.not_equal(pc.struct_field(parts, "sep"), "/"))
    day_first = ~year_first & (not_slashed | flags(pc.greater(pc.cast(first, pa.int64()), 12)))
    month_first = ~year_first & ~day_first & flags(pc.greater(pc.cast(second, pa.int64()), 12))
    found = []
    for order, telling in (("ymd", year_first), ("dmy", day_first), ("mdy", month_first)):
        rows = np.flatnonzero(telling)
        if len(rows):
            found.append((int(rows[0]), order))
    return min(found)[1] if found else None

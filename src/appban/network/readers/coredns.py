"""CoreDNS query logs: the `log` plugin's Common Log Format (`log`, `log . {common}`) and its combined
form (`log . {combined}`, the same line ending in the query's opcode in quotes), as CoreDNS has written
them since 2017:

    [INFO] 10.244.0.1:35432 - 27747 "A IN www.tiktok.com. udp 32 false 512" NOERROR qr,rd,ra 106 0.000120s
    [INFO] 10.244.0.1:35432 - 27747 "A IN www.tiktok.com. udp 32 false 512" NOERROR qr,rd,ra 106 0.000120s "0"
    192.168.2.14:56084 - [11/Jan/2019:19:57:57 +0000] 7 "A IN tiktok.com. udp 62 false 512" NOERROR qr,rd 70 0.00013s
    10.32.0.1 - [21/Dec/2017:18:06:34 +0000] "A IN tiktok.com. udp 68 false 4096" NOERROR qr,aa,rd,ra 84 104.117µs

The client (with its port since 1.1; an IPv6 client in brackets, `[2001:db8::1]:35432`), the query id,
then in quotes the type, class, name, protocol, size, DO bit and buffer size, then the rcode, flags
(absent in early 2017 releases), reply size and duration. Up to 1.2.5 the plugin wrote the line itself, without
`[INFO]`, with the time in brackets (`{when}`, "02/Jan/2006:15:04:05 -0700") and the query id after it
(from 1.0.x on); from 1.2.6 the line goes through CoreDNS's logger, `[INFO]` first. Each line is one query
and its reply. Records: `client` and `host` (without the final dot).

Time: the line's own `[when]` where it has one, its offset applied. CoreDNS 1.2.6 to 1.6.2 began each
line with an RFC 3339 time; later versions write none. The time then comes from what stored the line:
`kubectl logs --timestamps` and the container runtime's own log files under /var/log/pods
(`2020-09-20T23:59:01.123456789Z stdout F [INFO] ...`) begin each line with an RFC 3339 time, which is
read first when present. A file whose query lines carry no time at all is refused: the law depends on
the instant, and the file does not tell it. A line without a time in a file whose other lines have one
is malformed.

CoreDNS's other lines (start-up banner, plugin messages, warnings, errors) are skipped; a line that
looks like a query but does not parse is malformed, as are query lines in another custom format.

Sources: https://coredns.io/plugins/log/ (the default format, `{common}` and `{combined}`); CoreDNS's
plugin/log/log.go and plugin/pkg/replacer/replacer.go over its history (CommonLogFormat with `[{when}]`,
the time layout, brackets for IPv6, the opcode as a number) and the 1.2.6 and 1.6.3 release notes
(coredns.io, the `{when}` no-op and the logger's time removed); lines as CoreDNS wrote them in
https://github.com/coredns/coredns/issues/4724, https://github.com/coredns/example/issues/17,
https://github.com/coredns/coredns/issues/503 (2017, no flags),
https://github.com/kubernetes/kubernetes/issues/72826 (2019, with `[when]` and the id) and CoreDNS's blog
post "Deploying Kubernetes with CoreDNS using kubeadm" (coredns/coredns.io,
content/blog/coredns-in-kubernetes-via-kubeadm.md, CoreDNS 1.0.1); the CRI logging format in Kubernetes'
kubelet-cri-logging design proposal (kubernetes/design-proposals-archive, node/kubelet-cri-logging.md).
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
from appban.reading.streams import head_lines, log_name, read_head
from appban.reading.values import (
    flags,
    month_numbers,
    null_mask,
    only,
    reject,
    report_unmatched,
    select,
    to_text,
    to_timestamp,
)

_RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"
# What stored the line: kubectl's --timestamps, or the runtime's "TIME STREAM TAG " (CRI logging format).
_STORED = r"(?:(?P<stored>" + _RFC3339 + r") (?:(?:stdout|stderr) [FP] )?)?"
PREFIX = r"^" + _STORED + r"(?:(?P<written>" + _RFC3339 + r") )?\[[A-Z]+\] "
# The log plugin's own time up to 1.2.5 ({when}): "21/Dec/2017:18:06:34 +0000".
_WHEN = r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}"
# Up to the query's name: the client, with its port or (before 1.1) without, then "-", the time, the id.
_FIELDS = (
    r"^" + _STORED + r"(?:(?P<written>" + _RFC3339 + r") )?(?:\[INFO\] )?"
    r'(?:\[(?P<client6>[0-9A-Fa-f:.]+)\](?::\d+)?|(?P<client>[^\s\[\]"]+)) - '
    r"(?:\[(?P<when>" + _WHEN + r')\] )?(?:\d+ )?"\S+ \S+ (?P<host>\S+) '
)
# The rest: protocol, sizes and DO bit; rcode, flags (not in early 2017), reply size, duration, and the
# opcode that {combined} adds.
PATTERN = _FIELDS + r'\S+ \d+ \S+ \d+" [A-Z0-9-]+ (?:\S+ )?\S+ \S+(?: "\d+")?\s*$'
_QUERYISH = r'(?:^|\s)\S+ - (?:\[[^\]]*\] )?(?:\d+ )?"'
_CONTAINER = r"^" + _RFC3339 + r" (?:stdout|stderr) [FP] "  # any line of a container's log file
_LINE = re2.compile(PATTERN)
_BANNER = re2.compile(r"^" + _STORED + r"CoreDNS-\d+\.\d+\.\d+\s*$")
_WHEN_PARTS = (
    r"^(?P<day>\d\d)/(?P<month>[A-Za-z]{3})/(?P<year>\d{4}):(?P<clock>\d\d:\d\d:\d\d) "
    r"(?P<sign>[+-])(?P<hours>\d\d)(?P<minutes>\d\d)$"
)


class CoreDnsReader:
    name = "coredns"

    def sniff(self, path: Path, head: bytes) -> bool:
        lines = head_lines(head)
        if not lines:
            return "coredns" in log_name(path)
        return any(_LINE.match(line) or _BANNER.match(line) for line in lines)

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        # Checked now, not on the first batch: a log without times cannot be screened at all.
        queries = [match for line in head_lines(read_head(path), limit=1000) if (match := _LINE.match(line))]
        if queries and not any(match["stored"] or match["written"] or match["when"] for match in queries):
            raise ValueError(
                f"{path}: CoreDNS writes its query lines without a time, and this file adds none; read the log "
                "with the time of each line (kubectl logs --timestamps, or the pod's log file under /var/log/pods)"
            )
        batches = parse_line_chunks(path, lambda chunk, own: self._batch(chunk, path, own), stats)
        return rebatch(batches, batch_rows, stats)

    def _batch(self, chunk: LineChunk, path: Path, stats: ReadStats) -> pa.RecordBatch | None:
        lines = chunk.lines()
        numbers = chunk.numbers()
        # Matching without captures is several times faster than extracting: the whole line is checked so,
        # and only the fields before the name's end are extracted from the lines that passed.
        matched = flags(pc.match_substring_regex(lines, PATTERN))
        if not matched.all():
            logged = "(?:" + PREFIX + "|" + _CONTAINER + r"|^[^\[])"
            report_unmatched(lines, matched, numbers, path, stats, logged, _QUERYISH, "CoreDNS query")
        if not matched.any():
            return None
        parts = pc.extract_regex(lines.filter(pa.array(matched)), _FIELDS)
        numbers = numbers[matched]
        stored, written = pc.struct_field(parts, "stored"), pc.struct_field(parts, "written")
        stamp = pc.if_else(pc.not_equal(stored, ""), stored, written)
        stamp = pc.if_else(pc.not_equal(stamp, ""), stamp, _rfc3339(pc.struct_field(parts, "when")))
        # Runtimes write nanoseconds; cut to microseconds here, Arrow's cast then reads the whole column at once.
        stamp = pc.replace_substring_regex(stamp, r"(\.\d{6})\d+", r"\1")
        ts = to_timestamp(only(stamp, pc.not_equal(stamp, "")), "UTC")  # RFC 3339 times carry their offset

        def describe(row: int) -> str:
            fields = parts[row].as_py()
            shown = fields["stored"] or fields["written"] or fields["when"]
            return f"bad time {shown!r}" if shown else "no time on this line (CoreDNS writes none)"

        keep = reject(stats, path, numbers, null_mask(ts), describe)
        client6, client = pc.struct_field(parts, "client6"), pc.struct_field(parts, "client")
        # "10.244.0.1:35432" without its port; an unbracketed IPv6 client (before 1.1) has no port.
        client = pc.replace_substring_regex(client, r"^([^:]+):\d+$", r"\1")
        record = {
            "ts": ts,
            "client": to_text(pc.if_else(pc.not_equal(client6, ""), client6, client)),
            "host": to_text(pc.utf8_rtrim(pc.struct_field(parts, "host"), characters=".")),
        }
        return make_batch(self.name, numbers[keep], select(record, keep))


def _rfc3339(when: Any) -> Any:
    """ "21/Dec/2017:18:06:34 +0000" as "2017-12-21T18:06:34+00:00"; "" stays ""."""
    if not pc.any(pc.not_equal(when, "")).as_py():
        return when
    parts = pc.extract_regex(when, _WHEN_PARTS)

    def field(name: str) -> Any:
        return pc.struct_field(parts, name)

    month = pc.utf8_lpad(pc.cast(month_numbers(field("month")), pa.string()), width=2, padding="0")
    date = pc.binary_join_element_wise(field("year"), month, field("day"), "-")
    offset = pc.binary_join_element_wise(field("sign"), field("hours"), ":", field("minutes"), "")
    text = pc.binary_join_element_wise(date, "T", field("clock"), offset, "")
    # An unknown month name makes the whole text null: a bad time, reported as such.
    return pc.if_else(pc.equal(when, ""), "", pc.fill_null(text, "-"))

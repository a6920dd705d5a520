"""CoreDNS query logs: the `log` plugin's default (Common Log) format, as `kubectl logs` shows them.

    [INFO] 10.244.0.1:35432 - 27747 "A IN www.tiktok.com. udp 32 false 512" NOERROR qr,rd,ra 106 0.000120s

The client and its port, the query id, then in quotes the type, class, name, protocol, size, DO bit and
buffer size, then the rcode, flags, reply size and duration; an IPv6 client is written in brackets
(`[2001:db8::1]:35432`). Each line is one query and its reply. Records: `client` and `host` (without the
final dot).

Time: CoreDNS writes none (some versions before 1.5 began each line with an RFC 3339 time). The time
comes from what stored the line: `kubectl logs --timestamps` and the container runtime's own log files
under /var/log/pods (`2020-09-20T23:59:01.123456789Z stdout F [INFO] ...`) begin each line with an
RFC 3339 time, which is read. A file whose query lines carry no time at all is refused: the law depends on
the instant, and the file does not tell it. A line without a time in a file whose other lines have one
is malformed.

CoreDNS's other lines (start-up banner, plugin messages, warnings, errors) are skipped; an `[INFO]` line
that looks like a query but does not parse is malformed, as are query lines in a custom format.

Sources: https://coredns.io/plugins/log/ (the default format); lines as CoreDNS writes them in
https://github.com/coredns/coredns/issues/4724 and https://github.com/coredns/example/issues/17; the CRI
logging format in Kubernetes' kubelet-cri-logging design proposal (kubernetes/design-proposals-archive,
node/kubelet-cri-logging.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
_FIELDS = (
    r"^" + _STORED + r"(?:(?P<written>" + _RFC3339 + r") )?"
    r'\[INFO\] (?:\[(?P<client6>[0-9A-Fa-f:.]+)\]|(?P<client>[^\s:\[\]]+)):\d+ - \d+ "\S+ \S+ (?P<host>\S+) '
)
PATTERN = _FIELDS + r'\S+ \d+ \S+ \d+" \S+ \S+ \S+ \S+\s*$'
_QUERYISH = r'\[INFO\] \S+ - .*"'
_CONTAINER = r"^" + _RFC3339 + r" (?:stdout|stderr) [FP] "  # any line of a container's log file
_LINE = re2.compile(PATTERN)
_BANNER = re2.compile(r"^" + _STORED + r"CoreDNS-\d+\.\d+\.\d+\s*$")


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
        if queries and not any(match["stored"] or match["written"] for match in queries):
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
        # Runtimes write nanoseconds; cut to microseconds here, Arrow's cast then reads the whole column at once.
        stamp = pc.replace_substring_regex(stamp, r"(\.\d{6})\d+", r"\1")
        ts = to_timestamp(only(stamp, pc.not_equal(stamp, "")), "UTC")  # RFC 3339 times carry their offset

        def describe(row: int) -> str:
            shown = stamp[row].as_py()
            return f"bad time {shown!r}" if shown else "no time on this line (CoreDNS writes none)"

        keep = reject(stats, path, numbers, null_mask(ts), describe)
        client6, client = pc.struct_field(parts, "client6"), pc.struct_field(parts, "client")
        record = {
            "ts": ts,
            "client": to_text(pc.if_else(pc.not_equal(client6, ""), client6, client)),
            "host": to_text(pc.utf8_rtrim(pc.struct_field(parts, "host"), characters=".")),
        }
        return make_batch(self.name, numbers[keep], select(record, keep))

"""Cloud flow logs other than AWS (see flows.py): Google Cloud VPC Flow Logs and Azure NSG and VNet flow logs.

GCP VPC Flow Logs, as Cloud Logging exports them (to Cloud Storage or Pub/Sub): one LogEntry a line, its
`logName` ending in `compute.googleapis.com%2Fvpc_flows`, the flow in `jsonPayload`:
`connection.{src_ip,src_port,dest_ip,dest_port,protocol}`, `start_time`, `end_time` (RFC 3339 with
nanoseconds), `bytes_sent` (an int64, which proto3 JSON writes as a string) and `reporter`. Exports that
flatten names (`"jsonPayload.connection.src_ip"`, as BigQuery's column paths read) are read too. Record:
`ts` the flow's start (`timestamp`, when it ends the aggregation interval, only without one), `client`
and `src_ip` the source, `dst_ip`/`dst_port` the destination, `bytes` the bytes sent.
(https://cloud.google.com/vpc/docs/about-flow-logs-records)

Azure flow logs: a JSON document `{"records": [...]}` a file (an hour of one NIC's or VNet's flows), or such
documents or records one a line (Event Hubs). NSG flow logs hold `properties.flows[].flows[].flowTuples`,
VNet flow logs `flowRecords.flows[].flowGroups[].flowTuples`; a tuple is one comma-separated string:
`time,src,dst,src port,dst port,protocol,direction,...` with 8 fields (NSG version 1) or 13, whose 11th
and 13th are the bytes sent and received (NSG version 2, VNet). The time is in epoch seconds, or
milliseconds in VNet logs. Record: `ts` the tuple's time, `client`/`src_ip` its source, `dst_ip`/`dst_port`
its destination, `bytes` sent + received (null when the tuple has no counts, e.g. a flow's begin state).
A document is read whole, up to `tablereader.MAX_JSON_DOCUMENT_BYTES`; a longer one is reported, not read.
`line` is the line the tuple is written on (every tuple of a one-line document is on line 1).
(https://learn.microsoft.com/azure/network-watcher/nsg-flow-logs-overview,
https://learn.microsoft.com/azure/network-watcher/vnet-flow-logs-overview)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from appban import safejson
from appban.network.records import make_batch
from appban.reading.batches import rebatch
from appban.reading.chunks import LineChunk, keep_lines, parse_line_chunks
from appban.reading.parse import json_objects, python_column, read_json_table
from appban.reading.stats import DEFAULT_BATCH_ROWS, Columns, Lines, ReadStats
from appban.reading.streams import head_lines, open_stream
from appban.reading.values import (
    UTC_US,
    describe_value,
    first_present,
    flags,
    null_mask,
    only,
    reject,
    select,
    to_count,
    to_port,
    to_text,
    to_timestamp,
    total,
    whole,
)
from appban.tablereader import MAX_JSON_DOCUMENT_BYTES

# --- GCP ------------------------------------------------------------------------------------------------------

_GCP_LOG = "compute.googleapis.com%2Fvpc_flows"
# Record field -> path in the LogEntry. The fast path's Arrow types are the documented ones.
_GCP_FIELDS: dict[str, tuple[str, ...]] = {
    "src": ("jsonPayload", "connection", "src_ip"),
    "dst": ("jsonPayload", "connection", "dest_ip"),
    "port": ("jsonPayload", "connection", "dest_port"),
    "start": ("jsonPayload", "start_time"),
    "bytes": ("jsonPayload", "bytes_sent"),
    "logged": ("timestamp",),
}
_GCP_SCHEMA = pa.schema(
    [
        (
            "jsonPayload",
            pa.struct(
                [
                    (
                        "connection",
                        pa.struct([("src_ip", pa.string()), ("dest_ip", pa.string()), ("dest_port", pa.int64())]),
                    ),
                    ("start_time", pa.string()),
                    ("bytes_sent", pa.string()),
                ]
            ),
        ),
        ("timestamp", pa.string()),
    ]
)


def _dig(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at `path` in a nested record, or under the flattened name "a.b.c"."""
    flat = record.get(".".join(path))
    if flat is not None:
        return flat
    value: Any = record
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _is_gcp_flow(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    name = record.get("logName")
    if isinstance(name, str) and name.endswith(_GCP_LOG):
        return True
    return _dig(record, _GCP_FIELDS["src"]) is not None and _dig(record, _GCP_FIELDS["dst"]) is not None


class GcpVpcReader:
    name = "gcp-vpc"

    def sniff(self, path: Path, head: bytes) -> bool:
        lines = head_lines(head, limit=1)
        if not lines or not lines[0].lstrip().startswith("{"):
            return False
        try:
            return _is_gcp_flow(safejson.loads(lines[0]))
        except ValueError:
            return False

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        batches = parse_line_chunks(path, lambda chunk, own: self._batch(chunk, path, own), stats)
        return rebatch(batches, batch_rows, stats)

    def _batch(self, chunk: LineChunk, path: Path, stats: ReadStats) -> pa.RecordBatch | None:
        columns, numbers = _gcp_columns(chunk, path, stats)
        if not len(numbers):
            return None
        src, dst = to_text(columns["src"]), to_text(columns["dst"])
        keep = reject(stats, path, numbers, null_mask(src) & null_mask(dst), lambda _: "no jsonPayload.connection")
        ts = to_timestamp(columns["start"], "UTC")
        if ts.null_count:  # the entry's own time stands in only where the flow has no start
            ts = first_present([ts, to_timestamp(columns["logged"], "UTC")], len(numbers), UTC_US)
        keep &= reject(stats, path, numbers, null_mask(ts) & keep, describe_value(columns["start"], "start_time"))
        record = {
            "ts": ts,
            "client": src,
            "src_ip": src,
            "dst_ip": dst,
            "dst_port": to_port(columns["port"]),
            "bytes": to_count(columns["bytes"]),
        }
        return make_batch(self.name, numbers[keep], select(record, keep))


def _gcp_columns(chunk: LineChunk, path: Path, stats: ReadStats) -> tuple[Columns, Lines]:
    """The record fields of a chunk of LogEntry lines: Arrow's JSON reader when every line has the documented
    types and nesting, else line by line (other types, flattened names, lines that are not JSON)."""
    table = read_json_table(chunk.data, _GCP_SCHEMA)
    numbers = chunk.numbers()
    if table is not None and table.num_rows != chunk.count:
        numbers = keep_lines(chunk)[1]  # Arrow skips blank lines
        table = table if table.num_rows == len(numbers) else None
    if table is not None:
        payload = whole(table.column("jsonPayload"))
        connection = pc.struct_field(payload, "connection")
        columns = {
            "src": pc.struct_field(connection, "src_ip"),
            "dst": pc.struct_field(connection, "dest_ip"),
            "port": pc.struct_field(connection, "dest_port"),
            "start": pc.struct_field(payload, "start_time"),
            "bytes": pc.struct_field(payload, "bytes_sent"),
            "logged": whole(table.column("timestamp")),
        }
        # A line whose flow sits under flattened names parses here as nulls: read the chunk line by line.
        if not (null_mask(columns["src"]) & null_mask(columns["dst"])).any():
            return columns, numbers
    return _gcp_columns_slowly(chunk, path, stats)


def _gcp_columns_slowly(chunk: LineChunk, path: Path, stats: ReadStats) -> tuple[Columns, Lines]:
    data, numbers = keep_lines(chunk)
    values: dict[str, list[Any]] = {name: [] for name in _GCP_FIELDS}
    kept: list[int] = []
    for i, record in json_objects(data, numbers, path, stats):
        kept.append(i)
        for name, where in _GCP_FIELDS.items():
            value = _dig(record, where)
            values[name].append(value if value is None or isinstance(value, str | int | float) else str(value))
    return {name: python_column(column) for name, column in values.items()}, numbers[kept]


# --- Azure ----------------------------------------------------------------------------------------------------

_AZURE_MARKERS = (b'"flowTuples"', b'"NetworkSecurityGroupFlowEvent"', b'"FlowLogFlowEvent"')
# time, source, destination, source port, destination port, then protocol, direction and decision or state;
# NSG version 2 and VNet tuples go on with five more fields, of which the 2nd and 4th are bytes sent and
# received.
_TUPLE = (
    r"^(?P<ts>[^,]*),(?P<src>[^,]*),(?P<dst>[^,]*),[^,]*,(?P<port>[^,]*),[^,]*,[^,]*,[^,]*"
    r"(?:,[^,]*,[^,]*,(?P<sent>[^,]*),[^,]*,(?P<received>[^,]*))?$"
)
_MILLISECONDS = 100_000_000_000  # a larger epoch time is in milliseconds (VNet flow logs write them)


class AzureFlowReader:
    name = "azure-flow"

    def sniff(self, path: Path, head: bytes) -> bool:
        start = head.lstrip()[:1]
        return start in (b"{", b"[") and any(marker in head for marker in _AZURE_MARKERS)

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        return rebatch(self._batches(path, stats, batch_rows), batch_rows, stats)

    def _batches(self, path: Path, stats: ReadStats, batch_rows: int) -> Iterator[pa.RecordBatch]:
        text = _whole_text(path, stats)
        if text is None:
            return
        lines = _TupleLines(text)
        tuples: list[str] = []
        numbers: list[int] = []
        for ordinal, (line, record) in enumerate(_records(text, path, stats), start=1):
            for found in _tuples_of(record, f"record {ordinal}", path, stats, line or lines.line):
                tuples.append(found)
                numbers.append(lines.of(found))
                if len(tuples) >= batch_rows:
                    yield self._batch(tuples, numbers, path, stats)
                    tuples, numbers = [], []
        if tuples:
            yield self._batch(tuples, numbers, path, stats)

    def _batch(self, tuples: list[str], lines: list[int], path: Path, stats: ReadStats) -> pa.RecordBatch:
        text = pa.array(tuples, pa.string())
        numbers = np.array(lines, dtype=np.int64)
        parts = pc.extract_regex(text, _TUPLE)
        shaped = flags(pc.is_valid(parts))
        keep = reject(stats, path, numbers, ~shaped, lambda row: f"not a flow tuple: {tuples[row][:80]!r}")

        def field(name: str) -> Any:
            return pc.struct_field(parts, name)

        ts = _epoch_time(field("ts"))
        keep &= reject(stats, path, numbers, null_mask(ts) & keep, lambda row: f"bad flow time in {tuples[row][:80]!r}")
        source = to_text(field("src"))
        record = {
            "ts": ts,
            "client": source,
            "src_ip": source,
            "dst_ip": to_text(field("dst")),
            "dst_port": to_port(field("port")),
            "bytes": total(to_count(to_text(field("sent"))), to_count(to_text(field("received")))),
        }
        return make_batch(self.name, numbers[keep], select(record, keep))


def _epoch_time(text: Any) -> Any:
    """UTC instants from epoch seconds, or milliseconds where the number is too large to be seconds."""
    digits = only(text, pc.match_substring_regex(text, r"^\d{1,13}$")).cast(pa.int64())
    millis = pc.greater_equal(digits, _MILLISECONDS)
    micros = pc.if_else(millis, pc.multiply(digits, 1_000), pc.multiply(digits, 1_000_000))
    return micros.cast(UTC_US)


def _whole_text(path: Path, stats: ReadStats) -> str | None:
    """The decompressed file as text, or None (reported) when it is longer than a document may be."""
    with open_stream(path) as stream:
        try:
            data = stream.read(MAX_JSON_DOCUMENT_BYTES + 1)
        except (OSError, pa.ArrowException) as exc:
            stats.error(path, 1, f"cannot read the document: {exc}")
            return None
    if len(data) > MAX_JSON_DOCUMENT_BYTES:
        stats.error(path, 1, f"a flow log document longer than {MAX_JSON_DOCUMENT_BYTES:,} bytes is not read")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")  # as every reader does: the rest of the document is still read
        stats.non_utf8 += 1
    return text.removeprefix("\ufeff")


def _records(text: str, path: Path, stats: ReadStats) -> Iterator[tuple[int | None, Any]]:
    """The records of one document, or of documents (or records) one a line, each with its line when it has
    one to itself (a document's records are placed by their tuples' lines)."""
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) > 1:
        try:
            first = safejson.loads(lines[0])
        except ValueError:
            first = None  # a document spread over lines
        if isinstance(first, dict):
            yield from _records_by_line(text, path, stats)
            return
    try:
        document = safejson.loads(text)
    except ValueError as exc:
        stats.error(path, 1, f"not a JSON document: {exc}")
        return
    yield from ((None, record) for record in _records_in(document, path, 1, stats))


def _records_by_line(text: str, path: Path, stats: ReadStats) -> Iterator[tuple[int | None, Any]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = safejson.loads(line)
        except ValueError as exc:
            stats.error(path, number, f"not JSON: {exc}")
            continue
        yield from ((number, record) for record in _records_in(value, path, number, stats))


def _records_in(value: Any, path: Path, line: int, stats: ReadStats) -> Iterator[Any]:
    if isinstance(value, dict) and "records" in value:
        records = value["records"]
        if not isinstance(records, list):
            stats.error(path, line, "`records` is not a list")
            return
        yield from records
    elif isinstance(value, list):
        yield from value
    else:
        yield value


def _tuples_of(record: Any, which: str, path: Path, stats: ReadStats, line: int) -> Iterator[str]:
    """The flow tuples of one NSG or VNet flow log record; a record of another shape is reported."""
    groups: list[Any] | None = None
    if isinstance(record, dict):
        nsg = record.get("properties")
        vnet = record.get("flowRecords")
        if isinstance(nsg, dict) and isinstance(nsg.get("flows"), list):
            groups = [inner for rule in nsg["flows"] if isinstance(rule, dict) for inner in _list(rule.get("flows"))]
        elif isinstance(vnet, dict) and isinstance(vnet.get("flows"), list):
            acls = vnet["flows"]
            groups = [group for acl in acls if isinstance(acl, dict) for group in _list(acl.get("flowGroups"))]
    if groups is None:
        stats.error(path, line, f"{which}: neither properties.flows (NSG) nor flowRecords.flows (VNet)")
        return
    for group in groups:
        found = group.get("flowTuples") if isinstance(group, dict) else None
        for item in _list(found):
            if isinstance(item, str):
                yield item
            else:
                stats.error(path, line, f"{which}: a flow tuple that is not a string: {item!r:.60}")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class _TupleLines:
    """The line each tuple is written on, found by looking for it after the one before: tuples come in the
    document's order, so the whole search is one pass over the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.line = 1
        self.lost = False  # a tuple written with escapes is not found as it reads; later ones keep this line

    def of(self, found: str) -> int:
        if not self.lost:
            where = self.text.find(f'"{found}"', self.at)
            if where < 0:
                self.lost = True
            else:
                self.line += self.text.count("\n", self.at, where)
                self.at = where + len(found) + 2
        return self.line

"""Suricata's EVE JSON log (`eve.json`): its DNS, TLS, HTTP and QUIC events.

One JSON object a line, each with `timestamp` ("2020-09-20T23:59:01.123456+0000": local time with its
offset), `event_type`, the flow's `src_ip`, `src_port`, `dest_ip` and `dest_port`, and an object named
after the event type. Records:

- `dns`: `host` the query name. EVE's DNS logging has three versions. Version 1 writes a `query` event per
  question and an `answer` event per answer record; version 2 (Suricata 5 to 7) writes the same `query`
  events and one `answer` event per response, both naming the question in `dns.rrname`; version 3
  (Suricata 8) writes `request` and `response` events whose questions are in `dns.queries[].rrname` (one
  record per question). Answers are written from the responder (`src_port` 53) by Suricata 3-4 and 8 and
  in the flow's direction by Suricata 5-7; the DNS port on one side tells which, else a `response` is
  taken as the responder's. `client` is the asker and `dst_ip`/`dst_port` the resolver, whichever way the
  event is written. A lookup logged both as a request
  and as a response is one record: where a stretch of the log read at once (a few megabytes) holds
  requests, its responses are skipped; a log of responses only (`requests: no`) has a record per response.
- `tls`: `host` = `tls.sni`; `http`: `host` = `http.hostname`; `quic`: `host` = `quic.sni`. `client` is
  `src_ip`, `dst_ip`/`dst_port` the server.

Other event types (flow, alert, stats, fileinfo, ...) are skipped, not malformed. A line that is not a JSON
object with an `event_type` is malformed. A timestamp written without an offset is read in `tz` (default
UTC).

Sources: Suricata's "Eve JSON Format" (doc/userguide/output/eve/eve-json-format.rst,
https://docs.suricata.io/en/latest/output/eve/eve-json-format.html) and "DNS Logging Changes for 8.0"
(doc/userguide/upgrade/8.0-dns-logging-changes.rst in OISF/suricata).
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
from appban.reading.parse import json_objects, read_json_table
from appban.reading.stats import DEFAULT_BATCH_ROWS, Columns, Lines, ReadStats
from appban.reading.streams import head_lines, log_name
from appban.reading.values import (
    check_zone,
    describe_time,
    flags,
    null_mask,
    reject,
    to_port,
    to_text,
    to_timestamp,
    whole,
)

_DNS = pa.struct(
    [("type", pa.string()), ("rrname", pa.string()), ("queries", pa.list_(pa.struct([("rrname", pa.string())])))]
)
_SCHEMA = pa.schema(
    [
        ("timestamp", pa.string()),
        ("event_type", pa.string()),
        ("src_ip", pa.string()),
        ("src_port", pa.int64()),
        ("dest_ip", pa.string()),
        ("dest_port", pa.int64()),
        ("dns", _DNS),
        ("tls", pa.struct([("sni", pa.string())])),
        ("http", pa.struct([("hostname", pa.string())])),
        ("quic", pa.struct([("sni", pa.string())])),
    ]
)
# event type -> (its object, the field naming the host), for the events that are one record each
_NAMED = {"tls": ("tls", "sni"), "http": ("http", "hostname"), "quic": ("quic", "sni")}
_FLAT = ("timestamp", "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "dns_type", "rrname", "named")
_REQUESTS = pa.array(["query", "request"])
_RESPONSES = pa.array(["answer", "response"])


class SuricataReader:
    name = "suricata"

    def __init__(self, tz: str = "UTC") -> None:
        self.tz = check_zone(tz)

    def sniff(self, path: Path, head: bytes) -> bool:
        lines = head_lines(head)
        if not lines:
            name = log_name(path)
            return name.startswith("eve") and name.endswith(".json")
        if not lines[0].startswith("{"):
            return False
        for line in lines:
            try:
                record = safejson.loads(line)
            except safejson.UnsafeJSON:
                continue
            if isinstance(record, dict) and "event_type" in record and "timestamp" in record:
                return True
        return False

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        batches = parse_line_chunks(path, lambda chunk, own: self._batch(chunk, path, own), stats)
        return rebatch(batches, batch_rows, stats)

    def _batch(self, chunk: LineChunk, path: Path, stats: ReadStats) -> pa.RecordBatch | None:
        parsed = _parse(chunk, path, stats)
        if parsed is None:
            return None
        columns, numbers, query_counts, query_names = parsed
        event = columns["event_type"]
        # Arrow's JSON reader nulls what it cannot type; an object without event_type is no EVE record.
        no_event = null_mask(event)
        keep = reject(stats, path, numbers, no_event, lambda row: "no event_type: not a Suricata EVE record")
        is_dns = flags(pc.equal(event, "dns"))
        request = is_dns & flags(pc.is_in(columns["dns_type"], value_set=_REQUESTS))
        response = is_dns & flags(pc.is_in(columns["dns_type"], value_set=_RESPONSES))
        named = flags(pc.is_in(event, value_set=pa.array(list(_NAMED))))
        wanted = keep & (named | request | (response if not request.any() else False))
        stats.skipped += int((keep & ~wanted).sum())
        rows = np.flatnonzero(wanted)
        if not len(rows):
            return None
        # Most events of a sensor's log are flows and alerts: only the records' rows are converted.
        stamps = columns["timestamp"].take(pa.array(rows, pa.int64()))
        ts = to_timestamp(stamps, self.tz)
        good = reject(stats, path, numbers[rows], null_mask(ts), describe_time(stamps, self.tz, "--log-tz"))
        rows = rows[good]
        # Which way an answer is written differs by version: Suricata 3-4 (version 1) and 8 (version 3) write it
        # from the responder (src_port 53), Suricata 5-7 (version 2) in the flow's direction (dest_port 53). The
        # DNS port tells where it is on one side only; otherwise a version 3 `response` is from the responder.
        src53, dest53 = flags(pc.equal(columns["src_port"], 53)), flags(pc.equal(columns["dest_port"], 53))
        v3_response = flags(pc.equal(columns["dns_type"], "response"))
        swapped = pa.array(response & ((src53 & ~dest53) | (v3_response & ~(dest53 & ~src53))))
        single = pc.if_else(pa.array(is_dns), columns["rrname"], columns["named"])
        expanded, host = _hosts(rows, is_dns, query_counts, query_names, single)
        taken = pa.array(expanded, pa.int64())
        by_row = {
            "client": pc.if_else(swapped, columns["dest_ip"], columns["src_ip"]),
            "dst_ip": pc.if_else(swapped, columns["src_ip"], columns["dest_ip"]),
            "dst_port": pc.if_else(swapped, columns["src_port"], columns["dest_port"]),
        }
        positions = pa.array(np.searchsorted(rows, expanded), pa.int64())  # each record's row among `rows`
        record = {
            "ts": ts.filter(pa.array(good)).take(positions),
            "client": to_text(by_row["client"].take(taken)),
            "host": to_text(pc.utf8_rtrim(host, characters=".")),
            "dst_ip": to_text(by_row["dst_ip"].take(taken)),
            "dst_port": to_port(by_row["dst_port"].take(taken)),
        }
        return make_batch(self.name, numbers[expanded], record)


def _hosts(rows: Any, is_dns: Any, counts: Any, names: Any, single: Any) -> tuple[Any, Any]:
    """The kept rows, each repeated once per question of a version 3 DNS event, and the host of each."""
    from_list = is_dns & (counts > 0)
    starts = np.cumsum(counts) - counts  # where each row's questions begin among `names`
    repeats = np.where(from_list, counts, 1)[rows]
    expanded = np.repeat(rows, repeats)
    listed = np.repeat(from_list[rows], repeats)
    if not listed.any():
        return expanded, single.take(pa.array(expanded, pa.int64()))
    nth = np.arange(len(expanded)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    positions = pa.array(np.where(listed, starts[expanded] + nth, 0), pa.int64(), mask=~listed)
    host = pc.if_else(pa.array(listed), names.take(positions), single.take(pa.array(expanded, pa.int64())))
    return expanded, host


def _parse(chunk: LineChunk, path: Path, stats: ReadStats) -> tuple[Columns, Lines, Any, Any] | None:
    """The flat fields of the chunk's events, their line numbers, and the questions of each DNS event
    (how many per row, and their names in row order)."""
    table = read_json_table(chunk.data, _SCHEMA)
    numbers = chunk.numbers()
    if table is None or table.num_rows != chunk.count:
        data, numbers = keep_lines(chunk)  # Arrow skips blank lines: find which lines its rows are
        if not len(numbers):
            return None
        if table is None or table.num_rows != len(numbers):
            return _parse_slowly(data, numbers, path, stats)
    dns = whole(table.column("dns"))
    columns = {name: whole(table.column(name)) for name in _FLAT[:6]}
    columns["dns_type"] = pc.struct_field(dns, "type")
    columns["rrname"] = pc.struct_field(dns, "rrname")
    columns["named"] = _named_host(columns["event_type"], table)
    queries = pc.struct_field(dns, "queries")
    counts = np.asarray(pc.fill_null(pc.list_value_length(queries), 0).to_numpy(zero_copy_only=False), np.int64)
    names = pc.struct_field(pc.list_flatten(queries), "rrname")
    return columns, numbers, counts, names


def _named_host(event: Any, table: Any) -> Any:
    host = pa.nulls(len(event), pa.string())
    for kind, (field, key) in _NAMED.items():
        values = pc.struct_field(whole(table.column(field)), key)
        host = pc.if_else(pc.equal(event, kind), values, host)
    return host


def _parse_slowly(data: bytes, numbers: Lines, path: Path, stats: ReadStats) -> tuple[Columns, Lines, Any, Any]:
    # Line by line, for a chunk Arrow could not type as a whole: one bad line costs only its own row.
    values: dict[str, list[Any]] = {name: [] for name in _FLAT}
    counts: list[int] = []
    names: list[str | None] = []
    kept: list[int] = []
    for i, record in json_objects(data, numbers, path, stats):
        kept.append(i)
        event = _text(record.get("event_type"))
        dns = _object(record.get("dns"))
        values["timestamp"].append(_text(record.get("timestamp")))
        values["event_type"].append(event)
        for name in ("src_ip", "dest_ip"):
            values[name].append(_text(record.get(name)))
        for name in ("src_port", "dest_port"):
            port = record.get(name)
            values[name].append(port if isinstance(port, int) and not isinstance(port, bool) else None)
        values["dns_type"].append(_text(dns.get("type")))
        values["rrname"].append(_text(dns.get("rrname")))
        field, key = _NAMED.get(event or "", ("", ""))
        values["named"].append(_text(_object(record.get(field)).get(key)) if field else None)
        queries = [_text(_object(query).get("rrname")) for query in _list(dns.get("queries"))]
        counts.append(len(queries))
        names.extend(queries)
    columns = {name: pa.array(column, pa.int64() if name.endswith("port") else pa.string()) for name, column in
               values.items()}  # fmt: skip
    return columns, numbers[kept], np.array(counts, np.int64), pa.array(names, pa.string())


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []

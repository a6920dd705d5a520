"""Zeek's dns.log, ssl.log and http.log, written as TSV or as JSON lines.

TSV logs start with `#separator`, `#fields` and `#types` headers; `-` (the `#unset_field`) and `(empty)`
(the `#empty_field`) are null. A concatenation of logs repeats the header block, and each block is read
with its own fields. JSON logs hold one object per line with Zeek's dotted keys ("id.orig_h") and `ts`
as epoch seconds or an ISO 8601 string.

Records: `ts`; `client` = id.orig_h; `dst_ip`/`dst_port` = id.resp_h/id.resp_p (the resolver for DNS,
the server for TLS and HTTP); `host` = dns `query`, ssl `server_name` or http `host` (without a port);
`bytes` = http request_body_len + response_body_len. Which log a file is comes from `#path` (or `_path`),
else from fields that only that log has, else from the file name.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from appban import safejson
from appban.network.records import make_batch
from appban.reading.batches import rebatch
from appban.reading.chunks import (
    LineChunk,
    iter_line_chunks,
    line_starts,
    parse_in_order,
    parse_line_chunks,
    starts_a_line,
)
from appban.reading.parse import Delimited, parse_delimited, parse_json_lines
from appban.reading.stats import DEFAULT_BATCH_ROWS, Columns, Lines, ReadStats
from appban.reading.streams import head_lines, log_name, read_head
from appban.reading.values import (
    describe_value,
    null_mask,
    reject,
    select,
    to_count,
    to_port,
    to_text,
    to_timestamp,
    total,
)


@dataclass(frozen=True)
class _Kind:
    host: str  # the field naming the host
    markers: frozenset[str]  # fields only this log has, to recognise it without #path
    byte_fields: tuple[str, ...] = ()


KINDS = {
    "dns": _Kind("query", frozenset({"trans_id", "qtype", "qtype_name", "rcode", "rcode_name", "qclass"})),
    "ssl": _Kind("server_name", frozenset({"server_name", "cipher", "curve", "resumed", "established"})),
    "http": _Kind(
        "host",
        frozenset({"trans_depth", "method", "uri", "status_code", "user_agent"}),
        ("request_body_len", "response_body_len"),
    ),
}
_ADDRESSES = ("id.orig_h", "id.resp_h", "id.resp_p")


def kind_of(tag: str | None, fields: Iterable[str]) -> str | None:
    """Which log: "dns", "ssl" or "http" from a #path tag, else from the fields only one of them has."""
    if tag in KINDS:
        return tag
    present = set(fields)
    if "ts" not in present:
        return None
    hits = {name: len(kind.markers & present) for name, kind in KINDS.items()}
    best = max(hits.values())
    winners = [name for name, count in hits.items() if count == best]
    return winners[0] if best and len(winners) == 1 else None


@dataclass(frozen=True)
class _Header:
    """The state a TSV header block sets."""

    separator: str = "\t"
    unset: str = "-"
    empty: str = "(empty)"
    path: str = ""
    fields: tuple[str, ...] = ()
    types: tuple[str, ...] = ()  # Zeek's type of each field: "time", "addr", "port", "count", ...

    def after(self, line: str) -> _Header:
        if line.startswith("#separator"):
            # The one header written with a space, its value escaped: "#separator \x09".
            value = line[len("#separator") :].strip()
            try:
                separator = value.encode().decode("unicode_escape") or "\t"
            except UnicodeDecodeError:  # "\x" without digits: kept as written, and refused below
                separator = value
            return dataclasses.replace(self, separator=separator)
        key, _, value = line[1:].partition(self.separator)
        if key == "fields":
            return dataclasses.replace(self, fields=tuple(value.split(self.separator)))
        if key == "types":
            return dataclasses.replace(self, types=tuple(value.split(self.separator)))
        if key == "unset_field":
            return dataclasses.replace(self, unset=value)
        if key == "empty_field":
            return dataclasses.replace(self, empty=value)
        if key == "path":
            return dataclasses.replace(self, path=value)
        return self


def _header_of(lines: Iterable[str]) -> _Header:
    header = _Header()
    for line in lines:
        if not line.startswith("#"):
            break
        header = header.after(line)
    return header


def _json_keys(lines: Iterable[str]) -> tuple[set[str], str | None]:
    keys: set[str] = set()
    tag = None
    for line in lines:
        try:
            record = safejson.loads(line)
        except safejson.UnsafeJSON:
            continue
        if isinstance(record, dict):
            keys.update(record)
            tag = record.get("_path", tag)
    return keys, tag if isinstance(tag, str) else None


class ZeekReader:
    """One Zeek log kind ("dns", "ssl" or "http"), TSV or JSON; its name is "zeek-<kind>"."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown Zeek log {kind!r} (known: {', '.join(KINDS)})")
        self.kind = kind
        self.name = f"zeek-{kind}"
        self._spec = KINDS[kind]

    def sniff(self, path: Path, head: bytes) -> bool:
        lines = head_lines(head)
        name_kind = log_name(path).split(".")[0]
        if not lines:
            return name_kind == self.kind and log_name(path).endswith(".log")
        if lines[0].startswith("#"):
            header = _header_of(lines)
            return kind_of(header.path, header.fields) == self.kind
        if lines[0].startswith("{"):
            keys, tag = _json_keys(lines)
            found = kind_of(tag, keys)
            return found == self.kind or (found is None and "ts" in keys and name_kind == self.kind)
        return False

    def read(self, path: Path, stats: ReadStats, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        first = head_lines(read_head(path), limit=1)
        if first and first[0].startswith("{"):
            return rebatch(self._read_json(path, stats, first[0]), batch_rows, stats)
        return rebatch(self._read_tsv(path, stats), batch_rows, stats)

    # --- TSV ---

    def _read_tsv(self, path: Path, stats: ReadStats) -> Iterator[pa.RecordBatch]:
        notes = ReadStats()
        # Headers apply in file order: read them here. Runs are grouped into jobs of about a chunk each, so
        # that a file of many short header blocks costs what its bytes cost, not a parse per block.
        jobs = _jobs(_blocks(iter_line_chunks(path, notes)))

        def parse(runs: list[_Run], own: ReadStats) -> pa.RecordBatch | None:
            return self._tsv_batch(runs, path, own)

        return parse_in_order(jobs, parse, notes, stats)

    def _tsv_batch(self, runs: list[_Run], path: Path, stats: ReadStats) -> pa.RecordBatch | None:
        parts = [part for run in runs if (part := self._tsv_columns(*run, path, stats)) is not None]
        if not parts:
            return None
        columns, numbers = _joined(parts) if len(parts) > 1 else parts[0]
        return self._batch(columns, numbers, path, stats)

    def _tsv_columns(
        self, header: _Header, data: bytes, numbers: Lines, path: Path, stats: ReadStats
    ) -> tuple[Columns, Lines] | None:
        if not len(numbers):
            return None
        problem = self._header_problem(header)
        if problem:
            written = [bool(line.strip()) for line in data.split(b"\n")[:-1]]
            stats.errors_at(path, numbers[written], problem)
            return None
        wanted = ("ts", self._spec.host, *_ADDRESSES, *self._spec.byte_fields)
        include = tuple(name for name in wanted if name in header.fields)
        nulls = (header.unset, header.empty)
        spec = Delimited(header.fields, include, header.separator, nulls=nulls, types=_arrow_types(header, include))
        columns, numbers = parse_delimited(data, numbers, spec, path, stats)
        return (columns, numbers) if len(numbers) else None

    def _header_problem(self, header: _Header) -> str | None:
        if len(header.separator) != 1 or header.separator in '\r\n"':
            return f"#separator {header.separator!r} is not one character other than a quote or line end"
        if not header.fields:
            return "data before the #fields header"
        twice = sorted(name for name, count in Counter(header.fields).items() if count > 1)
        if twice:
            return f"#fields names {', '.join(twice)} more than once"
        missing = [name for name in ("ts", self._spec.host) if name not in header.fields]
        if missing:
            tag = f" ({header.path})" if header.path else ""
            return f"this Zeek log{tag} has no {' or '.join(missing)} field: not a {self.kind} log"
        return None

    # --- JSON ---

    def _read_json(self, path: Path, stats: ReadStats, first: str) -> Iterator[pa.RecordBatch]:
        schema = self._json_schema(first)

        def parse(chunk: LineChunk, own: ReadStats) -> pa.RecordBatch | None:
            columns, numbers = parse_json_lines(chunk, schema, path, own)
            return self._batch(columns, numbers, path, own) if len(numbers) else None

        return parse_line_chunks(path, parse, stats)

    def _json_schema(self, first: str) -> Any:
        # Zeek writes ts as a number unless told to write ISO 8601; the first record says which. A chunk of
        # the other kind still reads, line by line.
        try:
            sample = safejson.loads(first)
        except safejson.UnsafeJSON:
            sample = {}
        ts_type = pa.string() if isinstance(sample, dict) and isinstance(sample.get("ts"), str) else pa.float64()
        fields = [("ts", ts_type), (self._spec.host, pa.string()), ("id.orig_h", pa.string())]
        fields += [("id.resp_h", pa.string()), ("id.resp_p", pa.int64())]
        fields += [(name, pa.int64()) for name in self._spec.byte_fields]
        return pa.schema(fields)

    # --- both ---

    def _batch(self, columns: Columns, numbers: Lines, path: Path, stats: ReadStats) -> pa.RecordBatch:
        ts = to_timestamp(columns["ts"], "UTC")  # Zeek's times are UTC: epoch seconds, or ISO with Z
        keep = reject(stats, path, numbers, null_mask(ts), describe_value(columns["ts"], "ts"))
        host = to_text(columns.get(self._spec.host))
        if self.kind == "http":
            # An HTTP Host header may carry the port: "www.tiktok.com:8080".
            host = pc.replace_substring_regex(host, r"^([^:\[\]]+):\d+$", r"\1")
        record = {
            "ts": ts,
            "client": to_text(columns.get("id.orig_h")),
            "host": host,
            "dst_ip": to_text(columns.get("id.resp_h")),
            "dst_port": to_port(columns.get("id.resp_p")),
            "bytes": self._bytes(columns),
        }
        return make_batch(self.name, numbers[keep], select(record, keep))

    def _bytes(self, columns: Columns) -> Any:
        if not self._spec.byte_fields:
            return None
        sent, received = (to_count(columns.get(name)) for name in self._spec.byte_fields)
        return total(sent, received)


# Zeek types that Arrow's CSV reader parses itself, far faster than converting strings afterwards. A chunk
# holding a value that does not parse is read as strings, and that value reported where it is converted.
_ARROW_TYPES = {"time": pa.float64(), "port": pa.int64(), "count": pa.int64()}


def _arrow_types(header: _Header, include: Iterable[str]) -> tuple[tuple[str, Any], ...]:
    if len(header.types) != len(header.fields):
        return ()
    declared = dict(zip(header.fields, header.types, strict=True))
    return tuple((name, _ARROW_TYPES[declared[name]]) for name in include if declared[name] in _ARROW_TYPES)


_Run = tuple[_Header, bytes, Lines]
_JOB_BYTES = 1 << 20


def _jobs(runs: Iterable[_Run]) -> Iterator[list[_Run]]:
    """Runs in order, in groups of about _JOB_BYTES. Runs of blank lines are dropped, and a run under the
    same header as the one before it (a repeated header block, or `#close`/`#open` between) joins it."""
    group: list[_Run] = []
    pieces: list[tuple[bytes, Lines]] = []  # the runs that make up the group's last one
    size = 0
    for header, data, numbers in runs:
        if not data or data.isspace():  # as `not data.strip()`, without copying megabytes to learn it
            continue
        if not (pieces and group[-1][0] == header):
            if len(pieces) > 1:  # joined once, not run by run: that would copy the bytes again each time
                group[-1] = _merged(group[-1][0], pieces)
            group.append((header, data, numbers))
            pieces = []
        pieces.append((data, numbers))
        size += len(data)
        if size >= _JOB_BYTES:
            group[-1] = _merged(header, pieces) if len(pieces) > 1 else group[-1]
            yield group
            group, pieces, size = [], [], 0
    if group:
        group[-1] = _merged(group[-1][0], pieces) if len(pieces) > 1 else group[-1]
        yield group


def _merged(header: _Header, pieces: list[tuple[bytes, Lines]]) -> _Run:
    return header, b"".join(data for data, _ in pieces), np.concatenate([numbers for _, numbers in pieces])


def _joined(parts: list[tuple[Columns, Lines]]) -> tuple[Columns, Lines]:
    """The rows of several runs as one set of columns: a field some runs lack is null there, and a field
    parsed as a number in one run and as text in another is text throughout."""
    names = list(dict.fromkeys(name for columns, _ in parts for name in columns))
    joined: Columns = {}
    for name in names:
        pieces = [columns.get(name) for columns, _ in parts]
        kinds = {piece.type for piece in pieces if piece is not None}
        kind = kinds.pop() if len(kinds) == 1 else pa.string()
        arrays = [
            pa.nulls(len(numbers), kind) if piece is None else piece.cast(kind)
            for piece, (_, numbers) in zip(pieces, parts, strict=True)
        ]
        joined[name] = pa.concat_arrays(arrays)
    return joined, np.concatenate([numbers for _, numbers in parts])


def _blocks(chunks: Iterable[LineChunk]) -> Iterator[_Run]:
    """Runs of data lines, each with the header block in force over it."""
    header = _Header()
    for chunk in chunks:
        segments, header = _segments(chunk, header)
        yield from segments


def _segments(chunk: LineChunk, header: _Header) -> tuple[list[_Run], _Header]:
    """The chunk's data lines in runs that share one header, and the header in force after the chunk."""
    data = chunk.data
    if not starts_a_line(data, b"#"):
        return [(header, data, chunk.numbers())], header  # the usual chunk: no header lines inside
    segments: list[_Run] = []
    cursor, line = 0, chunk.first_line  # where the current run starts, and its first line's number
    for at in line_starts(data, b"#"):
        if at > cursor:
            segments.append(_run(header, data[cursor:at], line))
            line += segments[-1][2].size
        end = data.index(b"\n", at) + 1
        header = header.after(data[at : end - 1].decode("utf-8").rstrip("\r"))
        cursor, line = end, line + 1
    if cursor < len(data):
        segments.append(_run(header, data[cursor:], line))
    return segments, header


def _run(header: _Header, data: bytes, first_line: int) -> _Run:
    # Blank lines stay in the run: the CSV parse drops them, keeping every other line's number.
    return header, data, np.arange(first_line, first_line + data.count(b"\n"), dtype=np.int64)

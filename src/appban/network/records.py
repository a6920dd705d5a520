"""Network log records: one Arrow schema for every log format, the reader interface, and what readers share.

Every reader streams: the decompressed input is cut into chunks of whole lines (`iter_line_chunks`), each
chunk is parsed with Arrow's vectorised CSV, JSON and regex kernels, and the rows are regrouped into
record batches of at most `batch_rows` rows (`rebatch`). Memory therefore stays at a few chunks and one
batch whatever the size of the file. A line that cannot be read is counted in `ReadStats` with its
line number and dropped; it never stops the read.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from appban import safejson
from appban.rulebook.schema import zone_from_name
from appban.textcolumns import check_columns, could_hold_surrogates, python_value, readable, without_surrogates

UTC_US = pa.timestamp("us", tz="UTC")
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

DEFAULT_BATCH_ROWS = 65_536
# Decompressed bytes parsed at a time. It bounds memory, and it is also the longest line accepted: a longer
# one is reported as malformed rather than held in memory whole. Tests lower it to exercise the limit.
CHUNK_BYTES = 4 << 20
HEAD_BYTES = 64 << 10  # what detection looks at
_PIECE_BYTES = 256 << 10
MAX_ERRORS = 100


# Chunks parsed at once. Arrow's kernels release the GIL, so threads use the cores.
def _usable_cpus() -> int:
    # The CPUs this process may run on (a container, taskset or a pinned benchmark), not the machine's.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # platforms without affinity
        return os.cpu_count() or 1


WORKERS = max(1, min(4, _usable_cpus()))

Lines = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Columns = dict[str, Any]  # column name -> pyarrow array (pyarrow is untyped)
Job = TypeVar("Job")

_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
_BOM = b"\xef\xbb\xbf"
_COMPRESSED_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd")
_MONTHS = pa.array(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
_EPOCH = r"^\d{1,11}(?:\.\d*)?$"
_ISO_TIME = r"^\d{4}-\d\d-\d\d[T ]\d\d(?::\d\d(?::\d\d(?:\.\d+)?)?)?"
_ISO_ZONED = _ISO_TIME + r"(?:Z|[+-]\d\d(?::?\d\d)?)$"
_ISO_NAIVE = _ISO_TIME + "$"
_LATEST_EPOCH = 100_000_000_000  # year 5138: larger "epoch seconds" are something else (milliseconds, ids)


@dataclass(frozen=True)
class ReadError:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class ReadStats:
    """What one read saw. Filled in while its batches are consumed, so read it after the last batch."""

    rows: int = 0
    malformed: int = 0
    skipped: int = 0  # well-formed lines that are not records: dnsmasq replies, BIND non-query lines, ...
    non_utf8: int = 0  # lines whose undecodable bytes were replaced by U+FFFD; they are still read
    errors: list[ReadError] = field(default_factory=list)  # the first `max_errors` malformed lines, in order
    max_errors: int = MAX_ERRORS

    def error(self, path: Path | str, line: int, message: str) -> None:
        self.malformed += 1
        if len(self.errors) < self.max_errors or line < self.errors[-1].line:
            self._keep([ReadError(str(path), line, message)])

    def errors_at(self, path: Path | str, lines: Lines, message: str | Callable[[int], str]) -> None:
        """Count every line in `lines` (ascending) as malformed; `message(i)` is built only for lines kept."""
        self.malformed += len(lines)
        positions = np.arange(len(lines))
        if len(self.errors) >= self.max_errors:
            positions = positions[lines < self.errors[-1].line]
        new = []
        for i in positions[: self.max_errors].tolist():
            new.append(ReadError(str(path), int(lines[i]), message if isinstance(message, str) else message(i)))
        self._keep(new)

    def _keep(self, new: list[ReadError]) -> None:
        # Errors arrive out of order (a chunk reports bad field counts before bad times, threads finish when
        # they do); keeping the earliest lines makes the list the same whatever the order.
        if new:
            self.errors = sorted([*self.errors, *new], key=lambda error: error.line)[: self.max_errors]

    def merge(self, other: ReadStats) -> None:
        """Add what `other` saw."""
        self.rows += other.rows
        self.malformed += other.malformed
        self.skipped += other.skipped
        self.non_utf8 += other.non_utf8
        self._keep(other.errors)

    def drain(self) -> ReadStats:
        """What this one saw so far, which it then forgets."""
        taken = dataclasses.replace(self, errors=self.errors)
        self.rows = self.malformed = self.skipped = self.non_utf8 = 0
        self.errors = []
        return taken


# --- streams ---------------------------------------------------------------------------------------------


def compression_of(path: Path) -> str | None:
    """How `path` is compressed ("gzip", "zstd" or None), told by its magic bytes, not its name.

    A `.gz` that holds plain text is read as plain text; a rotated log renamed without its suffix is inflated.
    """
    with Path(path).open("rb") as raw:
        magic = raw.read(4)
    for prefix, codec in _MAGIC.items():
        if magic.startswith(prefix):
            return codec
    return None


def open_stream(path: Path) -> BinaryIO:
    """The decompressed bytes of `path` as a stream: gzip and zstd are inflated as they are read."""
    # pyarrow's streams inflate incrementally (concatenated gzip members too) and release the GIL.
    return cast(BinaryIO, pa.input_stream(str(path), compression=compression_of(path)))


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """Up to `size` decompressed bytes from the start; fewer if the stream is short or breaks off."""
    parts: list[bytes] = []
    got = 0
    with open_stream(path) as stream:
        try:
            while got < size:
                part = stream.read(min(1 << 14, size - got))
                if not part:
                    break
                parts.append(part)
                got += len(part)
        except (OSError, pa.ArrowException):
            pass  # a truncated archive still shows its first lines; the read reports the break
    return b"".join(parts).removeprefix(_BOM)


def cr_only(data: bytes) -> bool:
    """Whether text ends its lines with a bare CR (classic Mac OS exports): it has CRs but no LF at all."""
    return b"\r" in data and b"\n" not in data


def log_name(path: Path) -> str:
    """The file name without a compression suffix, lower-cased: "dns.04:00:00-05:00:00.log"."""
    name = Path(path).name.lower()
    for suffix in _COMPRESSED_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def head_lines(head: bytes, limit: int = 20) -> list[str]:
    """The first non-blank complete lines of a head, decoded leniently (detection must not fail on bytes)."""
    text = head.decode("utf-8", "replace")
    if cr_only(head):
        text = text.replace("\r", "\n")
    if len(head) >= HEAD_BYTES:
        text = text.rsplit("\n", 1)[0]  # the last line may be cut off
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()][:limit]


# --- the reader interface, detection and the entry point ------------------------------------------------------


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


# --- chunks of lines ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineChunk:
    """Whole lines of decompressed text, valid UTF-8, each ending with a newline."""

    data: bytes
    first_line: int
    count: int

    def numbers(self) -> Lines:
        return np.arange(self.first_line, self.first_line + self.count, dtype=np.int64)

    def lines(self) -> Any:
        """The lines as an Arrow string array, without their line ends."""
        body = _string_array(self.data, len(self.data) - 1, pa.string())  # the last newline adds no line
        lines = pc.split_pattern(body, "\n").flatten()
        return pc.utf8_rtrim(lines, characters="\r") if b"\r" in self.data else lines


def iter_line_chunks(path: Path, stats: ReadStats, chunk_bytes: int | None = None) -> Iterator[LineChunk]:
    """The decompressed file as chunks of whole lines, numbered from 1.

    A line longer than the chunk size is reported and skipped without being held in memory; a stream
    that breaks off (a truncated .gz) is reported at the line where it stops, after the lines before it.
    """
    limit = chunk_bytes or CHUNK_BYTES
    # A damaged archive loses only the piece being inflated when it fails; a plain file is read in one go.
    piece = limit if compression_of(path) is None else _PIECE_BYTES
    line, carry, skipping, broken = 1, b"", False, None
    bare_cr: bool | None = None  # decided on the first block, for the whole file
    with open_stream(path) as stream:
        while broken is None:
            block, broken = _read_block(stream, limit, piece)
            if not block:
                break
            if line == 1 and not carry:
                block = block.removeprefix(_BOM)  # spreadsheet exports start with one
            if bare_cr is None:
                bare_cr = cr_only(block)
            if bare_cr:
                block = block.replace(b"\r", b"\n")
            if skipping or carry:
                end = block.find(b"\n")
                if skipping and end < 0:
                    continue
                if skipping or (end >= 0 and len(carry) + end > limit):
                    if not skipping:
                        stats.error(path, line, f"line longer than {limit} bytes")
                    block, carry, skipping, line = block[end + 1 :], b"", False, line + 1
            cut = block.rfind(b"\n") + 1
            if not cut:
                carry += block
            else:
                # One copy at most: the carried start of a line joined to the block's whole lines.
                whole = block if not carry and cut == len(block) else b"".join((carry, memoryview(block)[:cut]))
                chunk = _chunk(whole, line, stats)
                line += chunk.count
                yield chunk
                carry = block[cut:]
            if len(carry) > limit:
                stats.error(path, line, f"line longer than {limit} bytes")
                carry, skipping = b"", True
    if broken is not None:
        stats.error(path, line, f"the input breaks off here ({broken})")  # its last line is cut: dropped
    elif carry and not skipping:
        yield _chunk(carry + b"\n", line, stats)


def _read_block(stream: BinaryIO, size: int, piece_bytes: int) -> tuple[bytes, str | None]:
    """Up to `size` bytes, read `piece_bytes` at a time, and why the stream broke off if it did."""
    pieces: list[bytes] = []
    got = 0
    try:
        while got < size:
            piece = stream.read(min(piece_bytes, size - got))
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
    except (OSError, pa.ArrowException) as exc:
        return b"".join(pieces), str(exc)
    return (pieces[0] if len(pieces) == 1 else b"".join(pieces)), None


def _string_array(data: bytes, length: int, kind: Any = None) -> Any:
    """One value: the first `length` bytes of `data`, without a copy."""
    offsets = pa.py_buffer(np.array([0, length], dtype=np.int32))
    return pa.Array.from_buffers(kind or pa.binary(), 1, [None, offsets, pa.py_buffer(data)])


def _chunk(data: bytes, first_line: int, stats: ReadStats) -> LineChunk:
    try:
        _string_array(data, len(data)).cast(pa.string())  # Arrow's UTF-8 check is far faster than decoding
    except pa.ArrowInvalid:
        data = _replace_non_utf8(data, stats)
    # numpy counts newlines several times faster than bytes.count.
    return LineChunk(data, first_line, int(np.count_nonzero(np.frombuffer(data, np.uint8) == 0x0A)))


def _replace_non_utf8(data: bytes, stats: ReadStats) -> bytes:
    # Keep such lines: a Latin-1 user agent must not hide the TikTok host on the same line.
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            lines[i] = line.decode("utf-8", "replace").encode("utf-8")
            stats.non_utf8 += 1
    return b"\n".join(lines)


def keep_lines(chunk: LineChunk, comment: bytes | None = None) -> tuple[bytes, Lines]:
    """The chunk without blank (and comment) lines, and the line number of each line kept."""
    kept: list[bytes] = []
    numbers: list[int] = []
    for i, line in enumerate(chunk.data.split(b"\n")[:-1]):
        if line.strip() and not (comment is not None and line.startswith(comment)):
            kept.append(line)
            numbers.append(chunk.first_line + i)
    return (b"\n".join(kept) + b"\n" if kept else b""), np.array(numbers, dtype=np.int64)


def starts_a_line(data: bytes, marker: bytes) -> bool:
    """Whether a line of `data` starts with the byte `marker`; fast when that byte is rare, as `#` is."""
    return next(line_starts(data, marker), None) is not None


def line_starts(data: bytes, marker: bytes) -> Iterator[int]:
    """The offsets of the lines of `data` that start with the byte `marker`."""
    # Searching for b"\n#" instead would stop at every newline and costs ten times more.
    at = data.find(marker)
    while at >= 0:
        if at == 0 or data[at - 1] == 0x0A:
            yield at
        at = data.find(marker, at + 1)


def parse_in_order(
    jobs: Iterable[Job],
    parse: Callable[[Job, ReadStats], pa.RecordBatch | None],
    notes: ReadStats,
    stats: ReadStats,
    workers: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """`parse(job, job_stats)` for every job, a few at a time on threads; batches and errors in job order.

    `notes` is where producing the jobs records problems (a line too long, bytes that are not UTF-8);
    they are merged in before the job produced after them, so errors stay in line order.
    """
    count = workers or WORKERS
    if count == 1:
        for job in jobs:
            stats.merge(notes.drain())
            batch = parse(job, stats)
            if batch is not None:
                yield batch
        stats.merge(notes.drain())
        return
    with ThreadPoolExecutor(count) as pool:
        # At most count + 1 jobs are in flight: memory stays at a few chunks.
        waiting: deque[tuple[ReadStats, ReadStats, Future[pa.RecordBatch | None]]] = deque()
        for job in jobs:
            own = ReadStats(max_errors=stats.max_errors)
            waiting.append((notes.drain(), own, pool.submit(parse, job, own)))
            if len(waiting) > count:
                yield from _collect(waiting.popleft(), stats)
        while waiting:
            yield from _collect(waiting.popleft(), stats)
        stats.merge(notes.drain())


def _collect(
    done: tuple[ReadStats, ReadStats, Future[pa.RecordBatch | None]], stats: ReadStats
) -> Iterator[pa.RecordBatch]:
    before, own, future = done
    batch = future.result()
    stats.merge(before)
    stats.merge(own)
    if batch is not None:
        yield batch


def parse_line_chunks(
    path: Path, parse: Callable[[LineChunk, ReadStats], pa.RecordBatch | None], stats: ReadStats
) -> Iterator[pa.RecordBatch]:
    """`parse` over the file's chunks of whole lines, with `parse_in_order`'s ordering of batches and errors."""
    notes = ReadStats()
    return parse_in_order(iter_line_chunks(path, notes), parse, notes, stats)


# --- parsing chunks -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delimited:
    """A delimited text layout: every field's name, the ones to keep, and how fields are written."""

    names: tuple[str, ...]
    include: tuple[str, ...]
    delimiter: str = ","
    quoted: bool = False
    nulls: tuple[str, ...] = ()
    # Arrow types for included fields the format declares (Zeek's `#types`): parsed as such, which is much
    # faster than strings converted later. A chunk where one value does not parse is read as strings.
    types: tuple[tuple[str, Any], ...] = ()


_SMALL_BYTES = 4096


def parse_delimited(
    data: bytes, numbers: Lines, spec: Delimited, path: Path, stats: ReadStats
) -> tuple[Columns, Lines]:
    """The `include` columns of whole lines of delimited text, one row per line: as strings, or as
    `spec.types` where every value of the chunk parses so.

    A line with the wrong number of fields is reported and dropped, a blank one silently. `numbers` are the
    lines' numbers.
    """
    if not data:
        return {name: pa.array([], pa.string()) for name in spec.include}, numbers
    if len(data) < _SMALL_BYTES:
        # Arrow's reader costs about a millisecond to set up, however few the lines: a file of many short
        # runs (a Zeek header block every line or two) would pay it per run.
        return _parse_delimited_slowly(data, numbers, spec, path, stats)
    invalid: list[tuple[int | None, int]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.number, row.actual_columns))
        return "skip"

    table = None
    # A blank line yields empty fields, which a typed column rejects unless "" means null.
    typed = [dict(spec.types)] if spec.types and "" not in spec.nulls else []
    for types in [*typed, {}]:
        invalid.clear()
        try:
            table = pacsv.read_csv(pa.py_buffer(data), **_csv_options(spec, len(data), on_invalid, types))
            break
        except pa.ArrowInvalid:
            continue
    # Arrow lets a quote opened on one line run on into the next; then rows no longer match lines.
    if table is None or table.num_rows + len(invalid) != len(numbers) or any(n is None for n, _ in invalid):
        return _parse_delimited_slowly(data, numbers, spec, path, stats)
    if invalid:
        rows = np.array([number for number, _ in invalid], dtype=np.int64) - 1
        stats.errors_at(path, numbers[rows], lambda i: _field_count(len(spec.names), invalid[i][1]))
        numbers = np.delete(numbers, rows)
    columns = {name: whole(table.column(name)) for name in spec.include}
    return _without_blank_rows(columns, numbers)


def _without_blank_rows(columns: Columns, numbers: Lines) -> tuple[Columns, Lines]:
    # Arrow turns a blank line into a row of empty strings (it never nulls them); dropping such rows here is
    # cheaper than finding blank lines in the text first.
    blank = None
    for values in columns.values():
        if not pa.types.is_string(values.type):
            return columns, numbers  # typed: a blank line would not have parsed (see parse_delimited)
        empty = pc.equal(pc.binary_length(values), 0)
        blank = empty if blank is None else pc.and_(blank, empty)
    if blank is None or not pc.any(blank).as_py():
        return columns, numbers
    keep = ~flags(blank)
    return select(columns, keep), numbers[keep]


def _csv_options(
    spec: Delimited, size: int, on_invalid: Callable[[Any], str], types: Mapping[str, Any]
) -> dict[str, Any]:
    # One block per chunk and one thread: the invalid-row handler then knows each row's number.
    return {
        "read_options": pacsv.ReadOptions(column_names=list(spec.names), block_size=size + 1, use_threads=False),
        "parse_options": pacsv.ParseOptions(
            delimiter=spec.delimiter,
            quote_char='"' if spec.quoted else False,
            ignore_empty_lines=False,
            newlines_in_values=False,
            invalid_row_handler=on_invalid,
        ),
        "convert_options": pacsv.ConvertOptions(
            include_columns=list(spec.include),
            column_types={name: types.get(name, pa.string()) for name in spec.include},
            null_values=list(spec.nulls),
            strings_can_be_null=bool(spec.nulls),
            quoted_strings_can_be_null=False,
        ),
    }


def _field_count(expected: int, found: int) -> str:
    return f"expected {expected} fields, found {found}"


def _parse_delimited_slowly(
    data: bytes, numbers: Lines, spec: Delimited, path: Path, stats: ReadStats
) -> tuple[Columns, Lines]:
    # Python's csv module, one line at a time: for a short run, and for the rare chunk Arrow could not map
    # to its lines.
    dialect: dict[str, Any] = {"delimiter": spec.delimiter, "quotechar": '"'}
    if not spec.quoted:
        dialect = {"delimiter": spec.delimiter, "quoting": csv.QUOTE_NONE}
    wanted = [spec.names.index(name) for name in spec.include]
    values: list[list[str | None]] = [[] for _ in wanted]
    kept: list[int] = []
    for i, line in enumerate(data.decode("utf-8").split("\n")[:-1]):
        if not line.strip():
            continue
        try:
            fields = next(csv.reader([line.rstrip("\r")], **dialect), [])
        except csv.Error as exc:
            stats.error(path, int(numbers[i]), f"bad CSV: {exc}")
            continue
        if len(fields) != len(spec.names):
            stats.error(path, int(numbers[i]), _field_count(len(spec.names), len(fields)))
            continue
        kept.append(i)
        for column, index in zip(values, wanted, strict=True):
            column.append(None if fields[index] in spec.nulls else fields[index])
    columns = {name: pa.array(column, pa.string()) for name, column in zip(spec.include, values, strict=True)}
    return columns, numbers[kept]


def parse_json_lines(chunk: LineChunk, schema: Any, path: Path, stats: ReadStats) -> tuple[Columns, Lines]:
    """The `schema` fields of JSON objects, one per line (blank lines are ignored).

    Arrow parses the chunk when every line fits the schema's types; otherwise the chunk is parsed line by
    line, so one bad line costs only its own row and values of another type are kept as they are.
    """
    table = _read_json(chunk.data, schema)
    if table is not None and table.num_rows == chunk.count:
        return {name: whole(table.column(name)) for name in schema.names}, chunk.numbers()
    data, numbers = keep_lines(chunk)  # Arrow skips blank lines: find which lines its rows are
    if table is not None and table.num_rows == len(numbers):
        return {name: whole(table.column(name)) for name in schema.names}, numbers
    return _parse_json_slowly(data, numbers, schema.names, path, stats)


def _read_json(data: bytes, schema: Any) -> Any:
    try:
        return pajson.read_json(
            pa.py_buffer(data),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=False
            ),
        )
    except pa.ArrowInvalid:
        return None


def _parse_json_slowly(
    data: bytes, numbers: Lines, names: Sequence[str], path: Path, stats: ReadStats
) -> tuple[Columns, Lines]:
    values: dict[str, list[Any]] = {name: [] for name in names}
    kept: list[int] = []
    for i, line in enumerate(data.split(b"\n")[:-1]):
        try:
            record = safejson.loads(line)
        except ValueError as exc:  # safejson.UnsafeJSON, and bytes that do not decode
            stats.error(path, int(numbers[i]), f"not JSON: {exc}")
            continue
        if not isinstance(record, dict):
            stats.error(path, int(numbers[i]), f"not a JSON object: {line[:60].decode('utf-8', 'replace')!r}")
            continue
        if could_hold_surrogates(line):
            record = without_surrogates(record)
        kept.append(i)
        for name in names:
            values[name].append(record.get(name))
    return {name: python_column(column) for name, column in values.items()}, numbers[kept]


def python_column(values: list[Any]) -> Any:
    """An Arrow array of JSON values; a column of mixed types becomes strings (JSON text for containers)."""
    plain = [v if v is None or isinstance(v, str | int | float | bool) else json.dumps(v) for v in values]
    try:
        return pa.array(plain)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in plain], pa.string())


def iter_parquet(path: Path, columns: Sequence[str], batch_rows: int) -> Iterator[tuple[Columns, Lines]]:
    """Some columns of a Parquet file, batch by batch, with each row's number + 1 as its line.

    Text-like columns (dictionary, large strings, bytes) come as strings. A column of a type that holds no
    single value (a list, struct or map), or one named twice, is refused before the first batch; a file that
    cannot be read raises a ValueError naming it.
    """
    try:
        parquet = pq.ParquetFile(str(path))
        check_columns(parquet.schema_arrow, columns, path)
        batches = parquet.iter_batches(batch_size=batch_rows, columns=list(dict.fromkeys(columns)))
        first = 1
        for batch in batches:
            values = {name: readable(batch.column(name)) for name in columns}
            yield values, np.arange(first, first + batch.num_rows, dtype=np.int64)
            first += batch.num_rows
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:  # names or metadata not UTF-8, too
        raise ValueError(f"{path}: cannot read this Parquet file: {exc}") from None


def parquet_columns(path: Path) -> list[str]:
    try:
        return list(pq.read_schema(str(path)).names)
    except (OSError, pa.ArrowException, UnicodeDecodeError):
        return []


# --- values ---------------------------------------------------------------------------------------------------


def check_zone(tz: str) -> str:
    """`tz` itself once known: an IANA zone ("Europe/Berlin") or a fixed offset ("-05:00")."""
    zone_from_name(tz)  # raises ValueError with a helpful message
    return tz


def to_text(values: Any) -> Any:
    """Strings without surrounding blanks; empty ones become null."""
    if values is None:
        return None
    text = values if pa.types.is_string(values.type) else values.cast(pa.string())
    if text.null_count == 0 and _plain_and_filled(text):
        return text  # the usual column: nothing to trim, nothing empty
    if _may_have_blanks(text):
        text = pc.utf8_trim_whitespace(text)
    empty = pc.equal(pc.binary_length(text), 0)
    return only(text, pc.invert(empty)) if pc.any(empty).as_py() else text


# Bytes a value may start or end with and still need no trimming: printable ASCII other than the space.
# Every whitespace character is an ASCII control or space, or a multi-byte character (bytes >= 0x80).
_PLAIN_EDGE = np.zeros(256, dtype=np.bool_)
_PLAIN_EDGE[0x21:0x7F] = True


def _plain_and_filled(text: Any) -> bool:
    """True when no value of a string array without nulls is empty, or starts or ends with a byte that
    could be white space: to_text then has nothing to do. Two bytes per value, and no clamping."""
    _, offset_buffer, data_buffer = text.buffers()
    if data_buffer is None or len(text) == 0:
        return len(text) == 0
    offsets = np.frombuffer(offset_buffer, dtype=np.int32)[text.offset : text.offset + len(text) + 1]
    starts, ends = offsets[:-1], offsets[1:]
    if not (ends > starts).all():
        return False
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    first, last = data[starts], data[ends - 1]
    return bool(first.min() > 0x20 and first.max() < 0x7F and last.min() > 0x20 and last.max() < 0x7F)


def _may_have_blanks(text: Any) -> bool:
    """False when no value of a string array starts or ends with a byte that could be white space.

    Looking at two bytes per value is several times cheaper than trimming every value.
    """
    _, offset_buffer, data_buffer = text.buffers()
    if data_buffer is None or data_buffer.size == 0:
        return False
    offsets = np.frombuffer(offset_buffer, dtype=np.int32)[text.offset : text.offset + len(text) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    # An empty value's "first" byte is the next value's and its "last" the previous one's: looking at them
    # can only cause a needless trim, never a missed one.
    first = data[np.minimum(offsets[:-1], len(data) - 1)]
    last = data[np.maximum(offsets[1:] - 1, 0)]
    return not (_PLAIN_EDGE[first].all() and _PLAIN_EDGE[last].all())


def to_port(values: Any) -> Any:
    """Port numbers as int32; anything else (ICMP "8.0", "-", 70000) becomes null."""
    return None if values is None else _whole_numbers(values, 5, 65_535).cast(pa.int32())


def to_count(values: Any) -> Any:
    """Non-negative counts as int64; anything else becomes null."""
    return None if values is None else _whole_numbers(values, 18, 2**62)


def _whole_numbers(values: Any, digits: int, largest: int) -> Any:
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        text = pc.utf8_trim_whitespace(values)
        numbers = only(text, pc.match_substring_regex(text, rf"^\d{{1,{digits}}}$")).cast(pa.int64())
    elif pa.types.is_floating(values.type):
        numbers = only(values, pc.equal(values, pc.floor(values))).cast(pa.int64())
    elif pa.types.is_integer(values.type):
        numbers = values.cast(pa.int64())
    else:
        return pa.nulls(len(values), pa.int64())
    return only(numbers, pc.and_(pc.greater_equal(numbers, 0), pc.less_equal(numbers, largest)))


def only(values: Any, mask: Any) -> Any:
    """`values` where `mask` holds, null elsewhere."""
    return pc.if_else(mask, values, pa.scalar(None, values.type))


def first_present(candidates: Sequence[Any], length: int, kind: Any) -> Any:
    """Per row, the first of `candidates` that is not null there (all null if there are none)."""
    if not candidates:
        return pa.nulls(length, kind)
    return pc.coalesce(*candidates) if len(candidates) > 1 else candidates[0]


def total(first: Any, second: Any) -> Any:
    """first + second, counting a missing one as 0; null only when both are missing."""
    if first is None or second is None:
        return first if second is None else second
    both = pc.add(pc.fill_null(first, 0), pc.fill_null(second, 0))
    return only(both, pc.or_(pc.is_valid(first), pc.is_valid(second)))


def to_timestamp(values: Any, tz: str | None) -> Any:
    """UTC timestamps from epoch seconds (numbers or strings), ISO 8601 strings or Arrow timestamps.

    A value without a zone is read in `tz`, and is null without one; so is anything unreadable.
    """
    kind = values.type
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            return values.cast(UTC_US)
        naive = values.cast(pa.timestamp("us"))
        return local_to_utc(naive, tz) if tz else pa.nulls(len(values), UTC_US)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return _from_epoch(values)
    text = values.cast(pa.string()) if not pa.types.is_string(kind) else values
    return _from_strings(text, tz)


def _from_epoch(seconds: Any) -> Any:
    if pa.types.is_float64(seconds.type) and seconds.null_count == 0:
        return _from_epoch_doubles(seconds.to_numpy(zero_copy_only=True))
    seconds = only(seconds, pc.and_(pc.greater_equal(seconds, 0), pc.less(seconds, _LATEST_EPOCH)))
    if pa.types.is_integer(seconds.type):
        micros = pc.multiply(seconds.cast(pa.int64()), 1_000_000)
    else:
        # Rounding to whole microseconds is exact here: a double holds these to better than 0.25 us.
        micros = pc.round(pc.multiply(seconds.cast(pa.float64()), 1e6)).cast(pa.int64())
    return micros.cast(UTC_US)


def _from_epoch_doubles(seconds: npt.NDArray[np.float64]) -> Any:
    # The usual column (Zeek's `ts`) in numpy: one pass per step instead of Arrow's null-aware kernels,
    # rounding half to even as pc.round does.
    valid = (seconds >= 0) & (seconds < _LATEST_EPOCH)  # false for NaN too
    everywhere = bool(valid.all())
    if not everywhere:
        seconds = np.where(valid, seconds, 0.0)
    micros = np.rint(seconds * 1e6).astype(np.int64)
    return pa.array(micros, UTC_US, mask=None if everywhere else ~valid)


def _from_strings(text: Any, tz: str | None) -> Any:
    try:
        # The usual column, ISO 8601 with offsets, in one cast; the general path below reads the same
        # values the same way, and also the others, at several times the cost.
        return text.cast(UTC_US)
    except pa.ArrowInvalid:
        return _parse_strings(text, tz)


def _parse_strings(text: Any, tz: str | None) -> Any:
    text = pc.utf8_trim_whitespace(text)
    epoch = pc.match_substring_regex(text, _EPOCH)
    parts = []
    if pc.any(epoch).as_py():
        parts.append(_from_epoch(only(text, epoch).cast(pa.float64())))
    if not pc.all(pc.or_kleene(epoch, pc.is_null(text))).as_py():
        iso = _normalise_iso(text)
        zoned = pc.match_substring_regex(iso, _ISO_ZONED)
        if pc.any(zoned).as_py():
            parts.append(_cast_each_if_needed(only(iso, zoned), UTC_US))
        naive = pc.match_substring_regex(iso, _ISO_NAIVE)
        if tz is not None and pc.any(naive).as_py():
            parts.append(local_to_utc(_cast_each_if_needed(only(iso, naive), pa.timestamp("us")), tz))
    return first_present(parts, len(text), UTC_US)


def _normalise_iso(text: Any) -> Any:
    # Arrow's ISO 8601 parser takes at most microseconds, a capital Z and no comma before the fraction.
    text = pc.replace_substring_regex(text, r"^(\S+[T ]\d\d:\d\d:\d\d),(\d)", r"\1.\2")
    text = pc.replace_substring_regex(text, r"(:\d\d\.\d{6})\d+", r"\1")
    text = pc.replace_substring_regex(text, r"(\d) ([zZ]|[+-]\d\d(?::?\d\d)?)$", r"\1\2")  # "04:01:02 +02:00"
    return pc.replace_substring_regex(text, r"z$", "Z")


def _cast_each_if_needed(text: Any, kind: Any) -> Any:
    try:
        return text.cast(kind)
    except pa.ArrowInvalid:
        pass  # one impossible date (31 Feb) fails the whole array: fall back to value by value
    micros: list[int | None] = []
    for value in text.to_pylist():
        try:
            micros.append(None if value is None else pa.array([value]).cast(kind)[0].value)
        except pa.ArrowInvalid:
            micros.append(None)
    return pa.array(micros, pa.int64()).cast(kind)


def local_to_utc(naive: Any, tz: str) -> Any:
    """Naive local timestamps in zone `tz` as UTC.

    A repeated hour (DST ending) reads as its first pass; a skipped one (DST starting) as the moment DST began.
    """
    if tz == "UTC":
        return naive.cast(UTC_US)
    aware = pc.assume_timezone(naive, timezone=tz, ambiguous="earliest", nonexistent="latest")
    return aware.cast(UTC_US)


def month_numbers(names: Any) -> Any:
    """1-12 for "Jan".."Dec" (any case), null for anything else."""
    return pc.add(pc.index_in(pc.utf8_capitalize(names), value_set=_MONTHS), 1)


def civil_timestamps(year: Any, month: Any, day: Any, clock: Any, fraction: Any, tz: str) -> Any:
    """UTC timestamps from local calendar parts given as strings (month as a number, clock as HH:MM:SS).

    `fraction` holds the digits after the seconds' decimal point ("" for none). Null where the parts name
    no real instant.
    """
    text = pc.binary_join_element_wise(year, month.cast(pa.string()), day, clock, " ")
    naive = pc.strptime(text, format="%Y %m %d %H:%M:%S", unit="us", error_is_null=True)
    # strptime rolls 31 Feb over into March; a day of the month that changed means the date does not exist.
    naive = only(naive, pc.equal(pc.day(naive), pc.cast(only(day, pc.utf8_is_digit(day)), pa.int64())))
    if fraction is not None:
        digits = pc.utf8_slice_codeunits(pc.fill_null(fraction, ""), 0, 6)
        naive = pc.add(naive, pc.utf8_rpad(digits, width=6, padding="0").cast(pa.int64()).cast(pa.duration("us")))
    return local_to_utc(naive, tz)


def syslog_timestamps(month: Any, day: Any, clock: Any, fraction: Any, path: Path, year: int | None, tz: str) -> Any:
    """UTC timestamps of syslog's yearless "Sep  2 04:01:02" in zone `tz`.

    Without an explicit `year` the file's modification time supplies it: a line from a month after that
    time's month was written the year before (a log rotated in January holds December's lines).
    """
    months = month_numbers(month)
    if year is not None:
        years: Any = pa.scalar(str(year))
    else:
        modified = dt.datetime.fromtimestamp(Path(path).stat().st_mtime, zone_from_name(tz))
        later = pc.greater(months, modified.month)
        years = pc.if_else(later, str(modified.year - 1), str(modified.year))
    return civil_timestamps(years, months, day, clock, fraction, tz)


def null_mask(values: Any) -> Mask:
    """True where `values` is null."""
    if values.null_count == 0:
        return np.zeros(len(values), dtype=np.bool_)
    return flags(pc.is_null(values))


def blank(lines: Any) -> Mask:
    """True for the lines that hold nothing but white space."""
    return flags(pc.equal(pc.binary_length(pc.utf8_trim_whitespace(lines)), 0))


def flags(values: Any) -> Mask:
    """An Arrow boolean array as a numpy mask, null counting as false."""
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=np.bool_)


def reject(stats: ReadStats, path: Path, numbers: Lines, bad: Mask, describe: Callable[[int], str]) -> Mask:
    """Report the rows flagged in `bad` as malformed (`describe(row)` says why); the rows to keep."""
    if bad.any():
        rows = np.flatnonzero(bad)
        stats.errors_at(path, numbers[rows], lambda i: describe(int(rows[i])))
    return ~bad


def report_unmatched(
    lines: Any, matched: Mask, numbers: Lines, path: Path, stats: ReadStats, logged: str, queryish: str, what: str
) -> None:
    """Sort the lines a log reader's pattern did not match.

    A blank line is dropped. A line that looks like one of the log's own lines (`logged`, a regular
    expression) but not a query is counted as skipped. The rest, and lines that look like queries
    (`queryish`) yet did not match, are reported as "not a <what> line".
    """
    rest = np.flatnonzero(~matched)
    text = lines.take(pa.array(rest))
    empty = blank(text)
    log_line = flags(pc.match_substring_regex(text, logged))
    query_like = flags(pc.match_substring_regex(text, queryish))
    broken = ~empty & (~log_line | query_like)
    stats.skipped += int((~empty & ~broken).sum())
    rows = rest[broken]
    stats.errors_at(path, numbers[rows], lambda i: f"not a {what} line: {lines[int(rows[i])].as_py()[:60]!r}")


def describe_value(values: Any, what: str, wrong: str = "bad") -> Callable[[int], str]:
    """A `reject` description: "missing <what>" or "<wrong> <what> '<value>'"."""

    def describe(row: int) -> str:
        value = None if values is None else python_value(values, row)
        if value is None or (isinstance(value, str) and not value.strip()):
            return f"missing {what}"
        shown = repr(value if not isinstance(value, str) else value[:80])
        return f"{wrong} {what} {shown}"

    return describe


def describe_time(values: Any, tz: str | None, option: str) -> Callable[[int], str]:
    """A `reject` description for a timestamp; one without an offset, when no zone was given, says so."""

    def describe(row: int) -> str:
        value = None if values is None else python_value(values, row)
        if value is None:
            return "missing timestamp"
        parsed = to_timestamp(pa.array([str(value)]), "UTC")[0].as_py() if tz is None else None
        if parsed is not None:
            return f"timestamp {str(value)[:40]!r} has no UTC offset; give its time zone ({option})"
        return f"bad timestamp {str(value)[:40]!r}"

    return describe


# --- batches --------------------------------------------------------------------------------------------------


def whole(values: Any) -> Any:
    """A chunked array as one array; a single chunk is taken as it is (combine_chunks would copy it)."""
    return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()


def select(columns: Mapping[str, Any], keep: Mask) -> Columns:
    """The kept rows of every column (None stays None)."""
    if keep.all():
        return dict(columns)
    mask = pa.array(keep)
    return {name: None if values is None else values.filter(mask) for name, values in columns.items()}


def make_batch(source: str, numbers: Lines, columns: Mapping[str, Any], schema: Any = RECORD_SCHEMA) -> pa.RecordBatch:
    """A `schema` batch: the given record columns, nulls for the others, `source` and `line` filled."""
    count = len(numbers)
    arrays = []
    for spec in schema:
        if spec.name == "source":
            arrays.append(_repeated(source, spec.type, count))
        elif spec.name == "line":
            arrays.append(pa.array(numbers, pa.int64()))
        elif columns.get(spec.name) is None:
            arrays.append(_repeated(None, spec.type, count))
        else:
            values = columns[spec.name]
            if isinstance(values, pa.ChunkedArray):
                values = whole(values)
            arrays.append(values if values.type == spec.type else values.cast(spec.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# Every batch repeats the same constant columns (its source; nulls where the format has no such field):
# slices of one array per constant cost nothing, where building each anew costs a pass over the rows.
_CONSTANTS: dict[tuple[Any, Any], Any] = {}


def _repeated(value: Any, kind: Any, count: int) -> Any:
    """`count` times `value` (None: null) as an Arrow array of type `kind`."""
    key = (value, kind)
    known = _CONSTANTS.get(key)
    if known is None or len(known) < count:
        known = pa.repeat(pa.scalar(value, kind), max(count, DEFAULT_BATCH_ROWS))
        _CONSTANTS[key] = known  # a race only builds the same array twice
    return known.slice(0, count)


def rebatch(batches: Iterable[pa.RecordBatch], batch_rows: int, stats: ReadStats) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of at most `batch_rows`, counted into `stats`.

    A larger batch is sliced; smaller ones pass as they are: joining them would copy every column once more.
    """
    for batch in batches:
        for start in range(0, batch.num_rows, batch_rows):
            piece = batch.slice(start, batch_rows)
            stats.rows += piece.num_rows
            yield piece

"""Text as typed Arrow columns (text, ports, counts, instants in any zone), masks, and what to say about bad values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from appban.reading.stats import Columns, Lines, Mask, ReadStats
from appban.rulebook.schema import zone_from_name
from appban.textcolumns import python_value

UTC_US = pa.timestamp("us", tz="UTC")
_MONTHS = pa.array(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
_EPOCH = r"^\d{1,11}(?:\.\d*)?$"
_ISO_TIME = r"^\d{4}-\d\d-\d\d[T ]\d\d(?::\d\d(?::\d\d(?:\.\d+)?)?)?"
_ISO_ZONED = _ISO_TIME + r"(?:Z|[+-]\d\d(?::?\d\d)?)$"
_ISO_NAIVE = _ISO_TIME + "$"
_LATEST_EPOCH = 100_000_000_000  # year 5138: larger "epoch seconds" are something else (milliseconds, ids)


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


def yearless_note(path: Path, tz: str) -> str:
    """What `syslog_timestamps` assumed without a `year`, to tell the user once per file (ReadStats.note)."""
    modified = dt.datetime.fromtimestamp(Path(path).stat().st_mtime, zone_from_name(tz))
    earlier = f", {modified.year - 1} for lines dated after {modified:%B}" if modified.month < 12 else ""
    return (
        f"syslog times carry no year: {modified.year} was taken from the file's modification time "
        f"({modified:%Y-%m-%d}){earlier}; give the year with --log-year"
    )


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


# --- arrays ---------------------------------------------------------------------------------------------------


def whole(values: Any) -> Any:
    """A chunked array as one array; a single chunk is taken as it is (combine_chunks would copy it)."""
    return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()


def select(columns: Mapping[str, Any], keep: Mask) -> Columns:
    """The kept rows of every column (None stays None)."""
    if keep.all():
        return dict(columns)
    mask = pa.array(keep)
    return {name: None if values is None else values.filter(mask) for name, values in columns.items()}

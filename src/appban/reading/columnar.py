"""Rows of a CSV, JSON-lines or Parquet file, streamed column by column, whatever the record they become.

Readers that take any export through a column map (network logs, payment exports) share this: it tells
a file's columns, and hands over the chosen columns chunk by chunk, with each row's line number, to a
function that turns them into the reader's record batches. CSV may be comma-, tab-, semicolon- or
pipe-separated (told from the header line) and may quote fields; a JSON-lines file's value types are
guessed from its first lines, and a chunk that breaks the guess is read line by line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from appban import safejson
from appban.reading.chunks import LineChunk, iter_line_chunks, parse_in_order, parse_line_chunks
from appban.reading.parse import Delimited, iter_parquet, parquet_columns, parse_delimited, parse_json_lines
from appban.reading.stats import Columns, Lines, ReadStats
from appban.reading.streams import head_lines, read_head
from appban.textcolumns import without_surrogates

# (the chosen columns' values, their line numbers, the file, where to report) -> a batch, or None
MakeBatch = Callable[[Columns, Lines, Path, ReadStats], pa.RecordBatch | None]

_DELIMITERS = (",", "\t", ";", "|")
_SAMPLE_LINES = 200


def file_columns(path: Path, head: bytes | None = None) -> list[str]:
    """The column names of a CSV (its header line), JSON-lines (keys of its first objects) or Parquet file."""
    head = read_head(path) if head is None else head
    if head.startswith(b"PAR1"):
        return parquet_columns(path)
    lines = head_lines(head, limit=_SAMPLE_LINES)
    if not lines:
        return []
    if lines[0].lstrip().startswith(("{", "[")):  # JSON lines, the first perhaps not an object
        return sorted(_json_samples(lines))
    return _csv_names(lines[0], _delimiter(lines[0]))


def read_columns(path: Path, columns: list[str], make: MakeBatch, stats: ReadStats, batch_rows: int) -> Iterator[Any]:
    """`make(values, lines, path, stats)` over the file's rows, a chunk at a time, for the named columns."""
    head = read_head(path)
    wanted = list(dict.fromkeys(columns))
    if head.startswith(b"PAR1"):
        return _read_parquet(path, wanted, make, stats, batch_rows)
    _check_unique(path, file_columns(path, head), wanted)
    if head.lstrip().startswith((b"{", b"[")):
        return _read_json(path, wanted, head, make, stats)
    return _read_csv(path, tuple(wanted), make, stats)


def _read_parquet(
    path: Path, columns: list[str], make: MakeBatch, stats: ReadStats, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    for values, numbers in iter_parquet(path, columns, batch_rows):
        batch = make(values, numbers, path, stats)
        if batch is not None:
            yield batch


def _read_json(path: Path, columns: list[str], head: bytes, make: MakeBatch, stats: ReadStats) -> Iterator[Any]:
    samples = _json_samples(head_lines(head, limit=_SAMPLE_LINES))
    schema = pa.schema([(column, _json_type(samples.get(column, []))) for column in columns])

    def parse(chunk: LineChunk, own: ReadStats) -> pa.RecordBatch | None:
        values, numbers = parse_json_lines(chunk, schema, path, own)
        return make(values, numbers, path, own) if len(numbers) else None

    return parse_line_chunks(path, parse, stats)


def _read_csv(path: Path, columns: tuple[str, ...], make: MakeBatch, stats: ReadStats) -> Iterator[Any]:
    notes = ReadStats()

    def parse(job: tuple[Delimited, bytes, Lines], own: ReadStats) -> pa.RecordBatch | None:
        spec, data, numbers = job
        values, numbers = parse_delimited(data, numbers, spec, path, own)
        return make(values, numbers, path, own) if len(numbers) else None

    return parse_in_order(_csv_jobs(iter_line_chunks(path, notes), columns, path), parse, notes, stats)


def _check_unique(path: Path, names: list[str], wanted: list[str]) -> None:
    """A chosen column named twice in the file: which one is meant cannot be told."""
    for name in wanted:
        count = names.count(name)
        if count > 1:
            raise ValueError(f"{path}: column {name!r}: appears {count} times; rename all but one")


def _delimiter(header: str) -> str:
    return max(_DELIMITERS, key=header.count)  # ties go to the comma, listed first


def _csv_names(header: str, delimiter: str) -> list[str]:
    try:
        fields = next(csv.reader([header], delimiter=delimiter), [])
    except csv.Error:  # a bare CR or NUL in the header line: split it as it stands
        fields = header.split(delimiter)
    return [name.strip() for name in fields]


def _csv_jobs(
    chunks: Iterator[LineChunk], columns: tuple[str, ...], path: Path
) -> Iterator[tuple[Delimited, bytes, Lines]]:
    """Each chunk's data lines with the layout its header line set (the first non-blank line)."""
    spec: Delimited | None = None
    for chunk in chunks:
        data, numbers = chunk.data, chunk.numbers()
        if spec is None:
            stream = io.BytesIO(data)
            for line in stream:
                numbers = numbers[1:]
                if line.strip():
                    header = line.decode("utf-8").strip("\r\n")
                    delimiter = _delimiter(header)
                    names = _csv_names(header, delimiter)
                    # The columns were chosen from the file's first bytes: a header line longer than those
                    # can turn out to hold other names (or another delimiter) when read whole.
                    missing = [name for name in columns if name not in names]
                    if missing:
                        raise ValueError(f"{path}: the header line has no column {missing[0]!r}")
                    _check_unique(path, names, list(columns))
                    spec = Delimited(tuple(names), columns, delimiter, quoted=True)
                    break
            data = data[stream.tell() :]
        if spec is not None:
            yield spec, data, numbers


def _json_samples(lines: list[str]) -> dict[str, list[Any]]:
    """Key -> the values the sampled lines give it."""
    samples: dict[str, list[Any]] = {}
    for line in lines:
        try:
            record = safejson.loads(line)
        except safejson.UnsafeJSON:
            continue
        if isinstance(record, dict):
            for key, value in record.items():
                # A key names a column, which Arrow holds as UTF-8 (the lines are cleaned the same way).
                samples.setdefault(without_surrogates(key), []).append(value)
    return samples


def _json_type(values: list[Any]) -> Any:
    """The Arrow type for a key, guessed from sampled values. A chunk that breaks the guess is still read,
    line by line."""
    present = [value for value in values if value is not None]
    if present and all(isinstance(value, bool) for value in present):
        return pa.bool_()
    if present and all(isinstance(value, int) and not isinstance(value, bool) for value in present):
        return pa.int64()  # ids stay exact (a double would round those above 2**53)
    if present and all(isinstance(value, int | float) and not isinstance(value, bool) for value in present):
        return pa.float64()
    return pa.string()

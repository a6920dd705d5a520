"""Reading transaction tables (CSV, JSON Lines, Parquet) and writing results, without half-written files."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

TEXT_COLUMNS = ("app", "transaction", "where", "at", "facts")


class TableReadError(ValueError):
    pass


def input_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in {".csv", ".tsv"}:
            return "csv"
        if suffix in {".jsonl", ".ndjson"}:
            return "jsonl"
        if suffix in {".parquet", ".pq"}:
            return "parquet"
        if suffix == ".json":
            return "json"
    raise TableReadError(f"{path}: unknown input format (use .csv, .json, .jsonl/.ndjson or .parquet)")


def read_table(path: Path, *, all_text: bool = False) -> pa.Table:
    """A whole input table, with the decision columns (or, with all_text, every column) read as text:
    never guessed as numbers, dates or nulls."""
    fmt = input_format(path)
    if not path.is_file():
        raise TableReadError(f"{path}: no such file")
    try:
        if fmt == "json":
            return _read_json_document(path)
        if fmt == "csv":
            names = _csv_header(path)
            types = {name: pa.string() for name in names if all_text or name in TEXT_COLUMNS}
            return pacsv.read_csv(
                path,
                parse_options=pacsv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ","),
                # "NA" is Namibia and "IN" is India: only an empty cell is missing.
                convert_options=pacsv.ConvertOptions(
                    column_types=types, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False
                ),
            )
        if fmt == "jsonl":
            # Keep instants and codes as text: left to itself the reader turns "...Z" into naive timestamps.
            present = _jsonl_keys(path)
            wanted = present if all_text else [name for name in TEXT_COLUMNS if name in present]
            schema = pa.schema([(name, pa.string()) for name in wanted if name != "facts"])
            table = pajson.read_json(path, parse_options=pajson.ParseOptions(explicit_schema=schema))
            if "facts" in table.column_names and not pa.types.is_string(table.column("facts").type):
                # Objects arrive as structs; keep the original JSON text so decisions read it alike.
                facts = [
                    None if v is None else json.dumps({k: x for k, x in v.items() if x is not None})
                    for v in table.column("facts").to_pylist()
                ]
                table = table.set_column(table.column_names.index("facts"), "facts", pa.array(facts, pa.string()))
            return table
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableReadError(f"{path}: {exc}") from None


def _read_json_document(path: Path) -> pa.Table:
    """A JSON array of objects, or an object holding one under "value" (the shape of Graph API exports)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TableReadError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("value"), list):
        data = data["value"]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise TableReadError(f'{path}: expected a JSON array of objects (or {{"value": [...]}})')
    names = list(dict.fromkeys(key for row in data for key in row))
    columns = {
        name: pa.array([None if row.get(name) is None else _text(row[name]) for row in data], pa.string())
        for name in names
    }
    return pa.table(columns)


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _jsonl_keys(path: Path) -> list[str]:
    """The keys of the first record (later records may add more; those are inferred)."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for text in handle:
            if text.strip():
                try:
                    first = json.loads(text)
                except json.JSONDecodeError:
                    return []
                return (
                    [key for key, value in first.items() if not isinstance(value, dict | list)]
                    if isinstance(first, dict)
                    else []
                )
    return []


def _csv_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        first = handle.readline()
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    return [name.strip().strip('"') for name in first.rstrip("\r\n").split(sep)]


def line_mapper(path: Path) -> Callable[[int], int]:
    """Maps a 0-based table row to the 1-based line of the input file that holds it.

    CSV: the line after the header; JSON Lines: the row's own line (blank lines skipped);
    JSON and Parquet have no lines, so the record number (row + 1) stands in.
    """
    fmt = input_format(path)
    if fmt == "csv":
        return lambda row: row + 2
    if fmt == "jsonl":
        with path.open(encoding="utf-8", errors="replace") as handle:
            lines = [number for number, text in enumerate(handle, start=1) if text.strip()]
        return lambda row: lines[row] if row < len(lines) else row + 1
    return lambda row: row + 1


def line_of_row(path: Path, row: int) -> int:
    return line_mapper(path)(row)


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write via a temporary file in the same directory and rename it over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temp))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def to_records(table: pa.Table) -> list[dict[str, object]]:
    return [{k: (str(v) if hasattr(v, "isoformat") else v) for k, v in row.items()} for row in table.to_pylist()]


def write_csv(table: pa.Table, path: Path) -> None:
    flat = table
    if "rule_ids" in flat.column_names:
        joined = [";".join(ids or []) for ids in flat.column("rule_ids").to_pylist()]
        flat = flat.set_column(flat.column_names.index("rule_ids"), "rule_ids", pa.array(joined, pa.string()))
    flat = flat.cast(
        pa.schema(
            [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in flat.schema]
        )
    )
    pacsv.write_csv(flat, path)


def grouped(
    batches: Iterable[pa.RecordBatch], rows: int, progress: Callable[[int], None] | None = None
) -> Iterator[pa.Table]:
    """Tables of about `rows` rows made of consecutive batches (side by side, not copied), so that work
    done once per call (a dictionary encoding, one look-up per distinct value) is small next to the rows.
    `progress` is told each batch's row count as it arrives."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        pending.append(batch)
        size += batch.num_rows
        if progress is not None:
            progress(batch.num_rows)
        if size >= rows:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)

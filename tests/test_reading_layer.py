"""The reading layer sits below every screener: reading a file never imports a screener's package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from appban.reading.columnar import file_columns, read_columns
from appban.reading.stats import Columns, Lines, ReadStats


def test_reading_imports_no_screener() -> None:
    program = (
        "import sys, appban.reading.columnar, appban.reading.batches, appban.reading.values;"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('appban.'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", program], check=True, capture_output=True, text=True).stdout.split()
    assert "appban.reading.columnar" in loaded
    screeners = [m for m in loaded if m.split(".")[1] in {"network", "payments", "screen", "code", "identity"}]
    assert screeners == []


def test_a_new_screener_reads_any_export_through_the_layer(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("when;what\n2020-09-20;a\n\n2020-09-21;b;extra\n2020-09-22;c\n", encoding="utf-8")
    assert file_columns(path) == ["when", "what"]
    stats = ReadStats()

    def make(columns: Columns, lines: Lines, where: Path, seen: ReadStats) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([columns["what"], pa.array(lines)], names=["what", "line"])

    rows = pa.Table.from_batches(list(read_columns(path, ["what"], make, stats, 10))).to_pylist()
    assert rows == [{"what": "a", "line": 2}, {"what": "c", "line": 5}]
    assert [(e.line, e.message) for e in stats.errors] == [(4, "expected 2 fields, found 3")]


def test_a_field_with_bytes_that_are_not_utf8_reads_as_valid_text(tmp_path: Path) -> None:
    """Arrow's own UTF-8 check is off for delimited text (the chunk was checked, and mended, before it is
    parsed): a Latin-1 byte still comes out as a replacement character in a valid string column, on its line."""
    path = tmp_path / "export.csv"
    rows = [f"2020-09-{20 + i % 9};row {i}".encode() for i in range(400)]  # past the small-chunk fallback
    rows[123] = b"2020-09-21;caf\xe9 \xff"
    path.write_bytes(b"when;what\n" + b"\n".join(rows) + b"\n")
    stats = ReadStats()

    def make(columns: Columns, lines: Lines, where: Path, seen: ReadStats) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([columns["what"], pa.array(lines)], names=["what", "line"])

    table = pa.Table.from_batches(list(read_columns(path, ["what"], make, stats, 1000)))
    table.validate(full=True)  # raises on a string that is not UTF-8
    assert table.num_rows == 400 and stats.non_utf8 == 1
    mended = table.filter(pc.equal(table["line"], 125)).to_pylist()
    assert mended == [{"what": "caf\ufffd \ufffd", "line": 125}]

"""Quoted CSV files are read by Arrow, with their lines worked out over the bytes at once, and give exactly
what reading them record by record with the csv module gives: the same rows, values, types and lines.

Exports quote their fields (pyarrow's, Excel's, most processors'), and such files used to be read record by
record in Python: a 1.5 million-row file took 12 s to read and 6 s more to number its lines
(bench/RESULTS.md, "decide on a cluster").
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from appban import tablereader
from appban.tablereader import csv_record_lines, line_mapper, read_table, record_starts, row_lines

# Pieces a field is made of: quotes, separators and line ends among ordinary text.
PIECES = ["a", "US", "tiktok", " ", "", '"', ",", "\n", "\r\n", "12", "3.5", "é", "\t"]
fields = st.lists(st.sampled_from(PIECES), max_size=4).map("".join)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A CSV as writers make them (quoted always, when needed, or never), line ends LF or CRLF, with blank
    lines, ragged rows and stray bytes now and then."""
    width = draw(st.integers(1, 4))
    names = ["app", "transaction", "where", "at"][:width]
    rows = draw(st.lists(st.lists(fields, min_size=width, max_size=width), max_size=8))
    quoting = draw(st.sampled_from([csv.QUOTE_ALL, csv.QUOTE_MINIMAL, csv.QUOTE_NONNUMERIC]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=quoting, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(names)
    writer.writerows(rows)
    text = buffer.getvalue()
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(0, 2))):  # blank lines, ragged rows, stray quotes, no last line end
        at = draw(st.integers(1, max(1, len(lines))))
        lines.insert(at, draw(st.sampled_from(["\n", "\r\n", "x\n", 'a"b,c\n', '"x"y,z\n', "a,b,c,d,e\n"])))
    text = "".join(lines)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    return text.encode()


def by_the_csv_module(data: bytes) -> list[int]:
    return [line for line, _ in tablereader._csv_records(data.decode("utf-8", "replace"), ",")]


@settings(max_examples=600, deadline=None)
@given(data=csv_files())
@example(data=b'app\n"a\nb"\n\n"c"\n')
@example(data=b'app,at\n"a""b",""\r\n\r\n"x\r\ny",z')
def test_record_lines_are_the_csv_modules(data: bytes) -> None:
    starts = record_starts(data, ",")
    if starts is not None:
        assert starts.tolist() == by_the_csv_module(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=csv_files(), all_text=st.booleans())
def test_arrow_reads_a_quoted_file_as_the_csv_module_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, all_text: bool
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    fast = _read(path, all_text)
    with monkeypatch.context() as patch:
        patch.setattr(tablereader, "record_starts", lambda *_: None)
        slow = _read(path, all_text)
        slow_lines = [line_mapper(path)(row) for row in range(5)]
    assert fast == slow
    assert [line_mapper(path)(row) for row in range(5)] == slow_lines
    assert row_lines(path, 5).tolist() == slow_lines


def _read(path: Path, all_text: bool) -> tuple[str, object]:
    try:
        table = read_table(path, all_text=all_text)
    except tablereader.TableReadError as exc:
        return "error", str(exc)
    return "table", (table.schema, table.to_pylist())


def test_the_properties_reach_arrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quoted files with line breaks in values, doubled quotes, quoted empty cells and blank lines are read by
    Arrow, not handed to the csv module."""
    monkeypatch.setattr(tablereader, "_python_csv", None)  # reading record by record would fail here
    data = b'"app","at","extra"\r\n"tiktok","2020-09-20T00:00:00Z","a\r\nb"\r\n\r\n"we""chat","",""\r\n'
    starts = record_starts(data, ",")
    assert starts is not None and starts.tolist() == by_the_csv_module(data) == [1, 2, 5]
    path = tmp_path / "q.csv"
    path.write_bytes(data)
    table = read_table(path)
    assert table.to_pylist() == [
        {"app": "tiktok", "at": "2020-09-20T00:00:00Z", "extra": "a\r\nb"},
        {"app": 'we"chat', "at": None, "extra": None},
    ]
    assert csv_record_lines(path) == [2, 5] and row_lines(path, 3).tolist() == [2, 5, 4]
    for stray in (b'app\n"a"b\n', b'app\na"b"\n', b'app\n"a\n', b"app\na\x00b\n", b"app\r\na\rb\n"):
        assert record_starts(stray, ",") is None, stray


def test_a_written_export_needs_no_line_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow quotes every text field; its files' rows are on the lines after the header."""
    monkeypatch.setattr(tablereader, "_python_csv", None)
    path = tmp_path / "export.csv"
    pacsv.write_csv(pa.table({"app": ["tiktok", "wechat"] * 50, "where": ["US", "GB"] * 50}), path)
    assert b'"tiktok"' in path.read_bytes()
    assert csv_record_lines(path) is None
    assert np.array_equal(row_lines(path, 100), np.arange(2, 102))
    assert read_table(path).num_rows == 100

"""Hostile and malformed input to every file reader: a result, a reported line, or a named error, never a crash.

Each case is generated here. Every reader (the decide table reader, inventory screening, payment exports and
ISO 20022 messages, the network log readers) gets every class of damage: odd line ends, a BOM, NUL bytes,
bytes that are not UTF-8, JSON nested thousands deep or holding numbers no field takes, lines longer than the
cap, empty and header-only files, repeated column names, Parquet columns of every Arrow type, XML with
entities. A case passes when the read ends in rows, in the bad line reported with its number, or in the
documented "bad input" error (a ValueError naming the file), and the good rows around the damage survive.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from appban import tablereader
from appban.engine.batch import TableInputError, decide_table
from appban.network.records import read_log
from appban.reading import chunks, parse
from appban.screen.inventory import Screener
from appban.screen.payments import PaymentOptions, screen_payments
from appban.tables import TableReadError, line_mapper, read_table

DEEP_ARRAY = "[" * 5_000 + "]" * 5_000  # about 10 KB: far past the interpreter's recursion limit
DEEP_OBJECT = '{"a":' * 3_000 + "1" + "}" * 3_000


@dataclass
class Outcome:
    """What a read ended in: rows, the lines reported as bad, or the documented error."""

    rows: int = 0
    bad_lines: list[int] = field(default_factory=list)
    error: str | None = None


# ------------------------------------------------------------------------------------------------
# The readers, each behind one function: path -> Outcome. Anything but the documented error fails the test.


def read_decide(path: Path) -> Outcome:
    try:
        table = read_table(path)
    except TableReadError as exc:
        return Outcome(error=str(exc), bad_lines=_lines_named(str(exc), path))
    try:
        decided = decide_table(table)
    except TableInputError as exc:  # as the CLI reports it: file, line, field
        mapper = line_mapper(path)
        lines = {mapper(e.row) for e in exc.errors if e.message != "column is missing"}
        return Outcome(error=f"{path}: {exc}", bad_lines=sorted(lines))
    return Outcome(rows=decided.num_rows)


_SCREENER: list[Screener] = []


def read_inventory(path: Path) -> Outcome:
    if not _SCREENER:
        _SCREENER.append(Screener())
    try:
        table = read_table(path, all_text=True)
        result = _SCREENER[0].screen(table, str(path), line_mapper(path))
    except ValueError as exc:  # TableReadError and ColumnMapError: exit 2, the CLI naming the file
        return Outcome(error=f"{path}: {exc}")
    unreadable = {e.line for e in result.errors if e.column == "-"}  # never screened
    bad_values = {e.line for e in result.errors if e.column != "-"}  # screened, and found wrong
    return Outcome(rows=result.rows - len(bad_values), bad_lines=sorted(unreadable | bad_values))


def read_payments(path: Path, **options: Any) -> Outcome:
    try:
        result = screen_payments([path], PaymentOptions(**options))
    except ValueError as exc:
        return Outcome(error=str(exc))
    return Outcome(rows=result.rows, bad_lines=_lines_named("\n".join(result.errors), path))


def read_network(path: Path, fmt: str | None = None, **options: Any) -> Outcome:
    try:
        batches, stats = read_log(path, fmt, **options)
        rows = sum(batch.num_rows for batch in batches)
    except ValueError as exc:
        return Outcome(error=str(exc))
    return Outcome(rows=rows, bad_lines=[error.line for error in stats.errors])


def _lines_named(text: str, path: Path) -> list[int]:
    found = []
    for line in text.splitlines():
        _, _, rest = line.partition(f"{path}:")
        number = rest.split(":", 1)[0]
        if number.isdigit():
            found.append(int(number))
    return sorted(set(found))


# ------------------------------------------------------------------------------------------------
# Each table reader: its columns and one good row, as text.


@dataclass(frozen=True)
class Layout:
    name: str
    read: Callable[[Path], Outcome]
    columns: tuple[str, ...]
    good: tuple[str, ...]
    instant: str  # the column holding the row's time
    lenient: bool  # bad rows are reported and the rest read (else nothing is read and the lines are listed)

    def record(self, **changes: Any) -> dict[str, Any]:
        return {**dict(zip(self.columns, self.good, strict=True)), **changes}


LAYOUTS = [
    Layout(
        "decide",
        read_decide,
        ("app", "transaction", "where", "at"),
        ("tiktok", "app_store_distribution", "US", "2020-09-20T12:00:00-04:00"),
        "at",
        lenient=False,
    ),
    Layout(
        "inventory",
        read_inventory,
        ("listing_id", "name", "publisher", "storefront", "last_updated"),
        ("as-1", "TikTok", "TikTok Pte. Ltd.", "US", "2020-09-20T12:00:00-04:00"),
        "last_updated",
        lenient=True,
    ),
    Layout(
        "payments",
        read_payments,
        ("id", "ts", "amount", "currency", "method", "payer_country", "merchant_country"),
        ("ch_1", "2020-09-21T09:12:40Z", "129.00", "USD", "wechat_pay", "CN", "US"),
        "ts",
        lenient=True,
    ),
    Layout(
        "network",
        lambda path: read_network(path, "generic"),
        ("ts", "host", "client"),
        ("2020-09-20T04:01:02Z", "www.tiktok.com", "192.0.2.1"),
        "ts",
        lenient=True,
    ),
]
by_layout = pytest.mark.parametrize("layout", LAYOUTS, ids=[layout.name for layout in LAYOUTS])


def csv_bytes(layout: Layout, rows: list[list[str]], end: str = "\n", header: list[str] | None = None) -> bytes:
    lines = [",".join(header or layout.columns), *(",".join(row) for row in rows)]
    return (end.join(lines) + end).encode("utf-8")


def jsonl_bytes(*records: str) -> bytes:
    return ("\n".join(records) + "\n").encode("utf-8")


def assert_reported(layout: Layout, outcome: Outcome, bad: list[int], good_rows: int) -> None:
    """The damaged lines, and only they, are named; a lenient reader read the good rows around them. A strict
    one read nothing; it names each bad line, or the first of those sharing one bad value."""
    if layout.lenient:
        assert outcome == Outcome(rows=good_rows, bad_lines=bad), outcome
    else:
        assert outcome.error is not None and outcome.rows == 0, outcome
        assert outcome.bad_lines and set(outcome.bad_lines) <= set(bad), outcome


# ------------------------------------------------------------------------------------------------
# Line ends, BOM, NUL, encodings


@by_layout
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_end_reads_every_row(tmp_path: Path, layout: Layout, end: str) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(csv_bytes(layout, [list(layout.good)] * 3, end))
    assert read_with(layout, path) == Outcome(rows=3)


def read_with(layout: Layout, path: Path) -> Outcome:
    outcome = layout.read(path)
    assert outcome.error is None, outcome
    return outcome


@by_layout
def test_a_bare_cr_inside_an_lf_file_costs_at_most_its_own_row(tmp_path: Path, layout: Layout) -> None:
    good = ",".join(layout.good)
    path = tmp_path / "mixed.csv"
    path.write_bytes(f"{','.join(layout.columns)}\r\n{good}\r{good}\n{good}\n".encode())
    outcome = layout.read(path)
    # Either the bare CR ends a line (the csv module's reading) or the line holding it is reported.
    assert outcome == Outcome(rows=3) or (outcome.bad_lines == [2] and outcome.rows in (0, 1)), outcome


@by_layout
def test_line_breaks_inside_quoted_fields(tmp_path: Path, layout: Layout) -> None:
    good = ",".join(layout.good)
    quoted = list(layout.good)
    quoted[0] = f'"{quoted[0]}\rsecond\nthird"'
    path = tmp_path / "quoted.csv"
    path.write_bytes(f"{','.join(layout.columns)}\n{good}\n{','.join(quoted)}\n{good}\n".encode())
    outcome = layout.read(path)
    assert outcome.error is None or not layout.lenient, outcome
    if layout.name in ("decide", "inventory"):
        # These readers take multi-line values; the value is wrong, the line numbers after it are still right.
        assert outcome.bad_lines in ([], [3]), outcome


@by_layout
def test_byte_order_mark_is_not_part_of_the_first_name(tmp_path: Path, layout: Layout) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_bytes(layout, [list(layout.good)]))
    assert read_with(layout, path) == Outcome(rows=1)
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + jsonl_bytes(json.dumps(layout.record())))
    assert read_with(layout, path) == Outcome(rows=1)


@by_layout
def test_nul_bytes_and_invalid_utf8_cost_at_most_their_row(tmp_path: Path, layout: Layout) -> None:
    good = list(layout.good)
    nul = [good[0] + "\x00x", *good[1:]]
    path = tmp_path / "nul.csv"
    path.write_bytes(csv_bytes(layout, [good, nul, good]))
    outcome = layout.read(path)
    assert outcome.bad_lines in ([], [3]) and (outcome.error is None or not layout.lenient), outcome
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        csv_bytes(layout, [good])
        + (",".join(good).encode() + b"\xff\xfe\n")
        + csv_bytes(layout, [good])[-len(",".join(good)) - 1 :]
    )
    outcome = layout.read(path)
    assert outcome.bad_lines in ([], [3]) and (outcome.error is None or not layout.lenient), outcome


# ------------------------------------------------------------------------------------------------
# JSON Lines: nesting, numbers, non-objects


@by_layout
@pytest.mark.parametrize("deep", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_json_lines_are_reported_at_their_line(tmp_path: Path, layout: Layout, deep: str) -> None:
    good = json.dumps(layout.record())
    value = json.dumps(layout.record(**{layout.columns[1]: "@"})).replace('"@"', deep)
    path = tmp_path / "deep.jsonl"
    path.write_bytes(jsonl_bytes(good, deep, good, value, good))
    assert_reported(layout, layout.read(path), [2, 4], 3)


@by_layout
@pytest.mark.parametrize("number", [str(10**30), "-1e23", "1e999", "NaN", "-Infinity", "1" * 5000])
def test_numbers_where_an_instant_is_expected(tmp_path: Path, layout: Layout, number: str) -> None:
    good = json.dumps(layout.record())
    bad = json.dumps(layout.record(**{layout.instant: "@"})).replace('"@"', number)
    path = tmp_path / "numbers.jsonl"
    path.write_bytes(jsonl_bytes(bad, good, bad))
    outcome = layout.read(path)
    assert_reported(layout, outcome, [1, 3], 1)


@by_layout
@pytest.mark.parametrize("number", [str(10**30), "-1e23", "1e999"])
def test_numbers_where_text_is_expected(tmp_path: Path, layout: Layout, number: str) -> None:
    text_column = next(name for name in layout.columns if name != layout.instant)
    good = json.dumps(layout.record())
    bad = json.dumps(layout.record(**{text_column: "@"})).replace('"@"', number)
    path = tmp_path / "numbers.jsonl"
    path.write_bytes(jsonl_bytes(good, bad, good))
    outcome = layout.read(path)
    assert outcome.error is None or not layout.lenient, outcome
    assert outcome.rows >= (2 if layout.lenient else 0)


@by_layout
def test_lines_that_are_not_objects(tmp_path: Path, layout: Layout) -> None:
    good = json.dumps(layout.record())
    path = tmp_path / "odd.jsonl"
    path.write_bytes(jsonl_bytes(good, "[1, 2]", '"text"', "{broken", good))
    assert_reported(layout, layout.read(path), [2, 3, 4], 2)


# ------------------------------------------------------------------------------------------------
# Long lines, empty files, repeated names


@by_layout
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_line_past_the_cap_is_reported_and_the_rest_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: Layout, suffix: str
) -> None:
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(tablereader, "MAX_LINE_CHARS", 64 << 10)
    long = "x" * (200 << 10)  # also past the csv module's field limit
    path = tmp_path / f"long{suffix}"
    if suffix == ".csv":
        path.write_bytes(csv_bytes(layout, [list(layout.good), [long, *layout.good[1:]], list(layout.good)]))
        bad = [3]
    else:
        good = json.dumps(layout.record())
        path.write_bytes(jsonl_bytes(good, json.dumps(layout.record(**{layout.columns[0]: long})), good))
        bad = [2]
    assert_reported(layout, layout.read(path), bad, 2)


@by_layout
@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf"], ids=["empty", "blank", "bom-only"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_empty_files(tmp_path: Path, layout: Layout, content: bytes, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(content)
    outcome = layout.read(path)
    assert outcome.rows == 0 and outcome.bad_lines == []
    assert outcome.error is None or str(path) in outcome.error


@by_layout
def test_header_only(tmp_path: Path, layout: Layout) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(csv_bytes(layout, []))
    assert read_with(layout, path) == Outcome(rows=0)


@by_layout
def test_a_repeated_column_name_is_named_or_harmless(tmp_path: Path, layout: Layout) -> None:
    path = tmp_path / "twice.csv"
    path.write_bytes(csv_bytes(layout, [[*layout.good, "other"]], header=[*layout.columns, layout.columns[0]]))
    outcome = layout.read(path)
    if outcome.error is not None:
        assert str(path) in outcome.error and repr(layout.columns[0]) in outcome.error
    else:
        assert outcome.rows == 1
    path = tmp_path / "unused-twice.csv"
    path.write_bytes(csv_bytes(layout, [[*layout.good, "a", "b"]], header=[*layout.columns, "zz", "zz"]))
    assert read_with(layout, path).rows == 1


# ------------------------------------------------------------------------------------------------
# Parquet columns of every type


def arrow_types(text: str) -> dict[str, pa.Array]:
    return {
        "dictionary": pa.array([text, text]).dictionary_encode(),
        "large_string": pa.array([text, text], pa.large_string()),
        "binary": pa.array([text.encode(), b"\xff\xfe"], pa.binary()),
        "fixed_binary": pa.array([b"ab", b"cd"], pa.binary(2)),
        "null": pa.nulls(2),
        "int64": pa.array([1, 2**62]),
        "double": pa.array([float("nan"), 1e300]),
        "bool": pa.array([True, False]),
        "timestamp": pa.array([0, 10**15], pa.timestamp("us")),
        "timestamp_tz": pa.array([0, 10**15], pa.timestamp("us", tz="UTC")),
        "date": pa.array([0, 1], pa.date32()),
        "decimal": pa.array([1, 2], pa.decimal128(10, 2)),
        "duration": pa.array([1, 2], pa.duration("s")),
        "list": pa.array([["a"], ["b", "c"]]),
        "large_list": pa.array([["a"], []], pa.large_list(pa.string())),
        "struct": pa.array([{"x": 1}, {"x": 2}]),
        "map": pa.array([[("k", "v")], []], pa.map_(pa.string(), pa.string())),
    }


NESTED = {"list", "large_list", "struct", "map"}


@by_layout
@pytest.mark.parametrize("kind", list(arrow_types("x")))
def test_parquet_column_of_any_type(tmp_path: Path, layout: Layout, kind: str) -> None:
    for column in (layout.instant, layout.columns[0] if layout.columns[0] != layout.instant else layout.columns[1]):
        table = {name: pa.array([value, value]) for name, value in zip(layout.columns, layout.good, strict=True)}
        table[column] = arrow_types(dict(zip(layout.columns, layout.good, strict=True))[column])[kind]
        path = tmp_path / f"{kind}-{column}.parquet"
        pq.write_table(pa.table(table), path)
        outcome = layout.read(path)
        if outcome.error is not None:
            assert str(path) in outcome.error, outcome
            if kind in NESTED and not (layout.name == "decide" and "bad value" in outcome.error):
                assert repr(column) in outcome.error, outcome
        else:
            assert outcome.rows + len(outcome.bad_lines) >= 2 or layout.name == "inventory", outcome


@by_layout
def test_parquet_repeated_column_is_named(tmp_path: Path, layout: Layout) -> None:
    arrays = [pa.array([value]) for value in layout.good]
    table = pa.Table.from_arrays([*arrays, arrays[0]], names=[*layout.columns, layout.columns[0]])
    path = tmp_path / "twice.parquet"
    pq.write_table(table, path)
    outcome = layout.read(path)
    assert outcome.rows == 1 or (outcome.error is not None and str(path) in outcome.error), outcome


# ------------------------------------------------------------------------------------------------
# JSON documents (decide and inventory)


@pytest.mark.parametrize("layout", [layout for layout in LAYOUTS if layout.name in ("decide", "inventory")],
                         ids=["decide", "inventory"])  # fmt: skip
@pytest.mark.parametrize(
    "document",
    [DEEP_ARRAY, "[" + DEEP_OBJECT + "]", '[{"app": NaN}]', "[" + "1" * 5000 + "]", "", "3", "\xff"],
    ids=["deep-array", "deep-object", "nan", "huge-int", "empty", "scalar", "not-utf8"],
)
def test_json_documents(tmp_path: Path, layout: Layout, document: str) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(document.encode("utf-8", "surrogateescape") if document != "\xff" else b"[\xff]")
    outcome = layout.read(path)
    assert outcome.error is not None and str(path) in outcome.error, outcome


# ------------------------------------------------------------------------------------------------
# ISO 20022 XML: entities, external references, nesting


PACS = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"
TRANSACTION = """<CdtTrfTxInf><PmtId><EndToEndId>E1</EndToEndId></PmtId>
<IntrBkSttlmAmt Ccy="USD">10.00</IntrBkSttlmAmt><IntrBkSttlmDt>2020-10-15</IntrBkSttlmDt>
<Dbtr><Nm>&name;</Nm><PstlAdr><Ctry>US</Ctry></PstlAdr></Dbtr>
<Cdtr><Nm>Tenpay</Nm><PstlAdr><Ctry>CN</Ctry></PstlAdr></Cdtr><RmtInf><Ustrd>WeChat Pay</Ustrd></RmtInf>
</CdtTrfTxInf>"""


def message(doctype: str, body: str = TRANSACTION) -> bytes:
    return textwrap.dedent(f"""<?xml version="1.0" encoding="UTF-8"?>
        {doctype}
        <Document xmlns="{PACS}"><FIToFICstmrCdtTrf><GrpHdr><CreDtTm>2020-10-15T09:30:00Z</CreDtTm></GrpHdr>
        {body}
        </FIToFICstmrCdtTrf></Document>
        """).encode()


def billion_laughs() -> str:
    entities = ['<!ENTITY name0 "lol">'] + [
        f'<!ENTITY name{i} "{("&name" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    return "<!DOCTYPE Document [" + "".join(entities) + '<!ENTITY name "&name9;">]>'


@pytest.mark.parametrize(
    "kind",
    ["external-file", "external-url", "parameter", "billion-laughs", "external-dtd", "plain-doctype", "deep"],
)
def test_xml_entities_are_never_expanded_or_fetched(tmp_path: Path, kind: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    doctypes = {
        "external-file": f'<!DOCTYPE Document [<!ENTITY name SYSTEM "{secret.as_uri()}">]>',
        "external-url": '<!DOCTYPE Document [<!ENTITY name SYSTEM "http://127.0.0.1:9/x">]>',
        "parameter": f'<!DOCTYPE Document [<!ENTITY % p SYSTEM "{secret.as_uri()}"> %p; <!ENTITY name "x">]>',
        "billion-laughs": billion_laughs(),
        "external-dtd": f'<!DOCTYPE Document SYSTEM "{secret.as_uri()}">',
        "plain-doctype": "<!DOCTYPE Document>",
        "deep": "",
    }
    # The name refers to the entity where one is declared; elsewhere it is plain text, or 10,000 levels deep.
    filler = "<x>" * 10_000 + "</x>" * 10_000 if kind == "deep" else "Mei"
    declared = kind in ("external-file", "external-url", "parameter", "billion-laughs")
    body = TRANSACTION if declared else TRANSACTION.replace("&name;", filler)
    path = tmp_path / "message.xml"
    path.write_bytes(message(doctypes[kind], body))
    # In a child process, so that a parser that expanded or fetched would be seen to hang, not hang the run.
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from appban.screen.payments import PaymentOptions, screen_payments
        result = screen_payments([Path({str(path)!r})], PaymentOptions())
        print(json.dumps({{"rows": result.rows, "errors": result.errors,
                          "payments": result.payments.to_pylist()}}, default=str))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "TOP-SECRET-MARKER" not in done.stdout
    assert "lollollol" not in done.stdout
    report = json.loads(done.stdout)
    if kind in ("plain-doctype", "external-dtd"):
        assert report["rows"] == 1, report
    else:
        assert report["rows"] == 0 and report["errors"], report


# ------------------------------------------------------------------------------------------------
# Network log formats with odd separators and bytes


ZEEK_FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "trans_id", "query",
               "qclass", "qtype", "rcode"]  # fmt: skip
ZEEK_ROW = ["1600574462.0", "C1", "192.0.2.10", "53421", "198.51.100.53", "53", "udp", "1", "www.tiktok.com",
            "1", "1", "0"]  # fmt: skip


def zeek(separator: str, escaped: str, row: list[str] = ZEEK_ROW) -> bytes:
    lines = [f"#separator {escaped}", "#path\tdns".replace("\t", separator),
             separator.join(["#fields", *ZEEK_FIELDS]), separator.join(row), separator.join(row)]  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


NETWORK_CASES: dict[str, tuple[str | None, bytes]] = {
    "zeek-comma": ("zeek", zeek(",", "\\x2c")),
    "zeek-pipe": ("zeek", zeek("|", "\\x7c")),
    "zeek-bad-escape": ("zeek", zeek("\t", "\\x")),
    "zeek-multichar": ("zeek", zeek("\t", "ab")),
    "zeek-quote": ("zeek", zeek("\t", "\\x22")),
    "zeek-cr": ("zeek", zeek("\t", "\\x09").replace(b"\n", b"\r")),
    "zeek-nul": ("zeek", zeek("\t", "\\x09", [*ZEEK_ROW[:8], "www.tik\x00tok.com", *ZEEK_ROW[9:]])),
    "zeek-repeated-field": ("zeek", zeek("\t", "\\x09").replace(b"\tquery", b"\tts", 1)),
    "zeek-json-deep": (
        "zeek",
        b'{"ts": 1600574462.0, "query": "www.tiktok.com", "trans_id": 1, "qtype": 1}\n' + DEEP_ARRAY.encode() + b"\n",
    ),
    "zeek-json-numbers": (
        "zeek",
        b'{"ts": 1e999, "query": 10000000000000000000000000, "trans_id": 1}\n'
        b'{"ts": -1e23, "query": "a", "id.resp_p": 99999999999999999999999, "trans_id": 1}\n',
    ),
    "bind-tabs": (
        "bind",
        b"19-Sep-2020 23:59:01.123\tqueries: info: client 192.0.2.10#53421: query: www.tiktok.com IN A +\n",
    ),
    "bind-cr": (
        "bind",
        b"19-Sep-2020 23:59:01.123 client 192.0.2.10#53421 (x): query: www.tiktok.com IN A + (198.51.100.53)\r" * 3,
    ),
    "bind-nul": (
        "bind",
        b"19-Sep-2020 23:59:01.123 client 192.0.2.10#53421: query: www.tik\x00tok.com IN A +\n\xff\xfe\n",
    ),
    "dnsmasq-tabs": ("dnsmasq", b"Sep 20 04:01:02\tgw dnsmasq[123]: query[A] www.tiktok.com from 192.0.2.10\n"),
    "dnsmasq-cr": ("dnsmasq", b"Sep 20 04:01:02 gw dnsmasq[123]: query[A] www.tiktok.com from 192.0.2.10\r" * 3),
    "dnsmasq-bad-time": ("dnsmasq", b"Feb 31 99:99:99 gw dnsmasq[1]: query[A] a.b from 192.0.2.1\n"),
    "nfdump-semicolons": ("flows", b"ts;te;sa;da;sp;dp;ibyt;obyt\n2020-09-20 04:01:02;x;1.2.3.4;5.6.7.8;1;443;10;20\n"),
    "nfdump-quotes": ("flows", b'ts,te,td,sa,da,sp,dp,pr,ibyt,obyt\n"2020-09-20 04:01:02,x,"1,1.2.3.4\n'),
    "nfdump-cr": (
        "flows",
        b"ts,te,td,sa,da,sp,dp,pr,ibyt,obyt\r2020-09-20 04:01:02,x,1,1.2.3.4,5.6.7.8,1,443,6,10,20\r",
    ),
    "aws-tabs": (
        "flows",
        b"2\t123456789012\teni-1\t1.2.3.4\t5.6.7.8\t1\t443\t6\t1\t10\t1600574462\t1600574470\tACCEPT\tOK\n",
    ),
    "aws-huge-numbers": (
        "flows",
        b"2 123456789012 eni-1 1.2.3.4 5.6.7.8 99999999999999999999 443 6 1 -10 1e999 1 ACCEPT OK\n",
    ),
    "generic-semicolon-cr": ("generic", b"ts;host;client\r2020-09-20T04:01:02Z;www.tiktok.com;1.2.3.4\r"),
    "generic-header-cr-inside": ("generic", b'"t\rs",host\n2020-09-20T04:01:02Z,www.tiktok.com\n'),
    "generic-deep-first": ("generic", DEEP_OBJECT.encode() + b"\n"),
    "no-format-at-all": (None, b"\x00\x01\x02\xff" * 100),
}


@pytest.mark.parametrize("case", list(NETWORK_CASES))
def test_network_logs_with_odd_separators_and_bytes(tmp_path: Path, case: str) -> None:
    fmt, content = NETWORK_CASES[case]
    path = tmp_path / f"{case}.log"
    path.write_bytes(content)
    outcome = read_network(path, fmt)
    if outcome.error is not None:
        assert str(path) in outcome.error, outcome
    lines = content.replace(b"\r", b"\n").count(b"\n") or 1
    assert outcome.rows + len(outcome.bad_lines) <= lines


def test_network_cr_only_logs_read_every_line(tmp_path: Path) -> None:
    for case, rows in (
        ("zeek-cr", 2),
        ("bind-cr", 3),
        ("dnsmasq-cr", 3),
        ("nfdump-cr", 1),
        ("generic-semicolon-cr", 1),
    ):
        fmt, content = NETWORK_CASES[case]
        path = tmp_path / f"{case}.log"
        path.write_bytes(content)
        assert read_network(path, fmt) == Outcome(rows=rows), case


def test_deep_json_in_zeek_is_reported_at_its_line(tmp_path: Path) -> None:
    fmt, content = NETWORK_CASES["zeek-json-deep"]
    path = tmp_path / "dns.log"
    path.write_bytes(content)
    assert read_network(path, fmt) == Outcome(rows=1, bad_lines=[2])


def test_cli_exit_codes_for_hostile_files(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from appban.cli import app

    runner = CliRunner()
    deep = tmp_path / "deep.jsonl"
    deep.write_bytes(jsonl_bytes(json.dumps(LAYOUTS[1].record()), DEEP_ARRAY))
    nested = tmp_path / "nested.parquet"
    pq.write_table(
        pa.table({"app": pa.array([["tiktok"]]), "transaction": ["cdn"], "where": ["US"], "at": ["x"]}), nested
    )
    cr = tmp_path / "cr.csv"
    cr.write_bytes(b"ts,host,client\r2020-09-20T04:01:02Z,www.tiktok.com,192.0.2.1\r")
    for args, codes in (
        (["decide", str(deep)], {2}),
        (["decide", str(nested)], {2}),
        (["screen", "inventory", str(deep)], {1}),  # the deep line reported, the other screened
        (["screen", "payments", str(deep)], {2}),  # no payment columns in it
        (["screen", "network", "--role", "cdn", "--log-format", "generic", str(cr), "--format", "json"], {0}),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code in codes, (args, result.output)
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), args


def test_an_inventory_of_only_unreadable_lines_lists_them(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from appban.cli import app

    path = tmp_path / "broken.jsonl"
    path.write_bytes(b'{"name": \n' + DEEP_ARRAY.encode() + b"\n\n[1, 2]\n")
    result = CliRunner().invoke(app, ["screen", "inventory", str(path)])
    assert result.exit_code == 2, result.output
    assert "no line could be read" in result.stderr
    assert all(f"broken.jsonl:{line}:" in result.stderr for line in (1, 2, 4)), result.stderr


def test_an_unreadable_inventory_names_its_file_once(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from appban.cli import app

    path = tmp_path / "cut.json"
    path.write_text('{"value": [{"displayName": "TikTok"')
    result = CliRunner().invoke(app, ["screen", "inventory", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count(str(path)) == 1 and "not valid JSON" in result.stderr, result.stderr


def test_a_table_over_the_size_cap_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.csv"
    path.write_text("app,transaction,where,at\n" + "tiktok,cdn,US,2021-01-01T00:00:00Z\n" * 100)
    monkeypatch.setattr(tablereader, "MAX_TABLE_BYTES", 1000)
    with pytest.raises(TableReadError, match="over the 1000-byte limit"):
        read_table(path)
    monkeypatch.setattr(tablereader, "MAX_TABLE_BYTES", 1 << 20)
    assert read_table(path).num_rows == 100


# ------------------------------------------------------------------------------------------------
# Values no UTF-8 column or Python datetime can hold, and inputs whose cost would grow faster than their size


def _printable(records: object) -> str:
    # As the commands print: UTF-8, non-ASCII kept. A lone surrogate would fail here.
    text = json.dumps(records, ensure_ascii=False, default=str)
    text.encode("utf-8")
    return text


def test_lone_surrogate_escapes_are_replaced_on_every_json_path(tmp_path: Path) -> None:
    from appban.service.bodies import JSONLines
    from appban.tables import to_records

    # json.dumps writes a lone surrogate as the escape "\ud800", which json.loads turns back into one.
    good = {**LAYOUTS[0].record(), "note\ud800": "a\udfffb"}
    line = json.dumps(good)
    assert "\\ud800" in line
    for name, content in (
        ("all-at-once.jsonl", jsonl_bytes(line, line)),
        ("document.json", json.dumps([good]).encode()),
        ("graph.json", json.dumps({"value": [good]}).encode()),
    ):
        path = tmp_path / name
        path.write_bytes(content)
        records = to_records(decide_table(read_table(path)))
        assert "a\ufffdb" in _printable(records) and "note\ufffd" in _printable(records), name
    # A line that is not an object sends the read line by line (lenient, as screening reads).
    path = tmp_path / "line-by-line.jsonl"
    path.write_bytes(jsonl_bytes(line, "[1]", json.dumps({"name": "Tik\udc00Tok"})))
    table = read_table(path, all_text=True)
    assert table.column("name").to_pylist()[2] == "Tik\ufffdTok"
    assert table.column("note\ufffd").to_pylist()[0] == "a\ufffdb"
    _printable(to_records(table))
    # A network log in JSON lines: the row is kept, its host still matched.
    path = tmp_path / "queries.jsonl"
    path.write_bytes(
        jsonl_bytes(json.dumps({"ts": "2020-09-20T04:01:02Z", "host": "www.tiktok.com", "x\ud800": "\ud800"}))
    )
    assert read_network(path, "generic") == Outcome(rows=1)
    # The service's batch bodies.
    body = JSONLines()
    body.feed(jsonl_bytes(json.dumps({**LAYOUTS[0].record(), "tz": "r\ud800"})))
    table, lines = body.table()
    assert table.column("tz").to_pylist() == ["r\ufffd"] and lines.tolist() == [1]


def test_instants_past_year_9999_in_parquet_are_written_not_crashed_on(tmp_path: Path) -> None:
    from appban.tables import to_records

    far = 1 << 62  # microseconds: about the year 146,000
    path = tmp_path / "transactions.parquet"
    pq.write_table(
        pa.table({
            **{name: [value] for name, value in LAYOUTS[0].record().items()},
            "seen": pa.array([far], pa.timestamp("us", tz="UTC")),
            "day": pa.array([(1 << 31) - 1], pa.date32()),
            "history": pa.array([[far, 0]], pa.list_(pa.timestamp("us"))),
        }),
        path,
    )  # fmt: skip
    records = to_records(decide_table(read_table(path)))
    # As Arrow writes them: the year itself where it can, else the raw number.
    assert records[0]["seen"].startswith("17036-07-06"), records
    assert records[0]["day"] == f"<value out of range: {(1 << 31) - 1}>", records
    assert records[0]["history"][0] in (f"<value out of range: {far}>", "17036-07-06 14:00:27.387904"), records
    assert records[0]["verdict"]
    _printable(records)
    # A payment export whose country columns are such timestamps: each row reported, none crashed on.
    payments = LAYOUTS[2]
    path = tmp_path / "payments.parquet"
    columns: dict[str, Any] = {name: [value, value] for name, value in payments.record().items()}
    columns["merchant_country"] = pa.array([far, far + 1], pa.timestamp("us"))
    pq.write_table(pa.table(columns), path)
    outcome = read_payments(path)
    assert outcome.error is None and outcome.bad_lines == [1, 2], outcome


def _finishes(script: str) -> str:
    """Run `script` in a child process; a generous limit stands for "does not hang"."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_a_header_of_tens_of_thousands_of_columns_is_read_in_linear_time(tmp_path: Path) -> None:
    path = tmp_path / "transactions.tsv"
    extra = [f"c{i}" for i in range(40_000)] + ["c7"]  # and one repeated
    row = [*LAYOUTS[0].good, *("x" for _ in extra)]
    path.write_text("\t".join([*LAYOUTS[0].columns, *extra]) + "\n" + "\t".join(row) + "\n")
    out = _finishes(f"""
        from pathlib import Path
        from appban.engine.batch import decide_table
        from appban.tables import read_table
        table = decide_table(read_table(Path({str(path)!r})))
        print(table.num_rows, table.column("verdict")[0])
    """)
    assert out.split()[0] == "1"


def test_network_logs_built_to_make_work_quadratic_finish(tmp_path: Path) -> None:
    # BIND: a megabyte host name of short labels, matched label by label.
    bind = tmp_path / "query.log"
    host = "a." * 500_000 + "www.tiktok.com"
    bind.write_text(
        f"19-Sep-2020 23:59:01.123 client 192.0.2.10#53421: query: {host} IN A +\n"
        "19-Sep-2020 23:59:02.000 client 192.0.2.11#5353: query: www.tiktok.com IN A +\n"
    )
    # Zeek: a header block before every line or two, the fields in another order each time.
    blocks = ["#separator \\x09\n#path\tdns\n"]
    for i in range(6_000):
        fields, row = (ZEEK_FIELDS, ZEEK_ROW) if i % 2 else (ZEEK_FIELDS[::-1], ZEEK_ROW[::-1])
        blocks.append("\t".join(["#fields", *fields]) + "\n\n" + "\t".join(row) + "\n#close\tx\n")
    zeek_log = tmp_path / "dns.log"
    zeek_log.write_text("".join(blocks))
    out = _finishes(f"""
        from pathlib import Path
        from appban.network.records import read_log
        for path, fmt in (({str(bind)!r}, "bind"), ({str(zeek_log)!r}, "zeek")):
            batches, stats = read_log(Path(path), fmt)
            print(sum(batch.num_rows for batch in batches), len(stats.errors))
        from appban.rulebook.loader import load_rulebook
        from appban.screen.network import NetworkOptions, screen_network
        options = NetworkOptions(role="hosting", log_format="bind")
        result = screen_network([Path({str(bind)!r})], options, load_rulebook())
        print(result.records.num_rows)
    """)
    assert out.split() == ["2", "0", "6000", "0", "2"], out


def test_a_csv_header_line_longer_than_the_sniffed_head_is_a_named_error(tmp_path: Path) -> None:
    # The first 64 KiB look like a comma-separated header with `ts` and `host`; read whole, tabs win.
    path = tmp_path / "queries.csv"
    header = "ts,host,client," + "x," * 40_000 + "\t" * 100_000 + "y"
    path.write_text(header + "\n2020-09-20T04:01:02Z,www.tiktok.com,192.0.2.1\n")
    outcome = read_network(path, "generic")
    assert outcome.error is not None and str(path) in outcome.error and "'ts'" in outcome.error, outcome


def test_an_inventory_in_thousands_of_places_shares_one_resolver(tmp_path: Path) -> None:
    from appban.identity.resolve import Record, Resolver
    from appban.rulebook.loader import load_rulebook
    from appban.screen.inventory import InventoryOptions

    book = load_rulebook()
    screener = Screener(book, InventoryOptions(where="US"))
    record = Record(name="TikTok", publisher="TikTok Pte. Ltd.", android_package="com.zhiliaoapp.musically")
    for where in ("US", "US-MT", "IN", "CN", "FR", "AW"):
        shared = screener.resolver(where)
        assert shared._ids is screener.resolvers["US"]._ids  # the registry's indices are built once
        alone = Resolver(book, where=where)
        assert shared.covered == alone.covered, where
        assert shared.resolve(record) == alone.resolve(record), where


def test_parquet_text_that_is_not_utf8_is_replaced(tmp_path: Path) -> None:
    """Parquet readers do not check string columns for UTF-8; a value with such bytes is read like any
    other reader reads it (U+FFFD), never decoded later into a crash."""
    path = tmp_path / "bad-utf8.parquet"
    app = pa.array([b"tik\xfftok", b"wechat"], pa.binary()).view(pa.string())
    pq.write_table(
        pa.table({"app": app, "transaction": ["cdn"] * 2, "where": ["US"] * 2, "at": ["2021-01-01T00:00:00Z"] * 2}),
        path,
    )
    table = read_table(path)
    assert table.column("app").to_pylist() == ["tik\ufffdtok", "wechat"]
    with pytest.raises(TableInputError, match="tik\ufffdtok"):
        decide_table(table)


def test_a_parquet_column_name_that_is_not_utf8_is_a_named_error(tmp_path: Path) -> None:
    written = tmp_path / "names.parquet"
    table = pa.table({"appXX": ["tiktok"], "transaction": ["cdn"], "where": ["US"], "at": ["2021-01-01T00:00:00Z"]})
    pq.write_table(table, written)
    path = tmp_path / "bad-names.parquet"
    path.write_bytes(written.read_bytes().replace(b"appXX", b"app\xe5\x00"))  # same length: offsets still hold
    for all_text in (False, True):
        with pytest.raises(TableReadError, match=r"bad-names\.parquet"):
            read_table(path, all_text=all_text)
    with pytest.raises(ValueError, match=r"bad-names\.parquet"):
        list(parse.iter_parquet(path, ["transaction"], 100))

"""Tables: CSV/TSV, JSON, JSON Lines, Parquet and Arrow IPC, for decide, inventory and payment exports.

Rows are built as dictionaries of valid values, then fields are swapped for hostile text, columns are
dropped or renamed, and the serialiser itself is bent (delimiters, quotes, line ends, encodings, nesting,
column types in the columnar formats).
"""

from __future__ import annotations

import csv
import io
import json
import random
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from fuzz import mutate
from fuzz.generators import Case, Generator, capped, raw_mutant

APPS = ("tiktok", "wechat", "TikTok", "WeChat", "douyin", "capcut", "lemon8", "whatsapp", "", "weixin")
TRANSACTIONS = ("app_store_distribution", "internet_hosting", "funds_transfer", "payment_processing",
                "constituent_code_use", "government_device", "user_personal_use", "nope")  # fmt: skip
PLACES = ("US", "us", "MT", "US-MT", "CN", "NA", "IN", "ZZ", "USA", "")
INSTANTS = ("2020-09-20T12:00:00-04:00", "2020-11-12T23:59:00-05:00", "2024-06-01T00:00:00Z",
            "2025-01-19T00:00:00Z", "2020-09-27T23:59:00-04:00")  # fmt: skip


def decide_row(rng: random.Random) -> dict[str, Any]:
    facts = rng.choice(("", '{"user_to_user_transfer": true}', '{"x": 1}', "{}", "not json", '{"a": [1, {"b": 2}]}'))
    return {
        "app": rng.choice(APPS),
        "transaction": rng.choice(TRANSACTIONS),
        "where": rng.choice(PLACES),
        "at": rng.choice(INSTANTS),
        "facts": facts,
        "description": "row",
    }


def inventory_row(rng: random.Random) -> dict[str, Any]:
    return {
        "listing_id": f"as-{rng.randrange(10**9)}-US",
        "kind": rng.choice(("listing", "update", "delisting", "install")),
        "store": rng.choice(("app_store", "google_play", "")),
        "store_app_id": str(rng.choice((835599320, 414478124, 1))),
        "package_id": rng.choice(("com.zhiliaoapp.musically", "com.tencent.xin", "com.tencent.mm", "com.example")),
        "name": rng.choice(("TikTok", "WeChat", "TikTok Lite", "Tik Tok Clock", "Outlook")),
        "publisher": rng.choice(("TikTok Pte. Ltd.", "WeChat", "Tencent Technology (Shenzhen) Company Limited")),
        "storefront": rng.choice(PLACES),
        "version": "16.6.5",
        "last_updated": rng.choice(INSTANTS),
    }


def mdm_row(rng: random.Random) -> dict[str, Any]:
    return {
        "Display Name": "DHS-CBP-IPH-0142",
        "Serial Number": "F4GZK2QXN72J",
        "Model": "iPhone 14",
        "Department": "Field Operations",
        "App Name": rng.choice(("TikTok", "WeChat", "Microsoft Teams")),
        "App Identifier": rng.choice(("com.zhiliaoapp.musically", "com.tencent.xin", "com.microsoft.skype.teams")),
        "App Version": "4.2432.0",
    }


def payment_row(rng: random.Random) -> dict[str, Any]:
    return {
        "id": f"ch_{rng.randrange(10**6)}",
        "Created (UTC)": rng.choice(INSTANTS),
        "Amount": rng.choice(("48.00", "129", "0.01", "1,000.00", "-5")),
        "Currency": rng.choice(("USD", "CNY", "usd", "")),
        "Payment Method Type": rng.choice(("wechat_pay", "card", "alipay", "WeChat Pay")),
        "Processor": "Stripe",
        "Merchant": "Golden Gate Tea Co",
        "Merchant Country": rng.choice(PLACES),
        "Customer Country": rng.choice(PLACES),
        "Payer Type": "individual",
        "Payee Type": "organisation",
        "Description": rng.choice(("Oolong", "weixin pay top-up", "TikTok coins")),
    }


def _many_places(rng: random.Random, make: Any) -> list[dict[str, Any]]:
    """Valid rows, each in a different ISO 3166 place: work done once per distinct value must stay cheap."""
    import pycountry

    places = [c.alpha_2 for c in pycountry.countries] + [s.code for s in pycountry.subdivisions]
    rows = []
    for place in rng.sample(places, rng.choice((300, 2000))):
        row = make(rng)
        for key in ("where", "storefront", "Merchant Country", "Customer Country"):
            if key in row:
                row[key] = place
        rows.append(row)
    return rows


def _rows(rng: random.Random, make: Any) -> list[dict[str, Any]]:
    if rng.random() < 0.01:
        return _many_places(rng, make)
    rows = [make(rng) for _ in range(rng.choice((0, 1, 2, 5, 20)))]
    # Often clean: `decide` refuses a whole file for one bad value, and the deeper paths need whole files.
    if rows and rng.random() < 0.5:
        for _ in range(rng.randint(1, 4)):
            row = rng.choice(rows)
            row[rng.choice(list(row))] = mutate.pick_hostile(rng)
    if rows and rng.random() < 0.15:
        # Type swaps: numbers, booleans, lists and objects where text belongs.
        row = rng.choice(rows)
        row[rng.choice(list(row))] = rng.choice((2**70, -(2**64), 1.5e308, True, None, [1, 2], {"a": {"b": 1}}, 0))
    if rows and rng.random() < 0.1:
        victim = rng.choice(list(rows[0]))
        for row in rows:
            row.pop(victim, None)
    if rows and rng.random() < 0.05 and len(json.dumps(rows)) < 20000:
        rows = rows * rng.choice((100, 2000))
    return rows


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _arrow_text(value: Any) -> str:
    # Arrow strings are UTF-8: a lone surrogate cannot be stored, so it arrives as U+FFFD.
    return _cell(value).encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def to_csv(rng: random.Random, rows: list[dict[str, Any]], delimiter: str = ",") -> bytes:
    names = list(dict.fromkeys(k for row in rows for k in row)) or ["app", "transaction", "where", "at"]
    if rng.random() < 0.05:
        names.append(rng.choice(names))  # a repeated header
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=rng.choice((csv.QUOTE_MINIMAL, csv.QUOTE_ALL)))
    writer.writerow(names)
    for row in rows:
        cells = [_cell(row.get(n, "")) for n in names]
        if rng.random() < 0.05:
            cells = cells[: rng.randrange(len(cells) + 1)] if rng.random() < 0.5 else [*cells, "extra"]
        writer.writerow(cells)
    text = buffer.getvalue()
    if rng.random() < 0.3:
        text = mutate.line_ends(rng, text)
    if rng.random() < 0.05:
        text = text.replace('"', "", 1)  # an unbalanced quote
    return mutate.encode_text(rng, text)


def to_jsonl(rng: random.Random, rows: list[dict[str, Any]]) -> bytes:
    lines = [json.dumps(row, ensure_ascii=rng.random() < 0.5) for row in rows]
    if rng.random() < 0.15:
        lines.insert(rng.randrange(len(lines) + 1), mutate.deep_json(rng))
    if rng.random() < 0.1:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(("[1, 2]", "not json", "", "{", '"x"', "{}")))
    text = "\n".join(lines) + "\n"
    if rng.random() < 0.2:
        text = mutate.line_ends(rng, text)
    return mutate.encode_text(rng, text)


def to_json(rng: random.Random, rows: list[dict[str, Any]]) -> bytes:
    if rng.random() < 0.15:
        return mutate.deep_json(rng).encode()
    document: Any = {"value": rows} if rng.random() < 0.3 else rows
    text = json.dumps(document, ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.05:
        text = text.replace("1", "1" * 5000, 1)
    return mutate.encode_text(rng, text)


def _arrow_table(rng: random.Random, rows: list[dict[str, Any]]) -> pa.Table:
    names = list(dict.fromkeys(k for row in rows for k in row)) or ["app"]
    columns: dict[str, pa.Array] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        kind = rng.random()
        if kind < 0.55:
            columns[name] = pa.array([None if v is None else _arrow_text(v) for v in values], pa.string())
        elif kind < 0.62:
            columns[name] = pa.array([rng.randrange(-(2**63), 2**63) for _ in values], pa.int64())
        elif kind < 0.67:
            columns[name] = pa.array([rng.random() * 1e300 for _ in values], pa.float64())
        elif kind < 0.72:
            columns[name] = pa.array([rng.randrange(-(2**62), 2**62) for _ in values], pa.timestamp("us", "UTC"))
        elif kind < 0.77:
            columns[name] = pa.array([[_arrow_text(v), "x"] for v in values], pa.list_(pa.string()))
        elif kind < 0.82:
            columns[name] = pa.array([{"a": _arrow_text(v), "b": 1} for v in values])
        elif kind < 0.87:
            columns[name] = pa.array(
                [None if v is None else _arrow_text(v) for v in values], pa.string()
            ).dictionary_encode()
        elif kind < 0.9:
            columns[name] = pa.array(
                [_arrow_text(v).encode("utf-8", "surrogatepass") + b"\xff" for v in values], pa.binary()
            )
        elif kind < 0.93:
            columns[name] = pa.array([rng.random() < 0.5 for _ in values], pa.bool_())
        elif kind < 0.96:
            columns[name] = pa.nulls(len(values), pa.null())
        elif kind < 0.98:
            columns[name] = pa.array([None if v is None else _arrow_text(v) for v in values], pa.large_string())
        else:
            columns[name] = pa.array([rng.randrange(0, 10**6) for _ in values], pa.decimal128(38, 2))
    return pa.table(columns)


def to_parquet(rng: random.Random, rows: list[dict[str, Any]]) -> bytes:
    try:
        table = _arrow_table(rng, rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        table = pa.table({"app": pa.array([], pa.string())})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=rng.choice((1, 3, 1000)), compression=rng.choice(("snappy", "zstd")))
    data = sink.getvalue()
    if rng.random() < 0.3:
        data = mutate.mutate_bytes(rng, data)
    return data


def to_ipc(rng: random.Random, rows: list[dict[str, Any]]) -> bytes:
    try:
        table = _arrow_table(rng, rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        table = pa.table({"app": pa.array([], pa.string())})
    sink = io.BytesIO()
    with (ipc.new_file if rng.random() < 0.5 else ipc.new_stream)(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def table_family(make_row: Any, stem: str) -> Generator:
    def gen(rng: random.Random) -> Case:
        rows = _rows(rng, make_row)
        form = rng.choices(("csv", "tsv", "jsonl", "json", "parquet", "ipc", "misnamed"), (30, 8, 20, 12, 20, 4, 6))[0]
        if form == "csv":
            return Case(f"{stem}.csv", to_csv(rng, rows, rng.choice((",", ",", ";", "|", "\t"))))
        if form == "tsv":
            return Case(f"{stem}.tsv", to_csv(rng, rows, "\t"))
        if form == "jsonl":
            return Case(f"{stem}.{rng.choice(('jsonl', 'ndjson'))}", to_jsonl(rng, rows))
        if form == "json":
            return Case(f"{stem}.json", to_json(rng, rows))
        if form == "parquet":
            return Case(f"{stem}.parquet", to_parquet(rng, rows))
        if form == "ipc":
            return Case(f"{stem}.{rng.choice(('arrow', 'parquet', 'csv'))}", to_ipc(rng, rows))
        # The suffix says one format, the bytes are another.
        data = rng.choice((to_parquet, to_jsonl, to_json))(rng, rows)
        return Case(f"{stem}.{rng.choice(('csv', 'jsonl', 'parquet', 'json', 'tsv'))}", data)

    return capped(raw_mutant(gen, rate=0.15))


decide_tables = table_family(decide_row, "transactions")
inventory_tables = table_family(lambda rng: (inventory_row if rng.random() < 0.6 else mdm_row)(rng), "inventory")
payment_tables = table_family(payment_row, "payments")

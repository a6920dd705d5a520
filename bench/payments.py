"""Benchmark: payment screening of a million CSV payments and a 500 MB ISO 20022 pacs.008 file.

CSV: --rows generated processor-export rows (a few percent WeChat Pay or Alipay by method value, some
by a descriptor or remittance text, U.S. and foreign parties, 2020-2022), screened by appban end to end
(read, mark, nexus, decide, totals) against a per-record Python loop (csv module, dictionary look-ups,
the same nexus rule, decide() per flagged payment) on a sample, in the same run.

XML: a --xml-mb pacs.008.001.08 file, read by appban's streaming reader and screened, against an
`lxml.etree.iterparse` pass that only counts elements (the floor) and a full-tree `lxml.etree.parse`
(the memory comparison); peak RSS of each is measured in a subprocess of its own.

    .venv/bin/python bench/payments.py [--rows N] [--xml-mb N] [--markdown]
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))

from payments_xml import appban_pass, count_pass, full_tree, generate_pacs008
from report import pin_to_one_cpu, print_report

from appban import load_rulebook
from appban.engine.decide import decide
from appban.payments.markers import default_markers
from appban.screen.payments import PaymentOptions, screen_payments

COLUMNS = ["id", "created", "amount", "currency", "payment_method_type", "processor", "merchant", "merchant_country",
           "customer_country", "description"]  # fmt: skip
METHODS = ["card"] * 90 + ["wechat_pay"] * 3 + ["alipay"] * 2 + ["wechatpayQR"] + ["apple_pay"] * 4
COUNTRIES = ["US"] * 6 + ["CN", "CA", "GB", "SG", "HK", "DE"]


def generate_csv(path: Path, rows: int, rng: np.random.Generator) -> None:
    start = 1_590_000_000 + np.sort(rng.integers(0, 80_000_000, rows))  # May 2020 to Jan 2023
    created = pa.array(start * 1_000_000, pa.timestamp("us", tz="UTC"))
    merchants = [f"Merchant {i}" for i in range(5000)] + ["WECHATPAY*Tea House", "Campus Store"]
    descriptions = ["order", "subscription", "refund", "gift"] * 25 + ["WeChat Pay top-up"]
    table = pa.table(
        {
            "id": pa.array([f"ch_{i:08d}" for i in range(rows)]),
            "created": created,
            "amount": pa.array(np.char.mod("%.2f", rng.integers(100, 50_000, rows) / 100)),
            "currency": pa.array(np.where(rng.random(rows) < 0.9, "USD", "EUR")),
            "payment_method_type": pa.array(METHODS).take(pa.array(rng.integers(0, len(METHODS), rows))),
            "processor": pa.array(np.where(rng.random(rows) < 0.7, "Stripe", "Adyen")),
            "merchant": pa.array(merchants).take(pa.array(rng.zipf(1.3, rows) % len(merchants))),
            "merchant_country": pa.array(COUNTRIES).take(pa.array(rng.integers(0, len(COUNTRIES), rows))),
            "customer_country": pa.array(COUNTRIES).take(pa.array(rng.integers(0, len(COUNTRIES), rows))),
            "description": pa.array(descriptions).take(pa.array(rng.integers(0, len(descriptions), rows))),
        }
    )
    pacsv.write_csv(table, path)


def python_loop(path: Path, sample: int) -> tuple[float, int]:
    """Rows per second of a per-record loop doing the same job with the same markers and rules."""
    book = load_rulebook()
    markers = default_markers()
    methods = {m.value.lower(): markers.services[m.service].subject for m in markers.methods if not m.value.isdigit()}
    names = [(n.value.lower(), markers.services[n.service].subject) for n in markers.names]
    us = set(book.place_members("US"))
    flagged = 0
    start = time.perf_counter()
    with path.open(newline="", encoding="utf-8") as handle:
        for count, row in enumerate(csv.DictReader(handle)):
            if count >= sample:
                break
            subject = methods.get(row["payment_method_type"].lower())
            if subject is None:
                text = f"{row['merchant']} {row['description']}".lower()
                subject = next((s for value, s in names if value in text), None)
            if subject is None:
                continue
            where = next((c for c in (row["customer_country"], row["merchant_country"]) if c in us), None)
            decide(subject, "payment_processing", where or row["customer_country"], row["created"], rulebook=book)
            flagged += 1
    return sample / (time.perf_counter() - start), flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=100_000)
    parser.add_argument("--xml-mb", type=int, default=500)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed pass; best of each")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    cpu = pin_to_one_cpu()
    rng = np.random.default_rng(args.seed)
    book = load_rulebook()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "payments.csv"
        generate_csv(path, args.rows, rng)
        csv_mb = path.stat().st_size / 1e6
        screen_payments([path], PaymentOptions(), book)  # warm: markers compiled, rulebook segments built
        csv_seconds = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = screen_payments([path], PaymentOptions(), book)
            csv_seconds = min(csv_seconds, time.perf_counter() - start)
        loop_rate, _ = python_loop(path, args.sample)
        xml = Path(folder) / "pacs008.xml"
        transactions = generate_pacs008(xml, args.xml_mb, rng)
        xml_mb = xml.stat().st_size / 1e6
        floor_seconds = min(count_pass(xml) for _ in range(args.repeat))
        runs = [appban_pass(xml) for _ in range(args.repeat)]
        xml_seconds, xml_records, xml_rss = min(runs)
        tree_seconds, tree_rss = full_tree(xml)
        half = Path(folder) / "half.xml"
        generate_pacs008(half, args.xml_mb // 2, rng)
        _, _, half_rss = appban_pass(half)
    report = [
        ("CSV payments", f"{args.rows:,} rows ({csv_mb:,.0f} MB), {result.payments.num_rows:,} flagged"),
        ("CSV: appban end to end", f"{args.rows / csv_seconds:,.0f} records/s ({csv_seconds:.2f} s, "
                                   f"{csv_mb / csv_seconds:,.0f} MB/s)"),
        ("CSV: per-record Python loop", f"{loop_rate:,.0f} records/s (sample of {args.sample:,})"),
        ("CSV: appban / loop", f"{args.rows / csv_seconds / loop_rate:.1f}x"),
        ("XML pacs.008", f"{xml_mb:,.0f} MB, {transactions:,} transactions"),
        ("XML: iterparse count (floor)", f"{xml_mb / floor_seconds:,.1f} MB/s ({floor_seconds:.2f} s)"),
        ("XML: appban reader to Arrow", f"{xml_mb / xml_seconds:,.1f} MB/s ({xml_seconds:.2f} s, {xml_records:,} "
                                      "records)"),
        ("XML: appban / floor speed", f"{floor_seconds / xml_seconds:.2f}"),
        ("XML: lxml full tree", f"{xml_mb / tree_seconds:,.1f} MB/s ({tree_seconds:.2f} s)"),
        ("peak RSS: appban, full file", f"{xml_rss / 1024:,.0f} MB"),
        ("peak RSS: appban, half file", f"{half_rss / 1024:,.0f} MB"),
        ("peak RSS: lxml full tree", f"{tree_rss / 1024:,.0f} MB"),
        ("python / pyarrow / lxml", f"{platform.python_version()} / {pa.__version__} / "
                                    f"{__import__('lxml.etree').etree.__version__}"),
        ("pinned", f"cpu {cpu} (os.sched_setaffinity), pyarrow one thread; best of {args.repeat}"),
    ]  # fmt: skip
    print_report(report, args.markdown)


if __name__ == "__main__":
    main()

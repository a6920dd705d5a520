"""Exports whose time is a date column and a time column (and a zone column), uncaptured authorisations, and
marker doubts shown where a row rests on them.

Headers are the vendors' as downloaded:
- PayPal activity download: "Date","Time","TimeZone","Name","Type","Status","Currency","Gross","Fee","Net",
  "From Email Address","To Email Address","Transaction ID",...,"Country Code","Balance Impact"
  (https://github.com/simonmichael/hledger/blob/61163b757f5b707b1ae95a93c3eb2974c9dd5a42/examples/csv/paypal-2018.csv.rules;
  U.S. dates MM/DD/YYYY and times HH:MM:SS per
  https://github.com/OCA/bank-statement-import/blob/c3e8dee5957a57d34ec3d4cac6f5fd8f0995eaea/account_statement_import_paypal/data/maps.xml;
  statuses Completed, Pending, Denied, ... per https://www.paypalobjects.com/webstatic/en_US/developer/docs/pdf/PP_ActivityDownload.pdf).
- Square transactions CSV: Date,Time,Time Zone,Gross Sales,...,Total Collected,...,Card Brand,PAN Suffix,...
  with "2022-11-10","21:50:48","Pacific Time (US & Canada)" and "$22.50" amounts, no currency column.
- Rails zone names and their IANA zones: ActiveSupport::TimeZone::MAPPING
  (https://github.com/rails/rails/blob/0014987253a251d7814562d042e341ed092d0f71/activesupport/lib/active_support/values/time_zone.rb).
- Stripe: an uncaptured charge is an authorisation held, not a payment (https://docs.stripe.com/radar/reviews/auth-and-capture).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from appban import load_rulebook
from appban.cli import app
from appban.payments.dates import DateOrder, join_date_time
from appban.payments.layouts import default_layouts, recognise
from appban.screen.jobs import run_screen
from appban.screen.payments import PaymentOptions, PaymentResult, screen_payments

BOOK = load_rulebook()
UTC = dt.UTC
PAYPAL = ["Date", "Time", "TimeZone", "Name", "Type", "Status", "Currency", "Gross", "Fee", "Net",
          "From Email Address", "To Email Address", "Transaction ID", "Item Title", "Reference Txn ID", "Balance",
          "Country Code", "Balance Impact"]  # fmt: skip
SQUARE = ["Date", "Time", "Time Zone", "Gross Sales", "Discounts", "Service Charges", "Net Sales", "Gift Card Sales",
          "Tax", "Tip", "Partial Refunds", "Total Collected", "Source", "Card", "Card Entry Methods", "Cash",
          "Square Gift Card", "Other Tender", "Other Tender Type", "Other Tender Note", "Fees", "Net Total",
          "Transaction ID", "Payment ID", "Card Brand", "PAN Suffix", "Device Name", "Staff Name", "Staff ID",
          "Details", "Description", "Event Type", "Location", "Dining Option", "Customer ID", "Customer Name",
          "Customer Reference ID", "Device Nickname", "Transaction Status"]  # fmt: skip
SQUARE_ITEMS = ["Date", "Time", "Time Zone", "Category", "Item", "Qty", "Price Point Name", "SKU", "Modifiers Applied",
                "Gross Sales", "Discounts", "Net Sales", "Tax", "Transaction ID", "Payment ID", "Device Name", "Notes",
                "Details", "Event Type", "Location", "Dining Option", "Customer ID", "Customer Name",
                "Customer Reference ID"]  # fmt: skip


def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, quoting=csv.QUOTE_ALL)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def screen(path: Path, **options: Any) -> PaymentResult:
    return screen_payments([path], PaymentOptions(**options), BOOK)


def paypal_row(**values: str) -> dict[str, str]:
    row = {"Date": "01/23/2023", "Time": "13:57:10", "TimeZone": "PST", "Name": "Example Shop",
           "Type": "Express Checkout Payment", "Status": "Completed", "Currency": "USD", "Gross": "-42.92",
           "Fee": "0.00", "Net": "-42.92", "From Email Address": "me@example.com",
           "To Email Address": "shop@example.com", "Transaction ID": "91C639911G078574E", "Country Code": "US",
           "Balance Impact": "Debit"}  # fmt: skip
    row.update(values)
    return row


def square_row(**values: str) -> dict[str, str]:
    row = {"Date": "2022-11-10", "Time": "21:50:48", "Time Zone": "Pacific Time (US & Canada)",
           "Gross Sales": "$22.50", "Net Sales": "$22.50", "Total Collected": "$22.50", "Card": "$22.50",
           "Card Entry Methods": "Keyed", "Fees": "-$0.95", "Net Total": "$21.55", "Transaction ID": "T1",
           "Payment ID": "P1", "Card Brand": "Visa", "PAN Suffix": "7685", "Description": "Custom Amount",
           "Event Type": "Payment", "Location": "Main Street", "Transaction Status": "Complete"}  # fmt: skip
    row.update(values)
    return row


# --- the two-column time ---------------------------------------------------------------------------------------


def test_paypal_export_is_recognised_and_its_times_read_in_their_own_zone(tmp_path: Path) -> None:
    assert recognise(PAYPAL) is not None and recognise(PAYPAL).name == "paypal-activity-download"  # type: ignore[union-attr]
    # A wallet named in the item title: PayPal was the method, so each row is reported apart, with its time.
    rows = [paypal_row(**{"Transaction ID": t, "Date": d, "Time": h, "TimeZone": z, "Item Title": "WeChat Pay top-up"})
            for t, d, h, z in [("A", "01/03/2023", "13:57:10", "PST"), ("B", "07/14/2023", "09:00:00", "PDT"),
                               ("C", "07/14/2023", "09:00:00", "Europe/Berlin")]]  # fmt: skip
    path = write_csv(tmp_path / "Download.CSV", PAYPAL, rows)
    result = screen(path)
    assert result.malformed == 0 and result.payments.num_rows == 0
    apart = {row["id"]: row for row in result.apart.to_pylist()}
    assert apart["A"]["ts"] == dt.datetime(2023, 1, 3, 21, 57, 10, tzinfo=UTC)
    assert apart["B"]["ts"] == dt.datetime(2023, 7, 14, 16, 0, tzinfo=UTC)
    assert apart["C"]["ts"] == dt.datetime(2023, 7, 14, 7, 0, tzinfo=UTC)
    assert {row["reason"] for row in apart.values()} == {"method_says_otherwise"}
    assert apart["A"]["method"] == "paypal"


def test_paypal_rows_that_are_no_payment_are_skipped_and_unfinished_ones_reported_apart(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "paypal.csv", PAYPAL, [
        paypal_row(**{"Transaction ID": "DONE", "Name": "Tenpay"}),
        paypal_row(**{"Transaction ID": "WAIT", "Name": "Tenpay", "Status": "Pending"}),
        paypal_row(**{"Transaction ID": "NO", "Name": "Tenpay", "Status": "Denied"}),
        paypal_row(**{"Transaction ID": "W", "Name": "", "Type": "General Withdrawal", "Gross": "-1,000.00"}),
        paypal_row(**{"Transaction ID": "FX", "Name": "", "Type": "General Currency Conversion"}),
        paypal_row(**{"Transaction ID": "DEP", "Name": "", "Type": "General Card Deposit", "Gross": "50.00"}),
    ])  # fmt: skip
    result = screen(path)
    assert result.skipped == 3 and result.rows == 3 and result.malformed == 0
    reasons = {row["id"]: row["reason"] for row in result.apart.to_pylist()}
    assert reasons == {"DONE": "method_says_otherwise", "WAIT": "not_completed", "NO": "not_completed"}
    assert result.payments.num_rows == 0 and result.totals.num_rows == 0
    notes = {row["id"]: row["note"] for row in result.apart.to_pylist()}
    assert "Status: Pending" in notes["WAIT"]


def test_day_first_dates_are_read_once_the_file_shows_its_order(tmp_path: Path) -> None:
    # A European account's download: 13/01 can only be day first, so 03/01 in the same file is the 3rd of January.
    rows = [
        paypal_row(**{"Transaction ID": "A", "Date": "13/01/2023", "TimeZone": "CET", "Item Title": "WeChat"}),
        paypal_row(**{"Transaction ID": "B", "Date": "03/01/2023", "TimeZone": "CET", "Item Title": "WeChat"}),
    ]
    result = screen(write_csv(tmp_path / "eu.csv", PAYPAL, rows))
    times = {row["id"]: row["ts"] for row in result.apart.to_pylist()}
    assert times == {"A": dt.datetime(2023, 1, 13, 12, 57, 10, tzinfo=UTC),
                     "B": dt.datetime(2023, 1, 3, 12, 57, 10, tzinfo=UTC)}  # fmt: skip


def test_an_ambiguous_date_is_reported_until_the_order_is_named(tmp_path: Path) -> None:
    rows = [paypal_row(**{"Transaction ID": "A", "Date": "03/04/2023", "Item Title": "WeChat"})]
    path = write_csv(tmp_path / "short.csv", PAYPAL, rows)
    result = screen(path)
    assert result.malformed == 1 and "--date-order" in result.errors[0] and "short.csv:2" in result.errors[0]
    named = screen(path, date_order="dmy")
    assert named.malformed == 0 and named.apart.column("ts")[0].as_py() == dt.datetime(2023, 4, 3, 21, 57, 10,
                                                                                        tzinfo=UTC)  # fmt: skip
    assert screen(path, date_order="mdy").apart.column("ts")[0].as_py().month == 3


def test_square_export_needs_its_currency_and_reads_rails_zone_names(tmp_path: Path) -> None:
    rows = [
        square_row(**{"Payment ID": "CARD", "Description": "Paid by WeChat Pay? no: card"}),
        square_row(**{"Payment ID": "QR", "Date": "2022-11-11", "Time": "2:30:00 PM", "Card": "$0.00",
                      "Card Brand": "", "PAN Suffix": "", "Other Tender": "$1,240.00",
                      "Other Tender Type": "WeChat Pay", "Total Collected": "$1,240.00",
                      "Description": "Custom amount"}),
        square_row(**{"Payment ID": "MARS", "Time Zone": "Martian Time", "Description": "WeChat Pay"}),
    ]  # fmt: skip
    path = write_csv(tmp_path / "transactions-2022-11-10-2022-11-12.csv", SQUARE, rows)
    with pytest.raises(ValueError, match=r"--set currency="):
        screen(path)
    result = screen(path, constants={"currency": "USD", "merchant_country": "US"})
    assert result.malformed == 1 and "unknown time zone (Time Zone) 'Martian Time'" in result.errors[0]
    flagged = {row["id"]: row for row in result.payments.to_pylist()}
    assert set(flagged) == {"QR"}
    assert flagged["QR"]["ts"] == dt.datetime(2022, 11, 11, 22, 30, tzinfo=UTC)  # PST, UTC-8 in November
    assert flagged["QR"]["amount"] == Decimal("1240") and flagged["QR"]["service"] == "wechat_pay"
    assert flagged["QR"]["marker_field"] == "wallet"
    apart = {row["id"]: row for row in result.apart.to_pylist()}
    assert apart["CARD"]["reason"] == "method_says_otherwise" and apart["CARD"]["method"] == "card"
    assert apart["CARD"]["ts"] == dt.datetime(2022, 11, 11, 5, 50, 48, tzinfo=UTC)


def test_square_item_sales_export_is_not_taken_for_payments() -> None:
    assert recognise(SQUARE_ITEMS) is None
    assert recognise(SQUARE).name == "square-transactions"  # type: ignore[union-attr]


def test_every_rails_zone_name_is_an_iana_zone_read_in_its_own_offset(tmp_path: Path) -> None:
    names = default_layouts().zones.names
    assert names["Pacific Time (US & Canada)"] == "America/Los_Angeles" and names["Beijing"] == "Asia/Shanghai"
    rows = [square_row(**{"Payment ID": "T", "Time Zone": "Tokyo", "Time": "09:00:00", "Date": "2024-01-15",
                          "Description": "WeChat Pay"}),
            square_row(**{"Payment ID": "E", "Time Zone": "Eastern Time (US & Canada)", "Time": "09:00:00",
                          "Date": "2024-07-15", "Description": "WeChat Pay"})]  # fmt: skip
    result = screen(write_csv(tmp_path / "t.csv", SQUARE, rows), constants={"currency": "USD"})
    times = {row["id"]: row["ts"] for row in result.apart.to_pylist()}
    assert times == {"T": dt.datetime(2024, 1, 15, 0, 0, tzinfo=UTC), "E": dt.datetime(2024, 7, 15, 13, 0, tzinfo=UTC)}


@settings(max_examples=60, deadline=None)
@given(
    moment=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)),
    form=st.sampled_from(["iso", "mdy", "dmy", "dots"]),
    twelve=st.booleans(),
)
def test_date_and_clock_forms_join_to_the_same_instant(moment: dt.datetime, form: str, twelve: bool) -> None:
    moment = moment.replace(microsecond=0)
    date = {"iso": f"{moment:%Y-%m-%d}", "mdy": f"{moment.month}/{moment.day}/{moment.year}",
            "dmy": f"{moment:%d/%m/%Y}", "dots": f"{moment:%d.%m.%Y}"}[form]  # fmt: skip
    hour = moment.hour % 12 or 12
    clock = f"{hour}:{moment:%M:%S} {'PM' if moment.hour >= 12 else 'AM'}" if twelve else f"{moment:%H:%M:%S}"
    named = {"mdy": "mdy", "dmy": "dmy"}.get(form)
    joined, ambiguous = join_date_time(pa.array([date]), pa.array([clock]), DateOrder(named))
    assert not ambiguous.any()
    assert joined[0].as_py() == f"{moment:%Y-%m-%d %H:%M:%S}"


def test_clock_values_that_are_no_time_are_not_read() -> None:
    joined, _ = join_date_time(pa.array(["2024-01-02"] * 4), pa.array(["13:00 PM", "0:30 AM", "25:00", None]),
                               DateOrder())  # fmt: skip
    assert joined.to_pylist()[:3] == [None, None, "2024-01-02 25:00:00"]  # 25:00 is refused by the time cast later
    assert joined[3].as_py() is None


def test_a_bad_hour_is_reported_with_the_date_and_time_as_written(tmp_path: Path) -> None:
    rows = [square_row(**{"Payment ID": "X", "Time": "25:00:00"})]
    result = screen(write_csv(tmp_path / "bad.csv", SQUARE, rows), constants={"currency": "USD"})
    assert result.malformed == 1 and "'2022-11-10 25:00:00'" in result.errors[0]


# --- uncaptured authorisations -------------------------------------------------------------------------------


STRIPE = ["id", "Description", "Created date (UTC)", "Amount", "Amount Refunded", "Currency", "Status", "Captured",
          "Statement Descriptor", "Card Issue Country", "Payment Source Type"]  # fmt: skip


def test_stripe_uncaptured_charges_are_reported_apart_never_in_totals(tmp_path: Path) -> None:
    base = {"Description": "", "Created date (UTC)": "2024-05-01 10:00:00", "Amount": "10.00", "Amount Refunded": "0",
            "Currency": "usd", "Statement Descriptor": "SHOP", "Card Issue Country": "US",
            "Payment Source Type": "wechat_pay"}  # fmt: skip
    rows = [{**base, "id": "ch_paid", "Status": "Paid", "Captured": "true"},
            {**base, "id": "ch_held", "Status": "Uncaptured", "Captured": "false"},
            {**base, "id": "ch_nostatus", "Status": "", "Captured": "false"}]  # fmt: skip
    result = screen(write_csv(tmp_path / "unified_payments.csv", STRIPE, rows))
    assert result.payments.column("id").to_pylist() == ["ch_paid"]
    assert sum(row["payments"] for row in result.totals.to_pylist()) == 1
    apart = {row["id"]: row for row in result.apart.to_pylist()}
    assert {k: v["reason"] for k, v in apart.items()} == {"ch_held": "not_completed", "ch_nostatus": "not_completed"}
    assert "Status: Uncaptured" in apart["ch_held"]["note"] and "Captured: false" in apart["ch_nostatus"]["note"]


# --- marker doubts -------------------------------------------------------------------------------------------


def _stripe_methods(tmp_path: Path, methods: list[str]) -> Path:
    rows = [{"created_utc": "2024-03-01T10:00:00Z", "amount": "10.00", "currency": "USD", "payment_method_type": m,
             "merchant_country": "US"} for m in methods]  # fmt: skip
    return write_csv(tmp_path / "p.csv", ["created_utc", "amount", "currency", "payment_method_type",
                                          "merchant_country"], rows)  # fmt: skip


def test_a_markers_doubt_is_a_note_only_when_a_row_rests_on_it(tmp_path: Path) -> None:
    with_hk = screen(_stripe_methods(tmp_path, ["alipay_hk", "wechat_pay"]))
    assert len(with_hk.notes) == 1 and with_hk.notes[0].startswith("alipay_hk (Alipay): ")
    assert "AlipayHK" in with_hk.notes[0]
    assert screen(_stripe_methods(tmp_path, ["wechat_pay"])).notes == []


def test_notes_and_apart_counts_in_every_output(tmp_path: Path) -> None:
    path = _stripe_methods(tmp_path, ["alipay_hk"])
    pending = write_csv(tmp_path / "paypal.csv", PAYPAL, [paypal_row(**{"Name": "Tenpay", "Status": "Pending"})])
    runner = CliRunner()
    document = json.loads(
        runner.invoke(app, ["screen", "payments", str(path), str(pending), "--format", "json"]).stdout
    )
    assert document["notes"][0].startswith("alipay_hk (Alipay)")
    assert document["apart_by_reason"] == {"not_completed": 1}
    table = runner.invoke(app, ["screen", "payments", str(path), str(pending)])
    assert "Note: alipay_hk (Alipay)" in table.stdout and "1 not completed" in table.stdout
    html_out = tmp_path / "out.html"
    runner.invoke(app, ["screen", "payments", str(path), str(pending), "--format", "html", "-o", str(html_out)])
    page = html_out.read_text(encoding="utf-8")
    assert "reported apart, not in the totals: 1 not completed" in page and "alipay_hk (Alipay)" in page
    csv_out = tmp_path / "out.csv"
    run = runner.invoke(app, ["screen", "payments", str(path), str(pending), "--format", "csv", "-o", str(csv_out)])
    side = tmp_path / "out.apart.csv"
    assert side.exists() and "not_completed" in side.read_text(encoding="utf-8")
    assert "1 not completed" in run.stderr and "alipay_hk (Alipay)" in run.stderr
    summary = run_screen("payments", pending, {}, BOOK).summary
    assert summary["apart_by_reason"] == {"not_completed": 1} and summary["apart"] == 1
    assert run_screen("payments", path, {}, BOOK).summary["notes"][0].startswith("alipay_hk")

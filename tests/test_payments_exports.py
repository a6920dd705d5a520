"""Payment exports as processors write them, read without --map: Stripe's Reporting API itemized reports,
Adyen's Settlement details and Received payment details reports (with their per-row TimeZone), amounts with
digit grouping, whole-file constants (--set), and several files where one cannot be read.

Samples are written here from the published column lists: Stripe's report types reference
(https://stripe.com/docs/reports/report-types) and Adyen's report structures
(https://docs.adyen.com/developers/reporting/settlement-detail-report/settlement-detail-report-structure,
https://docs.adyen.com/reporting/received-payment-details-report).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from appban import load_rulebook
from appban.cli import app
from appban.payments.layouts import default_layouts, load_layouts, recognise
from appban.screen.jobs import ScreenOptionError, check_options
from appban.screen.payments import PaymentOptions, PaymentResult, parse_constants, screen_payments

BOOK = load_rulebook()
runner = CliRunner()
UTC = dt.UTC

STRIPE_COLUMNS = ["balance_transaction_id", "created_utc", "created", "available_on_utc", "available_on", "currency",
                  "gross", "fee", "net", "reporting_category", "source_id", "description", "customer_facing_amount",
                  "customer_facing_currency", "payment_method_type", "card_brand", "card_funding", "card_country",
                  "statement_descriptor", "customer_id", "customer_email", "customer_name", "shipping_address_country",
                  "charge_id"]  # fmt: skip
SETTLEMENT_COLUMNS = ["Company Account", "Merchant Account", "Psp Reference", "Merchant Reference", "Payment Method",
                      "Creation Date", "TimeZone", "Type", "Modification Reference", "Gross Currency",
                      "Gross Debit (GC)", "Gross Credit (GC)", "Exchange Rate", "Net Currency", "Net Debit (NC)",
                      "Net Credit (NC)", "Commission (NC)", "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)",
                      "Payment Method Variant", "Modification Merchant Reference", "Batch Number"]  # fmt: skip
RECEIVED_COLUMNS = ["Company Account", "Merchant Account", "Psp Reference", "Merchant Reference", "Payment Method",
                    "Creation Date", "TimeZone", "Currency", "Amount", "Type", "Risk Scoring", "Shopper Interaction",
                    "Shopper Name", "Shopper PAN", "Shopper IP", "Shopper Country", "Issuer Name", "Issuer Id",
                    "Issuer City", "Issuer Country", "Acquirer Response", "Authorisation Code", "Shopper Email",
                    "Shopper Reference", "Payment Method Variant"]  # fmt: skip


def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def by_id(result: PaymentResult, table: str = "payments") -> dict[str, dict[str, Any]]:
    rows = getattr(result, table).to_pylist()
    return {row["id"]: row for row in rows}


def at(year: int, month: int, day: int, hour: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------
# Stripe


def stripe_row(n: int, **values: str) -> dict[str, str]:
    base = {
        "balance_transaction_id": f"txn_{n}",
        "created_utc": "2020-10-15 12:00:00",
        "created": "2020-10-15 08:00:00",  # the report was run in America/New_York: not what is read
        "currency": "usd",
        "gross": "25.00",
        "reporting_category": "charge",
        "source_id": f"ch_{n}",
        "charge_id": f"ch_{n}",
        "statement_descriptor": "ACME TEA",
        "card_country": "CN",
    }
    return base | values


def stripe_report(tmp_path: Path) -> Path:
    rows = [
        stripe_row(1, payment_method_type="wechat_pay"),
        stripe_row(2, payment_method_type="card", card_brand="visa", description="WeChat Café order 88"),
        stripe_row(3, payment_method_type="alipay", reporting_category="refund", gross="-1,250.00"),
        stripe_row(4, reporting_category="payout", gross="-100.00", card_country="", source_id="po_4", charge_id=""),
        stripe_row(5, payment_method_type="card", statement_descriptor="WECHATPAY*TEA"),
    ]
    return write_csv(tmp_path / "Itemized_balance_change_from_activity_USD.csv", STRIPE_COLUMNS, rows)


def test_stripe_itemized_report_is_read_in_utc_without_map_or_tz(tmp_path: Path) -> None:
    path = stripe_report(tmp_path)
    layout = recognise(STRIPE_COLUMNS)
    assert layout is not None and layout.name == "stripe-itemized-report"
    result = screen_payments([path], PaymentOptions(), BOOK)
    assert (result.rows, result.malformed, result.file_errors) == (5, 0, [])
    found = by_id(result)
    assert sorted(found) == ["ch_1", "ch_3"]  # the card charges are not wallet payments, whatever the text says
    assert found["ch_1"]["ts"] == at(2020, 10, 15, 12)  # created_utc, not the run's local `created`
    assert (found["ch_1"]["service"], found["ch_1"]["processor"], found["ch_1"]["currency"]) == (
        "wechat_pay",
        "Stripe",
        "USD",
    )
    assert found["ch_3"]["amount"] == Decimal("-1250")  # a grouped amount, a refund
    apart = by_id(result, "apart")
    assert {key: row["reason"] for key, row in apart.items()} == {
        "ch_2": "method_says_otherwise",
        "ch_5": "method_says_otherwise",
    }


def test_a_merchants_own_export_gets_its_country_from_set(tmp_path: Path) -> None:
    path = stripe_report(tmp_path)
    without = by_id(screen_payments([path], PaymentOptions(), BOOK))["ch_1"]
    assert (without["nexus"], without["verdict"]) == ("no U.S. party", "not_prohibited")  # only the card's CN
    options = PaymentOptions(constants=parse_constants(["merchant_country=usa"]))
    found = by_id(screen_payments([path], options, BOOK))["ch_1"]
    assert (found["merchant_country"], found["transaction"], found["nexus"], found["verdict"]) == (
        "US",
        "payment_processing",
        "merchant_country=US",
        "enjoined",
    )


def test_set_fills_only_where_the_file_says_nothing(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        ["id", "created", "amount", "currency", "method", "merchant_country"],
        [
            {"id": "a", "created": "2020-10-15T12:00:00Z", "amount": "5", "method": "wechat_pay",
             "merchant_country": ""},
            {"id": "b", "created": "2020-10-15T12:00:00Z", "amount": "5", "method": "wechat_pay",
             "merchant_country": "SG"},
        ],
    )  # fmt: skip
    options = PaymentOptions(constants=parse_constants(["merchant_country=US", "currency=usd"]))
    found = by_id(screen_payments([path], options, BOOK))  # currency has no column at all: the constant is it
    assert [(found[k]["merchant_country"], found[k]["currency"], found[k]["us_nexus"]) for k in "ab"] == [
        ("US", "USD", True),
        ("SG", "USD", False),
    ]


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("colour=red", "not a field that can be set"),
        ("amount=5", "not a field that can be set"),
        ("merchant_country=Narnia", "not a valid merchant country"),
        ("currency=XYZ", "not a valid currency"),
        ("merchant_country", "expected FIELD=VALUE"),
    ],
)
def test_bad_constants_are_refused_before_reading(tmp_path: Path, pair: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_constants([pair])
    result = runner.invoke(app, ["screen", "payments", str(stripe_report(tmp_path)), "--set", pair])
    assert result.exit_code == 2 and message in result.output


def test_service_takes_set_and_decimal() -> None:
    check_options("payments", {"set": "merchant_country=US,processor=Stripe", "decimal": "comma"})
    with pytest.raises(ScreenOptionError, match=r"^set merchant_country='XX': not a valid merchant country"):
        check_options("payments", {"set": "merchant_country=XX"})
    with pytest.raises(ScreenOptionError, match=r"^decimal must be point or comma"):
        check_options("payments", {"decimal": "dot"})


# ------------------------------------------------------------------------------------------------
# Adyen


def settlement_row(psp: str, **values: str) -> dict[str, str]:
    base = {
        "Company Account": "AcmeCo",
        "Merchant Account": "AcmeTeaUS",
        "Psp Reference": psp,
        "Merchant Reference": f"order-{psp}",
        "Creation Date": "2020-10-15 13:00:00",
        "TimeZone": "CET",
        "Type": "Settled",
        "Gross Currency": "USD",
        "Batch Number": "42",
    }
    return base | values


def test_adyen_settlement_details_read_in_each_rows_zone(tmp_path: Path) -> None:
    rows = [
        settlement_row("8815", **{"Payment Method": "wechatpayQR", "Gross Credit (GC)": "25.00"}),  # 13:00 CET
        settlement_row(
            "8816",
            **{
                "Payment Method": "wechatpayQR",
                "Gross Credit (GC)": "5.00",
                "TimeZone": "CEST",
                "Creation Date": "2020-10-15 14:00:00",
            },
        ),
        settlement_row("8817", **{"Payment Method": "alipay", "Type": "Refunded", "Gross Debit (GC)": "7.50"}),
        settlement_row(
            "8818", **{"Payment Method": "visa", "Gross Credit (GC)": "9.00", "Merchant Reference": "WeChat Pay promo"}
        ),
        settlement_row("8819", **{"Payment Method": "alipay_plus", "Gross Credit (GC)": "3.00"}),
        settlement_row("", **{"Type": "Fee", "Net Debit (NC)": "0.10", "Merchant Reference": ""}),
        settlement_row("", **{"Type": "MerchantPayout", "Net Debit (NC)": "30.00", "Merchant Reference": ""}),
        settlement_row("8820", **{"Payment Method": "wechatpayQR", "Gross Credit (GC)": "1.00", "TimeZone": "CST"}),
    ]
    path = write_csv(tmp_path / "settlement_detail_report_batch_42.csv", SETTLEMENT_COLUMNS, rows)
    result = screen_payments([path], PaymentOptions(constants={"merchant_country": "US"}), BOOK)
    assert (result.rows, result.skipped, result.malformed) == (5, 2, 1)
    assert result.errors == [f"{path}:9: unknown time zone (TimeZone) 'CST'"]  # U.S. Central or China: not guessed
    found = by_id(result)
    assert sorted(found) == ["8815", "8816", "8817"]
    assert found["8815"]["ts"] == found["8816"]["ts"] == at(2020, 10, 15, 12)  # CET +01:00, CEST +02:00
    assert (found["8815"]["processor"], found["8815"]["verdict"]) == ("Adyen", "enjoined")
    assert found["8817"]["amount"] == Decimal("-7.5")  # a debit is a negative amount
    assert {k: r["reason"] for k, r in by_id(result, "apart").items()} == {
        "8818": "method_says_otherwise",
        "8819": "gateway_wallet_unknown",  # Alipay+ without its end wallet: not counted as Alipay
    }


def test_adyen_received_payments_with_iana_and_abbreviated_zones(tmp_path: Path) -> None:
    base = {"Company Account": "AcmeCo", "Merchant Account": "AcmeTeaUS", "Currency": "USD", "Type": "Settled",
            "Payment Method": "wechatpayQR", "Issuer Country": "CN"}  # fmt: skip
    rows = [
        base | {"Psp Reference": "1", "Creation Date": "2020-10-15 14:00:00", "TimeZone": "Europe/Amsterdam",
                "Amount": "10.00"},
        base | {"Psp Reference": "2", "Creation Date": "2020-10-15 04:00:00", "TimeZone": "PST", "Amount": "11.00"},
        base | {"Psp Reference": "3", "Creation Date": "2020-10-15 12:00:00", "TimeZone": "UTC", "Amount": "12.00",
                "Payment Method": "mc", "Shopper Name": "WeChat Lee"},
        base | {"Psp Reference": "4", "Creation Date": "2020-10-15 12:00:00", "TimeZone": "Mars/Olympus",
                "Amount": "13.00"},
    ]  # fmt: skip
    path = write_csv(tmp_path / "received_payments_report_2020_10_15.csv", RECEIVED_COLUMNS, rows)
    result = screen_payments([path], PaymentOptions(), BOOK)
    assert result.errors == [f"{path}:5: unknown time zone (TimeZone) 'Mars/Olympus'"]
    found = by_id(result)
    assert sorted(found) == ["1", "2"]
    assert found["1"]["ts"] == found["2"]["ts"] == at(2020, 10, 15, 12)  # Amsterdam in summer: +02:00; PST -08:00
    assert found["1"]["payer_country"] == "CN" and by_id(result, "apart")["3"]["marker_field"] == "payer"


def test_layouts_file_is_valid_and_cited() -> None:
    layouts = load_layouts()
    assert {layout.name for layout in layouts.layouts} >= {"stripe-itemized-report", "adyen-settlement-details",
                                                            "adyen-received-payment-details"}  # fmt: skip
    assert all(str(source).startswith("https://") for layout in layouts.layouts for source in layout.sources)
    assert default_layouts().zones.abbreviations["CEST"] == "+02:00"


def test_layouts_file_errors_name_the_line(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "src/appban/payments/layouts.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "layouts.yaml"
    text = text.replace('    CEST: "+02:00"', '    CEST: "+25:00"')
    broken.write_text(text.replace("      merchant: [Merchant Account]\n", "      shop: [Merchant]\n", 1))
    with pytest.raises(ValueError) as caught:
        load_layouts(broken)
    assert "'shop' is not a record field" in str(caught.value) and "CEST" in str(caught.value)


# ------------------------------------------------------------------------------------------------
# Amounts with digit grouping


def amounts_file(tmp_path: Path, amounts: list[str]) -> Path:
    rows = [{"id": f"a{i}", "ts": "2020-10-15T12:00:00Z", "amount": amount, "currency": "EUR", "method": "wechat_pay"}
            for i, amount in enumerate(amounts)]  # fmt: skip
    return write_csv(tmp_path / "amounts.csv", ["id", "ts", "amount", "currency", "method"], rows)


def test_grouped_amounts_and_the_decimal_mark(tmp_path: Path) -> None:
    amounts = ["1,250.00", "1.250,00", "1 250,00", "1'250.00", "1\u202f250,5", "1,234,567", "1,250", "12,50", "1.5"]
    path = amounts_file(tmp_path, amounts)
    read = {k: str(v["amount"].normalize()) for k, v in by_id(screen_payments([path], PaymentOptions(), BOOK)).items()}
    assert read == {"a0": "1.25E+3", "a1": "1.25E+3", "a2": "1.25E+3", "a3": "1.25E+3", "a4": "1250.5",
                    "a5": "1234567", "a8": "1.5"}  # fmt: skip
    result = screen_payments([path], PaymentOptions(), BOOK)
    assert [e.split(": ", 1)[1] for e in result.errors] == [
        "amount '1,250' is ambiguous: name the decimal mark (--decimal point or comma)",
        "amount '12,50' is ambiguous: name the decimal mark (--decimal point or comma)",
    ]
    comma = by_id(screen_payments([path], PaymentOptions(decimal="comma"), BOOK))
    assert {k: str(v["amount"].normalize()) for k, v in comma.items()} == {
        "a1": "1.25E+3", "a2": "1.25E+3", "a4": "1250.5", "a6": "1.25", "a7": "12.5"
    }  # fmt: skip
    point = by_id(screen_payments([path], PaymentOptions(decimal="point"), BOOK))
    assert {k: str(v["amount"].normalize()) for k, v in point.items()} == {
        "a0": "1.25E+3", "a3": "1.25E+3", "a5": "1234567", "a6": "1.25E+3", "a8": "1.5"
    }  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Several files, one unreadable


def test_one_unreadable_file_never_stops_the_others(tmp_path: Path) -> None:
    good = amounts_file(tmp_path, ["5.00"])
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    other_json = tmp_path / "shape.json"
    other_json.write_text(json.dumps({"data": [{"x": 1}]}))
    direct_debit = tmp_path / "pain008.xml"
    direct_debit.write_text('<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.02">'
                            "<CstmrDrctDbtInitn/></Document>")  # fmt: skip
    files = [pdf, good, other_json, direct_debit]
    result = screen_payments(files, PaymentOptions(), BOOK)
    assert result.payments.num_rows == 1 and result.rows == 1
    assert [message.split(":")[0] for message in result.file_errors] == [str(pdf), str(other_json), str(direct_debit)]
    out = tmp_path / "out.json"
    shown = runner.invoke(app, ["screen", "payments", *map(str, files), "--format", "json", "-o", str(out)])
    assert shown.exit_code == 1, shown.output  # output written for the rest, the others named
    document = json.loads(out.read_text())
    assert len(document["payments"]) == 1 and len(document["files_not_read"]) == 3
    assert "not read" in shown.output and "statement.pdf" in shown.output
    alone = runner.invoke(app, ["screen", "payments", str(pdf)])
    assert alone.exit_code == 2 and "statement.pdf" in alone.output  # nothing could be screened at all
    missing = runner.invoke(app, ["screen", "payments", str(good), str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "nope.csv: no such file" in missing.output


def test_cli_reports_what_was_set_apart(tmp_path: Path) -> None:
    path = stripe_report(tmp_path)
    shown = runner.invoke(app, ["screen", "payments", str(path), "--set", "merchant_country=US"])
    assert shown.exit_code == 0, shown.output
    assert "Reported apart, not in the totals: 2 method says otherwise" in shown.output
    document = json.loads(runner.invoke(app, ["screen", "payments", str(path), "--format", "json"]).stdout)
    assert document["apart_by_reason"] == {"method_says_otherwise": 2}
    assert {row["id"] for row in document["apart"]} == {"ch_2", "ch_5"}

"""More payment exports as users download them, read without --map or --tz.

Headers are the vendors' published or downloaded ones:
- Stripe Dashboard Payments export: the column titles Stripe writes ("id, Description, Seller Message,
  Created (UTC), Amount, Amount Refunded, Currency, ..., Payment Source Type, ..., PaymentIntent ID"; newer
  downloads title the time "Created date (UTC)"), as listed by https://docs.cello.so/guides/attribution/stripe-reports
  and Stripe's note that the export includes failed charges
  (https://support.stripe.com/questions/exporting-a-report-of-all-transactions).
- Stripe itemized reports run with a custom column set (https://stripe.com/docs/reports/report-types).
- Adyen Payment accounting report: Company Account, Merchant Account, Psp Reference, Merchant Reference, Payment
  Method, Booking Date, TimeZone, Main Currency, Main Amount, Record Type, Payment Currency, Received (PC),
  Authorised (PC), Captured (PC), ... (https://docs.adyen.com/reporting/invoice-reconciliation/payment-accounting-report),
  one row per event of a payment's life.
- ISO 20022 pain.001 with PmtTpInf/SvcLvl/Cd SEPA (the EPC SEPA credit transfer scheme).
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appban import load_rulebook
from appban.payments.layouts import recognise, without_zone, zone_in_name
from appban.screen.payments import PaymentOptions, PaymentResult, parse_constants, screen_payments

BOOK = load_rulebook()
UTC = dt.UTC

STRIPE_PAYMENTS = ["id", "Description", "Seller Message", "Created date (UTC)", "Amount", "Amount Refunded",
                   "Currency", "Converted Amount", "Converted Amount Refunded", "Fee", "Tax", "Converted Currency",
                   "Mode", "Status",
                   "Statement Descriptor", "Customer ID", "Customer Description", "Customer Email", "Captured",
                   "Card ID", "Card Last4", "Card Brand", "Card Funding", "Card Exp Month", "Card Exp Year",
                   "Card Name", "Card Address Country", "Card Issue Country", "Card Fingerprint", "Invoice ID",
                   "Payment Source Type", "Destination", "Transfer", "Transfer Group", "PaymentIntent ID"]  # fmt: skip
ACCOUNTING = ["Company Account", "Merchant Account", "Psp Reference", "Merchant Reference", "Payment Method",
              "Booking Date", "TimeZone", "Main Currency", "Main Amount", "Record Type", "Payment Currency",
              "Received (PC)", "Authorised (PC)", "Captured (PC)", "Settlement Currency", "Payable (SC)",
              "Commission (SC)", "Markup (SC)", "Scheme Fees (SC)", "Interchange (SC)", "Processing Fee Currency",
              "Processing Fee (FC)", "User Name", "Payment Method Variant",
              "Modification Merchant Reference"]  # fmt: skip


def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, delimiter=delimiter)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def by_id(result: PaymentResult, table: str = "payments") -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in getattr(result, table).to_pylist()}


def screen(path: Path, **options: Any) -> PaymentResult:
    return screen_payments([path], PaymentOptions(**options), BOOK)


# ------------------------------------------------------------------------------------------------
# Stripe Dashboard Payments export


def stripe_charge(n: int, **values: str) -> dict[str, str]:
    base = {"id": f"ch_{n}", "Created date (UTC)": "2020-10-15 12:00:00", "Amount": "25.00",
            "Amount Refunded": "0.00", "Currency": "usd", "Status": "Paid", "Captured": "true", "Mode": "Live",
            "Statement Descriptor": "GOLDEN TEA", "Customer Email": "li@example.com", "PaymentIntent ID": f"pi_{n}",
            "Seller Message": "Payment complete."}  # fmt: skip
    return base | values


def test_stripe_payments_export_is_read_in_utc_and_failed_charges_are_apart(tmp_path: Path) -> None:
    rows = [
        stripe_charge(1, **{"Payment Source Type": "wechat_pay", "Card Issue Country": ""}),
        # A card charge (known by its card columns, no source type) whose description names WeChat.
        stripe_charge(
            2,
            Description="WeChat Café gift box",
            Amount="1,250.00",
            **{"Card Brand": "Visa", "Card Last4": "4242", "Card Issue Country": "US"},
        ),
        stripe_charge(
            3,
            Status="Failed",
            Captured="false",
            **{"Payment Source Type": "wechat_pay", "Seller Message": "The payment was declined."},
        ),
        stripe_charge(4, Status="Refunded", **{"Amount Refunded": "25.00", "Payment Source Type": "alipay"}),
    ]
    path = write_csv(tmp_path / "unified_payments.csv", STRIPE_PAYMENTS, rows)
    layout = recognise(STRIPE_PAYMENTS)
    assert layout is not None and layout.name == "stripe-payments-export"
    result = screen(path, constants=parse_constants(["merchant_country=US"]))
    assert (result.rows, result.malformed, result.file_errors) == (4, 0, [])
    found = by_id(result)
    assert sorted(found) == ["ch_1", "ch_4"]  # a refunded charge happened; a failed one did not
    assert found["ch_1"]["ts"] == dt.datetime(2020, 10, 15, 12, tzinfo=UTC)
    assert (found["ch_1"]["service"], found["ch_1"]["processor"], found["ch_1"]["verdict"]) == (
        "wechat_pay", "Stripe", "enjoined"
    )  # fmt: skip
    apart = by_id(result, "apart")
    assert {key: row["reason"] for key, row in apart.items()} == {
        "ch_2": "method_says_otherwise",
        "ch_3": "not_completed",
    }
    assert apart["ch_2"]["method"] == "card" and apart["ch_2"]["amount"] == Decimal("1250")
    assert "Status: Failed" in apart["ch_3"]["note"]
    assert result.totals.column("payments").to_pylist() == [1, 1]  # the failed attempt is in no total


@pytest.mark.parametrize(
    "columns",
    [
        ["id", "Created (UTC)", "Amount", "Amount Refunded", "Currency", "Status", "Customer Email"],
        ["id", "Created date (UTC)", "Amount", "Amount Refunded", "Currency", "Captured", "Payment Source Type"],
    ],
)
def test_stripe_payments_export_with_few_columns_is_recognised(tmp_path: Path, columns: list[str]) -> None:
    layout = recognise(columns)
    assert layout is not None and layout.name == "stripe-payments-export"
    row = dict.fromkeys(columns, "") | {"id": "py_1", columns[1]: "2021-01-05 23:30:00", "Amount": "9.99",
                                        "Amount Refunded": "0.00", "Currency": "usd"}  # fmt: skip
    if "Payment Source Type" in columns:
        row["Payment Source Type"] = "wechat_pay"
    result = screen(write_csv(tmp_path / "p.csv", columns, [row]))
    assert (result.rows, result.malformed) == (1, 0)


def test_other_stripe_exports_are_not_taken_for_payments() -> None:
    # Stripe's Application fees and Payouts exports share id, Created (UTC) and Amount with the payments export.
    fees = ["id", "Created (UTC)", "Amount", "Amount Refunded", "Currency", "User ID", "User Email", "Application ID",
            "Transaction ID"]  # fmt: skip
    payouts = ["id", "Amount", "Created (UTC)", "Currency", "Livemode", "Arrival Date (UTC)", "Status"]
    assert recognise(fees) is None
    assert recognise(payouts) is None


def test_stripe_itemized_report_with_a_custom_column_set(tmp_path: Path) -> None:
    columns = ["created_utc", "charge_id", "currency", "gross", "reporting_category", "payment_method_type"]
    layout = recognise(columns)
    assert layout is not None and layout.name == "stripe-itemized-report"
    row = {"created_utc": "2020-10-15 12:00:00", "charge_id": "ch_9", "currency": "usd", "gross": "10.00",
           "reporting_category": "charge", "payment_method_type": "wechat_pay"}  # fmt: skip
    found = by_id(screen(write_csv(tmp_path / "custom.csv", columns, [row])))
    assert found["ch_9"]["ts"] == dt.datetime(2020, 10, 15, 12, tzinfo=UTC)


def test_itemized_report_with_only_its_local_created_column_is_not_read_as_utc(tmp_path: Path) -> None:
    # `created` is in the zone the report was run in, which the file does not state.
    columns = ["created", "charge_id", "currency", "gross", "reporting_category", "payment_method_type"]
    row = {"created": "2020-10-15 08:00:00", "charge_id": "ch_9", "currency": "usd", "gross": "10.00",
           "reporting_category": "charge", "payment_method_type": "wechat_pay"}  # fmt: skip
    path = write_csv(tmp_path / "local.csv", columns, [row])
    result = screen(path)
    assert (result.payments.num_rows, result.malformed) == (0, 1)
    assert "--tz" in str(result.errors[0]) and ":2:" in str(result.errors[0])
    found = by_id(screen(path, tz="America/New_York"))
    assert found["ch_9"]["ts"] == dt.datetime(2020, 10, 15, 12, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------
# A column whose name states its zone


ZONE_WORDS = st.sampled_from(["UTC", "utc", "Utc", "GMT", "gmt"])
BASES = st.sampled_from(["Created", "Date", "Timestamp", "Created date", "Transaction Date", "Payment Time", "Time"])


def _spelled(base: str, zone: str, style: int) -> str:
    camel = "".join(word.capitalize() for word in base.split())
    snake = base.lower().replace(" ", "_")
    return [f"{base} ({zone})", f"{snake}_{zone}", f"{base} {zone}", f"{camel}{zone.capitalize()}",
            f"{base} [{zone}]", f"{zone}_{snake}", f"{base} in {zone}", f"{snake}-{zone}"][style]  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=BASES, zone=ZONE_WORDS, style=st.integers(0, 7))
def test_a_time_column_named_for_utc_needs_no_tz(tmp_path: Path, base: str, zone: str, style: int) -> None:
    name = _spelled(base, zone, style)
    assert zone_in_name(name) == "UTC", name
    path = write_csv(tmp_path / "generic.csv", [name, "Amount", "Currency", "Payment method"],
                     [{name: "2020-10-15 12:00:00", "Amount": "12.00", "Currency": "USD",
                       "Payment method": "wechat_pay"}])  # fmt: skip
    result = screen(path)
    assert (result.malformed, result.file_errors) == (0, []), name
    assert result.payments.column("ts").to_pylist() == [dt.datetime(2020, 10, 15, 12, tzinfo=UTC)], name


@pytest.mark.parametrize("name", ["Outcome date", "OUTCOME", "Cutoff", "Created", "computed", "Date", "Mutc"])
def test_names_that_state_no_zone(name: str) -> None:
    assert zone_in_name(name) is None


@pytest.mark.parametrize(
    ("name", "zone", "bare"),
    [("Time (UTC+8)", "+08:00", "time"), ("Booking Date UTC-05:00", "-05:00", "bookingdate"),
     ("date_gmt+0530", "+05:30", "date"), ("Created (UTC+0)", "UTC", "created"), ("Time (UTC+25)", None, "time"),
     ("createdUTCTime", "UTC", "createdtime")],
)  # fmt: skip
def test_an_offset_in_the_name_is_the_zone(name: str, zone: str | None, bare: str) -> None:
    assert zone_in_name(name) == zone
    assert without_zone(name) == bare


def test_a_utc_column_is_chosen_over_a_local_one(tmp_path: Path) -> None:
    columns = ["Created", "Created date (UTC)", "Amount", "Currency", "Payment method"]
    row = {"Created": "2020-10-15 08:00:00", "Created date (UTC)": "2020-10-15 12:00:00", "Amount": "1.00",
           "Currency": "USD", "Payment method": "wechat_pay"}  # fmt: skip
    result = screen(write_csv(tmp_path / "two.csv", columns, [row]))
    assert result.payments.column("ts").to_pylist() == [dt.datetime(2020, 10, 15, 12, tzinfo=UTC)]


def test_a_name_with_an_offset_is_read_at_that_offset(tmp_path: Path) -> None:
    columns = ["交易时间 (UTC+8)", "Amount", "Currency", "Payment method"]
    path = write_csv(tmp_path / "cn.csv", columns, [{columns[0]: "2020-10-15 20:00:00", "Amount": "1.00",
                                                    "Currency": "CNY", "Payment method": "wxpay"}])  # fmt: skip
    result = screen(path, column_map={"ts": columns[0]})
    assert result.payments.column("ts").to_pylist() == [dt.datetime(2020, 10, 15, 12, tzinfo=UTC)]


# ------------------------------------------------------------------------------------------------
# Adyen Payment accounting report


def accounting_row(psp: str, record: str, when: str, zone: str = "CET", **values: str) -> dict[str, str]:
    base = {"Company Account": "GoldenGate", "Merchant Account": "GoldenGateTeaUS", "Psp Reference": psp,
            "Merchant Reference": f"order-{psp[-3:]}", "Payment Method": "wechatpayQR", "Booking Date": when,
            "TimeZone": zone, "Main Currency": "USD", "Main Amount": "260.00", "Record Type": record,
            "Payment Currency": "USD", "Payment Method Variant": "wechatpayQR"}  # fmt: skip
    return base | values


def test_adyen_payment_accounting_counts_each_payment_once(tmp_path: Path) -> None:
    rows = [
        accounting_row("8816028154451001", "Received", "2020-11-20 11:45:10", **{"Received (PC)": "260.00"}),
        accounting_row(
            "8816028154451001",
            "Authorised",
            "2020-11-20 11:45:19",
            **{"Received (PC)": "-260.00", "Authorised (PC)": "260.00"},
        ),
        accounting_row("8816028154451001", "SentForSettle", "2020-11-20 11:50:00"),
        accounting_row("8816028154451001", "Settled", "2020-11-22 02:00:00"),
        accounting_row("8816028154452002", "Refused", "2020-11-21 09:00:00", "CEST"),
        accounting_row(
            "8816028154453003",
            "Authorised",
            "2020-11-21 10:00:00",
            **{
                "Payment Method": "visa",
                "Payment Method Variant": "visacredit",
                "Merchant Reference": "WeChat Pay top-up",
            },
        ),
    ]
    path = write_csv(tmp_path / "payments_accounting_report_2020_11_20.csv", ACCOUNTING, rows)
    layout = recognise(ACCOUNTING)
    assert layout is not None and layout.name == "adyen-payment-accounting"
    result = screen(path, constants=parse_constants(["merchant_country=US"]))
    assert (result.rows, result.skipped, result.malformed) == (3, 3, 0)  # Received, SentForSettle, Settled skipped
    found = by_id(result)
    assert list(found) == ["8816028154451001"]
    assert found["8816028154451001"]["ts"] == dt.datetime(2020, 11, 20, 10, 45, 19, tzinfo=UTC)  # CET, +01:00
    assert found["8816028154451001"]["amount"] == Decimal("260")
    apart = by_id(result, "apart")
    assert {key: row["reason"] for key, row in apart.items()} == {
        "8816028154452002": "not_completed",
        "8816028154453003": "method_says_otherwise",
    }
    assert "Record Type: Refused" in apart["8816028154452002"]["note"]


# ------------------------------------------------------------------------------------------------
# Amounts as spreadsheets write them, and `;` files


def generic(tmp_path: Path, amounts: list[str], delimiter: str = ",") -> Path:
    columns = ["Date (UTC)", "Amount", "Currency", "Payment method", "id"]
    rows = [{"Date (UTC)": "2020-10-15 12:00:00", "Amount": amount, "Currency": "EUR", "Payment method": "wechatpay",
             "id": f"p{n}"} for n, amount in enumerate(amounts)]  # fmt: skip
    return write_csv(tmp_path / "amounts.csv", columns, rows, delimiter)


def test_currency_symbols_and_accounting_negatives(tmp_path: Path) -> None:
    path = generic(tmp_path, ["$1,250.00", "(12.00)", "($1,250.00)", "12.00 €", "\u221212.50", "1\u202f250.00",
                              "-€5,00", "USD 12.00"])  # fmt: skip
    result = screen(path)
    amounts = {key: row["amount"] for key, row in by_id(result).items()}
    assert amounts == {"p0": Decimal("1250"), "p1": Decimal("-12"), "p2": Decimal("-1250"), "p3": Decimal("12"),
                       "p4": Decimal("-12.5"), "p5": Decimal("1250")}  # fmt: skip
    errors = [str(error) for error in result.errors]
    assert len(errors) == 2
    assert ":8:" in errors[0] and "'-€5,00' is ambiguous" in errors[0] and "--decimal" in errors[0]
    assert ":9:" in errors[1] and "amount 'USD 12.00'" in errors[1]  # an ISO code in the cell is never guessed


def test_semicolon_file_with_comma_decimals(tmp_path: Path) -> None:
    path = generic(tmp_path, ["1.250,00", "-€5,00", "1 250,00", "(12,50 €)"], delimiter=";")
    result = screen(path, decimal="comma")
    amounts = {key: row["amount"] for key, row in by_id(result).items()}
    assert amounts == {"p0": Decimal("1250"), "p1": Decimal("-5"), "p2": Decimal("1250"), "p3": Decimal("-12.5")}
    assert result.malformed == 0


# ------------------------------------------------------------------------------------------------
# ISO 20022: a stated scheme overrules free text, not the parties

SEPA_PAIN001 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03">
  <CstmrCdtTrfInitn>
    <GrpHdr><MsgId>SEPA-1</MsgId><CreDtTm>2020-10-15T10:00:00</CreDtTm><NbOfTxs>3</NbOfTxs>
      <InitgPty><Nm>Acme Inc</Nm></InitgPty></GrpHdr>
    <PmtInf>
      <PmtInfId>P1</PmtInfId><PmtMtd>TRF</PmtMtd>
      <PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl></PmtTpInf>
      <ReqdExctnDt>2020-10-15</ReqdExctnDt>
      <Dbtr><Nm>Acme Inc</Nm><PstlAdr><Ctry>US</Ctry></PstlAdr></Dbtr>
      <DbtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></DbtrAcct>
      <DbtrAgt><FinInstnId><BIC>DEUTDEFF</BIC></FinInstnId></DbtrAgt>
      <CdtTrfTxInf>
        <PmtId><EndToEndId>E2E-TOPUP</EndToEndId></PmtId>
        <Amt><InstdAmt Ccy="EUR">50.00</InstdAmt></Amt>
        <Cdtr><Nm>Li Wei</Nm><PstlAdr><Ctry>FR</Ctry></PstlAdr></Cdtr>
        <CdtrAcct><Id><IBAN>FR1420041010050500013M02606</IBAN></Id></CdtrAcct>
        <RmtInf><Ustrd>WeChat Pay top up</Ustrd></RmtInf>
      </CdtTrfTxInf>
      <CdtTrfTxInf>
        <PmtId><EndToEndId>E2E-TENPAY</EndToEndId></PmtId>
        <Amt><InstdAmt Ccy="EUR">900.00</InstdAmt></Amt>
        <Cdtr><Nm>Tenpay Payment Technology Co., Ltd.</Nm><PstlAdr><Ctry>CN</Ctry></PstlAdr></Cdtr>
        <CdtrAcct><Id><IBAN>DE02120300000000202051</IBAN></Id></CdtrAcct>
        <RmtInf><Ustrd>Invoice 77</Ustrd></RmtInf>
      </CdtTrfTxInf>
    </PmtInf>
    <PmtInf>
      <PmtInfId>P2</PmtInfId><PmtMtd>TRF</PmtMtd>
      <ReqdExctnDt>2020-10-15</ReqdExctnDt>
      <Dbtr><Nm>Acme Inc</Nm><PstlAdr><Ctry>US</Ctry></PstlAdr></Dbtr>
      <DbtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></DbtrAcct>
      <DbtrAgt><FinInstnId><BIC>DEUTDEFF</BIC></FinInstnId></DbtrAgt>
      <CdtTrfTxInf>
        <PmtId><EndToEndId>E2E-NOSCHEME</EndToEndId></PmtId>
        <Amt><InstdAmt Ccy="EUR">20.00</InstdAmt></Amt>
        <Cdtr><Nm>Li Wei</Nm><PstlAdr><Ctry>FR</Ctry></PstlAdr></Cdtr>
        <CdtrAcct><Id><IBAN>FR1420041010050500013M02606</IBAN></Id></CdtrAcct>
        <RmtInf><Ustrd>WeChat Pay top up</Ustrd></RmtInf>
      </CdtTrfTxInf>
    </PmtInf>
  </CstmrCdtTrfInitn>
</Document>
"""


def test_sepa_scheme_overrules_remittance_text_but_not_the_creditor(tmp_path: Path) -> None:
    path = tmp_path / "sepa.xml"
    path.write_text(SEPA_PAIN001, encoding="utf-8")
    result = screen(path)
    found = by_id(result)
    apart = by_id(result, "apart")
    assert "E2E-TOPUP" not in found
    assert apart["E2E-TOPUP"]["reason"] == "method_says_otherwise"
    assert apart["E2E-TOPUP"]["method"] == "sepa_credit_transfer"
    assert (found["E2E-TENPAY"]["service"], found["E2E-TENPAY"]["marker_field"]) == ("wechat_pay", "payee")
    # No scheme stated: the text still decides, as before.
    assert found["E2E-NOSCHEME"]["marker_field"] == "remittance"


# ------------------------------------------------------------------------------------------------
# AlipayHK: one rule, direct or through Alipay+


def test_alipayhk_is_alipay_directly_and_through_alipay_plus(tmp_path: Path) -> None:
    columns = ["Created (UTC)", "id", "Amount", "Currency", "Payment method", "Wallet"]
    rows = [
        {"id": "direct", "Payment method": "alipay_hk", "Wallet": ""},
        {"id": "plus-hk", "Payment method": "alipay_plus", "Wallet": "ALIPAY_HK"},
        {"id": "plus-gcash", "Payment method": "alipay_plus", "Wallet": "GCASH"},
        {"id": "name", "Payment method": "", "Wallet": "AlipayHK"},
    ]
    rows = [row | {"Created (UTC)": "2021-02-01 00:00:00", "Amount": "5.00", "Currency": "HKD"} for row in rows]
    result = screen(write_csv(tmp_path / "hk.csv", columns, rows))
    found = by_id(result)
    assert {key: (row["service"], round(row["confidence"], 2)) for key, row in found.items()} == {
        "direct": ("alipay", 0.85),
        "plus-hk": ("alipay", 0.85),
        "name": ("alipay", 0.85),
    }
    assert by_id(result, "apart")["plus-gcash"]["reason"] == "gateway_other_wallet"

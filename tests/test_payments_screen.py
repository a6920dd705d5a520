"""Payment screening: markers, U.S. nexus, the user-to-user and wages exceptions, verdicts at each payment's
own instant, the export reader's bad input, and the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from appban import load_rulebook
from appban.cli import app
from appban.payments.markers import PaymentMatcher, default_markers, load_markers
from appban.payments.readers.table import PaymentTableReader
from appban.payments.records import RECORD_SCHEMA, ReadStats
from appban.screen.payments import PaymentOptions, screen_payments

BOOK = load_rulebook()
MARKERS = default_markers()
runner = CliRunner()

COLUMNS = ["id", "created", "amount", "currency", "method", "processor", "processor_country", "merchant",
           "merchant_country", "payer_country", "payer_type", "payee", "payee_country", "payee_type", "payee_agent",
           "purpose", "description"]  # fmt: skip
# A payment from a Chinese buyer to a U.S. merchant through Stripe's WeChat Pay, in October 2020.
BASE = {
    "created": "2020-10-15T12:00:00Z",
    "amount": "25.00",
    "currency": "USD",
    "method": "wechat_pay",
    "processor": "Stripe",
    "merchant": "Acme Tea LLC",
    "merchant_country": "US",
    "payer_country": "CN",
}


def export(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for i, row in enumerate(rows):
            writer.writerow({"id": f"p{i}", **row})
    return path


def screen(tmp_path: Path, rows: list[dict[str, str]], **options: Any) -> dict[str, dict[str, Any]]:
    result = screen_payments([export(tmp_path / "payments.csv", rows)], PaymentOptions(**options), BOOK)
    return {row["id"]: row for row in result.payments.to_pylist()}


# ------------------------------------------------------------------------------------------------
# Markers


def test_markers_file_is_valid_and_names_rulebook_subjects() -> None:
    markers = load_markers(rulebook=BOOK)
    assert {service.subject for service in markers.services.values()} <= set(BOOK.subjects.subjects)
    assert markers.methods and markers.names and markers.purposes


def test_markers_file_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "markers.yaml"
    broken.write_text("services: {}\nmethods:\n  - {value: x, service: nowhere, used_by: [A], confidence: 1,"
                      " source: 'https://example.org'}\nnames: []\n")  # fmt: skip
    with pytest.raises(ValueError, match=r"markers\.yaml:3: methods\[0\]\.service: unknown service 'nowhere'"):
        load_markers(broken)


@pytest.mark.parametrize("marker", MARKERS.methods, ids=lambda m: m.value)
def test_every_method_value_marks_its_service(tmp_path: Path, marker: Any) -> None:
    processor = marker.used_by[0]  # numeric codes count only at the processors that use them
    found = screen(tmp_path, [BASE | {"method": marker.value.upper(), "processor": processor}])
    assert found["p0"]["service"] == marker.service and found["p0"]["marker_field"] == "method"


@pytest.mark.parametrize("marker", MARKERS.names, ids=lambda m: m.value)
def test_every_name_marks_its_service_in_free_text(tmp_path: Path, marker: Any) -> None:
    row = BASE | {"method": "", "processor": "", "description": f"top-up via {marker.value} ref 42"}
    found = screen(tmp_path, [row])
    assert found["p0"]["service"] == marker.service and found["p0"]["marker"] == marker.value


def test_names_match_whole_words_in_any_spelling(tmp_path: Path) -> None:
    unsaid = BASE | {"method": "", "processor": ""}  # no payment method: the names decide
    rows = [
        unsaid | {"merchant": "WECHATPAY*ACME TEA"},  # descriptor without the space
        unsaid | {"description": "paid with alipay+ (GCash)"},  # the longer name wins: Alipay+, not Alipay
        unsaid | {"merchant": "Michael Wechatter Studio"},  # not a whole word
        unsaid | {"payee": "支付宝(中国)网络技术有限公司"},  # ASCII parentheses for the registered full-width ones
        unsaid | {"description": "ordinary card payment"},
    ]
    result = screen_payments([export(tmp_path / "p.csv", rows)], PaymentOptions(), BOOK)
    found = {row["id"]: row for row in result.payments.to_pylist()}
    assert (found["p0"]["marker"], found["p0"]["marker_field"]) == ("WeChat Pay", "merchant")
    assert "p1" not in found and "p2" not in found and "p4" not in found
    assert found["p3"]["service"] == "alipay" and found["p3"]["marker_field"] == "payee"
    apart = result.apart.to_pylist()  # Alipay+ paid from GCash: set aside, not Alipay
    assert [(r["id"], r["reason"], r["marker"], r["end_wallet"]) for r in apart] == [
        ("p1", "gateway_other_wallet", "Alipay+", "GCASH")
    ]


# ------------------------------------------------------------------------------------------------
# A stated payment method is authoritative; Alipay+ is not Alipay


@pytest.mark.parametrize(
    ("method", "processor"),
    [("card", "Stripe"), ("us_bank_account", "Stripe"), ("ach_debit", "Stripe"), ("sepa_debit", "Stripe"),
     ("visa", "Adyen"), ("MC", "Adyen"), ("sepadirectdebit", "Adyen"), ("ach", "Adyen"), ("applepay", "Adyen")],
)  # fmt: skip
def test_a_card_or_bank_method_is_not_a_wallet_whatever_the_text(tmp_path: Path, method: str, processor: str) -> None:
    rows = [
        BASE | {"method": method, "processor": processor, "merchant": "WeChat Café"},
        BASE | {"method": method, "processor": processor, "description": "ACH debit, memo: WeChat Pay top-up"},
        BASE | {"method": method, "processor": processor, "merchant": "Alipay+ Store"},
    ]
    result = screen_payments([export(tmp_path / "p.csv", rows)], PaymentOptions(), BOOK)
    assert result.payments.num_rows == 0 and result.totals.num_rows == 0
    apart = {row["id"]: row for row in result.apart.to_pylist()}
    assert {row["reason"] for row in apart.values()} == {"method_says_otherwise"}
    assert (apart["p0"]["marker"], apart["p0"]["marker_field"]) == ("WeChat", "merchant")
    assert (apart["p1"]["marker"], apart["p1"]["marker_field"]) == ("WeChat Pay", "remittance")
    assert f"the payment method is {method}" in apart["p1"]["note"]


def test_a_wallet_method_still_wins_and_unknown_methods_keep_the_text(tmp_path: Path) -> None:
    rows = [
        BASE | {"method": "wechat_pay", "merchant": "Card Shop"},
        BASE | {"method": "", "merchant": "WeChat Pay*Tea"},
        BASE | {"method": "banana_pay", "merchant": "WeChat Pay*Tea"},  # a value no marker knows: text decides
    ]
    found = screen(tmp_path, rows)
    assert [found[f"p{i}"]["marker_field"] for i in range(3)] == ["method", "merchant", "merchant"]


def test_alipay_plus_counts_only_for_the_alipay_wallet(tmp_path: Path) -> None:
    plus = BASE | {"method": "alipay_plus", "processor": "Adyen"}
    rows = [
        plus | {"description": "wallet ALIPAY_CN"},  # Alipay's own wallet through Alipay+
        plus | {"description": "wallet GCASH"},
        plus | {"merchant": "Acme via Alipay+ Kakao Pay"},
        plus,  # no end wallet named
        BASE | {"method": "", "description": "Alipay Plus settlement, wallet: Touch 'n Go"},
        BASE | {"method": "alipay"},  # Alipay itself, for comparison
    ]
    result = screen_payments([export(tmp_path / "p.csv", rows)], PaymentOptions(), BOOK)
    flagged = {r["id"]: r for r in result.payments.to_pylist()}
    assert sorted(flagged) == ["p0", "p5"]
    assert (flagged["p0"]["service"], flagged["p0"]["marker_kind"]) == ("alipay", "gateway_wallet")
    assert flagged["p0"]["verdict"] == flagged["p5"]["verdict"] is not None  # decided as Alipay is
    assert sum(r["payments"] for r in result.totals.to_pylist()) == 2  # the others never reach the totals
    apart = {r["id"]: (r["reason"], r["end_wallet"]) for r in result.apart.to_pylist()}
    assert apart == {
        "p1": ("gateway_other_wallet", "GCASH"),
        "p2": ("gateway_other_wallet", "KAKAOPAY"),
        "p3": ("gateway_wallet_unknown", None),
        "p4": ("gateway_other_wallet", "TNG"),
    }


def test_markers_file_checks_gateway_services(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "src/appban/payments/markers.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "markers.yaml"
    broken.write_text(text.replace("    service: alipay  # the covered", "    service: nowhere  # the covered"))
    with pytest.raises(ValueError, match=r"gateways\.alipay_plus\.service: unknown service 'nowhere'"):
        load_markers(broken)


def test_numeric_codes_count_only_at_their_processor(tmp_path: Path) -> None:
    code = next(m for m in MARKERS.methods if m.value.isdigit())
    found = screen(tmp_path, [BASE | {"method": code.value, "processor": p} for p in (code.used_by[0], "Other PSP")])
    assert found["p0"]["marker"] == code.value and "p1" not in found


def test_the_surest_marker_wins(tmp_path: Path) -> None:
    found = screen(tmp_path, [BASE | {"method": "wechat_pay", "description": "WeChat order"}])
    assert (found["p0"]["marker_kind"], found["p0"]["marker_field"]) == ("method", "method")


def test_matcher_handles_empty_and_all_null_columns() -> None:
    table = pa.Table.from_batches([], schema=RECORD_SCHEMA)
    found = PaymentMatcher(MARKERS).match(table)
    assert len(found.best) == len(found.where) == len(found.aside) == 0
    nulls = pa.Table.from_pylist([{"amount": None}] * 3, schema=RECORD_SCHEMA)
    assert PaymentMatcher(MARKERS).match(nulls).best.tolist() == [-1, -1, -1]


# ------------------------------------------------------------------------------------------------
# Nexus, category, exceptions and time


@pytest.mark.parametrize(
    ("change", "nexus"),
    [
        ({}, "merchant_country=US"),
        ({"merchant_country": "CN", "payer_country": "US"}, "payer_country=US"),
        ({"merchant": "", "merchant_country": "", "payee": "Li Wei", "payee_country": "US"}, "payee_country=US"),
        ({"merchant_country": "PR"}, "merchant_country=PR"),  # a territory is inside the borders too
        ({"merchant_country": "SG", "processor_country": "US"}, "processor_country=US"),
        ({"merchant_country": "SG", "payee_agent": "CHASUS33XXX"}, "payee_agent=US"),  # the BIC's country
        ({"merchant_country": "USA"}, "merchant_country=US"),  # alpha-3 is read too
    ],
)
def test_us_nexus(tmp_path: Path, change: dict[str, str], nexus: str) -> None:
    found = screen(tmp_path, [BASE | change])["p0"]
    assert (found["us_nexus"], found["nexus"], found["verdict"]) == (True, nexus, "enjoined")


def test_without_a_us_party_nothing_is_prohibited(tmp_path: Path) -> None:
    found = screen(tmp_path, [BASE | {"merchant_country": "SG"}, BASE | {"merchant_country": "", "payer_country": ""}])
    assert (found["p0"]["us_nexus"], found["p0"]["nexus"], found["p0"]["verdict"]) == (
        False,
        "no U.S. party",
        "not_prohibited",
    )
    assert (found["p1"]["us_nexus"], found["p1"]["nexus"], found["p1"]["verdict"]) == (
        None,
        "no country on the record",
        None,
    )


def test_category_follows_the_record(tmp_path: Path) -> None:
    transfer = {"merchant": "", "merchant_country": "", "payee": "Li Wei", "payee_country": "US"}
    found = screen(tmp_path, [BASE, BASE | transfer])
    assert found["p0"]["transaction"] == "payment_processing" and found["p1"]["transaction"] == "funds_transfer"


def test_the_same_payment_changes_verdict_with_its_instant(tmp_path: Path) -> None:
    instants = ["2020-09-01T00:00:00Z", "2020-10-15T12:00:00Z", "2022-03-01T00:00:00Z"]
    found = screen(tmp_path, [BASE | {"created": at} for at in instants])
    # 1 Sept 2020: the WeChat identification was not made until 18 Sept, so nothing prohibited it
    assert [found[f"p{i}"]["verdict"] for i in range(3)] == ["not_prohibited", "enjoined", "revoked"]
    assert [found[f"p{i}"]["as_written"] for i in range(3)] == ["not_prohibited", "prohibited", "revoked"]
    assert "wechat-item-6-payments" in found["p1"]["rule_ids"]


def test_user_to_user_transfers_are_excepted(tmp_path: Path) -> None:
    people = {"merchant": "", "merchant_country": "", "payee": "Li Wei", "payee_country": "US"}
    found = screen(
        tmp_path,
        [
            BASE | people | {"payer_type": "individual", "payee_type": "Individual"},
            BASE | people | {"payer_type": "individual", "payee_type": "business"},
            BASE | people,  # the record does not say: no exception applied
            BASE | {"payer_type": "individual", "payee_type": "individual"},  # paid to a merchant
        ],
    )
    assert found["p0"]["facts"] == '{"user_to_user_transfer": true}'
    assert [found[f"p{i}"]["as_written"] for i in range(4)] == [
        "not_prohibited",
        "prohibited",
        "prohibited",
        "prohibited",
    ]


def test_wages_purpose_codes_are_excepted(tmp_path: Path) -> None:
    people = {"merchant": "", "merchant_country": "", "payee": "Li Wei", "payee_country": "US"}
    found = screen(tmp_path, [BASE | people | {"purpose": "SALA"}, BASE | people | {"purpose": "GDDS"}])
    assert json.loads(found["p0"]["facts"])["wages_or_benefits"] is True
    assert (found["p0"]["as_written"], found["p1"]["as_written"]) == ("not_prohibited", "prohibited")


def test_totals_by_service_verdict_and_month(tmp_path: Path) -> None:
    rows = [BASE, BASE | {"amount": "5.50"}, BASE | {"created": "2022-03-01T00:00:00Z"}, BASE | {"method": "card"}]
    result = screen_payments([export(tmp_path / "p.csv", rows)], PaymentOptions(), BOOK)
    totals = [
        (r["service"], r["month"], r["verdict"], r["payments"], str(r["amount"])) for r in result.totals.to_pylist()
    ]
    assert totals == [("wechat_pay", "2020-10", "enjoined", 2, "30.50000"), ("wechat_pay", "2022-03", "revoked", 1,
                                                                              "25.00000")]  # fmt: skip
    assert result.rows == 4


# ------------------------------------------------------------------------------------------------
# The export reader


def test_bad_records_are_reported_with_their_line_and_the_rest_screened(tmp_path: Path) -> None:
    rows = [
        BASE,
        BASE | {"amount": ""},
        BASE | {"amount": "12,50"},
        BASE | {"currency": "XYZ"},
        BASE | {"created": "2021-02-30T10:00:00Z"},
        BASE | {"merchant_country": "ZZ"},
        BASE | {"created": "2020-10-15T12:00:00"},  # no offset and no --tz
        BASE | {"amount": "3.1234567"},
    ]
    result = screen_payments([export(tmp_path / "p.csv", rows)], PaymentOptions(), BOOK)
    assert result.payments.num_rows == 1 and result.rows == 1 and result.malformed == 7
    assert [error.split(": ", 1)[1] for error in result.errors] == [
        "missing amount",
        "amount '12,50' is ambiguous: name the decimal mark (--decimal point or comma)",
        "unknown currency 'XYZ'",
        "bad timestamp '2021-02-30T10:00:00Z'",
        "unknown merchant country 'ZZ'",
        "timestamp '2020-10-15T12:00:00' has no UTC offset; give its time zone (--tz)",
        "bad amount '3.1234567'",
    ]
    assert [int(error.split(":")[1]) for error in result.errors] == [3, 4, 5, 6, 7, 8, 9]


def test_zoneless_times_read_in_the_given_zone(tmp_path: Path) -> None:
    found = screen(tmp_path, [BASE | {"created": "2020-09-19T23:59:59"}, BASE | {"created": "2020-09-20T00:00:00"}],
                   tz="America/New_York")  # fmt: skip
    assert (found["p0"]["as_written"], found["p1"]["as_written"]) == ("not_yet_effective", "prohibited")


def test_jsonl_and_parquet_with_a_column_map(tmp_path: Path) -> None:
    records = [
        {"When": 1602763200, "Total": 25.5, "Ccy": "usd", "Type": "wechatpayQR", "Shop": "Acme", "ShopCountry": "US"},
        {"When": 1602763200, "Total": 7, "Ccy": "usd", "Type": "scheme", "Shop": "Acme", "ShopCountry": "US"},
    ]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet)
    mapping = {"ts": "When", "amount": "Total", "currency": "Ccy", "method": "Type", "merchant": "Shop",
               "merchant_country": "ShopCountry"}  # fmt: skip
    for path in (jsonl, parquet):
        result = screen_payments([path], PaymentOptions(column_map=mapping), BOOK)
        assert result.rows == 2 and result.payments.num_rows == 1
        row = result.payments.to_pylist()[0]
        assert (str(row["amount"]), row["currency"], row["verdict"]) == ("25.50000", "USD", "enjoined")


def test_missing_required_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("when,what\n2020-10-15T12:00:00Z,x\n")
    expected = r"p\.csv: no column for ts, amount, currency; name it with --map ts=COLUMN,amount=COLUMN,currency="
    with pytest.raises(ValueError, match=expected):
        list(PaymentTableReader(None).read(path, ReadStats()))
    with pytest.raises(ValueError, match=r"no column 'Nope' \(for amount\)"):
        PaymentTableReader({"amount": "Nope"}).checked_mapping(path)


# ------------------------------------------------------------------------------------------------
# Command line


def test_cli_outputs(tmp_path: Path) -> None:
    path = export(tmp_path / "p.csv", [BASE, BASE | {"method": "card"}, BASE | {"currency": "XYZ"}])
    shown = runner.invoke(app, ["screen", "payments", str(path)])
    assert shown.exit_code == 1, shown.output  # one record unreadable: everything else shown, exit 1
    assert "enjoined" in shown.output and "1 of 2 payments flagged; 1 unreadable" in shown.output
    document = json.loads(runner.invoke(app, ["screen", "payments", str(path), "--format", "json"]).stdout)
    assert document["payments_read"] == 2 and document["malformed"] == 1
    assert document["payments"][0]["marker_source"].startswith("https://")
    out = tmp_path / "flagged.csv"
    written = runner.invoke(app, ["screen", "payments", str(path), "--format", "csv", "-o", str(out)])
    assert written.exit_code == 1 and out.read_text().count("\n") == 2
    page = tmp_path / "report.html"
    assert runner.invoke(app, ["screen", "payments", str(path), "--format", "html", "-o", str(page)]).exit_code == 1
    assert "Totals by service" in page.read_text()


def test_cli_errors_exit_non_zero(tmp_path: Path) -> None:
    path = export(tmp_path / "p.csv", [BASE])
    bad_map = runner.invoke(app, ["screen", "payments", str(path), "--map", "colour=red"])
    assert bad_map.exit_code != 0 and "cannot map colour" in bad_map.output
    missing = runner.invoke(app, ["screen", "payments", str(tmp_path / "nope.csv")])
    assert missing.exit_code != 0 and "nope.csv" in missing.output


def test_the_markers_in_force_follow_the_knowledge_in_force(tmp_path: Path) -> None:
    """A service reload or `rules use` changes the knowledge in force: the markers read are its markers, not
    the first ones a process read."""
    from appban.knowledge.layout import KnowledgeRoot, reading
    from appban.payments.markers import MARKERS_FILE

    packaged = default_markers()
    assert any(marker.value == "wechatpayQR" for marker in packaged.methods)
    root = tmp_path / "knowledge"
    (root / "payments").mkdir(parents=True)
    edited = root / "payments" / "markers.yaml"
    text = MARKERS_FILE.read_text(encoding="utf-8")
    edited.write_text(text.replace("wechatpayQR", "wechatpayQRCode"), encoding="utf-8")
    with reading(KnowledgeRoot(root)):
        values = {marker.value for marker in default_markers().methods}
        assert "wechatpayQRCode" in values and "wechatpayQR" not in values
        edited.write_text(edited.read_text(encoding="utf-8").replace("wechatpayQRCode", "wechatpayQRv2"), "utf-8")
        assert "wechatpayQRv2" in {marker.value for marker in default_markers().methods}
    assert default_markers() is packaged

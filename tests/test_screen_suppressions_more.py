"""Suppressions and baselines applied to `screen network` and `screen payments`, through the command line:
an accepted finding is listed apart with its reason and leaves the summary and the gate; a baseline reports
only what is new, known again after rows are added above it (and, for logs and exports, under another file
name); an entry past its date applies no more and is warned about; a baseline of another command is refused."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appban import config
from appban.cli import app

runner = CliRunner()

LOG_HEADER = "ts,client,host,customer\n"
# TikTok hosting on 1 Feb 2025 is prohibited (enforcement suspended); WeChat's order was revoked by then.
ACME_TIKTOK = "2025-02-01T00:00:00Z,10.0.0.5,v16m.tiktokcdn-us.com,Acme\n"
BETA_WECHAT = "2025-02-01T00:00:05Z,10.0.1.7,mp.weixin.qq.com,Beta\n"
GAMMA_TIKTOK = "2025-02-02T00:00:00Z,10.0.2.9,www.tiktok.com,Gamma\n"
ACME_AGAIN = "2025-03-01T00:00:00Z,10.0.0.6,v16m.tiktokcdn-us.com,Acme\n"  # another day, another client address

PAY_HEADER = (
    "id,Created (UTC),Amount,Currency,Payment Method Type,Processor,Merchant,Merchant Country,Customer Country,"
    "Payer Type,Payee Type,Description\n"
)
WECHAT_1 = "ch_1,2020-09-21T09:12:40Z,129.00,USD,wechat_pay,Stripe,Tea Co,US,CN,individual,organisation,Gift box\n"
WECHAT_2 = "ch_2,2020-11-20T02:45:00Z,260.00,USD,wechat_pay,Stripe,Tea Co,US,CN,individual,organisation,Tea\n"
ALIPAY_3 = "ch_3,2020-10-02T18:30:00Z,76.50,USD,alipay,Stripe,Tea Co,US,CN,individual,organisation,Puer\n"
NO_ID = ",2021-03-03T08:20:00Z,88.00,USD,wechat_pay,Stripe,Tea Co,US,US,individual,organisation,Cups\n"


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _config(tmp_path: Path, text: str) -> None:
    _write(tmp_path / "appban.toml", textwrap.dedent(text).lstrip())


def _run(*args: str) -> tuple[int, str, str]:
    done = runner.invoke(app, list(args))
    return done.exit_code, done.stdout, " ".join(done.stderr.split())


def _network(log: str, *args: str) -> tuple[int, str, str]:
    return _run("screen", "network", log, "--role", "hosting", *args)


def _payments(export: str, *args: str) -> tuple[int, str, str]:
    return _run("screen", "payments", export, *args)


# --- screen network ---------------------------------------------------------------------------------------


def test_network_a_suppressed_record_is_listed_apart_and_leaves_the_exposure_and_the_gate(tmp_path: Path) -> None:
    _write(tmp_path / "logs" / "dns.csv", LOG_HEADER + ACME_TIKTOK + BETA_WECHAT)
    code, stdout, stderr = _network("logs/dns.csv", "--format", "json", "--fail-on", "prohibited")
    assert code == 1 and "1 record crosses --fail-on prohibited" in stderr  # Acme's TikTok record is prohibited
    acme = next(r for r in json.loads(stdout)["records"] if r["customer"] == "Acme")
    _config(
        tmp_path,
        f"""
        [[ignore]]
        id = "{acme["fingerprint"]}"
        reason = "Acme's CDN contract ends in March, NET-12"
        until = 2099-01-01
        """,
    )
    code, stdout, stderr = _network("logs/dns.csv", "--format", "json", "--fail-on", "prohibited")
    assert code == 0, stderr
    document = json.loads(stdout)
    assert [r["customer"] for r in document["records"]] == ["Beta"]
    assert [row["customer"] for row in document["exposure"]] == ["Beta"]  # the summary by customer drops Acme
    (accepted,) = document["suppressed"]
    assert (accepted["customer"], accepted["host"], accepted["suppressed"]) == ("Acme", "v16m.tiktokcdn-us.com", True)
    assert accepted["suppression_reason"] == "Acme's CDN contract ends in March, NET-12"
    assert (accepted["suppression_until"], accepted["suppression_source"]) == ("2099-01-01", "appban.toml:1")
    assert "1 finding suppressed by" in stderr
    # The same record on another day, from another client address of the customer, is the same finding.
    _write(tmp_path / "logs" / "dns.csv", LOG_HEADER + ACME_AGAIN + BETA_WECHAT)
    code, stdout, _ = _network("logs/dns.csv", "--format", "json", "--fail-on", "prohibited")
    assert code == 0 and [r["client"] for r in json.loads(stdout)["suppressed"]] == ["10.0.0.6"]


def test_network_every_output_lists_the_suppressed_record(tmp_path: Path) -> None:
    _write(tmp_path / "dns.csv", LOG_HEADER + ACME_TIKTOK + BETA_WECHAT)
    _config(
        tmp_path,
        """
        [[ignore]]
        command = "screen.network"
        app = "tiktok"
        reason = "Acme's CDN contract ends in March"
        until = 2099-01-01
        """,
    )
    code, stdout, _ = _network("dns.csv", "--format", "csv")
    assert code == 0
    rows = {row["customer"]: row for row in csv.DictReader(io.StringIO(stdout))}
    assert rows["Acme"]["suppressed"] == "true" and rows["Acme"]["suppression_reason"].startswith("Acme's CDN")
    assert rows["Beta"]["suppressed"] == "false" and rows["Beta"]["fingerprint"]
    code, _, _ = _network("dns.csv", "--format", "parquet", "-o", "records.parquet")
    assert code == 0
    import pyarrow.parquet as pq

    marked = pq.read_table(tmp_path / "records.parquet").select(["customer", "suppressed"]).to_pylist()
    assert sorted((r["customer"], r["suppressed"]) for r in marked) == [("Acme", True), ("Beta", False)]
    exposure = (tmp_path / "records.exposure.parquet").exists() and pq.read_table(tmp_path / "records.exposure.parquet")
    assert exposure and exposure.column("customer").to_pylist() == ["Beta"]
    code, stdout, _ = _network("dns.csv", "--format", "markdown")
    assert code == 0
    findings, suppressed = stdout.split("### Suppressed", 1)
    assert "tiktokcdn" not in findings and "tiktokcdn" in suppressed and "Acme's CDN contract" in suppressed
    code, stdout, _ = _network("dns.csv", "--format", "html")
    assert code == 0 and "Suppressed" in stdout and "contract ends in March" in stdout
    code, stdout, _ = _network("dns.csv")
    assert code == 0 and "1 finding suppressed by the configuration" in stdout


def test_network_a_baseline_reports_only_new_records_after_rows_added_above_and_a_rotation(tmp_path: Path) -> None:
    _write(tmp_path / "query.log.csv", LOG_HEADER + ACME_TIKTOK + BETA_WECHAT)
    assert _network("query.log.csv", "--format", "json", "-o", "baseline.json")[0] == 0
    # The next day's log under another name: a new customer's record above the known ones.
    _write(tmp_path / "query.log.1.csv", LOG_HEADER + GAMMA_TIKTOK + ACME_AGAIN + BETA_WECHAT)
    code, stdout, stderr = _network(
        "query.log.1.csv", "--format", "json", "--baseline", "baseline.json", "--fail-on", "prohibited"
    )
    assert code == 1  # the new record is prohibited: the gate fails on it alone
    document = json.loads(stdout)
    assert [r["customer"] for r in document["records"]] == ["Gamma"]
    assert [row["customer"] for row in document["exposure"]] == ["Gamma"]
    assert document["baseline"]["unchanged"] == 2
    assert "2 findings already in the baseline" in stderr and "warning" not in stderr
    code, _, _ = _network("query.log.csv", "--baseline", "baseline.json", "--fail-on", "any")
    assert code == 0  # nothing new: the gate passes


def test_network_an_expired_entry_applies_no_more_and_is_warned_about(tmp_path: Path) -> None:
    _write(tmp_path / "dns.csv", LOG_HEADER + ACME_TIKTOK)
    _config(
        tmp_path,
        """
        [[ignore]]
        app = "tiktok"
        reason = "was accepted"
        until = 2024-12-31
        """,
    )
    code, stdout, stderr = _network("dns.csv", "--format", "json", "--fail-on", "prohibited")
    assert code == 1
    document = json.loads(stdout)
    assert [r["customer"] for r in document["records"]] == ["Acme"] and document["suppressed"] == []
    assert "appban.toml:1: suppression expired on 2024-12-31 and no longer applies (was accepted)" in stderr
    code, stdout, _ = _network("dns.csv", "--format", "markdown")
    assert "### Warnings" in stdout and "expired on 2024-12-31" in stdout


# --- screen payments --------------------------------------------------------------------------------------


def test_payments_a_suppressed_payment_is_listed_apart_and_leaves_the_totals_and_the_gate(tmp_path: Path) -> None:
    _write(tmp_path / "exports" / "stripe.csv", PAY_HEADER + WECHAT_1 + ALIPAY_3)
    code, stdout, stderr = _payments("exports/stripe.csv", "--format", "json", "--fail-on", "any")
    assert code == 1 and "2 payments cross --fail-on any" in stderr
    assert {row["service"] for row in json.loads(stdout)["totals"]} == {"wechat_pay", "alipay"}
    _config(
        tmp_path,
        """
        [[ignore]]
        command = "screen payments"
        app = "alipay"
        path = "exports/*"
        reason = "refunded, counsel's memo LEGAL-7"
        until = 2099-01-01
        """,
    )
    code, stdout, stderr = _payments("exports/stripe.csv", "--format", "json", "--fail-on", "any")
    assert code == 1 and "1 payment crosses --fail-on any" in stderr  # WeChat Pay's is still judged
    document = json.loads(stdout)
    assert [p["id"] for p in document["payments"]] == ["ch_1"]
    assert [row["service"] for row in document["totals"]] == ["wechat_pay"]
    (accepted,) = document["suppressed"]
    assert (accepted["id"], accepted["suppression_reason"]) == ("ch_3", "refunded, counsel's memo LEGAL-7")
    assert (accepted["suppression_until"], accepted["suppression_source"]) == ("2099-01-01", "appban.toml:1")
    # Accept WeChat Pay's payment by its fingerprint too: nothing is left for the gate.
    with (tmp_path / "appban.toml").open("a", encoding="utf-8") as handle:
        handle.write(
            f'\n[[ignore]]\nid = "{document["payments"][0]["fingerprint"]}"\nreason = "test charge"\n'
            "until = 2099-01-01\n"
        )
    code, stdout, stderr = _payments("exports/stripe.csv", "--format", "json", "--fail-on", "any")
    assert code == 0, stderr
    document = json.loads(stdout)
    assert document["payments"] == [] and document["totals"] == []
    assert sorted(p["id"] for p in document["suppressed"]) == ["ch_1", "ch_3"]
    assert "2 findings suppressed by" in stderr


def test_payments_every_output_lists_the_suppressed_payment(tmp_path: Path) -> None:
    _write(tmp_path / "stripe.csv", PAY_HEADER + WECHAT_1 + ALIPAY_3)
    _config(tmp_path, '[[ignore]]\napp = "alipay"\nreason = "refunded"\nuntil = 2099-01-01\n')
    code, stdout, _ = _payments("stripe.csv", "--format", "csv")
    assert code == 0
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(stdout))}
    assert rows["ch_3"]["suppressed"] == "true" and rows["ch_3"]["suppression_until"] == "2099-01-01"
    assert rows["ch_1"]["suppressed"] == "false"
    code, stdout, _ = _payments("stripe.csv", "--format", "markdown")
    findings, suppressed = stdout.split("### Suppressed", 1)
    assert "ch\\_3" not in findings and "ch\\_3" in suppressed and "2020-10-02T18:30:00Z" in suppressed
    code, stdout, _ = _payments("stripe.csv", "--format", "html")
    assert code == 0 and "Suppressed" in stdout and "refunded" in stdout
    code, stdout, _ = _payments("stripe.csv")
    assert code == 0 and "1 finding suppressed by the configuration" in stdout


def test_payments_a_baseline_reports_only_new_payments_after_rows_added_above(tmp_path: Path) -> None:
    _write(tmp_path / "june.csv", PAY_HEADER + WECHAT_1 + NO_ID)
    assert _payments("june.csv", "--format", "json", "-o", "baseline.json")[0] == 0
    # A fuller export under another name: a new payment above the known ones, which moved down a line.
    _write(tmp_path / "all.csv", PAY_HEADER + WECHAT_2 + WECHAT_1 + NO_ID)
    code, stdout, stderr = _payments("all.csv", "--format", "json", "--baseline", "baseline.json", "--fail-on", "any")
    assert code == 1, stderr  # the new payment crosses the gate
    document = json.loads(stdout)
    assert [p["id"] for p in document["payments"]] == ["ch_2"]
    assert document["baseline"]["unchanged"] == 2
    assert "2 findings already in the baseline" in stderr and "warning" not in stderr
    # Recorded again, the baseline holds every payment: the gate passes.
    assert _payments("all.csv", "--format", "json", "-o", "baseline.json")[0] == 0
    assert _payments("all.csv", "--baseline", "baseline.json", "--fail-on", "any")[0] == 0


def test_payments_an_expired_entry_applies_no_more_and_is_warned_about(tmp_path: Path) -> None:
    _write(tmp_path / "stripe.csv", PAY_HEADER + WECHAT_1)
    _config(tmp_path, '[screen.payments]\nfail-on = "any"\n\n[[ignore]]\napp = "wechat_pay"\nreason = "old"\n'
                      "until = 2021-01-01\n")  # fmt: skip
    code, stdout, stderr = _payments("stripe.csv", "--format", "json")
    assert code == 1  # fail-on any, from the file: the expired entry no longer hides the payment
    assert [p["id"] for p in json.loads(stdout)["payments"]] == ["ch_1"]
    assert "appban.toml:4: suppression expired on 2021-01-01 and no longer applies (old)" in stderr


# --- baselines of another command ------------------------------------------------------------------------


def test_a_baseline_of_another_command_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "dns.csv", LOG_HEADER + ACME_TIKTOK)
    _write(tmp_path / "stripe.csv", PAY_HEADER + WECHAT_1)
    _write(tmp_path / "catalog.csv", "name,bundle_id,country\nTikTok,com.zhiliaoapp.musically,US\n")
    assert _network("dns.csv", "--format", "json", "-o", "network.json")[0] == 0
    assert _payments("stripe.csv", "--format", "json", "-o", "payments.json")[0] == 0
    inventory = _run("screen", "inventory", "catalog.csv", "--format", "json", "-o", "inventory.json")
    assert inventory[0] == 0
    code, _, stderr = _network("dns.csv", "--baseline", "payments.json")
    assert code == 2
    assert "a JSON result of `appban screen payments`, not of `appban screen network`" in stderr
    code, _, stderr = _payments("stripe.csv", "--baseline", "network.json")
    assert code == 2 and "`appban screen network`, not of `appban screen payments`" in stderr
    code, _, stderr = _payments("stripe.csv", "--baseline", "inventory.json")
    assert code == 2 and "`appban screen inventory`, not of `appban screen payments`" in stderr
    code, _, stderr = _run("screen", "inventory", "catalog.csv", "--baseline", "network.json")
    assert code == 2 and "not of `appban screen inventory`" in stderr
    _write(tmp_path / "scan.sarif", '{"version": "2.1.0", "runs": [{"results": []}]}')
    code, _, stderr = _network("dns.csv", "--baseline", "scan.sarif")
    assert code == 2 and "a SARIF result of `appban scan`, not of `appban screen network`" in stderr


# --- screen inventory's gate ------------------------------------------------------------------------------


def test_inventory_takes_the_same_gate_and_a_suppressed_row_does_not_cross_it(tmp_path: Path) -> None:
    _write(tmp_path / "catalog.csv", "name,bundle_id,country\nTikTok,com.zhiliaoapp.musically,US\n")
    args = ("screen", "inventory", "catalog.csv", "--at", "2025-01-20T12:00:00Z", "--fail-on", "prohibited")
    code, _, stderr = _run(*args)
    assert code == 1 and "1 finding crosses --fail-on prohibited" in stderr
    _config(tmp_path, '[[ignore]]\napp = "tiktok"\nreason = "delisting filed"\nuntil = 2099-01-01\n')
    code, stdout, _ = _run(*args)
    assert code == 0 and "1 finding suppressed by the configuration" in stdout


# --- rows reviewed once per distinct finding ---------------------------------------------------------------


def test_rows_alike_in_their_identity_share_one_fingerprint_and_others_do_not(tmp_path: Path) -> None:
    """The review groups rows by the columns of the identity (alternatives resolved first); every row's
    fingerprint is the one it would get on its own, a null and a missing customer alike."""
    import pyarrow as pa

    from appban.suppress import Identity, apply_to_table, table_facts

    identity = Identity(("customer|client", "host"), by_file=False)
    first = pa.table({"customer": ["Acme", "Acme", None, None, ""], "client": ["a", "b", "a", "b", "b"],
                      "host": ["x", "x", "x", "x", "x"], "app": ["tiktok"] * 5, "file": ["f.csv"] * 5})  # fmt: skip
    second = pa.table({"customer": ["Acme", None], "client": ["c", "b"], "host": ["y", "x"], "app": ["tiktok"] * 2,
                       "file": ["g.csv"] * 2})  # fmt: skip
    table = pa.concat_tables([first, second.cast(first.schema)])  # two chunks
    table = table.set_column(3, "app", table.column("app").dictionary_encode())
    reviewed = apply_to_table("screen network", table, identity, tmp_path, [], None).active
    prints = reviewed.column("fingerprint").to_pylist()
    assert prints[0] == prints[1]  # one customer, two client addresses
    assert prints[2] != prints[3]  # no customer: the client addresses tell them apart
    assert prints[3] == prints[4] == prints[6]  # an empty customer is none; the file is not part of it
    assert len(set(prints)) == 4
    rows = identity.columns(table).to_pylist()
    alone = [table_facts("screen network", row, identity, tmp_path).fingerprint for row in rows]
    assert prints == alone

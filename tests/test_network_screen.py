"""Network screening end to end: logs in, per-customer exposure and decisions out."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from appban import load_rulebook
from appban.cli import app
from appban.screen.network import NetworkOptions, parse_customer_table, screen_network

BOOK = load_rulebook()
runner = CliRunner()
HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n"
    "#open\t2020-11-13-00-00-00\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\tquery\tqclass\tqclass_name"
    "\tqtype\tqtype_name\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tcount\tstring\tcount\tstring\tcount\tstring\n"
)


def epoch(text: str) -> str:
    return f"{dt.datetime.fromisoformat(text).timestamp():.3f}"


def dns_log(path: Path, rows: list[tuple[str, str, str]], compress: bool = False) -> Path:
    body = HEADER + "".join(
        f"{epoch(ts)}\tC{i}\t{client}\t5353\t198.51.100.53\t53\tudp\t{i}\t{query}\t1\tC_INTERNET\t1\tA\n"
        for i, (ts, client, query) in enumerate(rows)
    )
    body += "#close\t2020-11-13-01-00-00\n"
    if compress:
        path.write_bytes(gzip.compress(body.encode()))
    else:
        path.write_text(body)
    return path


ROWS = [
    ("2020-11-13T04:58:59+00:00", "10.0.0.5", "www.tiktok.com"),  # one second before the Nov 12 EST start
    ("2020-11-13T04:59:00+00:00", "10.0.0.5", "v16m.tiktokcdn-us.com"),  # at the start: enjoined (Marland)
    ("2020-11-13T05:00:00+00:00", "10.0.0.6", "nottiktok.com"),
    ("2020-11-13T05:00:01+00:00", "10.0.1.7", "mp.weixin.qq.com"),
    ("2020-11-13T05:00:02+00:00", "10.0.1.7", "v.qq.com"),  # Tencent company-wide, not WeChat
    ("2025-02-01T00:00:00+00:00", "10.0.1.7", "www.tiktok.com"),  # PAFACA: hosting prohibited, suspended
    ("2026-03-01T00:00:00+00:00", "10.9.9.9", "www.douyin.com"),  # outside the joint venture
]
CUSTOMERS = ["prefix,customer", "10.0.0.0/24,Acme Video", "10.0.1.0/24,Beta Streams"]


def run(path: Path, **options: object):  # type: ignore[no-untyped-def]
    return screen_network([path], NetworkOptions(customer_prefixes=parse_customer_table(CUSTOMERS), **options), BOOK)


def test_each_record_is_decided_at_its_own_instant_for_the_role(tmp_path: Path) -> None:
    result = run(dns_log(tmp_path / "dns.log", ROWS), role="hosting")
    records = {r["host"]: r for r in result.records.to_pylist()}
    assert "nottiktok.com" not in records
    assert (records["v16m.tiktokcdn-us.com"]["verdict"], records["v16m.tiktokcdn-us.com"]["as_written"]) == (
        "enjoined",
        "prohibited",
    )
    www = [r for r in result.records.to_pylist() if r["host"] == "www.tiktok.com"]
    assert [(r["verdict"], r["enforcement"]) for r in www] == [
        ("not_yet_effective", "not_applicable"),
        ("prohibited", "suspended"),
    ]
    assert records["v.qq.com"]["app"] == "tencent_other_app" and records["v.qq.com"]["verdict"] == "not_prohibited"
    assert records["www.douyin.com"]["verdict"] == "prohibited"
    assert result.rows == len(ROWS) and result.malformed == 0


def test_role_changes_the_category(tmp_path: Path) -> None:
    log = dns_log(tmp_path / "dns.log", ROWS)
    by_role = {
        role: {r["host"]: r["verdict"] for r in run(log, role=role).records.to_pylist() if r["ts"].year == 2025}
        for role in ("hosting", "cdn", "transit")
    }
    assert by_role["hosting"]["www.tiktok.com"] == "prohibited"  # PAFACA's hosting prohibition
    assert by_role["cdn"]["www.tiktok.com"] == "prohibited"  # the same, read to reach CDN service
    assert by_role["transit"]["www.tiktok.com"] == "revoked"  # only the 2020 transit item ever covered it


def test_customer_attribution_and_exposure(tmp_path: Path) -> None:
    result = run(dns_log(tmp_path / "dns.log.gz", ROWS, compress=True), role="hosting")
    exposure = {r["customer"]: r for r in result.exposure.to_pylist()}
    assert set(exposure) == {"Acme Video", "Beta Streams", "(unattributed)"}
    acme = exposure["Acme Video"]
    assert (acme["records"], acme["distinct_hosts"]) == (2, 2)
    assert acme["first_seen"] < acme["last_seen"]
    assert [p["verdict"] for p in acme["verdicts"]] == ["not_yet_effective", "enjoined"]
    beta = exposure["Beta Streams"]
    assert sorted(beta["apps"]) == ["tencent_other_app", "tiktok", "wechat"]


def test_scope_filter(tmp_path: Path) -> None:
    log = dns_log(tmp_path / "dns.log", ROWS)
    apps_only = {r["host"] for r in run(log, role="hosting", scope="app").records.to_pylist()}
    assert "v.qq.com" not in apps_only and "mp.weixin.qq.com" in apps_only


def test_customer_table_errors_name_the_line() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_customer_table(["prefix,customer", "10.0.0.0/33,Nobody"])


def test_cli_outputs(tmp_path: Path) -> None:
    log = str(dns_log(tmp_path / "dns.log", ROWS))
    table = tmp_path / "customers.csv"
    table.write_text("\n".join(CUSTOMERS) + "\n")
    shown = runner.invoke(app, ["screen", "network", log, "--role", "hosting", "--customer-table", str(table)])
    assert shown.exit_code == 0, shown.output
    assert "Acme Video" in shown.stdout and "Exposure by customer" in shown.stdout
    as_json = runner.invoke(app, ["screen", "network", log, "--role", "cdn", "--format", "json"])
    document = json.loads(as_json.stdout)
    assert document["records_read"] == len(ROWS) and len(document["records"]) == 6
    out = tmp_path / "records.parquet"
    done = runner.invoke(app, ["screen", "network", log, "--role", "transit", "--format", "parquet", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert pq.read_table(out).num_rows == 6
    assert pq.read_table(tmp_path / "records.exposure.parquet").num_rows >= 1
    html = tmp_path / "report.html"
    assert (
        runner.invoke(app, ["screen", "network", log, "--role", "cdn", "--format", "html", "-o", str(html)]).exit_code
        == 0
    )
    assert "Exposure by customer" in html.read_text()
    bad = runner.invoke(app, ["screen", "network", log, "--role", "cdn", "--where", "XX"])
    assert bad.exit_code == 2


def test_cli_blocklist_export(tmp_path: Path) -> None:
    out = tmp_path / "appban.rpz"
    args = ["export", "blocklist", "--where", "US", "--at", "2025-02-01T00:00:00Z", "--format", "rpz", "-o", str(out)]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    text = out.read_text()
    assert "tiktok.com CNAME ." in text and "*.tiktok.com CNAME ." in text and "pafaca-2024" in text
    empty = runner.invoke(app, ["export", "blocklist", "--where", "US", "--at", "2019-01-01T00:00:00Z", "--format",
                                "hosts"])  # fmt: skip
    assert empty.exit_code == 0 and "no prohibition" in empty.stdout

"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from appban.cli import app

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "transactions.csv"
runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_check_json_has_the_documented_fields() -> None:
    result = run(
        "check",
        "--app",
        "tiktok",
        "--transaction",
        "internet_hosting",
        "--where",
        "US",
        "--at",
        "2020-11-12T23:59:00-05:00",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("verdict", "as_written", "enforcement", "rules", "exceptions", "citations", "rulebook_version"):
        assert key in data
    assert (data["verdict"], data["as_written"]) == ("enjoined", "prohibited")
    assert any(c["cite"].startswith("85 FR 60061") for c in data["citations"])


def test_check_readable_output_explains_the_verdict() -> None:
    result = run(
        "check",
        "--app",
        "WeChat",
        "--transaction",
        "funds_transfer",
        "--where",
        "US",
        "--at",
        "2020-09-22T12:00:00-04:00",
        "--fact",
        "user_to_user_transfer=true",
    )
    assert result.exit_code == 0, result.output
    assert "NOT PROHIBITED" in result.stdout
    assert "Users sending and receiving funds" in result.stdout
    assert "rulebook sha256:" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "2020-11-12T23:59:00"], "has no UTC offset"),
        (["--at", "next tuesday"], "is neither now nor an ISO 8601 instant"),
        (["--where", "USA"], "where: 'USA' is not an ISO 3166-1"),
        (["--app", "tiktokk"], "app: unknown app 'tiktokk'"),
        (["--transaction", "streaming"], "transaction: unknown category 'streaming'"),
        (["--fact", "color=blue"], "unknown fact 'color'"),
        (["--fact", "user_to_user_transfer"], "write KEY=VALUE"),
    ],
)
def test_check_bad_input_exits_2_naming_the_field(args: list[str], message: str) -> None:
    base = {"--app": "tiktok", "--transaction": "cdn", "--where": "US", "--at": "2020-11-20T00:00:00Z"}
    extra: list[str] = []
    for flag, value in zip(args[::2], args[1::2], strict=False):
        if flag in base:
            base[flag] = value
    if args[0] == "--fact":
        extra = args
    result = run("check", *[x for pair in base.items() for x in pair], *extra)
    assert result.exit_code == 2
    assert message in result.stderr


def test_check_naive_instant_with_explicit_zone() -> None:
    result = run(
        "check",
        "--app",
        "tiktok",
        "--transaction",
        "cdn",
        "--where",
        "US",
        "--at",
        "2020-11-12T23:59:00",
        "--tz",
        "America/New_York",
        "--json",
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["at"] == "2020-11-13T04:59:00Z"


def test_timeline_lists_each_change_with_its_instrument() -> None:
    result = run("timeline", "--app", "tiktok", "--where", "US", "--json")
    assert result.exit_code == 0, result.output
    changes = json.loads(result.stdout)["changes"]
    hosting = [(c["at"], c["verdict_after"], c["instruments"]) for c in changes if c["category"] == "internet_hosting"]
    # Each instrument counts from when it was made: the identification on 18 Sept 2020, PAFACA in April 2024,
    # EO 14166 on the evening of 20 Jan 2025 (its reach back to the 19th shows only from then).
    assert hosting[:3] == [
        ("2020-09-18T04:00:00Z", "not_yet_effective", ["commerce-tiktok-identification-2020"]),
        ("2020-11-13T04:59:00Z", "enjoined", ["commerce-tiktok-identification-2020"]),
        ("2021-06-09T04:00:00Z", "revoked", ["eo-14034"]),
    ]
    assert ("2024-04-24T04:00:00Z", "not_yet_effective", ["pafaca-2024"]) in hosting
    assert ("2025-01-19T05:00:00Z", "prohibited", ["pafaca-2024"]) in hosting
    suspended = [c for c in changes if c["category"] == "internet_hosting" and c["at"] == "2025-01-21T01:10:00Z"]
    assert [(c["enforcement_before"], c["enforcement_after"], c["instruments"]) for c in suspended] == [
        ("enforceable", "suspended", ["eo-14166"])
    ]
    assert hosting[-1] == ("2026-01-22T05:00:00Z", "not_prohibited", ["eo-14352"])


def test_timeline_range() -> None:
    result = run(
        "timeline", "--app", "wechat", "--from", "2021-01-01T00:00:00Z", "--to", "2022-01-01T00:00:00Z", "--json"
    )
    changes = json.loads(result.stdout)["changes"]
    assert changes and all(c["at"].startswith("2021-06-09") for c in changes)
    assert {c["verdict_after"] for c in changes} == {"revoked"}


def test_decide_sample_file_as_table() -> None:
    result = run("decide", str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert "Summary of 30 decisions" in result.stdout


def test_decide_json_and_csv_and_parquet(tmp_path: Path) -> None:
    as_json = json.loads(run("decide", str(SAMPLE), "--format", "json").stdout)
    assert as_json["summary"]["rows"] == 30 and len(as_json["rows"]) == 30
    out_csv = tmp_path / "out.csv"
    assert run("decide", str(SAMPLE), "--format", "csv", "-o", str(out_csv)).exit_code == 0
    lines = out_csv.read_text().splitlines()
    assert len(lines) == 31 and "verdict" in lines[0]
    out_parquet = tmp_path / "out.parquet"
    assert run("decide", str(SAMPLE), "--format", "parquet", "-o", str(out_parquet)).exit_code == 0
    assert pq.read_table(out_parquet).column("verdict").to_pylist() == [r["verdict"] for r in as_json["rows"]]


def test_decide_reads_jsonl_and_parquet_inputs(tmp_path: Path) -> None:
    rows = [
        {"app": "tiktok", "transaction": "cdn", "where": "NA", "at": "2020-11-20T00:00:00Z"},
        {
            "app": "wechat",
            "transaction": "funds_transfer",
            "where": "US",
            "at": "2020-09-22T00:00:00Z",
            "facts": {"user_to_user_transfer": True},
        },
    ]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = json.loads(run("decide", str(jsonl), "--format", "json").stdout)
    assert [r["verdict"] for r in data["rows"]] == ["not_prohibited", "not_prohibited"]
    assert data["rows"][0]["where"] == "NA"  # Namibia, not a missing value
    parquet = tmp_path / "in.parquet"
    assert run("decide", str(jsonl), "--format", "parquet", "-o", str(parquet)).exit_code == 0
    again = json.loads(run("decide", str(parquet), "--format", "json").stdout)
    assert [r["verdict"] for r in again["rows"]] == ["not_prohibited", "not_prohibited"]


def test_decide_bad_rows_name_file_line_and_field_and_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "app,transaction,where,at\n"
        "tiktok,cdn,US,2020-11-20T00:00:00Z\n"
        "tiktok,cdn,US,2020-11-20T00:00:00\n"
        "tiktokk,cdn,US,2020-11-20T00:00:00Z\n"
    )
    target = tmp_path / "out.csv"
    result = run("decide", str(bad), "--format", "csv", "-o", str(target))
    assert result.exit_code == 2
    assert f"{bad}:3: at: '2020-11-20T00:00:00'" in result.stderr
    assert f"{bad}:4: app: 'tiktokk' unknown app" in result.stderr
    assert not target.exists() and list(tmp_path.iterdir()) == [bad]


def test_decide_missing_file_and_unknown_format(tmp_path: Path) -> None:
    assert run("decide", str(tmp_path / "nope.csv")).exit_code == 2
    odd = tmp_path / "x.txt"
    odd.write_text("hello")
    result = run("decide", str(odd))
    assert result.exit_code == 2 and "unknown input format" in result.stderr


def test_rules_list_show_validate(tmp_path: Path) -> None:
    listed = json.loads(run("rules", "list", "--json").stdout)
    ids = [i["id"] for i in listed["instruments"]]
    assert "pafaca-2024" in ids and "eo-13942" in ids
    shown = json.loads(run("rules", "show", "tiktok-item-1-app-store", "--json").stdout)
    assert shown["instrument"] == "commerce-tiktok-identification-2020" and shown["from"]["time"] == "23:59"
    assert run("rules", "show", "nope").exit_code == 2
    assert "valid" in run("rules", "validate", str(ROOT / "src/appban/rulebook/data")).stdout


def test_rules_validate_one_new_instrument_file(tmp_path: Path) -> None:
    good = tmp_path / "commerce-example-2027.yaml"
    good.write_text(
        "id: commerce-example-2027\nkind: agency_notice\ntitle: Example\nshort_title: Example\n"
        "issued_by: Commerce\njurisdiction: US\nmade: {event: issued, date: 2027-01-01, zone: America/New_York}\n"
        "summary: An example.\n"
        "citation: {cite: 'Example notice', url: 'https://example.org/notice'}\n"
        "prohibitions:\n  - id: example-1\n    label: Example\n    text: Example\n    subjects: [wechat]\n"
        "    categories: [cdn]\n    places: [US]\n    from: {date: 2027-02-01, zone: America/New_York}\n"
    )
    assert run("rules", "validate", str(good)).exit_code == 0
    bad = tmp_path / "commerce-example-2028.yaml"
    bad.write_text(
        good.read_text().replace("commerce-example-2027", "commerce-example-2028").replace("[wechat]", "[wechatt]")
    )
    result = run("rules", "validate", str(bad))
    assert result.exit_code == 2
    assert "commerce-example-2028.yaml:14: prohibitions[0].subjects[0]: unknown subject 'wechatt'" in result.stderr
    # when the instrument was made is required, and its clock time and zone are checked
    unmade = tmp_path / "commerce-example-2029.yaml"
    unmade.write_text(
        good.read_text()
        .replace("commerce-example-2027", "commerce-example-2029")
        .replace("made: {event: issued, date: 2027-01-01, zone: America/New_York}\n", "")
    )
    result = run("rules", "validate", str(unmade))
    assert result.exit_code == 2 and "commerce-example-2029.yaml:1: made: Field required" in result.stderr
    badly_made = tmp_path / "commerce-example-2030.yaml"
    badly_made.write_text(
        good.read_text()
        .replace("commerce-example-2027", "commerce-example-2030")
        .replace("zone: America/New_York}", "time: '25:00', zone: Mars/Olympus}")
    )
    result = run("rules", "validate", str(badly_made))
    assert result.exit_code == 2
    assert "made.time: time must be HH:MM or HH:MM:SS" in result.stderr
    assert "made.zone: unknown time zone 'Mars/Olympus'" in result.stderr


def test_invalid_rulebook_directory_exits_2(rulebook_copy: Path) -> None:
    path = rulebook_copy / "instruments" / "eo-13873.yaml"
    path.write_text(path.read_text().replace("kind: executive_order", "kind: decree"))
    result = run(
        "check",
        "--app",
        "tiktok",
        "--transaction",
        "cdn",
        "--where",
        "US",
        "--at",
        "2021-01-01T00:00:00Z",
        "--rulebook",
        str(rulebook_copy),
    )
    assert result.exit_code == 2 and "eo-13873.yaml:2: kind:" in result.stderr


def test_installed_entry_point_runs() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "appban"),
            "check",
            "--app",
            "tiktok",
            "--transaction",
            "cdn",
            "--where",
            "US",
            "--at",
            "2020-11-20T00:00:00Z",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and json.loads(result.stdout)["verdict"] == "enjoined"


def test_rules_uncertain_lists_the_unconfirmed_facts() -> None:
    data = json.loads(run("rules", "uncertain", "--json").stdout)["uncertain"]
    texts = " ".join(row["uncertain"] for row in data)
    assert "item 6" in texts and "number 5 or 6" in texts and "Federal Register" in texts
    assert len({(row["instrument"], row["uncertain"]) for row in data}) == len(data)


def test_version_names_package_and_rulebook(rulebook) -> None:  # type: ignore[no-untyped-def]
    result = run("--version")
    assert result.exit_code == 0 and rulebook.version in result.stdout


@pytest.mark.parametrize(
    "zone", ["A" * 300, "local" + "A" * 300, "\u202e\u0645\u0631\u062d\u0628\u0627" * 40, "America", "../etc/passwd"]
)
def test_a_bad_zone_exits_2_without_naming_a_server_path(tmp_path: Path, zone: str) -> None:
    # zoneinfo opens the name as a file: a name past NAME_MAX used to escape as an OSError with tzdata's path.
    at = ["--at", "2020-11-12T23:59:00", "--tz", zone]
    check = run("check", "--app", "tiktok", "--transaction", "cdn", "--where", "US", *at)
    log = tmp_path / "queries.csv"
    log.write_text("ts,query\n2020-11-12 23:59:00,tiktokv.com\n")
    network = run("screen", "network", "--role", "hosting", "--log-tz", zone, str(log))
    for result in (check, network):
        assert result.exit_code == 2, result.output
        assert "unknown time zone" in result.stderr and "tzdata" not in result.stderr and "/usr/" not in result.stderr

"""One set of conventions for every command: --at now, --app by store identifier, categories in any case,
errors naming their flag, --format (and --json) everywhere, machine output with Z instants, Markdown reports,
value names in --help, shell completion and a quiet end on a closed pipe."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.testing import CliRunner

from appban.cli import app
from appban.cli.code import ScanFormat
from appban.cli.conventions import counted
from appban.cli.network import LOG_FAMILIES, LOG_FORMATS
from appban.report import markdown as md

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "examples" / "inventory" / "app-store-catalog.csv"
JAMF = ROOT / "examples" / "inventory" / "jamf-mobile-device-apps.csv"
PAYMENTS = ROOT / "examples" / "payments" / "processor-export.csv"
TRANSACTIONS = ROOT / "examples" / "transactions.csv"
SCRIPT = Path(sys.executable).parent / "appban"
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
BIND_LINE = "13-Nov-2020 00:00:01.000 queries: info: client @0x7f 10.0.0.1#5353 (www.tiktok.com): query: www.tiktok.com IN A + (10.0.0.53)\n"  # noqa: E501
CHECK = ["check", "--app", "tiktok", "--transaction", "internet_hosting", "--where", "US"]
runner = CliRunner()


def cli(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def ok(*args: str | Path) -> Any:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def dns_log(tmp_path: Path) -> Path:
    path = tmp_path / "dns.log"
    path.write_text(BIND_LINE, encoding="utf-8")
    return path


# --- --at ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("at", [None, "now", "NOW"])
def test_check_decides_now_without_at_or_with_now_and_says_when(at: str | None) -> None:
    before = _now()
    result = ok(*CHECK, *([] if at is None else ["--at", at]), "--format", "json")
    after = _now()
    stated = json.loads(result.stdout)["at"]
    assert ISO_Z.match(stated) and before <= _instant(stated) <= after
    human = ok(*CHECK, *([] if at is None else ["--at", at]))
    # The instant used is in the human answer too (the same second, or the next one).
    assert re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", human.stdout)


def test_check_agrees_with_scan_on_the_default_instant(tmp_path: Path) -> None:
    (tmp_path / "build.gradle").write_text('implementation "com.tiktok.open.sdk:tiktok-open-sdk-core:2.3.0"\n')
    before = _now()
    checked = json.loads(ok(*CHECK, "--json").stdout)["at"]
    scanned = json.loads(ok("scan", tmp_path, "--json").stdout)["at"]
    after = _now()
    assert before <= _instant(checked) <= _instant(scanned) <= after


@pytest.mark.parametrize(
    "args",
    [
        ["export", "mdm", "--where", "US", "--format", "jamf"],
        ["export", "blocklist", "--where", "US", "--format", "hosts", "--at", "now"],
    ],
    ids=["mdm", "blocklist"],
)
def test_exports_take_now_and_state_the_instant(args: list[str]) -> None:
    before = _now()
    result = ok(*args)
    after = _now()
    stamps = [_instant(s) for s in re.findall(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", result.stderr)]
    assert stamps and all(before <= stamp <= after for stamp in stamps)


def test_inventory_at_now_decides_every_row_now() -> None:
    before = _now()
    findings = json.loads(ok("screen", "inventory", CATALOG, "--at", "now", "--json").stdout)["findings"]
    after = _now()
    assert findings and all(before <= _instant(row["at"]) <= after for row in findings)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "2020-11-12T23:59:00"], "use --tz ZONE"),
        (["--at", "2020-11-12T23:59:00", "--tz", "Mars/Base"], "--tz: unknown time zone"),
        (["--at", "next tuesday"], "--at: 'next tuesday' is neither now nor an ISO 8601 instant"),
        (["--app", "com.example.nothing"], "--app: unknown app"),
        (["--transaction", "streaming"], "--transaction: unknown category 'streaming'"),
        (["--fact", "color=blue"], "--fact: unknown fact 'color'"),
        (["--format", "sarif"], "'sarif' is not one of"),
    ],
)
def test_errors_name_the_flag_that_fixes_them(args: list[str], message: str) -> None:
    base = {"--app": "tiktok", "--transaction": "cdn", "--where": "US"}
    extra: list[str] = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in base:
            base[flag] = value
        else:
            extra += [flag, value]
    result = cli("check", *[x for pair in base.items() for x in pair], *extra)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split()), result.stderr


def test_json_and_a_different_format_together_are_refused() -> None:
    result = cli(*CHECK, "--json", "--format", "markdown")
    assert result.exit_code == 2 and "--json means --format json" in result.stderr


# --- --app, categories and roles -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_name", "subject"),
    [
        ("com.zhiliaoapp.musically", "tiktok"),  # Android package
        ("com.tencent.xin", "wechat"),  # iOS bundle ID
        ("414478124", "wechat"),  # App Store ID
        ("id414478124", "wechat"),
        ("TikTok", "tiktok"),
    ],
)
def test_app_takes_store_identifiers_the_registry_knows(app_name: str, subject: str) -> None:
    answer = json.loads(ok("check", "--app", app_name, "--transaction", "cdn", "--where", "US", "--json").stdout)
    assert answer["subject"] == subject
    changes = json.loads(ok("timeline", "--app", app_name, "--json").stdout)
    assert changes["subject"] == subject


@pytest.mark.parametrize("spelling", ["App-Store-Distribution", "APP_STORE_DISTRIBUTION", "app store distribution"])
def test_categories_take_any_case_and_hyphens(spelling: str) -> None:
    answer = json.loads(ok(*CHECK[:3], "--transaction", spelling, "--where", "US", "--at", "2024-06-01T00:00:00Z",
                           "--json").stdout)  # fmt: skip
    assert answer["transaction"] == "app_store_distribution"
    export = ok("export", "mdm", "--where", "US", "--format", "jamf", "--transaction", spelling)
    assert "app_store_distribution" in export.stderr


@pytest.mark.parametrize(("role", "named"), [("Internet-Hosting", "hosting"), ("CDN", "cdn"),
                                            ("transit_peering", "transit"), ("hosting", "hosting")])  # fmt: skip
def test_role_takes_the_category_names_too(role: str, named: str, dns_log: Path) -> None:
    document = json.loads(ok("screen", "network", dns_log, "--role", role, "--json").stdout)
    assert document["role"] == named


def test_an_unknown_role_names_the_flag(dns_log: Path) -> None:
    result = cli("screen", "network", dns_log, "--role", "streaming")
    assert result.exit_code == 2 and "--role: unknown role 'streaming'" in result.stderr


# --- one output rule -------------------------------------------------------------------------------


def _commands(command: Any = None, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    command = command if command is not None else typer.main.get_command(app)
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*prefix, name))
    else:
        yield prefix, command


# Commands whose output is not a report: a secret, a line appended to a file, a server, a stream whose
# formats are named (jsonl, csv), and the exports, whose --format is the shape an MDM or resolver loads.
NOT_REPORTS = {("serve",), ("tokens", "create"), ("tokens", "revoke"), ("audit", "checkpoint")}
SHAPES = {("export", "mdm"), ("export", "blocklist"), ("audit", "export")}


def _choices(param: Any) -> list[Any]:
    """The values a choice parameter allows (click's Choice type, as typer builds it)."""
    return list(getattr(param.type, "choices", None) or ())


def _option(command: Any, flag: str) -> TyperOption | None:
    return next((p for p in command.params if isinstance(p, TyperOption) and flag in p.opts), None)


def test_every_command_with_a_report_takes_format_and_json() -> None:
    for path, command in _commands():
        if path in NOT_REPORTS:
            continue
        fmt = _option(command, "--format")
        assert fmt is not None, f"{' '.join(path)} has no --format"
        if path in SHAPES:
            continue
        choices = [str(c) for c in _choices(fmt)]
        assert choices[:2] == ["table", "json"], (path, choices)
        assert _option(command, "--json") is not None, f"{' '.join(path)} has no --json"


def test_table_outputs_offer_csv_and_parquet() -> None:
    tables = [("decide",), ("timeline",), ("rules", "list"), ("rules", "uncertain"), ("screen", "inventory"),
              ("screen", "network"), ("screen", "payments")]  # fmt: skip
    commands = dict(_commands())
    for path in tables:
        fmt = _option(commands[path], "--format")
        assert fmt is not None
        assert {"csv", "parquet"} <= {str(c) for c in _choices(fmt)}, path
    for path in [("scan",), ("screen", "inventory"), ("screen", "network"), ("screen", "payments"), ("check",),
                 ("decide",), ("timeline",)]:  # fmt: skip
        fmt = _option(commands[path], "--format")
        assert fmt is not None and "markdown" in {str(c) for c in _choices(fmt)}, path


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _instants(value: Any, names: set[str]) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in names and isinstance(item, str):
                yield item
            yield from _instants(item, names)
    elif isinstance(value, list):
        for item in value:
            yield from _instants(item, names)


def test_machine_output_writes_z_instants_rounded_confidences_and_no_key_ending_in_underscore(
    dns_log: Path,
) -> None:
    outputs = {
        "check": ok(*CHECK, "--at", "2020-11-12T23:59:00-05:00", "--json"),
        "timeline": ok("timeline", "--app", "tiktok", "--json"),
        "rules list": ok("rules", "list", "--json"),
        "inventory": ok("screen", "inventory", JAMF, "--fleet", "government", "--at", "2024-01-01T00:00:00Z", "--json"),
        "network": ok("screen", "network", dns_log, "--role", "hosting", "--json"),
        "decide": ok("decide", TRANSACTIONS, "--json"),
    }
    stamps = {"at", "ts", "first_seen", "last_seen", "made", "from", "to"}
    for name, result in outputs.items():
        document = json.loads(result.stdout)
        assert not [key for key in _keys(document) if key.endswith("_")], name
        if name != "decide":  # decide passes its input's own `at` column through as written
            for stamp in _instants(document, stamps):
                assert ISO_Z.match(stamp), (name, stamp)
    inventory = json.loads(outputs["inventory"].stdout)["findings"]
    assert {row["at"] for row in inventory} == {"2024-01-01T00:00:00Z"}  # was "2024-01-01 00:00:00+00:00"
    assert all(round(row["confidence"], 2) == row["confidence"] for row in inventory)
    assert json.loads(outputs["timeline"].stdout)["from"] is None  # was "from_"


def test_csv_output_writes_z_instants(tmp_path: Path) -> None:
    out = tmp_path / "findings.csv"
    ok("screen", "inventory", JAMF, "--at", "2024-01-01T00:00:00Z", "--format", "csv", "-o", out)
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows and {row["at"] for row in rows} == {"2024-01-01T00:00:00Z"}
    timeline = list(csv.DictReader(io.StringIO(ok("timeline", "--app", "tiktok", "--format", "csv").stdout)))
    assert timeline and all(ISO_Z.match(row["at"]) for row in timeline)


def test_parquet_needs_a_file_and_writes_one(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    refused = cli("rules", "list", "--format", "parquet")
    assert refused.exit_code == 2 and "--format parquet needs -o FILE" in refused.stderr
    out = tmp_path / "rules.parquet"
    ok("rules", "list", "--format", "parquet", "-o", out)
    assert pq.read_table(out).num_rows == len(json.loads(ok("rules", "list", "--json").stdout)["instruments"])


# --- Markdown ------------------------------------------------------------------------------------------


def _is_report(text: str) -> None:
    assert text.startswith("## appban ")
    assert re.search(r"^\|(---\|)+$", text, re.MULTILINE), text  # a GitHub-flavoured table
    assert "rulebook `sha256:" in text


def test_markdown_reports(tmp_path: Path, dns_log: Path) -> None:
    (tmp_path / "build.gradle").write_text('implementation "com.tiktok.open.sdk:tiktok-open-sdk-core:2.3.0"\n')
    scan = cli("scan", tmp_path, "--at", "2020-11-20T00:00:00Z", "--format", "markdown")
    assert scan.exit_code == 0, scan.output
    _is_report(scan.stdout)
    assert "tiktok" in scan.stdout and "constituent\\_code\\_use in US at 2020-11-20T00:00:00Z" in scan.stdout
    check = ok(*CHECK, "--at", "2020-11-12T23:59:00-05:00", "--format", "markdown").stdout
    _is_report(check)
    assert "- **verdict**: enjoined" in check and "- **at**: 2020-11-13T04:59:00Z" in check
    for args in (
        ["screen", "inventory", CATALOG],
        ["screen", "network", dns_log, "--role", "hosting"],
        ["decide", TRANSACTIONS],
    ):
        _is_report(ok(*args, "--format", "markdown").stdout)
    timeline = ok("timeline", "--app", "wechat", "--to", "2021-07-01T00:00:00Z", "--format", "markdown").stdout
    _is_report(timeline)
    assert "| 2020-09-20T04:00:00Z | payment\\_processing | not\\_yet\\_effective → enjoined |" in timeline
    payments = cli("screen", "payments", PAYMENTS, "--format", "markdown")
    assert payments.exit_code == 1  # the sample holds an unreadable record, as the exit-code rule says
    _is_report(payments.stdout)


def test_markdown_cells_cannot_break_the_table_or_make_markup() -> None:
    hostile = "a|b\nc <script>*x* [l](u) `c`"
    text = md.table(["name"], [[hostile]])
    body = text.splitlines()[2]
    assert body.count("|") - body.count("\\|") == 2  # the row's own two bars, nothing more
    assert "<script>" not in text and "\n" not in body and "\\*x\\*" in body and "\\[l\\]" in body


# --- help, completion, pipes ---------------------------------------------------------------------------

# typer's labels for Python types (and click's older ones); PATH is left out, as appban names a value so.
PYTHON_TYPES = re.compile(r"<(str|int|float|bool|path|list\[[^>]*\]|datetime)>|\b(TEXT|INTEGER|BOOLEAN|FLOAT)\b")


def test_help_names_values_and_lists_choices() -> None:
    for path, command in _commands():
        text = cli(*path, "--help").stdout
        assert not PYTHON_TYPES.search(text), (path, PYTHON_TYPES.search(text))
        for param in command.params:
            if isinstance(param, TyperOption | TyperArgument) and not getattr(param, "is_flag", False):
                choices = _choices(param)
                if choices:
                    assert "|".join(str(c) for c in choices) in text, (path, param.name)
    check = cli("check", "--help").stdout
    assert "--at" in check and "INSTANT" in check and "--where" in check and "PLACE" in check
    assert "app_store_distribution" in check  # --transaction lists the categories


def _complete(words: str) -> list[str]:
    env = {**os.environ, "_APPBAN_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}  # fmt: skip
    done = subprocess.run([SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_shell_completion_script_and_protocol() -> None:
    script = subprocess.run([SCRIPT, "--show-completion", "bash"], capture_output=True, text=True, timeout=120,
                            check=False)  # fmt: skip
    assert script.returncode == 0 and "_APPBAN_COMPLETE=complete_bash" in script.stdout
    assert "complete -o default -F _appban_completion appban" in script.stdout
    assert _complete("appban scan --format ") == [f.value for f in ScanFormat]
    assert _complete("appban screen network --role c") == ["cdn"]  # a role and its category, offered once
    assert _complete("appban screen network --log-format zeek") == ["zeek-dns", "zeek-ssl", "zeek-http", "zeek"]
    assert _complete("appban check --transaction app_store") == ["app_store_distribution", "app_store_update"]
    assert "check" in _complete("appban ch")
    refused = subprocess.run([SCRIPT, "--show-completion", "tcsh"], capture_output=True, text=True, timeout=120,
                             check=False)  # fmt: skip
    assert refused.returncode == 2 and "one of: bash, zsh, fish" in refused.stderr


def test_a_reader_that_stops_early_ends_appban_quietly() -> None:
    # `| head -c 1` stops after one byte; appban then ends with 0 (all written before the reader left) or
    # 141 (128 + SIGPIPE, what a shell reports for any program stopped so), never with a traceback.
    done = subprocess.run(
        ["bash", "-c", f'"{SCRIPT}" timeline --app tiktok --json | head -c 1 >/dev/null; echo "${{PIPESTATUS[0]}}"'],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip() in {"0", "141"} and done.stderr == "", done.stderr


# --- the acceptance audit's follow-up: errors, help, exports and machine output --------------------------------


def test_a_file_row_without_an_offset_names_the_zone_flag_and_shows_its_value_once(tmp_path: Path) -> None:
    inventory = tmp_path / "naive.csv"
    inventory.write_text("name,last_updated\nTikTok,2020-11-20 10:00\n", encoding="utf-8")
    screened = cli("screen", "inventory", inventory)
    assert "naive.csv:2: last_updated: '2020-11-20 10:00' has no UTC offset" in screened.output
    assert "--tz ZONE" in screened.output and screened.output.count("2020-11-20 10:00") == 1
    questions = tmp_path / "questions.csv"
    questions.write_text("app,transaction,where,at\ntiktok,cdn,US,2020-11-20 10:00\n", encoding="utf-8")
    decided = cli("decide", questions)
    assert decided.exit_code == 2
    assert "questions.csv:2: at: '2020-11-20 10:00' has no UTC offset" in decided.output
    assert "a tz column or with --tz ZONE" in decided.output and decided.output.count("2020-11-20 10:00") == 1
    assert ok("decide", questions, "--tz", "America/New_York", "--json").output  # the fix it names works


def test_log_format_lists_its_choices_once_and_its_error_names_the_flag(dns_log: Path) -> None:
    from appban.network.readers import FAMILIES, make_readers

    # The list --help shows without importing the readers is the readers' own.
    assert list(LOG_FORMATS) == [reader.name for reader in make_readers()]
    assert list(LOG_FAMILIES) == list(FAMILIES)
    helped = " ".join(ok("screen", "network", "--help").output.split())
    assert all(name in helped for name in (*LOG_FORMATS, *LOG_FAMILIES))
    refused = cli("screen", "network", dns_log, "--role", "cdn", "--log-format", "bogus")
    assert refused.exit_code == 2
    message = " ".join(refused.output.split())
    assert message.startswith("appban: error: --log-format: unknown log format 'bogus'")
    assert message.count("generic") == 1
    assert ok("screen", "network", dns_log, "--role", "cdn", "--log-format", "BIND", "--json").output


def test_an_empty_mdm_export_names_the_enjoined_apps_it_left_out(tmp_path: Path) -> None:
    profile = tmp_path / "blocked.mobileconfig"
    args = ["export", "mdm", "--where", "US", "--at", "2020-11-20T00:00:00Z", "--transaction", "cdn"]
    done = ok(*args, "--format", "jamf", "-o", profile)
    stated = "enjoined, not listed (--include-enjoined lists them): TikTok, WeChat"
    assert "0 apps" in done.output and stated in " ".join(done.output.split())
    assert stated in profile.read_text(encoding="utf-8")
    listed = ok(*args, "--format", "jamf", "--include-enjoined", "-o", profile)
    assert "2 apps" in listed.output and "not listed" not in listed.output


@pytest.mark.parametrize("args", [["--help"], ["rules", "--help"], ["export", "mdm", "--help"]])
def test_help_into_a_closed_pipe_ends_with_141(args: list[str]) -> None:
    # The reading end is closed before appban starts, so its first write fails however fast it is.
    reading, writing = os.pipe()
    os.close(reading)
    try:
        done = subprocess.run([SCRIPT, *args], stdout=writing, stderr=subprocess.PIPE, timeout=120, check=False)
    finally:
        os.close(writing)
    assert done.returncode == 141 and done.stderr == b"", done.stderr


def test_check_decides_in_the_us_unless_told_and_says_so() -> None:
    table = ok("check", "--app", "tiktok", "--transaction", "cdn", "--at", "2020-11-12T23:59:00-05:00")
    assert "· in US · at 2020-11-13T04:59:00Z" in table.output
    answer = json.loads(ok("check", "--app", "tiktok", "--transaction", "cdn", "--json").output)
    assert answer["where"] == "US"
    assert json.loads(ok(*CHECK[:-2], "--where", "IN", "--json").output)["where"] == "IN"


def test_instants_in_reasons_and_rules_show_are_iso_with_z(tmp_path: Path) -> None:
    inventory = tmp_path / "old.csv"
    inventory.write_text("name,last_updated\nTikTok,2019-01-01T00:00:00Z\n", encoding="utf-8")
    (finding,) = json.loads(ok("screen", "inventory", inventory, "--json").output)["findings"]
    assert "made 2020-09-18T04:00:00Z)" in finding["reason"] and "+00:00" not in finding["reason"]
    shown = json.loads(ok("rules", "show", "eo-13942", "--json").output)
    assert shown["made"]["instant"] == "2020-08-07T01:57:00Z"  # 21:57 EDT on 6 August
    assert all(ISO_Z.match(reading["instant"]) for reading in shown["made"]["readings"])


def test_parquet_writes_instants_as_timestamps(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ok("timeline", "--app", "tiktok", "--format", "parquet", "-o", tmp_path / "timeline.parquet")
    ok("rules", "list", "--format", "parquet", "-o", tmp_path / "rules.parquet")
    changes = pq.read_table(tmp_path / "timeline.parquet")
    assert pa.types.is_timestamp(changes.schema.field("at").type) and changes.schema.field("at").type.tz == "UTC"
    assert dt.datetime(2020, 9, 18, 4, tzinfo=dt.UTC) in changes.column("at").to_pylist()  # the first listed
    made = pq.read_table(tmp_path / "rules.parquet").schema.field("made").type
    assert pa.types.is_timestamp(made) and made.tz == "UTC"


def test_no_stray_newline_on_standard_error_when_it_is_not_a_terminal(dns_log: Path) -> None:
    done = subprocess.run([SCRIPT, "screen", "network", dns_log, "--role", "cdn", "--json"], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not done.stderr.startswith("\n") and "\n\n" not in done.stderr


def test_intune_summary_counts_and_names_only_the_apps_in_the_file(tmp_path: Path) -> None:
    done = ok("export", "mdm", "--where", "US", "--at", "2025-03-01T00:00:00Z", "--format", "intune",
              "-o", tmp_path / "intune.json")  # fmt: skip
    summary = " ".join(done.output.split())
    assert "1 app government_device in US at 2025-03-01T00:00:00Z: TikTok enforcement:" in summary
    assert "not in this list (no known iOS bundle ID): TikTok Lite" in summary


def test_intune_entries_carry_each_apps_own_publisher(tmp_path: Path) -> None:
    policy = tmp_path / "report.json"
    ok("export", "mdm", "--where", "US", "--at", "2025-03-01T00:00:00Z", "--transaction", "app_store_distribution",
       "--format", "intune", "--intune-mode", "report", "-o", policy)  # fmt: skip
    items = json.loads(policy.read_text(encoding="utf-8"))["compliantAppsList"]
    publishers = {item["name"]: item["publisher"] for item in items}
    assert publishers["TikTok"] == "TikTok Pte. Ltd."
    assert publishers["CapCut"] == "Bytedance Pte. Ltd"  # its Google Play developer account
    assert publishers["Douyin"] == "ByteDance Ltd." != publishers["TikTok"]  # no account of its own listed


def test_counts_take_the_number_of_their_noun(tmp_path: Path) -> None:
    assert [counted(n, "finding") for n in (0, 1, 2, 1500)] == ["0 findings", "1 finding", "2 findings",
                                                                 "1,500 findings"]  # fmt: skip
    inventory = tmp_path / "one.csv"
    inventory.write_text("name,last_updated\nTikTok,2024-01-01T00:00:00Z\n", encoding="utf-8")
    shown = ok("screen", "inventory", inventory).output
    assert re.search(r"^1 finding\b", shown, re.M) and "1 findings" not in shown and "1 row," in shown


@pytest.mark.parametrize(
    "args",
    [
        ["export", "mdm", "--where", "US", "--format", "Intune", "--intune-mode", "REPORT"],
        ["check", "--app", "tiktok", "--transaction", "cdn", "--format", "JSON"],
        ["rules", "list", "--format", "Json"],
    ],
)
def test_choice_values_are_case_insensitive(args: list[str]) -> None:
    ok(*args)


def test_fleet_is_case_insensitive(tmp_path: Path) -> None:
    ok("screen", "inventory", JAMF, "--fleet", "Personal", "--json")

"""Suppressions and baselines applied to `screen inventory`: accepted rows are listed apart with their reason
and left out of the counts; a baseline reports only new rows, known again after rows are added above them."""

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
AT = "2025-01-20T12:00:00Z"
HEADER = "name,bundle_id,country\n"
TIKTOK = "TikTok,com.zhiliaoapp.musically,US\n"
WECHAT = "WeChat,com.tencent.mm,US\n"
ACCEPT_WECHAT = """
    [[ignore]]
    command = "screen.inventory"
    app = "wechat"
    path = "stores/*"
    reason = "China build, APP-9"
    until = 2099-01-01
"""


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)


def _catalog(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "stores" / "catalog.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def _config(tmp_path: Path, text: str) -> None:
    (tmp_path / "appban.toml").write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def _screen(*args: str) -> tuple[int, str, str]:
    done = runner.invoke(app, ["screen", "inventory", "stores/catalog.csv", "--at", AT, *args])
    return done.exit_code, done.stdout, done.stderr


def test_a_suppressed_row_is_listed_with_its_reason_and_left_out_of_the_summary(tmp_path: Path) -> None:
    _catalog(tmp_path, TIKTOK, WECHAT)
    _config(tmp_path, ACCEPT_WECHAT)
    code, stdout, stderr = _screen("--format", "json")
    assert code == 0, stderr
    document = json.loads(stdout)
    assert [f["app"] for f in document["findings"]] == ["tiktok"]
    assert list(document["summary"]["by_app"]) == ["TikTok"]
    (accepted,) = document["suppressed"]
    assert accepted["app"] == "wechat" and accepted["suppressed"] is True
    assert accepted["suppression_reason"] == "China build, APP-9"
    assert accepted["suppression_until"] == "2099-01-01"
    assert accepted["suppression_source"] == "appban.toml:1"
    assert "1 finding suppressed by" in stderr


def test_csv_marks_suppressed_rows_and_table_and_markdown_list_them_apart(tmp_path: Path) -> None:
    _catalog(tmp_path, TIKTOK, WECHAT)
    _config(tmp_path, ACCEPT_WECHAT)
    code, stdout, _ = _screen("--format", "csv")
    assert code == 0
    rows = {row["app"]: row for row in csv.DictReader(io.StringIO(stdout))}
    assert rows["wechat"]["suppressed"] == "true" and rows["wechat"]["suppression_reason"] == "China build, APP-9"
    assert rows["tiktok"]["suppressed"] == "false" and rows["tiktok"]["fingerprint"]
    code, stdout, _ = _screen("--format", "markdown")
    assert code == 0
    findings, suppressed = stdout.split("## Suppressed", 1)
    assert "com.tencent.mm" not in findings and "com.tencent.mm" in suppressed and "China build" in suppressed
    code, stdout, _ = _screen()
    assert "1 finding suppressed by the configuration" in stdout


def test_an_entry_for_another_command_or_past_its_date_suppresses_nothing(tmp_path: Path) -> None:
    _catalog(tmp_path, WECHAT)
    _config(
        tmp_path,
        """
        [[ignore]]
        command = "screen network"
        app = "wechat"
        reason = "hosting only"
        until = 2099-01-01

        [[ignore]]
        app = "wechat"
        reason = "was accepted"
        until = 2020-01-01
        """,
    )
    code, stdout, stderr = _screen("--format", "json")
    assert code == 0
    document = json.loads(stdout)
    assert [f["app"] for f in document["findings"]] == ["wechat"] and document["suppressed"] == []
    assert "appban.toml:7: suppression expired on 2020-01-01" in " ".join(stderr.split())


def test_a_baseline_reports_only_new_rows_even_when_rows_move(tmp_path: Path) -> None:
    _catalog(tmp_path, TIKTOK)
    code, stdout, _ = _screen("--format", "json", "-o", "baseline.json")
    assert code == 0
    _catalog(tmp_path, "Notes,com.apple.notes,US\n", WECHAT, TIKTOK)  # TikTok's row moved down two lines
    code, stdout, stderr = _screen("--format", "json", "--baseline", "baseline.json")
    assert code == 0, stderr
    document = json.loads(stdout)
    assert [f["app"] for f in document["findings"]] == ["wechat"]
    assert document["baseline"]["unchanged"] == 1
    assert "1 finding already in the baseline" in stderr and "warning" not in stderr


def test_a_baseline_that_matches_nothing_is_warned_about(tmp_path: Path) -> None:
    _catalog(tmp_path, TIKTOK)
    assert _screen("--format", "json", "-o", "baseline.json")[0] == 0
    _catalog(tmp_path, WECHAT)
    code, stdout, stderr = _screen("--format", "json", "--baseline", "baseline.json")
    assert code == 0
    assert [f["app"] for f in json.loads(stdout)["findings"]] == ["wechat"]
    assert "none of its 1 finding is in this run" in " ".join(stderr.split())

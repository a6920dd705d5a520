"""Suppressions and baselines on `scan`, told as a CI user meets them: a repository that already uses a
covered SDK records why (a suppression with a reason and a date) or records a baseline, and the gate then
fails only when a new covered SDK is added."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from appban import config
from appban.baseline import Facts
from appban.cli import app
from appban.suppress import Suppression, review
from tests import material

runner = CliRunner()
AT = "2020-11-20T00:00:00Z"
WECHAT = "package app;\nimport com.tencent.mm.opensdk.openapi.IWXAPI;\nclass Share {}\n"
TIKTOK = "package app;\nimport com.tiktok.open.sdk.share.ShareApi;\nclass Clip {}\n"
POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId><artifactId>shop</artifactId><version>1.0</version>
  <dependencies>
    <dependency>
      <groupId>com.tencent.mm.opensdk</groupId><artifactId>wechat-sdk-android</artifactId><version>6.8.0</version>
    </dependency>
  </dependencies>
</project>
"""


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.ENV_VAR, raising=False)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository already using WeChat's OpenSDK, where CI runs appban from the checkout."""
    root = tmp_path / "repo"
    (root / "app" / "src").mkdir(parents=True)
    (root / "app" / "src" / "Share.java").write_text(WECHAT, encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def _scan(*args: str) -> tuple[int, str, str]:
    done = runner.invoke(app, ["scan", ".", "--at", AT, "--fail-on", "any", *args])
    return done.exit_code, done.stdout, done.stderr


def _json(*args: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = _scan("--format", "json", *args)
    return code, json.loads(out), err


def _add_tiktok(root: Path) -> None:
    (root / "app" / "src" / "Clip.java").write_text(TIKTOK, encoding="utf-8")


def _config(root: Path, until: str = "2999-12-31") -> None:
    (root / "appban.toml").write_text(
        textwrap.dedent(
            f"""
            [scan]
            fail-on = "any"

            [[ignore]]
            app = "wechat"
            path = "app/src/*"
            reason = "WeChat share button in the China build; removal tracked in APP-123"
            until = {until}
            """
        ),
        encoding="utf-8",
    )


def test_a_recorded_reason_passes_the_gate_and_a_new_sdk_fails_it(repo: Path) -> None:
    assert _scan()[0] == 1  # the SDK already there crosses the gate
    _config(repo)
    code, document, err = _json()
    assert code == 0, err
    assert document["findings"] == []
    [accepted] = document["suppressed"]  # reported as suppressed, not dropped
    assert accepted["signature"] == "wechat-opensdk-android"
    assert accepted["suppression"]["reason"].startswith("WeChat share button")
    assert accepted["suppression"]["until"] == "2999-12-31"
    assert accepted["suppression"]["source"] == "appban.toml:5"
    assert "1 finding suppressed" in err
    table = _scan()
    assert table[0] == 0 and "1 finding suppressed by" in table[2] and "listed with their reasons" in table[2]
    # The table lists the accepted finding under its own title, with the reason, the date and the entry.
    listed = " ".join(table[1].split())
    assert "1 suppressed by the configuration" in listed and "APP-123" in listed
    assert "2999-12-31" in listed and "appban.toml:5" in listed

    _add_tiktok(repo)
    code, document, err = _json()
    assert code == 1
    assert [f["signature"] for f in document["findings"]] == ["tiktok-opensdk-android"]
    assert [f["signature"] for f in document["suppressed"]] == ["wechat-opensdk-android"]


def test_an_expired_suppression_no_longer_suppresses_and_says_so(repo: Path) -> None:
    _config(repo, until="2000-01-01")
    code, document, err = _json()
    assert code == 1
    assert [f["signature"] for f in document["findings"]] == ["wechat-opensdk-android"]
    assert document["suppressed"] == []
    assert "appban.toml:5: suppression expired on 2000-01-01" in " ".join(err.split())


def test_sarif_keeps_suppressed_results_with_their_justification(repo: Path, tmp_path: Path) -> None:
    _config(repo)
    _add_tiktok(repo)
    code, out, _ = _scan("--format", "sarif")
    assert code == 1
    sarif = json.loads(out)
    schema = material.extract_member(
        material.require("microsoft-jest-sarif-1.0.0-beta.0.tgz"),
        "package/lib/schemas/sarif-2.1.0-rtm.5.json",
        tmp_path,
    )
    jsonschema.validate(sarif, json.loads(schema.read_text(encoding="utf-8")))  # suppressions, baselineState
    results = {r["ruleId"]: r for r in sarif["runs"][0]["results"]}
    assert set(results) == {"wechat-opensdk-android", "tiktok-opensdk-android"}
    [suppression] = results["wechat-opensdk-android"]["suppressions"]
    assert suppression["kind"] == "external" and suppression["status"] == "accepted"
    assert "APP-123" in suppression["justification"]
    assert "suppressions" not in results["tiktok-opensdk-android"]
    assert all(len(r["partialFingerprints"]["appbanFinding/v2"]) == 32 for r in results.values())


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_a_baseline_reports_and_gates_only_what_is_new(repo: Path, tmp_path: Path, fmt: str) -> None:
    baseline = tmp_path / f"baseline.{fmt}"
    assert runner.invoke(app, ["scan", ".", "--at", AT, "--format", fmt, "-o", str(baseline)]).exit_code == 0
    code, document, err = _json("--baseline", str(baseline))
    assert code == 0, err
    assert document["findings"] == [] and document["baseline"] == {"unchanged": 1}
    assert "1 finding already in the baseline" in err

    # Lines added above the import move its line: still the same finding.
    (repo / "app" / "src" / "Share.java").write_text("// header\n\n" + WECHAT, encoding="utf-8")
    assert _json("--baseline", str(baseline))[0] == 0

    _add_tiktok(repo)
    code, document, _ = _json("--baseline", str(baseline))
    assert code == 1
    assert [f["signature"] for f in document["findings"]] == ["tiktok-opensdk-android"]
    code, out, _ = _scan("--format", "sarif", "--baseline", str(baseline))
    [result] = json.loads(out)["runs"][0]["results"]
    assert result["ruleId"] == "tiktok-opensdk-android" and result["baselineState"] == "new"


def test_identity_does_not_depend_on_where_the_checkout_is(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, first, _ = _json()
    moved = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(repo, moved)
    monkeypatch.chdir(moved)  # CI runs from the checkout, wherever the runner put it
    _, again, _ = _json()
    assert [f["fingerprint"] for f in again["findings"]] == [f["fingerprint"] for f in first["findings"]]
    done = runner.invoke(app, ["scan", str(moved.resolve()), "--at", AT, "--format", "json"])
    assert [f["fingerprint"] for f in json.loads(done.stdout)["findings"]] == [
        f["fingerprint"] for f in first["findings"]
    ]


def test_a_package_url_suppresses_that_package(repo: Path) -> None:
    (repo / "app" / "src" / "Share.java").unlink()
    (repo / "pom.xml").write_text(POM, encoding="utf-8")
    (repo / "appban.toml").write_text(
        '[[ignore]]\npackage = "pkg:maven/com.tencent.mm.opensdk/wechat-sdk-android"\n'
        'reason = "vendored for the China build"\nuntil = 2999-12-31\n',
        encoding="utf-8",
    )
    code, document, _ = _json()
    assert code == 0 and [f["signature"] for f in document["suppressed"]] == ["wechat-opensdk-android"]
    (repo / "appban.toml").write_text(
        '[[ignore]]\npackage = "pkg:maven/com.tencent.mm.opensdk/wechat-sdk-android@6.7.0"\n'
        'reason = "only that version"\nuntil = 2999-12-31\n',
        encoding="utf-8",
    )
    assert _json()[0] == 1  # 6.8.0 is pinned: another version is not accepted


@pytest.mark.parametrize(
    ("content", "word"),
    [
        ("not json", "not JSON"),
        ('{"something": []}', "neither"),
        ('{"findings": [{"signature": "x"}]}', "fingerprint"),
        ('{"runs": [{"results": [{"ruleId": "x", "partialFingerprints": {}}]}]}', "appbanFinding/v2"),
    ],
)
def test_a_baseline_that_cannot_be_used_is_refused(repo: Path, tmp_path: Path, content: str, word: str) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(content, encoding="utf-8")
    code, _, err = _scan("--baseline", str(baseline))
    assert code == 2 and word in err and "baseline.json" in err
    assert runner.invoke(app, ["scan", ".", "--baseline", str(tmp_path / "missing.json")]).exit_code == 2


def test_review_orders_suppression_before_the_baseline() -> None:
    here = Path.cwd()
    facts = [
        Facts("scan", f"src/{n}.java", "wechat", "wechat-opensdk-android", origin=(here / f"src/{n}.java").as_posix())
        for n in "abc"
    ]
    entry = Suppression("accepted", dt.date(2030, 1, 1), "appban.toml:3", {"path": "src/a.java"}, here)
    outcome = review(facts, lambda f: f, [entry], {facts[0].fingerprint, facts[1].fingerprint}, dt.date(2029, 1, 1))
    assert [f.path for f, _ in outcome.suppressed] == ["src/a.java"]  # listed although the baseline had it
    assert outcome.unchanged == 1 and [f.path for f in outcome.active] == ["src/c.java"]
    late = review(facts, lambda f: f, [entry], None, dt.date(2030, 1, 2))
    assert not late.suppressed and len(late.active) == 3 and "expired on 2030-01-01" in late.warnings[0]
    assert review(facts, lambda f: f, [entry], None, dt.date(2030, 1, 1)).suppressed  # through its day


def test_markdown_lists_suppressed_findings_and_expired_entries(repo: Path) -> None:
    _config(repo)
    code, out, _ = _scan("--format", "markdown")
    assert code == 0
    suppressed = out.split("### Suppressed", 1)[1]
    assert "wechat-opensdk-android" in suppressed and "APP-123" in suppressed and "appban.toml:5" in suppressed
    _config(repo, until="2000-01-01")
    code, out, _ = _scan("--format", "markdown")
    assert code == 1
    assert "### Suppressed" not in out
    warnings = out.split("### Warnings", 1)[1]
    assert "appban.toml:5: suppression expired on 2000-01-01" in " ".join(warnings.split())


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_hold_every_finding_with_its_suppression(repo: Path, tmp_path: Path, fmt: str) -> None:
    import csv
    import io

    import pyarrow.parquet as pq

    _config(repo)
    _add_tiktok(repo)
    target = tmp_path / f"findings.{fmt}"
    code, _, err = _scan("--format", fmt, "-o", str(target))
    assert code == 1, err  # the TikTok SDK is not accepted
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    else:
        rows = [{k: "" if v is None else str(v) for k, v in row.items()} for row in pq.read_table(target).to_pylist()]
    by_signature = {row["signature"]: row for row in rows}
    assert set(by_signature) == {"wechat-opensdk-android", "tiktok-opensdk-android"}
    wechat, tiktok = by_signature["wechat-opensdk-android"], by_signature["tiktok-opensdk-android"]
    assert wechat["suppressed"] in {"true", "True"} and "APP-123" in wechat["suppression_reason"]
    assert wechat["suppression_until"] == "2999-12-31" and wechat["suppression_source"] == "appban.toml:5"
    assert tiktok["suppressed"] in {"false", "False"} and tiktok["suppression_reason"] == ""
    assert tiktok["file"] == "app/src/Clip.java" and tiktok["at"] == AT and len(tiktok["fingerprint"]) == 32
    assert "constituent_code_use=" in tiktok["verdicts"]
    assert runner.invoke(app, ["scan", ".", "--format", "parquet"]).exit_code == 2  # binary: needs -o


def _git_init(folder: Path) -> None:
    import subprocess

    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    subprocess.run([git, "init", "-q", str(folder)], check=True)


@pytest.mark.parametrize("around", ["nothing", "git", "config"])
def test_a_baseline_matches_from_the_parent_and_from_a_subfolder(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, around: str
) -> None:
    """Recorded in the repository, the baseline still matches when appban runs from the parent folder or from
    a subfolder: paths are taken relative to the configuration's folder, the git top level or the scan root,
    not to the folder appban happens to run in."""
    if around == "git":
        _git_init(repo)
    elif around == "config":
        (repo / "appban.toml").write_text('[scan]\nwhere = "US"\n', encoding="utf-8")
    baseline = repo / "appban-baseline.json"
    assert runner.invoke(app, ["scan", ".", "--at", AT, "--format", "json", "-o", str(baseline)]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    from_parent = runner.invoke(app, ["scan", "repo", "--at", AT, "--fail-on", "any", "--baseline", str(baseline)])
    assert from_parent.exit_code == 0, from_parent.output
    assert "1 finding already in the baseline" in from_parent.stderr
    monkeypatch.chdir(repo / "app")
    below = ".." if around == "nothing" else "."  # a scan root above the file; git and config reach up
    from_below = runner.invoke(app, ["scan", below, "--at", AT, "--fail-on", "any", "--baseline", str(baseline)])
    assert from_below.exit_code == 0, from_below.output
    assert "warning" not in from_below.stderr


def test_a_baseline_that_matches_nothing_is_warned_about(repo: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    assert runner.invoke(app, ["scan", ".", "--at", AT, "--format", "json", "-o", str(baseline)]).exit_code == 0
    (repo / "app" / "src" / "Share.java").rename(repo / "app" / "Share.java")  # same SDK, another file
    code, _, err = _scan("--baseline", str(baseline))
    assert code == 1
    message = " ".join(err.split())
    assert "none of its 1 finding is in this run" in message and "relative to the scan root" in message
    (repo / "app" / "Share.java").unlink()
    code, _, err = _scan("--baseline", str(baseline))  # nothing found at all: good news, no warning
    assert code == 0 and "warning" not in err

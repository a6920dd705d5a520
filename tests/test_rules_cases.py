"""`appban rules test`: questions with known answers, asked of a knowledge root (appban.knowledge.cases)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appban.cli import app
from appban.knowledge.cases import CasesError, read_cases, run_cases
from appban.knowledge.layout import PACKAGED, PARTS, KnowledgeRoot

runner = CliRunner()


def knowledge_copy(folder: Path) -> KnowledgeRoot:
    """The packaged knowledge laid out as a bundle holds it, in `folder`, to be edited."""
    for part in PARTS:
        source, target = part.packaged_path(), folder / part.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, target)
    return KnowledgeRoot(folder)


def test_the_packaged_cases_all_pass_and_each_names_its_source() -> None:
    report = run_cases(PACKAGED)
    assert len(report.results) >= 30
    assert report.failed == []
    assert all(result.source.strip() for result in report.results)
    names = {result.name for result in report.results}
    assert {"wechat-payments-enjoined-2020-09-21", "tiktok-app-store-2020-09-20-delayed"} <= names
    enjoined = next(r for r in report.results if r.name == "wechat-payments-enjoined-2020-09-21")
    assert enjoined.got["verdict"] == "enjoined" and enjoined.got["as_written"] == "prohibited"
    assert "court-us-wechat-users-alliance-2020-09-19" in enjoined.got["instruments"]


def test_a_changed_rulebook_fails_the_cases_it_changes_and_the_command_exits_1(tmp_path: Path) -> None:
    root = knowledge_copy(tmp_path / "knowledge")
    # Without the WeChat users' injunction, WeChat's items are in force from 20 September 2020.
    (tmp_path / "knowledge/rulebook/instruments/court-us-wechat-users-alliance-2020-09-19.yaml").unlink()
    report = run_cases(root)
    failed = {result.name: result for result in report.failed}
    assert "wechat-payments-enjoined-2020-09-21" in failed
    assert "verdict: expected enjoined, got prohibited" in failed["wechat-payments-enjoined-2020-09-21"].differences
    assert "tiktok-app-store-2020-09-28-enjoined" not in failed  # TikTok's injunction is another court's

    result = runner.invoke(app, ["rules", "test", "--rules", str(tmp_path / "knowledge")])
    assert result.exit_code == 1, result.output
    assert "FAIL wechat-payments-enjoined-2020-09-21: verdict: expected enjoined, got prohibited" in result.output
    assert "PASS tiktok-app-store-2020-09-28-enjoined" in result.output
    assert f"{len(report.failed)} failed" in result.output

    as_json = runner.invoke(app, ["rules", "test", "--rules", str(tmp_path / "knowledge"), "--json"])
    assert as_json.exit_code == 1
    document = json.loads(as_json.stdout)
    assert document["summary"]["failed"] == len(report.failed)
    assert document["rulebook_version"] == report.rulebook_version != run_cases(PACKAGED).rulebook_version


def test_a_cases_file_given_is_asked_of_the_packaged_knowledge_in_markdown(tmp_path: Path) -> None:
    cases = tmp_path / "mine.yaml"
    cases.write_text(
        "cases:\n"
        "  - name: right\n    source: README\n    app: tiktok\n    transaction: app_store_distribution\n"
        "    where: US\n    at: '2020-09-28T00:30:00-04:00'\n    expect: {verdict: enjoined, as_written: prohibited}\n"
        "  - name: wrong\n    source: a mistake\n    app: tiktok\n    transaction: app_store_distribution\n"
        "    where: US\n    at: '2020-09-28T00:30:00-04:00'\n    expect: {verdict: prohibited}\n"
        "  - name: unknown-app\n    source: a typo\n    app: no-such-app\n    transaction: cdn\n"
        "    where: US\n    at: '2020-09-28T00:30:00-04:00'\n    expect: {verdict: prohibited}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["rules", "test", str(cases), "--rules", "packaged", "--format", "markdown"])
    assert result.exit_code == 1, result.output
    assert "| PASS | right |" in result.stdout
    assert "| **FAIL** | wrong |" in result.stdout and "verdict: expected prohibited, got enjoined" in result.stdout
    unknown = next(r for r in run_cases(PACKAGED, cases).results if r.name == "unknown-app")
    assert not unknown.passed and unknown.error is not None and "no-such-app" in unknown.error


ONE_LINE_CASE = (
    "  - {name: a, source: s, app: x, transaction: cdn, where: US, at: '2020', expect: {verdict: revoked}}\n"
)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("cases:\n  - name: a\n    source: s\n    app: tiktok\n    transaction: teleport\n    where: US\n"
         "    at: '2020-01-01T00:00:00Z'\n    expect: {verdict: prohibited}\n", ":5: cases[0].transaction:"),
        ("cases:\n  - name: a\n    source: s\n    app: tiktok\n    transaction: cdn\n    where: US\n"
         "    at: '2020-01-01T00:00:00Z'\n    expect: {verdict: banned}\n", ":8: cases[0].expect.verdict:"),
        ("cases:\n" + ONE_LINE_CASE * 2,
         ":3: cases[1].name: the name 'a' is already used by case 0"),
        ("cases: [\n", ": not valid YAML"),
    ],
)  # fmt: skip
def test_a_bad_cases_file_names_its_line_and_field_and_exits_2(tmp_path: Path, text: str, where: str) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(text, encoding="utf-8")
    with pytest.raises(CasesError) as caught:
        read_cases(cases)
    assert where in str(caught.value)
    result = runner.invoke(app, ["rules", "test", str(cases)])
    assert result.exit_code == 2
    assert "cases.yaml" in result.output


def test_a_missing_cases_file_or_knowledge_exits_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["rules", "test", str(tmp_path / "none.yaml")]).exit_code == 2
    assert runner.invoke(app, ["rules", "test", "--rules", str(tmp_path / "nowhere")]).exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "cases.yaml").write_text((PACKAGED.path("cases.yaml")).read_text(encoding="utf-8"), encoding="utf-8")
    result = runner.invoke(app, ["rules", "test", "--rules", str(empty)])
    assert result.exit_code == 2 and "rulebook" in result.output


def test_the_cases_are_a_part_of_their_own_beside_the_rulebook() -> None:
    """Parts do not overlap (each file belongs to one part), and the rulebook's version does not cover them."""
    names = [part.name for part in PARTS]
    assert "cases.yaml" in names
    assert not any(a != b and a.startswith(b.rstrip("/") + "/") for a in names for b in names)
    assert PACKAGED.path("cases.yaml").is_file()
    assert KnowledgeRoot(Path("k")).path("cases.yaml") == Path("k/cases.yaml")

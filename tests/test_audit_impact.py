"""`appban audit impact --rules B`: recorded answers decided again under another rulebook.

Decisions, a batch and a screening run are recorded through the real service into a real store (SQLite, and
PostgreSQL where the test cluster runs); B is the packaged knowledge with one instrument added, an order that
revokes the government-device ban from 1 March 2026 (00:00 Eastern). Worked out by hand from the rulebook:
TikTok (and TikTok Lite) on a government device in the US is prohibited, enforceable, from 2023 on; under B it
is revoked (as written too, enforcement not applicable) at instants from 2026-03-01T05:00:00Z, and unchanged
before them (the order did not exist yet). Nothing else in the store is about a government device.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from appban.cli import app
from appban.knowledge.layout import PACKAGED
from appban.rulebook.loader import load_rulebook
from appban.store import AuditStore
from appban.store.impact import NOT_REPRODUCED, SCREEN_RECORD, impact
from tests.test_service import auth, client_for, wait_for

REPO = Path(__file__).resolve().parents[1]
LIFTING_ORDER = """\
id: test-lifting-order-2026
kind: executive_order
title: A test order revoking the government-device ban
short_title: Test lifting order
issued_by: President of the United States
jurisdiction: US
made:
  event: signed
  date: 2026-03-01
  zone: America/New_York
citation:
  cite: Test order (not real law)
  url: https://example.org/test-lifting-order
summary: Revokes OMB M-23-13 and the No TikTok on Government Devices Act from 1 March 2026.
changes:
  - id: test-lifting-order-revocation
    kind: revoke
    label: Revocation of the government-device ban
    targets: [omb-m-23-13, no-tiktok-on-government-devices-act-2022]
    from:
      date: 2026-03-01
      zone: America/New_York
"""
GOV = {"transaction": "government_device", "where": "US"}
FLIP = {
    "verdict": {"recorded": "prohibited", "under_b": "revoked"},
    "as_written": {"recorded": "prohibited", "under_b": "revoked"},
    "enforcement": {"recorded": "enforceable", "under_b": "not_applicable"},
}


def knowledge_copy(tmp_path: Path, extra: str | None) -> Path:
    """A knowledge directory laid out as a bundle: the packaged rulebook, with `extra` as a new instrument."""
    root = tmp_path / "knowledge-b"
    shutil.copytree(PACKAGED.path("rulebook"), root / "rulebook")
    if extra is not None:
        (root / "rulebook" / "instruments" / "test-lifting-order-2026.yaml").write_text(extra)
    return root


@pytest.fixture(params=["sqlite", "postgresql"])
def recorded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A store holding decisions, a batch and a government fleet's inventory run, recorded by the service;
    and the ids the service gave them."""
    url = f"sqlite:///{tmp_path / 'audit.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = AuditStore(url)
    secret = store.create_token(name="tester", scope="write")[1]
    store.close()
    ids: dict[str, Any] = {}
    with client_for(url, tmp_path) as api:
        headers = auth(secret)
        for name, question in {
            "after": {"app": "tiktok", **GOV, "at": "2026-06-01T00:00:00Z"},
            "before": {"app": "tiktok", **GOV, "at": "2025-06-01T00:00:00Z"},
            "just_before": {"app": "TikTok", **GOV, "at": "2026-03-01T04:59:59Z"},
            "wechat": {"app": "wechat", "transaction": "payment_processing", "where": "US",
                       "at": "2020-10-15T12:00:00Z"},
        }.items():  # fmt: skip
            answer = api.post("/v1/decide", json=question, headers=headers)
            assert answer.status_code == 200, answer.text
            ids[name] = answer.json()["decision_id"]
        rows = [
            {"app": "tiktok", **GOV, "at": "2024-01-01T00:00:00Z"},
            {"app": "tiktok", **GOV, "at": "2026-07-01T00:00:00Z"},
            {"app": "TikTok", **GOV, "at": "2027-01-01T00:00:00+01:00"},
        ]
        body = "".join(json.dumps(row) + "\n" for row in rows).encode()
        batch = api.post("/v1/decide/batch", content=body, headers=headers | {"content-type": "application/x-ndjson"})
        assert batch.status_code == 200, batch.text
        ids["batch"] = batch.headers["x-appban-batch"]
        sample = REPO / "examples/inventory/jamf-mobile-device-apps.csv"
        started = api.post(
            "/v1/screens/inventory",
            params={"fleet": "government", "at": "2026-06-01T00:00:00Z"},
            files={"file": (sample.name, sample.read_bytes())},
            headers=headers,
        )
        assert started.status_code == 202, started.text
        run = wait_for(api, started.json()["id"], headers, limit=1000)
        assert run["status"] == "done", run["error"]
        ids["run"] = run["id"]
        ids["findings"] = run["findings"]
    yield url, ids


def test_impact_names_exactly_the_answers_b_changes(recorded: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, ids = recorded
    book = load_rulebook(knowledge_copy(tmp_path, LIFTING_ORDER) / "rulebook")
    with AuditStore(url) as store:
        report = impact(store, book, knowledge="B", examples=10, page=2)
    document = report.to_json_dict()
    # The inventory's findings: TikTok's three devices and TikTok Lite's one are prohibited; the rest are not.
    findings = ids["findings"]
    tiktok = [f"{ids['run']}/{i}" for i, f in enumerate(findings) if f["app"] == "tiktok"]
    lite = [f"{ids['run']}/{i}" for i, f in enumerate(findings) if f["app"] == "tiktok_lite"]
    assert len(tiktok) == 3 and len(lite) == 1
    assert all(f["verdict"] == "prohibited" for f in findings if f["app"] in ("tiktok", "tiktok_lite"))
    groups = {(g["app"], g["category"]): g for g in document["groups"]}
    assert set(groups) == {("tiktok", "government_device"), ("tiktok_lite", "government_device")}
    flipped = {e["id"] for e in groups["tiktok", "government_device"]["examples"]}
    # One decision at 2026-06-01, batch rows 1 and 2 (2026-07-01, 2026-12-31T23:00Z), and three findings.
    assert flipped == {ids["after"], f"{ids['batch']}#1", f"{ids['batch']}#2", *tiktok}
    assert groups["tiktok", "government_device"]["count"] == 6
    assert groups["tiktok", "government_device"]["change"] == FLIP
    assert groups["tiktok_lite", "government_device"] == {
        "app": "tiktok_lite", "category": "government_device", "change": FLIP, "count": 1,
        "examples": [{"id": lite[0], "kind": "finding", "at": "2026-06-01T00:00:00Z", "where": "US",
                      "recorded_version": load_rulebook().version}],
    }  # fmt: skip
    assert document["changed"] == 7
    # Every answer was compared: 4 decisions, 3 batch rows and every finding; the screen record is set aside.
    assert document["answers"] == 4 + 3 + len(findings)
    assert document["records"] == {"decisions": 6, "findings": len(findings)}
    assert document["not_redecided"] == 0 and document["unverified"] == 0
    assert document["skipped_by_reason"] == {SCREEN_RECORD: 1}
    assert document["most_held"] <= 2 + 1  # a page of two, and the last decision's own questions


def test_identical_knowledge_changes_nothing(recorded: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, ids = recorded
    book = load_rulebook(knowledge_copy(tmp_path, None) / "rulebook")
    assert book.version == load_rulebook().version
    with AuditStore(url) as store:
        report = impact(store, book)
    assert report.changed == 0 and report.groups == {} and report.answers == 7 + len(ids["findings"])


def test_cli_reports_in_every_format(recorded: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, _ = recorded
    root = knowledge_copy(tmp_path, LIFTING_ORDER)
    runner = CliRunner()
    base = ["audit", "impact", "--rules", str(root), "--db", url]
    result = runner.invoke(app, [*base, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["changed"] == 7 and document["knowledge"] == str(root)
    result = runner.invoke(app, [*base, "--format", "csv", "--examples", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "app,category,verdict_recorded,verdict_under_b,change,count,examples"
    assert lines[1].startswith("tiktok,government_device,prohibited,revoked,") and ",6," in lines[1]
    assert len(lines) == 3
    result = runner.invoke(app, [*base, "--format", "markdown"])
    assert result.exit_code == 0 and result.stdout.startswith("## appban audit impact")
    assert "prohibited → revoked" in result.stdout
    result = runner.invoke(app, [*base, "--since", "2999-01-01T00:00:00Z", "--json"])
    assert json.loads(result.stdout)["answers"] == 0
    result = runner.invoke(app, [*base, "--format", "table"])
    assert result.exit_code == 0 and "revoked" in result.stdout
    # Knowledge that cannot be read, or the same as packaged.
    missing = runner.invoke(app, ["audit", "impact", "--rules", str(tmp_path / "nowhere"), "--db", url])
    assert missing.exit_code == 2 and "--rules" in missing.output
    same = runner.invoke(app, ["audit", "impact", "--rules", "packaged", "--db", url, "--json"])
    assert same.exit_code == 0 and json.loads(same.stdout)["changed"] == 0


def test_a_record_that_does_not_reproduce_is_set_aside(tmp_path: Path) -> None:
    """A recorded answer its own question no longer gives (here: written with a verdict the question does not
    give) is counted apart, not reported as a change B would make, and the command exits 1."""
    book = load_rulebook()
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with AuditStore(url) as store:
        question = {"app": "tiktok", **GOV, "at": "2026-06-01T00:00:00Z", "facts": {}, "tz": None}
        answer = {"verdict": "not_prohibited", "as_written": "not_prohibited", "enforcement": "not_applicable"}
        store.record_decision(kind="decide", input=question, result=answer, rulebook=book, instant=None, caller="t")
        store.record_decision(kind="decide", input={"rows": 3}, result={}, rulebook=book, instant=None, caller="t")
        b = load_rulebook(knowledge_copy(tmp_path, LIFTING_ORDER) / "rulebook")
        report = impact(store, b)
    assert report.changed == 0 and report.answers == 0
    assert dict(report.not_redecided) == {NOT_REPRODUCED: 1, "no question recorded (needs app, transaction, "
                                          "where, at)": 1}  # fmt: skip
    result = CliRunner().invoke(app, ["audit", "impact", "--rules", str(tmp_path / "knowledge-b"), "--db", url])
    assert result.exit_code == 1


def test_streams_a_larger_store_in_pages(tmp_path: Path) -> None:
    """5,000 recorded answers decided a page of 250 at a time: no more than a page is held at once."""
    book = load_rulebook()
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    from appban.engine.decide import decide
    from appban.store import DecisionInput

    answers = {
        at: decide("tiktok", "government_device", "US", at, rulebook=book).to_json_dict()
        for at in ("2025-06-01T00:00:00Z", "2026-06-01T00:00:00Z")
    }
    with AuditStore(url) as store:
        rows = [
            DecisionInput({"app": "tiktok", **GOV, "at": at, "facts": {}, "tz": None}, answers[at])
            for i in range(2500)
            for at in answers
        ]
        for start in range(0, len(rows), 1000):
            store.record_decisions(rows[start : start + 1000], rulebook=book, caller="t", kind="decide")
        b = load_rulebook(knowledge_copy(tmp_path, LIFTING_ORDER) / "rulebook")
        seen: list[int] = []
        report = impact(store, b, page=250, progress=seen.append)
    assert report.answers == 5000 and report.changed == 2500
    assert report.most_held == 250
    # Twenty pages of decisions, each reported as it was settled, then the (empty) findings.
    assert seen == [*range(250, 5001, 250), 5000]


def test_service_route_reports_under_the_packaged_knowledge(
    recorded: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    """GET /v1/audit/impact: read-scoped like the other audit routes; B named, never a server path."""
    url, ids = recorded
    store = AuditStore(url)
    reader = store.create_token(name="reader", scope="read")[1]
    store.close()
    with client_for(url, tmp_path) as api:
        assert api.get("/v1/audit/impact", params={"rules": "packaged"}).status_code == 401
        answer = api.get("/v1/audit/impact", params={"rules": "packaged", "examples": 1}, headers=auth(reader))
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert document["changed"] == 0 and document["answers"] == 7 + len(ids["findings"])
        assert document["rulebook_version"] == api.get("/healthz").json()["rulebook_version"]
        elsewhere = api.get("/v1/audit/impact", params={"rules": str(tmp_path)}, headers=auth(reader))
        assert elsewhere.status_code == 422
        late = api.get("/v1/audit/impact", params={"rules": "packaged", "since": "2999-01-01T00:00:00Z"},
                       headers=auth(reader))  # fmt: skip
        assert late.status_code == 200 and late.json()["answers"] == 0
        bad = api.get("/v1/audit/impact", params={"rules": "packaged", "until": "yesterday"}, headers=auth(reader))
        assert bad.status_code == 400

"""The API follows the CLI's `now` (issue #16): `/v1/decide` takes `at` as `now` or not at all, the screens and
the timeline take `now` too, the answer states the instant that stood for it, and the audit record keeps that
instant, so a replay decides the same instant again, never a later now. A batch's rows keep their own instants.

The service's clock is set to a fixed instant where a test needs one (`Desk.clock`): the answers under it
differ from today's, so an answer or a replay that used the real now would show."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appban.engine.instants import iso
from appban.screen.jobs import means_now, with_now_resolved
from tests import test_service
from tests.test_service import QUESTION, auth, error_of, wait_for

db_url = test_service.db_url
tokens = test_service.tokens
REPO = Path(__file__).resolve().parents[1]
INTUNE = REPO / "examples" / "inventory" / "intune-discovered-apps.csv"  # no dates of its own
# WeChat payments in the US on 15 October 2020: enjoined (the order of 18 September, held up by a court).
THEN = dt.datetime(2020, 10, 15, 12, tzinfo=dt.UTC)
ASKED = {key: value for key, value in QUESTION.items() if key != "at"}


@pytest.fixture
def api(db_url: str, tmp_path: Path, tokens: dict[str, str]) -> Iterator[TestClient]:
    """The service with its clock stopped at THEN."""
    with test_service.client_for(db_url, tmp_path) as client:
        client.app.state.desk.clock = lambda: THEN  # type: ignore[attr-defined]
        yield client


def record_of(client: TestClient, decision_id: str, headers: dict[str, str]) -> dict[str, Any]:
    records = client.get("/v1/audit", params={"limit": 1000}, headers=headers).json()
    found: dict[str, Any] = next(record for record in records if record["id"] == decision_id)
    return found


@pytest.mark.parametrize(
    "body",
    [ASKED, ASKED | {"at": None}, ASKED | {"at": "now"}, ASKED | {"at": " NOW "}],
    ids=["not-given", "null", "now", "now-any-case"],
)
def test_decide_at_now_states_records_and_replays_the_instant(
    api: TestClient, tokens: dict[str, str], body: dict[str, Any]
) -> None:
    headers = auth(tokens["read"])
    answer = api.post("/v1/decide", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    decision = answer.json()
    assert decision["at"] == "2020-10-15T12:00:00Z" and decision["verdict"] == "enjoined"

    record = record_of(api, decision["decision_id"], headers)
    assert record["instant"] == "2020-10-15T12:00:00Z"
    assert record["input"]["at"] == "2020-10-15T12:00:00Z"
    assert record["input"]["at_given"] == body.get("at")  # what was sent: "now", or nothing
    assert record["overview"]["at"] == "2020-10-15T12:00:00Z"

    # The replay decides the recorded instant: the clock has moved on to a time WeChat's orders were revoked.
    api.app.state.desk.clock = lambda: dt.datetime(2022, 1, 1, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    assert api.post("/v1/decide", json=body, headers=headers).json()["verdict"] != "enjoined"
    replay = api.get(f"/v1/audit/{decision['decision_id']}/replay", headers=headers)
    assert replay.status_code == 200, replay.text
    done = replay.json()
    assert done["identical"] is True and done["differences"] == []
    assert done["replayed"]["at"] == "2020-10-15T12:00:00Z" and done["replayed"]["verdict"] == "enjoined"


def test_decide_at_an_instant_is_recorded_as_it_was_sent(api: TestClient, tokens: dict[str, str]) -> None:
    headers = auth(tokens["read"])
    sent = ASKED | {"at": "2020-10-15T08:00:00", "tz": "America/New_York"}
    decision = api.post("/v1/decide", json=sent, headers=headers).json()
    assert decision["at"] == "2020-10-15T12:00:00Z"
    record = record_of(api, decision["decision_id"], headers)
    assert record["input"]["at"] == "2020-10-15T08:00:00" and "at_given" not in record["input"]


def test_decide_on_the_real_clock_states_the_instant_it_used(
    db_url: str, tmp_path: Path, tokens: dict[str, str]
) -> None:
    with test_service.client_for(db_url, tmp_path) as client:
        before = dt.datetime.now(dt.UTC).replace(microsecond=0)
        decision = client.post("/v1/decide", json=ASKED | {"at": "now"}, headers=auth(tokens["read"])).json()
        after = dt.datetime.now(dt.UTC)
    stated = dt.datetime.fromisoformat(decision["at"].replace("Z", "+00:00"))
    assert decision["at"].endswith("Z") and before <= stated <= after


def test_a_bad_at_is_still_refused_naming_the_field(api: TestClient, tokens: dict[str, str]) -> None:
    for at in ("nowish", "tomorrow", "2020-10-15T12:00:00"):
        answer = api.post("/v1/decide", json=ASKED | {"at": at}, headers=auth(tokens["read"]))
        assert answer.status_code == 400 and error_of(answer).startswith("at:"), answer.text


def test_the_openapi_document_says_at_may_be_now_or_left_out(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()["components"]["schemas"]["DecideRequest"]
    assert "at" not in schema["required"]
    assert "now" in schema["properties"]["at"]["description"]
    upload = api.get("/openapi.json").json()["paths"]["/v1/screens/{kind}"]["post"]
    (at,) = [parameter for parameter in upload["parameters"] if parameter["name"] == "at"]
    assert "or now" in at["description"]


def test_a_batch_row_needs_an_instant_of_its_own(api: TestClient, tokens: dict[str, str]) -> None:
    """A batch holds transactions made at their own times (as a file `appban decide` reads): no row is `now`."""
    headers = auth(tokens["read"]) | {"content-type": "application/x-ndjson"}
    for row, named in ((ASKED | {"at": "now"}, "line 1: at:"), (ASKED, "at"), (ASKED | {"at": None}, "line 1: at:")):
        answer = api.post("/v1/decide/batch", content=json.dumps(row) + "\n", headers=headers)
        assert answer.status_code == 400 and named in error_of(answer), answer.text


def test_a_screen_at_now_runs_and_is_recorded_at_the_instant(api: TestClient, tokens: dict[str, str]) -> None:
    headers = auth(tokens["write"])
    with INTUNE.open("rb") as handle:
        started = api.post(
            "/v1/screens/inventory",
            params={"at": "now", "fleet": "government"},
            files={"file": (INTUNE.name, handle)},
            headers=headers,
        )
    assert started.status_code == 202, started.text
    assert started.json()["options"] == {"at": "2020-10-15T12:00:00Z", "fleet": "government"}
    run = wait_for(api, started.json()["id"], headers, limit=1000)
    assert run["status"] == "done", run
    assert run["options"]["at"] == "2020-10-15T12:00:00Z"
    tiktok = [finding for finding in run["findings"] if finding["app"] == "tiktok"]
    assert tiktok and {finding["at"] for finding in tiktok} == {"2020-10-15T12:00:00Z"}
    (record,) = [r for r in api.get("/v1/audit", headers=headers).json() if r["run_id"] == run["id"]]
    assert record["instant"] == "2020-10-15T12:00:00Z"
    assert record["input"]["options"]["at"] == "2020-10-15T12:00:00Z"


def test_a_code_screen_takes_now_too(api: TestClient, tokens: dict[str, str]) -> None:
    headers = auth(tokens["write"])
    package = b'{"name": "shop", "version": "1.0.0", "dependencies": {"wechat-api": "1.35.1"}}\n'
    started = api.post("/v1/screens/code", params={"at": "Now"}, files={"file": ("package.json", package)},
                       headers=headers)  # fmt: skip
    assert started.status_code == 202, started.text
    run = wait_for(api, started.json()["id"], headers)
    assert run["status"] == "done", run
    assert run["summary"]["at"] == "2020-10-15T12:00:00Z" and run["findings_total"] == 1


def test_the_timeline_takes_now(api: TestClient, tokens: dict[str, str]) -> None:
    answer = api.get("/v1/timeline", params={"app": "tiktok", "from": "now"}, headers=auth(tokens["read"]))
    assert answer.status_code == 200, answer.text
    timeline = answer.json()
    assert timeline["from"] == "2020-10-15T12:00:00Z"
    assert timeline["changes"] and all(change["at"] >= "2020-10-15T12:00:00Z" for change in timeline["changes"])


def test_now_is_resolved_once_into_the_options() -> None:
    assert means_now("now") and means_now(" NoW ") and not means_now("nowhere") and not means_now(None)
    resolved = with_now_resolved({"at": "now", "where": "US"}, THEN)
    assert resolved == {"at": iso(THEN), "where": "US"}
    assert with_now_resolved({"at": "2020-01-01T00:00:00Z"}, THEN) == {"at": "2020-01-01T00:00:00Z"}

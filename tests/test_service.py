"""The HTTP API over a real audit store (SQLite and PostgreSQL): decisions, batches, rules, screening runs,
tokens, limits and errors. The app runs in-process through its ASGI interface, lifespan included."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from fastapi.testclient import TestClient

from appban.service.app import create_app
from appban.service.settings import ServiceSettings
from appban.store import AuditStore

REPO = Path(__file__).resolve().parents[1]
QUESTION = {"app": "wechat", "transaction": "payment_processing", "where": "US", "at": "2020-10-15T12:00:00Z"}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def tokens(db_url: str) -> dict[str, str]:
    store = AuditStore(db_url)
    try:
        return {scope: store.create_token(name=f"{scope}-token", scope=scope)[1] for scope in ("read", "write")}
    finally:
        store.close()


def client_for(db_url: str, tmp_path: Path, **settings: Any) -> TestClient:
    options = ServiceSettings(db_url=db_url, upload_dir=tmp_path, **settings)
    return TestClient(create_app(options), raise_server_exceptions=False)


@pytest.fixture
def api(db_url: str, tmp_path: Path, tokens: dict[str, str]) -> Iterator[TestClient]:
    with client_for(db_url, tmp_path) as client:
        yield client


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def error_of(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == response.status_code
    message: str = body["error"]["message"]
    return message


# ------------------------------------------------------------------------------------------------
# Decisions and the audit trail


def test_decide_is_answered_recorded_and_replayed(api: TestClient, tokens: dict[str, str]) -> None:
    answer = api.post("/v1/decide", json=QUESTION, headers=auth(tokens["read"]))
    assert answer.status_code == 200, answer.text
    decision = answer.json()
    assert decision["verdict"] == "enjoined" and decision["as_written"] == "prohibited"
    assert decision["rulebook_version"] == api.get("/healthz").json()["rulebook_version"]
    records = api.get("/v1/audit", headers=auth(tokens["read"])).json()
    assert api.get("/v1/audit", params={"from": "2999-01-01"}, headers=auth(tokens["read"])).json() == []
    mine = next(r for r in records if r["id"] == decision["decision_id"])
    assert mine["caller"] == "read-token" and mine["instant"] == "2020-10-15T12:00:00Z"
    assert mine["input"]["app"] == "wechat" and mine["result"]["verdict"] == "enjoined"
    replayed = api.get(f"/v1/audit/{decision['decision_id']}/replay", headers=auth(tokens["read"])).json()
    assert replayed["identical"] is True and replayed["differences"] == []


def test_bad_questions_are_4xx_with_a_message(api: TestClient, tokens: dict[str, str]) -> None:
    headers = auth(tokens["read"])
    unknown_app = api.post("/v1/decide", json=QUESTION | {"app": "no such app"}, headers=headers)
    assert unknown_app.status_code == 400 and "no such app" in error_of(unknown_app)
    zoneless = api.post("/v1/decide", json=QUESTION | {"at": "2020-10-15T12:00:00"}, headers=headers)
    assert zoneless.status_code == 400 and "offset" in error_of(zoneless)
    missing = api.post("/v1/decide", json={"app": "wechat"}, headers=headers)
    assert missing.status_code == 422 and "transaction" in error_of(missing)
    broken = api.post("/v1/decide", content=b'{"app": ', headers=headers | {"content-type": "application/json"})
    assert broken.status_code == 422 and error_of(broken)
    nowhere = api.get("/v1/nowhere", headers=headers)
    assert nowhere.status_code == 404 and "no route GET /v1/nowhere" in error_of(nowhere)


def test_batches_in_json_lines_and_arrow(api: TestClient, tokens: dict[str, str]) -> None:
    india = {"app": "tiktok", "transaction": "app_store_distribution", "where": "IN"}
    rows = [QUESTION, QUESTION | {"at": "2022-03-01T00:00:00Z"}, QUESTION | india]
    body = "".join(json.dumps(row) + "\n" for row in rows)
    lines = api.post(
        "/v1/decide/batch", content=body, headers=auth(tokens["read"]) | {"content-type": "application/x-ndjson"}
    )
    assert lines.status_code == 200, lines.text
    verdicts = [json.loads(line)["verdict"] for line in lines.text.splitlines()]
    assert verdicts == ["enjoined", "revoked", "prohibited"]
    sink = io.BytesIO()
    table = pa.Table.from_pylist(rows)
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    arrow = api.post(
        "/v1/decide/batch",
        content=sink.getvalue(),
        headers=auth(tokens["read"]) | {"content-type": "application/vnd.apache.arrow.stream"},
    )
    assert arrow.status_code == 200 and arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"
    decided = ipc.open_stream(pa.py_buffer(arrow.content)).read_all()
    assert decided.column("verdict").cast(pa.string()).to_pylist() == verdicts
    assert arrow.headers["x-appban-batch"]
    wrong = api.post("/v1/decide/batch", content=b"x", headers=auth(tokens["read"]) | {"content-type": "text/plain"})
    assert wrong.status_code == 415


def test_timeline_apps_and_rules(api: TestClient, tokens: dict[str, str]) -> None:
    headers = auth(tokens["read"])
    timeline = api.get("/v1/timeline", params={"app": "wechat", "where": "US"}, headers=headers).json()
    assert timeline["subject"] == "wechat" and timeline["changes"]
    assert "from" in timeline and "from_" not in timeline  # JSON keys never end in "_", in the API too
    assert any(app["id"] == "tiktok" for app in api.get("/v1/apps", headers=headers).json())
    rules = api.get("/v1/rules", headers=headers).json()
    assert any(i["id"] == "eo-13943" for i in rules["instruments"])
    item = api.get("/v1/rules/wechat-item-6-payments", headers=headers).json()
    assert item["instrument"] == "commerce-wechat-identification-2020"
    assert api.get("/v1/rules/nothing", headers=headers).status_code == 404


# ------------------------------------------------------------------------------------------------
# Tokens


def test_tokens_scopes_and_open_reads(db_url: str, tmp_path: Path, tokens: dict[str, str]) -> None:
    upload = {"file": ("p.csv", (REPO / "examples/payments/processor-export.csv").read_bytes(), "text/csv")}
    with client_for(db_url, tmp_path) as closed:
        assert closed.post("/v1/decide", json=QUESTION).status_code == 401
        assert closed.post("/v1/decide", json=QUESTION, headers=auth("appban_bad_secret")).status_code == 401
        # /v1/decide reads the token itself (no dependency): the same spellings work as on the other routes.
        read = tokens["read"]
        for headers in ({"Authorization": f"bearer {read}"}, {"X-Appban-Token": read}):
            assert closed.post("/v1/decide", json=QUESTION, headers=headers).status_code == 200
            assert closed.get("/v1/rules", headers=headers).status_code == 200
        for headers in ({"Authorization": f"Basic {read}"}, {"Authorization": "Bearer "}):
            assert closed.post("/v1/decide", json=QUESTION, headers=headers).status_code == 401
            assert closed.get("/v1/rules", headers=headers).status_code == 401
        assert closed.post("/v1/screens/payments", files=upload, headers=auth(tokens["read"])).status_code == 403
        assert closed.get("/healthz").status_code == 200
    with client_for(db_url, tmp_path, open_reads=True) as opened:
        answer = opened.post("/v1/decide", json=QUESTION)
        assert answer.status_code == 200
        assert opened.post("/v1/screens/payments", files=upload).status_code == 401  # writes never open
        record = opened.get("/v1/audit").json()[0]
        assert record["caller"] == "anonymous"


# ------------------------------------------------------------------------------------------------
# Screening runs


def wait_for(api: TestClient, run_id: str, headers: dict[str, str], limit: int = 100) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run: dict[str, Any] = api.get(f"/v1/runs/{run_id}", params={"limit": limit}, headers=headers).json()
        if run["status"] in ("done", "failed"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


@pytest.mark.parametrize(
    ("kind", "sample", "options", "expected"),
    [
        ("payments", "examples/payments/processor-export.csv", {}, 8),
        ("payments", "examples/payments/credit-transfers.xml", {}, 3),
        ("inventory", "examples/inventory/app-store-catalog.csv", {"where": "US"}, None),
    ],
)
def test_screening_runs(
    api: TestClient, tokens: dict[str, str], kind: str, sample: str, options: dict[str, str], expected: int | None
) -> None:
    headers = auth(tokens["write"])
    path = REPO / sample
    started = api.post(
        f"/v1/screens/{kind}", params=options, files={"file": (path.name, path.read_bytes())}, headers=headers
    )
    assert started.status_code == 202, started.text
    run = wait_for(api, started.json()["id"], headers, limit=2)
    assert run["status"] == "done", run["error"]
    assert run["filename"] == path.name and run["caller"] == "write-token"
    total = run["findings_total"]
    assert total == expected if expected is not None else total > 0
    assert len(run["findings"]) == min(2, total) and run["next_offset"] == (2 if total > 2 else None)
    rest = api.get(f"/v1/runs/{run['id']}", params={"offset": 2, "limit": 1000}, headers=headers).json()
    assert len(rest["findings"]) == total - 2
    assert "appban-upload" not in json.dumps([rest, run])  # the server's folders are not the caller's business
    assert any(r["run_id"] == run["id"] for r in api.get("/v1/audit", headers=headers).json())


def test_bad_screens_are_refused(api: TestClient, tokens: dict[str, str]) -> None:
    headers = auth(tokens["write"])
    upload = {"file": ("x.csv", b"a,b\n1,2\n")}
    unknown = api.post("/v1/screens/dns", files=upload, headers=headers)
    assert unknown.status_code == 400 and "unknown screen 'dns'" in error_of(unknown)
    option = api.post("/v1/screens/network", params={"colour": "red"}, files=upload, headers=headers)
    assert option.status_code == 400 and "not colour" in error_of(option)
    value = api.post("/v1/screens/network", params={"role": "mail"}, files=upload, headers=headers)
    assert value.status_code == 400 and "role: must be one of" in error_of(value)  # checked before any run
    unreadable = api.post("/v1/screens/payments", files=upload, headers=headers)
    failed = wait_for(api, unreadable.json()["id"], headers)
    assert failed["status"] == "failed" and "no column for" in failed["error"]


# ------------------------------------------------------------------------------------------------
# Limits and concurrency


def test_body_limits(db_url: str, tmp_path: Path, tokens: dict[str, str]) -> None:
    with client_for(db_url, tmp_path, max_body_bytes=2_000, max_upload_bytes=10_000) as small:
        big = QUESTION | {"facts": {f"f{i}": True for i in range(500)}}
        too_big = small.post("/v1/decide", json=big, headers=auth(tokens["read"]))
        assert too_big.status_code == 413 and "at most 2,000" in error_of(too_big)
        upload = {"file": ("big.csv", b"x" * 20_000)}
        assert small.post("/v1/screens/payments", files=upload, headers=auth(tokens["write"])).status_code == 413

        def chunks() -> Iterator[bytes]:
            yield b'{"app": "wechat", "pad": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}'

        streamed = small.post(
            "/v1/decide", content=chunks(), headers=auth(tokens["read"]) | {"content-type": "application/json"}
        )
        assert streamed.status_code == 413


def test_concurrent_decisions_are_all_recorded(api: TestClient, tokens: dict[str, str]) -> None:
    headers = auth(tokens["read"])

    def ask(i: int) -> int:
        moment = f"2020-10-{1 + i % 28:02d}T12:00:00Z"
        return api.post("/v1/decide", json=QUESTION | {"at": moment}, headers=headers).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(ask, range(200)))
    assert statuses == [200] * 200
    recorded = api.get("/v1/audit", params={"limit": 1000}, headers=headers).json()
    assert sum(1 for r in recorded if r["kind"] == "decide") == 200


def test_demo_mode_screens_the_bundled_examples_once(db_url: str, tmp_path: Path, tokens: dict[str, str]) -> None:
    headers = auth(tokens["read"])
    with client_for(db_url, tmp_path, demo=True) as demo:
        runs = demo.get("/v1/runs", headers=headers).json()
        assert sorted(run["filename"] for run in runs) == sorted(
            ["processor-export.csv", "credit-transfers.xml", "app-store-catalog.csv", "jamf-mobile-device-apps.csv"]
        )
        finished = [wait_for(demo, run["id"], headers) for run in runs]
        assert all(run["status"] == "done" and run["caller"] == "demo" for run in finished), finished
    with client_for(db_url, tmp_path, demo=True) as again:  # a store with runs is left as it is
        assert len(again.get("/v1/runs", headers=headers).json()) == 4


def test_settings_reach_worker_processes_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ServiceSettings(
        db_url="sqlite:///x.db",
        open_reads=True,
        demo=True,
        max_upload_bytes=123,
        screen_workers=3,
        upload_dir=tmp_path,
        rulebook=tmp_path / "book",
    )
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert ServiceSettings.from_env() == settings


def test_bad_zones_are_400_without_a_server_path(api: TestClient, tokens: dict[str, str]) -> None:
    naive = QUESTION | {"at": "2020-10-15T12:00:00"}
    for zone in ("America", "../../etc/passwd", "A" * 60):
        answer = api.post("/v1/decide", json=naive | {"tz": zone}, headers=auth(tokens["read"]))
        assert answer.status_code == 400 and "unknown time zone" in error_of(answer), answer.text
        assert "tzdata" not in answer.text
    upload = {"file": ("q.csv", b"ts,query\n2020-10-15 12:00:00,tiktokv.com\n")}
    screen = api.post("/v1/screens/network", params={"log_tz": "A" * 300}, files=upload, headers=auth(tokens["write"]))
    assert screen.status_code == 400 and "unknown time zone" in error_of(screen) and "tzdata" not in screen.text

"""The API's side of a dashboard that fits (issue #16): screen options and formats, findings filtered, sorted and
downloaded over a whole run, audit records that say what fits their kind, `serve --demo`, and /docs and /redoc
rendered in Chromium with every outside request blocked."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Route, expect

from appban.service.audit_view import AUDIT_COLUMNS
from appban.service.findings import _sort_key
from tests import test_service
from tests.test_service import QUESTION, auth, error_of, wait_for

if TYPE_CHECKING:
    from tests.browser import Server

# The browser fixture and the server helpers come from this plugin (imported in the tests that use them, so
# that pytest imports it first, as a plugin).
pytest_plugins = ["tests.browser"]
# The service tests' fixtures: a real SQLite file and a real PostgreSQL server, tokens of both scopes, a client.
db_url = test_service.db_url
tokens = test_service.tokens
api = test_service.api
REPO = Path(__file__).resolve().parents[1]
INTUNE = REPO / "examples" / "inventory" / "intune-discovered-apps.csv"
CATALOG = REPO / "examples" / "inventory" / "app-store-catalog.csv"
_TOKEN_LINE = re.compile(r"demo token: (appban_[0-9a-f]+_[A-Za-z0-9_-]+)")
_STORE_LINE = re.compile(r"demo store: (\S+)")


def upload(client: TestClient, kind: str, path: Path, headers: dict[str, str], **options: str) -> Any:
    with path.open("rb") as handle:
        return client.post(f"/v1/screens/{kind}", params=options, files={"file": (path.name, handle)}, headers=headers)


def screened(client: TestClient, path: Path, headers: dict[str, str], **options: str) -> str:
    started = upload(client, "inventory", path, headers, **options)
    assert started.status_code == 202, started.text
    run = wait_for(client, started.json()["id"], headers, limit=0)
    assert run["status"] == "done", run
    run_id: str = run["id"]
    return run_id


def every_finding(client: TestClient, run_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    run = client.get(f"/v1/runs/{run_id}", params={"limit": 1000}, headers=headers).json()
    assert run["next_offset"] is None
    found: list[dict[str, Any]] = run["findings"]
    return found


# ------------------------------------------------------------------------------------------------
# Upload options and the formats each screen reads


def test_screens_list_their_options_and_the_files_they_read(api: TestClient, tokens: dict[str, str]) -> None:
    listed = api.get("/v1/screens", headers=auth(tokens["read"]))
    assert listed.status_code == 200
    screens = {screen["kind"]: screen for screen in listed.json()}
    assert set(screens) == {"inventory", "code", "network", "payments"}
    inventory = {option["name"]: option for option in screens["inventory"]["options"]}
    assert {"at", "where", "fleet"} <= set(inventory)
    assert inventory["fleet"]["choices"] == ["government", "corporate", "personal"]
    assert {".csv", ".json", ".parquet"} <= set(screens["inventory"]["accept"])
    assert screens["inventory"]["by_content"] is False
    assert screens["code"]["accept"] == [] and screens["code"]["by_content"] is True
    assert ".xml" in screens["payments"]["accept"]
    roles = next(o for o in screens["network"]["options"] if o["name"] == "role")["choices"]
    assert roles == ["hosting", "cdn", "transit"]
    # The same options are the upload's query parameters in the OpenAPI document.
    document = api.get("/openapi.json").json()
    parameters = {p["name"] for p in document["paths"]["/v1/screens/{kind}"]["post"]["parameters"]}
    assert {o["name"] for screen in screens.values() for o in screen["options"]} <= parameters


def test_an_inventory_without_dates_is_decided_at_the_instant_place_and_fleet_given(
    api: TestClient, tokens: dict[str, str]
) -> None:
    headers = auth(tokens["write"])

    def tiktok(**options: str) -> list[dict[str, Any]]:
        found = every_finding(api, screened(api, INTUNE, headers, **options), headers)
        return [f for f in found if f["app"] == "tiktok"]

    before = tiktok(at="2020-01-01T00:00:00Z", where="US", fleet="government")
    after = tiktok(at="2024-01-01T00:00:00Z", where="US", fleet="government")
    assert before and all(f["at"].startswith("2020-01-01") for f in before)
    assert {f["transaction"] for f in before + after} == {"government_device"}
    assert {f["verdict"] for f in before} == {"not_prohibited"}
    assert {f["verdict"] for f in after} == {"prohibited"}  # the federal-device ban, in force by 2024
    montana = tiktok(at="2024-01-01T00:00:00Z", where="US-MT", fleet="personal")
    assert {(f["where"], f["transaction"]) for f in montana} == {("US-MT", "user_personal_use")}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"fleet": "robots"}, "fleet:"),
        ({"at": "yesterday"}, "at:"),
        ({"at": "2024-01-01T00:00:00"}, "at:"),  # no offset and no tz
        ({"where": "Atlantis"}, "Atlantis"),
        ({"tz": "Mars/Olympus"}, "tz:"),
        ({"color": "blue"}, "color"),
    ],
)
def test_bad_upload_options_are_400_naming_the_field(
    api: TestClient, tokens: dict[str, str], options: dict[str, str], named: str
) -> None:
    headers = auth(tokens["write"])
    runs_before = len(api.get("/v1/runs", headers=headers).json())
    refused = upload(api, "inventory", INTUNE, headers, **options)
    assert refused.status_code == 400 and named in error_of(refused)
    assert len(api.get("/v1/runs", headers=headers).json()) == runs_before  # nothing was queued


# ------------------------------------------------------------------------------------------------
# Findings: filtered, sorted and paged over the whole run; downloads


def test_findings_are_filtered_and_sorted_over_every_finding(api: TestClient, tokens: dict[str, str]) -> None:
    headers = auth(tokens["write"])
    run_id = screened(api, CATALOG, headers)
    everything = every_finding(api, run_id, headers)
    assert len(everything) > 20

    def pages(**params: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        offset: int | None = 0
        first: dict[str, Any] = {}
        while offset is not None:
            page = api.get(
                f"/v1/runs/{run_id}/findings", params=params | {"offset": offset, "limit": 7}, headers=headers
            )
            assert page.status_code == 200, page.text
            body = page.json()
            first = first or body
            assert len(body["findings"]) <= 7
            rows += body["findings"]
            offset = body["next_offset"]
        return rows, first

    rows, first = pages()
    assert rows == everything and first["matched"] == first["findings_total"] == len(everything)
    assert first["columns"][:3] == ["file", "line", "record_name"] and "verdict" in first["columns"]

    wanted = {"prohibited", "enjoined"}
    rows, first = pages(verdict="prohibited,enjoined", sort="at", order="desc")
    expected = sorted((f for f in everything if f["verdict"] in wanted), key=lambda f: f["at"], reverse=True)
    assert [f["at"] for f in rows] == [f["at"] for f in expected] and first["matched"] == len(expected)
    assert {f["verdict"] for f in rows} == wanted and first["findings_total"] == len(everything)

    rows, _ = pages(app="WeChat", q="tencent")  # by name as well as id; q without case, in any field
    assert rows and rows == [f for f in everything if f["app"] == "wechat" and "tencent" in json.dumps(f).lower()]

    rows, _ = pages(sort="confidence", order="asc")
    assert [f["confidence"] for f in rows] == sorted(f["confidence"] for f in everything)
    assert [f["line"] for f in rows if f["confidence"] == 1.0] == sorted(
        f["line"] for f in everything if f["confidence"] == 1.0
    )  # ties keep the run's order

    for params, named in [({"sort": "nope"}, "sort:"), ({"verdict": "banned"}, "verdict:"), ({"sort": "a b"}, "sort:")]:
        refused = api.get(f"/v1/runs/{run_id}/findings", params=params, headers=headers)
        assert refused.status_code == 400 and error_of(refused).startswith(named), refused.text
    for params in ({"order": "sideways"}, {"limit": 1001}, {"offset": -1}, {"q": "x" * 201}):
        assert api.get(f"/v1/runs/{run_id}/findings", params=params, headers=headers).status_code == 422
    missing = api.get("/v1/runs/no-such-run/findings", headers=headers)
    assert missing.status_code == 404 and "no run" in error_of(missing)


def test_sort_keys_order_numbers_kept_as_text_by_value() -> None:
    amounts = ["1000.00", "48.00", "-5.50", "9", "n/a"]
    assert sorted(amounts, key=_sort_key) == ["-5.50", "9", "48.00", "1000.00", "n/a"]


def test_findings_download_as_csv_and_json(api: TestClient, tokens: dict[str, str], tmp_path: Path) -> None:
    headers = auth(tokens["write"])
    # A device whose name a spreadsheet would run as a formula, holding TikTok.
    devices = tmp_path / "devices.csv"
    devices.write_text(
        "Display Name,Serial Number,App Name,App Identifier\n"
        '"=HYPERLINK(""http://example.invalid"")",SN1,TikTok,com.zhiliaoapp.musically\n'
        "Kiosk-2,SN2,WeChat,com.tencent.xin\n"
        "Kiosk-3,SN3,Notes,com.apple.mobilenotes\n"
    )
    run_id = screened(api, devices, headers, fleet="government", at="2024-01-01T00:00:00Z")
    everything = every_finding(api, run_id, headers)
    assert len(everything) == 2

    as_json = api.get(f"/v1/runs/{run_id}/findings/export", params={"format": "json"}, headers=headers)
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    assert "attachment" in as_json.headers["content-disposition"] and as_json.headers["x-appban-findings"] == "2"
    assert json.loads(as_json.text) == everything

    as_csv = api.get(f"/v1/runs/{run_id}/findings/export", params={"format": "csv", "sort": "app"}, headers=headers)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["app"] for row in table] == ["tiktok", "wechat"]
    assert list(table[0]) == api.get(f"/v1/runs/{run_id}/findings", headers=headers).json()["columns"]
    assert table[0]["listing_or_device"] == '\'=HYPERLINK("http://example.invalid")'  # not run by a spreadsheet
    assert json.loads(table[0]["rule_ids"]) == next(f for f in everything if f["app"] == "tiktok")["rule_ids"]

    only = api.get(f"/v1/runs/{run_id}/findings/export", params={"format": "json", "app": "wechat"}, headers=headers)
    assert [f["app"] for f in json.loads(only.text)] == ["wechat"]
    assert api.get(f"/v1/runs/{run_id}/findings/export", params={"format": "xml"}, headers=headers).status_code == 422


# ------------------------------------------------------------------------------------------------
# The audit log: what fits each kind of record


def test_audit_records_carry_the_overview_their_kind_shows(api: TestClient, tokens: dict[str, str]) -> None:
    headers = auth(tokens["write"])
    assert api.post("/v1/decide", json=QUESTION, headers=headers).status_code == 200
    lines = "".join(json.dumps(row) + "\n" for row in (QUESTION, QUESTION | {"at": "2022-03-01T00:00:00Z"}))
    batch = api.post("/v1/decide/batch", content=lines, headers=headers | {"content-type": "application/x-ndjson"})
    assert batch.status_code == 200
    run_id = screened(api, CATALOG, headers)
    records = {record["kind"]: record for record in api.get("/v1/audit", headers=headers).json()}
    assert set(records) == {"decide", "batch", "screen"}
    for kind, record in records.items():
        assert list(record["overview"]) == list(AUDIT_COLUMNS[kind]), kind
    assert records["decide"]["overview"] == {
        "app": "WeChat",
        "transaction": "payment_processing",
        "where": "US",
        "at": "2020-10-15T12:00:00Z",
        "verdict": "enjoined",
        "as_written": "prohibited",
    }
    assert records["batch"]["overview"] == {"rows": 2, "by_verdict": {"enjoined": 1, "revoked": 1}}
    screen = records["screen"]["overview"]
    assert screen["screen"] == "inventory" and screen["filename"] == CATALOG.name and screen["run_id"] == run_id
    assert screen["read"] == 53 and screen["findings"] == len(every_finding(api, run_id, headers))


# ------------------------------------------------------------------------------------------------
# serve --demo, and a server without it


@pytest.fixture()
def demo_server(tmp_path: Path) -> Iterator[tuple[str, str, Path, subprocess.Popen[bytes]]]:
    """`appban serve --demo` in an empty folder, without --db: its URL, printed token, store folder and process."""
    from tests.browser import _environment, _free_port, _wait_until_healthy, appban_command

    port = _free_port()
    log = tmp_path / "server.log"
    command = [*appban_command(), "serve", "--demo", "--port", str(port), "--no-access-log"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=tmp_path, env=_environment(), stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_healthy(url, process, log)
        text = log.read_text()
        token, store = _TOKEN_LINE.search(text), _STORE_LINE.search(text)
        assert token and store, text
        yield url, token.group(1), Path(store.group(1)), process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=15)


def test_demo_prints_a_write_token_that_uploads_in_a_store_of_its_own(
    demo_server: tuple[str, str, Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    import httpx

    url, token, store, process = demo_server
    assert store.is_dir() and not (tmp_path / "appban-audit.db").exists()  # the folder it runs in is left alone
    with httpx.Client(base_url=url, timeout=30) as client, INTUNE.open("rb") as handle:
        assert client.get("/v1/apps").status_code == 200  # reads are open
        anonymous = client.post("/v1/screens/inventory", files={"file": (INTUNE.name, handle)})
        assert anonymous.status_code == 401  # an upload still needs the token
        handle.seek(0)
        started = client.post(
            "/v1/screens/inventory",
            params={"fleet": "personal"},
            files={"file": (INTUNE.name, handle)},
            headers=auth(token),
        )
        assert started.status_code == 202, started.text
        assert client.get(f"/v1/runs/{started.json()['id']}").json()["caller"] == "demo"
    process.terminate()
    assert process.wait(timeout=30) != 0
    assert not store.exists()  # the temporary store went with the server


def test_demo_serves_on_loopback_only(tmp_path: Path) -> None:
    from tests.browser import _environment, _free_port, appban_command

    command = [*appban_command(), "serve", "--demo", "--host", "0.0.0.0", "--port", str(_free_port())]
    done = subprocess.run(command, cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--host" in done.stderr and "loopback" in done.stderr


def test_without_demo_an_upload_needs_a_token_and_none_is_printed(tmp_path: Path) -> None:
    import httpx

    from tests.browser import running_server

    with running_server(tmp_path, open_reads=False) as server, INTUNE.open("rb") as handle:
        refused = httpx.post(f"{server.url}/v1/screens/inventory", files={"file": (INTUNE.name, handle)}, timeout=30)
        assert refused.status_code == 401
        assert httpx.get(f"{server.url}/v1/apps", timeout=30).status_code == 401
        assert "appban_" not in (tmp_path / "server.log").read_text()


# ------------------------------------------------------------------------------------------------
# /docs and /redoc offline, in Chromium


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from tests.browser import running_server

    with running_server(tmp_path_factory.mktemp("docs")) as server:
        yield server


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
def test_api_docs_render_with_the_network_blocked(browser: Browser, docs_server: Server, page_path: str) -> None:
    from tests.browser import save_screenshot

    operations = [
        (method.upper(), path)
        for path, item in docs_server.get("/openapi.json")["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    ]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=docs_server.url)
    context.set_default_timeout(20_000)
    outside: list[str] = []

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(docs_server.url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(page_path)
        if page_path == "/docs":
            expect(page.locator(".opblock")).to_have_count(len(operations))
            expect(page.locator(".opblock-summary-path", has_text="/v1/runs/{run_id}/findings/export")).to_be_visible()
        else:
            # ReDoc shows each operation's method and path in its right-hand panel.
            expect(page.locator("h1", has_text="appban")).to_be_visible()
            expect(page.get_by_text("/v1/runs/{run_id}/findings/export", exact=True).first).to_be_attached()
            assert page.locator("[data-section-id^='tag/']").count() >= 5
        save_screenshot(page, f"api{page_path.replace('/', '-')}")
    finally:
        context.close()
    assert not errors, errors
    assert outside == [], f"the page asked outside the server: {outside}"


def test_demo_on_a_named_store_revokes_its_token_when_it_stops(tmp_path: Path) -> None:
    from appban.store import AuditStore
    from tests.browser import _environment, _free_port, _wait_until_healthy, appban_command

    db = f"sqlite:///{tmp_path / 'kept.db'}"
    port, log = _free_port(), tmp_path / "server.log"
    command = [*appban_command(), "serve", "--demo", "--db", db, "--port", str(port), "--no-access-log"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=tmp_path, env=_environment(), stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_healthy(f"http://127.0.0.1:{port}", process, log)
        assert _TOKEN_LINE.search(log.read_text()) and not _STORE_LINE.search(log.read_text())
    finally:
        process.terminate()
        process.wait(timeout=30)
    with AuditStore(db) as store:
        demo_tokens = [token for token in store.tokens() if token.name == "demo"]
    assert len(demo_tokens) == 1 and demo_tokens[0].revoked

"""The dashboard end to end: a real `appban serve` and a real (headless) Chromium clicking through each view.

Each test leaves a full-page screenshot under test-artifacts/dashboard/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.sync_api import Browser, Page, expect

from tests.material import REPO_ROOT

if TYPE_CHECKING:
    from tests.browser import Server

# The fixtures (dashboard_server, write_token, closed_server, browser, page, screenshot) come from this plugin.
pytest_plugins = ["tests.browser"]
Shot = Callable[[Page, str], Path]

CATEGORIES = (
    "app_store_distribution",
    "app_store_update",
    "internet_hosting",
    "cdn",
    "transit_peering",
    "constituent_code_use",
    "funds_transfer",
    "payment_processing",
    "user_personal_use",
    "business_outside_us",
    "government_device",
)
PAYMENTS_EXPORT = REPO_ROOT / "examples" / "payments" / "processor-export.csv"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def ask(page: Page, app: str, transaction: str, *, iso: str = "", local: str = "", tz: str = "") -> None:
    page.get_by_test_id("check-app").fill(app)
    page.get_by_test_id("check-transaction").select_option(transaction)
    page.get_by_test_id("check-where").fill("US")
    page.get_by_test_id("check-iso").fill(iso)
    if local:
        page.get_by_test_id("check-datetime").fill(local)
        page.get_by_test_id("check-tz").select_option(tz)
    page.get_by_test_id("check-submit").click()


def test_timeline_lanes_tooltip_and_citations(page: Page, dashboard_server: Server, screenshot: Shot) -> None:
    page.goto("/#timeline")
    chart = page.get_by_test_id("timeline-svg")
    expect(chart).to_be_visible()
    expect(page.get_by_test_id("timeline-app")).to_have_value("tiktok")
    for category in CATEGORIES:
        expect(page.get_by_test_id(f"lane-{category}")).to_be_visible()
    expect(page.get_by_test_id("timeline-legend")).to_contain_text("Not yet effective")
    # Every verdict TikTok went through in the US has its colour on the chart.
    for verdict in ("prohibited", "enjoined", "not_yet_effective", "revoked", "not_prohibited"):
        assert page.locator(f"[data-testid=timeline-segment][data-verdict={verdict}]").count() > 0, verdict
    timeline = dashboard_server.get("/v1/timeline?app=tiktok&where=US")
    assert page.get_by_test_id("timeline-change").count() == len(timeline["changes"])
    expect(page.get_by_test_id("change-group")).to_have_count(len({c["at"] for c in timeline["changes"]}))

    # Hover: internet hosting was enjoined (prohibited as written) from 13 Nov 2020 by the Commerce identification.
    hosting = page.get_by_test_id("lane-internet_hosting")
    hosting.locator("[data-testid=timeline-segment][data-verdict=enjoined]").hover()
    tooltip = page.get_by_test_id("tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("Internet hosting")
    expect(tooltip).to_contain_text("13 Nov 2020")
    expect(tooltip).to_contain_text("Enjoined")
    expect(tooltip).to_contain_text("as written: Prohibited")
    expect(tooltip).to_contain_text("Commerce TikTok identification")

    # A change marker too: content delivery was revoked by EO 14034 on 9 June 2021.
    revoked = page.locator("[data-testid=lane-cdn] [data-testid=timeline-change][data-at^='2021-06-09']")
    revoked.hover()
    expect(tooltip).to_contain_text("EO 14034")
    expect(tooltip).to_contain_text("9 Jun 2021")
    screenshot(page, "timeline")

    # Click: the side panel has each instrument's citation and a link to its source.
    revoked.click()
    panel = page.get_by_test_id("panel")
    expect(panel).to_be_visible()
    instrument = panel.locator("[data-testid=panel-instrument][data-id='eo-14034']")
    expect(instrument.get_by_test_id("panel-cite")).to_contain_text("86 FR 31423")
    expect(instrument.get_by_test_id("panel-link")).to_have_attribute("href", re.compile(r"^https?://"))
    expect(panel.get_by_test_id("panel-items")).to_contain_text("Revocation")
    screenshot(page, "timeline-panel")

    # The keyboard: Escape closes the panel and returns focus to the marker; arrows move along the lane.
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)
    assert page.evaluate("document.activeElement.dataset.testid") == "timeline-change"
    page.keyboard.press("ArrowRight")
    focused = page.evaluate("[document.activeElement.dataset.testid, document.activeElement.dataset.verdict]")
    assert focused == ["timeline-segment", "revoked"]
    expect(tooltip).to_contain_text("Revoked")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("panel-instrument")).to_contain_text("EO 14034")

    # Another app and place.
    page.keyboard.press("Escape")
    page.get_by_test_id("timeline-app").select_option("wechat")
    expect(page.get_by_test_id("lane-payment_processing").locator("[data-verdict=enjoined]")).to_have_count(1)


def test_check_a_transaction(page: Page, dashboard_server: Server, screenshot: Shot) -> None:
    page.goto("/#check")
    version = dashboard_server.get("/healthz")["rulebook_version"]
    expect(page.get_by_test_id("rulebook-version")).to_have_text(version)

    ask(page, "wechat", "payment_processing", iso="2020-10-15T12:00:00Z")
    decision = page.get_by_test_id("decision")
    verdict = page.get_by_test_id("decision-verdict")
    expect(verdict).to_have_text("Enjoined")
    expect(verdict).to_have_attribute("data-verdict", "enjoined")
    expect(page.get_by_test_id("decision-as-written")).to_contain_text("Prohibited")
    expect(page.get_by_test_id("decision-enforcement")).to_be_visible()
    expect(decision.locator("[data-testid=rule-row][data-rule='wechat-item-6-payments']")).to_contain_text("Enjoined")
    expect(page.get_by_test_id("decision-possible")).to_contain_text("user_to_user_transfer")
    expect(page.get_by_test_id("citation").first).to_be_visible()
    expect(page.get_by_test_id("citation-link").first).to_have_attribute("href", re.compile(r"^https?://"))
    expect(page.get_by_test_id("decision-rulebook")).to_have_text(version)
    assert UUID.match(page.get_by_test_id("decision-id").inner_text())
    screenshot(page, "check")

    # The same instant as a local time in New York (EDT, UTC-4), and a fact that applies an exception.
    page.get_by_test_id("check-fact-user_to_user_transfer").check()
    ask(page, "WeChat", "payment_processing", local="2020-10-15T08:00", tz="America/New_York")
    expect(decision).to_contain_text("15 Oct 2020, 12:00 UTC")
    expect(page.get_by_test_id("decision-exceptions")).to_contain_text("user_to_user_transfer = true")
    expect(verdict).to_have_attribute("data-verdict", "not_prohibited")

    # The API's error message is what the user sees.
    ask(page, "no-such-app", "cdn", iso="2020-10-15T12:00:00Z")
    expect(page.get_by_test_id("check-error")).to_contain_text("unknown app")


def test_screen_a_payments_file(page: Page, write_token: str, screenshot: Shot) -> None:
    page.goto("/#screen")
    page.get_by_test_id("screen-kind-payments").check()
    page.get_by_test_id("screen-file").set_input_files(PAYMENTS_EXPORT)
    expect(page.get_by_test_id("screen-file-name")).to_contain_text("processor-export.csv")

    # Without a token the upload is refused, and the API's message says why.
    expect(page.get_by_test_id("screen-token-hint")).to_contain_text("write scope")
    page.get_by_test_id("screen-upload").click()
    expect(page.get_by_test_id("screen-error")).to_contain_text("write scope")

    page.get_by_test_id("token-input").fill(write_token)
    page.get_by_test_id("token-save").click()
    expect(page.get_by_test_id("token-state")).to_have_text("in use")
    page.get_by_test_id("screen-upload").click()
    expect(page.get_by_test_id("upload-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "done", timeout=30_000)
    expect(page.get_by_test_id("run-rows")).to_have_text("10")
    # The file's one bad row is reported, without the server's own upload path.
    bad_rows = page.get_by_test_id("run-row-errors").locator("li")
    expect(bad_rows).to_have_text(["processor-export.csv:12: missing amount"])

    rows = page.get_by_test_id("finding-row")
    expect(rows).to_have_count(8)
    expect(page.get_by_test_id("findings-total")).to_have_text("8")

    # Filter.
    page.get_by_test_id("findings-filter").fill("alipay")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ch_3HbQ04")
    page.get_by_test_id("findings-filter").fill("")
    expect(rows).to_have_count(8)

    # The verdicts of the findings, each a toggle that filters the table.
    revoked = page.get_by_test_id("verdict-chip-revoked")
    expect(revoked).to_contain_text("2")
    revoked.click()
    expect(revoked).to_have_attribute("aria-pressed", "true")
    expect(rows).to_have_count(2)
    revoked.click()
    expect(rows).to_have_count(8)

    # Sort by amount, both ways.
    def amounts() -> list[float]:
        return [float(t) for t in page.locator("[data-testid=finding-row] td[data-column=amount]").all_inner_texts()]

    page.get_by_test_id("sort-amount").click()
    expect(page.locator("th[data-column=amount]")).to_have_attribute("aria-sort", "ascending")
    assert amounts() == sorted(amounts()) and len(amounts()) == 8
    page.get_by_test_id("sort-amount").click()
    expect(page.locator("th[data-column=amount]")).to_have_attribute("aria-sort", "descending")
    assert amounts() == sorted(amounts(), reverse=True)
    assert amounts()[0] == 300.0

    # A row opens to show the whole finding.
    rows.first.click()
    expect(page.get_by_test_id("finding-json")).to_contain_text("wechat-item-6-payments")
    screenshot(page, "screen")


def test_audit_log_and_replay(page: Page, screenshot: Shot) -> None:
    page.goto("/#check")
    ask(page, "tiktok", "app_store_distribution", iso="2025-02-01T00:00:00Z")
    expect(page.get_by_test_id("decision-verdict")).to_have_attribute("data-verdict", "prohibited")
    decision_id = page.get_by_test_id("decision-id").inner_text()

    page.get_by_test_id("nav-audit").click()
    expect(page.get_by_test_id("view-audit")).to_be_visible()
    row = page.locator(f"[data-testid=audit-row][data-id='{decision_id}']")
    expect(row).to_be_visible()
    expect(row).to_contain_text("TikTok")
    expect(row).to_contain_text("App store distribution")
    expect(row.get_by_test_id("audit-verdict")).to_have_attribute("data-verdict", "prohibited")
    # Newest first.
    expect(page.get_by_test_id("audit-row").first).to_have_attribute("data-id", decision_id)

    row.click()
    panel = page.get_by_test_id("audit-panel")
    expect(panel).to_be_visible()
    expect(panel.get_by_test_id("audit-record-id")).to_have_text(decision_id)
    expect(panel.get_by_test_id("audit-json")).to_contain_text('"app_store_distribution"')
    panel.get_by_test_id("replay").click()
    expect(panel.get_by_test_id("replay-identical")).to_contain_text("Identical")
    screenshot(page, "audit")

    # The keyboard opens records too.
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)
    page.get_by_test_id("audit-row").first.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("audit-panel")).to_be_visible()


def test_screen_findings_load_more(page: Page, write_token: str, tmp_path: Path) -> None:
    # 230 WeChat Pay charges: three pages of findings (100 + 100 + 30).
    lines = PAYMENTS_EXPORT.read_text(encoding="utf-8").splitlines()
    header, charge = lines[0], lines[2]  # ch_3HbQ02, 21 Sept 2020, enjoined
    many = tmp_path / "many-charges.csv"
    rows = [charge.replace("ch_3HbQ02", f"ch_many{n:04d}", 1) for n in range(230)]
    many.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")

    page.goto("/#screen")
    page.get_by_test_id("token-input").fill(write_token)
    page.get_by_test_id("token-save").click()
    page.get_by_test_id("screen-kind-payments").check()
    page.get_by_test_id("screen-file").set_input_files(many)
    page.get_by_test_id("screen-upload").click()
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "done", timeout=30_000)
    expect(page.get_by_test_id("findings-total")).to_have_text("230")
    found = page.get_by_test_id("finding-row")
    more = page.get_by_test_id("findings-more")
    expect(found).to_have_count(100)
    expect(page.get_by_test_id("findings-shown")).to_have_text("100 of 230 findings loaded")
    more.click()
    expect(found).to_have_count(200)
    expect(more).to_have_text("Load 30 more")
    more.click()
    expect(found).to_have_count(230)
    expect(more).to_be_hidden()
    expect(page.get_by_test_id("verdict-chip-enjoined")).to_contain_text("230")


def test_reads_need_a_token_without_open_reads(browser: Browser, closed_server: tuple[Server, str]) -> None:
    server, reader = closed_server
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server.url)
    context.set_default_timeout(10_000)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto("/#timeline")
        expect(page.get_by_test_id("timeline-error")).to_contain_text("needs an API token")
        page.get_by_test_id("token-input").fill(reader)
        page.get_by_test_id("token-save").click()
        expect(page.get_by_test_id("lane-internet_hosting")).to_be_visible()
        expect(page.get_by_test_id("timeline-app").locator("option")).not_to_have_count(1)

        # A read token cannot upload; the API's message says so.
        page.get_by_test_id("nav-screen").click()
        page.get_by_test_id("screen-file").set_input_files(PAYMENTS_EXPORT)
        page.get_by_test_id("screen-upload").click()
        expect(page.get_by_test_id("screen-error")).to_contain_text("may only read")
    finally:
        context.close()
    assert not errors, errors

"""The dashboard's upload form, findings table and audit log against a real `appban serve` in a real Chromium:
the form sends the instant, place and fleet and offers only the file names the server reads; filtering and
sorting ask the server about every finding of the run, not only the rows loaded; the user picks the columns,
a wide table scrolls inside its card, and every matching finding downloads as CSV and JSON; the audit log
shows each kind of record in columns that fit it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.material import REPO_ROOT

if TYPE_CHECKING:
    from tests.browser import Server

pytest_plugins = ["tests.browser"]
Shot = Callable[[Page, str], Path]

INTUNE_APPS = REPO_ROOT / "examples" / "inventory" / "intune-discovered-apps.csv"  # no dates of its own
PAYMENTS_EXPORT = REPO_ROOT / "examples" / "payments" / "processor-export.csv"


@pytest.fixture()
def new_york_page(browser: Browser, dashboard_server: Server, write_token: str) -> Iterator[Page]:
    """A laptop-sized page in New York's time zone, with the write token in use."""
    context = browser.new_context(
        viewport={"width": 1440, "height": 900},
        base_url=dashboard_server.url,
        timezone_id="America/New_York",
        accept_downloads=True,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/#screen")
    page.get_by_test_id("token-input").fill(write_token)
    page.get_by_test_id("token-save").click()
    try:
        yield page
    finally:
        context.close()
    assert not errors, errors


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def upload(page: Page, kind: str, path: Path) -> None:
    page.get_by_test_id(f"screen-kind-{kind}").check()
    page.get_by_test_id("screen-file").set_input_files(path)
    page.get_by_test_id("screen-upload").click()
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "done", timeout=30_000)


def test_upload_form_takes_instant_place_and_fleet(new_york_page: Page, dashboard_server: Server) -> None:
    page = new_york_page
    screens = {s["kind"]: s for s in dashboard_server.get("/v1/screens")}
    page.get_by_test_id("screen-kind-inventory").check()
    # The file picker offers what the server reads, as the server lists it.
    expect(page.get_by_test_id("screen-file")).to_have_attribute("accept", ",".join(screens["inventory"]["accept"]))
    page.get_by_test_id("screen-kind-code").check()
    expect(page.get_by_test_id("screen-file")).not_to_have_attribute("accept", ",".join(screens["inventory"]["accept"]))
    assert page.get_by_test_id("screen-file").get_attribute("accept") is None  # code: any file, told by content
    page.get_by_test_id("screen-kind-payments").check()
    expect(page.get_by_test_id("screen-file")).to_have_attribute("accept", ",".join(screens["payments"]["accept"]))
    expect(page.get_by_test_id("screen-input-format")).to_be_attached()  # the rest under "More options"

    # 8 a.m. in New York on 1 Jan 2024 is 13:00 UTC; a government fleet: TikTok is prohibited on its devices.
    page.get_by_test_id("screen-kind-inventory").check()
    page.get_by_test_id("screen-at").fill("2024-01-01T08:00:00")
    expect(page.get_by_test_id("screen-at-sent")).to_have_text("sent as 2024-01-01T13:00:00Z")
    page.get_by_test_id("screen-where").fill("us")
    page.get_by_test_id("screen-fleet").select_option("government")
    with page.expect_request(lambda r: r.method == "POST" and "/v1/screens/inventory" in r.url) as sent:
        upload(page, "inventory", INTUNE_APPS)
    assert "at=2024-01-01T13%3A00%3A00Z" in sent.value.url and "fleet=government" in sent.value.url
    run_id = page.get_by_test_id("run-id").inner_text()
    tiktok = [
        f
        for f in dashboard_server.get(f"/v1/runs/{run_id}/findings?app=tiktok&limit=1000")["findings"]
        if f["app"] == "tiktok"
    ]
    assert tiktok and {(instant(f["at"]), f["where"], f["transaction"]) for f in tiktok} == {
        (dt.datetime(2024, 1, 1, 13, tzinfo=dt.UTC), "US", "government_device")
    }
    assert {f["verdict"] for f in tiktok} == {"prohibited"}

    # A bad option is the server's 400, shown with the option's name.
    page.get_by_test_id("screen-where").fill("Atlantis")
    page.get_by_test_id("screen-upload").click()
    expect(page.get_by_test_id("screen-error")).to_contain_text("where: 'ATLANTIS'")


def test_findings_filtered_sorted_and_downloaded_over_the_whole_run(
    new_york_page: Page, tmp_path: Path, screenshot: Shot
) -> None:
    page = new_york_page
    # 230 WeChat Pay charges with rising amounts: three pages of findings, only the first one loaded.
    with PAYMENTS_EXPORT.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields, charge = reader.fieldnames, next(r for r in reader if r["id"] == "ch_3HbQ02")  # WeChat Pay, enjoined
    assert fields is not None
    many = tmp_path / "many-charges.csv"
    with many.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(charge | {"id": f"ch_many{n:04d}", "Amount": f"{n + 1}.00"} for n in range(230))
    upload(page, "payments", many)
    found = page.get_by_test_id("finding-row")
    expect(found).to_have_count(100)
    expect(page.get_by_test_id("findings-shown")).to_have_text("100 of 230 findings loaded")

    # A charge far beyond the loaded page is found: the filter runs on the server over every finding.
    page.get_by_test_id("findings-filter").fill("ch_many0229")
    expect(found).to_have_count(1)
    expect(found.first).to_contain_text("ch_many0229")
    expect(page.get_by_test_id("findings-shown")).to_have_text("1 of 1 matching findings loaded (of 230)")
    page.get_by_test_id("findings-filter").fill("")
    expect(found).to_have_count(100)

    # Sorting descending by amount brings the largest amount of the whole run first, not of the loaded page.
    page.get_by_test_id("sort-amount").click()
    expect(page.locator("th[data-column=amount]")).to_have_attribute("aria-sort", "ascending")
    page.get_by_test_id("sort-amount").click()
    expect(page.locator("th[data-column=amount]")).to_have_attribute("aria-sort", "descending")
    expect(found.first.locator("td[data-column=amount]")).to_have_text(re.compile(r"^230\.0*$"))
    expect(page.get_by_test_id("findings-more")).to_have_text("Load 100 more")

    # Columns: add one and take one away; the choice is kept for the next payments run in this browser.
    page.get_by_test_id("findings-columns-toggle").click()
    hidden = page.locator("[data-testid=findings-columns] input[type=checkbox]:not(:checked)").first
    added = hidden.get_attribute("value")
    hidden.check()
    expect(page.locator(f"th[data-column='{added}']")).to_have_count(1)
    page.get_by_test_id("column-currency").uncheck()
    expect(page.locator("th[data-column=currency]")).to_have_count(0)
    kept = page.evaluate("JSON.parse(localStorage.getItem('appban.columns.payments'))")
    assert "currency" not in kept and "amount" in kept and added in kept
    page.get_by_test_id("findings-columns-toggle").click()

    # Every matching finding downloads, in the table's order: JSON and CSV (the token goes as a header).
    page.get_by_test_id("findings-filter").fill("ch_many01")
    expect(page.get_by_test_id("findings-shown")).to_have_text("100 of 100 matching findings loaded (of 230)")
    with page.expect_download() as got:
        page.get_by_test_id("findings-download-json").click()
    data = json.loads(Path(got.value.path()).read_text(encoding="utf-8"))
    assert got.value.suggested_filename.endswith("-findings.json")
    assert len(data) == 100 and all("ch_many01" in json.dumps(f) for f in data)
    assert [float(f["amount"]) for f in data] == sorted((float(f["amount"]) for f in data), reverse=True)
    expect(page.get_by_test_id("findings-download-status")).to_contain_text("100 findings downloaded as JSON")
    page.get_by_test_id("findings-filter").fill("")
    expect(found).to_have_count(100)
    with page.expect_download() as got:
        page.get_by_test_id("findings-download-csv").click()
    table = list(csv.DictReader(io.StringIO(Path(got.value.path()).read_text(encoding="utf-8"))))
    assert len(table) == 230 and float(table[0]["amount"]) == 230

    # Without a token (reads are open here) the browser downloads the server's answer itself.
    page.get_by_test_id("token-clear").click()
    with page.expect_download() as got:
        page.get_by_test_id("findings-download-csv").click()
    assert len(list(csv.DictReader(io.StringIO(Path(got.value.path()).read_text(encoding="utf-8"))))) == 230
    screenshot(page, "findings-tools")


def test_wide_findings_table_scrolls_inside_its_card(new_york_page: Page, screenshot: Shot) -> None:
    page = new_york_page
    page.set_viewport_size({"width": 390, "height": 844})
    upload(page, "inventory", INTUNE_APPS)
    expect(page.get_by_test_id("finding-row").first).to_be_visible()
    scroller = page.get_by_test_id("findings-scroll")
    card = page.get_by_test_id("findings").bounding_box()
    box = scroller.bounding_box()
    assert card is not None and box is not None
    assert box["x"] >= card["x"] and box["x"] + box["width"] <= card["x"] + card["width"] + 0.5
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")  # the table is wider: it scrolls here
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # and the page does not
    # The keyboard reaches it: it takes focus, and arrow keys scroll it.
    scroller.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('[data-testid=findings-scroll]').scrollLeft > 0")
    screenshot(page, "findings-phone")


def test_audit_log_columns_fit_each_kind(new_york_page: Page, screenshot: Shot) -> None:
    page = new_york_page
    upload(page, "payments", PAYMENTS_EXPORT)
    run_id = page.get_by_test_id("run-id").inner_text()
    page.goto("/#check")
    page.get_by_test_id("check-app").fill("tiktok")
    page.get_by_test_id("check-transaction").select_option("app_store_distribution")
    page.get_by_test_id("check-iso").fill("2025-02-01T00:00:00Z")
    page.get_by_test_id("check-submit").click()
    expect(page.get_by_test_id("decision-verdict")).to_have_attribute("data-verdict", "prohibited")

    page.goto("/#audit")
    headers = page.get_by_test_id("audit-table").locator("thead th")
    expect(headers).to_have_text(["Asked at (UTC)", "Caller", "Kind", "What", "Result", "Rulebook"])
    decision = page.locator("[data-testid=audit-row][data-kind=decide]").first
    expect(decision.get_by_test_id("audit-app")).to_have_text("TikTok")
    expect(decision.get_by_test_id("audit-transaction")).to_have_text("App store distribution")
    expect(decision.get_by_test_id("audit-at")).to_have_text("2025-02-01 00:00")
    expect(decision.get_by_test_id("audit-verdict")).to_have_attribute("data-verdict", "prohibited")

    # A screening run: the file it screened (a link to the run) and what it read and found; no verdict, no "at".
    screen = page.locator(f"[data-testid=audit-row][data-kind=screen]:has(a[href$='{run_id}'])")
    expect(screen).to_have_count(1)
    expect(screen.get_by_test_id("audit-file")).to_have_text("processor-export.csv")
    expect(screen.get_by_test_id("audit-result")).to_have_text("10 rows read · 8 findings · 1 unreadable row")
    expect(screen.get_by_test_id("audit-verdict")).to_have_count(0)
    expect(screen.get_by_test_id("audit-at")).to_have_count(0)
    screenshot(page, "audit-kinds")
    screen.get_by_test_id("audit-run").click()
    expect(page.get_by_test_id("run-id")).to_have_text(run_id)

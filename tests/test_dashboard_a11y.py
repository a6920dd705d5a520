"""The dashboard's accessibility (WCAG 2.1 AA) and narrow screens, end to end in a real Chromium.

axe-core (npm package `axe-core`, pinned and fetched by scripts/setup-test-material.sh into the material cache,
never copied into the repository) runs on every view, with its panels open, at a laptop's width and a phone's
(390 px): no critical and no serious violation. At the phone's width the navigation and the timeline must stay
usable (every tab in view and tappable, no page-wide sideways scrolling, the lanes' labels and bars on screen),
and Chinese names must render with a CJK font (glyphs with a width, not the same box for every character).

Screenshots of each view at both widths go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.material import REPO_ROOT, require

if TYPE_CHECKING:
    from tests.browser import Server

pytest_plugins = ["tests.browser"]
Shot = Callable[[Page, str], Path]

AXE_TARBALL = "axe-core-4.14.1.tgz"  # npm pack axe-core@4.14.1 (SHA-256 pinned in the setup script)
# WCAG 2.0/2.1 A and AA, plus two checks the issue names: heading levels (best practice) and a control's
# visible text inside its accessible name (WCAG 2.5.3, which axe runs only when asked).
AXE_OPTIONS: dict[str, Any] = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
    "rules": {"label-content-name-mismatch": {"enabled": True}},
    "resultTypes": ["violations"],
}
PAYMENTS_EXPORT = REPO_ROOT / "examples" / "payments" / "processor-export.csv"
INTUNE_APPS = REPO_ROOT / "examples" / "inventory" / "intune-discovered-apps.csv"  # lists Douyin as 抖音
LAPTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def axe_source() -> str:
    archive = require(AXE_TARBALL)
    with tarfile.open(archive) as tar:
        member = tar.extractfile("package/axe.min.js")
        assert member is not None
        with member:
            return member.read().decode("utf-8")


@pytest.fixture(params=["laptop", "phone"])
def sized_page(request: pytest.FixtureRequest, browser: Browser, dashboard_server: Server) -> Iterator[Page]:
    """A page at a laptop's or a phone's size (a touch screen at 3x); fails the test on any script error."""
    phone = request.param == "phone"
    context = browser.new_context(
        viewport=PHONE if phone else LAPTOP,
        device_scale_factor=3 if phone else 1,
        is_mobile=phone,
        has_touch=phone,
        base_url=dashboard_server.url,
    )
    context.set_default_timeout(10_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"errors in the page: {errors}"


def width_name(page: Page) -> str:
    size = page.viewport_size
    assert size is not None
    return "phone" if size["width"] < 600 else "laptop"


def axe_problems(page: Page, axe_source: str, where: str) -> list[str]:
    """axe-core's critical and serious violations on the page as it is now, one line per failing element."""
    # Colours are measured as painted: let transitions (a panel fading in) finish first.
    page.wait_for_function(
        "() => document.getAnimations().every(a => a.playState !== 'running'"
        " || a.effect.getComputedTiming().iterations === Infinity)"
    )
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=axe_source)
    violations = page.evaluate("options => axe.run(document, options).then(r => r.violations)", AXE_OPTIONS)
    problems = []
    for violation in violations:
        if violation["impact"] not in ("critical", "serious") and violation["id"] not in (
            "heading-order",
            "label-content-name-mismatch",
        ):
            continue
        for node in violation["nodes"]:
            summary = node.get("failureSummary", "").replace("\n", " ")
            problems.append(f"{where}: {violation['id']} ({violation['impact']}) {node['target']}: {summary}")
    return problems


def test_axe_every_view(sized_page: Page, axe_source: str, write_token: str, screenshot: Shot) -> None:
    page = sized_page
    size = width_name(page)
    problems: list[str] = []

    # Timeline, then a change's panel with its citations.
    page.goto("/#timeline")
    expect(page.get_by_test_id("lane-internet_hosting")).to_be_visible()
    problems += axe_problems(page, axe_source, f"timeline ({size})")
    screenshot(page, f"a11y-timeline-{size}")
    page.locator("[data-testid=lane-cdn] [data-testid=timeline-change]").first.click()
    expect(page.get_by_test_id("panel-cite").first).to_be_visible()
    problems += axe_problems(page, axe_source, f"timeline panel ({size})")
    page.keyboard.press("Escape")

    # Check: an enjoined answer (the amber badge) with its rule trail.
    page.goto("/#check")
    page.get_by_test_id("check-app").fill("wechat")
    page.get_by_test_id("check-transaction").select_option("payment_processing")
    page.get_by_test_id("check-iso").fill("2020-10-15T12:00:00Z")
    page.get_by_test_id("check-submit").click()
    expect(page.get_by_test_id("decision-verdict")).to_have_attribute("data-verdict", "enjoined")
    problems += axe_problems(page, axe_source, f"check ({size})")
    screenshot(page, f"a11y-check-{size}")

    # Screen: a payments export, its run and findings, one finding opened.
    page.goto("/#screen")
    problems += axe_problems(page, axe_source, f"screen form ({size})")
    page.get_by_test_id("token-input").fill(write_token)
    page.get_by_test_id("token-save").click()
    page.get_by_test_id("screen-kind-payments").check()
    page.get_by_test_id("screen-file").set_input_files(PAYMENTS_EXPORT)
    page.get_by_test_id("screen-upload").click()
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "done", timeout=30_000)
    expect(page.get_by_test_id("finding-row")).to_have_count(8)
    page.get_by_test_id("finding-row").first.click()
    expect(page.get_by_test_id("finding-json")).to_be_visible()
    problems += axe_problems(page, axe_source, f"screen ({size})")
    screenshot(page, f"a11y-screen-{size}")

    # Audit log, with a record open.
    page.goto("/#audit")
    expect(page.get_by_test_id("audit-row").first).to_be_visible()
    problems += axe_problems(page, axe_source, f"audit ({size})")
    page.get_by_test_id("audit-row").first.locator("td").first.click()  # not on a link to the run
    expect(page.get_by_test_id("audit-panel")).to_be_visible()
    problems += axe_problems(page, axe_source, f"audit panel ({size})")
    screenshot(page, f"a11y-audit-{size}")

    assert not problems, "\n".join(problems)


def test_phone_navigation_and_timeline(browser: Browser, dashboard_server: Server, screenshot: Shot) -> None:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=3, is_mobile=True, has_touch=True, base_url=dashboard_server.url
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto("/#timeline")
        expect(page.get_by_test_id("lane-internet_hosting")).to_be_visible()
        # Every tab is on screen, big enough for a finger, and a tap opens its view without sideways scrolling.
        for view in ("check", "screen", "audit", "timeline"):
            tab = page.get_by_test_id(f"nav-{view}")
            box = tab.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (view, box)
            assert box["height"] >= 44, (view, box)
            tab.tap()
            expect(page.get_by_test_id(f"view-{view}")).to_be_visible()
            expect(tab).to_have_attribute("aria-current", "page")
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], view

        # The timeline: each lane's name is on screen above its bar, also once the chart is scrolled sideways.
        chart = page.get_by_test_id("timeline-chart")
        card = page.get_by_test_id("timeline-card").bounding_box()
        assert card is not None
        hosting = page.get_by_test_id("lane-internet_hosting")
        label = hosting.locator("text.lane-label")
        expect(label).to_have_text("Internet hosting")

        def label_in_card() -> bool:
            box = label.bounding_box()
            assert card is not None
            return box is not None and card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"]

        assert label_in_card()
        assert chart.evaluate("el => el.scrollWidth > el.clientWidth"), "the chart fits: nothing to scroll"
        chart.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
        page.wait_for_function(
            "() => { const t = document.querySelector('[data-testid=lane-internet_hosting] text.lane-label');"
            " return t.getAttribute('transform') !== null && t.getAttribute('transform') !== 'translate(0 0)'; }"
        )
        assert label_in_card()

        # The keyboard walks the lane to its end, and the chart scrolls to keep the focused stretch in view.
        chart.evaluate("el => { el.scrollLeft = 0; }")
        first = hosting.locator("[data-testid=timeline-segment]").first
        first.focus()
        page.keyboard.press("End")
        focused = page.evaluate("document.activeElement.getBoundingClientRect().right")
        chart_box = chart.bounding_box()
        assert chart_box is not None and focused <= chart_box["x"] + chart_box["width"] + 1

        # A tap on a change opens its citations in a panel that fits the screen.
        chart.evaluate("el => { el.scrollLeft = 0; }")
        hosting.locator("[data-testid=timeline-change]").first.tap()
        panel = page.get_by_test_id("panel")
        expect(panel.get_by_test_id("panel-cite").first).to_be_visible()
        # The panel slides in: measure where it comes to rest, not a frame of the slide (a busy machine draws
        # the slide slowly).
        panel.evaluate("el => Promise.all(el.getAnimations().map(a => a.finished))")
        box = panel.bounding_box()
        assert box is not None and box["x"] >= 0 and box["width"] <= PHONE["width"]
        screenshot(page, "timeline-phone-panel")
    finally:
        context.close()


def test_chinese_app_names_render(page: Page, write_token: str, screenshot: Shot) -> None:
    # An Intune discovered-apps export lists Douyin by its Chinese name, 抖音.
    page.goto("/#screen")
    page.get_by_test_id("token-input").fill(write_token)
    page.get_by_test_id("token-save").click()
    page.get_by_test_id("screen-kind-inventory").check()
    page.get_by_test_id("screen-file").set_input_files(
        REPO_ROOT / "examples" / "inventory" / "intune-discovered-apps.csv"
    )
    page.get_by_test_id("screen-upload").click()
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "done", timeout=30_000)
    cell = page.locator("[data-testid=finding-row] td", has_text="抖音").first
    expect(cell).to_be_visible()
    screenshot(page, "chinese-names")

    # The characters are drawn by a font that has them (Chromium names the fonts it used for the cell) ...
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    document = cdp.send("DOM.getDocument", {"depth": 0})
    marked = cell.evaluate("el => { el.dataset.cjkProbe = '1'; return true; }")
    assert marked
    node = cdp.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": "[data-cjk-probe]"})
    fonts = [
        font["familyName"] for font in cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
    ]
    assert any("CJK" in name or "Han" in name or "Hei" in name for name in fonts), fonts

    # ... and each has a glyph of its own with a width, not the same empty box ("tofu") for both.
    glyphs = cell.evaluate(
        """el => {
          const font = getComputedStyle(el).font;
          const draw = (ch) => {
            const canvas = document.createElement("canvas");
            canvas.width = 48; canvas.height = 48;
            const ctx = canvas.getContext("2d");
            ctx.font = font.replace(/\\d+(\\.\\d+)?px/, "32px");
            ctx.fillText(ch, 4, 38);
            return { width: ctx.measureText(ch).width, pixels: Array.from(ctx.getImageData(0, 0, 48, 48).data) };
          };
          const [a, b] = [draw("抖"), draw("音")];
          const inked = (g) => g.pixels.some((v, i) => i % 4 === 3 && v > 0);
          return {
            widths: [a.width, b.width],
            inked: [inked(a), inked(b)],
            same: a.pixels.every((v, i) => v === b.pixels[i]),
          };
        }"""
    )
    assert all(width > 0 for width in glyphs["widths"]), glyphs["widths"]
    assert glyphs["inked"] == [True, True]
    assert not glyphs["same"], "both characters drew the same box: no font has them"

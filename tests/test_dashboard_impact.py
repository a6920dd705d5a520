"""The dashboard's impact view in a real Chromium, against a real server: the report of the packaged knowledge
over the server's store, with axe-core at a laptop's width and a phone's (no critical or serious violation),
the view's tab on screen at 390 px, and screenshots in test-artifacts/dashboard/."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.test_dashboard_a11y import PHONE, Shot, axe_problems, axe_source, sized_page, width_name

pytest_plugins = ["tests.browser"]
__all__ = ["axe_source", "sized_page"]  # the fixtures this module takes from the accessibility tests


def test_impact_view(sized_page: Page, axe_source: str, write_token: str, screenshot: Shot) -> None:
    page = sized_page
    size = width_name(page)
    page.goto("/#impact")
    page.get_by_test_id("token-input").fill(write_token)
    page.get_by_test_id("token-save").click()
    tab = page.get_by_test_id("nav-impact")
    tab.click()
    expect(page.get_by_test_id("view-impact")).to_be_visible()
    expect(tab).to_have_attribute("aria-current", "page")
    if size == "phone":
        box = tab.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    problems = axe_problems(page, axe_source, f"impact form ({size})")
    page.get_by_test_id("impact-rules").select_option("packaged")
    page.get_by_test_id("impact-run").click()
    # The same knowledge as the server's: nothing would change.
    expect(page.get_by_test_id("impact-summary")).to_contain_text("0 would change")
    expect(page.get_by_test_id("impact-none")).to_be_visible()
    problems += axe_problems(page, axe_source, f"impact report ({size})")
    screenshot(page, f"a11y-impact-{size}")
    assert not problems, "\n".join(problems)

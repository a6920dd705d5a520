"""The upload form's hint on file names (issue #16): each screen that tells files by their content names a file of
its own kind that its `accept` list leaves out, and the server really reads a file of that name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from tests import test_service
from tests.test_service import auth, wait_for

if TYPE_CHECKING:
    from tests.browser import Server

pytest_plugins = ["tests.browser"]
db_url = test_service.db_url
tokens = test_service.tokens
api = test_service.api
REPO = Path(__file__).resolve().parents[1]
# The names the hint gives, each with a sample of that kind's content and what screening it finds.
NAMED = {
    "network": (
        "query.log.1",  # a BIND query log, rotated
        b"15-Oct-2020 12:00:00.000 client 192.0.2.10#5353 (v16-webapp.tiktok.com): query: v16-webapp.tiktok.com"
        b" IN A + (198.51.100.53)\n",
        "matched",
    ),
    "payments": ("pain001-20201015.dat", (REPO / "examples/payments/credit-transfers.xml").read_bytes(), "flagged"),
}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", sorted(NAMED))
def test_the_file_the_hint_names_is_read(api: TestClient, tokens: dict[str, str], kind: str) -> None:
    name, content, found = NAMED[kind]
    headers = auth(tokens["write"])
    started = api.post(f"/v1/screens/{kind}", files={"file": (name, content)}, headers=headers)
    assert started.status_code == 202, started.text
    run = wait_for(api, started.json()["id"], headers)
    assert run["status"] == "done" and run["summary"][found] > 0, run


def test_each_screen_hints_at_a_file_name_of_its_own_kind(page: Page, dashboard_server: Server) -> None:
    page.goto("/#screen")
    accept = page.get_by_test_id("screen-accept")
    for kind, (name, _content, _found) in NAMED.items():
        page.get_by_test_id(f"screen-kind-{kind}").check()
        expect(accept).to_contain_text(f"({name})")
        others = [other for other, _c, _f in NAMED.values() if other != name]
        expect(accept).not_to_have_text(re.compile("|".join(map(re.escape, others))))
    page.get_by_test_id("screen-kind-inventory").check()  # told by its name only: no other name is read
    expect(accept).not_to_contain_text("another name")

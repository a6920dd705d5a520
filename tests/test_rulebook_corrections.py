"""Corrections to the rulebook, each against its sources (cited in the instrument files)."""

from __future__ import annotations

import pytest

from appban import Rulebook, decide
from appban.identity.registry import load_registry
from appban.identity.resolve import Record, Resolver

INDIA_ORDERS = {
    # instrument: (apps the order's list names, distinct apps encoded)
    "india-69a-2020-06-29": 59,
    "india-69a-2020-07-24": 15,  # of 47: MeitY did not publish the list; these are the ones reports name
    "india-69a-2020-09-02": 117,  # of 118: "VPN for TikTok" is listed twice
    "india-69a-2020-11-24": 43,
}


@pytest.mark.parametrize(("instrument", "count"), INDIA_ORDERS.items())
def test_india_orders_name_every_app_and_each_is_in_the_identity_registry(
    rulebook: Rulebook, instrument: str, count: int
) -> None:
    (rule,) = rulebook.instruments[instrument].prohibitions
    assert len(rule.subjects) == len(set(rule.subjects)) == count
    registry = load_registry(rulebook)
    missing = [app for app in rule.subjects if app not in registry.apps]
    assert missing == []
    for app in rule.subjects:  # every app answers as blocked in India from its order, and nowhere else
        assert decide(app, "app_store_distribution", "IN", "2021-01-01T00:00:00Z").verdict == "prohibited"


def test_the_june_list_includes_vmate_and_qq_international(rulebook: Rulebook) -> None:
    (rule,) = rulebook.instruments["india-69a-2020-06-29"].prohibitions
    assert {"vmate", "qq_international", "tiktok", "wechat", "shareit", "uc_browser", "camscanner"} <= set(
        rule.subjects
    )
    assert decide("QQ International", "app_store_update", "IN", "2020-06-30T00:00:00+05:30").verdict == "prohibited"


def test_india_apps_resolve_by_their_listed_names(rulebook: Rulebook) -> None:
    resolver = Resolver(rulebook, where="IN")
    for name, app in (("Clean Master", "clean_master"), ("Snack Video", "snack_video"), ("Likee", "likee")):
        matches = resolver.resolve(Record(name=name))
        assert matches and matches[0].app == app and matches[0].kind.value == "strong", name


def test_the_july_order_is_dated_the_day_it_was_issued(rulebook: Rulebook) -> None:
    order = rulebook.instruments["india-69a-2020-07-24"]
    assert order.made.date.isoformat() == "2020-07-24"
    assert (
        decide("tiktok_lite", "app_store_distribution", "IN", "2020-07-23T23:00:00+05:30").verdict == "not_prohibited"
    )
    assert decide("tiktok_lite", "app_store_distribution", "IN", "2020-07-25T12:00:00+05:30").verdict == "prohibited"


def test_federal_devices_follow_the_agency_not_the_place() -> None:
    at = "2024-06-01T00:00:00Z"
    embassy = decide("tiktok", "government_device", "DE", at, {"federal_agency_device": True})
    assert embassy.verdict == "prohibited"
    assert "m-23-13-remove" in embassy.rule_ids
    german_ministry = decide("tiktok", "government_device", "DE", at)
    assert german_ministry.verdict == "not_prohibited"
    reason = next(line.reason for line in german_ministry.rules if line.rule_id == "m-23-13-remove")
    assert "federal_agency_device=true" in reason
    state_agency = decide("tiktok", "government_device", "US-TX", at, {"federal_agency_device": False})
    assert state_agency.verdict == "not_prohibited"
    assert [e.exception_id for e in state_agency.exceptions] == ["m-23-13-not-federal-it"]
    unknown = decide("tiktok", "government_device", "US", at)
    assert unknown.verdict == "prohibited"
    assert "m-23-13-not-federal-it" in {e.exception_id for e in unknown.possible_exceptions}
    before_the_act = decide(
        "tiktok", "government_device", "DE", "2022-06-01T00:00:00Z", {"federal_agency_device": True}
    )
    assert before_the_act.verdict == "not_prohibited"


def test_montana_sb_419_void_on_the_sale_and_the_case_ended_on_20_february_2026(rulebook: Rulebook) -> None:
    enjoined = decide("tiktok", "app_store_distribution", "US-MT", "2025-12-01T00:00:00Z")
    assert next(line for line in enjoined.rules if line.rule_id == "mt-sb-419-app-stores").status == "enjoined"
    void = decide("tiktok", "app_store_distribution", "US-MT", "2026-02-01T00:00:00Z")
    montana = next(line for line in void.rules if line.rule_id == "mt-sb-419-app-stores")
    assert montana.status == "revoked" and montana.changed_by == ["montana-sb-419-2023"]
    dismissal = rulebook.instruments["court-alario-v-knudsen-dismissal-2026-02-20"]
    assert dismissal.made.date.isoformat() == "2026-02-20"
    assert not rulebook.instruments["montana-sb-419-2023"].uncertain or all(
        "dismissal" not in text for text in rulebook.instruments["montana-sb-419-2023"].uncertain
    )
    # in 2024 the answer says nothing of 2026
    earlier = decide("tiktok", "app_store_distribution", "US-MT", "2024-06-01T00:00:00Z")
    assert not any("2026" in note for note in earlier.notes + earlier.uncertainties)


def test_eo_14352_suspends_enforcement_for_120_days_for_every_covered_app() -> None:
    for app in ("douyin", "toutiao", "lark", "helo"):  # ByteDance apps outside the joint venture
        during = decide(app, "app_store_distribution", "US", "2026-01-23T12:00:00-05:00")
        assert (during.verdict, during.enforcement) == ("prohibited", "suspended"), app
        after = decide(app, "app_store_distribution", "US", "2026-01-24T00:00:00-05:00")
        assert (after.verdict, after.enforcement) == ("prohibited", "enforceable"), app


def test_notes_and_doubts_never_tell_of_events_after_the_instant(rulebook: Rulebook) -> None:
    """A note is shown whenever its instrument counts; it may speak only of what that instrument says."""
    for instrument in rulebook.instruments.values():
        made = instrument.made.date.year
        texts = list(instrument.notes)
        for item in instrument.prohibitions:
            texts += [*item.notes, item.uncertain or ""]
        for text in texts:
            for year in range(made + 1, 2030):
                assert str(year) not in text, (instrument.id, text)

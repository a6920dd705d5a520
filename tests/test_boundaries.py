"""One second before and at every effective instant, written in UTC and in Eastern local offsets.

The expected instants come from the legal facts (each instrument's stated time of day and zone),
not from the rulebook files, so a wrong date, time or zone in the data fails here.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from appban import decide

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
SECOND = dt.timedelta(seconds=1)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


# (name, app, category, where, instant, (verdict, as_written, enforcement) before, ... at/after)
BOUNDARIES = [
    (
        "TikTok item 1, delayed to 27 Sept 2020 11:59 p.m. Eastern (EDT)",
        "tiktok",
        "app_store_distribution",
        "US",
        utc("2020-09-28T03:59:00Z"),
        ("not_yet_effective", "not_yet_effective", "not_applicable"),
        ("enjoined", "prohibited", "not_applicable"),
    ),
    (
        "TikTok items 2-5 at 12 Nov 2020 11:59 p.m. EST",
        "tiktok",
        "internet_hosting",
        "US",
        utc("2020-11-13T04:59:00Z"),
        ("not_yet_effective", "not_yet_effective", "not_applicable"),
        ("enjoined", "prohibited", "not_applicable"),
    ),
    (
        "TikTok item 5 at 12 Nov 2020 11:59 p.m. EST",
        "tiktok",
        "constituent_code_use",
        "US-TX",
        utc("2020-11-13T04:59:00Z"),
        ("not_yet_effective", "not_yet_effective", "not_applicable"),
        ("enjoined", "prohibited", "not_applicable"),
    ),
    (
        "WeChat items as of 20 Sept 2020, from 00:00 Eastern (EDT); the injunction came the evening before",
        "wechat",
        "cdn",
        "US",
        utc("2020-09-20T04:00:00Z"),
        ("not_yet_effective", "not_yet_effective", "not_applicable"),
        ("enjoined", "prohibited", "not_applicable"),
    ),
    (
        "EO 14034 revokes EOs 13942/13943 on 9 June 2021",
        "tiktok",
        "cdn",
        "US",
        utc("2021-06-09T04:00:00Z"),
        ("enjoined", "prohibited", "not_applicable"),
        ("revoked", "revoked", "not_applicable"),
    ),
    (
        "EO 14034 revokes the WeChat identification",
        "wechat_pay",
        "payment_processing",
        "US",
        utc("2021-06-09T04:00:00Z"),
        ("enjoined", "prohibited", "not_applicable"),
        ("revoked", "revoked", "not_applicable"),
    ),
    (
        "OMB M-23-13 30-day deadline (29 Mar 2023)",
        "tiktok",
        "government_device",
        "US",
        utc("2023-03-30T04:00:00Z"),
        ("not_yet_effective", "not_yet_effective", "not_applicable"),
        ("prohibited", "prohibited", "enforceable"),
    ),
    (
        "Montana SB 419 on 1 Jan 2024 (Mountain time), enjoined 30 Nov 2023",
        "tiktok",
        "app_store_distribution",
        "US-MT",
        utc("2024-01-01T07:00:00Z"),
        ("not_yet_effective", "not_yet_effective", "not_applicable"),
        ("enjoined", "prohibited", "not_applicable"),
    ),
    (
        "PAFACA on 19 Jan 2025 (EST): enforceable, for EO 14166 did not exist yet",
        "tiktok",
        "app_store_update",
        "US",
        utc("2025-01-19T05:00:00Z"),
        ("not_yet_effective", "not_yet_effective", "not_applicable"),
        ("prohibited", "prohibited", "enforceable"),
    ),
    (
        "EO 14166, posted 8:10 p.m. EST on 20 Jan 2025, suspends enforcement from then (back to the 19th)",
        "tiktok",
        "app_store_update",
        "US",
        utc("2025-01-21T01:10:00Z"),
        ("prohibited", "prohibited", "enforceable"),
        ("prohibited", "prohibited", "suspended"),
    ),
    (
        "PAFACA hosting for CapCut on 19 Jan 2025",
        "capcut",
        "internet_hosting",
        "US",
        utc("2025-01-19T05:00:00Z"),
        ("not_yet_effective", "not_yet_effective", "not_applicable"),
        ("prohibited", "prohibited", "enforceable"),
    ),
    (
        "PAFACA enacted 24 Apr 2024: TikTok hosting, revoked since 2021, is again to come",
        "tiktok",
        "internet_hosting",
        "US",
        utc("2024-04-24T04:00:00Z"),
        ("revoked", "revoked", "not_applicable"),
        ("not_yet_effective", "not_yet_effective", "not_applicable"),
    ),
    (
        "The Commerce TikTok identification, made 18 Sept 2020 (hour unknown, from 00:00 EDT)",
        "tiktok",
        "internet_hosting",
        "US",
        utc("2020-09-18T04:00:00Z"),
        ("not_prohibited", "not_prohibited", "not_applicable"),
        ("not_yet_effective", "not_yet_effective", "not_applicable"),
    ),
    (
        "Qualified divestiture: TikTok USDS Joint Venture, 22 Jan 2026",
        "tiktok",
        "app_store_distribution",
        "US",
        utc("2026-01-22T05:00:00Z"),
        ("prohibited", "prohibited", "suspended"),
        ("not_prohibited", "not_prohibited", "not_applicable"),
    ),
    (
        "EO 14352's 120 days of non-enforcement end (through 23 Jan 2026) for apps outside the joint venture",
        "douyin",
        "app_store_distribution",
        "US",
        utc("2026-01-24T05:00:00Z"),
        ("prohibited", "prohibited", "suspended"),
        ("prohibited", "prohibited", "enforceable"),
    ),
    (
        "India s.69A blocking of 59 apps, made and in force 29 June 2020 (India time)",
        "wechat",
        "transit_peering",
        "IN",
        utc("2020-06-28T18:30:00Z"),
        ("not_prohibited", "not_prohibited", "not_applicable"),
        ("prohibited", "prohibited", "enforceable"),
    ),
]


def _spellings(instant: dt.datetime) -> list[str]:
    """The same instant in UTC ('Z'), as a UTC offset, and in Eastern local time (EDT or EST)."""
    return [
        instant.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        instant.astimezone(UTC).isoformat(),
        instant.astimezone(NEW_YORK).isoformat(),
    ]


def _outcome(app: str, category: str, where: str, at: str) -> tuple[str, str, str]:
    d = decide(app, category, where, at)
    return d.verdict.value, d.as_written.value, d.enforcement.value


@pytest.mark.parametrize(("name", "app", "category", "where", "instant", "before", "after"), BOUNDARIES)
def test_one_second_before_and_at_the_instant(
    name: str, app: str, category: str, where: str, instant: dt.datetime, before: tuple, after: tuple
) -> None:
    for text in _spellings(instant - SECOND):
        assert _outcome(app, category, where, text) == before, f"{name}: one second before, {text}"
    for text in _spellings(instant):
        assert _outcome(app, category, where, text) == after, f"{name}: at {text}"
    for text in _spellings(instant + SECOND):
        assert _outcome(app, category, where, text) == after, f"{name}: one second after, {text}"


def test_eastern_offsets_are_edt_in_september_and_est_in_november() -> None:
    assert _spellings(utc("2020-09-28T03:59:00Z"))[2] == "2020-09-27T23:59:00-04:00"
    assert _spellings(utc("2020-11-13T04:59:00Z"))[2] == "2020-11-12T23:59:00-05:00"


def test_the_edt_est_trap_on_november_12() -> None:
    """11:59 p.m. on 12 Nov written with the summer offset (-04:00) is an hour early: not yet in force."""
    assert _outcome("tiktok", "cdn", "US", "2020-11-12T23:59:00-04:00")[1] == "not_yet_effective"
    assert _outcome("tiktok", "cdn", "US", "2020-11-12T23:59:00-05:00")[1] == "prohibited"
    assert _outcome("tiktok", "cdn", "US", "2020-11-13T00:58:59-04:00")[1] == "not_yet_effective"


def test_the_edt_est_trap_on_september_27_is_flagged_as_uncertain() -> None:
    """'11:59 p.m. eastern standard time' on 27 Sept, when EDT was in force: the hour between the two
    readings is in force on the local reading, and the decision says it is uncertain."""
    inside = decide("tiktok", "app_store_distribution", "US", "2020-09-27T23:30:00-05:00")  # 04:30Z
    assert inside.as_written == "prohibited"
    assert any("between defensible readings" in note for note in inside.uncertainties)
    outside = decide("tiktok", "app_store_distribution", "US", "2020-09-28T00:30:00-05:00")  # 05:30Z
    assert not any("between defensible readings" in note for note in outside.uncertainties)


def test_the_original_september_20_start_was_superseded_by_the_delay() -> None:
    d = decide("tiktok", "app_store_distribution", "US", "2020-09-21T00:00:00-04:00")
    assert d.as_written == "not_yet_effective"
    line = next(line for line in d.rules if line.rule_id == "tiktok-item-1-app-store")
    assert "originally 2020-09-21T03:59:00Z" in line.reason and "delay" in line.reason


def test_comparison_is_by_instant_not_by_calendar_date() -> None:
    """Late on 12 Nov in California is already 13 Nov in UTC and after the 11:59 p.m. EST start."""
    assert _outcome("tiktok", "cdn", "US-CA", "2020-11-12T21:00:00-08:00")[1] == "prohibited"
    assert _outcome("tiktok", "cdn", "US-CA", "2020-11-12T20:58:59-08:00")[1] == "not_yet_effective"


@pytest.mark.parametrize("where", ["US", "US-MT", "IN"])
def test_every_timeline_instant_changes_exactly_there_in_utc_and_eastern(where: str) -> None:
    """For every app, each instant the timeline reports: one second before it gives the old answer and
    the instant itself the new one, whichever offset the instant is written in."""
    from appban import load_rulebook
    from appban.engine.timeline import timeline

    checked = 0
    for app in sorted(load_rulebook().subjects.subjects):
        for change in timeline(app, where).changes:
            instant = utc(change.at)
            old = (change.verdict_before.value, change.as_written_before.value, change.enforcement_before.value)
            new = (change.verdict_after.value, change.as_written_after.value, change.enforcement_after.value)
            for text in _spellings(instant - SECOND):
                assert _outcome(app, change.category.value, where, text)[:3] == old, (app, change.at, text)
            for text in _spellings(instant):
                assert _outcome(app, change.category.value, where, text)[:3] == new, (app, change.at, text)
            checked += 1
    assert checked > 20


@pytest.mark.parametrize("where", ["US", "US-MT", "IN"])
def test_no_change_of_verdict_is_missing_from_a_timeline(where: str) -> None:
    """At every instant the law names for an app, a category the timeline lists no change for gives the
    same answer as one second before: the timeline misses no change."""
    from appban import load_rulebook
    from appban.engine.law import resolve
    from appban.engine.timeline import timeline
    from appban.vocabulary import Category

    book = load_rulebook()
    law = resolve(book)
    checked = 0
    for app in sorted(book.subjects.subjects):
        listed = {(utc(change.at), change.category.value) for change in timeline(app, where).changes}
        for instant in law.instants_for(app):
            for category in Category:
                if (instant, category.value) in listed:
                    continue
                before = _outcome(app, category.value, where, _spellings(instant - SECOND)[0])
                assert _outcome(app, category.value, where, _spellings(instant)[0]) == before, (app, category, instant)
                checked += 1
    assert checked > 100

"""What each instrument in the rulebook contributes to decisions."""

from __future__ import annotations

import datetime as dt

import pytest

from appban import Rulebook, decide
from tests.conftest import without


def line(decision, rule_id):  # type: ignore[no-untyped-def]
    return next(line for line in decision.rules if line.rule_id == rule_id)


def test_every_instrument_and_item_carries_a_citation(rulebook: Rulebook) -> None:
    for instrument in rulebook.instruments.values():
        assert instrument.citation.cite and instrument.citation.url.startswith("http")
    for subject in rulebook.subjects.subjects.values():
        assert subject.source.startswith("http")


def test_ictsemergency_eo_13873_is_the_authority_of_the_app_orders(rulebook: Rulebook) -> None:
    for order in ("eo-13942", "eo-13943", "eo-13971"):
        assert "eo-13873" in rulebook.instruments[order].authority


@pytest.mark.parametrize(("app", "grant"), [("tiktok", "eo-13942-sec-1"), ("wechat", "eo-13943-sec-1")])
def test_the_august_orders_authorise_but_do_not_themselves_prohibit(app: str, grant: str) -> None:
    d = decide(app, "cdn", "US", "2020-09-01T00:00:00Z")
    assert line(d, grant).status == "authority_only"
    assert grant not in d.rule_ids


def test_without_the_identifications_nothing_is_prohibited(rulebook: Rulebook) -> None:
    bare = without(rulebook, ids=("commerce-tiktok-identification-2020", "commerce-wechat-identification-2020"))
    d = decide("wechat", "cdn", "US", "2020-10-01T00:00:00Z", rulebook=bare)
    assert d.as_written == "not_prohibited"


def test_tiktok_identification_has_five_concrete_items_and_a_residual_one(rulebook: Rulebook) -> None:
    notice = rulebook.instruments["commerce-tiktok-identification-2020"]
    assert len(notice.prohibitions) == 5
    assert [a.id for a in notice.authorizations] == ["tiktok-item-6-residual"]
    assert notice.citation.cite.startswith("85 FR 60061")


def test_wechat_identification_has_six_items_all_from_september_20(rulebook: Rulebook) -> None:
    notice = rulebook.instruments["commerce-wechat-identification-2020"]
    assert len(notice.prohibitions) == 6
    # "As of September 20, 2020": from the start of the day, Eastern (EDT)
    assert {p.from_.instant.isoformat() for p in notice.prohibitions} == {"2020-09-20T04:00:00+00:00"}
    # the 11:59 p.m. reports, EDT and EST read literally, are kept as other readings
    readings = {r.instant.isoformat() for r in notice.prohibitions[0].from_.readings}
    assert readings == {"2020-09-21T03:59:00+00:00", "2020-09-21T04:59:00+00:00"}
    assert "withdrawn" in notice.citation.cite  # never printed in the Federal Register


def test_the_wechat_start_time_is_reported_as_uncertain() -> None:
    d = decide("wechat", "app_store_distribution", "US", "2020-09-20T12:00:00-04:00")
    assert d.verdict == "enjoined"  # the injunction of the evening before came first on every reading
    assert any("As of September 20" in note or "as of September 20" in note for note in d.uncertainties)
    assert any("between defensible readings" in note for note in d.uncertainties)
    after_every_reading = decide("wechat", "app_store_distribution", "US", "2020-09-21T12:00:00-04:00")
    assert not any("between defensible readings" in note for note in after_every_reading.uncertainties)


def test_commerce_delay_of_19_september_moves_tiktok_item_1(rulebook: Rulebook) -> None:
    no_delay = without(rulebook, ids=("commerce-tiktok-delay-2020-09-19",))
    at = "2020-09-22T12:00:00-04:00"
    assert decide("tiktok", "app_store_distribution", "US", at, rulebook=no_delay).as_written == "prohibited"
    assert decide("tiktok", "app_store_distribution", "US", at).as_written == "not_yet_effective"


def test_wechat_users_alliance_enjoins_all_six_items() -> None:
    for category in (
        "app_store_update",
        "internet_hosting",
        "cdn",
        "transit_peering",
        "constituent_code_use",
        "funds_transfer",
    ):
        d = decide("wechat", category, "US", "2020-10-01T00:00:00Z")
        assert d.verdict == "enjoined", category
        assert "U.S. WeChat Users Alliance" in next(x.reason for x in d.rules if x.status == "enjoined")


def test_dc_order_of_27_september_enjoins_item_1_only(rulebook: Rulebook) -> None:
    only_dc = without(rulebook, ids=("court-marland-v-trump-2020-10-30", "court-tiktok-v-trump-2020-12-07"))
    assert (
        decide("tiktok", "app_store_distribution", "US", "2020-11-20T00:00:00Z", rulebook=only_dc).verdict == "enjoined"
    )
    hosting = decide("tiktok", "internet_hosting", "US", "2020-11-20T00:00:00Z", rulebook=only_dc)
    assert hosting.verdict == "prohibited"


def test_marland_enjoins_the_november_items_before_they_start() -> None:
    d = decide("tiktok", "transit_peering", "US", "2020-11-20T00:00:00Z")
    assert "Marland" in line(d, "tiktok-item-4-transit").reason


def test_dc_order_of_7_december_is_a_second_independent_bar(rulebook: Rulebook) -> None:
    no_marland = without(rulebook, ids=("court-marland-v-trump-2020-10-30",))
    assert decide("tiktok", "cdn", "US", "2020-12-01T00:00:00Z", rulebook=no_marland).verdict == "prohibited"
    d = decide("tiktok", "cdn", "US", "2020-12-08T00:00:00Z", rulebook=no_marland)
    assert d.verdict == "enjoined" and "7 Dec 2020" in line(d, "tiktok-item-3-cdn").reason


def test_commerce_court_notices_are_non_enforcement_statements(rulebook: Rulebook) -> None:
    no_courts = without(rulebook, "court_order")
    october = decide("tiktok", "app_store_distribution", "US", "2020-10-05T00:00:00Z", rulebook=no_courts)
    assert (october.verdict, october.enforcement) == ("prohibited", "suspended")
    assert "Commerce notice of 2 Oct 2020" in line(october, "tiktok-item-1-app-store").reason
    november = decide("tiktok", "cdn", "US", "2020-11-20T00:00:00Z", rulebook=no_courts)
    assert (november.verdict, november.enforcement) == ("prohibited", "suspended")


@pytest.mark.parametrize(
    "app", ["alipay", "camscanner", "qq_wallet", "shareit", "qq", "vmate", "wechat_pay", "wps_office"]
)
def test_eo_13971_named_eight_apps_but_was_never_implemented(app: str) -> None:
    d = decide(app, "payment_processing", "US", "2021-03-01T00:00:00Z")
    assert line(d, "eo-13971-sec-1").status == "authority_only"
    if app != "wechat_pay":  # WeChat Pay is also in the (enjoined) WeChat identification
        assert d.as_written == "not_prohibited"


def test_eo_13971_authority_is_revoked_by_eo_14034() -> None:
    d = decide("alipay", "payment_processing", "US", "2021-07-01T00:00:00Z")
    assert "revoked" in line(d, "eo-13971-sec-1").reason


def test_rescission_alone_ends_the_identifications_from_16_june_2021_once_filed_on_the_21st(rulebook: Rulebook) -> None:
    no_eo = without(rulebook, ids=("eo-14034",))
    assert decide("wechat", "cdn", "US", "2021-06-15T12:00:00Z", rulebook=no_eo).as_written == "prohibited"
    # retroactive to 16 June, but it did not exist until it was filed on 21 June
    assert decide("wechat", "cdn", "US", "2021-06-18T12:00:00Z", rulebook=no_eo).as_written == "prohibited"
    filed = decide("wechat", "cdn", "US", "2021-06-21T12:00:00Z", rulebook=no_eo)
    assert filed.as_written == "revoked"
    assert "2021-06-16T04:00:00Z" in line(filed, "wechat-item-3-cdn").reason


def test_pafaca_covers_every_bytedance_app_but_not_tencent_ones() -> None:
    for app in ("tiktok", "capcut", "lemon8", "douyin"):
        assert decide(app, "app_store_distribution", "US", "2025-06-01T00:00:00Z").as_written == "prohibited"
    assert decide("wechat", "app_store_distribution", "US", "2025-06-01T00:00:00Z").as_written == "revoked"
    # CDN rests on PAFACA's hosting prohibition as read for CDN service, not on the revoked 2020 item alone
    cdn = decide("tiktok", "cdn", "US", "2025-06-01T00:00:00Z")
    assert (cdn.verdict, cdn.as_written, cdn.enforcement) == ("prohibited", "prohibited", "suspended")
    assert line(cdn, "pafaca-2a1-hosting-cdn").status == "prohibited"
    assert any(note.startswith("pafaca-2a1-hosting-cdn: ") and "narrower reading" in note for note in cdn.uncertainties)
    assert decide("tiktok", "transit_peering", "US", "2025-06-01T00:00:00Z").as_written == "revoked"


@pytest.mark.parametrize(
    ("at", "order"),
    [
        ("2025-01-21T12:00:00Z", "EO 14166"),
        ("2025-03-01T00:00:00Z", "EO 14166"),
        ("2025-05-01T00:00:00Z", "EO 14258"),
        ("2025-08-01T00:00:00Z", "EO 14310"),
        ("2025-10-01T00:00:00Z", "EO 14350"),
        ("2026-01-01T00:00:00Z", "EO 14352"),
    ],
)
def test_2025_non_enforcement_orders_annotate_enforcement_not_the_verdict(at: str, order: str) -> None:
    d = decide("tiktok", "internet_hosting", "US", at)
    assert (d.verdict, d.as_written, d.enforcement) == ("prohibited", "prohibited", "suspended")
    assert f"enforcement suspended by {order}" in line(d, "pafaca-2a1-hosting").reason


@pytest.mark.parametrize("app", ["tiktok", "tiktok_lite", "capcut", "lemon8"])
def test_qualified_divestiture_covers_the_joint_venture_apps(app: str) -> None:
    d = decide(app, "app_store_update", "US", "2026-03-01T00:00:00Z")
    assert d.verdict == "not_prohibited"
    assert "pafaca-qualified-divestiture-2026" in [e.exception_id for e in d.exceptions]


def test_qualified_divestiture_does_not_cover_other_bytedance_apps() -> None:
    assert decide("douyin", "app_store_update", "US", "2026-03-01T00:00:00Z").verdict == "prohibited"


def test_government_devices_act_is_implemented_by_omb_m_23_13() -> None:
    d = decide("tiktok", "government_device", "US", "2023-07-01T00:00:00Z")
    assert line(d, "gov-devices-act-sec-102").status == "authority_only"
    assert {"m-23-13-remove", "m-23-13-contracts", "m-23-13-solicitations"} <= set(d.rule_ids)
    assert d.verdict == "prohibited"


@pytest.mark.parametrize(
    ("rule", "deadline"),
    [("m-23-13-remove", "2023-03-29"), ("m-23-13-contracts", "2023-05-28"), ("m-23-13-solicitations", "2023-06-27")],
)
def test_omb_deadlines_of_30_90_and_120_days(rule: str, deadline: str) -> None:
    """A deadline 'by D' binds from the end of D, Eastern time (EDT in spring 2023)."""
    last_moment = decide("tiktok", "government_device", "US", f"{deadline}T23:59:59-04:00")
    assert line(last_moment, rule).status == "not_yet_effective"
    next_day = dt.date.fromisoformat(deadline) + dt.timedelta(days=1)
    bound = decide("tiktok", "government_device", "US", f"{next_day}T00:00:00-04:00")
    assert line(bound, rule).status == "prohibited"


@pytest.mark.parametrize("fact", ["agency_exception_granted", "personally_owned_device", "contractor_incidental_use"])
def test_government_device_exceptions_read_their_facts(fact: str) -> None:
    at = "2024-01-01T00:00:00Z"
    assert decide("tiktok", "government_device", "US", at, facts={fact: "false"}).verdict == "prohibited"
    d = decide("tiktok", "government_device", "US", at, facts={fact: "true"})
    assert d.verdict == "not_prohibited" and len(d.exceptions) == 1


def test_government_devices_rule_is_about_tiktok_not_capcut() -> None:
    assert decide("capcut", "government_device", "US", "2024-01-01T00:00:00Z").verdict == "not_prohibited"


def test_montana_sb_419_is_enjoined_then_void_after_the_divestiture() -> None:
    enjoined = decide("tiktok", "app_store_distribution", "US-MT", "2024-06-01T00:00:00Z")
    assert line(enjoined, "mt-sb-419-app-stores").status == "enjoined"
    assert "Alario" in line(enjoined, "mt-sb-419-app-stores").reason
    void = decide("tiktok", "app_store_distribution", "US-MT", "2026-03-01T00:00:00Z")
    assert line(void, "mt-sb-419-app-stores").status == "revoked"
    assert decide("tiktok", "app_store_distribution", "US-CA", "2024-06-01T00:00:00Z").rule_ids == [
        "tiktok-item-1-app-store",
        "pafaca-2a1-marketplace",
    ]


@pytest.mark.parametrize(
    ("app", "first_day"),
    [
        ("tiktok", "2020-06-29"),
        ("wechat", "2020-06-29"),
        ("shareit", "2020-06-29"),
        ("uc_browser", "2020-06-29"),
        ("camscanner", "2020-06-29"),
        ("tiktok_lite", "2020-07-24"),
        ("vmate", "2020-06-29"),
        ("qq_international", "2020-06-29"),
        ("aliexpress", "2020-11-24"),
        ("alipay", "2020-09-02"),
        ("wecom", "2020-09-02"),
    ],
)
def test_india_blocking_orders_apply_in_india_only(app: str, first_day: str) -> None:
    start = f"{first_day}T00:00:00+05:30"
    assert decide(app, "app_store_distribution", "IN", start).verdict == "prohibited"
    assert decide(app, "transit_peering", "IN-MH", f"{first_day}T12:00:00+05:30").verdict == "prohibited"
    before = dt.datetime.fromisoformat(start) - dt.timedelta(seconds=1)
    assert decide(app, "app_store_distribution", "IN", before).verdict == "not_prohibited"  # not yet made
    assert decide(app, "app_store_distribution", "BD", f"{first_day}T12:00:00+06:00").verdict == "not_prohibited"


def test_decision_reports_the_rulebook_version(rulebook: Rulebook) -> None:
    assert decide("tiktok", "cdn", "US", "2021-01-01T00:00:00Z").rulebook_version == rulebook.version


def test_citations_include_the_instruments_that_changed_the_status() -> None:
    enjoined = decide("tiktok", "cdn", "US", "2020-12-10T00:00:00Z")
    cites = " | ".join(c.cite for c in enjoined.citations)
    assert "85 FR 60061" in cites and "Marland v. Trump" in cites
    assert line(enjoined, "tiktok-item-3-cdn").changed_by == ["court-marland-v-trump-2020-10-30"]
    revoked = decide("tiktok", "cdn", "US", "2021-07-01T00:00:00Z")
    assert "86 FR 31423" in " | ".join(c.cite for c in revoked.citations)
    suspended = decide("capcut", "app_store_update", "US", "2025-02-01T00:00:00Z")
    assert "90 FR 8611" in " | ".join(c.cite for c in suspended.citations)
    delayed = decide("tiktok", "app_store_update", "US", "2020-10-01T00:00:00Z")
    assert line(delayed, "tiktok-item-1-app-store").changed_by == [
        "commerce-tiktok-delay-2020-09-19",
        "court-tiktok-v-trump-2020-09-27",
    ]

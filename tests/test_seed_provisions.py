"""Each provision of the September 2020 source reports, as the engine must answer it."""

from __future__ import annotations

import pytest

from appban import decide

SUNDAY_NIGHT = "2020-09-21T08:00:00-04:00"  # the Monday morning after the WeChat start
AFTER_NOV_12 = "2020-11-20T12:00:00-05:00"


@pytest.mark.parametrize("category", ["internet_hosting", "cdn", "transit_peering", "constituent_code_use"])
def test_wechat_network_and_code_items_bite_from_sunday_as_written(category: str) -> None:
    d = decide("wechat", category, "US", SUNDAY_NIGHT)
    assert d.as_written == "prohibited"
    assert d.verdict == "enjoined"  # U.S. WeChat Users Alliance v. Trump, 19 Sept 2020
    assert "enjoined by U.S. WeChat Users Alliance" in next(
        line.reason for line in d.rules if line.status == "enjoined"
    )


@pytest.mark.parametrize("category", ["app_store_distribution", "app_store_update"])
def test_wechat_app_store_items_from_sunday(category: str) -> None:
    """ "As of September 20, 2020": from the start of Sunday, Eastern time."""
    saturday = decide("wechat", category, "US", "2020-09-19T23:59:59-04:00")
    sunday = decide("wechat", category, "US", "2020-09-20T00:00:00-04:00")
    after = decide("wechat", category, "US", SUNDAY_NIGHT)
    assert saturday.as_written == "not_yet_effective"
    assert sunday.as_written == after.as_written == "prohibited"


@pytest.mark.parametrize("app", ["wechat", "wechat_pay", "WeChat Pay", "微信支付"])
@pytest.mark.parametrize("category", ["funds_transfer", "payment_processing"])
def test_wechat_funds_transfers_and_payment_processing(app: str, category: str) -> None:
    d = decide(app, category, "US", SUNDAY_NIGHT)
    assert d.as_written == "prohibited"
    assert "wechat-item-6-payments" in d.rule_ids


def test_tiktok_has_no_payments_item() -> None:
    d = decide("tiktok", "payment_processing", "US", AFTER_NOV_12)
    assert d.verdict == d.as_written == "not_prohibited"


def test_tiktok_app_store_ban_first_then_the_four_functioning_items_from_november_12() -> None:
    october = "2020-10-15T12:00:00-04:00"
    assert decide("tiktok", "app_store_update", "US", october).as_written == "prohibited"
    for category in ("internet_hosting", "cdn", "transit_peering", "constituent_code_use"):
        assert decide("tiktok", category, "US", october).as_written == "not_yet_effective"
        assert decide("tiktok", category, "US", AFTER_NOV_12).as_written == "prohibited"


def test_users_sending_funds_to_each_other_are_excepted_only_when_the_fact_is_given() -> None:
    unknown = decide("wechat", "funds_transfer", "US", SUNDAY_NIGHT)
    assert "wechat-exc-user-funds" in [e.exception_id for e in unknown.possible_exceptions]
    user_to_user = decide("wechat", "funds_transfer", "US", SUNDAY_NIGHT, facts={"user_to_user_transfer": True})
    assert user_to_user.verdict == user_to_user.as_written == "not_prohibited"
    assert [e.exception_id for e in user_to_user.exceptions] == ["wechat-exc-user-funds"]
    business = decide("wechat", "funds_transfer", "US", SUNDAY_NIGHT, facts={"user_to_user_transfer": "false"})
    assert business.as_written == "prohibited"


@pytest.mark.parametrize("app", ["wechat", "tiktok"])
def test_individual_users_are_not_targeted(app: str) -> None:
    d = decide(app, "user_personal_use", "US", AFTER_NOV_12)
    assert d.verdict == d.as_written == "not_prohibited"
    assert d.exceptions, "the answer names the exception that leaves users alone"


def test_doj_statement_that_wechat_users_are_not_targeted_is_cited() -> None:
    d = decide("wechat", "user_personal_use", "US", SUNDAY_NIGHT)
    ids = [e.exception_id for e in d.exceptions]
    assert "doj-wechat-individual-users" in ids and "wechat-exc-user-exchange" in ids


def test_us_companies_doing_business_on_wechat_outside_the_us() -> None:
    d = decide("wechat", "business_outside_us", "US", SUNDAY_NIGHT)
    assert d.verdict == "not_prohibited"
    assert "wechat-exc-business-outside-us" in [e.exception_id for e in d.exceptions]


@pytest.mark.parametrize("app", ["tencent_games", "Tencent Games", "qq"])
def test_other_tencent_businesses_such_as_games_are_not_covered(app: str) -> None:
    d = decide(app, "payment_processing", "US", SUNDAY_NIGHT)
    assert d.verdict == d.as_written == "not_prohibited"
    assert "eo-13943-other-tencent-business" in [e.exception_id for e in d.exceptions]


@pytest.mark.parametrize("app", ["wechat", "tiktok"])
@pytest.mark.parametrize("where", ["DE", "CN", "GB", "JP"])
def test_app_stores_outside_the_us_are_not_covered(app: str, where: str) -> None:
    d = decide(app, "app_store_distribution", where, AFTER_NOV_12)
    assert d.verdict == d.as_written == "not_prohibited"
    assert any("outside" in e.label.lower() for e in d.exceptions)


@pytest.mark.parametrize("where", ["US", "US-CA", "PR", "US-PR", "GU", "VI", "AS", "MP", "UM"])
def test_territorial_scope_covers_us_states_and_territories(where: str) -> None:
    assert decide("tiktok", "cdn", where, AFTER_NOV_12).as_written == "prohibited"


def test_conditional_lift_by_november_12_is_a_note_on_tiktok_decisions() -> None:
    d = decide("tiktok", "app_store_distribution", "US", "2020-10-01T00:00:00Z")
    assert any("November 12" in note and "lifted" in note for note in d.notes)


def test_look_alike_warning_is_part_of_both_identifications() -> None:
    for app, category in (("tiktok", "constituent_code_use"), ("wechat", "constituent_code_use")):
        d = decide(app, category, "US", AFTER_NOV_12)
        assert any("replicated by another app" in note for note in d.notes)


def test_constituent_code_items_cite_their_notices() -> None:
    tiktok = decide("tiktok", "constituent_code_use", "US", AFTER_NOV_12)
    assert "85 FR 60061" in " ".join(c.cite for c in tiktok.citations)
    wechat = decide("wechat", "constituent_code_use", "US", SUNDAY_NIGHT)
    assert any("13943" in c.cite for c in wechat.citations)

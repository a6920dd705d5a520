"""The shared vocabulary: transaction categories, verdicts and per-rule statuses.

The names are the ones in the project's architecture guide; they are part of the public API (CLI,
JSON output, Arrow columns), so they are string enums whose values never change meaning.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """A kind of transaction an instrument can prohibit or carve out."""

    APP_STORE_DISTRIBUTION = "app_store_distribution"
    APP_STORE_UPDATE = "app_store_update"
    INTERNET_HOSTING = "internet_hosting"
    CDN = "cdn"
    TRANSIT_PEERING = "transit_peering"
    CONSTITUENT_CODE_USE = "constituent_code_use"
    FUNDS_TRANSFER = "funds_transfer"
    PAYMENT_PROCESSING = "payment_processing"
    USER_PERSONAL_USE = "user_personal_use"
    BUSINESS_OUTSIDE_US = "business_outside_us"
    GOVERNMENT_DEVICE = "government_device"


class Verdict(StrEnum):
    """The answer to "is this transaction prohibited at instant T?"."""

    PROHIBITED = "prohibited"
    ENJOINED = "enjoined"
    NOT_YET_EFFECTIVE = "not_yet_effective"
    REVOKED = "revoked"
    NOT_PROHIBITED = "not_prohibited"


class Enforcement(StrEnum):
    """Whether the executive enforces a prohibition that is in force (kept apart from the verdict)."""

    ENFORCEABLE = "enforceable"
    SUSPENDED = "suspended"  # an executive non-enforcement direction covers every prohibiting rule
    NOT_APPLICABLE = "not_applicable"  # nothing is in force, so there is nothing to enforce


class RuleStatus(StrEnum):
    """What one rule says about one transaction at one instant (a line of the rule trail)."""

    PROHIBITED = "prohibited"
    ENJOINED = "enjoined"
    NOT_YET_EFFECTIVE = "not_yet_effective"
    REVOKED = "revoked"
    EXCEPTED = "excepted"  # the rule would cover it, but an exception of the law carves it out
    NOT_COVERED = "not_covered"  # the rule is about this app but not this category or place
    AUTHORITY_ONLY = "authority_only"  # an order that authorises prohibitions but prohibits nothing itself


# When several rules cover one transaction, the rule whose status comes first here decides the
# verdict: one rule in force outweighs any number of enjoined or revoked ones; a rule still to come
# outweighs one already revoked; and a rule that is alive but carved out by an exception ("not
# prohibited because the current law says so") outweighs an old rule that was revoked.
STATUS_PRECEDENCE: tuple[RuleStatus, ...] = (
    RuleStatus.PROHIBITED,
    RuleStatus.ENJOINED,
    RuleStatus.NOT_YET_EFFECTIVE,
    RuleStatus.EXCEPTED,
    RuleStatus.REVOKED,
    RuleStatus.NOT_COVERED,
    RuleStatus.AUTHORITY_ONLY,
)

STATUS_TO_VERDICT: dict[RuleStatus, Verdict] = {
    RuleStatus.PROHIBITED: Verdict.PROHIBITED,
    RuleStatus.ENJOINED: Verdict.ENJOINED,
    RuleStatus.NOT_YET_EFFECTIVE: Verdict.NOT_YET_EFFECTIVE,
    RuleStatus.REVOKED: Verdict.REVOKED,
    RuleStatus.EXCEPTED: Verdict.NOT_PROHIBITED,
    RuleStatus.NOT_COVERED: Verdict.NOT_PROHIBITED,
    RuleStatus.AUTHORITY_ONLY: Verdict.NOT_PROHIBITED,
}


def combine(statuses: list[RuleStatus]) -> Verdict:
    """The verdict of several rules' statuses (NOT_PROHIBITED when no rule is about the app)."""
    if not statuses:
        return Verdict.NOT_PROHIBITED
    return STATUS_TO_VERDICT[min(statuses, key=STATUS_PRECEDENCE.index)]

"""Suppressions (the configuration's `[[ignore]]` list) and baselines, applied to a command's findings.

An entry names what it accepts (a finding's fingerprint, or any of command, app, signature, category, file glob
and package URL: all it names must match), why, and until when. A suppressed finding stays in the output,
listed with its reason apart from the findings and counted; only the gate (--fail-on) passes it over. An
entry whose date has passed suppresses nothing any more and is warned about, so an accepted risk is looked at
again rather than forgotten.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from appban.baseline import Facts, absolute, relative

if TYPE_CHECKING:
    from appban.code.scan import ScanResult
    from appban.configschema import IgnoreEntry

T = TypeVar("T")


@dataclass(frozen=True)
class Suppression:
    reason: str
    until: dt.date
    source: str  # file:line of the entry
    match: dict[str, str]  # matcher name -> value, only those given
    root: Path = Path(".")  # `path` globs are relative to it: the configuration file's directory

    @classmethod
    def from_entry(cls, entry: IgnoreEntry, source: str, root: Path) -> Suppression:
        from appban.configschema import MATCHERS

        given = {name: getattr(entry, name) for name in MATCHERS if getattr(entry, name) is not None}
        return cls(entry.reason, entry.until, source, given, root)

    def expired(self, today: dt.date) -> bool:
        """Past its date: an entry suppresses through the day it names."""
        return today > self.until

    def matches(self, facts: Facts) -> bool:
        for name, wanted in self.match.items():
            if name == "id" and wanted != facts.fingerprint:
                return False
            if name == "command" and " ".join(wanted.split()) != facts.command:
                return False
            if name == "app" and wanted.casefold() != facts.app.casefold():
                return False
            if name == "signature" and wanted != facts.rule:
                return False
            if name == "category" and wanted.casefold().replace("-", "_") not in facts.categories:
                return False
            # fnmatch's "*" also crosses "/" and "!/": "libs/*" is everything under libs/.
            if name == "path" and not fnmatchcase(relative(facts.origin, self.root), wanted.removeprefix("./")):
                return False
            if name == "package" and not any(_same_package(wanted, purl) for purl in facts.packages):
                return False
        return True

    def to_json_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "until": self.until.isoformat(), "source": self.source, "match": self.match}


def _same_package(wanted: str, purl: str) -> bool:
    """A package URL without a version matches every version of that package; with one, only that one."""
    wanted = wanted.strip()
    if "@" in wanted.rsplit("/", 1)[-1]:
        return wanted == purl
    return purl.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[0] == wanted if "@" in purl else purl == wanted


@dataclass
class Review(Generic[T]):
    """Findings after suppressions and a baseline: what is reported, what is accepted, what was known."""

    active: list[T] = field(default_factory=list)
    suppressed: list[tuple[T, Suppression]] = field(default_factory=list)
    unchanged: int = 0  # in the baseline, so not reported
    known: int = 0  # in the baseline, suppressed or not: 0 with a non-empty baseline suggests another root
    warnings: list[str] = field(default_factory=list)


def review(
    items: Sequence[T],
    facts_of: Callable[[T], Facts],
    suppressions: Sequence[Suppression],
    baseline: set[str] | None,
    today: dt.date | None = None,
) -> Review[T]:
    """Suppressions first (an accepted finding is always listed as such), then the baseline."""
    day = today or dt.datetime.now(dt.UTC).date()
    live = [s for s in suppressions if not s.expired(day)]
    outcome: Review[T] = Review()
    for stale in suppressions:
        if stale.expired(day):
            outcome.warnings.append(
                f"{stale.source}: suppression expired on {stale.until.isoformat()} and no longer applies "
                f"({stale.reason})"
            )
    for item in items:
        facts = facts_of(item)
        entry = next((s for s in live if s.matches(facts)), None)
        in_baseline = baseline is not None and facts.fingerprint in baseline
        outcome.known += in_baseline
        if entry is not None:
            outcome.suppressed.append((item, entry))
        elif in_baseline:
            outcome.unchanged += 1
        else:
            outcome.active.append(item)
    return outcome


def scan_facts(result: ScanResult, base: Path) -> Callable[[Any], Facts]:
    """How a `scan` finding is identified, its path taken relative to `base` (appban.baseline.identity_root)."""
    from appban.report.cyclonedx import purl_of

    def facts(finding: Any) -> Facts:
        purls = tuple(str(p) for p in (purl_of(package) for package in finding.packages) if p is not None)
        return Facts(
            "scan",
            relative(finding.path, base),
            finding.signature.app,
            finding.signature.id,
            tuple(finding.decisions),
            purls,
            absolute(finding.path),
        )

    return facts


def apply_to_scan(
    result: ScanResult, base: Path, suppressions: Sequence[Suppression], baseline: set[str] | None
) -> Review[Any]:
    """Give every finding its fingerprint, move the suppressed ones to `result.suppressed`, drop those the
    baseline knows (counted in `result.unchanged`); the review is returned for its counts and warnings."""
    facts_of = scan_facts(result, base)
    for finding in result.findings:
        finding.fingerprint = facts_of(finding).fingerprint
    outcome = review(result.findings, facts_of, suppressions, baseline)
    result.findings = outcome.active
    result.suppressed = [finding for finding, _ in outcome.suppressed]
    for finding, entry in outcome.suppressed:
        finding.suppression = entry
    result.unchanged = outcome.unchanged if baseline is not None else None
    return outcome

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
    import pyarrow as pa

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
            # "screen.inventory" (the configuration's section name) and "screen inventory" are one command.
            if name == "command" and " ".join(wanted.replace(".", " ").split()) != facts.command:
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


# The columns a screen's findings table gains: its identity and, for an accepted finding, the entry accepting it.
REVIEW_COLUMNS = ("fingerprint", "suppressed", "suppression_reason", "suppression_until", "suppression_source")


@dataclass
class TableReview:
    """A screen's findings table split by the review: `active` is what is counted and summarised."""

    active: pa.Table
    suppressed: pa.Table
    outcome: Review[int]


def table_facts(command: str, row: dict[str, Any], fields: Sequence[str], base: Path) -> Facts:
    """A screen finding's identity: the command, its file relative to `base`, the app, and the record's own
    identifying fields (never its line, which moves when rows are added above it)."""
    file = str(row.get("file") or "")
    rule = "\x1f".join("" if row.get(name) is None else str(row.get(name)) for name in fields)
    category = row.get("transaction") or row.get("category")
    categories = (str(category).casefold().replace("-", "_"),) if category else ()
    return Facts(command, relative(file, base), str(row.get("app") or ""), rule, categories, (), absolute(file))


def apply_to_table(
    command: str,
    table: pa.Table,
    fields: Sequence[str],
    base: Path,
    suppressions: Sequence[Suppression],
    baseline: set[str] | None,
) -> TableReview:
    """Fingerprint every row of a screen's findings, mark the suppressed ones with their entry and drop the
    rows the baseline knows. Both tables returned carry REVIEW_COLUMNS."""
    import pyarrow as pa

    rows = table.select([name for name in ("file", "app", "transaction", *fields) if name in table.column_names])
    facts = [table_facts(command, row, fields, base) for row in rows.to_pylist()]
    outcome = review(range(table.num_rows), lambda index: facts[index], suppressions, baseline)
    entries: dict[int, Suppression] = dict(outcome.suppressed)

    def part(indices: list[int]) -> pa.Table:
        chosen = table.take(pa.array(indices, type=pa.int64()))
        given = [entries.get(index) for index in indices]
        columns = {
            "fingerprint": pa.array([facts[index].fingerprint for index in indices], type=pa.string()),
            "suppressed": pa.array([entry is not None for entry in given], type=pa.bool_()),
            "suppression_reason": pa.array([e.reason if e else None for e in given], type=pa.string()),
            "suppression_until": pa.array([e.until if e else None for e in given], type=pa.date32()),
            "suppression_source": pa.array([e.source if e else None for e in given], type=pa.string()),
        }
        for name, values in columns.items():
            chosen = chosen.append_column(name, values)
        return chosen

    return TableReview(part(outcome.active), part(list(entries)), outcome)

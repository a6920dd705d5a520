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

    def covers_command(self, command: str) -> bool:
        """Whether this entry may apply to `command` ("screen inventory"): it names no command, or this one.
        "screen.inventory" (the configuration's section name) and "screen inventory" are one command."""
        wanted = self.match.get("command")
        return wanted is None or " ".join(wanted.replace(".", " ").split()) == command

    def matches(self, facts: Facts) -> bool:
        for name, wanted in self.match.items():
            if name == "id" and wanted != facts.fingerprint:
                return False
            if name == "command" and not self.covers_command(facts.command):
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


@dataclass(frozen=True)
class Identity:
    """What a screen's finding is known by in a later run, besides its command and app. Never its line, which
    moves when rows are added above it.

    `parts` are the record's fields, in order; a part "customer|client" is the first of those fields with a
    value (written with its name, so that a customer and a client address never read alike). `fallback`
    stands in when every part is empty (a payment without an id: its time, amount and parties). `by_file`:
    whether the file is part of it; a rotated log or a re-exported report holds the same findings under
    another name, so network and payments leave it out.
    """

    parts: tuple[str, ...]
    app: str = "app"
    by_file: bool = True
    fallback: tuple[str, ...] = ()

    def columns(self, table: pa.Table) -> pa.Table:
        """The columns of `table` a fingerprint or a suppression looks at, a part of alternatives resolved into
        one column named by the part ("client=10.0.0.5"): rows that differ only in what is not part of the
        identity (the client of a known customer) then read alike."""
        import pyarrow as pa
        import pyarrow.compute as pc

        names = table.column_names
        chosen = {name: table.column(name) for name in ("file", self.app, "transaction", "category") if name in names}
        for part in (*self.parts, *self.fallback):
            alternatives = part.split("|")
            if len(alternatives) == 1:
                if part in names:
                    chosen[part] = table.column(part)
                continue
            resolved = pa.nulls(table.num_rows, pa.string())
            for name in reversed(alternatives):  # the first with a value wins
                if name not in names:
                    continue
                values = pc.cast(table.column(name), pa.string())
                given = pc.fill_null(pc.not_equal(values, ""), False)
                resolved = pc.if_else(given, pc.binary_join_element_wise(f"{name}=", values, ""), resolved)
            chosen[part] = resolved
        return pa.table(chosen) if chosen else pa.table({"": pa.nulls(table.num_rows)})

    def rule(self, row: dict[str, Any]) -> str:
        """The record's part of the fingerprint, from a row of `columns`."""
        values = [_text(row.get(part)) for part in self.parts]
        if self.fallback and not any(values):
            return "\x1e" + "\x1f".join(f"{name}={_text(row.get(name))}" for name in self.fallback)
        return "\x1f".join(values)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class TableReview:
    """A screen's findings table split by the review: `active` is what is counted, summarised and gated on.
    Counts are of rows."""

    active: pa.Table
    suppressed: pa.Table
    unchanged: int = 0  # rows in the baseline, so not reported
    known: int = 0  # rows in the baseline, suppressed or not
    warnings: list[str] = field(default_factory=list)


def table_facts(
    command: str, row: dict[str, Any], identity: Identity, base: Path, paths: dict[str, tuple[str, str]] | None = None
) -> Facts:
    """A screen finding's identity: the command, its file relative to `base` (when the identity holds the file),
    the app, and the record's own identifying fields. `paths` keeps each file's two forms for the next row."""
    file = str(row.get("file") or "")
    known = paths.get(file) if paths is not None else None
    if known is None:
        known = (relative(file, base) if file else "", absolute(file) if file else "")
        if paths is not None:
            paths[file] = known
    category = row.get("transaction") or row.get("category")
    categories = (str(category).casefold().replace("-", "_"),) if category else ()
    app = str(row.get(identity.app) or "")
    return Facts(command, known[0] if identity.by_file else "", app, identity.rule(row), categories, (), known[1])


def apply_to_table(
    command: str,
    table: pa.Table,
    identity: Identity,
    base: Path,
    suppressions: Sequence[Suppression],
    baseline: set[str] | None,
) -> TableReview:
    """Fingerprint every row of a screen's findings, mark the suppressed ones with their entry and drop the
    rows the baseline knows. Both tables returned carry REVIEW_COLUMNS.

    Rows alike in every field a fingerprint or a suppression looks at (a host seen a million times by one
    customer) are reviewed once: the work grows with the distinct findings, not with the log."""
    import numpy as np
    import pyarrow as pa

    keys = identity.columns(table)
    groups, first = _row_groups(keys)
    paths: dict[str, tuple[str, str]] = {}
    facts = [table_facts(command, row, identity, base, paths) for row in keys.take(pa.array(first)).to_pylist()]
    outcome = review(range(len(facts)), lambda group: facts[group], suppressions, baseline)
    entries: dict[int, Suppression] = dict(outcome.suppressed)
    active_groups = np.zeros(len(facts), dtype=np.bool_)
    active_groups[np.asarray(outcome.active, dtype=np.int64)] = True
    suppressed_groups = np.zeros(len(facts), dtype=np.bool_)
    suppressed_groups[np.fromiter(entries, dtype=np.int64, count=len(entries))] = True
    known_groups = np.array([baseline is not None and f.fingerprint in baseline for f in facts], dtype=np.bool_)
    listed = [entries.get(group) for group in range(len(facts))]
    per_group = {
        "fingerprint": pa.array([f.fingerprint for f in facts], type=pa.string()),
        "suppressed": pa.array(suppressed_groups, type=pa.bool_()),
        "suppression_reason": pa.array([e.reason if e else None for e in listed], type=pa.string()),
        "suppression_until": pa.array([e.until if e else None for e in listed], type=pa.date32()),
        "suppression_source": pa.array([e.source if e else None for e in listed], type=pa.string()),
    }

    def part(rows: Any) -> pa.Table:
        chosen = table.take(pa.array(rows, type=pa.int64()))
        of_rows = pa.array(groups[rows], type=pa.int64())
        for name, values in per_group.items():
            chosen = chosen.append_column(name, values.take(of_rows))
        return chosen

    unchanged = ~active_groups & ~suppressed_groups
    return TableReview(
        part(np.flatnonzero(active_groups[groups])),
        part(np.flatnonzero(suppressed_groups[groups])),
        int(unchanged[groups].sum()),
        int(known_groups[groups].sum()),
        outcome.warnings,
    )


def _row_groups(keys: pa.Table) -> tuple[Any, Any]:
    """Per row, the number of its group of rows equal in every column of `keys`; per group, its first row.
    Each column's values are coded (a null is a value of its own) and the codes combined into one integer per
    row, so that one sort of integers finds the groups."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    key = np.zeros(keys.num_rows, dtype=np.int64)
    size = 1  # key < size
    for column in keys.columns:
        values = column.combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        encoded = pc.dictionary_encode(values)
        width = len(encoded.dictionary) + 1
        codes = np.asarray(pc.fill_null(encoded.indices.cast(pa.int64()), -1)) + 1
        if size * width >= 1 << 62:  # renumber the groups so far before the product could overflow
            _, key = np.unique(key, return_inverse=True)
            size = int(key.max()) + 1 if len(key) else 1
        key = key * width + codes
        size *= width
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return np.asarray(inverse, dtype=np.int64).reshape(-1), np.asarray(first, dtype=np.int64)

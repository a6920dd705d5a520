"""A reference evaluator of the rulebook, written apart from the engine to check it.

It reads the instruments as loaded and applies the law's rules one by one at the instant asked: no
resolved law, no segments, no caches, nothing from `appban.engine`. It answers only what the verdict
turns on (verdict, as written, enforcement and the covering rules), so that `decide()` and
`decide_table()` can be compared with it on many random questions.

The rules, as the README states them:
- an instrument counts only from the instant it was made (`made`); before it, it changes nothing;
- a prohibition's start is its own, or that of the last delay made by the instant;
- a rule ended by its sunset or a revocation at or before the instant is revoked (even before it began);
- else an exception whose scope and facts hold carves it out; else it is not yet effective before its
  start; else enjoined while an injunction is active; else prohibited, with enforcement suspended while a
  non-enforcement direction is active;
- the verdict is the status first in: prohibited, enjoined, not yet effective, excepted, revoked.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

from appban.rulebook.loader import Rulebook
from appban.rulebook.schema import Change, Instrument, Prohibition

ORDER = ["prohibited", "enjoined", "not_yet_effective", "excepted", "revoked", "not_covered"]
VERDICT = {
    "prohibited": "prohibited",
    "enjoined": "enjoined",
    "not_yet_effective": "not_yet_effective",
    "revoked": "revoked",
    "excepted": "not_prohibited",
    "not_covered": "not_prohibited",
}


def fold(name: str) -> str:
    return " ".join(name.casefold().replace("_", " ").replace("-", " ").split())


def subject_of(book: Rulebook, app: str) -> str:
    for key, subject in book.subjects.subjects.items():
        if fold(app) in {fold(key), fold(subject.name), *(fold(alias) for alias in subject.aliases)}:
            return key
    raise KeyError(app)


def about(book: Rulebook, item: Any, subject: str) -> bool:
    if subject in getattr(item, "except_subjects", []):
        return False
    if not item.subjects and not item.companies:
        return True
    return subject in item.subjects or book.subjects.subjects[subject].company in item.companies


def in_place(book: Rulebook, code: str, place: str) -> bool:
    group = book.places.groups.get(place)
    members = group.members if group else [place]
    return any(code == member or code.startswith(member + "-") for member in members)


def place_ok(book: Rulebook, item: Any, code: str) -> bool:
    if item.places and not any(in_place(book, code, place) for place in item.places):
        return False
    return not any(in_place(book, code, place) for place in item.not_places)


@functools.cache
def families(book: Rulebook) -> dict[str, set[str]]:
    """For each instrument, itself and those resting on it, directly or not (worked out once per rulebook:
    it is the rulebook's shape, not an answer)."""
    out: dict[str, set[str]] = {}
    for start in book.instruments:
        found = {start}
        while True:
            more = {i.id for i in book.instruments.values() if i.id not in found and found & set(i.authority)}
            if not more:
                break
            found |= more
        out[start] = found
    return out


def targets(book: Rulebook, ids: list[str], prohibition: Prohibition, owner: Instrument) -> bool:
    """Whether a change or exception naming `ids` reaches this prohibition."""
    family = families(book)
    return any(target == prohibition.id or (target in family and owner.id in family[target]) for target in ids)


def rule_status(
    book: Rulebook,
    owner: Instrument,
    rule: Prohibition,
    subject: str,
    category: str,
    where: str,
    at: dt.datetime,
    facts: Mapping[str, object],
) -> tuple[str, str, bool]:
    """(status, as written, enforcement suspended) of one prohibition made by `at`."""
    if category not in rule.categories:
        return "not_covered", "not_covered", False
    lifted = bool(rule.anywhere_if) and all(facts.get(k) == v for k, v in rule.anywhere_if.items())
    if not place_ok(book, rule, where) and not lifted:
        return "not_covered", "not_covered", False
    known = [i for i in book.instruments.values() if i.made.instant <= at]
    changes = [(i, c) for i in known for c in i.changes if targets(book, c.targets, rule, owner)]
    start = rule.from_.instant
    delays = [(i.made.instant, c.from_.instant, c) for i, c in changes if c.kind == "delay"]
    if delays:
        last = max(delays, key=lambda d: (d[0], d[1]))[2]
        assert isinstance(last, Change) and last.new_start is not None
        start = last.new_start.instant
    ends = [rule.until.instant] if rule.until is not None else []
    ends += [c.from_.instant for _, c in changes if c.kind == "revoke" and about(book, c, subject)]
    if any(end <= at for end in ends):
        return "revoked", "revoked", False
    for instrument in known:
        for exception in instrument.exceptions:
            if not targets(book, exception.applies_to, rule, owner):
                continue
            if exception.categories and category not in exception.categories:
                continue
            if not place_ok(book, exception, where):
                continue
            if exception.from_ is not None and at < exception.from_.instant:
                continue
            if exception.until is not None and at >= exception.until.instant:
                continue
            if (exception.subjects or exception.companies) and not about(book, exception, subject):
                continue
            if all(facts.get(k) == v for k, v in exception.facts.items()):
                return "excepted", "excepted", False
    if at < start:
        return "not_yet_effective", "not_yet_effective", False

    def active(kind: str) -> bool:
        return any(
            c.kind == kind
            and about(book, c, subject)
            and c.from_.instant <= at
            and (c.until is None or at < c.until.instant)
            for _, c in changes
        )

    if active("enjoin"):
        return "enjoined", "prohibited", False
    return "prohibited", "prohibited", active("non_enforcement")


def reference_decision(
    book: Rulebook, app: str, category: str, where: str, at: dt.datetime, facts: Mapping[str, object] | None = None
) -> dict[str, Any]:
    """verdict, as_written, enforcement and the covering rule ids, from the instruments made by `at`."""
    facts = dict(facts or {})
    subject = subject_of(book, app)
    statuses: list[tuple[str, str, bool, str]] = []
    for instrument in book.instruments.values():
        if instrument.made.instant > at:
            continue
        for rule in instrument.prohibitions:
            if about(book, rule, subject):
                status, written, suspended = rule_status(book, instrument, rule, subject, category, where, at, facts)
                statuses.append((status, written, suspended, rule.id))

    def combine(values: list[str]) -> str:
        return VERDICT[min(values, key=ORDER.index)] if values else "not_prohibited"

    prohibiting = [s for s in statuses if s[0] == "prohibited"]
    if not prohibiting:
        enforcement = "not_applicable"
    elif all(s[2] for s in prohibiting):
        enforcement = "suspended"
    else:
        enforcement = "enforceable"
    return {
        "verdict": combine([s[0] for s in statuses]),
        "as_written": combine([s[1] for s in statuses]),
        "enforcement": enforcement,
        "rule_ids": sorted(s[3] for s in statuses if s[0] != "not_covered"),
    }


def boundaries(book: Rulebook) -> list[dt.datetime]:
    """Every instant the rulebook names: when each instrument was made, and every start, end and reading."""
    found: set[dt.datetime] = set()

    def add(spec: Any) -> None:
        if spec is None:
            return
        found.add(spec.instant)
        found.update(reading.instant for reading in getattr(spec, "readings", []))

    for instrument in book.instruments.values():
        add(instrument.made)
        for items in (instrument.prohibitions, instrument.exceptions, instrument.changes, instrument.authorizations):
            for item in items:
                for name in ("from_", "until", "new_start"):
                    add(getattr(item, name, None))
    return sorted(found)

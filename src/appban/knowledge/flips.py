"""The decisions that flip between two rulebooks: for every app, transaction category and place group, the
stretches of time in which the verdict, the as-written verdict or the enforcement differs between A and B.

The engine's answer for one app, category and place only changes at the instants its law names
(`Law.instants_for`, the breakpoints `timeline` and `decide_table` use). The union of both rulebooks'
instants for an app therefore cuts time into stretches within which neither answer moves; each stretch is
decided in A and in B by the engine itself (`outcome`, the verdict part of `evaluate`), and adjacent stretches
with the same pair of answers are merged. The instruments that make a difference are read from the full
decisions (`evaluate`) of the stretches that flip.

Places: only the places an instrument names (its place groups and ISO codes) can decide differently, so ISO
codes are grouped by which of those places they lie in, in either rulebook; each group is decided once, with
one of its codes. Decisions are taken with no transaction facts stated, as `appban check` takes them without
`--fact`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from appban.engine.decide import Decision, covering_rules, evaluate, outcome
from appban.engine.instants import iso
from appban.engine.law import Law, resolve
from appban.rulebook.loader import Rulebook, valid_place_code
from appban.vocabulary import Category, Enforcement, Verdict

_BEFORE = dt.timedelta(seconds=1)  # a probe inside the stretch before an app's first instant, as timeline takes
ELSEWHERE = "elsewhere"


@dataclass(frozen=True)
class Answer:
    verdict: Verdict
    as_written: Verdict
    enforcement: Enforcement

    def to_json_dict(self) -> dict[str, str]:
        return {
            "verdict": self.verdict.value,
            "as_written": self.as_written.value,
            "enforcement": self.enforcement.value,
        }

    def __str__(self) -> str:
        shown = self.verdict.value
        if self.as_written != self.verdict:
            shown += f" (as written {self.as_written.value})"
        if self.enforcement is not Enforcement.NOT_APPLICABLE:
            shown += f", {self.enforcement.value}"
        return shown


@dataclass(frozen=True)
class PlaceGroup:
    """ISO codes that every named place of either rulebook treats alike; decided with `where`."""

    name: str  # a named place the group is ("US", "US-MT", "IN"), or "elsewhere"
    where: str  # the ISO code the group is decided with
    codes: tuple[str, ...]  # the named codes that fall in it (none for "elsewhere")
    key: tuple[tuple[bool, ...], tuple[bool, ...]]  # in which named places it lies, in A and in B


@dataclass(frozen=True)
class Flip:
    """A stretch of time [start, end) in which A and B answer one app, category and place group differently."""

    app: str
    category: Category
    place_group: str
    where: str
    start: dt.datetime | None  # None: from the beginning
    end: dt.datetime | None  # None: open, to this day and on
    a: Answer
    b: Answer
    instruments: tuple[str, ...]  # the instruments that make the difference

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "category": self.category.value,
            "place_group": self.place_group,
            "where": self.where,
            "from": iso(self.start) if self.start is not None else None,
            "until": iso(self.end) if self.end is not None else None,
            "a": self.a.to_json_dict(),
            "b": self.b.to_json_dict(),
            "instruments": list(self.instruments),
        }

    def row(self) -> dict[str, Any]:
        """The flat form, for CSV and Parquet."""
        return {
            "app": self.app,
            "category": self.category.value,
            "place_group": self.place_group,
            "where": self.where,
            "from": self.start,
            "until": self.end,
            "a_verdict": self.a.verdict.value,
            "a_as_written": self.a.as_written.value,
            "a_enforcement": self.a.enforcement.value,
            "b_verdict": self.b.verdict.value,
            "b_as_written": self.b.as_written.value,
            "b_enforcement": self.b.enforcement.value,
            "instruments": list(self.instruments),
        }


ROW_COLUMNS = [
    "app",
    "category",
    "place_group",
    "where",
    "from",
    "until",
    "a_verdict",
    "a_as_written",
    "a_enforcement",
    "b_verdict",
    "b_as_written",
    "b_enforcement",
    "instruments",
]


def named_places(book: Rulebook) -> set[str]:
    """Every place (group or ISO code) an item of the rulebook names: only these tell places apart."""
    found: set[str] = set()
    for _, item in book.items():
        found.update(getattr(item, "places", ()))
        found.update(getattr(item, "not_places", ()))
    return found


def place_groups(a: Rulebook, b: Rulebook) -> list[PlaceGroup]:
    """The distinct legal situations of place under A and B, each once, in a fixed order."""
    named = sorted(named_places(a) | named_places(b))
    codes: set[str] = set()
    for book in (a, b):
        for place in named:
            codes.update(book.place_members(place))
    codes = {code for code in codes if valid_place_code(code)}
    outside = _code_outside(a, b, named)
    by_key: dict[tuple[tuple[bool, ...], tuple[bool, ...]], list[str]] = {}
    for code in sorted(codes):
        by_key.setdefault(_place_key(a, b, named, code), []).append(code)
    groups: list[PlaceGroup] = []
    for key, members in by_key.items():
        # A code that is itself a named place ("US", the group and its member) names the group best.
        chosen = next((code for code in members if code in named), members[0])
        groups.append(PlaceGroup(chosen, chosen, tuple(members), key))
    if outside is not None:
        key = _place_key(a, b, named, outside)
        if key not in by_key:
            groups.append(PlaceGroup(ELSEWHERE, outside, (), key))
    return groups


def _place_key(a: Rulebook, b: Rulebook, named: list[str], code: str) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    return (
        tuple(a.place_matches(code, place) for place in named),
        tuple(b.place_matches(code, place) for place in named),
    )


def _code_outside(a: Rulebook, b: Rulebook, named: list[str]) -> str | None:
    """An ISO country that no named place reaches, to stand for everywhere else (the first, alphabetically)."""
    import pycountry

    for country in sorted(pycountry.countries, key=lambda c: c.alpha_2):
        code = country.alpha_2
        if not any(book.place_matches(code, place) for book in (a, b) for place in named):
            return str(code)
    return None


def group_of(groups: list[PlaceGroup], a: Rulebook, b: Rulebook, code: str) -> PlaceGroup | None:
    """The group an ISO code (`--where`) falls in."""
    named = sorted(named_places(a) | named_places(b))
    key = _place_key(a, b, named, code)
    return next((group for group in groups if group.key == key), None)


def flips(
    a: Rulebook,
    b: Rulebook,
    *,
    apps: Iterable[str] | None = None,
    categories: Iterable[Category] | None = None,
    places: Iterable[PlaceGroup] | None = None,
    changed_instruments: Iterable[str] | None = None,
) -> list[Flip]:
    """Every stretch in which A and B answer differently, by app (subject id), category and place group.

    `apps`, `categories` and `places` limit the search (default: every subject of either rulebook, every
    category, every place group). `changed_instruments` are the ids of instruments added, changed or removed
    between A and B (`appban.knowledge.changes`); where they are among the instruments behind a flip, they
    are the ones named for it. Without them they are worked out here.
    """
    if a.version == b.version:  # a hash of the whole law
        return []  # one law: nothing can flip
    law_a, law_b = resolve(a), resolve(b)
    subjects = sorted(set(apps) if apps is not None else set(a.subjects.subjects) | set(b.subjects.subjects))
    cats = list(categories) if categories is not None else list(Category)
    groups = list(places) if places is not None else place_groups(a, b)
    if changed_instruments is None:
        changed = {key for key in a.instruments.keys() | b.instruments.keys() if _instrument_differs(a, b, key)}
    else:
        changed = set(changed_instruments)
    found: list[Flip] = []
    for subject in subjects:
        found += _subject_flips(law_a, law_b, subject, cats, groups, changed)
    return found


def _instrument_differs(a: Rulebook, b: Rulebook, key: str) -> bool:
    old, new = a.instruments.get(key), b.instruments.get(key)
    return old is None or new is None or old != new


def _instants(law: Law, subject: str) -> set[dt.datetime]:
    return set(law.instants_for(subject)) if subject in law.rulebook.subjects.subjects else set()


def _subject_flips(
    law_a: Law, law_b: Law, subject: str, cats: list[Category], groups: list[PlaceGroup], changed: set[str]
) -> list[Flip]:
    instants = sorted(_instants(law_a, subject) | _instants(law_b, subject))
    if not instants:
        return []  # no rule of either rulebook bears on the app: both answer not prohibited throughout
    # One probe inside each stretch: stretch i runs from starts[i] (None: the beginning) to starts[i + 1].
    probes = [instants[0] - _BEFORE, *instants]
    starts: list[dt.datetime | None] = [None, *instants]
    found: list[Flip] = []
    for group in groups:
        for category in cats:
            answers_a = _answers(law_a, subject, category, group.where, probes)
            answers_b = _answers(law_b, subject, category, group.where, probes)
            i = 0
            while i < len(probes):
                if answers_a[i] == answers_b[i]:
                    i += 1
                    continue
                j = i + 1  # merge the following stretches that flip alike
                while j < len(probes) and (answers_a[j], answers_b[j]) == (answers_a[i], answers_b[i]):
                    j += 1
                behind = _instruments_behind(law_a, law_b, subject, category, group.where, probes[i:j], changed)
                found.append(
                    Flip(
                        app=subject,
                        category=category,
                        place_group=group.name,
                        where=group.where,
                        start=starts[i],
                        end=starts[j] if j < len(starts) else None,
                        a=answers_a[i],
                        b=answers_b[i],
                        instruments=behind,
                    )
                )
                i = j
    return found


def _answers(law: Law, subject: str, category: Category, where: str, probes: list[dt.datetime]) -> list[Answer]:
    """The engine's answer at each probe. An app the rulebook does not know has no rule covering it, and the
    engine answers such a question from no rules at all (not prohibited)."""
    known = subject in law.rulebook.subjects.subjects
    covering = covering_rules(law, subject, category, where, {}) if known else []
    answers: list[Answer] = []
    for at in probes:
        found = outcome(law, covering, subject, category, where, at, {}, known=at)
        answers.append(Answer(found.verdict, found.as_written, found.enforcement))
    return answers


def _instruments_behind(
    law_a: Law,
    law_b: Law,
    subject: str,
    category: Category,
    where: str,
    probes: list[dt.datetime],
    changed: set[str],
) -> tuple[str, ...]:
    """The instruments whose lines differ between A's and B's full decisions in these stretches: each differing
    rule's instrument and the instruments that shaped it in one rulebook only, and the exceptions applied in one
    only. Those among the instruments changed between A and B, where there are any, are the difference."""
    behind: dict[str, None] = {}
    for at in probes:
        decision_a = _decision(law_a, subject, category, where, at)
        decision_b = _decision(law_b, subject, category, where, at)
        for instrument in _differing(decision_a, decision_b):
            behind.setdefault(instrument)
    named = [instrument for instrument in behind if instrument in changed]
    return tuple(sorted(named or behind))


def _decision(law: Law, subject: str, category: Category, where: str, at: dt.datetime) -> Decision | None:
    if subject not in law.rulebook.subjects.subjects:
        return None
    return evaluate(law, subject, category, where, at, {}, later=False)


def _differing(a: Decision | None, b: Decision | None) -> list[str]:
    lines_a = {line.rule_id: line for line in (a.rules if a else [])}
    lines_b = {line.rule_id: line for line in (b.rules if b else [])}
    found: list[str] = []
    for rule_id in sorted(lines_a.keys() | lines_b.keys()):
        old, new = lines_a.get(rule_id), lines_b.get(rule_id)
        if old is not None and new is not None and _same_line(old, new):
            continue
        for line in (old, new):
            if line is not None:
                found.append(line.instrument)
        shaped_a = set(old.changed_by) if old is not None else set()
        shaped_b = set(new.changed_by) if new is not None else set()
        found += sorted(shaped_a ^ shaped_b)
    exceptions_a = {(e.exception_id, e.instrument) for e in (a.exceptions if a else [])}
    exceptions_b = {(e.exception_id, e.instrument) for e in (b.exceptions if b else [])}
    found += sorted(instrument for _, instrument in exceptions_a ^ exceptions_b)
    return found


def _same_line(old: Any, new: Any) -> bool:
    return (old.status, old.as_written, old.enforcement, old.changed_by, old.instrument) == (
        new.status,
        new.as_written,
        new.enforcement,
        new.changed_by,
        new.instrument,
    )

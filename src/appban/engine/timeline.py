"""timeline(): every instant at which the law for an app changes, category by category."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from appban.engine.decide import (
    DecisionInputError,
    Model,
    Outcome,
    covering_rules,
    default_rulebook,
    outcome,
    parse_facts,
    resolve_place,
    resolve_subject,
)
from appban.engine.instants import InstantError, iso, parse_instant
from appban.engine.law import Law, resolve
from appban.knowledge.install import bundle_of
from appban.plain import field, record
from appban.rulebook.loader import Rulebook
from appban.rulebook.schema import Change
from appban.vocabulary import Category, Enforcement, Verdict

_BEFORE = dt.timedelta(seconds=1)


@record
class VerdictChange(Model):
    """An instant at which a category's verdict changes, and the instruments that change it."""

    at: str
    category: Category
    verdict_before: Verdict
    verdict_after: Verdict
    as_written_before: Verdict
    as_written_after: Verdict
    enforcement_before: Enforcement
    enforcement_after: Enforcement
    instruments: list[str]  # the instruments whose items take effect or end at this instant
    items: list[str]
    rule_ids: list[str]


@record
class Timeline(Model):
    """Every change of verdict for an app in a place, category by category."""

    app: str
    subject: str
    where: str
    from_: str | None = field(serialization_alias="from")  # JSON keys never end in "_"
    to: str | None
    initial: dict[Category, Verdict]
    changes: list[VerdictChange]
    rulebook_version: str
    bundle: str | None = None  # the knowledge bundle the rulebook came from; None for the package's own data


def _movers(law: Law, subject: str, instant: dt.datetime) -> tuple[list[str], list[str]]:
    """Which instruments and items start or stop having effect exactly at this instant: an item takes
    effect at its own start, or when its instrument is made if that is later."""
    instruments: list[str] = []
    items: list[str] = []

    def hit(instrument_id: str, item_id: str) -> None:
        if instrument_id not in instruments:
            instruments.append(instrument_id)
        if item_id not in items:
            items.append(item_id)

    def effect(made: dt.datetime, start: dt.datetime | None) -> dt.datetime:
        return made if start is None else max(made, start)

    for rule in law.rules_for(subject):
        if rule.made == instant or rule.prohibition.from_.instant == instant:
            hit(rule.instrument.id, rule.id)
        for delay in rule.delays:
            assert isinstance(delay.item, Change) and delay.item.new_start is not None
            if instant in (delay.made, delay.item.new_start.instant):
                hit(delay.instrument.id, delay.item.id)
                hit(rule.instrument.id, rule.id)
        if rule.prohibition.until is not None and rule.prohibition.until.instant == instant:
            hit(rule.instrument.id, rule.id)
        for applied in (*rule.revocations, *rule.injunctions, *rule.non_enforcements, *rule.exceptions):
            if instant in (effect(applied.made, applied.start), applied.end):
                hit(applied.instrument.id, applied.item.id)
    for applied, _targets in law.exceptions_for(subject):
        if instant in (effect(applied.made, applied.start), applied.end):
            hit(applied.instrument.id, applied.item.id)
    return instruments, items


def timeline(
    app: str,
    where: str = "US",
    start: str | dt.datetime | None = None,
    end: str | dt.datetime | None = None,
    facts: Mapping[str, object] | None = None,
    *,
    tz: str | None = None,
    categories: list[Category] | None = None,
    rulebook: Rulebook | None = None,
) -> Timeline:
    """Every instant in [start, end] at which the verdict, as-written verdict or enforcement of any
    category changes for `app` in `where`, with the instruments that changed it."""
    rulebook = rulebook or default_rulebook()
    subject = resolve_subject(rulebook, app)
    place = resolve_place(where)
    try:
        low = parse_instant(start, tz) if start is not None else None
        high = parse_instant(end, tz) if end is not None else None
    except InstantError as exc:
        raise DecisionInputError("from/to", str(exc)) from None
    if low is not None and high is not None and high < low:
        raise DecisionInputError("from/to", "the end of the range is before its start")
    known = parse_facts(rulebook, facts)
    law = resolve(rulebook)
    cats = categories or list(Category)
    instants = [t for t in law.instants_for(subject) if (low is None or t > low) and (high is None or t <= high)]
    origin = low if low is not None else (instants[0] - _BEFORE if instants else dt.datetime.now(dt.UTC))

    covering = {c: covering_rules(law, subject, c, place, known) for c in cats}
    # A category's outcome reads only the rules that cover it, so it can change only at their instants: at
    # any other instant it is the one before, and is not evaluated again.
    moments = {c: set().union(*(rule.instants() for rule in covering[c])) for c in cats}

    def at(t: dt.datetime, before: dict[Category, Outcome] | None = None) -> dict[Category, Outcome]:
        return {
            c: outcome(law, covering[c], subject, c, place, t, known, known=t)
            if before is None or t in moments[c]
            else before[c]
            for c in cats
        }

    previous = at(origin)
    initial = {c: d.verdict for c, d in previous.items()}
    changes: list[VerdictChange] = []
    for instant in instants:
        current = at(instant, previous)
        movers: tuple[list[str], list[str]] | None = None
        for category in cats:
            before, after = previous[category], current[category]
            if before.key == after.key:
                continue
            movers = movers or _movers(law, subject, instant)
            changes.append(
                VerdictChange(
                    at=iso(instant),
                    category=category,
                    verdict_before=before.verdict,
                    verdict_after=after.verdict,
                    as_written_before=before.as_written,
                    as_written_after=after.as_written,
                    enforcement_before=before.enforcement,
                    enforcement_after=after.enforcement,
                    instruments=movers[0],
                    items=movers[1],
                    rule_ids=list(after.rule_ids),
                )
            )
        previous = current
    return Timeline(
        app=app,
        subject=subject,
        where=place,
        from_=iso(low) if low else None,
        to=iso(high) if high else None,
        initial=initial,
        changes=changes,
        rulebook_version=rulebook.version,
        bundle=bundle_of(rulebook),
    )

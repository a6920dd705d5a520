"""The rulebook resolved for evaluation: each prohibition with everything that later changed it.

Instruments refer to each other by id (a delay names the item it delays, a revocation names the
order it revokes, an injunction names the items it enjoins). Here those references are followed
once per rulebook, so that deciding a transaction only walks a flat list of resolved rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from appban.rulebook.loader import Rulebook
from appban.rulebook.schema import Authorization, Change, InstantSpec, Instrument, LawException, Prohibition


@dataclass(frozen=True)
class Applied:
    """A change (or exception) as it bears on one rule: the item and the instrument it comes from."""

    instrument: Instrument
    item: Change | LawException

    @property
    def start(self) -> dt.datetime | None:
        spec = self.item.from_
        return spec.instant if spec is not None else None

    @property
    def end(self) -> dt.datetime | None:
        return self.item.until.instant if self.item.until is not None else None

    def active(self, at: dt.datetime) -> bool:
        start, end = self.start, self.end
        return (start is None or start <= at) and (end is None or at < end)


@dataclass
class ResolvedRule:
    instrument: Instrument
    prohibition: Prohibition
    start_spec: InstantSpec
    delays: list[Applied] = field(default_factory=list)
    revocations: list[Applied] = field(default_factory=list)
    injunctions: list[Applied] = field(default_factory=list)
    non_enforcements: list[Applied] = field(default_factory=list)
    exceptions: list[Applied] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.prohibition.id


@dataclass
class ResolvedAuthorization:
    instrument: Instrument
    authorization: Authorization
    revocations: list[Applied] = field(default_factory=list)


@dataclass
class Law:
    rulebook: Rulebook
    rules: list[ResolvedRule]
    authorizations: list[ResolvedAuthorization]
    exceptions: list[tuple[Applied, list[ResolvedRule]]]

    def instants_for(self, subject: str) -> list[dt.datetime]:
        """Every instant at which anything about this app can change: the breakpoints of its law."""
        found: set[dt.datetime] = set()
        for rule in self.rules_for(subject):
            found.add(rule.start_spec.instant)
            if rule.prohibition.until is not None:
                found.add(rule.prohibition.until.instant)
            for applied in (*rule.revocations, *rule.injunctions, *rule.non_enforcements, *rule.exceptions):
                found.update(t for t in (applied.start, applied.end) if t is not None)
        for applied, targets in self.exceptions:
            item = applied.item
            if ((item.subjects or item.companies) and self.rulebook.in_scope_subject(item, subject)) or any(
                self.rulebook.in_scope_subject(rule.prohibition, subject) for rule in targets
            ):
                found.update(t for t in (applied.start, applied.end) if t is not None)
        return sorted(found)

    def rules_for(self, subject: str) -> list[ResolvedRule]:
        return [rule for rule in self.rules if self.rulebook.in_scope_subject(rule.prohibition, subject)]


_CACHE: WeakKeyDictionary[Rulebook, Law] = WeakKeyDictionary()


def resolve(rulebook: Rulebook) -> Law:
    """The resolved law for a rulebook (computed once per loaded rulebook)."""
    law = _CACHE.get(rulebook)
    if law is None:
        law = _resolve(rulebook)
        _CACHE[rulebook] = law
    return law


def _descendants(rulebook: Rulebook, instrument_id: str) -> set[str]:
    """The instrument and every instrument resting on it, directly or through others."""
    found = {instrument_id}
    grew = True
    while grew:
        grew = False
        for other in rulebook.instruments.values():
            if other.id not in found and found.intersection(other.authority):
                found.add(other.id)
                grew = True
    return found


def _resolve(rulebook: Rulebook) -> Law:
    rules: dict[str, ResolvedRule] = {}
    authorizations: dict[str, ResolvedAuthorization] = {}
    for instrument in rulebook.instruments.values():
        for prohibition in instrument.prohibitions:
            rules[prohibition.id] = ResolvedRule(instrument, prohibition, prohibition.from_)
        for authorization in instrument.authorizations:
            authorizations[authorization.id] = ResolvedAuthorization(instrument, authorization)

    def reach(target: str) -> tuple[list[ResolvedRule], list[ResolvedAuthorization]]:
        if target in rules:
            return [rules[target]], []
        if target in authorizations:
            return [], [authorizations[target]]
        family = _descendants(rulebook, target)
        return (
            [rule for rule in rules.values() if rule.instrument.id in family],
            [auth for auth in authorizations.values() if auth.instrument.id in family],
        )

    exceptions: list[tuple[Applied, list[ResolvedRule]]] = []
    for instrument in rulebook.instruments.values():
        for change in instrument.changes:
            applied = Applied(instrument, change)
            for target in change.targets:
                hit_rules, hit_auths = reach(target)
                for rule in hit_rules:
                    bucket = {
                        "delay": rule.delays,
                        "revoke": rule.revocations,
                        "enjoin": rule.injunctions,
                        "non_enforcement": rule.non_enforcements,
                    }[change.kind]
                    if applied not in bucket:
                        bucket.append(applied)
                if change.kind == "revoke":
                    for auth in hit_auths:
                        auth.revocations.append(applied)
        for exception in instrument.exceptions:
            applied = Applied(instrument, exception)
            targets: list[ResolvedRule] = []
            for target in exception.applies_to:
                for rule in reach(target)[0]:
                    if rule not in targets:
                        targets.append(rule)
                        rule.exceptions.append(applied)
            exceptions.append((applied, targets))

    for rule in rules.values():
        # The last delay issued sets the start the law as written now gives the item.
        if rule.delays:
            latest = max(rule.delays, key=lambda applied: applied.item.from_.instant)  # type: ignore[union-attr]
            assert isinstance(latest.item, Change) and latest.item.new_start is not None
            rule.start_spec = latest.item.new_start
    return Law(rulebook, list(rules.values()), list(authorizations.values()), exceptions)

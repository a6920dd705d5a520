"""The rulebook resolved for evaluation: each prohibition with everything that later changed it.

Instruments refer to each other by id (a delay names the item it delays, a revocation names the
order it revokes, an injunction names the items it enjoins). Here those references are followed
once per rulebook, so that deciding a transaction only walks a flat list of resolved rules.

Every rule, change and exception keeps the instant its instrument was made (`made`). An answer at T
counts only what had been made by then: `exists(made, known)` is the one test for that, and `known` is
T itself unless a caller asks how the answer at T reads once later instruments exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from appban.rulebook.loader import Rulebook
from appban.rulebook.schema import Authorization, Change, InstantSpec, Instrument, LawException, Prohibition


def exists(made: dt.datetime, known: dt.datetime) -> bool:
    """Whether something made at `made` is part of the law as it stood at `known`."""
    return made <= known


@dataclass(frozen=True)
class Applied:
    """A change (or exception) as it bears on one rule: the item and the instrument it comes from."""

    instrument: Instrument
    item: Change | LawException

    @property
    def made(self) -> dt.datetime:
        return self.instrument.made.instant

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
    delays: list[Applied] = field(default_factory=list)  # in the order they were made
    revocations: list[Applied] = field(default_factory=list)
    injunctions: list[Applied] = field(default_factory=list)
    non_enforcements: list[Applied] = field(default_factory=list)
    exceptions: list[Applied] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.prohibition.id

    @property
    def made(self) -> dt.datetime:
        return self.instrument.made.instant

    def delays_known(self, known: dt.datetime) -> list[Applied]:
        return [applied for applied in self.delays if exists(applied.made, known)]

    def start(self, known: dt.datetime) -> InstantSpec:
        """The start the law as it stood at `known` gives the item: the last delay made by then sets it."""
        delays = self.delays_known(known)
        if not delays:
            return self.prohibition.from_
        item = delays[-1].item
        assert isinstance(item, Change) and item.new_start is not None
        return item.new_start

    def starts(self) -> list[InstantSpec]:
        """Every start the item has had: its own, then each delay's."""
        return [
            self.prohibition.from_,
            *(a.item.new_start for a in self.delays if isinstance(a.item, Change) and a.item.new_start),
        ]

    def instants(self) -> set[dt.datetime]:
        """Every instant at which what this rule says can change: when it and each instrument that changes
        it were made, its starts and end, and when each change or exception starts and ends."""
        found = {self.made, *(spec.instant for spec in self.starts())}
        if self.prohibition.until is not None:
            found.add(self.prohibition.until.instant)
        for applied in (*self.delays, *self.revocations, *self.injunctions, *self.non_enforcements, *self.exceptions):
            found.add(applied.made)
            found.update(t for t in (applied.start, applied.end) if t is not None)
        return found


@dataclass
class ResolvedAuthorization:
    instrument: Instrument
    authorization: Authorization
    revocations: list[Applied] = field(default_factory=list)

    @property
    def made(self) -> dt.datetime:
        return self.instrument.made.instant


@dataclass
class Law:
    rulebook: Rulebook
    rules: list[ResolvedRule]
    authorizations: list[ResolvedAuthorization]
    exceptions: list[tuple[Applied, list[ResolvedRule]]]
    # What bears on each app, worked out once per app: the law's shape, not answers.
    _per_subject: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def _of(self, what: str, subject: str, build: Callable[[], Any]) -> Any:
        key = (what, subject)
        found = self._per_subject.get(key)
        if found is None:
            found = self._per_subject[key] = build()
        return found

    def instants_for(self, subject: str) -> list[dt.datetime]:
        """Every instant at which anything about this app can change: the breakpoints of its law, including
        the instants at which the instruments that bear on it were made."""
        found: set[dt.datetime] = set()
        for rule in self.rules_for(subject):
            found.update(rule.instants())
        for applied, _targets in self.exceptions_for(subject):
            found.add(applied.made)
            found.update(t for t in (applied.start, applied.end) if t is not None)
        for auth in self.authorizations_for(subject):
            found.add(auth.made)
            found.update(applied.made for applied in auth.revocations)
        return sorted(found)

    def exceptions_for(self, subject: str) -> list[tuple[Applied, list[ResolvedRule]]]:
        """Exceptions naming this app, or limiting a rule about it."""
        return self._of("exceptions", subject, lambda: self._exceptions_for(subject))  # type: ignore[no-any-return]

    def _exceptions_for(self, subject: str) -> list[tuple[Applied, list[ResolvedRule]]]:
        return [
            (applied, targets)
            for applied, targets in self.exceptions
            if (
                (applied.item.subjects or applied.item.companies)
                and self.rulebook.in_scope_subject(applied.item, subject)
            )
            or any(self.rulebook.in_scope_subject(rule.prohibition, subject) for rule in targets)
        ]

    def authorizations_for(self, subject: str) -> list[ResolvedAuthorization]:
        return self._of(  # type: ignore[no-any-return]
            "authorizations",
            subject,
            lambda: [a for a in self.authorizations if self.rulebook.in_scope_subject(a.authorization, subject)],
        )

    def made_for(self, subject: str) -> list[tuple[dt.datetime, Instrument]]:
        """The instruments that bear on this app, each with the instant it was made, oldest first."""
        found: dict[str, Instrument] = {}
        for rule in self.rules_for(subject):
            found[rule.instrument.id] = rule.instrument
            for applied in (
                *rule.delays,
                *rule.revocations,
                *rule.injunctions,
                *rule.non_enforcements,
                *rule.exceptions,
            ):
                found[applied.instrument.id] = applied.instrument
        for applied, _ in self.exceptions_for(subject):
            found[applied.instrument.id] = applied.instrument
        for auth in self.authorizations_for(subject):
            found[auth.instrument.id] = auth.instrument
            for applied in auth.revocations:
                found[applied.instrument.id] = applied.instrument
        return sorted(((i.made.instant, i) for i in found.values()), key=lambda pair: (pair[0], pair[1].id))

    def rules_for(self, subject: str) -> list[ResolvedRule]:
        return self._of(  # type: ignore[no-any-return]
            "rules",
            subject,
            lambda: [rule for rule in self.rules if self.rulebook.in_scope_subject(rule.prohibition, subject)],
        )


def resolve(rulebook: Rulebook) -> Law:
    """The resolved law for a rulebook (computed once per loaded rulebook)."""
    law = rulebook.derived.get("law")
    if law is None:
        law = rulebook.derived["law"] = _resolve(rulebook)
    return cast(Law, law)


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
            rules[prohibition.id] = ResolvedRule(instrument, prohibition)
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
        # The last delay made sets the start the law gives the item (see `ResolvedRule.start`).
        rule.delays.sort(key=lambda applied: (applied.made, applied.start or applied.made))
    return Law(rulebook, list(rules.values()), list(authorizations.values()), exceptions)

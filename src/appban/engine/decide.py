"""decide(): is this transaction prohibited at this instant, and why.

The evaluation walks every resolved rule about the app that had been made by the instant, works out
each rule's status at the instant (the rule trail), and combines them. Instruments made after the
instant play no part in the answer; they are listed apart, in `later`, when they would change it. This
is the reference semantics: the batch form in `appban.engine.batch` is built from it and must agree with
it row by row.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, NamedTuple, cast

from appban.engine.instants import InstantError, iso, parse_instant
from appban.engine.law import Applied, Law, ResolvedRule, exists, resolve
from appban.jsontemplate import FilledJSON, JSONTemplate, gap
from appban.knowledge.install import bundle_of
from appban.plain import Record, record
from appban.rulebook.loader import Rulebook, load_rulebook, valid_place_code
from appban.rulebook.schema import Change, Citation, InstantSpec, Instrument, LawException, Prohibition
from appban.vocabulary import Category, Enforcement, RuleStatus, Verdict, combine


class DecisionInputError(ValueError):
    """A bad app, category, place, instant or fact; the message names which and why."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class Model(Record):
    """The engine's answers: frozen dataclasses built from values the engine has already typed, serialised by
    pydantic only when asked (`appban.plain`), so that printing one answer never imports it."""


@record
class CitationOut(Model):
    """A citation of an answer: the instrument and where to read it."""

    instrument: str
    title: str
    cite: str
    url: str


@record
class RuleLine(Model):
    """One line of the rule trail: a rule about this app and what it says at the instant."""

    rule_id: str
    instrument: str
    instrument_title: str
    label: str
    status: RuleStatus
    as_written: RuleStatus
    reason: str
    enforcement: Enforcement
    cite: str
    changed_by: list[str] = dataclasses.field(
        default_factory=list
    )  # other instruments that shaped this status (delay, revocation, court order...)


@record
class ExceptionLine(Model):
    """An exception of the law that applies to the transaction (or would, given its facts)."""

    exception_id: str
    instrument: str
    label: str
    text: str
    cite: str
    facts: dict[str, bool | str]


@record
class LaterChange(Model):
    """An instrument made after the instant asked about that would change the answer at that instant.

    It never changes the verdict: the law at T is the law made by T. `verdict`, `as_written` and
    `enforcement` are the answer at T as it reads once this instrument (and those made before it) exist.
    """

    instrument: str
    title: str
    made: str
    made_doubt: str | None  # when the hour (or day) it was made is not certain
    cite: str
    url: str
    verdict: Verdict
    as_written: Verdict
    enforcement: Enforcement
    effect: str


@record
class Decision(Model):
    """Whether a transaction is prohibited at an instant, with the rule trail, exceptions and citations."""

    app: str
    subject: str
    subject_name: str
    transaction: Category
    where: str
    at: str
    verdict: Verdict
    as_written: Verdict
    enforcement: Enforcement
    rules: list[RuleLine]
    exceptions: list[ExceptionLine]
    possible_exceptions: list[ExceptionLine]
    citations: list[CitationOut]
    notes: list[str]
    uncertainties: list[str]
    later: list[LaterChange]
    rulebook_version: str
    bundle: str | None = None  # the knowledge bundle the rulebook came from; None for the package's own data

    @property
    def rule_ids(self) -> list[str]:
        """The rules that cover the transaction (in or out of force), as the batch form reports them."""
        return [line.rule_id for line in self.rules if line.status not in _NOT_COVERING]

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


_NOT_COVERING = {RuleStatus.NOT_COVERED, RuleStatus.AUTHORITY_ONLY}
_BITES = {Verdict.PROHIBITED, Verdict.ENJOINED, Verdict.NOT_YET_EFFECTIVE}

_default: Rulebook | None = None


def default_rulebook() -> Rulebook:
    global _default
    if _default is None:
        _default = load_rulebook()
    return _default


def _cite(instrument: Instrument, item: Any = None) -> Citation:
    own = getattr(item, "citation", None)
    return own if own is not None else instrument.citation


def _when(spec: InstantSpec) -> str:
    stated = f" ({spec.stated})" if spec.stated else ""
    return f"{iso(spec.instant)}{stated}"


def parse_facts(rulebook: Rulebook, facts: Mapping[str, object] | None) -> dict[str, bool | str]:
    """Validate named transaction facts against facts.yaml; 'true'/'false' strings become booleans."""
    out: dict[str, bool | str] = {}
    for key, raw in (facts or {}).items():
        spec = rulebook.facts.facts.get(key)
        if spec is None:
            known = ", ".join(sorted(rulebook.facts.facts))
            raise DecisionInputError("facts", f"unknown fact {key!r} (known facts: {known})")
        if spec.type == "bool":
            if isinstance(raw, bool):
                out[key] = raw
            elif str(raw).strip().lower() in {"true", "yes", "1"}:
                out[key] = True
            elif str(raw).strip().lower() in {"false", "no", "0"}:
                out[key] = False
            else:
                raise DecisionInputError("facts", f"fact {key!r} is true or false, got {raw!r}")
        else:
            if str(raw) not in spec.values:
                raise DecisionInputError("facts", f"fact {key!r} must be one of {spec.values}, got {raw!r}")
            out[key] = str(raw)
    return out


def resolve_subject(rulebook: Rulebook, app: str) -> str:
    subject = rulebook.subject_id(app)
    if subject is None:
        known = ", ".join(sorted(rulebook.subjects.subjects))
        raise DecisionInputError("app", f"unknown app {app!r} (known apps: {known}; names and aliases also work)")
    return subject


def resolve_category(transaction: str | Category) -> Category:
    try:
        return Category(transaction)
    except ValueError:
        known = ", ".join(c.value for c in Category)
        raise DecisionInputError("transaction", f"unknown category {transaction!r} (one of: {known})") from None


def resolve_place(where: str) -> str:
    code = where.strip().upper()
    if not valid_place_code(code):
        raise DecisionInputError(
            "where",
            f"{where!r} is not an ISO 3166-1 alpha-2 country or ISO 3166-2 subdivision code (e.g. US, US-MT, IN)",
        )
    return code


def _exception_matches(
    law: Law,
    applied: Applied,
    targets: list[ResolvedRule],
    subject: str,
    category: Category,
    where: str,
    at: dt.datetime,
    known: dt.datetime,
) -> bool:
    """Whether an exception's scope (not its facts) covers this transaction at this instant, in the law
    as it stood at `known`.

    An exception naming no apps of its own is about the apps its rules are about.
    """
    item = applied.item
    assert isinstance(item, LawException)
    rulebook = law.rulebook
    if item.categories and category not in item.categories:
        return False
    if not rulebook.in_scope_place(item, where) or not applied.active(at):
        return False
    if not exists(applied.made, known):
        return False
    if item.subjects or item.companies:
        return rulebook.in_scope_subject(item, subject)
    return any(exists(rule.made, known) and rulebook.in_scope_subject(rule.prohibition, subject) for rule in targets)


def _relevant(
    law: Law,
    item: LawException,
    targets: list[ResolvedRule],
    subject: str,
    category: Category,
    where: str,
    facts: Mapping[str, bool | str],
    known: dt.datetime,
) -> bool:
    """Whether an exception explains this transaction even though no covering rule needed it.

    It does when one of its rules covers the transaction, when it states its own categories or
    places, or when it names apps its rules are not about (e.g. "Tencent's other businesses").
    """
    rulebook = law.rulebook
    if item.categories or item.places or item.not_places:
        return True
    about = [rule for rule in targets if rulebook.in_scope_subject(rule.prohibition, subject)]
    if (item.subjects or item.companies) and not about:
        return True
    return any(
        exists(rule.made, known)
        and category in rule.prohibition.categories
        and _covers_place(law, rule.prohibition, where, facts)
        for rule in about
    )


def _facts_hold(wanted: Mapping[str, bool | str], facts: Mapping[str, bool | str]) -> bool:
    return all(facts.get(name) == value for name, value in wanted.items())


def _covers_place(law: Law, prohibition: Prohibition, where: str, facts: Mapping[str, bool | str]) -> bool:
    """Whether a prohibition reaches this place: it lies within the rule's places, or the facts that lift
    the place limit hold (a U.S. agency's device abroad, say)."""
    if law.rulebook.in_scope_place(prohibition, where):
        return True
    return bool(prohibition.anywhere_if) and _facts_hold(prohibition.anywhere_if, facts)


def _exception_line(applied: Applied) -> ExceptionLine:
    item = applied.item
    assert isinstance(item, LawException)
    return ExceptionLine(
        exception_id=item.id,
        instrument=applied.instrument.id,
        label=item.label,
        text=item.text,
        cite=_cite(applied.instrument, item).cite,
        facts=dict(item.facts),
    )


_NEAR = dt.timedelta(days=2)
_DAY = dt.timedelta(days=1)


def _note_instant_doubts(label: str, spec: InstantSpec, at: dt.datetime, out: list[str]) -> None:
    """Say so when an instant the decision turns on is uncertain and the question is close to it."""
    window = spec.window
    if window is not None and window[0] <= at < window[1]:
        out.append(f"{label}: the instant falls between defensible readings, {iso(window[0])} and {iso(window[1])}")
    low, high = window if window is not None else (spec.instant, spec.instant)
    if spec.uncertain and low - _NEAR <= at < high + _NEAR:
        out.append(f"{label}: {spec.uncertain}")


def _made_doubt_window(instrument: Instrument) -> tuple[dt.datetime, dt.datetime] | None:
    """When the moment an instrument was made is not known to the minute: the span in which it may or may
    not have existed yet (its readings, or the rest of its day when only the day is known)."""
    made = instrument.made
    if made.window is not None:
        return made.window
    if made.date_only:
        return made.instant, made.instant + _DAY
    if made.uncertain:
        return made.instant - _NEAR, made.instant + _NEAR
    return None


def _made_doubt(instrument: Instrument) -> str | None:
    """What is not known about when an instrument was made, in a sentence (None when it is known)."""
    made = instrument.made
    window = _made_doubt_window(instrument)
    if window is None:
        return None
    day = made.date.isoformat()
    if made.uncertain:
        why = made.uncertain
    elif made.window is not None:
        why = f"{made.event} between {iso(window[0])} and {iso(window[1])}"
    else:
        why = f"{made.event} on {day} at an hour not known"
    return f"{why}; counted from {iso(made.instant)}"


def _note_made_doubts(instruments: list[Instrument], at: dt.datetime, out: list[str]) -> None:
    """Doubts about when the instruments an answer rests on were made, on the day (or window) of doubt."""
    for instrument in instruments:
        window = _made_doubt_window(instrument)
        doubt = _made_doubt(instrument)
        if window is not None and doubt is not None and window[0] <= at < window[1]:
            out.append(f"{instrument.id} {instrument.made.event}: {doubt}")


def answer_instants(law: Law, subject: str) -> list[dt.datetime]:
    """Every instant at which any part of an answer about `subject` can change: its verdict (the law's own
    breakpoints, including when each instrument was made), a reason, a note of doubt (the windows and margins
    `_note_instant_doubts` and `_note_made_doubts` look at), or the coming changes. Between two of them
    `evaluate` answers alike, but for `at` itself; extra instants only cost a segment."""
    found = set(law.instants_for(subject))
    specs: list[InstantSpec | None] = []
    applied_items: list[Applied] = []
    for rule in law.rules_for(subject):
        specs += [*rule.starts(), rule.prohibition.until]
        applied_items += [*rule.revocations, *rule.injunctions, *rule.non_enforcements, *rule.exceptions]
    applied_items += [applied for applied, _ in law.exceptions_for(subject)]
    applied_items += [applied for auth in law.authorizations_for(subject) for applied in auth.revocations]
    for applied in applied_items:
        found.update(t for t in (applied.start, applied.end, applied.made) if t is not None)
        specs += [getattr(applied.item, "from_", None), getattr(applied.item, "until", None)]
    for spec in specs:
        if spec is None:
            continue
        low, high = spec.window or (spec.instant, spec.instant)
        found.update((spec.instant, low, high, low - _NEAR, high + _NEAR))
    for made, instrument in law.made_for(subject):
        found.add(made)
        window = _made_doubt_window(instrument)
        if window is not None:
            found.update(window)
    return sorted(found)


def _first_active(
    applied: list[Applied], subject: str, law: Law, at: dt.datetime, known: dt.datetime
) -> Applied | None:
    for one in sorted(applied, key=lambda a: a.start or dt.datetime.min.replace(tzinfo=dt.UTC)):
        assert isinstance(one.item, Change)
        if exists(one.made, known) and one.active(at) and law.rulebook.in_scope_subject(one.item, subject):
            return one
    return None


def _evaluate_rule(
    law: Law,
    rule: ResolvedRule,
    subject: str,
    category: Category,
    where: str,
    at: dt.datetime,
    known: dt.datetime,
    facts: Mapping[str, bool | str],
    applied_exceptions: dict[str, Applied],
    possible: dict[str, Applied],
    uncertainties: list[str],
) -> RuleLine:
    """One line of the trail: what `rule` (made by `known`) says at `at`, counting only what existed at `known`."""
    rulebook = law.rulebook
    prohibition = rule.prohibition
    enforcement = Enforcement.NOT_APPLICABLE

    changed_by: list[str] = []

    def line(status: RuleStatus, as_written: RuleStatus, reason: str) -> RuleLine:
        return RuleLine(
            rule_id=prohibition.id,
            instrument=rule.instrument.id,
            instrument_title=rule.instrument.short_title,
            label=prohibition.label,
            status=status,
            as_written=as_written,
            reason=reason,
            enforcement=enforcement,
            cite=_cite(rule.instrument, prohibition).cite,
            changed_by=list(dict.fromkeys(changed_by)),
        )

    if category not in prohibition.categories:
        cats = ", ".join(c.value for c in prohibition.categories)
        return line(RuleStatus.NOT_COVERED, RuleStatus.NOT_COVERED, f"covers {cats}, not {category.value}")
    if not _covers_place(law, prohibition, where, facts):
        places = ", ".join(prohibition.places)
        lifted = ""
        if prohibition.anywhere_if:
            wanted = ", ".join(f"{name}={str(value).lower()}" for name, value in prohibition.anywhere_if.items())
            lifted = f", and elsewhere only when {wanted}"
        return line(
            RuleStatus.NOT_COVERED,
            RuleStatus.NOT_COVERED,
            f"applies within {places}{lifted}; {where} is outside it",
        )

    if prohibition.uncertain:
        uncertainties.append(f"{prohibition.id}: {prohibition.uncertain}")
    start = rule.start(known)
    delays = rule.delays_known(known)
    delayed = ""
    if delays:
        by = ", ".join(applied.instrument.short_title for applied in delays)
        delayed = f" (originally {_when(prohibition.from_)}; delayed by {by})"
        changed_by.extend(applied.instrument.id for applied in delays)
    _note_instant_doubts(prohibition.id + " start", start, at, uncertainties)

    # As written: has the rule ended (sunset, revocation, rescission), before or after it started?
    ends: list[tuple[dt.datetime, str, str]] = []
    if prohibition.until is not None:
        ends.append((prohibition.until.instant, f"expired {_when(prohibition.until)}", rule.instrument.id))
    for applied in rule.revocations:
        assert isinstance(applied.item, Change)
        if (
            exists(applied.made, known)
            and rulebook.in_scope_subject(applied.item, subject)
            and applied.start is not None
        ):
            what = f"{applied.item.label} ({applied.instrument.short_title}), {_when(applied.item.from_)}"
            ends.append((applied.start, what, applied.instrument.id))
    ended = [end for end in ends if end[0] <= at]
    if ended:
        first = min(ended)
        changed_by.append(first[2])
        if first[0] < start.instant:
            reason = f"was to start {_when(start)}{delayed}; ended before it started: {first[1]}"
        else:
            reason = f"in force from {iso(start.instant)}; ended: {first[1]}"
        return line(RuleStatus.REVOKED, RuleStatus.REVOKED, reason)

    # A live (or coming) rule can still be carved out by an exception of the law.
    excepted: list[Applied] = []
    for applied in rule.exceptions:
        if _exception_matches(law, applied, [rule], subject, category, where, at, known):
            assert isinstance(applied.item, LawException)
            if _facts_hold(applied.item.facts, facts):
                excepted.append(applied)
                applied_exceptions.setdefault(applied.item.id, applied)
            else:
                possible.setdefault(applied.item.id, applied)
    if excepted:
        labels = "; ".join(a.item.label for a in excepted)
        for applied in excepted:
            if applied.item.uncertain:
                uncertainties.append(f"{applied.item.id}: {applied.item.uncertain}")
            if applied.item.from_ is not None:
                _note_instant_doubts(applied.item.id, applied.item.from_, at, uncertainties)
        return line(RuleStatus.EXCEPTED, RuleStatus.EXCEPTED, f"exception applies: {labels}")

    if at < start.instant:
        return line(RuleStatus.NOT_YET_EFFECTIVE, RuleStatus.NOT_YET_EFFECTIVE, f"starts {_when(start)}{delayed}")

    non_enforcement = _first_active(rule.non_enforcements, subject, law, at, known)
    enforcement = Enforcement.SUSPENDED if non_enforcement is not None else Enforcement.ENFORCEABLE
    injunction = _first_active(rule.injunctions, subject, law, at, known)
    if injunction is not None:
        enforcement = Enforcement.NOT_APPLICABLE
        changed_by.append(injunction.instrument.id)
        assert isinstance(injunction.item, Change)
        if injunction.item.uncertain:
            uncertainties.append(f"{injunction.item.id}: {injunction.item.uncertain}")
        _note_instant_doubts(injunction.item.id, injunction.item.from_, at, uncertainties)
        return line(
            RuleStatus.ENJOINED,
            RuleStatus.PROHIBITED,
            f"in force as written from {_when(start)}{delayed}; enjoined by {injunction.instrument.short_title} "
            f"from {_when(injunction.item.from_)}: {injunction.item.label}",
        )
    reason = f"in force from {_when(start)}{delayed}"
    if non_enforcement is not None:
        assert isinstance(non_enforcement.item, Change)
        until = f" until {_when(non_enforcement.item.until)}" if non_enforcement.item.until else ""
        reason += f"; enforcement suspended by {non_enforcement.instrument.short_title}{until}"
        changed_by.append(non_enforcement.instrument.id)
    return line(RuleStatus.PROHIBITED, RuleStatus.PROHIBITED, reason)


def evaluate(
    law: Law,
    subject: str,
    category: Category,
    where: str,
    at: dt.datetime,
    facts: Mapping[str, bool | str],
    *,
    later: bool = True,
) -> Decision:
    """The decision for already-validated inputs (the batch compiler calls this directly): the law as it
    stood at `at`, and, unless `later` is false, the instruments made afterwards that would change it."""
    decision = _judge(law, subject, category, where, at, facts, known=at)
    if later:
        decision = decision.model_copy(
            update={"later": _coming_changes(law, subject, category, where, at, facts, decision)}
        )
    return decision


def covering_rules(
    law: Law, subject: str, category: Category, where: str, facts: Mapping[str, bool | str]
) -> list[ResolvedRule]:
    """The rules that cover `category` in `where`: only these can make a verdict other than not prohibited
    (every other line of a trail is not covered or authority only), so only these need evaluating to learn
    whether an answer moved."""
    return [
        rule
        for rule in law.rules_for(subject)
        if category in rule.prohibition.categories and _covers_place(law, rule.prohibition, where, facts)
    ]


class Outcome(NamedTuple):
    """What a trail comes to, without its explanation: the answer `evaluate` would give, and the covering
    rules its `rule_ids` would list."""

    verdict: Verdict
    as_written: Verdict
    enforcement: Enforcement
    rule_ids: tuple[str, ...]

    @property
    def key(self) -> tuple[Verdict, Verdict, Enforcement]:
        return self.verdict, self.as_written, self.enforcement


def outcome(
    law: Law,
    covering: list[ResolvedRule],
    subject: str,
    category: Category,
    where: str,
    at: dt.datetime,
    facts: Mapping[str, bool | str],
    *,
    known: dt.datetime,
) -> Outcome:
    """The answer at `at` from `covering` (see covering_rules) and the instruments made by `known`: the same
    verdict, as-written verdict and enforcement as the full decision, at a fraction of its cost."""
    lines = [
        _evaluate_rule(law, rule, subject, category, where, at, known, facts, {}, {}, [])
        for rule in covering
        if exists(rule.made, known)
    ]
    verdict, as_written, enforcement = _outcome(lines)
    return Outcome(
        verdict, as_written, enforcement, tuple(line.rule_id for line in lines if line.status not in _NOT_COVERING)
    )


def _coming_changes(
    law: Law,
    subject: str,
    category: Category,
    where: str,
    at: dt.datetime,
    facts: Mapping[str, bool | str],
    now: Decision,
) -> list[LaterChange]:
    """Instruments made after `at` that would change the answer at `at`: each is added in the order they were
    made, and listed when the answer (verdict, as written, enforcement) with it differs from the one before."""
    found: list[LaterChange] = []
    # Only a rule that covers this category and place can move the verdict, so only the instruments that
    # make or change such a rule can be coming changes, and only those rules need evaluating.
    covering = covering_rules(law, subject, category, where, facts)
    bearing: dict[str, Instrument] = {}
    for rule in covering:
        changes = (*rule.delays, *rule.revocations, *rule.injunctions, *rule.non_enforcements, *rule.exceptions)
        for instrument in (rule.instrument, *(applied.instrument for applied in changes)):
            bearing[instrument.id] = instrument
    made_after = sorted(
        ((i.made.instant, i) for i in bearing.values() if i.made.instant > at), key=lambda pair: (pair[0], pair[1].id)
    )

    previous_outcome = (now.verdict, now.as_written, now.enforcement)
    previous = now
    for made in sorted({made for made, _ in made_after}):
        current_outcome = outcome(law, covering, subject, category, where, at, facts, known=made).key
        if current_outcome != previous_outcome:
            current = _judge(law, subject, category, where, at, facts, known=made)
            for _, instrument in (pair for pair in made_after if pair[0] == made):
                found.append(_later_change(instrument, current, previous))
            previous = current
        previous_outcome = current_outcome
    return found


def _outcome(lines: list[RuleLine]) -> tuple[Verdict, Verdict, Enforcement]:
    """Verdict, as written and enforcement of a rule trail."""
    verdict = combine([line.status for line in lines])
    as_written = combine([line.as_written for line in lines])
    prohibiting = [line for line in lines if line.status is RuleStatus.PROHIBITED]
    if not prohibiting:
        enforcement = Enforcement.NOT_APPLICABLE
    elif all(line.enforcement is Enforcement.SUSPENDED for line in prohibiting):
        enforcement = Enforcement.SUSPENDED
    else:
        enforcement = Enforcement.ENFORCEABLE
    return verdict, as_written, enforcement


def _later_change(instrument: Instrument, after: Decision, before: Decision) -> LaterChange:
    mine = [
        line
        for line in after.rules
        if (line.instrument == instrument.id or instrument.id in line.changed_by)
        and line.status not in _NOT_COVERING
        and line not in before.rules
    ]
    effect = "; ".join(f"{line.rule_id}: {line.reason}" for line in mine)
    if not effect:
        labels = [e.label for e in after.exceptions if e.instrument == instrument.id]
        effect = "; ".join(f"exception applies: {label}" for label in labels) or "changes the rules above"
    return LaterChange(
        instrument=instrument.id,
        title=instrument.short_title,
        made=iso(instrument.made.instant),
        made_doubt=_made_doubt(instrument),
        cite=instrument.citation.cite,
        url=instrument.citation.url,
        verdict=after.verdict,
        as_written=after.as_written,
        enforcement=after.enforcement,
        effect=effect,
    )


def _judge(
    law: Law,
    subject: str,
    category: Category,
    where: str,
    at: dt.datetime,
    facts: Mapping[str, bool | str],
    *,
    known: dt.datetime,
) -> Decision:
    """The answer at `at` from the instruments made by `known` (`known` is `at`, except when working out the
    coming changes). The returned decision has no coming changes of its own."""
    rulebook = law.rulebook
    applied_exceptions: dict[str, Applied] = {}
    possible: dict[str, Applied] = {}
    uncertainties: list[str] = []
    lines: list[RuleLine] = []
    for rule in law.rules_for(subject):
        if not exists(rule.made, known):
            continue
        lines.append(
            _evaluate_rule(
                law, rule, subject, category, where, at, known, facts, applied_exceptions, possible, uncertainties
            )
        )
    for auth in law.authorizations_for(subject):
        if not exists(auth.made, known):
            continue
        grant = auth.authorization
        revoked = [
            a.item.from_
            for a in auth.revocations
            if exists(a.made, known) and a.item.from_ is not None and a.item.from_.instant <= at
        ]
        tail = f"; revoked {_when(revoked[0])}" if revoked else ""
        lines.append(
            RuleLine(
                rule_id=grant.id,
                instrument=auth.instrument.id,
                instrument_title=auth.instrument.short_title,
                label=grant.label,
                status=RuleStatus.AUTHORITY_ONLY,
                as_written=RuleStatus.AUTHORITY_ONLY,
                reason=f"authorises prohibitions only as later identified; prohibits nothing itself{tail}",
                enforcement=Enforcement.NOT_APPLICABLE,
                cite=_cite(auth.instrument, grant).cite,
            )
        )
    # Exceptions stated for the app that no covering rule needed (e.g. "individual users are not
    # targeted" for a category nothing prohibits) are still part of the answer's explanation.
    for applied, targets in law.exceptions_for(subject):
        item = applied.item
        assert isinstance(item, LawException)
        if item.id in applied_exceptions or item.id in possible:
            continue
        if _exception_matches(law, applied, targets, subject, category, where, at, known) and _relevant(
            law, item, targets, subject, category, where, facts, known
        ):
            (applied_exceptions if _facts_hold(item.facts, facts) else possible)[item.id] = applied

    verdict, as_written, enforcement = _outcome(lines)

    citations: dict[str, CitationOut] = {}
    counted: dict[str, Instrument] = {}  # the instruments this answer rests on
    for line in lines:
        if line.status in _NOT_COVERING:
            continue
        found = rulebook.find(line.rule_id)
        assert found is not None
        for instrument, cite in (
            (found[0], _cite(*found)),
            *((rulebook.instruments[i], None) for i in line.changed_by),
        ):
            cite = cite or instrument.citation
            citations.setdefault(cite.cite, _citation_out(instrument, cite))
            counted.setdefault(instrument.id, instrument)
    for applied in applied_exceptions.values():
        cite = _cite(applied.instrument, applied.item)
        citations.setdefault(cite.cite, _citation_out(applied.instrument, cite))
        counted.setdefault(applied.instrument.id, applied.instrument)
    bites = verdict in _BITES
    if bites:
        for applied in possible.values():
            counted.setdefault(applied.instrument.id, applied.instrument)
    _note_made_doubts(list(counted.values()), at, uncertainties)
    notes: list[str] = []
    for line in lines:
        # Notes of a law that has not started yet are noise unless nothing else covers the question.
        pending = line.status is RuleStatus.NOT_YET_EFFECTIVE and verdict is not Verdict.NOT_YET_EFFECTIVE
        if line.status in _NOT_COVERING or pending:
            continue
        found = rulebook.find(line.rule_id)
        if found is not None:
            for note in (*found[1].notes, *found[0].notes):
                if note not in notes:
                    notes.append(note)
    subject_info = rulebook.subjects.subjects[subject]
    return Decision(
        app=subject,
        subject=subject,
        subject_name=subject_info.name,
        transaction=category,
        where=where,
        at=iso(at),
        verdict=verdict,
        as_written=as_written,
        enforcement=enforcement,
        rules=lines,
        exceptions=[_exception_line(a) for a in applied_exceptions.values()],
        # Exceptions that would need facts matter only while something still bites.
        possible_exceptions=[_exception_line(a) for a in possible.values()] if bites else [],
        citations=list(citations.values()),
        notes=notes,
        uncertainties=list(dict.fromkeys(uncertainties)),
        later=[],
        rulebook_version=rulebook.version,
        bundle=bundle_of(rulebook),
    )


def _citation_out(instrument: Instrument, citation: Citation) -> CitationOut:
    return CitationOut(instrument=instrument.id, title=instrument.title, cite=citation.cite, url=citation.url)


def decide(
    app: str,
    transaction: str | Category,
    where: str,
    at: str | dt.datetime,
    facts: Mapping[str, object] | None = None,
    *,
    tz: str | None = None,
    rulebook: Rulebook | None = None,
) -> Decision:
    """Is `transaction` with `app` prohibited in `where` at instant `at`, and why.

    `at` is ISO 8601 with an offset (or an aware datetime); a naive value needs `tz`.
    `facts` are named facts about the transaction that exceptions may read (see facts.yaml).
    """
    rulebook = rulebook or default_rulebook()
    instant, key = _question(rulebook, app, transaction, where, at, facts, tz)
    decision = _answers(rulebook).decision(*key)
    return decision.model_copy(update={"app": app, "at": iso(instant)})


def decide_json(
    app: str,
    transaction: str | Category,
    where: str,
    at: str | dt.datetime,
    facts: Mapping[str, object] | None = None,
    *,
    tz: str | None = None,
    rulebook: Rulebook | None = None,
) -> tuple[str, dt.datetime]:
    """`decide(...).model_dump_json()`, and the instant asked about, without building the decision again:
    the JSON of each segment's decision is kept as a template with gaps for the app and the instant."""
    answer, instant = decide_filled(app, transaction, where, at, facts, tz=tz, rulebook=rulebook)
    return answer.text, instant


def decide_filled(
    app: str,
    transaction: str | Category,
    where: str,
    at: str | dt.datetime,
    facts: Mapping[str, object] | None = None,
    *,
    tz: str | None = None,
    rulebook: Rulebook | None = None,
) -> tuple[FilledJSON, dt.datetime]:
    """`decide_json()` in its two parts: the segment's template and the values of its gaps (`app`, `at`),
    for an audit store that keeps each template once."""
    rulebook = rulebook or default_rulebook()
    instant, key = _question(rulebook, app, transaction, where, at, facts, tz)
    return FilledJSON(_answers(rulebook).template(*key), {"app": app, "at": iso(instant)}), instant


def _question(
    rulebook: Rulebook,
    app: str,
    transaction: str | Category,
    where: str,
    at: str | dt.datetime,
    facts: Mapping[str, object] | None,
    tz: str | None,
) -> tuple[dt.datetime, tuple[str, Category, str, dt.datetime, dict[str, bool | str]]]:
    """The validated question: its instant, and what `_Answers` looks it up by."""
    subject = resolve_subject(rulebook, app)
    category = resolve_category(transaction)
    place = resolve_place(where)
    try:
        instant = parse_instant(at, tz)
    except InstantError as exc:
        raise DecisionInputError("at", str(exc)) from None
    return instant, (subject, category, place, instant, parse_facts(rulebook, facts))


class _Answers:
    """Decisions remembered per segment of the law (between two `answer_instants`), so that a server asked
    about the same app, transaction and place at many instants evaluates each segment once."""

    _LIMIT = 65_536  # remembered decisions; all are forgotten when full (a rulebook has far fewer segments)

    def __init__(self, law: Law) -> None:
        self.law = law
        self._instants: dict[str, list[dt.datetime]] = {}
        self._decisions: dict[tuple[Any, ...], Decision] = {}
        self._templates: dict[tuple[Any, ...], JSONTemplate] = {}  # by the same segment keys

    def _segment(
        self, subject: str, category: Category, place: str, at: dt.datetime, facts: dict[str, bool | str]
    ) -> tuple[Any, ...]:
        instants = self._instants.get(subject)
        if instants is None:
            instants = self._instants[subject] = answer_instants(self.law, subject)
        return (subject, category, place, tuple(sorted(facts.items())), bisect.bisect_right(instants, at))

    def decision(
        self, subject: str, category: Category, place: str, at: dt.datetime, facts: dict[str, bool | str]
    ) -> Decision:
        key = self._segment(subject, category, place, at, facts)
        found = self._decisions.get(key)
        if found is None:
            if len(self._decisions) >= self._LIMIT:
                self._decisions.clear()
                self._templates.clear()
            found = self._decisions[key] = evaluate(self.law, subject, category, place, at, facts)
        return found

    def template(
        self, subject: str, category: Category, place: str, at: dt.datetime, facts: dict[str, bool | str]
    ) -> JSONTemplate:
        """The segment's decision as JSON, with gaps for the app as asked and the instant."""
        key = self._segment(subject, category, place, at, facts)
        found = self._templates.get(key)
        if found is None:
            decision = self.decision(subject, category, place, at, facts)
            marked = decision.model_copy(update={"app": gap("app"), "at": gap("at")}).model_dump_json()
            found = self._templates[key] = JSONTemplate(marked)
        return found


def _answers(rulebook: Rulebook) -> _Answers:
    found = rulebook.derived.get("answers")
    if found is None:
        found = rulebook.derived["answers"] = _Answers(resolve(rulebook))
    return cast(_Answers, found)

"""resolve(record) -> [Match]: which known app a store listing or installed app is, and how sure.

Order of evidence: an exact store identifier (package name, bundle ID, App Store ID) wins; otherwise
the name is compared by its careful key (against the app's names and its sourced store titles), then by
its disguise key, then fuzzily (rapidfuzz) against aliases that share a block with it, and the publisher
decides between the real app and a look-alike.

A store title not in the registry ("TikTok - Shop Deals", "TikTok: Videos, Music & LIVE") is split at
its subtitle: when the part before it is one of the app's names, the record is the app (`strong`) only
if the publisher is one of the company's own accounts; from another publisher, or none, it is a
`lookalike` (apps that borrow a name in their title, "TikTok - Video Downloader"), and only for names
of five characters or more ("QQ: Music Player" stays unmatched). A name made only of several names of
one app ("Douyin 抖音") is that app's name.

Whether an identified app is covered depends on the instant as well as the place: an app is covered at
T when an instrument made by T has a prohibition that names it (directly or through its company) in
that place. `resolve(record, at=T)` gives the class at T; without `at`, any instrument counts.
"""

from __future__ import annotations

import copy
import datetime as dt
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache

from rapidfuzz import fuzz

from appban.engine.instants import iso
from appban.engine.law import resolve as resolve_law
from appban.identity.normalize import (
    disguise_key,
    name_key,
    publisher_key,
    split_title,
    title_words,
    uses_disguise,
)
from appban.identity.registry import ID_FIELDS, RegistryFile, load_registry
from appban.rulebook.loader import Rulebook
from appban.rulebook.schema import Prohibition

FUZZY_CUTOFF = 88.0  # rapidfuzz ratio; "tiktokk" scores 92 against "tiktok", "ticktock" 86
FUZZY_MIN_LENGTH = 5  # shorter aliases ("QQ") only match exactly, and never inside another title
_BLOCK = 3


@dataclass(frozen=True)
class BlockingKeys:
    identifiers: frozenset[str]  # case-folded store identifiers
    name_keys: frozenset[str]  # disguise keys of every alias
    careful_keys: frozenset[str]  # careful keys of every alias and title
    fuzzy_tokens: frozenset[str]  # "block:length" tokens that can reach the fuzzy cutoff
    short_keys: tuple[str, ...]  # aliases too short for fuzzy matching ("qq"), matched as prefixes
    head_prefixes: dict[int, frozenset[str]]  # length -> the first characters of every alias key, so cut
    head_short: tuple[str, ...]  # shorter keys that short_keys lacks, matched as prefixes
    publisher_keys: frozenset[str]  # publisher_key of every known account (legal forms dropped)


class MatchKind(StrEnum):
    EXACT = "exact"  # a store identifier of the app
    STRONG = "strong"  # its name, from its own publisher (or with no publisher given)
    LOOKALIKE = "lookalike"  # its name, disguised or from another publisher: the renamed-app warning
    RELATED_NOT_COVERED = "related_not_covered"  # identified, but no instrument's prohibition reaches it


@dataclass(frozen=True)
class Match:
    app: str
    app_name: str
    kind: MatchKind
    confidence: float
    field: str  # which field of the record matched
    value: str  # the record's value
    alias: str  # the registry value it matched
    score: float  # 100 for equal keys, the rapidfuzz ratio otherwise
    source: str  # URL of the registry entry's source
    reason: str


@dataclass(frozen=True)
class Record:
    """What an inventory row says about an app; any field may be missing."""

    name: str | None = None
    publisher: str | None = None
    android_package: str | None = None
    ios_bundle: str | None = None
    app_store_id: str | None = None
    id: str | None = None  # an identifier of unknown kind (package name or bundle ID)

    @classmethod
    def from_mapping(cls, row: Mapping[str, object]) -> Record:
        def text(key: str) -> str | None:
            value = row.get(key)
            return str(value).strip() or None if value is not None else None

        return cls(*(text(key) for key in ("name", "publisher", "android_package", "ios_bundle", "app_store_id", "id")))


class Resolver:
    def __init__(self, rulebook: Rulebook, registry: RegistryFile | None = None, where: str | None = None):
        self.rulebook = rulebook
        self.registry = registry or load_registry(rulebook)
        self.where = where
        self._ids: dict[str, tuple[str, str, str, str]] = {}  # key -> (kind, app, value, source)
        self._names: dict[str, list[tuple[str, str, str]]] = {}  # name key -> [(app, alias, source)]
        self._disguised: dict[str, list[tuple[str, str, str]]] = {}
        self._blocks: dict[str, set[str]] = {}  # prefix/suffix -> disguise keys
        self._publishers: dict[str, str] = {}  # publisher_key -> company
        for app, identity in self.registry.apps.items():
            for field in ID_FIELDS:
                for identifier in getattr(identity, field):
                    self._ids[_id_key(identifier.value)] = (field, app, identifier.value, self._url(identifier.source))
            aliases = [(n.value, n.source) for n in identity.names]
            subject = rulebook.subjects.subjects[app]
            aliases += [(alias, "") for alias in (subject.name, *subject.aliases)]
            # Whole store titles match like names, but are not fuzzed: a title differs from another by
            # its subtitle, which the subtitle rule judges.
            titles = [(t.value, t.source) for t in identity.titles]
            for alias, source in [*aliases, *titles]:
                entry = (app, alias, self._url(source) if source else subject.source)
                if entry not in self._names.get(name_key(alias), ()):
                    self._names.setdefault(name_key(alias), []).append(entry)
                key = disguise_key(alias)
                if entry not in self._disguised.get(key, ()):
                    self._disguised.setdefault(key, []).append(entry)
                if len(key) >= FUZZY_MIN_LENGTH and (alias, source) in aliases:
                    for block in (key[:_BLOCK], key[-_BLOCK:]):
                        self._blocks.setdefault(block, set()).add(key)
        for company, publishers in self.registry.publishers.items():
            for publisher in publishers:
                self._publishers[publisher_key(publisher.value)] = company
        self._companies_with_publishers = {company for company, found in self.registry.publishers.items() if found}
        self._prohibitions = self._apps_by_prohibition()
        self._coverage()
        self._remember()

    def _remember(self) -> None:
        """A cache of answers per record for this resolver alone (records repeat a lot). A cache on the method
        would be shared by the class and keep every resolver, and its rulebook, for as long as the process."""
        self._resolve_cached: Callable[[Record], tuple[Match, ...]] = lru_cache(maxsize=262_144)(self._resolve_record)
        self._segment_cached: Callable[[Record, int], tuple[Match, ...]] = lru_cache(maxsize=262_144)(
            self._resolve_in_segment
        )

    def at(self, where: str | None) -> Resolver:
        """This resolver for another place: what it knows of apps is shared, only what the law reaches
        there is worked out (a file may name thousands of places; each would otherwise rebuild it all)."""
        other = copy.copy(self)
        other.where = where
        other._coverage()
        other._remember()  # answers depend on the place
        return other

    # --- what the law reaches ------------------------------------------------------------------

    def _apps_by_prohibition(self) -> list[tuple[Prohibition, frozenset[str], dt.datetime, str]]:
        """Each prohibition of the rulebook, with the apps it names (directly or by company), the instant
        its instrument was made and the instrument's id."""
        law = resolve_law(self.rulebook)
        scopes: dict[int, tuple[Prohibition, set[str], dt.datetime, str]] = {}
        for app in self.rulebook.subjects.subjects:
            for rule in law.rules_for(app):
                found: tuple[Prohibition, set[str], dt.datetime, str] = (
                    rule.prohibition,
                    set(),
                    rule.made,
                    rule.instrument.id,
                )
                scopes.setdefault(id(rule.prohibition), found)[1].add(app)
        return [(scope, frozenset(apps), made, instrument) for scope, apps, made, instrument in scopes.values()]

    def _coverage(self) -> None:
        """Which apps some prohibition names in `where` (any place if None), and from when.

        `covered_since[app]` is the earliest instant an instrument with such a prohibition was made, and
        the instrument. Coverage only grows with time (a later revocation makes the verdict `revoked`, not
        the app unknown to the law), so the instants at which it grows cut time into segments in which
        every app's class stays the same: rows are classed per segment, never per row."""
        since: dict[str, tuple[dt.datetime, str]] = {}
        for scope, apps, made, instrument in self._prohibitions:
            if self.where is None or self.rulebook.in_scope_place(scope, self.where):
                for app in apps:
                    if app not in since or (made, instrument) < since[app]:
                        since[app] = (made, instrument)
        self.covered_since = since
        self.covered = set(since)
        self._cover_instants = sorted({made for made, _ in since.values()})
        self._since_segment = {app: bisect_right(self._cover_instants, made) for app, (made, _) in since.items()}

    # --- evidence -----------------------------------------------------------------------------

    def _url(self, key: str) -> str:
        return self.registry.sources[key]

    def company_of_publisher(self, publisher: str | None) -> str | None:
        """The company whose account this is: equal keys only ("TikTok Ltd." and "TikTok Limited" are one
        account; "TikTok Ltd. Something", or any longer name that starts like an account, is not it)."""
        if not publisher:
            return None
        return self._publishers.get(publisher_key(publisher))

    def blocking_keys(self) -> BlockingKeys:
        """What a vectorised pre-filter needs to discard rows this resolver can never match."""
        disguised = set(self._disguised)
        # Careful keys as a pre-filter spells them (digits read as letters), and disguise keys.
        heads = disguised | {disguise_key(key) for key in self._names}
        return BlockingKeys(
            identifiers=frozenset(self._ids),
            name_keys=frozenset(disguised),
            careful_keys=frozenset(self._names),
            fuzzy_tokens=frozenset(self.fuzzy_tokens()),
            short_keys=tuple(sorted(k for k in disguised if len(k) < FUZZY_MIN_LENGTH and k.isascii())),
            head_prefixes=key_prefixes(k for k in heads if len(k) >= FUZZY_MIN_LENGTH),
            head_short=tuple(sorted(k for k in heads - disguised if len(k) < FUZZY_MIN_LENGTH)),
            publisher_keys=frozenset(self._publishers),
        )

    def fuzzy_tokens(self) -> set[str]:
        """ "prefix:length" and "suffix:length" tokens of every name that could reach the fuzzy cutoff.

        A ratio of at least FUZZY_CUTOFF needs lengths within a factor of about 1.27 of each other, so
        a pre-filter can discard, by a hash look-up, names no alias could ever match."""
        tokens: set[str] = set()
        for block, keys in self._blocks.items():
            for key in keys:
                for length in range(1, 2 * len(key) + 1):
                    if _may_reach_cutoff(length, len(key)):
                        tokens.add(f"{block}:{length}")
        return tokens

    def resolve(self, record: Record, at: dt.datetime | None = None) -> list[Match]:
        """The matches for a record; with `at`, classed by what the law had reached at that instant."""
        if at is None:
            return list(self._resolve_cached(record))
        return list(self._segment_cached(record, bisect_right(self._cover_instants, at)))

    def _resolve_in_segment(self, record: Record, segment: int) -> tuple[Match, ...]:
        """The matches of a record at the instants of one segment (see `_coverage`): an app whose first
        prohibition here was made later is `related_not_covered` there."""
        matches = []
        for match in self._resolve_cached(record):
            first = self._since_segment.get(match.app)
            if match.kind in (MatchKind.EXACT, MatchKind.STRONG) and first is not None and first > segment:
                made, instrument = self.covered_since[match.app]
                where = f" in {self.where}" if self.where else ""
                why = f"; no prohibition{where} named this app or its company yet ({instrument}, made {iso(made)})"
                match = replace(match, kind=MatchKind.RELATED_NOT_COVERED, reason=match.reason + why)
            matches.append(match)
        return tuple(matches)

    def _resolve_record(self, record: Record) -> tuple[Match, ...]:
        found: dict[str, Match] = {}

        def add(match: Match) -> None:
            best = found.get(match.app)
            if best is None or match.confidence > best.confidence:
                found[match.app] = match

        # Store identifiers live in namespaces that never collide (reverse-DNS names, numeric App Store
        # IDs), so a value is looked up whatever column it came in: exports mislabel them often.
        for given in (*ID_FIELDS, "id"):
            value = getattr(record, given)
            if value and (hit := self._ids.get(_id_key(value))):
                kind, app, known, source = hit
                add(self._identified(app, 1.0, given, value, known, source, f"{kind} {known!r}"))
        if record.name and not found:
            for match in self._by_name(record.name, record.publisher):
                add(match)
        if not found and (company := self.company_of_publisher(record.publisher)):
            # An app the registry does not list, from a company's own developer account: the law may
            # still reach it through the company (PAFACA reaches every ByteDance app).
            other = f"{company}_other_app"
            if other in self.rulebook.subjects.subjects:
                add(
                    self._identified(
                        other,
                        0.7,
                        "publisher",
                        record.publisher or "",
                        record.publisher or "",
                        self.rulebook.subjects.subjects[other].source,
                        f"publisher is {self.rulebook.subjects.companies[company].name}; app not in the registry",
                    )
                )
        return tuple(sorted(found.values(), key=lambda m: -m.confidence))

    def _identified(
        self,
        app: str,
        confidence: float,
        field: str,
        value: str,
        alias: str,
        source: str,
        reason: str,
        score: float = 100,
    ) -> Match:
        kind = MatchKind.EXACT if confidence == 1.0 else MatchKind.STRONG
        if app not in self.covered:
            kind = MatchKind.RELATED_NOT_COVERED
            reason += (
                "; no prohibition " + (f"in {self.where} " if self.where else "") + "names this app or its company"
            )
        name = self.rulebook.subjects.subjects[app].name
        return Match(app, name, kind, confidence, field, value, alias, score, source, reason)

    def _by_name(self, name: str, publisher: str | None) -> list[Match]:
        publisher_company = self.company_of_publisher(publisher)
        disguised = uses_disguise(name)
        matches: list[Match] = []
        candidates: list[tuple[str, str, str, float, str]] = []  # app, alias, source, score, how
        for app, alias, source in self._names.get(name_key(name), []):
            candidates.append((app, alias, source, 100.0, "name"))
        if not candidates:
            candidates.extend(self._by_words(name))
        key = disguise_key(name)
        for attempt in (key, disguise_key(name, strip_suffixes=True)):
            if candidates:
                break
            for app, alias, source in self._disguised.get(attempt, []):
                candidates.append((app, alias, source, 100.0, "disguised name"))
            if not candidates and len(key) >= FUZZY_MIN_LENGTH:
                pool = self._blocks.get(key[:_BLOCK], set()) | self._blocks.get(key[-_BLOCK:], set())
                for alias_key in pool:
                    if not _may_reach_cutoff(len(key), len(alias_key)):
                        continue
                    score = fuzz.ratio(key, alias_key)
                    if score >= FUZZY_CUTOFF:
                        for app, alias, source in self._disguised[alias_key]:
                            candidates.append((app, alias, source, score, "similar name"))
        subtitle = None
        if not candidates and (split := split_title(name)):
            head, subtitle = split
            for app, alias, source in self._names.get(name_key(head), []):
                candidates.append((app, alias, source, 100.0, "name with a subtitle"))
            if not candidates:
                for app, alias, source in self._disguised.get(disguise_key(head), []):
                    candidates.append((app, alias, source, 100.0, "disguised name with a subtitle"))
        for app, alias, source, score, how in candidates:
            company = self.rulebook.company_of(app)
            own_publisher = publisher_company == company
            if subtitle is not None:
                # Not a title the stores show: the company's own account vouches for it, nothing else does.
                if own_publisher and not disguised and how == "name with a subtitle":
                    reason = f"name {alias!r} with the subtitle {subtitle!r}, from {publisher!r}"
                    matches.append(self._identified(app, 0.85, "name", name, alias, source, reason, score))
                elif len(disguise_key(alias)) >= FUZZY_MIN_LENGTH:
                    why = [f"{how} {alias!r}; {subtitle!r} is not in a title its stores show"]
                    why += self._doubts(disguised, publisher, own_publisher, company)
                    matches.append(self._lookalike(app, name, alias, source, 0.5, score, why))
                continue
            if own_publisher and not disguised:
                matches.append(
                    self._identified(
                        app, 0.9, "name", name, alias, source, f"{how} {alias!r} from {publisher!r}", score
                    )
                )
            elif publisher is None and how == "name":
                matches.append(
                    self._identified(app, 0.8, "name", name, alias, source, f"name {alias!r}, no publisher", score)
                )
            elif how == "name" and not disguised and company not in self._companies_with_publishers:
                # The registry knows no publisher account of this company (most apps of India's lists): a
                # publisher cannot tell the app from a copy, so the exact name stands, at a lower confidence.
                unknown = f"name {alias!r} from {publisher!r}; the publisher accounts of its developer are not known"
                matches.append(self._identified(app, 0.7, "name", name, alias, source, unknown, score))
            else:
                why = [f"{how} {alias!r} (score {score:.0f})"]
                why += self._doubts(disguised, publisher, own_publisher, company)
                matches.append(self._lookalike(app, name, alias, source, 0.6, score, why))
        return matches

    def _doubts(self, disguised: bool, publisher: str | None, own_publisher: bool, company: str) -> list[str]:
        """Why a name match is only a look-alike, beyond the name itself."""
        why = ["letters from another script that look Latin"] if disguised else []
        if publisher and not own_publisher:
            why.append(f"publisher {publisher!r} is not {self.rulebook.subjects.companies[company].name}")
        elif publisher is None:
            why.append("no publisher given")
        return why

    def _lookalike(
        self, app: str, name: str, alias: str, source: str, weight: float, score: float, why: list[str]
    ) -> Match:
        app_name = self.rulebook.subjects.subjects[app].name
        confidence = round(weight * score / 100, 3)
        return Match(app, app_name, MatchKind.LOOKALIKE, confidence, "name", name, alias, score, source, "; ".join(why))

    def _by_words(self, name: str) -> list[tuple[str, str, str, float, str]]:
        """A name made of several names of one app ("Douyin 抖音", "WeChat 微信") is that app's name."""
        words = title_words(name)
        if len(words) < 2:
            return []
        apps: set[str] | None = None
        first: dict[str, tuple[str, str]] = {}
        for word in words:
            found = {app: (alias, source) for app, alias, source in self._names.get(name_key(word), [])}
            apps = set(found) if apps is None else apps & set(found)
            if not apps:
                return []
            for app, entry in found.items():
                first.setdefault(app, entry)
        return [(app, first[app][0], first[app][1], 100.0, "name") for app in sorted(apps or ())]


_HEAD_PREFIX = 8  # long keys are told apart by their first 8 characters, shorter ones whole


def key_prefixes(keys: Iterable[str]) -> dict[int, frozenset[str]]:
    """Keys by length, keys longer than _HEAD_PREFIX cut to it: a key that starts a text has its prefix of
    that length in the set for that length (a few look-ups, however many keys)."""
    found: dict[int, set[str]] = {}
    for key in keys:
        found.setdefault(min(len(key), _HEAD_PREFIX), set()).add(key[:_HEAD_PREFIX])
    return {length: frozenset(cut) for length, cut in sorted(found.items())}


def _may_reach_cutoff(a: int, b: int) -> bool:
    # rapidfuzz's ratio is 200 * LCS / (a + b) and LCS <= min(a, b).
    return 200 * min(a, b) >= FUZZY_CUTOFF * (a + b)


def _id_key(value: str) -> str:
    # Package names and bundle IDs are compared case-insensitively (iOS treats bundle IDs so).
    return value.strip().casefold()


_DEFAULT: dict[tuple[int, str | None], Resolver] = {}


def resolve(
    record: Record | Mapping[str, object], *, rulebook: Rulebook | None = None, where: str | None = None
) -> list[Match]:
    """Identify an app record against the registry (see Resolver)."""
    from appban.engine.decide import default_rulebook

    book = rulebook or default_rulebook()
    key = (id(book), where)
    if key not in _DEFAULT:
        _DEFAULT[key] = Resolver(book, where=where)
    if not isinstance(record, Record):
        record = Record.from_mapping(record)
    return _DEFAULT[key].resolve(record)

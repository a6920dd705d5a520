"""The rulebook's file format: one YAML file per instrument, read into the dataclasses below.

Every instant is written the way the instrument states it (date, clock time, time zone) and resolved
to an exact UTC instant at load; every item can carry its own citation and an explicit statement of
what about it is uncertain. Cross-references (ids, subjects, places, facts) are checked by the loader,
which sees all files at once.

The classes are stdlib dataclasses that pydantic checks when a file is read (see `appban.plain`): a
rulebook read from the compiled cache is built without pydantic, which saves every command its cost.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cached_property
from typing import Annotated, Literal

from appban.plain import STRICT, After, Before, Record, field, record
from appban.vocabulary import Category

_ID = r"^[a-z0-9][a-z0-9._-]*$"
_HTTP = r"^https?://"
_TIME = re.compile(r"^(?P<h>[01]\d|2[0-3]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?$")
_OFFSET = re.compile(r"^(?P<sign>[+-])(?P<h>\d\d):(?P<m>\d\d)$")
#: IANA zone names: segments of letters, digits, "_", "+" and "-" joined by "/" (so no "..", no absolute path).
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*", re.ASCII)
_ZONE_MAX = 64


class Strict(Record):
    """The base of the file format's classes (each a `@record`: frozen, with keyword-only fields)."""

    __pydantic_config__ = STRICT


def zone_from_name(name: str) -> dt.tzinfo:
    """An IANA zone ("America/New_York") or a fixed offset ("-05:00", for "eastern standard time")."""
    fixed = _OFFSET.match(name)
    if fixed:
        delta = dt.timedelta(hours=int(fixed["h"]), minutes=int(fixed["m"]))
        return dt.timezone(-delta if fixed["sign"] == "-" else delta)
    if name == "UTC":
        return dt.UTC
    # zoneinfo turns the name into a file path: anything past the IANA grammar would reach the file
    # system (and its error messages would name this server's directories), so it is refused first.
    if len(name) <= _ZONE_MAX and _ZONE_NAME.fullmatch(name):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # here: the compiled rulebook's instants need none

        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass  # OSError: "America" is a directory; the message, with its path, is not passed on
    shown = repr(name) if len(name) <= _ZONE_MAX else f"{name[:_ZONE_MAX]!r}... ({len(name):,} characters)"
    raise ValueError(f"unknown time zone {shown} (use an IANA name or an offset like -05:00)")


def _http_urls(value: list[str]) -> list[str]:
    for url in value:
        if not re.match(_HTTP, url):
            raise ValueError(f"source {url!r} is not an http(s) URL")
    return value


def _clock_time(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, int):
        # YAML 1.1 reads an unquoted 23:59 as the base-60 integer 1439.
        raise ValueError('write the clock time in quotes, e.g. time: "23:59"')
    if not isinstance(value, str) or not _TIME.match(value):
        raise ValueError(f"time must be HH:MM or HH:MM:SS, got {value!r}")
    return value


def _known_zone(value: str) -> str:
    zone_from_name(value)
    return value


def _plausible(value: dt.date) -> dt.date:
    if value.year < 1900:
        raise ValueError(f"{value} is not a plausible date for an instrument")
    return value


@record
class Citation(Strict):
    """Where an item of law comes from: the instrument's formal citation and readable copies."""

    cite: str = field(min_length=3, description="formal citation, e.g. '85 FR 60061 (Sept. 24, 2020)'")
    url: str = field(pattern=_HTTP, description="primary or best available copy")
    sources: Annotated[list[str], After(_http_urls)] = field(factory=list, description="further copies or reports")


@record
class Clock(Strict):
    """A date, an optional clock time and a zone, resolved to one exact UTC instant."""

    date: dt.date
    time: Annotated[str | None, Before(_clock_time)] = None
    zone: Annotated[str, After(_known_zone)]

    @cached_property
    def instant(self) -> dt.datetime:
        hour = minute = second = 0
        if self.time is not None:
            parts = _TIME.match(self.time)
            assert parts is not None  # validated
            hour, minute, second = int(parts["h"]), int(parts["m"]), int(parts["s"] or 0)
        day = self.date
        local = dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=zone_from_name(self.zone))
        return local.astimezone(dt.UTC)


@record
class Reading(Clock):
    """Another defensible reading of an instant (e.g. 'eastern standard time' taken literally)."""

    why: str


@record
class InstantSpec(Clock):
    """An instant as the instrument states it. Without a clock time it means 00:00 in `zone`."""

    stated: str | None = field(default=None, description="the instrument's own words for this instant")
    readings: list[Reading] = field(factory=list, description="other defensible readings")
    uncertain: str | None = field(default=None, description="what about this instant is not confirmed")

    @property
    def date_only(self) -> bool:
        return self.time is None

    @property
    def window(self) -> tuple[dt.datetime, dt.datetime] | None:
        """The span between the earliest and latest defensible readings, when there is more than one."""
        if not self.readings:
            return None
        instants = [self.instant, *(reading.instant for reading in self.readings)]
        return min(instants), max(instants)


MadeEvent = Literal["signed", "enacted", "issued", "filed", "entered", "announced"]


@record
class Made(InstantSpec):
    """When an instrument came into existence (signed, enacted, issued...). Before this instant it plays
    no part in any answer, whatever dates its items name.

    Without a clock time it means 00:00 in `zone`, and answers given on that day say the hour is not
    known. Where a dated report shows the instrument existed by some hour, that hour is the instant and
    the start of the day (or a later bound) is written as another reading, so the doubt has a window.
    """

    date: Annotated[dt.date, After(_plausible)]
    event: MadeEvent = field(description="what brought the instrument into existence")


@record
class Scope(Strict):
    """Which transactions an item is about: apps (directly or by controlling company), categories, places."""

    subjects: list[str] = field(factory=list)
    companies: list[str] = field(factory=list, description="every app of these companies")
    except_subjects: list[str] = field(factory=list)
    categories: list[Category] = field(factory=list, description="empty: every category")
    places: list[str] = field(factory=list, description="empty: everywhere")
    not_places: list[str] = field(factory=list)


@record
class Prohibition(Scope):
    """One operative prohibition of an instrument (e.g. item 1 of a Commerce identification)."""

    id: str = field(pattern=_ID)
    label: str
    text: str = field(description="the operative words, paraphrased with key terms kept")
    categories: list[Category] = field(min_length=1)
    places: list[str] = field(min_length=1)
    from_: InstantSpec = field(key="from")
    until: InstantSpec | None = field(default=None, description="sunset written into the instrument")
    anywhere_if: dict[str, bool | str] = field(
        factory=dict,
        description="transaction facts that lift the place limit (e.g. a U.S. agency's device abroad)",
    )
    citation: Citation | None = None
    notes: list[str] = field(factory=list)
    uncertain: str | None = None

    def __post_init__(self) -> None:
        if not self.subjects and not self.companies:
            raise ValueError("a prohibition names at least one subject or company")


@record
class Authorization(Scope):
    """An order that authorises prohibitions to be identified later; by itself it prohibits nothing."""

    id: str = field(pattern=_ID)
    label: str
    text: str
    from_: InstantSpec = field(key="from")
    citation: Citation | None = None


@record
class LawException(Scope):
    """A carve-out: transactions the instrument leaves alone.

    `applies_to` names the prohibitions (or whole instruments) it limits; `facts` names the
    transaction facts it reads and the value each must have for the exception to apply.
    """

    id: str = field(pattern=_ID)
    label: str
    text: str
    applies_to: list[str] = field(min_length=1)
    facts: dict[str, bool | str] = field(factory=dict)
    from_: InstantSpec | None = field(default=None, key="from")
    until: InstantSpec | None = None
    citation: Citation | None = None
    uncertain: str | None = None


ChangeKind = Literal["delay", "revoke", "enjoin", "non_enforcement"]


@record
class Change(Strict):
    """What an instrument does to other instruments' prohibitions.

    - delay: the targets start at `new_start` instead (part of the law as written);
    - revoke: revocation, rescission or withdrawal from `from` (as written);
    - enjoin: a court order barring enforcement from `from` until `until` (not part of as-written);
    - non_enforcement: an executive direction not to enforce (reported as `enforcement`, not verdict).
    Targets are prohibition ids or instrument ids; an instrument id also reaches every instrument
    that rests on it (`authority`).
    """

    id: str = field(pattern=_ID)
    kind: ChangeKind
    label: str
    targets: list[str] = field(min_length=1)
    subjects: list[str] = field(factory=list, description="limit to these apps")
    companies: list[str] = field(factory=list)
    from_: InstantSpec = field(key="from")
    until: InstantSpec | None = None
    new_start: InstantSpec | None = None
    citation: Citation | None = None
    uncertain: str | None = None

    def __post_init__(self) -> None:
        if (self.kind == "delay") != (self.new_start is not None):
            raise ValueError("new_start is required for a delay and only for a delay")


InstrumentKind = Literal[
    "executive_order",
    "presidential_order",
    "agency_notice",
    "agency_statement",
    "agency_memo",
    "court_order",
    "statute",
    "state_statute",
    "foreign_order",
]


@record
class Instrument(Strict):
    """One legal instrument: an order, notice, court order, statute or memo, in one YAML file."""

    id: str = field(pattern=_ID)
    kind: InstrumentKind
    title: str
    short_title: str
    issued_by: str
    jurisdiction: str
    made: Made = field(description="when the instrument came into existence; required")
    citation: Citation
    authority: list[str] = field(factory=list, description="instruments this one rests on")
    summary: str
    notes: list[str] = field(factory=list)
    uncertain: list[str] = field(factory=list)
    authorizations: list[Authorization] = field(factory=list)
    prohibitions: list[Prohibition] = field(factory=list)
    exceptions: list[LawException] = field(factory=list)
    changes: list[Change] = field(factory=list)


@record
class Company(Strict):
    """A company that controls apps an instrument names."""

    name: str
    aliases: list[str] = field(factory=list)
    country: str | None = field(default=None, description="ISO 3166 code, where a source states it")
    source: str = field(pattern=_HTTP)


@record
class Subject(Strict):
    """An app named by an instrument, with the aliases a user may type for it."""

    name: str
    company: str
    aliases: list[str] = field(factory=list)
    source: str = field(pattern=_HTTP)
    notes: list[str] = field(factory=list)


@record
class Subjects(Strict):
    """The apps the instruments name (subjects.yaml), and the companies that control them."""

    companies: dict[str, Company] = field(factory=dict)
    subjects: dict[str, Subject] = field(factory=dict)


@record
class PlaceGroup(Strict):
    """A named territory: its members are ISO 3166 codes, each also covering its subdivisions."""

    name: str
    members: list[str] = field(min_length=1)
    source: str = field(pattern=_HTTP)


@record
class Places(Strict):
    """The named territories (places.yaml)."""

    groups: dict[str, PlaceGroup]


@record
class FactSpec(Strict):
    """A named fact about a transaction that some exception reads."""

    type: Literal["bool", "str"]
    description: str
    values: list[str] = field(factory=list, description="allowed values of a str fact")


@record
class Facts(Strict):
    """The transaction facts exceptions may read (facts.yaml)."""

    facts: dict[str, FactSpec]

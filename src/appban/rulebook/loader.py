"""Load the rulebook directory, validate every file and every cross-reference, and hash it.

A bad file never half-loads: all problems are collected and raised together as one RulebookError,
each naming the file, the line, the path inside the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from appban.plain import Validated
from appban.rulebook.schema import (
    Authorization,
    Change,
    Company,
    Facts,
    Instrument,
    LawException,
    Places,
    Prohibition,
    Scope,
    Subject,
    Subjects,
)

if TYPE_CHECKING:
    import yaml

# PyYAML and pycountry are imported where they are used: a rulebook read from the compiled cache
# (appban.rulebook.compiled) needs neither, and `appban check` should not wait for them.

M = TypeVar("M", bound=Validated)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class RulebookError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@cache
def _yaml_loaders() -> tuple[type[yaml.SafeLoader], type[yaml.SafeLoader]]:
    """PyYAML's safe loader, and a subclass of it that rejects a key written twice in one mapping (PyYAML
    keeps the last silently)."""
    import yaml

    # libyaml's parser where PyYAML was built with it (the wheels are): several times faster than pure Python.
    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class UniqueKeyLoader(base):  # type: ignore[valid-type,misc]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is written twice", key_node.start_mark
                    )
                seen.add(key)
            mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            return mapping

    return base, UniqueKeyLoader


def _line_of(node: yaml.Node | None, loc: Iterable[int | str]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location (or of its nearest parent)."""
    if node is None:
        return None
    import yaml

    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    child = value_node
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _dotted(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class YamlSource:
    """One parsed YAML file, kept so that later cross-reference errors can name a line. The node tree that
    gives line numbers is built only when a problem needs one."""

    file: str
    text: str | None = None
    _node: yaml.Node | None = field(default=None, repr=False)

    @property
    def node(self) -> yaml.Node | None:
        if self._node is None and self.text is not None:
            import yaml

            try:
                self._node = yaml.compose(self.text, Loader=_yaml_loaders()[0])
            except yaml.YAMLError:
                return None
        return self._node

    def problem(self, loc: tuple[int | str, ...], message: str) -> Problem:
        return Problem(self.file, _line_of(self.node, loc), _dotted(loc), message)


#: pydantic's words for a dataclass's unknown keyword, as it says them for a model's unknown key.
_MESSAGES = {"unexpected_keyword_argument": "Extra inputs are not permitted"}


def parse_yaml(path: Path, model: type[M], problems: list[Problem], label: str) -> tuple[M | None, YamlSource]:
    """`model` from a YAML file; each problem (bad YAML, a key twice, a wrong field) names its line."""
    source = YamlSource(label)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(label, None, "", f"cannot read: {exc}"))
        return None, source
    source.text = text
    import yaml

    try:
        data = yaml.load(text, Loader=_yaml_loaders()[1])  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problems.append(Problem(label, line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return None, source
    if not isinstance(data, dict):
        problems.append(Problem(label, 1, "", "the file must hold a mapping (key: value lines)"))
        return None, source
    from pydantic import ValidationError

    try:
        return model.model_validate(data), source
    except ValidationError as exc:
        for error in exc.errors():
            message = _MESSAGES.get(error["type"]) or error["msg"].removeprefix("Value error, ")
            problems.append(source.problem(tuple(error["loc"]), message))
        return None, source


def default_rulebook_path() -> Path:
    from appban.knowledge.layout import active_root

    return active_root().path("rulebook")


@dataclass(eq=False)  # identity semantics: engines cache per loaded rulebook
class Rulebook:
    """The validated law: instruments, the apps and companies they name, places and facts."""

    root: Path
    instruments: dict[str, Instrument]
    subjects: Subjects
    places: Places
    facts: Facts
    version: str = ""
    _aliases: dict[str, str] = field(default_factory=dict, repr=False)
    _by_id: dict[str, tuple[Instrument, Any]] = field(default_factory=dict, repr=False)
    # What engines derive from this rulebook (the resolved law, compiled tables), kept by the rulebook itself
    # so it goes when the rulebook goes: a WeakKeyDictionary would never let go, as each value refers to its key.
    derived: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for subject_id, subject in self.subjects.subjects.items():
            for name in (subject_id, subject.name, *subject.aliases):
                self._aliases.setdefault(_fold(name), subject_id)
        if not self.version:  # given only by the compiled cache, which recorded it when it wrote the file
            self.version = "sha256:" + hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def canonical_json(self) -> str:
        content = {
            "subjects": self.subjects.model_dump(mode="json", by_alias=True),
            "places": self.places.model_dump(mode="json", by_alias=True),
            "facts": self.facts.model_dump(mode="json", by_alias=True),
            "instruments": [
                self.instruments[key].model_dump(mode="json", by_alias=True) for key in sorted(self.instruments)
            ],
        }
        return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    # --- lookups -------------------------------------------------------------------------------

    def subject_id(self, name: str) -> str | None:
        """The canonical subject id for an id, a name or a documented alias (case-insensitive)."""
        return self._aliases.get(_fold(name))

    def company_of(self, subject_id: str) -> str:
        return self.subjects.subjects[subject_id].company

    def in_scope_subject(self, scope: Scope | Change, subject_id: str) -> bool:
        """Whether an item names the app, directly or through its controlling company.

        An item naming neither apps nor companies is about every app its targets are about.
        """
        if subject_id in getattr(scope, "except_subjects", ()):
            return False
        if not scope.subjects and not scope.companies:
            return True
        return subject_id in scope.subjects or self.company_of(subject_id) in scope.companies

    def place_members(self, place: str) -> list[str]:
        group = self.places.groups.get(place)
        return list(group.members) if group else [place]

    def place_matches(self, code: str, place: str) -> bool:
        """Whether an ISO 3166 code lies in a place (a group, a country, or a subdivision)."""
        return any(code == member or code.startswith(member + "-") for member in self.place_members(place))

    def in_scope_place(self, scope: Scope, code: str) -> bool:
        if scope.places and not any(self.place_matches(code, place) for place in scope.places):
            return False
        return not any(self.place_matches(code, place) for place in scope.not_places)

    def items(self) -> Iterator[tuple[Instrument, Prohibition | LawException | Change | Authorization]]:
        for instrument in self.instruments.values():
            for _, items in _sections(instrument):
                yield from ((instrument, item) for item in items)

    def uncertainties(self) -> list[tuple[str, str, str]]:
        """Every fact the rulebook marks as not confirmed: (instrument id, item or field, what)."""
        # Items sharing one stated instant (a YAML anchor) share its doubt: list it once.
        found: dict[tuple[str, str], list[str]] = {}
        for instrument in self.instruments.values():
            for text in instrument.uncertain:
                found.setdefault((instrument.id, text), []).append("(instrument)")
            made = instrument.made
            if made.uncertain:
                found.setdefault((instrument.id, made.uncertain), []).append("made")
            elif made.date_only:
                text = f"{made.event} on {made.date.isoformat()}; the hour is not known"
                found.setdefault((instrument.id, text), []).append("made")
            elif made.readings:
                text = f"{made.event} on {made.date.isoformat()} by {made.time} ({made.zone}); the hour is not known"
                found.setdefault((instrument.id, text), []).append("made")
        for instrument, item in self.items():
            doubt = getattr(item, "uncertain", None)
            if doubt:
                found.setdefault((instrument.id, doubt), []).append(item.id)
            for name in ("from_", "until", "new_start"):
                spec = getattr(item, name, None)
                if spec is not None and spec.uncertain:
                    found.setdefault((instrument.id, spec.uncertain), []).append(f"{item.id}.{name.rstrip('_')}")
        return [(instrument, ", ".join(items), text) for (instrument, text), items in found.items()]

    def find(self, item_id: str) -> tuple[Instrument, Any] | None:
        """An instrument (as its own item) or any item inside one, by id."""
        if item_id in self.instruments:
            return self.instruments[item_id], self.instruments[item_id]
        if not self._by_id:
            self._by_id.update({item.id: (instrument, item) for instrument, item in self.items()})
        return self._by_id.get(item_id)


def _fold(name: str) -> str:
    return " ".join(name.casefold().replace("_", " ").replace("-", " ").split())


# Every valid code, when the compiled rulebook cache brought them (appban.rulebook.compiled): asking
# pycountry costs a light command its import and the reading of its code lists.
_place_codes: frozenset[str] | None = None


def use_place_codes(codes: frozenset[str]) -> None:
    """Answer valid_place_code() from `codes` (all_place_codes() as the cache wrote it) from now on."""
    global _place_codes
    _place_codes = codes


def all_place_codes() -> frozenset[str]:
    """Every ISO 3166-1 alpha-2 country and ISO 3166-2 subdivision code pycountry knows."""
    import pycountry

    countries = (country.alpha_2 for country in pycountry.countries)
    subdivisions = (subdivision.code for subdivision in pycountry.subdivisions)
    return frozenset((*countries, *subdivisions))


def valid_place_code(code: str) -> bool:
    """An ISO 3166-1 alpha-2 country or ISO 3166-2 subdivision code (in any case, as pycountry finds them)."""
    if _place_codes is not None:
        return code.upper() in _place_codes
    import pycountry

    if len(code) == 2:
        return pycountry.countries.get(alpha_2=code) is not None
    return pycountry.subdivisions.get(code=code) is not None  # type: ignore[no-untyped-call]


def load_rulebook(root: Path | str | None = None, *, extra: Iterable[Path] = ()) -> Rulebook:
    """Load and validate a rulebook directory (the packaged one by default).

    `extra` instrument files are loaded as well, replacing any packaged instrument with the same
    id: that is how `rules validate FILE` checks one new file against the rest of the law.
    """
    root = Path(root) if root is not None else default_rulebook_path()
    if not root.is_dir():
        raise RulebookError([Problem(str(root), None, "", "not a rulebook directory")])
    extra = list(extra)
    if extra:  # a file under review: its problems are the answer, so it is always read and checked
        return _load_yaml(root, extra)
    from appban.rulebook import compiled

    key = compiled.cache_key(root)
    book = compiled.load(root, key) if key is not None else None
    if book is None:
        book = _load_yaml(root, [])
        if key is not None:
            compiled.store(book, key)
    return book


def _load_yaml(root: Path, extra: list[Path]) -> Rulebook:
    """Parse and check every file of the rulebook in `root` (and `extra` instrument files)."""
    problems: list[Problem] = []

    def label(path: Path) -> str:
        try:
            return str(path.relative_to(root.parent))
        except ValueError:
            return str(path)

    subjects, subjects_src = _load_subjects(root, problems, label)
    places, places_src = parse_yaml(root / "places.yaml", Places, problems, label(root / "places.yaml"))
    facts, _ = parse_yaml(root / "facts.yaml", Facts, problems, label(root / "facts.yaml"))

    parsed: dict[str, tuple[Instrument, YamlSource]] = {}
    files = sorted((root / "instruments").glob("*.yaml"))
    extra_files = [Path(p) for p in extra]
    extra_ids: set[str] = set()
    for path in [*files, *extra_files]:
        instrument, source = parse_yaml(path, Instrument, problems, label(path))
        if instrument is None:
            continue
        if path.stem != instrument.id:
            problems.append(source.problem(("id",), f"id {instrument.id!r} must match the file name {path.stem!r}"))
        if instrument.id in parsed and path in extra_files and instrument.id not in extra_ids:
            extra_ids.add(instrument.id)  # a file being validated replaces the packaged one
        elif instrument.id in parsed:
            problems.append(source.problem(("id",), f"instrument id {instrument.id!r} is used twice"))
            continue
        parsed[instrument.id] = (instrument, source)
    if not files:
        problems.append(Problem(label(root / "instruments"), None, "", "no instrument files found"))

    if subjects is not None and places is not None and facts is not None:
        _check_references(parsed, subjects, subjects_src, places, places_src, facts, problems)
    if problems:
        raise RulebookError(problems)
    assert subjects is not None and places is not None and facts is not None
    return Rulebook(root, {key: pair[0] for key, pair in parsed.items()}, subjects, places, facts)


def _load_subjects(
    root: Path, problems: list[Problem], label: Callable[[Path], str]
) -> tuple[Subjects | None, dict[str, YamlSource]]:
    """subjects.yaml and every file in subjects/ (the apps of one list each, e.g. an order's annex), merged.

    The second value says which file each company and subject comes from, so that a later problem names it.
    """
    companies: dict[str, Company] = {}
    subjects: dict[str, Subject] = {}
    origin: dict[str, dict[str, YamlSource]] = {"companies": {}, "subjects": {}}
    whole = True
    for path in [root / "subjects.yaml", *sorted((root / "subjects").glob("*.yaml"))]:
        part, source = parse_yaml(path, Subjects, problems, label(path))
        if part is None:
            whole = False
            continue
        sections: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = (
            ("companies", part.companies, companies),
            ("subjects", part.subjects, subjects),
        )
        for section, found, into in sections:
            for key, value in found.items():
                if key in into:
                    first = origin[section][key].file
                    problems.append(source.problem((section, key), f"{key!r} is already defined in {first}"))
                    continue
                into[key] = value
                origin[section][key] = source
    if not whole:
        return None, origin["subjects"]
    return Subjects(companies=companies, subjects=subjects), origin["subjects"]


def _sections(instrument: Instrument) -> list[tuple[str, list[Any]]]:
    return [
        ("authorizations", instrument.authorizations),
        ("prohibitions", instrument.prohibitions),
        ("exceptions", instrument.exceptions),
        ("changes", instrument.changes),
    ]


def _check_references(
    parsed: dict[str, tuple[Instrument, YamlSource]],
    subjects: Subjects,
    subjects_src: dict[str, YamlSource],
    places: Places,
    places_src: YamlSource,
    facts: Facts,
    problems: list[Problem],
) -> None:
    named: dict[str, str] = {}
    for key, subject in subjects.subjects.items():
        for name in (key, subject.name, *subject.aliases):
            other = named.setdefault(_fold(name), key)
            if other != key:
                message = f"the name {name!r} already stands for {other!r}; a name must point to one app"
                problems.append(subjects_src[key].problem(("subjects", key), message))
        if subject.company not in subjects.companies:
            problems.append(
                subjects_src[key].problem(("subjects", key, "company"), f"unknown company {subject.company!r}")
            )
    for key, group in places.groups.items():
        for i, member in enumerate(group.members):
            if not valid_place_code(member):
                problems.append(
                    places_src.problem(("groups", key, "members", i), f"{member!r} is not an ISO 3166 code")
                )

    item_ids: dict[str, str] = {}
    for instrument, source in parsed.values():
        for section, items in _sections(instrument):
            for i, item in enumerate(items):
                if item.id in item_ids or item.id in parsed:
                    problems.append(source.problem((section, i, "id"), f"id {item.id!r} is already used"))
                item_ids[item.id] = instrument.id
    targets = set(parsed) | set(item_ids)

    def check_place(source: YamlSource, loc: tuple[int | str, ...], place: str) -> None:
        if place not in places.groups and not valid_place_code(place):
            problems.append(source.problem(loc, f"{place!r} is neither a place group nor an ISO 3166 code"))

    for instrument, source in parsed.values():
        check_place(source, ("jurisdiction",), instrument.jurisdiction)
        for i, parent in enumerate(instrument.authority):
            if parent not in parsed:
                problems.append(source.problem(("authority", i), f"unknown instrument {parent!r}"))
            elif parsed[parent][0].made.instant > instrument.made.instant:
                # An instrument cannot rest on one made after it: the law at T would lose its footing.
                problems.append(
                    source.problem(
                        ("authority", i),
                        f"rests on {parent!r}, which was made later ({parsed[parent][0].made.date.isoformat()})",
                    )
                )
        for section, items in _sections(instrument):
            for i, item in enumerate(items):
                loc: tuple[int | str, ...] = (section, i)
                for j, subject in enumerate(item.subjects):
                    if subject not in subjects.subjects:
                        problems.append(source.problem((*loc, "subjects", j), f"unknown subject {subject!r}"))
                for j, subject in enumerate(getattr(item, "except_subjects", [])):
                    if subject not in subjects.subjects:
                        problems.append(source.problem((*loc, "except_subjects", j), f"unknown subject {subject!r}"))
                for j, company in enumerate(item.companies):
                    if company not in subjects.companies:
                        problems.append(source.problem((*loc, "companies", j), f"unknown company {company!r}"))
                for name in ("places", "not_places"):
                    for j, place in enumerate(getattr(item, name, [])):
                        check_place(source, (*loc, name, j), place)
                for name in ("targets", "applies_to"):
                    for j, target in enumerate(getattr(item, name, [])):
                        if target not in targets:
                            problems.append(source.problem((*loc, name, j), f"unknown instrument or item {target!r}"))
                wanted = item.facts if isinstance(item, LawException) else getattr(item, "anywhere_if", {})
                field_name = "facts" if isinstance(item, LawException) else "anywhere_if"
                if wanted:
                    for fact, value in wanted.items():
                        spec = facts.facts.get(fact)
                        if spec is None:
                            problems.append(
                                source.problem((*loc, field_name, fact), f"unknown fact {fact!r} (see facts.yaml)")
                            )
                        elif spec.type == "bool" and not isinstance(value, bool):
                            problems.append(source.problem((*loc, field_name, fact), "this fact is true or false"))
                        elif spec.type == "str" and (not isinstance(value, str) or value not in spec.values):
                            problems.append(source.problem((*loc, field_name, fact), f"must be one of {spec.values}"))

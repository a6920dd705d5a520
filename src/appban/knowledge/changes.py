"""What differs between two knowledge roots: instruments and their items, subjects, places, facts, and the
entries of the identity registry, network indicators, code signatures and payment markers.

Every entry is named by its natural key (an instrument's id, a domain indicator's name, a signature's id,
a payment marker's value and service...), so that an entry edited in place reads as "changed" with the
fields that differ, not as one removal and one addition. The result is plain data in a fixed order: the
parts in `layout.PARTS` order, then section, then key. It is the changelog of a bundle's manifest and the
first half of `appban rules diff`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from appban.knowledge.layout import PARTS, KnowledgeRoot
from appban.plain import Record
from appban.rulebook.loader import Problem, Rulebook, RulebookError, load_rulebook, parse_yaml
from appban.rulebook.schema import Instrument

ChangeKind = Literal["added", "changed", "removed"]

#: The sections of an instrument that hold items with ids of their own, in the order the schema writes them.
ITEM_SECTIONS = ("authorizations", "prohibitions", "exceptions", "changes")
#: Fields (instrument or item) that hold instants: a change to one of them is a change of "dates".
DATE_FIELDS = frozenset({"made", "from", "until", "new_start"})


@dataclass(frozen=True)
class ItemChange:
    """One item inside a changed instrument (a prohibition, exception, change or authorisation), or the
    instrument's own fields (section "instrument")."""

    section: str
    id: str
    change: ChangeKind
    fields: tuple[str, ...] = ()  # for "changed": the fields that differ, as the YAML names them

    def to_json_dict(self) -> dict[str, Any]:
        return {"section": self.section, "id": self.id, "change": self.change, "fields": list(self.fields)}


@dataclass(frozen=True)
class EntryChange:
    """One entry added, changed or removed: an instrument, a subject, a place group, a fact, or a list entry."""

    part: str  # the knowledge part (layout.PARTS names): "rulebook", "identity", "network/indicators.yaml"...
    section: str  # inside the part: "instruments", "subjects", "domains", "signatures", "methods"...
    key: str  # the entry's natural key in its section
    change: ChangeKind
    fields: tuple[str, ...] = ()  # for "changed": the fields that differ
    items: tuple[ItemChange, ...] = ()  # for a changed instrument: the items inside it that differ
    kinds: tuple[str, ...] = ()  # for a changed instrument: prohibitions, exceptions, changes, ..., dates, citations

    def to_json_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"part": self.part, "section": self.section, "key": self.key, "change": self.change}
        data["fields"] = list(self.fields)
        if self.part == "rulebook" and self.section == "instruments":
            data["kinds"] = list(self.kinds)
            data["items"] = [item.to_json_dict() for item in self.items]
        return data

    def describe(self) -> str:
        """A short phrase for tables: what changed inside a changed entry."""
        if self.change != "changed":
            return ""
        if self.items:
            return "; ".join(
                f"{item.id} {item.change}" + (f" ({', '.join(item.fields)})" if item.fields else "")
                for item in self.items
            )
        return ", ".join(self.fields)


@dataclass(frozen=True)
class Changes:
    """Every entry that differs between knowledge roots A and B, and the rulebook version of each."""

    rulebook_a: str
    rulebook_b: str
    entries: tuple[EntryChange, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.entries

    @property
    def instruments(self) -> list[EntryChange]:
        return [e for e in self.entries if e.part == "rulebook" and e.section == "instruments"]

    def of(self, part: str, section: str | None = None) -> list[EntryChange]:
        return [e for e in self.entries if e.part == part and (section is None or e.section == section)]

    def counts(self) -> dict[str, int]:
        found = {"added": 0, "changed": 0, "removed": 0}
        for entry in self.entries:
            found[entry.change] += 1
        return found

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "rulebook_a": self.rulebook_a,
            "rulebook_b": self.rulebook_b,
            "counts": self.counts(),
            "entries": [entry.to_json_dict() for entry in self.entries],
        }


def changes(a: KnowledgeRoot, b: KnowledgeRoot) -> Changes:
    """What differs from knowledge root A to knowledge root B. Raises RulebookError (a ValueError naming the
    file, line and field) when either root holds a file that cannot be read as its part."""
    book_a = load_rulebook(a.path("rulebook"))
    book_b = load_rulebook(b.path("rulebook"))
    return changes_between(book_a, book_b, a, b)


def changes_between(book_a: Rulebook, book_b: Rulebook, a: KnowledgeRoot, b: KnowledgeRoot) -> Changes:
    """`changes` for rulebooks already loaded from the roots (so that `rules diff` loads each once)."""
    entries: list[EntryChange] = []
    for part in PARTS:
        if part.name == "rulebook":
            entries += _rulebook_changes(book_a, book_b)
        else:
            old, new = _list_entries(a, part.name), _list_entries(b, part.name)
            entries += _diff(part.name, old, new)
    return Changes(book_a.version, book_b.version, tuple(entries))


# --- the rulebook -------------------------------------------------------------------------------------


def _dump(model: Record | BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


def _fields_differing(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key)))


def _rulebook_changes(a: Rulebook, b: Rulebook) -> list[EntryChange]:
    entries = _instrument_changes(a.instruments, b.instruments)
    sections: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("companies", dict(a.subjects.companies), dict(b.subjects.companies)),
        ("subjects", dict(a.subjects.subjects), dict(b.subjects.subjects)),
        ("places", dict(a.places.groups), dict(b.places.groups)),
        ("facts", dict(a.facts.facts), dict(b.facts.facts)),
    ]
    for section, old, new in sections:
        entries += _diff(
            "rulebook",
            {(section, key): _dump(value) for key, value in old.items()},
            {(section, key): _dump(value) for key, value in new.items()},
        )
    return entries


def _instrument_changes(old: dict[str, Instrument], new: dict[str, Instrument]) -> list[EntryChange]:
    entries: list[EntryChange] = []
    for key in sorted(old.keys() | new.keys()):
        if key not in new:
            entries.append(EntryChange("rulebook", "instruments", key, "removed"))
        elif key not in old:
            entries.append(EntryChange("rulebook", "instruments", key, "added"))
        else:
            entry = _instrument_changed(old[key], new[key])
            if entry is not None:
                entries.append(entry)
    return entries


def _instrument_changed(old: Instrument, new: Instrument) -> EntryChange | None:
    before, after = _dump(old), _dump(new)
    if before == after:
        return None
    items: list[ItemChange] = []
    kinds: set[str] = set()
    own = _fields_differing(
        {k: v for k, v in before.items() if k not in ITEM_SECTIONS},
        {k: v for k, v in after.items() if k not in ITEM_SECTIONS},
    )
    if own:
        items.append(ItemChange("instrument", old.id, "changed", own))
        kinds.update(_kinds_of_fields(own))
    for section in ITEM_SECTIONS:
        was = {item["id"]: item for item in before[section]}
        now = {item["id"]: item for item in after[section]}
        for item_id in sorted(was.keys() | now.keys()):
            if item_id not in now:
                items.append(ItemChange(section, item_id, "removed"))
            elif item_id not in was:
                items.append(ItemChange(section, item_id, "added"))
            elif was[item_id] != now[item_id]:
                differing = _fields_differing(was[item_id], now[item_id])
                items.append(ItemChange(section, item_id, "changed", differing))
                kinds.update(_kinds_of_fields(differing))
            else:
                continue
            kinds.add(section)
        if [item["id"] for item in before[section]] != [item["id"] for item in after[section]] and not any(
            item.section == section for item in items
        ):
            items.append(ItemChange(section, old.id, "changed", ("order",)))
            kinds.add(section)
    return EntryChange(
        "rulebook", "instruments", old.id, "changed", own, tuple(items), tuple(k for k in _KIND_ORDER if k in kinds)
    )


_KIND_ORDER = (*ITEM_SECTIONS, "dates", "citations", "other")


def _kinds_of_fields(fields: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for name in fields:
        if name in DATE_FIELDS:
            found.add("dates")
        elif name == "citation":
            found.add("citations")
        else:
            found.add("other")
    return found


# --- the lists ----------------------------------------------------------------------------------------

Entries = dict[tuple[str, str], dict[str, Any]]  # (section, natural key) -> the entry as JSON data


def _diff(part: str, old: Entries, new: Entries) -> list[EntryChange]:
    out: list[EntryChange] = []
    for section, key in sorted(old.keys() | new.keys()):
        if (section, key) not in new:
            out.append(EntryChange(part, section, key, "removed"))
        elif (section, key) not in old:
            out.append(EntryChange(part, section, key, "added"))
        elif old[section, key] != new[section, key]:
            differing = _fields_differing(old[section, key], new[section, key])
            out.append(EntryChange(part, section, key, "changed", differing))
    return out


def _list_entries(root: KnowledgeRoot, part: str) -> Entries:
    """The entries of one list part of a root, each under its natural key."""
    problems: list[Problem] = []
    entries: Entries = {}
    path = root.path(part)

    def add(section: str, key: str, value: dict[str, Any]) -> None:
        # Two entries with one key (a name listed twice) are both kept, numbered in file order; the same
        # entry written again (a source both registry files define) is one entry.
        unique, n = key, 1
        while (section, unique) in entries:
            if entries[section, unique] == value:
                return
            n += 1
            unique = f"{key} #{n}"
        entries[section, unique] = value

    if part == "identity":
        from appban.identity.registry import ID_FIELDS, RegistryFile

        files = [path / "apps.yaml", *sorted((path / "apps").glob("*.yaml"))]
        for file in files:
            registry, _ = parse_yaml(file, RegistryFile, problems, _label(root, part, file))
            if registry is not None:
                for name, value in _identity_entries(registry, ID_FIELDS):
                    add(*name, value)
    elif part == "network/indicators.yaml":
        from appban.network.indicators import IndicatorSet

        indicators, _ = parse_yaml(path, IndicatorSet, problems, _label(root, part, path))
        if indicators is not None:
            for name, value in _indicator_entries(indicators):
                add(*name, value)
    elif part == "code/signatures.yaml":
        from appban.code.signatures import SignatureFile

        signatures, _ = parse_yaml(path, SignatureFile, problems, _label(root, part, path))
        if signatures is not None:
            for key, url in signatures.sources.items():
                add("sources", key, {"url": url})
            for signature in signatures.signatures:
                add("signatures", signature.id, _dump(signature))
            for catalog in signatures.catalogs:
                add("catalogs", catalog.id, _dump(catalog))
    elif part == "payments/markers.yaml":
        from appban.payments.markers import MarkerSet

        markers, _ = parse_yaml(path, MarkerSet, problems, _label(root, part, path))
        if markers is not None:
            for name, value in _marker_entries(markers):
                add(*name, value)
    else:  # a part without entries of its own (the cases file): each of its files is one entry, by content
        for file_name, digest in _file_digests(path):
            add("files", file_name, {"sha256": digest})
    if problems:
        raise RulebookError(problems)
    return entries


def _file_digests(path: Path) -> Iterator[tuple[str, str]]:
    """(name, sha256) of a part that is one file, or of each file under a part that is a directory; nothing
    when the root does not hold the part (a part newer than the root: its files all read as added)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
    for file in files:
        name = file.relative_to(path).as_posix() if path.is_dir() else path.name
        yield name, hashlib.sha256(file.read_bytes()).hexdigest()


def _label(root: KnowledgeRoot, part: str, file: Path) -> str:
    """How an error names a file: its path inside the root (the packaged data is named as a bundle names it)."""
    base = root.path(part)
    inside = file.relative_to(base.parent) if file.is_relative_to(base.parent) else file
    return str(inside) if root.directory is None else str(file)


def _identity_entries(registry: Any, id_fields: Iterable[str]) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    for key, url in registry.sources.items():
        yield ("sources", key), {"url": url}
    for company, publishers in registry.publishers.items():
        for publisher in publishers:
            yield ("publishers", f"{company}: {publisher.value}"), _dump(publisher)
    for app, identity in registry.apps.items():
        for field_name in (*id_fields, "names"):
            for identifier in getattr(identity, field_name):
                yield ("apps", f"{app} {field_name} {identifier.value}"), _dump(identifier)
        for title in identity.titles:
            where = f"{title.store} {title.storefront}" + (f"/{title.locale}" if title.locale else "")
            yield ("apps", f"{app} title {where} {title.value}"), _dump(title)


def _indicator_entries(indicators: Any) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    for key, url in indicators.sources.items():
        yield ("sources", key), {"url": url}
    for domain in indicators.domains:
        yield ("domains", f"{'host' if domain.exact else 'suffix'} {domain.name}"), _dump(domain)
    for indicator in indicators.prefixes:
        # One indicator lists several prefixes; each prefix is an entry, so that moving one between
        # indicators, or adding one, reads as exactly that.
        rest = {k: v for k, v in _dump(indicator).items() if k != "prefixes"}
        for prefix in indicator.prefixes:
            yield ("prefixes", prefix), rest
    for asn in indicators.asns:
        yield ("asns", f"AS{asn.asn}"), _dump(asn)
    for shared in indicators.shared_suffixes:
        yield ("shared_suffixes", shared.suffix), _dump(shared)
    for left in indicators.left_out:
        yield ("left_out", f"{left.name} ({left.listed_as})"), _dump(left)


def _marker_entries(markers: Any) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    for key, service in markers.services.items():
        yield ("services", key), _dump(service)
    for method in markers.methods:
        yield ("methods", f"{method.value} ({method.service})"), _dump(method)
    for name in markers.names:
        yield ("names", f"{name.value} ({name.service})"), _dump(name)
    for institution in markers.institutions:
        yield ("institutions", f"{institution.scheme} {institution.value}"), _dump(institution)
    for purpose in markers.purposes:
        yield ("purposes", purpose.code), _dump(purpose)
    for other in markers.other_methods:
        rest = {k: v for k, v in _dump(other).items() if k != "values"}
        for value in other.values:
            yield ("other_methods", value), rest
    for key, gateway in markers.gateways.items():
        yield ("gateways", key), _dump(gateway)


def changelog_text(found: Changes) -> str:
    """The changes as canonical JSON text (sorted keys, no spaces), for a manifest that is hashed and signed."""
    return json.dumps(found.to_json_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

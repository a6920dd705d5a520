"""The identity registry: store and device identifiers of every app the rulebook knows, with sources."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from appban.rulebook.loader import Problem, Rulebook, RulebookError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Identifier(Strict):
    value: str = Field(min_length=1)
    source: str


class Title(Identifier):
    """A whole store title ("TikTok - Videos, Shop & LIVE"), as one storefront of one store shows it."""

    store: Literal["app_store", "google_play"]
    storefront: str = Field(pattern=r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2
    locale: str | None = None  # the listing's language, when the storefront has several


class AppIdentity(Strict):
    android_package: list[Identifier] = Field(default_factory=list)
    ios_bundle: list[Identifier] = Field(default_factory=list)
    app_store_id: list[Identifier] = Field(default_factory=list)
    names: list[Identifier] = Field(min_length=1)
    titles: list[Title] = Field(default_factory=list)


class RegistryFile(Strict):
    sources: dict[str, str]
    publishers: dict[str, list[Identifier]]
    apps: dict[str, AppIdentity]


ID_FIELDS = ("android_package", "ios_bundle", "app_store_id")


def default_registry_path() -> Path:
    from appban.knowledge.layout import active_root

    return active_root().path("identity") / "apps.yaml"


def _read(path: Path) -> RegistryFile:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        return RegistryFile.model_validate(data)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise RulebookError([Problem(path.name, None, "", str(exc))]) from None


def _merge(parts: list[tuple[str, RegistryFile]], problems: list[Problem]) -> RegistryFile:
    """One registry from several files (apps.yaml and the lists in apps/), each key defined once."""
    merged: dict[str, dict[str, object]] = {"sources": {}, "publishers": {}, "apps": {}}
    for label, part in parts:
        for section in merged:
            for key, value in getattr(part, section).items():
                if key in merged[section] and merged[section][key] != value:
                    problems.append(
                        Problem(label, None, f"{section}.{key}", "already defined differently in another file")
                    )
                merged[section].setdefault(key, value)
    return RegistryFile.model_validate(merged)


def load_registry(rulebook: Rulebook, path: Path | None = None) -> RegistryFile:
    """Load the registry and check it against the rulebook: known apps and companies, cited sources.

    The packaged registry is apps.yaml plus every file in apps/ (the apps of one list each); a `path`
    given is read alone."""
    problems: list[Problem] = []
    if path is None:
        path = default_registry_path()
        files = [path, *sorted((path.parent / "apps").glob("*.yaml"))]
    else:
        files = [path]
    label = path.name
    registry = _merge([(f.name, _read(f)) for f in files], problems)
    for key, url in registry.sources.items():
        if not url.startswith(("http://", "https://")):
            problems.append(Problem(label, None, f"sources.{key}", "not an http(s) URL"))

    def check(where: str, identifier: Identifier) -> None:
        if identifier.source not in registry.sources:
            problems.append(Problem(label, None, where, f"unknown source {identifier.source!r}"))

    for company, publishers in registry.publishers.items():
        if company not in rulebook.subjects.companies:
            problems.append(Problem(label, None, f"publishers.{company}", "unknown company"))
        for i, publisher in enumerate(publishers):
            check(f"publishers.{company}[{i}]", publisher)
    owners: dict[tuple[str, str], str] = {}
    for app, identity in registry.apps.items():
        for field in ID_FIELDS:
            for identifier in getattr(identity, field):
                first = owners.setdefault((field, identifier.value.casefold()), app)
                if first != app:
                    problems.append(
                        Problem(
                            label, None, f"apps.{app}.{field}", f"{identifier.value!r} already identifies {first!r}"
                        )
                    )
        if app not in rulebook.subjects.subjects:
            problems.append(Problem(label, None, f"apps.{app}", "not a subject of the rulebook (subjects.yaml)"))
        for field in (*ID_FIELDS, "names", "titles"):
            for i, identifier in enumerate(getattr(identity, field)):
                check(f"apps.{app}.{field}[{i}]", identifier)
    if problems:
        raise RulebookError(problems)
    return registry

"""The network indicator set: domains, IP prefixes and ASNs, each with an app, a scope and sources.

A domain is either a `suffix` (the name and every name under it, by whole labels) or a `host` (that exact
name only). Names a shared CDN or cloud hands out to all its customers (`*.akamaized.net`) can only be
hosts: a suffix there would reach every other customer under the same customer-chosen label. Entries a
source list attributes to TikTok or WeChat that are not used are kept in `left_out`, each with its reason,
so a reader can tell a deliberate omission from an overlooked one.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from appban.rulebook.loader import Problem, Rulebook, RulebookError, YamlSource, parse_yaml

Scope = Literal["app", "company"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _domain_name(value: str) -> str:
    value = value.strip().rstrip(".").lower()
    if not value or " " in value or value.startswith(".") or "*" in value:
        raise ValueError(f"{value!r} is not a domain name")
    return value


def _under(name: str, suffix: str) -> bool:
    """Whether `name` is `suffix` or a name below it, by whole labels."""
    return name == suffix or name.endswith("." + suffix)


class DomainIndicator(Strict):
    suffix: str | None = None  # this name and every name under it
    host: str | None = None  # this exact name only
    app: str
    scope: Scope
    confidence: float = Field(gt=0, le=1)
    sources: list[str] = Field(min_length=1)
    note: str | None = None  # why this app and scope, where the sources disagree
    first_seen: str | None = None
    last_seen: str | None = None

    @field_validator("suffix", "host")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return None if value is None else _domain_name(value)

    @model_validator(mode="after")
    def _one_name(self) -> DomainIndicator:
        if (self.suffix is None) == (self.host is None):
            raise ValueError("give exactly one of suffix (the name and the names under it) or host (that name only)")
        return self

    @property
    def name(self) -> str:
        return cast(str, self.suffix if self.suffix is not None else self.host)

    @property
    def exact(self) -> bool:
        return self.host is not None


class SharedSuffix(Strict):
    """A domain whose names belong to many unrelated customers (a CDN's or cloud's edge names)."""

    suffix: str
    operator: str
    sources: list[str] = Field(min_length=1)

    @field_validator("suffix")
    @classmethod
    def _lower(cls, value: str) -> str:
        return _domain_name(value)


class LeftOut(Strict):
    """An entry a source list gives for a covered app that the set does not use, and why."""

    name: str  # as the list writes it (it may be a pattern the matcher cannot express)
    listed_as: str  # the subject the list files it under
    sources: list[str] = Field(min_length=1)
    reason: str = Field(min_length=10)


class PrefixIndicator(Strict):
    prefixes: list[str] = Field(min_length=1)
    app: str
    scope: Scope
    asn: int | None = None
    confidence: float = Field(gt=0, le=1)
    sources: list[str] = Field(min_length=1)

    @field_validator("prefixes")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(prefix, strict=True)) for prefix in value]


class AsnIndicator(Strict):
    asn: int
    name: str
    app: str
    scope: Scope
    confidence: float = Field(gt=0, le=1)
    sources: list[str] = Field(min_length=1)


class IndicatorSet(Strict):
    sources: dict[str, str]
    domains: list[DomainIndicator]
    prefixes: list[PrefixIndicator]
    asns: list[AsnIndicator]
    shared_suffixes: list[SharedSuffix] = Field(default_factory=list)
    left_out: list[LeftOut] = Field(default_factory=list)

    def source_urls(self, keys: list[str]) -> list[str]:
        return [self.sources[key] for key in keys]


def default_indicator_path() -> Path:
    from appban.knowledge.layout import active_root

    return active_root().path("network/indicators.yaml")


def load_indicators(rulebook: Rulebook, path: Path | None = None) -> IndicatorSet:
    path = path or default_indicator_path()
    problems: list[Problem] = []
    data, source = parse_yaml(path, IndicatorSet, problems, path.name)
    if data is None:
        raise RulebookError(problems)
    for section in ("domains", "prefixes", "asns", "shared_suffixes", "left_out"):
        for i, item in enumerate(getattr(data, section)):
            app = getattr(item, "listed_as", getattr(item, "app", None))
            if app is not None and app not in rulebook.subjects.subjects:
                field = "listed_as" if section == "left_out" else "app"
                problems.append(source.problem((section, i, field), f"unknown subject {app!r}"))
            for source_id in item.sources:
                if source_id not in data.sources:
                    problems.append(source.problem((section, i, "sources"), f"unknown source {source_id!r}"))
    problems += _domain_problems(data, source)
    if problems:
        raise RulebookError(problems)
    return data


def _domain_problems(data: IndicatorSet, source: YamlSource) -> list[Problem]:
    """Names listed twice, suffixes on shared CDNs, and left-out names that are listed after all."""
    problems: list[Problem] = []
    seen: set[str] = set()
    shared = [s.suffix for s in data.shared_suffixes]
    for i, item in enumerate(data.domains):
        field = "host" if item.exact else "suffix"
        if item.name in seen:
            problems.append(source.problem(("domains", i, field), f"{item.name!r} is listed twice"))
        seen.add(item.name)
        on = next((s for s in shared if _under(item.name, s)), None)
        if on is not None and not item.exact:
            problems.append(
                source.problem(
                    ("domains", i, "suffix"),
                    f"{item.name!r} is on the shared domain {on!r}: a suffix there reaches other customers; "
                    "list the name as host",
                )
            )
    for i, gone in enumerate(data.left_out):
        if gone.name.lower().rstrip(".") in seen:
            problems.append(source.problem(("left_out", i, "name"), f"{gone.name!r} is also listed in domains"))
    return problems


def default_indicators(rulebook: Rulebook) -> IndicatorSet:
    """The packaged indicators, kept by the rulebook they were checked against (and gone with it)."""
    found = rulebook.derived.get("indicators")
    if found is None:
        found = rulebook.derived["indicators"] = load_indicators(rulebook)
    return cast(IndicatorSet, found)

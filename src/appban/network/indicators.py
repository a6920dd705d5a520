"""The network indicator set: domains, IP prefixes and ASNs, each with an app, a scope and sources."""

from __future__ import annotations

import ipaddress
from importlib import resources
from pathlib import Path
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from appban.rulebook.loader import Problem, Rulebook, RulebookError, parse_yaml

Scope = Literal["app", "company"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DomainIndicator(Strict):
    suffix: str
    app: str
    scope: Scope
    confidence: float = Field(gt=0, le=1)
    sources: list[str] = Field(min_length=1)
    first_seen: str | None = None
    last_seen: str | None = None

    @field_validator("suffix")
    @classmethod
    def _lower(cls, value: str) -> str:
        value = value.strip().rstrip(".").lower()
        if not value or " " in value or value.startswith("."):
            raise ValueError(f"{value!r} is not a domain name")
        return value


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

    def source_urls(self, keys: list[str]) -> list[str]:
        return [self.sources[key] for key in keys]


def default_indicator_path() -> Path:
    return Path(str(resources.files("appban.network") / "data" / "indicators.yaml"))


def load_indicators(rulebook: Rulebook, path: Path | None = None) -> IndicatorSet:
    path = path or default_indicator_path()
    problems: list[Problem] = []
    data, source = parse_yaml(path, IndicatorSet, problems, path.name)
    if data is None:
        raise RulebookError(problems)
    seen: set[str] = set()
    for section in ("domains", "prefixes", "asns"):
        for i, item in enumerate(getattr(data, section)):
            if item.app not in rulebook.subjects.subjects:
                problems.append(source.problem((section, i, "app"), f"unknown subject {item.app!r}"))
            for source_id in item.sources:
                if source_id not in data.sources:
                    problems.append(source.problem((section, i, "sources"), f"unknown source {source_id!r}"))
            if section == "domains":
                if item.suffix in seen:
                    problems.append(source.problem((section, i, "suffix"), f"{item.suffix!r} is listed twice"))
                seen.add(item.suffix)
    if problems:
        raise RulebookError(problems)
    return data


def default_indicators(rulebook: Rulebook) -> IndicatorSet:
    """The packaged indicators, kept by the rulebook they were checked against (and gone with it)."""
    found = rulebook.derived.get("indicators")
    if found is None:
        found = rulebook.derived["indicators"] = load_indicators(rulebook)
    return cast(IndicatorSet, found)

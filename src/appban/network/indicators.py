"""The network indicator set: domains, IP prefixes and ASNs, each with an app, a scope and sources."""

from __future__ import annotations

import ipaddress
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from appban.rulebook.loader import Problem, Rulebook, RulebookError

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
    try:
        data = IndicatorSet.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise RulebookError([Problem(path.name, None, "", str(exc))]) from None
    problems: list[Problem] = []
    seen: set[str] = set()
    for section in ("domains", "prefixes", "asns"):
        for i, item in enumerate(getattr(data, section)):
            where = f"{section}[{i}]"
            if item.app not in rulebook.subjects.subjects:
                problems.append(Problem(path.name, None, f"{where}.app", f"unknown subject {item.app!r}"))
            for source in item.sources:
                if source not in data.sources:
                    problems.append(Problem(path.name, None, f"{where}.sources", f"unknown source {source!r}"))
            if section == "domains":
                if item.suffix in seen:
                    problems.append(Problem(path.name, None, f"{where}.suffix", f"{item.suffix!r} is listed twice"))
                seen.add(item.suffix)
    if problems:
        raise RulebookError(problems)
    return data


@cache
def default_indicators(rulebook: Rulebook) -> IndicatorSet:
    return load_indicators(rulebook)

"""The shape of a configuration file (appban.config), as pydantic models.

Kept apart from appban.config so that finding no configuration file, or printing --help, never loads
pydantic. Every model forbids keys it does not know: a misspelt key is an error, not a silent default.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Section(_Strict):
    """Defaults for one command's options, by their flag names. Which of them a command has is checked by
    appban.config (SECTION_OPTIONS), where the message can name the command."""

    where: str | None = None
    tz: str | None = None
    fleet: str | None = None
    fail_on: str | None = Field(default=None, alias="fail-on")
    scope: str | None = None
    format: str | None = None
    role: str | None = None
    log_tz: str | None = Field(default=None, alias="log-tz")

    def given(self) -> dict[str, str]:
        return {key: value for key, value in self.model_dump(by_alias=True).items() if value is not None}


class ScreenSections(_Strict):
    inventory: Section = Section()
    network: Section = Section()
    payments: Section = Section()


class ExportSections(_Strict):
    mdm: Section = Section()
    blocklist: Section = Section()


# What a suppression may match on; at least one of them must be given, or it would hide everything.
MATCHERS = ("id", "command", "app", "signature", "category", "path", "package")


class IgnoreEntry(_Strict):
    """One suppression (osv-scanner's [[IgnoredVulns]] id / ignoreUntil / reason, for findings)."""

    reason: str = Field(min_length=1)
    until: dt.date
    id: str | None = None  # a finding's fingerprint, as JSON and SARIF output give it
    command: str | None = None  # "scan", "screen inventory", ...
    app: str | None = None
    signature: str | None = None  # scan: the signature (SARIF ruleId)
    category: str | None = None  # a transaction category the finding was decided for
    path: str | None = None  # a glob over the finding's file, relative to where appban runs
    package: str | None = None  # a package URL, with or without @version

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say why the finding is accepted")
        return value.strip()

    @field_validator("until", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            raise ValueError("a date (2027-06-30), not a date and time")
        return value

    @model_validator(mode="after")
    def _narrow(self) -> IgnoreEntry:
        if all(getattr(self, name) is None for name in MATCHERS):
            raise ValueError(f"name what it suppresses: one or more of {', '.join(MATCHERS)}")
        return self


class ConfigFile(_Strict):
    where: str | None = None
    tz: str | None = None
    check: Section = Section()
    timeline: Section = Section()
    decide: Section = Section()
    scan: Section = Section()
    screen: ScreenSections = ScreenSections()
    export: ExportSections = ExportSections()
    ignore: list[IgnoreEntry] = Field(default_factory=list)

    def shared(self) -> dict[str, str | None]:
        return {"where": self.where, "tz": self.tz}

    def section(self, dotted: str) -> dict[str, str]:
        node: Any = self
        for name in dotted.split("."):
            node = getattr(node, name)
        assert isinstance(node, Section)
        return node.given()

"""The HTTP API's request and response bodies. Decisions and timelines are the library's own models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from appban.engine.decide import Decision


class DecideRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "app": "wechat",
                    "transaction": "payment_processing",
                    "where": "US",
                    "at": "2020-10-15T12:00:00Z",
                    "facts": {"user_to_user_transfer": False},
                }
            ]
        },
    )

    app: str = Field(min_length=1, max_length=200, description="App id, name or alias (tiktok, WeChat, 微信)")
    transaction: str = Field(min_length=1, max_length=100, description="Transaction category")
    where: str = Field(min_length=2, max_length=10, description="ISO 3166-1 alpha-2 or ISO 3166-2 code")
    at: str = Field(min_length=4, max_length=64, description="ISO 8601 instant, with an offset unless tz is given")
    # Null is taken as no facts, as JSON clients often send an absent object as null (a batch line does the same).
    facts: dict[str, bool | str] | None = Field(default=None, description="Named facts exceptions may read")
    tz: str | None = Field(default=None, max_length=64, description="Zone of `at` when it has no offset")


class DecisionOut(Decision):
    decision_id: str = Field(description="The audit record of this answer")


class ErrorBody(BaseModel):
    status: int
    message: str
    details: list[dict[str, Any]] = []


class ErrorOut(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: str
    rulebook_version: str
    store: str
    worker: int  # the process id of the worker that answered (`appban serve --workers N` runs several)


class AppOut(BaseModel):
    id: str
    name: str
    company: str
    aliases: list[str]


class RunOut(BaseModel):
    id: str
    kind: str
    status: str
    filename: str
    caller: str
    rulebook_version: str
    options: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress_rows: int
    error: str | None
    summary: dict[str, Any] | None
    findings_total: int
    findings: list[dict[str, Any]] = []
    offset: int = 0
    next_offset: int | None = None


class RunStarted(BaseModel):
    id: str
    status: str
    status_url: str


class AuditRecordOut(BaseModel):
    id: str
    kind: str
    asked_at: str
    caller: str
    rulebook_version: str
    instant: str | None
    input: dict[str, Any]
    result: dict[str, Any]
    run_id: str | None


class ReplayOut(BaseModel):
    id: str
    recorded_version: str
    identical: bool
    differences: list[str]
    recorded: dict[str, Any]
    replayed: dict[str, Any]


BATCH_LINES = (
    "one DecideRequest JSON object per line, each line read on its own as POST /v1/decide reads it: its facts and"
    " tz are its own, whichever fields earlier lines had; null is a field not given; a field DecideRequest does"
    " not have is refused (400, naming the line and the field)"
)
BATCH_ARROW = (
    "columns app, transaction, where, at; optional facts (per row a JSON object or NAME=VALUE;NAME=VALUE), tz"
    " (the zone of an at without an offset) and a column per fact (true/false or 1/0; null is unknown, and"
    " must agree with facts); other columns are passed through"
)


class BatchSummary(BaseModel):
    batch_id: str
    rows: int
    rulebook_version: str

"""The HTTP API's request and response bodies. Decisions and timelines are the library's own models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from appban.engine.decide import Decision
from appban.plain import field, record


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
    at: str | None = Field(
        default=None,
        min_length=3,
        max_length=64,
        description="ISO 8601 instant, with an offset unless tz is given; or now, as is an at not given (or null)."
        " The answer's at states the instant decided, and the audit record keeps it, so a replay repeats it",
    )
    # Null is taken as no facts, as JSON clients often send an absent object as null (a batch line does the same).
    facts: dict[str, bool | str] | None = Field(default=None, description="Named facts exceptions may read")
    tz: str | None = Field(default=None, max_length=64, description="Zone of `at` when it has no offset")


@record
class DecisionOut(Decision):
    """A decision, with the audit record that keeps it."""

    decision_id: str = field(description="The audit record of this answer")


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
    bundle: str | None = Field(None, description="the knowledge bundle screened under; null: the package's own data")
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


class FindingsPage(BaseModel):
    run_id: str
    status: str = Field(description="the run's status: queued, running, done or failed")
    findings_total: int = Field(description="every finding of the run so far")
    matched: int = Field(description="the findings that pass the filters")
    offset: int
    limit: int
    next_offset: int | None = Field(description="the offset of the next page, or null after the last")
    columns: list[str] = Field(description="every field of the run's findings, in the order they first appear")
    sort: str | None
    order: str
    findings: list[dict[str, Any]]


class ScreenOption(BaseModel):
    name: str
    description: str
    choices: list[str] = Field(description="the values it takes; empty where any text of its kind is taken")


class ScreenInfo(BaseModel):
    kind: str
    options: list[ScreenOption] = Field(description="query parameters of POST /v1/screens/{kind}")
    accept: list[str] = Field(description="file name endings the screen reads, for a file input's accept")
    by_content: bool = Field(description="files are told by their content, so other names are read too")


class RunStarted(BaseModel):
    id: str
    status: str
    status_url: str
    options: dict[str, Any] = Field(
        default_factory=dict, description="the options the run uses, as recorded: an at of now is the instant it was"
    )


class AuditRecordOut(BaseModel):
    id: str
    kind: str = Field(description="decide (one decision), batch (a batch of decisions) or screen (a screening run)")
    asked_at: str
    caller: str
    rulebook_version: str
    bundle: str | None = Field(None, description="the knowledge bundle answered under; null: the package's own data")
    instant: str | None
    input: dict[str, Any]
    result: dict[str, Any]
    run_id: str | None
    overview: dict[str, Any] = Field(
        default_factory=dict,
        description="the fields a listing shows for this kind of record, in this order:"
        " decide: app, transaction, where, at, verdict, as_written; batch: rows, by_verdict (count per verdict);"
        " screen: screen, filename, run_id, read (rows or files read), findings, errors (a count)",
    )


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
    " not have is refused (400, naming the line and the field). Unlike /v1/decide, every line needs its own at,"
    " an instant (not now): a batch holds transactions made at their own times, as a file `appban decide` reads"
)
BATCH_ARROW = (
    "columns app, transaction, where, at (instants, not now); optional facts (per row a JSON object or"
    " NAME=VALUE;NAME=VALUE), tz (the zone of an at without an offset) and a column per fact (true/false or"
    " 1/0; null is unknown, and must agree with facts); other columns are passed through"
)


class BatchSummary(BaseModel):
    batch_id: str
    rows: int
    rulebook_version: str

"""The audit store's tables, as SQLAlchemy declarative models.

The schema itself is created by the Alembic migrations in `migrations/versions/`; these models
describe the same tables for queries and must stay in step with them (a test compares the two).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always UTC-aware in Python, whatever the database keeps.

    SQLite has no time zones: it stores the naive UTC wall time as text, which still sorts and
    compares correctly because every stored value is in the same zone. PostgreSQL keeps
    `timestamptz` and hands back values in the session's zone, which are converted to UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamp {value.isoformat()} has no time zone; the audit store keeps UTC instants")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class RunRow(Base):
    """One background run (an inventory, code, network or payments screen) and its state."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(Text)
    caller: Mapped[str] = mapped_column(String(200))
    rulebook_version: Mapped[str] = mapped_column(String(80))
    options: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    progress_rows: Mapped[int] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None]
    owner: Mapped[str] = mapped_column(String(200))
    # The knowledge bundle the run screens under (appban.knowledge); NULL: the package's own data.
    bundle: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (
        Index("ix_runs_created_at", "created_at"),
        Index("ix_runs_status", "status"),
    )


class DecisionRow(Base):
    """One recorded answer: what was asked, by whom, when, under which rulebook, and the answer."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    asked_at: Mapped[dt.datetime]
    caller: Mapped[str] = mapped_column(String(200))
    rulebook_version: Mapped[str] = mapped_column(String(80))
    instant: Mapped[dt.datetime | None]
    input: Mapped[dict[str, Any]]
    # The answer; or, when answer_template is set, the values of that template's gaps.
    result: Mapped[dict[str, Any]]
    run_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("runs.id"))
    answer_template: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("answer_templates.digest", name="fk_decisions_answer_template")
    )
    # The hash chain (appban.store.chain): the position in commit order, and the links. NULL only in a row
    # inserted behind the store's back (SQLite cannot add a NOT NULL column to a table in place).
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    chain_hash: Mapped[str | None] = mapped_column(String(64))
    # The knowledge bundle answered under (appban.knowledge); NULL: the package's own data. Not chained: a
    # single answer names it inside `result` too, which is (see migration 0005).
    bundle: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (
        Index("ix_decisions_asked_at", "asked_at"),
        Index("ux_decisions_seq", "seq", unique=True),
        # Partial: only screening runs' decisions have a run.
        Index(
            "ix_decisions_run_id",
            "run_id",
            sqlite_where=text("run_id IS NOT NULL"),
            postgresql_where=text("run_id IS NOT NULL"),
        ),
    )


class AnswerTemplateRow(Base):
    """JSON common to many recorded answers, with gaps for what differs (see appban.jsontemplate)."""

    __tablename__ = "answer_templates"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of body
    body: Mapped[str] = mapped_column(Text)


class FindingRow(Base):
    """One finding of a run, in the order the run produced it."""

    __tablename__ = "findings"

    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[dict[str, Any]]


class TokenRow(Base):
    """An API token: only the SHA-256 of its secret is kept."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class RulebookRow(Base):
    """A snapshot of a rulebook version that decisions were recorded under, for replay."""

    __tablename__ = "rulebooks"

    version: Mapped[str] = mapped_column(String(80), primary_key=True)
    canonical_json: Mapped[str] = mapped_column(Text)
    stored_at: Mapped[dt.datetime]


class BatchRow(Base):
    """The questions and answers of one batch decision, as compressed Arrow IPC streams."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(36), ForeignKey("decisions.id"), primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger)
    questions: Mapped[bytes] = mapped_column(LargeBinary)
    answers: Mapped[bytes] = mapped_column(LargeBinary)


class AuditChainRow(Base):
    """The head of the decisions' hash chain: one row, updated in the transaction of every insert."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    store_id: Mapped[str] = mapped_column(String(36))  # random, named in the genesis hash
    seq: Mapped[int] = mapped_column(BigInteger)  # records chained so far: the next record's seq
    head: Mapped[str] = mapped_column(String(64))  # the last record's link hash (the genesis hash if none)
    started_at: Mapped[dt.datetime]
    chained_at_start: Mapped[int] = mapped_column(BigInteger)  # records that predate the chain

    __table_args__ = (CheckConstraint("id = 1", name="ck_audit_chain_one_row"),)

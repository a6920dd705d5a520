"""Decisions read back as the database holds them, for hashing: by the chain's migration and by verification.

Nothing here trusts the database: anyone who can write its file may have put any value of any type in any
column. Rows are read through the driver without SQLAlchemy's type processing (which would raise on a
malformed timestamp or JSON text), text that is not UTF-8 is kept as escapes, and a value that cannot be
read makes the record's content unreadable (a ChainError naming the field) rather than stopping the walk.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from appban import safejson
from appban.jsontemplate import JSONTemplate
from appban.store.chain import ChainError, TemplateForms, batch_content, canonical, content_digest, sha256

_TEXT_COLUMNS = ("id", "kind", "caller", "rulebook_version")


def select_sql(dialect: str, *, where: str = "", order: str = "d.seq, d.id") -> str:
    """Every column a record's content and links need, with its batch row's presence and size, as SQL for
    `text()` (no type processing: values come as the driver reads them). `where` and `order` are fixed SQL
    with :placeholders, never values."""
    as_text = "CAST({} AS TEXT)" if dialect == "postgresql" else "{}"  # PostgreSQL's driver would parse json
    return (
        "SELECT d.id, d.kind, d.asked_at, d.caller, d.rulebook_version, d.instant, "  # noqa: S608 - see above
        f"{as_text.format('d.input')}, {as_text.format('d.result')}, d.run_id, d.answer_template, "
        "d.seq, d.prev_hash, d.chain_hash, b.id, b.rows "
        f"FROM decisions d LEFT JOIN batches b ON b.id = d.id {where} ORDER BY {order}"
    )


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One row of `select_sql`, raw."""

    id: Any
    kind: Any
    asked_at: Any
    caller: Any
    rulebook_version: Any
    instant: Any
    input: Any
    result: Any
    run_id: Any
    answer_template: Any
    seq: Any
    prev_hash: Any
    chain_hash: Any
    batch_id: Any
    batch_rows: Any

    @property
    def shown_id(self) -> str:
        return self.id if isinstance(self.id, str) else repr(self.id)


@contextmanager
def tolerant_text(connection: Connection) -> Iterator[None]:
    """SQLite text that is not UTF-8 read as surrogate escapes (it then hashes differently) instead of raising."""
    raw = connection.connection.dbapi_connection
    if not isinstance(raw, sqlite3.Connection):
        yield
        return
    before = raw.text_factory
    raw.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
    try:
        yield
    finally:
        raw.text_factory = before


class Contents:
    """Content digests of stored rows, reading answer templates and batch tables as needed."""

    def __init__(self, connection: Connection, dialect: str) -> None:
        self._connection = connection
        self._dialect = dialect
        self._forms = TemplateForms()
        self._templates: dict[str, tuple[JSONTemplate | None, str | None]] = {}

    def digest(self, row: StoredRow) -> str:
        """The row's content digest. Raises ChainError naming what cannot be read."""
        for name in _TEXT_COLUMNS:
            if not isinstance(getattr(row, name), str):
                raise ChainError(f"{name} is not text")
        if row.run_id is not None and not isinstance(row.run_id, str):
            raise ChainError("run_id is not text")
        asked_at = self._instant(row.asked_at, "asked_at")
        if asked_at is None:
            raise ChainError("asked_at is missing")
        input_ = canonical(_json(row.input, "input"))
        stored_result = _json(row.result, "result")
        if row.answer_template is None:
            result = canonical(stored_result)
        else:
            template = self._template(row.answer_template)
            if not isinstance(stored_result, dict):
                raise ChainError("result does not hold the values of its template's gaps")
            result = self._forms.answer(template, stored_result)
        return content_digest(
            id=row.id,
            kind=row.kind,
            asked_at=asked_at,
            caller=row.caller,
            rulebook_version=row.rulebook_version,
            instant=self._instant(row.instant, "instant"),
            input=input_,
            result=result,
            run_id=row.run_id,
            batch=None if row.batch_id is None else self._batch(row),
        )

    def template_note(self, digest: Any) -> str | None:
        """Why a row's answer template is suspect (missing, or its text no longer has its digest), if it is."""
        if not isinstance(digest, str):
            return None
        self._lookup(digest)
        return self._templates[digest][1]

    def _lookup(self, digest: str) -> None:
        if digest in self._templates:
            return
        if len(self._templates) > 10_000:
            self._templates.clear()
        body = self._connection.execute(
            text("SELECT body FROM answer_templates WHERE digest = :d"), {"d": digest}
        ).scalar()
        if not isinstance(body, str):
            self._templates[digest] = (None, f"its answer template {digest} is missing")
            return
        note = None if sha256(body) == digest else f"its answer template {digest} was altered"
        try:
            self._templates[digest] = (JSONTemplate(body), note)
        except ValueError:
            self._templates[digest] = (None, f"its answer template {digest} does not read")

    def _template(self, digest: Any) -> JSONTemplate:
        if not isinstance(digest, str):
            raise ChainError("answer_template is not text")
        self._lookup(digest)
        template, note = self._templates[digest]
        if template is None:
            raise ChainError(note or "answer template unreadable")
        return template

    def _batch(self, row: StoredRow) -> dict[str, Any]:
        found = self._connection.execute(
            text("SELECT questions, answers FROM batches WHERE id = :i"), {"i": row.batch_id}
        ).first()
        if found is None or not isinstance(row.batch_rows, int) or isinstance(row.batch_rows, bool):
            raise ChainError("its batch row does not read")
        questions, answers = found
        if not isinstance(questions, bytes | memoryview) or not isinstance(answers, bytes | memoryview):
            raise ChainError("its batch tables are not bytes")
        return batch_content(row.batch_rows, bytes(questions), bytes(answers))

    def _instant(self, value: Any, name: str) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, dt.datetime) and self._dialect == "postgresql":
            return value
        if not isinstance(value, str):
            raise ChainError(f"{name} is not a timestamp")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ChainError(f"{name} is not a timestamp") from None
        if parsed.tzinfo is not None:  # the store keeps SQLite timestamps as naive UTC
            raise ChainError(f"{name} is not a stored timestamp")
        return parsed.replace(tzinfo=dt.UTC)


def _json(value: Any, name: str) -> Any:
    if not isinstance(value, str):
        raise ChainError(f"{name} is not JSON text")
    try:
        return safejson.loads(value)
    except ValueError as exc:
        raise ChainError(f"{name} is not JSON: {exc}") from None

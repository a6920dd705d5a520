"""The hash chain: every decision numbered and linked to the one before it (see appban.store.chain).

`decisions` gains `seq` (0, 1, 2... in commit order; unique), `prev_hash` and `chain_hash`, and the
single-row table `audit_chain` keeps the store's random id, the count of chained records and the last
link hash. Every insert of decisions reads and updates that row in its own transaction, which also
serialises writers on PostgreSQL (the row is locked), so concurrent writers cannot fork the chain.

Decisions already in the store are chained here, oldest first (by time of asking, then id), in this
migration's transaction: the chain attests to them as they stood when the store was upgraded, not
before (`audit_chain.chained_at_start` records how many records that was). The append-only triggers on
decisions are lifted for the update and put back in the same transaction.

The head row may only move forward: triggers refuse deleting it, changing the store id or lowering
the count.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from appban.store.chain import ChainError, genesis, link
from appban.store.models import UTCDateTime
from appban.store.stored import Contents, StoredRow, select_sql, tolerant_text

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAGE = 1000
_SQLITE_GUARD = (
    "CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions "
    "BEGIN SELECT RAISE(ABORT, 'appban: decisions is append-only; UPDATE is refused'); END"
)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("store_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chained_at_start", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_chain_one_row"),
    )
    op.add_column("decisions", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column("decisions", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("decisions", sa.Column("chain_hash", sa.String(64), nullable=True))
    op.create_index("ux_decisions_seq", "decisions", ["seq"], unique=True)

    store_id = str(uuid.uuid4())
    if dialect == "postgresql":
        op.execute("ALTER TABLE decisions DISABLE TRIGGER decisions_append_only")
    else:
        op.execute("DROP TRIGGER IF EXISTS decisions_no_update")
    count, head = _chain_existing(bind, dialect, store_id)
    if dialect == "postgresql":
        op.execute("ALTER TABLE decisions ENABLE TRIGGER decisions_append_only")
    else:
        op.execute(_SQLITE_GUARD)

    chain = sa.table(
        "audit_chain",
        sa.column("id", sa.Integer()),
        sa.column("store_id", sa.String()),
        sa.column("seq", sa.BigInteger()),
        sa.column("head", sa.String()),
        sa.column("started_at", UTCDateTime()),
        sa.column("chained_at_start", sa.BigInteger()),
    )
    bind.execute(chain.insert().values(id=1, store_id=store_id, seq=count, head=head,
                                       started_at=dt.datetime.now(dt.UTC), chained_at_start=count))  # fmt: skip
    _guard_head(dialect)


def _chain_existing(bind: Any, dialect: str, store_id: str) -> tuple[int, str]:
    """Number and link the decisions already stored, oldest first; returns (count, head)."""
    prev, count = genesis(store_id), 0
    after = "WHERE d.asked_at > :a OR (d.asked_at = :a AND d.id > :i)"
    update = sa.text("UPDATE decisions SET seq = :s, prev_hash = :p, chain_hash = :h WHERE id = :i")
    contents = Contents(bind, dialect)
    cursor: tuple[Any, Any] | None = None
    with tolerant_text(bind):
        while True:
            where = "" if cursor is None else after
            sql = select_sql(dialect, where=where, order="d.asked_at, d.id") + f" LIMIT {_PAGE}"
            after_row = {} if cursor is None else {"a": cursor[0], "i": cursor[1]}
            rows = [StoredRow(*raw) for raw in bind.execute(sa.text(sql), after_row).all()]
            links = []
            for row in rows:
                try:
                    content = contents.digest(row)
                except ChainError as exc:
                    raise RuntimeError(f"decision {row.shown_id} cannot be chained: {exc}") from None
                head = link(prev, count, content)
                links.append({"s": count, "p": prev, "h": head, "i": row.id})
                prev, count = head, count + 1
            if links:
                bind.execute(update, links)
            if len(rows) < _PAGE:
                return count, prev
            cursor = (rows[-1].asked_at, rows[-1].id)


def _guard_head(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute(
            """
            CREATE FUNCTION appban_chain_forward() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.store_id <> OLD.store_id OR NEW.seq < OLD.seq OR NEW.id <> OLD.id THEN
                    RAISE EXCEPTION 'appban: the audit chain only moves forward';
                END IF;
                RETURN NEW;
            END;
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_chain_forward BEFORE UPDATE ON audit_chain "
            "FOR EACH ROW EXECUTE FUNCTION appban_chain_forward()"
        )
        op.execute(
            "CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain "
            "FOR EACH ROW EXECUTE FUNCTION appban_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain "
            "FOR EACH STATEMENT EXECUTE FUNCTION appban_append_only()"
        )
    elif dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER audit_chain_forward BEFORE UPDATE ON audit_chain "
            "WHEN NEW.store_id <> OLD.store_id OR NEW.seq < OLD.seq OR NEW.id <> OLD.id "
            "BEGIN SELECT RAISE(ABORT, 'appban: the audit chain only moves forward'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain "
            "BEGIN SELECT RAISE(ABORT, 'appban: audit_chain is append-only; DELETE is refused'); END"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_chain_forward ON audit_chain")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_no_delete ON audit_chain")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_no_truncate ON audit_chain")
        op.execute("DROP FUNCTION IF EXISTS appban_chain_forward()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_chain_forward")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_no_delete")
    op.drop_table("audit_chain")
    op.drop_index("ux_decisions_seq", table_name="decisions")
    # Dropping columns is not an UPDATE: the append-only triggers do not fire.
    for column in ("chain_hash", "prev_hash", "seq"):
        op.execute(f"ALTER TABLE decisions DROP COLUMN {column}")

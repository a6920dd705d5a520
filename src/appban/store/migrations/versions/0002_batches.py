"""Batches: the questions and answers of one batch decision, as compressed Arrow IPC streams.

A batch of a million decisions is one `decisions` row (kind "batch") and one `batches` row holding both
tables; each answer is addressed as "<decision id>#<row>". Append-only like the decisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(36), sa.ForeignKey("decisions.id"), primary_key=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("questions", sa.LargeBinary(), nullable=False),
        sa.Column("answers", sa.LargeBinary(), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER batches_append_only BEFORE UPDATE OR DELETE ON batches "
            "FOR EACH ROW EXECUTE FUNCTION appban_append_only()"
        )
        op.execute(
            "CREATE TRIGGER batches_no_truncate BEFORE TRUNCATE ON batches "
            "FOR EACH STATEMENT EXECUTE FUNCTION appban_append_only()"
        )
    elif dialect == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER batches_no_{operation.lower()} BEFORE {operation} ON batches "
                f"BEGIN SELECT RAISE(ABORT, 'appban: batches is append-only; {operation} is refused'); END"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS batches_append_only ON batches")
        op.execute("DROP TRIGGER IF EXISTS batches_no_truncate ON batches")
    elif dialect == "sqlite":
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS batches_no_{operation}")
    op.drop_table("batches")

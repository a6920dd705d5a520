"""The knowledge bundle of each record: `decisions.bundle` and `runs.bundle`.

An answer names the knowledge bundle its rulebook came from ("2026.02.20-1 sha256:0123456789ab"; see
appban.knowledge.bundle); the store keeps it beside the rulebook version, so records can be told apart by
the bundle they were decided under. NULL means the package's own data, which is also what every record made
before this migration was decided under: they read as before. A single answer's bundle is also inside its
answer (`result.bundle`), which the hash chain covers; the column is a copy for queries and for batch and
screening records, and is not part of the chained content, so stores chained before this keep verifying.

Adding a nullable column is not an UPDATE: the append-only triggers on decisions do not fire.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("decisions", "runs")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("bundle", sa.String(80), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "bundle")

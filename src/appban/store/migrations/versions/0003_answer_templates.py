"""Answer templates: the JSON common to many recorded answers, kept once.

A server asked the same question at many instants gives the same answer apart from the app as asked and
the instant. Such a decision row names its template (`decisions.answer_template`, the SHA-256 of the
template's text) and keeps in `result` only the values of the template's gaps; the answer is the template
filled with them (see appban.jsontemplate). A row of about 8 KB becomes a few hundred bytes. Rows without
a template keep the whole answer in `result`, as before. Append-only like the decisions.

The index on decisions.run_id becomes partial: only screening runs' decisions have a run, and every other
insert no longer adds an entry to it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer_templates",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.drop_index("ix_decisions_run_id", table_name="decisions")
    op.create_index(
        "ix_decisions_run_id",
        "decisions",
        ["run_id"],
        sqlite_where=sa.text("run_id IS NOT NULL"),
        postgresql_where=sa.text("run_id IS NOT NULL"),
    )
    dialect = op.get_bind().dialect.name
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("decisions")}
    if dialect == "sqlite" and "answer_template" in columns:
        pass  # left by a downgrade (see below)
    elif dialect == "sqlite":
        # In place, with the reference in the column's definition: rebuilding the table instead would have
        # to drop the decisions (and their triggers) and copy them. Existing rows keep NULL.
        op.execute(
            "ALTER TABLE decisions ADD COLUMN answer_template VARCHAR(64) "
            "CONSTRAINT fk_decisions_answer_template REFERENCES answer_templates (digest)"
        )
    else:
        op.add_column("decisions", sa.Column("answer_template", sa.String(64), nullable=True))
        op.create_foreign_key(
            "fk_decisions_answer_template", "decisions", "answer_templates", ["answer_template"], ["digest"]
        )
    if dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER answer_templates_append_only BEFORE UPDATE OR DELETE ON answer_templates "
            "FOR EACH ROW EXECUTE FUNCTION appban_append_only()"
        )
        op.execute(
            "CREATE TRIGGER answer_templates_no_truncate BEFORE TRUNCATE ON answer_templates "
            "FOR EACH STATEMENT EXECUTE FUNCTION appban_append_only()"
        )
    elif dialect == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER answer_templates_no_{operation.lower()} BEFORE {operation} ON answer_templates "
                f"BEGIN SELECT RAISE(ABORT, 'appban: answer_templates is append-only; {operation} is refused'); END"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS answer_templates_append_only ON answer_templates")
        op.execute("DROP TRIGGER IF EXISTS answer_templates_no_truncate ON answer_templates")
    elif dialect == "sqlite":
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS answer_templates_no_{operation}")
    # Dropping the column loses which rows were templated: a downgrade refuses to while any are.
    templated = op.get_bind().execute(sa.text("SELECT count(*) FROM decisions WHERE answer_template IS NOT NULL"))
    if templated.scalar_one():
        raise RuntimeError("decisions refer to answer templates; downgrading would lose their answers")
    if dialect == "sqlite":
        # SQLite cannot drop a column that holds a reference, and rebuilding the table would drop its
        # append-only triggers: the column stays, always NULL, and the older code never names it.
        pass
    else:
        op.drop_constraint("fk_decisions_answer_template", "decisions", type_="foreignkey")
        op.drop_column("decisions", "answer_template")
    op.drop_table("answer_templates")
    op.drop_index("ix_decisions_run_id", table_name="decisions")
    op.create_index("ix_decisions_run_id", "decisions", ["run_id"])

"""The audit store: recorded decisions, background runs and their findings, API tokens, and
snapshots of the rulebook versions decisions were made under (SQLite or PostgreSQL)."""

from appban.extras import require

# SQLAlchemy and Alembic come with the service extra, not the core install: say so rather than fail below.
require("service", "the audit store", ("sqlalchemy", "alembic"))

from appban.store.audit import (  # noqa: E402
    DECISION_KINDS,
    INTERRUPTED,
    OWNER,
    RUN_KINDS,
    RUN_STATUSES,
    TOKEN_SCOPES,
    AuditStore,
    DecisionInput,
    DecisionRecord,
    PreparedDecision,
    ReplayError,
    ReplayResult,
    RunRecord,
    TokenRecord,
    default_url,
    differences,
    replay,
)
from appban.store.snapshots import SnapshotError, rulebook_from_canonical_json  # noqa: E402

__all__ = [
    "DECISION_KINDS",
    "INTERRUPTED",
    "OWNER",
    "RUN_KINDS",
    "RUN_STATUSES",
    "TOKEN_SCOPES",
    "AuditStore",
    "DecisionInput",
    "DecisionRecord",
    "PreparedDecision",
    "ReplayError",
    "ReplayResult",
    "RunRecord",
    "SnapshotError",
    "TokenRecord",
    "default_url",
    "differences",
    "replay",
    "rulebook_from_canonical_json",
]

"""The audit store: recorded decisions, background runs and their findings, API tokens, and
snapshots of the rulebook versions decisions were made under (SQLite or PostgreSQL)."""

from appban.store.audit import (
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
from appban.store.snapshots import SnapshotError, rulebook_from_canonical_json

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

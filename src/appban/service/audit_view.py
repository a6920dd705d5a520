"""What a listing shows of each kind of audit record: a decision, a batch of decisions and a screening run
hold different things, so each gets the fields that fit it (`overview`), and `AUDIT_COLUMNS` names them."""

from __future__ import annotations

from typing import Any

# For each kind of record, the fields of its overview in the order a table shows them.
AUDIT_COLUMNS: dict[str, tuple[str, ...]] = {
    "decide": ("app", "transaction", "where", "at", "verdict", "as_written"),
    "batch": ("rows", "by_verdict"),
    "screen": ("screen", "filename", "run_id", "read", "findings", "errors"),
}
# What a screen's summary calls the rows (or files) it read.
_READ_COUNTS = ("rows", "files", "records_read", "payments_read")


def overview(record: dict[str, Any]) -> dict[str, Any]:
    """The fields AUDIT_COLUMNS names for a record (as `DecisionRecord.to_json_dict` gives it) of its kind,
    from its input and result; {} for a kind not named there."""
    kind, question, answer = record["kind"], record["input"], record["result"]
    if kind == "decide":
        return {
            "app": answer.get("subject_name") or question.get("app"),
            "transaction": question.get("transaction"),
            "where": question.get("where"),
            "at": record.get("instant") or question.get("at"),
            "verdict": answer.get("verdict"),
            "as_written": answer.get("as_written"),
        }
    if kind == "batch":
        by_verdict = answer.get("by_verdict")
        return {"rows": question.get("rows"), "by_verdict": by_verdict if isinstance(by_verdict, dict) else {}}
    if kind == "screen":
        errors = answer.get("errors")
        read = next((answer[name] for name in _READ_COUNTS if isinstance(answer.get(name), int)), None)
        return {
            "screen": question.get("kind"),
            "filename": question.get("filename"),
            "run_id": record.get("run_id"),
            "read": read,
            "findings": answer.get("findings"),
            "errors": len(errors) if isinstance(errors, list) else 0,
        }
    return {}

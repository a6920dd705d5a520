"""SARIF 2.1.0 for code findings, in the subset GitHub code scanning reads."""

from __future__ import annotations

import hashlib
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

from appban.code.scan import CodeFinding, ScanResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"prohibited": "error", "enjoined": "warning", "not_yet_effective": "warning"}


def _uri(path: str, base: Path) -> str:
    try:
        relative = os.path.relpath(path, base)
    except ValueError:
        return Path(path).as_posix()
    return Path(relative).as_posix() if not relative.startswith("..") else Path(path).as_posix()


def _rule_name(signature_id: str) -> str:
    return "".join(part.capitalize() for part in signature_id.split("-"))


def _message(finding: CodeFinding) -> str:
    where = f" in archive member {finding.member}" if finding.member else ""
    decisions = "; ".join(
        f"{category}: {d.verdict.value} ({d.enforcement.value})" for category, d in finding.decisions.items()
    )
    more = f" and {finding.count - 1} more" if finding.count > 1 else ""
    return (
        f"{finding.signature.label}: {finding.observation} {finding.matched!r}{more}{where}. "
        f"App: {finding.signature.app} ({finding.signature.kind}). "
        f"At {finding.worst.at} in {finding.worst.where}: {decisions}."
    )


def to_sarif(result: ScanResult, base: Path, source_urls: dict[str, list[str]]) -> dict[str, Any]:
    signatures = {f.signature.id: f.signature for f in result.findings}
    rules = []
    index: dict[str, int] = {}
    for i, (sid, signature) in enumerate(sorted(signatures.items())):
        index[sid] = i
        urls = source_urls.get(sid, [])
        rule: dict[str, Any] = {
            "id": sid,
            "name": _rule_name(sid),
            "shortDescription": {"text": signature.label},
            "fullDescription": {"text": f"{signature.label} ({signature.kind} of {signature.app})."},
            "help": {"text": "Sources: " + ", ".join(urls)},
            "defaultConfiguration": {"level": "warning"},
            "properties": {
                "app": signature.app,
                "kind": signature.kind,
                "confidence": signature.confidence,
                "tags": ["appban", signature.kind, signature.app],
            },
        }
        if urls:
            rule["helpUri"] = urls[0]
        rules.append(rule)
    results = []
    for finding in result.findings:
        location: dict[str, Any] = {"artifactLocation": {"uri": _uri(finding.file, base)}}
        if finding.line and not finding.member:
            location["region"] = {"startLine": finding.line}
        fingerprint = hashlib.sha256(f"{finding.path}|{finding.signature.id}|{finding.matched}".encode()).hexdigest()
        results.append(
            {
                "ruleId": finding.signature.id,
                "ruleIndex": index[finding.signature.id],
                "level": _LEVEL.get(finding.worst.verdict.value, "note"),
                "message": {"text": _message(finding)},
                "locations": [{"physicalLocation": location}],
                "partialFingerprints": {"appbanFinding/v1": fingerprint[:32]},
                "properties": {
                    "path": finding.path,
                    "member": finding.member,
                    "count": finding.count,
                    "examples": finding.examples,
                    "confidence": finding.signature.confidence,
                    "decisions": {c: d.to_json_dict() | {"rules": None} for c, d in finding.decisions.items()},
                },
            }
        )
    notifications = [{"level": "warning", "message": {"text": str(w)}} for w in result.warnings]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "appban", "version": version("appban"), "rules": rules}},
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
                "results": results,
                "properties": {"at": result.at, "where": result.where, "rulebookVersion": result.rulebook_version},
            }
        ],
    }

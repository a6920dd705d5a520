"""SARIF 2.1.0 for code findings, in the subset GitHub code scanning reads.

GitHub shows a result at its first location's file and `region.startLine`, so every result has both. A
finding inside an archive (an APK's classes.dex, a JAR in an AAR, a manifest in an npm tarball) is placed
on the archive file, the only one in the repository; the member path is a logical location, and the
member is a nested artifact in `run.artifacts` (its `parentIndex` chain leads to the archive), where a
related location gives the line inside it when one is known. A region whose line is not known (inside an
archive, or in a binary) says so in its properties: line 1 only anchors the alert.

File URIs are relative references to the source root `%SRCROOT%`, which `run.originalUriBaseIds` defines and
`invocations[0].workingDirectory` repeats (the property GitHub reads to turn paths into repository paths:
docs.github.com, "SARIF support for code scanning", specifying the root for source files). GitHub takes a
relative URI as relative to the repository root, so the source root is the directory appban runs in (the
checkout, in CI) when everything scanned lies inside it, and otherwise the scan root (ScanResult.scan_root,
as in CycloneDX): a scan of the checkout started from elsewhere still gives repository paths, never absolute
paths of the machine that ran it.
"""

from __future__ import annotations

import hashlib
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote

from appban.baseline import FINGERPRINT_KEY
from appban.code.scan import CodeFinding, ScanResult
from appban.code.walk import MEMBER_SEP

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"prohibited": "error", "enjoined": "warning", "not_yet_effective": "warning"}
# Observation kinds whose value is a class: a logical location of kind "type".
_TYPE_KINDS = {"java", "objc_classes"}


SRCROOT = "%SRCROOT%"


def source_root(result: ScanResult, base: Path) -> Path:
    """The directory file URIs are relative to: `base` (where appban runs) when the scan root lies in it,
    else the scan root, else `base`."""
    scanned = result.scan_root()
    absolute = Path(os.path.abspath(base))
    if scanned is None or Path(scanned).is_relative_to(absolute):
        return absolute
    return Path(scanned)


def _uri(path: str, base: Path) -> str:
    """A file as GitHub wants it: relative to the source root (percent-encoded), else a file URI."""
    try:
        relative = os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        relative = ".."
    if relative == ".." or relative.startswith(".." + os.sep):
        return Path(os.path.abspath(path)).as_uri()
    return quote(Path(relative).as_posix(), safe="/")


def _rule_name(signature_id: str) -> str:
    return "".join(part.capitalize() for part in signature_id.split("-"))


def _message(finding: CodeFinding) -> str:
    line = f" (line {finding.line})" if finding.line else ""
    where = f" in archive member {finding.member}{line}" if finding.member else line
    decisions = "; ".join(
        f"{category}: {d.verdict.value} ({d.enforcement.value})" for category, d in finding.decisions.items()
    )
    more = f" and {finding.count - 1} more" if finding.count > 1 else ""
    return (
        f"{finding.signature.label}: {finding.observation} {finding.matched!r}{more}{where}. "
        f"App: {finding.signature.app} ({finding.signature.kind}). "
        f"At {finding.worst.at} in {finding.worst.where}: {decisions}."
    )


class _Artifacts:
    """`run.artifacts`: each file with findings, and each archive member on the way to one, nested in
    its parent by `parentIndex` with its path inside the parent as a relative reference starting "/"."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.items: list[dict[str, Any]] = []
        self._index: dict[tuple[str, ...], int] = {}

    def _add(self, key: tuple[str, ...], item: dict[str, Any]) -> int:
        if key not in self._index:
            self._index[key] = len(self.items)
            self.items.append(item)
        return self._index[key]

    def file(self, path: str) -> int:
        uri = _uri(path, self.base)
        location = {"uri": uri} if uri.startswith("file:") else {"uri": uri, "uriBaseId": SRCROOT}
        return self._add((path,), {"location": location})

    def member(self, path: str, member: str) -> int:
        """The innermost member's index; `member` is the chain inside the file, "a.aar!/classes.jar"."""
        parent = self.file(path)
        key: tuple[str, ...] = (path,)
        for part in member.split(MEMBER_SEP):
            key += (part,)
            uri = "/" + quote(part.lstrip("/"), safe="/")
            parent = self._add(key, {"location": {"uri": uri}, "parentIndex": parent})
        return parent

    def uri(self, index: int) -> str:
        return str(self.items[index]["location"]["uri"])

    def location(self, index: int) -> dict[str, Any]:
        """An artifactLocation pointing at artifact `index`: its URI (and base), and the index."""
        return dict(self.items[index]["location"]) | {"index": index}


def _location(finding: CodeFinding, artifacts: _Artifacts) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The result's location, and its related locations (the line inside an archive member)."""
    top = artifacts.file(finding.file)
    region: dict[str, Any] = {"startLine": 1, "properties": {"lineKnown": False}}
    if finding.line and not finding.member:
        region = {"startLine": finding.line}
    physical = {"artifactLocation": artifacts.location(top), "region": region}
    location: dict[str, Any] = {"physicalLocation": physical}
    logical: list[dict[str, Any]] = []
    related: list[dict[str, Any]] = []
    if finding.member:
        inner = artifacts.member(finding.file, finding.member)
        logical.append(
            {
                "name": finding.member.rsplit(MEMBER_SEP, 1)[-1].rstrip("/").rsplit("/", 1)[-1],
                "fullyQualifiedName": f"{artifacts.uri(top)}{MEMBER_SEP}{finding.member}",
                "kind": "module",
            }
        )
        if finding.line:
            related.append(
                {
                    "id": 1,
                    "physicalLocation": {
                        "artifactLocation": {"uri": artifacts.uri(inner), "index": inner},
                        "region": {"startLine": finding.line},
                    },
                    "message": {"text": f"line {finding.line} of archive member {finding.member}"},
                }
            )
    if finding.observation in _TYPE_KINDS:
        logical.append(
            {"name": finding.matched.rsplit(".", 1)[-1], "fullyQualifiedName": finding.matched, "kind": "type"}
        )
    if logical:
        location["logicalLocations"] = logical
    return location, related


def to_sarif(result: ScanResult, base: Path, source_urls: dict[str, list[str]]) -> dict[str, Any]:
    reported = [*result.findings, *result.suppressed]  # suppressed ones stay, marked as such (3.27.23)
    signatures = {f.signature.id: f.signature for f in reported}
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
    root = source_root(result, base)
    artifacts = _Artifacts(root)
    results = []
    for finding in reported:
        location, related = _location(finding, artifacts)
        fingerprint = hashlib.sha256(f"{finding.path}|{finding.signature.id}|{finding.matched}".encode()).hexdigest()
        entry: dict[str, Any] = {
            "ruleId": finding.signature.id,
            "ruleIndex": index[finding.signature.id],
            "level": _LEVEL.get(finding.worst.verdict.value, "note"),
            "message": {"text": _message(finding)},
            "locations": [location],
            "partialFingerprints": {"appbanFinding/v1": fingerprint[:32]},
            "properties": {
                "path": finding.path,
                "member": finding.member,
                "line": finding.line,
                "count": finding.count,
                "examples": finding.examples,
                "confidence": finding.signature.confidence,
                "decisions": {c: d.to_json_dict() | {"rules": None} for c, d in finding.decisions.items()},
            },
        }
        if related:
            entry["relatedLocations"] = related
        _review(entry, finding, baseline=result.unchanged is not None)
        results.append(entry)
    notifications = [{"level": "warning", "message": {"text": str(w)}} for w in result.warnings]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "appban", "version": version("appban"), "rules": rules}},
                "originalUriBaseIds": {SRCROOT: {"uri": _directory_uri(root)}},
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "toolExecutionNotifications": notifications,
                        "workingDirectory": {"uri": _directory_uri(root)},
                    }
                ],
                "artifacts": artifacts.items,
                "results": results,
                "properties": {
                    "at": result.at,
                    "where": result.where,
                    "rulebookVersion": result.rulebook_version,
                    "bundle": result.bundle,
                },
            }
        ],
    }


def _review(entry: dict[str, Any], finding: CodeFinding, *, baseline: bool) -> None:
    """The stable identity (appban.baseline) as a partial fingerprint, the suppression that accepted the
    finding (kind external: it lives in the configuration file, not in the code), and, when the run was
    compared with a baseline, that the result is new: unchanged ones are not reported at all."""
    if finding.fingerprint is not None:
        entry["partialFingerprints"][FINGERPRINT_KEY] = finding.fingerprint
    if finding.suppression is not None:
        entry["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": finding.suppression.reason,
                "properties": {"until": finding.suppression.until.isoformat(), "source": finding.suppression.source},
            }
        ]
    if baseline:
        entry["baselineState"] = "new"


def _directory_uri(folder: Path) -> str:
    """An absolute file URI of a directory, ending in "/" as SARIF requires of a base URI (3.14.14)."""
    uri = Path(os.path.abspath(folder)).as_uri()
    return uri if uri.endswith("/") else uri + "/"

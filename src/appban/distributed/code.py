"""Scanning many artefacts (APK, IPA, AAR, JAR, npm tarballs, wheels...) on Spark and Dask, one per task.

Each task scans one artefact with `appban.code.scan.scan`, the entry point `appban scan` uses, under the
signature set built once per worker process (engines cache the screener), and returns one row per finding:
the finding as `appban scan --format json` gives it, flattened. The scanner's warnings (a member it would not
read, an archive over a cap, a file it could not open) are rows too, with `error` set (the warning's message)
and `path` naming where, every finding column null. `split_warnings` parts the two on the driver.

Artefacts come as paths any worker can open (`ArtifactScreener`, a PathScreener), or as their bytes beside a
name in a table (`ArtifactContentScreener`: columns `name` and `content`), which a worker writes to a private
temporary directory under the name's last part (the scanner picks formats by name and content) and scans
there; its rows name the artefact by `name`, not by the temporary path.

Every row carries `artifact` (the path or name given), and the instant and place decided for. The scan's
instant is fixed by the parameters: without one a worker would decide at its own "now".
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from appban.code.model import Warning_
from appban.code.scan import CodeFinding, ScanResult, scan
from appban.code.signatures import SignatureSet, default_signatures
from appban.code.walk import MEMBER_SEP
from appban.engine.decide import default_rulebook
from appban.engine.instants import parse_instant
from appban.rulebook.loader import Rulebook, valid_place_code
from appban.vocabulary import Category

NAME_COLUMN = "name"
CONTENT_COLUMN = "content"
FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("artifact", pa.string()),  # the path or name the task was given
        pa.field("path", pa.string()),  # where the evidence is: the file, or file!/member!/member inside archives
        pa.field("file", pa.string()),
        pa.field("member", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("signature", pa.string()),
        pa.field("label", pa.string()),
        pa.field("app", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("confidence", pa.float64()),
        pa.field("observation", pa.string()),
        pa.field("matched", pa.string()),
        pa.field("count", pa.int64()),
        pa.field("examples", pa.list_(pa.string())),
        pa.field("packages", pa.string()),  # JSON: [{ecosystem, name, version, line}]
        # The verdict of each category decided (app_store_distribution only for the app's own code), and
        # every decision in full as JSON (category -> decision), as the JSON report holds them.
        pa.field(Category.CONSTITUENT_CODE_USE.value, pa.string()),
        pa.field(Category.APP_STORE_DISTRIBUTION.value, pa.string()),
        pa.field("decisions", pa.string()),
        pa.field("at", pa.string()),
        pa.field("where", pa.string()),
    ]
)
OUTPUT_SCHEMA = pa.schema([*FINDINGS_SCHEMA, pa.field("error", pa.string())])


@dataclass(frozen=True)
class ScanParams:
    """What a worker's scanner is built from (hashable: the per-process cache key): the instant (ISO 8601)
    and the place to decide for."""

    at: str
    where: str = "US"

    def __post_init__(self) -> None:
        # Checked where the parameters are made (the driver), not in every task.
        parse_instant(self.at)
        if not valid_place_code(self.where):
            raise ValueError(f"--where {self.where!r}: not an ISO 3166 code")

    def instant(self) -> dt.datetime:
        return parse_instant(self.at)


class _Scanning:
    def __init__(self, params: ScanParams) -> None:
        self.params = params
        self.rulebook: Rulebook = default_rulebook()
        self.signatures: SignatureSet = default_signatures(self.rulebook)

    def scan(self, path: Path, artifact: str, shown: str | None = None) -> pa.Table:
        """One artefact's findings and warnings; `shown` replaces `path` at the start of the paths reported."""
        result = scan(
            [path],
            at=self.params.instant(),
            where=self.params.where,
            rulebook=self.rulebook,
            signatures=self.signatures,
        )
        return result_rows(result, artifact, str(path), shown)


class ArtifactScreener(_Scanning):
    """A PathScreener: one artefact per path."""

    name = "code"

    def output_schema(self) -> pa.Schema:
        return OUTPUT_SCHEMA

    def screen_path(self, path: str) -> pa.Table:
        return self.scan(Path(path), path)


class ArtifactContentScreener(_Scanning):
    """A table Screener over artefacts' bytes: `name` (string) and `content` (binary) columns."""

    name = "code-content"

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        """OUTPUT_SCHEMA; ValueError naming a missing or mistyped column (null: a type Dask does not know yet)."""
        for column, check in ((NAME_COLUMN, _is_text), (CONTENT_COLUMN, _is_binary)):
            if column not in input_schema.names:
                raise ValueError(f"artefact content needs a {column!r} column (has: {', '.join(input_schema.names)})")
            kind = input_schema.field(column).type
            if not (check(kind) or pa.types.is_null(kind)):
                raise ValueError(f"column {column!r} holds {kind}, not {'text' if check is _is_text else 'bytes'}")
        return OUTPUT_SCHEMA

    def screen_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        names = batch.column(NAME_COLUMN).to_pylist()
        contents = batch.column(CONTENT_COLUMN)
        pieces = []
        for i, name in enumerate(names):
            data = contents[i].as_py()
            if name is None or data is None:  # nothing to scan, or nothing to name it by
                continue
            with tempfile.TemporaryDirectory(prefix="appban-artifact-") as folder:
                # The last part of the name only: a name is not trusted as a path.
                path = Path(folder) / (os.path.basename(name.replace("\\", "/")) or "artifact")
                path.write_bytes(data)
                pieces.append(self.scan(path, name, name))
        out = pa.concat_tables(pieces) if pieces else OUTPUT_SCHEMA.empty_table()
        if out.num_rows == 0:
            return pa.RecordBatch.from_pylist([], schema=OUTPUT_SCHEMA)
        return out.combine_chunks().to_batches()[0]


def _is_text(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def _is_binary(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type))


@dataclass(frozen=True)
class PathFactory(ScanParams):
    def __call__(self) -> ArtifactScreener:
        return ArtifactScreener(self)


@dataclass(frozen=True)
class ContentFactory(ScanParams):
    def __call__(self) -> ArtifactContentScreener:
        return ArtifactContentScreener(self)


def _shown(path: str, scanned: str, shown: str | None) -> str:
    if shown is None or not (path == scanned or path.startswith(scanned + MEMBER_SEP)):
        return path
    return shown + path[len(scanned) :]


def result_rows(result: ScanResult, artifact: str, scanned: str | None = None, shown: str | None = None) -> pa.Table:
    """A scan's findings and warnings as OUTPUT_SCHEMA rows (findings first, in the scan's order)."""
    rows = [_finding_row(finding, result, artifact) for finding in result.findings]
    rows += [_warning_row(warning, result, artifact) for warning in result.warnings]
    if scanned is not None:
        for row in rows:
            row["path"] = _shown(str(row["path"]), scanned, shown)
            if row["file"] is not None:
                row["file"] = _shown(str(row["file"]), scanned, shown)
    return pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA)


def _finding_row(finding: CodeFinding, result: ScanResult, artifact: str) -> dict[str, object]:
    found = finding.to_json_dict()
    decisions = found["decisions"]
    return {
        "artifact": artifact,
        **{name: found[name] for name in ("path", "file", "member", "line", "signature", "label", "app", "kind")},
        **{name: found[name] for name in ("confidence", "observation", "matched", "count", "examples")},
        "packages": json.dumps(found["packages"], sort_keys=True),
        Category.CONSTITUENT_CODE_USE.value: _verdict(decisions, Category.CONSTITUENT_CODE_USE),
        Category.APP_STORE_DISTRIBUTION.value: _verdict(decisions, Category.APP_STORE_DISTRIBUTION),
        "decisions": json.dumps(decisions, sort_keys=True, default=str),
        "at": result.at,
        "where": result.where,
        "error": None,
    }


def _verdict(decisions: dict[str, dict[str, object]], category: Category) -> str | None:
    decision = decisions.get(category.value)
    return None if decision is None else str(decision.get("verdict"))


def _warning_row(warning: Warning_, result: ScanResult, artifact: str) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(OUTPUT_SCHEMA.names)
    row.update(artifact=artifact, path=warning.path, at=result.at, where=result.where, error=warning.message)
    return row


def split_warnings(output: pa.Table) -> tuple[pa.Table, list[Warning_]]:
    """An output's findings (FINDINGS_SCHEMA) and the scanner's warnings, each ordered by path."""
    rows = output.to_pylist()
    findings = [row for row in rows if row["error"] is None]
    findings.sort(key=lambda row: (row["path"], row["line"] or 0, row["signature"]))
    warnings = [Warning_(row["path"], row["error"]) for row in rows if row["error"] is not None]
    warnings.sort(key=lambda w: (w.path, w.message))
    return pa.Table.from_pylist(findings, schema=OUTPUT_SCHEMA).select(FINDINGS_SCHEMA.names), warnings


def scan_artifacts_spark(df: Any, at: str, where: str = "US", path_column: str = "path") -> Any:
    """Findings and warnings (OUTPUT_SCHEMA, then rulebook_version and bundle) of the artefacts a pyspark
    DataFrame names: its `path_column` of paths (one artefact per task), or, when it has `name` and
    `content` columns, their bytes (`spark.read.format("binaryFile")` gives `path` and `content`: select
    `path` as `name`). Decided at `at` (ISO 8601) for `where`. Lazy; the parameters are checked now."""
    from appban.distributed.spark import run_spark

    if CONTENT_COLUMN in df.columns:
        return run_spark(df.select(NAME_COLUMN, CONTENT_COLUMN), ContentFactory(at, where))
    return run_spark(df, PathFactory(at, where), path_column=path_column)


def scan_artifacts_dask(collection: Any, at: str, where: str = "US") -> Any:
    """The same for a dask bag of paths, or a dask DataFrame with `name` and `content` columns."""
    from appban.distributed.dask import run_dask

    if hasattr(collection, "columns"):
        return run_dask(collection[[NAME_COLUMN, CONTENT_COLUMN]], ContentFactory(at, where))
    return run_dask(collection, PathFactory(at, where))

"""The constituent-code scanner: appban scan."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from appban.cli.apps import app
from appban.cli.common import (
    OutputOption,
    RulebookOption,
    TzOption,
    emit,
    emit_text,
    err,
    fail,
    load_book,
    out,
    verdict_style,
)
from appban.cli.configure import BaselineOption, FailOn, FailOnOption, review_scan
from appban.cli.conventions import (
    INSTANT,
    PLACE,
    JsonAlias,
    chosen_format,
    csv_rows,
    dumps,
    flag_message,
    from_bundle,
    instant_option,
    needs_file,
    parquet_rows,
)
from appban.cli.engine import EngineDbOption, EngineOption, MasterOption, SchedulerOption, engine_output
from appban.cli.given import path as given_path
from appban.vocabulary import Verdict

# The scanner, its signatures and the report writers are imported when `scan` runs, not at every start.
if TYPE_CHECKING:
    from appban.code.scan import ScanResult


class ScanFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"
    cyclonedx = "cyclonedx"
    csv = "csv"
    parquet = "parquet"


@app.command("scan")
def scan_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            parser=given_path,
            metavar="PATH",
            help="Files, directories or archives (APK, IPA, JAR, AAR, tgz...).",
            show_default=False,
        ),
    ],
    at: Annotated[
        str | None,
        typer.Option(metavar=INSTANT, show_default=False, help="Decide at this instant, or now. Default: now."),
    ] = None,
    where: Annotated[
        str, typer.Option(metavar=PLACE, help="Where the software is developed or accessible (ISO 3166).")
    ] = "US",
    fmt: Annotated[ScanFormat, typer.Option("--format", help="Output format.")] = ScanFormat.table,
    as_json: JsonAlias = False,
    output: OutputOption = None,
    fail_on: FailOnOption = FailOn.none,
    tz: TzOption = None,
    rulebook: RulebookOption = None,
    baseline: BaselineOption = None,
    engine: EngineOption = None,
    master: MasterOption = None,
    scheduler: SchedulerOption = None,
    db: EngineDbOption = None,
) -> None:
    """Find covered apps' SDKs and code (constituent code) in manifests, sources and binaries."""
    from appban.code.scan import scan as code_scan
    from appban.code.signatures import default_signatures
    from appban.engine.decide import DecisionInputError, resolve_place
    from appban.report.cyclonedx import to_cyclonedx
    from appban.report.sarif import to_sarif

    fmt = ScanFormat(chosen_format(fmt, as_json))
    directory = engine_output(engine, master, scheduler, db, fmt.value, output, baseline=baseline, rulebook=rulebook)
    needs_file(fmt.value, output)
    book = load_book(rulebook)
    instant = instant_option(at, tz)
    try:
        place = resolve_place(where)
    except DecisionInputError as exc:
        fail(flag_message(exc))
    if engine is not None and directory is not None:
        from appban.cli import engine as on_engine
        from appban.cli.conventions import iso_z
        from appban.distributed.code import PathFactory

        factory = PathFactory(iso_z(instant), place)  # the instant fixed here: workers would each take their "now"
        job = on_engine.EngineJob("code", "scan", factory, {"at": factory.at, "where": place},
                                  verdict_column="constituent_code_use", file_column="path", line_column=None,
                                  entries=True)  # fmt: skip
        on_engine.run(job, paths, engine, master, scheduler, directory, db, fmt is ScanFormat.json, fail_on.value)
        return
    missing = [str(path) for path in paths if not os.path.lexists(path)]
    if missing:
        # A mistyped path must not pass a gate as "nothing found".
        fail(f"no such file or directory: {', '.join(missing)}")
    signatures = default_signatures(book)
    with err.status("scanning…"):
        result = code_scan(paths, at=instant, where=place, rulebook=book, signatures=signatures)
    base = Path.cwd()  # locations are shown relative to it (fingerprints have their own root)
    # Suppressions and --baseline: `findings` keeps what the gate judges.
    review_warnings = review_scan(result, baseline, listed=fmt is not ScanFormat.cyclonedx)
    if fmt is ScanFormat.table and output is None:
        _print_scan(result, base)
    elif fmt in (ScanFormat.csv, ScanFormat.parquet):
        rows = _scan_rows(result)
        if fmt is ScanFormat.csv:
            emit(lambda stream: stream.write(csv_rows(rows, ROW_COLUMNS)), output)
        else:
            emit(parquet_rows(rows, ROW_COLUMNS), output)
        if output is not None:
            err.print(f"wrote {len(rows)} findings ({len(result.suppressed)} suppressed) to {output}")
    else:
        urls = {f.signature.id: signatures.source_urls(f.signature) for f in result.findings}
        if fmt is ScanFormat.sarif:
            text = json.dumps(to_sarif(result, base, urls), ensure_ascii=False, indent=2)
        elif fmt is ScanFormat.cyclonedx:
            text = to_cyclonedx(result)
        elif fmt is ScanFormat.markdown:
            text = _scan_markdown(result, base, fail_on, review_warnings).rstrip("\n")
        else:
            text = dumps(_scan_json(result))
        emit_text(text + "\n", output)
        if output is not None:
            err.print(f"wrote {len(result.findings)} findings to {output}")
    for warning in result.warnings[:50]:
        err.print(Text(f"appban: warning: {warning}", style="yellow"))
    if len(result.warnings) > 50:
        err.print(f"... and {len(result.warnings) - 50} more warnings")
    crossed = (fail_on is FailOn.any and bool(result.findings)) or (
        fail_on is FailOn.prohibited and any(f.worst.verdict is Verdict.PROHIBITED for f in result.findings)
    )
    # Something skipped (over a limit, malformed, unreadable, a link not followed) was not scanned: a gate
    # cannot call that clean.
    if crossed or result.warnings:
        raise typer.Exit(1)


def _scan_json(result: ScanResult) -> dict[str, Any]:
    return result.to_json_dict()


# One row per finding, suppressed ones included (marked by their suppression), as JSON names the fields.
ROW_COLUMNS = [
    "path", "file", "member", "line", "signature", "app", "kind", "confidence", "observation", "matched",
    "count", "verdict", "verdicts", "at", "where", "fingerprint", "suppressed", "suppression_reason",
    "suppression_until", "suppression_source",
]  # fmt: skip


def _scan_rows(result: ScanResult) -> list[dict[str, Any]]:
    rows = []
    for finding in [*result.findings, *result.suppressed]:
        entry = finding.suppression
        rows.append(
            {
                "path": finding.path,
                "file": finding.file,
                "member": finding.member,
                "line": finding.line,
                "signature": finding.signature.id,
                "app": finding.signature.app,
                "kind": finding.signature.kind,
                "confidence": finding.signature.confidence,
                "observation": finding.observation,
                "matched": finding.matched,
                "count": finding.count,
                "verdict": finding.worst.verdict.value,
                "verdicts": [f"{category}={d.verdict.value}" for category, d in finding.decisions.items()],
                "at": result.at,
                "where": result.where,
                "fingerprint": finding.fingerprint,
                "suppressed": entry is not None,
                "suppression_reason": entry.reason if entry else None,
                "suppression_until": entry.until if entry else None,
                "suppression_source": entry.source if entry else None,
            }
        )
    return rows


def _location(finding: Any, base: Path) -> str:
    location: str = os.path.relpath(finding.file, base) if not finding.file.startswith("..") else finding.file
    if finding.member:
        location += f"!/{finding.member}"
    if finding.line:
        location += f":{finding.line}"
    return location


def _scan_markdown(result: ScanResult, base: Path, fail_on: FailOn, review_warnings: list[str]) -> str:
    from appban.report import markdown as md

    rows = [
        [_location(f, base), f.signature.id, f.signature.app, f.signature.kind, f"{f.signature.confidence:.2f}",
         f"{f.observation}: {f.matched}", f.worst.verdict.value]
        for f in result.findings
    ]  # fmt: skip
    facts: dict[str, object] = {"findings": len(result.findings), "files scanned": result.files,
                                "decided for": f"constituent_code_use in {result.where} at {result.at}",
                                "fail on": fail_on.value}  # fmt: skip
    if result.suppressed:
        facts["suppressed by the configuration"] = len(result.suppressed)
    if result.unchanged is not None:
        facts["unchanged since the baseline"] = result.unchanged
    sections = [
        ("", md.facts(facts)),
        ("Findings", md.table(["where", "signature", "app", "kind", "confidence", "evidence", "verdict"], rows)
         if rows else _nothing_new(result)),
    ]  # fmt: skip
    if result.suppressed:
        accepted = [
            [_location(f, base), f.signature.id, f.signature.app, f.suppression.reason,
             f.suppression.until.isoformat(), f.suppression.source]
            for f in result.suppressed if f.suppression is not None
        ]  # fmt: skip
        sections.append(("Suppressed", md.table(["where", "signature", "app", "reason", "until", "entry"], accepted)))
    if review_warnings:  # expired suppressions, a baseline that matches nothing: a reviewer should see them
        sections.append(("Warnings", "\n".join(f"- {md.cell(w)}" for w in review_warnings)))
    if result.warnings:
        sections.append(("Not scanned", "\n".join(f"- {md.cell(f'{w.path}: {w.message}')}"
                                                   for w in result.warnings[:50])))  # fmt: skip
    bundle = f", bundle {md.code(result.bundle)}" if result.bundle else ""
    sections.append(("", f"rulebook {md.code(result.rulebook_version)}{bundle}"))
    return md.document(f"appban scan: {len(result.findings)} findings", sections)


def _nothing_new(result: ScanResult) -> str:
    if result.suppressed or result.unchanged:
        return "Nothing beyond the suppressed findings and those in the baseline."
    return "No covered app's code was found."


def _print_scan(result: ScanResult, base: Path) -> None:
    grid = Table(title=f"{len(result.findings)} findings in {result.files} files", title_justify="left")
    for name in ("where", "signature", "app", "kind", "conf.", "evidence", "verdict"):
        grid.add_column(name, overflow="fold")
    for finding in result.findings:
        location = _location(finding, base)
        verdict = finding.worst.verdict
        more = f" (+{finding.count - 1})" if finding.count > 1 else ""
        grid.add_row(
            location,
            finding.signature.id,
            finding.signature.app,
            finding.signature.kind,
            f"{finding.signature.confidence:.2f}",
            f"{finding.observation}: {finding.matched}{more}",
            Text(verdict.value, style=verdict_style(verdict)),
        )
    out.print(grid)
    if result.suppressed:
        _print_suppressed(result, base)
    out.print(
        f"[dim]decided for constituent_code_use in {result.where} at {result.at}; "
        f"rulebook {result.rulebook_version}{from_bundle(result.bundle)}[/dim]"
    )


def _print_suppressed(result: ScanResult, base: Path) -> None:
    """Accepted findings under their own title: out of the gate, but in sight with the reason and the date."""
    grid = Table(title=f"{len(result.suppressed)} suppressed by the configuration", title_justify="left")
    for name in ("where", "signature", "app", "reason", "until", "entry"):
        grid.add_column(name, overflow="fold")
    for finding in result.suppressed:
        entry = finding.suppression
        if entry is None:
            continue
        grid.add_row(
            _location(finding, base),
            finding.signature.id,
            finding.signature.app,
            entry.reason,
            entry.until.isoformat(),
            entry.source,
        )
    out.print(grid)

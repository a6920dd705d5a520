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
    emit_text,
    err,
    fail,
    load_book,
    out,
    verdict_style,
)
from appban.cli.configure import BaselineOption, review_scan
from appban.cli.conventions import INSTANT, PLACE, JsonAlias, chosen_format, dumps, flag_message, instant_option
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


class FailOn(StrEnum):
    none = "none"
    prohibited = "prohibited"
    any = "any"


@app.command("scan")
def scan_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH", help="Files, directories or archives (APK, IPA, JAR, AAR, tgz...).", show_default=False
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
    fail_on: Annotated[
        FailOn, typer.Option(help="Also exit 1 when a finding is prohibited, or when there is any (see Exit codes).")
    ] = FailOn.none,
    tz: TzOption = None,
    rulebook: RulebookOption = None,
    baseline: BaselineOption = None,
) -> None:
    """Find covered apps' SDKs and code (constituent code) in manifests, sources and binaries."""
    from appban.code.scan import scan as code_scan
    from appban.code.signatures import default_signatures
    from appban.engine.decide import DecisionInputError, resolve_place
    from appban.report.cyclonedx import to_cyclonedx
    from appban.report.sarif import to_sarif

    fmt = ScanFormat(chosen_format(fmt, as_json))
    book = load_book(rulebook)
    instant = instant_option(at, tz)
    try:
        place = resolve_place(where)
    except DecisionInputError as exc:
        fail(flag_message(exc))
    missing = [str(path) for path in paths if not os.path.lexists(path)]
    if missing:
        # A mistyped path must not pass a gate as "nothing found".
        fail(f"no such file or directory: {', '.join(missing)}")
    signatures = default_signatures(book)
    with err.status("scanning…"):
        result = code_scan(paths, at=instant, where=place, rulebook=book, signatures=signatures)
    base = Path.cwd()
    review_scan(result, base, baseline)  # suppressions and --baseline: `findings` keeps what the gate judges
    if fmt is ScanFormat.table and output is None:
        _print_scan(result, base)
    else:
        urls = {f.signature.id: signatures.source_urls(f.signature) for f in result.findings}
        if fmt is ScanFormat.sarif:
            text = json.dumps(to_sarif(result, base, urls), ensure_ascii=False, indent=2)
        elif fmt is ScanFormat.cyclonedx:
            text = to_cyclonedx(result)
        elif fmt is ScanFormat.markdown:
            text = _scan_markdown(result, base, fail_on).rstrip("\n")
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


def _location(finding: Any, base: Path) -> str:
    location: str = os.path.relpath(finding.file, base) if not finding.file.startswith("..") else finding.file
    if finding.member:
        location += f"!/{finding.member}"
    if finding.line:
        location += f":{finding.line}"
    return location


def _scan_markdown(result: ScanResult, base: Path, fail_on: FailOn) -> str:
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
         if rows else "No covered app's code was found."),
    ]  # fmt: skip
    if result.warnings:
        sections.append(("Not scanned", "\n".join(f"- {md.cell(f'{w.path}: {w.message}')}"
                                                   for w in result.warnings[:50])))  # fmt: skip
    sections.append(("", f"rulebook {md.code(result.rulebook_version)}"))
    return md.document(f"appban scan: {len(result.findings)} findings", sections)


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
    out.print(
        f"[dim]decided for constituent_code_use in {result.where} at {result.at}; "
        f"rulebook {result.rulebook_version}[/dim]"
    )

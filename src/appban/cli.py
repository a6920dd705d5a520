"""The `appban` command line: check, timeline, decide and rules.

Exit codes: 0 whatever the verdict, 2 for bad input (the message names the file, line and field).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from appban.code.scan import ScanResult
from appban.code.scan import scan as code_scan
from appban.code.signatures import default_signatures
from appban.engine.batch import TableInputError, decide_table
from appban.engine.decide import Decision, DecisionInputError, decide, resolve_category, resolve_place
from appban.engine.instants import InstantError, iso, parse_instant
from appban.engine.timeline import timeline
from appban.export import mdm
from appban.identity.registry import load_registry
from appban.report import html as html_report
from appban.report.cyclonedx import to_cyclonedx
from appban.report.sarif import to_sarif
from appban.rulebook.loader import Rulebook, RulebookError, load_rulebook
from appban.screen.columns import ColumnMapError, parse_map
from appban.screen.inventory import InventoryOptions, Screener, inventory_summary
from appban.tables import (
    TableReadError,
    line_mapper,
    line_of_row,
    read_table,
    to_records,
    write_atomically,
    write_csv,
)
from appban.vocabulary import Verdict

app = typer.Typer(
    help="Government orders against specific mobile apps, as time-aware, cited rules.",
    no_args_is_help=True,
    add_completion=False,
)
rules_app = typer.Typer(help="List, show and validate the rulebook.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

# Piped output (CI logs, files) gets a readable width instead of rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

VERDICT_STYLE = {
    Verdict.PROHIBITED: "bold red",
    Verdict.ENJOINED: "bold yellow",
    Verdict.NOT_YET_EFFECTIVE: "cyan",
    Verdict.REVOKED: "magenta",
    Verdict.NOT_PROHIBITED: "green",
}

RulebookOption = Annotated[
    Path | None,
    typer.Option("--rulebook", help="Rulebook directory (default: the packaged one).", show_default=False),
]
TzOption = Annotated[
    str | None,
    typer.Option("--tz", help="Time zone for instants written without an offset (IANA name or -05:00)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object on standard output.")]


def fail(message: str) -> NoReturn:
    err.print(Text(f"appban: error: {message}", style="red"))
    raise typer.Exit(2)


def _rulebook(path: Path | None) -> Rulebook:
    try:
        return load_rulebook(path)
    except RulebookError as exc:
        fail(f"the rulebook is invalid:\n{exc}")


def _facts(pairs: list[str]) -> dict[str, str]:
    facts: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--fact {pair!r}: write KEY=VALUE, e.g. --fact user_to_user_transfer=true")
        facts[key.strip()] = value.strip()
    return facts


def _style(verdict: Verdict) -> str:
    return VERDICT_STYLE[verdict]


def _print_decision(decision: Decision) -> None:
    head = Text()
    head.append(decision.verdict.value.upper().replace("_", " "), style=_style(decision.verdict))
    head.append(f"   {decision.subject_name} · {decision.transaction.value} · {decision.where} · {decision.at}\n")
    head.append(f"as written: {decision.as_written.value}   enforcement: {decision.enforcement.value}")
    out.print(Panel(head, title="appban check", expand=False))
    covering = [line for line in decision.rules if line.status.value not in {"not_covered", "authority_only"}]
    others = [line for line in decision.rules if line not in covering]
    if not decision.rules:
        out.print("No rule in the rulebook is about this app.")
    if covering:
        out.print("[bold]Rule trail[/bold]")
    for line in covering:
        status = Text(f"  ● {line.rule_id}  ")
        status.append(
            line.status.value,
            style=_style(Verdict(line.status.value)) if line.status.value in Verdict._value2member_map_ else "",
        )
        if line.as_written != line.status:
            status.append(f"  (as written: {line.as_written.value})")
        if line.enforcement.value == "suspended":
            status.append("  enforcement suspended", style="yellow")
        out.print(status)
        out.print(f"    {escape(line.instrument_title)} — {escape(line.label)}", style="dim")
        out.print(f"    {escape(line.reason)}")
    if others:
        names = ", ".join(line.rule_id for line in others)
        out.print(f"[dim]Also about this app, not covering this transaction: {escape(names)} (see --json)[/dim]")
    for title, items in (
        ("Exceptions applied", decision.exceptions),
        ("Exceptions that need facts", decision.possible_exceptions),
    ):
        if items:
            out.print(f"[bold]{title}[/bold]")
            for item in items:
                needs = ", ".join(f"{k}={str(v).lower()}" for k, v in item.facts.items())
                suffix = f"  [dim](needs --fact {needs})[/dim]" if needs and title.endswith("facts") else ""
                out.print(f"  • {escape(item.label)} — {escape(item.cite)}{suffix}")
    if decision.uncertainties:
        out.print("[bold yellow]Uncertain[/bold yellow]")
        for note in decision.uncertainties:
            out.print(f"  ! {escape(note)}")
    if decision.notes:
        out.print("[bold]Notes[/bold]")
        for note in decision.notes:
            out.print(f"  - {escape(note)}")
    if decision.citations:
        out.print("[bold]Citations[/bold]")
        for citation in decision.citations:
            out.print(escape(f"  [{citation.instrument}] {citation.cite} <{citation.url}>"))
    out.print(f"[dim]rulebook {decision.rulebook_version}[/dim]")


@app.command()
def check(
    app_name: Annotated[str, typer.Option("--app", help="App id, name or alias (e.g. tiktok, WeChat, 微信).")],
    transaction: Annotated[str, typer.Option("--transaction", help="Transaction category.")],
    where: Annotated[str, typer.Option("--where", help="ISO 3166-1 alpha-2 or ISO 3166-2 code (US, US-MT, IN).")],
    at: Annotated[str, typer.Option("--at", help="ISO 8601 instant with an offset, e.g. 2020-11-12T23:59:00-05:00.")],
    fact: Annotated[
        list[str] | None, typer.Option("--fact", help="A transaction fact, KEY=VALUE (repeatable).")
    ] = None,
    tz: TzOption = None,
    as_json: JsonOption = False,
    rulebook: RulebookOption = None,
) -> None:
    """Is this transaction prohibited at this instant, and why."""
    book = _rulebook(rulebook)
    try:
        decision = decide(app_name, transaction, where, at, _facts(fact or []), tz=tz, rulebook=book)
    except DecisionInputError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(decision.to_json_dict(), ensure_ascii=False, indent=2))
    else:
        _print_decision(decision)


@app.command("timeline")
def timeline_command(
    app_name: Annotated[str, typer.Option("--app", help="App id, name or alias.")],
    where: Annotated[str, typer.Option("--where", help="ISO 3166 code.")] = "US",
    start: Annotated[str | None, typer.Option("--from", help="Only changes after this instant.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Only changes up to this instant.")] = None,
    fact: Annotated[list[str] | None, typer.Option("--fact", help="A transaction fact, KEY=VALUE.")] = None,
    tz: TzOption = None,
    as_json: JsonOption = False,
    rulebook: RulebookOption = None,
) -> None:
    """Every instant at which the verdict of any category changes, with the instrument that changed it."""
    book = _rulebook(rulebook)
    try:
        result = timeline(app_name, where, start, end, _facts(fact or []), tz=tz, rulebook=book)
    except DecisionInputError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(result.model_dump(mode="json", by_alias=True), ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{book.subjects.subjects[result.subject].name} in {result.where}", title_justify="left")
    for name in ("at (UTC)", "category", "verdict", "as written", "enforcement", "changed by"):
        table.add_column(name, overflow="fold")
    for change in result.changes:
        verdict = Text(f"{change.verdict_before.value} → ")
        verdict.append(change.verdict_after.value, style=_style(change.verdict_after))
        table.add_row(
            change.at,
            change.category.value,
            verdict,
            change.as_written_after.value,
            change.enforcement_after.value,
            ", ".join(change.instruments),
        )
    out.print(table)
    if not result.changes:
        out.print("No change in this range.")
    out.print(f"[dim]rulebook {result.rulebook_version}[/dim]")


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"


@app.command("decide")
def decide_command(
    file: Annotated[Path, typer.Argument(help="CSV, JSON Lines or Parquet with columns app, transaction, where, at.")],
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.table,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of standard output.")
    ] = None,
    tz: TzOption = None,
    limit: Annotated[int, typer.Option(help="Rows shown in the terminal table.")] = 60,
    rulebook: RulebookOption = None,
) -> None:
    """Batch decisions over a file of transactions."""
    book = _rulebook(rulebook)
    try:
        with err.status(f"reading {file}…"):
            table = read_table(file)
    except TableReadError as exc:
        fail(str(exc))
    try:
        with err.status(f"deciding {table.num_rows:,} rows…"):
            decided = decide_table(table, tz=tz, rulebook=book)
    except TableInputError as exc:
        lines = []
        for e in exc.errors[:20]:
            shown = f" {e.value!r}" if e.value is not None else ""
            where = f"{file}:{line_of_row(file, e.row)}" if e.message != "column is missing" else str(file)
            lines.append(f"{where}: {e.column}:{shown} {e.message}")
        if exc.total > 20:
            lines.append(f"... and {exc.total - 20} more")
        fail(f"{exc.total} bad value(s) in {file}; nothing was decided:\n" + "\n".join(lines))
    if fmt is OutputFormat.parquet and output is None:
        fail("--format parquet needs -o FILE")
    if output is not None:
        writers = {
            OutputFormat.csv: lambda p: write_csv(decided, p),
            OutputFormat.parquet: lambda p: pq.write_table(decided, p),
            OutputFormat.json: lambda p: p.write_text(_json_document(decided, book), encoding="utf-8"),
            OutputFormat.table: lambda p: write_csv(decided, p),
        }
        write_atomically(output, writers[fmt])
        err.print(f"wrote {decided.num_rows} decisions to {output}")
        _print_summary(decided, book)
        return
    if fmt is OutputFormat.json:
        print(_json_document(decided, book))
    elif fmt is OutputFormat.csv:
        _csv_to_stdout(decided)
    else:
        _print_rows(decided, limit)
        _print_summary(decided, book)


def _csv_to_stdout(table: pa.Table) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.csv"
        write_csv(table, path)
        sys.stdout.write(path.read_text(encoding="utf-8"))


def _summary(table: pa.Table, book: Rulebook) -> dict[str, Any]:
    verdicts = Counter(table.column("verdict").to_pylist())
    by_app: dict[str, Counter[str]] = {}
    names = {name: book.subject_id(name) or name for name in set(table.column("app").to_pylist())}
    for app_name, verdict in zip(table.column("app").to_pylist(), table.column("verdict").to_pylist(), strict=True):
        by_app.setdefault(names[app_name], Counter())[verdict] += 1
    return {
        "rows": table.num_rows,
        "by_verdict": dict(verdicts),
        "by_app": {k: dict(v) for k, v in sorted(by_app.items())},
    }


def _json_document(table: pa.Table, book: Rulebook) -> str:
    return json.dumps(
        {"rulebook_version": book.version, "summary": _summary(table, book), "rows": to_records(table)},
        ensure_ascii=False,
        indent=2,
    )


def _print_rows(table: pa.Table, limit: int) -> None:
    shown = table.slice(0, limit)
    grid = Table(title="Decisions", title_justify="left")
    columns = ["app", "transaction", "where", "at", "verdict"]
    extra = "description" if "description" in table.column_names else None
    for name in ("#", *columns, *([extra] if extra else [])):
        grid.add_column(name, overflow="fold")
    for number, row in enumerate(shown.to_pylist(), start=1):
        verdict = Verdict(row["verdict"])
        cell = Text(verdict.value, style=_style(verdict))
        if row["as_written"] != row["verdict"]:
            cell.append(f"\nas written: {row['as_written']}", style="dim")
        if row["enforcement"] == "suspended":
            cell.append("\nenforcement suspended", style="yellow")
        cells: list[str | Text] = [str(number), *(str(row[name]) for name in columns[:-1]), cell]
        if extra:
            cells.append(str(row[extra] or ""))
        grid.add_row(*cells)
    out.print(grid)
    if table.num_rows > limit:
        out.print(f"[dim]… {table.num_rows - limit} more rows (use --format csv/json or -o FILE for all)[/dim]")


def _print_summary(table: pa.Table, book: Rulebook) -> None:
    summary = _summary(table, book)
    grid = Table(title=f"Summary of {summary['rows']} decisions", title_justify="left")
    grid.add_column("app")
    verdicts = [v for v in Verdict if v.value in summary["by_verdict"]]
    for verdict in verdicts:
        grid.add_column(Text(verdict.value, style=_style(verdict)), justify="right")
    for app_name, counts in summary["by_app"].items():
        grid.add_row(app_name, *(str(counts.get(v.value, 0)) for v in verdicts))
    out.print(grid)
    out.print(f"[dim]rulebook {book.version}[/dim]")


@rules_app.command("list")
def rules_list(as_json: JsonOption = False, rulebook: RulebookOption = None) -> None:
    """Every instrument in the rulebook, oldest first."""
    book = _rulebook(rulebook)
    instruments = sorted(book.instruments.values(), key=lambda i: (i.signed, i.id))
    if as_json:
        rows = [
            {
                "id": i.id,
                "kind": i.kind,
                "signed": i.signed.isoformat(),
                "title": i.title,
                "cite": i.citation.cite,
                "items": [item.id for owner, item in book.items() if owner is i],
            }
            for i in instruments
        ]
        print(json.dumps({"rulebook_version": book.version, "instruments": rows}, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"Rulebook {book.version}: {len(instruments)} instruments", title_justify="left")
    for name in ("signed", "id", "kind", "instrument", "items"):
        table.add_column(name, overflow="fold")
    for i in instruments:
        count = len(i.prohibitions) + len(i.exceptions) + len(i.changes) + len(i.authorizations)
        table.add_row(i.signed.isoformat(), i.id, i.kind, i.short_title, str(count))
    out.print(table)


@rules_app.command("show")
def rules_show(
    item_id: Annotated[str, typer.Argument(help="An instrument id or the id of an item inside one.")],
    as_json: JsonOption = False,
    rulebook: RulebookOption = None,
) -> None:
    """One instrument, or one prohibition, exception or change, with its citation."""
    book = _rulebook(rulebook)
    found = book.find(item_id)
    if found is None:
        fail(f"no instrument or item {item_id!r} (see `appban rules list`)")
    instrument, item = found
    data = item.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if item is not instrument:
        data = {"instrument": instrument.id, "instrument_citation": instrument.citation.cite, **data}
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    out.print(Panel(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100).rstrip(), title=item_id))


@rules_app.command("uncertain")
def rules_uncertain(as_json: JsonOption = False, rulebook: RulebookOption = None) -> None:
    """Every fact the rulebook marks as not confirmed by a primary source."""
    book = _rulebook(rulebook)
    rows = book.uncertainties()
    if as_json:
        items = [{"instrument": i, "item": k, "uncertain": t} for i, k, t in rows]
        print(json.dumps({"rulebook_version": book.version, "uncertain": items}, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(rows)} facts marked uncertain", title_justify="left")
    for name in ("instrument", "item", "what is not confirmed"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out.print(table)


@rules_app.command("validate")
def rules_validate(
    path: Annotated[Path, typer.Argument(help="A rulebook directory, or one instrument file to check against it.")],
    rulebook: RulebookOption = None,
) -> None:
    """Validate a rulebook directory, or one new instrument file against the rest of the law."""
    try:
        if path.is_dir():
            book = load_rulebook(path)
        elif path.is_file():
            book = load_rulebook(rulebook, extra=[path])
        else:
            fail(f"{path}: no such file or directory")
    except RulebookError as exc:
        fail(f"{len(exc.problems)} problem(s):\n{exc}")
    out.print(f"[green]valid[/green]: {len(book.instruments)} instruments, rulebook {book.version}")


screen_app = typer.Typer(help="Screen your own data for covered apps and transactions.", no_args_is_help=True)
app.add_typer(screen_app, name="screen")


class FleetOption(StrEnum):
    government = "government"
    corporate = "corporate"
    personal = "personal"


class ScreenFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


@screen_app.command("inventory")
def screen_inventory(
    files: Annotated[list[Path], typer.Argument(help="Catalog or device inventory: CSV, JSON, JSON Lines or Parquet.")],
    where: Annotated[str, typer.Option(help="Storefront or fleet location for rows without one (ISO 3166).")] = "US",
    at: Annotated[str | None, typer.Option(help="Decide every row at this instant instead of its own.")] = None,
    at_column: Annotated[str | None, typer.Option(help="Column holding each row's instant.")] = None,
    fleet: Annotated[
        FleetOption, typer.Option(help="Device inventories: government devices, corporate or personal ones.")
    ] = FleetOption.corporate,
    mapping: Annotated[str | None, typer.Option("--map", help="Column roles, e.g. name=AppName,id=BundleId.")] = None,
    fmt: Annotated[ScreenFormat, typer.Option("--format", help="Output format.")] = ScreenFormat.table,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of standard output.")
    ] = None,
    tz: TzOption = None,
    rulebook: RulebookOption = None,
) -> None:
    """Which rows of an app-store catalog or MDM inventory are covered apps, and what the law says."""
    book = _rulebook(rulebook)
    if at is not None and at_column is not None:
        fail("give --at (one instant for every row) or --at-column (each row's own), not both")
    try:
        options = InventoryOptions(
            where=resolve_place(where), at=at, at_column=at_column, tz=tz, fleet=fleet.value, mapping=parse_map(mapping)
        )
        if at is not None:
            parse_instant(at, tz)
        screener = Screener(book, options)
    except (DecisionInputError, ColumnMapError, InstantError) as exc:
        fail(str(exc))
    results = []
    for file in files:
        try:
            with err.status(f"screening {file}…"):
                table = read_table(file, all_text=True)
                results.append((file, screener.screen(table, str(file), line_mapper(file))))
        except (TableReadError, ColumnMapError, ValueError) as exc:
            fail(f"{file}: {exc}")
    findings = pa.concat_tables([r.findings for _, r in results]) if results else None
    assert findings is not None
    errors = [e for _, r in results for e in r.errors]
    files_info = [
        {"file": str(f), "rows": r.rows, "format": r.columns.format, "kind": r.columns.kind, "columns": r.columns.roles}
        for f, r in results
    ]
    summary = inventory_summary(findings)
    if fmt is ScreenFormat.table and output is None:
        _print_inventory(findings, summary, files_info, book)
    else:
        render: dict[ScreenFormat, Callable[[Path], object]] = {
            ScreenFormat.json: lambda p: p.write_text(
                json.dumps(
                    {
                        "rulebook_version": book.version,
                        "files": files_info,
                        "summary": summary,
                        "findings": to_records(findings),
                        "errors": [vars(e) for e in errors],
                    },
                    ensure_ascii=False,
                    indent=2,
                    default=str,
                ),
                encoding="utf-8",
            ),
            ScreenFormat.csv: lambda p: write_csv(findings, p),
            ScreenFormat.table: lambda p: write_csv(findings, p),
            ScreenFormat.html: lambda p: p.write_text(_inventory_html(findings, summary, files_info, book, errors)),
        }
        if output is None:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "out"
                render[fmt](path)
                sys.stdout.write(path.read_text(encoding="utf-8"))
        else:
            write_atomically(output, render[fmt])
            err.print(f"wrote {findings.num_rows} findings to {output}")
    for error in errors[:50]:
        err.print(Text(f"appban: row error: {error}", style="red"))
    if len(errors) > 50:
        err.print(f"... and {len(errors) - 50} more row errors")
    if errors:
        raise typer.Exit(1)


def _print_inventory(
    findings: pa.Table, summary: dict[str, Any], files_info: list[dict[str, Any]], book: Rulebook
) -> None:
    for info in files_info:
        out.print(f"[bold]{escape(info['file'])}[/bold]: {info['rows']} rows, format {info['format']} ({info['kind']})")
    grid = Table(title=f"{findings.num_rows} findings", title_justify="left")
    columns = ["line", "record_name", "record_id", "app_name", "match", "transaction", "where", "at", "verdict"]
    for name in ("file:line", *columns[1:]):
        grid.add_column(name, overflow="fold")
    for row in findings.to_pylist():
        verdict = Verdict(row["verdict"])
        cell = Text(verdict.value, style=_style(verdict))
        if row["enforcement"] == "suspended":
            cell.append("\nenforcement suspended", style="yellow")
        grid.add_row(
            f"{Path(row['file']).name}:{row['line']}",
            str(row["record_name"] or ""),
            str(row["record_id"] or ""),
            row["app_name"],
            row["match"],
            row["transaction"],
            row["where"],
            str(row["at"])[:19],
            cell,
        )
    out.print(grid)
    by_app = Table(title="Summary by app", title_justify="left")
    verdicts = [v for v in Verdict if any(v.value in counts for counts in summary["by_app"].values())]
    by_app.add_column("app")
    for verdict in verdicts:
        by_app.add_column(Text(verdict.value, style=_style(verdict)), justify="right")
    for name, counts in summary["by_app"].items():
        by_app.add_row(name, *(str(counts.get(v.value, 0)) for v in verdicts))
    out.print(by_app)
    out.print("by match: " + ", ".join(f"{k} {v}" for k, v in summary["by_match"].items()))
    out.print("by storefront: " + ", ".join(f"{k} {v}" for k, v in summary["by_where"].items()))
    out.print(f"[dim]rulebook {book.version}[/dim]")


def _inventory_html(
    findings: pa.Table, summary: dict[str, Any], files_info: list[dict[str, Any]], book: Rulebook, errors: list[Any]
) -> str:
    columns = ["file", "line", "record_name", "record_publisher", "record_id", "app_name", "match", "confidence",
               "reason", "transaction", "where", "at", "verdict", "as_written", "enforcement", "rule_ids"]  # fmt: skip
    rows = [[row[c] for c in columns] for row in findings.to_pylist()]
    verdicts = [v.value for v in Verdict]
    by_app = [[name, *(counts.get(v, 0) for v in verdicts)] for name, counts in summary["by_app"].items()]
    sections = [
        ("Files", html_report.table(["file", "rows", "format", "kind"],
                                    [[f["file"], f["rows"], f["format"], f["kind"]] for f in files_info])),
        ("Summary by app", html_report.table(["app", *verdicts], by_app)),
        ("Summary by match", html_report.table(["match", "findings"], list(summary["by_match"].items()))),
        ("Summary by storefront", html_report.table(["where", "findings"], list(summary["by_where"].items()))),
        ("Findings", html_report.table(columns, rows, verdict_column="verdict")),
    ]  # fmt: skip
    if errors:
        sections.append(("Row errors", html_report.table(["error"], [[str(e)] for e in errors])))
    meta = {"rulebook": book.version, "findings": findings.num_rows}
    return html_report.document("appban inventory screening", meta, sections)


class ScanFormat(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"
    cyclonedx = "cyclonedx"


class FailOn(StrEnum):
    none = "none"
    prohibited = "prohibited"
    any = "any"


@app.command("scan")
def scan_command(
    paths: Annotated[list[Path], typer.Argument(help="Files, directories or archives (APK, IPA, JAR, AAR, tgz...).")],
    at: Annotated[str | None, typer.Option(help="Decide at this instant (default: now).")] = None,
    where: Annotated[str, typer.Option(help="Where the software is developed or accessible (ISO 3166).")] = "US",
    fmt: Annotated[ScanFormat, typer.Option("--format", help="Output format.")] = ScanFormat.table,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of standard output.")
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option(help="Exit 1 when a finding is prohibited, or when there is any.")
    ] = FailOn.none,
    tz: TzOption = None,
    rulebook: RulebookOption = None,
) -> None:
    """Find covered apps' SDKs and code (constituent code) in manifests, sources and binaries."""
    book = _rulebook(rulebook)
    try:
        place = resolve_place(where)
        instant = parse_instant(at, tz) if at else None
    except (DecisionInputError, InstantError) as exc:
        fail(str(exc))
    signatures = default_signatures(book)
    with err.status("scanning…"):
        result = code_scan(paths, at=instant, where=place, rulebook=book, signatures=signatures)
    base = Path.cwd()
    if fmt is ScanFormat.table and output is None:
        _print_scan(result, base)
    else:
        urls = {f.signature.id: signatures.source_urls(f.signature) for f in result.findings}
        if fmt is ScanFormat.sarif:
            text = json.dumps(to_sarif(result, base, urls), ensure_ascii=False, indent=2)
        elif fmt is ScanFormat.cyclonedx:
            text = to_cyclonedx(result)
        else:
            text = json.dumps(_scan_json(result), ensure_ascii=False, indent=2)
        if output is None:
            sys.stdout.write(text + "\n")
        else:
            write_atomically(output, lambda p: p.write_text(text + "\n", encoding="utf-8"))
            err.print(f"wrote {len(result.findings)} findings to {output}")
    for warning in result.warnings[:50]:
        err.print(Text(f"appban: warning: {warning}", style="yellow"))
    if fail_on is FailOn.any and result.findings:
        raise typer.Exit(1)
    if fail_on is FailOn.prohibited and any(f.worst.verdict is Verdict.PROHIBITED for f in result.findings):
        raise typer.Exit(1)


def _scan_json(result: ScanResult) -> dict[str, Any]:
    return {
        "rulebook_version": result.rulebook_version,
        "at": result.at,
        "where": result.where,
        "files": result.files,
        "findings": [
            {
                "path": f.path,
                "file": f.file,
                "member": f.member,
                "line": f.line,
                "signature": f.signature.id,
                "label": f.signature.label,
                "app": f.signature.app,
                "kind": f.signature.kind,
                "confidence": f.signature.confidence,
                "observation": f.observation,
                "matched": f.matched,
                "count": f.count,
                "examples": f.examples,
                "decisions": {c: d.to_json_dict() for c, d in f.decisions.items()},
            }
            for f in result.findings
        ],
        "warnings": [{"path": w.path, "message": w.message} for w in result.warnings],
    }


def _print_scan(result: ScanResult, base: Path) -> None:
    grid = Table(title=f"{len(result.findings)} findings in {result.files} files", title_justify="left")
    for name in ("where", "signature", "app", "kind", "conf.", "evidence", "verdict"):
        grid.add_column(name, overflow="fold")
    for finding in result.findings:
        location = os.path.relpath(finding.file, base) if not finding.file.startswith("..") else finding.file
        if finding.member:
            location += f"!/{finding.member}"
        if finding.line:
            location += f":{finding.line}"
        verdict = finding.worst.verdict
        more = f" (+{finding.count - 1})" if finding.count > 1 else ""
        grid.add_row(
            location,
            finding.signature.id,
            finding.signature.app,
            finding.signature.kind,
            f"{finding.signature.confidence:.2f}",
            f"{finding.observation}: {finding.matched}{more}",
            Text(verdict.value, style=_style(verdict)),
        )
    out.print(grid)
    out.print(
        f"[dim]decided for constituent_code_use in {result.where} at {result.at}; "
        f"rulebook {result.rulebook_version}[/dim]"
    )


export_app = typer.Typer(help="Turn the law at an instant into lists that enforcement systems load.")
app.add_typer(export_app, name="export")


class MdmFormat(StrEnum):
    intune = "intune"
    jamf = "jamf"
    android = "android"


class Platform(StrEnum):
    ios = "ios"
    android = "android"


@export_app.command("mdm")
def export_mdm(
    where: Annotated[str, typer.Option(help="ISO 3166 code of the fleet's location.")],
    at: Annotated[str, typer.Option(help="ISO 8601 instant with an offset.")],
    fmt: Annotated[MdmFormat, typer.Option("--format", help="Import shape.")],
    transaction: Annotated[
        str, typer.Option(help="Category the block follows from (government_device for agency fleets).")
    ] = "government_device",
    platform: Annotated[Platform, typer.Option(help="Intune only: iOS or Android profile.")] = Platform.ios,
    include_enjoined: Annotated[bool, typer.Option(help="Also block apps whose prohibition is enjoined.")] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of standard output.")
    ] = None,
    tz: TzOption = None,
    rulebook: RulebookOption = None,
) -> None:
    """The blocked-app list (bundle IDs / package names) that follows from the rulebook at T."""
    book = _rulebook(rulebook)
    try:
        place = resolve_place(where)
        category = resolve_category(transaction)
        instant = parse_instant(at, tz)
    except (DecisionInputError, InstantError) as exc:
        fail(str(exc))
    apps = mdm.blocked_apps(book, load_registry(book), place, instant, category, include_enjoined)
    citations: list[dict[str, str]] = []
    if fmt is MdmFormat.intune:
        text = mdm.intune(apps, place, instant, category, book.version, platform.value)
    elif fmt is MdmFormat.jamf:
        text = mdm.jamf(apps, place, instant, category, book.version)
    else:
        text, citations = mdm.android(apps)
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomically(output, lambda p: p.write_text(text, encoding="utf-8"))
        if citations:
            side = output.with_name(output.name + ".citations.json")
            write_atomically(side, lambda p: p.write_text(json.dumps(citations, ensure_ascii=False, indent=2)))
            err.print(f"citations (the policy format has no comment field) in {side}")
    names = ", ".join(a.name for a in apps) or "none"
    err.print(f"{len(apps)} app(s) {transaction} in {place} at {iso(instant)}: {names}")


def _version(value: bool) -> None:
    if value:
        book = load_rulebook()
        print(f"appban {package_version('appban')}, rulebook {book.version} ({len(book.instruments)} instruments)")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show versions and exit.")
    ] = False,
) -> None:
    """Government orders against specific mobile apps, as time-aware, cited rules."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()

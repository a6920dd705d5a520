"""Inventory screening (app stores, MDM fleets) and the MDM export."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from appban.cli.apps import export_app, screen_app
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
from appban.cli.configure import (
    BaselineOption,
    FailOn,
    FailOnOption,
    crossed,
    print_suppressed,
    review_screen,
    suppressed_html,
    suppressed_markdown,
)
from appban.cli.conventions import (
    CATEGORIES,
    CATEGORY,
    INSTANT,
    PLACE,
    JsonAlias,
    category_option,
    chosen_format,
    complete_categories,
    counted,
    dumps,
    flag_message,
    from_bundle,
    instant_option,
    iso_z,
    needs_file,
)
from appban.cli.engine import EngineDbOption, EngineOption, MasterOption, SchedulerOption, engine_output
from appban.cli.given import path as given_path
from appban.suppress import Identity
from appban.vocabulary import Verdict

# pyarrow, the screener, the registry and the exporters are imported by the commands that use them, not at
# every start of `appban`.
if TYPE_CHECKING:
    import pyarrow as pa

    from appban.outputs import Sink
    from appban.rulebook.loader import Rulebook


class FleetOption(StrEnum):
    government = "government"
    corporate = "corporate"
    personal = "personal"


class ScreenFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"
    markdown = "markdown"
    html = "html"


@screen_app.command("inventory")
def screen_inventory(
    files: Annotated[
        list[Path],
        typer.Argument(
            parser=given_path,
            metavar="FILE",
            help="Catalog or device inventory: CSV, JSON, JSON Lines or Parquet.",
            show_default=False,
        ),
    ],
    where: Annotated[
        str, typer.Option(metavar=PLACE, help="Storefront or fleet location for rows without one (ISO 3166).")
    ] = "US",
    at: Annotated[
        str | None,
        typer.Option(
            metavar=INSTANT,
            show_default=False,
            help="Decide every row at this instant (or now) instead of its own; rows without one are decided now.",
        ),
    ] = None,
    at_column: Annotated[str | None, typer.Option(metavar="COLUMN", help="Column holding each row's instant.")] = None,
    fleet: Annotated[
        FleetOption,
        typer.Option(case_sensitive=False, help="Device inventories: government devices, corporate or personal ones."),
    ] = FleetOption.corporate,
    mapping: Annotated[
        str | None,
        typer.Option("--map", metavar="ROLE=COLUMN,...", help="Column roles, e.g. name=AppName,id=BundleId."),
    ] = None,
    fmt: Annotated[
        ScreenFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = ScreenFormat.table,
    as_json: JsonAlias = False,
    output: OutputOption = None,
    tz: TzOption = None,
    rulebook: RulebookOption = None,
    baseline: BaselineOption = None,
    fail_on: FailOnOption = FailOn.none,
    engine: EngineOption = None,
    master: MasterOption = None,
    scheduler: SchedulerOption = None,
    db: EngineDbOption = None,
) -> None:
    """Which rows of an app-store catalog or MDM inventory are covered apps, and what the law says."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from appban.cli.conventions import with_bundle
    from appban.engine.decide import DecisionInputError, resolve_place
    from appban.knowledge.install import bundle_of
    from appban.screen.columns import ColumnMapError, parse_map
    from appban.screen.inventory import InventoryOptions, Screener, inventory_summary
    from appban.tables import TableReadError, line_mapper, read_table, to_records, write_csv

    fmt = ScreenFormat(chosen_format(fmt, as_json))
    directory = engine_output(engine, master, scheduler, db, fmt.value, output, baseline=baseline, rulebook=rulebook)
    needs_file(fmt, output)
    book = load_book(rulebook)
    if at is not None and at_column is not None:
        fail("give --at (one instant for every row) or --at-column (each row's own), not both")
    fixed = None if at is None else iso_z(instant_option(at, tz))
    try:
        options = InventoryOptions(
            where=resolve_place(where),
            at=fixed,
            at_column=at_column,
            tz=tz,
            fleet=fleet.value,
            mapping=parse_map(mapping),
        )
        screener = Screener(book, options)
    except (DecisionInputError, ColumnMapError) as exc:
        fail(flag_message(exc))
    if engine is not None and directory is not None:
        from appban.cli import engine as on_engine
        from appban.distributed.inventory import InventoryFiles

        recorded = {"where": options.where, "at": options.at, "at_column": at_column, "fleet": fleet.value}
        job = on_engine.EngineJob("inventory", "screen inventory", InventoryFiles.of(options), recorded)
        on_engine.run(job, files, engine, master, scheduler, directory, db, fmt is ScreenFormat.json, fail_on.value)
        return
    results = []
    for file in files:
        try:
            with err.status(f"screening {file}…"):
                table = read_table(file, all_text=True)
                results.append((file, screener.screen(table, str(file), line_mapper(file))))
        except TableReadError as exc:
            fail(str(exc))  # it names the file already
        except (ColumnMapError, ValueError) as exc:
            fail(f"{file}: {exc}")
    everything = pa.concat_tables([r.findings for _, r in results]) if results else None
    assert everything is not None
    # Suppressions and --baseline: `findings` keeps what is counted and summarised, `suppressed` is listed apart.
    screened = review_screen("screen inventory", everything, INVENTORY_IDENTITY, files, baseline)
    findings, suppressed, review_warnings = screened.active, screened.suppressed, screened.warnings
    errors = [e for _, r in results for e in r.errors]
    files_info = [
        {"file": str(f), "rows": r.rows, "format": r.columns.format, "kind": r.columns.kind, "columns": r.columns.roles}
        for f, r in results
    ]
    summary = inventory_summary(findings)
    if fmt is ScreenFormat.table and output is None:
        _print_inventory(findings, summary, files_info, book)
        print_suppressed(suppressed, SUPPRESSED_SHOWN)
    else:

        def json_document(stream: BinaryIO) -> None:
            document = {
                "rulebook_version": book.version,
                "bundle": bundle_of(book),
                "files": files_info,
                "summary": summary,
                "findings": to_records(findings),
                "suppressed": to_records(suppressed),
                "errors": [vars(e) for e in errors],
            }
            if baseline is not None:
                document["baseline"] = {"file": str(baseline), "unchanged": screened.unchanged}
            stream.write((dumps(document) + "\n").encode("utf-8"))

        # CSV and Parquet mark the suppressed rows; Parquet's metadata names the rulebook and the bundle
        every_row = with_bundle(pa.concat_tables([findings, suppressed]), bundle_of(book))
        render: dict[ScreenFormat, Sink] = {
            ScreenFormat.json: json_document,
            ScreenFormat.csv: lambda f: write_csv(every_row, f),
            ScreenFormat.parquet: lambda f: pq.write_table(every_row, f),
            ScreenFormat.markdown: lambda f: f.write(
                _inventory_markdown(findings, summary, files_info, book, errors, suppressed, review_warnings).encode()
            ),
            ScreenFormat.table: lambda f: write_csv(every_row, f),
            ScreenFormat.html: lambda f: f.write(
                _inventory_html(findings, summary, files_info, book, errors, suppressed).encode("utf-8")
            ),
        }
        emit(render[fmt], output)
        if output is not None:
            err.print(f"wrote {counted(findings.num_rows, 'finding')} to {output}")
    for error in errors[:50]:
        err.print(Text(f"appban: row error: {error}", style="red"))
    if len(errors) > 50:
        err.print(f"... and {counted(len(errors) - 50, 'more row error')}")
    if crossed(fail_on, findings) or errors:
        raise typer.Exit(1)


# What identifies an inventory finding besides its file and app: the record, its storefront or fleet, and the
# category decided. Not the line, which moves when rows are added above it.
INVENTORY_IDENTITY = Identity(("record_id", "record_name", "listing_or_device", "transaction", "where"))
# What the table, Markdown and HTML show of a suppressed row, before its reason, date and entry.
SUPPRESSED_SHOWN = ["file:line", "record_name", "record_id", "app_name", "verdict"]


def _print_inventory(
    findings: pa.Table, summary: dict[str, Any], files_info: list[dict[str, Any]], book: Rulebook
) -> None:
    from appban.knowledge.install import bundle_of

    for info in files_info:
        rows = counted(info["rows"], "row")
        out.print(f"[bold]{escape(info['file'])}[/bold]: {rows}, format {info['format']} ({info['kind']})")
    grid = Table(title=counted(findings.num_rows, "finding"), title_justify="left")
    columns = ["line", "record_name", "record_id", "app_name", "match", "transaction", "where", "at", "verdict"]
    for name in ("file:line", *columns[1:]):
        grid.add_column(name, overflow="fold")
    for row in findings.to_pylist():
        verdict = Verdict(row["verdict"])
        cell = Text(verdict.value, style=verdict_style(verdict))
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
        by_app.add_column(Text(verdict.value, style=verdict_style(verdict)), justify="right")
    for name, counts in summary["by_app"].items():
        by_app.add_row(name, *(str(counts.get(v.value, 0)) for v in verdicts))
    out.print(by_app)
    out.print("by match: " + ", ".join(f"{k} {v}" for k, v in summary["by_match"].items()))
    out.print("by storefront: " + ", ".join(f"{k} {v}" for k, v in summary["by_where"].items()))
    out.print(f"[dim]rulebook {book.version}{from_bundle(bundle_of(book))}[/dim]")


def _inventory_markdown(
    findings: pa.Table,
    summary: dict[str, Any],
    files_info: list[dict[str, Any]],
    book: Rulebook,
    errors: list[Any],
    suppressed: pa.Table,
    review_warnings: list[str],
) -> str:
    from appban.knowledge.install import bundle_of
    from appban.report import markdown as md
    from appban.tables import to_records

    verdicts = [v.value for v in Verdict if any(v.value in counts for counts in summary["by_app"].values())]
    columns = ["file", "line", "record_name", "record_id", "app_name", "match", "transaction", "where", "at", "verdict",
               "enforcement"]  # fmt: skip
    rows = [[Path(str(row["file"])).name if c == "file" else row[c] for c in columns] for row in to_records(findings)]
    sections = [
        ("", md.facts({"findings": findings.num_rows, "row errors": len(errors),
                       "files": ", ".join(f"{Path(f['file']).name} ({counted(f['rows'], 'row')})"
                                          for f in files_info)})),
        ("By app", md.table(["app", *verdicts], [[name, *(counts.get(v, 0) for v in verdicts)]
                                                 for name, counts in summary["by_app"].items()])),
        ("Findings", md.table(columns, rows)),
    ]  # fmt: skip
    sections += suppressed_markdown(suppressed, SUPPRESSED_SHOWN, review_warnings)
    if errors:
        sections.append(("Row errors", "\n".join(f"- {md.cell(e)}" for e in errors[:50])))
    bundle = bundle_of(book)
    sections.append(("", f"rulebook {md.code(book.version)}" + (f", bundle {md.code(bundle)}" if bundle else "")))
    return md.document(f"appban screen inventory: {counted(findings.num_rows, 'finding')}", sections)


def _inventory_html(
    findings: pa.Table,
    summary: dict[str, Any],
    files_info: list[dict[str, Any]],
    book: Rulebook,
    errors: list[Any],
    suppressed: pa.Table,
) -> str:
    from appban.knowledge.install import bundle_of
    from appban.report import html as html_report

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
    sections += suppressed_html(suppressed, SUPPRESSED_SHOWN)
    if errors:
        sections.append(("Row errors", html_report.table(["error"], [[str(e)] for e in errors])))
    bundle = bundle_of(book)
    meta = {"rulebook": book.version, **({"bundle": bundle} if bundle else {}), "findings": findings.num_rows}
    return html_report.document("appban inventory screening", meta, sections)


class MdmFormat(StrEnum):
    intune = "intune"
    jamf = "jamf"
    android = "android"


class Platform(StrEnum):
    ios = "ios"
    android = "android"


class IntuneModeOption(StrEnum):
    block = "block"
    report = "report"


@export_app.command("mdm")
def export_mdm(
    where: Annotated[str, typer.Option(metavar=PLACE, help="ISO 3166 code of the fleet's location.")],
    fmt: Annotated[MdmFormat, typer.Option("--format", case_sensitive=False, help="Import shape.")],
    at: Annotated[
        str | None,
        typer.Option(
            metavar=INSTANT, show_default=False, help="ISO 8601 instant with an offset, or now. Default: now."
        ),
    ] = None,
    transaction: Annotated[
        str,
        typer.Option(
            metavar=CATEGORY,
            callback=category_option,
            autocompletion=complete_categories,
            help=f"Category the block follows from (government_device for agency fleets): {CATEGORIES}.",
        ),
    ] = "government_device",
    platform: Annotated[
        Platform, typer.Option(case_sensitive=False, help="Intune only: iOS or Android profile.")
    ] = Platform.ios,
    intune_mode: Annotated[
        IntuneModeOption,
        typer.Option(
            case_sensitive=False,
            help="Intune only: block (settings catalog Blocked App Bundle IDs on supervised iOS; Android "
            "Enterprise personal-profile blocked apps) or report (Restricted apps: reports non-compliance, "
            "blocks nothing).",
        ),
    ] = IntuneModeOption.block,
    include_enjoined: Annotated[bool, typer.Option(help="Also block apps whose prohibition is enjoined.")] = False,
    exclude_suspended: Annotated[
        bool, typer.Option(help="Leave out apps whose prohibition the executive does not enforce (2025: EO 14166).")
    ] = False,
    output: OutputOption = None,
    tz: TzOption = None,
    rulebook: RulebookOption = None,
) -> None:
    """The blocked-app list (bundle IDs / package names) that follows from the rulebook at T."""
    from appban.engine.decide import DecisionInputError, resolve_category, resolve_place
    from appban.engine.instants import iso
    from appban.export import mdm
    from appban.identity.registry import load_registry

    book = load_book(rulebook)
    instant = instant_option(at, tz)
    try:
        place = resolve_place(where)
        category = resolve_category(transaction)
    except DecisionInputError as exc:
        fail(flag_message(exc))
    selection = mdm.select(book, load_registry(book), place, instant, category, include_enjoined, exclude_suspended)
    citations: dict[str, Any] | None = None
    try:
        if fmt is MdmFormat.intune:
            text = mdm.intune(selection, platform.value, intune_mode.value)
            shape = mdm.intune_summary(intune_mode.value, platform.value)
        elif fmt is MdmFormat.jamf:
            text, shape = mdm.jamf(selection), "Jamf blocking profile (blockedAppBundleIDs, supervised devices)"
        else:
            text, citations = mdm.android(selection)
            shape = "Android Management API policy (installType BLOCKED)"
    except ValueError as exc:
        fail(str(exc))
    written = emit_text(text, output)
    if citations is not None:
        if output is None or written != "file":
            # Beside standard output, a device or a FIFO there is no place for a second file.
            where_to = "standard output" if output is None else f"{output}, which is not a regular file"
            err.print(
                f"citations not written: the policy goes to {where_to} (give -o FILE; the format has no comments)"
            )
        else:
            # policy.json -> policy.citations.json (README): the policy's own suffix gives way to the side file's.
            side = output.with_suffix(".citations.json")
            emit_text(json.dumps(citations, ensure_ascii=False, indent=2) + "\n", side)
            err.print(f"citations and enforcement status (the policy format has no comment field) in {side}")
    ids: mdm.Identifiers = "bundle"
    if fmt is MdmFormat.android or (fmt is MdmFormat.intune and platform is Platform.android):
        ids = "package"
    elif fmt is MdmFormat.intune and intune_mode is IntuneModeOption.report:
        ids = "listing"
    missing = mdm.not_listable(selection, ids)
    # The count and the names are of the apps the file lists: one with no identifier of this kind is not in it.
    listed = list(dict.fromkeys(a.name for a in selection.apps if a.name not in missing))
    names = ", ".join(listed) or "none"
    err.print(f"{shape}: {counted(len(listed), 'app')} {category.value} in {place} at {iso(instant)}: {names}")
    err.print(f"enforcement: {selection.enforcement}")
    if missing:
        kind = {"bundle": "iOS bundle ID", "package": "Android package", "listing": "bundle ID or App Store ID"}[ids]
        err.print(f"not in this list (no known {kind}): {', '.join(missing)}")

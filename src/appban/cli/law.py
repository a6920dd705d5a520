"""Commands on the law itself: check, timeline, decide and rules."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from appban.cli.apps import app, rules_app
from appban.cli.common import (
    OutputOption,
    RulebookOption,
    TzOption,
    emit,
    emit_text,
    err,
    fact_pairs,
    fail,
    load_book,
    out,
    verdict_style,
)
from appban.cli.conventions import (
    APP,
    CATEGORIES,
    CATEGORY,
    FILE,
    INSTANT,
    PLACE,
    Fmt,
    JsonAlias,
    app_subject,
    category_option,
    chosen_format,
    complete_categories,
    counted,
    csv_rows,
    dumps,
    flag_message,
    instant_option,
    needs_file,
    parquet_rows,
)
from appban.cli.engine import EngineDbOption, EngineOption, MasterOption, SchedulerOption, engine_output
from appban.cli.given import path as given_path
from appban.vocabulary import Verdict

# Every command's module is imported at start-up: what only one command needs (pyarrow for batches, the
# engine, YAML for `rules show`) is imported inside that command, so `check` and `rules list` stay quick.
if TYPE_CHECKING:
    import pyarrow as pa

    from appban.engine.decide import Decision
    from appban.engine.timeline import Timeline
    from appban.outputs import Sink
    from appban.rulebook.loader import Rulebook


def _print_decision(decision: Decision) -> None:
    head = Text()
    head.append(decision.verdict.value.upper().replace("_", " "), style=verdict_style(decision.verdict))
    # The place and the instant are named, since either may be a default (US, now) the user did not type.
    head.append(f"   {decision.subject_name} · {decision.transaction.value} · in {decision.where} · at {decision.at}\n")
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
            style=verdict_style(Verdict(line.status.value)) if line.status.value in Verdict._value2member_map_ else "",
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
    if decision.later:
        # Law made after the instant: shown apart, never part of the answer above.
        out.print(f"[bold]Coming changes[/bold] [dim](made after {decision.at}; not part of this answer)[/dim]")
        for change in decision.later:
            answer = (
                f"{change.verdict.value}, as written {change.as_written.value}, enforcement {change.enforcement.value}"
            )
            out.print(
                escape(f"  ▸ {change.made}  {change.title} [{change.instrument}]: the answer would read {answer}")
            )
            out.print(f"    {escape(change.effect)}", style="dim")
            if change.made_doubt:
                out.print(f"    made: {escape(change.made_doubt)}", style="dim yellow")
    out.print(f"[dim]rulebook {decision.rulebook_version}{_from_bundle(decision.bundle)}[/dim]")


def _from_bundle(bundle: str | None) -> str:
    return f", bundle {escape(bundle)}" if bundle else ""


class CheckFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


AppOption = Annotated[
    str,
    typer.Option(
        "--app",
        metavar=APP,
        help="App id, name or alias (tiktok, WeChat, 微信), or a store identifier the registry knows "
        "(com.zhiliaoapp.musically, com.tencent.xin, App Store ID 414478124).",
    ),
]
FactOption = Annotated[
    list[str] | None, typer.Option("--fact", metavar="NAME=VALUE", help="A transaction fact (repeatable).")
]


@app.command()
def check(
    app_name: AppOption,
    transaction: Annotated[
        str,
        typer.Option(
            "--transaction",
            metavar=CATEGORY,
            callback=category_option,
            autocompletion=complete_categories,
            help=f"Transaction category, in any case, with - or _: {CATEGORIES}.",
        ),
    ],
    where: Annotated[
        str,
        typer.Option(
            "--where",
            metavar=PLACE,
            show_default=False,
            help="ISO 3166-1 alpha-2 or ISO 3166-2 code (US, US-MT, IN). Default: US, as for scan and timeline; "
            "the place used is stated in the output.",
        ),
    ] = "US",
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar=INSTANT,
            show_default=False,
            help="ISO 8601 instant with an offset (2020-11-12T23:59:00-05:00), or now. Default: now.",
        ),
    ] = None,
    fact: FactOption = None,
    tz: TzOption = None,
    fmt: Annotated[
        CheckFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = CheckFormat.table,
    as_json: JsonAlias = False,
    output: OutputOption = None,
    rulebook: RulebookOption = None,
) -> None:
    """Is this transaction prohibited at this instant, and why. The instant used is stated in the output."""
    from appban.engine.decide import DecisionInputError, decide

    chosen = chosen_format(fmt, as_json)
    book = load_book(rulebook)
    subject = app_name if book.subject_id(app_name) is not None else app_subject(book, app_name)
    instant = instant_option(at, tz)
    try:
        decision = decide(subject, transaction, where, instant, fact_pairs(fact or []), rulebook=book)
    except DecisionInputError as exc:
        fail(flag_message(exc))
    if chosen == Fmt.json:
        emit_text(dumps(decision.to_json_dict()) + "\n", output)
    elif chosen == Fmt.markdown:
        emit_text(_decision_markdown(decision), output)
    elif output is not None:
        emit_text(dumps(decision.to_json_dict()) + "\n", output)
    else:
        _print_decision(decision)


def _decision_markdown(decision: Decision) -> str:
    from appban.report import markdown as md

    head = {
        "verdict": decision.verdict.value,
        "as written": decision.as_written.value,
        "enforcement": decision.enforcement.value,
        "app": decision.subject_name,
        "transaction": decision.transaction.value,
        "where": decision.where,
        "at": decision.at,
    }
    covering = [line for line in decision.rules if line.status.value not in {"not_covered", "authority_only"}]
    sections = [
        ("", md.facts(head)),
        ("Rule trail", md.table(["rule", "status", "as written", "instrument", "reason"],
                                [[line.rule_id, line.status.value, line.as_written.value, line.instrument_title,
                                  line.reason] for line in covering])),
    ]  # fmt: skip
    if decision.exceptions or decision.possible_exceptions:
        rows = [["applied", item.label, item.cite] for item in decision.exceptions]
        rows += [["needs facts", item.label, item.cite] for item in decision.possible_exceptions]
        sections.append(("Exceptions", md.table(["", "exception", "citation"], rows)))
    if decision.uncertainties:
        sections.append(("Uncertain", "\n".join(f"- {md.cell(note)}" for note in decision.uncertainties)))
    if decision.later:
        rows = [[change.made, change.instrument, change.verdict.value, change.effect] for change in decision.later]
        sections.append(("Coming changes (not part of this answer)", md.table(["made", "instrument", "verdict",
                                                                               "effect"], rows)))  # fmt: skip
    if decision.citations:
        lines = [f"- {md.cell(c.cite)}: <{c.url}>" if c.url.startswith("https://") else f"- {md.cell(c.cite)}"
                 for c in decision.citations]  # fmt: skip
        sections.append(("Citations", "\n".join(lines)))
    bundle = f", bundle {md.code(decision.bundle)}" if decision.bundle else ""
    sections.append(("", f"rulebook {md.code(decision.rulebook_version)}{bundle}"))
    return md.document(f"appban check: {decision.verdict.value}", sections)


class TimelineFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"
    markdown = "markdown"


TIMELINE_COLUMNS = ["at", "category", "verdict_before", "verdict_after", "as_written_after", "enforcement_after",
                    "instruments", "items"]  # fmt: skip


@app.command("timeline")
def timeline_command(
    app_name: AppOption,
    where: Annotated[str, typer.Option("--where", metavar=PLACE, help="ISO 3166 code.")] = "US",
    start: Annotated[
        str | None, typer.Option("--from", metavar=INSTANT, help="Only changes after this instant (or now).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", metavar=INSTANT, help="Only changes up to this instant (or now).")
    ] = None,
    fact: FactOption = None,
    tz: TzOption = None,
    fmt: Annotated[
        TimelineFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = TimelineFormat.table,
    as_json: JsonAlias = False,
    output: OutputOption = None,
    rulebook: RulebookOption = None,
) -> None:
    """Every instant at which the verdict of any category changes, with the instrument that changed it."""
    from appban.engine.decide import DecisionInputError
    from appban.engine.timeline import timeline

    chosen = chosen_format(fmt, as_json)
    needs_file(chosen, output)
    book = load_book(rulebook)
    subject = app_name if book.subject_id(app_name) is not None else app_subject(book, app_name)
    since = None if start is None else instant_option(start, tz, "--from")
    until = None if end is None else instant_option(end, tz, "--to")
    try:
        result = timeline(subject, where, since, until, fact_pairs(fact or []), tz=tz, rulebook=book)
    except DecisionInputError as exc:
        fail(flag_message(exc))
    if chosen == Fmt.json or (chosen == Fmt.table and output is not None):
        emit_text(dumps(result.model_dump(mode="json", by_alias=True)) + "\n", output)
        return
    if chosen == Fmt.markdown:
        emit_text(_timeline_markdown(result, book.subjects.subjects[result.subject].name), output)
        return
    if chosen in (Fmt.csv, Fmt.parquet):
        rows = [change.model_dump(mode="json") for change in result.changes]
        if chosen == Fmt.csv:
            emit(lambda f: f.write(csv_rows(rows, TIMELINE_COLUMNS)), output)
        else:
            emit(parquet_rows(rows, TIMELINE_COLUMNS, instants=["at"]), output)
        return
    table = Table(title=f"{book.subjects.subjects[result.subject].name} in {result.where}", title_justify="left")
    for name in ("at (UTC)", "categories", "verdict", "as written", "enforcement", "changed by"):
        table.add_column(name, overflow="fold")
    # One row per instant and change: the categories that change alike at an instant (often all six of an
    # identification) share it, which is what a reader looks for and a sixth of the rows for rich to lay out.
    grouped: dict[tuple[Any, ...], list[str]] = {}
    for change in result.changes:
        key = (change.at, change.verdict_before, change.verdict_after, change.as_written_after,
               change.enforcement_after, "\n".join(change.instruments))  # fmt: skip
        grouped.setdefault(key, []).append(change.category.value)
    for (at, before, after, as_written, enforcement, instruments), categories in grouped.items():
        verdict = Text(f"{before.value} → ")
        verdict.append(after.value, style=verdict_style(after))
        table.add_row(at, "\n".join(categories), verdict, as_written.value, enforcement.value, instruments)
    out.print(table)
    if not result.changes:
        out.print("No change in this range.")
    out.print(f"[dim]rulebook {result.rulebook_version}{_from_bundle(result.bundle)}[/dim]")


def _timeline_markdown(result: Timeline, name: str) -> str:
    from appban.report import markdown as md

    head = {"app": name, "where": result.where, "from": result.from_ or "the start", "to": result.to or "now"}
    rows = [[change.at, change.category.value, f"{change.verdict_before.value} → {change.verdict_after.value}",
             change.as_written_after.value, change.enforcement_after.value, ", ".join(change.instruments)]
            for change in result.changes]  # fmt: skip
    changes = md.table(["at (UTC)", "category", "verdict", "as written", "enforcement", "changed by"], rows)
    bundle = f", bundle {md.code(result.bundle)}" if result.bundle else ""
    sections = [("", md.facts(head)), ("Changes", changes if rows else "No change in this range.")]
    sections.append(("", f"rulebook {md.code(result.rulebook_version)}{bundle}"))
    return md.document(f"appban timeline: {name} in {result.where}", sections)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"
    markdown = "markdown"


@app.command("decide")
def decide_command(
    file: Annotated[
        Path,
        typer.Argument(
            parser=given_path,
            metavar=FILE,
            help="CSV, JSON Lines or Parquet with columns app, transaction, where, at; optional facts, tz and a"
            " column per fact.",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format", case_sensitive=False, help="Output format (markdown: the summary and the first rows)."
        ),
    ] = OutputFormat.table,
    as_json: JsonAlias = False,
    output: OutputOption = None,
    tz: TzOption = None,
    limit: Annotated[
        int, typer.Option(metavar="ROWS", min=0, help="Rows shown in the terminal table or the Markdown report.")
    ] = 60,
    later: Annotated[
        bool,
        typer.Option(
            "--later",
            help="Add a `later` column: per row, the instruments made after its instant that would change its"
            " answer (never changing it).",
        ),
    ] = False,
    rulebook: RulebookOption = None,
    engine: EngineOption = None,
    master: MasterOption = None,
    scheduler: SchedulerOption = None,
    db: EngineDbOption = None,
) -> None:
    """Batch decisions over a file of transactions.

    A row's facts come from its facts column (a JSON object, or NAME=VALUE;NAME=VALUE) and from columns named
    after a fact (true/false, yes/no, 1/0; empty is unknown); a row's tz column names the zone of an instant
    without an offset, and --tz stands in where it is empty.
    """
    import pyarrow.parquet as pq

    from appban.cli.conventions import with_bundle
    from appban.engine.batch import TableInputError, decide_table
    from appban.knowledge.install import bundle_of
    from appban.tables import TableReadError, line_of_row, read_table, write_csv

    chosen = OutputFormat(chosen_format(fmt, as_json))
    directory = engine_output(engine, master, scheduler, db, chosen.value, output, rulebook=rulebook)
    if engine is not None and directory is not None:
        from appban.cli import engine as on_engine
        from appban.distributed.decide_files import DecideFiles

        if tz is not None:
            from appban.reading.values import check_zone

            try:
                check_zone(tz)
            except ValueError as exc:
                fail(f"--tz: {exc}")
        job = on_engine.EngineJob("decide", "decide", DecideFiles(tz, later), {"tz": tz, "later": later})
        on_engine.run(job, [file], engine, master, scheduler, directory, db, chosen is OutputFormat.json)
        return
    book = load_book(rulebook)
    try:
        with err.status(f"reading {file}…"):
            table = read_table(file)
    except TableReadError as exc:
        fail(str(exc))
    try:
        with err.status(f"deciding {table.num_rows:,} rows…"):
            decided = decide_table(table, tz=tz, rulebook=book, later=later)
        # Beside engine.batch's appban.rulebook_version, for the Parquet file
        decided = with_bundle(decided, bundle_of(book))
    except TableInputError as exc:
        lines = []
        for e in exc.errors[:20]:
            shown = f" {e.value!r}" if e.value is not None else ""
            where = f"{file}:{line_of_row(file, e.row)}" if e.message != "column is missing" else str(file)
            lines.append(f"{where}: {e.column}:{shown} {e.message}")
        if exc.total > 20:
            lines.append(f"... and {exc.total - 20} more")
        fail(f"{exc.total} bad value(s) in {file}; nothing was decided:\n" + "\n".join(lines))
    needs_file(chosen, output)
    if chosen is OutputFormat.markdown:
        emit_text(_decide_markdown(decided, book, limit), output)
        return
    if output is not None:
        writers: dict[OutputFormat, Sink] = {
            OutputFormat.csv: lambda f: write_csv(decided, f),
            OutputFormat.parquet: lambda f: pq.write_table(decided, f),
            OutputFormat.json: lambda f: f.write((_json_document(decided, book) + "\n").encode("utf-8")),
            OutputFormat.table: lambda f: write_csv(decided, f),
        }
        emit(writers[chosen], output)
        err.print(f"wrote {counted(decided.num_rows, 'decision')} to {output}")
        _print_summary(decided, book)
        return
    if chosen is OutputFormat.json:
        print(_json_document(decided, book))
    elif chosen is OutputFormat.csv:
        emit(lambda f: write_csv(decided, f), None)
    else:
        _print_rows(decided, limit)
        _print_summary(decided, book)


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
    from appban.knowledge.install import bundle_of
    from appban.tables import to_records

    summary = _summary(table, book)
    return dumps({"rulebook_version": book.version, "bundle": bundle_of(book), "summary": summary,
                  "rows": to_records(table)})  # fmt: skip


def _decide_markdown(table: pa.Table, book: Rulebook, limit: int) -> str:
    from appban.knowledge.install import bundle_of
    from appban.report import markdown as md

    bundle = bundle_of(book)
    summary = _summary(table, book)
    verdicts = [v.value for v in Verdict if v.value in summary["by_verdict"]]
    by_app = [[name, *(counts.get(v, 0) for v in verdicts)] for name, counts in summary["by_app"].items()]
    shown = table.slice(0, limit).to_pylist()
    columns = ["app", "transaction", "where", "at", "verdict", "as_written", "enforcement"]
    rows = [[row[c] for c in columns] for row in shown]
    sections = [
        ("", md.facts({"rows": summary["rows"], **summary["by_verdict"]})),
        ("By app", md.table(["app", *verdicts], by_app)),
        (f"Decisions (first {len(shown):,} of {table.num_rows:,})" if table.num_rows > len(shown) else "Decisions",
         md.table(columns, rows, limit=limit)),
        ("", f"rulebook {md.code(book.version)}" + (f", bundle {md.code(bundle)}" if bundle else "")),
    ]  # fmt: skip
    return md.document(f"appban decide: {counted(summary['rows'], 'decision')}", sections)


def _print_rows(table: pa.Table, limit: int) -> None:
    shown = table.slice(0, limit)
    grid = Table(title="Decisions", title_justify="left")
    columns = ["app", "transaction", "where", "at", "verdict"]
    extra = "description" if "description" in table.column_names else None
    for name in ("#", *columns, *([extra] if extra else [])):
        grid.add_column(name, overflow="fold")
    for number, row in enumerate(shown.to_pylist(), start=1):
        verdict = Verdict(row["verdict"])
        cell = Text(verdict.value, style=verdict_style(verdict))
        if row["as_written"] != row["verdict"]:
            cell.append(f"\nas written: {row['as_written']}", style="dim")
        if row["enforcement"] == "suspended":
            cell.append("\nenforcement suspended", style="yellow")
        cells: list[str | Text] = [str(number), *(str(row[name]) for name in columns[:-1]), cell]
        if row.get("later"):
            cell.append("\ncoming: " + ", ".join(row["later"]), style="dim")
        if extra:
            cells.append(str(row[extra] or ""))
        grid.add_row(*cells)
    out.print(grid)
    if table.num_rows > limit:
        out.print(f"[dim]… {table.num_rows - limit} more rows (use --format csv/json or -o FILE for all)[/dim]")


def _print_summary(table: pa.Table, book: Rulebook) -> None:
    from appban.knowledge.install import bundle_of

    summary = _summary(table, book)
    grid = Table(title=f"Summary of {counted(summary['rows'], 'decision')}", title_justify="left")
    grid.add_column("app")
    verdicts = [v for v in Verdict if v.value in summary["by_verdict"]]
    for verdict in verdicts:
        grid.add_column(Text(verdict.value, style=verdict_style(verdict)), justify="right")
    for app_name, counts in summary["by_app"].items():
        grid.add_row(app_name, *(str(counts.get(v.value, 0)) for v in verdicts))
    out.print(grid)
    out.print(f"[dim]rulebook {book.version}{_from_bundle(bundle_of(book))}[/dim]")


class RowsFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"


class ItemFormat(StrEnum):
    table = "table"
    json = "json"


RULE_COLUMNS = ["id", "kind", "made", "made_event", "made_hour_known", "short_title", "title", "cite", "url", "items"]
UNCERTAIN_COLUMNS = ["instrument", "item", "uncertain"]
INSTANT_COLUMNS = {"made"}  # written to Parquet as timestamps


def _rows_out(chosen: str, rows: list[dict[str, Any]], columns: list[str], output: Path | None) -> None:
    """A list of rows as CSV or Parquet (where -o says, or on standard output)."""
    if chosen == Fmt.csv:
        emit(lambda f: f.write(csv_rows(rows, columns)), output)
    else:
        emit(parquet_rows(rows, columns, instants=[name for name in columns if name in INSTANT_COLUMNS]), output)


@rules_app.command("list")
def rules_list(
    fmt: Annotated[
        RowsFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = RowsFormat.table,
    as_json: JsonAlias = False,
    output: OutputOption = None,
    rulebook: RulebookOption = None,
) -> None:
    """Every instrument in the rulebook, oldest first."""
    from appban.engine.instants import iso
    from appban.knowledge.install import bundle_of
    from appban.rulebook.views import instrument_summaries

    chosen = chosen_format(fmt, as_json)
    needs_file(chosen, output)
    book = load_book(rulebook)
    instruments = sorted(book.instruments.values(), key=lambda i: (i.made.instant, i.id))
    if chosen == Fmt.json or (chosen == Fmt.table and output is not None):
        rows = instrument_summaries(book)
        document = {"rulebook_version": book.version, "bundle": bundle_of(book), "instruments": rows}
        emit_text(dumps(document) + "\n", output)
        return
    if chosen != Fmt.table:
        _rows_out(chosen, instrument_summaries(book), RULE_COLUMNS, output)
        return
    bundle = f" (bundle {bundle_of(book)})" if bundle_of(book) else ""
    table = Table(title=f"Rulebook {book.version}{bundle}: {len(instruments)} instruments", title_justify="left")
    for name in ("made", "id", "kind", "instrument", "items"):
        table.add_column(name, overflow="fold")
    for i in instruments:
        count = len(i.prohibitions) + len(i.exceptions) + len(i.changes) + len(i.authorizations)
        made = iso(i.made.instant) if not i.made.date_only else f"{i.made.date.isoformat()} ({i.made.zone})"
        table.add_row(f"{i.made.event} {made}", i.id, i.kind, i.short_title, str(count))
    out.print(table)


@rules_app.command("show")
def rules_show(
    item_id: Annotated[
        str, typer.Argument(metavar="ID", help="An instrument id or the id of an item inside one.", show_default=False)
    ],
    fmt: Annotated[
        ItemFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = ItemFormat.table,
    as_json: JsonAlias = False,
    output: OutputOption = None,
    rulebook: RulebookOption = None,
) -> None:
    """One instrument, or one prohibition, exception or change, with its citation."""
    from appban.rulebook.views import item_view

    chosen = chosen_format(fmt, as_json)
    book = load_book(rulebook)
    data = item_view(book, item_id)
    if data is None:
        fail(f"no instrument or item {item_id!r} (see `appban rules list`)")
    if chosen == Fmt.json or output is not None:
        emit_text(dumps(_with_instants(data)) + "\n", output)
        return
    import yaml

    out.print(Panel(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100).rstrip(), title=item_id))


def _with_instants(value: Any) -> Any:
    """Each date, time and zone the rulebook writes (`made`, `effective`, a reading) with the UTC instant it
    stands for beside it, as `instant` in ISO 8601 with a Z: what machine output gives for every instant."""
    from appban.rulebook.schema import Clock

    if isinstance(value, list):
        return [_with_instants(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: _with_instants(item) for key, item in value.items()}
    if {"date", "zone"} <= out.keys() and "instant" not in out:
        clock = Clock.model_validate({key: out[key] for key in ("date", "time", "zone") if key in out})
        out["instant"] = clock.instant
    return out


@rules_app.command("uncertain")
def rules_uncertain(
    fmt: Annotated[
        RowsFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = RowsFormat.table,
    as_json: JsonAlias = False,
    output: OutputOption = None,
    rulebook: RulebookOption = None,
) -> None:
    """Every fact the rulebook marks as not confirmed by a primary source."""
    chosen = chosen_format(fmt, as_json)
    needs_file(chosen, output)
    book = load_book(rulebook)
    rows = book.uncertainties()
    items = [{"instrument": i, "item": k, "uncertain": t} for i, k, t in rows]
    if chosen == Fmt.json or (chosen == Fmt.table and output is not None):
        emit_text(dumps({"rulebook_version": book.version, "uncertain": items}) + "\n", output)
        return
    if chosen != Fmt.table:
        _rows_out(chosen, items, UNCERTAIN_COLUMNS, output)
        return
    table = Table(title=f"{len(rows)} facts marked uncertain", title_justify="left")
    for name in ("instrument", "item", "what is not confirmed"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out.print(table)


@rules_app.command("validate")
def rules_validate(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH", help="A rulebook directory, or one instrument file to check against it.", show_default=False
        ),
    ],
    fmt: Annotated[
        ItemFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = ItemFormat.table,
    as_json: JsonAlias = False,
    rulebook: RulebookOption = None,
) -> None:
    """Validate a rulebook directory, or one new instrument file against the rest of the law.

    Exit code 0 when valid, 2 with every problem (file:line: field: message) when not.
    """
    from appban.rulebook.loader import RulebookError, load_rulebook

    chosen = chosen_format(fmt, as_json)
    try:
        if path.is_dir():
            book = load_rulebook(path)
        elif path.is_file():
            book = load_rulebook(rulebook, extra=[path])
        else:
            fail(f"{path}: no such file or directory")
    except RulebookError as exc:
        if chosen == Fmt.json:
            problems = [vars(problem) for problem in exc.problems]
            print(dumps({"valid": False, "problems": problems}))
        fail(f"{len(exc.problems)} problem(s):\n{exc}")
    if chosen == Fmt.json:
        print(dumps({"valid": True, "instruments": len(book.instruments), "rulebook_version": book.version}))
        return
    out.print(f"[green]valid[/green]: {len(book.instruments)} instruments, rulebook {book.version}")

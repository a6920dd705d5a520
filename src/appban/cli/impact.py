"""`appban audit impact --rules B`: which recorded answers another rulebook would change (appban.store.impact)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from appban.cli.audit import DbOption, _instant, _store, audit_app
from appban.cli.common import OutputOption, TzOption, emit, emit_text, err, fail, out
from appban.cli.conventions import FILE, INSTANT, Fmt, JsonAlias, chosen_format, counted, csv_rows, dumps

if TYPE_CHECKING:
    from appban.store.impact import ImpactReport

CSV_COLUMNS = ["app", "category", "verdict_recorded", "verdict_under_b", "change", "count", "examples"]


class ImpactFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


@audit_app.command("impact")
def impact_command(
    rules: Annotated[
        str,
        typer.Option(
            "--rules",
            metavar=f"{FILE}|DIR|installed|packaged",
            help="The knowledge B to decide under: a bundle file, a knowledge directory, installed or packaged.",
            show_default=False,
        ),
    ],
    db: DbOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar=INSTANT,
            help="Records asked (runs created) at or after this instant.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", metavar=INSTANT, help="Records asked (runs created) before this instant.", show_default=False
        ),
    ] = None,
    examples: Annotated[
        int, typer.Option("--examples", metavar="N", min=0, max=100, help="Examples shown per group (0 to 100).")
    ] = 3,
    fmt: Annotated[ImpactFormat, typer.Option("--format", case_sensitive=False, help="Output format.")] = (
        ImpactFormat.table
    ),
    json_out: JsonAlias = False,
    output: OutputOption = None,
    tz: TzOption = None,
) -> None:
    """Decide every recorded decision and finding again under B and report those whose answer would change,
    by app, category and change, with counts and examples.

    Exit code 0 when every record was decided again, 1 when some could not be (counted by reason in the
    report), 2 when B or the store cannot be read.
    """
    from appban.store.impact import ImpactError, impact, rules_from

    chosen = chosen_format(fmt, json_out)
    first = _instant(since, "--since", tz)
    last = _instant(until, "--until", tz)
    if first is not None and last is not None and last <= first:
        fail("--until must be later than --since")
    try:
        with rules_from(rules) as (book, label), _store(db) as store:
            report = impact(store, book, knowledge=label, since=first, until=last, examples=examples)
    except ImpactError as exc:
        fail(f"--rules {exc}")
    if chosen == Fmt.json:
        emit_text(dumps(report.to_json_dict()) + "\n", output)
    elif chosen == Fmt.csv:
        emit(lambda stream: stream.write(csv_rows(_csv(report), CSV_COLUMNS)), output)
    elif chosen == Fmt.markdown:
        emit_text(_markdown(report), output)
    elif output is not None:
        emit_text(dumps(report.to_json_dict()) + "\n", output)
    else:
        _print(report)
    if report.not_redecided:
        raise typer.Exit(1)


def _csv(report: ImpactReport) -> list[dict[str, Any]]:
    return [
        {
            "app": group.app,
            "category": group.category,
            "verdict_recorded": group.change.get("verdict", (None, None))[0],
            "verdict_under_b": group.change.get("verdict", (None, None))[1],
            "change": group.describe(),
            "count": group.count,
            "examples": [example["id"] for example in group.examples],
        }
        for group in report.sorted_groups()
    ]


def _facts(report: ImpactReport) -> dict[str, object]:
    return {
        "B": f"{report.knowledge} (rulebook {report.rulebook_version})",
        "records read": ", ".join(f"{counted(n, name[:-1])}" for name, n in sorted(report.records.items())) or "none",
        "answers decided again": report.answers,
        "would change": report.changed,
        "not decided again": sum(report.not_redecided.values()),
    }


def _markdown(report: ImpactReport) -> str:
    from appban.report import markdown as md

    rows = [
        (
            g.app,
            g.category,
            g.describe(),
            g.count,
            ", ".join(f"{e['id']} ({e['at']}, {e['where']})" for e in g.examples),
        )
        for g in report.sorted_groups()
    ]
    sections = [("", md.facts(_facts(report)))]
    sections.append(("Changes", md.table(["app", "category", "change", "count", "examples"], rows) if rows else
                     "No recorded answer would change."))  # fmt: skip
    if report.not_redecided:
        reasons = md.table(["reason", "records"], report.not_redecided.most_common())
        sections.append(("Not decided again", reasons))
    return md.document("appban audit impact", sections)


def _print(report: ImpactReport) -> None:
    facts = _facts(report)
    for name, value in facts.items():
        out.print(f"{name}: {escape(str(value))}")
    if not report.groups:
        out.print("No recorded answer would change.")
    else:
        table = Table("app", "category", "change", "count", "examples (id, instant, place)")
        for group in report.sorted_groups():
            shown = "\n".join(f"{e['id']} {e['at']} {e['where']}" for e in group.examples)
            table.add_row(
                escape(group.app), group.category, escape(group.describe()), f"{group.count:,}", escape(shown)
            )
        out.print(table)
    for reason, count in report.not_redecided.most_common():
        err.print(f"not decided again: {counted(count, 'record')}: {escape(reason)}")
    for reason, count in report.skipped.most_common():
        out.print(f"set aside: {counted(count, 'record')}: {escape(reason)}")

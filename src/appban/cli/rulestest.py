"""`appban rules test [CASES.yaml] [--rules A]`: ask a knowledge root questions whose answers are known
(appban.knowledge.cases), one line per case, like `opa test`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from appban.cli.apps import rules_app
from appban.cli.common import OutputOption, emit_text, fail, out
from appban.cli.conventions import FILE, Fmt, JsonAlias, chosen_format, counted, dumps

if TYPE_CHECKING:
    from appban.knowledge.cases import CaseReport, CaseResult


class TestFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


@rules_app.command("test")
def rules_test(
    cases: Annotated[
        Path | None,
        typer.Argument(
            metavar="CASES.yaml",
            help="A cases file (default: the cases the knowledge carries).",
            show_default=False,
        ),
    ] = None,
    rules: Annotated[
        str,
        typer.Option(
            "--rules",
            metavar=f"{FILE}|DIR|installed|packaged",
            help="The knowledge to ask: a bundle file, a knowledge directory, installed (the one in force) or "
            "packaged.",
        ),
    ] = "installed",
    fmt: Annotated[TestFormat, typer.Option("--format", case_sensitive=False, help="Output format.")] = (
        TestFormat.table
    ),
    as_json: JsonAlias = False,
    output: OutputOption = None,
) -> None:
    """Ask the rulebook questions whose answers are known, and say which it answers otherwise.

    Exit code 0 when every case passes, 1 when any fails, 2 when the cases file or the knowledge cannot
    be read.
    """
    from appban.knowledge.cases import CasesError, RulebookError, run_cases
    from appban.knowledge.layout import resolve_knowledge

    chosen = chosen_format(fmt, as_json)
    try:
        with resolve_knowledge(rules) as root:
            report = run_cases(root, cases)
    except CasesError as exc:
        fail(f"{len(exc.problems)} problem(s) in the cases file:\n{exc}")
    except RulebookError as exc:
        fail(f"--rules {rules}: the rulebook cannot be read:\n{exc}")
    except (OSError, ValueError) as exc:  # resolve_knowledge's message starts with the argument it names
        fail(str(exc))
    if chosen == Fmt.json:
        emit_text(dumps(report.to_json_dict()) + "\n", output)
    elif chosen == Fmt.markdown:
        emit_text(_markdown(report), output)
    elif output is not None:
        emit_text(_plain(report), output)
    else:
        for result in report.results:
            mark = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
            out.print(f"{mark} {escape(result.name)}{escape(_why(result))}", soft_wrap=True)
        out.print(_summary(report))
    if report.failed:
        raise typer.Exit(1)


def _why(result: CaseResult) -> str:
    if result.error is not None:
        return f": cannot be asked: {result.error}"
    return f": {'; '.join(result.differences)}" if result.differences else ""


def _summary(report: CaseReport) -> str:
    failed = len(report.failed)
    head = f"{counted(len(report.results), 'case')}: {len(report.passed)} passed, {failed} failed"
    return f"{head} (rulebook {report.rulebook_version}, {report.cases_file})"


def _plain(report: CaseReport) -> str:
    lines = [f"{'PASS' if r.passed else 'FAIL'} {r.name}{_why(r)}" for r in report.results]
    return "\n".join([*lines, _summary(report)]) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(report: CaseReport) -> str:
    lines = [
        f"## appban rules test: {len(report.passed)} of {counted(len(report.results), 'case')} passed",
        "",
        f"Rulebook `{report.rulebook_version}`, cases `{_cell(report.cases_file)}`.",
        "",
        "| result | case | question | expected | got |",
        "|---|---|---|---|---|",
    ]
    for r in report.results:
        question = f"{r.question['app']} · {r.question['transaction']} · {r.question['where']} · {r.question['at']}"
        expected = ", ".join(f"{key} {value}" for key, value in r.expected.items() if not isinstance(value, list))
        got = r.error if r.error is not None else "; ".join(r.differences) or r.got.get("verdict", "")
        result = "PASS" if r.passed else "**FAIL**"
        lines.append(f"| {result} | {_cell(r.name)} | {_cell(question)} | {_cell(expected)} | {_cell(str(got))} |")
    return "\n".join(lines) + "\n"

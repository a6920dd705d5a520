"""`appban rules diff A B`: the instruments and list entries that differ between two knowledge roots
(appban.knowledge.changes), and the decisions that flip between their rulebooks (appban.knowledge.flips)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.markup import escape
from rich.table import Table

from appban.cli.apps import rules_app
from appban.cli.common import OutputOption, emit, emit_text, fail, out
from appban.cli.conventions import (
    APP,
    CATEGORIES,
    CATEGORY,
    FILE,
    PLACE,
    Fmt,
    JsonAlias,
    app_subject,
    category_name,
    chosen_format,
    counted,
    csv_rows,
    dumps,
    needs_file,
    parquet_rows,
)

if TYPE_CHECKING:
    from appban.knowledge.changes import Changes
    from appban.knowledge.flips import Flip
    from appban.knowledge.layout import KnowledgeRoot
    from appban.rulebook.loader import Rulebook

KNOWLEDGE = f"{FILE}|DIR|installed|packaged"
CHANGE_COLUMNS = ["part", "section", "key", "change", "fields", "kinds", "items"]


class DiffFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"
    markdown = "markdown"


class DiffRows(StrEnum):
    flips = "flips"
    changes = "changes"


@rules_app.command("diff")
def rules_diff(
    a: Annotated[
        str,
        typer.Argument(
            metavar="A",
            help=f"The knowledge before ({KNOWLEDGE}): a bundle file, a knowledge directory, installed (the one "
            "in force) or packaged.",
            show_default=False,
        ),
    ],
    b: Annotated[
        str,
        typer.Argument(metavar="B", help=f"The knowledge after ({KNOWLEDGE}).", show_default=False),
    ],
    apps: Annotated[
        list[str] | None,
        typer.Option("--app", metavar=APP, help="Only the decisions about this app (repeatable).", show_default=False),
    ] = None,
    categories: Annotated[
        list[str] | None,
        typer.Option(
            "--category",
            metavar=CATEGORY,
            help=f"Only this transaction category (repeatable; one of: {CATEGORIES}).",
            show_default=False,
        ),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            metavar=PLACE,
            help="Only the place group this ISO 3166 code falls in (e.g. US, US-MT, IN).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[DiffFormat, typer.Option("--format", case_sensitive=False, help="Output format.")] = (
        DiffFormat.table
    ),
    rows: Annotated[
        DiffRows,
        typer.Option(
            "--rows", case_sensitive=False, help="What a csv or parquet output lists: the flips, or the changes."
        ),
    ] = DiffRows.flips,
    fail_on_change: Annotated[
        bool,
        typer.Option("--fail-on-change", help="Exit 1 when any entry differs or any decision flips."),
    ] = False,
    as_json: JsonAlias = False,
    output: OutputOption = None,
) -> None:
    """What differs from knowledge A to knowledge B: instruments, subjects, places, facts and list entries
    added, changed or removed, and the stretches of time in which a decision (verdict, as written or
    enforcement) for an app, category and place group flips. --app, --category and --where narrow the flips.

    Exit code 0 (with --fail-on-change, 1 when anything differs), 2 when A or B cannot be read.
    """
    from appban.knowledge.changes import changes_between
    from appban.knowledge.flips import flips, group_of, place_groups
    from appban.rulebook.loader import RulebookError, load_rulebook

    chosen = chosen_format(fmt, as_json)
    needs_file(chosen, output)
    with ExitStack() as stack:
        root_a = stack.enter_context(_opened(a, "A"))
        root_b = stack.enter_context(_opened(b, "B"))
        books: list[Rulebook] = []
        for name, arg, root in (("A", a, root_a), ("B", b, root_b)):
            try:
                books.append(load_rulebook(root.path("rulebook")))
            except RulebookError as exc:
                fail(f"{name} ({arg}): the rulebook cannot be read:\n{exc}")
        book_a, book_b = books
        try:
            found = changes_between(book_a, book_b, root_a, root_b)
        except RulebookError as exc:
            fail(f"a list of A ({a}) or B ({b}) cannot be read:\n{exc}")
    subjects = [_subject(book_a, book_b, value) for value in apps] if apps else None
    cats = [_category(value) for value in categories] if categories else None
    groups = place_groups(book_a, book_b)
    if where is not None:
        group = group_of(groups, book_a, book_b, _place(where))
        groups = [group] if group is not None else []
    changed = [entry.key for entry in found.instruments]
    flipped = flips(book_a, book_b, apps=subjects, categories=cats, places=groups, changed_instruments=changed)

    document = _document(a, b, found, flipped, subjects, cats, where)
    if chosen == Fmt.json:
        emit_text(dumps(document) + "\n", output)
    elif chosen in (Fmt.csv, Fmt.parquet):
        table, columns, instants = _rows(rows, found, flipped)
        writer = csv_rows(table, columns) if chosen == Fmt.csv else None
        emit(
            (lambda stream: stream.write(writer)) if writer is not None else parquet_rows(table, columns, instants),
            output,
        )
    elif chosen == Fmt.markdown:
        emit_text(_markdown(a, b, found, flipped), output)
    elif output is not None:
        emit_text(dumps(document) + "\n", output)
    else:
        _print(a, b, found, flipped)
    if fail_on_change and (not found.empty or flipped):
        raise typer.Exit(1)


@contextmanager
def _opened(arg: str, name: str) -> Iterator[KnowledgeRoot]:
    """The knowledge root an argument names; one that cannot be opened ends the command naming it."""
    stack = ExitStack()
    try:
        root = stack.enter_context(_resolved(arg))
    except (OSError, ValueError) as exc:  # a bundle that cannot be opened or verified, or no such directory
        message = str(exc)
        fail(f"{name}: {message}" if message.startswith(arg) else f"{name} ({arg}): {message}")
    with stack:
        yield root


def _resolved(arg: str) -> AbstractContextManager[KnowledgeRoot]:
    """Through the shared `resolve_knowledge` (bundle files too) once it exists; until then directories,
    `installed` (the root in force) and `packaged`."""
    from appban.knowledge import layout

    shared = getattr(layout, "resolve_knowledge", None)
    if shared is not None:
        return cast("AbstractContextManager[KnowledgeRoot]", shared(arg))
    if arg == "packaged":
        return nullcontext(layout.PACKAGED)
    if arg == "installed":
        return nullcontext(layout.active_root())
    if Path(arg).is_dir():
        return nullcontext(layout.KnowledgeRoot(Path(arg)))
    raise ValueError("not a knowledge directory, `installed` or `packaged`")


def _subject(a: Rulebook, b: Rulebook, value: str) -> str:
    """`--app` as an id, name or alias in A or B, else a store identifier the registry knows (conventions)."""
    subject = a.subject_id(value) or b.subject_id(value)
    return subject if subject is not None else app_subject(b, value)


def _category(value: str) -> Any:
    from appban.vocabulary import Category

    name = category_name(value)
    if name not in Category._value2member_map_:
        fail(f"--category: unknown category {value!r} (one of: {CATEGORIES}; any case, - or _)")
    return Category(name)


def _place(value: str) -> str:
    from appban.engine.decide import DecisionInputError, resolve_place

    try:
        return resolve_place(value)
    except DecisionInputError as exc:
        fail(f"--where: {str(exc).removeprefix('where: ')}")


def _document(
    a: str,
    b: str,
    found: Changes,
    flipped: list[Flip],
    apps: list[str] | None,
    cats: list[Any] | None,
    where: str | None,
) -> dict[str, Any]:
    return {
        "a": {"knowledge": a, "rulebook_version": found.rulebook_a},
        "b": {"knowledge": b, "rulebook_version": found.rulebook_b},
        "filters": {"apps": apps, "categories": [c.value for c in cats] if cats else None, "where": where},
        "changes": found.to_json_dict(),
        "flips": [flip.to_json_dict() for flip in flipped],
    }


def _rows(what: DiffRows, found: Changes, flipped: list[Flip]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    from appban.knowledge.flips import ROW_COLUMNS

    if what == DiffRows.flips:
        return [flip.row() for flip in flipped], ROW_COLUMNS, ["from", "until"]
    table = [
        {
            "part": entry.part,
            "section": entry.section,
            "key": entry.key,
            "change": entry.change,
            "fields": list(entry.fields),
            "kinds": list(entry.kinds),
            "items": [f"{item.section}/{item.id} {item.change}" for item in entry.items],
        }
        for entry in found.entries
    ]
    return table, CHANGE_COLUMNS, []


def _when(flip: Flip) -> tuple[str, str]:
    from appban.engine.instants import iso

    return (
        iso(flip.start) if flip.start is not None else "(beginning)",
        iso(flip.end) if flip.end is not None else "(open)",
    )


def _headline(a: str, b: str, found: Changes, flipped: list[Flip]) -> dict[str, object]:
    counts = found.counts()
    return {
        "A": f"{a} (rulebook {found.rulebook_a})",
        "B": f"{b} (rulebook {found.rulebook_b})",
        "entries": f"{counts['added']} added, {counts['changed']} changed, {counts['removed']} removed",
        "decisions that flip": counted(len(flipped), "flip") if flipped else "none",
    }


def _print(a: str, b: str, found: Changes, flipped: list[Flip]) -> None:
    for name, value in _headline(a, b, found, flipped).items():
        out.print(f"{name}: {escape(str(value))}")
    if found.empty:
        out.print("No instrument or list entry differs.")
    else:
        table = Table("part", "section", "key", "change", "what")
        for entry in found.entries:
            table.add_row(escape(entry.part), entry.section, escape(entry.key), entry.change, escape(entry.describe()))
        out.print(table)
    if not flipped:
        out.print("No decision flips.")
        return
    table = Table("app", "category", "place", "from", "until", "A", "B", "instruments")
    for flip in flipped:
        start, end = _when(flip)
        table.add_row(
            escape(flip.app),
            flip.category.value,
            escape(flip.place_group),
            start,
            end,
            escape(str(flip.a)),
            escape(str(flip.b)),
            escape(", ".join(flip.instruments)),
        )
    out.print(table)


def _markdown(a: str, b: str, found: Changes, flipped: list[Flip]) -> str:
    """A pull-request comment: the headline, the entries that differ, and the flips with the apps that share
    one stretch and answer pair in one row (a change to a company's law flips each of its apps alike)."""
    from appban.report import markdown as md

    sections = [("", md.facts(_headline(a, b, found, flipped)))]
    if found.empty:
        sections.append(("Instruments and list entries", "No instrument or list entry differs."))
    else:
        rows = [(e.part, e.section, e.key, e.change, e.describe()) for e in found.entries]
        sections.append(("Instruments and list entries", md.table(["part", "section", "key", "change", "what"], rows)))
    if not flipped:
        sections.append(("Decisions that flip", "No decision flips."))
    else:
        grouped: dict[tuple[Any, ...], list[str]] = {}
        for flip in flipped:
            key = (flip.category.value, flip.place_group, *_when(flip), str(flip.a), str(flip.b), flip.instruments)
            apps = grouped.setdefault(key, [])
            if flip.app not in apps:
                apps.append(flip.app)
        rows2 = [(", ".join(apps), *key[:6], ", ".join(key[6])) for key, apps in grouped.items()]
        headers = ["apps", "category", "place", "from", "until", "A", "B", "instruments"]
        sections.append(("Decisions that flip", md.table(headers, rows2)))
    return md.document("appban rules diff", sections)

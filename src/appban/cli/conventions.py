"""The conventions every command follows, in one place (README, "Conventions of every command").

- `--at` takes an ISO 8601 instant or `now`, and is now when not given; the instant used is stated in the output.
- `--app` takes an app id, name or alias, or a store identifier the registry knows (an Android package, an iOS
  bundle ID, an App Store ID); categories are case-insensitive and take hyphens (`App-Store-Distribution`).
- An error names the flag that fixes it (`--at: ... use --tz ZONE`).
- `--format` chooses the output; `--json` is `--format json`. Machine output (JSON, CSV) writes instants as
  ISO 8601 in UTC with a `Z`, confidences to two decimals, and no key ends in `_`.

Only the standard library, typer and appban's light modules are imported here at start-up (tests/test_startup.py).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from appban.cli.common import CLOSED_PIPE, CommandGroup, fail, quiet_stdout
from appban.vocabulary import Category

if TYPE_CHECKING:
    import pyarrow as pa

    from appban.rulebook.loader import Rulebook

NOW = "now"

# What the value of each option is, in --help: a name, never a Python type (`<str>`, `<path>`).
INSTANT = "INSTANT"
PLACE = "PLACE"
APP = "APP"
CATEGORY = "CATEGORY"
ZONE = "ZONE"
FILE = "FILE"

CATEGORIES = ", ".join(c.value for c in Category)


class Fmt(StrEnum):
    """Every output format any command writes; each command offers the ones that fit its output."""

    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"
    markdown = "markdown"
    html = "html"
    sarif = "sarif"
    cyclonedx = "cyclonedx"


# --- instants ------------------------------------------------------------------------------------------------


def now() -> dt.datetime:
    """This instant in UTC, to the second (the precision every output writes)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def instant_option(value: str | None, tz: str | None, flag: str = "--at") -> dt.datetime:
    """The instant `flag` names: `now` (any case) or nothing is this instant; anything else is ISO 8601, with
    an offset or a zone given by --tz. A bad value ends the command (exit 2) naming the flag that fixes it."""
    from appban.engine.instants import InstantError, parse_instant

    if value is None or value.strip().lower() == NOW:
        return now()
    try:
        return parse_instant(value, tz)
    except InstantError as exc:
        fail(instant_error(flag, value, tz, exc))


def instant_error(flag: str, value: str, tz: str | None, exc: Exception) -> str:
    """The message for an instant that could not be read, naming the flag to change."""
    if _has_no_offset(value):
        if tz is None:
            return (
                f"{flag}: {value!r} has no UTC offset; add one (e.g. -05:00 or Z) or use --tz ZONE "
                "(e.g. --tz America/New_York)"
            )
        return f"--tz: {exc}"
    # Every instant flag also takes `now`: say so where the value was neither.
    return f"{flag}: {str(exc).replace('is not an ISO 8601 instant', 'is neither now nor an ISO 8601 instant')}"


def _has_no_offset(value: str) -> bool:
    try:
        stamp = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return False
    return stamp.tzinfo is None


def counted(number: int, noun: str) -> str:
    """`1 finding`, `2 findings`, `1,000 decisions`: a count with its noun in the number it takes."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def iso_z(instant: dt.datetime) -> str:
    """An aware instant as ISO 8601 in UTC with a Z; seconds, or the fraction when there is one."""
    text = instant.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


# --- apps, categories, places --------------------------------------------------------------------------------

_FIELD_FLAGS = {"app": "--app", "transaction": "--transaction", "where": "--where", "at": "--at", "facts": "--fact"}


def flag_message(exc: Exception) -> str:
    """A DecisionInputError's message with its field written as the flag that sets it (`--where: ...`)."""
    field = getattr(exc, "field", None)
    text = str(exc)
    if not isinstance(field, str):
        return text
    flag = _FIELD_FLAGS.get(field)
    if flag is None or not text.startswith(f"{field}: "):
        return text
    return f"{flag}: {text[len(field) + 2 :]}"


def app_subject(book: Rulebook, value: str) -> str:
    """The rulebook's subject id for `--app`: an id, name or alias, else a store identifier in the registry."""
    subject = book.subject_id(value)
    if subject is not None:
        return subject
    found = _registry_subject(book, value)
    if found is not None:
        return found
    known = ", ".join(sorted(book.subjects.subjects))
    fail(
        f"--app: unknown app {value!r} (known apps: {known}; names, aliases, Android packages, iOS bundle IDs and "
        "App Store IDs also work)"
    )


def _registry_subject(book: Rulebook, value: str) -> str | None:
    """Which app of the registry has `value` as an Android package, iOS bundle ID or App Store ID."""
    wanted = value.strip().casefold().removeprefix("id")
    if not wanted or len(wanted) > 255:
        return None
    from appban.identity.registry import ID_FIELDS, load_registry  # only on a miss: it parses the registry

    registry = load_registry(book)
    for app_id, identity in registry.apps.items():
        for field in ID_FIELDS:
            if any(item.value.casefold().removeprefix("id") == wanted for item in getattr(identity, field)):
                return app_id if app_id in book.subjects.subjects else None
    return None


def category_name(value: str) -> str:
    """`App-Store-Distribution`, `app store distribution` and `app_store_distribution` are one category."""
    return "_".join(value.strip().lower().replace("-", " ").replace("_", " ").split())


def category_option(value: str | None) -> str | None:
    """typer callback of `--transaction`: the category's own name, or exit 2 naming the flag."""
    if value is None:
        return None
    name = category_name(value)
    if name not in Category._value2member_map_:
        fail(f"--transaction: unknown category {value!r} (one of: {CATEGORIES}; any case, - or _)")
    return name


def complete_categories(incomplete: str) -> list[str]:
    return [c.value for c in Category if c.value.startswith(category_name(incomplete) if incomplete else "")]


# --- formats --------------------------------------------------------------------------------------------------

JsonAlias = Annotated[bool, typer.Option("--json", help="Same as --format json.")]


def chosen_format(fmt: StrEnum, as_json: bool) -> str:
    """The format asked for: `--json` is `--format json`, and the two may not disagree."""
    if as_json and fmt.value not in (Fmt.table, Fmt.json):
        fail(f"--json means --format json, not --format {fmt.value}: give one of them")
    return Fmt.json.value if as_json else fmt.value


def needs_file(fmt: str, output: object) -> None:
    """Parquet is binary: written to a file (or device), never onto a terminal."""
    if fmt == Fmt.parquet and output is None:
        fail("--format parquet needs -o FILE")


def machine(value: Any) -> Any:
    """`value` as every machine output writes it: instants as ISO 8601 with a Z (a naive one as it is, with a
    T), dates as ISO dates, confidences to two decimals, and no key ending in `_` (`from_` is `from`)."""
    if isinstance(value, Mapping):
        return {_key(key): _confidence(key, machine(item)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [machine(item) for item in value]
    if isinstance(value, dt.datetime):
        return iso_z(value) if value.tzinfo is not None else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _key(key: object) -> object:
    return key.rstrip("_") or key if isinstance(key, str) else key


def _confidence(key: object, value: Any) -> Any:
    if key == "confidence" and isinstance(value, float) and math.isfinite(value):
        return round(value, 2)
    return value


def dumps(document: Any) -> str:
    """One JSON document, by the rule of `machine`."""
    import json

    return json.dumps(machine(document), ensure_ascii=False, indent=2, default=str)


def csv_rows(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> bytes:
    """Rows of plain values as CSV, by the rule of `machine` (lists joined with ";")."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        plain = machine(dict(row))
        writer.writerow([_cell(plain.get(name)) for name in columns])
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ";".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parquet_rows(
    rows: Sequence[Mapping[str, Any]], columns: list[str], instants: Sequence[str] = ()
) -> Callable[[Any], None]:
    """A writer of rows of plain values as a Parquet table (lists joined with ";", as in CSV). The `instants`
    columns (ISO 8601 text with an offset, or aware datetimes) are written as UTC timestamps, which Parquet
    readers compare and filter as instants, not as text."""

    def write(stream: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        plain = [machine(dict(row)) for row in rows]
        arrays = {}
        for name in columns:
            if name in instants:
                stamps = [None if row.get(name) is None else _utc(row[name]) for row in plain]
                arrays[name] = pa.array(stamps, pa.timestamp("s", tz="UTC"))
            elif plain:
                arrays[name] = pa.array([_parquet_cell(row.get(name)) for row in plain])
            else:
                arrays[name] = pa.array([], pa.string())
        pq.write_table(pa.table(arrays), stream)

    return write


def from_bundle(bundle: str | None) -> str:
    """What follows the rulebook version in a footer or header: ", bundle VERSION sha256:…" for knowledge from
    an installed bundle, nothing for the package's own data."""
    return f", bundle {bundle}" if bundle else ""


def with_bundle(table: pa.Table, bundle: str | None) -> pa.Table:
    """`table` with `appban.bundle` in its schema metadata beside `appban.rulebook_version`, for Parquet files.
    Left out for the package's own data: a metadata value cannot be null."""
    if bundle is None:
        return table
    return table.replace_schema_metadata({**(table.schema.metadata or {}), b"appban.bundle": bundle.encode()})


def _utc(value: Any) -> dt.datetime:
    """An instant a command wrote as ISO 8601 with an offset (`machine` gives `Z`), as an aware datetime."""
    stamp = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(stamp, dt.datetime) or stamp.tzinfo is None:
        raise ValueError(f"{value!r} is not an instant with an offset")
    return stamp.astimezone(dt.UTC)


def _parquet_cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ";".join(str(item) for item in value)
    return value


# --- help -----------------------------------------------------------------------------------------------------


def name_values(command: Any) -> None:
    """Flags show no value in --help (typer would print `<bool>`), in `command` and every command below it."""
    options = [param for param in getattr(command, "params", []) if isinstance(param, TyperOption)]
    if isinstance(command, TyperCommand | TyperGroup):
        helper = command.get_help_option(typer.Context(command))  # made once and kept by the command
        if helper is not None:
            options.append(helper)
    for option in options:
        if option.is_flag and option.metavar is None:
            option.metavar = ""
    for argument in getattr(command, "params", []):
        if isinstance(argument, TyperArgument) and argument.metavar is not None:
            # The argument's column already shows its value name; typer's type column would add `<path>`. That
            # column is the type's own metavar, so this argument gets a copy of its type that names none.
            argument.type = copy.copy(argument.type)
            argument.type.get_metavar = _no_type  # type: ignore[method-assign]
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            name_values(sub)


def _no_type(*args: Any, **kwargs: Any) -> str:
    return ""


class Root(CommandGroup):
    """The root command: its help, and every command's, names values rather than Python types; a shell asking
    for completions (`_APPBAN_COMPLETE=...`) is answered in typer's protocol, which its scripts speak."""

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:
        name_values(self)
        if any(name.startswith("_") and name.endswith("_COMPLETE") for name in os.environ):
            from typer._completion_classes import completion_init

            completion_init()
        if "--help" in (sys.argv[1:] if args is None else args):
            _help_pipe_closes_quietly()
        try:
            return super().main(args, *rest, **kwargs)
        except BrokenPipeError:
            # The root's own --help is printed while its arguments are parsed, before invoke() could catch this.
            quiet_stdout()
            sys.exit(CLOSED_PIPE)


def _help_pipe_closes_quietly() -> None:
    """typer prints --help on a rich console of its own, which exits 1 when the reader has gone (`appban --help
    | head -1`); the consoles it makes raise BrokenPipeError instead, which ends the command with 141 as any
    other closed pipe. typer.rich_utils is imported only for a help (it costs tens of milliseconds)."""
    from typer import rich_utils

    make = rich_utils._get_rich_console
    if getattr(make, "closes_quietly", False):
        return

    def console(stderr: bool = False) -> Any:
        made = make(stderr=stderr)
        made.on_broken_pipe = _raise_broken_pipe  # type: ignore[method-assign]  # this console only
        return made

    console.closes_quietly = True  # type: ignore[attr-defined]
    rich_utils._get_rich_console = console


def _raise_broken_pipe() -> None:
    raise BrokenPipeError


# --- shell completion -------------------------------------------------------------------------------------------

SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _install_completion(ctx: typer.Context, param: Any, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from typer import completion
    from typer._completion_classes import completion_init

    completion_init()
    completion.install_callback(ctx, param, True)  # typer's own: detects the shell, writes its start-up file


def _show_completion(ctx: typer.Context, param: Any, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    if value not in SHELLS:
        fail(f"--show-completion: {value!r} is not a shell this knows (one of: {', '.join(SHELLS)})")
    from typer import completion
    from typer._completion_classes import completion_init

    completion_init()
    completion.show_callback(ctx, param, value)  # typer's own: prints the script for that shell


InstallCompletion = Annotated[
    bool,
    typer.Option(
        "--install-completion",
        callback=_install_completion,
        expose_value=False,
        is_eager=True,
        help="Install completion for the current shell and exit.",
    ),
]
ShowCompletion = Annotated[
    str | None,
    typer.Option(
        "--show-completion",
        metavar="SHELL",
        callback=_show_completion,
        expose_value=False,
        is_eager=True,
        autocompletion=lambda: list(SHELLS),
        help=f"Print the completion script for SHELL ({'|'.join(SHELLS)}) and exit.",
    ),
]

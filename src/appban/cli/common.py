"""What every command shares: consoles, common options, errors and the rulebook."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from appban.rulebook.loader import Rulebook, RulebookError, load_rulebook
from appban.tables import write_atomically
from appban.vocabulary import Verdict

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
OutputOption = Annotated[Path | None, typer.Option("-o", "--output", help="Write here instead of standard output.")]


def emit(write: Callable[[Path], object], output: Path | None) -> None:
    """`write(path)` renders the result into a file: into `output` atomically, else onto standard output."""
    if output is not None:
        write_atomically(output, write)
        return
    # The writers take a path (pyarrow's CSV writer, HTML): render into a scratch file, then copy it out.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out"
        write(path)
        sys.stdout.write(path.read_text(encoding="utf-8"))


def emit_text(text: str, output: Path | None) -> None:
    """`text` into `output` atomically, else onto standard output."""
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomically(output, lambda p: p.write_text(text, encoding="utf-8"))


def fail(message: str) -> NoReturn:
    err.print(Text(f"appban: error: {message}", style="red"))
    raise typer.Exit(2)


def load_book(path: Path | None) -> Rulebook:
    try:
        return load_rulebook(path)
    except RulebookError as exc:
        fail(f"the rulebook is invalid:\n{exc}")


def fact_pairs(pairs: list[str]) -> dict[str, str]:
    facts: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--fact {pair!r}: write KEY=VALUE, e.g. --fact user_to_user_transfer=true")
        facts[key.strip()] = value.strip()
    return facts


def verdict_style(verdict: Verdict) -> str:
    return VERDICT_STYLE[verdict]


@contextmanager
def counting_rows(starting: str, done: str) -> Iterator[Callable[[int], None]]:
    """A transient spinner on standard error; the callable it yields adds rows and shows "<done> N"."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True) as bar:
        task = bar.add_task(starting, total=None)
        seen = [0]

        def advance(rows: int) -> None:
            seen[0] += rows
            bar.update(task, description=f"{done} {seen[0]:,}")

        yield advance

"""What every command shares: consoles, common options, errors and the rulebook."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from appban.cli.given import path as given_path
from appban.outputs import Kind, OutputError, Sink, write_output
from appban.vocabulary import Verdict

if TYPE_CHECKING:
    from appban.rulebook.loader import Rulebook


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich would exit 1 on its own; the command group ends every closed pipe alike (exit 141).
        self.quiet = True
        raise BrokenPipeError


# Piped output (CI logs, files) gets a readable width instead of rich's 80-column default. Emoji codes are left
# as written: a name or path such as ":memory:" is data, and skipping rich's emoji table also shortens start-up.
# Values are styled by what they mean (a verdict's colour), not by rich's guess at numbers and quoted strings,
# whose regular expressions over every cell took a quarter of the time of printing a timeline.
out = _Console(width=None if sys.stdout.isatty() else 150, emoji=False, highlight=False)
err = _Console(stderr=True, width=None if sys.stderr.isatty() else 150, emoji=False, highlight=False)

VERDICT_STYLE = {
    Verdict.PROHIBITED: "bold red",
    Verdict.ENJOINED: "bold yellow",
    Verdict.NOT_YET_EFFECTIVE: "cyan",
    Verdict.REVOKED: "magenta",
    Verdict.NOT_PROHIBITED: "green",
}

RulebookOption = Annotated[
    Path | None,
    typer.Option(
        "--rulebook", metavar="DIR", help="Rulebook directory (default: the packaged one).", show_default=False
    ),
]
TzOption = Annotated[
    str | None,
    typer.Option(
        "--tz", metavar="ZONE", help="Time zone for instants written without an offset (IANA name or -05:00)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object on standard output.")]


def _standard_output(value: Path | None) -> Path | None:
    # `-o -` and `-o /dev/stdout` mean no -o. Opened anew, /dev/stdout would be a link to whatever file the
    # shell redirected to, which the output rule refuses; and it would not share the shell's file offset.
    return None if value is not None and str(value) in {"-", "/dev/stdout"} else value


OutputOption = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        metavar="FILE",
        parser=given_path,  # keeps a URL's text for --engine (appban.cli.given)
        callback=_standard_output,
        help="Write here instead of standard output (- for standard output).",
    ),
]


def emit(write: Sink, output: Path | None) -> Kind:
    """`write(stream)` renders the result: into `output` by the rule of `appban.outputs`, else onto standard
    output. "file" when a regular file now holds it (files beside it then make sense)."""
    if output is None:
        sys.stdout.flush()
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return "stream"
    try:
        return write_output(output, write)
    except OutputError as exc:
        fail(str(exc))


def emit_text(text: str, output: Path | None) -> Kind:
    """`text` into `output` by the rule of `appban.outputs`, else onto standard output."""
    data = text.encode("utf-8")
    return emit(lambda stream: stream.write(data), output)


CLOSED_PIPE = 141  # the exit code when standard output's reader has gone


def fail(message: str) -> NoReturn:
    err.print(Text(f"appban: error: {message}", style="red"))
    raise typer.Exit(2)


class CommandGroup(TyperGroup):
    """The root command. An output that cannot be written, or a library of an extra that is not installed,
    ends any command with exit code 2 and one line on standard error, never a traceback; a reader that stopped
    reading (`| head`) ends it quietly (141)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            try:
                return super().invoke(ctx)
            finally:
                sys.stdout.flush()  # a closed pipe or a full disk shows here, not at interpreter exit
        except OutputError as exc:
            _settle_stdout()
            fail(str(exc))
        except BrokenPipeError:
            quiet_stdout()
            # 128 + SIGPIPE: what a shell reports for `grep ... | head`, so `set -o pipefail` treats appban alike.
            raise typer.Exit(CLOSED_PIPE) from None
        except OSError as exc:
            _settle_stdout()
            fail(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else f"output: {exc}")
        except ImportError as exc:
            # A library of an extra that is not installed (the audit store's SQLAlchemy on a worker installed
            # without `appban[service]`): exit 2 naming the extra. Any other import error stays a traceback.
            from appban.extras import missing_extra

            hint = missing_extra(exc)
            if hint is None:
                raise
            _settle_stdout()
            fail(hint)


def _settle_stdout() -> None:
    try:
        sys.stdout.flush()
    except OSError:
        quiet_stdout()


def quiet_stdout() -> None:
    """What is still buffered for a standard output that cannot take it goes nowhere, silently."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return  # not a real descriptor (a test runner's buffer)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def load_book(path: Path | None) -> Rulebook:
    from appban.rulebook.loader import RulebookError, load_rulebook  # not needed by --help

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
    """A transient spinner on standard error; the callable it yields adds rows and shows "<done> N". Only on a
    terminal: into a log or a pipe a transient display writes nothing useful but a stray newline at its end."""
    if not err.is_terminal:
        yield lambda rows: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True) as bar:
        task = bar.add_task(starting, total=None)
        seen = [0]

        def advance(rows: int) -> None:
            seen[0] += rows
            bar.update(task, description=f"{done} {seen[0]:,}")

        yield advance

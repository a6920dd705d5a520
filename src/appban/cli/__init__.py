"""The `appban` command line.

Exit codes, one rule for every command (README, "Exit codes and outputs"): 0 ran to the end with every
input read, whatever the verdict; 1 ran to the end and wrote its output, but some records could not be
read or a gate was crossed (--fail-on, a replay that differs); 2 did not run to the end (bad usage, an
input it cannot start from, an output that cannot be written). What `-o` does to a file, a device, a FIFO
or a link is `appban.outputs`'s rule.
"""

from __future__ import annotations

from importlib.metadata import version as package_version
from typing import Annotated

import typer

from appban.cli import audit, code, inventory, law, network, payments, serve  # noqa: F401 - importing registers the commands
from appban.cli.apps import app
from appban.rulebook.loader import load_rulebook

__all__ = ["app", "main"]


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

"""The `appban` command line.

Exit codes: 0 whatever the verdict, 1 where a command's own gate says so (row errors, --fail-on), 2 for
bad input (the message names the file, line and field).
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

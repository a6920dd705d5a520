"""The typer applications the command modules attach their commands to."""

from __future__ import annotations

import typer

from appban.cli.conventions import Root

app = typer.Typer(
    cls=Root,
    help="Government orders against specific mobile apps, as time-aware, cited rules.",
    no_args_is_help=True,
    add_completion=False,  # the root's own --install-completion and --show-completion take a SHELL
)
rules_app = typer.Typer(help="List, show and validate the rulebook.", no_args_is_help=True)
screen_app = typer.Typer(help="Screen your own data for covered apps and transactions.", no_args_is_help=True)
export_app = typer.Typer(help="Turn the law at an instant into lists that enforcement systems load.")
app.add_typer(rules_app, name="rules")
app.add_typer(screen_app, name="screen")
app.add_typer(export_app, name="export")

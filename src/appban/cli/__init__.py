"""The `appban` command line.

Exit codes, one rule for every command (README, "Exit codes and outputs"): 0 ran to the end with every
input read, whatever the verdict; 1 ran to the end and wrote its output, but some records could not be
read or a gate was crossed (--fail-on, a replay that differs); 2 did not run to the end (bad usage, an
input it cannot start from, an output that cannot be written). What `-o` does to a file, a device, a FIFO
or a link is `appban.outputs`'s rule.
"""

from __future__ import annotations

import copy
import gc
import sys
from importlib import import_module
from typing import Annotated

import typer
from typer.main import get_command_name
from typer.models import CommandInfo, TyperInfo

from appban.cli import configure
from appban.cli.apps import app as _app
from appban.cli.configure import ConfigOption, NoConfigOption
from appban.cli.conventions import InstallCompletion, ShowCompletion

__all__ = ["app", "main", "narrowed"]

# Importing a command module registers its commands. The modules import what only their commands need inside
# those commands, and `appban NAME` imports only the modules that register NAME (HOMES), so that starting
# `appban` stays quick; tests/test_startup.py holds both to it, and checks HOMES against what each module
# registers. The order is the order in which the full app imports them, so a group lists its commands alike.
COMMAND_MODULES = (
    "audit",
    "impact",
    "code",
    "inventory",
    "law",
    "rulestest",
    "rulesdiff",
    "knowledge",
    "network",
    "payments",
    "serve",
)
HOMES: dict[str, tuple[str, ...]] = {
    "audit": ("audit", "impact"),
    "tokens": ("audit",),
    "scan": ("code",),
    "screen": ("inventory", "network", "payments"),
    "export": ("inventory", "network"),
    "check": ("law",),
    "timeline": ("law",),
    "decide": ("law",),
    "rules": ("law", "rulestest", "rulesdiff", "knowledge"),
    "keys": ("knowledge",),
    "serve": ("serve",),
}


def _register(modules: tuple[str, ...] = COMMAND_MODULES) -> None:
    for module in modules:
        import_module(f"appban.cli.{module}")


def __getattr__(name: str) -> typer.Typer:
    # `from appban.cli import app` gets the app with every command registered (the tests, --help).
    if name != "app":
        raise AttributeError(f"module 'appban.cli' has no attribute {name!r}")
    _register()
    globals()["app"] = _app
    return _app


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version as package_version

        from appban.knowledge.install import bundle_of
        from appban.rulebook.loader import load_rulebook

        book = load_rulebook()
        bundle = bundle_of(book)
        knowledge = f"bundle {bundle}" if bundle else "packaged"
        print(
            f"appban {package_version('appban')}, rulebook {book.version} ({len(book.instruments)} instruments, "
            f"{knowledge})"
        )
        raise typer.Exit(0)


@_app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show versions and exit.")
    ] = False,
    install_completion: InstallCompletion = False,
    show_completion: ShowCompletion = None,
    config: ConfigOption = None,
    no_config: NoConfigOption = False,
) -> None:
    """Government orders against specific mobile apps, as time-aware, cited rules."""
    configure.apply(ctx, config, no_config)  # the configuration file's defaults and suppressions


def main() -> None:
    try:
        narrowed(sys.argv[1:])()
    finally:
        # The process ends here: frozen objects are left out of the interpreter's last collections, which
        # would otherwise walk every object (a twentieth of a quick command's time).
        gc.freeze()


def narrowed(args: list[str]) -> typer.Typer:
    """`app` with only the command or command group that `args` start with, when they start with one.

    typer turns every registered command into a click command (evaluating each signature) before it parses
    anything: for one command that costs more than the command itself. The narrowed app holds the same root
    options and callback, and the named command or group whole, so the command parses, helps and fails as in
    the full app. Anything else (no command, an option first, an unknown name) gets the full app, whose
    `--help` lists every command and whose errors suggest the names it knows.
    """
    if not args or args[0] not in HOMES:
        _register()
        return _app
    _register(HOMES[args[0]])
    commands = [info for info in _app.registered_commands if _command_name(info) == args[0]]
    groups = [info for info in _app.registered_groups if info.name == args[0]]
    if not commands and not groups:
        _register()
        return _app
    narrow = copy.copy(_app)
    narrow.registered_commands = commands
    narrow.registered_groups = [_narrowed_group(info, args[1:]) for info in groups]
    return narrow


def _narrowed_group(info: TyperInfo, args: list[str]) -> TyperInfo:
    """The group with only the subcommand `args` start with (`rules list`), when it has one by that name;
    else the whole group (`rules --help`, a misspelt name), so the group helps and fails as in the full app."""
    group = info.typer_instance
    if not args or group is None or any(sub.name == args[0] for sub in group.registered_groups):
        return info
    chosen = [command for command in group.registered_commands if _command_name(command) == args[0]]
    if not chosen:
        return info
    narrow = copy.copy(group)
    narrow.registered_commands = chosen
    narrow.registered_groups = []
    narrowed_info = copy.copy(info)
    narrowed_info.typer_instance = narrow
    return narrowed_info


def _command_name(info: CommandInfo) -> str | None:
    # typer's own rule: the name given, else the function's name in lower case with "-" for "_".
    if info.name:
        return info.name
    return get_command_name(info.callback.__name__) if info.callback is not None else None

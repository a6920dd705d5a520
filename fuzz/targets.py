"""What each fuzz target runs on one input file, inside a worker process, and which errors are reports.

A target mirrors a command line entry point: the library calls the command makes, the errors it turns
into exit code 2 (its "reported" set), and rendering the result as the command would print it (JSON,
UTF-8), because a crash while printing is a crash too. Anything else that escapes is a crash.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

AT = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[Path], object]
    reported: Callable[[], tuple[type[BaseException], ...]]
    about: str


@cache
def _book() -> Any:
    from appban.rulebook.loader import load_rulebook

    return load_rulebook()


def _render(document: object) -> None:
    # The commands print with ensure_ascii=False and write UTF-8: a lone surrogate must not reach here.
    json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")


def run_decide(path: Path) -> None:
    from appban.engine.batch import decide_table
    from appban.tables import read_table, to_records

    table = read_table(path)
    _render(to_records(decide_table(table, rulebook=_book())))


def reported_decide() -> tuple[type[BaseException], ...]:
    from appban.engine.batch import TableInputError
    from appban.tables import TableReadError

    return (TableReadError, TableInputError)


@cache
def _screener() -> Any:
    from appban.screen.inventory import InventoryOptions, Screener

    # One screener for every file, as `screen inventory` uses one for all the files it is given.
    options = InventoryOptions(where="US", at=None, at_column=None, tz=None, fleet="government", mapping={})
    return Screener(_book(), options)


def run_inventory(path: Path) -> None:
    from appban.tables import line_mapper, read_table, to_records

    result = _screener().screen(read_table(path, all_text=True), str(path), line_mapper(path))
    _render({"findings": to_records(result.findings), "errors": [vars(e) for e in result.errors]})


def reported_inventory() -> tuple[type[BaseException], ...]:
    from appban.screen.columns import ColumnMapError
    from appban.tables import TableReadError

    return (TableReadError, ColumnMapError, ValueError)


@cache
def _markers() -> Any:
    from appban.payments.markers import load_markers

    return load_markers(rulebook=_book())


def run_payments(path: Path) -> None:
    from appban.screen.payments import PaymentOptions, screen_payments
    from appban.tables import to_records

    result = screen_payments([path], PaymentOptions(), _book(), _markers())
    _render({"payments": to_records(result.payments), "totals": to_records(result.totals), "errors": result.errors})


def reported_io() -> tuple[type[BaseException], ...]:
    # `screen payments` and `screen network` turn ValueError and OSError into exit code 2.
    return (ValueError, OSError)


def run_network(path: Path) -> None:
    from appban.screen.network import NetworkOptions, screen_network
    from appban.tables import to_records

    result = screen_network([path], NetworkOptions(role="hosting"), _book())
    _render({"records": to_records(result.records), "exposure": to_records(result.exposure), "errors": result.errors})


@cache
def _signatures() -> Any:
    from appban.code.signatures import default_signatures

    return default_signatures(_book())


def run_code(path: Path) -> None:
    from appban.code.scan import scan
    from appban.report.sarif import to_sarif

    result = scan([path], at=AT, where="US", rulebook=_book(), signatures=_signatures())
    _render(result.to_json_dict())
    _render(to_sarif(result, path.parent, {}))


def reported_nothing() -> tuple[type[BaseException], ...]:
    # The scanner reports bad files as warnings and goes on: nothing may escape it.
    return ()


def run_check(path: Path) -> None:
    from appban.cli.common import fact_pairs
    from appban.engine.decide import decide

    fields = (path.read_bytes().decode("utf-8", "surrogateescape").split("\n") + [""] * 6)[:6]
    app, transaction, where, at, tz, fact = fields
    decision = decide(app, transaction, where, at, fact_pairs([fact] if fact else []), tz=tz or None, rulebook=_book())
    _render(decision.to_json_dict())


def reported_check() -> tuple[type[BaseException], ...]:
    import typer

    from appban.engine.decide import DecisionInputError

    # fact_pairs() refuses a malformed --fact itself, with exit code 2.
    return (DecisionInputError, typer.Exit)


# The command line itself: `<command>--<file name>` says which command reads the file.
CLI_ARGS: dict[str, list[str]] = {
    "decide": ["decide", "--format", "json"],
    "decide.table": ["decide"],
    "inventory": ["screen", "inventory", "--format", "json"],
    "inventory.html": ["screen", "inventory", "--format", "html"],
    "payments": ["screen", "payments", "--format", "json"],
    "payments.table": ["screen", "payments"],
    "network": ["screen", "network", "--role", "cdn", "--format", "json"],
    "network.table": ["screen", "network", "--role", "transit"],
    "scan": ["scan", "--format", "sarif", "--at", "2024-06-01T00:00:00Z"],
    "scan.table": ["scan", "--at", "2024-06-01T00:00:00Z"],
}


QUESTION_COMMANDS = ("check", "timeline", "mdm", "blocklist")


class CliCrash(Exception):
    """An exception escaped a command (typer's runner caught it); the original is chained."""


class HarnessError(Exception):
    """The fuzzer itself is wrong (a command line that does not parse): a crash, so it is seen."""


def run_cli(path: Path) -> None:
    from typer.testing import CliRunner

    from appban.cli import app

    command, _, _ = path.name.partition("--")
    if command in QUESTION_COMMANDS:
        app_name, transaction, where, at, tz, fact = (
            path.read_bytes().decode("utf-8", "surrogateescape").split("\n") + [""] * 6
        )[:6]
        args = {
            "check": ["check", "--app", app_name, "--transaction", transaction, "--where", where, "--at", at],
            "timeline": ["timeline", "--app", app_name, "--where", where, "--from", at, "--to", at[::-1], "--json"],
            "mdm": ["export", "mdm", "--where", where, "--at", at, "--format", "intune", "--transaction", transaction],
            "blocklist": ["export", "blocklist", "--where", where, "--at", at, "--format", "rpz"],
        }[command]
        args += (["--tz", tz] if tz else []) + (["--fact", fact] if fact and command in ("check", "timeline") else [])
        args = [a.replace("\x00", "") for a in args]  # argv cannot hold NUL
    else:
        args = [*CLI_ARGS[command], str(path)]
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise CliCrash(type(result.exception).__name__) from result.exception
    if result.exit_code not in (0, 1, 2):
        raise CliCrash(f"exit code {result.exit_code}")
    if result.exit_code == 2 and ("No such command" in result.output or "No such option" in result.output):
        # Exit code 2 is also click's usage error: that would be this harness calling the command wrong.
        raise HarnessError(f"{args[:3]}: {result.output[-300:]}")


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "decide",
            run_decide,
            reported_decide,
            "appban decide: read_table + decide_table (CSV/TSV/JSON/JSONL/Parquet)",
        ),
        Target("inventory", run_inventory, reported_inventory, "appban screen inventory: catalogs and MDM exports"),
        Target("payments_table", run_payments, reported_io, "appban screen payments: processor exports"),
        Target("payments_xml", run_payments, reported_io, "appban screen payments: ISO 20022 XML (plain, .gz, .zst)"),
        Target("network", run_network, reported_io, "appban screen network: Zeek, BIND, dnsmasq, nfdump, VPC, generic"),
        Target("code", run_code, reported_nothing, "appban code scan: archives, DEX, Mach-O, AXML, plists, manifests"),
        Target("check", run_check, reported_check, "appban check: instants, zones, places, facts"),
        Target("cli", run_cli, reported_nothing, "the typer commands in-process: exit codes 0/1/2 only"),
    )
}

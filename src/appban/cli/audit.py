"""Commands on the audit store: export and replay recorded decisions, manage API tokens."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from alembic.util import CommandError
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from appban.cli.apps import app
from appban.cli.common import JsonOption, OutputOption, TzOption, err, fail, out
from appban.engine.instants import InstantError, parse_instant
from appban.store.audit import TOKEN_SCOPES, AuditStore, DecisionRecord, ReplayError, replay
from appban.tables import write_atomically

audit_app = typer.Typer(help="Export and replay the decisions the service recorded.", no_args_is_help=True)
tokens_app = typer.Typer(help="Create, list and revoke the service's API tokens.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(tokens_app, name="tokens")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Audit database URL: sqlite:///FILE or postgresql://... (default: $APPBAN_DB, else ./appban-audit.db).",
        show_default=False,
    ),
]

CSV_COLUMNS = ("id", "kind", "asked_at", "caller", "rulebook_version", "instant", "run_id", "input", "result")


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


@contextmanager
def _store(url: str | None) -> Iterator[AuditStore]:
    """The store, or a clean error (exit 2) when the database cannot be opened."""
    try:
        store = AuditStore(url)
    except (SQLAlchemyError, CommandError, ValueError, OSError) as exc:
        fail(f"cannot open the audit database: {exc}")
    try:
        yield store
    finally:
        store.close()


def _instant(value: str | None, option: str, tz: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_instant(value, tz)
    except InstantError as exc:
        fail(f"{option}: {exc}")


def _write_jsonl(records: Iterator[DecisionRecord], stream: TextIO) -> int:
    count = 0
    for record in records:
        stream.write(json.dumps(record.to_json_dict(), ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def _write_csv(records: Iterator[DecisionRecord], stream: TextIO) -> int:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        row = record.to_json_dict()
        # input and result are nested JSON: keep each whole in one column as JSON text.
        row["input"] = json.dumps(row["input"], ensure_ascii=False, separators=(",", ":"))
        row["result"] = json.dumps(row["result"], ensure_ascii=False, separators=(",", ":"))
        writer.writerow(["" if row[column] is None else row[column] for column in CSV_COLUMNS])
        count += 1
    return count


@audit_app.command("export")
def export_command(
    start: Annotated[
        str | None, typer.Option("--from", help="First instant asked at (inclusive), ISO 8601.", show_default=False)
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last instant asked at (exclusive), ISO 8601.", show_default=False)
    ] = None,
    format: Annotated[ExportFormat, typer.Option("--format", help="jsonl or csv.")] = ExportFormat.jsonl,
    output: OutputOption = None,
    tz: TzOption = None,
    db: DbOption = None,
) -> None:
    """Recorded decisions asked in [--from, --to), oldest first: JSON lines (every column) or CSV."""
    since = _instant(start, "--from", tz)
    until = _instant(end, "--to", tz)
    if since is not None and until is not None and until <= since:
        fail("--to must be later than --from")
    writer = _write_jsonl if format is ExportFormat.jsonl else _write_csv
    with _store(db) as store:
        records = store.iter_decisions(start=since, end=until)
        count = 0
        if output is None:
            # Streamed: an export can be larger than memory.
            count = writer(records, sys.stdout)
        else:

            def write(path: Path) -> None:
                nonlocal count
                with path.open("w", encoding="utf-8", newline="") as stream:
                    count = writer(records, stream)

            write_atomically(output, write)
    if output is not None:
        err.print(f"{count} decisions written to {escape(str(output))}")


@audit_app.command("replay")
def replay_command(
    decision_id: Annotated[str, typer.Argument(help="The id of a recorded decision.", show_default=False)],
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Ask a recorded question again under the rulebook version it was answered under.

    Exit code 0 when the answer is identical, 1 when it differs, 2 when it cannot be replayed.
    """
    with _store(db) as store:
        try:
            result = replay(store, decision_id)
        except ReplayError as exc:
            fail(str(exc))
    if json_out:
        sys.stdout.write(json.dumps(result.to_json_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        record = result.decision
        out.print(f"decision {escape(record.id)} ({record.kind}, asked {record.asked_at.isoformat()})")
        out.print(f"rulebook: {escape(result.recorded_version)}")
        recorded, replayed = _verdicts(record.result), _verdicts(result.replayed)
        out.print(f"recorded verdict: {escape(recorded)}")
        out.print(f"replayed verdict: {escape(replayed)}")
        if result.identical:
            out.print(Text("identical", style="green"))
        else:
            out.print(Text(f"different at {len(result.differences)} places:", style="bold red"))
            for path in result.differences:
                out.print(f"  {escape(path)}")
    if not result.identical:
        raise typer.Exit(1)


def _verdicts(result: dict[str, Any]) -> str:
    rows = result.get("rows")
    if "verdict" not in result and isinstance(rows, list):
        return ", ".join(str(row.get("verdict")) if isinstance(row, dict) else "?" for row in rows)
    return str(result.get("verdict", "(none)"))


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option("--name", help="Who or what the token is for.", show_default=False)],
    scope: Annotated[str, typer.Option("--scope", help="read or write.", show_default=False)],
    db: DbOption = None,
) -> None:
    """Create a token and print its secret (shown this once only)."""
    if scope not in TOKEN_SCOPES:
        fail(f"--scope must be one of {', '.join(TOKEN_SCOPES)}, got {scope!r}")
    if not name.strip():
        fail("--name must not be empty")
    with _store(db) as store:
        token_id, secret = store.create_token(name=name, scope=scope)
    # The secret alone goes to standard output, so it can be piped straight into a secret store.
    sys.stdout.write(secret + "\n")
    err.print(
        Text(
            f"token {token_id} ({scope}) created. Store the secret above now: "
            "it is not kept and cannot be shown again.",
            style="yellow",
        )
    )


@tokens_app.command("list")
def tokens_list(db: DbOption = None, json_out: JsonOption = False) -> None:
    """Every token (revoked ones too); secrets are never shown."""
    with _store(db) as store:
        tokens = store.tokens()
    if json_out:
        sys.stdout.write(json.dumps([token.to_json_dict() for token in tokens], indent=2) + "\n")
        return
    if not tokens:
        out.print("No tokens.")
        return
    table = Table("id", "name", "scope", "created", "revoked")
    for token in tokens:
        revoked = token.revoked_at.isoformat(timespec="seconds") if token.revoked_at else ""
        table.add_row(
            token.id, escape(token.name), token.scope, token.created_at.isoformat(timespec="seconds"), revoked
        )
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see `appban tokens list`).", show_default=False)],
    db: DbOption = None,
) -> None:
    """Revoke a token: requests carrying it are refused from now on."""
    with _store(db) as store:
        found = store.revoke_token(token_id)
    if not found:
        fail(f"no token {token_id!r}")
    out.print(f"token {escape(token_id)} revoked")

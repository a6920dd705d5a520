"""Commands on the audit store: export and replay recorded decisions, manage API tokens."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, TextIO

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from appban.cli.apps import app
from appban.cli.common import OutputOption, TzOption, emit, emit_text, err, fail, out
from appban.cli.conventions import FILE, INSTANT, Fmt, JsonAlias, chosen_format, counted, csv_rows, dumps

# SQLAlchemy, Alembic and the audit store are imported by the commands that open a store, not by every
# `appban` command at start-up.
if TYPE_CHECKING:
    from appban.store.audit import AuditStore, DecisionRecord

audit_app = typer.Typer(help="Export and replay the decisions the service recorded.", no_args_is_help=True)
tokens_app = typer.Typer(help="Create, list and revoke the service's API tokens.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(tokens_app, name="tokens")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="Audit database URL: sqlite:///FILE or postgresql://... (default: $APPBAN_DB, else ./appban-audit.db).",
        show_default=False,
    ),
]

CSV_COLUMNS = ("id", "kind", "asked_at", "caller", "rulebook_version", "bundle", "instant", "run_id", "input",
               "result")  # fmt: skip


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


class TokensFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


TOKEN_COLUMNS = ["id", "name", "scope", "created_at", "revoked_at"]


@contextmanager
def _store(url: str | None, *, create: bool = False) -> Iterator[AuditStore]:
    """The store, or a clean error (exit 2) when the database cannot be opened. Only with `create` may an
    SQLite file that is not there yet be made: a mistyped --db must not read as an empty audit trail."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from appban.store.audit import AuditStore, default_url

    if not create:
        _must_exist(url if url is not None else default_url())
    try:
        store = AuditStore(url)
    except (SQLAlchemyError, CommandError, ValueError, OSError) as exc:
        fail(f"cannot open the audit database: {exc}")
    try:
        yield store
    finally:
        store.close()


def _must_exist(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" in url and not url.startswith("sqlite:"):
        return  # a database server: opening it makes no file
    try:
        database = make_url(url if "://" in url else "sqlite:///" + url).database
    except ArgumentError as exc:
        fail(f"cannot open the audit database: {exc}")
    if not database or database == ":memory:" or "mode=memory" in url:
        return
    path = Path(database.removeprefix("file:").split("?", 1)[0])
    if not path.is_file():
        fail(
            f"cannot open the audit database: there is none at {path} (`appban serve` or `appban tokens create` "
            "makes one); nothing was created"
        )


def _instant(value: str | None, option: str, tz: str | None) -> Any:
    from appban.engine.instants import InstantError, parse_instant

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
        str | None,
        typer.Option(
            "--from", metavar=INSTANT, help="First instant asked at (inclusive), ISO 8601.", show_default=False
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", metavar=INSTANT, help="Last instant asked at (exclusive), ISO 8601.", show_default=False),
    ] = None,
    format: Annotated[
        ExportFormat, typer.Option("--format", case_sensitive=False, help="jsonl or csv.")
    ] = ExportFormat.jsonl,
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

            def write(stream: BinaryIO) -> None:
                nonlocal count
                text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
                count = writer(records, text)
                text.flush()
                text.detach()  # the stream belongs to emit

            emit(write, output)
    if output is not None:
        err.print(f"{counted(count, 'decision')} written to {escape(str(output))}")


@audit_app.command("replay")
def replay_command(
    decision_id: Annotated[
        str, typer.Argument(metavar="ID", help="The id of a recorded decision.", show_default=False)
    ],
    db: DbOption = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = ReportFormat.table,
    json_out: JsonAlias = False,
) -> None:
    """Ask a recorded question again under the rulebook version it was answered under.

    Exit code 0 when the answer is identical, 1 when it differs, 2 when it cannot be replayed.
    """
    from appban.store.audit import ReplayError, replay

    json_out = chosen_format(fmt, json_out) == Fmt.json
    with _store(db) as store:
        try:
            result = replay(store, decision_id)
        except ReplayError as exc:
            fail(str(exc))
    if json_out:
        sys.stdout.write(dumps(result.to_json_dict()) + "\n")
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


CheckpointOption = Annotated[
    Path | None,
    typer.Option("--checkpoint", metavar=FILE,
                 help="A checkpoint file (`audit checkpoint -o`): every checkpoint in it is checked.",
                 show_default=False),
]  # fmt: skip


AppendOption = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        metavar=FILE,
        help="Append the checkpoint to this file (it is never rewritten).",
        show_default=False,
    ),
]


@audit_app.command("verify")
def verify_command(
    db: DbOption = None,
    checkpoint: CheckpointOption = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = ReportFormat.table,
    json_out: JsonAlias = False,
) -> None:
    """Check the hash chain of the recorded decisions: each record's content and link, the chain's head,
    the rulebook snapshots, and that the chain still extends each checkpoint given.

    Reads only (nothing is created or migrated). Exit code 0 when intact, 1 when something was changed
    behind the store's back (the first broken link is reported), 2 when there is nothing to verify.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from appban.store.audit import default_url
    from appban.store.verify import CheckpointError, VerifyUsageError, read_checkpoints, verify_store

    json_out = chosen_format(fmt, json_out) == Fmt.json
    try:
        checkpoints = read_checkpoints(checkpoint) if checkpoint is not None else []
    except CheckpointError as exc:
        fail(str(exc))
    try:
        report = verify_store(db if db is not None else default_url(), checkpoints)
    except VerifyUsageError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"cannot read the audit database: {exc}")
    if json_out:
        sys.stdout.write(dumps(report.to_json_dict()) + "\n")
    elif report.problem is None:
        out.print(Text(f"intact: {counted(report.count, 'record')}, head {report.head}", style="green"))
        out.print(f"store {report.store}; {report.checkpoints} checkpoints and {report.snapshots} rulebook "
                  "snapshots checked")  # fmt: skip
    else:
        problem = report.problem
        where = "" if problem.seq is None else f" at seq {problem.seq}"
        out.print(Text(f"BROKEN{where}: {problem.kind}", style="bold red"))
        out.print(escape(problem.detail))
        out.print(f"{counted(report.count, 'record')} verified before it (store {report.store})")
    if report.problem is not None:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def checkpoint_command(output: AppendOption = None, db: DbOption = None) -> None:
    """The chain's head now (store id, record count, last link hash, time) as one JSON line.

    Keep checkpoints away from the database: `audit verify --checkpoint FILE` later proves that nothing
    before each was changed and that the chain still extends it. Exit code 1 when the head does not
    match the last record (run `audit verify`), 2 when there is no chained store.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from appban.store.audit import default_url
    from appban.store.chain import ChainError
    from appban.store.verify import VerifyUsageError, append_checkpoint, checkpoint_of, has_chain, read_only

    try:
        with read_only(db if db is not None else default_url()) as (connection, dialect):
            if not has_chain(connection, dialect):
                fail("not an audit store with a chain (run any other audit command once to migrate it)")
            try:
                checkpoint = checkpoint_of(connection)
            except ChainError as exc:
                err.print(Text(f"appban: {exc}", style="red"))
                raise typer.Exit(1) from None
    except VerifyUsageError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"cannot read the audit database: {exc}")
    if output is None:
        sys.stdout.write(json.dumps(checkpoint.to_json_dict(), separators=(",", ":")) + "\n")
        return
    try:
        append_checkpoint(output, checkpoint)
    except OSError as exc:
        fail(f"cannot append to {output}: {exc}")
    err.print(f"checkpoint of {counted(checkpoint.count, 'record')} appended to {escape(str(output))}")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[
        str, typer.Option("--name", metavar="NAME", help="Who or what the token is for.", show_default=False)
    ],
    scope: Annotated[str, typer.Option("--scope", metavar="<read|write>", help="read or write.", show_default=False)],
    db: DbOption = None,
) -> None:
    """Create a token and print its secret (shown this once only)."""
    from appban.store.audit import TOKEN_SCOPES

    if scope not in TOKEN_SCOPES:
        fail(f"--scope must be one of {', '.join(TOKEN_SCOPES)}, got {scope!r}")
    if not name.strip():
        fail("--name must not be empty")
    with _store(db, create=True) as store:
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
def tokens_list(
    db: DbOption = None,
    fmt: Annotated[
        TokensFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = TokensFormat.table,
    json_out: JsonAlias = False,
    output: OutputOption = None,
) -> None:
    """Every token (revoked ones too); secrets are never shown."""
    chosen = chosen_format(fmt, json_out)
    with _store(db) as store:
        tokens = store.tokens()
    if chosen == Fmt.json or (chosen == Fmt.table and output is not None):
        emit_text(dumps([token.to_json_dict() for token in tokens]) + "\n", output)
        return
    if chosen == Fmt.csv:
        rows = [token.to_json_dict() for token in tokens]
        emit(lambda f: f.write(csv_rows(rows, TOKEN_COLUMNS)), output)
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
    token_id: Annotated[
        str, typer.Argument(metavar="ID", help="The token's id (see `appban tokens list`).", show_default=False)
    ],
    db: DbOption = None,
) -> None:
    """Revoke a token: requests carrying it are refused from now on."""
    with _store(db) as store:
        found = store.revoke_token(token_id)
    if not found:
        fail(f"no token {token_id!r}")
    out.print(f"token {escape(token_id)} revoked")

"""Payment screening: appban screen payments."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from appban.cli.apps import screen_app
from appban.cli.common import (
    OutputOption,
    RulebookOption,
    TzOption,
    counting_rows,
    emit,
    err,
    fail,
    load_book,
    out,
    verdict_style,
)
from appban.cli.configure import (
    BaselineOption,
    FailOn,
    FailOnOption,
    crossed,
    print_suppressed,
    review_screen,
    suppressed_html,
    suppressed_markdown,
)
from appban.cli.conventions import FILE, JsonAlias, chosen_format, dumps, from_bundle, needs_file
from appban.cli.engine import EngineDbOption, EngineOption, MasterOption, SchedulerOption, engine_output
from appban.cli.given import path as given_path
from appban.suppress import Identity, TableReview
from appban.vocabulary import Verdict

# The payment readers and pyarrow are imported when `screen payments` runs, not at every start of `appban`.
if TYPE_CHECKING:
    import pyarrow as pa

    from appban.outputs import Sink
    from appban.screen.payments import PaymentResult

# appban.screen.payments.SETTABLE, written out so that --help does not load the readers (a test keeps the two
# equal).
SETTABLE = ("currency", "kind", "method", "wallet", "processor", "processor_country", "merchant", "merchant_country",
            "payer", "payer_country", "payer_type", "payer_agent", "payee", "payee_country", "payee_type",
            "payee_agent", "purpose", "remittance")  # fmt: skip


class PaymentFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"
    markdown = "markdown"
    html = "html"


# What the terminal and HTML tables show of each flagged payment.
SHOWN = ["file", "line", "id", "ts", "amount", "currency", "service", "marker", "marker_field", "nexus",
         "transaction", "verdict"]  # fmt: skip
# What identifies a flagged payment in a later run (suppressions' `id`, --baseline): the service and the
# payment's own id (a charge, PSP reference or end-to-end id), the same in every export that holds it. A record
# without one is known by its time, amount, currency and parties. Not the file (a monthly report and a full
# export hold the same payment) nor the line.
PAYMENT_IDENTITY = Identity(
    ("id",), app="service", by_file=False, fallback=("ts", "amount", "currency", "payer", "payee", "merchant")
)
# What the table, Markdown and HTML show of a suppressed payment, before its reason, date and entry.
SUPPRESSED_SHOWN = ["file:line", "id", "ts", "amount", "currency", "service", "verdict"]


@screen_app.command("payments")
def screen_payments_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            parser=given_path,
            metavar="FILE",
            help="Payment exports (CSV, JSON lines, Parquet) or ISO 20022 XML.",
            show_default=False,
        ),
    ],
    input_format: Annotated[
        str | None, typer.Option(metavar="<table|iso20022>", help="Force a reader: table or iso20022.")
    ] = None,
    mapping: Annotated[
        str | None,
        typer.Option(
            "--map", metavar="ROLE=COLUMN,...", help="Columns of an export: ts=Created,method=Type,payer_country=..."
        ),
    ] = None,
    markers: Annotated[
        Path | None, typer.Option(metavar=FILE, help="Payment markers file (default: the packaged one).")
    ] = None,
    constants: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="FIELD=VALUE",
            help=f"FIELD=VALUE for every record where the file has no such column or the cell is empty "
            f"(repeatable), e.g. merchant_country=US. Fields: {', '.join(SETTABLE)}.",
        ),
    ] = None,
    decimal: Annotated[
        str | None,
        typer.Option(
            metavar="<point|comma>",
            help="The exports' decimal mark, point or comma; without it only unambiguous amounts are read.",
        ),
    ] = None,
    date_order: Annotated[
        str | None,
        typer.Option(
            metavar="<dmy|mdy>", help="Order of dates written with slashes, dmy or mdy; without it, as each file shows."
        ),
    ] = None,
    fmt: Annotated[
        PaymentFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = PaymentFormat.table,
    as_json: JsonAlias = False,
    output: OutputOption = None,
    tz: TzOption = None,
    rulebook: RulebookOption = None,
    baseline: BaselineOption = None,
    fail_on: FailOnOption = FailOn.none,
    engine: EngineOption = None,
    master: MasterOption = None,
    scheduler: SchedulerOption = None,
    db: EngineDbOption = None,
) -> None:
    """Payments through WeChat Pay (and other covered services) with a U.S. nexus, decided at their own time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from appban.payments.dates import DateOrder
    from appban.payments.markers import load_markers
    from appban.reading.values import check_zone
    from appban.screen.columns import ColumnMapError, parse_map
    from appban.screen.payments import PaymentOptions, check_decimal, parse_constants, screen_payments, totals
    from appban.tables import write_csv

    fmt = PaymentFormat(chosen_format(fmt, as_json))
    directory = engine_output(
        engine, master, scheduler, db, fmt.value, output, baseline=baseline, rulebook=rulebook, markers=markers
    )
    needs_file(fmt, output)
    book = load_book(rulebook)
    try:
        options = PaymentOptions(
            input_format,
            parse_map(mapping) or None,
            check_zone(tz) if tz else None,
            parse_constants(constants or []) or None,
            check_decimal(decimal),
            DateOrder(date_order).order,
        )
        marker_set = load_markers(markers, book) if markers else load_markers(rulebook=book)
    except (ColumnMapError, ValueError) as exc:
        fail(str(exc))
    if engine is not None and directory is not None:
        from appban.cli import engine as on_engine
        from appban.distributed.payments import FileFactory

        recorded = {"input_format": input_format, "decimal": decimal, "date_order": date_order}
        job = on_engine.EngineJob(
            "payments", "screen payments", FileFactory.of(options), recorded, app_column="service"
        )
        on_engine.run(job, files, engine, master, scheduler, directory, db, fmt is PaymentFormat.json, fail_on.value)
        return
    for path in files:  # a file named that is not there is a mistake in the command, not in the file
        if not path.exists():
            fail(f"{path}: no such file")
    with counting_rows("reading payments…", "screened payments:") as advance:
        try:
            result = screen_payments(files, options, book, marker_set, advance)
        except (ValueError, OSError) as exc:
            fail(str(exc))
    # Suppressions and --baseline: `result.payments` keeps what is counted, totalled and gated on.
    screened = review_screen("screen payments", result.payments, PAYMENT_IDENTITY, files, baseline)
    result.payments, suppressed = screened.active, screened.suppressed
    result.totals = totals(result.payments)
    every_payment = pa.concat_tables([result.payments, suppressed])  # CSV and Parquet mark the suppressed ones
    if fmt is PaymentFormat.table and output is None:
        _print(result)
        print_suppressed(suppressed, SUPPRESSED_SHOWN)
    else:
        writers: dict[PaymentFormat, Sink] = {
            PaymentFormat.json: lambda f: f.write((dumps(_document(result, screened, baseline)) + "\n").encode()),
            PaymentFormat.markdown: lambda f: f.write(_markdown(result, screened).encode("utf-8")),
            PaymentFormat.parquet: lambda f: pq.write_table(every_payment, f),
            PaymentFormat.csv: lambda f: write_csv(every_payment, f),
            PaymentFormat.table: lambda f: write_csv(every_payment, f),
            PaymentFormat.html: lambda f: f.write(_html(result, suppressed).encode("utf-8")),
        }
        written = emit(writers[fmt], output)
        # One table per CSV file: the rows reported apart go beside the flagged ones, as network's exposure does.
        beside = fmt in (PaymentFormat.csv, PaymentFormat.table) and output is not None and written == "file"
        if beside and output is not None and result.apart.num_rows:
            side = output.with_name(output.stem + ".apart" + output.suffix)
            emit(lambda f: write_csv(result.apart, f), side)
            err.print(
                f"wrote {result.payments.num_rows} flagged payments to {output} and "
                f"{result.apart.num_rows} reported apart to {side}"
            )
        counts = result.apart_counts()
        if counts:
            err.print(f"appban: reported apart, not in the totals: {_counted(counts)}")
        for note in result.notes:
            err.print(Text(f"appban: note: {note}", style="yellow"))
    for message in result.file_errors:
        err.print(Text(f"appban: not read: {message}", style="yellow"))
    if result.malformed:
        err.print(Text(f"appban: {result.malformed:,} payment records could not be read", style="yellow"))
        for line in result.errors[:20]:
            err.print(Text(f"  {line}", style="yellow"))
    if crossed(fail_on, result.payments, "payment") or result.malformed or result.file_errors:
        raise typer.Exit(1)


def _document(result: PaymentResult, screened: TableReview, baseline: Path | None) -> dict[str, Any]:
    from appban.tables import to_records

    document: dict[str, Any] = {
        "rulebook_version": result.rulebook_version,
        "bundle": result.bundle,
        "payments_read": result.rows,
        "malformed": result.malformed,
        "skipped": result.skipped,
        "errors": result.errors[:100],
        "files_not_read": result.file_errors,
        "totals": to_records(result.totals),
        "payments": to_records(result.payments),
        "apart": to_records(_apart(result)),
        "apart_by_reason": result.apart_counts(),
        "notes": result.notes,
        "suppressed": to_records(screened.suppressed),
    }
    if baseline is not None:
        document["baseline"] = {"file": str(baseline), "unchanged": screened.unchanged}
    return document


def _apart(result: PaymentResult) -> pa.Table:
    return result.apart


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {reason.replace('_', ' ')}" for reason, count in counts.items())


def _print(result: PaymentResult) -> None:
    grid = Table(title="Payments through covered services", title_justify="left")
    for name in ("line", "id", "time (UTC)", "amount", "service", "evidence", "nexus", "transaction", "verdict"):
        grid.add_column(name, overflow="fold", justify="right" if name == "amount" else "left")
    for row in result.payments.slice(0, 200).to_pylist():
        verdict = row.get("verdict")
        grid.add_row(
            str(row["line"]),
            row["id"] or "",
            f"{row['ts']:%Y-%m-%d %H:%M}",
            f"{_money(row['amount'])} {row['currency']}",
            row["service"],
            f"{row['marker_field']}: {row['marker']}",
            row["nexus"],
            row["transaction"],
            Text(verdict, style=verdict_style(Verdict(verdict))) if verdict else Text("undecided"),
        )
    out.print(grid)
    if result.payments.num_rows > 200:
        out.print(f"… and {result.payments.num_rows - 200:,} more (use --format json or csv -o FILE)")
    totals = Table(title="Totals by service, verdict and month", title_justify="left")
    for name in ("service", "month", "verdict", "currency", "payments", "amount"):
        totals.add_column(name, justify="right" if name in ("payments", "amount") else "left")
    for row in result.totals.to_pylist():
        style = verdict_style(Verdict(row["verdict"])) if row["verdict"] in Verdict.__members__.values() else ""
        totals.add_row(row["service"], row["month"], Text(row["verdict"], style=style), row["currency"],
                       f"{row['payments']:,}", _money(row["amount"]))  # fmt: skip
    out.print(totals)
    counts = result.apart_counts()
    if counts:
        out.print(f"Reported apart, not in the totals: {_counted(counts)} (see --format json)")
    for note in result.notes:
        out.print(Text(f"Note: {note}", style="yellow"))
    skipped = f"; {result.skipped:,} rows that are no payment skipped" if result.skipped else ""
    out.print(f"{result.payments.num_rows:,} of {result.rows:,} payments flagged; {result.malformed:,} unreadable"
              f"{skipped}; rulebook {result.rulebook_version}{from_bundle(result.bundle)}")  # fmt: skip


def _money(amount: Decimal) -> str:
    """Two decimals unless the amount has more: 129.00, 0.125."""
    return f"{amount:,.2f}" if amount == round(amount, 2) else f"{amount.normalize():,}"


def _markdown(result: PaymentResult, screened: TableReview) -> str:
    from appban.report import markdown as md
    from appban.tables import to_records

    present = [name for name in SHOWN if name in result.payments.schema.names]
    rows = [[row.get(name) for name in present] for row in to_records(result.payments.slice(0, md.MAX_ROWS + 1))]
    totals = to_records(result.totals)
    facts: dict[str, object] = {"payments read": result.rows, "flagged": result.payments.num_rows,
                                "unreadable": result.malformed}  # fmt: skip
    if counts := result.apart_counts():
        facts["reported apart, not in the totals"] = _counted(counts)
    sections = [
        ("", md.facts(facts)),
        ("Totals by service, verdict and month", md.table(result.totals.schema.names,
                                                          [list(row.values()) for row in totals])),
        ("Flagged payments", md.table(present, rows)),
        *suppressed_markdown(screened.suppressed, SUPPRESSED_SHOWN, screened.warnings),
    ]  # fmt: skip
    if result.notes:
        sections.append(("Notes", "\n".join(f"- {md.cell(note)}" for note in result.notes)))
    bundle = f", bundle {md.code(result.bundle)}" if result.bundle else ""
    sections.append(("", f"rulebook {md.code(result.rulebook_version)}{bundle}"))
    return md.document(f"appban screen payments: {result.payments.num_rows:,} flagged", sections)


def _html(result: PaymentResult, suppressed: pa.Table) -> str:
    from appban.report import html as html_report

    present = [name for name in SHOWN if name in result.payments.schema.names]
    rows = [[row.get(name) for name in present] for row in result.payments.slice(0, 5000).to_pylist()]
    totals = result.totals
    sections = [
        ("Totals by service, verdict and month", html_report.table(totals.schema.names, _rows(totals),
                                                                   verdict_column="verdict")),
        ("Flagged payments (first 5,000)", html_report.table(present, rows, verdict_column="verdict")),
    ]  # fmt: skip
    apart = _apart(result)
    if apart.num_rows:
        shown = [name for name in ("file", "line", "id", "ts", "amount", "currency", "reason", "note")
                 if name in apart.schema.names]  # fmt: skip
        kept = [[row.get(name) for name in shown] for row in apart.slice(0, 5000).to_pylist()]
        sections.append(("Reported apart, not in the totals (first 5,000)", html_report.table(shown, kept)))
    sections += suppressed_html(suppressed, SUPPRESSED_SHOWN)
    meta: dict[str, Any] = {"payments read": result.rows, "unreadable": result.malformed,
                            "rulebook": result.rulebook_version}  # fmt: skip
    if result.bundle:
        meta["bundle"] = result.bundle
    if result.skipped:
        meta["skipped (no payment)"] = result.skipped
    counts = result.apart_counts()
    if counts:
        meta["reported apart, not in the totals"] = _counted(counts)
    if result.notes:
        meta["notes"] = "; ".join(result.notes)
    if result.file_errors:
        meta["files not read"] = "; ".join(result.file_errors)
    return html_report.document("appban payment screening", meta, sections)


def _rows(table: pa.Table) -> list[list[Any]]:
    return [list(row.values()) for row in table.to_pylist()]

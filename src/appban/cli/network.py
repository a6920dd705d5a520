"""Network screening: appban screen network."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.table import Table
from rich.text import Text

from appban.cli.apps import export_app, screen_app
from appban.cli.common import (
    OutputOption,
    RulebookOption,
    TzOption,
    counting_rows,
    emit,
    emit_text,
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
from appban.cli.conventions import (
    FILE,
    INSTANT,
    PLACE,
    ZONE,
    JsonAlias,
    category_name,
    chosen_format,
    counted,
    dumps,
    flag_message,
    from_bundle,
    instant_option,
    needs_file,
)
from appban.cli.engine import EngineDbOption, EngineOption, MasterOption, SchedulerOption, engine_output
from appban.cli.given import path as given_path
from appban.suppress import Identity
from appban.vocabulary import Verdict

# The log readers, pyarrow and the blocklist writers are imported by the commands that use them, not at every
# start of `appban`.
if TYPE_CHECKING:
    import pyarrow as pa

    from appban.outputs import Sink
    from appban.screen.network import NetworkOptions, NetworkResult, Role


# What identifies a matched record in a later run (suppressions' `id`, --baseline): who (the customer, else the
# client address), what it reached (the host, else the server address), the category of the role, and the app.
# Not the file (logs rotate: tomorrow's query.log.1 holds today's exposure again), the line or the time, so
# that a customer's known exposure stays known in every later log, however often it recurs.
NETWORK_IDENTITY = Identity(("customer|client|src_ip", "host|dst_ip", "transaction"), by_file=False)
# What the table, Markdown and HTML show of a suppressed record, before its reason, date and entry.
SUPPRESSED_SHOWN = ["file:line", "customer", "client", "host", "dst_ip", "app", "verdict"]


class RoleOption(StrEnum):
    hosting = "hosting"
    cdn = "cdn"
    transit = "transit"


class ScopeOption(StrEnum):
    app = "app"
    company = "company"
    all = "all"


class NetworkFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"
    markdown = "markdown"
    html = "html"


# --role takes the service's own name or the category it is decided under (internet_hosting, transit_peering).
ROLE_OF_CATEGORY = {"internet_hosting": "hosting", "cdn": "cdn", "transit_peering": "transit"}
ROLES = f"{'|'.join(r.value for r in RoleOption)}"


def _role(value: str | None) -> str | None:
    if value is None:
        return None
    name = category_name(value)
    role = ROLE_OF_CATEGORY.get(name, name)
    if role not in RoleOption._value2member_map_:
        fail(
            f"--role: unknown role {value!r} (one of: hosting, cdn, transit, or their categories "
            f"{', '.join(ROLE_OF_CATEGORY)})"
        )
    return role


def _complete_role(incomplete: str) -> list[str]:
    # A role and its category may share a name (cdn): offered once.
    names = dict.fromkeys(str(name) for name in (*RoleOption, *ROLE_OF_CATEGORY))
    return [name for name in names if name.startswith(incomplete)]


# The log readers' names and the families detected within (appban.network.readers), written out here so that
# --help lists them without importing the readers (and pyarrow); a test holds the two lists to each other.
LOG_FORMATS = (
    "zeek-dns", "zeek-ssl", "zeek-http", "suricata", "nfdump", "aws-vpc", "gcp-vpc", "azure-flow", "pihole", "bind",
    "dnsmasq", "unbound", "coredns", "windows-dns", "windows-dns-mdy", "windows-dns-dmy", "generic",
)  # fmt: skip
LOG_FAMILIES = ("zeek", "flows")


def _log_format(value: str | None) -> str | None:
    if value is None:
        return None
    name = value.strip().lower()
    if name not in (*LOG_FORMATS, *LOG_FAMILIES):
        fail(
            f"--log-format: unknown log format {value!r} (one of: {', '.join(LOG_FORMATS)}; or a family detected "
            f"within: {', '.join(LOG_FAMILIES)})"
        )
    return name


def _complete_log_format(incomplete: str) -> list[str]:
    return [name for name in (*LOG_FORMATS, *LOG_FAMILIES) if name.startswith(incomplete.lower())]


def _read_lines(path: Path | None, what: str) -> list[str]:
    if path is None:
        return []
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        fail(f"{what} {path}: {exc.strerror or exc}")


@screen_app.command("network")
def screen_network_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            parser=given_path,
            metavar="FILE",
            help="DNS, TLS SNI, HTTP or flow logs (.gz and .zst stream).",
            show_default=False,
        ),
    ],
    role: Annotated[
        str,
        typer.Option(
            metavar=f"<{ROLES}>",
            callback=_role,
            autocompletion=_complete_role,
            help="Your service: hosting, CDN or transit/peering (or its category: internet_hosting, cdn, "
            "transit_peering; any case, - or _).",
        ),
    ],
    customer_column: Annotated[str | None, typer.Option(metavar="COLUMN", help="Column naming the customer.")] = None,
    customer_table: Annotated[Path | None, typer.Option(metavar=FILE, help="File of 'PREFIX,CUSTOMER' lines.")] = None,
    asn_table: Annotated[
        Path | None, typer.Option(metavar=FILE, help="File of 'PREFIX ASN' lines (a routing-table dump).")
    ] = None,
    where: Annotated[str, typer.Option(metavar=PLACE, help="Where the service is provided (ISO 3166).")] = "US",
    scope: Annotated[
        ScopeOption, typer.Option(case_sensitive=False, help="Indicators: app-specific, company-wide too, or all.")
    ] = (ScopeOption.all),
    log_format: Annotated[
        str | None,
        typer.Option(
            metavar="FORMAT",
            callback=_log_format,
            autocompletion=_complete_log_format,
            help=f"Force a log format (default: detected): {', '.join(LOG_FORMATS)}; or detect within a family: "
            f"{', '.join(LOG_FAMILIES)}.",
        ),
    ] = None,
    log_tz: Annotated[
        str | None, typer.Option(metavar=ZONE, help="Zone of log timestamps written without one (default UTC).")
    ] = None,
    log_year: Annotated[
        int | None, typer.Option(metavar="YEAR", help="Year of syslog-style dates (default: the file's).")
    ] = None,
    mapping: Annotated[
        str | None,
        typer.Option("--map", metavar="ROLE=COLUMN,...", help="Generic logs: host=Col,ts=Col,client=Col,..."),
    ] = None,
    fmt: Annotated[
        NetworkFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = NetworkFormat.table,
    as_json: JsonAlias = False,
    output: OutputOption = None,
    rulebook: RulebookOption = None,
    baseline: BaselineOption = None,
    fail_on: FailOnOption = FailOn.none,
    engine: EngineOption = None,
    master: MasterOption = None,
    scheduler: SchedulerOption = None,
    db: EngineDbOption = None,
) -> None:
    """Which customers and flows serve or carry a covered app, and what the law says for your role."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from appban.engine.decide import DecisionInputError, resolve_place
    from appban.network.classify import parse_asn_table
    from appban.screen.columns import ColumnMapError, parse_map
    from appban.screen.network import NetworkOptions, exposure, parse_customer_table, screen_network
    from appban.tables import to_records, write_csv

    fmt = NetworkFormat(chosen_format(fmt, as_json))
    directory = engine_output(engine, master, scheduler, db, fmt.value, output, baseline=baseline, rulebook=rulebook)
    needs_file(fmt, output)
    book = load_book(rulebook)
    try:
        options = NetworkOptions(
            role=cast("Role", role),
            where=resolve_place(where),
            scope=scope.value,
            customer_column=customer_column,
            customer_prefixes=parse_customer_table(_read_lines(customer_table, "--customer-table")),
            asn_table=parse_asn_table(_read_lines(asn_table, "--asn-table")),
            log_format=log_format,
            column_map=parse_map(mapping) or None,
            log_tz=log_tz,
            log_year=log_year,
        )
    except (DecisionInputError, ColumnMapError, ValueError) as exc:
        fail(flag_message(exc))
    if engine is not None and directory is not None:
        from appban.cli import engine as on_engine
        from appban.distributed.network_files import NetworkFiles

        recorded = {"role": options.role, "where": options.where, "scope": options.scope}
        job = on_engine.EngineJob("network", "screen network", NetworkFiles.of(options), recorded)
        on_engine.run(job, files, engine, master, scheduler, directory, db, fmt is NetworkFormat.json, fail_on.value)
        return
    with counting_rows("reading logs…", "classified records:") as advance:
        try:
            result = screen_network(files, options, book, advance)
        except (ValueError, OSError) as exc:
            fail(str(exc))
    # Suppressions and --baseline: `result.records` keeps what is counted, summarised by customer and gated on.
    screened = review_screen("screen network", result.records, NETWORK_IDENTITY, files, baseline)
    result.records, suppressed = screened.active, screened.suppressed
    result.exposure = exposure(result.records)
    records, exposure_table = result.records, result.exposure
    every_record = pa.concat_tables([records, suppressed])  # CSV and Parquet mark the suppressed records
    if fmt is NetworkFormat.table and output is None:
        _print_network(result, options)
        print_suppressed(suppressed, SUPPRESSED_SHOWN)
    else:
        document: dict[str, Any] = {
            "rulebook_version": result.rulebook_version,
            "bundle": result.bundle,
            "role": options.role,
            "where": options.where,
            "records_read": result.rows,
            "malformed": result.malformed,
            "errors": result.errors[:100],
            "notes": result.notes,
            "exposure": to_records(exposure_table),
            "records": to_records(records),
            "suppressed": to_records(suppressed),
        }
        if baseline is not None:
            document["baseline"] = {"file": str(baseline), "unchanged": screened.unchanged}
        writers: dict[NetworkFormat, Sink] = {
            NetworkFormat.json: lambda f: f.write((dumps(document) + "\n").encode("utf-8")),
            NetworkFormat.markdown: lambda f: f.write(
                _network_markdown(result, options, suppressed, screened.warnings).encode("utf-8")
            ),
            NetworkFormat.csv: lambda f: write_csv(every_record, f),
            NetworkFormat.table: lambda f: write_csv(every_record, f),
            NetworkFormat.parquet: lambda f: pq.write_table(every_record, f),
            NetworkFormat.html: lambda f: f.write(_network_html(result, options, suppressed).encode("utf-8")),
        }
        written = emit(writers[fmt], output)
        if output is not None and fmt in (NetworkFormat.csv, NetworkFormat.parquet, NetworkFormat.table):
            flat = (
                exposure_table.drop_columns(["verdicts", "apps"]) if exposure_table.num_columns > 2 else exposure_table
            )
            if written == "file":
                side = output.with_name(output.stem + ".exposure" + output.suffix)
                emit(lambda f: pq.write_table(flat, f) if fmt is NetworkFormat.parquet else write_csv(flat, f), side)
                err.print(
                    f"wrote {counted(records.num_rows, 'record')} to {output} and per-customer exposure to {side}"
                )
            else:
                # Beside a device or FIFO there is no place for a second file (nor should one appear in /dev).
                err.print(
                    f"wrote {counted(records.num_rows, 'record')} to {output}; per-customer exposure not written there"
                )
    for note in result.notes:
        err.print(Text(f"appban: note: {note}", style="yellow"))
    if result.malformed:
        err.print(Text(f"appban: {counted(result.malformed, 'malformed line')} skipped", style="yellow"))
        for line in result.errors[:20]:
            err.print(Text(f"  {line}", style="yellow"))
    if crossed(fail_on, records, "record") or result.malformed:
        raise typer.Exit(1)


def _print_network(result: NetworkResult, options: NetworkOptions) -> None:
    exposure_table = result.exposure
    grid = Table(title=f"Exposure by customer ({options.role}, {options.where})", title_justify="left")
    for name in ("customer", "records", "bytes", "hosts", "first seen", "last seen", "apps", "verdicts over time"):
        grid.add_column(name, overflow="fold")
    for row in exposure_table.to_pylist():
        periods = Text()
        for period in row.get("verdicts") or []:
            verdict = Verdict(period["verdict"])
            periods.append(f"{verdict.value}", style=verdict_style(verdict))
            periods.append(f" {period['from']:%Y-%m-%d}..{period['to']:%Y-%m-%d} ({period['records']})\n")
        grid.add_row(
            str(row["customer"]),
            f"{row['records']:,}",
            f"{row['bytes'] or 0:,}",
            str(row["distinct_hosts"]),
            str(row["first_seen"])[:19],
            str(row["last_seen"])[:19],
            ", ".join(row["apps"] or []),
            periods,
        )
    out.print(grid)
    out.print(
        f"{result.records.num_rows:,} of {result.rows:,} records matched; {result.malformed:,} malformed; "
        f"rulebook {result.rulebook_version}{from_bundle(result.bundle)}"
    )


def _when(value: object) -> object:
    from appban.tables import instant_text

    return instant_text(value) if isinstance(value, dt.date) else value


def _network_markdown(
    result: NetworkResult, options: NetworkOptions, suppressed: pa.Table, review_warnings: list[str]
) -> str:
    from appban.report import markdown as md
    from appban.tables import to_records

    exposure = [
        [r["customer"], r["records"], r["bytes"], r["distinct_hosts"], _when(r["first_seen"]), _when(r["last_seen"]),
         r["apps"],
         "; ".join(f"{p['verdict']} {str(p['from'])[:10]}..{str(p['to'])[:10]} ({p['records']})"
                   for p in r.get("verdicts") or [])]
        for r in result.exposure.to_pylist()
    ]  # fmt: skip
    columns = ["file", "line", "ts", "client", "host", "customer", "app", "indicator", "verdict"]
    present = [c for c in columns if c in result.records.schema.names]
    rows = [[row.get(c) for c in present] for row in to_records(result.records.slice(0, md.MAX_ROWS + 1))]
    sections = [
        ("", md.facts({"role": options.role, "where": options.where, "records read": result.rows,
                       "matched": result.records.num_rows, "malformed": result.malformed})),
        ("Exposure by customer", md.table(["customer", "records", "bytes", "hosts", "first seen", "last seen",
                                           "apps", "verdicts over time"], exposure)),
        ("Matched records", md.table(present, rows)),
    ]  # fmt: skip
    sections += suppressed_markdown(suppressed, SUPPRESSED_SHOWN, review_warnings)
    if result.notes:
        sections.append(("Notes", "\n".join(f"- {md.cell(note)}" for note in result.notes)))
    bundle = f", bundle {md.code(result.bundle)}" if result.bundle else ""
    sections.append(("", f"rulebook {md.code(result.rulebook_version)}{bundle}"))
    return md.document(f"appban screen network: {result.records.num_rows:,} matched records", sections)


def _network_html(result: NetworkResult, options: NetworkOptions, suppressed: pa.Table) -> str:
    from appban.report import html as html_report

    exposure_rows = [
        [r["customer"], r["records"], r["bytes"], r["distinct_hosts"], _when(r["first_seen"]), _when(r["last_seen"]),
         r["apps"],
         "; ".join(f"{p['verdict']} {p['from']:%Y-%m-%d}..{p['to']:%Y-%m-%d}" for p in r["verdicts"] or [])]
        for r in result.exposure.to_pylist()
    ]  # fmt: skip
    columns = ["file", "line", "ts", "client", "host", "dst_ip", "customer", "app", "scope", "indicator", "verdict"]
    present = [c for c in columns if c in result.records.schema.names]
    rows = [[row.get(c) for c in present] for row in result.records.slice(0, 5000).to_pylist()]
    sections = [
        ("Exposure by customer", html_report.table(
            ["customer", "records", "bytes", "hosts", "first seen", "last seen", "apps", "verdicts"], exposure_rows)),
        ("Matched records (first 5,000)", html_report.table(present, rows, verdict_column="verdict")),
        *suppressed_html(suppressed, SUPPRESSED_SHOWN),
    ]  # fmt: skip
    meta = {
        "role": options.role,
        "where": options.where,
        "records read": result.rows,
        "rulebook": result.rulebook_version,
        **({"bundle": result.bundle} if result.bundle else {}),
        **({"notes": "; ".join(result.notes)} if result.notes else {}),
    }
    return html_report.document("appban network screening", meta, sections)


class BlocklistFormat(StrEnum):
    rpz = "rpz"
    hosts = "hosts"
    unbound = "unbound"
    dnsmasq = "dnsmasq"
    adblock = "adblock"
    nftables = "nftables"
    suricata = "suricata"


class ListScopeOption(StrEnum):
    app = "app"
    company = "company"


@export_app.command("blocklist")
def export_blocklist(
    where: Annotated[str, typer.Option(metavar=PLACE, help="ISO 3166 code of where the network serves.")],
    fmt: Annotated[BlocklistFormat, typer.Option("--format", case_sensitive=False, help="What to load it into.")],
    at: Annotated[
        str | None,
        typer.Option(
            metavar=INSTANT, show_default=False, help="ISO 8601 instant with an offset, or now. Default: now."
        ),
    ] = None,
    scope: Annotated[
        ListScopeOption, typer.Option(case_sensitive=False, help="App-specific names only, or company-wide too.")
    ] = (ListScopeOption.app),
    include_enjoined: Annotated[bool, typer.Option(help="Also list apps whose prohibition is enjoined.")] = False,
    exclude_suspended: Annotated[
        bool, typer.Option(help="Leave out apps whose prohibition the executive does not enforce (2025: EO 14166).")
    ] = False,
    output: OutputOption = None,
    tz: TzOption = None,
    rulebook: RulebookOption = None,
) -> None:
    """Names and prefixes to block (hosting, CDN, transit) that follow from the law at T, each cited."""
    from appban.engine.decide import DecisionInputError, resolve_place
    from appban.network.blocklist import WRITERS, compile_blocklist
    from appban.network.indicators import default_indicators

    book = load_book(rulebook)
    instant = instant_option(at, tz)
    try:
        place = resolve_place(where)
        compiled = compile_blocklist(
            book,
            default_indicators(book),
            place,
            instant,
            scope.value,
            include_enjoined=include_enjoined,
            exclude_suspended=exclude_suspended,
        )
    except (DecisionInputError, ValueError) as exc:
        fail(flag_message(exc))
    emit_text(WRITERS[fmt.value](compiled.entries, compiled.provenance), output)
    err.print(f"{len(compiled.entries)} entries: {compiled.reason}")
    err.print(f"enforcement: {compiled.provenance.enforcement}")

"""The command line's side of the configuration file, suppressions and baselines (appban.config,
appban.suppress, appban.baseline): the root's --config and --no-config, and the one call each command that
makes findings adds. Nothing here imports more than the standard library until a file is there to read."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from appban.cli.common import err, fail

if TYPE_CHECKING:
    import pyarrow as pa

    from appban.code.scan import ScanResult
    from appban.config import Config
    from appban.suppress import Identity, TableReview

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        # Rich reads "[tool.appban]" as a markup tag and drops it: escaped, it is printed as written.
        help="Read defaults and suppressions from FILE (default: the closest appban.toml, or pyproject.toml "
        "with \\[tool.appban], in this directory or above; or $APPBAN_CONFIG).",
        show_default=False,
    ),
]
NoConfigOption = Annotated[bool, typer.Option("--no-config", help="Read no configuration file.")]
BaselineOption = Annotated[
    Path | None,
    typer.Option(
        "--baseline",
        metavar="FILE",
        exists=True,
        dir_okay=False,
        help="An earlier JSON or SARIF result of this command: report, and gate on, only findings not in it.",
        show_default=False,
    ),
]

# The configuration the root read for this invocation (None: no file). Set anew by every invocation.
_loaded: list[Config | None] = [None]


def apply(ctx: Any, explicit: Path | None, disabled: bool) -> None:
    """Find and read the configuration, and make its values the defaults of the command about to run
    (click's default_map: an option given on the command line still wins). Exit 2 naming file, line and key
    when it cannot be used."""
    from appban.config import ConfigError, chosen

    _loaded[0] = None
    if explicit is not None and disabled:
        fail("give --config FILE or --no-config, not both")
    path = chosen(explicit, disabled)
    if path is None:
        return
    from appban.config import default_map, load

    try:
        config = load(path)
        ctx.default_map = default_map(config, ctx.command, ctx)
    except ConfigError as exc:
        fail(str(exc))
    _loaded[0] = config


def loaded() -> Config | None:
    return _loaded[0]


def review_scan(result: ScanResult, baseline: Path | None, listed: bool = True) -> list[str]:
    """Fingerprint the findings, set aside what the configuration suppresses and what `baseline` held, and
    say so on standard error. What stays in `result.findings` is what the gate judges. `listed`: the output
    lists suppressed findings (CycloneDX, an inventory of SDKs, does not). The warnings said are returned,
    for reports that repeat them."""
    from appban.baseline import BaselineError, identity_root, read
    from appban.suppress import apply_to_scan

    known: set[str] | None = None
    if baseline is not None:
        try:
            known = read(baseline, "scan")
        except BaselineError as exc:
            fail(str(exc))
    config = loaded()
    root = identity_root(result.scan_root(), config.path if config else None)
    outcome = apply_to_scan(result, root.path, config.suppressions if config else [], known)
    warnings = list(outcome.warnings)
    if known and not outcome.known and (result.findings or result.suppressed):
        # Every finding "new" against a baseline of the same repository means it names other files.
        warnings.append(
            f"--baseline {baseline}: none of its {_count(len(known))} is in this run, so every finding counts as "
            f"new. Fingerprints take file paths relative to {root.kind} ({root.path}), and a baseline recorded "
            "from another root names other paths: record it from a scan of the same folder, or scan inside a "
            "git working tree or below appban.toml, whose folder is then the root"
        )
    for warning in warnings:
        err.print(Text(f"appban: warning: {warning}", style="yellow"))
    if result.suppressed:
        assert config is not None
        where = "listed with their reasons" if listed else "not in this output: --format json lists them"
        err.print(f"appban: {_count(len(result.suppressed))} suppressed by {config.path} ({where})")
    if result.unchanged is not None:
        err.print(f"appban: {_count(result.unchanged)} already in the baseline {baseline}, not reported")
    return warnings


def review_screen(
    command: str, table: pa.Table, identity: Identity, files: list[Path], baseline: Path | None
) -> TableReview:
    """A screen's `review_scan`: fingerprint the findings (by `identity`: for inventory the file relative to the
    same root as scan's, the app and the record's identifying fields), set aside what the configuration
    suppresses and what `baseline` held, and say so on standard error. The review's warnings are also for
    Markdown."""
    import os

    from appban.baseline import BaselineError, identity_root, read
    from appban.suppress import apply_to_table

    known: set[str] | None = None
    if baseline is not None:
        try:
            known = read(baseline, command)
        except BaselineError as exc:
            fail(str(exc))
    config = loaded()
    folders = [os.path.dirname(os.path.realpath(file)) for file in files]
    try:
        scanned: str | None = os.path.commonpath(folders) if folders else None
    except ValueError:  # files on different drives
        scanned = None
    root = identity_root(scanned, config.path if config else None)
    screened = apply_to_table(command, table, identity, root.path, config.suppressions if config else [], known)
    if known and not screened.known and table.num_rows:
        if identity.by_file:
            why = (f"Fingerprints take file paths relative to {root.kind} ({root.path}): record the baseline "
                   "from the same files, screened from the same root")  # fmt: skip
        else:
            why = "Was it recorded from other logs or exports, or with other options (--role, --customer-table)?"
        screened.warnings.append(
            f"--baseline {baseline}: none of its {_count(len(known))} is in this run, so every finding counts as "
            f"new. {why}"
        )
    for warning in screened.warnings:
        err.print(Text(f"appban: warning: {warning}", style="yellow"))
    if screened.suppressed.num_rows:
        assert config is not None
        err.print(
            f"appban: {_count(screened.suppressed.num_rows)} suppressed by {config.path} (listed with their reasons)"
        )
    if known is not None:
        err.print(f"appban: {_count(screened.unchanged)} already in the baseline {baseline}, not reported")
    return screened


class FailOn(StrEnum):
    none = "none"
    prohibited = "prohibited"
    any = "any"


FailOnOption = Annotated[
    FailOn,
    typer.Option(
        case_sensitive=False,
        help="Also exit 1 when a finding is prohibited, or when there is any (see Exit codes); suppressed "
        "findings and those in --baseline are not judged.",
    ),
]


def crossed(fail_on: FailOn, findings: pa.Table, what: str = "finding") -> bool:
    """Whether a screen's reviewed findings (suppressed and known ones already set aside) cross --fail-on;
    standard error says how many did."""
    import pyarrow.compute as pc

    if fail_on is FailOn.none or findings.num_rows == 0:
        return False
    if fail_on is FailOn.any:
        over = findings.num_rows
    elif "verdict" in findings.column_names:
        verdicts = pc.cast(findings.column("verdict"), "string")
        over = pc.sum(pc.equal(verdicts, "prohibited")).as_py() or 0
    else:
        over = 0
    if over:
        counted = f"1 {what} crosses" if over == 1 else f"{over:,} {what}s cross"
        err.print(f"appban: {counted} --fail-on {fail_on.value}")
    return bool(over)


# Suppressed findings are listed in every output under their own title, with the entry that accepts them.
ACCEPTED = {"suppression_reason": "reason", "suppression_until": "until", "suppression_source": "entry"}


# A log screened whole may have a million suppressed records: the reports list the first ones and say how many.
SHOWN_ROWS = 200
HTML_ROWS = 5000


def _accepted_rows(suppressed: pa.Table, shown: list[str], file_name: bool, limit: int) -> list[list[Any]]:
    """The first `limit` rows of `suppressed` as `shown` columns and the entry's; "file:line" is one column."""
    import datetime as dt

    from appban.tables import instant_text

    rows = []
    for row in suppressed.slice(0, limit).to_pylist():
        values: list[Any] = []
        for name in (*shown, *ACCEPTED):
            if name == "file:line":
                values.append(f"{Path(str(row.get('file'))).name}:{row.get('line')}")
            elif name == "file" and file_name:
                values.append(Path(str(row.get("file"))).name)
            else:
                value = row.get(name)
                if isinstance(value, dt.date):  # an instant as every output writes it, with its Z
                    value = instant_text(value)
                values.append(value)
        rows.append(values)
    return rows


def print_suppressed(suppressed: pa.Table, shown: list[str]) -> None:
    """The terminal's list of accepted findings: out of the counts, in sight with the reason and the date."""
    from rich.table import Table

    from appban.cli.common import out
    from appban.cli.conventions import counted

    if not suppressed.num_rows:
        return
    grid = Table(
        title=f"{counted(suppressed.num_rows, 'finding')} suppressed by the configuration", title_justify="left"
    )
    for name in (*shown, *ACCEPTED.values()):
        grid.add_column(name, overflow="fold")
    for row in _accepted_rows(suppressed, shown, file_name=True, limit=SHOWN_ROWS):
        grid.add_row(*("" if value is None else str(value) for value in row))
    out.print(grid)
    if suppressed.num_rows > SHOWN_ROWS:
        out.print(f"… and {suppressed.num_rows - SHOWN_ROWS:,} more suppressed (see --format json or csv)")


def suppressed_markdown(suppressed: pa.Table, shown: list[str], warnings: list[str]) -> list[tuple[str, str]]:
    """Markdown sections: the suppressed findings, and the review's warnings (expired entries, a baseline
    that matches nothing)."""
    from appban.report import markdown as md

    sections = []
    if suppressed.num_rows:
        headers = [*shown, *ACCEPTED.values()]
        rows = _accepted_rows(suppressed, shown, file_name=True, limit=md.MAX_ROWS)
        more = suppressed.num_rows - len(rows)
        tail = f"\n\n… and {more:,} more suppressed (see the JSON or CSV output for all)." if more else ""
        sections.append(("Suppressed", md.table(headers, rows) + tail))
    if warnings:
        sections.append(("Warnings", "\n".join(f"- {md.cell(warning)}" for warning in warnings)))
    return sections


def suppressed_html(suppressed: pa.Table, shown: list[str]) -> list[tuple[str, str]]:
    """The HTML report's section of suppressed findings (none when there are none)."""
    from appban.report import html as html_report

    if not suppressed.num_rows:
        return []
    headers = [*shown, *ACCEPTED]
    rows = _accepted_rows(suppressed, shown, file_name=False, limit=HTML_ROWS)
    title = "Suppressed" if len(rows) == suppressed.num_rows else f"Suppressed (first {HTML_ROWS:,})"
    return [(title, html_report.table(headers, rows))]


def _count(number: int) -> str:
    return f"{number} finding" if number == 1 else f"{number} findings"

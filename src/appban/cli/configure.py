"""The command line's side of the configuration file, suppressions and baselines (appban.config,
appban.suppress, appban.baseline): the root's --config and --no-config, and the one call each command that
makes findings adds. Nothing here imports more than the standard library until a file is there to read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from appban.cli.common import err, fail

if TYPE_CHECKING:
    import pyarrow as pa

    from appban.code.scan import ScanResult
    from appban.config import Config
    from appban.suppress import TableReview

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
            known = read(baseline)
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
    command: str, table: pa.Table, fields: list[str], files: list[Path], baseline: Path | None
) -> tuple[TableReview, list[str]]:
    """A screen's `review_scan`: fingerprint the findings (the file relative to the same root as scan's, the
    app, the category and the record's identifying `fields`), set aside what the configuration suppresses and
    what `baseline` held, and say so on standard error. The warnings said are returned for Markdown."""
    import os

    from appban.baseline import BaselineError, identity_root, read
    from appban.suppress import apply_to_table

    known: set[str] | None = None
    if baseline is not None:
        try:
            known = read(baseline)
        except BaselineError as exc:
            fail(str(exc))
    config = loaded()
    folders = [os.path.dirname(os.path.realpath(file)) for file in files]
    try:
        scanned: str | None = os.path.commonpath(folders) if folders else None
    except ValueError:  # files on different drives
        scanned = None
    root = identity_root(scanned, config.path if config else None)
    screened = apply_to_table(command, table, fields, root.path, config.suppressions if config else [], known)
    outcome = screened.outcome
    warnings = list(outcome.warnings)
    if known and not outcome.known and table.num_rows:
        warnings.append(
            f"--baseline {baseline}: none of its {_count(len(known))} is in this run, so every finding counts as "
            f"new. Fingerprints take file paths relative to {root.kind} ({root.path}): record the baseline from "
            f"the same files, screened from the same root"
        )
    for warning in warnings:
        err.print(Text(f"appban: warning: {warning}", style="yellow"))
    if screened.suppressed.num_rows:
        assert config is not None
        err.print(
            f"appban: {_count(screened.suppressed.num_rows)} suppressed by {config.path} (listed with their reasons)"
        )
    if known is not None:
        err.print(f"appban: {_count(outcome.unchanged)} already in the baseline {baseline}, not reported")
    return screened, warnings


def _count(number: int) -> str:
    return f"{number} finding" if number == 1 else f"{number} findings"

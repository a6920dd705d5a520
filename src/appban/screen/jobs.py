"""One way to run any screener on one file: the service's screening runs (and anything else that runs
screens unattended) call `run_screen(kind, path, options)` and get findings as plain records.

Each kind keeps its own library call and options; this module only maps a flat option dictionary (what
an HTTP form or a JSON body carries) onto them and the results onto `ScreenOutcome`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appban.engine.decide import resolve_place
from appban.engine.instants import parse_instant
from appban.rulebook.loader import Rulebook
from appban.tables import to_records

KINDS = ("inventory", "code", "network", "payments")
Progress = Callable[[int], None]  # rows (or files) screened so far, called as the screen goes


@dataclass
class ScreenOutcome:
    findings: list[dict[str, Any]]
    summary: dict[str, Any]
    errors: list[str] = field(default_factory=list)


class ScreenOptionError(ValueError):
    """An option a screen does not take, or a value it cannot use."""


def run_screen(
    kind: str,
    path: Path,
    options: Mapping[str, str],
    rulebook: Rulebook,
    progress: Progress | None = None,
    *,
    hide_folder: Path | None = None,
) -> ScreenOutcome:
    """Screen one file with the `kind` screener; `options` are that screener's, as strings.

    `hide_folder` is taken out of every file name in the outcome (a server's upload folder is not the
    caller's business: they know the name they sent).
    """
    check_options(kind, options)
    outcome = _RUNNERS[kind](Path(path), dict(options), rulebook, progress or (lambda rows: None))
    # Plain JSON values, so that the outcome can be stored and sent as it is: amounts stay exact as text.
    text = json.dumps([outcome.findings, outcome.summary, outcome.errors], default=_text, ensure_ascii=False)
    if hide_folder is not None:
        text = text.replace(json.dumps(str(hide_folder) + os.sep)[1:-1], "")
    findings, summary, errors = json.loads(text)
    return ScreenOutcome(findings, summary, errors)


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)  # Decimal and anything else: its exact text


def check_options(kind: str, options: Mapping[str, str]) -> None:
    """ScreenOptionError unless `kind` is a screen and takes every option named (values are checked by the run)."""
    if kind not in _RUNNERS:
        raise ScreenOptionError(f"unknown screen {kind!r} (known: {', '.join(KINDS)})")
    allowed = _OPTIONS[kind]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ScreenOptionError(f"{kind} screens take {', '.join(allowed) or 'no options'}, not {', '.join(unknown)}")


def _mapping(text: str | None) -> dict[str, str]:
    from appban.screen.columns import parse_map

    return parse_map(text)


def _inventory(path: Path, options: dict[str, str], book: Rulebook, progress: Progress) -> ScreenOutcome:
    from appban.screen.inventory import InventoryOptions, Screener, inventory_summary
    from appban.tables import line_mapper, read_table

    fleet = options.get("fleet", "corporate")
    if fleet not in ("government", "corporate", "personal"):
        raise ScreenOptionError(f"fleet must be government, corporate or personal, not {fleet!r}")
    settings = InventoryOptions(
        where=resolve_place(options.get("where", "US")),
        at=options.get("at"),
        at_column=options.get("at_column"),
        tz=options.get("tz"),
        fleet=fleet,  # type: ignore[arg-type]
        mapping=_mapping(options.get("map")),
    )
    if settings.at is not None:
        parse_instant(settings.at, settings.tz)
    table = read_table(path, all_text=True)
    result = Screener(book, settings).screen(table, path.name, line_mapper(path))
    progress(result.rows)
    summary = {"rows": result.rows, **inventory_summary(result.findings)}
    return ScreenOutcome(to_records(result.findings), summary, [str(e) for e in result.errors])


def _code(path: Path, options: dict[str, str], book: Rulebook, progress: Progress) -> ScreenOutcome:
    from appban.code.scan import scan

    at = parse_instant(options["at"], options.get("tz")) if options.get("at") else None
    result = scan([path], at=at, where=resolve_place(options.get("where", "US")), rulebook=book)
    progress(result.files)
    findings = [finding.to_json_dict() for finding in result.findings]
    summary = {"files": result.files, "findings": len(findings), "at": result.at, "where": result.where}
    return ScreenOutcome(findings, summary, [str(w) for w in result.warnings])


def _network(path: Path, options: dict[str, str], book: Rulebook, progress: Progress) -> ScreenOutcome:
    from appban.screen.network import ROLE_CATEGORY, NetworkOptions, screen_network

    role = options.get("role", "hosting")
    if role not in ROLE_CATEGORY:
        raise ScreenOptionError(f"role must be one of {', '.join(ROLE_CATEGORY)}, not {role!r}")
    settings = NetworkOptions(
        role=role,  # type: ignore[arg-type]
        where=resolve_place(options.get("where", "US")),
        customer_column=options.get("customer_column"),
        log_format=options.get("log_format"),
        column_map=_mapping(options.get("map")) or None,
        log_tz=options.get("log_tz"),
    )
    result = screen_network([path], settings, book, progress)
    summary = {
        "records_read": result.rows,
        "matched": result.records.num_rows,
        "malformed": result.malformed,
        "exposure": to_records(result.exposure),
    }
    return ScreenOutcome(to_records(result.records), summary, result.errors)


def _payments(path: Path, options: dict[str, str], book: Rulebook, progress: Progress) -> ScreenOutcome:
    from appban.screen.payments import PaymentOptions, screen_payments

    settings = PaymentOptions(options.get("input_format"), _mapping(options.get("map")) or None, options.get("tz"))
    result = screen_payments([path], settings, book, progress=progress)
    summary = {
        "payments_read": result.rows,
        "flagged": result.payments.num_rows,
        "malformed": result.malformed,
        "totals": to_records(result.totals),
    }
    return ScreenOutcome(to_records(result.payments), summary, result.errors)


_RUNNERS: dict[str, Callable[[Path, dict[str, str], Rulebook, Progress], ScreenOutcome]] = {
    "inventory": _inventory,
    "code": _code,
    "network": _network,
    "payments": _payments,
}
_OPTIONS: dict[str, tuple[str, ...]] = {
    "inventory": ("where", "at", "at_column", "tz", "fleet", "map"),
    "code": ("where", "at", "tz"),
    "network": ("role", "where", "customer_column", "log_format", "map", "log_tz"),
    "payments": ("input_format", "map", "tz"),
}

"""One way to run any screener on one file: the service's screening runs (and anything else that runs
screens unattended) call `run_screen(kind, path, options)` and get findings as plain records.

Each kind keeps its own library call and options; this module only maps a flat option dictionary (what
an HTTP form or a JSON body carries) onto them and the results onto `ScreenOutcome`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appban.engine.decide import DecisionInputError, resolve_place
from appban.engine.instants import InstantError, iso, parse_instant
from appban.rulebook.loader import Rulebook
from appban.rulebook.schema import zone_from_name
from appban.tables import to_records

KINDS = ("inventory", "code", "network", "payments")
_FLEETS = ("government", "corporate", "personal")
Progress = Callable[[int], None]  # rows (or files) screened so far, called as the screen goes
NOW = "now"  # what `at` takes for this instant, as the CLI's --at does (any case)


@dataclass
class ScreenOutcome:
    findings: list[dict[str, Any]]
    summary: dict[str, Any]
    errors: list[str] = field(default_factory=list)


class ScreenOptionError(ValueError):
    """An option a screen does not take, or a value it cannot use; the message starts with the option's name."""


class ScreenFailed(RuntimeError):
    """A run that could not finish; the message names the file as its caller sent it, never a server path."""


_MAX_OPTION_CHARS = 1000
# log_year: the years a log line can carry (four digits; before 1970 there were no such logs).
_LOG_YEARS = range(1970, 10000)
# Directories of an absolute path in a message ("/srv/uploads/x1/a.csv" keeps "a.csv"); not a URL's path.
_FOLDERS = re.compile(r"(?<![\w.:/])/(?:[^\s'\"/]+/)+")


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
    options = with_now_resolved(options, utc_now())  # a caller that has not resolved `now` yet
    try:
        outcome = _RUNNERS[kind](Path(path), dict(options), rulebook, progress or (lambda rows: None))
    except Exception as exc:
        raise ScreenFailed(_without_paths(f"{type(exc).__name__}: {exc}", hide_folder)) from exc
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


def failure_message(exc: BaseException, folder: Path | None = None) -> str:
    """What a failed run shows its caller: the error, without the server's paths."""
    if isinstance(exc, ScreenFailed):
        return str(exc)
    return _without_paths(f"{type(exc).__name__}: {exc}", folder)


def _without_paths(message: str, folder: Path | None) -> str:
    if folder is not None:
        message = message.replace(str(folder) + os.sep, "").replace(str(folder), "")
    return _FOLDERS.sub("", message)


def check_options(kind: str, options: Mapping[str, str]) -> None:
    """ScreenOptionError unless `kind` is a screen that takes every option named, with a value it can use:
    checked before a run is queued, so that a bad option is the caller's error now, not a failed run later."""
    if kind not in _RUNNERS:
        raise ScreenOptionError(f"unknown screen {kind[:64]!r} (known: {', '.join(KINDS)})")
    allowed = _OPTIONS[kind]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        named = ", ".join(name[:64] for name in unknown[:10])
        raise ScreenOptionError(f"{kind} screens take {', '.join(allowed) or 'no options'}, not {named}")
    for name, value in options.items():
        if not isinstance(value, str) or len(value) > _MAX_OPTION_CHARS or not value.isprintable():
            raise ScreenOptionError(f"{name}: not printable text of at most {_MAX_OPTION_CHARS} characters")
        if not value.strip():
            raise ScreenOptionError(f"{name}: empty")
    try:
        _check_values(kind, options)
    except (DecisionInputError, InstantError, ValueError) as exc:
        if isinstance(exc, ScreenOptionError):
            raise
        raise ScreenOptionError(str(exc)) from None


def means_now(text: str | None) -> bool:
    """Whether an instant's text is `now` (in any case, with any spaces around it)."""
    return text is not None and text.strip().lower() == NOW


def utc_now() -> dt.datetime:
    """This instant in UTC, to the second (the precision every answer writes its instants in)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def with_now_resolved(options: Mapping[str, str], instant: dt.datetime) -> dict[str, str]:
    """The options with an `at` of `now` written as `instant` (ISO 8601 with Z): a run's recorded options
    then say which instant it decided at, and repeat it, however long after the run they are read."""
    resolved = dict(options)
    if means_now(resolved.get("at")):
        resolved["at"] = iso(instant)
    return resolved


def options_instant(options: Mapping[str, str]) -> dt.datetime | None:
    """The instant a run's `at` option names (after `with_now_resolved`), or None when it has none."""
    at = options.get("at")
    return None if at is None or means_now(at) else parse_instant(at, options.get("tz"))


def _check_values(kind: str, options: Mapping[str, str]) -> None:
    from appban.screen.columns import ROLES, ColumnMapError

    if "where" in options:
        resolve_place(options["where"])
    for name in ("tz", "log_tz"):
        if name in options:
            try:
                zone_from_name(options[name])
            except ValueError as exc:
                raise ScreenOptionError(f"{name}: {exc}") from None
    if "at" in options and not means_now(options["at"]):
        try:
            parse_instant(options["at"], options.get("tz"))
        except InstantError as exc:
            raise ScreenOptionError(f"at: {exc}") from None
    if "map" in options:
        try:
            mapping = _mapping(options["map"])
        except ColumnMapError as exc:
            raise ScreenOptionError(f"map: {exc}") from None
        if kind == "inventory" and (bad := sorted(set(mapping) - set(ROLES))):
            raise ScreenOptionError(f"map: unknown role {bad[0][:64]!r} (roles: {', '.join(ROLES)})")
    if kind == "inventory" and options.get("fleet", "corporate") not in _FLEETS:
        raise ScreenOptionError(f"fleet: must be {', '.join(_FLEETS)}, not {options['fleet'][:64]!r}")
    if kind == "network":
        _check_network(options)
    if kind == "payments" and options.get("input_format") is not None:
        from appban.payments.readers import READER_NAMES

        if options["input_format"] not in READER_NAMES:
            known = ", ".join(READER_NAMES)
            raise ScreenOptionError(f"input_format: unknown payment format {options['input_format'][:64]!r} ({known})")
    if kind == "payments":
        from appban.payments.dates import DateOrder
        from appban.screen.payments import check_decimal, parse_constants

        try:
            parse_constants(_pairs(options.get("set")))
            check_decimal(options.get("decimal"))
            DateOrder(options.get("date_order"))
        except ValueError as exc:
            raise ScreenOptionError(str(exc).removeprefix("--")) from None


def _pairs(text: str | None) -> list[str]:
    """The `set` option, "merchant_country=US,processor=Stripe", as FIELD=VALUE pairs."""
    return [pair for pair in (text or "").split(",") if pair.strip()]


def _check_network(options: Mapping[str, str]) -> None:
    from appban.network.readers import FAMILIES, make_readers
    from appban.screen.network import ROLE_CATEGORY

    role = options.get("role", "hosting")
    if role not in ROLE_CATEGORY:
        raise ScreenOptionError(f"role: must be one of {', '.join(ROLE_CATEGORY)}, not {role[:64]!r}")
    _log_year(options.get("log_year"))
    log_format = options.get("log_format")
    if log_format is not None:
        known = [reader.name for reader in make_readers()] + list(FAMILIES) + ["generic"]
        if log_format not in known:
            raise ScreenOptionError(f"log_format: unknown log format {log_format[:64]!r} (known: {', '.join(known)})")
        if "map" in options and log_format != "generic":
            raise ScreenOptionError(f"map: a column map is for log_format generic, not {log_format[:64]!r}")


def _log_year(text: str | None) -> int | None:
    """The `log_year` option (the year of syslog times written without one), or ScreenOptionError."""
    if text is None:
        return None
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or int(value) not in _LOG_YEARS:
        shown = text[:64]
        raise ScreenOptionError(
            f"log_year: a year from {_LOG_YEARS.start} to {_LOG_YEARS.stop - 1}, written in digits, not {shown!r}"
        )
    return int(value)


def _mapping(text: str | None) -> dict[str, str]:
    from appban.screen.columns import parse_map

    return parse_map(text)


def _inventory(path: Path, options: dict[str, str], book: Rulebook, progress: Progress) -> ScreenOutcome:
    from appban.screen.inventory import InventoryOptions, Screener, inventory_summary
    from appban.tables import line_mapper, read_table

    fleet = options.get("fleet", "corporate")
    if fleet not in _FLEETS:
        raise ScreenOptionError(f"fleet: must be {', '.join(_FLEETS)}, not {fleet[:64]!r}")
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
        log_year=_log_year(options.get("log_year")),
    )
    result = screen_network([path], settings, book, progress)
    summary = {
        "records_read": result.rows,
        "matched": result.records.num_rows,
        "malformed": result.malformed,
        "exposure": to_records(result.exposure),
        # What the read assumed rather than found (the year of yearless syslog times), named as this
        # interface names its option.
        "notes": [note.replace("--log-year", "the log_year option") for note in result.notes],
    }
    return ScreenOutcome(to_records(result.records), summary, result.errors)


def _payments(path: Path, options: dict[str, str], book: Rulebook, progress: Progress) -> ScreenOutcome:
    from appban.payments.dates import DateOrder
    from appban.screen.payments import PaymentOptions, parse_constants, screen_payments

    settings = PaymentOptions(
        options.get("input_format"),
        _mapping(options.get("map")) or None,
        options.get("tz"),
        parse_constants(_pairs(options.get("set"))) or None,
        options.get("decimal"),
        DateOrder(options.get("date_order")).order,
    )
    result = screen_payments([path], settings, book, progress=progress)
    summary = {
        "payments_read": result.rows,
        "flagged": result.payments.num_rows,
        "malformed": result.malformed,
        "totals": to_records(result.totals),
        "apart": result.apart.num_rows,
        "apart_by_reason": result.apart_counts(),  # never in the totals: set aside by a stated method, not completed
        "skipped": result.skipped,
        "notes": result.notes,
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
    "network": ("role", "where", "customer_column", "log_format", "map", "log_tz", "log_year"),
    "payments": ("input_format", "map", "tz", "set", "decimal", "date_order"),
}


# --- what each screen takes and reads, for a client's upload form (`GET /v1/screens`) ---------------------

# File names each screen expects, as an HTML file input's `accept` takes them. Inventory tables are told by
# their suffix (appban.tablereader); logs, payment files and code are told by their content, so a file of
# another name is still read when `by_content` is true (a rotated "query.log.1", a manifest, an APK).
_ACCEPT: dict[str, tuple[str, ...]] = {
    "inventory": (".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".parquet", ".pq"),
    "code": (),
    "network": (".log", ".txt", ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".parquet", ".gz", ".zst"),
    "payments": (".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".xml", ".gz", ".zst"),
}
_BY_CONTENT = {"inventory": False, "code": True, "network": True, "payments": True}
_HELP: dict[str, str] = {
    "where": "ISO 3166-1 or 3166-2 code of the place decided for, where the file does not say (default US)",
    "at": "ISO 8601 instant (or now) every row is decided at, where the file has no time of its own (default: now)",
    "at_column": "the column holding each row's instant",
    "tz": "zone (IANA name) of instants written without an offset",
    "fleet": "whose devices an inventory lists (default corporate)",
    "map": "column map, ROLE=COLUMN pairs separated by commas",
    "role": "the operator's role for the traffic in the logs (default hosting)",
    "customer_column": "the column naming the customer a log record belongs to",
    "log_format": "the log format, when detection should not choose",
    "log_tz": "zone (IANA name) of log times written without an offset",
    "log_year": "year of syslog times written without one",
    "input_format": "the payment file format, when detection should not choose",
    "set": "values for the whole file, FIELD=VALUE pairs separated by commas (merchant_country=US)",
    "decimal": "the decimal mark of amounts",
    "date_order": "the order of day and month in dates written with slashes",
}


def _choices(name: str) -> tuple[str, ...]:
    if name == "fleet":
        return _FLEETS
    if name == "role":
        from appban.screen.network import ROLE_CATEGORY

        return tuple(ROLE_CATEGORY)
    if name == "log_format":
        from appban.network.readers import FAMILIES, make_readers

        return tuple(dict.fromkeys([*(reader.name for reader in make_readers()), *FAMILIES, "generic"]))
    if name == "input_format":
        from appban.payments.readers import READER_NAMES

        return READER_NAMES
    if name == "decimal":
        from appban.payments.values import DECIMAL_MARKS

        return tuple(DECIMAL_MARKS)
    if name == "date_order":
        from appban.payments.dates import DATE_ORDERS

        return tuple(DATE_ORDERS)
    return ()


def describe_screens() -> list[dict[str, Any]]:
    """Each screen's options (name, what it means, its allowed values) and the file names it expects."""
    return [
        {
            "kind": kind,
            "options": [{"name": name, "description": _HELP[name], "choices": list(_choices(name))} for name in names],
            "accept": list(_ACCEPT[kind]),
            "by_content": _BY_CONTENT[kind],
        }
        for kind, names in _OPTIONS.items()
    ]


def option_parameters() -> list[dict[str, Any]]:
    """The screens' options as OpenAPI query parameters (of POST /v1/screens/{kind}), each naming the screens
    that take it: a client learns them from the API's own document."""
    takes: dict[str, list[str]] = {}
    for kind, names in _OPTIONS.items():
        for name in names:
            takes.setdefault(name, []).append(kind)
    parameters = []
    for name, kinds in takes.items():
        schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": _MAX_OPTION_CHARS}
        if choices := _choices(name):
            schema["enum"] = list(choices)
        description = f"{_HELP[name]}; taken by {', '.join(kinds)} screens"
        parameters.append(
            {"name": name, "in": "query", "required": False, "description": description, "schema": schema}
        )
    return parameters

"""The configuration file: defaults for command options and the suppression list.

Found as ruff finds its own (docs/configuration.md, "Config file discovery"): the closest file in the current
directory or its parents; in one directory `appban.toml` wins over `pyproject.toml`, and a `pyproject.toml`
without a `[tool.appban]` table is passed over. Only that one file is read: parents are not merged in.
`--config FILE` or `APPBAN_CONFIG=FILE` name a file instead, and `--no-config` reads none (ruff's
`--isolated`). A flag on the command line always wins over the file.

    where = "US"                  # every command that has --where (and tz: every one with --tz)
    [scan]
    fail-on = "prohibited"
    format = "sarif"
    [screen.inventory]
    fleet = "government"
    [[ignore]]                    # a suppression: see appban.suppress
    app = "wechat"
    signature = "wechat-opensdk-android"
    reason = "share button, removal tracked in APP-123"
    until = 2027-06-30

A key no command section knows is refused with the file, line and key, as is a value the option refuses.
tomllib gives no positions, so `key_line` finds the line of a key by reading the file's table headers and
key lines (enough for what a configuration holds; a key it cannot place is reported without a line).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appban.suppress import Suppression

ENV_VAR = "APPBAN_CONFIG"
NAMES = ("appban.toml", "pyproject.toml")  # in one directory, the first found wins
MAX_BYTES = 1 << 20  # a configuration is a few lines; anything larger is not one

# The options each command section may set, by their long flag without "--". A command not listed takes no
# defaults from the file. tests/test_config.py holds every name here to a real option of its command.
SECTION_OPTIONS: dict[str, tuple[str, ...]] = {
    "check": ("where", "tz", "format"),
    "timeline": ("where", "tz", "format"),
    "decide": ("tz", "format"),
    "scan": ("where", "tz", "fail-on", "format"),
    "screen.inventory": ("where", "fleet", "tz", "fail-on", "format"),
    "screen.network": ("where", "role", "scope", "fail-on", "format", "log-tz"),
    "screen.payments": ("tz", "fail-on", "format"),
    "export.mdm": ("where", "format"),
    "export.blocklist": ("where", "format"),
}
# Set at the top of the file, these apply to every command above that has the option.
GLOBAL_OPTIONS = ("where", "tz")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file, the line where known, and the key."""


@dataclass(frozen=True)
class Config:
    path: Path
    # "scan" or "screen.inventory" -> {flag name without "--": value}, global options already folded in.
    defaults: dict[str, dict[str, str]]
    suppressions: list[Suppression] = field(default_factory=list)

    def where(self, loc: Sequence[str | int]) -> str:
        """`file:line` of a key (or of its table), for messages."""
        return locate(self.path, loc)


def find(start: Path) -> Path | None:
    """The closest configuration file at or above `start`: `appban.toml`, else a `pyproject.toml` that has a
    `[tool.appban]` table."""
    folder = start.resolve()
    for candidate in (folder, *folder.parents):
        for name in NAMES:
            path = candidate / name
            if path.is_file() and (name != "pyproject.toml" or _has_tool_table(path)):
                return path
    return None


def chosen(explicit: Path | None, disabled: bool, cwd: Path | None = None) -> Path | None:
    """The file to read: none with --no-config, else --config, else $APPBAN_CONFIG, else the closest one."""
    if disabled:
        return None
    if explicit is not None:
        return explicit
    named = os.environ.get(ENV_VAR, "").strip()
    if named:
        return Path(named)
    return find(cwd or Path.cwd())


def load(path: Path, today: dt.date | None = None) -> Config:
    """Read and validate a configuration file (ConfigError names what is wrong and where)."""
    import tomllib

    from pydantic import ValidationError

    from appban.suppress import Suppression

    text = _read(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from None
    prefix: tuple[str, ...] = ()
    if path.name == "pyproject.toml":
        prefix = ("tool", "appban")
        document = document.get("tool", {}).get("appban", {})
        if not isinstance(document, dict):
            raise ConfigError(f"{locate(path, prefix)}: [tool.appban] must be a table")
    from appban.configschema import ConfigFile

    try:
        parsed = ConfigFile.model_validate(document)
    except ValidationError as exc:
        problem = exc.errors()[0]
        loc = tuple(problem["loc"])
        raise ConfigError(f"{locate(path, prefix + loc)}: {_dotted(loc)}: {_reason(problem)}") from None
    defaults: dict[str, dict[str, str]] = {}
    shared = {key: value for key, value in parsed.shared().items() if value is not None}
    for section, allowed in SECTION_OPTIONS.items():
        given = parsed.section(section)
        merged = {key: value for key, value in shared.items() if key in allowed} | given
        for key in given:
            if key not in allowed:
                loc = (*section.split("."), key)
                known = ", ".join(allowed)
                raise ConfigError(f"{locate(path, prefix + loc)}: [{section}] {key}: not an option of "
                                  f"`appban {section.replace('.', ' ')}` that the file may set ({known})")  # fmt: skip
        if merged:
            defaults[section] = merged
    # Outputs name an entry by its file relative to where appban runs, never by a path of this machine.
    shown = _shown(path)
    suppressions = []
    for index, entry in enumerate(parsed.ignore):
        line = key_line(text, (*prefix, "ignore", index))
        source = f"{shown}:{line}" if line else shown
        suppressions.append(Suppression.from_entry(entry, source=source, root=path.resolve().parent))
    return Config(path, defaults, suppressions)


def default_map(config: Config, group: Any, ctx: Any) -> dict[str, Any]:
    """click's `default_map` for the commands in `group` (the root command group): per command, its
    parameter names with the file's values, each value checked by the option itself so that a bad one is
    reported with the file and line rather than as if typed on the command line."""
    tree: dict[str, Any] = {}
    for section, values in config.defaults.items():
        names = section.split(".")
        command = group
        for name in names:
            command = command.get_command(ctx, name) if hasattr(command, "get_command") else None
            if command is None:
                break
        if command is None:  # not in this (narrowed) command tree: nothing to set
            continue
        node = tree
        for name in names:
            node = node.setdefault(name, {})
        for key, value in values.items():
            parameter = next((p for p in command.params if f"--{key}" in getattr(p, "opts", ())), None)
            loc = (*_prefix(config.path), *names, key)
            if parameter is None:
                raise ConfigError(f"{locate(config.path, loc)}: [{section}] {key}: the command has no --{key}")
            try:
                parameter.process_value(_context(command, ctx), value)
            except Exception as exc:  # the option's own refusal (BadParameter), whatever its class
                message = getattr(exc, "message", None) or str(exc)
                raise ConfigError(f"{locate(config.path, loc)}: [{section}] {key}: {message}") from None
            node[parameter.name] = value
    return tree


def _shown(path: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), Path.cwd().resolve())).as_posix()
    except ValueError:  # another drive
        return path.name


def _context(command: Any, parent: Any) -> Any:
    return type(parent)(command, parent=parent, info_name=command.name)


def _prefix(path: Path) -> tuple[str, ...]:
    return ("tool", "appban") if path.name == "pyproject.toml" else ()


def _read(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES:,} bytes: not a configuration file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None


_TOOL_TABLE = re.compile(r"^\s*\[\[?\s*tool\s*\.\s*[\"']?appban[\"']?\s*[\].]", re.MULTILINE)
# Where else a `tool.appban` table can be written: under a `[tool]` header, with a quoted name
# (`["tool".appban]`), or as a `tool = {...}` or `tool.appban... =` key. A file with none of these (most,
# including those that list appban as a dependency or a script) has no such table, and is not parsed: TOML's
# parser takes longer than a light command's answer.
_TOOL_KEY = re.compile(
    r"^\s*(?:\[\[?\s*(?:[\"']?tool[\"']?\s*\]|[\"']tool[\"']\s*\.)|[\"']?tool[\"']?\s*[=.])", re.MULTILINE
)


def _has_tool_table(path: Path) -> bool:
    try:
        text = _read(path)
    except ConfigError:
        return False
    if _TOOL_TABLE.search(text):
        return True
    if "appban" not in text or not _TOOL_KEY.search(text):  # every spelling of the table names both
        return False
    import tomllib

    try:  # `tool = { appban = {...} }` and other spellings the header test misses
        return isinstance(tomllib.loads(text).get("tool", {}).get("appban"), dict)
    except (tomllib.TOMLDecodeError, AttributeError):
        return False


def _dotted(loc: Sequence[str | int]) -> str:
    return ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in loc).replace(".[", "[")


def _reason(problem: Mapping[str, Any]) -> str:
    if problem.get("type") == "extra_forbidden":
        return "unknown key"
    if problem.get("type") == "missing":
        return "required"
    message = str(problem.get("msg", "invalid"))
    # pydantic puts "Value error, " before the message a validator raised: the message alone says it.
    if problem.get("type") == "value_error":
        context = problem.get("ctx") or {}
        return str(context.get("error") or message.removeprefix("Value error, "))
    return message


# --- where a key is: file:line ----------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(
    r"^\s*((?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)


def _parts(dotted: str) -> tuple[str, ...]:
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_\-]+)", dotted)
    return tuple(next(p for p in group if p) if any(group) else "" for group in parts)


def locate(path: Path, loc: Sequence[str | int]) -> str:
    """`path:line` of the key at `loc` (table names, then an entry's index in an array of tables, then the
    key), or of the closest table that holds it; `path` alone when neither is found."""
    try:
        text = _read(path)
    except ConfigError:
        return str(path)
    line = key_line(text, loc)
    return f"{path}:{line}" if line else str(path)


def key_line(text: str, loc: Sequence[str | int]) -> int | None:
    target = tuple(loc)
    table: tuple[str | int, ...] = ()
    counts: dict[tuple[str | int, ...], int] = {}
    best: tuple[int, int] | None = None  # (how much of target matched, line)
    quote: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if quote is not None:  # inside a multi-line string: no keys or headers here
            if raw.count(quote) % 2 == 1:
                quote = None
            continue
        header = _HEADER.match(raw)
        if header:
            names: tuple[str | int, ...] = _parts(header.group(2))
            if header.group(1) == "[[":
                index = counts.get(names, 0)
                counts[names] = index + 1
                names = (*names, index)
            else:
                # [a.b] after [[a]] entries: a sub-table of the last entry
                names = _with_indexes(names, counts)
            table = names
            best = _better(best, _matched(table, target), number)
            continue
        key = _KEY.match(raw)
        if key:
            full = (*table, *_parts(key.group(1)))
            best = _better(best, _matched(full, target), number)
            rest = raw[key.end() :]
            for mark in ('"""', "'''"):
                if rest.count(mark) % 2 == 1:
                    quote = mark
    return best[1] if best else None


def _with_indexes(names: tuple[str | int, ...], counts: dict[tuple[str | int, ...], int]) -> tuple[str | int, ...]:
    for cut in range(len(names), 0, -1):
        head = names[:cut]
        if head in counts:
            return (*head, counts[head] - 1, *names[cut:])
    return names


def _matched(found: tuple[str | int, ...], target: tuple[str | int, ...]) -> int:
    """How much of `target` a key or table at `found` stands for: all of it, or a table holding it."""
    if found == target:
        return len(target) + 1
    if len(found) < len(target) and target[: len(found)] == found:
        return len(found)
    return 0


def _better(best: tuple[int, int] | None, score: int, line: int) -> tuple[int, int] | None:
    if score and (best is None or score > best[0]):
        return (score, line)
    return best

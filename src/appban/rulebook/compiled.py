"""The compiled rulebook cache: the validated rulebook kept as one file per user, so that a command does
not parse and cross-check the YAML on every run.

- **Key.** A file is used only for the very rulebook, code and interpreter that wrote it: its name and
  header carry a SHA-256 over the rulebook's files (names and bytes), this module's, the loader's, the
  schema's and `appban.plain`'s source, the Python version, the size and modification time of pydantic's
  version file and compiled core (which check the YAML), and of pycountry's ISO 3166 lists (which decide
  which places are valid). Any change is a new key, so the cache is rebuilt.
- **Signed, and only then read.** Each file is a JSON header line and a body; the header carries an
  HMAC-SHA256 of the key, version and body under a per-user secret (`key` in the cache directory, 32 random
  bytes, mode 0600, held to the same ownership rule). The body is the rulebook's dataclasses as `pickle` wrote
  them, and it is unpickled only after its HMAC verifies: only a file this user's appban wrote from a
  validated rulebook is ever unpickled, so the file can run no code but ours (writing one that verifies
  takes the secret, which only this user can read, and whoever can read it can already run code as this
  user). A file edited, cut short, or written without the secret is not read. Unpickling rebuilds the
  objects in a fraction of the time of reading the YAML again, and without importing pydantic, which checks
  the YAML.
- **Ours only.** On POSIX a directory or file not owned by the current user, or writable by group or others,
  is neither read nor written (so a shared /tmp cannot hand a user someone else's law); links are not
  followed. Such a cache is skipped silently and the rulebook is read from YAML.
- **Concurrent writers.** Each writer writes a private temporary file in the cache directory and renames it
  over the final name: a reader sees a whole file or none.
- **Where.** `APPBAN_CACHE_DIR`, else the platform's user cache directory (`$XDG_CACHE_HOME/appban`,
  `~/.cache/appban`, `~/Library/Caches/appban`, `%LOCALAPPDATA%\\appban\\Cache`). `APPBAN_NO_CACHE=1`
  turns it off. A cache that cannot be read or written never fails a command: the YAML is read instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import pickle
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appban.plain import Record
from appban.rulebook.loader import all_place_codes, use_place_codes
from appban.rulebook.schema import Clock, Facts, Instrument, Places, Subjects

if TYPE_CHECKING:
    from collections.abc import Iterable

    from appban.rulebook.loader import Rulebook

FORMAT = "appban-compiled-rulebook/4"
#: A compiled rulebook is a few hundred kilobytes; a file far larger is not one of ours.
MAX_BYTES = 64 * 1024 * 1024
#: Files kept: one per rulebook and code version in use; older ones are removed when a new one is written.
KEEP = 8
_PREFIX = "rulebook-"
_SIGNING_FILE = "key"
_SECRET_BYTES = 32


@dataclass(frozen=True)
class _Body:
    """What a Rulebook is made of, in the order the loader built it."""

    subjects: Subjects
    places: Places
    facts: Facts
    instruments: list[Instrument]
    place_codes: frozenset[str]  # every valid ISO 3166 code, from the pycountry lists the key names


def disabled() -> bool:
    return os.environ.get("APPBAN_NO_CACHE", "").strip().lower() not in {"", "0", "false", "no"}


def cache_dir() -> Path:
    """Where compiled rulebooks are kept for this user (`APPBAN_CACHE_DIR` overrides)."""
    chosen = os.environ.get("APPBAN_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "appban" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "appban"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG specification says a relative path is to be ignored.
    base_dir = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base_dir / "appban"


def rulebook_files(root: Path) -> list[Path]:
    """Every file the loader reads from a rulebook directory."""
    return [
        root / "subjects.yaml",
        *sorted((root / "subjects").glob("*.yaml")),
        root / "places.yaml",
        root / "facts.yaml",
        *sorted((root / "instruments").glob("*.yaml")),
    ]


def cache_key(root: Path) -> str | None:
    """The key of the rulebook in `root` as this code would load it, or None when a file cannot be read (the
    loader then reports it)."""
    digest = hashlib.sha256()
    for part in _environment():
        digest.update(part.encode() + b"\0")
    try:
        for path in rulebook_files(root):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            data = path.read_bytes()
            digest.update(len(data).to_bytes(8, "big") + data)
    except OSError:
        return None
    return digest.hexdigest()


def _environment() -> Iterable[str]:
    yield FORMAT
    yield sys.version
    yield from _files_of("pydantic", ["version.py"])
    yield from _files_of("pydantic_core", ["__init__.py", "_pydantic_core*"])
    yield from _pycountry_databases()
    here = Path(__file__).parent
    for path in (here / "compiled.py", here / "loader.py", here / "schema.py", here.parent / "plain.py"):
        try:
            yield hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:  # installed without sources: the package version stands in
            yield _distribution_version("appban")


def _files_of(package: str, patterns: list[str]) -> Iterable[str]:
    """The size and modification time of some of an installed package's files: a new version writes new
    ones. Found without importing the package (the light commands never import pydantic)."""
    from importlib.util import find_spec

    spec = find_spec(package)
    origin = spec.origin if spec is not None else None
    if origin is None:
        yield f"{package} missing"
        return
    for pattern in patterns:
        for path in sorted(Path(origin).parent.glob(pattern)):
            with contextlib.suppress(OSError):
                info = path.stat()
                yield f"{package}/{path.name}:{info.st_size}:{info.st_mtime_ns}"


def _pycountry_databases() -> Iterable[str]:
    """pycountry's ISO 3166 code lists (which decide which places are valid) by name, size and modification
    time: a new pycountry writes new files. Found without importing pycountry, whose import reads every
    installed package's metadata to learn its own version, which a command answering from the cache would
    otherwise wait for."""
    from importlib.util import find_spec

    spec = find_spec("pycountry")
    origin = spec.origin if spec is not None else None
    if origin is None:
        yield "pycountry missing"
        return
    for name in ("iso3166-1.json", "iso3166-2.json"):
        try:
            info = (Path(origin).parent / "databases" / name).stat()
        except OSError:
            yield f"{name} missing"
            continue
        yield f"{name}:{info.st_size}:{info.st_mtime_ns}"


def _distribution_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


SUFFIX = ".bin"


def _path(directory: Path, key: str) -> Path:
    return directory / f"{_PREFIX}{key[:40]}{SUFFIX}"


def _ours(info: os.stat_result) -> bool:
    """Owned by this user and writable by no one else (always true where POSIX owners do not exist)."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return True
    return bool(info.st_uid == getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _usable_dir(directory: Path, create: bool) -> bool:
    try:
        if create:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and _ours(info)


def load(root: Path, key: str) -> Rulebook | None:
    """The compiled rulebook for `key`, or None when there is none that can be trusted."""
    if disabled():
        return None
    directory = cache_dir()
    if not _usable_dir(directory, create=False):
        return None
    try:
        data = _read_ours(_path(directory, key))
    except OSError:
        return None
    if data is None:
        return None
    return _decode(data, root, key)


def _read_ours(path: Path, limit: int = MAX_BYTES, private: bool = False) -> bytes | None:
    """The file's first `limit` + 1 bytes, if it is a regular file (no link followed) of ours, at most `limit`
    bytes long and, when `private`, readable by no one else; else None."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        shared = private and hasattr(os, "getuid") and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
        if not stat.S_ISREG(info.st_mode) or not _ours(info) or shared or info.st_size > limit:
            return None
        return handle.read(limit + 1)


def _decode(data: bytes, root: Path, key: str) -> Rulebook | None:
    from appban.rulebook.loader import Rulebook

    secret = _secret(cache_dir(), create=False)
    if secret is None:
        return None
    head, newline, body = data.partition(b"\n")
    try:
        header = json.loads(head)
    except (ValueError, RecursionError):
        return None
    if not newline or not isinstance(header, dict):
        return None
    version = header.get("version")
    if header.get("format") != FORMAT or header.get("key") != key or not isinstance(version, str) or not version:
        return None
    mac = header.get("mac")
    if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(secret, key, version, body)):
        return None  # not written by this user's appban, cut short or edited
    try:
        parts = pickle.loads(body)  # noqa: S301 (signed by this user's appban: see the module's notes)
    except (pickle.UnpicklingError, ValueError, TypeError, KeyError, AttributeError, EOFError, ImportError):
        return None
    if not isinstance(parts, _Body):
        return None
    instruments = {instrument.id: instrument for instrument in parts.instruments}
    if len(instruments) != len(parts.instruments):
        return None
    use_place_codes(parts.place_codes)
    return Rulebook(root, instruments, parts.subjects, parts.places, parts.facts, version=version)


def _mac(secret: bytes, key: str, version: str, body: bytes) -> str:
    signed = b"\0".join([FORMAT.encode(), key.encode(), version.encode(), body])
    return hmac.new(secret, signed, hashlib.sha256).hexdigest()


def _secret(directory: Path, create: bool) -> bytes | None:
    """This user's signing secret for compiled rulebooks, made on first use; None when there is none to trust.

    A new secret is written to a private temporary file and linked to its name, so that a concurrent
    reader or writer sees the whole secret or none, and the first writer's secret is the one kept."""
    path = directory / _SIGNING_FILE
    try:
        secret = _read_private(path)
        if secret is not None or not create:
            return secret
        fd, temporary = tempfile.mkstemp(prefix=".key-", suffix=".tmp", dir=directory)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(os.urandom(_SECRET_BYTES))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
        return _read_private(path)
    except OSError:
        return None


def _read_private(path: Path) -> bytes | None:
    secret = _read_ours(path, limit=_SECRET_BYTES, private=True)
    return secret if secret is not None and len(secret) == _SECRET_BYTES else None


def store(book: Rulebook, key: str) -> None:
    """Keep `book` under `key`, atomically; a cache that cannot be written is left alone."""
    if disabled():
        return
    directory = cache_dir()
    if not _usable_dir(directory, create=True):
        return
    for instrument in book.instruments.values():
        _resolve_instants(instrument)
    parts = _Body(
        subjects=book.subjects,
        places=book.places,
        facts=book.facts,
        instruments=list(book.instruments.values()),
        place_codes=all_place_codes(),
    )
    body = pickle.dumps(parts, protocol=pickle.HIGHEST_PROTOCOL)
    secret = _secret(directory, create=True)
    if secret is None:
        return
    header = {"format": FORMAT, "key": key, "version": book.version, "mac": _mac(secret, key, book.version, body)}
    target = _path(directory, key)
    try:
        fd, temporary = tempfile.mkstemp(prefix=".rulebook-", suffix=".tmp", dir=directory)  # mode 0600
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(json.dumps(header).encode("ascii") + b"\n" + body)
        os.replace(temporary, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return
    _prune(directory, keep=target)


def _resolve_instants(value: object) -> None:
    """Work out every instant in `value` (a record, list or dict of them) so the file keeps them: a command
    reading it then neither resolves a time zone (nor imports zoneinfo) to answer."""
    if isinstance(value, Clock):
        _ = value.instant
    if isinstance(value, Record):
        for item in vars(value).values():
            _resolve_instants(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _resolve_instants(item)
    elif isinstance(value, dict):
        for item in value.values():
            _resolve_instants(item)


def _prune(directory: Path, keep: Path) -> None:
    """Remove the oldest compiled rulebooks beyond KEEP, files of an earlier format (`.json`), and temporary
    files a writer left behind an hour ago or more (another writer may be removing them too)."""
    found: list[tuple[float, Path]] = []
    candidates = [f"{_PREFIX}*{SUFFIX}", f"{_PREFIX}*.json", f".{_PREFIX}*.tmp"]
    for path in [found_path for pattern in candidates for found_path in directory.glob(pattern)]:
        with contextlib.suppress(OSError):
            found.append((path.lstat().st_mtime, path))
    found.sort(reverse=True)
    kept = 1
    for modified, path in found:
        if path == keep:
            continue
        if path.suffix == SUFFIX and kept < KEEP:
            kept += 1
            continue
        if path.suffix == ".tmp" and time.time() - modified < 3600:
            continue
        with contextlib.suppress(OSError):
            path.unlink()

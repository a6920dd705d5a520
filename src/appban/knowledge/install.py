"""Installed knowledge bundles: where they live, which one is in force, and installing one.

Installed bundles live in `$XDG_DATA_HOME/appban/knowledge/` (else `~/.local/share/appban/knowledge/`), one
directory per version holding the bundle's `manifest.json`, `manifest.sig` and `data/`. A file `pinned`
there names the version in force (or `packaged`); without it the newest installed version is in force, and
with nothing installed the package's own data is.

Reading that state is what every command does at start-up, so this module imports only the standard library
at the top: the cryptography and the archive reading are imported by `install` alone. An installed version
is verified once, when it is installed (signature, every file's sha256, every part loaded); see README,
"Knowledge bundles", for why it is not verified again at each load.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appban.knowledge.layout import PACKAGED, KnowledgeRoot

if TYPE_CHECKING:
    from appban.knowledge.bundle import Manifest, OpenedBundle
    from appban.rulebook.loader import Rulebook

PIN = "pinned"
LOCK = ".lock"
PACKAGED_NAME = "packaged"
MANIFEST = "manifest.json"
_VERSION = re.compile(r"(\d{4})\.(\d{2})\.(\d{2})-(\d{1,6})")
MAX_PIN_BYTES = 256
MAX_MANIFEST_READ = 16 << 20  # as bundle.MAX_MANIFEST_BYTES


class InstallError(ValueError):
    """A bundle not installed, or a version that cannot be used; the message says why and what to do."""


def version_key(version: str) -> tuple[int, ...]:
    """The order of bundle versions: by date, then by the number within that date."""
    match = _VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"{version!r} is not a bundle version (YYYY.MM.DD-N, e.g. 2026.02.20-1)")
    return tuple(int(group) for group in match.groups())


def is_version(text: str) -> bool:
    return _VERSION.fullmatch(text) is not None


def data_dir() -> Path:
    """Where installed bundles live (XDG Base Directory: `$XDG_DATA_HOME` if absolute)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "appban" / "knowledge"


def installed_versions(base: Path | None = None) -> list[str]:
    """The versions installed, oldest first. Temporary and other entries are not versions and are skipped."""
    base = base or data_dir()
    try:
        names = [entry.name for entry in os.scandir(base) if is_version(entry.name) and entry.is_dir()]
    except OSError:
        return []
    return sorted(names, key=version_key)


def pinned(base: Path | None = None) -> str | None:
    """The version `rules use` pinned, `packaged`, or None."""
    try:
        with open((base or data_dir()) / PIN, "rb") as stream:
            text = stream.read(MAX_PIN_BYTES).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text == PACKAGED_NAME or is_version(text) else None


def active_version(base: Path | None = None) -> str | None:
    """The installed version in force, or None for the package's data. A pin naming a version no longer
    installed is passed over (the newest installed one is then in force), so removing a directory by hand
    never leaves appban unable to start."""
    base = base or data_dir()
    pin = pinned(base)
    if pin == PACKAGED_NAME:
        return None
    if pin is not None and (base / pin / "data").is_dir():
        return pin
    versions = installed_versions(base)
    return versions[-1] if versions else None


def version_root(version: str, base: Path | None = None) -> KnowledgeRoot:
    return KnowledgeRoot((base or data_dir()) / version / "data")


def installed_root() -> KnowledgeRoot:
    """The knowledge root in force: the active installed version's, else the package's."""
    version = active_version()
    return PACKAGED if version is None else version_root(version)


def installed_bundle_id(version: str, base: Path | None = None) -> str | None:
    """ "VERSION sha256:…" for an installed version (see bundle.bundle_id), None when it cannot be read."""
    try:
        with open((base or data_dir()) / version / MANIFEST, "rb") as stream:
            raw = stream.read()
    except OSError:
        return None
    return f"{version} sha256:{hashlib.sha256(raw).hexdigest()[:12]}"


def bundle_of(book: Rulebook) -> str | None:
    """The bundle a loaded rulebook came from ("VERSION sha256:…"), None for a rulebook read from anywhere
    else (the package's data, a plain directory). A bundle's rulebook is `data/rulebook` beside its
    manifest.json, installed or just extracted; the answer is kept with the rulebook, so a batch of answers
    reads the manifest once."""
    if "bundle" not in book.derived:
        book.derived["bundle"] = _bundle_at(book.root)
    found = book.derived["bundle"]
    return found if isinstance(found, str) else None


def _bundle_at(rulebook_dir: Path) -> str | None:
    if rulebook_dir.name != "rulebook" or rulebook_dir.parent.name != "data":
        return None
    try:
        with open(rulebook_dir.parent.parent / MANIFEST, "rb") as stream:
            raw = stream.read(MAX_MANIFEST_READ + 1)
    except OSError:
        return None
    version: object = rulebook_dir.parent.parent.name  # an installed version's directory is named after it
    if not is_version(str(version)):  # an extracted bundle's temporary directory: the manifest says
        from appban import safejson

        try:
            version = safejson.loads(raw).get("version") if len(raw) <= MAX_MANIFEST_READ else None
        except (ValueError, AttributeError):
            return None
    if not isinstance(version, str) or not is_version(version):
        return None
    return f"{version} sha256:{hashlib.sha256(raw).hexdigest()[:12]}"


def active_bundle() -> str | None:
    version = active_version()
    return None if version is None else installed_bundle_id(version)


def pin(choice: str) -> str:
    """Pin a version (or `packaged`, or `newest` to remove the pin); returns what is now in force."""
    base = data_dir()
    if choice == "newest":
        (base / PIN).unlink(missing_ok=True)
        return active_version(base) or PACKAGED_NAME
    if choice != PACKAGED_NAME:
        if not is_version(choice):
            raise InstallError(f"{choice!r}: name an installed version (YYYY.MM.DD-N), packaged or newest")
        if choice not in installed_versions(base):
            known = ", ".join(installed_versions(base)) or "none"
            raise InstallError(f"{choice}: not installed (installed: {known}); install it with appban rules update")
    base.mkdir(parents=True, exist_ok=True)
    _write_atomically(base / PIN, (choice + "\n").encode())
    return choice


def _write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a folder's entries (a rename into it, its new files) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- installing --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    version: str
    bundle: str  # the bundle's id
    directory: Path
    already: bool  # the same bundle was installed before: nothing was written
    pinned: bool  # the pin now names it (it was pinned before, or is older than the newest)


def load_everything(root: KnowledgeRoot) -> str:
    """Load every part of `root` as the commands will, to prove it readable; returns the rulebook version.
    Raises RulebookError (naming file, line and field) for the first part that is not."""
    from appban.code.signatures import load_signatures
    from appban.identity.registry import load_registry
    from appban.knowledge.layout import reading
    from appban.network.indicators import load_indicators
    from appban.payments.markers import load_markers
    from appban.rulebook.loader import load_rulebook

    book = load_rulebook(root.path("rulebook"))
    with reading(root):  # the registry reads apps.yaml and its apps/ lists from the root in force
        load_registry(book)
    load_indicators(book, root.path("network/indicators.yaml"))
    load_signatures(book, root.path("code/signatures.yaml"))
    load_markers(root.path("payments/markers.yaml"), book)
    return book.version


def failed_cases(root: KnowledgeRoot) -> list[str] | None:
    """Each of the bundle's own cases that fails, with why (None when it carries none)."""
    from appban.knowledge.cases import run_cases

    if not root.path("cases.yaml").is_file():
        return None
    report = run_cases(root)
    return [f"{result.name}: {result.error or '; '.join(result.differences)}" for result in report.failed]


def install(source: Path, *, allow_downgrade: bool = False) -> Installed:
    """Verify the bundle at `source` and install it, atomically: on any failure nothing is installed.

    It is extracted into a temporary directory beside the installed versions, checked (signature, hashes,
    schema, version order, every part loaded, its own cases), then renamed into place under a lock, so two
    processes installing at once leave whole versions only."""
    from appban.knowledge.bundle import BundleError, open_bundle
    from appban.rulebook.loader import RulebookError

    base = data_dir()
    base.mkdir(parents=True, exist_ok=True)
    try:
        opened = open_bundle(source, workdir=base, durable=True)
    except BundleError as exc:
        raise InstallError(str(exc)) from exc
    try:
        manifest = opened.manifest
        existing = _already(base, manifest)
        if existing is not None:
            return existing
        _check_order(base, manifest.version, allow_downgrade, source)
        try:
            load_everything(opened.root)
        except (RulebookError, OSError, ValueError) as exc:
            raise InstallError(f"{source}: its knowledge cannot be read, so it was not installed:\n{exc}") from exc
        failed = failed_cases(opened.root)
        if failed:
            shown = "; ".join(failed[:10]) + (f"; and {len(failed) - 10} more" if len(failed) > 10 else "")
            raise InstallError(f"{source}: {len(failed)} of its own cases fail, so it was not installed: {shown}")
        return _commit(base, opened, allow_downgrade, source)
    finally:
        opened.close()  # removes the temporary directory if it was not renamed into place


def _already(base: Path, manifest: Manifest) -> Installed | None:
    target = base / manifest.version
    if not target.exists():
        return None
    try:
        same = (target / MANIFEST).read_bytes() == manifest.raw
    except OSError:
        same = False
    if not same:
        raise InstallError(
            f"version {manifest.version} is installed already with other contents; a version is never replaced "
            "(the bundle's maker must give a new one a new version)"
        )
    return Installed(manifest.version, manifest.id, target, already=True, pinned=pinned(base) == manifest.version)


def _check_order(base: Path, version: str, allow_downgrade: bool, source: Path) -> None:
    versions = installed_versions(base)
    if versions and version_key(version) <= version_key(versions[-1]) and not allow_downgrade:
        raise InstallError(
            f"{source}: version {version} is not newer than the installed {versions[-1]}; refused as a downgrade "
            "(--allow-downgrade installs it anyway)"
        )


STALE_SECONDS = 24 * 3600  # far longer than any extraction or download takes


def _sweep(base: Path) -> None:
    """Remove what an install or download killed midway left behind (temporary names, a day old)."""
    import shutil
    import time

    for entry in os.scandir(base):
        if not entry.name.startswith((".appban-bundle-", ".appban-download-")):
            continue
        try:
            if time.time() - entry.stat(follow_symlinks=False).st_mtime < STALE_SECONDS:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            continue


def _commit(base: Path, opened: OpenedBundle, allow_downgrade: bool, source: Path) -> Installed:
    import fcntl

    manifest = opened.manifest
    fd = os.open(base / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed, also if this process dies
        existing = _already(base, manifest)  # another process may have finished while this one checked
        if existing is not None:
            return existing
        _check_order(base, manifest.version, allow_downgrade, source)
        _sweep(base)
        newest = installed_versions(base)
        target = base / manifest.version
        os.rename(opened.directory, target)
        fsync_dir(base)
        # The new version is the one in force: a pin (or the newest being another, after a downgrade) would
        # otherwise keep the old one.
        repin = pinned(base) is not None or (bool(newest) and version_key(manifest.version) < version_key(newest[-1]))
        if repin:
            _write_atomically(base / PIN, (manifest.version + "\n").encode())
        return Installed(manifest.version, manifest.id, target, already=False, pinned=repin)
    finally:
        os.close(fd)

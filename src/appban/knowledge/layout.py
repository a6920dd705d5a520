"""The parts of appban's knowledge, and where each one lives.

A knowledge root is a directory laid out as a bundle holds its data: one entry per part, under the part's
name. The package's own data is the default root; an installed bundle is another. Every loader asks this
module for its default path, so that which root is in force is decided in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Part:
    """One part of the knowledge: `name` inside a bundle, `packaged` inside `package`."""

    name: str  # the part's path inside a knowledge root: a directory or a single file
    package: str  # the Python package whose data holds it
    packaged: str  # its path inside that package
    what: str  # what it is, for people

    def packaged_path(self) -> Path:
        # appban is always installed as files (its loaders read their data by path), so the package's folder
        # is found from appban's own; importlib.resources would cost a light command several milliseconds.
        top, *inner = self.package.split(".")
        assert top == "appban", self.package
        return _APPBAN.joinpath(*inner, self.packaged)


_APPBAN = Path(__file__).resolve().parent.parent

# The order is the order in which manifests and diffs list them.
PARTS: tuple[Part, ...] = (
    Part("rulebook", "appban.rulebook", "data", "instruments, subjects, places and facts"),
    Part("identity", "appban.identity", "data", "the app identity registry"),
    Part("network/indicators.yaml", "appban.network", "data/indicators.yaml", "network indicators"),
    Part("code/signatures.yaml", "appban.code", "data/signatures.yaml", "code signatures"),
    Part("payments/markers.yaml", "appban.payments", "markers.yaml", "payment markers"),
    # Beside the rulebook, not inside its directory: parts never overlap, so each file belongs to one part.
    Part("cases.yaml", "appban.rulebook", "cases.yaml", "questions with their expected answers (rules test)"),
)
BY_NAME = {part.name: part for part in PARTS}


@dataclass(frozen=True)
class KnowledgeRoot:
    """Where each part is read from: a directory laid out as a bundle, or (None) the package's own data."""

    directory: Path | None = None

    def path(self, name: str) -> Path:
        part = BY_NAME[name]
        if self.directory is None:
            return part.packaged_path()
        return self.directory / part.name


PACKAGED = KnowledgeRoot()


# A root set for the current context (install proves a bundle readable with the loaders' own defaults).
_reading: ContextVar[KnowledgeRoot | None] = ContextVar("appban_knowledge_reading", default=None)


def active_root() -> KnowledgeRoot:
    """The root in force: the installed bundle `appban rules use` pinned, else the newest installed one,
    else the package's data (see `knowledge.install`; reading that state costs a directory listing)."""
    chosen = _reading.get()
    if chosen is not None:
        return chosen
    from appban.knowledge.install import installed_root

    return installed_root()


def active_bundle() -> str | None:
    """The bundle in force, as answers name it ("2026.02.20-1 sha256:0123456789ab"); None for the package's
    own data."""
    if _reading.get() is not None:
        return None
    from appban.knowledge.install import active_bundle as installed_bundle

    return installed_bundle()


@contextmanager
def reading(root: KnowledgeRoot) -> Iterator[KnowledgeRoot]:
    """Within the block, `active_root()` (so every loader's default path) is `root`."""
    token = _reading.set(root)
    try:
        yield root
    finally:
        _reading.reset(token)


@contextmanager
def resolve_knowledge(arg: str, *, trusted: bool = True) -> Iterator[KnowledgeRoot]:
    """The knowledge a command-line argument names: a bundle file (verified, extracted while the block
    runs), a knowledge directory (or an installed version's directory), an installed version, `installed`
    (the root in force) or `packaged`. Raises ValueError saying what the argument can be."""
    from appban.knowledge.install import data_dir, installed_versions, is_version, version_root

    if arg == "packaged":
        yield PACKAGED
        return
    if arg == "installed":
        yield active_root()
        return
    path = Path(arg)
    if path.is_dir():
        yield KnowledgeRoot(path / "data" if (path / "manifest.json").is_file() else path)
        return
    if path.is_file():
        from appban.knowledge.bundle import open_bundle

        with open_bundle(path, trusted=trusted) as opened:
            yield opened.root
        return
    if is_version(arg) and arg in installed_versions(data_dir()):
        yield version_root(arg)
        return
    raise ValueError(
        f"{arg}: not a bundle file, a knowledge directory, an installed version, `installed` or `packaged`"
    )

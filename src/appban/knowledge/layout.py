"""The parts of appban's knowledge, and where each one lives.

A knowledge root is a directory laid out as a bundle holds its data: one entry per part, under the part's
name. The package's own data is the default root; an installed bundle is another. Every loader asks this
module for its default path, so that which root is in force is decided in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class Part:
    """One part of the knowledge: `name` inside a bundle, `packaged` inside `package`."""

    name: str  # the part's path inside a knowledge root: a directory or a single file
    package: str  # the Python package whose data holds it
    packaged: str  # its path inside that package
    what: str  # what it is, for people

    def packaged_path(self) -> Path:
        return Path(str(resources.files(self.package) / self.packaged))


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


def active_root() -> KnowledgeRoot:
    """The root in force for this process. The package's data until knowledge bundles can be installed."""
    return PACKAGED

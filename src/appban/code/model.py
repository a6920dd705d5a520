"""What extractors report (observations) and the limits every scan of untrusted input runs under."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Observation:
    """A fact an extractor read from a file: a class name, a dependency, a URL scheme..."""

    kind: str  # "java", "url", "signing_cert" or one of the exact-name kinds of the signature set
    value: str
    line: int | None = None
    detail: str | None = None  # e.g. the dependency's version, or the member inside a binary
    # The exact version a manifest or lock file gives for a package (never a range); extractors whose
    # `detail` already holds the version leave this unset and scan reads it from there.
    version: str | None = None


@dataclass(frozen=True)
class Package:
    """A package-manager coordinate seen as evidence: what a package URL is made from."""

    ecosystem: str  # the observation kind: maven, npm, pypi, cocoapods, go, swiftpm, pub, composer, gem
    name: str  # as the manifest writes it: group:artifact for Maven, @scope/name for npm, a module path for Go
    version: str | None  # the exact version pinned there, if any
    line: int | None
    url: str | None = None  # the repository a Swift package comes from (its package URL's namespace)


@dataclass(frozen=True)
class FileNames:
    """The file names (lower-cased base names) an extractor reads, declared rather than only tested, so
    that a walk can sort many thousands of names a second in a few set look-ups (filenames.py) instead of
    calling every extractor for every name. An extractor that declares `names` wants exactly the names
    `match` accepts, whatever the file's first bytes; one that tells formats by their bytes declares none.
    """

    exact: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    # Names starting with one of these are not read, whatever suffix they end with.
    not_prefixes: tuple[str, ...] = ()
    # (prefix, suffixes): names that start with the prefix and end with one of the suffixes.
    prefixed: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def match(self, name: str) -> bool:
        if name in self.exact:
            return True
        if name.endswith(self.suffixes) and not name.startswith(self.not_prefixes):
            return True
        for prefix, ends in self.prefixed:  # noqa: SIM110 - no generator for each of many thousand names
            if name.startswith(prefix) and name.endswith(ends):
                return True
        return False


@dataclass(frozen=True)
class Sniffed:
    """What an extractor that tells its formats by their bytes may want: files whose name `names` matches,
    whatever their bytes, and files whose first bytes start with one of `magics`, whatever their name. Its
    `wants` is False for every other file, so a walk need not ask it about them (filenames.py)."""

    names: FileNames
    magics: tuple[bytes, ...] = ()


class Extractor(Protocol):
    """One input format. `wants` sees the file's base name (lower-cased) and its first bytes. An extractor
    that reads files by name alone also has a `names` attribute (FileNames) that `wants` is made from; one
    that tells formats by their bytes has a `sniffs` attribute (Sniffed) bounding what `wants` accepts."""

    name: str

    def wants(self, name: str, head: bytes) -> bool: ...

    def extract(self, data: bytes, name: str) -> Iterator[Observation]: ...


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile input from exhausting the scanner (all sizes in bytes)."""

    max_file: int = 1 << 30  # a file larger than this is skipped with a warning
    max_member: int = 512 << 20  # an archive member larger than this (uncompressed) is skipped
    max_archive_total: int = 4 << 30  # uncompressed bytes read from one file's archives, nested ones included
    max_ratio: int = 200  # compression ratio above which a member is treated as a bomb
    max_depth: int = 5  # archives inside archives
    max_members: int = 1_000_000
    seconds_per_file: float = 120.0


class Skipped(ValueError):
    """An input the scanner will not read, such as text over a size cap; the message gives the reason.
    A ValueError, so that code which turns malformed input into warnings also reports these."""


@dataclass(frozen=True)
class Warning_:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

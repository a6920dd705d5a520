"""Which extractors read a file of a given name, asked of all of them at once.

A source tree holds tens of thousands of files and each name used to be offered to every extractor in turn,
a Python call each: more time than reading the file. Extractors that read files by name declare the names
(model.FileNames) and `wants` is made from that declaration, so the declarations of many extractors merge
into a few set look-ups and `str.endswith` calls here, with the same answers. Extractors that tell their
formats by the bytes (DEX, Mach-O, RubyGems metadata) declare none and are still asked, file by file.
"""

from __future__ import annotations

from collections.abc import Iterable

from appban.code.model import Extractor, FileNames


def declared(extractor: Extractor) -> FileNames | None:
    names = getattr(extractor, "names", None)
    return names if isinstance(names, FileNames) else None


class NameTable:
    """The declared names of several extractors merged, and the extractors that declare none."""

    def __init__(self, extractors: Iterable[Extractor]) -> None:
        self.undeclared: list[Extractor] = []
        exact: set[str] = set()
        prefixed: list[tuple[str, tuple[str, ...]]] = []
        # Suffixes grouped by the prefixes that exclude them, so that each group is one endswith call.
        suffixes: dict[tuple[str, ...], list[str]] = {}
        for extractor in extractors:
            names = declared(extractor)
            if names is None:
                self.undeclared.append(extractor)
                continue
            exact |= names.exact
            prefixed += names.prefixed
            suffixes.setdefault(names.not_prefixes, []).extend(names.suffixes)
        self._exact = frozenset(exact)
        self._suffixes = tuple(suffixes.pop((), []))
        self._excluding = tuple((tuple(ends), excluded) for excluded, ends in suffixes.items())
        self._prefixed = tuple(prefixed)
        self._prefixes = tuple(prefix for prefix, _ in prefixed)
        # Every ending any rule but an exact name asks for: a name with none of them (most names of a source
        # tree, for the extractors other than the source reader) is answered by one look-up and one call.
        self._any_end = self._suffixes + tuple(e for ends, _ in self._excluding for e in ends)
        self._any_end += tuple(e for _, ends in self._prefixed for e in ends)

    def declared_match(self, name: str) -> bool:
        """Whether an extractor that declares its names reads a file of this (lower-cased) name."""
        if name in self._exact:
            return True
        if not name.endswith(self._any_end):
            return False
        if name.endswith(self._suffixes):
            return True
        for ends, excluded in self._excluding:
            if name.endswith(ends) and not name.startswith(excluded):
                return True
        if name.startswith(self._prefixes):
            for prefix, ends in self._prefixed:
                if name.startswith(prefix) and name.endswith(ends):
                    return True
        return False

    def wanted(self, name: str, head: bytes) -> bool:
        """Whether any of the extractors wants this file: as asking each of them, in fewer calls."""
        return self.declared_match(name) or self.undeclared_wants(name, head)

    def undeclared_wants(self, name: str, head: bytes) -> bool:
        """Whether an extractor that tells its files by asking (no declared names) wants this one."""
        for extractor in self.undeclared:  # noqa: SIM110 - no generator for each of many thousand files
            if extractor.wants(name, head):
                return True
        return False

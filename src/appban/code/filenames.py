"""Which extractors read a file of a given name, asked of all of them at once.

A source tree holds tens of thousands of files and each name used to be offered to every extractor in turn,
a Python call each: more time than reading the file. Extractors declare the names they read instead:
- an extractor that reads files by name declares them (model.FileNames) and `wants` is made from that;
- one that tells its formats by their bytes (DEX, Mach-O, RubyGems metadata) declares the names it may
  want whatever the bytes, and the magic bytes it looks for (model.Sniffed), and is asked only about a
  file of such a name or with such bytes.
The declarations of many extractors merge into a few set look-ups and `str.endswith` calls here, with the
same answers. Because every name test is declared, the answers for a name can also be kept per extension
(ByExtension): most names of a tree differ only in what comes before their last dot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from appban.code.model import Extractor, FileNames, Sniffed

T = TypeVar("T")


def declared(extractor: Extractor) -> FileNames | None:
    names = getattr(extractor, "names", None)
    return names if isinstance(names, FileNames) else None


def sniffed(extractor: Extractor) -> Sniffed | None:
    sniffs = getattr(extractor, "sniffs", None)
    return sniffs if isinstance(sniffs, Sniffed) else None


class MergedNames:
    """Several FileNames as one test: whether any of them matches a name."""

    def __init__(self, declarations: Iterable[FileNames]) -> None:
        exact: set[str] = set()
        prefixed: list[tuple[str, tuple[str, ...]]] = []
        # Suffixes grouped by the prefixes that exclude them, so that each group is one endswith call.
        suffixes: dict[tuple[str, ...], list[str]] = {}
        for names in declarations:
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

    def match(self, name: str) -> bool:
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


class NameTable:
    """The declarations of several extractors merged, and the extractors that declare no names."""

    def __init__(self, extractors: Iterable[Extractor]) -> None:
        self.undeclared: list[Extractor] = []
        declarations: list[FileNames] = []
        sniffs: list[Sniffed] = []
        #: Extractors that declare nothing: asked about every file, as they may want any.
        self.blind = False
        for extractor in extractors:
            names = declared(extractor)
            if names is not None:
                declarations.append(names)
                continue
            self.undeclared.append(extractor)
            if (sniff := sniffed(extractor)) is not None:
                sniffs.append(sniff)
            else:
                self.blind = True
        self._declared = MergedNames(declarations)
        self.declared_match = self._declared.match
        self._sniffed_names = MergedNames(s.names for s in sniffs)
        #: A name an extractor that tells formats by their bytes may want whatever the bytes.
        self.sniffed_name = self._sniffed_names.match
        #: The first bytes that may make such an extractor want a file whatever its name.
        self.magics = tuple(magic for s in sniffs for magic in s.magics)
        #: Every name test the table makes, for ByExtension.
        self.declarations = (*declarations, *(s.names for s in sniffs))

    def wanted(self, name: str, head: bytes) -> bool:
        """Whether any of the extractors wants this file: as asking each of them, in fewer calls."""
        return self.declared_match(name) or self.undeclared_wants(name, head)

    def undeclared_wants(self, name: str, head: bytes) -> bool:
        """Whether an extractor that tells its files by asking (no declared names) wants this one. Only those
        whose declaration allows it, by the name or by the first bytes, are asked."""
        if not self.blind and not self.sniffed_name(name) and not (head and head.startswith(self.magics)):
            return False
        for extractor in self.undeclared:  # noqa: SIM110 - no generator for each of many thousand files
            if extractor.wants(name, head):
                return True
        return False


class ByExtension(Generic[T]):
    """`answer(name)`, kept per extension (the name from its last dot) for the names whose answer cannot
    depend on anything else.

    `answer` must test names only as `declarations` do: exact names, prefixes and suffixes, and whether the
    name has a dot. A suffix of the form ".ext" holds of a name exactly when its extension is ".ext", so for a
    name that is none of the exact names, starts with none of the prefixes and ends with none of the other
    suffixes (".tar.gz", "-config.yml"), every test gives what it gives for any other such name with the same
    extension. Any other name is answered afresh. The number of extensions kept is bounded: a tree of
    millions of invented extensions costs the answers, not memory."""

    LIMIT = 4096

    def __init__(self, answer: Callable[[str], T], declarations: Iterable[FileNames]) -> None:
        self._answer = answer
        exact: set[str] = set()
        prefixes: set[str] = set()
        other_ends: set[str] = set()
        for names in declarations:
            exact |= names.exact
            prefixes |= set(names.not_prefixes) | {prefix for prefix, _ in names.prefixed}
            ends = [*names.suffixes, *(end for _, ends in names.prefixed for end in ends)]
            other_ends |= {end for end in ends if not (end.startswith(".") and end.count(".") == 1)}
        self._exact = frozenset(exact)
        self._prefixes = tuple(sorted(prefixes))
        self._other_ends = tuple(sorted(other_ends))
        self._kept: dict[str, T] = {}

    def __call__(self, name: str) -> T:
        dot = name.rfind(".")
        if dot < 0 or name in self._exact or name.startswith(self._prefixes) or name.endswith(self._other_ends):
            return self._answer(name)
        extension = name[dot:]
        try:
            return self._kept[extension]
        except KeyError:
            value = self._answer(name)
            if len(self._kept) < self.LIMIT:
                self._kept[extension] = value
            return value

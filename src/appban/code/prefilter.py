"""One multi-pattern pass over a source file's bytes: the file is read by the source reader only if it
holds a word that reader's findings could come from.

Almost every file of a source tree holds no covered SDK, and reading each one with the source reader
(decoding, case folding, a line loop with its patterns) cost about 75 us a file. Everything that reader
reports and a signature can match is a piece of the file's text: an import, a dotted name, a service URL,
an API call (source.Source.KINDS), or, for a login provider configured with its credentials, found only in
a text holding one of a few words (Source.WORDS). So a file holding none of the signatures' names of those
kinds and none of those words gives no finding, and is passed over after one pass of an Aho-Corasick
automaton (ahocorasick-rs, a DFA) over its bytes. A file with a hit goes to the same reader as before, which
alone decides what is found: the prefilter can only send more files to it, never change what it reports.

The reader compares names without case (str.casefold) and the Python import reader writes "_" where a
package name has "-"; the pass ignores the case of ASCII letters, each needle is looked for with "-" and
with "_", and the few characters outside ASCII that case folding turns into ASCII letters (the Kelvin sign,
the long s, ligatures such as "ﬁ") are needles of their own: a file holding one always goes to the reader.

Two matchers give the same answers (tests/test_code_prefilter.py runs both):
- Hyperscan, when its package is installed and the processor runs it (x86-64 needs SSSE3): a SIMD literal
  matcher that ignores ASCII case itself, about three times quicker on kilobyte files than lowering a copy
  of each file for the automaton below (bench/RESULTS.md, "Source trees", 3 December, night);
- otherwise ahocorasick-rs's DFA over the bytes with ASCII letters lowered.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator

import ahocorasick_rs

from appban.code.extractors.source import Source
from appban.code.signatures import SignatureSet

#: Characters outside ASCII whose str.casefold() or str.lower() holds an ASCII character (Unicode 14 to 16;
#: tests/test_code_prefilter.py recomputes the list with the running Python's Unicode tables).
FOLDS_TO_ASCII = (
    "\u00df\u0130\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99\u1e9a\u1e9e\u212a\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06"
)


def needle_variants(value: str) -> set[bytes]:
    """The byte strings, ASCII lower case, one of which a text holds wherever the reader sees `value`."""
    folded = value.casefold()
    if not folded.isascii():
        # Outside ASCII only the characters that fold to ASCII change under folding and lowering, and those
        # are needles themselves: the longest ASCII run of the folded value is in any text the reader matches.
        runs = "".join(char if char.isascii() else "\0" for char in folded).split("\0")
        folded = max(runs, key=len)
        if not folded:
            return {bytes([byte]) for byte in range(0x80, 0x100)}  # any byte outside ASCII: the reader decides
    needle = folded.encode()
    return {needle, needle.replace(b"-", b"_")}


class Prefilter:
    """The needles of one signature set for one source reader, in one matcher: `matcher` names one of
    MATCHERS, by default the quickest this machine runs (default_matcher)."""

    def __init__(self, signatures: SignatureSet, reader: Source, matcher: str | None = None) -> None:
        self.reader = reader
        needles: set[bytes] = set()
        for signature in signatures.signatures:
            for kind in sorted(reader.KINDS):
                for value in getattr(signature.match, kind, ()):
                    needles |= needle_variants(value)
        for word in reader.WORDS:
            needles |= needle_variants(word)
        needles |= {char.encode() for char in FOLDS_TO_ASCII}
        needles.discard(b"")
        self.needles = sorted(needles)
        self.matcher = matcher or default_matcher()
        #: Whether a text holds a needle, ASCII case ignored.
        self.found: Callable[[bytes], bool] = MATCHERS[self.matcher](tuple(self.needles))
        #: Bytes a chunk keeps from the one before, so that a needle across their boundary is found.
        self.overlap = max(len(needle) for needle in self.needles) - 1

    def found_in_chunks(self, first: bytes, more: Iterator[bytes]) -> bool:
        """Whether a text read chunk by chunk holds a needle, with `overlap` bytes carried between chunks."""
        carried = b""
        chunk = first
        while True:
            joined = carried + chunk
            if self.found(joined):
                return True
            carried = joined[-self.overlap :] if self.overlap else b""
            chunk = next(more, b"")
            if not chunk:
                return False


def _aho_corasick(needles: tuple[bytes, ...]) -> Callable[[bytes], bool]:
    # A DFA: about twice as fast as the default NFA on kilobyte files, for a few hundred needles. The needles
    # are lower case, so the text is lowered (ASCII letters only, as bytes.lower does) before the pass.
    find = ahocorasick_rs.BytesAhoCorasick(list(needles), implementation=ahocorasick_rs.Implementation.DFA)
    find_indexes = find.find_matches_as_indexes

    def found(data: bytes) -> bool:
        return bool(find_indexes(data.lower()))

    return found


def _stop(*_: object) -> bool:
    return True  # the first match ends the scan: whether there is one is all the walk asks


@functools.lru_cache(maxsize=8)
def _hyperscan(needles: tuple[bytes, ...]) -> Callable[[bytes], bool]:
    # Compiled once per needle set (a few milliseconds), not once per scan() call: a cluster task scans one
    # artefact per call. Scratch space cannot be shared by two scans at once, so each thread has its own.
    import hyperscan

    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    flags = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH
    database.compile(
        expressions=list(needles), ids=list(range(len(needles))), elements=len(needles),
        flags=[flags] * len(needles), literal=True,
    )  # fmt: skip
    scan, terminated, template = database.scan, hyperscan.ScanTerminated, hyperscan.Scratch(database)
    local = threading.local()

    def found(data: bytes) -> bool:
        scratch = getattr(local, "scratch", None)
        if scratch is None:
            scratch = local.scratch = template.clone()
        try:
            scan(data, _stop, 0, None, scratch)
        except terminated:
            return True
        return False

    return found


MATCHERS: dict[str, Callable[[tuple[bytes, ...]], Callable[[bytes], bool]]] = {
    "hyperscan": _hyperscan,
    "aho-corasick": _aho_corasick,
}


@functools.cache
def default_matcher() -> str:
    """Hyperscan where it is installed and runs on this processor, else the Aho-Corasick DFA."""
    try:
        found = _hyperscan((b"wechat",))
        works = found(b"x WeChat x") and not found(b"wecha t")
    except Exception:  # no package, no wheel for this platform, or a processor it cannot use
        works = False
    return "hyperscan" if works else "aho-corasick"

"""The source-tree prefilter and the scandir walk find exactly what reading every file finds.

The prefilter may only send more files to the source reader, never fewer than those it finds something in:
checked here property by property (any text the reader finds a signature in holds a needle), on seeded
trees scanned with and without the prefilter (needles across the prefilter's chunk boundaries, in binary
files, in case variants and folded characters the reader accepts, behind links, in files that cannot be
read, in files over the limits), and on the walk's order and paths against os.walk's.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appban.code import scan as scan_module
from appban.code import walk as walk_module
from appban.code.extractors import all_extractors
from appban.code.extractors.source import Source
from appban.code.filenames import ByExtension, NameTable, declared, sniffed
from appban.code.model import FileNames, Limits
from appban.code.prefilter import FOLDS_TO_ASCII, MATCHERS, Prefilter, default_matcher
from appban.code.scan import ScanResult, match, scan
from appban.code.signatures import SignatureSet, default_signatures
from appban.rulebook.loader import Rulebook

AT = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
SOURCE_NAMES = ["a.py", "b.js", "c.ts", "D.java", "e.kt", "f.swift", "g.m", "h.dart", "i.yml", "j.properties",
                "k.go", "l.html", "m.json"]  # fmt: skip


@pytest.fixture(scope="module")
def signatures(rulebook: Rulebook) -> SignatureSet:
    return default_signatures(rulebook)


@pytest.fixture(scope="module")
def reader(signatures: SignatureSet) -> Source:
    return next(e for e in all_extractors(signatures) if isinstance(e, Source))


@pytest.fixture(scope="module", params=sorted(MATCHERS))
def prefilter(request: pytest.FixtureRequest, signatures: SignatureSet, reader: Source) -> Prefilter:
    """The prefilter with each of its matchers: every property below holds of both."""
    return Prefilter(signatures, reader, request.param)


def words(signatures: SignatureSet) -> list[str]:
    """What the source reader's findings are made of: the signatures' names of its kinds, and its words."""
    found = {value for s in signatures.signatures for kind in Source.KINDS for value in getattr(s.match, kind, ())}
    return sorted(found | set(Source.WORDS))


def disguise(word: str, rng: random.Random) -> str:
    """A spelling of `word` the reader may still accept: cases flipped, '-' as '_', letters replaced by
    characters that fold to them (Kelvin sign, long s, ligatures)."""
    out = "".join(c.upper() if rng.random() < 0.3 else c for c in word)
    if rng.random() < 0.3:
        out = out.replace("-", "_")
    for plain, folded in (("k", "\u212a"), ("s", "\u017f"), ("fi", "\ufb01"), ("ss", "\u00df")):
        if plain in out.lower() and rng.random() < 0.2:
            at = out.lower().index(plain)
            out = out[:at] + folded + out[at + len(plain) :]
    return out


def shapes(word: str) -> list[str]:
    """Lines in which each language's reader reports a name."""
    module = word.split("/")[0].replace("-", "_")
    return [f"import {word}\n", f"from {module}.sub import x\n", f"import x from '{word}';\n",
            f"const a = require(\"{word}\")\n", f"#import <{word}/{word}.h>\n", f"[{word} sendReq:x];\n",
            f'String s = "{word}.inner";\n', f"url = 'https://{word}/path'\n", f"{word}.call(1)\n",
            f"import 'package:{word}/x.dart';\n", f"{word}:\n  app_id: a\n  secret: b\n", f"wx.mp.secret={word}\n",
            f"SOCIAL_AUTH_{word.upper()}_KEY = 'k'\n", f"{{\"{word}\": {{\"key\": 1, \"secret\": 2}}}}\n"]  # fmt: skip


def hits(signatures: SignatureSet, reader: Source, text: bytes, name: str) -> list[str]:
    return [hit.signature.id for o in reader.extract(text, name) for hit in match(signatures, o)]


# --- the prefilter's needles --------------------------------------------------------------------------------


def test_folds_to_ascii_is_every_character_whose_folding_gives_ascii() -> None:
    folding = [chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000]
    found = {c for c in folding if any(x.isascii() for x in c.casefold() + c.lower())}
    assert found == set(FOLDS_TO_ASCII)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), name=st.sampled_from(SOURCE_NAMES), noise=st.text(max_size=40))
def test_any_text_the_reader_finds_a_signature_in_holds_a_needle(
    signatures: SignatureSet, reader: Source, prefilter: Prefilter, seed: int, name: str, noise: str
) -> None:
    rng = random.Random(seed)
    line = rng.choice(shapes(disguise(rng.choice(words(signatures)), rng)))
    text = (noise + "\n" + line + noise).encode("utf-8", "surrogatepass")
    if hits(signatures, reader, text, name):
        assert prefilter.found(text), (name, text)


def test_the_property_is_not_empty(signatures: SignatureSet, reader: Source, prefilter: Prefilter) -> None:
    """The disguised spellings do reach findings, including through folded characters the prefilter can
    only know as needles of their own."""
    text = "url = 'https://webcast.tiktok.com/webcast/room'\n".replace("k", "\u212a").encode()
    assert b"tiktok" not in text.lower() and hits(signatures, reader, text, "a.py")
    assert prefilter.found(text)
    assert not prefilter.found(b"import java.util.List;\n// ordinary code\n")


def test_hyperscan_is_the_matcher_here() -> None:
    """The project's own dependencies include Hyperscan for this platform; the Aho-Corasick DFA is the fallback
    where it is missing or the processor cannot run it."""
    assert default_matcher() == "hyperscan"


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300), pieces=st.lists(st.integers(0, 10_000), max_size=3), upper=st.booleans())
def test_both_matchers_say_whether_a_needle_is_in_the_lowered_bytes(
    data: bytes, pieces: list[int], upper: bool
) -> None:
    """Each matcher answers exactly "does the text with ASCII letters lowered hold a needle", whatever the
    bytes (Latin-1 capitals are not letters to it, as to bytes.lower)."""
    needles = [b"wechat", b"com.tencent.mm", "\u212a".encode(), b"\xc3\xa9", b"wx."]
    for at in pieces:  # needles planted at places, in either case
        needle = needles[at % len(needles)]
        place = at % (len(data) + 1)
        data = data[:place] + (needle.upper() if upper else needle) + data[place:]
    expected = any(needle in data.lower() for needle in needles)
    for matcher in MATCHERS.values():
        assert matcher(tuple(needles))(data) is expected, data


def test_the_source_reader_reports_only_its_declared_kinds(signatures: SignatureSet, reader: Source) -> None:
    rng = random.Random(3)
    for word in words(signatures):
        for line in shapes(disguise(word, rng)):
            for name in SOURCE_NAMES:
                for observation in reader.extract(line.encode(), name):
                    assert observation.kind in Source.KINDS, (name, line, observation)


def test_a_needle_across_chunk_boundaries_is_found(prefilter: Prefilter) -> None:
    needle = b"com.tencent.mm.opensdk"
    for cut in range(1, len(needle)):
        chunks = iter([needle[cut:] + b"y" * 5])
        assert prefilter.found_in_chunks(b"z" * 100 + needle[:cut].upper(), chunks)
    assert not prefilter.found_in_chunks(b"z" * 100, iter([b"y" * 100, b"w" * 100]))


# --- declared names -----------------------------------------------------------------------------------------


def names_to_try(extractors: list[object]) -> Iterator[str]:
    rng = random.Random(5)
    for extractor in extractors:
        names = declared(extractor)  # type: ignore[arg-type]
        if names is None:
            continue
        for exact in names.exact:
            yield exact
            yield "x" + exact
        for suffix in names.suffixes:
            yield "file" + suffix
            yield suffix
            yield "androidmanifest" + suffix
        for prefix, ends in names.prefixed:
            for end in ends:
                yield prefix + end
                yield prefix + "-dev" + end
                yield "x" + prefix + end
    for _ in range(2000):
        yield "".join(rng.choice(string.ascii_lowercase + "._-") for _ in range(rng.randint(1, 12)))


def test_sniffing_extractors_want_only_what_they_declare(signatures: SignatureSet) -> None:
    """An extractor that tells formats by their bytes wants a file only if its declared names or magic bytes
    allow it, so that the walk need not ask it about any other file."""
    extractors = [e for e in all_extractors(signatures) if declared(e) is None]
    assert extractors and all(sniffed(e) is not None for e in extractors)
    magics = [m for e in extractors for m in sniffed(e).magics]  # type: ignore[union-attr]
    heads = [b"", b"plain text", b"--- !ruby/object:Gem::Specification\n", b"\xca\xfe\xba\xbe\x00\x00\x00\x34"]
    heads += [m + b"\x00\x01rest" for m in magics] + [m[:-1] for m in magics]
    for extractor in extractors:
        sniff = sniffed(extractor)
        assert sniff is not None
        for name in names_to_try(all_extractors(signatures)):  # type: ignore[arg-type]
            for head in heads:
                if extractor.wants(name, head):
                    assert sniff.names.match(name) or head.startswith(sniff.magics), (extractor.name, name, head)


def plan_names(signatures: SignatureSet) -> list[str]:
    """Names made of every piece a name test is declared with, beside ordinary ones, in a shuffled order."""
    rng = random.Random(7)
    extractors = all_extractors(signatures)
    walker = walk_module.Walker(extractors, lambda *_: None, lambda _: None)
    pieces = {"", "x", "file", ".", "-", "_"}
    for names in [*walker._names.declarations, walk_module._BINARY_SUFFIXES, Source.any_text_names]:
        if isinstance(names, tuple):
            names = FileNames(suffixes=names)
        pieces |= set(names.exact) | set(names.suffixes) | set(names.not_prefixes)
        pieces |= {p for p, _ in names.prefixed} | {e for _, ends in names.prefixed for e in ends}
    ordered = sorted(pieces)
    found = {"".join(rng.choice(ordered) for _ in range(rng.randint(1, 3))) for _ in range(6000)}
    found |= set(names_to_try(extractors)) | {"wechat.yml", "wechat.prod.yml", "tiktok.properties", "a.tar.gz"}  # type: ignore[arg-type]
    return rng.sample(sorted(found), len(found))


@pytest.mark.parametrize("with_prefilter", [True, False])
def test_a_name_is_sorted_per_extension_as_it_is_alone(signatures: SignatureSet, with_prefilter: bool) -> None:
    """The walk keeps what a name says of its file per extension (ByExtension): for every name, that is what
    working it out for the name alone gives, whichever name of the extension was seen first."""
    extractors = all_extractors(signatures)
    reader = next(e for e in extractors if isinstance(e, Source))
    prefilter = Prefilter(signatures, reader) if with_prefilter else None
    walker = walk_module.Walker(extractors, lambda *_: None, lambda _: None, None, prefilter)
    assert isinstance(walker._plan, ByExtension)
    names = plan_names(signatures)
    plans = {name: walker._plan(name) for name in names}
    assert plans == {name: walker._plan_of(name) for name in names}
    assert {walk_module._ASK_PATH, walk_module._READ} <= set(plans.values())
    assert (walk_module._SOURCE in plans.values()) is with_prefilter


def test_a_name_tested_by_an_undeclared_extractor_is_sorted_afresh(signatures: SignatureSet) -> None:
    """An extractor that declares neither names nor magic bytes may test anything: then no answer is kept per
    extension, and it is asked about every name and every file's first bytes."""

    class Blind:
        name = "blind"

        def wants(self, name: str, head: bytes) -> bool:
            return name.startswith("only") or head.startswith(b"BLIND")

    extractors = [*all_extractors(signatures), Blind()]
    reader = next(e for e in extractors if isinstance(e, Source))
    walker = walk_module.Walker(extractors, lambda *_: None, lambda _: None, None, Prefilter(signatures, reader))  # type: ignore[list-item]
    assert not isinstance(walker._plan, ByExtension)
    assert walker._plan("a.bin") == walk_module._ASK_PATH and walker._plan("only.bin") == walk_module._READ
    assert walker._plan("a.py") == walk_module._SOURCE
    assert walker._source_only("a.py", b"import os\n") and not walker._source_only("a.py", b"BLIND data")


def test_by_extension_keeps_a_bounded_number_of_answers() -> None:
    asked: list[str] = []
    memo = ByExtension(lambda name: asked.append(name) or len(asked), [FileNames(suffixes=(".tar.gz",))])
    for i in range(ByExtension.LIMIT + 50):
        memo(f"a.e{i}")
    assert len(memo._kept) == ByExtension.LIMIT and len(asked) == ByExtension.LIMIT + 50
    before = len(asked)
    assert memo("b.e1") == memo("c.e1") and len(asked) == before  # kept
    memo("x.tar.gz"), memo("y.tar.gz"), memo("noext")
    assert len(asked) == before + 3  # names a longer suffix or no dot decides are answered afresh


def test_declared_names_give_the_answers_of_asking_each_extractor(signatures: SignatureSet) -> None:
    extractors = all_extractors(signatures)
    table = NameTable(extractors)
    heads = [b"", b"dex\n035\x00", b"\xcf\xfa\xed\xfe", b"!<arch>\n", b"plain text"]
    for name in names_to_try(extractors):  # type: ignore[arg-type]
        for head in heads:
            assert table.wanted(name, head) == any(e.wants(name, head) for e in extractors), (name, head)
            for extractor in extractors:
                names = declared(extractor)
                if names is not None:
                    assert extractor.wants(name, head) == names.match(name)


# --- whole scans with and without the prefilter --------------------------------------------------------------


def build_tree(root: Path, seed: int, signatures: SignatureSet) -> None:
    """A tree of source files, most with nothing, some with a disguised name at a random place (across the
    small chunk sizes the scans below use), and files that exercise every other way through the walk."""
    rng = random.Random(seed)
    vocabulary = words(signatures)
    filler = "".join(f"// ordinary line {i}\n" for i in range(40))
    for i in range(120):
        folder = root / f"m{i % 4}" / ("deep" if i % 3 else "")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{i}_{rng.choice(SOURCE_NAMES)}"
        body = filler * rng.randint(0, 3)
        if rng.random() < 0.4:
            at = rng.randint(0, len(body))
            body = body[:at] + rng.choice(shapes(disguise(rng.choice(vocabulary), rng))) + body[at:]
        data = body.encode()
        if rng.random() < 0.1:  # binary: NUL bytes and invalid UTF-8 around the text
            data = b"\x00\xff\xfe" * 50 + data + b"\x00" * 10
        (folder / name).write_bytes(data)
    (root / "m0" / "pkg.js").write_bytes(b"PK\x03\x04" + b"import wx from 'weixin-js-sdk';\n")
    (root / "m0" / "dex.js").write_bytes(b"dex\n035\x00" + b"\x00" * 120)
    (root / "m0" / "ustar.py").write_bytes(b"a" * 257 + b"ustar" + b"\x00" * 100)
    (root / "m1" / "wechat.yml").write_text("appid: a\nsecret: s\n")
    (root / "m1" / "package.json").write_text('{"name": "x", "dependencies": {"wechat-api": "1.0.0"}}')
    (root / "m1" / "inside.py").symlink_to(root / "m0" / "pkg.js")
    (root / "m1" / "broken.py").symlink_to(root / "nowhere.py")
    (root / "m1" / "outside.py").symlink_to("/etc/hostname")
    (root / "m1" / "folder-link").symlink_to(root / "m0", target_is_directory=True)
    (root / "m2" / ".git").mkdir()
    (root / "m2" / ".git" / "skipped.py").write_text("import wechatpy\n")
    (root / "m2" / "dir.py").mkdir()
    big = filler * 3000 + "\nimport wechatpy\n"  # over the small max_file below: a warning, nothing read
    (root / "m3" / "big.py").write_text(big)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "m3" / "socket.py"))  # cannot be opened for reading, even by root
    server.close()


def comparable(result: ScanResult) -> dict[str, object]:
    data = result.to_json_dict()
    data.pop("at")
    return data


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scans_with_and_without_the_prefilter_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rulebook: Rulebook, signatures: SignatureSet, seed: int
) -> None:
    build_tree(tmp_path / "tree", seed, signatures)
    # Chunks of a few hundred bytes, so that the files above cross several chunk boundaries.
    monkeypatch.setattr(walk_module, "_FIRST_READ", 97)
    monkeypatch.setattr(walk_module, "_READ_CHUNK", 211)
    limits = Limits(max_file=200_000)
    roots = [tmp_path / "tree", tmp_path / "tree" / "m0" / "0_a.py", tmp_path / "missing.py"]
    roots = [r for r in roots if r.exists() or r.name == "missing.py"]
    with_prefilter = scan(roots, at=AT, rulebook=rulebook, limits=limits)
    monkeypatch.setattr(scan_module, "Prefilter", lambda *args: Prefilter(*args, "aho-corasick"))
    with_fallback = scan(roots, at=AT, rulebook=rulebook, limits=limits)
    monkeypatch.setattr(scan_module, "Prefilter", lambda *_: None)
    without = scan(roots, at=AT, rulebook=rulebook, limits=limits)
    assert comparable(with_prefilter) == comparable(without) == comparable(with_fallback)
    assert with_prefilter.findings, "the seeded tree holds findings"
    messages = " | ".join(str(w) for w in with_prefilter.warnings)
    for expected in ("socket.py: cannot read", "big.py: ", "outside.py: symbolic link leading outside",
                     "broken.py: cannot read"):  # fmt: skip
        assert expected in messages


def test_the_walk_goes_in_os_walks_order_with_its_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signatures: SignatureSet
) -> None:
    build_tree(tmp_path / "tree", 4, signatures)
    seen: list[str] = []
    monkeypatch.setattr(walk_module.Walker, "visit", lambda self, display, *_: seen.append(display))
    monkeypatch.chdir(tmp_path)
    for root in [Path("tree"), Path("./tree/"), tmp_path / "tree"]:
        seen.clear()
        walker = walk_module.Walker(all_extractors(signatures), lambda *_: None, lambda _: None, None, None)
        walker.scan(root)
        expected = []
        for folder, dirs, files in os.walk(root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if d not in walk_module._SKIP_DIRS and not Path(folder, d).is_symlink())
            expected += [str(Path(folder, f)) for f in sorted(files)]
        opened = [p for p in expected if p in seen]
        assert seen == opened
        assert "tree/m1/inside.py" in {p.removeprefix(str(tmp_path) + "/") for p in seen}
    monkeypatch.chdir(tmp_path / "tree" / "m0")
    seen.clear()
    walk_module.Walker(all_extractors(signatures), lambda *_: None, lambda _: None).scan(Path("."))
    assert seen and all(not p.startswith("./") and "/" not in p.replace("deep/", "") for p in seen)

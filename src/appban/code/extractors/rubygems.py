"""RubyGems and Bundler: Gemfile, Gemfile.lock, *.gemspec and a built gem's metadata.

Shapes from Bundler's and RubyGems' documentation (bundler.io/guides/gemfile.html, bundler.io/man/gemfile.5,
guides.rubygems.org/specification-reference): a Gemfile declares `gem "name", "constraint"...`; Gemfile.lock
lists every resolved gem under a source's `specs:` as `    name (version)` (four spaces; a platform may
follow the version, "1.15.4-x86_64-linux"), their own dependencies six spaces in, and the Gemfile's choices
under DEPENDENCIES; a gemspec sets `spec.name`, `spec.version` and `add_dependency`; a `.gem` file is a tar
whose metadata.gz is the specification as YAML (`name:` and `version:` a Gem::Version).
"""

from __future__ import annotations

from collections.abc import Iterator

from appban.code.extractors._linear import linear
from appban.code.extractors._text import MAX_MANIFEST_BYTES, lines
from appban.code.model import FileNames, Observation, Sniffed

KIND = "gem"
_GEM = linear(r"""^\s*gem\s*\(?\s*['"]([A-Za-z0-9_.\-]+)['"]\s*(?:,\s*['"]([^'"]*)['"])?""")
_LOCK_SPEC = linear(r"^    ([A-Za-z0-9_.\-]+) \(([^)]*)\)\s*$")
_LOCK_DEPENDENCY = linear(r"^  ([A-Za-z0-9_.\-]+)!?(?:\s|$)")
_SPEC_NAME = linear(r"""^\s*[a-z_]+\.name\s*=\s*['"]([A-Za-z0-9_.\-]+)['"]""")
_SPEC_VERSION = linear(r"""^\s*[a-z_]+\.version\s*=\s*['"]([^'"]+)['"]""")
# Written by hand ("wx_pay") or by RubyGems in an installed specification (`%q<wx_pay>.freeze`).
_SPEC_DEPENDENCY = linear(
    r"""\.add_(?:runtime_|development_)?dependency\s*\(?\s*(?:['"]([A-Za-z0-9_.\-]+)['"]|%q<([A-Za-z0-9_.\-]+)>)"""
)
# An exact gem version ("0.21.0", "1.0.0.rc1"); with "= " it is an exact requirement in a Gemfile.
_EXACT = linear(r"^(?:=\s*)?([0-9]+(?:\.[0-9A-Za-z]+)*)$")
_METADATA_HEAD = b"--- !ruby/object:Gem::Specification"
_MANIFESTS = frozenset({"gemfile", "gems.rb", "gemfile.lock", "gems.locked"})
_METADATA_NAME = linear(r"^name:\s*([A-Za-z0-9_.\-]+)\s*$")
_METADATA_VERSION = linear(r"^\s+version:\s*['\"]?([0-9][0-9A-Za-z.]*)['\"]?\s*$")


def exact_version(text: str | None) -> str | None:
    if text is None or len(text) > 64:
        return None
    match = _EXACT.match(text.strip())
    return match[1] if match else None


class RubyGems:
    name = "rubygems"
    sniffs = Sniffed(FileNames(exact=frozenset({*_MANIFESTS, "metadata"}), suffixes=(".gemspec",)))

    def wants(self, name: str, head: bytes) -> bool:
        if name in _MANIFESTS or name.endswith(".gemspec"):
            return True
        return name == "metadata" and head.startswith(_METADATA_HEAD)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        if name in {"gemfile.lock", "gems.locked"}:
            yield from _lock(data)
        elif name == "metadata":
            yield from _metadata(data)
        else:
            yield from _ruby(data, name.endswith(".gemspec"))


def _lock(data: bytes) -> Iterator[Observation]:
    section = ""
    for number, line in lines(data):
        if line and not line.startswith(" "):
            section = line.strip()
        elif section in {"GEM", "GIT", "PATH", "PLUGIN SOURCE"} and line.startswith("    ") and line[4:5] != " ":
            if match := _LOCK_SPEC.match(line):
                # "1.15.4-x86_64-linux": the version before a platform suffix.
                version = match[2].split("-", 1)[0] if "-" in match[2] and match[2][:1].isdigit() else match[2]
                yield Observation(KIND, match[1], number, match[2], version=exact_version(version))
        elif section == "DEPENDENCIES" and (match := _LOCK_DEPENDENCY.match(line)):
            yield Observation(KIND, match[1], number)


def _ruby(data: bytes, gemspec: bool) -> Iterator[Observation]:
    own: tuple[str, int] | None = None
    version: str | None = None
    for number, line in lines(data, MAX_MANIFEST_BYTES):
        if "gem" in line and (match := _GEM.match(line)):
            yield Observation(KIND, match[1], number, match[2], version=exact_version(match[2]))
        if not gemspec:
            continue
        if "dependency" in line and (match := _SPEC_DEPENDENCY.search(line)):
            yield Observation(KIND, match[1] or match[2], number)
        elif own is None and ".name" in line and (match := _SPEC_NAME.match(line)):
            own = (match[1], number)
        elif version is None and ".version" in line and (match := _SPEC_VERSION.match(line)):
            version = exact_version(match[1])
    if own is not None:
        yield Observation(KIND, own[0], own[1], "gemspec name", version=version)


def _metadata(data: bytes) -> Iterator[Observation]:
    own: tuple[str, int] | None = None
    version: str | None = None
    in_version = False
    for number, line in lines(data, MAX_MANIFEST_BYTES):
        if line.startswith("name:") and own is None and (match := _METADATA_NAME.match(line)):
            own = (match[1], number)
        elif line.startswith("version:"):
            in_version = True
        elif in_version and (match := _METADATA_VERSION.match(line)):
            version = exact_version(match[1])
            in_version = False
        elif line and not line.startswith(" "):
            in_version = False
        if own is not None and version is not None:
            break
    if own is not None:
        yield Observation(KIND, own[0], own[1], "gem metadata", version=version)

"""CocoaPods: Podfile, Podfile.lock, podspecs (Ruby and JSON)."""

from __future__ import annotations

from collections.abc import Iterator

from appban import safejson
from appban.code.extractors._linear import linear
from appban.code.extractors._text import MAX_MANIFEST_BYTES, QuotedTokens, lines, text_of
from appban.code.model import FileNames, Observation

_POD = linear(r"""^\s*pod\s+['"]([^'"/]+)""")
_LOCK = linear(r"""^\s*-\s+"?([A-Za-z0-9_+\-.]+)(?:/[^\s(]+)?\s*(?:\(([^)]*)\))?""")
_DEPENDENCY = linear(r"""\.dependency\s*\(?\s*['"]([^'"/]+)""")
_SPEC_NAME = linear(r"""\.name\s*=\s*['"]([^'"]+)['"]""")
_SPEC_VERSION = linear(r"""\.version\s*=\s*['"]([^'"]+)['"]""")
_EXACT = linear(r"^[0-9][0-9A-Za-z._\-]*$")  # a pod version; "~> 2.2" or a variable is none
# The value is the rest of the line, sliced off rather than captured: capturing costs RE2 far more per byte.
_VENDORED = linear(r"""\.vendored_(?:frameworks|libraries)\s*=""")
_QUOTED = linear(r"""['"]([^'"]+)['"]""")
_JSON_DEPENDENCY = linear(r""""([A-Za-z0-9_+\-.]+)(?:/[^"]*)?"\s*:\s*\[""")


class CocoaPods:
    name = "cocoapods"
    names = FileNames(frozenset({"podfile", "podfile.lock"}), (".podspec", ".podspec.json"))

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        if name.endswith(".podspec.json"):
            yield from _json_spec(data)
        spec_name: tuple[str, int] | None = None
        spec_version: str | None = None
        in_pods = False
        for number, line in lines(data, MAX_MANIFEST_BYTES):
            if name == "podfile.lock":
                if not line.startswith(" "):
                    in_pods = line.strip() in {"PODS:", "DEPENDENCIES:", "SPEC REPOS:"}
                elif in_pods and (match := _LOCK.match(line)):
                    yield Observation("cocoapods", match[1], number, match[2])
                continue
            # The substring tests only skip lines a pattern cannot match; they keep large files fast.
            if "pod" in line and (match := _POD.match(line)):
                yield Observation("cocoapods", match[1], number)
            if ".dependency" in line and (match := _DEPENDENCY.search(line)):
                yield Observation("cocoapods", match[1], number)
            if name.endswith(".podspec"):
                if spec_name is None and ".name" in line and (match := _SPEC_NAME.search(line)):
                    spec_name = (match[1], number)
                elif spec_version is None and ".version" in line and (match := _SPEC_VERSION.search(line)):
                    spec_version = match[1] if _EXACT.match(match[1]) else None
            if ".vendored_" in line and (match := _VENDORED.search(line)):
                for value in _QUOTED.findall(line[match.span()[1] :]):
                    base = value.rstrip("/").rsplit("/", 1)[-1]
                    if base.endswith((".framework", ".xcframework")):
                        yield Observation("frameworks", base.rsplit(".", 1)[0], number)
                    elif base.endswith(".a"):
                        yield Observation("static_libraries", base, number)
            if name.endswith(".podspec.json") and "[" in line:
                for dep in _JSON_DEPENDENCY.findall(line):
                    yield Observation("cocoapods", dep, number)
        if spec_name is not None:
            # The pod a podspec defines, at the version it declares (`s.version = '2.2.0'`; a version read from
            # elsewhere, as `package['version']`, is no version here).
            yield Observation("cocoapods", spec_name[0], spec_name[1], "podspec name", version=spec_version)


def _json_spec(data: bytes) -> Iterator[Observation]:
    """A JSON podspec (as the CocoaPods trunk stores them): its own name and version."""
    text = text_of(data, MAX_MANIFEST_BYTES)
    document = safejson.loads(text)  # errors are reported by the walker
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        return
    version = document.get("version")
    pinned = version if isinstance(version, str) and _EXACT.match(version) else None
    yield Observation("cocoapods", document["name"], QuotedTokens(text).line("name"), "podspec name", version=pinned)

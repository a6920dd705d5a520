"""CocoaPods: Podfile, Podfile.lock, podspecs (Ruby and JSON)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from appban.code.extractors._text import lines
from appban.code.model import Observation

_POD = re.compile(r"""^\s*pod\s+['"]([^'"/]+)""")
_LOCK = re.compile(r"""^\s*-\s+"?([A-Za-z0-9_+\-.]+)(?:/[^\s(]+)?\s*(?:\(([^)]*)\))?""")
_DEPENDENCY = re.compile(r"""\.dependency\s*\(?\s*['"]([^'"/]+)""")
_SPEC_NAME = re.compile(r"""\.name\s*=\s*['"]([^'"]+)['"]""")
_VENDORED = re.compile(r"""\.vendored_(frameworks|libraries)\s*=\s*(.+)$""")
_QUOTED = re.compile(r"""['"]([^'"]+)['"]""")
_JSON_DEPENDENCY = re.compile(r""""([A-Za-z0-9_+\-.]+)(?:/[^"]*)?"\s*:\s*\[""")


class CocoaPods:
    name = "cocoapods"

    def wants(self, name: str, head: bytes) -> bool:
        return name in {"podfile", "podfile.lock"} or name.endswith((".podspec", ".podspec.json"))

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        in_pods = False
        for number, line in lines(data):
            if name == "podfile.lock":
                if not line.startswith(" "):
                    in_pods = line.strip() in {"PODS:", "DEPENDENCIES:", "SPEC REPOS:"}
                elif in_pods and (match := _LOCK.match(line)):
                    yield Observation("cocoapods", match[1], number, match[2])
                continue
            if match := _POD.match(line):
                yield Observation("cocoapods", match[1], number)
            if match := _DEPENDENCY.search(line):
                yield Observation("cocoapods", match[1], number)
            if name.endswith(".podspec") and (match := _SPEC_NAME.search(line)):
                yield Observation("cocoapods", match[1], number, "podspec name")
            if match := _VENDORED.search(line):
                for value in _QUOTED.findall(match[2]):
                    base = value.rstrip("/").rsplit("/", 1)[-1]
                    if base.endswith((".framework", ".xcframework")):
                        yield Observation("frameworks", base.rsplit(".", 1)[0], number)
                    elif base.endswith(".a"):
                        yield Observation("static_libraries", base, number)
            if name.endswith(".podspec.json"):
                for dep in _JSON_DEPENDENCY.findall(line):
                    yield Observation("cocoapods", dep, number)

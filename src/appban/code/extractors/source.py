"""Source files: imports (Java, Kotlin, Swift, Objective-C, JS/TS, Python, Dart) and service URLs."""

from __future__ import annotations

from collections.abc import Iterator

from appban.code.extractors._linear import Match, linear
from appban.code.extractors._text import lines
from appban.code.model import Observation

_JAVA_IMPORT = linear(r"^\s*import\s+(?:static\s+)?([A-Za-z_][\w.]*)")
_QUALIFIED_ROOTS = ("com.", "cn.", "net.", "org.", "io.")
_QUALIFIED = linear(r"\b((?:com|cn|net|org|io)\.[a-z0-9_]+(?:\.[A-Za-z0-9_]+){1,8})")
_SWIFT_IMPORT = linear(
    r"^\s*(?:@testable\s+|@_exported\s+)?import\s+(?:(?:class|struct|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_]\w*)"
)
_OBJC_IMPORT = linear(r"""^\s*#\s*(?:import|include)\s*[<"]([^>"]+)[>"]""")
_OBJC_MODULE = linear(r"^\s*@import\s+([A-Za-z_]\w*)")
_OBJC_MESSAGE = linear(r"\[\s*([A-Z][A-Za-z0-9_]{2,})\s+[a-z]")
_JS_IMPORT = linear(r"""(?:\bfrom\s+|\brequire\s*\(\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"'./][^"']*)["']""")
_PY_IMPORT = linear(r"^\s*(?:from\s+([A-Za-z_][\w.]*)\s+import|import\s+([A-Za-z_][\w.]*))")
_DART_IMPORT = linear(r"""^\s*import\s+['"]package:([a-z0-9_]+)/""")

JAVA_LIKE = (".java", ".kt", ".kts", ".groovy", ".scala")
SWIFT = (".swift",)
OBJC = (".m", ".mm", ".h", ".hpp", ".c", ".cc", ".cpp")
JS = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".vue", ".svelte")
PY = (".py",)
DART = (".dart",)
MARKUP = (".html", ".htm", ".xhtml", ".php", ".erb", ".jsp", ".xml")


def _npm_name(spec: str) -> str:
    parts = spec.split("/")
    return "/".join(parts[:2]) if spec.startswith("@") else parts[0]


def _qualified(line: str, found: Match, number: int) -> Observation:
    """A dotted name in code is a class reference; the same name as a whole string literal is an
    Android package name (e.g. checking whether the TikTok app is installed)."""
    start, end = found.span(1)
    quoted = start > 0 and end < len(line) and line[start - 1] == line[end] and line[end] in "\"'"
    return Observation("android_packages" if quoted else "java", found[1], number)


class Source:
    name = "source"

    def __init__(self, url_needles: list[str]):
        self.needles = [needle.casefold() for needle in url_needles]

    def wants(self, name: str, head: bytes) -> bool:
        return name.endswith(JAVA_LIKE + SWIFT + OBJC + JS + PY + DART + MARKUP) and not name.startswith(
            "androidmanifest"
        )

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        for number, line in lines(data):
            lowered = line.casefold()
            for needle in self.needles:
                if needle in lowered:
                    yield Observation("url", line.strip()[:300], number)
            # Each pattern runs only on lines holding a word it needs: the substring tests are cheap and
            # keep the per-line cost of the linear matcher off the many lines that cannot match.
            if name.endswith(JAVA_LIKE):
                if "import" in line and (match := _JAVA_IMPORT.match(line)):
                    yield Observation("java", match[1].removesuffix(".*"), number)
                elif "." in line and any(root in line for root in _QUALIFIED_ROOTS):
                    for found in _QUALIFIED.finditer(line):
                        yield _qualified(line, found, number)
            elif name.endswith(SWIFT):
                if "import" in line and (match := _SWIFT_IMPORT.match(line)):
                    yield Observation("modules", match[1], number)
            elif name.endswith(OBJC):
                if "#" in line and (match := _OBJC_IMPORT.match(line)):
                    header = match[1]
                    yield Observation("headers", header.rsplit("/", 1)[-1], number)
                    if "/" in header:
                        yield Observation("modules", header.split("/", 1)[0], number)
                elif "@import" in line and (match := _OBJC_MODULE.match(line)):
                    yield Observation("modules", match[1], number)
                if "[" in line:
                    for cls in _OBJC_MESSAGE.findall(line):
                        yield Observation("objc_classes", cls, number)
            elif name.endswith(JS):
                if "from" in line or "require" in line or "import" in line:
                    for spec in _JS_IMPORT.findall(line):
                        yield Observation("npm", _npm_name(spec), number)
            elif name.endswith(PY):
                if "import" in line and (match := _PY_IMPORT.match(line)):
                    module = (match[1] or match[2]).split(".")[0]
                    yield Observation("pypi", module.replace("_", "-").lower(), number)
            elif name.endswith(DART) and "package:" in line and (match := _DART_IMPORT.match(line)):
                yield Observation("pub", match[1], number)

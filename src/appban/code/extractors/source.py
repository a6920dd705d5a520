"""Source files: imports (Java, Kotlin, Swift, Objective-C, JS/TS, Python, Dart), service URLs in source and
configuration of any language, API calls written out by name, and login providers given their credentials
(providers.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from appban.code import budget
from appban.code.extractors import config_credentials, providers
from appban.code.extractors._linear import Match, linear
from appban.code.extractors._text import text_of
from appban.code.model import FileNames, Observation

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
# A dotted name of three or more segments as a whole string literal: how Django settings name apps and
# authentication backends ("allauth.socialaccount.providers.weixin").
_PY_DOTTED_STRING = linear(r"""["']([A-Za-z_]\w*(?:\.[A-Za-z_]\w*){2,9})["']""")
_JS_EXTENSIONS = (".js", ".mjs", ".cjs", ".ts", ".jsx", ".tsx")

JAVA_LIKE = (".java", ".kt", ".kts", ".groovy", ".scala")
SWIFT = (".swift",)
OBJC = (".m", ".mm", ".h", ".hpp", ".c", ".cc", ".cpp")
JS = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".vue", ".svelte")
PY = (".py",)
DART = (".dart",)
MARKUP = (".html", ".htm", ".xhtml", ".php", ".erb", ".jsp", ".xml")
# Other languages and configuration files: read for service URLs only (a server calling WeChat's API from
# Go, Ruby or C#, or an endpoint in application.yaml, is the same use as from Python).
OTHER = (".go", ".rb", ".cs", ".rs", ".lua", ".pl", ".sh", ".ps1", ".json", ".yaml", ".yml", ".toml",
         ".properties", ".ini", ".cfg", ".conf", ".env")  # fmt: skip
# Text around a service URL kept as the observation: enough to show the call, bounded for minified code.
_BEFORE, _AFTER = 60, 240


def _npm_name(spec: str) -> str:
    parts = spec.split("/")
    return "/".join(parts[:2]) if spec.startswith("@") else parts[0]


def _qualified(line: str, found: Match, number: int) -> Observation:
    """A dotted name in code is a class reference; the same name as a whole string literal is an
    Android package name (e.g. checking whether the TikTok app is installed)."""
    start, end = found.span(1)
    quoted = start > 0 and end < len(line) and line[start - 1] == line[end] and line[end] in "\"'"
    return Observation("android_packages" if quoted else "java", found[1], number)


def _js_module(spec: str) -> str | None:
    """An import of a file inside a package ("@auth/core/providers/wechat.js"), without its extension."""
    depth = 2 if spec.startswith("@") else 1
    if spec.count("/") < depth:
        return None
    for extension in _JS_EXTENSIONS:
        if spec.endswith(extension):
            return spec[: -len(extension)]
    return spec


class Source:
    name = "source"
    # What this reader reports. Every observation of these kinds is a piece of the text (imports, dotted
    # names, URLs, calls), or, for configured providers, found only in a text holding one of WORDS: so a
    # file holding neither a signature's name of these kinds nor one of WORDS gives nothing a signature
    # matches. The scan's prefilter (code/prefilter.py) skips such files on this ground alone.
    KINDS = frozenset({"url", "calls", "java", "android_packages", "modules", "headers", "objc_classes",
                       "npm", "npm_modules", "pypi", "python_modules", "pub", providers.KIND,
                       config_credentials.KIND})  # fmt: skip
    WORDS = providers.NAMES + config_credentials.WORDS
    names = FileNames(
        suffixes=JAVA_LIKE + SWIFT + OBJC + JS + PY + DART + MARKUP + OTHER, not_prefixes=("androidmanifest",)
    )

    def __init__(self, url_needles: list[str], calls: Iterable[str] = ()):
        self.needles = [needle.casefold() for needle in url_needles]
        self.calls = sorted(calls)

    def wants(self, name: str, head: bytes) -> bool:
        return self.names.match(name)

    #: The names `reads_any_text` accepts.
    any_text_names = config_credentials.NAMED_AFTER_APP

    def reads_any_text(self, name: str) -> bool:
        """Whether a file of this name can give observations without any word of KINDS or WORDS in it."""
        return config_credentials.named_after_app(name)

    def extract(self, data: bytes, name: str) -> Iterator[Observation]:
        text = text_of(data)
        # Each needle is looked for in the whole text once (a C-speed find), then only in the lines of a
        # text that holds it: most files hold none, and then no line pays for them.
        lowered_text = text.casefold()
        needles = [needle for needle in self.needles if needle in lowered_text]
        calls = [call for call in self.calls if call in text] if name.endswith(JS) else []
        code = not name.endswith(OTHER)
        if needles or calls or code:
            yield from self._lines(text, name, needles, calls, code)
        # After the lines, so that a finding's first line is an import's rather than a later credential's.
        if providers.worth_searching(lowered_text):
            yield from providers.configured_providers(text)
        if config_credentials.wants(name):
            yield from config_credentials.config_credentials(text, name)

    def _lines(self, text: str, name: str, needles: list[str], calls: list[str], code: bool) -> Iterator[Observation]:
        for number, line in enumerate(text.splitlines(), start=1):
            budget.tick(number)
            if needles:
                yield from _urls(line, needles, number)
            for call in calls:
                at = line.find(call)
                if at >= 0 and (at == 0 or not (line[at - 1].isalnum() or line[at - 1] in "_$.")):
                    yield Observation("calls", call, number)
            if not code:
                continue
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
                        if (module := _js_module(spec)) is not None:
                            yield Observation("npm_modules", module, number)
            elif name.endswith(PY):
                if "import" in line and (match := _PY_IMPORT.match(line)):
                    dotted = match[1] or match[2]
                    yield Observation("pypi", dotted.split(".")[0].replace("_", "-").lower(), number)
                    if "." in dotted:
                        yield Observation("python_modules", dotted, number)
                elif "." in line and ('"' in line or "'" in line):
                    for dotted in _PY_DOTTED_STRING.findall(line):
                        yield Observation("python_modules", dotted, number)
            elif name.endswith(DART) and "package:" in line and (match := _DART_IMPORT.match(line)):
                yield Observation("pub", match[1], number)


def _urls(line: str, needles: list[str], number: int) -> Iterator[Observation]:
    """The text around each service URL on a line, one observation per needle found."""
    lowered = line.casefold()
    # Casefolding can change a line's length (ß becomes ss); then the offsets are the folded line's.
    shown = line if len(lowered) == len(line) else lowered
    for needle in needles:
        at = lowered.find(needle)
        if at >= 0:
            yield Observation("url", shown[max(at - _BEFORE, 0) : at + _AFTER].strip(), number)

"""The signature set: what each covered app's SDKs and code look like, indexed for fast look-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import re2  # type: ignore[import-untyped]
import yaml
from pydantic import BaseModel, ConfigDict, Field

from appban.rulebook.loader import Problem, Rulebook, RulebookError

SignatureKind = Literal["sdk", "service_client", "app_code", "company_other"]
# Observation kinds matched by exact (case-insensitive) name.
EXACT_KINDS = (
    "maven", "cocoapods", "swiftpm", "modules", "frameworks", "objc_classes", "headers", "static_libraries",
    "jar_names", "url_schemes", "android_packages", "npm", "pypi", "go", "pub", "app_ids", "signing_certs",
    "npm_modules", "calls", "configured_providers", "composer", "gem",
)  # fmt: skip
# Observation kinds matched by dotted prefix (whole segments), most specific first.
PREFIX_KINDS = ("java", "python_modules")
# What may stand before a service host in text: anything but a host-name character, so that
# "api.weixin.qq.com" is found in "https://api.weixin.qq.com/..." and in "sh.api.weixin.qq.com" (a label
# boundary), but not in "qyapi.weixin.qq.com" (WeCom's API, another app).
_HOST_START = r"(?:^|[^a-z0-9_-])"
# What may follow a needle that ends in a host name: not more of the host ("api.weixin.qq.com.evil.example").
_HOST_END = r"(?:$|[^a-z0-9_.-]|\.(?:$|[^a-z0-9_-]))"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(Strict):
    java: list[str] = Field(default_factory=list)
    url: list[str] = Field(default_factory=list)
    maven: list[str] = Field(default_factory=list)
    cocoapods: list[str] = Field(default_factory=list)
    swiftpm: list[str] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list)
    frameworks: list[str] = Field(default_factory=list)
    objc_classes: list[str] = Field(default_factory=list)
    headers: list[str] = Field(default_factory=list)
    static_libraries: list[str] = Field(default_factory=list)
    jar_names: list[str] = Field(default_factory=list)
    url_schemes: list[str] = Field(default_factory=list)
    android_packages: list[str] = Field(default_factory=list)
    npm: list[str] = Field(default_factory=list)
    pypi: list[str] = Field(default_factory=list)
    go: list[str] = Field(default_factory=list)
    pub: list[str] = Field(default_factory=list)
    composer: list[str] = Field(default_factory=list)  # Composer (PHP) packages, vendor/name
    gem: list[str] = Field(default_factory=list)  # RubyGems
    app_ids: list[str] = Field(default_factory=list)  # the app's own package name / bundle ID
    signing_certs: list[str] = Field(default_factory=list)  # SHA-256 of the app's signing certificate
    npm_modules: list[str] = Field(default_factory=list)  # an import path inside a package ("pkg/providers/x")
    python_modules: list[str] = Field(default_factory=list)  # dotted module prefixes, imported or named in strings
    calls: list[str] = Field(default_factory=list)  # API calls written out in source ("wx.cloud.callFunction")
    # A login provider configured with its credentials ("wechat", "tiktok"): see extractors/providers.py.
    configured_providers: list[str] = Field(default_factory=list)


class Signature(Strict):
    id: str
    app: str
    kind: SignatureKind
    confidence: float = Field(gt=0, le=1)
    label: str
    sources: list[str] = Field(min_length=1)
    notes: str | None = None
    match: Match


class Catalog(Strict):
    """A multi-provider login library. Its own package lists many providers' endpoints, WeChat's and
    TikTok's among them; that offer is not a use of either app until the user's code configures one."""

    id: str
    label: str
    sources: list[str] = Field(min_length=1)
    npm: list[str] = Field(default_factory=list)  # its npm package names
    python_modules: list[str] = Field(default_factory=list)  # its top-level Python import packages


class SignatureFile(Strict):
    sources: dict[str, str]
    signatures: list[Signature]
    catalogs: list[Catalog] = Field(default_factory=list)


@dataclass(frozen=True)
class Hit:
    signature: Signature
    matched: str  # the signature's own pattern that matched


@dataclass
class SignatureSet:
    signatures: list[Signature]
    sources: dict[str, str]
    catalogs: list[Catalog] = field(default_factory=list)
    # Indices built from the signatures (init=False: dataclasses.replace builds fresh ones, never shares them).
    # A prefix may belong to several signatures: code shared by two apps is each app's code.
    _prefixes: dict[tuple[str, str], list[Signature]] = field(default_factory=dict, init=False)
    _exact: dict[tuple[str, str], Signature] = field(default_factory=dict, init=False)
    _maven_groups: dict[str, Signature] = field(default_factory=dict, init=False)
    _urls: dict[str, Signature] = field(default_factory=dict, init=False)
    _url_pattern: Any = field(default=None, init=False)  # a compiled RE2 pattern (linear on untrusted text)
    _needles: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        for signature in self.signatures:
            for kind in PREFIX_KINDS:
                for prefix in getattr(signature.match, kind):
                    self._prefixes.setdefault((kind, prefix), []).append(signature)
            for kind in EXACT_KINDS:
                for value in getattr(signature.match, kind):
                    if kind == "maven" and value.endswith(":*"):
                        self._maven_groups[value[:-2].casefold()] = signature
                    else:
                        self._exact[(kind, value.casefold())] = signature
            for prefix in signature.match.url:
                self._urls.setdefault(prefix.casefold(), signature)
        if self._urls:
            # One alternation, longest needle first, so that of two needles starting at the same place the
            # more specific wins; RE2 keeps the search linear in the text whatever the number of needles.
            self._needles = sorted(self._urls, key=len, reverse=True)
            alternation = "|".join(_url_needle(needle) for needle in self._needles)
            self._url_pattern = re2.compile(f"{_HOST_START}({alternation})")

    def source_urls(self, signature: Signature) -> list[str]:
        return [self.sources[key] for key in signature.sources]

    def prefixed(self, kind: str, name: str) -> list[Hit]:
        """Every signature of the most specific prefix (whole dotted segments) covering `name`."""
        parts = name.split(".")
        for end in range(min(len(parts), 8), 1, -1):
            prefix = ".".join(parts[:end])
            found = self._prefixes.get((kind, prefix))
            if found:
                return [Hit(signature, prefix) for signature in found]
        return []

    def java(self, name: str) -> Hit | None:
        """The most specific signature whose package prefix covers a dotted class or package name."""
        hits = self.prefixed("java", name)
        return hits[0] if hits else None

    def exact(self, kind: str, value: str) -> Hit | None:
        key = value.strip().casefold()
        if kind == "maven":
            group, _, rest = key.partition(":")
            artifact = rest.partition(":")[0]
            if (sig := self._exact.get(("maven", f"{group}:{artifact}"))) is not None:
                return Hit(sig, f"{group}:{artifact}")
            if (sig := self._maven_groups.get(group)) is not None:
                return Hit(sig, f"{group}:*")
            return None
        if kind == "go":
            # Go module paths: a dependency on a sub-package of the module counts.
            for candidate, sig in self._exact.items():
                if candidate[0] == "go" and (key == candidate[1] or key.startswith(candidate[1] + "/")):
                    return Hit(sig, candidate[1])
            return None
        sig = self._exact.get((kind, key))
        return Hit(sig, value) if sig is not None else None

    def url(self, text: str) -> Hit | None:
        """The first service host (and path) in a piece of text, matched at a host-name boundary."""
        if self._url_pattern is None:
            return None
        found = self._url_pattern.search(text.casefold())
        if found is None:
            return None
        # The group may end with the character that closed the host; the needle is its longest prefix.
        matched = found.group(1)
        needle = next(n for n in self._needles if matched.startswith(n))
        return Hit(self._urls[needle], needle)

    def java_prefixes(self) -> list[str]:
        return sorted({prefix for kind, prefix in self._prefixes if kind == "java"})

    def names(self, kind: str) -> set[str]:
        """Every exact name of one kind the signatures look for (as written, not case-folded)."""
        return {value for signature in self.signatures for value in getattr(signature.match, kind)}

    def url_needles(self) -> list[str]:
        return list(self._urls)


def _url_needle(needle: str) -> str:
    """A needle as a pattern: literal text; one that ends in its host name must end where the host does."""
    escaped = "".join(char if char.isalnum() or char == "_" else "\\" + char for char in needle)
    return escaped if "/" in needle else escaped + _HOST_END


def default_signature_path() -> Path:
    from appban.knowledge.layout import active_root

    return active_root().path("code/signatures.yaml")


def load_signatures(rulebook: Rulebook, path: Path | None = None) -> SignatureSet:
    path = path or default_signature_path()
    try:
        data = SignatureFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise RulebookError([Problem(path.name, None, "", str(exc))]) from None
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, signature in enumerate(data.signatures):
        where = f"signatures[{i}]"
        if signature.id in seen:
            problems.append(Problem(path.name, None, f"{where}.id", f"{signature.id!r} is used twice"))
        seen.add(signature.id)
        if signature.app not in rulebook.subjects.subjects:
            problems.append(Problem(path.name, None, f"{where}.app", f"unknown subject {signature.app!r}"))
        for source in signature.sources:
            if source not in data.sources:
                problems.append(Problem(path.name, None, f"{where}.sources", f"unknown source {source!r}"))
    for i, catalog in enumerate(data.catalogs):
        for source in catalog.sources:
            if source not in data.sources:
                problems.append(Problem(path.name, None, f"catalogs[{i}].sources", f"unknown source {source!r}"))
    if problems:
        raise RulebookError(problems)
    return SignatureSet(data.signatures, data.sources, data.catalogs)


def default_signatures(rulebook: Rulebook) -> SignatureSet:
    """The packaged signature set, checked against (and kept by) a loaded rulebook: it goes with the rulebook,
    where a cache keyed by the rulebook would keep every one ever loaded."""
    found = rulebook.derived.get("signatures")
    if found is None:
        found = rulebook.derived["signatures"] = load_signatures(rulebook)
    return cast(SignatureSet, found)

"""The signature set: what each covered app's SDKs and code look like, indexed for fast look-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field

from appban.rulebook.loader import Problem, Rulebook, RulebookError

SignatureKind = Literal["sdk", "service_client", "app_code", "company_other"]
# Observation kinds matched by exact (case-insensitive) name.
EXACT_KINDS = (
    "maven", "cocoapods", "swiftpm", "modules", "frameworks", "objc_classes", "headers", "static_libraries",
    "jar_names", "url_schemes", "android_packages", "npm", "pypi", "go", "pub", "app_ids", "signing_certs",
)  # fmt: skip


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
    app_ids: list[str] = Field(default_factory=list)  # the app's own package name / bundle ID
    signing_certs: list[str] = Field(default_factory=list)  # SHA-256 of the app's signing certificate


class Signature(Strict):
    id: str
    app: str
    kind: SignatureKind
    confidence: float = Field(gt=0, le=1)
    label: str
    sources: list[str] = Field(min_length=1)
    notes: str | None = None
    match: Match


class SignatureFile(Strict):
    sources: dict[str, str]
    signatures: list[Signature]


@dataclass(frozen=True)
class Hit:
    signature: Signature
    matched: str  # the signature's own pattern that matched


@dataclass
class SignatureSet:
    signatures: list[Signature]
    sources: dict[str, str]
    _java: dict[str, Signature] = field(default_factory=dict)
    _exact: dict[tuple[str, str], Signature] = field(default_factory=dict)
    _maven_groups: dict[str, Signature] = field(default_factory=dict)
    _urls: list[tuple[str, Signature]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for signature in self.signatures:
            for prefix in signature.match.java:
                self._java[prefix] = signature
            for kind in EXACT_KINDS:
                for value in getattr(signature.match, kind):
                    if kind == "maven" and value.endswith(":*"):
                        self._maven_groups[value[:-2].casefold()] = signature
                    else:
                        self._exact[(kind, value.casefold())] = signature
            for prefix in signature.match.url:
                self._urls.append((prefix.casefold(), signature))

    def source_urls(self, signature: Signature) -> list[str]:
        return [self.sources[key] for key in signature.sources]

    def java(self, name: str) -> Hit | None:
        """The most specific signature whose package prefix covers a dotted class or package name."""
        parts = name.split(".")
        for end in range(min(len(parts), 8), 1, -1):
            prefix = ".".join(parts[:end])
            if prefix in self._java:
                return Hit(self._java[prefix], prefix)
        return None

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
        lowered = text.casefold()
        for prefix, sig in self._urls:
            if prefix in lowered:
                return Hit(sig, prefix)
        return None

    def java_prefixes(self) -> list[str]:
        return sorted(self._java)

    def names(self, kind: str) -> set[str]:
        """Every exact name of one kind the signatures look for (as written, not case-folded)."""
        return {value for signature in self.signatures for value in getattr(signature.match, kind)}

    def url_needles(self) -> list[str]:
        return [prefix for prefix, _ in self._urls]


def default_signature_path() -> Path:
    return Path(str(resources.files("appban.code") / "data" / "signatures.yaml"))


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
    if problems:
        raise RulebookError(problems)
    return SignatureSet(data.signatures, data.sources)


def default_signatures(rulebook: Rulebook) -> SignatureSet:
    """The packaged signature set, checked against (and kept by) a loaded rulebook: it goes with the rulebook,
    where a cache keyed by the rulebook would keep every one ever loaded."""
    found = rulebook.derived.get("signatures")
    if found is None:
        found = rulebook.derived["signatures"] = load_signatures(rulebook)
    return cast(SignatureSet, found)

"""scan(): find covered apps' SDKs and code in paths, then let the engine judge each finding.

Extractors report observations (a class name, a dependency, a URL scheme); the signature set says
which app and kind each belongs to; findings are aggregated per file and signature and carry the
decision for constituent_code_use (and app_store_distribution when the app's own code is found).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appban.code.catalogs import CatalogRoots
from appban.code.extractors import all_extractors
from appban.code.extractors._linear import linear
from appban.code.extractors.source import Source
from appban.code.model import Limits, Observation, Package, Warning_
from appban.code.prefilter import Prefilter
from appban.code.signatures import EXACT_KINDS, PREFIX_KINDS, Hit, Signature, SignatureSet, default_signatures
from appban.code.walk import MEMBER_SEP, Walker
from appban.engine.decide import Decision, default_rulebook, evaluate
from appban.engine.law import resolve
from appban.knowledge.install import bundle_of
from appban.rulebook.loader import Rulebook
from appban.vocabulary import Category

if TYPE_CHECKING:
    from appban.suppress import Suppression

# Identifiers of the apps' own signing certificates (SHA-256 of the DER certificate), computed from
# the certificates embedded in TikTok's OpenSDK (see the identity registry's sources).
_MAX_EXAMPLES = 5
_MAX_PACKAGES = 100  # distinct packages kept per finding: a wildcard signature can match a whole group
# Observation kinds that name a package in a package manager (and so can give a package URL).
PACKAGE_KINDS = frozenset({"maven", "npm", "pypi", "cocoapods", "go", "swiftpm", "pub", "composer", "gem"})
# An exact version in each ecosystem's notation, for extractors that leave it in `detail`. What else is
# found there is not one: a range (^1.2.0, ~> 1.8), a property (${sdk.version}), a dynamic Gradle version
# (1.+, latest.release), a marker ("package", "podspec name") or a repository URL.
_EXACT_VERSION = {
    "maven": linear(r"^[0-9][0-9A-Za-z._\-]*$"),
    "cocoapods": linear(r"^[0-9][0-9A-Za-z._\-]*$"),
    "go": linear(r"^v[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.\-+]*)?$"),
    "npm": linear(r"^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.\-]+)?(?:\+[0-9A-Za-z.\-]+)?$"),
}
_MAX_VERSION = 128


def pinned_version(observation: Observation) -> str | None:
    """The exact version an observation of a package gives, or None (a range is not a version)."""
    if observation.version is not None:
        return observation.version[:_MAX_VERSION] or None
    text = observation.detail
    pattern = _EXACT_VERSION.get(observation.kind)
    if text is None or pattern is None or len(text) > _MAX_VERSION:
        return None
    if observation.kind == "maven" and ":" in text:
        # A Cordova plugin.xml framework src: the whole group:artifact:version coordinate.
        parts = text.split(":")
        text = parts[2] if len(parts) > 2 else ""
    return text if pattern.match(text) else None


def package_of(observation: Observation) -> Package:
    url = observation.detail if observation.kind == "swiftpm" and "://" in (observation.detail or "") else None
    return Package(observation.kind, observation.value, pinned_version(observation), observation.line, url)


@dataclass
class CodeFinding:
    path: str  # where the evidence is: a file, or file!/member!/member inside archives
    line: int | None
    signature: Signature
    observation: str  # the kind of fact seen (java, maven, url_schemes...)
    matched: str  # the first value seen
    count: int = 1
    examples: list[str] = field(default_factory=list)
    decisions: dict[str, Decision] = field(default_factory=dict)  # category -> decision
    # The observations behind `examples` (same order), with their own kinds and lines.
    evidence: list[Observation] = field(default_factory=list)
    # Package coordinates among the observations, once each, with the version where one is pinned.
    packages: list[Package] = field(default_factory=list)
    # Set by appban.suppress: the identity a baseline knows it by, and the entry that accepted it.
    fingerprint: str | None = None
    suppression: Suppression | None = None

    def add_package(self, package: Package) -> None:
        key = (package.ecosystem, package.name.casefold())
        for i, known in enumerate(self.packages):
            if (known.ecosystem, known.name.casefold()) == key:
                if known.version is None and package.version is not None:
                    self.packages[i] = package  # a lock file's pin after the manifest's bare name
                elif known.url is None and package.url is not None:
                    self.packages[i] = Package(known.ecosystem, known.name, known.version, known.line, package.url)
                return
        if len(self.packages) < _MAX_PACKAGES:
            self.packages.append(package)

    @property
    def file(self) -> str:
        return self.path.split(MEMBER_SEP, 1)[0]

    @property
    def member(self) -> str | None:
        parts = self.path.split(MEMBER_SEP, 1)
        return parts[1] if len(parts) > 1 else None

    @property
    def worst(self) -> Decision:
        order = ["prohibited", "enjoined", "not_yet_effective", "revoked", "not_prohibited"]
        return min(self.decisions.values(), key=lambda d: order.index(d.verdict.value))

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "file": self.file,
            "member": self.member,
            "line": self.line,
            "signature": self.signature.id,
            "label": self.signature.label,
            "app": self.signature.app,
            "kind": self.signature.kind,
            "confidence": self.signature.confidence,
            "observation": self.observation,
            "matched": self.matched,
            "count": self.count,
            "examples": self.examples,
            "packages": [
                {"ecosystem": p.ecosystem, "name": p.name, "version": p.version, "line": p.line} for p in self.packages
            ],
            "decisions": {category: d.to_json_dict() for category, d in self.decisions.items()},
        } | self._review_json()

    def _review_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {} if self.fingerprint is None else {"fingerprint": self.fingerprint}
        if self.suppression is not None:
            extra["suppression"] = self.suppression.to_json_dict()
        return extra


@dataclass
class ScanResult:
    findings: list[CodeFinding]
    warnings: list[Warning_]
    files: int
    at: str
    where: str
    rulebook_version: str
    # The paths scanned, as given: what reports make finding paths relative to (scan_root).
    roots: list[str] = field(default_factory=list)
    # Set by appban.suppress: findings a configured suppression accepts (not in `findings`), and how many
    # findings a --baseline already held (None without one).
    suppressed: list[CodeFinding] = field(default_factory=list)
    unchanged: int | None = None
    bundle: str | None = None  # the knowledge bundle the rulebook came from; None for the package's own data

    def scan_root(self) -> str | None:
        """The folder every scanned path lies in: the folder scanned, the folder of a file scanned, or
        the nearest common folder of several paths. None when there is none (paths on different drives)."""
        folders = [os.path.abspath(r) if os.path.isdir(r) else os.path.dirname(os.path.abspath(r)) for r in self.roots]
        try:
            return os.path.commonpath(folders) if folders else None
        except ValueError:
            return None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "rulebook_version": self.rulebook_version,
            "bundle": self.bundle,
            "at": self.at,
            "where": self.where,
            "files": self.files,
            "findings": [finding.to_json_dict() for finding in self.findings],
            "warnings": [{"path": w.path, "message": w.message} for w in self.warnings],
            "suppressed": [finding.to_json_dict() for finding in self.suppressed],
        } | ({} if self.unchanged is None else {"baseline": {"unchanged": self.unchanged}})


def _self_import(path: str, observation: Observation) -> bool:
    """A library's own modules importing each other are the library, not a use of it (the library
    itself is reported from its package metadata)."""
    if observation.kind not in {"pypi", "npm"} or observation.detail is not None:
        return False
    # Case-insensitively: the Python extractor lower-cases module names (TikTokApi/ imports "tiktokapi").
    folders = {folder.casefold() for folder in path.replace(MEMBER_SEP, "/").split("/")[:-1]}
    value = observation.value.casefold()
    return value in folders or value.replace("-", "_") in folders


# An APK's manifest package and an IPA's bundle identifier name the app the archive *is*.
_APP_ID_KINDS = {"manifest_package", "bundle_id"}


def match(signatures: SignatureSet, observation: Observation) -> list[Hit]:
    """The signatures an observation shows: usually one; code two apps share is each app's code."""
    if observation.kind in PREFIX_KINDS:
        return signatures.prefixed(observation.kind, observation.value)
    hit: Hit | None = None
    if observation.kind in _APP_ID_KINDS:
        hit = signatures.exact("app_ids", observation.value)
    elif observation.kind == "signing_cert":
        hit = signatures.exact("signing_certs", observation.value)
    elif observation.kind == "url":
        hit = signatures.url(observation.value)
    elif observation.kind in EXACT_KINDS:
        hit = signatures.exact(observation.kind, observation.value)
    return [hit] if hit is not None else []


def scan(
    paths: Sequence[Path],
    *,
    at: dt.datetime | None = None,
    where: str = "US",
    rulebook: Rulebook | None = None,
    signatures: SignatureSet | None = None,
    limits: Limits | None = None,
) -> ScanResult:
    book = rulebook or default_rulebook()
    signature_set = signatures or default_signatures(book)
    instant = at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    findings: dict[tuple[str, str], CodeFinding] = {}
    warnings: list[Warning_] = []
    catalogs = CatalogRoots(signature_set.catalogs)

    def emit(path: str, observation: Observation) -> None:
        catalogs.observe(path, observation)
        if not _self_import(path, observation):
            for hit in match(signature_set, observation):
                record(path, observation, hit)

    def record(path: str, observation: Observation, hit: Hit) -> None:
        # One finding per innermost file and signature; class files of one JAR count as the JAR.
        holder = path.rsplit(MEMBER_SEP, 1)[0] if observation.kind == "java" and path.endswith(".class") else path
        key = (holder, hit.signature.id)
        finding = findings.get(key)
        if finding is None:
            finding = findings[key] = CodeFinding(holder, observation.line, hit.signature, observation.kind,
                                                  observation.value, examples=[observation.value],
                                                  evidence=[observation])  # fmt: skip
        else:
            finding.count += 1
            if len(finding.examples) < _MAX_EXAMPLES and observation.value not in finding.examples:
                finding.examples.append(observation.value)
                finding.evidence.append(observation)
        if observation.kind in PACKAGE_KINDS:
            finding.add_package(package_of(observation))

    extractors = all_extractors(signature_set)
    reader = next((e for e in extractors if isinstance(e, Source)), None)
    prefilter = None if reader is None else Prefilter(signature_set, reader)
    walker = Walker(extractors, emit, warnings.append, limits, prefilter)
    for path in paths:
        walker.scan(Path(path))
    # A multi-provider login library's own provider table is an offer, not a use (code/catalogs.py).
    findings = {key: f for key, f in findings.items() if catalogs.owner(f.path) is None}
    law = resolve(book)
    decided: dict[tuple[str, Category], Decision] = {}
    for finding in findings.values():
        categories = [Category.CONSTITUENT_CODE_USE]
        if finding.signature.kind == "app_code":
            categories.append(Category.APP_STORE_DISTRIBUTION)
        for category in categories:
            key = (finding.signature.app, category)
            if key not in decided:
                decided[key] = evaluate(law, finding.signature.app, category, where, instant, {})
            finding.decisions[category.value] = decided[key]
    ordered = sorted(findings.values(), key=lambda f: (f.path, f.line or 0, f.signature.id))
    from appban.engine.instants import iso

    return ScanResult(
        ordered,
        warnings,
        walker.files,
        iso(instant),
        where,
        book.version,
        [str(p) for p in paths],
        bundle=bundle_of(book),
    )

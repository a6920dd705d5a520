"""CycloneDX 1.6: one component per covered app's SDK found by a scan, with the evidence that found it.

A component stands for an SDK (a signature) and, where a manifest or lock file names it in a package
manager, for that package at its pinned version, with a package URL. Class names, headers, frameworks and
URLs seen in sources and binaries are the component's `evidence.occurrences`; how it was identified is its
`evidence.identity` (the field, the signature's confidence, and one method per analysis technique).
Occurrence locations are relative to the scan root (ScanResult.scan_root), archive members after "!/".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from importlib.metadata import version as installed_version
from pathlib import PurePath, PurePosixPath
from urllib.parse import urlsplit

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.component_evidence import (
    AnalysisTechnique,
    ComponentEvidence,
    Identity,
    IdentityField,
    Method,
    Occurrence,
)
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from appban.code.model import Observation, Package
from appban.code.scan import PACKAGE_KINDS, CodeFinding, ScanResult
from appban.code.signatures import Signature
from appban.code.walk import MEMBER_SEP

# Package URL types (purl-spec PURL-TYPES) for the package kinds the scanner reads.
_PURL_TYPES = {
    "maven": "maven",
    "npm": "npm",
    "pypi": "pypi",
    "cocoapods": "cocoapods",
    "go": "golang",
    "swiftpm": "swift",
    "pub": "pub",
    "composer": "composer",
    "gem": "gem",
}
# Observation kinds whose value is a name in code (CycloneDX occurrence `symbol`); others are context.
_SYMBOL_KINDS = {"java", "objc_classes", "modules", "frameworks", "headers", "static_libraries", "jar_names"}
_MANIFEST_NAMES = {
    "pom.xml", "package.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml",
    "podfile", "podfile.lock", "package.swift", "package.resolved", "go.mod", "androidmanifest.xml",
    "info.plist", "plugin.xml", "metadata", "pkg-info", "pyproject.toml", "setup.cfg", "pubspec.yaml",
    "pubspec.lock", "composer.json", "composer.lock", "installed.json", "gemfile", "gemfile.lock", "gems.rb",
    "gems.locked",
}  # fmt: skip
_MANIFEST_SUFFIXES = (
    ".pom", ".gradle", ".gradle.kts", ".versions.toml", ".podspec", ".podspec.json", ".plist", ".gemspec",
)  # fmt: skip
_SOURCE_SUFFIXES = (
    ".java", ".kt", ".kts", ".m", ".mm", ".h", ".swift", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx",
    ".py", ".dart", ".vue", ".html", ".htm", ".c", ".cc", ".cpp",
)  # fmt: skip


def purl_of(package: Package) -> PackageURL | None:
    """The package URL of a coordinate, following each type's rules in purl-spec; None when the type
    needs what the manifest did not give (a Swift package's repository and version)."""
    kind = _PURL_TYPES.get(package.ecosystem)
    name, version = package.name.strip(), package.version
    if kind is None or not name:
        return None
    namespace: str | None = None
    subpath: str | None = None
    if kind == "maven":
        group, _, artifact = name.partition(":")
        if not group or not artifact:
            return None
        namespace, name = group, artifact.partition(":")[0]
    elif kind == "npm":
        name = name.lower()
        if name.startswith("@") and "/" in name:
            namespace, name = name.split("/", 1)
    elif kind == "pypi":
        name = "-".join(part for part in name.lower().replace("_", "-").replace(".", "-").split("-") if part)
    elif kind == "golang":
        name = name.lower()
        if "/" in name:
            namespace, name = name.rsplit("/", 1)
    elif kind == "cocoapods":
        name, _, subspec = name.partition("/")
        subpath = subspec or None
    elif kind == "swift":
        # The namespace is the source host and owner, and the version is required.
        parts = urlsplit(package.url or "")
        owner = PurePosixPath(parts.path).parent.as_posix().strip("/")
        if not parts.hostname or not owner or version is None:
            return None
        namespace = f"{parts.hostname}/{owner}"
        name = PurePosixPath(parts.path).name.removesuffix(".git")
    elif kind == "pub":
        name = name.lower()
    elif kind == "composer":
        # vendor/project, both case-insensitive: lower-cased (purl-spec PURL-TYPES, composer).
        vendor, _, project = name.lower().partition("/")
        if not vendor or not project:
            return None
        namespace, name = vendor, project
    try:
        return PackageURL(kind, namespace, name, version, None, subpath)
    except ValueError:
        return None


def technique(kind: str, path: str) -> AnalysisTechnique:
    """How an observation of `kind` in the file or member at `path` was made."""
    base = path.rsplit("!/", 1)[-1].rsplit("/", 1)[-1].lower()
    if kind == "signing_cert":
        return AnalysisTechnique.HASH_COMPARISON
    if kind in {"manifest_package", "bundle_id"} or base in _MANIFEST_NAMES or base.endswith(_MANIFEST_SUFFIXES):
        return AnalysisTechnique.MANIFEST_ANALYSIS
    if base.endswith(_SOURCE_SUFFIXES):
        return AnalysisTechnique.SOURCE_CODE_ANALYSIS
    if kind in {"jar_names", "static_libraries", "headers", "frameworks"} or (
        kind == "java" and base.endswith((".jar", ".aar", ".zip"))
    ):
        return AnalysisTechnique.FILENAME  # a member's name inside an archive (class files of a JAR)
    if kind in PACKAGE_KINDS:
        return AnalysisTechnique.MANIFEST_ANALYSIS
    return AnalysisTechnique.BINARY_ANALYSIS


_ORDER = ["prohibited", "enjoined", "not_yet_effective", "revoked", "not_prohibited"]


@dataclass
class _Sdk:
    """What becomes one component: a signature, and the package coordinate it stands for, if any."""

    signature: Signature
    root: str | None  # the scan root occurrence locations are relative to
    package: Package | None = None
    purl: PackageURL | None = None
    findings: list[CodeFinding] = field(default_factory=list)
    occurrences: list[Occurrence] = field(default_factory=list)
    methods: dict[AnalysisTechnique, str] = field(default_factory=dict)  # technique -> first evidence seen
    parts: list[_Sdk] = field(default_factory=list)  # the SDK's packages, when it has several

    def absorb(self, other: _Sdk) -> None:
        self.findings += [f for f in other.findings if f not in self.findings]
        self.occurrences += other.occurrences
        for way, value in other.methods.items():
            self.methods.setdefault(way, value)

    def add(self, finding: CodeFinding, kind: str, value: str, line: int | None, context: str) -> None:
        if finding not in self.findings:
            self.findings.append(finding)
        location = relative_location(finding.path, self.root)
        way = technique(kind, finding.path)
        self.methods.setdefault(way, f"{kind} {value} in {location}" + (f":{line}" if line else ""))
        symbol = value if kind in _SYMBOL_KINDS else None
        self.occurrences.append(
            Occurrence(location=location, line=line, symbol=symbol, additional_context=context or None)
        )


def relative_location(path: str, root: str | None) -> str:
    """An occurrence's location relative to the scan root, with "/" separators and archive members after
    "!/" (`app/build.gradle`, `libs/sdk.aar!/classes.jar`), so that an SBOM does not depend on where the
    scan ran. A path outside the root stays as it was given."""
    if root is None:
        return path
    file, sep, member = path.partition(MEMBER_SEP)
    try:
        relative = os.path.relpath(os.path.abspath(file), root)
    except ValueError:  # another drive on Windows
        return path
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return path
    return PurePath(relative).as_posix() + sep + member


def _context(finding: CodeFinding, observation: Observation) -> str:
    text = observation.kind if observation.kind in _SYMBOL_KINDS else f"{observation.kind}: {observation.value}"
    if finding.count > len(finding.evidence) and observation is finding.evidence[0]:
        text += f" (1 of {finding.count} seen in this file)"
    return text


def _group(findings: Iterable[CodeFinding], root: str | None) -> Iterator[_Sdk]:
    """One component per SDK (signature). An SDK found as one package coordinate is that package, at its
    version, with every piece of evidence; one found as several (the artifacts of one SDK, or one SDK in two
    package managers) keeps the evidence that names no package and holds the packages as components."""
    by_signature: dict[str, list[CodeFinding]] = {}
    for finding in findings:
        by_signature.setdefault(finding.signature.id, []).append(finding)
    for group in by_signature.values():
        signature = group[0].signature
        packages: dict[tuple[str, str], dict[str | None, _Sdk]] = {}
        for finding in group:
            for package in finding.packages:
                versions = packages.setdefault((package.ecosystem, package.name.casefold()), {})
                sdk = versions.get(package.version)
                if sdk is None:
                    sdk = versions[package.version] = _Sdk(signature, root, package, purl_of(package))
                elif sdk.purl is None and (purl := purl_of(package)) is not None:
                    sdk.package, sdk.purl = package, purl  # a later mention with the repository URL
                detail = " ".join(part for part in (package.ecosystem, package.name, package.version) if part)
                sdk.add(finding, package.ecosystem, package.name, package.line, detail)
        components: list[_Sdk] = []
        for versions in packages.values():
            pinned = [sdk for found, sdk in versions.items() if found is not None]
            bare = versions.get(None)
            if bare is not None and len(pinned) == 1:
                # A manifest naming the package and a lock file pinning it are one dependency.
                pinned[0].absorb(bare)
                bare = None
            components += pinned + ([bare] if bare is not None else [])
        sdk = _Sdk(signature, root)
        for finding in group:
            for observation in finding.evidence:
                if observation.kind not in PACKAGE_KINDS:
                    sdk.add(finding, observation.kind, observation.value, observation.line,
                            _context(finding, observation))  # fmt: skip
        if len(components) == 1:
            components[0].absorb(sdk)
            yield components[0]
            continue
        for part in components:
            sdk.findings += [f for f in part.findings if f not in sdk.findings]
            for way, value in part.methods.items():
                sdk.methods.setdefault(way, value)
        sdk.parts = components
        yield sdk


def _component(sdk: _Sdk, ref: str) -> Component:
    signature = sdk.signature
    confidence = Decimal(str(signature.confidence))
    identity = Identity(
        field=IdentityField.PURL if sdk.purl is not None else IdentityField.NAME,
        confidence=confidence,
        concluded_value=sdk.purl.to_string() if sdk.purl is not None else signature.label,
        methods=[Method(technique=way, confidence=confidence, value=value) for way, value in sdk.methods.items()],
    )
    worst = min((f.worst for f in sdk.findings), key=lambda d: _ORDER.index(d.verdict.value))
    properties = [
        Property(name="appban:signature", value=signature.id),
        Property(name="appban:app", value=signature.app),
        Property(name="appban:kind", value=signature.kind),
        Property(name="appban:verdict", value=worst.verdict.value),
    ]
    properties += [
        Property(name=f"appban:verdict:{category}", value=decision.verdict.value)
        for finding in sdk.findings
        for category, decision in finding.decisions.items()
    ]
    purl, package = sdk.purl, sdk.package
    if purl is not None:
        name, group, version = purl.name, purl.namespace, purl.version
    elif package is not None:
        name, group, version = package.name, None, package.version
    else:
        name, group, version = signature.label, None, None
    return Component(
        name=name,
        group=group,
        version=version,
        type=ComponentType.LIBRARY,
        purl=purl,
        description=signature.label,
        bom_ref=ref,
        properties=properties,
        evidence=ComponentEvidence(identity=[identity], occurrences=sdk.occurrences),
        components=[_component(part, f"{ref}.{number}") for number, part in enumerate(sdk.parts)],
    )


def components(result: ScanResult) -> list[Component]:
    return [_component(sdk, f"appban:{sdk.signature.id}") for sdk in _group(result.findings, result.scan_root())]


def to_cyclonedx(result: ScanResult) -> str:
    bom = Bom()
    bom.metadata.properties.update(
        [
            Property(name="appban:at", value=result.at),
            Property(name="appban:where", value=result.where),
            Property(name="appban:rulebook-version", value=result.rulebook_version),
            Property(name="appban:version", value=installed_version("appban")),
        ]
    )
    if result.bundle:  # a property has a value or is left out: the package's own data names no bundle
        bom.metadata.properties.add(Property(name="appban:knowledge-bundle", value=result.bundle))
    for component in components(result):
        bom.components.add(component)
    return JsonV1Dot6(bom).output_as_string(indent=2)

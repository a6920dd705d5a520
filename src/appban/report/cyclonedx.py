"""CycloneDX 1.6: the covered apps' SDK components found by a scan, built with cyclonedx-python-lib."""

from __future__ import annotations

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from appban.code.scan import CodeFinding, ScanResult

# Package coordinates have a package URL; other evidence (a class name, a scheme) names no package.
_PURL_TYPES = {
    "maven": "maven",
    "npm": "npm",
    "pypi": "pypi",
    "cocoapods": "cocoapods",
    "go": "golang",
    "swiftpm": "swift",
    "pub": "pub",
}


def _purl(finding: CodeFinding) -> PackageURL | None:
    kind = _PURL_TYPES.get(finding.observation)
    if kind is None:
        return None
    value = finding.matched
    if kind == "maven" and ":" in value:
        group, artifact = value.split(":", 1)
        return PackageURL(kind, group, artifact.split(":")[0])
    if kind == "npm" and value.startswith("@") and "/" in value:
        scope, name = value.split("/", 1)
        return PackageURL(kind, scope, name)
    if kind == "golang" and "/" in value:
        namespace, name = value.rsplit("/", 1)
        return PackageURL(kind, namespace, name)
    return PackageURL(kind, None, value)


def to_cyclonedx(result: ScanResult) -> str:
    bom = Bom()
    seen: dict[str, Component] = {}
    for finding in result.findings:
        key = f"{finding.signature.id}|{finding.observation}|{finding.matched}"
        if key in seen:
            continue
        purl = _purl(finding)
        component = Component(
            name=finding.matched if purl is None else purl.name,
            group=purl.namespace if purl is not None else None,
            type=ComponentType.LIBRARY,
            purl=purl,
            description=finding.signature.label,
            bom_ref=f"appban:{len(seen)}",
            properties=[
                Property(name="appban:signature", value=finding.signature.id),
                Property(name="appban:app", value=finding.signature.app),
                Property(name="appban:kind", value=finding.signature.kind),
                Property(name="appban:evidence", value=finding.path + (f":{finding.line}" if finding.line else "")),
                Property(name="appban:verdict", value=finding.worst.verdict.value),
            ],
        )
        seen[key] = component
        bom.components.add(component)
    return JsonV1Dot6(bom).output_as_string(indent=2)

"""One extractor per input format. Adding a format is adding a module and listing it here."""

from __future__ import annotations

from appban.code.extractors import (
    android_manifest,
    cocoapods,
    composer,
    cordova,
    dex,
    gomod,
    gradle,
    macho,
    maven,
    npm,
    plist,
    python,
    rubygems,
    source,
    swiftpm,
)
from appban.code.model import Extractor
from appban.code.signatures import SignatureSet


def all_extractors(signatures: SignatureSet) -> list[Extractor]:
    url_needles = signatures.url_needles()
    return [
        gradle.Gradle(),
        maven.Maven(),
        cocoapods.CocoaPods(),
        swiftpm.SwiftPM(),
        npm.Npm(),
        python.Python(),
        gomod.GoMod(),
        composer.Composer(),
        rubygems.RubyGems(),
        cordova.Cordova(),
        android_manifest.AndroidManifest(),
        plist.InfoPlist(),
        source.Source(url_needles, signatures.names("calls")),
        dex.Dex(signatures.java_prefixes(), url_needles, signatures.names("android_packages")),
        macho.MachO(url_needles),
    ]

"""One extractor per input format. Adding a format is adding a module and listing it here."""

from __future__ import annotations

from appban.code.extractors import (
    android_manifest,
    cocoapods,
    cordova,
    gomod,
    gradle,
    maven,
    npm,
    plist,
    python,
    source,
    swiftpm,
)
from appban.code.model import Extractor


def all_extractors(url_needles: list[str]) -> list[Extractor]:
    return [
        gradle.Gradle(),
        maven.Maven(),
        cocoapods.CocoaPods(),
        swiftpm.SwiftPM(),
        npm.Npm(),
        python.Python(),
        gomod.GoMod(),
        cordova.Cordova(),
        android_manifest.AndroidManifest(),
        plist.InfoPlist(),
        source.Source(url_needles),
    ]

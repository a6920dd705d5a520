"""Constituent-code scanning of manifests, lock files and sources (files written by the tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appban import load_rulebook
from appban.code.scan import scan

BOOK = load_rulebook()
AT = "2020-11-20T00:00:00+00:00"


def findings(root: Path) -> set[tuple[str, int | None, str, str]]:
    import datetime as dt

    result = scan([root], at=dt.datetime.fromisoformat(AT), rulebook=BOOK)
    return {(Path(f.path).name, f.line, f.signature.id, f.signature.kind) for f in result.findings}


FILES = {
    "app/build.gradle": (
        "plugins { id 'com.android.application' }\n"
        "dependencies {\n"
        "    implementation 'com.tencent.mm.opensdk:wechat-sdk-android:6.8.0'\n"
        '    implementation "com.squareup.okhttp3:okhttp:4.12.0"\n'
        "}\n",
        {("build.gradle", 3, "wechat-opensdk-android", "sdk")},
    ),
    "app/build.gradle.kts": (
        'dependencies {\n    implementation("com.tiktok.open.sdk:tiktok-open-sdk-auth:2.2.0")\n}\n',
        {("build.gradle.kts", 2, "tiktok-opensdk-android", "sdk")},
    ),
    "gradle/libs.versions.toml": (
        '[libraries]\nwechat = { module = "com.tencent.mm.opensdk:wechat-sdk-android", version = "6.8.0" }\n'
        'pangle = { group = "com.pangle.global", name = "ads-sdk", version = "5.0" }\n',
        {
            ("libs.versions.toml", 2, "wechat-opensdk-android", "sdk"),
            ("libs.versions.toml", 3, "bytedance-pangle", "company_other"),
        },
    ),
    "pom.xml": (
        "<project>\n  <dependencies>\n    <dependency>\n      <groupId>com.github.tiktok</groupId>\n"
        "      <artifactId>tiktok-business-android-sdk</artifactId>\n"
        "    </dependency>\n  </dependencies>\n</project>\n",
        {("pom.xml", 3, "tiktok-business-sdk", "service_client")},
    ),
    "ios/Podfile": (
        "platform :ios, '12.0'\ntarget 'App' do\n  pod 'WechatOpenSDK', '~> 2.0'\n  pod 'Alamofire'\nend\n",
        {("Podfile", 3, "wechat-opensdk-ios", "sdk")},
    ),
    "ios/Podfile.lock": (
        "PODS:\n  - Alamofire (5.8.0)\n  - TikTokOpenSDKCore (2.2.0)\n\nDEPENDENCIES:\n  - TikTokOpenSDKCore\n",
        {("Podfile.lock", 3, "tiktok-opensdk-ios", "sdk")},
    ),
    "ios/Share.podspec": (
        "Pod::Spec.new do |s|\n  s.name = 'Share'\n  s.dependency 'TikTokOpenShareSDK'\n"
        "  s.vendored_frameworks = 'Frameworks/TikTokOpenSDK.framework'\nend\n",
        {("Share.podspec", 3, "tiktok-opensdk-ios", "sdk")},
    ),
    "ios/Package.swift": (
        "// swift-tools-version:5.7\nimport PackageDescription\nlet package = Package(\n  dependencies: [\n"
        '    .package(url: "https://github.com/tiktok/tiktok-opensdk-ios.git", from: "2.2.0"),\n  ]\n)\n',
        {("Package.swift", 5, "tiktok-opensdk-ios", "sdk")},
    ),
    "web/package.json": (
        json.dumps({"name": "shop", "dependencies": {"weixin-js-sdk": "^1.6.5", "react": "^18"}}, indent=2),
        {("package.json", 4, "wechat-jssdk", "service_client")},
    ),
    "web/yarn.lock": (
        '"tiktok-pixel@^2.0.3":\n  version "2.0.3"\n\nreact@^18:\n  version "18.2.0"\n',
        {("yarn.lock", 1, "tiktok-pixel", "service_client")},
    ),
    "server/requirements.txt": (
        "requests==2.31\nwechatpy[cryptography]==1.8.18\n",
        {("requirements.txt", 2, "wechat-service-clients", "service_client")},
    ),
    "server/go.mod": (
        "module example.com/pay\n\ngo 1.21\n\nrequire (\n\tgithub.com/wechatpay-apiv3/wechatpay-go v0.2.18\n)\n",
        {("go.mod", 6, "wechat-service-clients", "service_client")},
    ),
    "plugin/plugin.xml": (
        '<plugin id="x">\n  <platform name="android">\n'
        '    <framework src="com.tencent.mm.opensdk:wechat-sdk-android:+" />\n'
        '  </platform>\n  <platform name="ios">\n'
        '    <config-file target="*-Info.plist" parent="LSApplicationQueriesSchemes">\n'
        "      <array><string>weixin</string><string>weixinULAPI</string></array>\n    </config-file>\n"
        '    <podspec><pods><pod name="WechatOpenSDK" /></pods></podspec>\n  </platform>\n</plugin>\n',
        {
            ("plugin.xml", 3, "wechat-opensdk-android", "sdk"),
            ("plugin.xml", 7, "wechat-url-schemes", "sdk"),
            ("plugin.xml", 9, "wechat-opensdk-ios", "sdk"),
        },
    ),
    "android/AndroidManifest.xml": (
        '<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="com.example.shop">\n'
        '  <queries>\n    <package android:name="com.zhiliaoapp.musically" />\n  </queries>\n</manifest>\n',
        {("AndroidManifest.xml", 3, "tiktok-app-queries", "sdk")},
    ),
    "src/Login.java": (
        "package com.example;\nimport com.tencent.mm.opensdk.openapi.IWXAPI;\nimport java.util.List;\n",
        {("Login.java", 2, "wechat-opensdk-android", "sdk")},
    ),
    "src/Share.kt": (
        "package com.example\nimport com.tiktok.open.sdk.share.ShareApi\n",
        {("Share.kt", 2, "tiktok-opensdk-android", "sdk")},
    ),
    "src/Auth.swift": ("import UIKit\nimport TikTokOpenAuthSDK\n", {("Auth.swift", 2, "tiktok-opensdk-ios", "sdk")}),
    "src/AppDelegate.m": (
        '#import "AppDelegate.h"\n#import <WechatOpenSDK/WXApi.h>\n\n'
        '- (void)go { [WXApi registerApp:@"wx1" universalLink:@"u"]; }\n',
        {("AppDelegate.m", 2, "wechat-opensdk-ios", "sdk")},
    ),
    "src/pay.ts": (
        "import wx from 'weixin-js-sdk';\nimport React from 'react';\n",
        {("pay.ts", 1, "wechat-jssdk", "service_client")},
    ),
    "src/bot.py": (
        "from wechatpy import WeChatClient\nimport requests\n",
        {("bot.py", 1, "wechat-service-clients", "service_client")},
    ),
    "server/pay.py": (
        'PAY_URL = "https://api.mch.weixin.qq.com/v3/pay/transactions/native"\n',
        {("pay.py", 1, "wechatpay-api-endpoints", "service_client")},
    ),
    "public/index.html": (
        '<html><head>\n<script src="https://res.wx.qq.com/open/js/jweixin-1.6.0.js"></script>\n</head></html>\n',
        {("index.html", 2, "wechat-jssdk", "service_client")},
    ),
    "public/track.js": (
        "!function (w, d, t) { w.TiktokAnalyticsObject=t;\n var u='https://analytics.tiktok.com/i18n/pixel/events.js';\n}\n",
        {("track.js", 2, "tiktok-pixel", "service_client")},
    ),
}


@pytest.mark.parametrize("relative", sorted(FILES))
def test_each_format_is_found_with_file_line_signature_and_kind(tmp_path: Path, relative: str) -> None:
    content, expected = FILES[relative]
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    assert findings(tmp_path) == expected


CLEAN = {
    "build.gradle": "dependencies { implementation 'com.squareup.okhttp3:okhttp:4.12.0' }\n",
    "package.json": json.dumps({"name": "x", "dependencies": {"tiktoken": "1.0.0", "tiktok-video-element": "1.0"}}),
    "requirements.txt": "tiktoken==0.7.0\n",  # TikTokApi, a TikTok web-API client, is a finding (test_code_services)
    "Podfile": "pod 'Alamofire'\n",
    "Main.java": "import com.luck.picture.lib.PictureSelectorWeChatStyleActivity;\nimport com.tencent.mmx.Other;\n",
    "Notes.swift": "import SwiftUI\n// mentions TikTok and WeChat in a comment\n",
    "index.html": '<a href="https://www.tiktok.com/@shop">our TikTok</a>\n',
}


def test_false_friends_and_clean_projects_give_no_findings(tmp_path: Path) -> None:
    for name, content in CLEAN.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    assert findings(tmp_path) == set()


def test_company_components_and_other_apps_are_told_apart(tmp_path: Path) -> None:
    (tmp_path / "build.gradle").write_text(
        "implementation 'com.tencent:mmkv:1.3.0'\nimplementation 'com.pangle.global:ads-sdk:5.0'\n"
    )
    (tmp_path / "Main.java").write_text(
        "import com.tencent.tauth.Tencent;\nimport com.bytedance.sdk.open.douyin.DouYinOpenApiFactory;\n"
    )
    import datetime as dt

    result = scan([tmp_path], at=dt.datetime(2020, 11, 20, tzinfo=dt.UTC), rulebook=BOOK)
    by_signature = {f.signature.id: f for f in result.findings}
    assert set(by_signature) == {
        "wechat-team-components",
        "bytedance-pangle",
        "tencent-qq-connect",
        "bytedance-douyin-opensdk",
    }
    assert by_signature["bytedance-pangle"].signature.kind == "company_other"
    assert all(f.worst.verdict.value == "not_prohibited" for f in result.findings)


def test_decisions_follow_the_instant(tmp_path: Path) -> None:
    import datetime as dt

    (tmp_path / "Main.java").write_text("import com.tiktok.open.sdk.auth.AuthApi;\n")
    verdicts = {
        at: scan([tmp_path], at=dt.datetime.fromisoformat(at), rulebook=BOOK).findings[0].worst.verdict.value
        for at in ("2020-11-13T04:58:59+00:00", "2020-11-13T04:59:00+00:00", "2021-07-01T00:00:00+00:00")
    }
    assert list(verdicts.values()) == ["not_yet_effective", "enjoined", "revoked"]

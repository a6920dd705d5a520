"""Code the scanner reads: APK, JAR, AAR, IPA, zip, tar, tgz, gzip, zstd, ar, DEX, Mach-O (thin and fat),
binary and text AndroidManifest, Info.plist (XML and binary) and build manifests (Gradle, Maven, CocoaPods,
SwiftPM, npm, Python, Go, Cordova) and sources.

Containers are built member by member, so a mutation can land inside a member (then the container is
rebuilt, valid around a broken member) or in the container's own structure (headers, sizes, names).
"""

from __future__ import annotations

import io
import plistlib
import random
import tarfile
import warnings
import zipfile

from fuzz import mutate
from fuzz.generators import Case, capped, raw_mutant
from fuzz.generators.compress import gz, zstd
from tests import test_binary_readers as binary
from tests.test_code_manifests import FILES as MANIFESTS

DEX_STRINGS = [*binary.DEX_STRINGS, "https://open.douyin.com/platform/oauth", "com.ss.android.ugc.aweme"]


def dex(rng: random.Random) -> bytes:
    strings = list(DEX_STRINGS)
    if rng.random() < 0.3:
        strings += [mutate.pick_hostile(rng) for _ in range(rng.randint(1, 5))]
    types = [rng.randrange(len(strings)) for _ in range(rng.randint(0, 6))]
    if rng.random() < 0.1:
        types.append(rng.choice((len(strings), 0xFFFFFFFF)))
    return binary.build_dex(strings, types, version=rng.choice((b"035", b"039", b"041", b"999")))


def macho(rng: random.Random) -> bytes:
    image = binary.build_macho(
        endian=rng.choice(("<", ">")),
        is64=rng.random() < 0.7,
        encrypted=rng.random() < 0.2,
        symbols=tuple(rng.sample(("_OBJC_CLASS_$_WXApi", "_main", "_TikTokOpenSDK", "_x" * 300), rng.randint(1, 3))),
    )
    if rng.random() < 0.2:
        return binary.build_fat([(binary.CPU_ARM64, 0, image), (binary.CPU_ARM, 9, image)], wide=rng.random() < 0.5)
    return image


def axml(rng: random.Random) -> bytes:
    return binary.build_axml(utf8=rng.random() < 0.5)


def ar(rng: random.Random) -> bytes:
    members = [("a.o", b"odd"), ("WXApiObjectBridge.o", macho(rng)), ("with space.o", b"\x00\x01")]
    return (binary.build_gnu_ar if rng.random() < 0.5 else binary.build_bsd_ar)(members)


def info_plist(rng: random.Random) -> bytes:
    document = {
        "CFBundleIdentifier": rng.choice(("com.example.app", "com.zhiliaoapp.musically")),
        "LSApplicationQueriesSchemes": ["weixin", "weixinULAPI", "tiktokopensdk", mutate.pick_hostile(rng)],
        "CFBundleURLTypes": [{"CFBundleURLSchemes": ["wx1234abcd", "snssdk1233"]}],
        "Nested": {"a": [{"b": [1, 2.5, True, b"\x00", 2**63 - 1]}]},
    }
    form = plistlib.FMT_BINARY if rng.random() < 0.4 else plistlib.FMT_XML
    data = plistlib.dumps(document, fmt=form)
    if form == plistlib.FMT_XML and rng.random() < 0.2:
        depth = rng.choice((100, 10000))
        data = data.replace(b"<dict>", b"<dict><key>d</key>" + b"<array>" * depth + b"</array>" * depth, 1)
    if form == plistlib.FMT_XML and rng.random() < 0.1:
        data = data.replace(b"<plist", b'<!DOCTYPE plist [<!ENTITY x SYSTEM "file:///etc/passwd">]><plist', 1)
        data = data.replace(b"weixin<", b"&x;<", 1)
    return data


def text_manifest(rng: random.Random) -> bytes:
    name = rng.choice(list(MANIFESTS))
    text = MANIFESTS[name][0]
    return _hostile_text(rng, text).encode("utf-8", "surrogatepass")


def _hostile_text(rng: random.Random, text: str) -> str:
    text = text[: 1 << 20]
    kind = rng.randrange(8)
    if kind == 0:  # long runs that make backtracking regexes quadratic
        unit = rng.choice(("<dependency>", "<", " ", "a", "implementation '", "android:name=\"", "pod '", "com.",
                           "<!--", "${", "\\", "\"", "'", "=", "import ", "a.", "<groupId>"))  # fmt: skip
        i = rng.randrange(len(text) + 1)
        return text[:i] + unit * rng.choice((1000, 20000, 100000)) + text[i:]
    if kind == 1:
        return text * rng.choice((10, 1000 if len(text) < 2000 else 10))
    if kind == 2:
        return mutate.line_ends(rng, text)
    if kind == 3:
        i = rng.randrange(len(text) + 1)
        return text[:i] + mutate.pick_hostile(rng) + text[i:]
    if kind == 4:
        return text.replace("<", "<" * rng.choice((2, 1000)), 1)
    return text


MANIFEST_NAMES = sorted({name.rsplit("/", 1)[-1] for name in MANIFESTS})


def _zip(rng: random.Random, members: list[tuple[str, bytes]]) -> bytes:
    sink = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(sink, "w") as archive:
        warnings.simplefilter("ignore")  # duplicate member names are one of the mutations
        for name, data in members:
            method = zipfile.ZIP_DEFLATED if rng.random() < 0.7 or len(data) > 1 << 20 else zipfile.ZIP_STORED
            info = zipfile.ZipInfo(name, date_time=(2020, 9, 20, 0, 0, 0))
            info.compress_type = method
            if rng.random() < 0.03:
                info.external_attr = 0o120777 << 16  # a symlink
            archive.writestr(info, data)
    return sink.getvalue()


def _tar(rng: random.Random, members: list[tuple[str, bytes]], compressed: bool = False) -> bytes:
    sink = io.BytesIO()
    layout = rng.choice((tarfile.GNU_FORMAT, tarfile.PAX_FORMAT))
    with tarfile.open(fileobj=sink, mode="w:gz" if compressed else "w", format=layout) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            kind = rng.random()
            if kind < 0.03:
                info.type, info.linkname, info.size = tarfile.SYMTYPE, rng.choice(("/etc/passwd", "../../x")), 0
                archive.addfile(info)
                continue
            if kind < 0.05:
                info.type, info.size = tarfile.CHRTYPE, 0
                archive.addfile(info)
                continue
            archive.addfile(info, io.BytesIO(data))
    return sink.getvalue()


def _member_name(rng: random.Random, name: str) -> str:
    if rng.random() < 0.08:
        return rng.choice(("../../evil/" + name, "/abs/" + name, "a/" * 300 + name, name + "\x00.txt", "C:\\x\\" + name,
                           "./" + name, "", "dir/", name.upper()))  # fmt: skip
    return name


def _members(rng: random.Random, kind: str) -> list[tuple[str, bytes]]:
    if kind == "apk":
        members = [("AndroidManifest.xml", axml(rng)), ("classes.dex", dex(rng)), ("classes2.dex", dex(rng)),
                   ("lib/arm64-v8a/libwechat.so", b"\x7fELF" + rng.randbytes(64)),
                   ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n")]  # fmt: skip
    elif kind == "jar":
        pom = "META-INF/maven/com.tencent.mm.opensdk/wechat-sdk-android/pom.xml"
        members = [(pom, MANIFESTS["pom.xml"][0].encode()),
                   ("com/tencent/mm/opensdk/openapi/WXAPIFactory.class", b"\xca\xfe\xba\xbe\x00\x00\x00\x34"),
                   ("com/bytedance/sdk/open/tiktok/TikTokOpenApiFactory.class", b"\xca\xfe\xba\xbe")]  # fmt: skip
    elif kind == "aar":
        inner = _zip(rng, _members(rng, "jar"))
        members = [("AndroidManifest.xml", MANIFESTS["android/AndroidManifest.xml"][0].encode()),
                   ("classes.jar", inner), ("libs/wechat.jar", inner)]  # fmt: skip
    elif kind == "ipa":
        app = "Payload/App.app/"
        members = [(app + "Info.plist", info_plist(rng)), (app + "App", macho(rng)),
                   (app + "Frameworks/TikTokOpenSDK.framework/TikTokOpenSDK", macho(rng)),
                   (app + "Frameworks/WechatOpenSDK.framework/Headers/WXApi.h", b"@interface WXApi\n")]  # fmt: skip
    else:  # a source tree
        members = [(name, text.encode()) for name, (text, _) in rng.sample(list(MANIFESTS.items()), rng.randint(1, 8))]
        if rng.random() < 0.3:
            members.append(("ios/libWeChatSDK.a", ar(rng)))
    if rng.random() < 0.5:
        i = rng.randrange(len(members))
        name, data = members[i]
        members[i] = (
            name,
            mutate.mutate_bytes(rng, data)
            if rng.random() < 0.6
            else _hostile_text(rng, data.decode("utf-8", "replace")).encode("utf-8", "surrogatepass"),
        )
    members = [(_member_name(rng, n), d) for n, d in members]
    if rng.random() < 0.05:
        members += members  # duplicate names
    if rng.random() < 0.03:
        members.append(("bomb.dex", b"\x00" * rng.choice((10 << 20, 200 << 20))))
    return members


def _nested(rng: random.Random, data: bytes, depth: int) -> bytes:
    for level in range(depth):
        data = _zip(rng, [(f"level{level}.zip", data)])
    return data


def container(rng: random.Random) -> Case:
    kind = rng.choices(("apk", "jar", "aar", "ipa", "zip", "tar", "tgz", "gz"), (25, 12, 10, 15, 8, 10, 10, 5))[0]
    if kind in ("apk", "jar", "aar", "ipa"):
        data = _zip(rng, _members(rng, kind))
        name = f"app.{kind}"
        if rng.random() < 0.05:
            data, name = _nested(rng, data, rng.choice((3, 10, 40))), "nested.zip"
    elif kind == "zip":
        data, name = _zip(rng, _members(rng, "src")), "project.zip"
    elif kind == "tar":
        data, name = _tar(rng, _members(rng, "src")), "project.tar"
    elif kind == "tgz":
        data, name = _tar(rng, _members(rng, "src"), compressed=True), rng.choice(("project.tgz", "project.tar.gz"))
    else:
        data, name = gz(dex(rng)), "classes.dex.gz"
    if rng.random() < 0.3:  # the container's own structure: headers, directory sizes, offsets
        data = mutate.mutate_bytes(rng, data, rounds=rng.randint(1, 3))
    return Case(name, data)


def single(rng: random.Random) -> Case:
    kind = rng.choices(("dex", "macho", "axml", "ar", "plist", "manifest", "zst"), (20, 20, 15, 10, 10, 25, 3))[0]
    if kind == "dex":
        case = Case("classes.dex", dex(rng))
    elif kind == "macho":
        case = Case(rng.choice(("App", "libx.dylib", "x.o")), macho(rng))
    elif kind == "axml":
        case = Case("AndroidManifest.xml", axml(rng))
    elif kind == "ar":
        case = Case("libWeChatSDK.a", ar(rng))
    elif kind == "plist":
        case = Case("Info.plist", info_plist(rng))
    elif kind == "manifest":
        case = Case(rng.choice(MANIFEST_NAMES), text_manifest(rng))
    else:
        case = Case("classes.dex.zst", zstd(dex(rng)))
    if rng.random() < 0.4:
        return Case(case.name, mutate.mutate_bytes(rng, case.data))
    return case


def gen(rng: random.Random) -> Case:
    return container(rng) if rng.random() < 0.55 else single(rng)


code_inputs = capped(raw_mutant(gen, rate=0.1))

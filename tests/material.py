"""Real test material for the SDK scanners: downloaded third-party packages and apps built from them.

The packages come from `scripts/setup-test-material.sh`, which downloads them into `.cache/test-material/`
and installs the Debian tools used here (smali, aapt, zipalign, apksigner, keytool, clang + lld).

When a file or tool is missing, `require` and `require_tool` skip the test on a developer's machine and fail
it under CI (environment variable `CI` set), so CI can never pass by skipping.

Builders (all write only under the directories they are given, or a temporary directory):

- `build_dex`: smali sources -> `classes.dex` (smali assembler).
- `build_apk`: AndroidManifest.xml (package, <queries>, URL schemes) compiled by `aapt`, plus dex files,
  zipaligned and signed by `apksigner` with a throwaway key made by `keytool`.
- `build_ios_executable`: the arm64 slice of a real static library linked into an arm64 iOS Mach-O
  executable by clang + ld64.lld, keeping the Objective-C classes named.
- `build_ipa`: `Payload/<name>.app/{<name>, Info.plist}` zipped, with URL schemes and queried schemes.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import struct
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SETUP_SCRIPT = "scripts/setup-test-material.sh"

# File names in material_dir(), as the setup script downloads them.
WECHAT_LIB = "react-native-wechat-lib-1.1.27.tgz"  # libammsdk.jar (OpenSDK), fat libWeChatSDK.a
TIKTOK_RN_OLD = "react-native-tiktok-1.1.2.tgz"  # TikTokOpenSDK.framework (fat static archive), Gradle bytedance
TIKTOK_RN_NEW = "react-native-tiktok-2.1.17.tgz"  # Gradle com.tiktok.open.sdk, podspec TikTokOpen*SDK
CAPACITOR_WECHAT = "capgo-capacitor-wechat-8.0.38.tgz"  # Gradle wechat-sdk-android, podspec/SwiftPM WechatOpenSDK
WEIXIN_JS_SDK = "weixin-js-sdk-1.6.5.tgz"  # jWeixin / WeixinJSBridge
TIKTOK_PIXEL = "tiktok-pixel-2.0.3.tgz"  # analytics.tiktok.com pixel loader
WECHATPY = "wechatpy-1.8.18-py2.py3-none-any.whl"  # server-side WeChat API client
# Clients of the apps' services, and multi-provider login libraries (test_code_services).
PASSPORT_WECHAT = "passport-wechat-2.0.4.tgz"  # Passport strategy for WeChat login
WECHAT_OAUTH = "wechat-oauth-1.5.0.tgz"  # WeChat web authorization client
WECHAT_API = "wechat-api-1.35.1.tgz"  # official-account server API client
WECHAT_MIDDLEWARE = "wechat-2.1.0.tgz"  # official-account message middleware (node-webot)
WX_SERVER_SDK = "wx-server-sdk-4.0.2.tgz"  # mini-program cloud SDK: calls by function name, no URL
PASSPORT_TIKTOK = "passport-tiktok-auth-1.0.12.tgz"  # Passport strategy for TikTok Login Kit
TIKTOK_SCRAPER = "tiktok-scraper-1.4.36.tgz"  # unofficial web-API client
TIKTOK_LIVE_CONNECTOR = "tiktok-live-connector-2.5.0.tgz"  # unofficial LIVE client
TIKTOKAPI = "tiktokapi-7.3.3-py3-none-any.whl"  # unofficial web-API client (PyPI TikTokApi)
TIKTOKLIVE = "tiktoklive-7.0.1-py3-none-any.whl"  # unofficial LIVE client (PyPI TikTokLive)
GRANT = "grant-5.4.24.tgz"  # OAuth proxy with a 200-provider table
AUTH_CORE = "auth-core-0.41.3.tgz"  # Auth.js, with providers/wechat and providers/tiktok
SOCIAL_AUTH_CORE = "social_auth_core-7.0.0-py3-none-any.whl"  # python-social-auth backends (weixin)
DJANGO_ALLAUTH = "django_allauth-65.21.1-py3-none-any.whl"  # allauth providers (weixin, tiktok)

# Member paths inside those archives.
WECHAT_LIB_JAR = "package/android/libs/libammsdk.jar"
WECHAT_LIB_STATIC = "package/ios/libWeChatSDK.a"
TIKTOK_FRAMEWORK_BINARY = "package/ios/Pods/TikTokOpenSDK/TikTokOpenSDK.framework/TikTokOpenSDK"

FRAMEWORK_RES = Path("/usr/share/android-framework-res/framework-res.apk")  # aapt's -I, from android-framework-res

_TIMEOUT = 300


# ---- finding material ----------------------------------------------------------------------------------


def material_dir() -> Path:
    """Where the setup script puts downloaded packages: <repo>/.cache/test-material."""
    return REPO_ROOT / ".cache" / "test-material"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing(what: str) -> None:
    message = f"test material missing: {what}; run `bash {SETUP_SCRIPT}`"
    if _in_ci():
        pytest.fail(message + " (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(message)


def require(name: str) -> Path:
    """The path of a downloaded file in material_dir(); skips the test if missing (fails under CI)."""
    path = material_dir() / name
    if not path.is_file() or path.stat().st_size == 0:
        _missing(str(path.relative_to(REPO_ROOT)))
    return path


def require_tool(name: str) -> str:
    """The path of an installed command-line tool; skips the test if missing (fails under CI)."""
    found = shutil.which(name)
    if found is None:
        _missing(f"command `{name}`")
    assert found is not None
    return found


def _require_file(path: Path, package: str) -> Path:
    if not path.is_file():
        _missing(f"{path} (Debian package {package})")
    return path


def _run(args: Sequence[str | os.PathLike[str]], cwd: Path | None = None) -> str:
    result = subprocess.run(
        [os.fspath(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT, check=False
    )
    if result.returncode != 0:
        command = " ".join(os.fspath(a) for a in args)
        raise RuntimeError(f"`{command}` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def extract_member(archive: Path, member: str, dest_dir: Path) -> Path:
    """Copies one member of a .tgz/.tar or .zip/.jar/.whl archive to dest_dir/<member> and returns that path."""
    target = dest_dir / member
    if ".." in Path(member).parts or Path(member).is_absolute():
        raise ValueError(f"unsafe member path: {member}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            target.write_bytes(zf.read(member))
    else:
        with tarfile.open(archive) as tf:
            source = tf.extractfile(member)
            if source is None:
                raise KeyError(f"{member} is not a regular file in {archive}")
            with source:
                target.write_bytes(source.read())
    return target


# ---- Android ---------------------------------------------------------------------------------------------


def smali_class(
    descriptor: str, superclass: str = "java/lang/Object", references: Sequence[str] = (), source: str | None = None
) -> str:
    """Minimal smali for class `descriptor` (e.g. "com/example/clean/Main"): a constructor, and a static method
    `touch()` that loads each class in `references` with const-class (so the dex refers to those types)."""
    lines = [
        f".class public L{descriptor};",
        f".super L{superclass};",
        f'.source "{source or descriptor.rsplit("/", 1)[-1] + ".java"}"',
        "",
        ".method public constructor <init>()V",
        "    .registers 1",
        f"    invoke-direct {{p0}}, L{superclass};-><init>()V",
        "    return-void",
        ".end method",
    ]
    if references:
        lines += ["", ".method public static touch()V", "    .registers 1"]
        for ref in references:
            lines.append(f"    const-class v0, L{ref};")
        lines += ["    return-void", ".end method"]
    return "\n".join(lines) + "\n"


def smali_classes(*descriptors: str) -> dict[str, str]:
    """{descriptor: smali_class(descriptor)} for each descriptor: input for build_dex / build_apk."""
    return {d: smali_class(d) for d in descriptors}


def build_dex(smali_sources: dict[str, str], out_dir: Path, api: int = 21) -> Path:
    """Assembles smali sources into out_dir/classes.dex with the smali assembler.

    Keys name the source files (a class path such as "com/example/clean/Main" is fine); values are smali text.
    """
    if not smali_sources:
        raise ValueError("build_dex needs at least one smali source")
    smali = require_tool("smali")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="smali-") as tmp:
        src_dir = Path(tmp)
        for name, text in smali_sources.items():
            rel = name.removesuffix(".smali").lstrip("/") + ".smali"
            if ".." in Path(rel).parts:
                raise ValueError(f"unsafe smali source name: {name}")
            path = src_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        dex = out_dir / "classes.dex"
        _run([smali, "assemble", "--api", str(api), "-o", dex, src_dir])
    return dex


def android_manifest(
    package: str,
    queries: Sequence[str] = (),
    schemes: Sequence[str] = (),
    min_sdk: int = 21,
    target_sdk: int = 30,
    version_code: int = 1,
    version_name: str = "1.0",
    permissions: Sequence[str] = (),
) -> str:
    """AndroidManifest.xml text: <queries> with one <package> per entry of `queries`, and an exported
    activity whose VIEW intent-filter has one <data android:scheme> per entry of `schemes`."""
    q = quoteattr
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<manifest xmlns:android="http://schemas.android.com/apk/res/android"',
        f"    package={q(package)} android:versionCode={q(str(version_code))} android:versionName={q(version_name)}>",
        f'  <uses-sdk android:minSdkVersion="{min_sdk}" android:targetSdkVersion="{target_sdk}" />',
    ]
    out += [f"  <uses-permission android:name={q(p)} />" for p in permissions]
    if queries:
        out.append("  <queries>")
        out += [f"    <package android:name={q(name)} />" for name in queries]
        out.append("  </queries>")
    out += [
        f"  <application android:label={q(package)}>",
        '    <activity android:name=".MainActivity" android:exported="true">',
        "      <intent-filter>",
        '        <action android:name="android.intent.action.MAIN" />',
        '        <category android:name="android.intent.category.LAUNCHER" />',
        "      </intent-filter>",
    ]
    if schemes:
        out += [
            "      <intent-filter>",
            '        <action android:name="android.intent.action.VIEW" />',
            '        <category android:name="android.intent.category.DEFAULT" />',
            '        <category android:name="android.intent.category.BROWSABLE" />',
        ]
        out += [f"        <data android:scheme={q(s)} />" for s in schemes]
        out.append("      </intent-filter>")
    out += ["    </activity>", "  </application>", "</manifest>"]
    return "\n".join(out) + "\n"


def _keystore(out_dir: Path) -> Path:
    """A throwaway RSA signing key in out_dir/test.keystore (made once per out_dir)."""
    keystore = out_dir / "test.keystore"
    if not keystore.exists():
        keytool = require_tool("keytool")
        _run(
            [
                keytool, "-genkeypair", "-noprompt", "-keystore", keystore, "-storetype", "PKCS12",
                "-storepass", "android", "-keypass", "android", "-alias", "test", "-keyalg", "RSA",
                "-keysize", "2048", "-validity", "10000", "-dname", "CN=appban test material, O=appban",
            ]
        )  # fmt: skip
    return keystore


def build_apk(
    package: str,
    smali_sources: dict[str, str],
    out_dir: Path,
    extra_dex: list[dict[str, str]] | None = None,
    queries: Sequence[str] = (),
    schemes: Sequence[str] = (),
    *,
    min_sdk: int = 21,
    target_sdk: int = 30,
    version_code: int = 1,
    version_name: str = "1.0",
    permissions: Sequence[str] = (),
    extra_files: Mapping[str, bytes] | None = None,
) -> Path:
    """A signed APK at out_dir/<package>.apk.

    The manifest (see android_manifest) is compiled to binary XML by `aapt package` against the framework
    resources; `smali_sources` become classes.dex and each entry of `extra_dex` classes2.dex, classes3.dex...;
    `extra_files` adds raw entries (e.g. {"lib/arm64-v8a/libfoo.so": b"..."}). The APK is zipaligned and
    signed by apksigner (v1 + v2 + v3 as the min SDK allows) with a throwaway key made in out_dir.
    """
    aapt = require_tool("aapt")
    zipalign = require_tool("zipalign")
    apksigner = require_tool("apksigner")
    framework = _require_file(FRAMEWORK_RES, "android-framework-res")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / f"{package}.build"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()

    manifest = work / "AndroidManifest.xml"
    manifest.write_text(
        android_manifest(package, queries, schemes, min_sdk, target_sdk, version_code, version_name, permissions),
        encoding="utf-8",
    )
    unsigned = work / "unsigned.apk"
    _run([aapt, "package", "-f", "-M", manifest, "-I", framework, "-F", unsigned])

    dex_files = [build_dex(smali_sources, work / "dex1")]
    for i, sources in enumerate(extra_dex or [], start=2):
        dex_files.append(build_dex(sources, work / f"dex{i}"))
    with zipfile.ZipFile(unsigned, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        for i, dex in enumerate(dex_files, start=1):
            zf.write(dex, "classes.dex" if i == 1 else f"classes{i}.dex")
        for name, data in (extra_files or {}).items():
            zf.writestr(name, data)

    aligned = work / "aligned.apk"
    _run([zipalign, "-f", "-p", "4", unsigned, aligned])
    signed = out_dir / f"{package}.apk"
    _run(
        [
            apksigner, "sign", "--ks", _keystore(out_dir), "--ks-pass", "pass:android", "--key-pass", "pass:android",
            "--ks-key-alias", "test", "--out", signed, aligned,
        ]
    )  # fmt: skip
    signed.with_name(signed.name + ".idsig").unlink(missing_ok=True)  # v4 side file, if apksigner wrote one
    shutil.rmtree(work)
    return signed


# ---- iOS -------------------------------------------------------------------------------------------------

_FAT_MAGIC = 0xCAFEBABE
_FAT_MAGIC_64 = 0xCAFEBABF
_CPU_TYPE_ARM64 = 0x0100000C


def thin_arm64(binary: Path, dest_dir: Path) -> Path:
    """The arm64 slice of a universal (fat) Mach-O file or archive, written to dest_dir; a thin file is returned
    unchanged. Pure Python (lipo -thin arm64), so no Apple or LLVM tools are needed."""
    data = binary.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{binary} is not a Mach-O file")
    magic, count = struct.unpack(">II", data[:8])
    if magic not in (_FAT_MAGIC, _FAT_MAGIC_64) or count > 64:  # small count: not a Java class file
        return binary
    is64 = magic == _FAT_MAGIC_64
    entry = ">iiQQII" if is64 else ">iiIII"
    size = struct.calcsize(entry)
    for i in range(count):
        fields = struct.unpack_from(entry, data, 8 + i * size)
        cputype, offset, length = fields[0], fields[2], fields[3]
        if cputype == _CPU_TYPE_ARM64:
            dest_dir.mkdir(parents=True, exist_ok=True)
            out = dest_dir / f"{binary.stem}-arm64{binary.suffix}"
            out.write_bytes(data[offset : offset + length])
            return out
    raise ValueError(f"{binary} has no arm64 slice")


def _tbd_stub(path: Path, install_name: str) -> None:
    """A text-based dylib stub (what Apple SDKs ship) exporting nothing: lets ld64.lld record LC_LOAD_DYLIB for
    a framework or library without an SDK; the symbols stay undefined and are looked up dynamically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "--- !tapi-tbd\ntbd-version: 4\ntargets: [ arm64-ios ]\n"
        f"install-name: '{install_name}'\ncurrent-version: 1\ncompatibility-version: 1\n...\n",
        encoding="utf-8",
    )


def _stub(stubs: Path, kind: str, name: str) -> None:
    if kind == "framework":
        _tbd_stub(
            stubs / "F" / f"{name}.framework" / f"{name}.tbd", f"/System/Library/Frameworks/{name}.framework/{name}"
        )
    else:
        _tbd_stub(stubs / "L" / f"lib{name}.tbd", f"/usr/lib/lib{name}.dylib")


def build_ios_executable(
    static_lib: Path,
    out_path: Path,
    objc_classes_to_reference: list[str],
    *,
    frameworks: Sequence[str] = ("Foundation", "UIKit"),
    libraries: Sequence[str] = ("objc",),
) -> Path:
    """Links the arm64 slice of a (fat) static library into an arm64 iOS Mach-O executable at out_path.

    A tiny C main references `_OBJC_CLASS_$_<name>` for each class name, so the linker pulls in the archive
    members defining those classes. No Apple SDK is needed: `-nostdlib` and `-undefined dynamic_lookup` leave
    the system's symbols undefined (looked up at run time), and `frameworks`/`libraries` (plus any the archive
    asks for through LC_LINKER_OPTION auto-linking) are satisfied by empty .tbd stubs, so the executable
    carries the LC_LOAD_DYLIB commands a real app has (e.g. /System/Library/Frameworks/UIKit.framework/UIKit).
    """
    if not objc_classes_to_reference:
        raise ValueError("name at least one Objective-C class to reference, or nothing is linked in")
    clang = require_tool("clang")
    ld64 = Path(_run([clang, "-print-prog-name=ld64.lld"]).strip())
    _require_file(ld64, "lld")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ios-link-") as tmp:
        work = Path(tmp)
        thin = thin_arm64(static_lib, work)
        decls = []
        refs = []
        for i, name in enumerate(objc_classes_to_reference):
            decls.append(f'extern char objc_class_{i} __asm__("_OBJC_CLASS_$_{name}");')
            refs.append(f"&objc_class_{i}")
        main = work / "main.c"
        main.write_text(
            "\n".join(decls)
            + f"\n__attribute__((used)) void *const appban_class_refs[] = {{{', '.join(refs)}}};\n"
            + "int main(void) { return appban_class_refs[0] != 0; }\n",
            encoding="utf-8",
        )
        stubs = work / "stubs"
        (stubs / "F").mkdir(parents=True)
        (stubs / "L").mkdir(parents=True)
        for name in frameworks:
            _stub(stubs, "framework", name)
        for name in libraries:
            _stub(stubs, "library", name)
        args: list[str | os.PathLike[str]] = [
            clang, "--target=arm64-apple-ios12.0", "-fuse-ld=lld", "-nostdlib", "-Wno-unused-command-line-argument",
            "-Wl,-undefined,dynamic_lookup", "-Wl,-e,_main", f"-F{stubs / 'F'}", f"-L{stubs / 'L'}",
            "-o", out_path, main, thin,
        ]  # fmt: skip
        args += [a for name in frameworks for a in ("-framework", name)]
        args += [f"-l{name}" for name in libraries]
        # Archives auto-link what their objects name in LC_LINKER_OPTION; stub each one the linker cannot find.
        for _ in range(64):
            try:
                _run(args)
                break
            except RuntimeError as error:
                wanted = _missing_autolink(str(error))
                if wanted is None:
                    raise
                _stub(stubs, *wanted)
        else:
            raise RuntimeError("too many auto-linked frameworks/libraries")
    return out_path


def _missing_autolink(message: str) -> tuple[str, str] | None:
    for line in message.splitlines():
        for marker, kind in (
            ("framework not found for -framework ", "framework"),
            ("library not found for -l", "library"),
        ):
            if marker in line:
                return kind, line.split(marker, 1)[1].strip().strip("'\"")
    return None


def _entry(name: str, mode: int = 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def build_ipa(
    executable: Path,
    bundle_id: str,
    url_schemes: list[str],
    queries_schemes: list[str],
    out_path: Path,
    *,
    app_name: str = "App",
    version: str = "1.0",
    binary_plist: bool = False,
    extra_info: Mapping[str, object] | None = None,
    extra_files: Mapping[str, bytes] | None = None,
) -> Path:
    """An .ipa at out_path: Payload/<app_name>.app/<app_name> (the executable) and Info.plist.

    Info.plist has CFBundleIdentifier, CFBundleExecutable, CFBundleURLTypes[0].CFBundleURLSchemes and
    LSApplicationQueriesSchemes (each left out when its list is empty), plus `extra_info`; it is XML unless
    `binary_plist` (as App Store builds ship it). `extra_files` are added under the .app directory, e.g.
    {"Frameworks/X.framework/X": data}.
    """
    info: dict[str, object] = {
        "CFBundleIdentifier": bundle_id,
        "CFBundleExecutable": app_name,
        "CFBundleName": app_name,
        "CFBundlePackageType": "APPL",
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "MinimumOSVersion": "12.0",
    }
    if url_schemes:
        info["CFBundleURLTypes"] = [{"CFBundleURLName": bundle_id, "CFBundleURLSchemes": list(url_schemes)}]
    if queries_schemes:
        info["LSApplicationQueriesSchemes"] = list(queries_schemes)
    info.update(extra_info or {})
    plist = plistlib.dumps(info, fmt=plistlib.FMT_BINARY if binary_plist else plistlib.FMT_XML)

    app = f"Payload/{app_name}.app"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_entry(f"{app}/{app_name}", 0o755), executable.read_bytes())
        zf.writestr(_entry(f"{app}/Info.plist"), plist)
        for name, data in (extra_files or {}).items():
            zf.writestr(_entry(f"{app}/{name}"), data)
    return out_path

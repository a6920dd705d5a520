#!/usr/bin/env bash
# Installs the tools and downloads the real third-party packages that the SDK-detection tests scan.
#
#   (a) Debian packages: smali (assembler), aapt, zipalign, apksigner, the Android framework resources
#       that aapt links a manifest against, clang + lld (links an arm64 iOS Mach-O without an Apple SDK),
#       and a JDK (java for smali/apksigner, keytool for a throwaway signing key).
#   (b) Registry packages, into .cache/test-material/ (git-ignored): npm tarballs via `npm pack` and a
#       wechatpy distribution via `pip download`.
#
# Idempotent and quiet on success: nothing is installed or downloaded twice. Needs root (or sudo) only
# when a Debian package is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.cache/test-material"

DEBIAN_PACKAGES=(
  libsmali-java          # /usr/bin/smali (and baksmali)
  aapt                   # compiles AndroidManifest.xml to binary XML
  zipalign
  apksigner
  android-framework-res  # /usr/share/android-framework-res/framework-res.apk, aapt's -I
  clang
  lld                    # ld64.lld, the Mach-O linker
  openjdk-17-jdk-headless  # java + keytool
  unbound                # a real resolver loading the generated RPZ; the tests run their own on a free
                         # loopback port, so a system unbound the package may start on :53 is no conflict
  nftables               # nft -c checks the generated nftables script
  openssl                # signs a PKCS#7 block the APK signature reader must parse
  postgresql             # initdb/pg_ctl: the audit store's tests run a throwaway cluster of their own
  chromium               # the dashboard's end-to-end tests drive it headless through Playwright
  fonts-noto-cjk         # Chinese glyphs for the dashboard's CJK font stack (its tests check app names render)
)

# npm spec -> file name that `npm pack` writes (scope "@a/b" becomes "a-b").
NPM_PACKAGES=(
  "react-native-wechat-lib@1.1.27"
  "react-native-tiktok@1.1.2"
  "react-native-tiktok@2.1.17"
  "@capgo/capacitor-wechat@8.0.38"
  "weixin-js-sdk@1.6.5"
  "tiktok-pixel@2.0.3"
  "@microsoft/jest-sarif@1.0.0-beta.0"  # carries the SARIF 2.1.0 JSON schema the tests validate against
  # Clients of WeChat's and TikTok's services (login connectors, official-account frameworks, unofficial
  # web-API clients, the mini-program cloud SDK) and multi-provider login libraries (test_code_services).
  "passport-wechat@2.0.4"
  "wechat-oauth@1.5.0"
  "wechat-api@1.35.1"
  "wechat@2.1.0"
  "wx-server-sdk@4.0.2"
  "passport-tiktok-auth@1.0.12"
  "tiktok-scraper@1.4.36"
  "tiktok-live-connector@2.5.0"
  "grant@5.4.24"
  "@auth/core@0.41.3"
  # Real packages probed both ways (test_code_real_packages): a chatbot SDK whose default puppet speaks
  # WeChat's web protocol, better-auth's provider table, and icon, share-button and user-agent libraries
  # that name WeChat and TikTok without calling either.
  "wechaty@1.20.2"
  "@better-auth/core@1.7.25"
  "simple-icons@16.37.0"
  "@fortawesome/free-brands-svg-icons@7.3.1"
  "react-share@5.3.0"
  "ua-parser-js@2.0.10"
  "axe-core@4.14.1"  # the accessibility engine the dashboard's tests run on every view (test_dashboard_a11y)
)

WECHATPY_VERSION="1.8.18"

# PyPI wheels: requirement, hash (pip checks it: --require-hashes).
PYPI_WHEELS=(
  "TikTokApi==7.3.3 --hash=sha256:2d7ef0ca20963b98d52907ec537bd73330e9ea4ffbb0f2587c9b9c7faf3ac3f0"
  "TikTokLive==7.0.1 --hash=sha256:db43789cfd2abaff639517f3e95f1d37f75b3b9104d76d709102afb115420abc"
  "social-auth-core==7.0.0 --hash=sha256:7d077e20976b6e1a9ebef2b78ac266c799c1ab26c10f43c1e25e109e6a8a3094"
  "django-allauth==65.21.1 --hash=sha256:7bdf018c9f3f0a32c80677f84e7777272d9c833b180bd6734314c4831c802a9e"
  "emoji==2.16.0 --hash=sha256:c4230d80640def9071599ff56b1b5950fe13a2a94c0da98c5deab12431b24330"
  "social-auth-app-django==8.0.0 --hash=sha256:862f696a30c64092b3ea7fd3c6569c462017aa14b6588cedfb12253c04007d0c"
  "user-agents==2.2.0 --hash=sha256:a98c4dc72ecbc64812c4534108806fb0a0b3a11ec3fd1eafe807cee5b0a942e7"
  "ua-parser==1.0.2 --hash=sha256:0f8e6d0484af2a9ff804bba5a4fe696e87c028eaba98ad9a7dfae873fef7788a"
)

# SHA-256 of npm tarballs whose content the tests depend on; a tarball that differs is deleted and fails.
declare -A NPM_SHA256=(
  [passport-wechat-2.0.4.tgz]=dfa099b41e6a0d42c2ae9d7d9a02ae2681584f15bc01569c7e880f003f2c09c5
  [wechat-oauth-1.5.0.tgz]=ed19f392b1819dd5a3fbf2ed34ca61455e17cebb56899255a2a63fcad6e851ff
  [wechat-api-1.35.1.tgz]=cd14ac351438e225377067ed231650ade3a9bc6f9f1b9ad06f40ffa8af0cc277
  [wechat-2.1.0.tgz]=338170299a40b92b32641d119668755c804b362f43a9e323a0bb34bb661b0e65
  [wx-server-sdk-4.0.2.tgz]=966291b46024bdf87c17771c73c1d777e973c4194ec02240e44ceff43fdb984f
  [passport-tiktok-auth-1.0.12.tgz]=780726470c181600b06173cc7c6c556db5d7d6d8d0435b682bcbc349f114c176
  [tiktok-scraper-1.4.36.tgz]=9e41db9739a85217ddc29d96612bb188f43e56875ead48191a458eb82841b132
  [tiktok-live-connector-2.5.0.tgz]=b2c0d8b21a7dc1ad80ce974044c07ef1e0ee58ada645c58acc336d84ad5a62a7
  [grant-5.4.24.tgz]=475840df2d9b1c3f562578e069b5cb517088f65d7ce160765f410ca9553007e2
  [auth-core-0.41.3.tgz]=e2d37f710957a83811c88d65a22cbbcfda89cf811970786c5e33c1d13d2171b2
  [wechaty-1.20.2.tgz]=365317d71233ba8db69e17fe87e5934959f06399bdd287c52a8db85f1ee54eb3
  [better-auth-core-1.7.25.tgz]=d7ad2c4ec515859ec265959f7ad2e04192aa26843e95701ad1a1fc8079440d99
  [simple-icons-16.37.0.tgz]=cd9faf0e6faa8a8fdd15e9632ab4c86fcae4b986fe552b87673149847f2f671d
  [fortawesome-free-brands-svg-icons-7.3.1.tgz]=37407cbe83db4c046f190b8e003621587436ba5c93131ac2937cca71afc592e8
  [react-share-5.3.0.tgz]=4415f6fd876ef46786b392a303c6416173ed27b43d4212b8c4a8f883ecf6f609
  [ua-parser-js-2.0.10.tgz]=1c560fc455ce461b17cf4c57d49d53cb6922039258415a99852f045714a6c06c
  [axe-core-4.14.1.tgz]=e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745
)

log() { printf 'setup-test-material: %s\n' "$*" >&2; }

# Runs a command with its output held back; shows it only when the command fails.
quiet() {
  local out status=0
  out="$(mktemp)"
  "$@" >"$out" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    cat "$out" >&2
    log "failed ($status): $*"
  fi
  rm -f "$out"
  return "$status"
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    log "need root to run: $*"
    return 1
  fi
}

# ---- (a) Debian packages -------------------------------------------------------------------------
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  quiet as_root apt-get update -q
  quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

for tool in smali aapt zipalign apksigner clang java keytool; do
  command -v "$tool" >/dev/null 2>&1 || { log "tool not found after install: $tool"; exit 1; }
done
# Debian's lld names it ld64.lld-14 on PATH; clang finds the unsuffixed one in its own bin directory.
[ -x "$(clang -print-prog-name=ld64.lld)" ] || { log "clang cannot find ld64.lld"; exit 1; }
[ -f /usr/share/android-framework-res/framework-res.apk ] ||
  { log "missing /usr/share/android-framework-res/framework-res.apk"; exit 1; }

# ---- (b) registry packages -----------------------------------------------------------------------
mkdir -p "$DEST"

npm_file() { # "@scope/name@1.2.3" -> "scope-name-1.2.3.tgz"
  local spec="$1" name version
  name="${spec%@*}"
  version="${spec##*@}"
  name="${name#@}"
  printf '%s-%s.tgz' "${name//\//-}" "$version"
}

# Each tarball is packed into a scratch directory and moved into place whole, so an interrupted run
# never leaves a truncated file that a later run would take as done.
expected=()
for spec in "${NPM_PACKAGES[@]}"; do
  file="$(npm_file "$spec")"
  expected+=("$file")
  if [ ! -s "$DEST/$file" ]; then
    scratch="$(mktemp -d "$DEST/.partial.XXXXXX")"
    if (cd "$scratch" && quiet npm pack "$spec" --pack-destination "$scratch" --silent) && [ -s "$scratch/$file" ]; then
      mv "$scratch/$file" "$DEST/$file"
      rm -rf "$scratch"
    else
      rm -rf "$scratch"
      log "npm pack $spec did not produce $file"
      exit 1
    fi
  fi
done

if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="python3"; fi
if ! compgen -G "$DEST/wechatpy-$WECHATPY_VERSION[.-]*" >/dev/null; then
  # --no-deps: only the package itself is scanned; the project's constraints file does not apply here.
  quiet env -u PIP_CONSTRAINT PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip download --quiet --no-deps \
    -d "$DEST" "wechatpy==$WECHATPY_VERSION"
fi

wheels_missing=()
for entry in "${PYPI_WHEELS[@]}"; do
  requirement="${entry%% *}"
  name="${requirement%%==*}"
  version="${requirement##*==}"
  # Wheel file names use the normalised, lower-cased name with underscores.
  stem="$(printf '%s' "$name" | tr 'A-Z-' 'a-z_')-$version-"
  compgen -G "$DEST/$stem*.whl" >/dev/null || wheels_missing+=("$entry")
done
if [ "${#wheels_missing[@]}" -gt 0 ]; then
  requirements="$(mktemp)"
  printf '%s\n' "${wheels_missing[@]}" >"$requirements"
  quiet env -u PIP_CONSTRAINT PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip download --quiet --no-deps \
    --only-binary=:all: --require-hashes -r "$requirements" -d "$DEST" || { rm -f "$requirements"; exit 1; }
  rm -f "$requirements"
fi

# ---- verify ---------------------------------------------------------------------------------------
status=0
for file in "${expected[@]}"; do
  [ -s "$DEST/$file" ] || { log "missing $DEST/$file"; status=1; }
done
compgen -G "$DEST/wechatpy-$WECHATPY_VERSION[.-]*" >/dev/null ||
  { log "missing wechatpy-$WECHATPY_VERSION in $DEST"; status=1; }
for file in "${!NPM_SHA256[@]}"; do
  if [ -s "$DEST/$file" ] && ! echo "${NPM_SHA256[$file]}  $DEST/$file" | sha256sum --check --status; then
    log "$file does not have its pinned SHA-256; deleted"
    rm -f "$DEST/$file"
    status=1
  fi
done
exit "$status"

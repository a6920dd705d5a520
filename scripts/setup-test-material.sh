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
)

WECHATPY_VERSION="1.8.18"

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

# ---- verify ---------------------------------------------------------------------------------------
status=0
for file in "${expected[@]}"; do
  [ -s "$DEST/$file" ] || { log "missing $DEST/$file"; status=1; }
done
compgen -G "$DEST/wechatpy-$WECHATPY_VERSION[.-]*" >/dev/null ||
  { log "missing wechatpy-$WECHATPY_VERSION in $DEST"; status=1; }
exit "$status"

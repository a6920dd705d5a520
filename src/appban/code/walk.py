"""Walk files, directories and archives (to a bounded depth), feeding each file to the extractors.

Inputs are untrusted. Nothing is extracted to disk and nothing is executed: archives are read in
memory with caps on member size, total size and compression ratio; unsafe member names, symlinks
and malformed containers give a warning naming the file, and the walk goes on.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from appban.code.binary import MalformedBinary, signer_certificates, signing_block_certificates
from appban.code.model import Extractor, Limits, Observation, Warning_

ZIP_SUFFIXES = (".zip", ".jar", ".aar", ".apk", ".aab", ".ipa", ".xapk", ".apks", ".war", ".nupkg", ".whl", ".egg")
TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".crate", ".gem")
MEMBER_SEP = "!/"
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", ".tox", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


class OutOfTime(Exception):
    pass


Emit = Callable[[str, Observation], None]
Warn = Callable[[Warning_], None]


def _path_observations(member: str) -> Iterable[tuple[str, Observation]]:
    """What a path alone says: framework bundles, library files, Java class files.

    Each observation comes with the member path it belongs to: a framework is reported once, at
    its bundle directory, not once per file inside it."""
    parts = member.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.endswith((".framework", ".xcframework")):
            yield "/".join(parts[: i + 1]), Observation("frameworks", part.rsplit(".", 1)[0])
            break
    base = parts[-1]
    if base.endswith(".jar"):
        yield member, Observation("jar_names", base)
    elif base.endswith(".a"):
        yield member, Observation("static_libraries", base)
    elif base.endswith(".h"):
        yield member, Observation("headers", base)
    elif base.endswith(".class") and "$" not in base and not member.startswith("META-INF/"):
        name = member.removesuffix(".class").removeprefix("BOOT-INF/classes/").removeprefix("classes/")
        yield member, Observation("java", name.replace("/", "."))


class Walker:
    def __init__(self, extractors: list[Extractor], emit: Emit, warn: Warn, limits: Limits | None = None):
        self.extractors = extractors
        self.emit = emit
        self.warn = warn
        self.limits = limits or Limits()
        self._deadline = 0.0
        self.files = 0

    # --- the file system -------------------------------------------------------------------------

    def scan(self, root: Path) -> None:
        if root.is_symlink() and root.is_dir():
            self.warn(Warning_(str(root), "symbolic link to a directory, not followed"))
            return
        if root.is_dir():
            for folder, dirs, files in os.walk(root, followlinks=False):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not Path(folder, d).is_symlink())
                for file in sorted(files):
                    self._scan_file(Path(folder, file), root)
        elif root.exists():
            self._scan_file(root, root.parent)
        else:
            self.warn(Warning_(str(root), "no such file or directory"))

    def _scan_file(self, path: Path, base: Path) -> None:
        display = str(path)
        try:
            if path.is_symlink() and not path.resolve().is_relative_to(base.resolve()):
                self.warn(Warning_(display, "symbolic link leading outside the scanned tree, not followed"))
                return
            size = path.stat().st_size
            if size > self.limits.max_file:
                self.warn(Warning_(display, f"{size:,} bytes is over the {self.limits.max_file:,}-byte limit; skipped"))
                return
            if not self._interesting(path.name.lower(), path.as_posix().lower()):
                return
            data = path.read_bytes()
        except OSError as exc:
            self.warn(Warning_(display, f"cannot read: {exc.strerror or exc}"))
            return
        self.files += 1
        self._deadline = time.monotonic() + self.limits.seconds_per_file
        try:
            self.visit(display, data, path.name, 0)
        except OutOfTime:
            self.warn(Warning_(display, f"time budget of {self.limits.seconds_per_file:.0f} s used up; rest skipped"))

    # --- one file or member --------------------------------------------------------------------------

    def _interesting(self, name: str, path: str) -> bool:
        if name.endswith(ZIP_SUFFIXES + TAR_SUFFIXES + (".gz", ".dex", ".dylib", ".so", ".o", ".a")):
            return True
        if ".app/" in path or ".framework/" in path or "/payload/" in path:
            return True  # executables inside bundles have no suffix
        return any(extractor.wants(name, b"") for extractor in self.extractors) or "." not in name

    def visit(self, display: str, data: bytes, member: str, depth: int) -> None:
        if time.monotonic() > self._deadline:
            raise OutOfTime
        name = member.rsplit("/", 1)[-1].lower()
        head = bytes(data[:64])
        for extractor in self.extractors:
            if extractor.wants(name, head):
                try:
                    for observation in extractor.extract(data, name):
                        self.emit(display, observation)
                except (ValueError, RecursionError, UnicodeError, MemoryError) as exc:
                    self.warn(Warning_(display, f"{extractor.name}: malformed input ({type(exc).__name__}: {exc})"))
        if head.startswith(b"PK\x03\x04") or (name.endswith(ZIP_SUFFIXES) and head.startswith(b"PK")):
            if name.endswith(".apk"):
                self._signing_block(display, data)
            self._zip(display, data, depth)
        elif (
            name.endswith(TAR_SUFFIXES)
            or head[257:262] == b"ustar"
            or (head.startswith(b"\x1f\x8b") and name.endswith((".tgz", ".tar.gz")))
        ):
            self._tar(display, data, depth)
        elif head.startswith(b"\x1f\x8b"):
            self._gzip(display, data, name, depth)

    def _enter(self, display: str, depth: int) -> bool:
        if depth + 1 > self.limits.max_depth:
            self.warn(Warning_(display, f"archive nested deeper than {self.limits.max_depth} levels; not opened"))
            return False
        return True

    def _unsafe_name(self, display: str, name: str) -> bool:
        pure = PurePosixPath(name.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
            self.warn(Warning_(f"{display}{MEMBER_SEP}{name}", "unsafe member name (absolute or '..'); skipped"))
            return True
        return False

    def _zip(self, display: str, data: bytes, depth: int) -> None:
        if not self._enter(display, depth):
            return
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            infos = archive.infolist()
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            self.warn(Warning_(display, f"not a readable zip archive: {exc}"))
            return
        if len(infos) > self.limits.max_members:
            self.warn(Warning_(display, f"{len(infos):,} members is over the limit; only the first are read"))
            infos = infos[: self.limits.max_members]
        total = 0
        seen: set[tuple[str, str]] = set()
        for info in infos:
            if time.monotonic() > self._deadline:
                raise OutOfTime
            if info.is_dir() or self._unsafe_name(display, info.filename):
                continue
            member_display = f"{display}{MEMBER_SEP}{info.filename}"
            self._emit_path(display, info.filename, seen)
            name = info.filename.rsplit("/", 1)[-1].lower()
            if not self._interesting(name, info.filename.lower()) and not _is_signature_file(info.filename):
                continue
            if info.flag_bits & 0x1:
                self.warn(Warning_(member_display, "encrypted member; skipped"))
                continue
            if not self._size_ok(member_display, info.file_size, info.compress_size, total):
                continue
            try:
                with archive.open(info) as handle:
                    content = handle.read(self.limits.max_member + 1)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, ValueError) as exc:
                self.warn(Warning_(member_display, f"cannot read member: {exc}"))
                continue
            if len(content) > self.limits.max_member:
                self.warn(Warning_(member_display, "member larger than its header says (a zip bomb?); skipped"))
                continue
            total += len(content)
            if _is_signature_file(info.filename):
                self._signature_file(member_display, info.filename, content)
                continue
            self.visit(member_display, content, info.filename, depth + 1)

    def _emit_path(self, display: str, member: str, seen: set[tuple[str, str]]) -> None:
        for owner, observation in _path_observations(member):
            key = (owner, observation.value)
            if key not in seen:
                seen.add(key)
                self.emit(f"{display}{MEMBER_SEP}{owner}", observation)

    def _size_ok(self, display: str, size: int, compressed: int, total: int) -> bool:
        limits = self.limits
        if size > limits.max_member:
            self.warn(Warning_(display, f"{size:,} bytes uncompressed is over the member limit; skipped"))
            return False
        if size > (1 << 20) and size > limits.max_ratio * max(compressed, 1):
            self.warn(Warning_(display, f"compression ratio over {limits.max_ratio}:1 (a zip bomb?); skipped"))
            return False
        if total + size > limits.max_archive_total:
            self.warn(Warning_(display, "archive's total uncompressed size over the limit; rest skipped"))
            return False
        return True

    def _tar(self, display: str, data: bytes, depth: int) -> None:
        if not self._enter(display, depth):
            return
        total = 0
        seen: set[tuple[str, str]] = set()
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
                for count, info in enumerate(archive):
                    if time.monotonic() > self._deadline:
                        raise OutOfTime
                    if count >= self.limits.max_members:
                        self.warn(Warning_(display, "too many members; the rest skipped"))
                        break
                    if info.issym() or info.islnk():
                        self.warn(Warning_(f"{display}{MEMBER_SEP}{info.name}", "link inside archive; not followed"))
                        continue
                    if not info.isfile() or self._unsafe_name(display, info.name):
                        continue
                    member_display = f"{display}{MEMBER_SEP}{info.name}"
                    self._emit_path(display, info.name, seen)
                    if not self._interesting(info.name.rsplit("/", 1)[-1].lower(), info.name.lower()):
                        continue
                    if not self._size_ok(member_display, info.size, info.size, total):
                        continue
                    handle = archive.extractfile(info)
                    if handle is None:
                        continue
                    content = handle.read(self.limits.max_member + 1)
                    total += len(content)
                    self.visit(member_display, content, info.name, depth + 1)
        except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as exc:
            self.warn(Warning_(display, f"not a readable tar archive: {exc}"))

    def _gzip(self, display: str, data: bytes, name: str, depth: int) -> None:
        if not self._enter(display, depth):
            return
        inflater = zlib.decompressobj(wbits=31)
        try:
            content = inflater.decompress(data, self.limits.max_member + 1)
        except zlib.error as exc:
            self.warn(Warning_(display, f"not readable gzip data: {exc}"))
            return
        if len(content) > self.limits.max_member or inflater.unconsumed_tail:
            self.warn(Warning_(display, "gzip data expands past the member limit (a gzip bomb?); skipped"))
            return
        inner = name.removesuffix(".gz")
        self.visit(f"{display}{MEMBER_SEP}{inner}", content, inner, depth + 1)

    def _signature_file(self, display: str, member: str, content: bytes) -> None:
        """A v1 (JAR) signature block: the signer's certificate identifies who built the APK."""
        try:
            for certificate in signer_certificates({member: content}):
                self.emit(display, Observation("signing_cert", certificate.sha256, None, certificate.subject))
        except MalformedBinary as exc:
            self.warn(Warning_(display, f"malformed signature block: {exc}"))

    def _signing_block(self, display: str, data: bytes) -> None:
        """The APK Signing Block (schemes v2/v3), which modern APKs carry instead of, or beside, v1."""
        try:
            for certificate in signing_block_certificates(data):
                self.emit(display, Observation("signing_cert", certificate.sha256, None, certificate.subject))
        except MalformedBinary as exc:
            self.warn(Warning_(display, f"malformed APK signing block: {exc}"))


def _is_signature_file(name: str) -> bool:
    upper = name.upper()
    return upper.startswith("META-INF/") and upper.endswith((".RSA", ".DSA", ".EC"))

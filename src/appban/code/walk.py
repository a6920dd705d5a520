"""Walk files, directories and archives (to a bounded depth), feeding each file to the extractors.

Inputs are untrusted. Nothing is extracted to disk and nothing is executed: archives are read in
memory with caps on member size, compression ratio and the bytes expanded from one scanned file (all
its nested archives together); unsafe member names, symlinks and malformed containers give a warning
naming the file, and the walk goes on. Each scanned file has a time budget, checked between members
and inside the readers' long loops (budget.py), so no reader can run far past it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import operator
import os
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from appban.code import budget
from appban.code.binary import Certificate, signer_certificates, signing_block_certificates
from appban.code.budget import OutOfTime
from appban.code.extractors._text import MAX_TEXT_BYTES
from appban.code.filenames import ByExtension, NameTable
from appban.code.model import Extractor, FileNames, Limits, Observation, Skipped, Warning_
from appban.code.ziparchive import open_zip

if TYPE_CHECKING:
    from appban.code.prefilter import Prefilter

__all__ = ["MAX_WARNINGS_PER_FILE", "MEMBER_SEP", "TAR_SUFFIXES", "ZIP_SUFFIXES", "OutOfTime", "Walker"]

ZIP_SUFFIXES = (".zip", ".jar", ".aar", ".apk", ".aab", ".ipa", ".xapk", ".apks", ".war", ".nupkg", ".whl", ".egg")
TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".crate", ".gem")
MEMBER_SEP = "!/"
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", ".tox", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
#: Warnings listed for one scanned file: a hostile archive could otherwise give one per member.
MAX_WARNINGS_PER_FILE = 200
_ZIP_CENTRAL_HEADER = b"PK\x01\x02"
_CHUNK = 1 << 20  # decompression step between two looks at the clock
_SMALL = 1 << 20  # below this many bytes, any compression ratio is allowed

_CONTAINER_SUFFIXES = ZIP_SUFFIXES + TAR_SUFFIXES
_BINARY_SUFFIXES = (*_CONTAINER_SUFFIXES, ".gz", ".dex", ".dylib", ".so", ".o", ".a")
# The first read of a file: all of almost every source file. A larger file is read on in chunks, which is
# how the prefilter reads it: it is never held whole unless the prefilter finds something in it.
_FIRST_READ = 64 << 10
_READ_CHUNK = 1 << 20
# Opening a FIFO for reading would wait for a writer: without blocking, its read fails or ends at once.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
# The first bytes of archives and compressed data: a file starting so is opened, never prefiltered.
_CONTAINER_HEADS = (b"PK", b"\x1f\x8b")

# What a file's name alone says, worked out once per name (once per extension, mostly: filenames.ByExtension).
_ASK_PATH = 0  # no reader wants the name: the file is read only if its path puts it in an app bundle
_READ = 1  # readers want it: read whole and offered to them
_SOURCE = 2  # only the source reader wants it: passed over if the prefilter finds nothing in its bytes

Emit = Callable[[str, Observation], None]
Warn = Callable[[Warning_], None]


class _Expanded(Exception):
    """A compressed stream produced more bytes than its cap."""


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
    def __init__(
        self,
        extractors: list[Extractor],
        emit: Emit,
        warn: Warn,
        limits: Limits | None = None,
        prefilter: Prefilter | None = None,
    ):
        self.extractors = extractors
        self._names = NameTable(extractors)
        # Files the prefilter may pass over are those its reader alone wants, so the others are kept apart.
        self.prefilter = prefilter
        self._others = NameTable(e for e in extractors if prefilter is None or e is not prefilter.reader)
        self._head_stops = (*_CONTAINER_HEADS, *self._others.magics)
        tests = [*self._names.declarations, FileNames(suffixes=_BINARY_SUFFIXES + _CONTAINER_SUFFIXES)]
        if prefilter is not None:
            tests.append(prefilter.reader.any_text_names)
        # An extractor that declares nothing may ask anything of a name: then each name is sorted afresh.
        self._plan = self._plan_of if self._names.blind else ByExtension(self._plan_of, tests)
        self.emit = emit
        self.warn = warn
        self.limits = limits or Limits()
        self.files = 0
        # Per scanned file: the caps below count everything read from it, nested archives included.
        self._top = ""
        self._expanded = 0
        self._warned = 0

    # --- the file system -------------------------------------------------------------------------

    def scan(self, root: Path) -> None:
        if root.is_symlink() and root.is_dir():
            self.warn(Warning_(str(root), "symbolic link to a directory, not followed"))
            return
        if root.is_dir():
            self._walk(os.fspath(root), root)
        elif root.exists():
            self._scan_file(root, root.parent)
        else:
            self.warn(Warning_(str(root), "no such file or directory"))

    def _walk(self, top: str, base: Path) -> None:
        """Every file under `top` in the order os.walk gave (a folder's files by name, then its folders by
        name, depth first), from os.scandir's entries: no Path and no stat for a folder's entries, files
        opened relative to their folder, and a stack rather than recursion, so that however deep the tree,
        the walk goes on."""
        folders = [top]
        while folders:
            folder = folders.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=_ENTRY_NAME)
            except OSError:
                continue  # as os.walk: a folder that cannot be listed is passed over
            # Display paths as str(Path(folder, name)) wrote them: "." drops out, "/" is not doubled.
            shown = str(Path(folder))
            prefix = "" if shown == "." else shown if shown.endswith("/") else shown + "/"
            below: list[str] = []
            folder_fd = _open_folder(folder)
            try:
                for entry in entries:
                    # As os.walk tells folders: following links, and a folder that cannot be looked at is none.
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        is_dir = False
                    if is_dir:
                        if entry.name not in _SKIP_DIRS and not _is_link(entry):
                            below.append(entry.path)
                    elif _is_link(entry):
                        self._scan_file(Path(prefix + entry.name), base)
                    elif folder_fd is None:
                        self._scan_named(prefix + entry.name, entry.name, prefix + entry.name, None)
                    else:
                        self._scan_named(prefix + entry.name, entry.name, entry.name, folder_fd)
            finally:
                if folder_fd is not None:
                    os.close(folder_fd)
            folders += reversed(below)

    def _scan_file(self, path: Path, base: Path) -> None:
        """A file given as a root, or a symbolic link met in a walk: followed only inside the scanned tree."""
        display = str(path)
        self._top, self._expanded, self._warned = display, 0, 0
        try:
            if path.is_symlink() and not path.resolve().is_relative_to(base.resolve()):
                self._report(Warning_(display, "symbolic link leading outside the scanned tree, not followed"))
                return
        except OSError as exc:
            self._report(Warning_(display, f"cannot read: {exc.strerror or exc}"))
            return
        self._scan_named(display, path.name, display, None)

    def _scan_named(self, display: str, base_name: str, where: str, folder_fd: int | None) -> None:
        """One file (`where`, in the folder open as `folder_fd` if any): its size against the limit, then,
        if a reader may want it, its bytes."""
        self._top, self._expanded, self._warned = display, 0, 0
        name = base_name.lower()
        plan = self._plan(name)
        if plan == _ASK_PATH and not _in_bundle(display):
            self._check_size(display, where, folder_fd, None)  # only the warning that names an over-large file
            return
        try:
            descriptor = os.open(where, _READ_FLAGS, dir_fd=folder_fd)
        except OSError as exc:
            self._check_size(display, where, folder_fd, exc)  # the size is looked at first, as it always was
            return
        try:
            data = self._read_file(descriptor, display, name, plan == _SOURCE)
        except OSError as exc:
            self._report(Warning_(display, f"cannot read: {exc.strerror or exc}"))
            return
        finally:
            os.close(descriptor)
        if data is None:
            return
        try:
            with budget.deadline(self.limits.seconds_per_file):
                self.visit(display, data, base_name, 0)
        except OutOfTime:
            seconds = self.limits.seconds_per_file
            self.warn(Warning_(display, f"time budget of {seconds:.0f} s used up; rest skipped"))

    def _check_size(self, display: str, where: str, folder_fd: int | None, error: OSError | None) -> None:
        """Warn of a file over the size limit, else of `error`, if any (or of the size's own error)."""
        try:
            size = os.stat(where, dir_fd=folder_fd).st_size
        except OSError as exc:
            error = exc
        else:
            if size > self.limits.max_file:
                self._over_limit(display, size)
                return
        if error is not None:
            self._report(Warning_(display, f"cannot read: {error.strerror or error}"))

    def _over_limit(self, display: str, size: int) -> None:
        limit = self.limits.max_file
        self._report(Warning_(display, f"{size:,} bytes is over the {limit:,}-byte limit; skipped"))

    def _read_file(self, descriptor: int, display: str, name: str, source: bool) -> bytes | None:
        """The file's bytes for the readers; None when it is over the size limit (warned) or when the
        prefilter finds nothing the source reader could report in it (counted as scanned, never held whole).
        `source`: the name is one only the source reader wants."""
        # At least as far as the tar magic (at 257), so that the first read shows what the file is.
        asked = max(_FIRST_READ, 262) + 1
        first = os.read(descriptor, asked)
        # A read of a regular file returns less than asked only at its end: then the file is all there, and
        # its size is known without asking.
        whole = len(first) < asked
        size = len(first) if whole else os.fstat(descriptor).st_size
        if size > self.limits.max_file:
            self._over_limit(display, size)
            return None
        if source and self.prefilter is not None and size <= MAX_TEXT_BYTES and self._source_only(name, first):
            if whole:
                found = self.prefilter.found(first)
            else:
                found = self.prefilter.found_in_chunks(first, _chunks(descriptor))
                if found:
                    os.lseek(descriptor, 0, os.SEEK_SET)
                    first = b""
            if not found:
                self.files += 1
                return None
        data = first if whole else first + b"".join(_chunks(descriptor))
        self.files += 1
        return data

    def _source_only(self, name: str, first: bytes) -> bool:
        """Whether, of a file whose name only the source reader wants, these first bytes still leave the
        source reader alone to read it, and only for words the prefilter knows: no archive, no compressed
        data, and no magic bytes another extractor looks for."""
        if first.startswith(self._head_stops) or first[257:262] == b"ustar":
            return False
        return not (self._others.blind and self._others.undeclared_wants(name, first[:64]))

    def _report(self, warning: Warning_) -> None:
        self._warned += 1
        if self._warned <= MAX_WARNINGS_PER_FILE:
            self.warn(warning)
        elif self._warned == MAX_WARNINGS_PER_FILE + 1:
            self.warn(Warning_(self._top, f"more than {MAX_WARNINGS_PER_FILE} warnings; the rest are not listed"))

    # --- one file or member --------------------------------------------------------------------------

    def _interesting(self, name: str, path: str) -> bool:
        """Whether a file of this (lower-cased) name at this path may be read at all."""
        return self._plan(name) != _ASK_PATH or _in_bundle(path)

    def _plan_of(self, name: str) -> int:
        """What a (lower-cased) name says of its file: _ASK_PATH, _READ or _SOURCE. Every test made here is
        one the extractors declare (filenames.py), so that the answer may be kept per extension."""
        names = self._names
        wanted = names.declared_match(name) or name.endswith(_BINARY_SUFFIXES) or "." not in name
        if not wanted and not names.undeclared_wants(name, b""):
            return _ASK_PATH
        if self.prefilter is None:
            return _READ
        reader, others = self.prefilter.reader, self._others
        if not reader.names.match(name) or name.endswith(_CONTAINER_SUFFIXES) or reader.reads_any_text(name):
            return _READ
        return _READ if others.declared_match(name) or others.sniffed_name(name) else _SOURCE

    def visit(self, display: str, data: bytes, member: str, depth: int) -> None:
        budget.check()
        name = member.rsplit("/", 1)[-1].lower()
        head = bytes(data[:64])
        for extractor in self.extractors:
            if extractor.wants(name, head):
                self._read(display, extractor.name, extractor.extract(data, name))
        if head.startswith(b"PK\x03\x04") or (name.endswith(ZIP_SUFFIXES) and head.startswith(b"PK")):
            if name.endswith(".apk"):
                self._read(display, "APK signing block", _certificates(partial(signing_block_certificates, data)))
            self._zip(display, data, depth)
        elif (
            name.endswith(TAR_SUFFIXES)
            or data[257:262] == b"ustar"
            or (head.startswith(b"\x1f\x8b") and name.endswith((".tgz", ".tar.gz")))
        ):
            self._tar(display, data, depth)
        elif head.startswith(b"\x1f\x8b"):
            self._gzip(display, data, name, depth)

    def _read(self, display: str, reader: str, observations: Iterator[Observation]) -> None:
        """Emit what one reader finds; whatever hostile input makes it raise becomes a warning naming the file."""
        try:
            for observation in observations:
                self.emit(display, observation)
        except OutOfTime:
            raise
        except Skipped as exc:
            self._report(Warning_(display, f"{reader}: {exc}; skipped"))
        except RecursionError:
            self._report(Warning_(display, f"{reader}: nested too deeply to read; skipped"))
        except (ValueError, UnicodeError, MemoryError) as exc:
            self._report(Warning_(display, f"{reader}: malformed input ({type(exc).__name__}: {exc})"))
        except Exception as exc:  # a reader's bug on input nobody foresaw must not end the whole scan
            self._report(Warning_(display, f"{reader}: unreadable input ({type(exc).__name__}: {exc})"))

    def _enter(self, display: str, depth: int) -> bool:
        if depth + 1 > self.limits.max_depth:
            self._report(Warning_(display, f"archive nested deeper than {self.limits.max_depth} levels; not opened"))
            return False
        return True

    def _unsafe_name(self, display: str, name: str) -> bool:
        pure = PurePosixPath(name.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
            self._report(Warning_(f"{display}{MEMBER_SEP}{name}", "unsafe member name (absolute or '..'); skipped"))
            return True
        return False

    def _zip(self, display: str, data: bytes, depth: int) -> None:
        if not self._enter(display, depth):
            return
        # zipfile reads the whole central directory before anything can be checked. Each entry it reads
        # starts with this signature, so counting them first bounds its time and memory.
        if (entries := data.count(_ZIP_CENTRAL_HEADER)) > self.limits.max_members:
            self._report(Warning_(display, f"{entries:,} central directory entries is over the limit; not opened"))
            return
        try:
            archive, unsupported = open_zip(data)
            infos = archive.infolist()
        except OutOfTime:
            raise
        except Exception as exc:
            # Hostile bytes make zipfile raise far more than BadZipFile: NotImplementedError (versions,
            # methods), RuntimeError (encryption), EOFError, zlib/lzma/bz2 errors, ValueError, IndexError,
            # OverflowError. Any of them is this archive's warning, never the end of the scan.
            self._report(Warning_(display, f"not a readable zip archive: {_reason(exc)}"))
            return
        seen: set[tuple[str, str]] = set()
        for info in infos:
            budget.check()
            if not info.filename.strip("/"):
                # Empty (or cut to nothing at a NUL by zipfile) or only slashes: nothing to scan or to name.
                self._report(Warning_(f"{display}{MEMBER_SEP}{info.filename}", "member with no name; skipped"))
                continue
            if info.filename.endswith("/") or self._unsafe_name(display, info.filename):
                continue
            member_display = f"{display}{MEMBER_SEP}{info.filename}"
            if info.filename in unsupported:
                self._report(Warning_(member_display, f"{unsupported[info.filename]}; skipped"))
                continue
            self._emit_path(display, info.filename, seen)
            name = info.filename.rsplit("/", 1)[-1].lower()
            if not self._interesting(name, info.filename.lower()) and not _is_signature_file(info.filename):
                continue
            if info.flag_bits & 0x1:
                self._report(Warning_(member_display, "encrypted member; skipped"))
                continue
            if not self._size_ok(member_display, info.file_size, info.compress_size):
                if self._spent():
                    return
                continue
            try:
                # zipfile stops at the header's size, so a member that lies about it cannot expand further.
                with archive.open(info) as handle:
                    content = handle.read(self.limits.max_member + 1)
            except OutOfTime:
                raise
            except Exception as exc:  # as when opening: one member's warning, then the next
                self._report(Warning_(member_display, f"cannot read member: {_reason(exc)}"))
                continue
            if len(content) > self.limits.max_member:
                self._report(Warning_(member_display, "member larger than its header says (a zip bomb?); skipped"))
                continue
            self._expanded += len(content)
            if _is_signature_file(info.filename):
                # A v1 (JAR) signature block: the signer's certificate identifies who built the APK.
                block = partial(signer_certificates, {info.filename: content})
                self._read(member_display, "signature block", _certificates(block))
                continue
            self.visit(member_display, content, info.filename, depth + 1)

    def _emit_path(self, display: str, member: str, seen: set[tuple[str, str]]) -> None:
        for owner, observation in _path_observations(member):
            key = (owner, observation.value)
            if key not in seen:
                seen.add(key)
                self.emit(f"{display}{MEMBER_SEP}{owner}", observation)

    def _size_ok(self, display: str, size: int, compressed: int) -> bool:
        limits = self.limits
        if size > limits.max_member:
            self._report(Warning_(display, f"{size:,} bytes uncompressed is over the member limit; skipped"))
            return False
        if size > _SMALL and size > limits.max_ratio * max(compressed, 1):
            self._report(Warning_(display, f"compression ratio over {limits.max_ratio}:1 (a zip bomb?); skipped"))
            return False
        if self._expanded + size > limits.max_archive_total:
            self._expanded = limits.max_archive_total  # nothing more is read from this file's archives
            self._report(Warning_(display, "archives' total uncompressed size over the limit; rest skipped"))
            return False
        return True

    def _spent(self) -> bool:
        return self._expanded >= self.limits.max_archive_total

    def _tar(self, display: str, data: bytes, depth: int) -> None:
        if not self._enter(display, depth):
            return
        seen: set[tuple[str, str]] = set()
        try:
            with self._tar_stream(data) as stream, tarfile.open(fileobj=stream, mode="r:") as archive:
                for count, info in enumerate(archive):
                    budget.check()
                    if count >= self.limits.max_members:
                        self._report(Warning_(display, "too many members; the rest skipped"))
                        break
                    if info.issym() or info.islnk():
                        self._report(Warning_(f"{display}{MEMBER_SEP}{info.name}", "link inside archive; not followed"))
                        continue
                    if not info.isfile() or self._unsafe_name(display, info.name):
                        continue
                    member_display = f"{display}{MEMBER_SEP}{info.name}"
                    self._emit_path(display, info.name, seen)
                    if not self._interesting(info.name.rsplit("/", 1)[-1].lower(), info.name.lower()):
                        continue
                    # A member is no larger than its tar unless it is sparse: against the whole archive,
                    # the ratio cap stops a sparse member from expanding to the member limit.
                    if not self._size_ok(member_display, info.size, len(data)):
                        if self._spent():
                            return
                        continue
                    content = self._tar_member(member_display, archive, info)
                    if content is None:
                        return  # a tar is read in order: after a broken member, nothing further is found
                    self._expanded += len(content)
                    self.visit(member_display, content, info.name, depth + 1)
        except _Expanded as exc:
            self._report(Warning_(display, f"{exc} (a decompression bomb?); rest skipped"))
        except OutOfTime:
            raise
        except Exception as exc:  # as for zip: the archive's warning, never the end of the scan
            self._report(Warning_(display, f"not a readable tar archive: {_reason(exc)}"))

    def _tar_member(self, member_display: str, archive: tarfile.TarFile, info: tarfile.TarInfo) -> bytes | None:
        """The member's bytes, b"" when it has none; None, after a warning naming it, when it cannot be read."""
        try:
            handle = archive.extractfile(info)
            return b"" if handle is None else handle.read(self.limits.max_member + 1)
        except (_Expanded, OutOfTime):
            raise
        except Exception as exc:  # as for zip: the member's warning
            reason = _reason(exc)
            self._report(
                Warning_(member_display, f"not a readable tar archive past this member: {reason}; rest skipped")
            )
            return None

    def _tar_stream(self, data: bytes) -> io.IOBase:
        """The tar bytes: the data itself, or its decompression, capped by ratio and by what is left of
        the file's total. The caller closes it, and the capped stream closes the decompressor."""
        inner: io.BufferedIOBase
        if data.startswith(b"\x1f\x8b"):
            inner = gzip.GzipFile(fileobj=io.BytesIO(data))
        elif data.startswith(b"BZh"):
            inner = bz2.BZ2File(io.BytesIO(data))
        elif data.startswith(b"\xfd7zXZ\x00"):
            inner = lzma.LZMAFile(io.BytesIO(data))  # noqa: SIM115 - closed by the _Capped that wraps it
        else:
            return io.BytesIO(data)
        limits = self.limits
        cap = min(max(_SMALL, limits.max_ratio * len(data)), limits.max_archive_total - self._expanded)
        return _Capped(inner, cap)

    def _gzip(self, display: str, data: bytes, name: str, depth: int) -> None:
        if not self._enter(display, depth):
            return
        limits = self.limits
        cap = min(limits.max_member, max(_SMALL, limits.max_ratio * len(data)))
        inflater = zlib.decompressobj(wbits=31)
        try:
            content = inflater.decompress(data, cap + 1)
        except zlib.error as exc:
            self._report(Warning_(display, f"not readable gzip data: {exc}"))
            return
        if len(content) > cap or inflater.unconsumed_tail:
            self._report(Warning_(display, f"gzip data expands past {cap:,} bytes (a gzip bomb?); skipped"))
            return
        if self._expanded + len(content) > limits.max_archive_total:
            self._report(Warning_(display, "archives' total uncompressed size over the limit; skipped"))
            return
        self._expanded += len(content)
        inner = name.removesuffix(".gz")
        self.visit(f"{display}{MEMBER_SEP}{inner}", content, inner, depth + 1)


_ENTRY_NAME = operator.attrgetter("name")


def _in_bundle(path: str) -> bool:
    """Whether a path is inside an app or framework bundle, where executables have no suffix."""
    path = path.lower()
    return ".app/" in path or ".framework/" in path or "/payload/" in path


def _is_link(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def _open_folder(folder: str) -> int | None:
    """The folder, open for opening its files by name alone (None where that cannot be done)."""
    if os.open not in os.supports_dir_fd or os.stat not in os.supports_dir_fd:
        return None
    try:
        return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None


def _chunks(descriptor: int) -> Iterator[bytes]:
    """The rest of an open file, chunk by chunk, to its end."""
    while chunk := os.read(descriptor, _READ_CHUNK):
        yield chunk


def _reason(exc: BaseException) -> str:
    """An error for a warning: its message, or its type when it has none (an IndexError may say nothing)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _certificates(read: Callable[[], list[Certificate]]) -> Iterator[Observation]:
    """Signer certificates as observations, read only when iterated (so inside the caller's error handling)."""
    for certificate in read():
        yield Observation("signing_cert", certificate.sha256, None, certificate.subject)


def _is_signature_file(name: str) -> bool:
    upper = name.upper()
    return upper.startswith("META-INF/") and upper.endswith((".RSA", ".DSA", ".EC"))


class _Capped(io.RawIOBase):
    """A decompressing stream for tarfile that raises _Expanded once it has produced more than `cap`
    bytes, counting what seeks cost (a forward seek decompresses and discards, a backward one starts
    over), and that looks at the time budget every megabyte."""

    def __init__(self, inner: io.BufferedIOBase, cap: int) -> None:
        super().__init__()
        self._inner = inner
        self._cap = cap
        self._produced = 0
        self._position = 0

    def close(self) -> None:
        self._inner.close()
        super().close()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def _take(self, size: int) -> bytes:
        budget.check()
        data = self._inner.read(min(size, self._cap - self._produced + 1))
        self._produced += len(data)
        self._position += len(data)
        if self._produced > self._cap:
            raise _Expanded(f"compressed data expands past {self._cap:,} bytes")
        return data

    def read(self, size: int | None = -1) -> bytes:
        remaining = self._cap + 1 if size is None or size < 0 else size
        parts: list[bytes] = []
        while remaining > 0 and (part := self._take(min(remaining, _CHUNK))):
            parts.append(part)
            remaining -= len(part)
        return b"".join(parts)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset + (self._position if whence == io.SEEK_CUR else 0)
        if whence == io.SEEK_END or target < 0:
            raise OSError("unsupported seek in compressed tar data")
        if target < self._position:
            self._inner.seek(0)
            self._position = 0
        while self._position < target and self._take(min(target - self._position, _CHUNK)):
            pass
        return self._position

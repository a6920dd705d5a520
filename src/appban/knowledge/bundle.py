"""Knowledge bundles: one signed, versioned archive holding every part of appban's knowledge.

A bundle is a gzip-compressed tar archive of exactly these members, in this order:

- `manifest.json`: the format, the bundle's version (YYYY.MM.DD-N, increasing from one bundle to the next),
  the rulebook's content version, the knowledge schema it needs, when it was made (ISO 8601 Z), the signer's
  public key, the sha256 and size of every data file, and a changelog against an older knowledge root;
- `manifest.sig`: the Ed25519 signature of manifest.json's exact bytes, in base64;
- `data/<path>`: the data files, named as `layout.PARTS` names them, sorted.

Opening one trusts nothing in it before the signature verifies, and nothing after that the manifest does not
vouch for: every member must be named by the manifest, be a regular file of the size and sha256 it gives,
and stay under the caps below; the archive must end where gzip says it ends. What passes is written into a
private temporary directory, which the OpenedBundle removes when it is closed.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any

from appban import safejson
from appban.knowledge import keys
from appban.knowledge.install import fsync_dir, is_version, version_key
from appban.knowledge.layout import BY_NAME, PARTS, KnowledgeRoot

#: The manifest layout this code writes and reads.
FORMAT = 1
#: The knowledge schema this code reads: a bundle needing a higher one was made for a newer appban.
READABLE_SCHEMA = 1

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
DATA = "data/"

# Caps. Today's whole knowledge is under 1 MiB; the caps leave room for a hundred times that and stop an
# archive built to exhaust memory or disk (a gzip bomb, a member claiming gigabytes, millions of members).
MAX_ARCHIVE_BYTES = 64 << 20  # the compressed file
MAX_EXPANDED_BYTES = 256 << 20  # everything gzip yields, headers included
MAX_MEMBER_BYTES = 32 << 20
MAX_MANIFEST_BYTES = 16 << 20  # the changelog of a large change can be long
MAX_SIGNATURE_BYTES = 1024
MAX_FILES = 20_000

_SHA256 = re.compile(r"[0-9a-f]{64}")
# A data path: relative, plain segments of safe characters; never "..", ".", an empty segment or a backslash.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")


class BundleError(ValueError):
    """A bundle that is refused; the message names the bundle, and the member where one is at fault."""


def bundle_id(version: str, manifest_bytes: bytes) -> str:
    """How answers name a bundle: its version and the start of its manifest's sha256 (which names the
    exact files, since the manifest holds each file's sha256)."""
    return f"{version} sha256:{hashlib.sha256(manifest_bytes).hexdigest()[:12]}"


def safe_data_path(path: str) -> bool:
    """Whether `path` (inside data/) is a plain relative path under one of the knowledge parts."""
    segments = path.split("/")
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        return False
    return any(path == part.name or path.startswith(part.name + "/") for part in PARTS)


# --- the manifest ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    path: str  # inside data/
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    version: str
    rulebook_version: str
    schema: int
    made: str
    key: str
    files: tuple[FileEntry, ...]
    changelog: dict[str, Any] | None = None
    raw: bytes = field(default=b"", repr=False, compare=False)  # the exact bytes the signature covers

    @property
    def id(self) -> str:
        return bundle_id(self.version, self.raw)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "rulebook_version": self.rulebook_version,
            "schema": self.schema,
            "made": self.made,
            "key": self.key,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
            "changelog": self.changelog,
        }

    def encode(self) -> bytes:
        return (json.dumps(self.to_json_dict(), indent=1, sort_keys=False, ensure_ascii=False) + "\n").encode()


def parse_manifest(raw: bytes, where: str) -> Manifest:
    """A manifest from its bytes (already verified); BundleError names the field at fault."""
    try:
        data = safejson.loads(raw)
    except ValueError as exc:
        raise BundleError(f"{where}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise BundleError(f"{where}: must be a JSON object")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise BundleError(f"{where}: format {fmt!r}; this appban reads manifest format {FORMAT}: upgrade appban")
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise BundleError(f"{where}: schema: must be a positive whole number")
    if schema > READABLE_SCHEMA:
        raise BundleError(
            f"{where}: schema: the bundle needs knowledge schema {schema}; this appban reads up to schema "
            f"{READABLE_SCHEMA}: upgrade appban to use it"
        )
    strings = {}
    for name in ("version", "rulebook_version", "made", "key"):
        value = data.get(name)
        if not isinstance(value, str) or not value or len(value) > 200:
            raise BundleError(f"{where}: {name}: must be a non-empty string")
        strings[name] = value
    if not is_version(strings["version"]):
        raise BundleError(f"{where}: version: {strings['version']!r} is not YYYY.MM.DD-N")
    files = data.get("files")
    if not isinstance(files, list) or not files or len(files) > MAX_FILES:
        raise BundleError(f"{where}: files: must list between 1 and {MAX_FILES} files")
    entries: list[FileEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(files):
        label = f"{where}: files[{index}]"
        if not isinstance(item, dict):
            raise BundleError(f"{label}: must be an object with path, sha256 and size")
        path, digest, size = item.get("path"), item.get("sha256"), item.get("size")
        if not isinstance(path, str) or not safe_data_path(path):
            raise BundleError(f"{label}: path {str(path)[:120]!r} is not a plain path under a knowledge part")
        if path in seen:
            raise BundleError(f"{label}: {path} is listed twice")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise BundleError(f"{label}: sha256 must be 64 lower-case hex digits")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_MEMBER_BYTES:
            raise BundleError(f"{label}: size must be a whole number of bytes up to {MAX_MEMBER_BYTES}")
        seen.add(path)
        entries.append(FileEntry(path, digest, size))
    for path in seen:  # a part is a directory or a file, never both (a file named like a directory would clash)
        if path in BY_NAME and any(other.startswith(path + "/") for other in seen):
            raise BundleError(f"{where}: files: {path} is both a file and a directory")
    changelog = data.get("changelog")
    if changelog is not None and not isinstance(changelog, dict):
        raise BundleError(f"{where}: changelog: must be an object or null")
    return Manifest(
        strings["version"], strings["rulebook_version"], schema, strings["made"], strings["key"],
        tuple(entries), changelog, raw,
    )  # fmt: skip


# --- opening -----------------------------------------------------------------------------------------------


class _Capped(io.RawIOBase):
    """The decompressed stream, refused past `limit` bytes: a gzip bomb stops here, whatever asks to read."""

    def __init__(self, inner: io.BufferedIOBase, limit: int, name: str):
        self.inner, self.limit, self.name, self.read_so_far = inner, limit, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.limit - self.read_so_far + 1)
        data = self.inner.read(want)
        self.read_so_far += len(data)
        if self.read_so_far > self.limit:
            raise BundleError(f"{self.name}: expands to more than {self.limit:,} bytes; refused")
        view[: len(data)] = data
        return len(data)


class OpenedBundle:
    """A verified bundle, extracted: `root` reads its knowledge, `manifest` says what it is. Close it (or use
    it as a context manager) to remove the extracted files."""

    def __init__(self, source: Path, directory: Path, manifest: Manifest, signature: bytes):
        self.source = source
        self.directory = directory  # holds manifest.json, manifest.sig and data/
        self.manifest = manifest
        self.signature = signature
        self.root = KnowledgeRoot(directory / "data")

    @property
    def id(self) -> str:
        return self.manifest.id

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> OpenedBundle:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def open_bundle(
    path: Path, *, trusted: bool = True, workdir: Path | None = None, durable: bool = False
) -> OpenedBundle:
    """Verify the bundle at `path` and extract it into a new private directory (inside `workdir` if given).

    `trusted`: the signer must be among this user's trusted keys (False: the signature must still verify
    with the key the manifest names, so corruption is caught, but any signer is accepted; for `rules diff`
    of a bundle one has not decided to trust). `durable`: fsync every file written (for installing).
    Raises BundleError naming the bundle and, where one is at fault, the member.
    """
    name = str(path)
    try:
        # The file the user named, through a link if it is one; O_NONBLOCK so a FIFO does not hang the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise BundleError(f"{name}: cannot open: {exc.strerror or exc}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise BundleError(f"{name}: not a regular file")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as raw:
        if info.st_size > MAX_ARCHIVE_BYTES:
            raise BundleError(f"{name}: {info.st_size} bytes; a bundle is at most {MAX_ARCHIVE_BYTES >> 20} MiB")
        directory = Path(tempfile.mkdtemp(prefix=".appban-bundle-", dir=workdir))  # mode 0700
        try:
            manifest, signature = _extract(raw, name, directory, trusted, durable)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
    return OpenedBundle(path, directory, manifest, signature)


def _extract(raw: IO[bytes], name: str, directory: Path, trusted: bool, durable: bool) -> tuple[Manifest, bytes]:
    gz = gzip.GzipFile(fileobj=raw, mode="rb")
    capped = io.BufferedReader(_Capped(gz, MAX_EXPANDED_BYTES, name), buffer_size=64 << 10)
    try:
        with tarfile.open(fileobj=capped, mode="r|") as archive:
            members = _members(archive, name)
            manifest_raw = _small(archive, next(members, None), MANIFEST, MAX_MANIFEST_BYTES, name)
            signature_text = _small(archive, next(members, None), SIGNATURE, MAX_SIGNATURE_BYTES, name)
            signature = _verify(manifest_raw, signature_text, name, trusted)
            manifest = parse_manifest(manifest_raw, f"{name}: {MANIFEST}")
            _write(directory / MANIFEST, [manifest_raw], durable)
            _write(directory / SIGNATURE, [signature_text], durable)
            _extract_data(archive, members, manifest, name, directory, durable)
        while capped.read(64 << 10):  # to gzip's end: its length and CRC check catch a cut or altered tail
            pass
    except BundleError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleError(f"{name}: truncated or corrupt archive ({exc or type(exc).__name__})") from exc
    except OSError as exc:
        raise BundleError(f"{name}: cannot read or extract: {exc.strerror or exc}") from exc
    if durable:
        _fsync_tree(directory)
    return manifest, signature


def _members(archive: tarfile.TarFile, name: str) -> Iterator[tarfile.TarInfo]:
    for count, member in enumerate(archive, start=1):
        if count > MAX_FILES + 2:
            raise BundleError(f"{name}: more than {MAX_FILES} members; refused")
        kind = _kind_problem(member)
        if kind:
            raise BundleError(f"{name}: member {member.name[:200]!r}: {kind}; a bundle holds regular files only")
        yield member


def _kind_problem(member: tarfile.TarInfo) -> str | None:
    if member.issym() or member.islnk():
        return f"is a link (to {member.linkname[:200]!r})"
    if member.ischr() or member.isblk():
        return "is a device file"
    if member.isfifo():
        return "is a FIFO"
    if member.isdir():
        return "is a directory entry"
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.issparse():
        return f"is not a regular file (type {member.type!r})"
    return None


def _small(archive: tarfile.TarFile, member: tarfile.TarInfo | None, expected: str, limit: int, name: str) -> bytes:
    if member is None:
        raise BundleError(f"{name}: no {expected}; not a knowledge bundle (or truncated)")
    if member.name != expected:
        raise BundleError(f"{name}: member {member.name[:200]!r} where {expected} must be; not a knowledge bundle")
    if member.size > limit:
        raise BundleError(f"{name}: {expected}: {member.size} bytes, over the {limit}-byte cap")
    stream = archive.extractfile(member)
    assert stream is not None  # a regular file
    data = stream.read(limit + 1)
    if len(data) != member.size:
        raise BundleError(f"{name}: {expected}: truncated")
    return data


def _verify(manifest_raw: bytes, signature_text: bytes, name: str, trusted: bool) -> bytes:
    try:
        signature = base64.b64decode(signature_text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError(f"{name}: {SIGNATURE}: not base64 ({exc})") from exc
    try:
        signer = safejson.loads(manifest_raw).get("key")
    except (ValueError, AttributeError) as exc:
        raise BundleError(f"{name}: {MANIFEST}: not a JSON object ({exc})") from exc
    if not isinstance(signer, str) or not signer:
        raise BundleError(f"{name}: {MANIFEST}: key: names no signer")
    if trusted:
        try:
            allowed = keys.trusted_keys()
        except keys.KeyProblem as exc:
            raise BundleError(f"{name}: cannot tell whether its signer is trusted: {exc}") from exc
        if signer not in allowed:
            raise BundleError(
                f"{name}: signed by {signer[:80]}, which is not among the trusted keys ({keys.trusted_path()}); "
                f"if you trust its maker: appban keys trust {signer[:80]}"
            )
    if not keys.verifies(signer, signature, manifest_raw):
        raise BundleError(
            f"{name}: {SIGNATURE}: the signature does not verify with {signer[:80]}: {MANIFEST} was altered "
            "after signing, or signed by another key"
        )
    return signature


def _extract_data(
    archive: tarfile.TarFile, members: Iterator[tarfile.TarInfo], manifest: Manifest, name: str, directory: Path,
    durable: bool,
) -> None:  # fmt: skip
    expected = {entry.path: entry for entry in manifest.files}
    seen: set[str] = set()
    data_dir = directory / "data"
    for member in members:
        label = f"{name}: member {member.name[:200]!r}"
        relative = member.name.removeprefix(DATA) if member.name.startswith(DATA) else None
        pure = PurePosixPath(member.name)
        if pure.is_absolute() or ".." in pure.parts or "\\" in member.name or "\0" in member.name:
            raise BundleError(f"{label}: an unsafe path (absolute, .. or backslash); refused")
        if relative is None or relative not in expected:
            raise BundleError(f"{label}: not listed in {MANIFEST}; refused")
        if relative in seen:
            raise BundleError(f"{label}: appears twice")
        entry = expected[relative]
        if member.size != entry.size:
            raise BundleError(f"{label}: {member.size} bytes, but {MANIFEST} says {entry.size}")
        stream = archive.extractfile(member)
        assert stream is not None
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        left = entry.size
        while left > 0:
            chunk = stream.read(min(left, 1 << 20))
            if not chunk:
                raise BundleError(f"{label}: truncated")
            digest.update(chunk)
            chunks.append(chunk)
            left -= len(chunk)
        if digest.hexdigest() != entry.sha256:
            raise BundleError(f"{label}: its sha256 differs from {MANIFEST}'s: the file was altered after signing")
        target = data_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        _write(target, chunks, durable)
        seen.add(relative)
    missing = sorted(set(expected) - seen)
    if missing:
        shown = ", ".join(missing[:5])
        raise BundleError(f"{name}: {MANIFEST} lists {len(missing)} file(s) the archive lacks: {shown}")


def _write(path: Path, chunks: list[bytes], durable: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as stream:
        for chunk in chunks:
            stream.write(chunk)
        if durable:
            stream.flush()
            os.fsync(fd)


def _fsync_tree(directory: Path) -> None:
    for folder, _dirs, _files in os.walk(directory):
        fsync_dir(Path(folder))


# --- packing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packed:
    manifest: Manifest
    left_out: tuple[str, ...]  # parts the source root does not hold


def source_files(root: KnowledgeRoot) -> tuple[list[tuple[str, Path]], list[str]]:
    """(path inside data/, file) for every data file of `root`, sorted; and the parts it does not hold.

    A part that is a directory contributes its regular files, hidden files and caches left out; a link is
    refused, since a bundle holds files, not references to files elsewhere."""
    found: list[tuple[str, Path]] = []
    left_out: list[str] = []
    for part in PARTS:
        base = root.path(part.name)
        if base.is_symlink():
            raise BundleError(f"{base}: is a link; a bundle is made of regular files")
        if base.is_file():
            found.append((part.name, base))
        elif base.is_dir():
            for folder, dirs, files in os.walk(base):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
                for file in sorted(files):
                    if file.startswith(".") or file.endswith((".pyc", ".py")):
                        continue
                    path = Path(folder) / file
                    if path.is_symlink() or not path.is_file():
                        raise BundleError(f"{path}: is a link or not a regular file; a bundle holds regular files")
                    inside = f"{part.name}/{path.relative_to(base).as_posix()}"
                    if not safe_data_path(inside):
                        raise BundleError(f"{path}: the name {inside!r} has characters a bundle path may not hold")
                    found.append((inside, path))
        else:
            left_out.append(part.name)
    return sorted(found), left_out


def pack(
    root: KnowledgeRoot,
    private_key: Any,  # an Ed25519PrivateKey
    *,
    version: str,
    rulebook_version: str,
    made: datetime,
    changelog: dict[str, Any] | None,
) -> tuple[bytes, Packed]:
    """The bundle's bytes. The same root, key, version, date and changelog give the same bytes: members are
    sorted, every time stamp is `made`, owners are 0 with no names, and gzip records no name or time."""
    version_key(version)  # refuses a malformed one
    files, left_out = source_files(root)
    if not files:
        raise BundleError(f"{root.directory}: holds none of the knowledge parts")
    contents: list[tuple[str, bytes]] = []
    entries: list[FileEntry] = []
    for inside, path in files:
        data = path.read_bytes()
        if len(data) > MAX_MEMBER_BYTES:
            raise BundleError(f"{path}: {len(data)} bytes, over the {MAX_MEMBER_BYTES}-byte cap of a bundle member")
        contents.append((DATA + inside, data))
        entries.append(FileEntry(inside, hashlib.sha256(data).hexdigest(), len(data)))
    stamp = made.astimezone(UTC).replace(microsecond=0)
    manifest = Manifest(
        version=version,
        rulebook_version=rulebook_version,
        schema=READABLE_SCHEMA,
        made=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        key=keys.public_text(private_key.public_key()),
        files=tuple(entries),
        changelog=changelog,
    )
    raw = manifest.encode()
    signature = base64.b64encode(keys.sign(private_key, raw)) + b"\n"
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as archive,
    ):
        for member, data in [(MANIFEST, raw), (SIGNATURE, signature), *contents]:
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(data), int(stamp.timestamp()), 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue(), Packed(replace(manifest, raw=raw), tuple(left_out))

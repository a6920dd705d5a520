"""Writing a result where `-o` says, without ever turning a device, a FIFO or a link into a plain file.

What `-o PATH` does depends on what PATH is when the command writes (`lstat`, the link itself):
- missing, or a regular file: replaced whole or not at all. The result goes to a temporary file in the same
  directory, is flushed to disk, takes the old file's mode (and owner, where allowed) and is renamed over
  PATH. On any failure the temporary file is removed and the old file is left as it was.
- a character or block device, a FIFO (`/dev/null`, `/dev/stdout`, a named pipe): written through, opened
  for writing as it is; nothing is created, truncated or renamed.
- a symbolic link: followed by `open` (so the kernel's own link protections apply) and written through
  when it leads to a device or FIFO (`/dev/stderr` is such a link). A link to a regular file, or one that
  leads nowhere, is refused: replacing it would cut the link, and writing where it points is how a planted
  link in a shared directory makes a privileged run overwrite another file.
- a directory, a socket or anything else: refused.
A refusal, and any error while writing, raises OutputError naming PATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Literal

Sink = Callable[[BinaryIO], object]
Kind = Literal["file", "stream"]


class OutputError(Exception):
    """An output that may not or cannot be written; the message names the path and the reason."""


def write_output(path: Path, write: Sink) -> Kind:
    """`write(stream)` renders the result; it lands at `path` by the rule above.

    Returns "file" when a regular file now holds the result (files beside it make sense), "stream" when it
    went through to a device or FIFO.
    """
    try:
        info = _lstat(path)
        if info is None or stat.S_ISREG(info.st_mode):
            _replace(path, info, lambda fd, _temp: _fill(fd, write))
            return "file"
        if stat.S_ISDIR(info.st_mode):
            raise OutputError(f"{path}: is a directory; name a file to write")
        if stat.S_ISSOCK(info.st_mode):
            raise OutputError(f"{path}: is a socket; name a file, a device or a FIFO")
        fd = _open_through(path)
        with os.fdopen(fd, "wb") as stream:
            write(stream)
        return "stream"
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc


def write_atomically(path: Path, write: Callable[[Path], object]) -> Kind:
    """As `write_output`, for writers that need a path to write to rather than a stream.

    Through a device or FIFO the writer fills a scratch file first, which is then copied through.
    """
    try:
        info = _lstat(path)
        if info is None or stat.S_ISREG(info.st_mode):
            _replace(path, info, lambda fd, temp: _fill_path(fd, temp, write))
            return "file"
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc

    def through(stream: BinaryIO) -> None:
        with tempfile.TemporaryDirectory(prefix="appban-") as folder:
            scratch = Path(folder) / "out"
            write(scratch)
            with scratch.open("rb") as source:
                shutil.copyfileobj(source, stream)

    return write_output(path, through)


def _lstat(path: Path) -> os.stat_result | None:
    """What is at `path` itself (a link is not followed), or None when nothing is."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _fill(fd: int, write: Sink) -> None:
    with os.fdopen(fd, "wb", closefd=False) as stream:
        write(stream)
        stream.flush()


def _fill_path(fd: int, temp: Path, write: Callable[[Path], object]) -> None:
    write(temp)
    # The writer may have replaced the file at `temp` (write-then-rename writers): sync what is there now.
    fresh = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fresh)
    finally:
        os.close(fresh)


def _replace(path: Path, info: os.stat_result | None, fill: Callable[[int, Path], None]) -> None:
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    temp = Path(name)
    try:
        try:
            fill(fd, temp)
            os.fsync(fd)
        finally:
            os.close(fd)
        _take_mode(temp, info)
        _still_replaceable(path)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _sync_folder(folder)


def _take_mode(temp: Path, info: os.stat_result | None) -> None:
    """The replacement keeps the old file's owner and mode; a new file gets what `open` would give it."""
    if info is None:
        os.chmod(temp, 0o666 & ~_umask())
        return
    if (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
        # Not ours to give away (unprivileged): the file becomes ours, with its old mode.
        with contextlib.suppress(PermissionError):
            os.chown(temp, info.st_uid, info.st_gid)
    os.chmod(temp, stat.S_IMODE(info.st_mode))


def _umask() -> int:
    # The only portable way to read it is to set it; the command line runs this on one thread.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _still_replaceable(path: Path) -> None:
    """The path may have changed while the result was written: never rename over a device, FIFO or link."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise OutputError(f"{path}: was replaced by something other than a regular file while writing; left alone")


def _open_through(path: Path) -> int:
    """An open descriptor of a device or FIFO at `path` (a link to one included); anything else refused."""
    try:
        # No O_CREAT: a link that leads nowhere must not create its target. No O_TRUNC: if the link leads to a
        # regular file, that file is refused below untouched. A FIFO blocks here until a reader opens it.
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OutputError(f"{path}: a symbolic link to nothing; name the file to write itself") from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        return fd
    os.close(fd)
    if stat.S_ISREG(mode):
        target = os.path.realpath(path)
        raise OutputError(
            f"{path}: a symbolic link (to {target}); appban neither replaces a link nor writes through one to a "
            "file: name the file itself"
        )
    raise OutputError(f"{path}: not a file, a device or a FIFO")


def _sync_folder(folder: Path) -> None:
    """The rename itself reaches the disk only when the directory does."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        # Some file systems cannot sync a directory; the rename is done all the same.
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)

"""Inputs and outputs of a cluster run named by URL: listed on the driver, opened by the tasks.

A path without a scheme is a local path and is handled as it always was (os functions, the path as given).
A URL (`scheme:/...`, a scheme of two letters or more, so a Windows drive is not one) goes through a
filesystem layer instead:

- Dask: fsspec (`file://`, `memory://`, `s3://`, `gs://`, `hdfs://`... whatever fsspec has an
  implementation for, when its package is installed). The driver lists directories and globs with
  `fs.find`/`fs.glob`; the dataset is written through the same filesystem.
- Spark: the session's Hadoop FileSystem (`file:/`, `hdfs:/`, `s3a:/`... whatever the session is configured
  to read), reached on the driver through the JVM for listing; the DataFrame writer writes the dataset.

Per-file screeners read local files (their readers pick formats by name and stream from disk). A task
given a URL opens it through fsspec (`file:` URLs are simply local paths) and streams it, a megabyte at a
time, into a private temporary directory under its own name, screens that copy and removes it; a task's
memory stays bounded whatever the file's size, its disk holds one file (or one artefact folder) at a time.
The rows name the URL, not the copy. Python tasks on Spark cannot reach the JVM's Hadoop client, so they too
open through fsspec (hdfs through pyarrow's libhdfs, s3a through s3fs): the driver checks that fsspec
knows each scheme listed and that its package imports, as the workers will need it.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.compute as pc

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/")
_GLOB = "*?["
# Spark and Hadoop jobs leave these beside their part files (_SUCCESS, .crc checksums); no input is named so.
HIDDEN = ("_", ".")
_CHUNK = 1 << 20


class LocationError(ValueError):
    """A path or URL that cannot be listed, opened or written (its message names the flag and the fix)."""


def scheme(text: str) -> str | None:
    """The URL scheme of `text` (lower case), or None for a local path."""
    found = _SCHEME.match(text)
    return found.group(1).lower() if found else None


def local_path(text: str) -> str | None:
    """The local path a local path or `file:` URL names (None for any other URL)."""
    kind = scheme(text)
    if kind is None:
        return text
    if kind != "file":
        return None
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        return None
    return unquote(parts.path)


def has_glob(text: str) -> bool:
    return any(char in text for char in _GLOB)


def _hidden_below(path: str, root: str) -> bool:
    relative = path[len(root) :].strip("/") if path.startswith(root) else path.rsplit("/", 1)[-1]
    return any(part.startswith(HIDDEN) for part in relative.split("/") if part)


# ---- fsspec (Dask, and every task's reads) -------------------------------------------------------------


def fsspec_filesystem(url: str, flag: str) -> tuple[Any, str]:
    """(filesystem, path inside it) for `url`; LocationError naming `flag` and the package to install when
    the scheme is unknown or its implementation cannot be imported."""
    # Through importlib: fsspec is optional here (the dask extra brings it) and untyped.
    try:
        fsspec = importlib.import_module("fsspec")
    except ImportError as exc:
        raise LocationError(
            f"{flag} {url}: URLs are opened through fsspec, which cannot be imported: pip install fsspec"
        ) from exc
    known_implementations = importlib.import_module("fsspec.registry").known_implementations

    kind = scheme(url) or "file"
    try:
        found: tuple[Any, str] = fsspec.core.url_to_fs(url)
        return found
    except ImportError as exc:
        known = known_implementations.get(kind, {})
        package = str(known.get("class", "")).split(".")[0] or "its fsspec implementation"
        raise LocationError(
            f"{flag} {url}: the {kind}:// scheme needs {package}, which cannot be imported "
            f"({known.get('err') or exc}): pip install {package}"
        ) from exc
    except OSError as exc:  # a filesystem that connects when made (HDFS's namenode) and cannot
        raise LocationError(f"{flag} {url}: {exc}") from exc
    except ValueError as exc:
        if "Protocol not known" not in str(exc):
            raise LocationError(f"{flag} {url}: {exc}") from exc
        raise LocationError(
            f"{flag} {url}: unknown scheme {kind}:// (fsspec has no filesystem for it; give a local path, "
            "file://, memory://, s3://, gs://, hdfs:// or another scheme fsspec knows)"
        ) from exc


def check_scheme(url: str, flag: str) -> None:
    """LocationError unless fsspec can open `url`'s scheme here (its package imports)."""
    if local_path(url) is None:
        fsspec_filesystem(url, flag)


def list_fsspec(url: str, entries: bool, flag: str) -> list[str]:
    """The files `url` names through fsspec, as URLs: itself if a file, a directory's files (sorted; with
    `entries`, its entries, files and folders alike), a glob's matches. Names starting with _ or . below a
    directory are left out."""
    fs, path = fsspec_filesystem(url, flag)
    try:
        if has_glob(path):
            matches = sorted(fs.glob(path))
            if not matches:
                raise LocationError(f"{url}: no file matches")
            return [fs.unstrip_protocol(m) for m in matches if entries or fs.isfile(m)]
        if fs.isdir(path):
            root = path.rstrip("/")
            if entries:
                found = sorted(str(p) for p in fs.ls(path, detail=False))
            else:
                found = sorted(str(p) for p in fs.find(path))
            return [fs.unstrip_protocol(p) for p in found if p.rstrip("/") != root and not _hidden_below(p, root)]
        if fs.exists(path):
            return [url]
    except OSError as exc:
        raise LocationError(f"{url}: {exc}") from exc
    raise LocationError(f"{url}: no such file or directory")


def check_output_fsspec(url: str) -> None:
    """LocationError unless `url` is a new or empty directory fsspec can reach."""
    fs, path = fsspec_filesystem(url, "-o")
    try:
        if fs.exists(path) and (not fs.isdir(path) or fs.ls(path, detail=False)):
            raise LocationError(
                f"-o {url}: exists and is not an empty directory; the dataset goes into a new or empty one"
            )
    except OSError as exc:
        raise LocationError(f"-o {url}: {exc}") from exc


@contextmanager
def opened(path: str) -> Iterator[str]:
    """A local path holding what `path` names, for a task's reader: the path itself when it is local (or a
    `file:` URL), else a copy streamed through fsspec into a private temporary directory, under the same
    name (readers pick formats by it), removed afterwards."""
    here = local_path(path)
    if here is not None:
        yield here
        return
    fs, inside = fsspec_filesystem(path, "input")
    name = inside.rstrip("/").rsplit("/", 1)[-1] or "input"
    with tempfile.TemporaryDirectory(prefix="appban-input-") as folder:
        copy = os.path.join(folder, name)
        if fs.isdir(inside):  # scan: an artefact may be a folder
            fs.get(inside.rstrip("/") + "/", copy, recursive=True)
        else:
            with fs.open(inside, "rb") as source, open(copy, "wb") as target:
                shutil.copyfileobj(source, target, _CHUNK)
        yield copy


def renamed(table: pa.Table, copy: str, path: str) -> pa.Table:
    """`table` with `copy` (the local stand-in) replaced by `path` in every text column."""
    if copy == path or table.num_rows == 0:
        return table
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pc.replace_substring(column, copy, path)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=table.schema)


# ---- Hadoop through Spark's JVM (the driver's listing on Spark) -----------------------------------------


def list_hadoop(session: Any, url: str, entries: bool) -> list[str]:
    """The files `url` names through the session's Hadoop FileSystem, as Hadoop gives their paths; the
    same rules as `list_fsspec`."""
    jvm = session.sparkContext._jvm
    conf = session.sparkContext._jsc.hadoopConfiguration()
    try:
        where = jvm.org.apache.hadoop.fs.Path(url)
        fs = where.getFileSystem(conf)
        if has_glob(url):
            statuses = fs.globStatus(where) or []
            if not statuses:
                raise LocationError(f"{url}: no file matches")
            return sorted(str(s.getPath().toString()) for s in statuses if entries or s.isFile())
        if not fs.exists(where):
            raise LocationError(f"{url}: no such file or directory")
        if not fs.getFileStatus(where).isDirectory():
            return [url]
        return _hadoop_walk(fs, where, entries)
    except LocationError:
        raise
    except Exception as exc:  # py4j's Py4JJavaError: an unknown scheme, a refused connection
        said = str(getattr(exc, "java_exception", exc)).splitlines()[0]
        raise LocationError(f"{url}: Spark's Hadoop FileSystem cannot list it: {said}") from exc


def _hadoop_walk(fs: Any, folder: Any, entries: bool) -> list[str]:
    found: list[str] = []
    for status in sorted(fs.listStatus(folder), key=lambda s: str(s.getPath().getName())):
        if str(status.getPath().getName()).startswith(HIDDEN):
            continue
        if entries or status.isFile():
            found.append(str(status.getPath().toString()))
        elif status.isDirectory():
            found += _hadoop_walk(fs, status.getPath(), entries)
    return found


def check_output_hadoop(session: Any, url: str) -> None:
    jvm = session.sparkContext._jvm
    where = jvm.org.apache.hadoop.fs.Path(url)
    try:
        fs = where.getFileSystem(session.sparkContext._jsc.hadoopConfiguration())
        full = fs.exists(where) and (not fs.getFileStatus(where).isDirectory() or len(fs.listStatus(where)) > 0)
    except Exception as exc:
        said = str(getattr(exc, "java_exception", exc)).splitlines()[0]
        raise LocationError(f"-o {url}: Spark's Hadoop FileSystem cannot reach it: {said}") from exc
    if full:
        raise LocationError(f"-o {url}: exists and is not an empty directory; the dataset goes into a new or empty one")


def screen_located(screener: Any, path: str) -> pa.Table:
    """A PathScreener's rows for `path`, a local path or URL: screened from a local path (`opened`), rows
    naming `path`."""
    with opened(path) as here:
        return renamed(screener.screen_path(here), here, path)

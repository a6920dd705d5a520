"""Knowledge bundles on the command line: `appban keys generate|trust|list` and `appban rules
bundle|update|use|versions`.

Only typer and the CLI's shared helpers are imported here at the top: `appban rules list` imports this
module too (it registers in the same group), so the cryptography and archive work are imported inside the
commands that need them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from appban.cli.apps import app, rules_app
from appban.cli.common import OutputOption, emit, err, fail, out
from appban.cli.conventions import Fmt, JsonAlias, chosen_format, dumps

keys_app = typer.Typer(help="Make and trust the keys that sign knowledge bundles.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

MAX_DOWNLOAD_SECONDS = 60.0  # per network operation (connect, each read), as urllib's timeout means


class ListFormat(StrEnum):
    table = "table"
    json = "json"


# --- keys --------------------------------------------------------------------------------------------------


@keys_app.command("generate")
def keys_generate(
    directory: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            metavar="DIR",
            help="Where to write the key pair (default: appban's configuration directory, keys/).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[ListFormat, typer.Option("--format", case_sensitive=False, help="Output format.")] = (
        ListFormat.table
    ),
    as_json: JsonAlias = False,
) -> None:
    """Make an Ed25519 key pair for signing bundles; print the public key as one line.

    The private key (appban-bundle-key.pem, mode 0600) is never overwritten. Give the printed line to
    whoever installs your bundles: they run `appban keys trust LINE`.
    """
    from appban.knowledge import keys

    chosen = chosen_format(fmt, as_json)
    target = directory if directory is not None else keys.config_dir() / "keys"
    try:
        made = keys.generate(target)
    except (keys.KeyProblem, OSError) as exc:
        fail(f"-o {target}: {exc}")
    if chosen == Fmt.json:
        print(
            dumps({"public_key": made.text, "private_key_file": str(made.private), "public_key_file": str(made.public)})
        )
        return
    err.print(f"private key: {escape(str(made.private))} (keep it secret; sign with --key)")
    err.print(f"public key:  {escape(str(made.public))}")
    print(made.text)


@keys_app.command("trust")
def keys_trust(
    public_key: Annotated[
        str, typer.Argument(metavar="PUBKEY", help="A public key as keys generate prints it.", show_default=False)
    ],
    fmt: Annotated[ListFormat, typer.Option("--format", case_sensitive=False, help="Output format.")] = (
        ListFormat.table
    ),
    as_json: JsonAlias = False,
) -> None:
    """Trust bundles signed by this public key (`appban rules update` accepts only trusted signers)."""
    from appban.knowledge import keys

    chosen = chosen_format(fmt, as_json)
    try:
        added = keys.trust(public_key)
    except (keys.KeyProblem, OSError) as exc:
        fail(f"PUBKEY: {exc}")
    if chosen == Fmt.json:
        print(dumps({"key": public_key.strip(), "added": added, "file": str(keys.trusted_path())}))
        return
    state = "trusted now" if added else "trusted already"
    err.print(f"{state}: {escape(public_key.strip())} ({escape(str(keys.trusted_path()))})")


@keys_app.command("list")
def keys_list(
    fmt: Annotated[ListFormat, typer.Option("--format", case_sensitive=False, help="Output format.")] = (
        ListFormat.table
    ),
    as_json: JsonAlias = False,
) -> None:
    """The public keys whose bundles this user trusts."""
    from appban.knowledge import keys

    chosen = chosen_format(fmt, as_json)
    try:
        trusted = keys.trusted_keys()
    except keys.KeyProblem as exc:
        fail(str(exc))
    if chosen == Fmt.json:
        print(dumps({"file": str(keys.trusted_path()), "keys": trusted}))
        return
    if not trusted:
        err.print(f"no trusted keys ({escape(str(keys.trusted_path()))}); add one with appban keys trust PUBKEY")
        return
    for key in trusted:
        print(key)


# --- rules bundle ------------------------------------------------------------------------------------------


@contextmanager
def _since(arg: str) -> Iterator[tuple[Any, str]]:
    """The older knowledge a changelog is written against, and how the manifest names it: a bundle by its
    version, the installed one by its bundle id, `packaged`, a directory by its name (never its full path)."""
    from appban.knowledge.bundle import BundleError, open_bundle
    from appban.knowledge.layout import PACKAGED, KnowledgeRoot, active_bundle, active_root

    path = Path(arg)
    if arg == "packaged":
        yield PACKAGED, "packaged"
    elif arg == "installed":
        yield active_root(), active_bundle() or "packaged"
    elif path.is_file():
        try:
            opened = open_bundle(path, trusted=False)  # only compared with: who signed it does not matter here
        except BundleError as exc:
            fail(f"--since: {exc}")
        with opened:
            yield opened.root, opened.manifest.version
    elif path.is_dir():
        yield KnowledgeRoot(path / "data" if (path / "manifest.json").is_file() else path), path.name
    else:
        fail(f"--since {arg}: not a bundle file, a knowledge directory, installed or packaged")


def _made(text: str | None) -> datetime:
    import os
    from datetime import UTC

    if text is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()  # reproducible builds' convention
        if epoch:
            try:
                return datetime.fromtimestamp(int(epoch), UTC)
            except (ValueError, OverflowError):
                fail(f"SOURCE_DATE_EPOCH={epoch!r}: not a whole number of seconds since 1970")
        return datetime.now(UTC).replace(microsecond=0)
    try:
        made = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        fail(f"--made {text!r}: write an ISO 8601 instant with an offset, e.g. 2026-02-20T12:00:00Z")
    if made.tzinfo is None:
        fail(f"--made {text!r}: give the offset (Z or +01:00)")
    return made.astimezone(UTC)


def _next_version(made: datetime, since_version: str | None) -> str:
    from appban.knowledge.install import data_dir, installed_versions, is_version, version_key

    day = made.strftime("%Y.%m.%d")
    known = [v for v in [since_version, *installed_versions(data_dir())] if v and is_version(v)]
    numbers = [version_key(v)[3] for v in known if v.startswith(day + "-")]
    return f"{day}-{max(numbers, default=0) + 1}"


@rules_app.command("bundle")
def rules_bundle(
    output: OutputOption = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", metavar="PRIVATE_KEY", help="The private key to sign with (keys generate).", show_default=False
        ),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from", metavar="DIR", help="A knowledge directory to pack (default: the knowledge in force).",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="BUNDLE|DIR|installed|packaged",
            help="Write the changelog against this older knowledge.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version", metavar="YYYY.MM.DD-N",
            help="The bundle's version (default: the made date, numbered after any of that date).",
            show_default=False,
        ),
    ] = None,
    made: Annotated[
        str | None,
        typer.Option(
            "--made", metavar="INSTANT",
            help="When it was made, ISO 8601 (default: SOURCE_DATE_EPOCH if set, else now).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[ListFormat, typer.Option("--format", case_sensitive=False, help="Output format.")] = (
        ListFormat.table
    ),
    as_json: JsonAlias = False,
) -> None:  # fmt: skip
    """Pack the knowledge into one signed, versioned bundle file (rulebook, identity registry, indicators,
    code signatures, payment markers and cases), with a manifest of every file's sha256 and a changelog.

    The same knowledge, key, version and --made give the same bytes. Exit code 0 when written, 2 when not.
    """
    from appban.knowledge import keys
    from appban.knowledge.bundle import BundleError, pack
    from appban.knowledge.install import is_version, load_everything
    from appban.knowledge.layout import KnowledgeRoot, active_root
    from appban.rulebook.loader import RulebookError

    chosen = chosen_format(fmt, as_json)
    if output is None:
        fail("-o FILE is needed: a bundle is a binary archive")
    if key is None:
        fail("--key PRIVATE_KEY is needed (make one with appban keys generate)")
    if version is not None and not is_version(version):
        fail(f"--version {version!r}: write YYYY.MM.DD-N, e.g. 2026.02.20-1")
    if source is not None and not source.is_dir():
        fail(f"--from {source}: not a directory")
    root = KnowledgeRoot(source) if source is not None else active_root()
    where = f"--from {source}" if source is not None else "the knowledge in force"
    try:
        private = keys.load_private(key)
    except keys.KeyProblem as exc:
        fail(f"--key: {exc}")
    stamp = _made(made)
    try:
        rulebook_version = load_everything(root)  # nothing unreadable is ever signed
    except (RulebookError, OSError, ValueError) as exc:
        fail(f"{where}: cannot be read, so it was not packed:\n{exc}")
    changelog: dict[str, Any] | None = None
    since_version: str | None = None
    if since is not None:
        from appban.knowledge.changes import changes

        with _since(since) as (old, label):
            try:
                changelog = {"since": label, **changes(old, root).to_json_dict()}
            except (RulebookError, OSError, ValueError) as exc:
                fail(f"--since {since}: cannot be read:\n{exc}")
            since_version = label if is_version(label) else None
    chosen_version = version or _next_version(stamp, since_version)
    try:
        data, packed = pack(
            root, private, version=chosen_version, rulebook_version=rulebook_version, made=stamp, changelog=changelog
        )
    except (BundleError, OSError) as exc:
        fail(f"{where}: {exc}")
    emit(lambda stream: stream.write(data), output)
    manifest = packed.manifest
    if chosen == Fmt.json:
        described = {
            "bundle": manifest.id,
            "version": manifest.version,
            "rulebook_version": manifest.rulebook_version,
            "made": manifest.made,
            "key": manifest.key,
            "files": len(manifest.files),
            "changes": changelog.get("counts") if changelog else None,
            "left_out": list(packed.left_out),
        }
        print(dumps(described))
        return
    summary = f"bundle {manifest.id}: {len(manifest.files)} files, rulebook {manifest.rulebook_version}"
    if changelog is not None:
        counts = changelog.get("counts", {})
        summary += f"; since {changelog['since']}: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in counts)
    err.print(escape(summary))
    for part in packed.left_out:
        err.print(f"[yellow]left out[/yellow]: {escape(part)} (not in {escape(where)})")


# --- rules update, use, versions ---------------------------------------------------------------------------


def _download(url: str, directory: Path) -> Path:
    """The bundle at an http(s) URL, in a temporary file in `directory`; capped and timed out."""
    import tempfile
    import urllib.error
    import urllib.request

    from appban.knowledge.bundle import MAX_ARCHIVE_BYTES

    request = urllib.request.Request(url, headers={"User-Agent": "appban"})  # noqa: S310 - scheme checked by caller
    fd, name = tempfile.mkstemp(prefix=".appban-download-", suffix=".tar.gz", dir=directory)
    path = Path(name)
    try:
        with open(fd, "wb") as sink, urllib.request.urlopen(request, timeout=MAX_DOWNLOAD_SECONDS) as response:  # noqa: S310
            if not response.geturl().startswith(("https://", "http://")):
                fail(f"{url}: redirected to {response.geturl()!r}, not an http(s) URL")
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > MAX_ARCHIVE_BYTES:
                fail(f"{url}: {length} bytes; a bundle is at most {MAX_ARCHIVE_BYTES >> 20} MiB")
            total = 0
            while chunk := response.read(1 << 16):
                total += len(chunk)
                if total > MAX_ARCHIVE_BYTES:
                    fail(f"{url}: more than {MAX_ARCHIVE_BYTES >> 20} MiB; a bundle is not that large")
                sink.write(chunk)
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, urllib.error.HTTPError):
            fail(f"{url}: cannot download: HTTP {exc.code} {exc.reason}")
        if isinstance(exc, urllib.error.URLError | OSError | ValueError):
            fail(f"{url}: cannot download: {getattr(exc, 'reason', None) or exc}")
        raise
    return path


@rules_app.command("update")
def rules_update(
    source: Annotated[
        str,
        typer.Argument(metavar="FILE|URL", help="A bundle file, or an http(s) URL of one.", show_default=False),
    ],
    allow_downgrade: Annotated[
        bool, typer.Option("--allow-downgrade", help="Install a version not newer than the newest installed.")
    ] = False,
    fmt: Annotated[ListFormat, typer.Option("--format", case_sensitive=False, help="Output format.")] = (
        ListFormat.table
    ),
    as_json: JsonAlias = False,
) -> None:
    """Verify a knowledge bundle and install it; it is then the knowledge in force.

    Refused, with nothing installed: a signer not trusted (appban keys trust), a file altered after signing,
    a truncated or malformed archive, a schema this appban cannot read, a version not newer than the newest
    installed (unless --allow-downgrade), knowledge that does not load, or cases of its own that fail.
    Exit code 0 when installed (or installed already), 2 when refused.
    """
    from appban.knowledge.install import InstallError, data_dir, install

    chosen = chosen_format(fmt, as_json)
    downloaded: Path | None = None
    if source.startswith(("http://", "https://")):
        base = data_dir()
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"{base}: cannot create: {exc.strerror or exc}")
        downloaded = _download(source, base)
        path = downloaded
    elif "://" in source:
        fail(f"{source}: only http:// and https:// URLs are fetched; give a file path otherwise")
    else:
        path = Path(source)
    try:
        done = install(path, allow_downgrade=allow_downgrade)
    except InstallError as exc:
        fail(str(exc).replace(str(path), source) if downloaded else str(exc))
    except OSError as exc:
        fail(f"{source}: cannot install: {exc.strerror or exc}")
    finally:
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)
    if chosen == Fmt.json:
        print(dumps({"version": done.version, "bundle": done.bundle, "directory": str(done.directory),
                     "installed": not done.already, "pinned": done.pinned}))  # fmt: skip
        return
    state = "installed already" if done.already else "installed"
    err.print(f"{state}: {escape(done.bundle)} in {escape(str(done.directory))}")
    from appban.knowledge.install import active_version

    if active_version() == done.version:
        err.print("it is the knowledge in force")
    else:
        err.print(f"[yellow]not in force[/yellow]: appban rules use {done.version} makes it so")


@rules_app.command("use")
def rules_use(
    choice: Annotated[
        str,
        typer.Argument(
            metavar="VERSION|packaged|newest",
            help="An installed version, packaged (the package's own data) or newest (remove the pin).",
            show_default=False,
        ),
    ],
    fmt: Annotated[ListFormat, typer.Option("--format", case_sensitive=False, help="Output format.")] = (
        ListFormat.table
    ),
    as_json: JsonAlias = False,
) -> None:
    """Choose the knowledge in force: an installed bundle version, or the package's own data."""
    from appban.knowledge.install import InstallError, active_bundle, pin

    chosen = chosen_format(fmt, as_json)
    try:
        now = pin(choice)
    except InstallError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the pin: {exc.strerror or exc}")
    if chosen == Fmt.json:
        print(dumps({"in_force": now, "bundle": active_bundle(), "pinned": choice != "newest"}))
        return
    err.print(f"in force: {escape(now)}")


@rules_app.command("versions")
def rules_versions(
    fmt: Annotated[ListFormat, typer.Option("--format", case_sensitive=False, help="Output format.")] = (
        ListFormat.table
    ),
    as_json: JsonAlias = False,
) -> None:
    """The installed bundle versions, which one is in force (and whether pinned), and the packaged data."""
    from appban.knowledge.install import active_version, data_dir, installed_bundle_id, installed_versions, pinned

    chosen = chosen_format(fmt, as_json)
    base = data_dir()
    active, pin = active_version(base), pinned(base)
    rows: list[dict[str, Any]] = []
    for version in reversed(installed_versions(base)):
        info = _manifest_fields(base / version / "manifest.json")
        rows.append({
            "version": version,
            "bundle": installed_bundle_id(version, base),
            "made": info.get("made"),
            "rulebook_version": info.get("rulebook_version"),
            "signer": info.get("key"),
            "active": version == active,
            "pinned": version == pin,
        })  # fmt: skip
    rows.append(
        {"version": "packaged", "bundle": None, "made": None, "rulebook_version": _packaged_version(),
         "signer": None, "active": active is None, "pinned": pin == "packaged"}
    )  # fmt: skip
    if chosen == Fmt.json:
        print(dumps({"directory": str(base), "versions": rows}))
        return
    table = Table(title=f"Knowledge versions ({escape(str(base))})", title_justify="left")
    for name in ("", "version", "made", "rulebook", "signer"):
        table.add_column(name, overflow="fold")
    for row in rows:
        mark = ("*" if row["active"] else "") + (" pinned" if row["pinned"] else "")
        table.add_row(mark, row["version"], row["made"] or "", row["rulebook_version"] or "", row["signer"] or "")
    out.print(table)


def _manifest_fields(path: Path) -> dict[str, str]:
    """The text fields of an installed manifest (verified when installed; read here only to describe it)."""
    from appban import safejson

    try:
        data = safejson.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: value for key, value in data.items() if isinstance(value, str)}


def _packaged_version() -> str | None:
    from appban.knowledge.layout import PACKAGED
    from appban.rulebook.loader import RulebookError, load_rulebook

    try:
        return load_rulebook(PACKAGED.path("rulebook")).version
    except RulebookError:
        return None

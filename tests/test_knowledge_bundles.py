"""Knowledge bundles: keys, packing, verification, installing, pinning, and answers naming their bundle.

Every test points XDG_CONFIG_HOME, XDG_DATA_HOME and XDG_CACHE_HOME into its own tmp_path, so the trusted
keys, the installed bundles and the compiled rulebooks it makes are its own and the real home is untouched.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appban.cli import app
from appban.knowledge import bundle
from appban.knowledge.layout import PACKAGED, PARTS, KnowledgeRoot, resolve_knowledge
from appban.rulebook.loader import load_rulebook

runner = CliRunner()
MADE = "2026-03-01T00:00:00Z"
CHECK = ["check", "--app", "tiktok", "--transaction", "internet_hosting", "--where", "US",
         "--at", "2020-11-12T23:59:00-05:00", "--json"]  # fmt: skip


@dataclass
class Home:
    base: Path
    env: dict[str, str]
    key: Path  # the trusted private key
    public: str

    @property
    def installed(self) -> Path:
        return self.base / "data" / "appban" / "knowledge"

    def versions(self) -> list[str]:
        if not self.installed.is_dir():
            return []
        return sorted(p.name for p in self.installed.iterdir() if not p.name.startswith("."))

    def leftovers(self) -> list[str]:
        """Anything in the installed directory but versions, the pin and the lock file."""
        if not self.installed.is_dir():
            return []
        return sorted(p.name for p in self.installed.iterdir() if p.name not in {".lock", "pinned", *self.versions()})


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def appban(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line in a process of its own, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from appban.cli import main; main()", *args],
        env=home.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    env = dict(os.environ)
    for name in ("config", "data", "cache"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(f"XDG_{name.upper()}_HOME", str(tmp_path / name))
        env[f"XDG_{name.upper()}_HOME"] = str(tmp_path / name)
    monkeypatch.delenv("APPBAN_CACHE_DIR", raising=False)
    env.pop("APPBAN_CACHE_DIR", None)
    code, output = cli("keys", "generate", "-o", str(tmp_path / "keys"))
    assert code == 0, output
    public = next(line for line in output.splitlines() if line.startswith("ed25519:"))
    code, output = cli("keys", "trust", public)
    assert code == 0, output
    return Home(tmp_path, env, tmp_path / "keys" / "appban-bundle-key.pem", public)


def knowledge_copy(folder: Path) -> Path:
    """The packaged knowledge laid out as a bundle holds it, in `folder`, to be edited."""
    for part in PARTS:
        source, target = part.packaged_path(), folder / part.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
        else:
            shutil.copyfile(source, target)
    return folder


def amended(folder: Path, words: str = "Amended") -> Path:
    """A copy of the knowledge whose rulebook differs (one instrument's title), so its version differs."""
    knowledge_copy(folder)
    path = folder / "rulebook" / "instruments" / "eo-13942.yaml"
    path.write_text(path.read_text().replace("title: >-\n  ", f"title: >-\n  {words} ", 1))
    return folder


def make(home: Home, out: Path, version: str, source: Path | None = None, key: Path | None = None) -> Path:
    args = ["rules", "bundle", "-o", str(out), "--key", str(key or home.key), "--version", version, "--made", MADE]
    code, output = cli(*args, *(["--from", str(source)] if source else []))
    assert code == 0, output
    return out


def manifest_of(path: Path) -> dict[str, object]:
    with tarfile.open(path) as archive:
        stream = archive.extractfile("manifest.json")
        assert stream is not None
        return dict(json.loads(stream.read()))


# --- hostile archives: a valid bundle's members, changed, with others added ---------------------------------


def repack(
    source: Path,
    target: Path,
    *,
    data: dict[str, bytes] | None = None,
    manifest: Callable[[dict[str, object]], None] | None = None,
    sign_with: Path | None = None,
    extra: list[tarfile.TarInfo] | None = None,
) -> Path:
    """`source` rewritten: member contents replaced (`data`), the manifest edited (and signed again with
    `sign_with`, else left with its old signature), and `extra` members appended."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with tarfile.open(source) as archive:
        for info in archive.getmembers():
            stream = archive.extractfile(info)
            assert stream is not None
            members.append((info, stream.read()))
    contents = {info.name: body for info, body in members}
    for name, body in (data or {}).items():
        contents[name] = body
    if manifest is not None:
        document = json.loads(contents["manifest.json"])
        manifest(document)
        contents["manifest.json"] = json.dumps(document).encode()
        if sign_with is not None:
            key = load_pem_private_key(sign_with.read_bytes(), password=None)
            contents["manifest.sig"] = base64.b64encode(key.sign(contents["manifest.json"])) + b"\n"  # type: ignore[union-attr,call-arg]
    with tarfile.open(target, "w:gz") as archive:
        for info, _ in members:
            body = contents[info.name]
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
        for info in extra or []:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return target


def _member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


def _rehash(path: str, body: bytes) -> Callable[[dict[str, object]], None]:
    def edit(document: dict[str, object]) -> None:
        for entry in document["files"]:  # type: ignore[attr-defined]
            if entry["path"] == path:
                entry["sha256"], entry["size"] = hashlib.sha256(body).hexdigest(), len(body)

    return edit


# --- keys ------------------------------------------------------------------------------------------------------


def test_keys_generate_trust_and_list(home: Home) -> None:
    assert re.fullmatch(r"ed25519:[A-Za-z0-9+/]{43}=", home.public)
    assert home.key.stat().st_mode & 0o777 == 0o600
    assert (home.key.parent / "appban-bundle-key.pub").read_text().strip() == home.public
    code, output = cli("keys", "generate", "-o", str(home.key.parent))
    assert code == 2 and "already exists" in output  # a signing key is never overwritten
    assert home.key.stat().st_mode & 0o777 == 0o600
    code, output = cli("keys", "list", "--json")
    document = json.loads(output)
    assert code == 0 and document["keys"] == [home.public]
    assert document["file"] == str(home.base / "config" / "appban" / "trusted-keys")
    code, output = cli("keys", "trust", home.public)
    assert code == 0 and "trusted already" in output
    code, output = cli("keys", "trust", "ed25519:not-a-key")
    assert code == 2 and "PUBKEY" in output and "not a public key" in output


# --- packing ---------------------------------------------------------------------------------------------------


def test_the_same_inputs_give_the_same_bytes(home: Home, tmp_path: Path) -> None:
    first = make(home, tmp_path / "a.tar.gz", "2026.03.01-1")
    second = make(home, tmp_path / "b.tar.gz", "2026.03.01-1")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as archive:
        members = archive.getmembers()
    names = [m.name for m in members]
    assert names[:2] == ["manifest.json", "manifest.sig"]
    assert names[2:] == sorted(names[2:]) and all(n.startswith("data/") for n in names[2:])
    assert {(m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, "", "", 0o644)}
    assert {m.mtime for m in members} == {1772323200}  # --made
    manifest = manifest_of(first)
    assert manifest["version"] == "2026.03.01-1" and manifest["made"] == MADE and manifest["key"] == home.public
    assert manifest["rulebook_version"] == load_rulebook(PACKAGED.path("rulebook")).version
    assert manifest["schema"] == bundle.READABLE_SCHEMA
    files = {entry["path"]: entry for entry in manifest["files"]}  # type: ignore[attr-defined]
    facts = PACKAGED.path("rulebook") / "facts.yaml"
    assert files["rulebook/facts.yaml"]["sha256"] == hashlib.sha256(facts.read_bytes()).hexdigest()
    assert {"network/indicators.yaml", "code/signatures.yaml", "payments/markers.yaml", "cases.yaml"} <= set(files)
    assert any(path.startswith("identity/") for path in files)


def test_the_changelog_lists_what_changed_since_the_older_knowledge(home: Home, tmp_path: Path) -> None:
    source = knowledge_copy(tmp_path / "k")
    (source / "rulebook" / "instruments" / "eo-14352.yaml").unlink()
    made = make(home, tmp_path / "b.tar.gz", "2026.03.01-1", source)
    code, output = cli("rules", "bundle", "-o", str(tmp_path / "c.tar.gz"), "--key", str(home.key), "--from",
                       str(source), "--since", "packaged", "--made", MADE)  # fmt: skip
    assert code == 0, output
    changelog = manifest_of(tmp_path / "c.tar.gz")["changelog"]
    assert isinstance(changelog, dict) and changelog["since"] == "packaged"
    assert {"part": "rulebook", "section": "instruments", "key": "eo-14352", "change": "removed"}.items() <= next(
        e for e in changelog["entries"] if e["key"] == "eo-14352"
    ).items()
    assert manifest_of(made)["changelog"] is None
    assert manifest_of(tmp_path / "c.tar.gz")["version"] == "2026.03.01-1"  # the made date, numbered from 1


# --- refusals --------------------------------------------------------------------------------------------------


def _untrusted(home: Home, good: Path, tmp: Path) -> Path:
    code, output = cli("keys", "generate", "-o", str(tmp / "other"))
    assert code == 0, output
    return make(home, tmp / "untrusted.tar.gz", "2026.03.01-1", key=tmp / "other" / "appban-bundle-key.pem")


def _flip_one_byte(home: Home, good: Path, tmp: Path) -> Path:
    facts = (PACKAGED.path("rulebook") / "facts.yaml").read_bytes()
    return repack(good, tmp / "tampered.tar.gz", data={"data/rulebook/facts.yaml": facts.replace(b"a", b"b", 1)})


def _new_manifest_old_signature(home: Home, good: Path, tmp: Path) -> Path:
    return repack(good, tmp / "resigned.tar.gz", manifest=lambda m: m.update(made="2030-01-01T00:00:00Z"))


def _truncated(home: Home, good: Path, tmp: Path) -> Path:
    target = tmp / "truncated.tar.gz"
    target.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return target


def _gzip_tail_cut(home: Home, good: Path, tmp: Path) -> Path:
    target = tmp / "tail.tar.gz"
    target.write_bytes(good.read_bytes()[:-6])  # the CRC and length gzip ends with
    return target


def _newer_schema(home: Home, good: Path, tmp: Path) -> Path:
    return repack(good, tmp / "schema.tar.gz", manifest=lambda m: m.update(schema=2), sign_with=home.key)


def _unlisted(home: Home, good: Path, tmp: Path) -> Path:
    return repack(good, tmp / "unlisted.tar.gz", extra=[_member("data/rulebook/instruments/zz.yaml", size=5)])


def _link(home: Home, good: Path, tmp: Path) -> Path:
    member = _member("data/rulebook/instruments/zz.yaml", tarfile.SYMTYPE, link="/etc/passwd")
    return repack(good, tmp / "link.tar.gz", extra=[member])


def _traversal(home: Home, good: Path, tmp: Path) -> Path:
    return repack(good, tmp / "traversal.tar.gz", extra=[_member("data/../../../evil.yaml", size=5)])


def _device(home: Home, good: Path, tmp: Path) -> Path:
    return repack(good, tmp / "device.tar.gz", extra=[_member("data/rulebook/zero", tarfile.CHRTYPE)])


def _unreadable_yaml(home: Home, good: Path, tmp: Path) -> Path:
    body = b"facts: [unclosed\n"
    return repack(good, tmp / "yaml.tar.gz", data={"data/rulebook/facts.yaml": body},
                  manifest=_rehash("rulebook/facts.yaml", body), sign_with=home.key)  # fmt: skip


def _failing_case(home: Home, good: Path, tmp: Path) -> Path:
    source = knowledge_copy(tmp / "k")
    cases = source / "cases.yaml"
    text = cases.read_text()
    wrong = "expect: {verdict: not_prohibited, enforcement: not_applicable}"
    assert wrong in text
    cases.write_text(text.replace(wrong, "expect: {verdict: prohibited}", 1))
    return make(home, tmp / "cases.tar.gz", "2026.03.01-1", source)


REFUSALS: dict[str, tuple[Callable[[Home, Path, Path], Path], str]] = {
    "signed by an untrusted key": (_untrusted, "which is not among the trusted keys"),
    "a data file altered": (_flip_one_byte, "member 'data/rulebook/facts.yaml': its sha256 differs"),
    "the manifest altered": (_new_manifest_old_signature, "manifest.sig: the signature does not verify"),
    "truncated": (_truncated, "truncated or corrupt archive"),
    "gzip's tail cut": (_gzip_tail_cut, "truncated or corrupt archive"),
    "a newer schema": (_newer_schema, "needs knowledge schema 2; this appban reads up to schema 1"),
    "a member the manifest does not list": (_unlisted, "'data/rulebook/instruments/zz.yaml': not listed"),
    "a link": (_link, "'data/rulebook/instruments/zz.yaml': is a link"),
    "a path out of the directory": (_traversal, "'data/../../../evil.yaml': an unsafe path"),
    "a device file": (_device, "'data/rulebook/zero': is a device file"),
    "knowledge that does not load": (_unreadable_yaml, "its knowledge cannot be read"),
    "its own case failing": (_failing_case, "1 of its own cases fail"),
}


@pytest.mark.parametrize("damage", list(REFUSALS))
def test_a_refused_bundle_installs_nothing(damage: str, home: Home, tmp_path: Path) -> None:
    good = make(home, tmp_path / "good.tar.gz", "2026.03.01-1")
    build, expected = REFUSALS[damage]
    bad = build(home, good, tmp_path)
    code, output = cli("rules", "update", str(bad))
    assert code == 2, output
    flat = " ".join(output.split())
    assert str(bad) in flat and expected in flat, flat
    assert home.versions() == [] and home.leftovers() == []
    code, output = cli("rules", "update", str(good))  # and the good one still installs
    assert code == 0, output
    assert home.versions() == ["2026.03.01-1"] and home.leftovers() == []


def test_an_unreadable_trusted_keys_file_refuses_with_its_line(home: Home, tmp_path: Path) -> None:
    good = make(home, tmp_path / "good.tar.gz", "2026.03.01-1")
    trusted = home.base / "config" / "appban" / "trusted-keys"
    trusted.write_text(trusted.read_text() + "not a key\n")
    code, output = cli("rules", "update", str(good))
    assert code == 2 and f"{trusted}:2: not a public key" in " ".join(output.split())
    assert home.versions() == [] and home.leftovers() == []


@pytest.mark.parametrize("kind", ["directory", "FIFO", "missing"])
def test_a_bundle_path_that_is_no_file_is_refused(kind: str, home: Home, tmp_path: Path) -> None:
    path = tmp_path / "not-a-bundle"
    if kind == "directory":
        path.mkdir()
    elif kind == "FIFO":
        os.mkfifo(path)  # opening it must not wait for a writer
    code, output = cli("rules", "update", str(path))
    expected = "cannot open: No such file or directory" if kind == "missing" else "not a regular file"
    assert code == 2 and f"{path}: {expected}" in " ".join(output.split())
    assert home.versions() == [] and home.leftovers() == []


def test_an_archive_expanding_past_the_cap_is_refused(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = make(home, tmp_path / "good.tar.gz", "2026.03.01-1")
    monkeypatch.setattr(bundle, "MAX_EXPANDED_BYTES", 100_000)
    code, output = cli("rules", "update", str(good))
    assert code == 2 and "expands to more than 100,000 bytes" in " ".join(output.split())
    assert home.versions() == [] and home.leftovers() == []


def test_a_downgrade_is_refused_unless_allowed(home: Home, tmp_path: Path) -> None:
    older = make(home, tmp_path / "old.tar.gz", "2026.03.01-1")
    newer = make(home, tmp_path / "new.tar.gz", "2026.03.01-2", amended(tmp_path / "k"))
    assert cli("rules", "update", str(newer))[0] == 0
    code, output = cli("rules", "update", str(older))
    assert code == 2
    assert "version 2026.03.01-1 is not newer than the installed 2026.03.01-2" in " ".join(output.split())
    assert home.versions() == ["2026.03.01-2"] and home.leftovers() == []
    code, output = cli("rules", "update", str(older), "--allow-downgrade", "--json")
    assert code == 0 and json.loads(output)["pinned"] is True  # the older one is now in force
    versions = json.loads(cli("rules", "versions", "--json")[1])["versions"]
    assert [(v["version"], v["active"], v["pinned"]) for v in versions] == [
        ("2026.03.01-2", False, False), ("2026.03.01-1", True, True), ("packaged", False, False)
    ]  # fmt: skip


def test_what_a_killed_install_left_is_swept_once_stale(home: Home, tmp_path: Path) -> None:
    home.installed.mkdir(parents=True)
    stale, fresh = home.installed / ".appban-bundle-stale", home.installed / ".appban-bundle-fresh"
    for left in (stale, fresh):
        (left / "data").mkdir(parents=True)
    os.utime(stale, (0, 0))
    assert cli("rules", "update", str(make(home, tmp_path / "a.tar.gz", "2026.03.01-1")))[0] == 0
    assert not stale.exists() and fresh.exists()  # one a day old goes; one that may be in use stays


def test_a_version_is_never_replaced_by_other_contents(home: Home, tmp_path: Path) -> None:
    assert cli("rules", "update", str(make(home, tmp_path / "a.tar.gz", "2026.03.01-1")))[0] == 0
    other = make(home, tmp_path / "b.tar.gz", "2026.03.01-1", amended(tmp_path / "k"))
    code, output = cli("rules", "update", str(other), "--allow-downgrade")
    assert code == 2 and "installed already with other contents" in " ".join(output.split())
    code, output = cli("rules", "update", str(tmp_path / "a.tar.gz"))
    assert code == 0 and "installed already" in output


# --- installing at once, in force, pinned ----------------------------------------------------------------------


def _whole(home: Home, version: str) -> None:
    directory = home.installed / version
    manifest = json.loads((directory / "manifest.json").read_bytes())
    listed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    found = {p.relative_to(directory / "data").as_posix(): p for p in (directory / "data").rglob("*") if p.is_file()}
    assert set(found) == set(listed)
    assert all(hashlib.sha256(found[path].read_bytes()).hexdigest() == digest for path, digest in listed.items())


def test_processes_updating_at_once_leave_whole_versions(home: Home, tmp_path: Path) -> None:
    first = make(home, tmp_path / "a.tar.gz", "2026.03.01-1")
    args = [sys.executable, "-c", "from appban.cli import main; main()", "rules", "update"]
    processes = [
        subprocess.Popen([*args, str(first)], env=home.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in processes]
    assert [code for code, _ in results] == [0, 0, 0], results
    said = sorted(" ".join(text.split()).split(":")[0] for _, text in results)
    assert said == ["installed", "installed already", "installed already"]
    assert home.versions() == ["2026.03.01-1"] and home.leftovers() == []
    _whole(home, "2026.03.01-1")


def test_after_an_update_answers_come_from_the_bundle_and_name_it(home: Home, tmp_path: Path) -> None:
    source = amended(tmp_path / "k")
    new_version = load_rulebook(source / "rulebook").version
    packaged_version = load_rulebook(PACKAGED.path("rulebook")).version
    assert new_version != packaged_version
    made = make(home, tmp_path / "b.tar.gz", "2026.03.02-1", source)
    done = appban(home, "rules", "update", str(made), "--json")
    assert done.returncode == 0, done.stderr
    bundle_id = json.loads(done.stdout)["bundle"]
    assert re.fullmatch(r"2026\.03\.02-1 sha256:[0-9a-f]{12}", bundle_id)

    answer = json.loads(appban(home, *CHECK).stdout)
    assert (answer["rulebook_version"], answer["bundle"]) == (new_version, bundle_id)
    listed = json.loads(appban(home, "rules", "list", "--json").stdout)
    assert (listed["rulebook_version"], listed["bundle"]) == (new_version, bundle_id)
    assert "Amended" in next(i["title"] for i in listed["instruments"] if i["id"] == "eo-13942")
    assert f"bundle {bundle_id}" in appban(home, "--version").stdout

    assert appban(home, "rules", "use", "packaged").returncode == 0
    answer = json.loads(appban(home, *CHECK).stdout)
    assert (answer["rulebook_version"], answer["bundle"]) == (packaged_version, None)
    assert "packaged" in appban(home, "--version").stdout

    assert appban(home, "rules", "use", "2026.03.02-1").returncode == 0
    assert json.loads(appban(home, *CHECK).stdout)["bundle"] == bundle_id
    wrong = appban(home, "rules", "use", "2026.09.09-1")
    assert wrong.returncode == 2 and "not installed (installed: 2026.03.02-1)" in wrong.stderr
    assert appban(home, "rules", "use", "newest").returncode == 0
    assert json.loads(appban(home, *CHECK).stdout)["bundle"] == bundle_id


# --- naming knowledge; fetching it -----------------------------------------------------------------------------


def test_resolve_knowledge_names_every_kind_of_source(home: Home, tmp_path: Path) -> None:
    made = make(home, tmp_path / "b.tar.gz", "2026.03.01-1")
    with resolve_knowledge("packaged") as root:
        assert root == PACKAGED
    with resolve_knowledge(str(tmp_path)) as root:
        assert root == KnowledgeRoot(tmp_path)
    with resolve_knowledge(str(made)) as root:
        extracted = root.path("rulebook")
        assert load_rulebook(extracted).version == load_rulebook(PACKAGED.path("rulebook")).version
    assert not extracted.exists()  # removed when the block ends
    assert cli("rules", "update", str(made))[0] == 0
    with resolve_knowledge("2026.03.01-1") as root, resolve_knowledge("installed") as active:
        assert root == active == KnowledgeRoot(home.installed / "2026.03.01-1" / "data")
    with pytest.raises(ValueError, match="not a bundle file, a knowledge directory"), resolve_knowledge("nothing"):
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server over tmp_path/www."""
    (tmp_path / "www").mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path / "www"), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


def test_update_from_a_url(home: Home, tmp_path: Path, served: str) -> None:
    make(home, tmp_path / "www" / "b.tar.gz", "2026.03.01-1")
    code, output = cli("rules", "update", f"{served}/missing.tar.gz")
    assert code == 2 and "cannot download: HTTP 404" in output
    code, output = cli("rules", "update", f"{served}/b.tar.gz")
    assert code == 0, output
    assert home.versions() == ["2026.03.01-1"] and home.leftovers() == []
    code, output = cli("rules", "update", "ftp://example.org/b.tar.gz")
    assert code == 2 and "only http:// and https://" in output


# --- the audit store -------------------------------------------------------------------------------------------


def test_audit_records_name_their_bundle_and_older_records_read_as_before(home: Home, tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from appban.engine.decide import decide
    from appban.store import AuditStore
    from appban.store.audit import MIGRATIONS
    from appban.store.verify import verify_store

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    packaged = load_rulebook(PACKAGED.path("rulebook"))
    question = ("tiktok", "internet_hosting", "US", "2020-11-12T23:59:00-05:00")
    with AuditStore(url) as store:  # a store as it was before bundles: the column is not there yet
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        engine = create_engine(url)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")
        engine.dispose()
    with AuditStore(url) as store:  # opened again: migrated to the head
        answer = decide(*question, rulebook=packaged).to_json_dict()
        old = store.record_decision(kind="decide", input={}, result=answer, rulebook=packaged, instant=None, caller="x")
    made = make(home, tmp_path / "b.tar.gz", "2026.03.02-1", amended(tmp_path / "k"))
    assert cli("rules", "update", str(made))[0] == 0
    installed = load_rulebook(home.installed / "2026.03.02-1" / "data" / "rulebook")
    bundle_id = json.loads(cli("rules", "versions", "--json")[1])["versions"][0]["bundle"]
    with AuditStore(url) as store:
        answer = decide(*question, rulebook=installed).to_json_dict()
        new = store.record_decision(kind="decide", input={}, result=answer, rulebook=installed, instant=None, caller="")
        run = store.create_run(kind="network", filename="f", caller="x", rulebook_version=installed.version,
                               options={}, owner="o", bundle=bundle_id)  # fmt: skip
        first, second = store.decision(old), store.decision(new)
        assert first is not None and second is not None
        assert (first.bundle, first.result["bundle"]) == (None, None)
        assert (second.bundle, second.result["bundle"]) == (bundle_id, bundle_id)
        assert second.rulebook_version == installed.version != packaged.version
        recorded_run = store.run(run)
        assert recorded_run is not None and recorded_run.to_json_dict()["bundle"] == bundle_id
    assert verify_store(url).problem is None


# --- start-up --------------------------------------------------------------------------------------------------

PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)) + '\\n'))\n"
    "sys.argv = ['appban', *sys.argv[1:]]\n"
    "from appban.cli import main\n"
    "main()\n"
)


@pytest.mark.parametrize("args", [CHECK, ["rules", "list", "--json"], ["--version"]], ids=" ".join)
def test_reading_the_installed_state_imports_no_cryptography_or_archive_code(
    args: list[str], home: Home, tmp_path: Path
) -> None:
    assert cli("rules", "update", str(make(home, tmp_path / "b.tar.gz", "2026.03.01-1")))[0] == 0
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=home.env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2026.03.01-1 sha256:" in done.stdout  # answered under the installed bundle
    line = next(line for line in done.stderr.splitlines() if line.startswith("MODULES "))
    loaded = set(line.split()[1:])
    heavy = {"cryptography", "tarfile", "gzip", "appban.knowledge.bundle", "appban.knowledge.keys"}
    assert not loaded & heavy, sorted(loaded & heavy)

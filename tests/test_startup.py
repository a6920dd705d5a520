"""Start-up: what the quick commands import, the narrowed command tree, and the compiled rulebook cache."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appban.cli import _command_name, app, narrowed
from appban.rulebook import compiled, loader
from appban.rulebook.loader import Rulebook, load_rulebook

CHECK = ["check", "--app", "tiktok", "--transaction", "internet_hosting", "--where", "US",
         "--at", "2020-11-12T23:59:00-05:00"]  # fmt: skip
LIGHT = {
    "check": CHECK,
    "check --format json": [*CHECK, "--format", "json"],
    "timeline": ["timeline", "--app", "tiktok", "--where", "US"],
    "timeline --format json": ["timeline", "--app", "tiktok", "--where", "US", "--format", "json"],
    "rules list": ["rules", "list"],
    "--help": ["--help"],
}
# Libraries no quick command may load: the data frame, database, service and batch stacks.
HEAVY = {"pandas", "sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn", "polars", "duckdb", "pyarrow", "numpy",
         "lxml", "rapidfuzz", "cyclonedx"}  # fmt: skip

# Runs the command line as the `appban` script does, then names every module loaded, on standard error.
PROBE = textwrap.dedent(
    """
    import atexit, sys
    atexit.register(lambda: sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n"))
    sys.argv = ["appban", *sys.argv[1:]]
    from appban.cli import main
    main()
    """
)


def _modules_loaded(args: list[str], cache_dir: Path, **env: str) -> set[str]:
    environment = {key: value for key, value in os.environ.items() if key != "APPBAN_NO_CACHE"}
    environment.update({"APPBAN_CACHE_DIR": str(cache_dir), **env})
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "the command printed nothing"
    line = next(line for line in done.stderr.splitlines() if line.startswith("MODULES "))
    return set(line.removeprefix("MODULES ").split())


def _tops(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("name", list(LIGHT))
def test_a_quick_command_loads_no_heavy_library(name: str, tmp_path: Path) -> None:
    _modules_loaded(LIGHT[name], tmp_path)  # the first run may build the compiled rulebook
    modules = _modules_loaded(LIGHT[name], tmp_path)
    loaded = _tops(modules)
    if name != "--help":  # the rulebook commands are law's: the other command modules stay unread
        others = {f"appban.cli.{module}" for module in ("audit", "code", "inventory", "network", "payments", "serve")}
        assert not modules & others, f"{name} imports {sorted(modules & others)}"
    assert not loaded & HEAVY, f"{name} loads {sorted(loaded & HEAVY)}"
    assert "yaml" not in loaded, f"{name} parses YAML although the compiled rulebook is there"
    # pydantic checks the rulebook's files and the service's bodies: the compiled rulebook and the engine's
    # answers are plain records (appban.plain), printed and serialised without it.
    assert not loaded & {"pydantic", "pydantic_core"}, f"{name} loads {sorted(loaded & {'pydantic', 'pydantic_core'})}"
    # The compiled rulebook keeps every instant it states already resolved: no time zone is read to answer.
    assert "zoneinfo" not in loaded, f"{name} resolves a time zone"


def test_without_the_cache_the_rulebook_comes_from_yaml(tmp_path: Path) -> None:
    loaded = _tops(_modules_loaded(CHECK, tmp_path, APPBAN_NO_CACHE="1"))
    assert "yaml" in loaded
    assert not loaded & HEAVY
    assert not list(tmp_path.iterdir())  # nothing written


# --- the narrowed command tree -------------------------------------------------------------------------


def _names() -> list[str]:
    names = [name for info in app.registered_commands if (name := _command_name(info)) is not None]
    return names + [info.name for info in app.registered_groups if info.name]


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = {line.split()[1] for line in result.output.splitlines() if line.startswith("│ ") and len(line.split()) > 1}
    assert set(_names()) <= listed
    assert {"check", "timeline", "rules", "screen", "export", "scan", "decide", "serve"} <= set(_names())


@pytest.mark.parametrize("name", _names())
def test_a_narrowed_app_helps_as_the_full_one(name: str) -> None:
    narrow = narrowed([name, "--help"])
    assert narrow is not app
    assert [*narrow.registered_commands, *narrow.registered_groups]  # the command itself is there
    full = CliRunner().invoke(app, [name, "--help"], terminal_width=200)
    alone = CliRunner().invoke(narrow, [name, "--help"], terminal_width=200)
    assert (alone.exit_code, alone.output) == (full.exit_code, full.output)


def test_a_narrowed_app_fails_as_the_full_one() -> None:
    args = [
        "check",
        "--app",
        "tiktok",
        "--transaction",
        "no_such_category",
        "--where",
        "US",
        "--at",
        "2020-01-01T00:00:00Z",
    ]
    full = CliRunner().invoke(app, args)
    alone = CliRunner().invoke(narrowed(args), args)
    assert full.exit_code == alone.exit_code == 2
    assert alone.output == full.output
    wrong = ["rules", "lst"]
    assert CliRunner().invoke(narrowed(wrong), wrong).output == CliRunner().invoke(app, wrong).output


def test_a_group_is_narrowed_to_the_subcommand_named() -> None:
    """`appban rules list` converts one command for click, not the whole group; it helps and fails alike."""
    (group,) = narrowed(["rules", "list"]).registered_groups
    assert group.typer_instance is not None
    assert [_command_name(info) for info in group.typer_instance.registered_commands] == ["list"]
    (whole,) = narrowed(["rules", "--help"]).registered_groups
    assert whole.typer_instance is not None and len(whole.typer_instance.registered_commands) > 1
    for args in (["rules", "list", "--help"], ["rules", "list", "--formt", "json"], ["rules", "show", "--help"]):
        full = CliRunner().invoke(app, args, terminal_width=200)
        alone = CliRunner().invoke(narrowed(args), args, terminal_width=200)
        assert (alone.exit_code, alone.output) == (full.exit_code, full.output), args


HOMES_PROBE = textwrap.dedent(
    """
    import json
    from importlib import import_module
    from appban.cli import COMMAND_MODULES
    from appban.cli.apps import app
    from appban.cli import _command_name

    def names():
        found = {_command_name(info): [] for info in app.registered_commands}
        for group in app.registered_groups:
            found[group.name] = [_command_name(info) for info in group.typer_instance.registered_commands]
        return found

    homes, before = {}, names()
    for module in COMMAND_MODULES:
        import_module("appban.cli." + module)
        after = names()
        for name, subcommands in after.items():
            if subcommands != before.get(name, []) or name not in before:
                homes.setdefault(name, []).append(module)
        before = after
    print(json.dumps(homes))
    """
)


def test_each_command_is_imported_from_the_modules_that_register_it() -> None:
    """HOMES names every module that adds to a command or group, in import order; nothing is left out."""
    from appban.cli import HOMES

    done = subprocess.run([sys.executable, "-c", HOMES_PROBE], capture_output=True, text=True, timeout=120, check=True)
    found = {name: tuple(modules) for name, modules in json.loads(done.stdout).items()}
    assert found == HOMES


def test_a_lazily_registered_command_helps_as_in_the_full_app(tmp_path: Path) -> None:
    """In a fresh process `appban screen --help` imports only the screens' modules and says the same."""
    full = CliRunner().invoke(app, ["screen", "--help"], prog_name="appban", terminal_width=80)
    env = {**os.environ, "COLUMNS": "80", "APPBAN_CACHE_DIR": str(tmp_path)}
    env.pop("APPBAN_NO_CACHE", None)
    done = subprocess.run([sys.executable, "-c", PROBE, "screen", "--help"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == full.output
    loaded = set(done.stderr.split("MODULES ", 1)[1].split())
    assert {"appban.cli.inventory", "appban.cli.network", "appban.cli.payments"} <= loaded
    assert not loaded & {"appban.cli.audit", "appban.cli.law", "appban.cli.code", "appban.cli.serve"}


def test_no_command_or_an_unknown_one_gets_the_full_app() -> None:
    assert narrowed([]) is app
    assert narrowed(["--version"]) is app
    assert narrowed(["chek"]) is app  # its error suggests "check", which it must know


def test_the_payments_help_names_the_fields_the_screener_takes() -> None:
    from appban.cli import payments as payments_cli
    from appban.screen import payments as payments_screen

    assert payments_cli.SETTABLE == payments_screen.SETTABLE


# --- the compiled rulebook cache -----------------------------------------------------------------------


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("APPBAN_CACHE_DIR", str(directory))
    monkeypatch.delenv("APPBAN_NO_CACHE", raising=False)
    return directory


@pytest.fixture()
def yaml_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every rulebook read from YAML during the test."""
    reads: list[Path] = []
    original = loader._load_yaml

    def counting(root: Path, extra: list[Path]) -> Rulebook:
        reads.append(root)
        return original(root, extra)

    monkeypatch.setattr(loader, "_load_yaml", counting)
    return reads


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"rulebook-*{compiled.SUFFIX}"))


def _same(a: Rulebook, b: Rulebook) -> None:
    assert a.version == b.version
    assert list(a.instruments) == list(b.instruments)
    assert all(a.instruments[key] == b.instruments[key] for key in a.instruments)
    assert (a.subjects, a.places, a.facts) == (b.subjects, b.places, b.facts)
    assert list(a.subjects.subjects) == list(b.subjects.subjects)


def test_the_cached_rulebook_is_the_rulebook(cache: Path, yaml_reads: list[Path], rulebook_copy: Path) -> None:
    first = load_rulebook(rulebook_copy)
    assert len(yaml_reads) == 1
    [written] = _files(cache)
    assert written.stat().st_mode & 0o777 == 0o600
    again = load_rulebook(rulebook_copy)
    assert len(yaml_reads) == 1  # read from the cache
    assert again is not first
    _same(again, first)
    assert again.root == rulebook_copy
    assert again.uncertainties() == first.uncertainties()


def test_a_change_to_the_rulebook_is_a_new_key(cache: Path, yaml_reads: list[Path], rulebook_copy: Path) -> None:
    before = load_rulebook(rulebook_copy)
    instrument = next(iter(sorted((rulebook_copy / "instruments").glob("*.yaml"))))
    text = instrument.read_text(encoding="utf-8")
    title = next(line for line in text.splitlines() if line.startswith("title:"))
    instrument.write_text(text.replace(title, "title: A title changed after the cache was written"), encoding="utf-8")
    after = load_rulebook(rulebook_copy)
    assert len(yaml_reads) == 2
    assert after.instruments[instrument.stem].title == "A title changed after the cache was written"
    assert after.version != before.version
    assert len(_files(cache)) == 2
    # A new file in the rulebook changes the key too, and a broken one is reported, never served from the cache.
    (rulebook_copy / "instruments" / "zz-broken.yaml").write_text("id: [\n", encoding="utf-8")
    with pytest.raises(loader.RulebookError, match=r"zz-broken\.yaml"):
        load_rulebook(rulebook_copy)


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "body edited", "header edited", "empty", "group writable"],
)
def test_a_damaged_cache_is_ignored_and_rebuilt(
    damage: str, cache: Path, yaml_reads: list[Path], rulebook_copy: Path
) -> None:
    good = load_rulebook(rulebook_copy)
    [path] = _files(cache)
    data = path.read_bytes()
    head, _, body = data.partition(b"\n")
    if damage == "garbage":
        path.write_bytes(b"\x80\x04not json at all")
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "body edited":
        middle = len(body) // 2
        path.write_bytes(head + b"\n" + body[:middle] + bytes([body[middle] ^ 1]) + body[middle + 1 :])
    elif damage == "header edited":
        header = json.loads(head)
        header["version"] = "sha256:0000000000000000"
        path.write_bytes(json.dumps(header).encode() + b"\n" + body)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.chmod(0o664)
    again = load_rulebook(rulebook_copy)
    assert len(yaml_reads) == 2  # not trusted: read from YAML
    _same(again, good)
    [rewritten] = _files(cache)
    assert rewritten.stat().st_mode & 0o777 == 0o600
    _same(load_rulebook(rulebook_copy), good)
    assert len(yaml_reads) == 2  # and the rebuilt file is used


def test_an_edit_with_a_new_checksum_is_refused(cache: Path, yaml_reads: list[Path], rulebook_copy: Path) -> None:
    """A file is read without validation only when it is signed with the user's secret: an edit is not."""
    load_rulebook(rulebook_copy)
    [path] = _files(cache)
    head, _, body = path.read_bytes().partition(b"\n")
    forged = body.replace(b"Executive Order", b"Executive Ordex", 1)
    assert forged != body
    header = json.loads(head)
    header["body_sha256"] = hashlib.sha256(forged).hexdigest()  # what the unsigned format of old checked
    path.write_bytes(json.dumps(header).encode() + b"\n" + forged)
    load_rulebook(rulebook_copy)
    assert len(yaml_reads) == 2


class _Planted:
    """An object whose unpickling writes a file: what a planted cache file would try."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path, str]]:
        return (Path.write_text, (self.marker, "ran"))


def test_a_planted_pickle_is_never_unpickled(
    cache: Path, yaml_reads: list[Path], rulebook_copy: Path, tmp_path: Path
) -> None:
    """The body is unpickled only after its HMAC verifies: a file written without the secret runs nothing."""
    good = load_rulebook(rulebook_copy)
    [path] = _files(cache)
    head, _, _ = path.read_bytes().partition(b"\n")
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_Planted(live)))  # the payload does run when unpickled
    assert live.read_text() == "ran"
    marker = tmp_path / "planted-ran"
    header = json.loads(head)
    header.pop("mac")
    header["mac"] = hashlib.sha256(b"guess").hexdigest()
    path.write_bytes(json.dumps(header).encode() + b"\n" + pickle.dumps(_Planted(marker)))
    _same(load_rulebook(rulebook_copy), good)
    assert len(yaml_reads) == 2
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["another secret", "secret readable by others", "secret cut short", "no secret"])
def test_a_file_is_used_only_with_the_users_own_secret(
    damage: str, cache: Path, yaml_reads: list[Path], rulebook_copy: Path
) -> None:
    good = load_rulebook(rulebook_copy)
    secret = cache / "key"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_bytes()) == 32
    if damage == "another secret":
        secret.write_bytes(os.urandom(32))
    elif damage == "secret readable by others":
        secret.chmod(0o644)
    elif damage == "secret cut short":
        secret.write_bytes(secret.read_bytes()[:16])
    else:
        secret.unlink()
    _same(load_rulebook(rulebook_copy), good)
    assert len(yaml_reads) == 2
    if damage == "no secret":  # a new secret was made, the file signed with it and then used
        _same(load_rulebook(rulebook_copy), good)
        assert len(yaml_reads) == 2


def test_the_cached_rulebook_needs_no_validator(tmp_path: Path) -> None:
    """The point of signing: a command answering from the cache never validates the rulebook again."""
    first = _modules_loaded(CHECK, tmp_path)  # reads the YAML, validating it, and writes the cache
    second = _modules_loaded(CHECK, tmp_path)
    assert {"yaml", "pydantic"} <= _tops(first)
    assert not {"yaml", "pydantic", "pydantic_core"} & _tops(second)


def test_a_link_in_the_cache_is_not_followed(cache: Path, yaml_reads: list[Path], rulebook_copy: Path) -> None:
    load_rulebook(rulebook_copy)
    [path] = _files(cache)
    elsewhere = path.parent.parent / "elsewhere.json"
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(elsewhere)
    load_rulebook(rulebook_copy)
    assert len(yaml_reads) == 2
    assert not path.is_symlink()  # replaced by a file of its own
    assert elsewhere.read_bytes() == path.read_bytes()


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="changing a file's owner needs root")
def test_a_file_of_another_user_is_not_read(cache: Path, yaml_reads: list[Path], rulebook_copy: Path) -> None:
    load_rulebook(rulebook_copy)
    [path] = _files(cache)
    os.chown(path, 65534, 65534)
    load_rulebook(rulebook_copy)
    assert len(yaml_reads) == 2


def test_a_shared_cache_directory_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yaml_reads: list[Path], rulebook_copy: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("APPBAN_CACHE_DIR", str(shared))
    load_rulebook(rulebook_copy)
    load_rulebook(rulebook_copy)
    assert len(yaml_reads) == 2
    assert not list(shared.iterdir())


def test_the_cache_can_be_turned_off(
    cache: Path, monkeypatch: pytest.MonkeyPatch, yaml_reads: list[Path], rulebook_copy: Path
) -> None:
    load_rulebook(rulebook_copy)
    assert len(_files(cache)) == 1
    monkeypatch.setenv("APPBAN_NO_CACHE", "1")
    load_rulebook(rulebook_copy)
    assert len(yaml_reads) == 2  # the file there is not read
    for path in _files(cache):
        path.unlink()
    load_rulebook(rulebook_copy)
    assert not _files(cache)  # nor is one written


def test_a_cache_that_cannot_be_written_fails_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yaml_reads: list[Path], rulebook_copy: Path
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    monkeypatch.setenv("APPBAN_CACHE_DIR", str(not_a_directory / "cache"))
    _same(load_rulebook(rulebook_copy), load_rulebook(rulebook_copy))
    assert len(yaml_reads) == 2


def test_the_default_place_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("APPBAN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if sys.platform not in {"win32", "darwin"}:
        assert compiled.cache_dir() == tmp_path / "appban"
        monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG specification says to ignore it
        assert compiled.cache_dir() == Path.home() / ".cache" / "appban"


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from appban.rulebook import compiled
    from appban.rulebook.loader import _load_yaml

    root = Path(sys.argv[1])
    book = _load_yaml(root, [])
    key = compiled.cache_key(root)
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    sys.stdin.readline()  # all writers start together
    seen = 0
    for _ in range(40):
        compiled.store(book, key)
        found = compiled.load(root, key)
        assert found is not None and found.version == book.version, "a reader saw a broken cache"
        seen += 1
    print(seen)
    """
)


def test_concurrent_writers_leave_one_whole_file(cache: Path, yaml_reads: list[Path], rulebook_copy: Path) -> None:
    env = {**os.environ, "APPBAN_CACHE_DIR": str(cache)}
    env.pop("APPBAN_NO_CACHE", None)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(rulebook_copy)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        assert out.strip() == "40"
    assert len(_files(cache)) == 1
    assert not list(cache.glob(".rulebook-*"))  # no temporary file left
    load_rulebook(rulebook_copy)
    assert yaml_reads == []  # the file left is whole and used


def test_new_iso_3166_lists_are_a_new_key(rulebook_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Which places are valid comes from pycountry's ISO 3166 lists: another pycountry's lists, another key."""
    import importlib.machinery
    import importlib.util

    fake = tmp_path / "pycountry"
    (fake / "databases").mkdir(parents=True)
    (fake / "__init__.py").write_text("", encoding="utf-8")
    lists = fake / "databases" / "iso3166-2.json"
    lists.write_text('{"3166-2": []}', encoding="utf-8")
    (fake / "databases" / "iso3166-1.json").write_text('{"3166-1": []}', encoding="utf-8")
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> importlib.machinery.ModuleSpec | None:
        if name == "pycountry":
            return importlib.util.spec_from_file_location("pycountry", fake / "__init__.py")
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    before = compiled.cache_key(rulebook_copy)
    assert before == compiled.cache_key(rulebook_copy)
    lists.write_text('{"3166-2": [{"code": "US-ZZ"}]}', encoding="utf-8")
    assert compiled.cache_key(rulebook_copy) != before


def test_place_codes_from_the_cache_answer_as_pycountry_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command answering from the compiled rulebook checks --where against the codes the cache carries:
    the same answers as asking pycountry, for every two-letter code and every subdivision, in any case."""
    import itertools
    import string

    codes = loader.all_place_codes()
    pairs = ["".join(pair) for pair in itertools.product(string.ascii_uppercase, repeat=2)]
    asked = [*pairs, *(code.lower() for code in pairs), *codes, *(code.lower() for code in codes)]
    asked += ["US-ZZ", "USA", "U", "", "US-", "-MT", "GB-ENGX"]
    monkeypatch.setattr(loader, "_place_codes", None)
    from_pycountry = [loader.valid_place_code(code) for code in asked]
    loader.use_place_codes(codes)
    assert [loader.valid_place_code(code) for code in asked] == from_pycountry
    assert sum(from_pycountry) > 2 * 5000  # the lists were really asked


def test_a_command_answering_from_the_cache_does_not_import_pycountry(tmp_path: Path) -> None:
    first = _tops(_modules_loaded(CHECK, tmp_path))  # reads the YAML (asking pycountry) and writes the cache
    again = _tops(_modules_loaded(CHECK, tmp_path))
    assert "pycountry" in first
    assert "pycountry" not in again

"""The configuration file: where it is found, what it sets, and how a bad one is refused."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appban import config
from appban.cli import app, narrowed

runner = CliRunner()
AT = "2020-11-20T00:00:00Z"
WECHAT_JAVA = "import com.tencent.mm.opensdk.openapi.IWXAPI;\n"


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.ENV_VAR, raising=False)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    _write(repo / "android" / "src" / "Share.java", WECHAT_JAVA)
    return repo


# --- discovery -------------------------------------------------------------------------------------------


def test_the_closest_file_in_this_directory_or_above_is_found(tmp_path: Path) -> None:
    top = _write(tmp_path / "appban.toml", "where = 'IN'\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert config.find(deep) == top
    nearer = _write(tmp_path / "a" / "appban.toml", "where = 'US'\n")
    assert config.find(deep) == nearer  # the closest only: the one above is not merged in


def test_appban_toml_wins_over_pyproject_and_a_pyproject_without_the_table_is_passed_over(tmp_path: Path) -> None:
    _write(tmp_path / "pyproject.toml", "[tool.appban]\nwhere = 'IN'\n")
    inner = tmp_path / "inner"
    _write(inner / "pyproject.toml", "[project]\nname = 'x'\n[tool.ruff]\nline-length = 100\n")
    assert config.find(inner) == tmp_path / "pyproject.toml"
    dedicated = _write(tmp_path / "appban.toml", "where = 'US'\n")
    assert config.find(inner) == dedicated
    assert config.find(inner / "..") == dedicated


@pytest.mark.parametrize(
    "text",
    [
        "tool = { appban = { where = 'IN' } }\n",
        "tool.appban.where = 'IN'\n",
        "[tool]\nappban = { where = 'IN' }\n",
        '["tool".appban]\nwhere = "IN"\n',
        "[ tool . 'appban' ]\nwhere = 'IN'\n",
    ],
)
def test_every_toml_spelling_of_the_pyproject_table_is_found(tmp_path: Path, text: str) -> None:
    found = _write(tmp_path / "pyproject.toml", text + "[project]\nname = 'x'\n")
    assert config.find(tmp_path) == found


def test_a_pyproject_naming_appban_only_as_a_dependency_or_a_script_is_passed_over(tmp_path: Path) -> None:
    _write(
        tmp_path / "pyproject.toml",
        """
        [project]
        name = "x"
        dependencies = ["appban>=1.0"]
        [project.scripts]
        appban = "appban.cli:main"
        [tool.poetry.dependencies]
        appban = "^1.0"
        [tool.ruff]
        line-length = 100
        """,
    )
    assert config.find(tmp_path) is None


def test_config_flag_env_var_and_no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = _write(tmp_path / "appban.toml", "")
    other = _write(tmp_path / "elsewhere.toml", "")
    assert config.chosen(None, False, tmp_path) == found
    monkeypatch.setenv(config.ENV_VAR, str(other))
    assert config.chosen(None, False, tmp_path) == other
    assert config.chosen(found, False, tmp_path) == found  # the flag over the variable
    assert config.chosen(found, True, tmp_path) is None


# --- defaults --------------------------------------------------------------------------------------------


def test_the_file_sets_defaults_and_the_command_line_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    _write(repo / "appban.toml", '[scan]\nfail-on = "any"\nformat = "json"\n')
    monkeypatch.chdir(repo / "android")  # found from a folder below
    done = runner.invoke(app, ["scan", ".", "--at", AT])
    assert done.exit_code == 1, done.output  # fail-on any, from the file
    assert json.loads(done.stdout)["findings"][0]["signature"] == "wechat-opensdk-android"  # format json
    flags = runner.invoke(app, ["scan", ".", "--at", AT, "--fail-on", "none", "--format", "table"])
    assert flags.exit_code == 0, flags.output
    assert "wechat-opensdk-android" in flags.stdout and not flags.stdout.lstrip().startswith("{")
    ignored = runner.invoke(app, ["--no-config", "scan", ".", "--at", AT])
    assert ignored.exit_code == 0, ignored.output


def test_pyproject_table_and_shared_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    _write(
        repo / "pyproject.toml",
        "[project]\nname = 'x'\n[tool.appban]\nwhere = 'IN'\n[tool.appban.scan]\nformat = 'json'\n",
    )
    monkeypatch.chdir(repo)
    done = runner.invoke(app, ["scan", ".", "--at", AT])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["where"] == "IN"  # the top-level where reaches scan's --where


def test_config_flag_and_variable_name_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    named = _write(tmp_path / "ci" / "appban-ci.toml", '[scan]\nfail-on = "any"\n')
    monkeypatch.chdir(repo)
    assert runner.invoke(app, ["scan", ".", "--at", AT]).exit_code == 0
    assert runner.invoke(app, ["--config", str(named), "scan", ".", "--at", AT]).exit_code == 1
    monkeypatch.setenv(config.ENV_VAR, str(named))
    assert runner.invoke(app, ["scan", ".", "--at", AT]).exit_code == 1
    missing = runner.invoke(app, ["--config", str(tmp_path / "nope.toml"), "scan", ".", "--at", AT])
    assert missing.exit_code == 2 and "nope.toml" in missing.output


# --- refusals name file, line and key --------------------------------------------------------------------

BAD = [
    ("[scan]\nformat = 'json'\nfial-on = 'any'\n", 3, "fial-on"),  # misspelt key
    ("where = 'US'\n\n[screen.inventory]\nfleet = 'government'\ncolour = 'red'\n", 5, "colour"),
    ("[scan]\nfleet = 'government'\n", 2, "fleet"),  # a real key, but not scan's
    ("[scan]\n# why\nformat = 'xml'\n", 3, "format"),  # a value the option refuses
    ("[scan]\nfail-on = 3\n", 2, "fail-on"),  # not a string
    ("[[ignore]]\napp = 'wechat'\nreason = 'x'\nuntil = 2999-01-01\n\n[[ignore]]\napp = 'tiktok'\nuntil = 2999-01-01\n",
     6, "reason"),  # the second entry has no reason: its header line
    ("[[ignore]]\nreason = 'everything'\nuntil = 2999-01-01\n", 1, "name what it suppresses"),
    ("[[ignore]]\napp = 'wechat'\nreason = 'x'\nuntil = 'soon'\n", 4, "until"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "word"), BAD)
def test_a_bad_file_is_refused_with_file_line_and_key(
    text: str, line: int, word: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path)
    _write(repo / "appban.toml", text)
    monkeypatch.chdir(repo)
    done = runner.invoke(app, ["scan", ".", "--at", AT])
    assert done.exit_code == 2, done.output
    message = " ".join(done.output.split())
    assert f"appban.toml:{line}:" in message and word in message, message
    assert "Traceback" not in done.output


def test_not_toml_is_refused_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    _write(repo / "appban.toml", "[scan\nformat = 'json'\n")
    monkeypatch.chdir(repo)
    done = runner.invoke(app, ["scan", ".", "--at", AT])
    assert done.exit_code == 2 and "appban.toml: not TOML" in " ".join(done.output.split())


def test_key_line_reads_pyproject_tables_dotted_keys_and_arrays_of_tables() -> None:
    text = textwrap.dedent(
        """
        [project]
        description = '''
        [tool.appban.scan]
        format = 'not this one'
        '''
        [tool.appban]
        scan.fail-on = "any"
        [tool.appban.screen.network]
        role = "cdn"
        [[tool.appban.ignore]]
        app = "wechat"
        [[tool.appban.ignore]]
        app = "tiktok"
        "reason" = "x"
        """
    )
    assert config.key_line(text, ("tool", "appban", "scan", "fail-on")) == 8
    assert config.key_line(text, ("tool", "appban", "scan", "format")) == 7  # not inside the string: the table
    assert config.key_line(text, ("tool", "appban", "screen", "network", "role")) == 10
    assert config.key_line(text, ("tool", "appban", "ignore", 1, "reason")) == 15
    assert config.key_line(text, ("tool", "appban", "ignore", 1, "until")) == 13  # missing: the entry's header
    assert config.key_line(text, ("nowhere",)) is None


def test_every_option_a_section_may_set_is_an_option_of_its_command() -> None:
    """The table in appban.config against the commands themselves, so that a renamed option cannot leave
    the file setting nothing."""
    import typer.main

    for section, keys in config.SECTION_OPTIONS.items():
        names = section.split(".")
        command = typer.main.get_command(narrowed(names))
        for name in names:
            command = command.get_command(None, name)  # type: ignore[attr-defined]
            assert command is not None, section
        flags = {flag for parameter in command.params for flag in getattr(parameter, "opts", ())}
        for key in keys:
            assert f"--{key}" in flags, f"[{section}] {key}: `appban {' '.join(names)}` has no --{key}"
    for key in config.GLOBAL_OPTIONS:
        assert all(key in keys for section, keys in config.SECTION_OPTIONS.items() if section in {"check", "scan"})


def test_config_help_shows_the_pyproject_table_name() -> None:
    """Rich markup would read `[tool.appban]` as a tag and drop it from the help."""
    done = runner.invoke(app, ["--help"], terminal_width=200)
    assert done.exit_code == 0
    assert "pyproject.toml with [tool.appban]" in " ".join(done.stdout.replace("│", " ").split())


def test_a_validator_message_comes_without_pydantic_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    _write(repo / "appban.toml", "[[ignore]]\napp = 'wechat'\nreason = '  '\nuntil = 2999-01-01\n")
    monkeypatch.chdir(repo)
    done = runner.invoke(app, ["scan", ".", "--at", AT])
    message = " ".join(done.output.split())
    assert done.exit_code == 2 and "ignore[0].reason: say why the finding is accepted" in message, message
    assert "Value error" not in message

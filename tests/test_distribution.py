"""appban as users get it: the sdist and the wheel built as `python -m build` builds them (the wheel from the
sdist), the wheel installed into a new virtual environment and run from outside the source tree; the GitHub
Action's shell steps and the pre-commit hook run for real.

The new environments do not download appban's dependencies again (that takes most of a minute and needs the
network). They see the test environment's own installed packages through one plain path entry, a folder of
links to every installed distribution except appban itself, so the only appban they can import is the one
installed from the wheel (or by the action, or by pre-commit). `test_the_wheel_is_what_runs` proves it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from packaging.requirements import Requirement

import appban
from appban import load_rulebook

ROOT = Path(__file__).resolve().parents[1]
VERSION = importlib.metadata.version("appban")
IN_GIT = (ROOT / ".git").exists()
# A package.json naming an npm client of WeChat's server API: one finding (signature wechat-service-clients).
WECHAT_CLIENT = '{"name": "shop", "version": "1.0.0", "dependencies": {"wechat-api": "1.35.1"}}\n'


def source_package_files() -> list[str]:
    """Every file of the package in the source tree (tracked files, when this is a git checkout)."""
    if IN_GIT:
        listed = subprocess.run(["git", "ls-files", "-z", "src/appban"], cwd=ROOT, capture_output=True, check=True)
        names = [name for name in listed.stdout.decode().split("\0") if name]
        return sorted(name for name in names if (ROOT / name).is_file())  # a file deleted but not yet committed
    return sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "src" / "appban").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


# --- the builds ---


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path
    log: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("dist")
    # Build isolation as CI and users have it: hatchling, pinned by build-system.requires and the constraints.
    env = dict(os.environ, PIP_CONSTRAINT=str(ROOT / "constraints.txt"))
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (sdist,) = out.glob("appban-*.tar.gz")
    (wheel,) = out.glob("appban-*.whl")
    return Built(sdist, wheel, result.stdout + result.stderr)


def test_the_wheel_is_built_from_the_sdist(built: Built) -> None:
    # `python -m build` without --sdist/--wheel builds the wheel from the unpacked sdist: a file the sdist
    # leaves out is then missing from the wheel too, and the checks below see it.
    assert "Building wheel from sdist" in built.log
    assert built.sdist.name == f"appban-{VERSION}.tar.gz"
    assert built.wheel.name == f"appban-{VERSION}-py3-none-any.whl"


def test_the_sdist_holds_the_package_and_what_builds_it(built: Built) -> None:
    with tarfile.open(built.sdist) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    missing = [name for name in source_package_files() if name not in members]
    assert not missing, f"not in the sdist: {missing}"
    assert {"pyproject.toml", "README.md", "constraints.txt", "PKG-INFO"} <= members
    stray = [name for name in members if name.split("/")[0] in {".git", ".venv", ".cache", "test-artifacts"}]
    assert not stray


def test_the_wheel_holds_every_package_file_as_it_is_in_the_source(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        expected = source_package_files()
        missing = [name for name in expected if name.removeprefix("src/") not in names]
        assert not missing, f"not in the wheel: {missing}"
        changed = [name for name in expected if wheel.read(name.removeprefix("src/")) != (ROOT / name).read_bytes()]
        assert not changed
        dist_info = f"appban-{VERSION}.dist-info/"
        assert all(name.startswith(("appban/", dist_info)) for name in names)
        assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
        metadata = wheel.read(dist_info + "METADATA").decode()
        entry_points = wheel.read(dist_info + "entry_points.txt").decode()
    # The wheel declares the dependencies pyproject.toml names, and the console script.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {str(Requirement(line.split(":", 1)[1].strip())) for line in metadata.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line}  # fmt: skip
    assert declared == {str(Requirement(text)) for text in project["dependencies"]}
    assert re.search(r"^appban = appban\.cli:main$", entry_points, re.MULTILINE)


# --- a new environment with the wheel installed ---


def dependency_overlay(folder: Path) -> Path:
    """A folder of links to everything installed in this environment except appban (its files, its metadata and
    the editable install's path file). Placed on a new environment's path as a plain entry, it gives appban's
    dependencies without downloading them; .pth files in it are not run, so nothing in it can add the source
    tree back."""
    own = {Path(str(path)).parts[0] for path in importlib.metadata.distribution("appban").files or ()}
    folder.mkdir()
    for site in {Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}:
        for entry in site.iterdir():
            lowered = entry.name.lower()
            if entry.name in own or "appban" in lowered or entry.suffix == ".pth" or entry.name == "__pycache__":
                continue
            if not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


def new_environment(folder: Path, overlay: Path) -> Path:
    """A virtual environment without appban whose interpreter also sees `overlay`; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(purelib) / "zz_appban_test_dependencies.pth").write_text(f"{overlay}\n")
    return python


def pip_cache_dir() -> str:
    """Where pip caches for the user running the tests (PIP_CACHE_DIR, else the XDG cache)."""
    if os.environ.get("PIP_CACHE_DIR"):
        return os.environ["PIP_CACHE_DIR"]
    return str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip")


def environment_variables(venv: Path, home: Path, **extra: str) -> dict[str, str]:
    """The environment a user of `venv` has: its bin first on PATH, the test environment's bin not on it, nothing
    pointing at the source tree, appban's caches and settings fresh."""
    dropped = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH"}
    env = {key: value for key, value in os.environ.items() if key not in dropped and not key.startswith("APPBAN_")}
    ours = Path(sys.executable).parent
    path = [entry for entry in env.get("PATH", "").split(os.pathsep) if entry and Path(entry) != ours]
    env.update(
        PATH=os.pathsep.join([str(venv / "bin"), *path]),
        VIRTUAL_ENV=str(venv),
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        COLUMNS="200",
        NO_COLOR="1",
        PIP_CONSTRAINT=str(ROOT / "constraints.txt"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        # pip keeps its own cache: the build backend is not downloaded again for each new home.
        PIP_CACHE_DIR=pip_cache_dir(),
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Installed:
    venv: Path
    work: Path  # the folder commands run in: outside the source tree, with copies of a few examples
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=self.work, env=self.env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dependency_overlay(tmp_path_factory.mktemp("overlay") / "site")


@pytest.fixture(scope="module")
def installed(built: Built, overlay: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel-install")
    python = new_environment(base / "venv", overlay)
    return install_wheel(built, python, base)


def install_wheel(built: Built, python: Path, base: Path) -> Installed:
    """The wheel alone (no dependencies: the environment has them) installed with `python`'s pip, and a work
    folder beside it holding the few inputs the commands below read."""
    venv = python.parent.parent
    work = base / "work"
    work.mkdir()
    env = environment_variables(venv, base / "home")
    result = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(built.wheel)],
                            cwd=work, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("inventory/app-store-catalog.csv", "payments/stripe-itemized-report.csv"):
        shutil.copy(ROOT / "examples" / name, work / Path(name).name)
    (work / "repo").mkdir()
    (work / "repo" / "package.json").write_text(WECHAT_CLIENT)
    (work / "dns.csv").write_text(
        "ts,host,src_ip\n2024-06-01T00:00:00Z,v16-webapp.tiktok.com,10.0.0.1\n2024-06-01T00:00:01Z,example.org,10.0.0.2\n"
    )
    return Installed(venv, work, env)


def test_the_wheel_is_what_runs(installed: Installed) -> None:
    probe = (
        "import json, sys, importlib.metadata as m, appban.cli, appban.service.app;"
        "print(json.dumps({'modules': [getattr(v, '__file__', None) or '' for k, v in sys.modules.items()"
        " if k == 'appban' or k.startswith('appban.')], 'dist': str(m.distribution('appban').locate_file('')),"
        " 'path': sys.path}))"
    )
    result = installed.run("python", "-c", probe)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    venv = str(installed.venv)
    assert seen["modules"] and all(path.startswith(venv) for path in seen["modules"]), seen["modules"]
    assert seen["dist"].startswith(venv)
    assert not [entry for entry in seen["path"] if entry.startswith(str(ROOT))]
    assert shutil.which("appban", path=installed.env["PATH"]) == str(installed.venv / "bin" / "appban")


def test_version_names_the_packaged_rulebook(installed: Installed) -> None:
    result = installed.run("appban", "--version")
    assert result.returncode == 0, result.stderr
    assert f"appban {VERSION}" in result.stdout
    # The same content hash as the source tree's rulebook: every instrument file arrived unchanged.
    assert load_rulebook().version in result.stdout


def test_check_answers_from_the_wheel(installed: Installed) -> None:
    result = installed.run("appban", "check", "--app", "tiktok", "--transaction", "internet_hosting",
                           "--where", "US", "--at", "2020-11-12T23:59:00-05:00", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    expected = appban.decide("tiktok", "internet_hosting", "US", "2020-11-12T23:59:00-05:00")
    assert answer["verdict"] == expected.verdict.value == "enjoined"
    assert [line["rule_id"] for line in answer["rules"]] == [line.rule_id for line in expected.rules]


def test_rules_list_lists_every_instrument(installed: Installed) -> None:
    result = installed.run("appban", "rules", "list", "--json")
    assert result.returncode == 0, result.stderr
    listed = {instrument["id"] for instrument in json.loads(result.stdout)["instruments"]}
    assert listed == set(load_rulebook().instruments)


# Commands that each read one part of the packaged knowledge, and a word their output must hold.
COMMANDS = [
    # identity registry and inventory layouts
    (["screen", "inventory", "app-store-catalog.csv", "--format", "json"], "tiktok"),
    # payments markers and export layouts
    (["screen", "payments", "stripe-itemized-report.csv", "--format", "json"], "wechat_pay"),
    # network indicators
    (
        ["screen", "network", "dns.csv", "--role", "hosting", "--log-format", "generic", "--format", "json"],
        "tiktok.com",
    ),
    # code signatures
    (["scan", "repo", "--format", "json"], "wechat-service-clients"),
    # the blocked-app list from the registry's identifiers
    (["export", "mdm", "--where", "US", "--at", "2024-06-01T00:00:00Z", "--format", "jamf"], "com.zhiliaoapp"),
]
COMMAND_IDS = ["screen-inventory", "screen-payments", "screen-network", "scan", "export-mdm"]


@pytest.mark.parametrize(("args", "expected"), COMMANDS, ids=COMMAND_IDS)
def test_commands_find_their_data(installed: Installed, args: list[str], expected: str) -> None:
    result = installed.run("appban", *args)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(installed: Installed) -> Iterator[str]:
    """`appban serve` from the wheel: the audit store made by the packaged migrations, the packaged dashboard."""
    port = free_port()
    log = (installed.work / "serve.log").open("wb")
    command = ["appban", "serve", "--db", f"sqlite:///{installed.work / 'audit.db'}", "--port", str(port),
               "--open-reads", "--no-access-log"]  # fmt: skip
    process = subprocess.Popen(command, cwd=installed.work, env=installed.env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (installed.work / "serve.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_the_service_serves_the_packaged_dashboard(installed: Installed, built: Built, served: str) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        static = {name.removeprefix("appban/service/static/"): wheel.read(name)
                  for name in wheel.namelist() if name.startswith("appban/service/static/")}  # fmt: skip
    assert "index.html" in static
    page = httpx.get(f"{served}/", timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()
    for name, content in static.items():
        answer = httpx.get(f"{served}/static/{name}", timeout=30)
        assert answer.status_code == 200, name
        assert answer.content == content, name
    assert httpx.get(f"{served}/openapi.json", timeout=30).json()["info"]["version"] == VERSION
    assert (installed.work / "audit.db").is_file()


def test_the_demos_samples_are_the_repositorys_examples() -> None:
    """`serve --demo` screens copies of a few examples, shipped in the package (a wheel has no examples/)."""
    from appban.audited import DEMO_SAMPLES
    from appban.service.app import DEMO_SAMPLES as SAMPLES_FOLDER

    shipped = sorted(path.name for path in SAMPLES_FOLDER.iterdir())
    assert shipped == sorted(name for _kind, name, _options in DEMO_SAMPLES)
    for kind, name, _options in DEMO_SAMPLES:
        folder = "inventory" if kind == "inventory" else "payments"
        assert (SAMPLES_FOLDER / name).read_bytes() == (ROOT / "examples" / folder / name).read_bytes(), name


def test_serve_demo_from_the_wheel_screens_its_samples(installed: Installed) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = installed.work / "demo.log"
    with log_path.open("wb") as log:
        command = ["appban", "serve", "--demo", "--port", str(port), "--no-access-log"]
        process = subprocess.Popen(command, cwd=installed.work, env=installed.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        runs: list[dict[str, Any]] = []
        while not (len(runs) == 4 and all(run["status"] in ("done", "failed") for run in runs)):
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"the demo's runs did not finish: {runs}\n{log_path.read_text()}"
            with contextlib.suppress(httpx.TransportError):
                runs = httpx.get(f"{base}/v1/runs", timeout=5).json()  # a demo's reads are open
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert sorted(run["filename"] for run in runs) == sorted(
        ["processor-export.csv", "credit-transfers.xml", "app-store-catalog.csv", "jamf-mobile-device-apps.csv"]
    )
    assert all(run["status"] == "done" and run["findings_total"] > 0 for run in runs), runs
    assert "demo token: appban_" in log_path.read_text()


# --- a worker's environment: the core install and the dask extra, nothing of the service ---

# The service's libraries (and Spark's): a worker installed with appban[dask] has none of them.
NOT_ON_A_WORKER = ("fastapi", "fastapi_offline", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "pyspark")


def wheel_requirements(wheel: Path) -> list[str]:
    """The Requires-Dist lines of the wheel's own metadata (core and extras, with their markers)."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"appban-{VERSION}.dist-info/METADATA").decode()
    return [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]


def installed_closure(requirements: list[str], extras: frozenset[str]) -> dict[str, importlib.metadata.Distribution]:
    """The distributions installed here that `requirements` need with `extras` requested, and theirs in turn,
    as pip would resolve them: markers evaluated, each dependency's own extras followed, every installed
    version checked against what asks for it."""
    found: dict[str, importlib.metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    queue = [(Requirement(text), extras) for text in requirements]
    while queue:
        requirement, wanted = queue.pop()
        marker = requirement.marker
        if marker is not None and not any(marker.evaluate({"extra": extra}) for extra in wanted | {""}):
            continue
        dist = importlib.metadata.distribution(requirement.name)
        assert requirement.specifier.contains(dist.version, prereleases=True), (str(requirement), dist.version)
        key = (dist.metadata["Name"].lower(), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        found[key[0]] = dist
        queue += [(Requirement(text), frozenset(requirement.extras)) for text in dist.requires or ()]
    return found


def distributions_overlay(folder: Path, dists: dict[str, importlib.metadata.Distribution]) -> Path:
    """A folder of links to exactly the files of `dists`, for a new environment's path like `dependency_overlay`:
    a top-level folder no other distribution installs into is linked whole, a shared one (a namespace package)
    file by file, so a distribution left out brings none of its modules."""
    owners = importlib.metadata.packages_distributions()
    folder.mkdir()
    for dist in dists.values():
        assert dist.files is not None, f"{dist.metadata['Name']} lists no files"
        for file in dist.files:
            if file.parts[0] == ".." or file.suffix == ".pth":  # scripts and path hooks: not importable files
                continue
            top = file.parts[0]
            whole = len(file.parts) > 1 and (top.endswith(".dist-info") or len(owners.get(top, ())) <= 1)
            link = folder / (top if whole else file)
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(Path(str(dist.locate_file(top if whole else file))))
    return folder


def core_requirements(wheel: Path) -> list[str]:
    return [text for text in wheel_requirements(wheel) if Requirement(text).marker is None]


def extra_requirements(wheel: Path, extra: str) -> list[str]:
    return [text for text in wheel_requirements(wheel) if (marker := Requirement(text).marker) is not None
            and marker.evaluate({"extra": extra})]  # fmt: skip


def top_level_modules(dists: dict[str, importlib.metadata.Distribution]) -> set[str]:
    return {module for module, names in importlib.metadata.packages_distributions().items()
            if any(name.lower() in dists for name in names)}  # fmt: skip


def test_the_extras_hold_the_libraries_appban_names_them_by(built: Built) -> None:
    """`appban.extras.EXTRAS` (what a missing module is blamed on) agrees with the wheel's extras, and the core
    install brings none of them."""
    from appban.extras import EXTRAS

    core = top_level_modules(installed_closure(core_requirements(built.wheel), frozenset()))
    for extra, modules in EXTRAS.items():
        brought = top_level_modules(installed_closure(extra_requirements(built.wheel, extra), frozenset({extra})))
        assert modules <= brought, f"{extra}: {sorted(modules - brought)} come with another extra"
        assert not modules & core, f"{sorted(modules & core)} come with the core install"
    everything = top_level_modules(installed_closure(extra_requirements(built.wheel, "all"), frozenset({"all"})))
    assert set().union(*EXTRAS.values()) <= everything
    # `make test` installs .[dev]: every extra with it.
    assert unmarked(extra_requirements(built.wheel, "all")) <= unmarked(extra_requirements(built.wheel, "dev"))


def unmarked(requirements: list[str]) -> set[str]:
    bare = [Requirement(text) for text in requirements]
    for requirement in bare:
        requirement.marker = None
    return {str(requirement) for requirement in bare}


@dataclass(frozen=True)
class Worker:
    installed: Installed
    dask_overlay: Path  # on the path after the core's; taken off it, the environment is the core install alone


@pytest.fixture(scope="module")
def worker(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Worker:
    """A new environment holding the wheel and only what its metadata says the core install and the `dask`
    extra need (pip too, to install the wheel): a Dask worker's environment."""
    base = tmp_path_factory.mktemp("worker")
    core = installed_closure([*core_requirements(built.wheel), "pip"], frozenset())
    with_dask = installed_closure(
        [*core_requirements(built.wheel), *extra_requirements(built.wheel, "dask")], frozenset({"dask"})
    )
    core_overlay = distributions_overlay(base / "core", core)
    dask_overlay = distributions_overlay(base / "dask", {k: v for k, v in with_dask.items() if k not in core})
    python = new_environment(base / "venv", core_overlay)
    (path_file,) = (base / "venv").glob("lib/python*/site-packages/zz_appban_test_dependencies.pth")
    path_file.write_text(f"{core_overlay}\n{dask_overlay}\n")
    return Worker(install_wheel(built, python, base), dask_overlay)


# Imports every module of the installed package with only the core install on the path; prints what failed.
CORE_IMPORTS = textwrap.dedent(
    """
    import importlib, json, pathlib, sys
    sys.path.remove(sys.argv[1])
    import appban
    root = pathlib.Path(appban.__file__).parent
    failed = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name == "appban.__main__":
            continue  # runs the command line
        try:
            importlib.import_module(name)
        except ImportError as exc:
            failed[name] = [type(exc).__name__, exc.name, str(exc)]
    loaded = sorted({name.split(".")[0] for name in sys.modules})
    print(json.dumps({"failed": failed, "loaded": loaded, "file": appban.__file__}))
    """
)


def needs_the_service(module: str) -> bool:
    return module == "appban.audited" or module.split(".")[:2] in (["appban", "store"], ["appban", "service"])


def test_every_module_but_the_services_imports_with_the_core_install(worker: Worker) -> None:
    result = worker.installed.run("python", "-c", CORE_IMPORTS, str(worker.dask_overlay))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["file"].startswith(str(worker.installed.venv))
    failed: dict[str, list[str]] = seen["failed"]
    wrong = {name: why for name, why in failed.items() if not needs_the_service(name)}
    assert not wrong, f"these need more than the core install: {wrong}"
    # The service's modules all fail, each with the extra named (so the core install truly lacks them).
    service = {name for name in source_package_modules() if needs_the_service(name)}
    assert set(failed) == service
    for name, (kind, missing, message) in failed.items():
        assert kind == "ExtraMissing" and missing in ("sqlalchemy", "fastapi"), (name, message)
        assert "pip install 'appban[service]'" in message
    assert not set(seen["loaded"]) & {*NOT_ON_A_WORKER, "dask", "distributed", "pandas"}


def source_package_modules() -> set[str]:
    names = set()
    for name in source_package_files():
        if name.endswith(".py") and not name.endswith("__main__.py"):
            parts = Path(name).relative_to("src").with_suffix("").parts
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_worker_has_no_service_and_passes_pip_check(worker: Worker) -> None:
    probe = f"import importlib.util as u, json; print(json.dumps([m for m in {NOT_ON_A_WORKER!r} if u.find_spec(m)]))"
    result = worker.installed.run("python", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    # Every distribution there has what it requires: the wheel's metadata asks for nothing left out.
    checked = worker.installed.run("python", "-m", "pip", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(("args", "expected"), COMMANDS, ids=COMMAND_IDS)
def test_the_worker_screens_in_process(worker: Worker, args: list[str], expected: str) -> None:
    result = worker.installed.run("appban", *args)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert "Traceback" not in result.stderr


def test_the_worker_checks(worker: Worker) -> None:
    result = worker.installed.run("appban", "check", "--app", "tiktok", "--transaction", "internet_hosting",
                                  "--where", "US", "--at", "2020-11-12T23:59:00-05:00", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verdict"] == "enjoined"


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (["audit", "export"], ["--db", "sqlite:///audit.db"]),
        (["audit", "impact"], ["--rules", "rules"]),
        (["tokens", "list"], []),
        (["serve"], ["--port", "0"]),
    ],
    ids=["audit-export", "audit-impact", "tokens-list", "serve"],
)
def test_the_services_commands_name_the_extra_they_need(worker: Worker, command: list[str], options: list[str]) -> None:
    result = worker.installed.run("appban", *command, *options)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "pip install 'appban[service]'" in result.stderr
    assert "Traceback" not in result.stderr
    # Their help needs nothing of the service.
    helped = worker.installed.run("appban", *command, "--help")
    assert helped.returncode == 0, helped.stderr


# Runs in the worker's environment: a LocalCluster of two worker processes (started from that environment's
# Python) classifies network logs and decides a table, each read from a folder of Parquet parts, and says
# what its workers run.
DASK_JOB = textwrap.dedent(
    """
    import importlib.util, json, os, sys

    import dask.dataframe as dd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from distributed import Client, LocalCluster

    from appban.distributed.dask import classify_dask
    from appban.distributed.decide import decide_dask


    def where():
        import appban

        absent = [module for module in sys.argv[1].split(",") if importlib.util.find_spec(module) is None]
        return {"python": sys.executable, "pid": os.getpid(), "appban": appban.__file__, "absent": absent}


    if __name__ == "__main__":
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          memory_limit="1GiB") as cluster, Client(cluster) as client:
            for source, screen in (("dns", classify_dask), ("decisions", decide_dask)):
                screened = screen(dd.read_parquet(source).repartition(npartitions=3)).compute()
                pq.write_table(pa.Table.from_pandas(screened, preserve_index=False), source + "-out.parquet")
            print(json.dumps({"driver": os.getpid(), "workers": list(client.run(where).values())}))
    """
)


def test_the_worker_screens_on_a_dask_cluster_of_its_own_processes(worker: Worker) -> None:
    """Network classification and decide through appban.distributed on a LocalCluster whose worker processes
    run the worker's environment, row for row as this process answers in process."""
    from appban.distributed.decide import decide_batches
    from appban.distributed.network import classify_batches
    from tests.test_distributed import _sample
    from tests.test_distributed_decide import _table, _with_bad_rows

    work = worker.installed.work
    inputs = {"dns": _sample(2_000), "decisions": _with_bad_rows(_table())}
    for name, table in inputs.items():
        (work / name).mkdir()
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), work / name / "part-0.parquet")
        pq.write_table(table.slice(half), work / name / "part-1.parquet")
        pq.write_table(table.schema.empty_table(), work / name / "part-2.parquet")  # as Spark jobs leave them
    (work / "job.py").write_text(DASK_JOB)
    result = worker.installed.run("python", "job.py", ",".join(NOT_ON_A_WORKER), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = json.loads(result.stdout.strip().splitlines()[-1])
    workers = ran["workers"]
    assert len(workers) == 2 and len({w["pid"] for w in workers} | {ran["driver"]}) == 3  # their own processes
    for seen in workers:
        assert seen["python"].startswith(str(worker.installed.venv)), seen
        assert seen["appban"].startswith(str(worker.installed.venv)), seen
        assert seen["absent"] == list(NOT_ON_A_WORKER), seen

    expected = {
        "dns": pa.Table.from_batches(list(classify_batches(inputs["dns"].to_batches()))),
        "decisions": decide_batches(inputs["decisions"]),
    }
    assert expected["decisions"].column("error").null_count < inputs["decisions"].num_rows  # bad rows are there
    for name, want in expected.items():
        got = pq.read_table(work / f"{name}-out.parquet").select(want.column_names).sort_by("id").cast(want.schema)
        assert got.num_rows == want.num_rows == inputs[name].num_rows
        for column in want.column_names:
            assert got.column(column).to_pylist() == want.column(column).to_pylist(), f"{name}: column {column}"
        assert set(got.column("rulebook_version").to_pylist()) == {load_rulebook().version}


# --- the GitHub Action ---


def action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
    return loaded


def scan_help() -> str:
    result = subprocess.run([sys.executable, "-m", "appban", "scan", "--help"], capture_output=True, text=True,
                            env=dict(os.environ, COLUMNS="200", NO_COLOR="1"), check=True)  # fmt: skip
    return result.stdout


def test_the_action_and_the_hook_use_flags_appban_scan_has() -> None:
    help_text = scan_help()
    steps = action()["runs"]["steps"]
    (scan,) = [step for step in steps if step.get("id") == "scan"]
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", scan["run"]))
    assert {"--format", "--output", "--fail-on", "--at", "--where"} <= used
    hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    assert hook["entry"].split() == ["appban", "scan"]
    used |= {arg for arg in hook.get("args", []) if arg.startswith("--")}
    missing = [flag for flag in sorted(used) if flag not in help_text]
    assert not missing, f"appban scan --help has no {missing}"
    # Every value the action's fail-on input documents is one `--fail-on` takes, and SARIF is a format.
    documented = action()["inputs"]["fail-on"]["description"]
    for value in ("none", "prohibited", "any"):
        assert f"({value})" in documented and value in help_text
    assert "sarif" in help_text


def test_the_action_is_composite_and_uploads_with_codeql() -> None:
    spec = action()
    assert spec["runs"]["using"] == "composite"
    steps = spec["runs"]["steps"]
    (upload,) = [step for step in steps if str(step.get("uses", "")).startswith("github/codeql-action/upload-sarif@")]
    assert upload["with"]["sarif_file"] == "${{ steps.scan.outputs.sarif-file }}"
    assert "inputs.upload" in upload["if"] and "!cancelled()" in upload["if"]
    names = [step.get("id") or step["name"] for step in steps]
    assert names.index("scan") < names.index(upload["name"]) < names.index("Gate")  # upload before the gate
    for step in steps:
        if "run" in step:
            assert step["shell"] == "bash" and "if" not in step  # the local runner below runs every run step
            assert "${{" not in step["run"], "inputs reach scripts through env, never pasted into them"
    for name, spec_input in spec["inputs"].items():
        assert spec_input.get("description"), name


class ActionRunner:
    """Runs the action's `run` steps as a GitHub runner runs them (bash --noprofile --norc -eo pipefail, env from
    the step's `env`, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_ACTION_PATH), skipping the `uses` steps,
    which need GitHub."""

    def __init__(self, workspace: Path, env: dict[str, str], temp: Path) -> None:
        self.workspace = workspace
        self.env = env
        self.temp = temp
        self.outputs: dict[str, dict[str, str]] = {}
        self.count = 0
        self.log = ""  # the last step's standard output and error
        self.summary = ""  # the last step's job summary (what it appended to GITHUB_STEP_SUMMARY)

    def expand(self, text: str, inputs: dict[str, str]) -> str:
        def value(match: re.Match[str]) -> str:
            expression = match.group(1).strip()
            if found := re.fullmatch(r"inputs\.([\w-]+)", expression):
                return inputs[found.group(1)]
            if found := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression):
                return self.outputs.get(found.group(1), {}).get(found.group(2), "")
            raise AssertionError(f"the local runner does not evaluate {expression!r}")

        return re.sub(r"\$\{\{(.*?)\}\}", value, text)

    def run(self, step: dict[str, Any], inputs: dict[str, str]) -> int:
        self.count += 1
        script = self.temp / f"step-{self.count}.sh"
        script.write_text(step["run"])
        output = self.temp / f"output-{self.count}"
        output.write_text("")
        summary = self.temp / f"summary-{self.count}"  # a runner gives each step a summary file of its own
        summary.write_text("")
        env = dict(self.env, GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary), GITHUB_ACTION_PATH=str(
            ROOT), GITHUB_WORKSPACE=str(self.workspace), RUNNER_TEMP=str(self.temp), GITHUB_ACTIONS="true",
            CI="true")  # fmt: skip
        env.update({key: self.expand(str(text), inputs) for key, text in step.get("env", {}).items()})
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                                cwd=self.workspace, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
        self.log = result.stdout + result.stderr
        self.summary = summary.read_text()
        if "id" in step:
            lines = output.read_text().splitlines()
            self.outputs[step["id"]] = dict(line.split("=", 1) for line in lines if "=" in line)
        return result.returncode


def test_the_actions_steps_scan_a_repository_and_gate_on_fail_on(overlay: Path, tmp_path: Path) -> None:
    spec = action()
    steps = spec["runs"]["steps"]
    defaults = {name: str(spec_input.get("default", "")) for name, spec_input in spec["inputs"].items()}
    # The runner's Python: a new environment without appban (setup-python's part).
    new_environment(tmp_path / "python", overlay)
    workspace = tmp_path / "workspace"
    (workspace / "web").mkdir(parents=True)
    (workspace / "web" / "package.json").write_text(WECHAT_CLIENT)
    (workspace / "README.md").write_text("a shop\n")
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    runner = ActionRunner(workspace, environment_variables(tmp_path / "python", tmp_path / "home"), temp)
    by_name = {step.get("id") or step["name"]: step for step in steps}

    assert runner.run(by_name["Install appban"], defaults) == 0, runner.log
    assert f"appban {VERSION}" in runner.log
    which = shutil.which("appban", path=runner.env["PATH"])
    assert which == str(tmp_path / "python" / "bin" / "appban")

    # fail-on any: the finding fails the gate, after the SARIF was written for the upload.
    inputs = dict(defaults, **{"fail-on": "any"})
    assert runner.run(by_name["scan"], inputs) == 0, runner.log
    assert runner.outputs["scan"]["exit-code"] == "1"
    sarif_file = runner.expand(by_name["Upload SARIF to code scanning"]["with"]["sarif_file"], inputs)
    assert sarif_file == str(temp / "appban.sarif")
    sarif = json.loads(Path(sarif_file).read_text())
    assert sarif["version"] == "2.1.0"
    (result,) = sarif["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "web/package.json"
    # The job summary: the same finding as Markdown, decided at the same instant as the SARIF report.
    assert runner.summary.startswith("## appban scan: 1 finding")
    assert "| web/package.json:1 | wechat-service-clients | wechat |" in runner.summary
    assert "**fail on**: any" in runner.summary
    decided = re.search(r"at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", runner.summary)
    assert decided and sarif["runs"][0]["properties"]["at"] == decided.group(1)
    assert runner.run(by_name["Gate"], inputs) == 1
    assert "::error title=appban::appban scan exited 1" in runner.log

    # fail-on none, two paths one a line, an instant and a place: the same finding, the gate passes.
    inputs = dict(defaults, **{"fail-on": "none", "path": "web\nREADME.md\n", "at": "2020-11-20T00:00:00Z",
                               "where": "US", "sarif-file": str(tmp_path / "out.sarif")})  # fmt: skip
    assert runner.run(by_name["scan"], inputs) == 0, runner.log
    assert runner.outputs["scan"] == {"exit-code": "0", "sarif-file": str(tmp_path / "out.sarif")}
    sarif = json.loads((tmp_path / "out.sarif").read_text())
    assert len(sarif["runs"][0]["results"]) == 1
    assert runner.run(by_name["Gate"], inputs) == 0, runner.log

    # summary "false": no second scan, nothing in the job summary.
    inputs = dict(defaults, **{"fail-on": "none", "summary": "false"})
    assert runner.run(by_name["scan"], inputs) == 0, runner.log
    assert runner.outputs["scan"]["exit-code"] == "0" and runner.summary == ""

    # A path that does not exist: exit 2 stops at the scan step, and nothing is offered for upload.
    inputs = dict(defaults, path="no-such-folder", **{"sarif-file": str(tmp_path / "none.sarif")})
    assert runner.run(by_name["scan"], inputs) == 2
    assert runner.outputs["scan"] == {"exit-code": "2"} and runner.summary == ""

    # fail-on left empty (the default): the repository's appban.toml decides, else the Action gates on prohibited
    # (the WeChat client found is not prohibited today, so the gate passes).
    assert defaults["fail-on"] == ""
    assert runner.run(by_name["scan"], defaults) == 0, runner.log
    assert runner.outputs["scan"]["exit-code"] == "0" and "**fail on**: prohibited" in runner.summary
    (workspace / "appban.toml").write_text('[scan]\nfail-on = "any"\n')
    assert runner.run(by_name["scan"], defaults) == 0, runner.log
    assert runner.outputs["scan"]["exit-code"] == "1" and "**fail on**: any" in runner.summary
    assert runner.run(by_name["Gate"], defaults) == 1
    # An input that is set wins over the file, as a flag does.
    assert runner.run(by_name["scan"], dict(defaults, **{"fail-on": "none"})) == 0, runner.log
    assert runner.outputs["scan"]["exit-code"] == "0"


def test_a_summary_over_githubs_limit_is_cut_at_a_line(tmp_path: Path) -> None:
    """GitHub drops a step summary over 1 MiB whole; the action cuts a longer report at a line and says so. An
    `appban` stand-in on PATH writes a long Markdown report (the real one would need thousands of findings)."""
    stand_in = tmp_path / "bin" / "appban"
    stand_in.parent.mkdir()
    stand_in.write_text(
        "#!/bin/bash\n"
        'out=""; format=""\n'
        'while [ $# -gt 0 ]; do case "$1" in --output) out="$2"; shift;; --format) format="$2"; shift;; esac; shift;'
        " done\n"
        'if [ "$format" = markdown ]; then for i in $(seq 1 60000); do echo "| row $i | some cells |"; done'
        ' > "$out"; else echo "{}" > "$out"; fi\n'
    )
    stand_in.chmod(0o755)
    spec = action()
    defaults = {name: str(spec_input.get("default", "")) for name, spec_input in spec["inputs"].items()}
    (scan,) = [step for step in spec["runs"]["steps"] if step.get("id") == "scan"]
    (tmp_path / "workspace").mkdir()
    (tmp_path / "temp").mkdir()
    env = dict(os.environ, PATH=f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}")
    runner = ActionRunner(tmp_path / "workspace", env, tmp_path / "temp")
    assert runner.run(scan, defaults) == 0, runner.log
    kept, _, note = runner.summary.rpartition("\n\n")
    assert note == "*Cut here to fit the job summary; the SARIF report has every finding.*\n"
    assert len(runner.summary.encode()) <= 1000 * 1024 + len(note) + 2
    lines = kept.split("\n")
    assert len(lines) > 30000 and all(re.fullmatch(r"\| row \d+ \| some cells \|", line) for line in lines)


# --- the pre-commit hook ---


def test_the_hook_manifest_is_valid_for_pre_commit() -> None:
    from pre_commit.clientlib import load_manifest

    (hook,) = load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    assert hook["id"] == "appban" and hook["language"] == "python"
    assert hook["args"] == ["--fail-on", "any"] and hook["require_serial"] is True


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(not IN_GIT, reason="pre-commit installs hooks from a git repository")
def test_pre_commit_runs_the_hook_on_changed_files(overlay: Path, tmp_path: Path) -> None:
    """pre-commit itself installs the hook from this repository (its committed HEAD, as a user's `rev`) into its
    own environment and runs it on the files given."""
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / "package.json").write_text(WECHAT_CLIENT)
    (sample / "notes.txt").write_text("nothing to see\n")
    rev = git(ROOT, "rev-parse", "HEAD").strip()
    config = {"repos": [{"repo": str(ROOT), "rev": rev, "hooks": [{"id": "appban"}]}]}
    (sample / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    git(sample, "init", "-q")
    git(sample, "add", ".")
    # PYTHONPATH gives the hook's environment appban's dependencies (see the module's docstring); appban
    # itself is installed there by pre-commit from the repository.
    env = environment_variables(tmp_path / "none", tmp_path / "home", PRE_COMMIT_HOME=str(tmp_path / "pre-commit"),
                                PYTHONPATH=str(overlay), GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
                                GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")  # fmt: skip

    def pre_commit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pre_commit", "run", *args], cwd=sample, env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip

    found = pre_commit("--files", "package.json", "notes.txt")
    assert found.returncode == 1, found.stdout + found.stderr
    assert "appban scan" in found.stdout and "Failed" in found.stdout
    assert "wechat-service-clients" in found.stdout and "package.json" in found.stdout

    clean = pre_commit("--files", "notes.txt")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Passed" in clean.stdout

    # The hook ran the appban pre-commit installed, not the source tree's.
    (hook_env,) = (tmp_path / "pre-commit").glob("repo*/py_env-*")
    assert (hook_env / "bin" / "appban").is_file()

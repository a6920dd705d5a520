"""A real appban server and a real browser for the dashboard's end-to-end tests.

- `dashboard_server`: `python -m appban serve --open-reads` on a free local port, with its own SQLite audit store
  in a temporary directory; waits for /healthz and stops the server afterwards (`running_server` does the work,
  also for servers whose reads need a token).
- `write_token`: a write-scope API token made with `appban tokens create` against the same store (`create_token`).
- `closed_server`: another server, whose reads need a token, with a read-scope token.
- `browser` / `page`: Playwright's sync API driving the system's Chromium, headless. No browser is downloaded: when
  Chromium is missing the tests skip on a developer's machine and fail under CI (see tests/material.py).
- `screenshot` (`save_screenshot`): a full-page PNG of the page under test-artifacts/dashboard/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.material import REPO_ROOT, require_tool

ARTIFACTS = REPO_ROOT / "test-artifacts" / "dashboard"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_START_TIMEOUT = 60.0
_TOKEN = re.compile(r"\bappban_[A-Za-z0-9]+_[A-Za-z0-9_\-]+")


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:<port>, no trailing slash
    db_url: str
    folder: Path

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.load(response)


def chromium_executable() -> str:
    """The system's Chromium (Debian package `chromium`, installed by the setup script)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").is_file():
        found = "/usr/bin/chromium"
    return found or require_tool("chromium")  # skips locally, fails under CI


def appban_command() -> list[str]:
    """How to run the command line: `python -m appban`, else the installed `appban` script."""
    if importlib.util.find_spec("appban.__main__") is not None:
        return [sys.executable, "-m", "appban"]
    script = shutil.which("appban") or str(Path(sys.executable).with_name("appban"))
    return [script]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPBAN_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"`appban serve` exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"`appban serve` did not answer /healthz in {_START_TIMEOUT:.0f} s:\n{log.read_text()}")


@contextmanager
def running_server(folder: Path, *, open_reads: bool = True) -> Iterator[Server]:
    """`appban serve` on a free port with an SQLite store in `folder`, until the block ends."""
    db_url = f"sqlite:///{folder / 'audit.db'}"
    port = _free_port()
    log = folder / "server.log"
    command = [*appban_command(), "serve", "--port", str(port), "--db", db_url, "--host", "127.0.0.1"]
    if open_reads:
        command.append("--open-reads")
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=folder, env=_environment(), stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_healthy(url, process, log)
        yield Server(url, db_url, folder)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def create_token(server: Server, scope: str, name: str = "e2e") -> str:
    """A token from `appban tokens create` against the server's store, parsed from what the command prints."""
    result = subprocess.run(
        [*appban_command(), "tokens", "create", "--name", name, "--scope", scope, "--db", server.db_url],
        cwd=server.folder,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"`appban tokens create` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    found = _TOKEN.search(result.stdout) or _TOKEN.search(result.stderr)
    if found is not None:
        return found.group(0)
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"no token in the output of `appban tokens create`:\n{result.stderr}")
    return lines[-1].split()[-1]


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server the views are tested on, with reads open (`--open-reads`)."""
    with running_server(tmp_path_factory.mktemp("dashboard")) as server:
        yield server


@pytest.fixture(scope="module")
def write_token(dashboard_server: Server) -> str:
    """A write-scope token for `dashboard_server`."""
    return create_token(dashboard_server, "write")


@pytest.fixture()
def closed_server(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """A server whose reads need a token (no `--open-reads`), and a read-scope token for it."""
    folder = tmp_path / "closed-server"
    folder.mkdir()
    with running_server(folder, open_reads=False) as server:
        yield server, create_token(server, "read", name="reader")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_executable()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser: Browser, dashboard_server: Server) -> Iterator[Page]:
    """A fresh laptop-sized page on the dashboard's origin; fails the test on any uncaught script error."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=dashboard_server.url)
    context.set_default_timeout(10_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    # A 4xx answer the page shows to the user is logged by Chromium as "Failed to load resource": not a bug.
    opened.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"errors in the page: {errors}"


@pytest.fixture()
def screenshot() -> Callable[[Page, str], Path]:
    """save_screenshot, for tests that take their fixtures from this plugin only."""
    return save_screenshot


def save_screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot at test-artifacts/dashboard/<name>.png; checks it is a non-empty PNG."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # Back to the top (again and again, until any smooth scrolling the page started has ended).
    page.wait_for_function("() => { window.scrollTo({ top: 0, behavior: 'instant' }); return window.scrollY === 0; }")
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    return path

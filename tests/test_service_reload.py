"""The service loads new knowledge without a restart: SIGHUP, or POST /v1/admin/reload with a write token.

A real `appban serve` process on a loopback port answers under its rulebook directory; the directory is
changed (the WeChat users' injunction taken out), the server told, and then it answers under the new
version while a record made before replays under the version it was recorded with."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from appban.knowledge.layout import PACKAGED
from appban.store import AuditStore
from tests.test_knowledge_bundles import Home, cli, knowledge_copy, make
from tests.test_knowledge_bundles import home as home  # the fixture
from tests.test_service_process import free_port

# Enjoined on every reading while the injunction of 19 September 2020 stands; prohibited without it.
QUESTION = {"app": "wechat", "transaction": "payment_processing", "where": "US", "at": "2020-09-21T12:00:00-04:00"}
INJUNCTION = "instruments/court-us-wechat-users-alliance-2020-09-19.yaml"
DEADLINE = 60.0  # seconds for a server to start or to report a reload; the wait ends as soon as it does


class Server:
    def __init__(self, folder: Path, workers: int, *, installed: dict[str, str] | None = None) -> None:
        """A server reading `folder/rulebook`, or with `installed` (an environment), the knowledge installed."""
        self.folder = folder
        self.db_url = f"sqlite:///{folder / 'audit.db'}"
        self.rulebook = folder / "rulebook"
        self.workers = workers
        self.base = f"http://127.0.0.1:{free_port()}"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = installed

    def start(self) -> None:
        port = self.base.rsplit(":", 1)[1]
        command = [sys.executable, "-m", "appban", "serve", "--db", self.db_url, "--port", port, "--upload-dir",
                   str(self.folder), "--workers", str(self.workers)]  # fmt: skip
        if self.env is None:
            command += ["--rulebook", str(self.rulebook)]
        log = (self.folder / "server.log").open("wb")
        env = self.env if self.env is not None else os.environ.copy()
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.wait_for(lambda health: True, "start")

    def health(self) -> dict[str, Any] | None:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.folder / "server.log").read_text(errors="replace")
            raise AssertionError(f"the server exited: {self.process.returncode}\n{log[-3000:]}")
        try:
            answer = httpx.get(f"{self.base}/healthz", timeout=5)
        except httpx.TransportError:
            return None
        return answer.json() if answer.status_code == 200 else None

    def wait_for(self, condition: Any, what: str) -> dict[str, Any]:
        """Poll /healthz until `condition` holds for it (a condition, not a fixed sleep)."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            health = self.health()
            if health is not None and condition(health):
                return health
            time.sleep(0.05)
        raise AssertionError(f"the server did not {what} within {DEADLINE:g} s")

    def wait_for_version(self, version: str) -> None:
        """Until every worker reports `version` (each new connection goes to the next worker in turn)."""
        seen: set[int] = set()
        last: dict[int, str] = {}  # each worker's last answer, for the message if the wait fails

        def updated(health: dict[str, Any]) -> bool:
            last[health["worker"]] = health["rulebook_version"]
            if health["rulebook_version"] == version:
                seen.add(health["worker"])
            return len(seen) >= self.workers

        try:
            self.wait_for(updated, f"report {version} from every worker")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the workers' last answers: {last}") from None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def tokens(tmp_path: Path) -> dict[str, dict[str, str]]:
    store = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    _, write = store.create_token(name="reloader", scope="write")
    _, read = store.create_token(name="reader", scope="read")
    store.close()
    return {"write": {"Authorization": f"Bearer {write}"}, "read": {"Authorization": f"Bearer {read}"}}


@pytest.fixture(params=[1, 2], ids=["one-worker", "two-workers"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    shutil.copytree(PACKAGED.path("rulebook"), tmp_path / "rulebook", ignore=shutil.ignore_patterns("__pycache__"))
    running = Server(tmp_path, request.param)
    yield running
    running.stop()


def decide(server: Server, headers: dict[str, str]) -> dict[str, Any]:
    answer = httpx.post(f"{server.base}/v1/decide", json=QUESTION, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    decided: dict[str, Any] = answer.json()
    return decided


def test_sighup_and_the_admin_route_load_new_knowledge_and_old_records_replay_under_theirs(
    server: Server, tokens: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    server.start()
    old = decide(server, tokens["read"])
    assert old["verdict"] == "enjoined"
    old_version = old["rulebook_version"]

    # New law in the directory the server reads: the injunction is taken out. SIGHUP to the server process
    # (the supervisor passes it on to each worker).
    held = tmp_path / "injunction.yaml"
    shutil.move(server.rulebook / INJUNCTION, held)
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGHUP)
    server.wait_for(lambda h: h["rulebook_version"] != old_version, "report a new version after SIGHUP")
    new_version = server.health()["rulebook_version"]  # type: ignore[index]
    server.wait_for_version(new_version)
    for _ in range(2 * server.workers):  # every worker answers under the new version
        new = decide(server, tokens["read"])
        assert (new["verdict"], new["as_written"], new["rulebook_version"]) == ("prohibited", "prohibited", new_version)

    # The record made before replays under its own version; the one made after, under the new one.
    replayed = httpx.get(f"{server.base}/v1/audit/{old['decision_id']}/replay", headers=tokens["read"], timeout=30)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["recorded_version"] == old_version
    assert replayed.json()["identical"] is True
    assert replayed.json()["replayed"]["verdict"] == "enjoined"
    again = httpx.get(f"{server.base}/v1/audit/{new['decision_id']}/replay", headers=tokens["read"], timeout=30)
    assert (again.json()["recorded_version"], again.json()["identical"]) == (new_version, True)

    # The admin route needs the write scope.
    refused = httpx.post(f"{server.base}/v1/admin/reload", headers=tokens["read"], timeout=30)
    assert refused.status_code == 403
    # A rulebook that does not read is refused whole, naming the file, and the old one keeps answering.
    shutil.move(held, server.rulebook / INJUNCTION)
    (server.rulebook / "instruments/eo-13942.yaml").write_text("id: eo-13942\nkind: [\n", encoding="utf-8")
    broken = httpx.post(f"{server.base}/v1/admin/reload", headers=tokens["write"], timeout=30)
    assert broken.status_code == 422
    assert "eo-13942.yaml" in broken.json()["error"]["message"]
    assert new_version in broken.json()["error"]["message"]
    assert decide(server, tokens["read"])["rulebook_version"] == new_version

    # Put right (and the injunction back): the route reloads, and every worker follows.
    shutil.copyfile(
        PACKAGED.path("rulebook") / "instruments/eo-13942.yaml", server.rulebook / "instruments/eo-13942.yaml"
    )
    done = httpx.post(f"{server.base}/v1/admin/reload", headers=tokens["write"], timeout=30)
    assert done.status_code == 200, done.text
    assert done.json()["rulebook_version"] == old_version  # the same law as at the start, so the same version
    assert done.json()["previous_version"] in (new_version, old_version)  # a relayed SIGHUP may have come first
    assert done.json()["workers_told"] is (server.workers > 1)
    server.wait_for_version(old_version)
    for _ in range(2 * server.workers):
        assert decide(server, tokens["read"])["verdict"] == "enjoined"


def test_a_bundle_installed_while_serving_is_answered_under_after_sighup(
    home: Home, tokens: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """`rules update` beside a running server, then SIGHUP: answers, the rules listing and a batch's header
    name the new version and its bundle; a record made before still replays under the package's version."""
    server = Server(tmp_path, 1, installed=home.env)
    try:
        server.start()
        old = decide(server, tokens["read"])
        assert (old["verdict"], old["bundle"]) == ("enjoined", None)

        knowledge = knowledge_copy(tmp_path / "knowledge")
        (knowledge / "rulebook" / INJUNCTION).unlink()
        cases = knowledge / "cases.yaml"  # the bundle's own cases say the new law, or it would not install
        book = yaml.safe_load(cases.read_text(encoding="utf-8"))
        book["cases"] = [case for case in book["cases"] if "-enjoined-2020-09-2" not in case["name"]]
        cases.write_text(yaml.safe_dump(book, allow_unicode=True), encoding="utf-8")
        code, output = cli("rules", "update", str(make(home, tmp_path / "new.tar.gz", "2027.01.01-1", knowledge)))
        assert code == 0, output
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGHUP)
        health = server.wait_for(lambda h: h["rulebook_version"] != old["rulebook_version"], "reload the bundle")

        new = decide(server, tokens["read"])
        assert (new["verdict"], new["rulebook_version"]) == ("prohibited", health["rulebook_version"])
        assert new["bundle"].startswith("2027.01.01-1 sha256:")
        listing = httpx.get(f"{server.base}/v1/rules", headers=tokens["read"], timeout=30).json()
        assert (listing["rulebook_version"], listing["bundle"]) == (new["rulebook_version"], new["bundle"])
        batch = httpx.post(
            f"{server.base}/v1/decide/batch",
            content=json.dumps(QUESTION) + "\n",
            headers={**tokens["read"], "Content-Type": "application/x-ndjson"},
            timeout=30,
        )
        assert batch.status_code == 200, batch.text
        assert batch.headers["X-Appban-Rulebook"] == new["rulebook_version"]
        assert json.loads(batch.text.splitlines()[0])["verdict"] == "prohibited"

        replayed = httpx.get(f"{server.base}/v1/audit/{old['decision_id']}/replay", headers=tokens["read"], timeout=30)
        assert (replayed.json()["recorded_version"], replayed.json()["identical"]) == (old["rulebook_version"], True)
    finally:
        server.stop()

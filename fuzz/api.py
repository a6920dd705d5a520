"""The service under hostile requests: the real `appban serve` process, hand-written attacks, then schemathesis
(examples, coverage, fuzzing and stateful phases, positive and negative data) from its own OpenAPI document.

A response is good if it is not a 5xx and the server is still alive and answering /healthz afterwards.
Cases marked `want4xx` must also be refused (a 2xx there means hostile input was accepted).

    python -m fuzz.api [--max-examples 50] [--seed 1] [--no-schemathesis]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.ipc as ipc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    base: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path
    folder: Path | None = None

    def alive(self) -> bool:
        if self.process.poll() is not None:
            return False
        try:
            return httpx.get(f"{self.base}/healthz", timeout=30).status_code == 200
        except httpx.HTTPError:
            return False

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def service(folder: Path) -> Iterator[Service]:
    from appban.store import AuditStore

    url = f"sqlite:///{folder / 'audit.db'}"
    store = AuditStore(url)
    _, secret = store.create_token(name="fuzz", scope="write")
    store.close()
    port = _free_port()
    log = folder / "server.log"
    command = [sys.executable, "-m", "appban", "serve", "--db", url, "--port", str(port), "--upload-dir", str(folder),
               "--max-upload-mb", "64"]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=os.environ.copy())
    running = Service(f"http://127.0.0.1:{port}", secret, process, log, folder)
    try:
        deadline = time.monotonic() + 120
        while not running.alive():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start:\n{running.tail()}")
            time.sleep(0.2)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


@dataclass
class Hostile:
    name: str
    send: Callable[[httpx.Client, Service], httpx.Response | None]
    want4xx: bool = False
    # An accepted upload is followed to its end: the run must finish, and its error (if any) must not show
    # where the server keeps files.
    follow_run: bool = False


@dataclass
class ApiResult:
    cases: int = 0
    bad: list[str] = field(default_factory=list)
    schemathesis: dict[str, Any] = field(default_factory=dict)


def _auth(s: Service) -> dict[str, str]:
    return {"Authorization": f"Bearer {s.token}"}


QUESTION = {"app": "tiktok", "transaction": "internet_hosting", "where": "US", "at": "2020-11-12T23:59:00-05:00"}


def _decide(body: bytes | str, content_type: str = "application/json") -> Callable[[httpx.Client, Service], Any]:
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return lambda c, s: c.post("/v1/decide", content=raw, headers={**_auth(s), "content-type": content_type})


def _question(**change: Any) -> bytes:
    return json.dumps({**QUESTION, **change}).encode("utf-8", "surrogatepass")


def _batch(body: bytes, content_type: str = "application/x-ndjson") -> Callable[[httpx.Client, Service], Any]:
    return lambda c, s: c.post("/v1/decide/batch", content=body, headers={**_auth(s), "content-type": content_type})


def _arrow(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _upload(kind: str, name: str, data: bytes, query: str = "") -> Callable[[httpx.Client, Service], Any]:
    return lambda c, s: c.post(f"/v1/screens/{kind}{query}", files={"file": (name, data)}, headers=_auth(s))


def _get(path: str, headers: dict[str, Any] | None = None, auth: bool = True) -> Callable[[httpx.Client, Service], Any]:
    return lambda c, s: c.get(path, headers={**(_auth(s) if auth else {}), **(headers or {})})


EDGE_INSTANTS = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2020-02-30T00:00:00Z",
                 "2020-09-20T12:00:00\u0000Z", "2020-09-20T12:00:00+99:00", "1" * 5000, "", "\ud800")  # fmt: skip
EMOJI_64 = "%F0%9F%98%80" * 64
CSV = b"app,transaction,where,at\ntiktok,internet_hosting,US,2020-11-12T23:59:00-05:00\n"


def hostile_cases() -> list[Hostile]:
    deep = "[" * 100_000 + "]" * 100_000
    cases = [
        Hostile("8 MB header", _get("/healthz", {"X-Big": "a" * (8 << 20)}, auth=False)),
        Hostile("8 MB Authorization", _get("/v1/apps", {"Authorization": "Bearer " + "a" * (8 << 20)}, auth=False)),
        Hostile("64 KB bearer token", _get("/v1/apps", {"Authorization": "Bearer " + "a" * 65536}, auth=False), True),
        Hostile("bogus token", _get("/v1/apps", {"Authorization": "Bearer nope"}, auth=False), True),
        Hostile("bogus scheme", _get("/v1/apps", {"Authorization": "Basic Zm9vOmJhcg=="}, auth=False), True),
        Hostile("x-appban-token bogus", _get("/v1/apps", {"X-Appban-Token": b"\xe9\xff" * 10}, auth=False), True),
        Hostile("1000 headers", _get("/healthz", {f"X-H{i}": "v" for i in range(1000)}, auth=False)),
        Hostile("decide without a token", lambda c, s: c.post("/v1/decide", json=QUESTION), True),
        Hostile("deep JSON body", _decide(deep), True),
        Hostile("deep JSON facts", _decide(_question(facts=json.loads("[" * 60 + "]" * 60))), True),
        Hostile(
            "deep facts object",
            _decide(
                b'{"app":"tiktok","transaction":"internet_hosting","where":"US",'
                b'"at":"2020-11-12T23:59:00Z","facts":' + b'{"a":' * 5000 + b"1" + b"}" * 5001
            ),
            True,
        ),
        Hostile(
            "huge int app", _decide(b'{"app":' + b"9" * 5000 + b',"transaction":"cdn","where":"US","at":"x"}'), True
        ),
        Hostile("2**70 at", _decide(_question(at=2**70)), True),
        Hostile(
            "1e400 where",
            _decide(b'{"app":"tiktok","transaction":"cdn","where":1e400,"at":"2020-01-01T00:00:00Z"}'),
            True,
        ),
        Hostile(
            "NaN fact",
            _decide(b'{"app":"tiktok","transaction":"cdn","where":"US","at":"2020-01-01T00:00:00Z","facts":{"x":NaN}}'),
            True,
        ),
        Hostile("invalid UTF-8 body", _decide(b'{"app":"\xff\xfe","transaction":"cdn","where":"US","at":"x"}'), True),
        Hostile("UTF-16 body", _decide(json.dumps(QUESTION).encode("utf-16"))),
        Hostile("NUL in app", _decide(_question(app="tik\u0000tok")), True),
        Hostile(
            "lone surrogate escape",
            _decide(b'{"app":"\\ud800","transaction":"cdn","where":"US","at":"2020-01-01T00:00:00Z"}'),
            True,
        ),
        Hostile("text/plain body", _decide(_question(), "text/plain")),
        Hostile("no content type", lambda c, s: c.post("/v1/decide", content=_question(), headers=_auth(s))),
        Hostile("empty body", _decide(b""), True),
        Hostile("JSON array body", _decide(b"[1,2,3]"), True),
        Hostile(
            "duplicate keys",
            _decide(b'{"app":"tiktok","app":"wechat","transaction":"cdn","where":"US","at":"2020-01-01T00:00:00Z"}'),
        ),
        Hostile("32 MB body", _decide(b'{"app":"' + b"a" * (32 << 20) + b'"}'), True),
        Hostile("tz path traversal", _decide(_question(at="2020-01-01T00:00:00", tz="../../../etc/passwd")), True),
        Hostile("tz huge", _decide(_question(at="2020-01-01T00:00:00", tz="A" * 100000)), True),
        # 64 characters, 256 bytes: a file name too long for the zone database's directory.
        Hostile("tz 256 bytes", _decide(_question(at="2020-01-01T00:00:00", tz="\U0001f600" * 64)), True),
        Hostile("timeline tz 256 bytes", _get("/v1/timeline?app=tiktok&from=2020-01-01T00:00:00&tz=" + EMOJI_64), True),
        Hostile("audit from emoji", _get("/v1/audit?from=2020-01-01T00:00:00" + EMOJI_64), True),
        Hostile("batch: deep line", _batch(deep.encode() + b"\n"), True),
        Hostile("batch: invalid UTF-8", _batch(b'{"app":"\xff"}\n'), True),
        Hostile("batch: 200k lines", _batch((json.dumps(QUESTION) + "\n").encode() * 200_000)),
        Hostile("batch: not Arrow", _batch(b"ARROW1\x00\x00garbage", "application/vnd.apache.arrow.stream"), True),
        Hostile(
            "batch: Arrow ints",
            _batch(
                _arrow(pa.table({"app": [1], "transaction": [2], "where": [3], "at": [4]})),
                "application/vnd.apache.arrow.stream",
            ),
            True,
        ),
        Hostile(
            "batch: Arrow lists",
            _batch(
                _arrow(pa.table({"app": [["tiktok"]], "transaction": [["cdn"]], "where": [["US"]], "at": [["x"]]})),
                "application/vnd.apache.arrow.stream",
            ),
            True,
        ),
        Hostile("batch: wrong type", _batch(b"app,transaction\n", "text/csv"), True),
        Hostile(
            "timeline from edge",
            _get("/v1/timeline?app=tiktok&from=0001-01-01T00:00:00%2B14:00&to=9999-12-31T23:59:59-14:00"),
        ),
        Hostile("timeline NUL", _get("/v1/timeline?app=tiktok&from=2020-01-01T00:00:00%00Z"), True),
        Hostile("timeline tz", _get("/v1/timeline?app=tiktok&from=2020-01-01T00:00:00&tz=%2E%2E%2Fetc"), True),
        Hostile("timeline invalid UTF-8", _get("/v1/timeline?app=%FF%FE"), True),
        Hostile("rules id NUL", _get("/v1/rules/%00"), True),
        Hostile("rules id long", _get("/v1/rules/" + "x" * 8000), True),
        Hostile("runs limit 10**30", _get("/v1/runs?limit=" + "9" * 30), True),
        Hostile("run offset -1", _get("/v1/runs/x?offset=-1"), True),
        Hostile("run offset 2**64", _get(f"/v1/runs/x?offset={2**64}"), True),
        Hostile("audit from edge", _get("/v1/audit?from=9999-12-31T23:59:59-14:00&to=0001-01-01T00:00:00%2B14:00")),
        Hostile("audit from NUL", _get("/v1/audit?from=%00"), True),
        Hostile("audit offset huge", _get(f"/v1/audit?offset={2**63}")),
        Hostile("replay unknown", _get("/v1/audit/" + "%FF" * 10 + "/replay"), True),
        Hostile("screen unknown kind", _upload("bogus", "a.csv", CSV), True),
        Hostile("upload named .", _upload("inventory", ".", CSV), follow_run=True),
        Hostile("upload named ..", _upload("inventory", "..", CSV), follow_run=True),
        Hostile("upload named ../../x.csv", _upload("inventory", "../../x.csv", CSV), follow_run=True),
        Hostile("upload name NUL", _upload("inventory", "a\u0000.csv", CSV), follow_run=True),
        Hostile("upload not a table", _upload("inventory", "x.csv", b"\x00\xff" * 1000), follow_run=True),
        Hostile("upload unknown suffix", _upload("payments", "x.bin", b"PAR1\x00"), follow_run=True),
        Hostile("upload unknown option", _upload("inventory", "a.csv", CSV, "?bogus=1"), True),
        Hostile("upload bad at option", _upload("inventory", "a.csv", CSV, "?at=9999-12-31T23:59:59-14:00")),
        Hostile("upload 65 MB", _upload("payments", "a.csv", b"a" * (65 << 20)), True),
        Hostile("upload no file", lambda c, s: c.post("/v1/screens/inventory", headers=_auth(s)), True),
        Hostile(
            "upload read token", lambda c, s: c.post("/v1/screens/inventory", files={"file": ("a.csv", CSV)}), True
        ),
    ]
    for i, instant in enumerate(EDGE_INSTANTS):
        cases.append(Hostile(f"decide at edge instant {i}", _decide(_question(at=instant))))
    return cases


def _follow(client: httpx.Client, s: Service, started: httpx.Response) -> str | None:
    url = started.json()["status_url"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = client.get(url, headers=_auth(s))
        if run.status_code >= 500:
            return f"{url}: {run.status_code}"
        body = run.json()
        if body["status"] not in ("queued", "running"):
            error = body.get("error") or ""
            if (s.folder and str(s.folder) in error) or "/tmp/" in error:
                return f"the run's error shows a server path: {error[:200]}"
            return None
        time.sleep(0.2)
    return "the run did not finish within 120 s"


def slow_body(s: Service) -> str | None:
    """A body that trickles in must not stop the server answering others."""
    host, port = s.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST /v1/decide HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {s.token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".encode()
        )
        for _ in range(3):
            sock.sendall(b" ")
            if not s.alive():
                return "the server stopped answering while a slow body was arriving"
    return None


def hostile(s: Service, result: ApiResult, log: Any = None) -> None:
    with httpx.Client(base_url=s.base, timeout=120) as client:
        for case in hostile_cases():
            result.cases += 1
            started = time.monotonic()
            try:
                response = case.send(client, s)
                status = response.status_code if response is not None else 0
                outcome = str(status)
            except httpx.HTTPError as exc:  # the server may close the connection on an oversized request
                status, outcome = 0, f"connection: {type(exc).__name__}"
            problem = None
            if status >= 500:
                problem = f"{status}"
            elif case.want4xx and 200 <= status < 300:
                problem = f"{status}: accepted; expected a 4xx"
            if problem is None and case.follow_run and response is not None and status == 202:
                problem = _follow(client, s, response)
            if not s.alive():
                problem = f"{outcome}; the server died"
            if problem:
                result.bad.append(f"{case.name}: {problem}")
            if log:
                took = time.monotonic() - started
                print(
                    f"  {case.name}: {outcome} ({took:.1f} s){' <-- ' + problem if problem else ''}",
                    file=log,
                    flush=True,
                )
        result.cases += 1
        problem = slow_body(s)
        if problem:
            result.bad.append(f"slow body: {problem}")


def run_schemathesis(s: Service, folder: Path, max_examples: int, seed: int, max_time: int | None) -> dict[str, Any]:
    report = folder / "schemathesis.xml"
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run", f"{s.base}/openapi.json",
        "--checks", "not_a_server_error", "--phases", "examples,coverage,fuzzing,stateful", "--mode", "all",
        "--max-examples", str(max_examples), "--seed", str(seed), "--header", f"Authorization: Bearer {s.token}",
        "--request-timeout", "60", "--suppress-health-check", "all", "--no-shrink", "--workers", "1",
        "--generation-database", "none", "--report", "junit", "--report-junit-path", str(report),
    ]  # fmt: skip
    if max_time:
        command += ["--max-time", str(max_time)]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz.schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False, env=env, cwd=folder)
    text = done.stdout + done.stderr
    failures = [line.strip() for line in text.splitlines() if "Server error" in line or line.startswith("_")]
    summary = [line.strip() for line in text.splitlines()[-25:] if line.strip()]
    return {"exit": done.returncode, "output": text, "summary": summary, "failures": failures, "alive": s.alive()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.api", description=__doc__)
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--max-time", type=int, default=None, help="seconds for schemathesis in all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-schemathesis", action="store_true")
    parser.add_argument("--output", type=Path, help="write schemathesis' full output here")
    args = parser.parse_args(argv)
    result = ApiResult()
    with tempfile.TemporaryDirectory(prefix="appban-fuzz-api-") as tmp, service(Path(tmp)) as s:
        hostile(s, result, sys.stderr)
        if not args.no_schemathesis:
            result.schemathesis = run_schemathesis(s, Path(tmp), args.max_examples, args.seed, args.max_time)
            if args.output:
                args.output.write_text(result.schemathesis["output"], encoding="utf-8")
            print("\n".join(result.schemathesis["summary"]))
            if result.schemathesis["exit"] != 0:
                result.bad.append(f"schemathesis exited {result.schemathesis['exit']}")
            if not result.schemathesis["alive"]:
                result.bad.append("the server died under schemathesis")
        server_log = s.tail(40)
    print(f"hostile requests: {result.cases}, problems: {len(result.bad)}")
    for line in result.bad:
        print(f"  {line}")
    if result.bad:
        print("server log tail:\n" + server_log)
    return 1 if result.bad else 0


if __name__ == "__main__":
    sys.exit(main())

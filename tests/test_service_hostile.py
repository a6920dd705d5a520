"""The HTTP API against a hostile client: every request below is answered 4xx with a message naming the
field (or 2xx), never 5xx; nothing it sends ends up in the audit trail unchecked, or in the server's
memory unbounded; the batch work runs off the event loop."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException

from appban.audited import Desk
from appban.engine.batch import TableInputError, decide_table
from appban.service.app import create_app, upload_name
from appban.service.limits import Turns
from appban.service.protocol import MAX_HEAD_BYTES
from appban.service.settings import ServiceSettings
from appban.store import AuditStore

QUESTION = {"app": "wechat", "transaction": "payment_processing", "where": "US", "at": "2020-10-15T12:00:00Z"}
EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
NUL = "2020-10-15T12:00:00Z\x00junk"
NDJSON = {"content-type": "application/x-ndjson"}
ARROW = {"content-type": "application/vnd.apache.arrow.stream"}


@pytest.fixture
def secrets(tmp_path: Path) -> dict[str, str]:
    store = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        return {scope: store.create_token(name=f"{scope}-token", scope=scope)[1] for scope in ("read", "write")}
    finally:
        store.close()


def client(tmp_path: Path, **settings: Any) -> TestClient:
    options = ServiceSettings(db_url=f"sqlite:///{tmp_path / 'audit.db'}", upload_dir=tmp_path, **settings)
    return TestClient(create_app(options), raise_server_exceptions=False)


@pytest.fixture
def api(tmp_path: Path, secrets: dict[str, str]) -> Iterator[TestClient]:
    with client(tmp_path) as running:
        running.headers["Authorization"] = f"Bearer {secrets['write']}"
        yield running


def message(response: Any) -> str:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    text: str = response.json()["error"]["message"]
    return text


def arrow(table: pa.Table, compression: str | None = None) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema, options=ipc.IpcWriteOptions(compression=compression)) as writer:
        writer.write_table(table)
    return sink.getvalue()


def lines(*rows: dict[str, Any] | str) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


# ------------------------------------------------------------------------------------------------
# Instants


@pytest.mark.parametrize("at", [*EDGES, NUL])
def test_instants_out_of_the_calendar_or_with_junk_are_400_everywhere(api: TestClient, at: str) -> None:
    assert "at:" in message(api.post("/v1/decide", json=QUESTION | {"at": at}))
    assert "line 1: at:" in message(api.post("/v1/decide/batch", content=lines(QUESTION | {"at": at}), headers=NDJSON))
    table = pa.table({key: [value] for key, value in (QUESTION | {"at": at}).items()})
    assert "row 0: at:" in message(api.post("/v1/decide/batch", content=arrow(table), headers=ARROW))
    assert message(api.get("/v1/audit", params={"from": at})).startswith("from:")
    assert message(api.get("/v1/audit", params={"to": at})).startswith("to:")
    assert message(api.get("/v1/timeline", params={"app": "wechat", "from": at})).startswith("from/to:")
    # Nothing was recorded: the junk after the NUL never reached the audit trail.
    assert api.get("/v1/audit").json() == []


def test_the_calendars_own_edges_are_answered(api: TestClient) -> None:
    for at in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        assert api.post("/v1/decide", json=QUESTION | {"at": at}).status_code == 200
        assert api.get("/v1/audit", params={"from": at}).status_code == 200
    rows = lines(QUESTION | {"at": "0001-01-01T00:00:00Z"}, QUESTION | {"at": "9999-12-31T23:59:59Z"})
    answered = api.post("/v1/decide/batch", content=rows, headers=NDJSON)
    assert answered.status_code == 200, answered.text
    assert [json.loads(line)["verdict"] for line in answered.text.splitlines()] == ["not_prohibited", "revoked"]


# ------------------------------------------------------------------------------------------------
# Numbers, nesting and types


def test_integers_beyond_64_bits_are_4xx(api: TestClient) -> None:
    huge = "100000000000000000000"
    assert "offset" in message(api.get("/v1/audit", params={"offset": huge}))
    assert "offset" in message(api.get("/v1/runs/x", params={"offset": huge}))
    for row in (QUESTION | {"at": -1e23}, QUESTION | {"at": 10**30}):
        assert "line 1: at: not text" in message(api.post("/v1/decide/batch", content=lines(row), headers=NDJSON))
    huge = QUESTION | {"facts": {"user_to_user_transfer": 10**30}}
    beyond = message(api.post("/v1/decide/batch", content=lines(huge), headers=NDJSON))
    assert "line 1: facts: fact 'user_to_user_transfer' is true or false" in beyond


def test_deep_nesting_is_400_with_the_line(api: TestClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    body = lines(QUESTION, deep, json.dumps(QUESTION)[:-1] + ', "facts": ' + '{"a":' * 5000 + "1" + "}" * 5001)
    refused = message(api.post("/v1/decide/batch", content=body, headers=NDJSON))
    assert "line 2: not JSON: nested more than 64" in refused and "line 3: not JSON" in refused
    facts = pa.table({key: [value] for key, value in QUESTION.items()} | {"facts": ["[" * 10_000]})
    assert "facts" in message(api.post("/v1/decide/batch", content=arrow(facts), headers=ARROW))


def test_columns_of_the_wrong_type_are_400_naming_them(api: TestClient, tmp_path: Path) -> None:
    base = {key: [value] for key, value in QUESTION.items()}
    for column, value in (("app", [["wechat"]]), ("where", [{"code": "US"}]), ("facts", [{"x": True}])):
        table = pa.table(base | {column: value})
        assert f"{column}: column type" in message(api.post("/v1/decide/batch", content=arrow(table), headers=ARROW))
        # The same table from a Parquet file, as the library and the CLI read it.
        pq.write_table(table, tmp_path / "wrong.parquet")
        with pytest.raises(TableInputError, match=f"{column}: column type"):
            decide_table(pq.read_table(tmp_path / "wrong.parquet"))
    twice = pa.Table.from_arrays([pa.array(["wechat"]), *(pa.array(v) for v in base.values())], ["app", *base])
    assert "appears 2 times" in message(api.post("/v1/decide/batch", content=arrow(twice), headers=ARROW))
    # A line is what /v1/decide takes: a field of its own is refused, not passed through or dropped.
    unknown = lines(QUESTION, QUESTION | {"id": 1})
    assert message(api.post("/v1/decide/batch", content=unknown, headers=NDJSON)).startswith("line 2: id: unknown")


def test_a_field_first_seen_on_a_later_line_is_read(api: TestClient) -> None:
    transfer = {"user_to_user_transfer": True}
    rows = lines(QUESTION, QUESTION | {"facts": transfer}, "", QUESTION | {"facts": None, "tz": "UTC"})
    answered = api.post("/v1/decide/batch", content=rows, headers=NDJSON)
    assert answered.status_code == 200, answered.text
    decided = [json.loads(line) for line in answered.text.splitlines()]
    assert [row["facts"] for row in decided] == [None, json.dumps(transfer), None]
    assert decided[2]["tz"] == "UTC" and decided[0]["tz"] is None
    # An error names the line it was on, blank lines counted.
    wrong = lines(QUESTION, "", QUESTION | {"where": "nowhere"})
    assert message(api.post("/v1/decide/batch", content=wrong, headers=NDJSON)).startswith("line 3: where:")


def test_arrow_streams_that_do_not_hold_together_or_decode_too_large_are_400(
    tmp_path: Path, secrets: dict[str, str]
) -> None:
    with client(tmp_path, max_batch_bytes=1 << 20) as small:
        small.headers["Authorization"] = f"Bearer {secrets['read']}"
        rows = 300_000  # ~7 MB of zeros once decoded, a few kilobytes compressed
        zeros = np.zeros(rows, dtype=np.int32)
        columns = {key: pa.DictionaryArray.from_arrays(zeros, [value]) for key, value in QUESTION.items()}
        bomb = arrow(pa.table(columns | {"pad": np.zeros(rows, dtype=np.int64)}), compression="zstd")
        assert len(bomb) < 100_000
        refused = message(small.post("/v1/decide/batch", content=bomb, headers=ARROW))
        assert "decodes to" in refused and "at most 1,048,576" in refused
        # Offsets pointing beyond their buffer: caught by the full validation, not read out of bounds.
        good = arrow(pa.table({key: [value] for key, value in QUESTION.items()}))
        broken = bytearray(good)
        offsets = broken.rfind((len("2020-10-15T12:00:00Z")).to_bytes(4, "little"))
        broken[offsets : offsets + 4] = (1 << 30).to_bytes(4, "little")
        assert small.post("/v1/decide/batch", content=bytes(broken), headers=ARROW).status_code == 400
        for junk in (b"", b"\xff" * 64, good[: len(good) // 2]):
            assert small.post("/v1/decide/batch", content=junk, headers=ARROW).status_code == 400


def test_many_distinct_questions_in_one_batch_are_refused(tmp_path: Path, secrets: dict[str, str]) -> None:
    with client(tmp_path, max_batch_questions=2) as strict:
        strict.headers["Authorization"] = f"Bearer {secrets['read']}"
        places = lines(*(QUESTION | {"where": where} for where in ("US", "IN", "CN", "US")))
        assert "at most 2" in message(strict.post("/v1/decide/batch", content=places, headers=NDJSON))


# ------------------------------------------------------------------------------------------------
# Tokens and headers


def test_bogus_tokens_are_refused_by_shape_and_never_remembered(api: TestClient, secrets: dict[str, str]) -> None:
    assert api.get("/v1/apps").status_code == 200
    app = api.app
    remembered = app.state.token_cache  # type: ignore[attr-defined]
    assert len(remembered) == 1 and all(isinstance(key, bytes) and len(key) == 32 for key in remembered)
    for bogus in ("x" * 150, "appban_" + "z" * 150, "appban_00_" + "a" * 1000, secrets["read"] + "\x7f"):
        refused = api.get("/v1/apps", headers={"Authorization": f"Bearer {bogus}"})
        assert refused.status_code == 401
        assert api.get("/v1/apps", headers={"Authorization": "", "X-Appban-Token": bogus}).status_code == 401
    assert len(remembered) == 1
    huge = api.get("/v1/apps", headers={"Authorization": "Bearer " + "a" * (MAX_HEAD_BYTES + 1)})
    assert huge.status_code == 431 and "headers" in message(huge)


# ------------------------------------------------------------------------------------------------
# Screening runs


@pytest.mark.parametrize(
    ("kind", "options", "named"),
    [
        ("inventory", {"fleet": "nosuchfleet"}, "fleet:"),
        ("inventory", {"where": "nowhere"}, "where:"),
        ("inventory", {"at": EDGES[0]}, "at:"),
        ("inventory", {"at": "2020-10-15T12:00:00", "tz": "Mars/Olympus"}, "tz:"),
        ("inventory", {"map": "colour=x"}, "map:"),
        ("inventory", {"at_column": "\x00"}, "at_column:"),
        ("inventory", {"nosuch": "1"}, "nosuch"),
        ("network", {"role": "nosuchrole"}, "role:"),
        ("network", {"log_format": "nosuchformat"}, "log_format:"),
        ("network", {"log_format": "bind", "map": "domain=d"}, "map:"),
        ("payments", {"input_format": "nosuchformat"}, "input_format:"),
        ("code", {"at": NUL}, "at:"),
        ("nosuchkind", {}, "unknown screen"),
    ],
)
def test_run_options_are_checked_before_the_run(
    api: TestClient, kind: str, options: dict[str, str], named: str
) -> None:
    refused = api.post(f"/v1/screens/{kind}", params=options, files={"file": ("a.csv", b"name\nWeChat\n")})
    assert named in message(refused) and refused.status_code == 400
    assert api.get("/v1/runs").json() == []


def wait_for_run(api: TestClient, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        run: dict[str, Any] = api.get(f"/v1/runs/{run_id}").json()
        if run["status"] in ("done", "failed") or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def test_upload_names_cannot_be_folders_and_run_errors_show_no_server_path(api: TestClient, tmp_path: Path) -> None:
    for sent in (".", "..", "../../etc/passwd", "a\x00b.csv", "C:\\x\\apps.csv"):
        started = api.post("/v1/screens/inventory", files={"file": (sent, b"name\nWeChat\n")})
        assert started.status_code == 202, started.text
        run = wait_for_run(api, started.json()["id"])
        assert run["filename"] not in ("", ".", "..") and "/" not in run["filename"] and "\x00" not in run["filename"]
        assert "OSError" not in (run["error"] or "")
    failed = wait_for_run(api, api.post("/v1/screens/inventory", files={"file": ("x.csv", b"")}).json()["id"])
    assert failed["status"] == "failed" and "x.csv" in failed["error"]
    assert str(tmp_path) not in failed["error"] and "appban-upload" not in failed["error"]
    assert [upload_name(n) for n in ("..", "a/b.csv", "", None, "...")] == [
        "upload",
        "b.csv",
        "upload",
        "upload",
        "upload",
    ]


# ------------------------------------------------------------------------------------------------
# The event loop and memory


def test_batches_are_decoded_and_decided_off_the_event_loop(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    original = Desk.decide_batch

    def recording(self: Desk, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Desk, "decide_batch", recording)
    loop_thread = api.portal.call(lambda: threading.current_thread().name)  # type: ignore[union-attr]
    many = lines(*([QUESTION] * 5000))
    assert api.post("/v1/decide/batch", content=many, headers=NDJSON).status_code == 200
    table = pa.table({key: [value] * 5000 for key, value in QUESTION.items()})
    assert api.post("/v1/decide/batch", content=arrow(table), headers=ARROW).status_code == 200
    assert len(threads) == 2 and loop_thread not in threads


def test_batches_take_turns_and_a_full_queue_is_429() -> None:
    async def scenario() -> list[str]:
        turns = Turns(workers=1, queue=1)
        order: list[str] = []
        release = asyncio.Event()

        async def batch(name: str) -> None:
            try:
                async with turns.turn():
                    order.append(f"{name} in")
                    await release.wait()
            except HTTPException as exc:
                order.append(f"{name} {exc.status_code}")

        first = asyncio.create_task(batch("a"))
        await asyncio.sleep(0)
        second = asyncio.create_task(batch("b"))
        await asyncio.sleep(0)
        await batch("c")  # one holds the turn and one waits: no room
        release.set()
        await asyncio.gather(first, second)
        return order

    assert asyncio.run(scenario()) == ["a in", "c 429", "b in"]


def test_no_hostile_batch_is_a_5xx(api: TestClient) -> None:
    bodies: list[tuple[bytes | str, dict[str, str]]] = [
        ("\n\n", NDJSON),
        ("[1,2]\n", NDJSON),
        ('{"app": NaN}\n', NDJSON),
        (b"\xff\xfe{}\n", NDJSON),
        (lines({"x": 0}), NDJSON),
        (lines(*({f"k{i}": 1} for i in range(100))), NDJSON),
        (lines(QUESTION | {"facts": [1]}), NDJSON),
        (lines(QUESTION | {"facts": '{"user_to_user_transfer": "perhaps"}'}), NDJSON),
        (lines(QUESTION | {"app": "x" * 100_000}), NDJSON),
        (lines(QUESTION | {"tz": 5}), NDJSON),
        (arrow(pa.table({"app": pa.nulls(2), "at": pa.nulls(2)})), ARROW),
        (arrow(pa.table({k: pa.array([v]).dictionary_encode() for k, v in QUESTION.items()})), ARROW),
        (arrow(pa.table({**{k: [v] for k, v in QUESTION.items()}, "at": pa.array([2**62], pa.timestamp("s"))})), ARROW),
        (b"x", {"content-type": "text/plain"}),
    ]
    for body, headers in bodies:
        answer = api.post("/v1/decide/batch", content=body, headers=headers)
        assert answer.status_code < 500, (body[:80], answer.text)

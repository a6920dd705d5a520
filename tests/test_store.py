"""The audit store against real databases: an SQLite file and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import multiprocessing
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from appban.cli import app
from appban.engine.decide import decide, decide_filled
from appban.rulebook.loader import Rulebook, load_rulebook
from appban.store import (
    INTERRUPTED,
    OWNER,
    AuditStore,
    DecisionInput,
    PreparedDecision,
    ReplayError,
    differences,
    replay,
    rulebook_from_canonical_json,
)
from appban.store.audit import MIGRATIONS, time_ordered_id
from appban.store.models import Base
from appban.store.verify import verify_store
from appban.vocabulary import Category
from tests.conftest import without
from tests.postgres import PostgresCluster

runner = CliRunner()

QUESTION = {"app": "tiktok", "transaction": "app_store_distribution", "where": "US", "at": "2020-11-13T00:00:00Z"}
TABLES = {"decisions", "runs", "findings", "tokens", "rulebooks", "batches", "answer_templates", "audit_chain"}


@pytest.fixture()
def store(store_url: str) -> Iterator[AuditStore]:
    opened = AuditStore(store_url)
    yield opened
    opened.close()


@pytest.fixture()
def raw(store_url: str) -> Iterator[Engine]:
    """A plain engine on the same database, for what the store's API does not offer."""
    url = store_url.replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    yield engine
    engine.dispose()


def record(store: AuditStore, rulebook: Rulebook, question: dict[str, Any] | None = None, **extra: Any) -> str:
    """Decide a question and record the answer, as the service does."""
    question = dict(question or QUESTION, facts={})
    decision = decide(question["app"], question["transaction"], question["where"], question["at"], rulebook=rulebook)
    return store.record_decision(
        kind="decide",
        input=question,
        result=decision.to_json_dict(),
        rulebook=rulebook,
        instant=dt.datetime.fromisoformat(question["at"]),
        caller=extra.get("caller", "cli"),
    )


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


# --- schema -------------------------------------------------------------------------------------


def test_migrations_create_the_tables_and_are_idempotent(store: AuditStore, store_url: str, raw: Engine) -> None:
    assert set(inspect(raw).get_table_names()) >= TABLES
    AuditStore(store_url).close()  # opening again migrates nothing and fails nothing
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with raw.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head == "0005"
        # The models describe exactly what the migrations built.
        assert compare_metadata(context, Base.metadata) == []
    indexes = {index["name"] for index in inspect(raw).get_indexes("decisions")}
    assert "ix_decisions_asked_at" in indexes


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def test_default_database_is_a_sqlite_file_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("APPBAN_DB", raising=False)
    with AuditStore() as store:
        assert store.dialect == "sqlite"
        assert store.url == "sqlite:///appban-audit.db"
    assert (tmp_path / "appban-audit.db").is_file()
    monkeypatch.setenv("APPBAN_DB", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    with AuditStore() as store:
        assert store.url.endswith("elsewhere.db")
    assert (tmp_path / "elsewhere.db").is_file()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    with AuditStore(f"sqlite:///{tmp_path / 'a.db'}") as store, store._engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_postgres_url_hides_its_password(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.new_database().replace("appban@", "appban:s3cret@")
    with AuditStore(url) as store:
        assert store.dialect == "postgresql"
        assert store.url == url
        assert "s3cret" not in repr(store)


# --- decisions ----------------------------------------------------------------------------------


def test_record_and_read_a_decision(store: AuditStore, rulebook: Rulebook) -> None:
    before = dt.datetime.now(dt.UTC)
    unicode = {"note": "微信支付 — TikTok ✓ 🚫", "nested": {"list": [1, 2.5, True, None, "é"]}}
    eastern = dt.timezone(dt.timedelta(hours=-5))
    decision_id = store.record_decision(
        kind="decide",
        input={**QUESTION, "facts": {}, "extra": unicode},
        result={"verdict": "prohibited", "extra": unicode},
        rulebook=rulebook,
        instant=dt.datetime(2020, 11, 12, 19, 0, tzinfo=eastern),
        caller="token-ops",
    )
    found = store.decision(decision_id)
    assert found is not None
    assert found.id == decision_id and found.kind == "decide" and found.caller == "token-ops"
    assert found.asked_at.tzinfo is not None and found.asked_at.utcoffset() == dt.timedelta(0)
    assert before <= found.asked_at <= dt.datetime.now(dt.UTC)
    assert found.instant == dt.datetime(2020, 11, 13, 0, 0, tzinfo=dt.UTC)
    assert found.instant is not None and found.instant.utcoffset() == dt.timedelta(0)
    assert found.input["extra"] == unicode and found.result["extra"] == unicode
    assert found.rulebook_version == rulebook.version
    assert found.run_id is None
    assert store.decision("no-such-id") is None
    assert json.loads(json.dumps(found.to_json_dict()))["asked_at"].endswith("Z")


def test_decisions_refuse_naive_instants_and_unknown_kinds(store: AuditStore, rulebook: Rulebook) -> None:
    with pytest.raises(ValueError, match="time zone"):
        store.record_decision(
            kind="decide", input={}, result={}, rulebook=rulebook, instant=dt.datetime(2020, 1, 1), caller="cli"
        )
    with pytest.raises(ValueError, match="kind"):
        store.record_decision(kind="guess", input={}, result={}, rulebook=rulebook, instant=None, caller="cli")
    with pytest.raises(ValueError, match="time zone"):
        store.decisions(start=dt.datetime(2020, 1, 1))
    assert store.decisions() == []


def test_decisions_window_and_order(store: AuditStore, rulebook: Rulebook) -> None:
    marks = [dt.datetime.now(dt.UTC)]
    ids = []
    for n in range(3):
        time.sleep(0.002)
        ids.append(
            store.record_decision(
                kind="screen", input={"n": n}, result={}, rulebook=rulebook, instant=None, caller="cli"
            )
        )
        time.sleep(0.002)
        marks.append(dt.datetime.now(dt.UTC))
    assert [d.id for d in store.decisions()] == ids
    assert [d.id for d in store.decisions(newest_first=True)] == ids[::-1]
    assert [d.id for d in store.decisions(start=marks[1], end=marks[2])] == [ids[1]]
    assert [d.id for d in store.decisions(start=marks[1])] == ids[1:]
    assert [d.id for d in store.decisions(end=marks[2])] == ids[:2]
    assert [d.id for d in store.decisions(limit=1, offset=1)] == [ids[1]]
    assert [d.id for d in store.decisions(limit=2, newest_first=True)] == ids[:0:-1]
    # Exported in chunks smaller than the result: nothing lost or repeated at the seams.
    assert [d.id for d in store.iter_decisions(chunk=1)] == ids
    assert [d.id for d in store.iter_decisions(start=marks[1], chunk=1)] == ids[1:]
    assert store.decision(ids[0]) is not None and store.decision(ids[0]).instant is None  # type: ignore[union-attr]


def test_record_ten_thousand_decisions_in_one_call(store: AuditStore, rulebook: Rulebook) -> None:
    instant = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    rows = [DecisionInput({"row": n}, {"verdict": "not_prohibited"}, instant) for n in range(10_000)]
    started = time.perf_counter()
    ids = store.record_decisions(rows, rulebook=rulebook, caller="batch-job")
    elapsed = time.perf_counter() - started
    assert len(ids) == len(set(ids)) == 10_000
    assert store.count_decisions() == 10_000
    assert elapsed < 30, f"10,000 rows took {elapsed:.1f} s"
    sample = store.decision(ids[1234])
    assert sample is not None and sample.input == {"row": 1234} and sample.kind == "batch"
    assert len({d.asked_at for d in store.decisions(limit=50)}) == 1  # one call, one asked_at
    assert sum(1 for _ in store.iter_decisions(chunk=3000)) == 10_000


def test_decisions_are_append_only(store: AuditStore, rulebook: Rulebook, raw: Engine) -> None:
    decision_id = record(store, rulebook)
    names = [name for name in dir(store) if not name.startswith("_")]
    assert not [name for name in names if name.startswith(("update", "delete", "remove", "edit", "purge"))]
    statements = [
        f"UPDATE decisions SET caller = 'someone else' WHERE id = '{decision_id}'",
        f"DELETE FROM decisions WHERE id = '{decision_id}'",
        f"UPDATE rulebooks SET canonical_json = '{{}}' WHERE version = '{rulebook.version}'",
    ]
    if store.dialect == "postgresql":
        statements.append("TRUNCATE decisions CASCADE")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), raw.begin() as connection:
            connection.execute(text(statement))
    found = store.decision(decision_id)
    assert found is not None and found.caller == "cli"


def _templated(store: AuditStore, rulebook: Rulebook, app: str, at: str) -> tuple[str, str]:
    """Record an answer as the service does (template and gap values); its id and its JSON text."""
    answer, instant = decide_filled(app, "cdn", "US", at, rulebook=rulebook)
    asked = {"app": app, "transaction": "cdn", "where": "US", "at": at, "facts": {}, "tz": None}
    prepared = store.prepare_decision(
        kind="decide", input=asked, result=answer, rulebook=rulebook, instant=instant, caller="svc"
    )
    store.write_prepared([prepared])
    return prepared.id, answer.text


def test_templated_answers_are_kept_once_and_read_back_whole(
    store: AuditStore, rulebook: Rulebook, raw: Engine
) -> None:
    # Three instants inside one segment of the law, asked with different spellings of the app: one template.
    asked = [
        ("tiktok", "2021-03-01T00:00:00Z"),
        ("TikTok", "2021-03-01T06:30:00Z"),
        ("Tik Tok", "2021-03-01T09:00:00Z"),
    ]
    written = [_templated(store, rulebook, app, at) for app, at in asked]
    for decision_id, text_answer in written:
        found = store.decision(decision_id)
        assert found is not None and found.result == json.loads(text_answer)
    with raw.connect() as connection:
        templates = connection.execute(text("SELECT digest, body FROM answer_templates")).all()
        rows = connection.execute(text("SELECT id, answer_template, result FROM decisions")).all()
    assert len(templates) == 1 and hashlib.sha256(templates[0][1].encode()).hexdigest() == templates[0][0]
    assert {row[1] for row in rows} == {templates[0][0]}
    for _, _, stored in rows:  # each row keeps only what fills the gaps
        values = stored if isinstance(stored, dict) else json.loads(stored)
        assert set(values) == {"app", "at"}
    # Exports and replays see whole answers.
    exported = list(store.iter_decisions())
    assert [d.result for d in exported] == [json.loads(t) for _, t in written]
    assert replay(store, written[0][0]).identical
    # The templates are append-only too.
    for statement in ("UPDATE answer_templates SET body = '{}'", "DELETE FROM answer_templates"):
        with pytest.raises(DBAPIError, match="append-only"), raw.begin() as connection:
            connection.execute(text(statement))


def test_driver_writes_store_what_sqlalchemy_stores(
    tmp_path: Path, rulebook: Rulebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQLite fast path (straight to the driver) and SQLAlchemy store byte-identical rows."""
    path = tmp_path / "a.db"
    with AuditStore(f"sqlite:///{path}") as store:
        answer, instant = decide_filled("wechat", "payment_processing", "US", "2020-09-21T04:01:00Z", rulebook=rulebook)
        asked = {"app": "wechat", "transaction": "payment_processing", "where": "US", "at": "x", "facts": {"a": True}}
        made = [
            store.prepare_decision(
                kind="decide", input=asked, result=result, rulebook=rulebook, instant=instant, caller="ops ✓"
            )
            for result in (
                answer,
                answer,
                {"verdict": "prohibited", "note": "微信"},
                {"verdict": "prohibited", "note": "微信"},
            )
        ]
        store.write_prepared([made[0], made[2]])  # the first write stores the template and the rulebook: SQLAlchemy
        monkeypatch.setattr(store, "_write", None)  # from now on, only the driver path can write
        store.write_prepared([made[1], made[3]])
    with sqlite3.connect(path) as connection:
        rows = {row[0]: row[1:] for row in connection.execute("SELECT * FROM decisions")}
        columns = [column[1] for column in connection.execute("PRAGMA table_info(decisions)")][1:]
    assert len(rows) == 4
    for sqlalchemy_row, driver_row in ((made[0], made[1]), (made[2], made[3])):
        first, second = rows[sqlalchemy_row.id], rows[driver_row.id]
        differing = {name for name, a, b in zip(columns, first, second, strict=True) if a != b}
        assert differing <= {"asked_at", "seq", "prev_hash", "chain_hash"}  # prepared at different times, chained
        assert [type(value) for value in first] == [type(value) for value in second]


def test_the_templates_migration_goes_down_and_up_again_keeping_the_guards(store_url: str, raw: Engine) -> None:
    AuditStore(store_url).close()
    config = _alembic_config()
    with raw.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert "answer_templates" not in inspect(raw).get_table_names()
    with AuditStore(store_url) as store:
        decision_id = store.record_decision(
            kind="decide",
            input={},
            result={"verdict": "prohibited"},
            rulebook=load_rulebook(),
            instant=None,
            caller="x",
        )
    with pytest.raises(DBAPIError, match="append-only"), raw.begin() as connection:
        connection.execute(text(f"DELETE FROM decisions WHERE id = '{decision_id}'"))


def test_decision_ids_are_uuid7_and_sort_in_the_order_they_were_made() -> None:
    made = []
    for _ in range(5):
        made += [time_ordered_id() for _ in range(50)]
        time.sleep(0.002)  # the order is by millisecond; ids of one millisecond are random among themselves
    parsed = [uuid.UUID(value) for value in made]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert len(set(made)) == len(made)
    stamps = [u.int >> 80 for u in parsed]
    assert stamps == sorted(stamps) and abs(stamps[-1] - time.time() * 1000) < 5_000
    groups = [made[i : i + 50] for i in range(0, len(made), 50)]
    assert all(max(a) < min(b) for a, b in itertools.pairwise(groups))


def test_a_failed_driver_write_leaves_nothing_behind(tmp_path: Path, rulebook: Rulebook) -> None:
    with AuditStore(f"sqlite:///{tmp_path / 'a.db'}") as store:

        def made() -> PreparedDecision:
            return store.prepare_decision(kind="decide", input={}, result={"v": 1}, rulebook=rulebook, instant=None,
                                          caller="x")  # fmt: skip

        first = made()
        store.write_prepared([first])  # stores the rulebook: later writes take the driver path
        fresh, again = made(), made()
        with pytest.raises(sqlite3.IntegrityError):
            store.write_prepared([fresh, first])  # the second row's id is taken
        assert store.decision(fresh.id) is None
        store.write_prepared([again])
        assert store.decision(again.id) is not None and store.count_decisions() == 2


def test_upgrading_an_older_store_keeps_its_decisions(tmp_path: Path, rulebook: Rulebook) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(
            text(
                "INSERT INTO decisions (id, kind, asked_at, caller, rulebook_version, instant, input, result, run_id) "
                "VALUES ('old-1', 'decide', '2021-01-01 00:00:00.000000', 'cli', 'v0', NULL, '{}', "
                '\'{"verdict": "enjoined"}\', NULL)'
            )
        )
    engine.dispose()
    with AuditStore(url) as store:
        found = store.decision("old-1")
        assert found is not None and found.result == {"verdict": "enjoined"}
        decision_id, answer = _templated(store, rulebook, "tiktok", "2020-11-13T00:00:00Z")
        recorded = store.decision(decision_id)
        assert recorded is not None and recorded.result == json.loads(answer)


# --- runs ---------------------------------------------------------------------------------------


def test_run_lifecycle_with_findings(store: AuditStore, rulebook: Rulebook, raw: Engine) -> None:
    run_id = store.create_run(
        kind="inventory",
        filename="apps.csv",
        caller="token-ops",
        rulebook_version=rulebook.version,
        options={"at": "2025-01-19T05:00:00Z", "tz": None},
        owner=OWNER,
    )
    run = store.run(run_id)
    assert run is not None and run.status == "queued" and run.started_at is None and run.progress_rows == 0
    assert run.options == {"at": "2025-01-19T05:00:00Z", "tz": None} and run.owner == OWNER
    store.start_run(run_id)
    store.set_progress(run_id, 1500)
    running = store.run(run_id)
    assert running is not None and running.status == "running" and running.started_at is not None
    assert running.progress_rows == 1500
    store.add_findings(run_id, [{"row": n, "app": "微信"} for n in range(150)])
    store.add_findings(run_id, [])
    store.add_findings(run_id, [{"row": n} for n in range(150, 250)])
    assert store.count_findings(run_id) == 250
    assert store.findings(run_id) == [{"row": n, "app": "微信"} for n in range(100)]
    assert [f["row"] for f in store.findings(run_id, offset=100, limit=100)] == list(range(100, 200))
    assert [f["row"] for f in store.findings(run_id, offset=200, limit=100)] == list(range(200, 250))
    assert store.findings(run_id, offset=250) == []
    with raw.connect() as connection:
        seqs = connection.execute(text("SELECT seq FROM findings ORDER BY seq")).scalars().all()
    assert seqs == list(range(250))
    decided = store.record_decision(
        kind="screen",
        input={"file": "apps.csv"},
        result={"rows": 250},
        rulebook=rulebook,
        instant=None,
        caller="token-ops",
        run_id=run_id,
    )
    assert store.decision(decided).run_id == run_id  # type: ignore[union-attr]
    store.finish_run(run_id, {"rows": 250, "prohibited": 3})
    done = store.run(run_id)
    assert done is not None and done.status == "done" and done.summary == {"rows": 250, "prohibited": 3}
    assert done.finished_at is not None and done.started_at is not None and done.finished_at >= done.started_at

    failed_id = store.create_run(
        kind="code", filename="app.apk", caller="cli", rulebook_version=rulebook.version, options={}, owner=OWNER
    )
    store.fail_run(failed_id, "not an APK")
    failed = store.run(failed_id)
    assert failed is not None and failed.status == "failed" and failed.error == "not an APK"
    assert [r.id for r in store.runs()] == [failed_id, run_id]
    assert [r.id for r in store.runs(limit=1)] == [failed_id]

    assert store.run("no-such-run") is None
    with pytest.raises(KeyError):
        store.start_run("no-such-run")
    with pytest.raises(KeyError):
        store.add_findings("no-such-run", [{"x": 1}])
    with pytest.raises(ValueError, match="kind"):
        store.create_run(kind="guess", filename="x", caller="cli", rulebook_version="v", options={}, owner=OWNER)


def test_concurrent_findings_get_contiguous_numbers(store: AuditStore) -> None:
    run_id = store.create_run(
        kind="network", filename="dns.log", caller="cli", rulebook_version="v", options={}, owner=OWNER
    )
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            for batch in range(10):
                store.add_findings(run_id, [{"worker": worker, "batch": batch, "i": i} for i in range(5)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    found = store.findings(run_id, limit=1000)
    assert len(found) == store.count_findings(run_id) == 200
    # Each call's findings stay together and in order.
    for start in range(0, 200, 5):
        chunk = found[start : start + 5]
        assert [f["i"] for f in chunk] == list(range(5)) and len({(f["worker"], f["batch"]) for f in chunk}) == 1


def test_fail_interrupted_runs(store: AuditStore) -> None:
    def new(owner: str) -> str:
        return store.create_run(
            kind="payments", filename="p.csv", caller="cli", rulebook_version="v", options={}, owner=owner
        )

    gone = "other-host:4242:0b5d5e1e-0000-4000-8000-000000000000"
    queued, running, finished, mine = new(gone), new(gone), new(gone), new(OWNER)
    store.start_run(running)
    store.start_run(finished)
    store.finish_run(finished, {"rows": 1})
    store.start_run(mine)
    assert store.fail_interrupted_runs(owner_alive=lambda owner: True) == 0
    assert store.fail_interrupted_runs() == 2
    for run_id in (queued, running):
        run = store.run(run_id)
        assert run is not None and run.status == "failed" and run.error == INTERRUPTED and run.finished_at
    assert store.run(finished).status == "done"  # type: ignore[union-attr]
    assert store.run(mine).status == "running"  # type: ignore[union-attr]
    assert store.fail_interrupted_runs() == 0


# --- tokens -------------------------------------------------------------------------------------


def test_tokens(store: AuditStore, raw: Engine) -> None:
    token_id, secret = store.create_token(name="ops dashboard", scope="read")
    assert secret.startswith(f"appban_{token_id}_") and len(secret) > 40
    with raw.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(text("SELECT * FROM tokens"))]
    assert len(rows) == 1 and rows[0]["hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in rows[0].values())  # the secret itself is nowhere

    checked = store.check_token(secret)
    assert checked is not None and checked.id == token_id and checked.scope == "read" and not checked.revoked
    assert store.check_token(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert store.check_token(f"appban_{token_id}_") is None
    assert store.check_token("not-a-token") is None
    assert store.check_token("") is None

    writer_id, writer = store.create_token(name="batch job", scope="write")
    assert store.revoke_token(token_id) is True
    assert store.check_token(secret) is None
    assert store.check_token(writer) is not None and store.check_token(writer).scope == "write"  # type: ignore[union-attr]
    assert store.revoke_token(token_id) is True  # already revoked: still known
    assert store.revoke_token("nope") is False
    listed = {t.id: t for t in store.tokens()}
    assert set(listed) == {token_id, writer_id}
    assert listed[token_id].revoked_at is not None and listed[writer_id].revoked_at is None
    assert "hash" not in listed[token_id].to_json_dict()
    with pytest.raises(ValueError, match="scope"):
        store.create_token(name="x", scope="admin")


# --- rulebook snapshots and replay ----------------------------------------------------------------


def test_rulebook_snapshot_round_trip(rulebook: Rulebook) -> None:
    rebuilt = rulebook_from_canonical_json(rulebook.canonical_json())
    assert rebuilt.version == rulebook.version
    assert rebuilt.canonical_json() == rulebook.canonical_json()
    assert list(rebuilt.instruments) == list(rulebook.instruments)
    instants = [
        "2020-08-07T00:00:00Z",
        "2020-09-21T04:00:00Z",
        "2020-11-13T00:00:00Z",
        "2021-06-10T00:00:00Z",
        "2023-06-01T00:00:00Z",
        "2025-01-19T05:00:00Z",
        "2026-01-01T00:00:00Z",
    ]
    compared = 0
    for app_id in rulebook.subjects.subjects:
        for category in Category:
            for where in ("US", "US-MT", "IN"):
                for at in instants:
                    a = decide(app_id, category, where, at, rulebook=rulebook).to_json_dict()
                    b = decide(app_id, category, where, at, rulebook=rebuilt).to_json_dict()
                    assert a == b, (app_id, category, where, at, differences(a, b))
                    compared += 1
    assert compared > 1000


def test_store_keeps_a_snapshot_of_each_rulebook_version(store: AuditStore, rulebook: Rulebook) -> None:
    assert store.rulebook(rulebook.version) is None
    record(store, rulebook)
    record(store, rulebook)
    older = without(rulebook, ids=("court-tiktok-v-trump-2020-09-27",))
    record(store, older)
    assert set(store.rulebook_versions()) == {rulebook.version, older.version}
    restored = store.rulebook(older.version)
    assert restored is not None and restored.version == older.version
    assert "court-tiktok-v-trump-2020-09-27" not in restored.instruments
    assert store.rulebook(older.version) is restored  # one object per version: the engine caches by it
    assert store.rulebook("sha256:0000000000000000") is None


def test_replay_is_identical_under_the_recorded_rulebook(store: AuditStore, store_url: str, rulebook: Rulebook) -> None:
    decision_id = record(store, rulebook)
    result = replay(store, decision_id)
    assert result.identical and result.differences == []
    assert result.recorded_version == rulebook.version
    assert result.replayed == store.decision(decision_id).result  # type: ignore[union-attr]

    # Recorded before the court orders entered the rulebook: replay uses that older law, not today's.
    older = without(rulebook, "court_order")
    old_id = record(store, older)
    recorded = store.decision(old_id)
    assert recorded is not None and recorded.result["verdict"] != result.replayed["verdict"]
    old = replay(store, old_id)
    assert old.identical and old.recorded_version == older.version

    done = cli("audit", "replay", decision_id, "--db", store_url)
    assert done.exit_code == 0, done.output
    assert "identical" in done.output and rulebook.version in done.output
    as_json = cli("audit", "replay", old_id, "--db", store_url, "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["identical"] is True


def test_replay_shows_a_tampered_answer(store: AuditStore, store_url: str, rulebook: Rulebook, raw: Engine) -> None:
    question = {**QUESTION, "facts": {}}
    honest = decide(**question, rulebook=rulebook).to_json_dict()
    tampered = {**honest, "verdict": "not_prohibited"}
    decision_id = store.record_decision(
        kind="decide", input=question, result=tampered, rulebook=rulebook, instant=None, caller="cli"
    )
    result = replay(store, decision_id)
    assert not result.identical and result.differences == ["verdict"]
    assert result.replayed["verdict"] == honest["verdict"]
    done = cli("audit", "replay", decision_id, "--db", store_url)
    assert done.exit_code == 1, done.output
    assert "verdict" in done.output and "not_prohibited" in done.output

    # A record whose rulebook snapshot is missing (written past the store) cannot be replayed.
    with raw.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO decisions (id, kind, asked_at, caller, rulebook_version, instant, input, result, run_id) "
                "VALUES ('orphan', 'decide', :at, 'cli', 'sha256:0000000000000000', NULL, :input, '{}', NULL)"
            ),
            {"at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC).replace(tzinfo=None), "input": json.dumps(question)},
        )
    with pytest.raises(ReplayError, match="no snapshot"):
        replay(store, "orphan")
    assert cli("audit", "replay", "orphan", "--db", store_url).exit_code == 2
    assert cli("audit", "replay", "no-such-id", "--db", store_url).exit_code == 2


def test_replay_of_other_kinds(store: AuditStore, rulebook: Rulebook) -> None:
    screen = store.record_decision(
        kind="screen", input={"file": "apps.csv"}, result={"rows": 3}, rulebook=rulebook, instant=None, caller="cli"
    )
    with pytest.raises(ValueError, match="cannot replay a screen record"):
        replay(store, screen)
    rows = [{**QUESTION, "facts": {}}, {**QUESTION, "app": "wechat", "transaction": "funds_transfer", "facts": {}}]
    answers = [decide(**row, rulebook=rulebook).to_json_dict() for row in rows]
    batch = store.record_decision(
        kind="batch", input={"rows": rows}, result={"rows": answers}, rulebook=rulebook, instant=None, caller="cli"
    )
    assert replay(store, batch).identical
    answers[1] = {**answers[1], "enforcement": "suspended"}
    changed = store.record_decision(
        kind="batch", input={"rows": rows}, result={"rows": answers}, rulebook=rulebook, instant=None, caller="cli"
    )
    assert replay(store, changed).differences == ["rows[1].enforcement"]
    [single] = store.record_decisions([DecisionInput(rows[0], answers[0])], rulebook=rulebook, caller="cli")
    assert replay(store, single).identical


def test_differences_name_dotted_paths() -> None:
    assert differences({"a": 1, "b": [1, {"c": 2}]}, {"a": 1, "b": [1, {"c": 3}, 4]}) == ["b[1].c", "b[2]"]
    assert differences({"a": True}, {"a": 1}) == ["a"]
    assert differences({"a": 1}, {"b": 1}) == ["a", "b"]
    assert differences([], {}) == ["(result)"]


# --- command line -------------------------------------------------------------------------------


def test_cli_export(store: AuditStore, store_url: str, rulebook: Rulebook, tmp_path: Path) -> None:
    ids = []
    marks = [dt.datetime.now(dt.UTC)]
    for app_id in ("tiktok", "wechat", "douyin"):
        time.sleep(0.002)
        ids.append(record(store, rulebook, {**QUESTION, "app": app_id}))
        time.sleep(0.002)
        marks.append(dt.datetime.now(dt.UTC))
    start, end = marks[1].isoformat(), marks[3].isoformat()

    lines = cli("audit", "export", "--from", start, "--to", end, "--format", "jsonl", "--db", store_url)
    assert lines.exit_code == 0, lines.output
    exported = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [row["id"] for row in exported] == ids[1:]
    first = exported[0]
    assert set(first) == {
        "id",
        "kind",
        "asked_at",
        "caller",
        "rulebook_version",
        "bundle",
        "instant",
        "input",
        "result",
        "run_id",
    }
    assert first["bundle"] is None and first["result"]["bundle"] is None  # the package's own data
    assert first["input"]["app"] == "wechat" and first["result"]["app"] == "wechat"
    assert first["instant"] == "2020-11-13T00:00:00Z" and first["asked_at"].endswith("Z")

    target = tmp_path / "out" / "audit.csv"
    written = cli(
        "audit",
        "export",
        "--from",
        start,
        "--to",
        marks[2].isoformat(),
        "--format",
        "csv",
        "-o",
        str(target),
        "--db",
        store_url,
    )
    assert written.exit_code == 0, written.output
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [row["id"] for row in rows] == [ids[1]]
    assert json.loads(rows[0]["input"])["app"] == "wechat"
    assert json.loads(rows[0]["result"])["verdict"] == store.decision(ids[1]).result["verdict"]  # type: ignore[union-attr]
    assert rows[0]["run_id"] == ""

    everything = cli("audit", "export", "--db", store_url)
    assert everything.exit_code == 0 and len(everything.stdout.splitlines()) == 3
    assert cli("audit", "export", "--from", "2020-01-01", "--db", store_url).exit_code == 2  # no offset
    assert cli("audit", "export", "--from", end, "--to", start, "--db", store_url).exit_code == 2


def test_cli_tokens(store: AuditStore, store_url: str) -> None:
    created = cli("tokens", "create", "--name", "ops", "--scope", "write", "--db", store_url)
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("appban_")
    assert "cannot be shown again" in created.stderr
    token = store.check_token(secret)
    assert token is not None and token.name == "ops" and token.scope == "write"

    listed = cli("tokens", "list", "--db", store_url)
    assert listed.exit_code == 0 and token.id in listed.stdout and secret not in listed.stdout
    as_json = cli("tokens", "list", "--db", store_url, "--json")
    assert json.loads(as_json.stdout)[0]["id"] == token.id

    assert cli("tokens", "revoke", token.id, "--db", store_url).exit_code == 0
    assert store.check_token(secret) is None
    assert cli("tokens", "revoke", "nope", "--db", store_url).exit_code == 2
    assert cli("tokens", "create", "--name", "x", "--scope", "admin", "--db", store_url).exit_code == 2


def test_cli_reports_an_unusable_database(tmp_path: Path) -> None:
    done = cli("tokens", "list", "--db", f"sqlite:///{tmp_path / 'missing-dir' / 'a.db'}")
    assert done.exit_code == 2 and "cannot open the audit database" in done.stderr


# --- concurrency (SQLite) -----------------------------------------------------------------------

THREADS, PER_THREAD, PROCESSES, PER_PROCESS = 8, 200, 2, 200


def _write_from_process(url: str, caller: str, count: int, ready: Any, go: Any) -> None:
    """Runs in a spawned process: record `count` decisions one by one, once the parent says go."""
    book = load_rulebook()
    with AuditStore(url) as store:
        ready.release()
        go.wait(60)
        for n in range(count):
            store.record_decision(
                kind="decide", input={"n": n}, result={"ok": True}, rulebook=book, instant=None, caller=caller
            )


def test_many_threads_and_processes_write_one_sqlite_file(tmp_path: Path, rulebook: Rulebook) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    context = multiprocessing.get_context("spawn")
    ready, go = context.Semaphore(0), context.Event()
    with AuditStore(url) as store:
        processes = [
            context.Process(target=_write_from_process, args=(url, f"process-{p}", PER_PROCESS, ready, go))
            for p in range(PROCESSES)
        ]
        for process in processes:
            process.start()
        for _ in processes:
            assert ready.acquire(timeout=60), "a writer process did not start"
        errors: list[BaseException] = []

        def write(worker: int) -> None:
            go.wait(60)
            try:
                for n in range(PER_THREAD):
                    store.record_decision(
                        kind="decide",
                        input={"n": n},
                        result={"ok": True},
                        rulebook=rulebook,
                        instant=None,
                        caller=f"thread-{worker}",
                    )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        go.set()
        for thread in threads:
            thread.join(120)
        for process in processes:
            process.join(120)
        assert errors == []
        assert [process.exitcode for process in processes] == [0] * PROCESSES
        callers: dict[str, int] = {}
        for decision in store.iter_decisions(chunk=5000):
            callers[decision.caller] = callers.get(decision.caller, 0) + 1
        assert store.count_decisions() == THREADS * PER_THREAD + PROCESSES * PER_PROCESS
        assert callers == {
            **{f"thread-{t}": PER_THREAD for t in range(THREADS)},
            **{f"process-{p}": PER_PROCESS for p in range(PROCESSES)},
        }
    # One chain, not forked by the writers racing for it.
    chained = verify_store(url)
    assert chained.intact and chained.count == THREADS * PER_THREAD + PROCESSES * PER_PROCESS


# --- batches ------------------------------------------------------------------------------------


def test_batches_are_recorded_whole_and_replayed_by_row(store: AuditStore, rulebook: Rulebook) -> None:
    import pyarrow as pa

    from appban.audited import arrow_bytes
    from appban.engine.batch import decide_table

    questions = pa.Table.from_pylist([QUESTION, QUESTION | {"at": "2026-03-01T00:00:00Z"}])
    answers = decide_table(questions, rulebook=rulebook).select(["verdict", "as_written", "enforcement", "rule_ids"])
    batch_id = store.record_batch(questions=arrow_bytes(questions), answers=arrow_bytes(answers), rows=2,
                                  summary={"rows": 2}, rulebook=rulebook, caller="pipeline")  # fmt: skip
    record = store.decision(batch_id)
    assert record is not None and record.kind == "batch" and record.input == {"rows": 2, "format": "arrow-ipc"}
    whole = replay(store, batch_id)
    assert whole.identical and len(whole.replayed["verdict"]) == 2
    one = replay(store, f"{batch_id}#1")
    assert one.identical and one.replayed["verdict"] == [answers.column("verdict")[1].as_py()]
    with pytest.raises(ReplayError, match="rows 0 to 1"):
        replay(store, f"{batch_id}#7")
    forged = answers.set_column(0, "verdict", pa.array(["prohibited", "prohibited"]).dictionary_encode())
    tampered = store.record_batch(questions=arrow_bytes(questions), answers=arrow_bytes(forged), rows=2,
                                  summary={}, rulebook=rulebook, caller="pipeline")  # fmt: skip
    assert not replay(store, tampered).identical

"""The audit trail's hash chain, against a real SQLite file and a real PostgreSQL server edited behind the
store's back: records are written through the service's own path (Desk, group commit, the driver fast
path, batches), then raw SQL drops the guards and alters, deletes, inserts, reorders and truncates, and
`appban audit verify` must name the first broken link."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic_core import to_json
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from appban.audited import Desk
from appban.cli import app
from appban.engine.decide import decide_filled
from appban.jsontemplate import FilledJSON, JSONTemplate, gap
from appban.rulebook.loader import Rulebook
from appban.store import AuditStore, DecisionInput
from appban.store.audit import MIGRATIONS, ChainHeadMissing
from appban.store.chain import ChainError, TemplateForms, canonical, link, stored_form
from appban.store.stored import Contents, StoredRow, select_sql, tolerant_text
from appban.store.verify import Report, read_checkpoints, verify_store

runner = CliRunner()

ASKED = [
    ("tiktok", "2020-09-20T12:00:00Z"),
    ("TikTok", "2021-03-01T00:00:00Z"),
    ("wechat", "2020-10-15T12:00:00Z"),
    ("WeChat", "2022-01-01T00:00:00Z"),
    ("tiktok", "2024-05-01T08:30:00Z"),
    ("capcut", "2025-02-01T00:00:00Z"),
]


@pytest.fixture()
def raw(store_url: str) -> Iterator[Engine]:
    """A plain engine on the same database: the one who edits it behind the store's back."""
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    yield engine
    engine.dispose()


def write_records(url: str, rulebook: Rulebook) -> None:
    """Records as the service writes them: bursts through the Desk's group commit (templated answers, the
    SQLite driver path after the first), a batch of Arrow tables, and plain records of several rows."""
    with AuditStore(url) as store:
        desk = Desk(store, rulebook)

        async def burst(asked: list[tuple[str, str]]) -> None:
            await asyncio.gather(
                *(desk.decide_answer(app, "app_store_distribution", "US", at, {}, None, "svc") for app, at in asked)
            )

        asyncio.run(burst(ASKED[:3]))
        table = pa.table(
            {
                "app": ["tiktok", "wechat"],
                "transaction": ["cdn", "payment_processing"],
                "where": ["US", "US"],
                "at": ["2020-11-13T00:00:00Z", "2020-09-21T00:00:00Z"],
            }
        )
        desk.decide_batch(table, caller="svc")
        asyncio.run(burst(ASKED[3:]))
        store.record_decisions(
            [DecisionInput({"row": i}, {"note": "例", "n": i / 3}) for i in range(3)], rulebook=rulebook, caller="cli ✓"
        )
        desk.close()


def drop_guards(raw: Engine) -> None:
    with raw.begin() as connection:
        if raw.dialect.name == "postgresql":
            for table in ("decisions", "batches", "answer_templates"):
                connection.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))
            connection.execute(text("DROP TRIGGER audit_chain_forward ON audit_chain"))
            connection.execute(text("DROP TRIGGER audit_chain_no_delete ON audit_chain"))
        else:
            for table in ("decisions", "batches", "answer_templates"):
                connection.execute(text(f"DROP TRIGGER {table}_no_update"))
                connection.execute(text(f"DROP TRIGGER {table}_no_delete"))
            connection.execute(text("DROP TRIGGER audit_chain_forward"))
            connection.execute(text("DROP TRIGGER audit_chain_no_delete"))


def sql(raw: Engine, *statements: str, **values: Any) -> None:
    with raw.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), values)


def id_at(raw: Engine, seq: int) -> str:
    with raw.connect() as connection:
        return str(connection.execute(text("SELECT id FROM decisions WHERE seq = :s"), {"s": seq}).scalar_one())


def verify(url: str, *checkpoint_files: Path) -> tuple[int, Report]:
    """`appban audit verify` (its exit code) and the report it printed."""
    options = [option for path in checkpoint_files for option in ("--checkpoint", str(path))]
    done = runner.invoke(app, ["audit", "verify", "--db", url, "--json", *options])
    assert done.exit_code in (0, 1), done.output
    shown = json.loads(done.stdout)
    report = verify_store(url, [c for path in checkpoint_files for c in read_checkpoints(path)])
    assert shown == report.to_json_dict()
    return done.exit_code, report


def checkpoint(url: str, path: Path) -> None:
    done = runner.invoke(app, ["audit", "checkpoint", "--db", url, "-o", str(path)])
    assert done.exit_code == 0, done.output


def rechain_from(raw: Engine, seq: int) -> None:
    """What anyone who knows the algorithm can do: recompute every link from `seq` on, and the head."""
    with raw.begin() as connection, tolerant_text(connection):
        contents = Contents(connection, raw.dialect.name)
        prev = connection.execute(text("SELECT prev_hash FROM decisions WHERE seq = :s"), {"s": seq}).scalar_one()
        rows = [
            StoredRow(*r) for r in connection.execute(text(select_sql(raw.dialect.name, where=f"WHERE d.seq >= {seq}")))
        ]
        for row in rows:
            hashed = link(prev, row.seq, contents.digest(row))
            connection.execute(
                text("UPDATE decisions SET prev_hash = :p, chain_hash = :h WHERE id = :i"),
                {"p": prev, "h": hashed, "i": row.id},
            )
            prev = hashed
        connection.execute(text("UPDATE audit_chain SET seq = :n, head = :h"), {"n": rows[-1].seq + 1, "h": prev})


# --- the chain as written -----------------------------------------------------------------------


def test_records_written_every_way_form_one_intact_chain(store_url: str, rulebook: Rulebook, raw: Engine) -> None:
    write_records(store_url, rulebook)
    code, report = verify(store_url)
    assert code == 0 and report.intact and report.count == 10 and report.snapshots == 1
    with raw.connect() as connection:
        seqs = connection.execute(text("SELECT seq FROM decisions ORDER BY seq")).scalars().all()
        kinds = connection.execute(text("SELECT kind FROM decisions ORDER BY seq")).scalars().all()
        head = connection.execute(text("SELECT seq, head FROM audit_chain")).one()
    assert seqs == list(range(10)) and kinds.count("batch") == 4
    assert head == (10, report.head)


def test_concurrent_writers_never_fork_the_chain(store_url: str, rulebook: Rulebook) -> None:
    AuditStore(store_url).close()
    failures: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            with AuditStore(store_url) as store:  # each its own pool, as separate server workers have
                for i in range(15):
                    store.record_decision(
                        kind="decide",
                        input={"w": number, "i": i},
                        result={"v": i},
                        rulebook=rulebook,
                        instant=None,
                        caller=f"worker {number}",
                    )
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    code, report = verify(store_url)
    assert code == 0 and report.count == 60


# --- edits behind the store's back --------------------------------------------------------------


def test_an_updated_field_is_found(store_url: str, rulebook: Rulebook, raw: Engine) -> None:
    write_records(store_url, rulebook)
    drop_guards(raw)
    sql(raw, "UPDATE decisions SET caller = 'someone else' WHERE seq = 4")
    code, report = verify(store_url)
    assert code == 1 and report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.problem.record) == ("altered", 4, id_at(raw, 4))
    assert report.count == 4


def test_a_deleted_record_is_found(store_url: str, rulebook: Rulebook, raw: Engine) -> None:
    write_records(store_url, rulebook)
    drop_guards(raw)
    sql(raw, "DELETE FROM decisions WHERE seq = 6")
    code, report = verify(store_url)
    assert code == 1 and report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("missing", 6)
    assert id_at(raw, 7) in report.problem.detail


def test_a_forged_record_is_found(store_url: str, rulebook: Rulebook, raw: Engine) -> None:
    write_records(store_url, rulebook)
    drop_guards(raw)
    copy = (
        "INSERT INTO decisions (id, kind, asked_at, caller, rulebook_version, instant, input, result, run_id, "
        "answer_template, seq, prev_hash, chain_hash) SELECT :id, kind, asked_at, 'forger', rulebook_version, "
        "instant, input, result, run_id, answer_template, {seq}, prev_hash, chain_hash FROM decisions WHERE seq = 2"
    )
    # Without a place in the chain.
    sql(raw, copy.format(seq="NULL"), id="forged-1")
    code, report = verify(store_url)
    assert code == 1 and report.problem is not None
    assert (report.problem.kind, report.problem.record) == ("inserted", "forged-1")
    # Sharing a place (with the unique index dropped), linked as the record it copies.
    sql(raw, "DELETE FROM decisions WHERE id = 'forged-1'", "DROP INDEX ux_decisions_seq", copy.format(seq=2), id="0")
    code, report = verify(store_url)
    assert code == 1 and report.problem is not None
    assert report.problem.kind == "inserted" and report.problem.seq == 2 and "0" in report.problem.detail


def test_a_record_slipped_in_and_the_rest_renumbered_is_found(store_url: str, rulebook: Rulebook, raw: Engine) -> None:
    write_records(store_url, rulebook)
    drop_guards(raw)
    # Make room at seq 3, then put there a forged record that links correctly after seq 2.
    sql(
        raw,
        "DROP INDEX ux_decisions_seq",
        "UPDATE decisions SET seq = seq + 1 WHERE seq >= 3",
        "UPDATE audit_chain SET seq = seq + 1",
    )
    with raw.connect() as connection:
        row = StoredRow(*connection.execute(text(select_sql(raw.dialect.name, where="WHERE d.seq = 2"))).one())
    sql(
        raw,
        "INSERT INTO decisions (id, kind, asked_at, caller, rulebook_version, instant, input, result, run_id, "
        "answer_template, seq, prev_hash, chain_hash) SELECT 'forged-2', kind, asked_at, caller, rulebook_version, "
        "instant, input, result, run_id, answer_template, 3, :p, :h FROM decisions WHERE seq = 2",
        p=row.chain_hash,
        h="0" * 64,
    )
    with raw.connect() as connection, tolerant_text(connection):
        forged = StoredRow(*connection.execute(text(select_sql(raw.dialect.name, where="WHERE d.seq = 3"))).one())
        hashed = link(row.chain_hash, 3, Contents(connection, raw.dialect.name).digest(forged))
    sql(raw, "UPDATE decisions SET chain_hash = :h WHERE id = 'forged-2'", h=hashed)
    code, report = verify(store_url)
    assert code == 1 and report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.problem.record) == ("inserted", 3, "forged-2")


def test_reordered_records_are_found(store_url: str, rulebook: Rulebook, raw: Engine) -> None:
    write_records(store_url, rulebook)
    drop_guards(raw)
    first, second = id_at(raw, 5), id_at(raw, 6)
    sql(
        raw,
        "UPDATE decisions SET seq = -1 WHERE id = :a",
        "UPDATE decisions SET seq = 5 WHERE id = :b",
        "UPDATE decisions SET seq = 6 WHERE id = :a",
        a=first,
        b=second,
    )
    code, report = verify(store_url)
    assert code == 1 and report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.problem.record) == ("moved", 5, second)


def test_a_truncated_tail_is_found_by_the_head_and_by_a_checkpoint(
    store_url: str, rulebook: Rulebook, raw: Engine, tmp_path: Path
) -> None:
    write_records(store_url, rulebook)
    kept = tmp_path / "checkpoints.jsonl"
    checkpoint(store_url, kept)
    drop_guards(raw)
    sql(raw, "DELETE FROM decisions WHERE seq >= 8")
    code, report = verify(store_url)
    assert code == 1 and report.problem is not None and report.problem.kind == "head"
    assert "the last 2 were removed" in report.problem.detail
    # Someone who also sets the head back leaves a chain that verifies by itself: the checkpoint does not.
    with raw.connect() as connection:
        last = connection.execute(text("SELECT chain_hash FROM decisions WHERE seq = 7")).scalar_one()
    sql(raw, "UPDATE audit_chain SET seq = 8, head = :h", h=last)
    assert verify(store_url)[0] == 0
    code, report = verify(store_url, kept)
    assert code == 1 and report.problem is not None and report.problem.kind == "checkpoint"
    assert "counts 10 records, the chain has 8" in report.problem.detail


def test_a_rebuilt_chain_verifies_alone_but_not_against_an_older_checkpoint(
    store_url: str, rulebook: Rulebook, raw: Engine, tmp_path: Path
) -> None:
    write_records(store_url, rulebook)
    kept = tmp_path / "checkpoints.jsonl"
    checkpoint(store_url, kept)
    drop_guards(raw)
    sql(raw, "UPDATE decisions SET caller = 'rewritten' WHERE seq = 3")
    rechain_from(raw, 3)
    assert verify(store_url)[0] == 0  # without a secret, a full rewrite is consistent...
    code, report = verify(store_url, kept)  # ...but not a prefix of what was exported
    assert code == 1 and report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("checkpoint", 9)
    # A checkpoint still holds once the chain has grown past it.
    fresh = tmp_path / "fresh.jsonl"
    checkpoint(store_url, fresh)
    with AuditStore(store_url) as store:
        store.record_decision(kind="decide", input={}, result={"v": 1}, rulebook=rulebook, instant=None, caller="x")
    code, report = verify(store_url, fresh)
    assert code == 0 and report.checkpoints == 1 and report.count == 11


def test_altered_templates_batches_and_snapshots_are_found(store_url: str, rulebook: Rulebook, raw: Engine) -> None:
    write_records(store_url, rulebook)
    drop_guards(raw)
    with raw.connect() as connection:
        digest, first = connection.execute(
            text("SELECT answer_template, seq FROM decisions WHERE answer_template IS NOT NULL ORDER BY seq")
        ).first()
        body = connection.execute(text("SELECT body FROM answer_templates WHERE digest = :d"), {"d": digest}).scalar()
        batch = connection.execute(
            text(
                "SELECT seq FROM decisions WHERE kind = 'batch' AND input LIKE '%arrow%'"
                if raw.dialect.name == "sqlite"
                else "SELECT seq FROM decisions WHERE input::text LIKE '%arrow%'"
            )
        ).scalar()
    sql(
        raw,
        "UPDATE answer_templates SET body = :b WHERE digest = :d",
        b=body.replace("enjoined", "prohibited", 1) if "enjoined" in body else body.replace('"', '"x', 1),
        d=digest,
    )
    code, report = verify(store_url)
    assert code == 1 and report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("altered", first)
    assert f"its answer template {digest}" in report.problem.detail
    sql(raw, "UPDATE answer_templates SET body = :b WHERE digest = :d", b=body, d=digest)
    assert verify(store_url)[0] == 0
    sql(raw, "UPDATE batches SET rows = rows + 1")
    code, report = verify(store_url)
    assert report.problem is not None and (report.problem.kind, report.problem.seq) == ("altered", batch)
    sql(
        raw,
        "UPDATE batches SET rows = rows - 1",
        "DROP TRIGGER rulebooks_append_only ON rulebooks"
        if raw.dialect.name == "postgresql"
        else "DROP TRIGGER rulebooks_no_update",
        "UPDATE rulebooks SET canonical_json = canonical_json || ' '",
    )
    code, report = verify(store_url)
    assert code == 1 and report.problem is not None and report.problem.kind == "snapshot"


def test_without_its_head_the_store_records_nothing_and_verify_says_why(
    store_url: str, rulebook: Rulebook, raw: Engine
) -> None:
    write_records(store_url, rulebook)
    drop_guards(raw)
    sql(raw, "DELETE FROM audit_chain")
    code, report = verify(store_url)
    assert code == 1 and report.problem is not None and report.problem.kind == "head"
    with AuditStore(store_url) as store, pytest.raises(ChainHeadMissing):
        store.record_decision(kind="decide", input={}, result={}, rulebook=rulebook, instant=None, caller="x")


def test_the_head_only_moves_forward(store_url: str, rulebook: Rulebook, raw: Engine) -> None:
    write_records(store_url, rulebook)
    for statement in (
        "UPDATE audit_chain SET seq = 0",
        "UPDATE audit_chain SET store_id = 'other'",
        "DELETE FROM audit_chain",
    ):
        with pytest.raises(Exception, match=r"only moves forward|append-only"):
            sql(raw, statement)


# --- usage --------------------------------------------------------------------------------------


def test_verify_creates_nothing_and_refuses_what_it_cannot_verify(tmp_path: Path, rulebook: Rulebook) -> None:
    missing = tmp_path / "missing.db"
    done = runner.invoke(app, ["audit", "verify", "--db", str(missing)])
    assert done.exit_code == 2 and "no audit database" in done.stderr and not missing.exists()
    done = runner.invoke(app, ["audit", "checkpoint", "--db", str(missing)])
    assert done.exit_code == 2 and not missing.exists()
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    done = runner.invoke(app, ["audit", "verify", "--db", str(tmp_path / "other.db")])
    assert done.exit_code == 2 and "not an audit store" in done.stderr
    url = f"sqlite:///{tmp_path / 'a.db'}"
    write_records(url, rulebook)
    bad = tmp_path / "bad.jsonl"
    for content, field in [
        ("{", "not JSON"),
        ('{"format": "appban-audit-checkpoint/1"}', "field store"),
        ('{"format": "appban-audit-checkpoint/1", "store": "s", "head": "h", "at": "t", "count": 1}', "field head"),
    ]:
        bad.write_text("\n" + content + "\n")
        done = runner.invoke(app, ["audit", "verify", "--db", url, "--checkpoint", str(bad)])
        assert done.exit_code == 2 and f"{bad}:2:" in done.stderr and field in done.stderr
    other, other_url = tmp_path / "other.jsonl", f"sqlite:///{tmp_path / 'b.db'}"
    write_records(other_url, rulebook)
    checkpoint(other_url, other)
    code, report = verify(url, other)  # a checkpoint of another store
    assert code == 1 and report.problem is not None and report.problem.kind == "checkpoint"


def test_checkpoints_are_appended_never_rewritten(tmp_path: Path, rulebook: Rulebook) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    kept = tmp_path / "kept.jsonl"
    write_records(url, rulebook)
    checkpoint(url, kept)
    kept.write_bytes(kept.read_bytes()[:-1])  # as if a crash had cut the newline
    with AuditStore(url) as store:
        store.record_decision(kind="decide", input={}, result={}, rulebook=rulebook, instant=None, caller="x")
    checkpoint(url, kept)
    found = read_checkpoints(kept)
    assert [c.count for c in found] == [10, 11] and len({c.store for c in found}) == 1
    code, report = verify(url, kept)
    assert code == 0 and report.checkpoints == 2


# --- migration ----------------------------------------------------------------------------------


def test_an_older_store_is_chained_in_order_when_it_is_upgraded(
    store_url: str, rulebook: Rulebook, raw: Engine
) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with raw.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        for i, at in enumerate(["2021-01-02 00:00:00", "2021-01-01 00:00:00", "2021-01-01 00:00:00"]):
            connection.execute(
                text(
                    "INSERT INTO decisions (id, kind, asked_at, caller, rulebook_version, instant, input, "
                    "result, run_id) VALUES (:i, 'decide', :at, 'cli', 'v0', NULL, '{}', :r, NULL)"
                ),
                {"i": f"old-{i}", "at": at, "r": json.dumps({"verdict": "enjoined", "n": i})},
            )
    with AuditStore(store_url) as store:
        store.record_decision(kind="decide", input={}, result={"v": 1}, rulebook=rulebook, instant=None, caller="x")
    with raw.connect() as connection:
        order = connection.execute(text("SELECT id FROM decisions ORDER BY seq")).scalars().all()
        started = connection.execute(text("SELECT chained_at_start FROM audit_chain")).scalar()
    assert order[:3] == ["old-1", "old-2", "old-0"] and started == 3
    code, report = verify(store_url)
    assert code == 0 and report.count == 4
    # The guard was put back.
    with pytest.raises(Exception, match="append-only"):
        sql(raw, "UPDATE decisions SET caller = 'x' WHERE id = 'old-1'")


# --- what is hashed -----------------------------------------------------------------------------


def test_a_templated_answer_hashes_as_the_whole_answer(rulebook: Rulebook) -> None:
    forms = TemplateForms()
    for app_name, at in ASKED:
        for transaction in ("app_store_distribution", "cdn", "payment_processing"):
            answer, _ = decide_filled(app_name, transaction, "US", at, rulebook=rulebook)
            assert isinstance(answer, FilledJSON)
            whole = canonical(json.loads(answer.text))
            assert forms.answer(answer.template, stored_form(answer.values)) == whole


_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(shape=_json, values=st.dictionaries(st.sampled_from(["app", "at", "x"]), _json, min_size=3))
def test_the_canonical_template_fill_is_the_canonical_answer(shape: Any, values: dict[str, Any]) -> None:
    holder = {"a": shape, "gap": gap("app"), "list": [gap("at"), {"deep": gap("x")}], "é": "ü"}
    template = JSONTemplate(json.dumps(holder, ensure_ascii=bool(len(values) % 2)))
    whole = canonical(json.loads(template.fill(values)))
    assert TemplateForms().answer(template, stored_form(values)) == whole


def test_values_that_are_not_plain_json_are_refused() -> None:
    for value in (float("nan"), [float("inf")]):
        with pytest.raises(ChainError):
            canonical(value)
        with pytest.raises(ChainError):
            stored_form(value)


# --- any edit is found --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from appban.rulebook.loader import load_rulebook

    path = tmp_path_factory.mktemp("pristine") / "audit.db"
    write_records(f"sqlite:///{path}", load_rulebook())
    engine = create_engine(f"sqlite:///{path}")
    drop_guards(engine)
    engine.dispose()
    return path


_EDITABLE = [
    "id",
    "kind",
    "asked_at",
    "caller",
    "rulebook_version",
    "instant",
    "input",
    "result",
    "answer_template",
    "prev_hash",
    "chain_hash",
]


def _logical(column: str, value: Any) -> Any:
    """What a value means, so that an edit that changes nothing (JSON spacing, a 'T' for a ' ') is not counted."""
    if value is None or not isinstance(value, str):
        return ("raw", value)
    if column in ("input", "result"):
        try:
            return canonical(json.loads(value))
        except ValueError:
            return ("unreadable", value)
    if column in ("asked_at", "instant"):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return ("unreadable", value)
    return value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_edit_of_a_record_is_found(pristine: Path, tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / f"edit-{data.draw(st.integers(0, 10**9))}.db"
    shutil.copyfile(pristine, path)
    connection = sqlite3.connect(path)
    try:
        seq = data.draw(st.integers(0, 9), label="seq")
        column = data.draw(st.sampled_from([*_EDITABLE, "seq", "template body", "batch table"]), label="column")
        if column == "seq":
            connection.execute("DROP INDEX ux_decisions_seq")
            connection.execute("UPDATE decisions SET seq = ? WHERE seq = ?", (data.draw(st.integers(-3, 14)), seq))
            assume(
                connection.total_changes
                and connection.execute("SELECT count(*) FROM decisions WHERE seq = ?", (seq,)).fetchone()[0] == 0
            )
        elif column == "batch table":
            (blob,) = connection.execute("SELECT questions FROM batches").fetchone()
            at = data.draw(st.integers(0, len(blob) - 1))
            edited = blob[:at] + bytes([blob[at] ^ data.draw(st.integers(1, 255))]) + blob[at + 1 :]
            connection.execute("UPDATE batches SET questions = ?", (edited,))
        else:
            if column == "template body":
                found = connection.execute(
                    "SELECT t.digest, t.body FROM answer_templates t JOIN decisions d ON "
                    "d.answer_template = t.digest WHERE d.seq = ?",
                    (seq,),
                ).fetchone()
                assume(found is not None)
                key, value = found
                update = "UPDATE answer_templates SET body = ? WHERE digest = ?"
            else:
                (value,) = connection.execute(f"SELECT {column} FROM decisions WHERE seq = ?", (seq,)).fetchone()
                assume(isinstance(value, str) and value)
                key, update = seq, f"UPDATE decisions SET {column} = ? WHERE seq = ?"
            at = data.draw(st.integers(0, len(value) - 1), label="at")
            new = value[:at] + data.draw(st.characters(codec="utf-8"), label="char") + value[at + 1 :]
            if column == "template body":
                assume(canonical(json.loads(new)) != canonical(json.loads(value)) if _parses(new) else True)
            else:
                assume(_logical(column, new) != _logical(column, value))
            connection.execute(update, (new, key))
        connection.commit()
    finally:
        connection.close()
    report = verify_store(f"sqlite:///{path}")
    assert not report.intact, (column, seq)


def _parses(text_value: str) -> bool:
    try:
        json.loads(text_value)
    except ValueError:
        return False
    return True


_python_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.integers(-(2**60), 2**60),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=_python_values)
def test_what_is_hashed_at_write_time_is_what_verification_reads_back(value: Any) -> None:
    try:
        read_back = canonical(json.loads(to_json(value).decode()))
    except (ValueError, ChainError):  # infinity: refused at write time too
        with pytest.raises(ChainError):
            canonical(stored_form(value))
        return
    assert canonical(stored_form(value)) == read_back


def test_a_checkpoint_is_appended_to_a_file_or_a_device_never_through_a_link(
    tmp_path: Path, rulebook: Rulebook
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    write_records(url, rulebook)
    aimed = tmp_path / "elsewhere.jsonl"
    (tmp_path / "link.jsonl").symlink_to(aimed)  # dangling: following it would create its target
    done = runner.invoke(app, ["audit", "checkpoint", "--db", url, "-o", str(tmp_path / "link.jsonl")])
    assert done.exit_code == 2 and not aimed.exists()
    done = runner.invoke(app, ["audit", "checkpoint", "--db", url, "-o", str(tmp_path)])
    assert done.exit_code == 2
    done = runner.invoke(app, ["audit", "checkpoint", "--db", url, "-o", "/dev/null"])
    assert done.exit_code == 0, done.output
    assert Path("/dev/null").is_char_device()
    kept = tmp_path / "kept.jsonl"
    checkpoint(url, kept)
    checkpoint(url, kept)
    assert len(read_checkpoints(kept)) == 2

"""Where `-o` writes (files, devices, FIFOs, links, directories) and the one exit-code rule of every command."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from appban.cli import app
from appban.outputs import OutputError, write_atomically, write_output

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "transactions.csv"
CATALOG = ROOT / "examples" / "inventory" / "app-store-catalog.csv"
FEB_2025 = "2025-02-01T00:00:00Z"
BLOCKLIST: list[str | Path] = ["export", "blocklist", "--where", "US", "--at", FEB_2025, "--format", "hosts"]
ANDROID: list[str | Path] = ["export", "mdm", "--where", "US", "--at", "2023-06-01T00:00:00Z", "--format", "android"]
BIND_LINE = (
    "13-Nov-2020 00:00:0{n}.000 queries: info: client @0x7f 10.0.0.{n}#5353 ({host}): query: {host} IN A + (10.0.0.53)"
)
runner = CliRunner()


def cli(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def clean_failure(result: Any, code: int) -> None:
    """The documented code, reached on purpose: no exception escaped, no traceback printed."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit | None), result.exception
    assert "Traceback" not in result.output


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


class FifoReader:
    """Reads a FIFO on a thread (all of it, or `first` bytes and then hangs up) while a command writes it."""

    def __init__(self, path: Path, first: int | None = None) -> None:
        self.data = b""
        self._thread = threading.Thread(target=self._read, args=(path, first), daemon=True)
        self._thread.start()

    def _read(self, path: Path, first: int | None) -> None:
        with path.open("rb") as stream:
            self.data = stream.read() if first is None else stream.read(first)

    def result(self) -> bytes:
        self._thread.join(timeout=120)  # the writer has finished by now; this only waits for the reader's end
        assert not self._thread.is_alive(), "the command never opened the FIFO"
        return self.data


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    yield path
    assert stat.S_ISFIFO(os.lstat(path).st_mode)  # still a FIFO: never replaced by a file


# --- the writer itself -----------------------------------------------------------------------------


def test_a_regular_file_is_replaced_whole_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o640)
    assert write_output(target, lambda f: f.write(b"new")) == "file"
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_root_replacing_someone_elses_file_leaves_it_theirs(tmp_path: Path) -> None:
    target = tmp_path / "theirs.txt"
    target.write_text("old")
    os.chown(target, 4321, 4321)
    write_output(target, lambda f: f.write(b"new"))
    assert (target.stat().st_uid, target.stat().st_gid) == (4321, 4321)


def test_a_new_file_gets_the_mode_the_umask_gives(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        write_output(tmp_path / "new" / "out.txt", lambda f: f.write(b"x"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new" / "out.txt").stat().st_mode) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    def full_disk(stream: BinaryIO) -> None:
        stream.write(b"half of it")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match=r"out\.txt: cannot write: No space left on device"):
        write_output(target, full_disk)

    def broken(path: Path) -> None:
        path.write_text("half of it")
        raise ValueError("a bug in a writer")

    with pytest.raises(ValueError, match="a bug"):
        write_atomically(target, broken)
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_write_atomically_takes_path_writers_through_a_fifo(fifo: Path) -> None:
    reader = FifoReader(fifo)
    assert write_atomically(fifo, lambda p: p.write_text("through")) == "stream"
    assert reader.result() == b"through"


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        with pytest.raises(OutputError, match="is a socket"):
            write_output(path, lambda f: f.write(b"x"))


# --- -o on every command that writes -------------------------------------------------------------

WRITERS: dict[str, list[str | Path]] = {
    "decide": ["decide", SAMPLE, "--format", "json"],
    "screen inventory": ["screen", "inventory", CATALOG, "--format", "csv"],
    "screen network": ["screen", "network", "LOG", "--role", "hosting", "--format", "csv"],
    "screen payments": ["screen", "payments", "PAYMENTS", "--format", "json"],
    "scan": ["scan", ROOT / "examples", "--format", "sarif"],
    "export mdm": ANDROID,
    "export blocklist": BLOCKLIST,
    "audit export": ["audit", "export", "--db", "DB", "--format", "csv"],  # csv: a header even with no records
}


def bind_log(path: Path, *, malformed: bool = False) -> Path:
    lines = [BIND_LINE.format(n=1, host="www.tiktok.com"), BIND_LINE.format(n=2, host="example.org")]
    if malformed:
        lines.insert(1, "not a query line")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def writer_args(tmp_path: Path) -> Any:
    log = bind_log(tmp_path / "q.log")
    payments = tmp_path / "payments.csv"
    payments.write_text("ts,amount,currency,method\n2020-10-15T12:00:00Z,25.00,USD,wechat_pay\n")
    db = tmp_path / "audit.db"
    assert cli("tokens", "create", "--name", "t", "--scope", "read", "--db", f"sqlite:///{db}").exit_code == 0

    def args(name: str) -> list[str | Path]:
        given: dict[str, str | Path] = {"LOG": log, "PAYMENTS": payments, "DB": f"sqlite:///{db}"}
        return [given.get(str(a), a) for a in WRITERS[name]]

    return args


@pytest.mark.parametrize("command", WRITERS)
def test_every_writer_refuses_a_directory_and_writes_through_a_fifo(
    command: str, writer_args: Any, tmp_path: Path, fifo: Path
) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    refused = cli(*writer_args(command), "-o", folder)
    clean_failure(refused, 2)
    assert f"{folder}: is a directory" in refused.stderr and list(folder.iterdir()) == []

    reader = FifoReader(fifo)
    through = cli(*writer_args(command), "-o", fifo)
    assert through.exit_code == 0, through.output
    assert reader.result()  # the whole result went through the FIFO
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pipe")) == ["pipe"]  # nothing beside it


def test_dev_null_stays_a_device() -> None:
    for args in (["decide", SAMPLE, "--format", "parquet"], BLOCKLIST, ANDROID):
        done = cli(*args, "-o", "/dev/null")
        assert done.exit_code == 0, done.output
        assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_beside_a_regular_file_the_side_files_are_written(writer_args: Any, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    assert cli(*ANDROID, "-o", policy).exit_code == 0
    assert json.loads((tmp_path / "policy.citations.json").read_text())
    records = tmp_path / "records.parquet"
    assert cli("screen", "network", bind_log(tmp_path / "q.log"), "--role", "cdn", "--format", "parquet",
               "-o", records).exit_code == 0  # fmt: skip
    assert pq.read_table(tmp_path / "records.exposure.parquet").num_rows == 1


def test_dash_and_dev_stdout_are_standard_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("-", "/dev/stdout"):
        done = cli("decide", SAMPLE, "--format", "csv", "-o", name)
        assert done.exit_code == 0 and done.stdout.startswith('"app","transaction"')
        assert "Summary" not in done.stdout  # as without -o: the CSV alone
    assert list(tmp_path.iterdir()) == []


def test_a_link_to_a_file_or_to_nothing_is_refused_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    target.write_text("keep me")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    refused = cli(*BLOCKLIST, "-o", link)
    clean_failure(refused, 2)
    assert "symbolic link" in refused.stderr
    assert link.is_symlink() and target.read_text() == "keep me"

    nowhere = tmp_path / "dangling.txt"
    nowhere.symlink_to(tmp_path / "not-there.txt")
    clean_failure(cli(*BLOCKLIST, "-o", nowhere), 2)
    assert nowhere.is_symlink() and not (tmp_path / "not-there.txt").exists()
    assert leftovers(tmp_path) == []


def test_a_link_to_a_fifo_is_written_through(tmp_path: Path, fifo: Path) -> None:
    link = tmp_path / "to-pipe"
    link.symlink_to(fifo)
    reader = FifoReader(fifo)
    assert cli(*BLOCKLIST, "-o", link).exit_code == 0
    assert b"tiktok.com" in reader.result() and link.is_symlink()


def big_batch(tmp_path: Path) -> Path:
    lines = SAMPLE.read_text().splitlines()
    path = tmp_path / "big.csv"
    path.write_text("\n".join([lines[0], *(lines[1:] * 100)]) + "\n")
    return path


def test_a_fifo_whose_reader_hangs_up_ends_with_2_and_a_message(tmp_path: Path, fifo: Path) -> None:
    reader = FifoReader(fifo, first=1)
    done = cli("decide", big_batch(tmp_path), "--format", "json", "-o", fifo)  # far more than a pipe holds
    clean_failure(done, 2)
    assert f"{fifo}: cannot write: Broken pipe" in done.stderr
    assert len(reader.result()) == 1


def test_a_parent_that_is_a_file_ends_with_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = cli(*BLOCKLIST, "-o", tmp_path / "file" / "out.txt")
    clean_failure(done, 2)
    assert "cannot write" in done.stderr


@pytest.mark.parametrize(
    "args",
    [["rules", "list", "--json"], ["timeline", "--app", "tiktok"], ["decide", str(SAMPLE), "--format", "csv"]],
    ids=["print", "rich", "stream"],
)
def test_a_closed_standard_output_ends_quietly_with_141(args: list[str]) -> None:
    reading, writing = os.pipe()
    os.close(reading)  # the reader is gone before the first byte: every write meets a closed pipe
    try:
        done = subprocess.run([sys.executable, "-m", "appban", *args], stdout=writing, stderr=subprocess.PIPE,
                              timeout=300, check=False)  # fmt: skip
    finally:
        os.close(writing)
    # 141 = 128 + SIGPIPE, what a shell reports for any program whose reader went away (README).
    assert done.returncode == 141 and done.stderr == b"", done.stderr.decode()


# --- exit codes ------------------------------------------------------------------------------------


def test_law_commands_exit_0_whatever_the_verdict_and_2_for_bad_input() -> None:
    prohibited = cli("check", "--app", "tiktok", "--transaction", "app_store_distribution", "--where", "IN",
                     "--at", "2021-01-01T00:00:00Z", "--json")  # fmt: skip
    assert prohibited.exit_code == 0 and json.loads(prohibited.stdout)["verdict"] == "prohibited"
    clean_failure(cli("check", "--app", "tiktok", "--transaction", "nope", "--where", "US", "--at", "2021-01-01Z"), 2)
    assert cli("timeline", "--app", "wechat").exit_code == 0
    clean_failure(cli("timeline", "--app", "no-such-app"), 2)
    assert cli("rules", "list").exit_code == 0
    clean_failure(cli("rules", "show", "no-such-item"), 2)
    clean_failure(cli("rules", "validate", "/no/such/rulebook"), 2)


def test_decide_with_a_bad_row_decides_nothing_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("app,transaction,where,at\ntiktok,app_store_distribution,US,yesterday\n")
    out = tmp_path / "out.csv"
    done = cli("decide", bad, "-o", out)
    clean_failure(done, 2)
    assert f"{bad}:2: at:" in done.stderr and not out.exists()


def test_screens_exit_1_when_records_are_unreadable_and_2_when_a_file_is_missing(tmp_path: Path) -> None:
    log = bind_log(tmp_path / "q.log", malformed=True)
    records = tmp_path / "records.csv"
    network = cli("screen", "network", log, "--role", "hosting", "--format", "csv", "-o", records)
    assert network.exit_code == 1 and f"{log}:2" in network.stderr
    assert "www.tiktok.com" in records.read_text()  # the rest was still screened and written
    clean_failure(cli("screen", "network", tmp_path / "none.log", "--role", "hosting"), 2)

    unreadable = tmp_path / "payments.csv"
    unreadable.write_text("ts,amount,currency,method\nsoon,1,USD,wechat_pay\nlater,2,USD,wechat_pay\n")
    payments = cli("screen", "payments", unreadable, "--format", "json")
    assert payments.exit_code == 1 and json.loads(payments.stdout)["malformed"] == 2
    clean_failure(cli("screen", "payments", tmp_path / "none.csv"), 2)

    rows = tmp_path / "catalog.csv"
    rows.write_text("name,storefront\nTikTok,XX\nWeChat,US\n")
    assert cli("screen", "inventory", rows, "--at", "2020-10-01T00:00:00Z", "--format", "json").exit_code == 1
    clean_failure(cli("screen", "inventory", tmp_path / "none.csv"), 2)


def test_scan_a_missing_path_fails_the_gate_and_a_skipped_file_is_not_clean(tmp_path: Path) -> None:
    missing = cli("scan", ROOT / "examples", tmp_path / "no-such-path", "--fail-on", "prohibited")
    clean_failure(missing, 2)
    assert "no-such-path" in missing.stderr
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "README.md").write_text("nothing here\n")
    assert cli("scan", tree, "--fail-on", "any").exit_code == 0
    (tree / "lib.jar").write_bytes(b"PK\x03\x04" + b"not a zip at all")
    skipped = cli("scan", tree)
    assert skipped.exit_code == 1 and "lib.jar: not a readable zip archive" in skipped.stderr


def test_exports_exit_0_and_2_for_bad_input() -> None:
    assert cli(*BLOCKLIST).exit_code == 0
    clean_failure(cli("export", "blocklist", "--where", "XX", "--at", FEB_2025, "--format", "rpz"), 2)
    assert cli(*ANDROID).exit_code == 0
    clean_failure(cli("export", "mdm", "--where", "US", "--at", "someday", "--format", "jamf"), 2)


@pytest.mark.parametrize(
    "args", [["audit", "export"], ["audit", "replay", "some-id"], ["tokens", "list"], ["tokens", "revoke", "t"]]
)
def test_audit_commands_never_create_a_missing_database(args: list[str], tmp_path: Path) -> None:
    for db in (f"sqlite:///{tmp_path / 'audit.db'}", str(tmp_path / "audit.db")):
        done = cli(*args, "--db", db)
        clean_failure(done, 2)
        assert "there is none at" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_serve_that_cannot_listen_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "appban", "serve", "--db", f"sqlite:///{tmp_path / 's.db'}", "--port", str(port),
             "--no-access-log"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert done.returncode == 2 and f"cannot serve on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr

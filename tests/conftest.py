from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from appban import Rulebook, load_rulebook
from appban.rulebook.loader import default_rulebook_path
from tests.postgres import PostgresCluster, postgres_cluster_fixture  # noqa: F401 - registers the fixture
from tests.spark_session import spark  # noqa: F401 - registers the fixture

EASTERN = dt.timezone(dt.timedelta(hours=-5))


_DATA_HOME = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    # The knowledge in force is the newest bundle installed in the user's data directory (appban.knowledge):
    # the tests ask the packaged data, whatever the person running them installed. Subprocesses inherit it.
    config.stash[_DATA_HOME] = os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="appban-tests-data-")


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_DATA_HOME, None)
    if home:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture()
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A new empty database on the session's throwaway PostgreSQL server."""
    return postgres_cluster.new_database()


@pytest.fixture(scope="session")
def rulebook() -> Rulebook:
    return load_rulebook()


@pytest.fixture()
def rulebook_copy(tmp_path: Path) -> Path:
    """A writable copy of the packaged rulebook directory, for tests that break or change it."""
    target = tmp_path / "rulebook"
    shutil.copytree(default_rulebook_path(), target)
    return target


def without(rulebook: Rulebook, *kinds: str, ids: tuple[str, ...] = ()) -> Rulebook:
    """The same law minus every instrument of some kinds (e.g. court orders) or ids."""
    kept = {k: v for k, v in rulebook.instruments.items() if v.kind not in kinds and k not in ids}
    return Rulebook(rulebook.root, kept, rulebook.subjects, rulebook.places, rulebook.facts)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty audit store: an SQLite file, and a database on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.new_database()

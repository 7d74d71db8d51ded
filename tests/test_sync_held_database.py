"""The DuckDB file is held open for a whole sync (``octogen_source.sync.held_database``): dlt's loads and
reads then share one database instance, which checkpoints once, when the sync lets go of it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncError
from octogen_source.sync.held_database import duckdb_held_open
from tests.sync_support import DATASET, SyncTarget, read_table, table_names

HOLD_THE_FILE = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


def wal(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def test_a_held_database_checkpoints_when_the_hold_ends_not_when_another_connection_closes(
    tmp_path: Path,
) -> None:
    database = tmp_path / "held.duckdb"
    with duckdb_held_open(str(database), DATASET):
        # what dlt's connection pool does for each job: connect, write, close
        with duckdb.connect(str(database)) as connection:
            connection.execute("CREATE TABLE t AS SELECT range AS i FROM range(1000)")
        assert wal(database).exists()  # not checkpointed: the instance stayed open
        with duckdb.connect(str(database)) as connection:
            assert connection.execute("SELECT count(*) FROM t").fetchone() == (1000,)
    assert not wal(database).exists()
    with duckdb.connect(str(database), read_only=True) as connection:
        assert connection.execute("SELECT sum(i) FROM t").fetchone() == (499500,)


def wal_bytes(database: Path) -> int:
    try:
        return wal(database).stat().st_size
    except FileNotFoundError:  # checkpointed, nothing written since
        return 0


def row_groups(database: Path, table: str) -> int:
    with duckdb.connect(str(database)) as connection:  # read-write: it may be held open
        found = connection.execute(
            f"SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('{table}')"
        ).fetchone()
    assert found is not None
    return int(found[0])


def table_t(tmp_path: Path) -> Path:
    """A database file with an empty table ``t``, as :func:`append_rows` fills it."""
    database = tmp_path / "held.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("CREATE TABLE t (i BIGINT, s VARCHAR)")
    return database


def assert_rows_of_t(database: Path, count: int) -> None:
    """``t`` holds rows 0 to ``count`` - 1, each once."""
    with duckdb.connect(str(database), read_only=True) as connection:
        assert connection.execute("SELECT count(*), sum(i), count(DISTINCT s) FROM t").fetchone() == (
            count,
            sum(range(count)),
            count,
        )


def append_rows(database: Path, first: int, count: int) -> None:
    """What a load job does: its own connection, one INSERT (a row group of its own until a checkpoint
    merges it), closed."""
    with duckdb.connect(str(database)) as connection:
        connection.execute(
            "INSERT INTO t SELECT range AS i, 'row ' || range AS s FROM range(?, ?)", [first, first + count]
        )


def test_the_checkpoints_between_segments_merge_row_groups_and_the_last_one_leaves_its_own(
    tmp_path: Path,
) -> None:
    """DuckDB merges a table's small row groups at a checkpoint (its vacuum), rewriting what earlier ones
    wrote: the checkpoints between a run's segments do it while the walk goes on, the one at the run's end
    (after the last page) does not, and the next run's checkpoints merge what it left."""
    database = table_t(tmp_path)
    with duckdb_held_open(str(database), DATASET) as held:
        assert held is not None
        append_rows(database, 0, 1000)
        held.let_go_and_hold_again()
        assert row_groups(database, "t") == 1
        append_rows(database, 1000, 1000)
    assert not wal(database).exists()
    assert row_groups(database, "t") == 2  # as loaded; a close with DuckDB's default makes one
    assert_rows_of_t(database, 2000)

    # the next run's checkpoints are DuckDB's own: its checkpoint between segments merges all three loads
    with duckdb_held_open(str(database), DATASET) as held:
        assert held is not None
        append_rows(database, 2000, 1000)
        held.let_go_and_hold_again()
        assert row_groups(database, "t") == 1


def test_a_checkpoint_made_meanwhile_writes_the_last_load_before_the_close_merging_nothing(
    tmp_path: Path,
) -> None:
    """After a run's last load, its checkpoint runs in a thread while the run records its history: the close
    then has only what came after to write, and (after segments) that checkpoint merges no row groups
    either."""
    database = table_t(tmp_path)
    with duckdb_held_open(str(database), DATASET) as held:
        assert held is not None
        append_rows(database, 0, 1000)
        held.let_go_and_hold_again()
        append_rows(database, 1000, 1000)  # the last segment's load
        assert wal_bytes(database) > 0
        held.checkpoint_meanwhile()
        held.checkpoint_meanwhile()  # once is all: a second ask changes nothing
        deadline = time.monotonic() + 60
        while wal_bytes(database) > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert wal_bytes(database) == 0  # written before the close
        assert row_groups(database, "t") == 2  # the first segment's, the last one's: not merged
    assert not wal(database).exists()
    assert row_groups(database, "t") == 2


def test_a_write_beside_the_checkpoint_made_meanwhile_waits_for_it_and_loses_nothing(tmp_path: Path) -> None:
    database = table_t(tmp_path)
    with duckdb_held_open(str(database), DATASET) as held:
        assert held is not None
        append_rows(database, 0, 100_000)
        held.checkpoint_meanwhile()
        append_rows(database, 100_000, 10)  # the history's load, while DuckDB checkpoints
    assert not wal(database).exists()
    assert_rows_of_t(database, 100_010)


def test_nothing_is_held_for_a_database_that_is_not_a_local_file(tmp_path: Path) -> None:
    for path in (None, ":memory:", "md:octogen", "motherduck:octogen"):
        with duckdb_held_open(path, DATASET):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_sync_leaves_its_file_checkpointed(sandbox: Sandbox, tmp_path: Path) -> None:
    target = SyncTarget(sandbox, tmp_path)
    first = target.sync()
    sandbox.update_prices(sandbox.granted_catalogs()[0], 3)
    second = target.sync()
    assert first.total("new") > 0 and second.total("changed") == 3
    # a file copied or read elsewhere after the run holds all of it, with no log beside it to replay
    assert not wal(target.database).exists()
    assert {"products", "price_history", "sync_runs"} <= table_names(target.database)
    products = read_table(target.database, "products", "uuid")
    assert len(products) == first.total("new")


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``sync.duckdb`` open for writing (as a second sync, or a DuckDB shell, would);
    it lets go when its stdin closes."""
    database = tmp_path / "sync.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute(f"CREATE SCHEMA {DATASET}")
        connection.execute(f"CREATE TABLE {DATASET}.kept AS SELECT 1 AS i")
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_FILE, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "holding"
        yield process
    finally:
        process.communicate(timeout=30)


def test_a_sync_into_a_file_another_process_writes_fails_in_one_line_and_changes_nothing(
    sandbox: Sandbox, tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    target = SyncTarget(sandbox, tmp_path)
    with pytest.raises(SyncError) as failure:
        target.sync()
    line = str(failure.value)
    assert line.startswith(
        f"cannot connect to the destination (dataset '{DATASET}'): IO Error: Could not set lock"
    )
    assert str(target.database) in line and "\n" not in line
    assert failure.value.retryable
    assert sandbox.request_counts.get("search", 0) == 0  # failed before the walk
    holder.communicate(timeout=30)
    with duckdb.connect(str(target.database), read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
    assert tables == [(DATASET, "kept")]

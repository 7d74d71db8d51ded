"""A large load of a run that only appends (a first load without details) gives DuckDB half its memory
limit; smaller loads and any run that merges keep the whole limit (``octogen_source.sync.load_memory``).

"Large" is ``LARGE_APPEND_ROWS`` (500,000 rows): the tests that need a large load lower it to 0 rather than
walk a million products; what is tested is which limit each load ran with, read from DuckDB itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from dlt.common.runtime.collector import DictCollector

from octogen_source.sandbox import Sandbox
from octogen_source.sync import load_memory
from octogen_source.sync.report import SyncReport
from octogen_source.warehouse import appending_memory_limit, duckdb_threads
from tests.sync_support import ExpectedTables, SyncTarget, assert_tables_match

WHOLE_LIMIT = "122.0 MiB"
"""128MB, the default ``--duckdb-memory-limit``, as DuckDB shows it."""
HALF_LIMIT = "64.0 MiB"


class LimitAtEachLoad(DictCollector):
    """A caller's collector that reads DuckDB's memory limit at the end of each load: the sync holds the file
    open, so a connection made here to the same path joins the database instance dlt's loads ran in."""

    def __init__(self, database: Path) -> None:
        super().__init__()
        self.database = database
        self.limits: list[str] = []

    def on_end_trace_step(
        self, trace: Any, step: Any, pipeline: Any, step_info: Any, send_state: bool
    ) -> None:
        # dlt passes the step's trace here (its name at start) and reports what raises as a warning only
        if step.step == "load":
            with duckdb.connect(str(self.database)) as connection:
                row = connection.execute("SELECT current_setting('memory_limit')").fetchone()
            self.limits.append(str(row[0] if row else None))


def sync_with_limit_at_each_load(
    target: SyncTarget, expected: ExpectedTables, limit: str, **overrides: Any
) -> SyncReport:
    """Syncs ``target``: its tables equal the sandbox's truth, and each of its loads ran with ``limit``."""
    seen = LimitAtEachLoad(target.database)
    report = target.sync(collector=seen, **overrides)
    expected.observe()
    assert_tables_match(target.database, expected)
    assert seen.limits == [limit] * len(report.load_ids), seen.limits
    return report


@pytest.fixture
def every_load_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_memory, "LARGE_APPEND_ROWS", 0)


@pytest.mark.usefixtures("every_load_large")
def test_a_large_first_load_without_details_appends_with_half_the_limit_and_later_runs_merge_with_all(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    target = SyncTarget(sandbox, tmp_path)
    expected = ExpectedTables(sandbox, details=False)
    sync_with_limit_at_each_load(target, expected, HALF_LIMIT, details=False)
    for catalog in sandbox.granted_catalogs():
        sandbox.update_prices(catalog, 2)
    report = sync_with_limit_at_each_load(target, expected, WHOLE_LIMIT, details=False)
    assert report.total("changed") == 2 * len(sandbox.granted_catalogs())


def test_a_small_first_load_appends_with_the_whole_limit(sandbox: Sandbox, tmp_path: Path) -> None:
    target = SyncTarget(sandbox, tmp_path)
    sync_with_limit_at_each_load(target, ExpectedTables(sandbox, details=False), WHOLE_LIMIT, details=False)


@pytest.mark.usefixtures("every_load_large")
def test_a_first_load_with_details_merges_them_with_the_whole_limit(sandbox: Sandbox, tmp_path: Path) -> None:
    sync_with_limit_at_each_load(SyncTarget(sandbox, tmp_path), ExpectedTables(sandbox), WHOLE_LIMIT)


@pytest.mark.usefixtures("every_load_large")
def test_a_first_load_keeps_a_limit_given_at_one_threads_share(sandbox: Sandbox, tmp_path: Path) -> None:
    target = SyncTarget(sandbox, tmp_path)
    seen = LimitAtEachLoad(target.database)
    report = target.sync(details=False, collector=seen, duckdb_memory_limit="32MB")
    assert seen.limits == ["30.5 MiB"] * len(report.load_ids)  # 32 MB, as given


@pytest.mark.parametrize(
    ("limit", "appending", "threads"),
    [
        ("128MB", "64MiB", 2),  # the default: two threads of 32 MiB, as the whole limit has on two cores
        ("1GB", "480MiB", 2),
        ("64MB", "32MiB", 1),
        ("40MB", "32MiB", 1),
        ("32MiB", "32MiB", 1),  # one thread's share: not lowered below it
        ("32MB", "32MB", 1),
    ],
)
def test_the_appending_limit_is_half_in_whole_thread_shares(limit: str, appending: str, threads: int) -> None:
    assert appending_memory_limit(limit) == appending
    assert duckdb_threads(appending, cores=2) == threads


def test_duckdbs_own_default_stays_for_appends() -> None:
    assert appending_memory_limit(None) is None


def test_the_rows_of_a_load_leave_dlts_own_tables_out() -> None:
    class Normalized:
        row_counts = {"products": 400_000, "price_history": 200_000, "_dlt_pipeline_state": 1}

    class Trace:
        last_normalize_info = Normalized()

    assert load_memory.loaded_rows(Trace()) == 600_000
    assert load_memory.loaded_rows(None) == 0

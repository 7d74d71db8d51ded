"""A DuckDB sync loads in segments while the walk goes on (octogen_source.source.segments): every table equals
the API after it, however many segments it took; a run that fails after some segments loaded leaves them
consistent and the next run completes them; nothing is loaded before every catalog answered.

The segment and batch sizes are lowered for these tests (a real run takes 80,000 rows per segment, handed
over 2,000 at a time) so that a small sandbox catalog loads in several segments."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.source import catalog_walk, segments, walk_process, walk_pump
from octogen_source.source.catalog_walk import LoadedState, WalkBatch
from octogen_source.source.report import CatalogReport, WalkObserver
from octogen_source.sync import SyncError, SyncReport
from octogen_source.sync.held_database import HeldDuckDB
from tests.sync_support import ExpectedTables, SyncTarget, assert_tables_match, read_rows, totals

SMALL_SEGMENT_ROWS = 60
SMALL_BATCH_ROWS = 20


@pytest.fixture(autouse=True)
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "MIN_SEGMENT_ROWS", SMALL_SEGMENT_ROWS)
    monkeypatch.setattr(catalog_walk, "BATCH_ROWS", SMALL_BATCH_ROWS)
    monkeypatch.setattr(walk_process, "GROUP_ROWS", SMALL_BATCH_ROWS)  # the walk's process groups so many
    # a segment ends whenever the queue runs dry (a real one only once the extract waits for the walk)
    monkeypatch.setattr(walk_pump, "WAITING_SHARE", 0.0)


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=3, products=120, seed=5), tmp_path)


@pytest.fixture
def segment_loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Set each time a segment's ``pipeline.run`` returns (the segment is loaded)."""
    loaded = threading.Event()
    original = dlt.Pipeline.run

    def run(self: dlt.Pipeline, *args: Any, **kwargs: Any) -> Any:
        info = original(self, *args, **kwargs)
        loaded.set()
        return info

    monkeypatch.setattr(dlt.Pipeline, "run", run)
    yield loaded


def test_the_walk_looks_to_end_within_a_time_by_each_catalogs_pace_against_its_last_walk() -> None:
    """``walk_ends_within``: a catalog that has walked 900 of the 1,000 products its last walk listed in 9 s
    has ≈ 1 s left; one ended counts as ended; without a last walk (a first load) or a page, nothing is
    told."""
    observer = WalkObserver()
    started = time.monotonic() - 9.0
    observer.catalogs["a"] = CatalogReport("a", walked=900, expected=1_000, started=started)
    observer.catalogs["b"] = CatalogReport("b", walked=5_000, expected=5_000, complete=True, started=started)
    ends_within = segments.walk_ends_within
    assert ends_within(observer, ["a", "b"], 1.5) and not ends_within(observer, ["a", "b"], 0.5)
    # more listed than the last walk did (new products): its end is near, whenever it comes
    observer.catalogs["b"] = CatalogReport("b", walked=5_100, expected=5_000, started=started)
    assert ends_within(observer, ["a", "b"], 1.5)
    for unknown in (
        CatalogReport("b", walked=900, expected=0, started=started),  # a first load
        CatalogReport("b", walked=0, expected=1_000, started=started),  # no page yet
    ):
        observer.catalogs["b"] = unknown
        assert not ends_within(observer, ["a", "b"], 100.0)
    assert not ends_within(observer, ["a", "c"], 100.0)  # not started


def test_a_segment_with_details_ends_sooner_once_the_walk_looks_near_its_end() -> None:
    """Batches with details may end a segment sooner than ``details_after`` once it has lasted the first of
    ``details_sooner`` and its second says the walk ends soon; never before."""
    release = threading.Event()

    async def walk(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        yield WalkBatch(products=[{"uuid": "0"}], details=[{"uuid": "0"}])
        await asyncio.to_thread(release.wait)
        yield WalkBatch(products=[{"uuid": "1"}])

    def segments_taken(details_sooner: tuple[float, Callable[[], bool]]) -> list[list[str]]:
        release.clear()
        taken: list[list[str]] = []
        with walk_pump.WalkPump(walk, max_queued_rows=100) as pump:
            threading.Timer(0.5, release.set).start()
            while not pump.finished:
                segment = pump.segment(
                    min_rows=10**9, ready=lambda: True, details_after=math.inf, details_sooner=details_sooner
                )
                taken.append([row["uuid"] for batch in segment for row in batch.products])
        return taken

    assert segments_taken((0.0, lambda: True)) == [["0"], ["1"]]
    assert segments_taken((0.0, lambda: False)) == [["0", "1"]]
    assert segments_taken((60.0, lambda: True)) == [["0", "1"]]


def _walk_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "octogen-walk"]


@pytest.mark.parametrize("walk_in_process", [True, False], ids=["walk in a process", "walk in a thread"])
def test_a_sync_in_several_segments_equals_the_api_run_after_run(
    target: SyncTarget, walk_in_process: bool
) -> None:
    sandbox = target.sandbox
    first, second, third = sandbox.granted_catalogs()
    expected = ExpectedTables(sandbox)

    def sync(**overrides: Any) -> SyncReport:
        return target.sync(walk_in_process=walk_in_process, **overrides)

    # the walk, not the loads, is what the extract waits for: on loopback a walk in a process could queue
    # all of its pages before the first segment may end, and the run would be one load
    sandbox.set_fault_rates(latency=0.01)
    report = sync(page_size=10)
    expected.observe()
    assert len(report.load_ids) > 1, report.load_ids
    assert totals(report) == {"new": 360, "changed": 0, "removed": 0, "lookups": 360}
    assert_tables_match(target.database, expected)

    sandbox.update_prices(first, 7)
    sandbox.add_products(second, 5)
    sandbox.remove_products(third, 4)
    report = sync(page_size=10)
    expected.observe()
    assert totals(report) == {"new": 5, "changed": 7, "removed": 4, "lookups": 12}
    assert_tables_match(target.database, expected)

    report = sync(page_size=10)
    assert totals(report) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}
    assert_tables_match(target.database, expected)
    assert not _walk_threads()


@pytest.mark.parametrize("walk_in_process", [True, False], ids=["walk in a process", "walk in a thread"])
def test_an_incremental_loads_its_details_while_the_walk_goes_on_checkpointing_between_loads(
    target: SyncTarget, monkeypatch: pytest.MonkeyPatch, walk_in_process: bool
) -> None:
    """A run that finds few rows, but details, ends its segments on time (``DETAILS_SEGMENT_SECONDS``) rather
    than on rows, its catalogs hand their rows over as they find them (``BATCH_SECONDS``), and the DuckDB
    file is checkpointed after each load but the last."""
    sandbox = target.sandbox
    expected = ExpectedTables(sandbox)
    target.sync(page_size=10, walk_in_process=walk_in_process)
    expected.observe()
    monkeypatch.setattr(segments, "MIN_SEGMENT_ROWS", 10**9)  # only the details' rule ends a segment
    monkeypatch.setattr(segments, "DETAILS_SEGMENT_SECONDS", 0.0)
    monkeypatch.setattr(segments, "SECONDS_PER_LOAD_SECOND", 0.0)
    monkeypatch.setattr(catalog_walk, "BATCH_ROWS", 10**6)
    monkeypatch.setattr(walk_process, "GROUP_ROWS", 10**6)
    monkeypatch.setattr(catalog_walk, "BATCH_SECONDS", 0.0)
    write_ahead_log = target.database.with_name(target.database.name + ".wal")
    logged_after_checkpoints: list[int] = []
    let_go_and_hold_again = HeldDuckDB.let_go_and_hold_again

    def checkpointing(self: HeldDuckDB) -> None:
        let_go_and_hold_again(self)
        logged_after_checkpoints.append(write_ahead_log.stat().st_size if write_ahead_log.exists() else 0)

    monkeypatch.setattr(HeldDuckDB, "let_go_and_hold_again", checkpointing)
    # the walk, not the loads, is what the extract waits for: at 10 ms a walk in a process (a CPU of its own)
    # once ended before the loads of a busy test process had taken its first segment
    sandbox.set_fault_rates(latency=0.03)
    for catalog in sandbox.granted_catalogs():
        sandbox.update_prices(catalog, 4)
    report = target.sync(page_size=10, walk_in_process=walk_in_process)
    expected.observe()
    assert totals(report) == {"new": 0, "changed": 12, "removed": 0, "lookups": 12}
    assert len(report.load_ids) > 1, report.load_ids
    assert logged_after_checkpoints and set(logged_after_checkpoints) == {0}
    assert len(logged_after_checkpoints) <= len(report.load_ids) - 1
    assert_tables_match(target.database, expected)
    assert not write_ahead_log.exists()

    # without the rule, the same run is one load
    monkeypatch.setattr(segments, "DETAILS_SEGMENT_SECONDS", math.inf)
    logged_after_checkpoints.clear()
    for catalog in sandbox.granted_catalogs():
        sandbox.update_prices(catalog, 4)
    report = target.sync(page_size=10, walk_in_process=walk_in_process)
    expected.observe()
    assert len(report.load_ids) == 1 and not logged_after_checkpoints
    assert_tables_match(target.database, expected)


def test_a_run_failing_after_some_segments_keeps_them_consistent_and_the_next_completes_them(
    target: SyncTarget, segment_loads: threading.Event
) -> None:
    sandbox = target.sandbox
    expected = ExpectedTables(sandbox)
    failed = threading.Event()
    pages: dict[str, int] = {}

    def fail_once_a_segment_is_loaded(report: CatalogReport) -> None:
        # called on the walk's thread: once every catalog has answered (no segment loads before), the walk
        # waits here until the extract thread has loaded a segment, then the next search fails
        pages[report.catalog] = report.pages
        if not failed.is_set() and len(pages) == 3 and min(pages.values()) >= 1 and report.pages >= 4:
            assert segment_loads.wait(timeout=60), "no segment was loaded"
            failed.set()
            sandbox.fail_next(1, "oversized", endpoint="search")

    with pytest.raises(SyncError) as raised:
        target.sync(page_size=10, details=False, progress=fail_once_a_segment_is_loaded)
    assert "16,777,216-byte limit" in str(raised.value) and "\n" not in str(raised.value), raised.value
    report = raised.value.report
    assert report is not None and report.load_ids, "the segments loaded before the failure are reported"
    assert not _walk_threads()

    # what was loaded is right: every row is the API's, none twice, nothing marked removed
    expected.observe()
    rows = read_rows(target.database, "products")
    uuids = [row["uuid"] for row in rows]
    assert 0 < len(uuids) < len(expected.products) and len(set(uuids)) == len(uuids)
    assert all(row.get("removed_at") is None for row in rows)
    loaded_prices = read_rows(target.database, "price_history")
    assert len(loaded_prices) == len(uuids)

    report = target.sync(page_size=10, details=False)
    assert report.total("new") == len(expected.products) - len(uuids)
    expected = ExpectedTables(sandbox, details=False)
    expected.observe()
    assert_tables_match(target.database, expected)


def test_nothing_is_loaded_before_every_catalog_answered(target: SyncTarget) -> None:
    """An unknown catalog fails the run before any segment loads the others' products."""
    catalogs = (*target.sandbox.granted_catalogs(), "no-such-catalog")
    with pytest.raises(SyncError, match="unknown catalog 'no-such-catalog'"):
        target.sync(catalogs=catalogs, page_size=10, max_concurrent_catalogs=4)
    if target.database.exists():
        with duckdb.connect(str(target.database), read_only=True) as connection:
            found = connection.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'products'"
            ).fetchone()
        assert found == (0,)
    assert not _walk_threads()


@pytest.mark.parametrize(
    ("first", "then", "stored_then"),
    [("A1", 7, {"shelf_code": "7"}), (7, "A1", {"shelf_code__v_text": "A1"})],
    ids=["text, then a number dlt coerces", "a number, then text: a variant column"],
)
@pytest.mark.parametrize("walk_in_process", [True, False], ids=["walk in a process", "walk in a thread"])
def test_a_column_whose_type_changes_between_runs_loads_as_dlt_would_wherever_the_walk_runs(
    target: SyncTarget,
    monkeypatch: pytest.MonkeyPatch,
    walk_in_process: bool,
    first: object,
    then: object,
    stored_then: dict[str, object],
) -> None:
    # an undeclared field the API sends as one type, then as another: the walk's process converts without
    # the schema at hand, the extract sees the table does not fit, and dlt does what it does in a thread
    sandbox = target.sandbox
    catalog = sandbox.granted_catalogs()[0]
    real_product_row = catalog_walk.stable_product_row

    def product_rows_with(shelf: object) -> Callable[..., dict[str, Any]]:
        def stable_product_row(*args: Any, **kwargs: Any) -> dict[str, Any]:
            return {**real_product_row(*args, **kwargs), "shelf_code": shelf}

        return stable_product_row

    monkeypatch.setattr(catalog_walk, "stable_product_row", product_rows_with(first))  # before the walk forks
    target.sync(details=False, walk_in_process=walk_in_process)
    changed = sandbox.update_prices(catalog, 6)
    monkeypatch.setattr(catalog_walk, "stable_product_row", product_rows_with(then))
    report = target.sync(details=False, walk_in_process=walk_in_process)

    assert totals(report)["changed"] == 6
    shelves = {
        row["uuid"]: {
            name: value for name, value in row.items() if name.startswith("shelf_code") and value is not None
        }
        for row in read_rows(target.database, "products")
    }
    assert len(shelves) == 360
    assert {uuid: shelf for uuid, shelf in shelves.items() if uuid in changed} == {
        uuid: stored_then for uuid in changed
    }
    assert all(shelf == {"shelf_code": first} for uuid, shelf in shelves.items() if uuid not in changed)

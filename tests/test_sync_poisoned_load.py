"""A load that fails every time does not block later runs (issue 13, item 1): the next run clears the
pending package safely and syncs on, saying so in one line; products whose ``products`` row the package
merged but whose details it never loaded are synced again (they would otherwise look unchanged forever).

The poisoned package is made for real: a sync in a subprocess SIGKILLs itself as soon as dlt has merged the
``products`` table (a test hook in that script only), then the package's remaining job files are overwritten
with bytes no destination can load. Real HTTP to the sandbox, real DuckDB files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dlt
import duckdb
import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncError
from tests.kill_support import killed_after_products_merge, mutate, start_sync
from tests.sync_support import DATASET, SyncTarget, assert_tables_match, totals

KILL_AFTER_PRODUCTS_MERGE = "KILL_AFTER_TABLE"


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=3, products=25, ungranted=0, seed=17), tmp_path)


def _poison_pending_package(target: SyncTarget) -> str:
    """Overwrites the job files the killed load left unfinished; returns the package's load id."""
    pipeline = dlt.attach(target.pipeline_name, pipelines_dir=str(target.pipelines_dir))
    [load_id] = pipeline.list_normalized_load_packages()
    package = target.pipelines_dir / target.pipeline_name / "load" / "normalized" / load_id
    unfinished = [path for folder in ("new_jobs", "started_jobs") for path in (package / folder).glob("*.*")]
    assert unfinished, "the kill left nothing to load"
    for path in unfinished:
        path.write_bytes(b"not a load file")
    return load_id


def _rows_of_load(database: Path, load_id: str) -> int:
    with duckdb.connect(str(database), read_only=True) as connection:
        found = connection.execute(
            f"SELECT count(*) FROM {DATASET}.products WHERE _dlt_load_id = ?", [load_id]
        ).fetchone()
    assert found is not None
    return int(found[0])


def test_a_partly_loaded_package_that_fails_again_is_cleared_and_resynced(target: SyncTarget) -> None:
    expected, to_look_up = killed_after_products_merge(target)
    load_id = _poison_pending_package(target)
    merged = _rows_of_load(target.database, load_id)
    assert merged > 0, "the products merge did not commit before the kill"

    report = target.sync()

    [notice] = report.warnings
    assert notice.startswith(
        f"the load an earlier run left pending ({load_id}) failed again and was cleared ("
    )
    assert "Traceback" not in notice and "\n" not in notice, notice
    # the products the package had merged look unchanged to the API, but are written and looked up again
    figures = totals(report)
    assert figures["lookups"] >= to_look_up and figures["changed"] + figures["new"] >= to_look_up
    expected.observe()
    assert_tables_match(target.database, expected)
    assert totals(target.sync()) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}


def test_a_pending_package_is_kept_when_the_destination_cannot_be_reached(
    target: SyncTarget, tmp_path: Path
) -> None:
    target.sync()
    mutate(target)
    sync = start_sync(target, **{KILL_AFTER_PRODUCTS_MERGE: "products"})
    sync.communicate(timeout=120)
    load_id = _poison_pending_package(target)
    target.database.rename(tmp_path / "moved.duckdb")
    target.database.mkdir()  # a directory where the DuckDB file was: no connection at all

    with pytest.raises(SyncError) as raised:
        target.sync()
    line = str(raised.value)
    assert line.startswith("an earlier run's load is pending, failed again and could not be cleared safely:")
    assert "drop-pending-packages" in line and "\n" not in line and "Traceback" not in line
    pipeline = dlt.attach(target.pipeline_name, pipelines_dir=str(target.pipelines_dir))
    assert pipeline.list_normalized_load_packages() == [load_id]

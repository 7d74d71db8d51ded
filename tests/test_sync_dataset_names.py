"""Dataset names as the destination writes them, and a change of dataset with loads still pending.

dlt normalizes a dataset name ("My Data;drop" is written to ``my_data_drop``): the run reports, and records in
``sync_runs``, the name the analyst will query, and refuses one that DuckDB cannot tell from the database (its
file's name) before anything is written, where it used to fail every load and leave a package that failed
the next runs too. A run into another dataset than the pipeline's last drops what that one left pending
instead of loading it here (dlt would): those rows may hold catalogs this dataset does not sync. Real HTTP to
the sandbox, real DuckDB files; the pending package is made by SIGKILLing a sync after its ``products`` merge.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dlt
import duckdb
import pytest

from octogen_source.commands.check import check_destination
from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncError
from tests.kill_support import killed_after_products_merge
from tests.sync_support import DATASET, ExpectedTables, SyncTarget, assert_tables_match, totals


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=3, products=25, ungranted=0, seed=23), tmp_path)


def _products_by_load(database: Path, schema: str) -> dict[str, int]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(
            f"SELECT _dlt_load_id, count(*) FROM {schema}.products GROUP BY 1"
        ).fetchall()
    return {load_id: count for load_id, count in rows}


def _uuids(database: Path, schema: str) -> set[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(f"SELECT uuid FROM {schema}.products WHERE removed_at IS NULL").fetchall()
    return {uuid for (uuid,) in rows}


def test_the_run_reports_and_records_the_dataset_as_the_destination_names_it(target: SyncTarget) -> None:
    report = target.sync(dataset="My Data;drop")

    assert report.dataset == "my_data_drop"
    with duckdb.connect(str(target.database), read_only=True) as connection:
        recorded = connection.execute("SELECT DISTINCT dataset FROM my_data_drop.sync_runs").fetchall()
        live = connection.execute("SELECT count(*) FROM my_data_drop.products_current").fetchone()
    assert recorded == [("my_data_drop",)]
    assert live == (len(ExpectedTables(target.sandbox).live_hits()),)


@pytest.mark.parametrize(
    ("dataset", "duckdb_name", "message"),
    [
        ("Octogen Sync", None, "the dataset 'Octogen Sync' (written as 'octogen_sync') must differ from the"),
        ("Sync Data", "sync_data.duckdb", "is named like the dataset 'Sync Data' (written as 'sync_data')"),
        ("sync_data", "Sync_Data.duckdb", "is named like the dataset 'sync_data': DuckDB cannot tell them"),
    ],
)
def test_a_dataset_duckdb_cannot_tell_from_its_database_is_refused_before_anything_is_written(
    target: SyncTarget, dataset: str, duckdb_name: str | None, message: str
) -> None:
    overrides = {"dataset": dataset}
    if duckdb_name is not None:
        overrides["duckdb_path"] = str(target.root / duckdb_name)
    options = target.options(**overrides)

    with pytest.raises(SyncError) as raised:
        target.sync(**overrides)
    assert message in str(raised.value)
    check = check_destination(options)
    assert check.status == "failed" and message in check.detail
    assert target.sandbox.request_counts["search"] == 0
    assert not any(target.root.glob("*.duckdb")) and not target.pipelines_dir.exists()


def test_loads_pending_for_another_dataset_are_dropped_there_not_loaded_here(target: SyncTarget) -> None:
    expected, to_look_up = killed_after_products_merge(target)
    [load_id] = dlt.attach(
        target.pipeline_name, pipelines_dir=str(target.pipelines_dir)
    ).list_normalized_load_packages()
    assert _products_by_load(target.database, DATASET).get(load_id, 0) > 0, (
        "no products merge before the kill"
    )

    report = target.sync(dataset="elsewhere")

    [notice] = report.warnings
    assert notice == (
        f"the loads an earlier run left pending for dataset {DATASET!r} ({load_id}) were dropped, not loaded"
        f" into 'elsewhere': a sync into {DATASET!r} syncs their products again"
    )
    # the new dataset holds this run's products only: every live product, none of the dropped package's
    assert load_id not in _products_by_load(target.database, "elsewhere")
    assert _uuids(target.database, "elsewhere") == set(ExpectedTables(target.sandbox).live_hits())
    assert not dlt.attach(target.pipeline_name, pipelines_dir=str(target.pipelines_dir)).has_pending_data

    # back in the first dataset, the products the dropped package had merged are written again, details too
    back = target.sync()
    figures = totals(back)
    assert figures["lookups"] >= to_look_up and figures["changed"] + figures["new"] >= to_look_up
    expected.observe()
    assert_tables_match(target.database, expected)
    assert totals(target.sync()) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}

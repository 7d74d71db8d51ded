"""End to end into BigQuery, locally: the sandbox over HTTP -> the real source and sync -> dlt's BigQuery
destination -> Google's ``google-cloud-bigquery`` over REST -> bqemulator (a BigQuery emulator from PyPI, in
its own process on 127.0.0.1).

Configured only the dlt way: ``destination_for("bigquery")`` with Application Default Credentials from
``GOOGLE_APPLICATION_CREDENTIALS`` and ``BIGQUERY_EMULATOR_HOST`` (see ``tests/bigquery_emulator``). What this
exercises: dataset creation, CREATE TABLE with the partition/cluster clauses, parquet and JSONL load jobs,
dlt's merge (staging dataset, temp tables, DELETE/INSERT scripts) and insert-only merge, the ``_dlt_*``
tables, reading the known versions back at the start of a walk, and restoring the pipeline state from
BigQuery.

What the emulator (bqemulator 1.4.0) cannot show, each covered elsewhere:
- schema evolution of an existing table: dlt sends ``ALTER TABLE t ADD COLUMN a .., ADD COLUMN b ..``, which
  the emulator fails to apply ("Only one ALTER command per statement is supported") yet reports as DONE
  inside a script, and even a one-column ALTER does not reach its table metadata. The ALTER SQL is checked in
  ``test_warehouse_config.py``; evolution itself by the DuckDB sync tests.
- gzip-compressed JSONL load files (dlt's default for its state table): the emulator reads them as plain JSON,
  so these tests set ``DATA_WRITER__DISABLE_COMPRESSION``.
- the partitioning and clustering of the created tables: the emulator runs the DDL but does not record
  ``PARTITION BY DATE(col)`` or ``CLUSTER BY`` in its table metadata, so the tests check the DDL it received.
  The real-BigQuery test checks the table metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncOptions, SyncReport, run_sync
from tests.bigquery_emulator import (
    BigQueryEmulator,
    snapshot_dataset,
)
from tests.sync_support import FAST_RETRY, ExpectedTables, assert_tables_match, read_rows, totals

pytestmark = [
    pytest.mark.timeout(300),
    # dlt's client would use the BigQuery Storage read API when installed; it is optional and not installed
    pytest.mark.filterwarnings("ignore:Cannot create BigQuery Storage client:UserWarning"),
]

REPO_ROOT = Path(__file__).resolve().parents[1]


def emulator_client(emulator: BigQueryEmulator) -> bigquery.Client:
    """A client of our own, to read what the sync left behind (the sync builds its own through dlt)."""
    return bigquery.Client(
        project=emulator.project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=emulator.endpoint),
    )


@dataclass
class Stage:
    report: SyncReport
    database: Path
    expected: ExpectedTables
    lookups: int


@dataclass
class BigQuerySyncs:
    """One sandbox synced into one emulator dataset several times; a snapshot after each sync."""

    sandbox: Sandbox
    emulator: BigQueryEmulator
    root: Path
    dataset: str
    stages: dict[str, Stage] = field(default_factory=dict)
    changes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def pipelines_dir(self) -> Path:
        return self.root / "pipelines"

    def sync(self, stage: str, expected: ExpectedTables) -> None:
        self.sandbox.reset_counts()
        report = run_sync(
            SyncOptions(
                destination="bigquery",
                dataset=self.dataset,
                pipeline_name="octogen_bigquery",
                pipelines_dir=str(self.pipelines_dir),
                api_key=self.sandbox.api_key,
                base_url=self.sandbox.base_url,
                catalogs=tuple(self.sandbox.granted_catalogs()),
                retry=FAST_RETRY,
            )
        )
        lookups = self.sandbox.request_counts["lookup"]
        expected.observe()
        database = snapshot_dataset(
            emulator_client(self.emulator), self.dataset, self.root / f"{stage}.duckdb"
        )
        frozen = replace(
            expected,
            products=dict(expected.products),
            removed=set(expected.removed),
            product_details=dict(expected.product_details),
            prices=set(expected.prices),
            catalogs=dict(expected.catalogs),
        )
        self.stages[stage] = Stage(report, database, frozen, lookups)


@pytest.fixture(scope="module")
def syncs(
    emulator: BigQueryEmulator,
    bigquery_environment: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BigQuerySyncs]:
    """First sync; every kind of change, second sync; worker lost its pipeline folder, third sync."""
    with Sandbox(catalogs=3, products=30, ungranted=1, seed=29) as sandbox:
        runs = BigQuerySyncs(sandbox, emulator, tmp_path_factory.mktemp("bigquery_syncs"), "octogen_e2e")
        expected = ExpectedTables(sandbox)
        runs.sync("first", expected)

        first, second = sandbox.granted_catalogs()
        runs.changes = {
            "updated": sandbox.update_prices(first, 3),
            "added": sandbox.add_products(second, 2),
            "removed": sandbox.remove_products(second, 2),
            "late": sandbox.add_late_indexed(first, 1),
            "null_updated_at": sandbox.add_null_updated_at(first, 1),
            "same_second": sandbox.add_same_second(second, 2),
        }
        runs.sync("changes", expected)

        shutil.rmtree(runs.pipelines_dir)  # an ephemeral worker: the state must come back from BigQuery
        runs.sync("restored", expected)
        yield runs


def test_first_sync_loads_every_table_equal_to_the_api(syncs: BigQuerySyncs) -> None:
    stage = syncs.stages["first"]
    assert totals(stage.report) == {"new": 60, "changed": 0, "removed": 0, "lookups": 60}
    assert stage.lookups == 60
    assert_tables_match(stage.database, stage.expected)


def test_every_kind_of_change_merges_into_bigquery(syncs: BigQuerySyncs) -> None:
    stage = syncs.stages["changes"]
    added = len(syncs.changes["added"]) + len(syncs.changes["late"]) + len(syncs.changes["null_updated_at"])
    added += len(syncs.changes["same_second"])
    changed = len(syncs.changes["updated"])
    assert totals(stage.report) == {
        "new": added,
        "changed": changed,
        "removed": 2,
        "lookups": added + changed,
    }
    assert stage.lookups == added + changed
    assert stage.expected.removed == set(syncs.changes["removed"])
    assert_tables_match(stage.database, stage.expected)  # fails on a duplicate uuid: the merge replaced rows


def test_a_fresh_worker_restores_its_state_from_bigquery(syncs: BigQuerySyncs) -> None:
    stage = syncs.stages["restored"]
    assert totals(stage.report) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}
    assert stage.lookups == 0
    # the incremental state came back from the destination, not from a local folder
    assert stage.report.high_water is not None
    assert stage.report.high_water == syncs.stages["changes"].report.high_water
    assert_tables_match(stage.database, stage.expected)


def jobs_of(emulator: BigQueryEmulator, dataset: str) -> list[Any]:
    client = emulator_client(emulator)
    found = []
    # the emulator ignores page tokens on jobs.list: ask for every job in one page
    for job in client.list_jobs(all_users=True, page_size=100_000):
        query = getattr(job, "query", None)
        destination = getattr(job, "destination", None)
        if (query and f"`{dataset}`" in query) or (
            destination and destination.dataset_id.startswith(dataset)
        ):
            found.append(job)
    return found


def test_what_dlt_sent_to_bigquery(syncs: BigQuerySyncs) -> None:
    jobs = jobs_of(syncs.emulator, syncs.dataset)
    assert jobs, "the emulator recorded no job of the sync"
    assert [job for job in jobs if job.error_result] == []

    queries = [job.query for job in jobs if job.job_type == "query"]
    table = f"`{syncs.emulator.project}`.`{syncs.dataset}`"
    for name in ("products", "price_history"):
        (create,) = [q for q in queries if f"CREATE TABLE {table}.`{name}` (" in q]
        statement = create[create.index(f"CREATE TABLE {table}.`{name}` (") :].split(";")[0]
        assert statement.endswith("\nPARTITION BY DATE(`updated_at`)\nCLUSTER BY `catalog`"), statement
    (create_details,) = [q for q in queries if f"CREATE TABLE {table}.`product_details` (" in q]
    details_statement = create_details[create_details.index(f"CREATE TABLE {table}.`product_details` (") :]
    assert "PARTITION BY" not in details_statement.split(";")[0]
    # the merge went through dlt's staging dataset, deleting the replaced rows before inserting
    assert any(f"DELETE FROM {table}.`products`" in q and f"`{syncs.dataset}_staging`" in q for q in queries)

    loads = [job for job in jobs if job.job_type == "load"]
    formats = {(job.destination.table_id, job.source_format) for job in loads}
    assert {table for table, source_format in formats if source_format == "PARQUET"} >= {
        "products",
        "product_details",
        "product_details__colors",
        "price_history",
        "catalogs",
    }
    assert {table for table, source_format in formats if source_format != "PARQUET"} == {
        "_dlt_pipeline_state",
        "sync_runs",  # a few rows per sync, as JSONL
    }


def test_every_sync_is_recorded_in_sync_runs(syncs: BigQuerySyncs) -> None:
    stage = syncs.stages["restored"]  # its snapshot was taken after all three syncs
    volatile = ("started_at", "finished_at", "seconds")
    stored = sorted(
        (
            {name: value for name, value in row.items() if name not in volatile}
            for row in read_rows(stage.database, "sync_runs")
        ),
        key=lambda row: (row["run_id"], row["catalog"]),
    )
    expected = sorted(
        (
            {
                name: value
                for name, value in record.items()
                if name not in volatile and value is not None and value != []
            }
            for name in ("first", "changes", "restored")
            for record in syncs.stages[name].report.catalog_records()
        ),
        key=lambda row: (row["run_id"], row["catalog"]),
    )
    assert stored == expected
    assert len(stored) == 6 and {row["outcome"] for row in stored} == {"ok"}


def test_the_cli_loads_into_bigquery(
    emulator: BigQueryEmulator,
    bigquery_environment: dict[str, str],
    sandbox_factory: Callable[..., Sandbox],
    tmp_path: Path,
) -> None:
    sandbox = sandbox_factory(catalogs=2, products=10, ungranted=1, seed=37)
    environment = {
        **os.environ,
        **bigquery_environment,
        "OCTO_API_KEY": sandbox.api_key,
        "SOURCES__OCTOGEN__BASE_URL": sandbox.base_url,
        "SOURCES__OCTOGEN__CATALOGS": json.dumps(sandbox.granted_catalogs()),
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
    }
    command = [sys.executable, str(REPO_ROOT / "pipelines" / "sync.py"), "--destination", "bigquery"]
    command += ["--dataset", "octogen_cli", "--no-details"]
    finished = subprocess.run(
        command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert finished.returncode == 0, finished.stderr
    assert "synced into bigquery dataset 'octogen_cli'" in finished.stdout
    assert sandbox.api_key not in finished.stdout + finished.stderr

    expected = ExpectedTables(sandbox, details=False)
    expected.observe()
    database = snapshot_dataset(emulator_client(emulator), "octogen_cli", tmp_path / "cli.duckdb")
    assert_tables_match(database, expected)


def test_check_connects_to_bigquery(
    emulator: BigQueryEmulator,
    bigquery_environment: dict[str, str],
    sandbox_factory: Callable[..., Sandbox],
    tmp_path: Path,
) -> None:
    """``octogen-sync --check --destination bigquery``: dlt's client connects with the configured
    credentials; a dataset the first sync will create is fine."""
    sandbox = sandbox_factory(catalogs=2, products=5, ungranted=0, seed=41)
    environment = {
        **os.environ,
        **bigquery_environment,
        "OCTO_API_KEY": sandbox.api_key,
        "SOURCES__OCTOGEN__BASE_URL": sandbox.base_url,
        "SOURCES__OCTOGEN__CATALOGS": json.dumps(sandbox.granted_catalogs()),
        "DLT_DATA_DIR": str(tmp_path / "dlt"),
    }
    command = [sys.executable, "-m", "octogen_source", "--check", "--destination", "bigquery"]
    command += ["--dataset", "octogen_check_new"]
    finished = subprocess.run(
        command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert finished.stdout.splitlines()[-1] == (
        "ok      destination bigquery dataset octogen_check_new: connected with the configured credentials;"
        " the dataset does not exist yet (the first sync creates it)"
    )
    assert sandbox.api_key not in finished.stdout + finished.stderr

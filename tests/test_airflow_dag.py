"""pipelines/octogen_dag.py in real Airflow 3: parsed by Airflow's own DagBag and run with ``dag.test()`` (a
real DAG run on a SQLite metadata database, tasks executed by Airflow's task runner) against the sandbox over
HTTP into a DuckDB file; and the same DAGs from the installed package in a dags folder of its own. What the
tasks do without Airflow is tested in the default suite (tests/test_airflow_tasks.py).

Needs Airflow, which the default environment does not have: tests/test_airflow_environment.py runs this file
inside ``.airflow-venv`` (``uv sync --group airflow``). Nothing is mocked: the connection and variables reach
the tasks through Airflow's own environment-variable secrets backend (AIRFLOW_CONN_* / AIRFLOW_VAR_*).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from octogen_source.errors import OctogenError
from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncError, failure_is_retryable
from tests.airflow_support import (  # noqa: F401  (airflow_home: the module's autouse fixture)
    DAG_FILE,
    REPO,
    airflow_home,
    load_dags,
    run_autosubscribe_dag,
)
from tests.error_cases import FINAL, RETRYABLE
from tests.sync_support import typed_columns

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("airflow") is None,
    reason="needs Airflow: tests/test_airflow_environment.py runs this file in .airflow-venv",
)

# the search-hit fields every products row carries (snake_case columns of the wire's camelCase keys)
HIT_COLUMNS = {
    "uuid": "uuid",
    "productUrl": "product_url",
    "title": "title",
    "currentPrice": "current_price",
    "originalPrice": "original_price",
    "imageUrl": "image_url",
    "isActive": "is_active",
    "updatedAt": "updated_at",
}
TYPED_COLUMNS = ("brand", "rating", "rating_count")
"""Columns the tables derive from the current API's objects (brand name, rating average and count)."""


def test_dagbag_parses_both_dags_with_their_tasks_schedules_and_retries() -> None:
    dags = load_dags()
    assert set(dags) == {"octogen_sync", "octogen_bigquery_autosubscribe"}

    sync = dags["octogen_sync"]
    assert {task.task_id for task in sync.tasks} == {"resolve_catalogs", "sync_catalog"}
    assert sync.get_task("resolve_catalogs").downstream_task_ids == {"sync_catalog"}
    assert sync.get_task("sync_catalog").upstream_task_ids == {"resolve_catalogs"}
    assert (sync.schedule, sync.max_active_runs, sync.catchup) == ("@hourly", 1, False)
    per_catalog = sync.get_task("sync_catalog")
    assert type(per_catalog).__name__ == "DecoratedMappedOperator"  # one task instance per catalog
    assert per_catalog.retries == 3 and per_catalog.retry_exponential_backoff
    assert (per_catalog.retry_delay.total_seconds(), per_catalog.max_retry_delay.total_seconds()) == (
        120,
        1800,
    )
    assert per_catalog.execution_timeout.total_seconds() == 7200
    assert per_catalog.max_active_tis_per_dagrun == 4

    autosubscribe = dags["octogen_bigquery_autosubscribe"]
    assert [task.task_id for task in autosubscribe.tasks] == ["autosubscribe"]
    assert (autosubscribe.schedule, autosubscribe.max_active_runs, autosubscribe.catchup) == (
        "*/10 * * * *",
        1,
        False,
    )
    assert autosubscribe.is_paused_upon_creation is True
    assert autosubscribe.get_task("autosubscribe").execution_timeout.total_seconds() == 600


DAGS_FOLDER_FILE = """from octogen_source.airflow.dags import build_autosubscribe_dag, build_sync_dag

sync_dag = build_sync_dag()
autosubscribe_dag = build_autosubscribe_dag()
"""
"""What a user writes into their dags folder (pipelines/octogen_dag.py is the same lines and a docstring)."""

BAG_OF_A_DAGS_FOLDER = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
import octogen_source

bag = DagBag(dag_folder=sys.argv[1])  # safe_mode on, as the scheduler parses
print(json.dumps({
    "errors": {path: str(error) for path, error in bag.import_errors.items()},
    "dags": {dag_id: dag.fileloc for dag_id, dag in bag.dags.items()},
    "tasks": {dag_id: sorted(dag.task_ids) for dag_id, dag in bag.dags.items()},
    "package": octogen_source.__file__,
}))
"""


def test_a_dags_folder_file_importing_the_installed_package_yields_both_dags(tmp_path: Path) -> None:
    """A fresh interpreter started outside the checkout (so nothing is imported from the working directory)
    parses a dags folder holding only the factory's import and calls: both DAGs, recorded as that file's."""
    dags_folder = tmp_path / "dags"
    dags_folder.mkdir()
    (dags_folder / "octogen.py").write_text(DAGS_FOLDER_FILE)
    assert DAG_FILE.read_text().endswith(DAGS_FOLDER_FILE)
    environ = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    environ["AIRFLOW_HOME"] = str(tmp_path / "home")
    parsed = subprocess.run(
        [sys.executable, "-c", BAG_OF_A_DAGS_FOLDER, str(dags_folder)],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    bag = json.loads(parsed.stdout.strip().splitlines()[-1])
    assert bag["errors"] == {}
    assert bag["dags"] == {
        "octogen_sync": str(dags_folder / "octogen.py"),
        "octogen_bigquery_autosubscribe": str(dags_folder / "octogen.py"),
    }
    assert bag["tasks"] == {
        "octogen_sync": ["resolve_catalogs", "sync_catalog"],
        "octogen_bigquery_autosubscribe": ["autosubscribe"],
    }
    # the package the DAG file imported is the one installed in this environment (uv installs the project
    # editable: its files are the checkout's, found through the environment's site-packages, not the cwd)
    assert Path(bag["package"]).resolve().parent == REPO / "octogen_source"
    assert importlib.metadata.version("octogen-dlt")


@pytest.mark.parametrize("error", RETRYABLE + FINAL, ids=lambda error: type(error).__name__)
def test_the_dag_retries_exactly_what_the_errors_retryable_says(error: OctogenError) -> None:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from octogen_source.airflow.dags import raise_for_airflow

    try:
        raise RuntimeError("a step of the pipeline failed") from error  # as dlt wraps what a source raised
    except RuntimeError as wrapped:
        sync_error = SyncError("one line", retryable=failure_is_retryable(wrapped))
    expected = AirflowException if error.retryable else AirflowFailException
    with pytest.raises(AirflowException) as raised:
        raise_for_airflow(sync_error, "northwind_apparel")
    assert type(raised.value) is expected and str(raised.value) == "northwind_apparel: one line"
    with pytest.raises(AirflowException) as raised:
        raise_for_airflow(error)
    assert type(raised.value) is expected and str(raised.value) == str(error)


def configure_sync(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, database: Path, catalogs: str | None = None
) -> None:
    connection = {"conn_type": "http", "host": sandbox.base_url, "password": sandbox.api_key}
    monkeypatch.setenv("AIRFLOW_CONN_OCTOGEN_API", json.dumps(connection))
    if catalogs is not None:
        monkeypatch.setenv("AIRFLOW_VAR_OCTOGEN_CATALOGS", catalogs)
    monkeypatch.setenv("AIRFLOW_VAR_OCTOGEN_DESTINATION", "duckdb")
    monkeypatch.setenv("AIRFLOW_VAR_OCTOGEN_DUCKDB_PATH", str(database))


def run_sync_dag() -> tuple[str, dict[str, dict[str, Any]], dict[str, str]]:
    """One real run of octogen_sync: its state, each catalog's summary (XCom) and every task's state."""
    dag = load_dags()["octogen_sync"]
    run = dag.test()
    instances = run.get_task_instances()
    states = {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in instances}
    summaries = {}
    for ti in instances:
        if ti.task_id == "sync_catalog":
            summary = ti.xcom_pull(task_ids="sync_catalog", map_indexes=ti.map_index)
            if summary is not None:
                summaries[summary["catalog"]] = summary
    return str(run.state), summaries, states


def loaded_products(database: Path) -> dict[str, dict[str, Any]]:
    """The products table (search-hit columns, catalog, removed_at, images decoded from JSON) by uuid."""
    names = ["catalog", "removed_at", "images", *HIT_COLUMNS.values(), *TYPED_COLUMNS]
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(f"SELECT {', '.join(names)} FROM octogen.products").fetchall()
    table = {}
    for values in rows:
        row = dict(zip(names, values, strict=True))
        row["images"] = json.loads(row["images"]) if row["images"] is not None else []
        table[row["uuid"]] = row
    return table


def expected_products(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    expected = {}
    for catalog in sandbox.granted_catalogs():
        for item in sandbox.truth_search_items(catalog):
            row: dict[str, Any] = {column: item[key] for key, column in HIT_COLUMNS.items()}
            typed = typed_columns(item)
            row.update({column: typed.get(column) for column in TYPED_COLUMNS})
            if row["updated_at"] is not None:
                row["updated_at"] = datetime.fromisoformat(row["updated_at"])
            row.update(catalog=catalog, removed_at=None, images=list(item["images"]))
            expected[row["uuid"]] = row
    return expected


def figures(summaries: dict[str, dict[str, Any]]) -> dict[str, tuple[int, ...]]:
    """catalog -> (new, changed, removed, lookups)"""
    names = ("new", "changed", "removed", "lookups")
    return {catalog: tuple(summary[name] for name in names) for catalog, summary in summaries.items()}


# a task gone up_for_retry would make dag.test() wait out the retry delay: fail instead
@pytest.mark.timeout(150, method="thread")
def test_sync_dag_loads_every_granted_catalog_and_a_fresh_worker_loads_only_what_changed(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "warehouse.duckdb"
    configure_sync(monkeypatch, sandbox, database, catalogs=",".join(sandbox.granted_catalogs()))
    # every task's throwaway pipeline directory is made here: proof that none survives a run
    worker_tmp = tmp_path / "worker_tmp"
    worker_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(worker_tmp))
    first, second = sandbox.granted_catalogs()
    sizes = {catalog: len(sandbox.truth_search_items(catalog)) for catalog in (first, second)}

    state, summaries, states = run_sync_dag()

    assert (state, states) == (
        "success",
        {"resolve_catalogs[-1]": "success", "sync_catalog[0]": "success", "sync_catalog[1]": "success"},
    )
    assert figures(summaries) == {catalog: (size, 0, 0, size) for catalog, size in sizes.items()}
    assert all(summary["retries"] == 0 and summary["requests"] > 1 for summary in summaries.values())
    assert loaded_products(database) == expected_products(sandbox)
    assert list(worker_tmp.iterdir()) == []

    repriced = sandbox.update_prices(first, 4)
    removed = sandbox.remove_products(second, 2)
    added = sandbox.add_products(second, 3)

    state, summaries, _ = run_sync_dag()

    # the second run had no local pipeline state: what each task knew came back from the DuckDB file
    assert state == "success"
    assert figures(summaries) == {first: (0, len(repriced), 0, len(repriced)), second: (len(added), 0, 2, 3)}
    products = loaded_products(database)
    assert {uuid: row for uuid, row in products.items() if row["removed_at"] is None} == expected_products(
        sandbox
    )
    assert {uuid for uuid, row in products.items() if row["removed_at"] is not None} == set(removed)
    assert list(worker_tmp.iterdir()) == []


# failed, not up_for_retry: otherwise dag.test() would wait out the retry delay
@pytest.mark.timeout(90, method="thread")
def test_rejected_key_fails_the_catalog_task_without_retrying_and_never_logs_the_key(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    catalog = sandbox.granted_catalogs()[0]
    configure_sync(monkeypatch, sandbox, tmp_path / "warehouse.duckdb", catalogs=catalog)
    sandbox.revoke_key(sandbox.api_key)

    state, summaries, states = run_sync_dag()

    assert (state, summaries, states["sync_catalog[0]"]) == ("failed", {}, "failed")
    captured = capfd.readouterr()
    logs = captured.out + captured.err  # dag.test() runs the tasks in this process, logging to stdout
    assert f"{catalog}: the Octogen API rejected the API key" in logs
    assert sandbox.api_key not in logs


# failed, not up_for_retry: otherwise dag.test() would wait out the retry delay
@pytest.mark.timeout(90, method="thread")
def test_without_octogen_catalogs_the_current_api_fails_resolve_catalogs_with_one_line(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_sync(monkeypatch, sandbox, tmp_path / "warehouse.duckdb")  # no octogen_catalogs

    state, summaries, states = run_sync_dag()

    assert (state, summaries, states["resolve_catalogs[-1]"]) == ("failed", {}, "failed")
    captured = capfd.readouterr()
    logs = captured.out + captured.err
    assert "set the octogen_catalogs Variable to the catalog keys" in logs
    assert sandbox.request_counts["search"] == 0 and sandbox.api_key not in logs


PROJECT = "acme-analytics"
PRINCIPAL = "serviceAccount:reader@acme-analytics.iam.gserviceaccount.com"


@pytest.mark.timeout(120, method="thread")
def test_autosubscribe_dag_subscribes_what_awaits_and_fails_when_the_pass_fails(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # the BigQuery helper's fakes: an MCP control plane over HTTP, Analytics Hub over gRPC, both on 127.0.0.1
    from tests.fake_analyticshub import FakeAnalyticsHub
    from tests.fake_control_plane import FakeControlPlane, listing_resource_name

    with FakeControlPlane() as control_plane, FakeAnalyticsHub() as hub:
        control_plane.add_listing("shoes")
        reader = control_plane.add_subscriber(PROJECT, PRINCIPAL)
        control_plane.set_cell(reader, "shoes", "awaiting_subscription")
        connection = {"conn_type": "generic", "host": control_plane.url, "password": control_plane.token}
        monkeypatch.setenv("AIRFLOW_CONN_OCTOGEN_MCP", json.dumps(connection))
        monkeypatch.setenv("AIRFLOW_VAR_OCTOGEN_BQ_PROJECT", PROJECT)
        monkeypatch.setenv("AIRFLOW_VAR_OCTOGEN_BQ_PRINCIPAL", PRINCIPAL)
        monkeypatch.setenv("OCTOGEN_ANALYTICSHUB_ENDPOINT", hub.address)  # Google's client, insecure channel

        assert run_autosubscribe_dag() == ("success", "success")
        assert control_plane.cell_status(reader, "shoes") == "active"
        assert [subscription.listing for subscription in hub.subscriptions(PROJECT, "us")] == [
            listing_resource_name("shoes")
        ]

        # the control plane now rejects the token: the pass exits 1 and the task fails (retries off here,
        # or dag.test() would wait out the retry delay; the DAG's own retries are checked above)
        control_plane.set_tokens("another-token")
        assert run_autosubscribe_dag(retries=0) == ("failed", "failed")
        logs = "".join(capfd.readouterr())
        assert "octogen-bq-autosubscribe failed (exit 1)" in logs
        assert control_plane.token not in logs

"""Airflow 3 DAGs for Octogen: the catalog sync, and the BigQuery autosubscribe pass.

A DAG file (``pipelines/octogen_dag.py``, or the same lines in your dags folder) calls the factories at module
level, so Airflow's DagBag finds the DAGs there and records that file as theirs::

    from octogen_source.airflow.dags import build_autosubscribe_dag, build_sync_dag

    sync_dag = build_sync_dag()
    autosubscribe_dag = build_autosubscribe_dag()

``octogen_sync`` (schedule ``$OCTOGEN_SYNC_SCHEDULE``, default hourly)
    ``resolve_catalogs`` -> ``sync_catalog`` (one mapped task instance per catalog, named after it).
    Each catalog is its own dlt pipeline (``octogen_<catalog>``) loading into one dataset, so catalogs run in
    parallel, retry independently and never share dlt state. The pipeline directory is a temporary directory
    per task: the state lives in the destination (dlt restores it, and the source reads the loaded versions
    back from ``products``), so any worker can run any catalog.
``octogen_bigquery_autosubscribe`` (schedule ``$OCTOGEN_AUTOSUBSCRIBE_SCHEDULE``, default every 10 minutes,
    paused when created)
    One ``octogen-bq-autosubscribe --apply`` pass; the task fails when it exits non-zero.

Configuration (an Airflow Variable wins over the environment variable of the same name in upper case):
    connection ``octogen_api``        password = the Octogen API key; host (full URL) or extra ``base_url`` =
                                      the API base URL (default production). Handed to run_sync, never logged;
                                      without the connection dlt's own config applies (SOURCES__OCTOGEN__*).
    ``octogen_catalogs``              catalog keys, comma-separated or a JSON list; the current API needs
                                      them (empty = what GET /catalogs lists, seed-era APIs only)
    ``octogen_destination``           bigquery (default) or duckdb; warehouse credentials the dlt way: the
                                      worker's env (DESTINATION__BIGQUERY__*), .dlt/secrets.toml, or ADC
    ``octogen_dataset``               dataset of every catalog (default ``octogen``)
    ``octogen_duckdb_path``           the DuckDB file (duckdb destination only)
    ``octogen_bq_project`` / ``octogen_bq_principal``   autosubscribe: your project and the reader principal
    ``octogen_autosubscribe_catalogs``  autosubscribe: only these catalogs (default all)
    connection ``octogen_mcp``        optional; control-plane credentials (see
                                      :func:`octogen_source.airflow.tasks.control_plane_environ` and
                                      docs/airflow.md)
Parse-time environment only: OCTOGEN_SYNC_SCHEDULE, OCTOGEN_AUTOSUBSCRIBE_SCHEDULE,
OCTOGEN_MAX_PARALLEL_CATALOGS (default 4; use 1 with DuckDB, a single-writer file).

Whether a failed task is retried is decided by the failure's own ``retryable`` (``OctogenError.retryable``,
``SyncError.retryable``): retried when running it again may succeed, failed at once otherwise.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, cast

try:
    from airflow.sdk import DAG, Connection, Variable, get_current_context, task
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException
except ImportError as missing:  # no Airflow, or one older than 3.2 (Task SDK 1.2)
    raise ImportError(
        "octogen_source.airflow.dags needs Apache Airflow 3.2 or newer next to octogen-dlt:"
        " pip install 'apache-airflow>=3.2'",
        name=missing.name,
    ) from missing

from octogen_source.airflow.tasks import (
    CATALOGS_VARIABLE,
    DEFAULT_DATASET,
    DEFAULT_DESTINATION,
    ApiCredentials,
    ConnectionFields,
    WarehouseSettings,
    api_credentials,
    autosubscribe_pass,
    control_plane_environ,
    granted_catalogs,
    max_parallel_catalogs,
    parse_catalogs,
    sync_one_catalog,
)
from octogen_source.errors import OctogenError

SYNC_DAG_ID = "octogen_sync"
AUTOSUBSCRIBE_DAG_ID = "octogen_bigquery_autosubscribe"
API_CONNECTION_ID = "octogen_api"
MCP_CONNECTION_ID = "octogen_mcp"

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
SYNC_RETRIES = 3
SYNC_RETRY_DELAY = timedelta(minutes=2)
SYNC_MAX_RETRY_DELAY = timedelta(minutes=30)
SYNC_TIMEOUT = timedelta(hours=2)
AUTOSUBSCRIBE_TIMEOUT = timedelta(minutes=10)


def setting(name: str, default: str = "") -> str:
    """Airflow Variable ``name``, else env ``NAME``, else ``default`` (call inside a task only)."""
    value = Variable.get(name, default=None)
    if value is None:
        value = os.environ.get(name.upper())
    return default if value is None or not str(value).strip() else str(value).strip()


def connection(conn_id: str) -> ConnectionFields | None:
    try:
        return cast("ConnectionFields", Connection.get(conn_id))
    except AirflowNotFoundException:
        return None


def raise_for_airflow(error: OctogenError, what: str = "") -> NoReturn:
    """Re-raises ``error`` (already one readable line, no key) so that Airflow retries it only when its
    ``retryable`` says running it again may succeed."""
    line = f"{what}: {error}" if what else str(error)
    if error.retryable:
        raise AirflowException(line) from None
    raise AirflowFailException(line) from None


def catalogs_setting(name: str) -> list[str]:
    """The catalog keys of Variable ``name``; a malformed value fails the task with the line naming it."""
    try:
        return parse_catalogs(setting(name), name)
    except OctogenError as error:
        raise_for_airflow(error)


def warehouse_settings() -> WarehouseSettings:
    return WarehouseSettings(
        destination=setting("octogen_destination", DEFAULT_DESTINATION),
        dataset=setting("octogen_dataset", DEFAULT_DATASET),
        duckdb_path=setting("octogen_duckdb_path") or None,
    )


def sync_credentials() -> ApiCredentials:
    return api_credentials(connection(API_CONNECTION_ID))


def build_sync_dag() -> DAG:
    """``octogen_sync``: ``resolve_catalogs`` -> ``sync_catalog`` mapped over the catalogs."""
    with DAG(
        dag_id=SYNC_DAG_ID,
        description="Sync the Octogen catalogs into the warehouse (one dlt pipeline per catalog)",
        schedule=os.environ.get("OCTOGEN_SYNC_SCHEDULE", "@hourly"),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=SYNC_TIMEOUT * 2,
        default_args={
            "owner": "data-engineering",
            "retries": SYNC_RETRIES,
            "retry_delay": SYNC_RETRY_DELAY,
            "retry_exponential_backoff": True,
            "max_retry_delay": SYNC_MAX_RETRY_DELAY,
            "execution_timeout": SYNC_TIMEOUT,
        },
        tags=["octogen", "dlt"],
    ) as dag:

        @task(execution_timeout=timedelta(minutes=5))
        def resolve_catalogs() -> list[str]:
            """The catalogs of this run: ``octogen_catalogs``, or every catalog granted to the key."""
            configured = catalogs_setting(CATALOGS_VARIABLE)
            if configured:
                return configured
            try:
                return granted_catalogs(sync_credentials())
            except OctogenError as error:
                raise_for_airflow(error, "listing the granted catalogs")

        @task(map_index_template="{{ octogen_catalog }}", max_active_tis_per_dagrun=max_parallel_catalogs())
        def sync_catalog(catalog: str) -> dict[str, Any]:
            # names this task instance after its catalog in the UI (map_index_template)
            cast("dict[str, Any]", get_current_context())["octogen_catalog"] = catalog
            try:
                return sync_one_catalog(catalog, warehouse_settings(), sync_credentials())
            except OctogenError as error:  # run_sync's SyncError
                raise_for_airflow(error, catalog)

        sync_catalog.expand(catalog=resolve_catalogs())
    return dag


def build_autosubscribe_dag() -> DAG:
    """``octogen_bigquery_autosubscribe``: one ``octogen-bq-autosubscribe --apply`` pass, paused at first."""
    with DAG(
        dag_id=AUTOSUBSCRIBE_DAG_ID,
        description=(
            "Subscribe to the Octogen BigQuery listings awaiting subscription (octogen-bq-autosubscribe)"
        ),
        schedule=os.environ.get("OCTOGEN_AUTOSUBSCRIBE_SCHEDULE", "*/10 * * * *"),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=True,
        default_args={
            "owner": "data-engineering",
            "retries": 1,
            "retry_delay": timedelta(minutes=2),
            "execution_timeout": AUTOSUBSCRIBE_TIMEOUT,
        },
        tags=["octogen", "bigquery"],
    ) as dag:

        @task
        def autosubscribe() -> None:
            """One ``octogen-bq-autosubscribe --apply`` pass; its report goes to the task log."""
            from octogen_source.bigquery.autosubscribe_cli import EXIT_BAD_ARGUMENTS, EXIT_OK

            project = setting("octogen_bq_project")
            principal = setting("octogen_bq_principal")
            if not project or not principal:
                raise AirflowFailException(
                    "set the Airflow Variables octogen_bq_project and octogen_bq_principal (or"
                    " OCTOGEN_BQ_PROJECT / OCTOGEN_BQ_PRINCIPAL) before enabling this DAG"
                )
            catalogs = catalogs_setting("octogen_autosubscribe_catalogs")
            control_plane = control_plane_environ(connection(MCP_CONNECTION_ID))
            exit_code = autosubscribe_pass(project, principal, catalogs, control_plane)
            if exit_code == EXIT_BAD_ARGUMENTS:
                raise AirflowFailException(f"octogen-bq-autosubscribe: bad configuration (exit {exit_code})")
            if exit_code != EXIT_OK:
                raise AirflowException(
                    f"octogen-bq-autosubscribe failed (exit {exit_code}); see its report above"
                )

        autosubscribe()
    return dag

"""Airflow 3 DAGs for Octogen: the catalog sync, and the BigQuery autosubscribe pass.

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
    connection ``octogen_mcp``        optional; control-plane credentials, one of: extra
                                      ``refresh_token_file`` + ``client_id_file`` (or ``client_id``), the
                                      files ``octogen-mcp-login`` wrote (the worker must be able to write
                                      the refresh-token file: it rotates on every run); extra
                                      ``token_command``; password = an access token. Extra ``auth_server`` /
                                      ``token_endpoint`` override the OAuth server; host (full URL) or extra
                                      ``url`` = the MCP URL. Credentials named here replace the worker's
                                      OCTOGEN_MCP_* ones; without them the worker's environment applies.
Parse-time environment only: OCTOGEN_SYNC_SCHEDULE, OCTOGEN_AUTOSUBSCRIBE_SCHEDULE,
OCTOGEN_MAX_PARALLEL_CATALOGS (default 4; use 1 with DuckDB, a single-writer file).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, cast

from airflow.sdk import DAG, Connection, Variable, get_current_context, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException

if TYPE_CHECKING:
    from octogen_source.source import CatalogReport

log = logging.getLogger(__name__)

SYNC_DAG_ID = "octogen_sync"
AUTOSUBSCRIBE_DAG_ID = "octogen_bigquery_autosubscribe"
API_CONNECTION_ID = "octogen_api"
MCP_CONNECTION_ID = "octogen_mcp"
DEFAULT_DATASET = "octogen"
DEFAULT_DESTINATION = "bigquery"

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
SYNC_RETRIES = 3
SYNC_RETRY_DELAY = timedelta(minutes=2)
SYNC_MAX_RETRY_DELAY = timedelta(minutes=30)
SYNC_TIMEOUT = timedelta(hours=2)
AUTOSUBSCRIBE_TIMEOUT = timedelta(minutes=10)


def dlt_environ() -> dict[str, str]:
    """dlt settings of a sync task. dlt's Airflow secrets provider looks every config key up as an Airflow
    Variable (787 lookups, one API round trip each, for one catalog's sync), so it is off unless the worker's
    environment turns it on; the DAG reads its own connection and Variables, and dlt still reads the
    environment, .dlt/secrets.toml and Google's ADC."""
    return {"PROVIDERS__ENABLE_AIRFLOW_SECRETS": os.environ.get("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")}


def setting(name: str, default: str = "") -> str:
    """Airflow Variable ``name``, else env ``NAME``, else ``default`` (call inside a task only)."""
    value = Variable.get(name, default=None)
    if value is None:
        value = os.environ.get(name.upper())
    return default if value is None or not str(value).strip() else str(value).strip()


def parse_catalogs(raw: str) -> list[str]:
    """``"a, b"`` or ``'["a", "b"]'`` -> ``["a", "b"]`` (order kept, duplicates dropped)."""
    text = raw.strip()
    items: Sequence[Any] = json.loads(text) if text.startswith("[") else text.split(",")
    keys = [str(item).strip() for item in items]
    return list(dict.fromkeys(key for key in keys if key))


def pipeline_name_for(catalog: str) -> str:
    """One dlt pipeline per catalog, so catalogs never share (or overwrite) each other's state."""
    return "octogen_" + re.sub(r"[^a-z0-9_]+", "_", catalog.lower()).strip("_")


@contextlib.contextmanager
def scoped_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Sets ``values`` in os.environ for the block only (tasks may share a process, e.g. under dag.test())."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


def _connection(conn_id: str) -> Any | None:
    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def api_credentials() -> dict[str, str]:
    """``api_key`` / ``base_url`` of the sync from the ``octogen_api`` connection. Empty when it does not
    exist: then dlt's config applies (SOURCES__OCTOGEN__API_KEY / _BASE_URL, OCTO_API_KEY, secrets.toml)."""
    conn = _connection(API_CONNECTION_ID)
    if conn is None:
        return {}
    credentials: dict[str, str] = {}
    if conn.password:
        credentials["api_key"] = conn.password
    base_url = conn.extra_dejson.get("base_url") or conn.host
    if base_url:
        credentials["base_url"] = str(base_url)
    return credentials


MCP_CREDENTIAL_EXTRAS = {
    "refresh_token_file": "OCTOGEN_MCP_REFRESH_TOKEN_FILE",
    "client_id_file": "OCTOGEN_MCP_CLIENT_ID_FILE",
    "client_id": "OCTOGEN_MCP_CLIENT_ID",
    "token_command": "OCTOGEN_MCP_TOKEN_COMMAND",
}
MCP_SERVER_EXTRAS = {
    "auth_server": "OCTOGEN_MCP_AUTH_SERVER",
    "token_endpoint": "OCTOGEN_MCP_TOKEN_ENDPOINT",
    "url": "OCTOGEN_MCP_URL",
}


def control_plane_environ() -> dict[str, str]:
    """OCTOGEN_MCP_* for the autosubscribe pass from the optional ``octogen_mcp`` connection.

    Credentials named by the connection replace the worker's: the other credential variables are blanked
    for the pass, so a stale OCTOGEN_MCP_ACCESS_TOKEN in the worker's environment cannot win over the
    connection's refresh-token file."""
    conn = _connection(MCP_CONNECTION_ID)
    if conn is None:
        return {}
    extra = conn.extra_dejson
    credentials: dict[str, str] = {}
    if conn.password:
        credentials["OCTOGEN_MCP_ACCESS_TOKEN"] = conn.password
    for key, variable in MCP_CREDENTIAL_EXTRAS.items():
        if value := str(extra.get(key) or "").strip():
            credentials[variable] = value
    environ: dict[str, str] = {}
    if credentials:
        environ = dict.fromkeys(["OCTOGEN_MCP_ACCESS_TOKEN", *MCP_CREDENTIAL_EXTRAS.values()], "")
        environ.update(credentials)
    for key, variable in MCP_SERVER_EXTRAS.items():
        if value := str(extra.get(key) or "").strip():
            environ[variable] = value
    if conn.host and "OCTOGEN_MCP_URL" not in environ:
        environ["OCTOGEN_MCP_URL"] = conn.host
    return environ


def retry_can_help(error: BaseException) -> bool:
    """Whether Airflow should retry: the error's own ``retryable`` (see octogen_source.errors), read by the
    library's one rule for a failed sync (the API unreachable or failing after the client's own retries,
    or anything outside Octogen's errors: yes; a rejected key, a refused request, a bad setting: no)."""
    from octogen_source.sync import failure_is_retryable

    return failure_is_retryable(error)


def granted_catalogs(credentials: Mapping[str, str]) -> list[str]:
    """Every catalog the key may read (used when ``octogen_catalogs`` is empty); seed-era APIs only: the
    current one retired the listing, which fails the task with a line naming the Variable to set."""
    from octogen_source.client import DEFAULT_BASE_URL, OctogenClient
    from octogen_source.errors import OctogenEndpointRetiredError
    from octogen_source.source import CatalogsRequiredError

    api_key = credentials.get("api_key") or os.environ.get("SOURCES__OCTOGEN__API_KEY") or None
    base_url = credentials.get("base_url") or os.environ.get("SOURCES__OCTOGEN__BASE_URL") or DEFAULT_BASE_URL

    async def listing() -> list[str]:
        async with OctogenClient(api_key=api_key, base_url=base_url) as client:
            try:
                summaries = await client.list_catalogs()
            except OctogenEndpointRetiredError:
                raise CatalogsRequiredError(
                    "the Octogen API no longer lists catalogs (GET /catalogs retired on 2026-07-09): set the"
                    " octogen_catalogs Variable to the catalog keys; find them with"
                    " `octogen-sync --discover <store host>`"
                ) from None
            return [summary.catalog for summary in summaries if summary.catalog]

    return asyncio.run(listing())


def sync_catalog_now(catalog: str) -> dict[str, Any]:
    """Syncs one catalog with its own pipeline and a throwaway pipeline directory (the state comes back from
    the destination); logs the run summary and returns its row for XCom."""
    from octogen_source.sync import SyncError, SyncOptions, format_summary, run_sync

    credentials = api_credentials()
    with scoped_environ(dlt_environ()), tempfile.TemporaryDirectory(prefix="octogen_dlt_") as pipelines_dir:
        options = SyncOptions(
            catalogs=(catalog,),
            destination=setting("octogen_destination", DEFAULT_DESTINATION),
            duckdb_path=setting("octogen_duckdb_path") or None,
            dataset=setting("octogen_dataset", DEFAULT_DATASET),
            pipeline_name=pipeline_name_for(catalog),
            pipelines_dir=pipelines_dir,
            api_key=credentials.get("api_key"),
            base_url=credentials.get("base_url"),
        )
        try:
            report = run_sync(options)
        except SyncError as error:
            raise_for_airflow(catalog, error)
    log.info("octogen sync of %s:\n%s", catalog, format_summary(report))
    return summary_row(next(entry for entry in report.catalogs if entry.catalog == catalog))


def raise_for_airflow(what: str, error: Exception) -> NoReturn:
    """Re-raises ``error`` (already one readable line, no key) so that Airflow retries only what can heal."""
    if retry_can_help(error):
        raise AirflowException(f"{what}: {error}") from None
    raise AirflowFailException(f"{what}: {error}") from None


def summary_row(catalog_report: CatalogReport) -> dict[str, Any]:
    """One catalog's run-summary figures as plain JSON (the task's XCom)."""
    return {
        "catalog": catalog_report.catalog,
        "new": catalog_report.new,
        "changed": catalog_report.changed,
        "removed": catalog_report.removed,
        "lookups": catalog_report.lookups,
        "requests": catalog_report.requests,
        "retries": catalog_report.retries,
        "seconds": round(catalog_report.seconds, 1),
    }


def autosubscribe_argv(project: str, principal: str, catalogs: Sequence[str]) -> list[str]:
    argv = ["--project", project, "--principal", principal, "--apply"]
    for catalog in catalogs:
        argv += ["--catalog", catalog]
    return argv


def run_autosubscribe_pass() -> None:
    """One ``octogen-bq-autosubscribe --apply`` pass; its report goes to the task log."""
    from octogen_source.bigquery.autosubscribe_cli import EXIT_BAD_ARGUMENTS, EXIT_OK, main

    project = setting("octogen_bq_project")
    principal = setting("octogen_bq_principal")
    if not project or not principal:
        raise AirflowFailException(
            "set the Airflow Variables octogen_bq_project and octogen_bq_principal (or OCTOGEN_BQ_PROJECT / "
            "OCTOGEN_BQ_PRINCIPAL) before enabling this DAG"
        )
    catalogs = parse_catalogs(setting("octogen_autosubscribe_catalogs"))
    with scoped_environ(control_plane_environ()):
        exit_code = main(autosubscribe_argv(project, principal, catalogs))
    if exit_code == EXIT_BAD_ARGUMENTS:
        raise AirflowFailException(f"octogen-bq-autosubscribe: bad configuration (exit {exit_code})")
    if exit_code != EXIT_OK:
        raise AirflowException(f"octogen-bq-autosubscribe failed (exit {exit_code}); see its report above")


def _max_parallel_catalogs() -> int:
    return max(1, int(os.environ.get("OCTOGEN_MAX_PARALLEL_CATALOGS", "4")))


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
) as sync_dag:

    @task(execution_timeout=timedelta(minutes=5))
    def resolve_catalogs() -> list[str]:
        """The catalogs of this run: ``octogen_catalogs``, or every catalog granted to the key."""
        configured = parse_catalogs(setting("octogen_catalogs"))
        if configured:
            return configured
        from octogen_source.errors import OctogenError

        try:
            return granted_catalogs(api_credentials())
        except OctogenError as error:
            raise_for_airflow("listing the granted catalogs", error)

    @task(map_index_template="{{ octogen_catalog }}", max_active_tis_per_dagrun=_max_parallel_catalogs())
    def sync_catalog(catalog: str) -> dict[str, Any]:
        # names this task instance after its catalog in the UI (map_index_template)
        cast("dict[str, Any]", get_current_context())["octogen_catalog"] = catalog
        return sync_catalog_now(catalog)

    sync_catalog.expand(catalog=resolve_catalogs())


with DAG(
    dag_id=AUTOSUBSCRIBE_DAG_ID,
    description="Subscribe to the Octogen BigQuery listings awaiting subscription (octogen-bq-autosubscribe)",
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
) as autosubscribe_dag:

    @task
    def autosubscribe() -> None:
        run_autosubscribe_pass()

    autosubscribe()

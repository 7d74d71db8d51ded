"""What the DAGs' tasks do, without Airflow: each function takes the settings the DAG read from its Variables
and connections (:mod:`octogen_source.airflow.dags`) and does the work through the library.

Nothing here imports Airflow, and the library's heavier parts (dlt, the sync, the BigQuery helpers) are
imported when a task runs, not when a DAG file is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from octogen_source.errors import OctogenConfigurationError

if TYPE_CHECKING:
    from octogen_source.source import CatalogReport
    from octogen_source.sync import SyncOptions

log = logging.getLogger("octogen_source.airflow")

DEFAULT_DESTINATION = "bigquery"
DEFAULT_DATASET = "octogen"
DEFAULT_MAX_PARALLEL_CATALOGS = 4
MAX_PARALLEL_CATALOGS_ENV = "OCTOGEN_MAX_PARALLEL_CATALOGS"
CATALOGS_VARIABLE = "octogen_catalogs"
CATALOGS_REQUIRED = (
    "the Octogen API no longer lists catalogs (GET /catalogs retired on 2026-07-09): set the"
    f" {CATALOGS_VARIABLE} Variable to the catalog keys; find them with"
    " `octogen-sync --discover <store host>`"
)


class ConnectionFields(Protocol):
    """The fields of an Airflow connection the DAGs read (``airflow.sdk.Connection`` has them)."""

    @property
    def password(self) -> str | None: ...

    @property
    def host(self) -> str | None: ...

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ApiCredentials:
    """The key and base URL from the ``octogen_api`` connection; ``None``: dlt's config applies
    (SOURCES__OCTOGEN__API_KEY / _BASE_URL, OCTO_API_KEY, .dlt/secrets.toml)."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None


@dataclass(frozen=True)
class WarehouseSettings:
    """Where every catalog is loaded: Variables ``octogen_destination``, ``_dataset``, ``_duckdb_path``."""

    destination: str = DEFAULT_DESTINATION
    dataset: str = DEFAULT_DATASET
    duckdb_path: str | None = None


def api_credentials(connection: ConnectionFields | None) -> ApiCredentials:
    """password = the API key; extra ``base_url`` or host (a full URL) = the base URL."""
    if connection is None:
        return ApiCredentials()
    base_url = connection.extra_dejson.get("base_url") or connection.host
    return ApiCredentials(api_key=connection.password or None, base_url=str(base_url) if base_url else None)


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


def control_plane_environ(connection: ConnectionFields | None) -> dict[str, str]:
    """OCTOGEN_MCP_* for the autosubscribe pass from the optional ``octogen_mcp`` connection.

    Credentials named by the connection replace the worker's: the other credential variables are blanked
    for the pass, so a stale OCTOGEN_MCP_ACCESS_TOKEN in the worker's environment cannot win over the
    connection's refresh-token file."""
    if connection is None:
        return {}
    extra = connection.extra_dejson
    credentials: dict[str, str] = {}
    if connection.password:
        credentials["OCTOGEN_MCP_ACCESS_TOKEN"] = connection.password
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
    if connection.host and "OCTOGEN_MCP_URL" not in environ:
        environ["OCTOGEN_MCP_URL"] = connection.host
    return environ


def parse_catalogs(raw: str, setting: str = CATALOGS_VARIABLE) -> list[str]:
    """``"a, b"`` or ``'["a", "b"]'`` -> ``["a", "b"]`` (order kept, duplicates dropped); the source's own
    reader of catalog lists, whose error names ``setting``."""
    from octogen_source.source.settings import catalog_keys

    return list(dict.fromkeys(catalog_keys(raw, setting=setting) or ()))


def pipeline_name_for(catalog: str) -> str:
    """One dlt pipeline per catalog, so catalogs never share (or overwrite) each other's state."""
    return "octogen_" + re.sub(r"[^a-z0-9_]+", "_", catalog.lower()).strip("_")


def max_parallel_catalogs(environ: Mapping[str, str] = os.environ) -> int:
    """``OCTOGEN_MAX_PARALLEL_CATALOGS`` (read when the DAG file is parsed), at least 1."""
    raw = environ.get(MAX_PARALLEL_CATALOGS_ENV, "").strip() or str(DEFAULT_MAX_PARALLEL_CATALOGS)
    try:
        return max(1, int(raw))
    except ValueError:
        raise OctogenConfigurationError(
            f"{MAX_PARALLEL_CATALOGS_ENV} must be a whole number of catalogs, not {raw[:40]!r}"
        ) from None


def dlt_environ() -> dict[str, str]:
    """dlt settings of a task. dlt's Airflow secrets provider looks every config key up as an Airflow
    Variable (787 lookups, one API round trip each, for one catalog's sync), so it is off unless the worker's
    environment turns it on; the DAG reads its own connection and Variables, and dlt still reads the
    environment, .dlt/secrets.toml and Google's ADC."""
    return {"PROVIDERS__ENABLE_AIRFLOW_SECRETS": os.environ.get("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")}


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


def granted_catalogs(credentials: ApiCredentials) -> list[str]:
    """Every catalog the key may read (when ``octogen_catalogs`` is empty); seed-era APIs only: the current
    one retired the listing, which raises :class:`CatalogsRequiredError` naming the Variable to set. The key
    and base URL are the sync's: the connection's, else dlt's config (:mod:`octogen_source.discover`)."""
    from octogen_source.client import OctogenClient
    from octogen_source.discover import configured_api_key, configured_base_url
    from octogen_source.errors import OctogenEndpointRetiredError
    from octogen_source.source import CatalogsRequiredError

    with scoped_environ(dlt_environ()):
        api_key = configured_api_key(credentials.api_key)
        base_url = credentials.base_url or configured_base_url()

    async def listing() -> list[str]:
        async with OctogenClient(api_key=api_key, base_url=base_url) as client:
            try:
                summaries = await client.list_catalogs()
            except OctogenEndpointRetiredError:
                raise CatalogsRequiredError(CATALOGS_REQUIRED) from None
            return [summary.catalog for summary in summaries if summary.catalog]

    return asyncio.run(listing())


def sync_options(
    catalog: str, warehouse: WarehouseSettings, credentials: ApiCredentials, pipelines_dir: str
) -> SyncOptions:
    """The sync of one catalog: its own pipeline (``octogen_<catalog>``), the shared dataset."""
    from octogen_source.sync import SyncOptions

    return SyncOptions(
        catalogs=(catalog,),
        destination=warehouse.destination,
        duckdb_path=warehouse.duckdb_path,
        dataset=warehouse.dataset,
        pipeline_name=pipeline_name_for(catalog),
        pipelines_dir=pipelines_dir,
        api_key=credentials.api_key,
        base_url=credentials.base_url,
    )


def sync_one_catalog(
    catalog: str, warehouse: WarehouseSettings, credentials: ApiCredentials
) -> dict[str, Any]:
    """Syncs one catalog with a throwaway pipeline directory (the state comes back from the destination);
    logs the run summary and returns its row (the task's XCom). Raises ``SyncError`` (one line, never the
    key; ``retryable`` says whether running it again may succeed)."""
    from octogen_source.sync import format_summary, run_sync

    with scoped_environ(dlt_environ()), tempfile.TemporaryDirectory(prefix="octogen_dlt_") as pipelines_dir:
        report = run_sync(sync_options(catalog, warehouse, credentials, pipelines_dir))
    log.info("octogen sync of %s:\n%s", catalog, format_summary(report))
    return summary_row(next(entry for entry in report.catalogs if entry.catalog == catalog))


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


def autosubscribe_pass(
    project: str, principal: str, catalogs: Sequence[str], control_plane: Mapping[str, str]
) -> int:
    """One ``octogen-bq-autosubscribe --apply`` pass with the connection's OCTOGEN_MCP_* (``control_plane``);
    its report goes to the log, its exit status is returned (``autosubscribe_cli.EXIT_*``)."""
    from octogen_source.bigquery.autosubscribe_cli import main

    with scoped_environ(control_plane):
        return main(autosubscribe_argv(project, principal, catalogs))

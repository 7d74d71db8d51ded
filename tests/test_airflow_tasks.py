"""What the Airflow DAGs' tasks do, without Airflow (octogen_source.airflow.tasks): reading the connections'
fields, catalog lists, the catalog listing through the library's readers of the key and base URL, and the
sync of one catalog against the sandbox over HTTP into a DuckDB file. The DAGs themselves, in real Airflow,
are tests/test_airflow_dag.py (run in .airflow-venv by tests/test_airflow_environment.py).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from octogen_source.airflow.tasks import (
    CATALOGS_REQUIRED,
    ApiCredentials,
    WarehouseSettings,
    api_credentials,
    autosubscribe_argv,
    control_plane_environ,
    granted_catalogs,
    max_parallel_catalogs,
    parse_catalogs,
    pipeline_name_for,
    scoped_environ,
    sync_one_catalog,
)
from octogen_source.errors import MissingAPIKeyError, OctogenConfigurationError
from octogen_source.sandbox import Sandbox
from octogen_source.source import CatalogsRequiredError, InvalidSettingError
from octogen_source.sync import SyncError

REPO = Path(__file__).resolve().parents[1]
KEY_VARIABLES = ("OCTO_API_KEY", "SOURCES__OCTOGEN__API_KEY", "SOURCES__OCTOGEN__BASE_URL")


@dataclass
class Connection:
    """The fields of an Airflow connection the tasks read (``airflow.sdk.Connection`` has the same)."""

    password: str | None = None
    host: str | None = None
    extra_dejson: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_catalog_lists_pipeline_names_and_autosubscribe_arguments() -> None:
    assert parse_catalogs(" a, b ,,a ") == ["a", "b"]
    assert parse_catalogs('["x", "y", "x"]') == ["x", "y"]
    assert parse_catalogs("") == []
    assert pipeline_name_for("Northwind-Apparel") == "octogen_northwind_apparel"
    assert autosubscribe_argv("p", "serviceAccount:r@p.iam.gserviceaccount.com", ["c1"]) == [
        "--project",
        "p",
        "--principal",
        "serviceAccount:r@p.iam.gserviceaccount.com",
        "--apply",
        "--catalog",
        "c1",
    ]


def test_a_malformed_catalog_list_names_the_variable_and_is_not_retried() -> None:
    with pytest.raises(InvalidSettingError) as raised:
        parse_catalogs('["northwind_apparel"', "octogen_catalogs")
    assert str(raised.value) == (
        "octogen_catalogs: '[\"northwind_apparel\"' is neither a JSON list nor comma-separated keys"
    )
    assert not raised.value.retryable
    with pytest.raises(InvalidSettingError, match=r"^octogen_autosubscribe_catalogs must be a list"):
        parse_catalogs("[1, 2]", "octogen_autosubscribe_catalogs")


def test_the_api_connection_gives_the_key_and_base_url() -> None:
    assert api_credentials(None) == ApiCredentials()
    from_host = api_credentials(Connection(password="octo_secret", host="http://127.0.0.1:1/v1"))
    assert from_host == ApiCredentials("octo_secret", "http://127.0.0.1:1/v1")
    assert "octo_secret" not in repr(from_host)
    extra = Connection(password="", host="ignored", extra_dejson={"base_url": "http://127.0.0.1:2/v1"})
    assert api_credentials(extra) == ApiCredentials(None, "http://127.0.0.1:2/v1")


def test_the_mcp_connection_replaces_the_workers_credentials() -> None:
    assert control_plane_environ(None) == {}
    files = Connection(
        host="https://mcp.example/mcp",
        extra_dejson={"refresh_token_file": "/var/lib/o/mcp.refresh", "client_id_file": "/var/lib/o/id"},
    )
    assert control_plane_environ(files) == {
        "OCTOGEN_MCP_ACCESS_TOKEN": "",  # blanked: a stale token of the worker cannot win
        "OCTOGEN_MCP_REFRESH_TOKEN_FILE": "/var/lib/o/mcp.refresh",
        "OCTOGEN_MCP_CLIENT_ID_FILE": "/var/lib/o/id",
        "OCTOGEN_MCP_CLIENT_ID": "",
        "OCTOGEN_MCP_TOKEN_COMMAND": "",
        "OCTOGEN_MCP_URL": "https://mcp.example/mcp",
    }
    token = Connection(password="at_1", host="https://ignored", extra_dejson={"url": "https://mcp.example/m"})
    assert control_plane_environ(token) == {
        "OCTOGEN_MCP_ACCESS_TOKEN": "at_1",
        "OCTOGEN_MCP_REFRESH_TOKEN_FILE": "",
        "OCTOGEN_MCP_CLIENT_ID_FILE": "",
        "OCTOGEN_MCP_CLIENT_ID": "",
        "OCTOGEN_MCP_TOKEN_COMMAND": "",
        "OCTOGEN_MCP_URL": "https://mcp.example/m",
    }
    # only the server named: the worker's credentials stay as they are
    assert control_plane_environ(Connection(extra_dejson={"auth_server": "https://auth.example"})) == {
        "OCTOGEN_MCP_AUTH_SERVER": "https://auth.example"
    }


def test_max_parallel_catalogs_is_a_whole_number_of_at_least_one() -> None:
    assert max_parallel_catalogs({}) == 4
    assert [max_parallel_catalogs({"OCTOGEN_MAX_PARALLEL_CATALOGS": raw}) for raw in ("1", " 8 ", "0")] == [
        1,
        8,
        1,
    ]
    with pytest.raises(OctogenConfigurationError) as raised:
        max_parallel_catalogs({"OCTOGEN_MAX_PARALLEL_CATALOGS": "four"})
    assert str(raised.value) == "OCTOGEN_MAX_PARALLEL_CATALOGS must be a whole number of catalogs, not 'four'"


def test_scoped_environ_restores_what_was_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTOGEN_TEST_KEPT", "before")
    monkeypatch.delenv("OCTOGEN_TEST_NEW", raising=False)
    with scoped_environ({"OCTOGEN_TEST_KEPT": "during", "OCTOGEN_TEST_NEW": "during"}):
        assert (os.environ["OCTOGEN_TEST_KEPT"], os.environ["OCTOGEN_TEST_NEW"]) == ("during", "during")
    assert os.environ["OCTOGEN_TEST_KEPT"] == "before" and "OCTOGEN_TEST_NEW" not in os.environ


def test_the_granted_catalogs_come_from_the_connection_or_the_syncs_own_config(
    seed_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    granted = seed_sandbox.granted_catalogs()
    assert granted_catalogs(ApiCredentials(seed_sandbox.api_key, seed_sandbox.base_url)) == granted
    # without the connection: the key and base URL where the sync reads them (here OCTO_API_KEY and
    # SOURCES__OCTOGEN__BASE_URL), through octogen_source.discover's readers
    monkeypatch.setenv("OCTO_API_KEY", seed_sandbox.api_key)
    monkeypatch.setenv("SOURCES__OCTOGEN__BASE_URL", seed_sandbox.base_url)
    assert granted_catalogs(ApiCredentials()) == granted


def test_without_a_key_or_a_catalog_listing_the_line_says_what_to_set(sandbox: Sandbox) -> None:
    with pytest.raises(MissingAPIKeyError) as missing:
        granted_catalogs(ApiCredentials(base_url=sandbox.base_url))
    assert not missing.value.retryable
    assert str(missing.value).startswith("no Octogen API key: set OCTO_API_KEY")

    with pytest.raises(CatalogsRequiredError) as retired:  # today's API lists no catalogs
        granted_catalogs(ApiCredentials(sandbox.api_key, sandbox.base_url))
    assert str(retired.value) == CATALOGS_REQUIRED and not retired.value.retryable
    assert "set the octogen_catalogs Variable to the catalog keys" in CATALOGS_REQUIRED
    assert sandbox.request_counts["search"] == 0


def loaded_uuids(database: Path, catalog: str) -> set[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(
            "SELECT uuid FROM octogen.products WHERE catalog = ? AND removed_at IS NULL", [catalog]
        ).fetchall()
    return {uuid for (uuid,) in rows}


FIGURES = ("catalog", "new", "changed", "removed", "lookups")


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in FIGURES)


def pipeline_names(database: Path) -> set[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute("SELECT DISTINCT pipeline_name FROM octogen._dlt_pipeline_state").fetchall()
    return {name for (name,) in rows}


def test_one_catalog_syncs_in_its_own_pipeline_and_its_state_comes_back_from_the_destination(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "warehouse.duckdb"
    warehouse = WarehouseSettings(destination="duckdb", dataset="octogen", duckdb_path=str(database))
    credentials = ApiCredentials(sandbox.api_key, sandbox.base_url)
    worker_tmp = tmp_path / "worker_tmp"  # where the throwaway pipeline directories are made
    worker_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(worker_tmp))
    catalog = sandbox.granted_catalogs()[0]
    size = len(sandbox.truth_search_items(catalog))

    first = sync_one_catalog(catalog, warehouse, credentials)

    assert list(first) == [*FIGURES, "requests", "retries", "seconds"]
    assert figures(first) == (catalog, size, 0, 0, size)
    truth = {item["uuid"] for item in sandbox.truth_search_items(catalog)}
    assert loaded_uuids(database, catalog) == truth
    assert "octogen_" + catalog in pipeline_names(database)
    assert list(worker_tmp.iterdir()) == []

    repriced = sandbox.update_prices(catalog, 3)
    second = sync_one_catalog(catalog, warehouse, credentials)

    # a new pipeline directory knew nothing: what was loaded came back from the DuckDB file
    assert figures(second) == (catalog, 0, len(repriced), 0, len(repriced))
    assert loaded_uuids(database, catalog) == truth and list(worker_tmp.iterdir()) == []


def test_a_rejected_key_is_one_line_without_the_key_and_not_retryable(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    warehouse = WarehouseSettings(destination="duckdb", duckdb_path=str(tmp_path / "warehouse.duckdb"))
    catalog = sandbox.granted_catalogs()[0]
    sandbox.revoke_key(sandbox.api_key)
    with pytest.raises(SyncError) as raised:
        sync_one_catalog(catalog, warehouse, ApiCredentials(sandbox.api_key, sandbox.base_url))
    assert not raised.value.retryable and str(raised.value).startswith("the Octogen API rejected the API key")
    assert sandbox.api_key not in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.skipif(importlib.util.find_spec("airflow") is not None, reason="Airflow is installed here")
def test_without_airflow_the_tasks_import_light_and_the_dags_name_what_to_install() -> None:
    probe = (
        "import sys, octogen_source.airflow.tasks\n"
        "print(sorted(name for name in ('dlt', 'airflow', 'duckdb') if name in sys.modules))\n"
        "import octogen_source.airflow.dags\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    # parsing a DAG file imports no dlt: the sync's modules load when a task runs
    assert done.stdout == "[]\n"
    assert done.returncode == 1 and done.stderr.splitlines()[-1] == (
        "ImportError: octogen_source.airflow.dags needs Apache Airflow 3.2 or newer next to octogen-dlt:"
        " pip install 'apache-airflow>=3.2'"
    )

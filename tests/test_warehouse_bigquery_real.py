"""A real sync into real Google BigQuery: runs only where BigQuery credentials are configured.

Credentials the dlt way, as production: ``GOOGLE_APPLICATION_CREDENTIALS`` (a service-account key file, or
any Application Default Credentials with ``OCTOGEN_BIGQUERY_TESTS=1``), or
``DESTINATION__BIGQUERY__CREDENTIALS__*`` (``PROJECT_ID``, ``PRIVATE_KEY``, ``CLIENT_EMAIL``);
``DESTINATION__BIGQUERY__LOCATION`` picks the location (dlt's default: US). The test creates its own datasets
``octogen_test_<random>`` (+ ``_staging``) and deletes them afterwards. It checks what the emulator cannot:
the tables really are partitioned by day of ``updated_at`` and clustered by ``catalog``, gzip JSONL loads,
schema evolution (ALTER TABLE) of a partitioned table, and a merge into it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dlt.destinations.impl.bigquery.configuration import BigQueryClientConfiguration

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncOptions, run_sync
from octogen_source.warehouse import destination_for
from tests.bigquery_emulator import snapshot_dataset
from tests.sync_support import FAST_RETRY, ExpectedTables, assert_tables_match, totals

CREDENTIAL_VARIABLES = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "DESTINATION__BIGQUERY__CREDENTIALS",
    "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID",
)


def skip_reason() -> str | None:
    if os.environ.get("BIGQUERY_EMULATOR_HOST"):
        return "BIGQUERY_EMULATOR_HOST is set: this test is for real BigQuery"
    if os.environ.get("OCTOGEN_BIGQUERY_TESTS") == "1" or any(
        os.environ.get(n) for n in CREDENTIAL_VARIABLES
    ):
        return None
    return (
        "no BigQuery credentials: set GOOGLE_APPLICATION_CREDENTIALS (service-account key file) or "
        "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID/PRIVATE_KEY/CLIENT_EMAIL, or "
        "OCTOGEN_BIGQUERY_TESTS=1 to use Application Default Credentials"
    )


pytestmark = [
    pytest.mark.bigquery,
    pytest.mark.timeout(900),
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ""),
    pytest.mark.filterwarnings("ignore:Cannot create BigQuery Storage client:UserWarning"),
]


def bigquery_client_from_dlt_config() -> Any:
    """A Google client with exactly the credentials, project and location the sync resolves."""
    from google.cloud import bigquery

    config = destination_for("bigquery").configuration(
        BigQueryClientConfiguration()._bind_dataset_name(dataset_name="octogen")
    )
    return bigquery.Client(
        project=config.project_id or config.credentials.project_id,
        credentials=config.credentials.to_native_credentials(),
        location=config.location,
    )


@pytest.fixture
def dataset() -> Iterator[str]:
    name = f"octogen_test_{uuid.uuid4().hex[:12]}"
    yield name
    client = bigquery_client_from_dlt_config()
    for created in (name, f"{name}_staging"):
        client.delete_dataset(created, delete_contents=True, not_found_ok=True)


def test_sync_into_real_bigquery(
    dataset: str, sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(catalogs=2, products=20, ungranted=0, seed=31)
    options = SyncOptions(
        destination="bigquery",
        dataset=dataset,
        pipeline_name=f"octogen_bigquery_{dataset}",
        pipelines_dir=str(tmp_path / "pipelines"),
        api_key=sandbox.api_key,
        base_url=sandbox.base_url,
        retry=FAST_RETRY,
    )
    client = bigquery_client_from_dlt_config()
    expected = ExpectedTables(sandbox)

    first = run_sync(options)
    assert totals(first) == {"new": 40, "changed": 0, "removed": 0, "lookups": 40}
    expected.observe()
    assert_tables_match(snapshot_dataset(client, dataset, tmp_path / "first.duckdb"), expected)

    for table_name in ("products", "price_history"):
        table = client.get_table(f"{client.project}.{dataset}.{table_name}")
        assert table.time_partitioning is not None, table_name
        assert (table.time_partitioning.type_, table.time_partitioning.field) == ("DAY", "updated_at")
        assert table.clustering_fields == ["catalog"]
    assert client.get_table(f"{client.project}.{dataset}.product_details").time_partitioning is None

    catalog, other = sandbox.granted_catalogs()
    sandbox.update_prices(catalog, 3)
    sandbox.remove_products(other, 2)
    sandbox.add_null_updated_at(other, 1)
    sandbox.set_wire_shape("v2")  # new columns: ALTER TABLE on the partitioned tables
    second = run_sync(options)
    assert second.total("removed") == 2
    expected.observe()
    assert_tables_match(snapshot_dataset(client, dataset, tmp_path / "second.duckdb"), expected)

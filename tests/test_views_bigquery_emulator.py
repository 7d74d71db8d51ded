"""products_current in BigQuery's dialect, run for real: the sandbox synced through dlt's BigQuery destination
into bqemulator (a BigQuery emulator from PyPI, in its own process on 127.0.0.1), the view created through
dlt's BigQuery client (INFORMATION_SCHEMA, CREATE OR REPLACE VIEW in BigQuery SQL) and read back whole.

The emulator, its fake token endpoint and the ADC environment are the warehouse tests' fixtures (see
tests/bigquery_emulator); like those tests it skips locally when the emulator is not installed and installs
it in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncOptions, run_sync
from octogen_source.views import create_analyst_views
from tests.test_views_sync import as_rows, expected_view

# the warehouse tests' module fixtures (an emulator process for this module, ADC pointing at it)
from tests.test_warehouse_bigquery_emulator import (  # noqa: F401
    bigquery_environment,
    emulator,
    token_endpoint,
)

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore:Cannot create BigQuery Storage client:UserWarning"),
    pytest.mark.usefixtures("bigquery_environment"),
]

DATASET = "octogen_views"
PIPELINE = "octogen_views_bigquery"


def sync_into_bigquery(sandbox: Sandbox, pipelines_dir: Path) -> None:
    run_sync(
        SyncOptions(
            destination="bigquery",
            dataset=DATASET,
            pipeline_name=PIPELINE,
            pipelines_dir=str(pipelines_dir),
            api_key=sandbox.api_key,
            base_url=sandbox.base_url,
            catalogs=tuple(sandbox.granted_catalogs()),
        )
    )


def test_products_current_runs_in_bigquery_sql(tmp_path: Path) -> None:
    with Sandbox(catalogs=2, products=20, ungranted=0, seed=11) as sandbox:
        sync_into_bigquery(sandbox, tmp_path)
        catalog = sandbox.granted_catalogs()[0]
        prices_before = {hit["uuid"]: hit["currentPrice"] for hit in sandbox.truth_search_items(catalog)}
        repriced = sandbox.update_prices(catalog, 3)
        removed = sandbox.remove_products(catalog, 2)
        sync_into_bigquery(sandbox, tmp_path)

        pipeline = dlt.pipeline(
            pipeline_name=PIPELINE, destination="bigquery", dataset_name=DATASET, pipelines_dir=str(tmp_path)
        )
        view = create_analyst_views(pipeline)
        assert view is not None and view.endswith(f"`{DATASET}`.`products_current`")
        with pipeline.sql_client() as client:
            table = [tuple(row) for row in client.execute_sql(f"SELECT * FROM {view}") or []]

        expected = expected_view(
            sandbox, {uuid: prices_before[uuid] for uuid in set(repriced) - set(removed)}
        )
    # BigQuery has no NULL arrays: a product without sizes or colors reads as []
    for row in expected.values():
        row.update({name: row[name] or [] for name in ("sizes", "colors")})
    loaded: dict[str, dict[str, Any]] = as_rows(table)
    assert loaded == expected
    assert not set(removed) & set(loaded)

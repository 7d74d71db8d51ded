"""products_current in BigQuery's dialect, run for real: the sandbox synced through dlt's BigQuery destination
into bqemulator (a BigQuery emulator from PyPI, in its own process on 127.0.0.1), the view created through
dlt's BigQuery client (INFORMATION_SCHEMA, CREATE OR REPLACE VIEW in BigQuery SQL) and read back whole.

The emulator, its fake token endpoint and the ADC environment are the emulator tests' fixtures (see
tests/bigquery_emulator/fixtures.py); like the warehouse tests it skips locally when the emulator is not
installed and installs it in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncOptions, run_sync
from octogen_source.views import create_analyst_views
from tests.view_support import as_rows, expected_view

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore:Cannot create BigQuery Storage client:UserWarning"),
    pytest.mark.usefixtures("bigquery_environment"),
]

DATASET = "octogen_views"
PIPELINE = "octogen_views_bigquery"


def sync_into_bigquery(
    sandbox: Sandbox, pipelines_dir: Path, *, dataset: str = DATASET, details: bool = True
) -> None:
    run_sync(
        SyncOptions(
            destination="bigquery",
            dataset=dataset,
            pipeline_name=PIPELINE,
            pipelines_dir=str(pipelines_dir),
            api_key=sandbox.api_key,
            base_url=sandbox.base_url,
            catalogs=tuple(sandbox.granted_catalogs()),
            details=details,
        )
    )


def read_view(pipelines_dir: Path, dataset: str) -> dict[str, dict[str, Any]]:
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE, destination="bigquery", dataset_name=dataset, pipelines_dir=str(pipelines_dir)
    )
    view = create_analyst_views(pipeline)
    assert view is not None and view.endswith(f"`{dataset}`.`products_current`")
    with pipeline.sql_client() as client:
        return as_rows([tuple(row) for row in client.execute_sql(f"SELECT * FROM {view}") or []])


def test_products_current_runs_in_bigquery_sql(tmp_path: Path) -> None:
    with Sandbox(catalogs=2, products=20, ungranted=0, seed=11) as sandbox:
        sync_into_bigquery(sandbox, tmp_path)
        catalog = sandbox.granted_catalogs()[0]
        prices_before = {hit["uuid"]: hit["currentPrice"] for hit in sandbox.truth_search_items(catalog)}
        repriced = sandbox.update_prices(catalog, 3)
        removed = sandbox.remove_products(catalog, 2)
        sync_into_bigquery(sandbox, tmp_path)

        loaded = read_view(tmp_path, DATASET)
        expected = expected_view(
            sandbox, {uuid: prices_before[uuid] for uuid in set(repriced) - set(removed)}
        )
    # BigQuery has no NULL arrays: a product without sizes or colors reads as []
    for row in expected.values():
        row.update({name: row[name] or [] for name in ("sizes", "colors")})
    assert loaded == expected
    assert not set(removed) & set(loaded)


def test_products_current_reads_the_hits_json_lists_in_bigquery_sql(tmp_path: Path) -> None:
    """Details off: sizes and colors can only come from the hits' JSON text (BigQuery's JSON functions)."""
    dataset = f"{DATASET}_no_details"
    with Sandbox(catalogs=1, products=15, ungranted=0, seed=12) as sandbox:
        sync_into_bigquery(sandbox, tmp_path, dataset=dataset, details=False)
        loaded = read_view(tmp_path, dataset)
        expected = expected_view(sandbox, {}, looked_up=False)
    assert loaded == expected
    assert all(row["sizes"] and row["colors"] for row in loaded.values())

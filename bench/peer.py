"""The peer a user would otherwise pick: dlt's generic `rest_api` source configured for the same API."""

from __future__ import annotations

from typing import Any

import dlt
from dlt.sources.rest_api import rest_api_source


def peer_config(base_url: str, api_key: str, catalogs: list[str], *, page_size: int) -> dict[str, Any]:
    """One resource per catalog, all into one `products` table merged on uuid, like ours (details off)."""
    return {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            "auth": {"type": "bearer", "token": api_key},
            "paginator": {"type": "cursor", "cursor_path": "nextCursor", "cursor_body_path": "cursor"},
        },
        "resource_defaults": {
            "primary_key": "uuid",
            "write_disposition": "merge",
            "endpoint": {"data_selector": "items"},
        },
        "resources": [
            {
                "name": f"products_{index}",
                "table_name": "products",
                "endpoint": {
                    "path": "products/search",
                    "method": "POST",
                    "json": {"catalogs": [catalog], "limit": page_size},
                },
            }
            for index, catalog in enumerate(catalogs)
        ],
    }


def run_peer(
    base_url: str,
    api_key: str,
    catalogs: list[str],
    *,
    page_size: int,
    duckdb_path: str,
    pipelines_dir: str,
    file_format: str | None = None,
) -> int:
    """Loads the products of every catalog into DuckDB, resources extracted in parallel; returns the number
    of products rows it normalized."""
    source = rest_api_source(
        peer_config(base_url, api_key, catalogs, page_size=page_size),  # type: ignore[arg-type]
        name="octogen_peer",
        parallelized=True,
    )
    pipeline = dlt.pipeline(
        pipeline_name="octogen_peer_bench",
        destination=dlt.destinations.duckdb(duckdb_path),
        dataset_name="octogen_peer",
        pipelines_dir=pipelines_dir,
    )
    pipeline.run(source, loader_file_format=file_format)  # type: ignore[arg-type]
    trace = pipeline.last_trace
    normalized = trace.last_normalize_info if trace is not None else None
    return normalized.row_counts.get("products", 0) if normalized is not None else 0

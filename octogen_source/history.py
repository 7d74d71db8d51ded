"""Sync history: every sync appends one row per catalog to ``sync_runs`` in the destination's dataset.

The rows are what the run summary prints (new, changed, removed, lookups, requests, retries, seconds) plus
when, which pipeline and load, and the outcome: ``ok``, ``warnings`` (the summary's ``warning:`` lines, in
``warnings``) or ``failed`` (the sync's one-line error, in ``error``). "What did last night's run do" is then
a query, in DuckDB and BigQuery alike.

The rows are loaded by dlt through a pipeline of their own (``<pipeline name>_history``) into the same
dataset: the sync's pipeline may hold a failed load that dlt would retry instead of loading anything new,
and a history load that fails must never leave a package the next sync would have to finish first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import dlt
from dlt.common.schema.typing import TTableSchemaColumns

from octogen_source.source.leftovers import remove_earlier_loaded_packages
from octogen_source.table_names import SYNC_RUNS

log = logging.getLogger("octogen_source.sync")

HISTORY_PIPELINE_SUFFIX = "_history"

SYNC_RUN_COLUMNS: TTableSchemaColumns = {
    "run_id": {"data_type": "text", "nullable": False},
    "pipeline_name": {"data_type": "text", "nullable": False},
    "catalog": {"data_type": "text"},
    "load_id": {"data_type": "text"},
    "started_at": {"data_type": "timestamp", "nullable": False},
    "finished_at": {"data_type": "timestamp", "nullable": False},
    "new": {"data_type": "bigint"},
    "changed": {"data_type": "bigint"},
    "removed": {"data_type": "bigint"},
    "lookups": {"data_type": "bigint"},
    "requests": {"data_type": "bigint"},
    "retries": {"data_type": "bigint"},
    "seconds": {"data_type": "double"},
    "outcome": {"data_type": "text", "nullable": False},
    "error": {"data_type": "text"},
    "warnings": {"data_type": "text"},
    "destination": {"data_type": "text"},
    "dataset": {"data_type": "text"},
}
"""Declared whole, so every column exists from the first row on (dlt creates no all-null column)."""


def history_pipeline_name(pipeline_name: str) -> str:
    return pipeline_name + HISTORY_PIPELINE_SUFFIX


def history_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``SyncReport.as_dict()["catalogs"]`` as table rows (``warnings`` as a JSON list, null when none)."""
    rows = []
    for record in records:
        row = {name: record.get(name) for name in SYNC_RUN_COLUMNS}
        warnings = record.get("warnings") or []
        row["warnings"] = json.dumps(list(warnings)) if warnings else None
        rows.append(row)
    return rows


def record_history(
    records: Sequence[Mapping[str, Any]],
    *,
    destination: Any,
    dataset: str,
    pipeline_name: str,
    pipelines_dir: str | None,
) -> None:
    """Appends ``records`` to ``sync_runs``; raises when they could not be loaded (nothing stays pending)."""
    arguments: dict[str, Any] = {}
    if pipelines_dir is not None:
        arguments["pipelines_dir"] = pipelines_dir
    pipeline = dlt.pipeline(
        pipeline_name=history_pipeline_name(pipeline_name),
        destination=destination,
        dataset_name=dataset,
        **arguments,
    )
    if pipeline.has_pending_data:
        # a history load that failed before: its rows are lost, not loaded in place of these
        pipeline.abort_packages()
    resource = dlt.resource(
        history_rows(records), name=SYNC_RUNS, write_disposition="append", columns=SYNC_RUN_COLUMNS
    )
    try:
        info = pipeline.run(resource)
    except Exception:
        pipeline.abort_packages()
        raise
    remove_earlier_loaded_packages(pipeline, keep=info.loads_ids)

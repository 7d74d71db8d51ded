"""Finishing what an earlier run left behind, before a new run extracts anything.

dlt keeps a killed or failed run's load packages and loads them on the next run; merges are idempotent. Two
gaps:

- on DuckDB a load job that had committed its rows into the staging table when the process died is run
  again, so the staging table holds those rows twice (same ``_dlt_id``). dlt deduplicates the child tables of
  a merge by row key, but the root table of a merge with children (``products``, ``product_details``) and an
  ``insert-only`` merge (``price_history``) take both copies. BigQuery does not need this: a re-run load job
  finds its first run by job id.
- a package whose load fails every time (a terminal error dlt keeps pending, a corrupt job file) would be
  retried first by every later run, and no run could sync again. It is cleared instead (see
  :func:`clear_pending_packages`): nothing is lost, because the walk compares every hit with what the
  destination holds and re-syncs whatever the package did not leave loaded.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from octogen_source.source.stored_rows import ROW_ID
from octogen_source.source.tables import PRODUCTS

_LOAD_ID = re.compile(r"[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True)
class ClearedPackages:
    """Packages of an earlier run that failed to load again and were cleared."""

    load_ids: tuple[str, ...]
    error: BaseException
    """Why finishing them failed."""


def finish_pending_packages(pipeline: dlt.Pipeline) -> ClearedPackages | None:
    """Loads the packages an earlier run left (if any). When that fails, clears them safely and says so;
    raises only when they cannot be cleared safely (the destination cannot be reached: they stay pending)."""
    if not pipeline.has_pending_data:
        return None
    try:
        pipeline.run()
    except Exception as error:
        return ClearedPackages(clear_pending_packages(pipeline), error)
    if _is_duckdb(pipeline):
        remove_duplicate_rows(pipeline)
    return None


def dataset_of_pipeline(pipeline_name: str, pipelines_dir: str | None) -> str | None:
    """The dataset the pipeline's working folder was last run with (None when it has none yet). Read before
    the run makes its pipeline: dlt would load what is pending into whatever dataset the run names."""
    folder = Path(pipelines_dir or get_dlt_pipelines_dir()) / pipeline_name
    if not (folder / "state.json").is_file():
        return None  # dlt.attach would try to restore it from the destination
    dataset: str | None = dlt.attach(
        pipeline_name=pipeline_name, pipelines_dir=str(folder.parent)
    ).dataset_name
    return dataset


def clear_pending_packages(pipeline: dlt.Pipeline, *, dataset: str | None = None) -> tuple[str, ...]:
    """Drops the pending packages after making the walk re-sync what they partly loaded (in ``dataset``, as
    the destination names it, when they were made for another dataset than the pipeline's: see
    :func:`dataset_of_pipeline`; their rows then stay out of the pipeline's dataset). Returns their ids.

    A package may have loaded some tables and not others: its ``products`` rows merged (with their new
    ``hit_hash``) but not its ``product_details`` or ``price_history``. Such products would look unchanged
    to the next walk and never get their details. So the ``hit_hash`` of every live ``products`` row the
    package wrote (``_dlt_load_id``) is set to NULL first: the walk then sees them as changed, looks them up
    and writes them again. Rows of a package that loaded nothing need nothing: their products are still new or
    changed against the destination. If the destination cannot be reached, this raises and drops nothing.
    """
    load_ids = tuple(pipeline.list_normalized_load_packages())
    extracted = tuple(pipeline.list_extracted_load_packages())
    if load_ids and PRODUCTS in pipeline.default_schema.tables:
        _forget_fingerprints(pipeline, load_ids, dataset=dataset)
    pipeline.abort_packages()
    return load_ids + extracted


def _forget_fingerprints(
    pipeline: dlt.Pipeline, load_ids: tuple[str, ...], *, dataset: str | None = None
) -> None:
    if not all(_LOAD_ID.fullmatch(load_id) for load_id in load_ids):
        raise ValueError(f"unexpected load ids {load_ids!r}")
    listed = ", ".join(f"'{load_id}'" for load_id in load_ids)
    with pipeline.sql_client() as client, contextlib.ExitStack() as held:
        if dataset is not None:
            held.enter_context(client.with_alternative_dataset_name(dataset))
        name = client.make_qualified_table_name(PRODUCTS)
        # DatabaseUndefinedRelation: the table was never created, nothing of it loaded
        with contextlib.suppress(DatabaseUndefinedRelation):
            client.execute_sql(
                f"UPDATE {name} SET hit_hash = NULL WHERE _dlt_load_id IN ({listed}) AND removed_at IS NULL"
            )


def _is_duckdb(pipeline: dlt.Pipeline) -> bool:
    destination = pipeline.destination
    return destination is not None and destination.destination_type.endswith(".duckdb")


def remove_duplicate_rows(pipeline: dlt.Pipeline) -> None:
    """Deletes all but one of the rows sharing a ``_dlt_id`` in every data table (DuckDB ``rowid``)."""
    schema = pipeline.default_schema
    with pipeline.sql_client() as client:
        for table_name in schema.data_table_names(seen_data_only=True):
            if ROW_ID not in schema.tables[table_name]["columns"]:
                continue
            name = client.make_qualified_table_name(table_name)
            client.execute_sql(
                f"DELETE FROM {name} WHERE rowid IN (SELECT rowid FROM (SELECT rowid, ROW_NUMBER() OVER"
                f" (PARTITION BY {ROW_ID} ORDER BY rowid) AS copy FROM {name}) WHERE copy > 1)"
            )

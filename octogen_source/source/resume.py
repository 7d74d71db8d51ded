"""Finishing what a killed run left behind, before a new run extracts anything.

dlt keeps a killed run's load packages and loads them on the next run; merges are idempotent. One gap: on
DuckDB a load job that had committed its rows into the staging table when the process died is run again,
so the staging table holds those rows twice (same ``_dlt_id``). dlt deduplicates the child tables of a
merge by row key, but the root table of a merge with children (``products``, ``product_details``) and an
``insert-only`` merge (``price_history``) take both copies. BigQuery does not need this: a re-run load job
finds its first run by job id.
"""

from __future__ import annotations

import dlt

from octogen_source.source.stored_rows import ROW_ID


def finish_pending_packages(pipeline: dlt.Pipeline) -> bool:
    """Loads the packages a previous run left (if any); True when there were some."""
    if not pipeline.has_pending_data:
        return False
    pipeline.run()
    if _is_duckdb(pipeline):
        remove_duplicate_rows(pipeline)
    return True


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

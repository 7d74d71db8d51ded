"""Where a sync loads: the dlt destination for a name, and the per-destination table hints.

``destination_for`` builds the dlt destination; credentials, project and location are resolved by dlt's own
config providers (``.dlt/secrets.toml``, environment, Application Default Credentials), never passed here.
``apply_destination_hints`` adds what only one warehouse understands: on BigQuery, day partitions on
``updated_at`` and clustering on ``catalog`` (dlt's ``bigquery_adapter``), and parquet load files.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination import Destination
from dlt.common.normalizers.naming.snake_case import NamingConvention as SnakeCaseNaming
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.extract import DltResource, DltSource
from pydantic import ByteSize, TypeAdapter, ValidationError

from octogen_source.duckdb_destination import DuckDBDestination
from octogen_source.errors import OctogenError
from octogen_source.table_names import PRICE_HISTORY, PRODUCTS

SUPPORTED_DESTINATIONS: tuple[str, ...] = ("duckdb", "bigquery")


@dataclass(frozen=True)
class BigQueryTableLayout:
    """How one table is laid out in BigQuery: the TIMESTAMP column of its day partitions, its cluster keys."""

    partition_by_day: str
    cluster_by: tuple[str, ...]
    required: bool
    """A required layout whose columns are not declared is a programming error, not something to skip."""


BIGQUERY_TABLE_LAYOUTS: Mapping[str, BigQueryTableLayout] = {
    PRODUCTS: BigQueryTableLayout(partition_by_day="updated_at", cluster_by=("catalog",), required=True),
    PRICE_HISTORY: BigQueryTableLayout(
        partition_by_day="updated_at", cluster_by=("catalog",), required=False
    ),
}


DEFAULT_DUCKDB_MEMORY_LIMIT = "128MB"
"""DuckDB's memory for a load (its default is 80% of the machine's RAM): a merge of a large catalog spills
to a temporary directory beside the database file instead of growing with the catalog."""

ALLOCATOR_FLUSH_THRESHOLD = "32MB"
"""DuckDB gives its allocator's cached memory back after a task whose peak passed this (its default, 128 MiB,
is the sync's whole memory limit: nothing was given back while the file stayed open between a load's jobs)."""

MEMORY_PER_DUCKDB_THREAD = 32 * 2**20
"""DuckDB shares its memory limit among its threads (one per core by default), and a merge whose threads get
too little runs out of memory: at 200,000 products the ``price_history`` merge did with 8 MB per thread
(128MB, 16 threads) and with 16 MB (32MB, 2 threads); with 32 MB and more none did up to 400,000."""

DUCKDB_MEMORY_UNITS = frozenset({"b", "k", "kb", "m", "mb", "g", "gb", "t", "tb", "kib", "mib", "gib", "tib"})
"""The units accepted in a memory size, any case: those DuckDB's ``memory_limit`` and ``pydantic.ByteSize``
both read, with the same meaning (K/KB = 1000, KiB = 1024, ...). DuckDB reads a few more spellings
(``megabytes``, ``5.GB``, ``1e3MB``); pydantic reads some DuckDB refuses (bits, PB, a bare number)."""

_MEMORY_SIZE = re.compile(r"\s*(\d*\.?\d+)\s*([a-z]+)\s*", re.IGNORECASE)
_BYTE_SIZE = TypeAdapter(ByteSize)


def memory_bytes(size: str) -> int | None:
    """A DuckDB memory size (``128MB``, ``1.5GiB``; MB is 1000², MiB 1024²) in bytes, or None.

    The arithmetic is ``pydantic.ByteSize``'s; the pattern in front of it keeps out what DuckDB would refuse
    and what ByteSize reads leniently (a bare number as bytes, ``1,5GB`` as 1 byte)."""
    match = _MEMORY_SIZE.fullmatch(size)
    if match is None or match.group(2).lower() not in DUCKDB_MEMORY_UNITS:
        return None
    try:
        return int(_BYTE_SIZE.validate_python(match.group(1) + match.group(2)))
    except ValidationError:
        return None


APPENDING_MEMORY_SHARE = 0.5
"""DuckDB's memory for a large load that only appends (:mod:`octogen_source.sync.load_memory`), as a share of
the limit: an append streams its rows to the file and is no faster with more (1,000,000 rows appended alone:
+118 MiB with 64MB, +183 MiB with 128MB, 8.5 s either way)."""


def appending_memory_limit(memory_limit: str | None) -> str | None:
    """DuckDB's memory limit for a large load that only appends, given the run's ``memory_limit``: its share,
    rounded up to whole :data:`MEMORY_PER_DUCKDB_THREAD` (the threads a limit gets are counted in those:
    128MB gives 64MiB, two threads); None (DuckDB's default) and a limit of one thread's share stay."""
    limit = None if memory_limit is None else memory_bytes(memory_limit)
    if limit is None:
        return memory_limit
    threads = max(1, math.ceil(limit * APPENDING_MEMORY_SHARE / MEMORY_PER_DUCKDB_THREAD))
    share = threads * MEMORY_PER_DUCKDB_THREAD
    return memory_limit if share >= limit else f"{share // 2**20}MiB"


def set_duckdb_memory_limit(settings: MutableMapping[str, Any], memory_limit: str) -> None:
    """Puts ``memory_limit`` into DuckDB ``settings``, with the threads it feeds (:func:`duckdb_threads`)."""
    settings["memory_limit"] = memory_limit
    threads = duckdb_threads(memory_limit)
    if threads is not None:
        settings["threads"] = threads


def duckdb_threads(memory_limit: str, cores: int | None = None) -> int | None:
    """DuckDB threads for a load within ``memory_limit``: one per core, but no more than one per
    :data:`MEMORY_PER_DUCKDB_THREAD` of the limit (at least one); None when the limit is not a size."""
    limit = memory_bytes(memory_limit)
    if limit is None:
        return None
    available = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, min(available, limit // MEMORY_PER_DUCKDB_THREAD))


def destination_for(
    name: str,
    *,
    duckdb_path: str | None = None,
    duckdb_memory_limit: str | None = DEFAULT_DUCKDB_MEMORY_LIMIT,
) -> Destination[Any, Any]:
    """The dlt destination called ``name`` ("duckdb" or "bigquery").

    ``duckdb_path`` is the database file, opened with ``duckdb_memory_limit`` (a DuckDB size such as
    ``"128MB"``; None: DuckDB's default); without a path dlt decides all (``DESTINATION__DUCKDB__CREDENTIALS``
    or ``<pipeline_name>.duckdb``, see :func:`default_duckdb_path`). BigQuery reads its credentials the dlt
    way: a service account in ``[destination.bigquery.credentials]`` of ``.dlt/secrets.toml`` (or
    ``DESTINATION__BIGQUERY__CREDENTIALS__*``) or, when none is configured, Application Default Credentials;
    ``DESTINATION__BIGQUERY__LOCATION`` sets the dataset location (dlt's default is "US").
    """
    if name == "duckdb":
        if duckdb_path is None:
            return DuckDBDestination()
        settings: dict[str, Any] = {
            "preserve_insertion_order": False,  # lets DuckDB stream inserts
            "allocator_flush_threshold": ALLOCATOR_FLUSH_THRESHOLD,
        }
        if duckdb_memory_limit is not None:
            set_duckdb_memory_limit(settings, duckdb_memory_limit)
        credentials = DuckDbCredentials(duckdb_file_path(duckdb_path), global_config=settings)
        return DuckDBDestination(credentials=credentials)
    if name == "bigquery":
        if importlib.util.find_spec("google.cloud.bigquery") is None:
            raise OctogenError(
                "the bigquery destination needs Google's BigQuery client: pip install 'octogen-dlt[bigquery]'"
            )
        return dlt.destinations.bigquery()
    raise OctogenError(
        f"unknown destination {name!r}: supported destinations are {', '.join(SUPPORTED_DESTINATIONS)}"
    )


def duckdb_global_config(destination: Destination[Any, Any] | None) -> dict[str, Any] | None:
    """The settings dlt applies to the DuckDB file of ``destination`` (made by :func:`destination_for` with a
    path) whenever it opens it; None for any other destination. dlt copies the credentials for each client
    but not this mapping: a change to it is seen by the next connection dlt opens."""
    credentials = None if destination is None else destination.config_params.get("credentials")
    if isinstance(credentials, DuckDbCredentials) and isinstance(credentials.global_config, dict):
        return credentials.global_config
    return None


def duckdb_file_path(duckdb_path: str) -> str:
    """The path a sync opens ``duckdb_path`` by, absolute: dlt resolves a relative path against the directory
    of the pipeline's first run, and DuckDB shares one database instance only between connections made to the
    same path (:mod:`octogen_source.sync.held_database`)."""
    return str(Path(duckdb_path).resolve())


def is_local_duckdb_file(duckdb_path: str) -> bool:
    """Whether ``duckdb_path`` names a database file here (not ``:memory:``, MotherDuck or a URL)."""
    return not duckdb_path.startswith((":", "md:", "motherduck:")) and "://" not in duckdb_path


def default_duckdb_path(pipeline_name: str) -> str:
    """The DuckDB file dlt would use: ``DESTINATION__DUCKDB__CREDENTIALS`` (or ``[destination.duckdb]
    credentials`` in config.toml) when it names a file, else ``<pipeline_name>.duckdb`` here."""
    configured: object = dlt.config.get("destination.duckdb.credentials")
    if isinstance(configured, str) and configured.strip() and not configured.startswith(":"):
        return configured.removeprefix("duckdb:///")
    return f"{pipeline_name}.duckdb"


def dataset_in_destination(dataset: str) -> str:
    """The name dlt gives ``dataset`` in the destination (DuckDB's schema, BigQuery's dataset): normalized by
    the schemas' naming convention, snake_case unless ``[schema] naming`` says otherwise ("My Data" is written
    to ``my_data``)."""
    try:
        naming = dlt.Schema("dataset").naming
    except Exception:  # a configuration dlt cannot read: the run names it (exit 2), not this look
        naming = SnakeCaseNaming()
    return naming.normalize_table_identifier(dataset)


def dataset_clash(dataset: str, *, pipeline_name: str, duckdb_path: str | None) -> str | None:
    """Why ``dataset`` cannot be synced beside this pipeline name or DuckDB file, or None. DuckDB cannot tell
    a database (named after its file, the pipeline's by default) from a schema of the same name, in any case
    (every load would fail, and the package it left would fail the next runs too); compared as dlt writes the
    dataset."""
    written = dataset_in_destination(dataset)
    shown = repr(dataset) if written == dataset else f"{dataset!r} (written as {written!r})"
    if pipeline_name.casefold() in (dataset.casefold(), written.casefold()):
        return f"the dataset {shown} must differ from the pipeline name {pipeline_name!r}"
    if duckdb_path is not None and Path(duckdb_path).stem.casefold() == written.casefold():
        return (
            f"the DuckDB file {duckdb_path!r} is named like the dataset {shown}: DuckDB cannot tell them"
            " apart; rename the file or pass another --dataset"
        )
    return None


def apply_destination_hints(source: DltSource, destination_name: str) -> DltSource:
    """Adds the table hints ``destination_name`` needs to ``source`` (in place) and returns it.

    BigQuery: the tables of ``BIGQUERY_TABLE_LAYOUTS`` are created partitioned by day of their timestamp
    column and clustered by catalog, and every table loads from parquet files when pyarrow is installed and
    the resource declares no JSON column (BigQuery cannot load JSON columns from parquet). Partitioning and
    clustering are set when dlt CREATEs a table: an existing table keeps its layout. DuckDB: nothing to add.
    """
    if destination_name not in SUPPORTED_DESTINATIONS:
        raise OctogenError(
            f"unknown destination {destination_name!r}: supported destinations are "
            f"{', '.join(SUPPORTED_DESTINATIONS)}"
        )
    if destination_name != "bigquery":
        return source

    # imported here: the adapter module imports nothing from Google, but keep DuckDB-only runs lean
    from dlt.destinations.adapters import bigquery_adapter

    resources = source.resources
    for table_name, layout in BIGQUERY_TABLE_LAYOUTS.items():
        resource = resources.get(table_name)
        if resource is None:
            continue
        wanted = (layout.partition_by_day, *layout.cluster_by)
        declared = _declared_column_types(resource)
        missing = [column for column in wanted if column not in declared]
        if missing:
            if layout.required:
                raise OctogenError(
                    f"resource {table_name!r} must declare the column(s) {', '.join(missing)} to be "
                    "partitioned and clustered in BigQuery"
                )
            continue
        if declared[layout.partition_by_day] != "timestamp":
            raise OctogenError(
                f"resource {table_name!r}: partition column {layout.partition_by_day!r} must be declared "
                f"as timestamp, not {declared[layout.partition_by_day]!r}"
            )
        bigquery_adapter(resource, partition=layout.partition_by_day, cluster=list(layout.cluster_by))

    if _pyarrow_available():
        for resource in resources.values():
            if "json" not in _declared_column_types(resource).values():
                resource.apply_hints(file_format="parquet")
    return source


def _declared_column_types(resource: DltResource) -> dict[str, str | None]:
    """Column name -> declared data type of the resource's static column hints (empty when dynamic)."""
    columns = resource.columns
    if not isinstance(columns, Mapping):
        return {}
    return {name: column.get("data_type") for name, column in columns.items()}


def _pyarrow_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None

"""What a sync is asked to do: ``SyncOptions``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dlt.common.schema.typing import TSchemaContract

from octogen_source.retries import RetryPolicy
from octogen_source.source import CatalogReport
from octogen_source.warehouse import (
    DEFAULT_DUCKDB_MEMORY_LIMIT,
)

DEFAULT_PIPELINE_NAME = "octogen_sync"
DEFAULT_DATASET = "octogen"


@dataclass(frozen=True)
class SyncOptions:
    """What to sync where; ``None`` leaves a setting to dlt's config (.dlt/config.toml, env) or default."""

    destination: str = "duckdb"
    duckdb_path: str | None = None
    """DuckDB database file; default ``DESTINATION__DUCKDB__CREDENTIALS`` or ``<pipeline_name>.duckdb``."""
    dataset: str = DEFAULT_DATASET
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    pipelines_dir: str | None = None
    """Where dlt keeps the pipeline's working state; default ``DLT_DATA_DIR`` or ``~/.dlt``."""
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    catalogs: tuple[str, ...] = ()
    q: str | None = None
    facets: tuple[str, ...] = ()
    """``name=value1,value2`` each."""
    price_min: float | None = None
    price_max: float | None = None
    details: bool | None = None
    """Look up new and changed products (``product_details``); default ``sources.octogen.details`` or on."""
    full_refresh: bool | None = None
    """Backfill (``sources.octogen.refetch_all``, the CLI's ``--refetch-all``): walk the selected catalogs
    again and re-load and look up every product as if all had changed. Nothing is dropped: other catalogs,
    price history and removals stay as they are."""
    page_size: int | None = None
    max_concurrent_lookups: int | None = None
    max_concurrent_catalogs: int | None = None
    retry: RetryPolicy | None = None
    """A whole retry policy (code only); ``retry_max_attempts`` / ``retry_max_seconds`` apply on top of it."""
    retry_max_attempts: int | None = None
    retry_max_seconds: float | None = None
    tables: tuple[str, ...] = ()
    """The tables to load (``sources.octogen.tables``); empty: the configured ones, else all four."""
    schema_contract: TSchemaContract | None = None
    """dlt's schema contract for the source's tables (``sources.octogen.schema_contract``)."""
    loader_file_format: str | None = None
    duckdb_memory_limit: str | None = DEFAULT_DUCKDB_MEMORY_LIMIT
    """DuckDB's memory during the load (spilling beyond it); None: DuckDB's default, 80% of the RAM."""
    max_response_bytes: int | None = None
    """The largest API response body read; default ``sources.octogen.max_response_bytes`` or 16 MiB."""
    allow_mass_removal: bool | None = None
    """Sweep removals even when they would remove more than ``max_removal_share`` of a catalog (or its walk
    listed far fewer products than the last complete one); default ``sources.octogen.allow_mass_removal``."""
    max_removal_share: float | None = None
    walk_in_process: bool | None = None
    """Walk in a child process of its own (Linux; a sync into DuckDB): default
    ``sources.octogen.walk_in_process`` or off (a thread of this process)."""
    progress: Callable[[CatalogReport], None] | None = None
    """Called after each page of each catalog (the CLI's ``--progress``)."""
    collector: Any = None
    """dlt's progress collector for extract, normalize and load (``dlt.pipeline(progress=...)``): a name
    (``"log"``, ``"tqdm"``, ...) or a collector such as ``dlt.progress.log(logger=sys.stderr)``."""
    record_history: bool = True
    """Append the run's per-catalog figures to ``sync_runs`` in the dataset (also when the sync fails)."""

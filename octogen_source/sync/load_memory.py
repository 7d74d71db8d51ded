"""DuckDB's memory limit chosen for each load of a sync that only appends: half of it for a large load.

A load appends its rows into DuckDB's memory until the checkpoint after it, spilling what the limit cannot
hold to a temporary directory beside the file. One larger than the limit holds spills most of its rows
whatever the limit: the load after a walk of 1,000,000 products on loopback (2,000,000 rows) spilled 250 MiB
at 128MB, and with half the limit the sync took the same time (102-104 s against 101-103) for a peak 60-80
MiB lower (406-434 MiB against 482-495; docs/performance.md). A smaller load fits, and is faster with the
whole limit: with half for every load, the segments of a sync at 20 ms per request (≈ 90,000 rows each) made
the full sync 0.8-1 s slower.
A load that merges keeps the whole limit (a merge's join is what the limit is for).

dlt sets the limit when a load opens the database (``global_config`` of the destination's credentials,
applied at each first borrow of a connection): it is set in that mapping before each load step.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import dlt

from octogen_source.sync.load_collector import GivingBackMemoryBeforeLoads
from octogen_source.warehouse import appending_memory_limit, duckdb_global_config, set_duckdb_memory_limit

LARGE_APPEND_ROWS = 500_000
"""Rows (all tables) of a load above which an append runs with half the limit: ≈ 250,000 products with their
price rows, some 400 MiB in DuckDB's memory, three times what the default 128MB holds."""


class MemoryPerLoad:
    """Before each load: the whole ``memory_limit``, or its appending share for a large load."""

    def __init__(self, global_config: MutableMapping[str, Any], memory_limit: str) -> None:
        self._config = global_config
        self._whole = memory_limit
        self._appending = appending_memory_limit(memory_limit) or memory_limit

    def before_load(self, trace: Any) -> None:
        large = loaded_rows(trace) > LARGE_APPEND_ROWS
        set_duckdb_memory_limit(self._config, self._appending if large else self._whole)


def loaded_rows(trace: Any) -> int:
    """The rows the run's normalize wrote for its load, dlt's own tables left out (0 when unknown)."""
    info = getattr(trace, "last_normalize_info", None)
    counts: dict[str, int] = getattr(info, "row_counts", None) or {}
    return sum(count for table, count in counts.items() if not table.startswith("_dlt"))


def appending_large_loads_with_less_memory(pipeline: dlt.Pipeline, memory_limit: str | None) -> None:
    """For a run whose loads only append (a first load, :func:`octogen_source.source.first_load.only_appends`)
    into a DuckDB file with a ``memory_limit``: each large load gets the appending share (else nothing)."""
    config = duckdb_global_config(pipeline.destination)
    collector = pipeline.collector
    if memory_limit is None or config is None or not isinstance(collector, GivingBackMemoryBeforeLoads):
        return
    collector.before_load = MemoryPerLoad(config, memory_limit).before_load

"""dlt's DuckDB destination with its capabilities resolved once per destination object, not at every ask.

dlt asks the destination for its capabilities about two dozen times per ``pipeline.run`` (each step, each
client, the pipeline's context), and each ask without a configuration resolves a partial configuration
through every config provider: 7-8 ms each on the bench machine. Measured after the last page of a sync of
50,000 products at 20 ms per request (the last load, the view, ``sync_runs``): 23 asks, 0.18 s of a tail of
0.8 s; over a full sync of 3 x 50,000, ≈ 0.6 s of the sync's process.

DuckDB's capabilities depend on what the destination object was made with and on the naming convention's
case sensitivity, not on the configuration dlt resolves for them (dlt's DuckDB factory adjusts nothing to
it); it is still resolved once per object and naming, as dlt would, and a sync makes its destination anew
for each run. Each caller gets its own copy (dlt sets attributes on the one it is given).

Its job client answers dlt's two per-table questions of a load (whether a table loads through the staging
dataset, whether it is truncated first) once per table: dlt's ``init_client`` asks them for every nested table
of every table with a job, a product and its 16 child tables ≈ 600 asks per load, each preparing the table
anew (a deep copy and a configuration resolved): 0.17-0.26 s of each load's 0.55-0.75 s.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from dlt.common.destination.capabilities import DestinationCapabilitiesContext
from dlt.common.destination.reference import DestinationReference
from dlt.common.normalizers.naming import NamingConvention
from dlt.destinations import duckdb
from dlt.destinations.impl.duckdb.duck import DuckDbClient

_T = TypeVar("_T")

_DUCKDB_TYPE = DestinationReference.normalize_type(f"{duckdb.__module__}.{duckdb.__qualname__}")


class DuckDBDestination(duckdb):
    """:class:`dlt.destinations.duckdb`, same type and name (pipeline state, traces), capabilities kept."""

    @property
    def destination_type(self) -> str:
        return _DUCKDB_TYPE

    @property
    def client_class(self) -> type[DuckDbClient]:
        return _DuckDbClient

    def capabilities(
        self, config: Any = None, naming: NamingConvention | None = None
    ) -> DestinationCapabilitiesContext:
        if config is not None:  # adjusted to a resolved configuration: no providers read, nothing to keep
            return super().capabilities(config, naming)
        key = None if naming is None else (naming.name(), naming.is_case_sensitive)
        resolve = super().capabilities
        return copy.copy(_kept(self, "_kept_capabilities", key, lambda: resolve(None, naming)))


class _DuckDbClient(DuckDbClient):
    """dlt's DuckDB job client, its answers about a table kept for the client's life (one load: the load
    package's schema does not change under it, nor does a table's write disposition)."""

    def should_load_data_to_staging_dataset(self, table_name: str) -> bool:
        ask = super().should_load_data_to_staging_dataset
        return _kept(self, "_loads_through_staging", table_name, lambda: ask(table_name))

    def should_truncate_table_before_load(self, table_name: str) -> bool:
        ask = super().should_truncate_table_before_load
        return _kept(self, "_truncated_first", table_name, lambda: ask(table_name))


def _kept(owner: object, store: str, key: Hashable, make: Callable[[], _T]) -> _T:
    """``make()``, made once per ``key`` and kept in ``owner``'s ``store`` for the object's life."""
    kept: dict[Hashable, _T] = owner.__dict__.setdefault(store, {})
    if key not in kept:
        kept[key] = make()
    return kept[key]

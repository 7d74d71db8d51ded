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
"""

from __future__ import annotations

import copy
from typing import Any

from dlt.common.destination.capabilities import DestinationCapabilitiesContext
from dlt.common.destination.reference import DestinationReference
from dlt.common.normalizers.naming import NamingConvention
from dlt.destinations import duckdb

_DUCKDB_TYPE = DestinationReference.normalize_type(f"{duckdb.__module__}.{duckdb.__qualname__}")


class DuckDBDestination(duckdb):
    """:class:`dlt.destinations.duckdb`, same type and name (pipeline state, traces), capabilities kept."""

    @property
    def destination_type(self) -> str:
        return _DUCKDB_TYPE

    def capabilities(
        self, config: Any = None, naming: NamingConvention | None = None
    ) -> DestinationCapabilitiesContext:
        if config is not None:  # adjusted to a resolved configuration: no providers read, nothing to keep
            return super().capabilities(config, naming)
        key = None if naming is None else (naming.name(), naming.is_case_sensitive)
        kept: dict[Any, DestinationCapabilitiesContext] = self.__dict__.setdefault("_kept_capabilities", {})
        capabilities = kept.get(key)
        if capabilities is None:
            capabilities = kept[key] = super().capabilities(None, naming)
        return copy.copy(capabilities)

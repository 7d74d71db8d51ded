"""Reads of what the current pipeline's destination already holds, made from inside the extract step.

Blocking calls (a warehouse query): the walk runs them in a worker thread so its event loop keeps serving
the catalogs being walked. They run one at a time: each ``pipeline.sql_client()`` made during the extract
reloads the pipeline's schema into the live schema object *in place* (dlt's ``LiveSchemaStorage``), so a
second read in another thread could find that schema half-replaced (its naming convention ``None``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import dlt
from dlt.common.pipeline import SupportsPipeline

from octogen_source.source.known_versions import PRODUCTS_TABLE, KnownVersions, read_known_versions
from octogen_source.source.records import Row
from octogen_source.source.stored_rows import read_records
from octogen_source.table_names import CATALOGS

CATALOGS_TABLE = CATALOGS


class DestinationState:
    """The loaded ``products`` of the pipeline that is extracting the source.

    Without a destination (``pipeline.extract`` alone) nothing is known: every product is new and nothing is
    marked removed.
    """

    def __init__(self) -> None:
        self._pipeline: SupportsPipeline = dlt.current.pipeline()
        self._schema = dlt.current.source_schema()
        self._one_at_a_time = threading.Lock()

    @property
    def _has_destination(self) -> bool:
        return getattr(self._pipeline, "destination", None) is not None

    def known_versions(self, catalog: str, *, details: bool) -> KnownVersions:
        """``details``: the run looks products up, so the loaded ones never looked up are marked."""
        if not self._has_destination:
            return KnownVersions()
        with self._one_at_a_time, self._pipeline.sql_client() as client:  # type: ignore[attr-defined]
            return read_known_versions(client, catalog, details=details)

    def stored_catalog(self, catalog: str) -> Row | None:
        """The loaded ``catalogs`` row of ``catalog``, if any."""
        if not self._has_destination:
            return None
        with self._one_at_a_time, self._pipeline.sql_client() as client:  # type: ignore[attr-defined]
            rows = read_records(client, self._schema, CATALOGS_TABLE, "catalog", [catalog])
        return rows[0] if rows else None

    def stored_products(self, uuids: Sequence[str]) -> list[Row]:
        """The loaded rows of these products, child tables (images, ...) attached."""
        if not self._has_destination or not uuids:
            return []
        with self._one_at_a_time, self._pipeline.sql_client() as client:  # type: ignore[attr-defined]
            return read_records(client, self._schema, PRODUCTS_TABLE, "uuid", uuids)

"""The source built in code: :func:`octogen_resources` and :func:`build_source` take settings made by the
caller (and an observer of the walk), where ``octogen_source`` takes only what dlt resolves from its config
(as dlt's ``rest_api_resources`` and ``rest_api_source`` split it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from dlt.common.schema import Schema
from dlt.extract import DltResource, DltSource

from octogen_source.source.report import WalkObserver
from octogen_source.source.settings import SourceSettings
from octogen_source.source.tables import (
    CATALOGS,
    PRICE_HISTORY,
    PRODUCT_DETAILS,
    PRODUCTS,
    RunConverters,
    catalogs_table,
    price_history_table,
    product_details_table,
    products_table,
    walk_resource,
)

SOURCE_NAME = "octogen"
"""The source's name: its schema, its state and its config section (``sources.octogen``)."""


def walked_settings(settings: SourceSettings) -> SourceSettings:
    """The settings the walk runs with: no lookups when ``product_details`` is not loaded."""
    if settings.details and PRODUCT_DETAILS not in settings.tables:
        return replace(settings, details=False)  # nothing would load what a lookup returns
    return settings


def octogen_resources(
    settings: SourceSettings,
    observer: WalkObserver | None = None,
    *,
    walk: DltResource | None = None,
    converters: RunConverters | None = None,
) -> list[DltResource]:
    """The selected tables of one run, all fed by one walk of the catalogs; ``observer`` collects the figures
    of each catalog (new, changed, removed, lookups, requests, ...). ``walk``: the batches of a walk made
    elsewhere (a segment of it, :mod:`octogen_source.source.segments`) instead of the source's own walk, and
    ``converters`` the arrow converters its segments share."""
    if observer is None:
        observer = WalkObserver()
    observer.base_url = settings.base_url
    settings = walked_settings(settings)
    if walk is None:
        walk = walk_resource(settings, observer)
    shared = converters if converters is not None else RunConverters()
    makers: dict[str, Callable[[DltResource], DltResource]] = {
        CATALOGS: catalogs_table,
        PRODUCTS: lambda walk: products_table(walk, shared),
        PRICE_HISTORY: lambda walk: price_history_table(walk, shared),
        PRODUCT_DETAILS: product_details_table,
    }
    tables = [make(walk) for name, make in makers.items() if name in settings.tables]
    if settings.schema_contract is not None:
        for table in tables:
            table.apply_hints(schema_contract=settings.schema_contract)
    return tables


def build_source(
    settings: SourceSettings,
    observer: WalkObserver | None = None,
    *,
    walk: DltResource | None = None,
    converters: RunConverters | None = None,
) -> DltSource:
    """The Octogen source from settings made in code: the same name, schema, state and tables as
    ``octogen_source()`` would make from config (what ``run_sync``, the bench and tests use)."""
    resources = octogen_resources(settings, observer, walk=walk, converters=converters)
    return DltSource(Schema(SOURCE_NAME), SOURCE_NAME, resources)

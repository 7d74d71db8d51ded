"""The dlt source of the Octogen Platform Catalog API.

Tables (see :mod:`octogen_source.source.tables` for keys and columns):

- ``catalogs``: one row per synced catalog (display name, source URL, product count as the run saw them),
  merged on ``catalog``;
- ``products``: one row per product (every search-hit field, nested values as JSON text), merged on ``uuid``;
  ``removed_at`` is set once a complete, unfiltered walk no longer lists the product (null while listed);
- ``product_details``: the lookup record of each new or changed product, merged on ``uuid``;
- ``price_history``: one row per observed product version (uuid, updated_at, prices), never duplicated.

A product is new or changed when its uuid has no live row or its search hit differs from the loaded one
(read back from the destination at the start of each catalog's walk), never by a global high-water mark.

``octogen_source`` takes only settings dlt resolves from config (``[sources.octogen]`` in .dlt/config.toml and
secrets.toml, ``SOURCES__OCTOGEN__*`` in the environment, or its arguments); code that observes the walk
builds the source with :func:`resolve_settings` and :func:`build_source` (:mod:`.builder`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dlt
from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.container import Container
from dlt.common.configuration.exceptions import ConfigValueCannotBeCoercedException
from dlt.common.configuration.inject import inject_section
from dlt.common.configuration.specs.config_section_context import ConfigSectionContext
from dlt.common.configuration.specs.known_sections import SOURCES
from dlt.common.pipeline import PipelineContext
from dlt.extract import DltResource

from octogen_source.client import DEFAULT_BASE_URL, DEFAULT_MAX_RESPONSE_BYTES
from octogen_source.retries import RetryPolicy
from octogen_source.source.builder import SOURCE_NAME, build_source, octogen_resources
from octogen_source.source.catalog_walk import CatalogsRequiredError, UnknownCatalogError
from octogen_source.source.config import bad_setting, build_settings
from octogen_source.source.report import CatalogReport, WalkObserver
from octogen_source.source.settings import (
    DEFAULT_MAX_CONCURRENT_CATALOGS,
    DEFAULT_MAX_CONCURRENT_LOOKUPS,
    DEFAULT_MAX_REMOVAL_SHARE,
    DEFAULT_PAGE_SIZE,
    SOURCE_TABLES,
    InvalidSettingError,
    SourceSettings,
    parse_facet,
)
from octogen_source.source.tables import CATALOGS, PRICE_HISTORY, PRODUCT_DETAILS, PRODUCTS

__all__ = [
    "CATALOGS",
    "PRICE_HISTORY",
    "PRODUCTS",
    "PRODUCT_DETAILS",
    "SOURCE_TABLES",
    "CatalogReport",
    "CatalogsRequiredError",
    "InvalidSettingError",
    "SourceSettings",
    "UnknownCatalogError",
    "WalkObserver",
    "build_source",
    "octogen_resources",
    "octogen_source",
    "parse_facet",
    "resolve_settings",
]

SOURCE_SECTIONS = (SOURCES, SOURCE_NAME, SOURCE_NAME)
"""Where dlt looks the source's settings up: ``sources.octogen.octogen.<key>``, ``sources.octogen.<key>``."""


@dlt.source(name=SOURCE_NAME, section=SOURCE_NAME)
def octogen_source(
    api_key: str | None = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    # Any: dlt hands a value over as it is, an environment value as text (a JSON list or comma-separated keys)
    # and a TOML one as TOML holds it; a hint with str would make `catalogs = 5` the catalog key '5'
    catalogs: Any = None,
    q: str | None = None,
    facets: list[Any] | None = None,
    price_min: float | None = None,
    price_max: float | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    details: bool = True,
    max_concurrent_lookups: int = DEFAULT_MAX_CONCURRENT_LOOKUPS,
    max_concurrent_catalogs: int = DEFAULT_MAX_CONCURRENT_CATALOGS,
    refetch_all: bool = False,
    retry_max_attempts: int | None = None,
    retry_max_seconds: float | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    max_removal_share: float = DEFAULT_MAX_REMOVAL_SHARE,
    allow_mass_removal: bool = False,
    tables: str | Sequence[str] | None = None,
    schema_contract: str | dict[str, str] | None = None,
    walk_in_process: bool = False,
) -> list[DltResource]:
    """Octogen catalogs, products, product details and price history.

    Every argument is a setting dlt resolves when it is not passed (``sources.octogen.<name>`` in
    .dlt/config.toml or secrets.toml, ``SOURCES__OCTOGEN__<NAME>`` in the environment).

    Args:
        api_key: the Platform API key (``sources.octogen.api_key`` secret; falls back to ``OCTO_API_KEY``).
        base_url: the API's base URL.
        catalogs: catalog keys to sync. Without them the catalogs are listed with ``GET /catalogs``, which
            only seed-era APIs answer: the current API retired it, and the run stops saying so.
        q, facets, price_min, price_max: search filters (a facet is ``{"name", "values"}`` or
            ``name=v1,v2``). A filtered sync loads what it finds but never marks a product removed.
        page_size: search page size (1..100).
        details: look up the full record of each new or changed product (``product_details``); off, the same
            as leaving ``product_details`` out of ``tables``.
        max_concurrent_lookups: detail lookups in flight at once, across catalogs.
        max_concurrent_catalogs: catalogs walked at once.
        refetch_all: emit and look up every listed product again, as if all had changed (a backfill of the
            selected catalogs; nothing is dropped, other catalogs are untouched, removals are still marked).
        retry_max_attempts, retry_max_seconds: bound the retries of one request (attempts in total, and
            seconds from the first attempt); default the client's (6 attempts, 120 s).
        max_response_bytes: the largest response body read (decoded); a larger one fails the run with one
            line naming the endpoint (default 16 MiB; a real 100-hit page is about 190 KB).
        max_removal_share: a complete walk's removal sweep is skipped (and reported) when it would mark more
            than this share of the catalog's live products removed, or when the walk listed fewer than
            ``1 - max_removal_share`` of the products the last complete walk listed (default 0.2).
        allow_mass_removal: sweep anyway (after an intended mass delisting).
        tables: the tables to load (default all four), as dlt's ``with_resources`` would select them.
        schema_contract: dlt's schema contract for the source's tables (``freeze``, ``evolve``,
            ``discard_row``, ``discard_value``, or a mode per ``tables`` / ``columns`` / ``data_type``).
        walk_in_process: a sync loaded in segments (``run_sync`` into DuckDB) walks in a child process of
            its own on Linux, its CPU apart from dlt's extract (faster, more memory: docs/operations.md);
            default false, a thread.
    """
    return octogen_resources(
        build_settings(
            api_key=api_key,
            base_url=base_url,
            catalogs=catalogs,
            q=q,
            facets=facets,
            price_min=price_min,
            price_max=price_max,
            page_size=page_size,
            details=details,
            max_concurrent_lookups=max_concurrent_lookups,
            max_concurrent_catalogs=max_concurrent_catalogs,
            refetch_all=refetch_all,
            retry_max_attempts=retry_max_attempts,
            retry_max_seconds=retry_max_seconds,
            max_response_bytes=max_response_bytes,
            max_removal_share=max_removal_share,
            allow_mass_removal=allow_mass_removal,
            tables=tables,
            schema_contract=schema_contract,
            walk_in_process=walk_in_process,
        )
    )


def resolve_settings(given: Mapping[str, Any], *, retry: RetryPolicy | None = None) -> SourceSettings:
    """The settings ``octogen_source(**given)`` would run with: ``given`` over the environment, over
    secrets.toml and config.toml, over the defaults (dlt's resolution of the source's own config spec, in
    the section of the active pipeline if any). ``retry`` is a whole policy given in code; the configured
    retry bounds apply on top of it. A value dlt cannot coerce fails as one :class:`InvalidSettingError`
    naming the setting and the form expected."""
    unknown = set(given) - set(octogen_source.ref.SPEC.get_resolvable_fields())
    if unknown:
        raise TypeError(f"not settings of the Octogen source: {', '.join(sorted(unknown))}")
    pipeline_context = Container()[PipelineContext]
    pipeline_name = pipeline_context.pipeline().pipeline_name if pipeline_context.is_active() else None
    try:
        with inject_section(ConfigSectionContext(pipeline_name=pipeline_name, sections=SOURCE_SECTIONS)):
            config = resolve_configuration(octogen_source.ref.SPEC(), explicit_value=dict(given))
    except ConfigValueCannotBeCoercedException as error:
        raise bad_setting(error.field_name, error.field_value, error.hint) from None
    return build_settings(**dict(config), retry=retry)

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
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import dlt
from dlt.extract import DltResource

from octogen_source.client import API_KEY_ENV, DEFAULT_BASE_URL, DEFAULT_MAX_RESPONSE_BYTES
from octogen_source.errors import MissingAPIKeyError
from octogen_source.retries import RetryPolicy
from octogen_source.source.catalog_walk import CatalogsRequiredError, UnknownCatalogError
from octogen_source.source.report import CatalogReport, WalkObserver
from octogen_source.source.settings import (
    DEFAULT_MAX_CONCURRENT_CATALOGS,
    DEFAULT_MAX_CONCURRENT_LOOKUPS,
    DEFAULT_MAX_REMOVAL_SHARE,
    DEFAULT_PAGE_SIZE,
    InvalidSettingError,
    SearchFilters,
    SourceSettings,
    catalog_keys,
    coerce_facets,
    parse_facet,
)
from octogen_source.source.tables import (
    CATALOGS,
    PRICE_HISTORY,
    PRODUCT_DETAILS,
    PRODUCTS,
    catalogs_table,
    price_history_table,
    product_details_table,
    products_table,
    walk_resource,
)

__all__ = [
    "CATALOGS",
    "PRICE_HISTORY",
    "PRODUCTS",
    "PRODUCT_DETAILS",
    "CatalogReport",
    "CatalogsRequiredError",
    "InvalidSettingError",
    "UnknownCatalogError",
    "WalkObserver",
    "octogen_source",
    "parse_facet",
]


@dlt.source(name="octogen", section="octogen")
def octogen_source(
    api_key: str | None = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    # str first: dlt then hands an environment value over as it is (a JSON list or comma-separated keys)
    catalogs: str | Sequence[str] | None = None,
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
    observer: WalkObserver | None = None,
    retry: RetryPolicy | None = None,
) -> list[DltResource]:
    """Octogen catalogs, products, product details and price history.

    Args:
        api_key: the Platform API key (``sources.octogen.api_key`` secret; falls back to ``OCTO_API_KEY``).
        base_url: the API's base URL.
        catalogs: catalog keys to sync. Without them the catalogs are listed with ``GET /catalogs``, which
            only seed-era APIs answer: the current API retired it, and the run stops saying so.
        q, facets, price_min, price_max: search filters (a facet is a ``Facet``, ``{"name", "values"}``
            or ``name=v1,v2``).
            A filtered sync loads what it finds but never marks a product removed.
        page_size: search page size (1..100).
        details: look up the full record of each new or changed product (``product_details``).
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
        observer: collects per-catalog figures (new, changed, removed, lookups, requests, ...).
        retry: a whole retry policy (programmatic callers); the two bounds above apply on top of it.
    """
    key = (api_key or os.environ.get(API_KEY_ENV) or "").strip()
    if not key:
        raise MissingAPIKeyError(
            f"no Octogen API key: set {API_KEY_ENV}, SOURCES__OCTOGEN__API_KEY or "
            "[sources.octogen] api_key in .dlt/secrets.toml"
        )
    settings = SourceSettings(
        api_key=key,
        base_url=base_url,
        catalogs=catalog_keys(catalogs),
        filters=SearchFilters(
            q=q or None,
            facets=coerce_facets(facets),
            price_min=price_min,
            price_max=price_max,
        ),
        page_size=page_size,
        details=details,
        max_concurrent_lookups=max_concurrent_lookups,
        max_concurrent_catalogs=max_concurrent_catalogs,
        refetch_all=refetch_all,
        retry=_retry_policy(retry, retry_max_attempts, retry_max_seconds),
        max_response_bytes=max_response_bytes,
        max_removal_share=max_removal_share,
        allow_mass_removal=allow_mass_removal,
    )
    if observer is None:
        observer = WalkObserver()
    observer.base_url = base_url
    walk = walk_resource(settings, observer)
    tables = [catalogs_table(walk), products_table(walk), price_history_table(walk)]
    if details:
        tables.append(product_details_table(walk))
    return tables


def _retry_policy(
    policy: RetryPolicy | None, max_attempts: int | None, max_seconds: float | None
) -> RetryPolicy | None:
    if max_attempts is None and max_seconds is None:
        return policy
    base = policy if policy is not None else RetryPolicy()
    try:
        return replace(
            base,
            max_attempts=base.max_attempts if max_attempts is None else max_attempts,
            max_total_seconds=base.max_total_seconds if max_seconds is None else max_seconds,
        )
    except ValueError as error:
        raise InvalidSettingError(str(error)) from None

"""octogen-dlt: the Octogen Platform Catalog API as a typed async client and a dlt source.

The client and its models and errors import without dlt; ``octogen_source`` (the dlt source) and the sync
entry point are loaded on first use, so ``from octogen_source import octogen_source`` works as in dlt's
verified sources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from octogen_source.client import (
    DEFAULT_BASE_URL,
    ApiGeneration,
    MatchMode,
    OctogenClient,
    RequestStats,
    ResolutionMode,
    SearchArguments,
    SearchQuery,
)
from octogen_source.errors import (
    MissingAPIKeyError,
    OctogenAPIError,
    OctogenAuthenticationError,
    OctogenBigQueryAccessPendingError,
    OctogenBigQueryError,
    OctogenConfigurationError,
    OctogenConnectionError,
    OctogenEndpointRetiredError,
    OctogenError,
    OctogenForbiddenError,
    OctogenInsufficientCreditError,
    OctogenNotFoundError,
    OctogenRateLimitError,
    OctogenRequestError,
    OctogenResponseError,
    OctogenResponseTooLargeError,
    OctogenScopeError,
    OctogenTransportError,
    OctogenValidationError,
)
from octogen_source.models import (
    Brand,
    DomainCatalogCoverage,
    DomainCoverageResponse,
    Facet,
    Image,
    ImageObject,
    MerchantCatalogSummary,
    MerchantProductListItem,
    MerchantProductListPage,
    MerchantProductUrlLookupResponse,
    MerchantProductView,
    MeResponse,
    ProductColor,
    ProductIdentifiers,
    ProductVariant,
    Rating,
    VariantColor,
)
from octogen_source.retries import RetryPolicy

if TYPE_CHECKING:
    from octogen_source.source import octogen_source
    from octogen_source.sync import SyncError, SyncOptions, SyncReport, run_sync
    from octogen_source.views import create_analyst_views

_LAZY = {
    "octogen_source": "octogen_source.source",
    "SyncOptions": "octogen_source.sync",
    "SyncReport": "octogen_source.sync",
    "run_sync": "octogen_source.sync",
    "SyncError": "octogen_source.sync",
    "create_analyst_views": "octogen_source.views",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'octogen_source' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)


__all__ = [
    "DEFAULT_BASE_URL",
    "ApiGeneration",
    "Brand",
    "DomainCatalogCoverage",
    "DomainCoverageResponse",
    "Facet",
    "Image",
    "ImageObject",
    "MatchMode",
    "MeResponse",
    "MerchantCatalogSummary",
    "MerchantProductListItem",
    "MerchantProductListPage",
    "MerchantProductUrlLookupResponse",
    "MerchantProductView",
    "MissingAPIKeyError",
    "OctogenAPIError",
    "OctogenAuthenticationError",
    "OctogenBigQueryAccessPendingError",
    "OctogenBigQueryError",
    "OctogenClient",
    "OctogenConfigurationError",
    "OctogenConnectionError",
    "OctogenEndpointRetiredError",
    "OctogenError",
    "OctogenForbiddenError",
    "OctogenInsufficientCreditError",
    "OctogenNotFoundError",
    "OctogenRateLimitError",
    "OctogenRequestError",
    "OctogenResponseError",
    "OctogenResponseTooLargeError",
    "OctogenScopeError",
    "OctogenTransportError",
    "OctogenValidationError",
    "ProductColor",
    "ProductIdentifiers",
    "ProductVariant",
    "Rating",
    "RequestStats",
    "ResolutionMode",
    "RetryPolicy",
    "SearchArguments",
    "SearchQuery",
    "SyncError",
    "SyncOptions",
    "SyncReport",
    "VariantColor",
    "create_analyst_views",
    "octogen_source",
    "run_sync",
]

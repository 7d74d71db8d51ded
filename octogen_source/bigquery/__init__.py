"""BigQuery Analytics Hub helpers (the optional ``bigquery`` extra): zero-copy subscription to a listing."""

from octogen_source.bigquery.listing import (
    ListingResource,
    SubscriptionTarget,
    default_dataset_id,
    parse_listing_resource,
    resolve_target,
)
from octogen_source.bigquery.subscribe import (
    BigQuerySubscriptionResult,
    GoogleCredentialsMissingError,
    build_analyticshub_client,
    find_subscription,
    subscribe_to_listing,
)

__all__ = [
    "BigQuerySubscriptionResult",
    "GoogleCredentialsMissingError",
    "ListingResource",
    "SubscriptionTarget",
    "build_analyticshub_client",
    "default_dataset_id",
    "find_subscription",
    "parse_listing_resource",
    "resolve_target",
    "subscribe_to_listing",
]

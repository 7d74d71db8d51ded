"""Zero-copy subscription to an Octogen BigQuery Analytics Hub listing.

Subscribing creates a *linked dataset* in the customer's own project; nothing is copied. Credentials are
Google's (Application Default Credentials or explicit ones), never the Octogen API key. The call is
idempotent: a usable (not INACTIVE) subscription to the same listing in the destination project is returned
as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import grpc
from google.api_core import exceptions as api_exceptions
from google.auth import credentials as ga_credentials
from google.auth import exceptions as auth_exceptions
from google.cloud import bigquery_analyticshub_v1
from google.cloud.bigquery_analyticshub_v1.services.analytics_hub_service.transports import (
    AnalyticsHubServiceGrpcTransport,
)

from octogen_source.bigquery.listing import ListingResource, SubscriptionTarget, resolve_target
from octogen_source.errors import OctogenBigQueryAccessPendingError, OctogenBigQueryError

AnalyticsHubServiceClient = bigquery_analyticshub_v1.AnalyticsHubServiceClient
Subscription = bigquery_analyticshub_v1.Subscription

SHARED_TABLE = "products_current_v1"
CALL_TIMEOUT_SECONDS = 60.0
# Testing only: "127.0.0.1:PORT" points the client at a local fake over an insecure gRPC channel (no
# credentials are sent). Only loopback hosts are accepted.
ENDPOINT_ENV = "OCTOGEN_ANALYTICSHUB_ENDPOINT"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
_HINTS = {
    grpc.StatusCode.UNAUTHENTICATED: "check your Google Application Default Credentials",
}


class GoogleCredentialsMissingError(OctogenBigQueryError):
    """No Google credentials were given and Application Default Credentials are not configured."""


@dataclass(frozen=True)
class BigQuerySubscriptionResult:
    """A subscription to a listing and the linked dataset it created."""

    listing_resource: str
    linked_project: str
    linked_dataset: str
    state: str
    already_subscribed: bool
    subscription_name: str
    sample_query: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_analyticshub_client(
    credentials: ga_credentials.Credentials | None = None,
) -> AnalyticsHubServiceClient:
    """An Analytics Hub client on Google's endpoint with ``credentials`` (default: ADC).

    Honours :data:`ENDPOINT_ENV` (testing only) to talk to a local fake instead.
    """
    endpoint = os.environ.get(ENDPOINT_ENV, "").strip()
    if endpoint:
        return _local_client(endpoint)
    try:
        return AnalyticsHubServiceClient(credentials=credentials)
    except auth_exceptions.DefaultCredentialsError as exc:
        reason = _one_line(exc, limit=160).split(". ")[0].rstrip(".")  # google.auth's first sentence
        raise GoogleCredentialsMissingError(
            f"no usable Google credentials ({reason}): run `gcloud auth "
            "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS (the Octogen API key is not "
            "used for BigQuery)"
        ) from None


def subscribe_to_listing(
    *,
    listing_resource: str,
    destination_project: str,
    destination_dataset_id: str | None = None,
    location: str | None = None,
    friendly_name: str | None = None,
    credentials: ga_credentials.Credentials | None = None,
    client: AnalyticsHubServiceClient | None = None,
) -> BigQuerySubscriptionResult:
    """Subscribe ``destination_project`` to the listing, or return its existing usable subscription.

    Raises OctogenBigQueryAccessPendingError when the subscribe is refused with permission denied (Octogen's
    grant is asynchronous: retry in a few minutes) and OctogenBigQueryError for anything else.
    """
    target = resolve_target(
        listing_resource=listing_resource,
        destination_project=destination_project,
        destination_dataset_id=destination_dataset_id,
        location=location,
        friendly_name=friendly_name,
    )
    with _client_scope(client, credentials) as hub:
        existing = _find_usable_subscription(hub, target)
        if existing is not None:
            return _result(existing, target, already_subscribed=True)
        return _subscribe(hub, target)


def find_subscription(
    *,
    listing_resource: str,
    destination_project: str,
    credentials: ga_credentials.Credentials | None = None,
    client: AnalyticsHubServiceClient | None = None,
) -> BigQuerySubscriptionResult | None:
    """The destination project's usable subscription to the listing, or None. Changes nothing."""
    target = resolve_target(listing_resource=listing_resource, destination_project=destination_project)
    with _client_scope(client, credentials) as hub:
        existing = _find_usable_subscription(hub, target)
    return None if existing is None else _result(existing, target, already_subscribed=True)


def sample_query(project: str, dataset: str) -> str:
    return f"SELECT * FROM `{project}.{dataset}.{SHARED_TABLE}` LIMIT 10"


@contextmanager
def _client_scope(
    client: AnalyticsHubServiceClient | None, credentials: ga_credentials.Credentials | None
) -> Iterator[AnalyticsHubServiceClient]:
    """Use the given client, or build one and close it afterwards; credential failures become ours."""
    built: AnalyticsHubServiceClient | None = None
    try:
        if client is None:
            client = built = build_analyticshub_client(credentials)
        yield client
    except auth_exceptions.GoogleAuthError as exc:
        raise OctogenBigQueryError(f"Google credentials could not be used: {_one_line(exc)}") from exc
    finally:
        if built is not None:
            built.transport.close()


def _subscribe(hub: AnalyticsHubServiceClient, target: SubscriptionTarget) -> BigQuerySubscriptionResult:
    listing_name = target.listing.name
    try:
        response = hub.subscribe_listing(request=_subscribe_request(target), timeout=CALL_TIMEOUT_SECONDS)
    except api_exceptions.PermissionDenied as exc:
        raise OctogenBigQueryAccessPendingError(
            f"access to listing {listing_name} is pending (permission denied): Octogen's grant to your "
            "principal has not propagated yet; retry in a few minutes"
        ) from exc
    except api_exceptions.AlreadyExists as exc:
        # A concurrent run subscribed first, or the dataset id is taken: re-list to tell which.
        existing = _find_usable_subscription(hub, target)
        if existing is None:
            raise OctogenBigQueryError(
                f"dataset {target.destination_project}.{target.destination_dataset_id} already exists and "
                f"is not linked to listing {listing_name}; choose another dataset id"
            ) from exc
        return _result(existing, target, already_subscribed=True)
    except api_exceptions.GoogleAPIError as exc:
        raise _api_error(exc, f"subscribing to listing {listing_name}") from exc

    created = response.subscription
    if not created.name:
        # Some API versions answer with an empty subscription; the listing then has it.
        created = _find_usable_subscription(hub, target) or created
    return _result(created, target, already_subscribed=False)


def _subscribe_request(target: SubscriptionTarget) -> bigquery_analyticshub_v1.SubscribeListingRequest:
    destination = bigquery_analyticshub_v1.DestinationDataset(
        dataset_reference=bigquery_analyticshub_v1.DestinationDatasetReference(
            project_id=target.destination_project, dataset_id=target.destination_dataset_id
        ),
        location=target.location,
    )
    if target.friendly_name:
        destination.friendly_name = target.friendly_name  # proto-plus marshals it to a StringValue
    return bigquery_analyticshub_v1.SubscribeListingRequest(
        name=target.listing.name, destination_dataset=destination
    )


def _find_usable_subscription(
    hub: AnalyticsHubServiceClient, target: SubscriptionTarget
) -> Subscription | None:
    """The first ACTIVE (else any non-INACTIVE) subscription to the listing, across every page."""
    parent = target.subscriptions_parent
    try:
        candidates = [
            subscription
            for subscription in _all_subscriptions(hub, parent)
            if subscription.state != Subscription.State.STATE_INACTIVE
            and _is_for_listing(subscription, target.listing)
        ]
    except api_exceptions.GoogleAPIError as exc:
        raise _api_error(exc, f"listing subscriptions in {parent}") from exc
    active = [s for s in candidates if s.state == Subscription.State.STATE_ACTIVE]
    usable = active or candidates
    return usable[0] if usable else None


def _all_subscriptions(hub: AnalyticsHubServiceClient, parent: str) -> Iterator[Subscription]:
    request = bigquery_analyticshub_v1.ListSubscriptionsRequest(parent=parent)
    yield from hub.list_subscriptions(request=request, timeout=CALL_TIMEOUT_SECONDS)


def _is_for_listing(subscription: Subscription, listing: ListingResource) -> bool:
    names = {subscription.listing, *subscription.linked_dataset_map.keys()}
    names.update(resource.listing for resource in subscription.linked_resources)
    return any(listing.matches(name) for name in names if name)


def _result(
    subscription: Subscription, target: SubscriptionTarget, *, already_subscribed: bool
) -> BigQuerySubscriptionResult:
    project, dataset = _linked_dataset(subscription, target)
    return BigQuerySubscriptionResult(
        listing_resource=target.listing.name,
        linked_project=project,
        linked_dataset=dataset,
        state=_state_name(subscription.state),
        already_subscribed=already_subscribed,
        subscription_name=subscription.name,
        sample_query=sample_query(project, dataset),
    )


def _linked_dataset(subscription: Subscription, target: SubscriptionTarget) -> tuple[str, str]:
    """``(project, dataset)`` of the linked dataset Google reports, else of the requested destination."""
    for listing_name, resource in subscription.linked_dataset_map.items():
        parsed = _parse_dataset_name(resource.linked_dataset)
        if parsed and target.listing.matches(listing_name):
            return parsed
    for resource in subscription.linked_resources:
        parsed = _parse_dataset_name(resource.linked_dataset)
        if parsed and (not resource.listing or target.listing.matches(resource.listing)):
            return parsed
    reference = subscription.destination_dataset.dataset_reference
    if reference.dataset_id:
        return reference.project_id or target.destination_project, reference.dataset_id
    return target.destination_project, target.destination_dataset_id


def _parse_dataset_name(name: str) -> tuple[str, str] | None:
    """``projects/<p>/datasets/<d>`` → ``(p, d)``."""
    parts = name.split("/")
    if len(parts) == 4 and parts[0] == "projects" and parts[2] == "datasets" and parts[1] and parts[3]:
        return parts[1], parts[3]
    return None


def _state_name(state: int) -> str:
    try:
        return Subscription.State(state).name.removeprefix("STATE_")
    except ValueError:
        return str(int(state))


def _api_error(exc: api_exceptions.GoogleAPIError, action: str) -> OctogenBigQueryError:
    status = getattr(exc, "grpc_status_code", None)
    code = status.name if isinstance(status, grpc.StatusCode) else type(exc).__name__
    message = _one_line(getattr(exc, "message", None) or exc)
    hint = _HINTS.get(status) if isinstance(status, grpc.StatusCode) else None
    return OctogenBigQueryError(
        f"Analytics Hub error while {action}: {code}: {message}" + (f" ({hint})" if hint else "")
    )


def _one_line(value: object, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _local_client(endpoint: str) -> AnalyticsHubServiceClient:
    host, _, port = endpoint.rpartition(":")
    if host not in _LOOPBACK_HOSTS or not port.isdigit():
        raise OctogenBigQueryError(
            f"{ENDPOINT_ENV} must be a loopback host:port such as 127.0.0.1:50051 (testing only)"
        )
    transport = AnalyticsHubServiceGrpcTransport(channel=grpc.insecure_channel(endpoint))
    return AnalyticsHubServiceClient(transport=transport)

"""subscribe_to_listing with Google's real Analytics Hub client over gRPC against the local fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.cloud import bigquery_analyticshub_v1 as ah

from octogen_source.bigquery import (
    BigQuerySubscriptionResult,
    GoogleCredentialsMissingError,
    build_analyticshub_client,
    find_subscription,
    subscribe_to_listing,
)
from octogen_source.bigquery.subscribe import ENDPOINT_ENV
from octogen_source.errors import OctogenBigQueryAccessPendingError, OctogenBigQueryError
from tests.fake_analyticshub import FakeAnalyticsHub

LISTING = "projects/octogen-share/locations/us/dataExchanges/octogen_catalogs/listings/acme-shoes"
OTHER_LISTING = "projects/octogen-share/locations/us/dataExchanges/octogen_catalogs/listings/globex"
PROJECT = "my-proj"
DEFAULT_DATASET = "octogen_acme_shoes"


@pytest.fixture
def hub() -> Iterator[FakeAnalyticsHub]:
    with FakeAnalyticsHub() as running:
        yield running


@pytest.fixture
def client(hub: FakeAnalyticsHub) -> ah.AnalyticsHubServiceClient:
    return hub.client()


def subscribe(
    client: ah.AnalyticsHubServiceClient,
    *,
    listing_resource: str = LISTING,
    destination_dataset_id: str | None = None,
    location: str | None = None,
    friendly_name: str | None = None,
) -> BigQuerySubscriptionResult:
    return subscribe_to_listing(
        listing_resource=listing_resource,
        destination_project=PROJECT,
        destination_dataset_id=destination_dataset_id,
        location=location,
        friendly_name=friendly_name,
        client=client,
    )


def test_subscribe_creates_a_linked_dataset(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    result = subscribe(client, friendly_name="Acme shoes (Octogen)")

    [request] = hub.subscribe_requests
    destination = request.destination_dataset
    assert request.name == LISTING
    assert destination.dataset_reference.project_id == PROJECT
    assert destination.dataset_reference.dataset_id == DEFAULT_DATASET
    assert destination.location == "us"
    assert destination.friendly_name == "Acme shoes (Octogen)"
    [created] = hub.subscriptions(PROJECT, "us")
    assert result == BigQuerySubscriptionResult(
        listing_resource=LISTING,
        linked_project=PROJECT,
        linked_dataset=DEFAULT_DATASET,
        state="ACTIVE",
        already_subscribed=False,
        subscription_name=created.name,
        sample_query=f"SELECT * FROM `{PROJECT}.{DEFAULT_DATASET}.products_current_v1` LIMIT 10",
    )
    # It looked for an existing subscription where the listing lives before subscribing.
    assert [r.parent for r in hub.list_requests] == [f"projects/{PROJECT}/locations/us"]


def test_subscribe_sends_user_given_dataset_location_and_no_friendly_name(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    result = subscribe(client, destination_dataset_id="Catalog_Acme", location="US")

    [request] = hub.subscribe_requests
    assert request.destination_dataset.dataset_reference.dataset_id == "Catalog_Acme"
    assert request.destination_dataset.location == "US"
    assert "friendly_name" not in request.destination_dataset
    assert (result.linked_project, result.linked_dataset) == (PROJECT, "Catalog_Acme")


def test_rerun_returns_the_existing_subscription(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    first = subscribe(client)
    second = subscribe(client)

    assert len(hub.subscribe_requests) == 1
    assert second.already_subscribed and not first.already_subscribed
    assert second.subscription_name == first.subscription_name
    assert (second.linked_project, second.linked_dataset, second.state) == (
        PROJECT,
        DEFAULT_DATASET,
        "ACTIVE",
    )


def test_existing_subscription_is_returned_with_its_own_linked_dataset(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    hub.add_subscription(project=PROJECT, listing=OTHER_LISTING, dataset_id="unrelated")
    existing = hub.add_subscription(project=PROJECT, listing=LISTING, dataset_id="subscribed_in_console")

    result = subscribe(client)

    assert hub.subscribe_requests == []
    assert result.already_subscribed
    assert result.subscription_name == existing.name
    assert result.linked_dataset == "subscribed_in_console"
    assert result.sample_query == (
        f"SELECT * FROM `{PROJECT}.subscribed_in_console.products_current_v1` LIMIT 10"
    )


def test_existing_subscription_reported_with_project_number_counts(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    # Google names the publisher's project by number; the listing was given with the project id.
    google_spelling = "projects/987654321/locations/us/dataExchanges/octogen_catalogs/listings/acme-shoes"
    hub.add_subscription(project=PROJECT, listing=google_spelling, dataset_id="linked")

    result = subscribe(client)

    assert hub.subscribe_requests == []
    assert result.already_subscribed and result.linked_dataset == "linked"


def test_stale_subscription_counts_as_existing(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    hub.add_subscription(project=PROJECT, listing=LISTING, dataset_id="stale_one", state="STALE")

    result = subscribe(client)

    assert hub.subscribe_requests == []
    assert (result.already_subscribed, result.state, result.linked_dataset) == (True, "STALE", "stale_one")


def test_inactive_subscription_is_ignored(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    inactive = hub.add_subscription(project=PROJECT, listing=LISTING, dataset_id="revoked", state="INACTIVE")

    result = subscribe(client)

    assert len(hub.subscribe_requests) == 1
    assert not result.already_subscribed
    assert result.subscription_name != inactive.name
    assert (result.linked_dataset, result.state) == (DEFAULT_DATASET, "ACTIVE")


def test_subscription_in_another_project_does_not_count(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    hub.add_subscription(project="someone-else", listing=LISTING, dataset_id=DEFAULT_DATASET)

    result = subscribe(client)

    assert len(hub.subscribe_requests) == 1
    assert not result.already_subscribed and result.linked_project == PROJECT


def test_existing_subscription_on_page_three_is_found() -> None:
    with FakeAnalyticsHub(default_page_size=2) as paged:
        for number in range(4):
            paged.add_subscription(
                project=PROJECT, listing=f"{OTHER_LISTING}{number}", dataset_id=f"other_{number}"
            )
        existing = paged.add_subscription(project=PROJECT, listing=LISTING, dataset_id="on_page_three")
        paged.add_subscription(project=PROJECT, listing=f"{OTHER_LISTING}_last", dataset_id="other_last")

        result = subscribe(paged.client())

        assert [request.page_token for request in paged.list_requests] == ["", "2", "4"]
        assert paged.subscribe_requests == []
        assert result.already_subscribed and result.subscription_name == existing.name
        assert result.linked_dataset == "on_page_three"


def test_permission_denied_means_access_pending(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    hub.deny_listing(LISTING, "User does not have permission analyticshub.listings.subscribe")

    with pytest.raises(OctogenBigQueryAccessPendingError) as raised:
        subscribe(client)

    message = str(raised.value)
    assert "pending" in message and "retry in a few minutes" in message and "\n" not in message
    assert hub.subscriptions(PROJECT, "us") == []

    hub.grant_listing(LISTING)  # the grant propagated: the retry succeeds
    assert subscribe(client).state == "ACTIVE"


def test_already_exists_after_a_concurrent_subscribe_is_idempotent(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    concurrent: list[ah.Subscription] = []
    hub.fail_next(
        "SubscribeListing",
        grpc.StatusCode.ALREADY_EXISTS,
        "Already Exists: Dataset my-proj:octogen_acme_shoes",
        before_abort=lambda: concurrent.append(
            hub.add_subscription(project=PROJECT, listing=LISTING, dataset_id=DEFAULT_DATASET)
        ),
    )

    result = subscribe(client)

    assert result.already_subscribed
    assert result.subscription_name == concurrent[0].name
    assert result.linked_dataset == DEFAULT_DATASET
    assert len(hub.subscribe_requests) == 1 and len(hub.list_requests) == 2


def test_already_exists_for_a_dataset_of_another_listing_is_an_error(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    hub.add_subscription(project=PROJECT, listing=OTHER_LISTING, dataset_id=DEFAULT_DATASET)

    with pytest.raises(OctogenBigQueryError, match="already exists and is not linked") as raised:
        subscribe(client)

    assert not isinstance(raised.value, OctogenBigQueryAccessPendingError)


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("SubscribeListing", grpc.StatusCode.INVALID_ARGUMENT),
        ("SubscribeListing", grpc.StatusCode.UNAVAILABLE),
        ("SubscribeListing", grpc.StatusCode.INTERNAL),
        ("ListSubscriptions", grpc.StatusCode.UNAVAILABLE),
        ("ListSubscriptions", grpc.StatusCode.UNAUTHENTICATED),
        # Listing your own project's subscriptions is not the asynchronous grant: a plain error.
        ("ListSubscriptions", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_other_failures_are_one_line_bigquery_errors(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient, method: str, code: grpc.StatusCode
) -> None:
    hub.fail_next(method, code, "the service said no\nsecond line")

    with pytest.raises(OctogenBigQueryError) as raised:
        subscribe(client)

    assert type(raised.value) is OctogenBigQueryError
    message = str(raised.value)
    assert code.name in message and "the service said no second line" in message
    assert "\n" not in message
    assert hub.subscriptions(PROJECT, "us") == []


def test_invalid_listing_resource_makes_no_call(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    with pytest.raises(OctogenBigQueryError, match="dataExchanges/<exchange>/listings/<listing>"):
        subscribe(client, listing_resource="listings/acme-shoes")
    with pytest.raises(OctogenBigQueryError, match="invalid dataset id"):
        subscribe(client, destination_dataset_id="has-dash")
    assert hub.calls == []


def test_find_subscription_changes_nothing(
    hub: FakeAnalyticsHub, client: ah.AnalyticsHubServiceClient
) -> None:
    assert find_subscription(listing_resource=LISTING, destination_project=PROJECT, client=client) is None
    existing = hub.add_subscription(project=PROJECT, listing=LISTING, dataset_id="linked")

    found = find_subscription(listing_resource=LISTING, destination_project=PROJECT, client=client)

    assert found is not None and found.subscription_name == existing.name and found.already_subscribed
    assert hub.subscribe_requests == []


def test_endpoint_environment_variable_targets_the_fake(
    hub: FakeAnalyticsHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, hub.address)

    result = subscribe_to_listing(listing_resource=LISTING, destination_project=PROJECT)

    assert result.linked_dataset == DEFAULT_DATASET and len(hub.subscribe_requests) == 1


def test_endpoint_environment_variable_accepts_only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, "analyticshub.example.com:443")
    with pytest.raises(OctogenBigQueryError, match="loopback"):
        build_analyticshub_client()


def test_missing_google_credentials_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    # A missing explicit credentials file makes google.auth fail at once (no metadata-server probe).
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    monkeypatch.setenv("OCTO_API_KEY", "octo_live_must_not_be_used")

    with pytest.raises(GoogleCredentialsMissingError) as raised:
        subscribe_to_listing(listing_resource=LISTING, destination_project=PROJECT)

    message = str(raised.value)
    assert "gcloud auth application-default login" in message and "\n" not in message
    assert "octo_live" not in message

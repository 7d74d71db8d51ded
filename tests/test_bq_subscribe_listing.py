"""Listing resource parsing, dataset id defaults and argument validation (no Google calls)."""

from __future__ import annotations

import pytest

from octogen_source.bigquery.listing import (
    LISTING_RESOURCE_FORM,
    ListingResource,
    default_dataset_id,
    parse_listing_resource,
    resolve_target,
)
from octogen_source.errors import OctogenBigQueryError, OctogenError

LISTING = "projects/octogen-share/locations/us/dataExchanges/octogen_catalogs/listings/acme_shoes"


def test_parse_listing_resource_splits_every_part() -> None:
    assert parse_listing_resource(f"  {LISTING}\n") == ListingResource(
        project="octogen-share", location="us", data_exchange="octogen_catalogs", listing_id="acme_shoes"
    )
    assert parse_listing_resource(LISTING).name == LISTING


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "acme_shoes",
        "projects/octogen-share/locations/us/dataExchanges/octogen_catalogs",
        "projects/octogen-share/locations/us/dataExchanges/octogen_catalogs/listings/",
        "projects/octogen-share/locations/us/dataExchanges/octogen_catalogs/listings/a/b",
        "projects/octogen-share/locations/us/exchanges/octogen_catalogs/listings/acme",
        "projects/octo share/locations/us/dataExchanges/x/listings/acme",
        "https://console.cloud.google.com/bigquery/analytics-hub/listings/acme",
    ],
)
def test_invalid_listing_resource_names_the_expected_form(bad: str) -> None:
    with pytest.raises(OctogenBigQueryError) as raised:
        parse_listing_resource(bad)
    message = str(raised.value)
    assert LISTING_RESOURCE_FORM in message
    assert "\n" not in message
    assert isinstance(raised.value, OctogenError)


@pytest.mark.parametrize(
    ("listing_id", "expected"),
    [
        ("acme_shoes", "octogen_acme_shoes"),
        ("Acme-Shoes", "octogen_acme_shoes"),
        ("acme.shoes--eu", "octogen_acme_shoes_eu"),
        ("Ünïcode-ID", "octogen_n_code_id"),
        ("---", "octogen_listing"),
    ],
)
def test_default_dataset_id_is_bigquery_safe(listing_id: str, expected: str) -> None:
    assert default_dataset_id(listing_id) == expected


def test_default_dataset_id_is_capped_at_1024_characters() -> None:
    dataset_id = default_dataset_id("x" * 2000)
    assert len(dataset_id) == 1024
    assert dataset_id.startswith("octogen_xxx")


def test_resolve_target_fills_in_defaults() -> None:
    target = resolve_target(
        listing_resource="projects/p/locations/europe-west1/dataExchanges/ex/listings/Acme-Shoes",
        destination_project="my-proj",
    )
    assert target.destination_dataset_id == "octogen_acme_shoes"
    assert target.location == "europe-west1"
    assert target.friendly_name is None
    assert target.subscriptions_parent == "projects/my-proj/locations/europe-west1"


def test_resolve_target_keeps_valid_user_values() -> None:
    target = resolve_target(
        listing_resource=LISTING,
        destination_project="my-proj",
        destination_dataset_id="Octogen_Acme_2",
        location="US",
        friendly_name="Acme shoes",
    )
    assert (target.destination_dataset_id, target.location, target.friendly_name) == (
        "Octogen_Acme_2",
        "US",
        "Acme shoes",
    )
    # Subscriptions are listed where the listing lives, whatever the dataset location is spelled as.
    assert target.subscriptions_parent == "projects/my-proj/locations/us"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"destination_dataset_id": "acme-shoes"}, "invalid dataset id"),
        ({"destination_dataset_id": ""}, "invalid dataset id"),
        ({"destination_dataset_id": "a" * 1025}, "invalid dataset id"),
        ({"destination_project": "projects/my-proj"}, "invalid destination project"),
        ({"destination_project": ""}, "invalid destination project"),
        ({"location": "us central"}, "invalid location"),
    ],
)
def test_resolve_target_rejects_bad_values(overrides: dict[str, str], fragment: str) -> None:
    arguments = {"listing_resource": LISTING, "destination_project": "my-proj", **overrides}
    with pytest.raises(OctogenBigQueryError, match=fragment):
        resolve_target(**arguments)


def test_listing_matches_google_spelling_with_project_number_and_upper_case_location() -> None:
    listing = parse_listing_resource(LISTING)
    assert listing.matches("projects/123456/locations/US/dataExchanges/octogen_catalogs/listings/acme_shoes")
    assert not listing.matches(
        "projects/other-proj/locations/us/dataExchanges/octogen_catalogs/listings/acme_shoes"
    )
    assert not listing.matches(
        "projects/123456/locations/eu/dataExchanges/octogen_catalogs/listings/acme_shoes"
    )
    assert not listing.matches(
        "projects/octogen-share/locations/us/dataExchanges/octogen_catalogs/listings/acme"
    )
    assert not listing.matches("")

"""Analytics Hub listing resources and the subscription target derived from them.

Pure parsing and validation (no Google calls): the listing resource name, the destination project, the
linked dataset id (default ``octogen_<listing-id>``, made BigQuery-safe) and the dataset location
(default: the listing's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from octogen_source.errors import OctogenBigQueryError

LISTING_RESOURCE_FORM = "projects/<project>/locations/<location>/dataExchanges/<exchange>/listings/<listing>"

# Segments are ids (letters, digits, '_', '-', '.', ':' for domain-scoped projects); never '/' or spaces.
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9_.:-]*"
_LISTING_RESOURCE = re.compile(
    rf"projects/(?P<project>{_SEGMENT})/locations/(?P<location>{_SEGMENT})"
    rf"/dataExchanges/(?P<exchange>{_SEGMENT})/listings/(?P<listing>{_SEGMENT})"
)
_PROJECT_ID = re.compile(_SEGMENT)
_LOCATION = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_DATASET_ID = re.compile(r"[A-Za-z0-9_]+")
_NOT_DATASET_CHARS = re.compile(r"[^a-z0-9_]+")
MAX_DATASET_ID_LENGTH = 1024
DEFAULT_DATASET_PREFIX = "octogen_"


@dataclass(frozen=True)
class ListingResource:
    """A parsed listing resource name."""

    project: str
    location: str
    data_exchange: str
    listing_id: str

    @property
    def name(self) -> str:
        return (
            f"projects/{self.project}/locations/{self.location}"
            f"/dataExchanges/{self.data_exchange}/listings/{self.listing_id}"
        )

    def matches(self, other_name: str) -> bool:
        """Whether ``other_name`` names this listing.

        Google reports listings with the publisher's project *number* and may spell the location in
        another case (``projects/123/locations/US/...``) while the listing was given with the project *id*,
        so a numeric project on either side is accepted when location, exchange and listing ids agree.
        """
        other = _LISTING_RESOURCE.fullmatch(other_name.strip())
        if other is None:
            return False
        same_project = (
            other["project"] == self.project or other["project"].isdigit() or self.project.isdigit()
        )
        return (
            same_project
            and other["location"].lower() == self.location.lower()
            and other["exchange"] == self.data_exchange
            and other["listing"] == self.listing_id
        )


@dataclass(frozen=True)
class SubscriptionTarget:
    """Everything a subscribe call needs, validated and with defaults filled in."""

    listing: ListingResource
    destination_project: str
    destination_dataset_id: str
    location: str
    friendly_name: str | None

    @property
    def subscriptions_parent(self) -> str:
        """Where subscriptions to this listing live in the destination project (the listing's location)."""
        return f"projects/{self.destination_project}/locations/{self.listing.location}"


def parse_listing_resource(resource: str) -> ListingResource:
    """Parse ``projects/<p>/locations/<loc>/dataExchanges/<ex>/listings/<id>``; raise if malformed."""
    match = _LISTING_RESOURCE.fullmatch(resource.strip()) if isinstance(resource, str) else None
    if match is None:
        raise OctogenBigQueryError(
            f"invalid listing resource {_shown(resource)}: expected {LISTING_RESOURCE_FORM}"
        )
    return ListingResource(
        project=match["project"],
        location=match["location"],
        data_exchange=match["exchange"],
        listing_id=match["listing"],
    )


def default_dataset_id(listing_id: str) -> str:
    """``octogen_<listing-id>``, lowercased, runs of other characters replaced by ``_``, ≤ 1024 chars."""
    safe = _NOT_DATASET_CHARS.sub("_", listing_id.lower()).strip("_") or "listing"
    return (DEFAULT_DATASET_PREFIX + safe)[:MAX_DATASET_ID_LENGTH]


def validate_dataset_id(dataset_id: str) -> str:
    """Return ``dataset_id`` if BigQuery accepts it (letters, digits, underscores, ≤ 1024 chars)."""
    if (
        not isinstance(dataset_id, str)
        or len(dataset_id) > MAX_DATASET_ID_LENGTH
        or not _DATASET_ID.fullmatch(dataset_id)
    ):
        raise OctogenBigQueryError(
            f"invalid dataset id {_shown(dataset_id)}: use only letters, digits and underscores "
            f"(at most {MAX_DATASET_ID_LENGTH} characters)"
        )
    return dataset_id


def validate_project(project: str) -> str:
    """Return the destination project id if it looks like one (``my-proj``, not ``projects/my-proj``)."""
    if not isinstance(project, str) or not _PROJECT_ID.fullmatch(project):
        raise OctogenBigQueryError(
            f"invalid destination project {_shown(project)}: give the project id, e.g. my-gcp-project"
        )
    return project


def validate_location(location: str) -> str:
    if not isinstance(location, str) or not _LOCATION.fullmatch(location):
        raise OctogenBigQueryError(
            f"invalid location {_shown(location)}: give a BigQuery location such as US, EU or us-central1"
        )
    return location


def resolve_target(
    *,
    listing_resource: str,
    destination_project: str,
    destination_dataset_id: str | None = None,
    location: str | None = None,
    friendly_name: str | None = None,
) -> SubscriptionTarget:
    """Validate the arguments of a subscribe and fill in the defaults."""
    listing = parse_listing_resource(listing_resource)
    return SubscriptionTarget(
        listing=listing,
        destination_project=validate_project(destination_project),
        destination_dataset_id=(
            default_dataset_id(listing.listing_id)
            if destination_dataset_id is None
            else validate_dataset_id(destination_dataset_id)
        ),
        location=listing.location if location is None else validate_location(location),
        friendly_name=friendly_name or None,
    )


def _shown(value: object) -> str:
    """A bad value quoted for an error message, kept to one short line."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."

"""One unattended autosubscribe pass over the vendor's control plane.

List the listings, list the subscribers, register the configured reader (project + principal) if it is
missing, subscribe every cell of the reader that is ``awaiting_subscription`` and ask the control plane to
refresh the status of each one subscribed. Dry-run unless ``apply`` is set: it then only says what it would
do and calls no mutating tool and no Analytics Hub method.

Every step is idempotent (listing and refreshing change nothing by themselves, registration is keyed by
project + principal on the control plane, and subscribing returns an existing usable subscription), so
overlapping runs from cron do no harm.

How a reader's cell maps to an action (``CatalogAction``). A tool-level error for the catalog and the
reader-level rows (not registered, disabled) win over the cell; a failure status wins over a reason code,
which wins over the plain status:

==============================================  ==================  =========================================
cell                                            action              why
==============================================  ==================  =========================================
status ``refresh_failed``, ``access_grant_      ``error``           the control plane reports a failure that
failed`` (any ``*failed`` status)                                   needs a human; exit code 1
reason ``catalog_not_enabled``, ``scope_        ``skipped``         intentional on the vendor's side: nothing
revoked``                                                           to do, not an error
``active``                                      ``already_active``  linked dataset seen
``source_stale``                                ``already_active``  linked dataset seen; Octogen's export is
                                                                    behind (detail says "stale")
``preparing``                                   ``pending``         the grant is under way; a later pass acts
``awaiting_subscription``, dry-run              ``would_subscribe``
``awaiting_subscription``, apply                ``subscribed`` /    ``already_subscribed`` when the project
                                                ``already_          already had a usable subscription; then
                                                subscribed``        the status is refreshed
... subscribe refused (permission denied)       ``pending``         the grant has not propagated yet
... subscribe or refresh failed                 ``error``
``removing``                                    ``skipped``         subscriber disabled, teardown under way
unknown status                                  ``skipped``         left alone (detail names the status)
reader disabled (any cell)                      ``skipped``         nothing is subscribed for it
reader not registered yet (dry-run)             ``skipped``         ``--apply`` registers it
reader registered this pass, no cell yet        ``pending``         the control plane prepares the grant
no cell, catalog offered                        ``skipped``         not offered to this reader
catalog asked for but unknown, or a tool-level  ``error``
error for it
==============================================  ==================  =========================================
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from octogen_source.bigquery.control_plane import (
    AccessTokenProvider,
    ControlPlaneClient,
    ControlPlaneError,
    ControlPlaneToolError,
    ListingResource,
    Registration,
    StatusRefresh,
    SubscribersView,
    SubscriptionCell,
    suggested_dataset_id,
)
from octogen_source.bigquery.subscribe import (
    AnalyticsHubServiceClient,
    BigQuerySubscriptionResult,
    build_analyticshub_client,
    subscribe_to_listing,
)
from octogen_source.errors import OctogenBigQueryAccessPendingError, OctogenError


class CatalogAction(StrEnum):
    ALREADY_ACTIVE = "already_active"
    ALREADY_SUBSCRIBED = "already_subscribed"
    SUBSCRIBED = "subscribed"
    WOULD_SUBSCRIBE = "would_subscribe"
    PENDING = "pending"
    SKIPPED = "skipped"
    ERROR = "error"


class ReaderRegistration(StrEnum):
    EXISTING = "existing"
    REGISTERED = "registered"
    WOULD_REGISTER = "would_register"


ACTIVE = "active"
SOURCE_STALE = "source_stale"
PREPARING = "preparing"
AWAITING_SUBSCRIPTION = "awaiting_subscription"
REMOVING = "removing"
DISABLED = "disabled"

INTENTIONAL_REASONS = {
    "catalog_not_enabled": "catalog not enabled for BigQuery sharing",
    "scope_revoked": "the reader's access scope was revoked",
}


class ControlPlane(Protocol):
    """What the pass needs from the control plane (:class:`ControlPlaneClient` provides it)."""

    async def list_listing_resources(
        self, catalogs: Sequence[str] | None = None
    ) -> list[ListingResource]: ...

    async def list_subscribers(self) -> SubscribersView: ...

    async def register_subscriber(
        self,
        *,
        project_id: str,
        principal: str,
        share_schema: str | None = None,
        schema_version: str | int | None = None,
    ) -> Registration: ...

    async def refresh_subscription_status(
        self,
        *,
        catalog_key: str,
        subscriber_principal: str,
        share_schema: str | None = None,
        schema_version: str | int | None = None,
    ) -> StatusRefresh: ...


SubscribeFunction = Callable[..., BigQuerySubscriptionResult]
"""Called like :func:`subscribe_to_listing` with keyword arguments ``listing_resource``,
``destination_project``, ``destination_dataset_id``, ``location`` and ``friendly_name`` (run in a worker
thread)."""


@dataclass(frozen=True)
class AutosubscribeOptions:
    project: str
    principal: str
    catalogs: tuple[str, ...] = ()
    apply: bool = False
    friendly_name: str | None = None  # display name of the linked datasets created


@dataclass(frozen=True)
class CatalogOutcome:
    """What the pass did (or would do) for one catalog."""

    catalog_key: str
    status: str | None  # the reader's cell status as the control plane reported it; None without a cell
    action: CatalogAction
    detail: str
    reason_code: str | None = None
    listing_resource: str | None = None
    linked_dataset: str | None = None  # "project.dataset"
    subscription_name: str | None = None
    sample_query: str | None = None
    refreshed_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog_key,
            "status": self.status,
            "reason_code": self.reason_code,
            "action": self.action.value,
            "detail": self.detail,
            "listing_resource": self.listing_resource,
            "linked_dataset": self.linked_dataset,
            "subscription_name": self.subscription_name,
            "sample_query": self.sample_query,
            "refreshed_status": self.refreshed_status,
        }


@dataclass
class AutosubscribeReport:
    project: str
    principal: str
    applied: bool
    registration: ReaderRegistration
    subscriber_id: str | None = None
    reader_state: str | None = None  # the reader's desiredState
    catalogs: list[CatalogOutcome] = field(default_factory=list)

    @property
    def errors(self) -> list[CatalogOutcome]:
        return [outcome for outcome in self.catalogs if outcome.action is CatalogAction.ERROR]

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.errors,
            "mode": "apply" if self.applied else "dry_run",
            "project": self.project,
            "principal": self.principal,
            "reader": {
                "registration": self.registration.value,
                "subscriber_id": self.subscriber_id,
                "desired_state": self.reader_state,
            },
            "catalogs": [outcome.to_dict() for outcome in self.catalogs],
        }


async def run_autosubscribe_pass(
    control_plane: ControlPlane,
    options: AutosubscribeOptions,
    *,
    subscribe: SubscribeFunction = subscribe_to_listing,
) -> AutosubscribeReport:
    """One pass; returns the report. Pass-wide failures (listing subscribers, registering) raise
    :class:`ControlPlaneError`; everything about one catalog lands in its :class:`CatalogOutcome`."""
    wanted = _unique(options.catalogs)
    listings, listing_errors = await _load_listings(control_plane, wanted)
    view = await control_plane.list_subscribers()
    reader = next(
        (
            subscriber
            for subscriber in view.subscribers
            if subscriber.subscriber_project_id == options.project
            and subscriber.subscriber_principal == options.principal
        ),
        None,
    )
    report = AutosubscribeReport(
        project=options.project,
        principal=options.principal,
        applied=options.apply,
        registration=ReaderRegistration.EXISTING,
    )
    cells: list[SubscriptionCell] = []
    if reader is None and not options.apply:
        report.registration = ReaderRegistration.WOULD_REGISTER
    elif reader is None:
        registration = await control_plane.register_subscriber(
            project_id=options.project, principal=options.principal
        )
        report.registration = ReaderRegistration.REGISTERED
        reader = registration.subscriber
        cells = list(registration.cells)
    else:
        cells = [cell for cell in view.cells if cell.subscriber_id == reader.subscriber_id]
    if reader is not None:
        report.subscriber_id = reader.subscriber_id
        report.reader_state = reader.desired_state

    cells_by_catalog = {cell.catalog_key: cell for cell in cells}
    catalog_keys = list(wanted) or sorted({*listings, *listing_errors, *cells_by_catalog})
    pass_ = _Pass(control_plane, options, subscribe, report)
    for catalog_key in catalog_keys:
        outcome = await pass_.outcome(
            catalog_key,
            cell=cells_by_catalog.get(catalog_key),
            listing=listings.get(catalog_key),
            listing_error=listing_errors.get(catalog_key),
        )
        report.catalogs.append(outcome)
    return report


async def _load_listings(
    control_plane: ControlPlane, wanted: Sequence[str]
) -> tuple[dict[str, ListingResource], dict[str, str]]:
    """Listings by catalog key, and per-catalog tool errors when a catalog filter was given.

    Without a filter a tool-level error is pass-wide and raises. With one, a failing call is retried per
    catalog so the error lands on the catalog it belongs to and the others still proceed.
    """
    try:
        found = await control_plane.list_listing_resources(list(wanted) or None)
        return {listing.catalog_key: listing for listing in found}, {}
    except ControlPlaneToolError:
        if not wanted:
            raise
    listings: dict[str, ListingResource] = {}
    errors: dict[str, str] = {}
    for catalog_key in wanted:
        try:
            for listing in await control_plane.list_listing_resources([catalog_key]):
                listings[listing.catalog_key] = listing
        except ControlPlaneToolError as exc:
            errors[catalog_key] = str(exc)
    return listings, errors


@dataclass
class _Pass:
    control_plane: ControlPlane
    options: AutosubscribeOptions
    subscribe: SubscribeFunction
    report: AutosubscribeReport

    async def outcome(
        self,
        catalog_key: str,
        *,
        cell: SubscriptionCell | None,
        listing: ListingResource | None,
        listing_error: str | None,
    ) -> CatalogOutcome:
        def outcome(action: CatalogAction, detail: str, **extra: Any) -> CatalogOutcome:
            return CatalogOutcome(
                catalog_key=catalog_key,
                status=cell.status if cell else None,
                reason_code=cell.reason_code if cell else None,
                action=action,
                detail=detail,
                listing_resource=(cell.listing_resource if cell else None)
                or (listing.listing_resource if listing else None),
                **extra,
            )

        if listing_error is not None:
            return outcome(CatalogAction.ERROR, listing_error)
        registration = self.report.registration
        if registration is ReaderRegistration.WOULD_REGISTER:
            return outcome(CatalogAction.SKIPPED, "reader not registered yet; --apply registers it")
        if (self.report.reader_state or "").lower() == DISABLED:
            if cell is not None and cell.status == REMOVING:
                return outcome(CatalogAction.SKIPPED, "reader disabled; teardown under way")
            return outcome(CatalogAction.SKIPPED, "reader disabled; nothing subscribed")
        if cell is None:
            if registration is ReaderRegistration.REGISTERED:
                return outcome(
                    CatalogAction.PENDING, "reader registered; the control plane is preparing access"
                )
            if listing is None:
                return outcome(CatalogAction.ERROR, "catalog not offered by the control plane")
            return outcome(CatalogAction.SKIPPED, "no subscription for this reader on the control plane")

        status = (cell.status or "").lower()
        reason = cell.reason_code
        if status.endswith("failed"):
            return outcome(
                CatalogAction.ERROR,
                f"control plane reports {cell.status}" + (f" ({reason})" if reason else ""),
            )
        if reason in INTENTIONAL_REASONS:
            return outcome(CatalogAction.SKIPPED, f"{INTENTIONAL_REASONS[reason]} ({reason})")
        if status in (ACTIVE, SOURCE_STALE):
            dataset = suggested_dataset_id(cell.linked_dataset_suggestion)
            linked = f"{self.options.project}.{dataset}" if dataset else None
            state = "active" if status == ACTIVE else "stale: Octogen's export is behind (source_stale)"
            return outcome(
                CatalogAction.ALREADY_ACTIVE,
                f"linked dataset {linked} {state}" if linked else f"linked dataset {state}",
                linked_dataset=linked,
            )
        if status == PREPARING:
            return outcome(CatalogAction.PENDING, "access being granted; a later pass subscribes")
        if status == REMOVING:
            return outcome(CatalogAction.SKIPPED, "teardown under way")
        if status == AWAITING_SUBSCRIPTION:
            return await self._subscribe(catalog_key, cell, listing, outcome)
        return outcome(CatalogAction.SKIPPED, f"unrecognised status {cell.status!r}; left alone")

    async def _subscribe(
        self,
        catalog_key: str,
        cell: SubscriptionCell,
        listing: ListingResource | None,
        outcome: Callable[..., CatalogOutcome],
    ) -> CatalogOutcome:
        listing_resource = cell.listing_resource or (listing.listing_resource if listing else None)
        if not listing_resource:
            return outcome(CatalogAction.ERROR, "no listing resource published for this catalog")
        location = cell.location or (listing.location if listing else None)
        dataset = suggested_dataset_id(cell.linked_dataset_suggestion) or suggested_dataset_id(
            listing.linked_dataset_suggestion if listing else None
        )
        project = self.options.project
        if not self.options.apply:
            target = f"{project}.{dataset}" if dataset else f"{project} (default dataset id)"
            return outcome(CatalogAction.WOULD_SUBSCRIBE, f"would link {listing_resource} as {target}")
        try:
            result = await asyncio.to_thread(
                self.subscribe,
                listing_resource=listing_resource,
                destination_project=project,
                destination_dataset_id=dataset,
                location=location,
                friendly_name=self.options.friendly_name,
            )
        except OctogenBigQueryAccessPendingError:
            return outcome(
                CatalogAction.PENDING, "subscribe refused (permission denied): access still pending"
            )
        except OctogenError as exc:
            return outcome(CatalogAction.ERROR, str(exc))

        linked = f"{result.linked_project}.{result.linked_dataset}"
        action = CatalogAction.ALREADY_SUBSCRIBED if result.already_subscribed else CatalogAction.SUBSCRIBED
        subscribed = {
            "linked_dataset": linked,
            "subscription_name": result.subscription_name,
            "sample_query": result.sample_query,
        }
        try:
            refreshed = await self.control_plane.refresh_subscription_status(
                catalog_key=catalog_key,
                subscriber_principal=self.options.principal,
                share_schema=cell.share_schema,
                schema_version=cell.schema_version,
            )
        except ControlPlaneError as exc:
            return outcome(
                CatalogAction.ERROR, f"linked as {linked}, but the status refresh failed: {exc}", **subscribed
            )
        return outcome(
            action,
            f"linked as {linked}; control plane status: {refreshed.status or 'unknown'}",
            refreshed_status=refreshed.status,
            **subscribed,
        )


class SharedAnalyticsHubSubscriber:
    """``subscribe_to_listing`` with one Analytics Hub client for the whole pass, built on first use.

    Dry-runs and passes with nothing to subscribe never build it, so they need no Google credentials.
    """

    def __init__(
        self, build_client: Callable[[], AnalyticsHubServiceClient] = build_analyticshub_client
    ) -> None:
        self._build_client = build_client
        self._client: AnalyticsHubServiceClient | None = None
        self._build_error: OctogenError | None = None
        self._lock = threading.Lock()

    def __call__(self, **arguments: Any) -> BigQuerySubscriptionResult:
        return subscribe_to_listing(client=self._shared_client(), **arguments)

    def _shared_client(self) -> AnalyticsHubServiceClient:
        with self._lock:
            if self._build_error is not None:
                raise self._build_error
            if self._client is None:
                try:
                    self._client = self._build_client()
                except OctogenError as exc:
                    self._build_error = exc
                    raise
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.transport.close()
                self._client = None


def autosubscribe(
    options: AutosubscribeOptions,
    *,
    control_plane_url: str,
    access_token: str | AccessTokenProvider,
    subscribe: SubscribeFunction | None = None,
) -> AutosubscribeReport:
    """Run one pass against the control plane at ``control_plane_url`` (blocking; for cron and Airflow)."""
    return asyncio.run(
        _autosubscribe(
            options, control_plane_url=control_plane_url, access_token=access_token, subscribe=subscribe
        )
    )


async def _autosubscribe(
    options: AutosubscribeOptions,
    *,
    control_plane_url: str,
    access_token: str | AccessTokenProvider,
    subscribe: SubscribeFunction | None,
) -> AutosubscribeReport:
    shared: SharedAnalyticsHubSubscriber | None = None
    if subscribe is None:
        subscribe = shared = SharedAnalyticsHubSubscriber()
    try:
        async with ControlPlaneClient(control_plane_url, access_token) as control_plane:
            return await run_autosubscribe_pass(control_plane, options, subscribe=subscribe)
    finally:
        if shared is not None:
            shared.close()


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value.strip() for value in values if value.strip()))

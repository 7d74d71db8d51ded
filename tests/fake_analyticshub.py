"""A local fake of Google's Analytics Hub gRPC service, for tests with Google's real client.

The server is a real ``grpc.server`` on 127.0.0.1 serving ``google.cloud.bigquery.analyticshub.v1.
AnalyticsHubService`` with the client library's own message classes for (de)serialisation, so
``AnalyticsHubServiceClient`` talks to it over its real gRPC transport (no mock of the client).

Implemented: ListSubscriptions (server-side paging, ``default_page_size`` when the request has none) and
SubscribeListing (creates an ACTIVE subscription and its linked dataset; ALREADY_EXISTS when the
destination dataset is taken; PERMISSION_DENIED for listings marked with :meth:`deny_listing`). Scripted
failures: :meth:`fail_next`. Every call is recorded in :attr:`calls`.

    with FakeAnalyticsHub() as hub:
        client = hub.client()                     # or env OCTOGEN_ANALYTICSHUB_ENDPOINT=hub.address
        hub.add_subscription(project="p", listing=LISTING, dataset_id="d", state="INACTIVE")
        hub.fail_next("SubscribeListing", grpc.StatusCode.UNAVAILABLE)
        ...
        hub.subscribe_requests                    # what the client sent
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.cloud import bigquery_analyticshub_v1 as ah
from google.cloud.bigquery_analyticshub_v1.services.analytics_hub_service.transports import (
    AnalyticsHubServiceGrpcTransport,
)

SERVICE = "google.cloud.bigquery.analyticshub.v1.AnalyticsHubService"


@dataclass(frozen=True)
class RecordedCall:
    method: str
    request: Any  # the proto-plus request message as the server received it


@dataclass
class _ScriptedFailure:
    code: grpc.StatusCode
    message: str
    before_abort: Callable[[], None] | None


class FakeAnalyticsHub:
    """A scripted Analytics Hub on 127.0.0.1: start()/stop() (or ``with``), then ``address``/``client()``."""

    def __init__(self, *, default_page_size: int = 50) -> None:
        self.default_page_size = default_page_size
        self.calls: list[RecordedCall] = []
        self._subscriptions: dict[str, list[ah.Subscription]] = {}  # parent → subscriptions, in order
        self._denied_listings: dict[str, str] = {}
        self._failures: dict[str, deque[_ScriptedFailure]] = {}
        self._counter = 0
        self._lock = threading.RLock()
        self._server: grpc.Server | None = None
        self._clients: list[ah.AnalyticsHubServiceClient] = []
        self.port = 0

    # lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> FakeAnalyticsHub:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers((self._handler(),))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        for client in self._clients:
            client.transport.close()
        self._clients.clear()
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    def __enter__(self) -> FakeAnalyticsHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> ah.AnalyticsHubServiceClient:
        """Google's real client on an insecure channel to this fake (closed by :meth:`stop`)."""
        transport = AnalyticsHubServiceGrpcTransport(channel=grpc.insecure_channel(self.address))
        client = ah.AnalyticsHubServiceClient(transport=transport)
        self._clients.append(client)
        return client

    # state and scripting ---------------------------------------------------------------------------------
    def add_subscription(
        self,
        *,
        project: str,
        listing: str,
        dataset_id: str | None = None,
        state: str = "ACTIVE",
        location: str | None = None,
    ) -> ah.Subscription:
        """Add a subscription of ``project`` to ``listing`` (state ACTIVE, STALE, INACTIVE, UNSPECIFIED).

        It is filed under the listing's location; its linked dataset is ``dataset_id`` (default
        ``linked_<n>``) in ``location`` (default: the listing's).
        """
        with self._lock:
            subscription = self._new_subscription(
                project=project,
                listing=listing,
                dataset_id=dataset_id or f"linked_{self._counter + 1}",
                location=location,
                state=getattr(ah.Subscription.State, f"STATE_{state}"),
            )
            self._subscriptions.setdefault(self._parent(project, listing), []).append(subscription)
            return subscription

    def subscriptions(self, project: str, location: str) -> list[ah.Subscription]:
        with self._lock:
            return list(self._subscriptions.get(f"projects/{project}/locations/{location}", []))

    def deny_listing(self, listing: str, message: str = "Permission denied on listing") -> None:
        """SubscribeListing on ``listing`` aborts with PERMISSION_DENIED until :meth:`grant_listing`."""
        with self._lock:
            self._denied_listings[listing] = message

    def grant_listing(self, listing: str) -> None:
        with self._lock:
            self._denied_listings.pop(listing, None)

    def fail_next(
        self,
        method: str,
        code: grpc.StatusCode,
        message: str = "scripted failure",
        *,
        count: int = 1,
        before_abort: Callable[[], None] | None = None,
    ) -> None:
        """The next ``count`` calls of ``method`` (e.g. "SubscribeListing") abort with ``code``.

        ``before_abort`` runs first (e.g. to add the subscription a concurrent run created).
        """
        with self._lock:
            queue = self._failures.setdefault(method, deque())
            queue.extend(_ScriptedFailure(code, message, before_abort) for _ in range(count))

    def calls_of(self, method: str) -> list[Any]:
        with self._lock:
            return [call.request for call in self.calls if call.method == method]

    @property
    def subscribe_requests(self) -> list[ah.SubscribeListingRequest]:
        return self.calls_of("SubscribeListing")

    @property
    def list_requests(self) -> list[ah.ListSubscriptionsRequest]:
        return self.calls_of("ListSubscriptions")

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    # service ---------------------------------------------------------------------------------------------
    def _handler(self) -> grpc.GenericRpcHandler:
        methods: dict[str, tuple[Callable[[Any, grpc.ServicerContext], Any], Any, Any]] = {
            "ListSubscriptions": (
                self._list_subscriptions,
                ah.ListSubscriptionsRequest,
                ah.ListSubscriptionsResponse,
            ),
            "SubscribeListing": (
                self._subscribe_listing,
                ah.SubscribeListingRequest,
                ah.SubscribeListingResponse,
            ),
        }
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                name: grpc.unary_unary_rpc_method_handler(
                    self._recorded(name, function),
                    request_deserializer=request_type.deserialize,
                    response_serializer=response_type.serialize,
                )
                for name, (function, request_type, response_type) in methods.items()
            },
        )

    def _recorded(
        self, method: str, function: Callable[[Any, grpc.ServicerContext], Any]
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                self.calls.append(RecordedCall(method, request))
                queue = self._failures.get(method)
                failure = queue.popleft() if queue else None
            if failure is not None:
                if failure.before_abort is not None:
                    failure.before_abort()
                context.abort(failure.code, failure.message)
            return function(request, context)

        return handle

    def _list_subscriptions(
        self, request: ah.ListSubscriptionsRequest, context: grpc.ServicerContext
    ) -> ah.ListSubscriptionsResponse:
        with self._lock:
            everything = list(self._subscriptions.get(request.parent, []))
        start = int(request.page_token or 0)
        size = request.page_size or self.default_page_size
        end = start + size
        return ah.ListSubscriptionsResponse(
            subscriptions=everything[start:end],
            next_page_token=str(end) if end < len(everything) else "",
        )

    def _subscribe_listing(
        self, request: ah.SubscribeListingRequest, context: grpc.ServicerContext
    ) -> ah.SubscribeListingResponse:
        destination = request.destination_dataset
        reference = destination.dataset_reference
        if (
            not request.name
            or not reference.project_id
            or not reference.dataset_id
            or not destination.location
        ):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name and destination dataset are required")
        with self._lock:
            if request.name in self._denied_listings:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, self._denied_listings[request.name])
            taken = {
                (
                    s.destination_dataset.dataset_reference.project_id,
                    s.destination_dataset.dataset_reference.dataset_id,
                )
                for subscriptions in self._subscriptions.values()
                for s in subscriptions
                if s.state != ah.Subscription.State.STATE_INACTIVE
            }
            if (reference.project_id, reference.dataset_id) in taken:
                context.abort(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"Already Exists: Dataset {reference.project_id}:{reference.dataset_id}",
                )
            subscription = self._new_subscription(
                project=reference.project_id,
                listing=request.name,
                dataset_id=reference.dataset_id,
                location=destination.location,
                state=ah.Subscription.State.STATE_ACTIVE,
                friendly_name=destination.friendly_name or None,
            )
            self._subscriptions.setdefault(self._parent(reference.project_id, request.name), []).append(
                subscription
            )
        return ah.SubscribeListingResponse(subscription=subscription)

    def _new_subscription(
        self,
        *,
        project: str,
        listing: str,
        dataset_id: str,
        location: str | None,
        state: int,
        friendly_name: str | None = None,
    ) -> ah.Subscription:
        self._counter += 1
        listing_location = _listing_location(listing)
        linked = f"projects/{project}/datasets/{dataset_id}"
        destination = ah.DestinationDataset(
            dataset_reference=ah.DestinationDatasetReference(project_id=project, dataset_id=dataset_id),
            location=location or listing_location,
        )
        if friendly_name:
            destination.friendly_name = friendly_name
        active = state == ah.Subscription.State.STATE_ACTIVE
        return ah.Subscription(
            name=f"projects/{project}/locations/{listing_location}/subscriptions/sub{self._counter}",
            listing=listing,
            state=state,
            # Like Google: linked resources are only reported for ACTIVE subscriptions.
            linked_dataset_map={listing: ah.Subscription.LinkedResource(linked_dataset=linked)}
            if active
            else {},
            linked_resources=[ah.Subscription.LinkedResource(linked_dataset=linked, listing=listing)]
            if active
            else [],
            destination_dataset=destination,
        )

    @staticmethod
    def _parent(project: str, listing: str) -> str:
        return f"projects/{project}/locations/{_listing_location(listing)}"


def _listing_location(listing: str) -> str:
    parts = listing.split("/")
    return parts[3] if len(parts) > 3 and parts[2] == "locations" else "us"

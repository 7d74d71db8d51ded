"""The walk: every granted catalog searched page by page, concurrently, turned into rows of the four tables.

One walk per run, on one client (so a 429 pauses everything through the client's shared gate):

1. take the catalogs to walk from the settings; with none configured, ask ``GET /catalogs`` (seed-era APIs
   only: the current API retired catalog enumeration, and the run then stops saying how to name catalogs);
2. per catalog, at most ``max_concurrent_catalogs`` at a time: read the loaded versions of its products (and
   its stored ``catalogs`` row) from the destination, then stream its pages. Each hit is compared with the
   loaded version by uuid (fingerprint of the whole hit, updatedAt included): unchanged hits end there; new
   and changed ones become ``products`` and ``price_history`` rows and, with details on, are looked up
   (bounded, concurrently with the next page's search). A lookup answering 404 means the product went away
   since the search: its row is marked removed. After its walk, a catalog's ``catalogs`` row: what the API
   said of it in this run (display name from hits or lookups, the number of products a complete unfiltered
   walk listed), the loaded row for the rest.
3. once every catalog is walked, the live products a catalog's complete, unfiltered walk did not list (and
   no other catalog listed: a product may move) are read back from the destination and re-emitted with
   ``removed_at`` set (the merge keeps their last state).

A product is emitted at most once per run, whichever catalogs list it: the ``products`` merge inserts the
rows it is given without de-duplicating them again.

Memory holds the loaded-version index of the catalogs being walked, the uuids listed so far and a few pages
per catalog, never a catalog's records.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, aclosing, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pyarrow as pa

from octogen_source.bounded_body import MAX_TEXT_CHARS
from octogen_source.client import OctogenClient
from octogen_source.errors import (
    OctogenConfigurationError,
    OctogenEndpointRetiredError,
    OctogenError,
    OctogenNotFoundError,
)
from octogen_source.models import WireSearchPage
from octogen_source.source.details import DetailFetcher
from octogen_source.source.guards import mass_removal, names_other_catalog
from octogen_source.source.known_versions import KnownVersions, Verdict
from octogen_source.source.records import (
    Row,
    catalog_row,
    detail_row,
    hit_fingerprint,
    price_row,
    removed_row,
    stable_product_row,
    wire_timestamp,
)
from octogen_source.source.report import CatalogReport, WalkObserver
from octogen_source.source.settings import SourceSettings
from octogen_source.source.typed_fields import stable_hit
from octogen_source.source.uuid_index import UuidSet

PAGES_IN_FLIGHT = 2
"""Pages of one catalog whose lookups may run while the next page is being searched."""
REMOVAL_CHUNK = 500
"""Removed products read back from the destination per query."""
BATCH_ROWS = 2_000
"""Rows (all tables together) gathered before a batch is handed to dlt. Each hand-over costs dlt a few
milliseconds per table resource (it computes each table's schema hints anew), so pages are grouped; but the
rows of today's hits take ≈ 6 KiB of Python objects per product until dlt has written them, so a batch
stays small (≈ 6 MiB) for memory to stay flat whatever the catalog's size."""


def _settle(future: asyncio.Future[Any]) -> None:
    """Cancels ``future`` if it is still running, or takes its error: a walk that failed before it needed
    the result leaves no error that nobody retrieved."""
    if not future.done():
        future.cancel()
    elif not future.cancelled():
        future.exception()


class UnknownCatalogError(OctogenError):
    """A catalog asked for is not granted to the key (or does not exist)."""


class CatalogsRequiredError(OctogenConfigurationError):
    """No catalogs are configured and the API can no longer list them."""


DISCOVER_HINT = "find catalog keys with `octogen-sync --discover <store URL or host>`"
CATALOGS_REQUIRED = (
    "no catalogs configured, and this Octogen API no longer lists them (GET /catalogs was retired on"
    " 2026-07-09): name them with --catalog KEY, SOURCES__OCTOGEN__CATALOGS or [sources.octogen] catalogs"
    f" in .dlt/config.toml; {DISCOVER_HINT}"
)


@dataclass(slots=True)
class WalkBatch:
    """Rows for the tables, handed from the walk to the table resources."""

    catalogs: list[Row] = field(default_factory=list)
    products: list[Row] = field(default_factory=list)
    details: list[Row] = field(default_factory=list)
    prices: list[Row] = field(default_factory=list)
    high_water: datetime | None = None
    """The newest updatedAt the walk of this batch's catalog has seen so far."""
    product_table: pa.Table | None = None
    """``products`` converted to arrow while the batch waited for a load (then ``products`` is empty)."""
    price_table: pa.Table | None = None
    """``prices`` converted likewise."""

    @property
    def rows(self) -> int:
        return self.python_rows + sum(table.num_rows for table in self.tables)

    @property
    def python_rows(self) -> int:
        """The rows still held as Python objects (not converted to arrow)."""
        return len(self.catalogs) + len(self.products) + len(self.details) + len(self.prices)

    @property
    def tables(self) -> list[pa.Table]:
        """The rows converted to arrow."""
        return [table for table in (self.product_table, self.price_table) if table is not None]

    def extend(self, other: WalkBatch) -> None:
        """Adds ``other``'s rows (batches are grouped by the walk, before any is converted)."""
        self.catalogs += other.catalogs
        self.products += other.products
        self.details += other.details
        self.prices += other.prices
        if other.high_water is not None and (self.high_water is None or other.high_water > self.high_water):
            self.high_water = other.high_water


class LoadedState(Protocol):
    """What the destination holds (blocking calls, run in a thread)."""

    def known_versions(self, catalog: str, *, details: bool) -> KnownVersions: ...

    def stored_products(self, uuids: Sequence[str]) -> list[Row]: ...

    def stored_catalog(self, catalog: str) -> Row | None: ...


BATCH_SECONDS = 1.0
"""How long rows wait in a catalog's batch at most: a walk that finds few rows (an incremental's changed
products, a page in a hundred) emits what it has after a second instead of holding it until the batch is
full, so that its rows reach the loads while it goes on (:mod:`octogen_source.source.segments`)."""


Emit = Callable[[WalkBatch], Awaitable[None]]


class _BatchBuffer:
    """Groups a catalog's batches into batches of about ``batch_rows`` rows, held no longer than
    :data:`BATCH_SECONDS`."""

    def __init__(self, emit: Emit, batch_rows: int) -> None:
        self._emit = emit
        self._batch_rows = batch_rows
        self._batch = WalkBatch()
        self._first_row_at: float | None = None

    async def add(self, batch: WalkBatch) -> None:
        self._batch.extend(batch)
        rows = self._batch.rows
        if rows and self._first_row_at is None:
            self._first_row_at = time.monotonic()
        if rows >= self._batch_rows or (
            self._first_row_at is not None and time.monotonic() - self._first_row_at >= BATCH_SECONDS
        ):
            await self.flush()

    async def flush(self) -> None:
        self._first_row_at = None
        if self._batch.rows or self._batch.high_water is not None:
            batch, self._batch = self._batch, WalkBatch()
            await self._emit(batch)


@dataclass(slots=True)
class _CatalogFacts:
    """What the API said of one catalog during this run."""

    listed: dict[str, object] = field(default_factory=dict)
    """Its GET /catalogs entry as a ``catalogs`` row (seed-era APIs, when the run listed the catalogs)."""
    display_name: str | None = None
    source_base_url: str | None = None

    def learn(self, record: dict[str, object]) -> None:
        """Take the catalog's display name and source URL from a hit or a lookup response (wire names)."""
        if self.display_name is None and isinstance(record.get("catalogDisplayName"), str):
            self.display_name = record["catalogDisplayName"]  # type: ignore[assignment]
        if self.source_base_url is None and isinstance(record.get("sourceBaseUrl"), str):
            self.source_base_url = record["sourceBaseUrl"]  # type: ignore[assignment]


@dataclass(slots=True)
class _Change:
    """A new or changed product of a page."""

    verdict: Verdict
    row: Row
    product_url: str | None
    gone: bool = False
    """Its lookup answered 404: removed since the search."""
    refused: bool = False
    """Its lookup answered for another catalog: nothing of it is written in this run."""


@dataclass(slots=True)
class _Unlisted:
    """The live products a catalog's complete walk did not list (none after a filtered walk), and the
    catalog's stored row: its removals and its row wait until every catalog of the run has been walked."""

    report: CatalogReport
    uuids: list[str]
    stored: Row | None


@dataclass
class _PagePlan:
    """A page's new and changed products, before their lookups."""

    report: CatalogReport
    changes: list[_Change]
    high_water: datetime | None


class CatalogWalk:
    """One run's walk; iterate :meth:`batches` inside the event loop that will run it."""

    def __init__(
        self,
        settings: SourceSettings,
        loaded: LoadedState,
        observer: WalkObserver,
        *,
        batch_rows: int | None = None,
    ) -> None:
        """``batch_rows``: the rows (all tables together) of a catalog gathered before a batch is emitted
        (:data:`BATCH_ROWS` unless given)."""
        self._settings = settings
        self._batch_rows = BATCH_ROWS if batch_rows is None else batch_rows
        self._loaded = loaded
        self._observer = observer
        self._observed_at = datetime.now(UTC)
        self._listed = UuidSet()
        """Every uuid a walk of this run listed: a product is emitted once per run (the ``products`` merge
        relies on it), and a product listed by one catalog is not marked removed by another."""
        self._facts: dict[str, _CatalogFacts] = {}

    async def batches(self) -> AsyncGenerator[WalkBatch, None]:
        settings = self._settings
        async with AsyncExitStack() as clients:
            client = await clients.enter_async_context(self._client(settings.max_concurrent_catalogs))
            walked = await self._catalogs_to_walk(client)
            fetcher: DetailFetcher | None = None
            if settings.details:
                # the lookups have connections of their own (one search per catalog walked uses the
                # other client's): no search waits behind lookups for one, and httpcore (where a proxy is
                # set) looks at every pooled connection on each request (docs/performance.md, nineteenth
                # round)
                lookups = await clients.enter_async_context(self._client(settings.max_concurrent_lookups))
                fetcher = DetailFetcher(lookups, settings.max_concurrent_lookups)
            async for batch in self._walk_catalogs(client, fetcher, walked):
                yield batch

    def _client(self, max_connections: int) -> OctogenClient:
        settings = self._settings
        return OctogenClient(
            api_key=settings.api_key,
            base_url=settings.base_url,
            retry=settings.retry,
            max_connections=max_connections,
            max_response_bytes=settings.max_response_bytes,
            max_text_chars=MAX_TEXT_CHARS,
        )

    async def _catalogs_to_walk(self, client: OctogenClient) -> list[str]:
        """The configured catalogs; with none, every catalog ``GET /catalogs`` lists (seed-era APIs)."""
        if self._settings.catalogs is not None:
            return list(dict.fromkeys(self._settings.catalogs))
        with client.track(self._observer.overhead):
            try:
                granted = await client.list_catalogs()
            except OctogenEndpointRetiredError:
                raise CatalogsRequiredError(CATALOGS_REQUIRED) from None
        walked: list[str] = []
        for summary in granted:
            if summary.catalog:
                walked.append(summary.catalog)
                self._facts_of(summary.catalog).listed = catalog_row(
                    summary.model_dump(by_alias=True, mode="json")
                )
        return walked

    def _facts_of(self, catalog: str) -> _CatalogFacts:
        return self._facts.setdefault(catalog, _CatalogFacts())

    async def _walk_catalogs(
        self, client: OctogenClient, fetcher: DetailFetcher | None, catalogs: list[str]
    ) -> AsyncIterator[WalkBatch]:
        """Walks ``catalogs`` concurrently (bounded) and yields their batches as they come."""
        outbox: asyncio.Queue[WalkBatch | BaseException | _Unlisted] = asyncio.Queue(
            maxsize=self._settings.max_concurrent_catalogs
        )
        slots = asyncio.Semaphore(self._settings.max_concurrent_catalogs)

        async def walk(catalog: str) -> None:
            try:
                async with slots:
                    unlisted = await self._walk_catalog(client, fetcher, catalog, outbox.put)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await outbox.put(error)
            else:
                await outbox.put(unlisted)

        tasks = [asyncio.ensure_future(walk(catalog)) for catalog in catalogs]
        running = len(tasks)
        removals: list[_Unlisted] = []
        try:
            while running:
                item = await outbox.get()
                if isinstance(item, _Unlisted):
                    running -= 1
                    removals.append(item)
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        # after every walk: a product another catalog lists now moved there, it was not removed
        for unlisted in removals:
            async for batch in self._removed(unlisted):
                yield batch
            report = unlisted.report
            row = self._catalog_row(report.catalog, report, self._facts_of(report.catalog), unlisted.stored)
            yield WalkBatch(catalogs=[row])

    async def _walk_catalog(
        self, client: OctogenClient, fetcher: DetailFetcher | None, catalog: str, emit: Emit
    ) -> _Unlisted:
        """Walks ``catalog`` and emits its products' rows; returns the live products the walk did not list
        (none after a filtered walk), to be marked removed, and the catalog's row, once every catalog has been
        walked."""
        settings = self._settings
        report = self._observer.start(catalog)
        facts = self._facts_of(catalog)
        buffer = _BatchBuffer(emit, self._batch_rows)
        with client.track(report.http), fetcher.track(report.http) if fetcher else nullcontext():
            # the first page is asked for while the loaded versions are read: the read of a large catalog
            # takes as long as a few pages, and every page of a walk waits for the one before it
            reading = asyncio.ensure_future(asyncio.to_thread(self._read_loaded, catalog))
            known: KnownVersions | None = None
            stored: Row | None = None
            in_flight: deque[asyncio.Future[WalkBatch]] = deque()
            try:
                pages = client.iter_wire_search_pages(
                    catalogs=[catalog], limit=settings.page_size, **settings.filters.as_search_arguments()
                )
                async with aclosing(pages):  # cancels the next page's request if the walk stops here
                    async for page in pages:
                        if known is None:
                            known, stored = await reading
                            report.expected = known.live()
                        plan = self._plan_page(page, known, report, facts)
                        in_flight.append(asyncio.ensure_future(self._complete_page(plan, fetcher, facts)))
                        while len(in_flight) > PAGES_IN_FLIGHT:
                            await buffer.add(await in_flight.popleft())
                while in_flight:
                    await buffer.add(await in_flight.popleft())
                if known is None:  # no page at all
                    known, stored = await reading
            except OctogenNotFoundError as error:
                raise UnknownCatalogError(
                    f"unknown catalog {catalog!r}: this API key cannot see it ({error.status_code}"
                    f" {error.detail}); {DISCOVER_HINT}"
                ) from None
            finally:
                for pending in in_flight:
                    pending.cancel()
                _settle(reading)
            report.complete = True
            unlisted = [] if settings.filters.is_filtered else known.unseen_live()
            await buffer.flush()
        report.finished = time.monotonic()
        self._observer.progress(report)
        return _Unlisted(report, unlisted, stored)

    def _read_loaded(self, catalog: str) -> tuple[KnownVersions, Row | None]:
        """The catalog's loaded versions and its stored ``catalogs`` row, both read before its walk. The row
        cannot change during the run (only the run's end writes catalog rows); read after the last page, it
        waited for the next segment's extract, behind the load of the segment before (docs/performance.md,
        eighteenth round)."""
        known = self._loaded.known_versions(catalog, details=self._settings.details)
        return known, self._loaded.stored_catalog(catalog)

    def _sweep(self, unlisted: _Unlisted) -> list[str]:
        """The live products a complete unfiltered walk did not list and no other catalog's walk listed,
        unless the mass-removal guard stops the sweep (then none, and the report says why). Products another
        catalog listed moved there: they are neither removed nor counted against the guard."""
        report = unlisted.report
        gone = [uuid for uuid in unlisted.uuids if uuid not in self._listed]
        if not gone or self._settings.allow_mass_removal:
            return gone
        last_count = (unlisted.stored or {}).get("product_count")
        reason = mass_removal(
            unlisted=len(gone),
            moved=len(unlisted.uuids) - len(gone),
            listed=report.listed,
            new=report.new,
            last_complete_count=last_count if isinstance(last_count, int) else None,
            max_share=self._settings.max_removal_share,
        )
        if reason is None:
            return gone
        report.removal_skipped, report.would_remove = reason, len(gone)
        return []

    def _catalog_row(
        self, catalog: str, report: CatalogReport, facts: _CatalogFacts, stored: Row | None
    ) -> Row:
        """The catalog's row: what this run learned over what was loaded before (a merge replaces the row).
        ``product_count`` is what the last complete, unfiltered walk whose sweep ran listed (the guard
        compares the next walks with it); a seed-era API's own count (GET /catalogs) only when none is
        stored."""
        row: Row = {**(stored or {}), **facts.listed, "catalog": catalog}
        if facts.display_name is not None:
            row["display_name"] = facts.display_name
        if facts.source_base_url is not None:
            row["source_base_url"] = facts.source_base_url
        if report.complete and not self._settings.filters.is_filtered and report.removal_skipped is None:
            row["product_count"] = report.listed
        elif isinstance((stored or {}).get("product_count"), int):
            row["product_count"] = (stored or {})["product_count"]
        return row

    def _plan_page(
        self, page: WireSearchPage, known: KnownVersions, report: CatalogReport, facts: _CatalogFacts
    ) -> _PagePlan:
        hits: list[tuple[dict[str, Any], str]] = []
        for hit in page["items"]:
            uuid = hit.get("uuid")
            if not isinstance(uuid, str):
                continue  # cannot be keyed, merged or compared; the API always sends one
            if names_other_catalog(hit, report.catalog):
                report.other_catalog += 1
                continue
            hits.append((hit, uuid))
        # listed twice: by two catalogs, or on two pages of one walk (the current API repeats a product
        # across pages); loaded once
        first_listings = self._listed.add_all([uuid for _, uuid in hits])
        listed: list[tuple[dict[str, Any], str, dict[str, Any], int]] = []
        for (hit, uuid), first in zip(hits, first_listings, strict=True):
            report.walked += 1
            if not first:
                report.repeated += 1
                continue
            report.listed += 1
            if facts.display_name is None:
                facts.learn(hit)
            report.see_updated_at(wire_timestamp(hit.get("updatedAt")))
            stable = stable_hit(hit)
            listed.append((hit, uuid, stable, hit_fingerprint(stable)))
        verdicts = known.classify_all(
            [uuid for _, uuid, _, _ in listed],
            [fingerprint for _, _, _, fingerprint in listed],
            [hit.get("images") is not None for hit, _, _, _ in listed],
        )
        changes: list[_Change] = []
        for (hit, _, stable, fingerprint), verdict in zip(listed, verdicts, strict=True):
            if (
                verdict in (Verdict.UNCHANGED, Verdict.REWRITE, Verdict.UNDETAILED)
                and self._settings.refetch_all
            ):
                verdict = Verdict.CHANGED
            if verdict is Verdict.UNCHANGED:
                report.unchanged += 1
                continue
            row = stable_product_row(stable, catalog=report.catalog, fingerprint=fingerprint)
            product_url = hit.get("productUrl")
            changes.append(_Change(verdict, row, product_url if isinstance(product_url, str) else None))
        report.pages += 1
        return _PagePlan(report, changes, report.high_water)

    async def _complete_page(
        self, plan: _PagePlan, fetcher: DetailFetcher | None, facts: _CatalogFacts
    ) -> WalkBatch:
        """The page's rows: products, prices and (looked up) details; a product gone by its lookup is
        marked removed."""
        report = plan.report
        batch = WalkBatch(high_water=plan.high_water)
        if fetcher is not None:
            looked_up = [
                change
                for change in plan.changes
                if change.product_url and change.verdict is not Verdict.REWRITE
            ]
            report.lookups += len(looked_up)
            outcomes = await fetcher.fetch(
                [(change.product_url, change.row["uuid"]) for change in looked_up if change.product_url]
            )
            for change, outcome in zip(looked_up, outcomes, strict=True):
                if outcome.gone:
                    change.gone = True
                elif outcome.response is not None and names_other_catalog(outcome.response, report.catalog):
                    # not written, its product row neither: the next run looks it up again
                    report.other_catalog += 1
                    change.refused = True
                elif outcome.response is not None:
                    facts.learn(outcome.response)
                    batch.details.append(
                        detail_row(outcome.response, uuid=change.row["uuid"], catalog=report.catalog)
                    )
                else:
                    report.lookup_mismatches += 1
        for change in plan.changes:
            if change.refused:
                continue
            # a product gone by its lookup keeps the version its search showed, as its history does
            batch.prices.append(price_row(change.row, report.catalog, self._observed_at))
            if change.gone:
                batch.products.append(removed_row(change.row, datetime.now(UTC)))
                report.removed += 1
                report.listed -= 1  # listed by the search, gone by its lookup
                continue
            batch.products.append(change.row)
            if change.verdict is Verdict.NEW:
                report.new += 1
            elif change.verdict is Verdict.CHANGED:
                report.changed += 1
            else:
                # the same data written again: in the flat layout, or with the details it never had
                report.unchanged += 1
        self._observer.progress(report)
        return batch

    async def _removed(self, unlisted: _Unlisted) -> AsyncIterator[WalkBatch]:
        """The loaded rows of the products a complete unfiltered walk did not list (and no other catalog's
        walk listed), re-emitted with ``removed_at`` set, unless the mass-removal guard stops the sweep."""
        report = unlisted.report
        uuids = self._sweep(unlisted)
        if report.removal_skipped is not None:
            self._observer.progress(report)
        removed_at = datetime.now(UTC)
        for start in range(0, len(uuids), REMOVAL_CHUNK):
            chunk = uuids[start : start + REMOVAL_CHUNK]
            rows = await asyncio.to_thread(self._loaded.stored_products, chunk)
            if rows:
                report.removed += len(rows)
                yield WalkBatch(products=[removed_row(row, removed_at) for row in rows])
        if uuids:
            report.finished = time.monotonic()
            self._observer.progress(report)

"""Detail lookups: the full record of each new or changed product, fetched concurrently within a bound.

Lookups are sent with ``resolutionMode: index_only``: the API then answers only from its index, so a product
that left it answers 404 (and is marked removed) instead of being scraped on demand from the merchant's page
(``source: on_demand``, no uuid), which would keep a vanished product alive and store a scraped page as its
details. An on-demand answer from an API that ignores the mode (a seed-era one) is treated the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

from octogen_source.client import OctogenClient, RequestStats
from octogen_source.errors import OctogenNotFoundError

INDEX_ONLY: Final = "index_only"
INDEXED_SOURCE = "indexed"


@dataclass(frozen=True, slots=True)
class LookupOutcome:
    """The lookup of one product: its indexed record (wire JSON); ``gone`` when the index no longer has the
    URL; neither when the index answered with another product (its uuid differs from the hit's)."""

    product_url: str
    response: dict[str, Any] | None
    gone: bool = False


class DetailFetcher:
    """Looks products up through one client; at most ``max_concurrent`` lookups in flight across callers."""

    def __init__(self, client: OctogenClient, max_concurrent: int) -> None:
        self._client = client
        self._slots = asyncio.Semaphore(max_concurrent)

    def track(self, stats: RequestStats) -> AbstractContextManager[RequestStats]:
        """Also count into ``stats`` the lookups made in this context (:meth:`OctogenClient.track`)."""
        return self._client.track(stats)

    async def fetch(self, products: Sequence[tuple[str, str]]) -> list[LookupOutcome]:
        """One outcome per (product URL, uuid), in order. A 404 is an outcome (the product was removed since
        the search); any other error fails the whole batch and cancels the lookups still running."""
        tasks = [asyncio.ensure_future(self._lookup(url, uuid)) for url, uuid in products]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            # gather leaves the other lookups running: stop them before the error travels on
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _lookup(self, product_url: str, uuid: str) -> LookupOutcome:
        async with self._slots:
            try:
                response = await self._client.lookup_product_wire(product_url, resolution_mode=INDEX_ONLY)
            except OctogenNotFoundError:
                return LookupOutcome(product_url, None, gone=True)
        if not _is_indexed(response):
            return LookupOutcome(product_url, None, gone=True)
        product = response.get("product")
        if isinstance(product, dict) and product.get("uuid") not in (None, uuid):
            return LookupOutcome(product_url, None)
        return LookupOutcome(product_url, response)


def _is_indexed(response: dict[str, Any]) -> bool:
    """An answer from the index: ``source`` indexed (absent on seed-era APIs) and a product with a uuid."""
    source = response.get("source", INDEXED_SOURCE)
    product = response.get("product")
    return source == INDEXED_SOURCE and isinstance(product, dict) and product.get("uuid") is not None

"""Detail lookups: the full record of each new or changed product, fetched concurrently within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from octogen_source.client import OctogenClient
from octogen_source.errors import OctogenNotFoundError


@dataclass(frozen=True, slots=True)
class LookupOutcome:
    """The lookup of one product: its response (wire JSON), or ``None`` when the API no longer knows it."""

    product_url: str
    response: dict[str, Any] | None


class DetailFetcher:
    """Looks products up through one client; at most ``max_concurrent`` lookups in flight across callers."""

    def __init__(self, client: OctogenClient, max_concurrent: int) -> None:
        self._client = client
        self._slots = asyncio.Semaphore(max_concurrent)

    async def fetch(self, product_urls: Sequence[str]) -> list[LookupOutcome]:
        """One outcome per URL, in order. A 404 is an outcome (the product was removed since the search);
        any other error fails the whole batch and cancels the lookups still running."""
        tasks = [asyncio.ensure_future(self._lookup(url)) for url in product_urls]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            # gather leaves the other lookups running: stop them before the error travels on
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _lookup(self, product_url: str) -> LookupOutcome:
        async with self._slots:
            try:
                response = await self._client.lookup_product(product_url)
            except OctogenNotFoundError:
                return LookupOutcome(product_url, None)
        return LookupOutcome(product_url, response.model_dump(by_alias=True, mode="json"))

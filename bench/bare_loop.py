"""The physical limit for one client: the search walk with plain httpx, decoding the JSON, nothing else.

With ``lookups`` > 0 it also looks up every product it finds (at most ``lookups`` at a time, the pages of one
catalog looked up while its next pages are searched): the limit for a sync with details on. With
``look_up_only`` it looks up only those products (by uuid): the requests any incremental sync must make after
they changed, and nothing else.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import httpx

PAGES_IN_FLIGHT = 2


@dataclass
class WalkTotals:
    products: int = 0
    requests: int = 0


class _Walker:
    def __init__(
        self, client: httpx.AsyncClient, page_size: int, lookups: int, look_up_only: Collection[str] | None
    ) -> None:
        self._client = client
        self._page_size = page_size
        self._lookup_slots = asyncio.Semaphore(max(lookups, 1))
        self._look_up = lookups > 0
        self._look_up_only = look_up_only
        self._looked_up: set[str] = set()
        self.totals = WalkTotals()

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self._client.post(path, json=body)
        response.raise_for_status()
        self.totals.requests += 1
        return response.json()

    async def _lookup(self, url: str) -> None:
        async with self._lookup_slots:
            await self._post("products/lookup", {"url": url, "resolutionMode": "index_only"})

    async def walk_catalog(self, catalog: str) -> None:
        cursor: str | None = None
        in_flight: deque[asyncio.Future[list[None]]] = deque()
        while True:
            body: dict[str, Any] = {"catalogs": [catalog], "limit": self._page_size}
            if cursor is not None:
                body["cursor"] = cursor
            page = await self._post("products/search", body)
            self.totals.products += len(page["items"])
            if self._look_up:
                wanted = self._look_up_only
                # a product repeated across pages (current API) is looked up once, as the sync does
                fresh = [item for item in page["items"] if item["uuid"] not in self._looked_up]
                self._looked_up.update(item["uuid"] for item in fresh)
                lookups = [
                    self._lookup(item["productUrl"])
                    for item in fresh
                    if wanted is None or item["uuid"] in wanted
                ]
                in_flight.append(asyncio.gather(*lookups))
                while len(in_flight) > PAGES_IN_FLIGHT:
                    await in_flight.popleft()
            cursor = page.get("nextCursor")
            if cursor is None:
                break
        while in_flight:
            await in_flight.popleft()


async def walk_all(
    base_url: str,
    api_key: str,
    catalogs: list[str],
    *,
    page_size: int,
    concurrency: int,
    lookups: int = 0,
    look_up_only: Collection[str] | None = None,
) -> WalkTotals:
    """Walks every catalog to its end, at most ``concurrency`` catalogs at a time."""
    gate = asyncio.Semaphore(concurrency)
    connections = concurrency + lookups
    async with httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        headers={"Authorization": f"Bearer {api_key}"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=60.0,
    ) as client:
        walker = _Walker(client, page_size, lookups, look_up_only)

        async def bounded(catalog: str) -> None:
            async with gate:
                await walker.walk_catalog(catalog)

        await asyncio.gather(*(bounded(catalog) for catalog in catalogs))
    return walker.totals

"""The physical limit for one client: the search walk with plain httpx, decoding the JSON, nothing else."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx


@dataclass
class WalkTotals:
    products: int = 0
    requests: int = 0


async def _walk_catalog(client: httpx.AsyncClient, catalog: str, page_size: int, totals: WalkTotals) -> None:
    cursor: str | None = None
    while True:
        body: dict[str, object] = {"catalog": catalog, "limit": page_size}
        if cursor is not None:
            body["cursor"] = cursor
        response = await client.post("/products/search", json=body)
        response.raise_for_status()
        page = response.json()
        totals.requests += 1
        totals.products += len(page["items"])
        cursor = page.get("nextCursor")
        if cursor is None:
            return


async def walk_all(
    base_url: str, api_key: str, catalogs: list[str], *, page_size: int, concurrency: int
) -> WalkTotals:
    """Walks every catalog to its end, at most `concurrency` catalogs at a time."""
    totals = WalkTotals()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=max(concurrency, 1), max_keepalive_connections=max(concurrency, 1))
    async with httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        headers={"Authorization": f"Bearer {api_key}"},
        limits=limits,
        timeout=60.0,
    ) as client:

        async def bounded(catalog: str) -> None:
            async with gate:
                await _walk_catalog(client, catalog, page_size, totals)

        await asyncio.gather(*(bounded(catalog) for catalog in catalogs))
    return totals

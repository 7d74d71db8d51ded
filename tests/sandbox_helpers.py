"""Helpers the sandbox tests share: plain-httpx requests to the sandbox (not the project's client)."""

from __future__ import annotations

from typing import Any

import httpx

from octogen_source.sandbox import Sandbox


def api_client(sandbox: Sandbox, key: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.base_url, headers={"Authorization": f"Bearer {key or sandbox.api_key}"}, timeout=10
    )


def search(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/products/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def walk(client: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    """Every hit of a search, following the cursor with the same filters until a page has none (the
    current API leaves ``nextCursor`` out of its last page, the seed era sends null)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = search(client, **filters, **({"cursor": cursor} if cursor else {}))
        items.extend(page["items"])
        cursor = page.get("nextCursor")
        if cursor is None:
            return items


def by_uuid(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    mapped = {item["uuid"]: item for item in items}
    assert len(mapped) == len(items), "duplicate uuids"
    return mapped

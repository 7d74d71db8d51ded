"""Helpers the client tests share: the wire dump of a model, and a small two-generation fake of the API."""

from __future__ import annotations

import json
import uuid as uuid_module
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from tests.scripted_server import loopback_app

Generation = Literal["current", "seed"]

# the request fields of POST /products/search in the current API (it refuses any other, 422)
CURRENT_SEARCH_FIELDS = frozenset(
    {"q", "understand", "facets", "exclude_facets", "price_min", "price_max", "catalogs", "limit", "cursor"}
)


def wire(model: BaseModel) -> dict[str, Any]:
    """The record as the API sent it."""
    return model.model_dump(by_alias=True, mode="json", exclude_unset=True)


@dataclass
class Scripted:
    """A reply sent instead of the fake's own answer (for errors and odd bodies)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeApi:
    """The search, lookup, /catalogs, /me and /domains endpoints in either API generation.

    Search scopes as each generation does: the current API takes ``catalogs`` and refuses unknown fields
    (``catalog`` included) with 422; the seed era takes ``catalog`` and ignores unknown fields, so a
    ``catalogs`` it is sent searches every catalog. The current API's last page has no ``nextCursor``; its
    pages carry ``requestId`` and ``effectiveQuery`` and every answer an ``x-request-id`` header.
    """

    generation: Generation = "current"
    hits: list[dict[str, Any]] = field(default_factory=list)
    lookup: dict[str, Any] = field(default_factory=dict)
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    script: deque[Scripted] = field(default_factory=deque)
    seen: list[tuple[str, str, Any]] = field(default_factory=list)
    base_url: str = ""

    def bodies(self, path: str = "/v1/products/search") -> list[Any]:
        return [body for _, seen_path, body in self.seen if seen_path == path]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.seen.append((request.method, request.path, body))
        request_id = str(uuid_module.uuid4())
        headers = {"x-request-id": request_id} if self.generation == "current" else {}
        if self.script:
            reply = self.script.popleft()
            return _json(reply.status, reply.body, {**headers, **reply.headers})
        status, answer = self._answer(request.method, request.path.removeprefix("/v1"), body, request_id)
        return _json(status, answer, headers)

    def _answer(self, method: str, path: str, body: Any, request_id: str) -> tuple[int, Any]:
        current = self.generation == "current"
        if path == "/products/search":
            return self._search(body, request_id)
        if path == "/products/lookup":
            return 200, self.lookup
        if path == "/catalogs" and not current:
            keys = sorted({hit["catalogKey"] for hit in self.hits})
            return 200, [{"catalog": key, "displayName": key.title(), "productCount": 1} for key in keys]
        if path == "/me" and current:
            return 200, ME
        if path.startswith("/domains/") and current:
            host = path.removeprefix("/domains/")
            if host in self.domains:
                return 200, self.domains[host]
            return 404, {"detail": "domain_not_covered"}
        return 404, {"detail": "Not Found"}

    def _search(self, body: dict[str, Any], request_id: str) -> tuple[int, Any]:
        if self.generation == "current":
            extra = sorted(set(body) - CURRENT_SEARCH_FIELDS)
            if extra:
                return 422, {
                    "detail": [
                        {
                            "type": "extra_forbidden",
                            "loc": ["body", name],
                            "msg": "Extra inputs are not permitted",
                            "input": body[name],
                        }
                        for name in extra
                    ]
                }
            scope = body.get("catalogs")
        else:
            scope = [body["catalog"]] if body.get("catalog") else None
        hits = [hit for hit in self.hits if scope is None or hit["catalogKey"] in scope]
        start = int(body.get("cursor") or 0)
        limit = int(body.get("limit", 50))
        page: dict[str, Any] = {"items": hits[start : start + limit]}
        more = start + limit < len(hits)
        if self.generation == "seed":
            page["nextCursor"] = str(start + limit) if more else None
            return 200, page
        if more:
            page["nextCursor"] = str(start + limit)
        page["requestId"] = request_id
        page["effectiveQuery"] = {"text": body.get("q") or "", "understood": False, "catalogs": scope}
        return 200, page


def _json(status: int, body: Any, headers: dict[str, str]) -> web.Response:
    text = body if isinstance(body, bytes) else json.dumps(body).encode()
    return web.Response(status=status, body=text, headers={"Content-Type": "application/json", **headers})


@asynccontextmanager
async def serving(api: FakeApi) -> AsyncIterator[FakeApi]:
    """Serve ``api`` on 127.0.0.1 in the running event loop; ``api.base_url`` ends in ``/v1``."""
    async with loopback_app(api.handle) as base_url:
        api.base_url = base_url
        yield api


def current_hit(catalog: str, index: int) -> dict[str, Any]:
    """A search hit in the current API's shape (fields per the vendor's MerchantProductListItem)."""
    url = f"https://www.{catalog}.example/products/linen-dress-{index}"
    image = {
        "url": f"https://cdn.{catalog}.example/{index}/1.jpg",
        "cdnUrl": f"https://images.octogen.ai/{catalog}/{index}/1.webp",
        "width": 1600,
        "height": 2000,
        "sizeBytes": 182_331,
        "mimeType": "image/webp",
    }
    return {
        "uuid": f"00000000-0000-4000-8000-{index:012d}",
        "productUrl": url,
        "title": f"Linen Midi Dress {index}",
        "brand": {
            "name": "Reformation",
            "slug": "reformation",
            "url": "https://www.thereformation.com",
            "description": "Sustainable women's clothing.",
        },
        "currentPrice": 148.0,
        "originalPrice": 218.0,
        "currency": "USD",
        "imageUrl": image["cdnUrl"],
        "primaryImage": image,
        "images": [image, {"url": f"https://cdn.{catalog}.example/{index}/2.jpg"}],
        "rating": {"average": 4.6, "count": 212},
        "isActive": True,
        "inStock": True,
        "colors": ["Ivory", "Black"],
        "sizes": ["XS", "S", "M"],
        "gender": "female",
        "categoryPath": ["Apparel", "Dresses", "Midi Dresses"],
        "catalogKey": catalog,
        "catalogDisplayName": catalog.title(),
        "rawScore": 12.73,
        "displayMatchScore": 87,
        "updatedAt": "2026-08-14T09:12:44Z",
    }


def seed_hit(catalog: str, index: int) -> dict[str, Any]:
    """The same hit in the seed era's shape (the client guide's MerchantProductListItem)."""
    hit = current_hit(catalog, index)
    return {
        "uuid": hit["uuid"],
        "productUrl": hit["productUrl"],
        "title": hit["title"],
        "brand": "Reformation",
        "currentPrice": 148.0,
        "originalPrice": 218.0,
        "imageUrl": hit["images"][0]["url"],
        "images": [image["url"] for image in hit["images"]],
        "rating": 4.6,
        "isActive": True,
        "updatedAt": hit["updatedAt"],
        # not in the seed era's hits, but the fake scopes by it (the seed API ignores extra fields anyway)
        "catalogKey": catalog,
    }


ME = {
    "principal": "api_key",
    "organization": {
        "id": "6f1c1d8e-2b0e-4f7a-9d59-0c1f3c2a9b11",
        "name": "Northwind Analytics",
        "slug": "northwind-analytics",
        "type": "catalog_partner",
    },
    "key": {"id": "3f9c1a2b4d", "prefix": "octo_live_3f9c1a2b4d"},
    "quotas": {"urlLists": {"used": 1, "limit": 10}},
    "rateLimit": {"limit": 600, "remaining": 598, "resetAt": "2026-12-04T17:01:00Z"},
}

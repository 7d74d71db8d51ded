"""Finding catalog keys now that the API no longer lists catalogs: the catalogs serving a store host.

``GET /domains/{host}`` answers every catalog (visible to the key) that serves a store host, with its display
name and product count; there is deliberately no way to list hosts. ``octogen-sync --discover HOST``
prints it.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from datetime import datetime

import dlt

from octogen_source.cli import format_table
from octogen_source.client import API_KEY_ENV, DEFAULT_BASE_URL, OctogenClient
from octogen_source.errors import MissingAPIKeyError, OctogenNotFoundError
from octogen_source.retries import RetryPolicy


@dataclass(frozen=True)
class DiscoveredCatalog:
    """One catalog serving the host."""

    catalog: str
    display_name: str | None
    product_count: int | None
    computed_at: datetime | None


@dataclass(frozen=True)
class Discovery:
    host: str
    catalogs: list[DiscoveredCatalog]


def discover(
    host: str, *, api_key: str | None, base_url: str | None, retry: RetryPolicy | None = None
) -> Discovery:
    """The catalogs serving ``host`` (a host or any URL on it); none when no catalog covers the host."""
    return asyncio.run(_discover(host, configured_api_key(api_key), base_url or configured_base_url(), retry))


async def _discover(host: str, api_key: str, base_url: str, retry: RetryPolicy | None) -> Discovery:
    async with OctogenClient(api_key=api_key, base_url=base_url, retry=retry) as client:
        try:
            coverage = await client.get_domain(host)
        except OctogenNotFoundError as error:
            if _is_not_covered(error.detail):
                return Discovery(host, [])
            if error.detail == ROUTE_NOT_FOUND:
                raise OctogenNotFoundError(
                    "this Octogen API has no GET /domains (it predates it: the May 2026 generation), so it"
                    " cannot say which catalogs serve a store; it still lists the catalogs granted to the"
                    " key: `octogen-sync --check` without --catalog prints them",
                    status_code=404,
                    detail=error.detail,
                    response=error.response,
                    request_id=error.request_id,
                ) from None
            raise
    return Discovery(
        coverage.host or host,
        [
            DiscoveredCatalog(
                catalog=entry.catalog,
                display_name=entry.catalog_display_name,
                product_count=entry.product_count,
                computed_at=entry.computed_at,
            )
            for entry in coverage.catalogs
            if entry.catalog
        ],
    )


ROUTE_NOT_FOUND = "Not Found"
"""The ``detail`` of a 404 for a path the API does not have (not a domain it does not cover)."""


def _is_not_covered(detail: object) -> bool:
    code = detail.get("code") if isinstance(detail, dict) else detail
    return code == "domain_not_covered"


def configured_api_key(api_key: str | None) -> str:
    """The key as the sync finds it: given, else ``sources.octogen.api_key`` (secrets.toml or
    ``SOURCES__OCTOGEN__API_KEY``), else ``OCTO_API_KEY``."""
    key = str(api_key or dlt.secrets.get("sources.octogen.api_key") or os.environ.get(API_KEY_ENV) or "")
    if not key.strip():
        raise MissingAPIKeyError(
            f"no Octogen API key: set {API_KEY_ENV}, SOURCES__OCTOGEN__API_KEY or [sources.octogen] api_key"
            " in .dlt/secrets.toml"
        )
    return key.strip()


def configured_base_url() -> str:
    """``sources.octogen.base_url`` (config.toml or ``SOURCES__OCTOGEN__BASE_URL``), else production."""
    configured: str | None = dlt.config.get("sources.octogen.base_url")
    return str(configured) if configured else DEFAULT_BASE_URL


def discovery_json(discovery: Discovery) -> str:
    """What ``--discover --json`` prints."""
    return json.dumps(
        {
            "ok": True,
            "host": discovery.host,
            "catalogs": [
                {
                    "catalog": entry.catalog,
                    "display_name": entry.display_name,
                    "product_count": entry.product_count,
                    "computed_at": entry.computed_at.isoformat() if entry.computed_at else None,
                }
                for entry in discovery.catalogs
            ],
        },
        indent=2,
    )


def format_discovery(discovery: Discovery) -> str:
    """What ``--discover`` prints: one line per catalog, numbers right-aligned, then how to use the keys."""
    if not discovery.catalogs:
        return (
            f"no catalog visible to this API key serves {discovery.host}"
            " (the API answered domain_not_covered)"
        )
    header = ("catalog", "name", "products", "computed at")
    rows = [
        (
            entry.catalog,
            entry.display_name or "",
            "" if entry.product_count is None else f"{entry.product_count:,}",
            entry.computed_at.isoformat(timespec="seconds") if entry.computed_at else "",
        )
        for entry in discovery.catalogs
    ]
    keys = " ".join(f"--catalog {entry.catalog}" for entry in discovery.catalogs)
    lines = [f"catalogs serving {discovery.host}:", *format_table(header, rows, right={2})]
    return "\n".join([*lines, f"sync with: {keys}"])

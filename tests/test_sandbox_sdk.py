"""The contract's definition of a correct sandbox: the vendor's own SDK (octogen-ai-sdk 0.10, a dev-only
dependency) parses every current-generation answer, and no answer carries a field its models do not declare.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip(
    "octogen_ai_sdk", reason="runs in .vendor-sdk-venv (tests/test_vendor_sdk_environment.py)"
)

from octogen_ai_sdk import (
    MeQuotas,
    OctogenAuthenticationError,
    OctogenClient,
    OctogenGatewayTimeoutError,
    OctogenInsufficientCreditError,
    OctogenNotFoundError,
    OctogenRateLimitError,
    OctogenValidationError,
)
from octogen_ai_sdk.generated import models as generated
from pydantic import BaseModel

from octogen_source.sandbox import Sandbox

# free-form objects whose keys are data or deliberately open
OPEN_MODELS: tuple[type[BaseModel], ...] = (MeQuotas,)


def declared(model: BaseModel) -> set[str]:
    """Wire names the OpenAPI document declares for the model: the SDK's public models are a curated view of
    ``octogen_ai_sdk.generated.models`` (e.g. its ProductEnrichment omits ``classification``)."""
    names: set[str] = set()
    for cls in (type(model), getattr(generated, type(model).__name__, None)):
        if cls is not None:
            names |= {field.alias or name for name, field in cls.model_fields.items()} | set(cls.model_fields)
    return names


def undeclared_fields(model: Any, path: str = "") -> list[str]:
    """Paths of fields the SDK's models do not declare (they allow extras, so parsing alone would pass)."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        if not isinstance(model, OPEN_MODELS):
            found += [f"{path}.{name}" for name in (model.model_extra or {}) if name not in declared(model)]
        for name in type(model).model_fields:
            found += undeclared_fields(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list):
        for index, item in enumerate(model):
            found += undeclared_fields(item, f"{path}[{index}]")
    elif isinstance(model, dict):
        for key, value in model.items():
            found += undeclared_fields(value, f"{path}[{key!r}]")
    return found


def sdk(sandbox: Sandbox, key: str | None = None) -> OctogenClient:
    return OctogenClient(api_key=key or sandbox.api_key, base_url=sandbox.base_url)


async def test_the_sdk_walks_every_search_page(sandbox: Sandbox) -> None:
    catalog = sandbox.granted_catalogs()[0]
    seen: list[str] = []
    async with sdk(sandbox) as client:
        cursor = None
        while True:
            page = await client.search_products(catalogs=[catalog], limit=7, cursor=cursor)
            assert undeclared_fields(page) == []
            assert page.request_id and page.effective_query is not None
            assert page.effective_query.catalogs == [catalog]
            for item in page.items or []:
                assert item.catalog_key == catalog and item.raw_score is not None
                assert item.brand is None or item.brand.name
                assert item.rating is None or item.rating.average is not None
                assert item.primary_image is None or item.primary_image.url.startswith("https://")
                seen.append(item.uuid)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert set(seen) == {hit["uuid"] for hit in sandbox.truth_search_items(catalog)}
        assert len(seen) > len(set(seen))  # some products were served twice
        everything = await client.search_products(q="linen", understand=True, limit=100)
        assert undeclared_fields(everything) == []
        assert everything.effective_query is not None and everything.effective_query.understood


async def test_the_sdk_parses_indexed_and_on_demand_lookups(sandbox: Sandbox) -> None:
    catalog = sandbox.granted_catalogs()[0]
    hits = sandbox.truth_search_items(catalog)
    async with sdk(sandbox) as client:
        for hit in hits:
            answer = await client.lookup_product(hit["productUrl"], resolution_mode="index_only")
            assert undeclared_fields(answer) == [], hit["uuid"]
            assert answer.source == "indexed" and answer.product.uuid == hit["uuid"]
            assert answer.catalog_key == catalog
        enriched = [(await client.lookup_product(hit["productUrl"])).product.enrichment for hit in hits[:20]]
        assert any(e is not None and e.attributes for e in enriched)
        [removed] = sandbox.remove_products(catalog, 1)
        url = next(hit["productUrl"] for hit in hits if hit["uuid"] == removed)
        on_demand = await client.lookup_product(url)
        assert undeclared_fields(on_demand) == []
        assert (on_demand.source, on_demand.product.uuid, on_demand.catalog_key) == ("on_demand", None, None)
        assert on_demand.resolution is not None and on_demand.resolved_url == url
        with pytest.raises(OctogenNotFoundError) as gone:
            await client.lookup_product(url, resolution_mode="index_only")
        assert gone.value.detail == "product_not_found" and gone.value.request_id
        markdown = await client.lookup_product_markdown(hits[1]["productUrl"])
        assert markdown.markdown.startswith("# ") and markdown.product_uuid == hits[1]["uuid"]
        with pytest.raises(OctogenValidationError):
            await client.lookup_product("http://127.0.0.1/products/x")


async def test_the_sdk_parses_me_and_domains(sandbox: Sandbox) -> None:
    catalog = sandbox.granted_catalogs()[0]
    async with sdk(sandbox) as client:
        me = await client.get_me()
        assert undeclared_fields(me) == []
        assert me.organization is not None and me.organization.type == "catalog_partner"
        assert me.key is not None and me.rate_limit is not None and me.rate_limit.limit == 600
        domain = await client.get_domain(f"https://www.{sandbox.store_host(catalog)}/products/x")
        assert undeclared_fields(domain) == []
        assert [c.catalog for c in domain.catalogs] == [catalog]
        assert domain.catalogs[0].price is not None and domain.catalogs[0].fields
        with pytest.raises(OctogenNotFoundError) as missing:
            await client.get_domain("unknown-store.example")
        assert missing.value.detail == "domain_not_covered"


async def test_the_sdk_reads_the_errors(sandbox: Sandbox) -> None:
    revoked = sandbox.add_key()
    sandbox.revoke_key(revoked)
    async with sdk(sandbox, revoked) as client:
        with pytest.raises(OctogenAuthenticationError, match="API key revoked"):
            await client.search_products()
    async with sdk(sandbox) as client:
        sandbox.exhaust_credit()
        with pytest.raises(OctogenInsufficientCreditError) as credit:
            await client.search_products()
        assert credit.value.detail["code"] == "insufficient_credit" and credit.value.request_id
        sandbox.restore_credit()
        sandbox.fail_next(1, 429, retry_after=4)
        with pytest.raises(OctogenRateLimitError) as limited:
            await client.search_products()
        assert limited.value.retry_after == 4
        sandbox.fail_next(1, 504, endpoint="lookup")
        with pytest.raises(OctogenGatewayTimeoutError):
            await client.lookup_product(
                sandbox.truth_search_items(sandbox.granted_catalogs()[0])[0]["productUrl"]
            )
        with pytest.raises(OctogenNotFoundError):
            await client.search_products(catalogs=[sandbox.all_catalogs()[-1]])

"""The sandbox controls behind the hardening tests (issue 13): an oversized answer, and walks the API ends
early (the page cut short, or empty, without ``nextCursor``). Real HTTP to the sandbox on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest

from octogen_source.sandbox import RemoteSandbox, Sandbox
from octogen_source.sandbox.server import OVERSIZED_PREFIX


def _search(sandbox: Sandbox, catalog: str, cursor: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"catalogs": [catalog], "limit": 10}
    if cursor is not None:
        body["cursor"] = cursor
    response = httpx.post(
        sandbox.base_url + "/products/search",
        json=body,
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
    )
    assert response.status_code == 200, response.text
    page: dict[str, object] = response.json()
    return page


def _walk(sandbox: Sandbox, catalog: str) -> list[dict[str, object]]:
    pages = [_search(sandbox, catalog)]
    while "nextCursor" in pages[-1]:
        cursor = pages[-1]["nextCursor"]
        assert isinstance(cursor, str)
        pages.append(_search(sandbox, catalog, cursor))
    return pages


def _uuids(page: dict[str, object]) -> list[object]:
    items = page["items"]
    assert isinstance(items, list)
    return [item["uuid"] for item in items]


def test_oversized_answer_streams_the_bytes_asked_for(sandbox: Sandbox) -> None:
    sandbox.fail_next(1, "oversized", endpoint="search", body_bytes=3 * 1024 * 1024 + 5)
    with httpx.stream("POST", sandbox.base_url + "/products/search", json={}) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        body = response.read()
    assert len(body) == 3 * 1024 * 1024 + 5
    assert body.startswith(OVERSIZED_PREFIX)
    assert sandbox.faults_injected == {"oversized": 1}
    with pytest.raises(ValueError):
        sandbox.fail_next(1, "oversized", body_bytes=-1)


def test_walks_end_early_cut_short_or_empty(sandbox: Sandbox) -> None:
    first, second = sandbox.granted_catalogs()
    full = _walk(sandbox, first)
    assert len(full) > 3

    sandbox.end_walks_early(2, catalog=first)
    cut = _walk(sandbox, first)
    assert len(cut) == 2 and "nextCursor" not in cut[-1]
    assert _uuids(cut[1]) == _uuids(full[1])  # the same hits, then no cursor
    assert len(_walk(sandbox, second)) > 3  # another catalog walks on

    sandbox.end_walks_early(3, empty=True)
    empty = _walk(sandbox, second)
    assert len(empty) == 3 and empty[-1]["items"] == [] and "nextCursor" not in empty[-1]

    sandbox.clear_faults()
    assert len(_walk(sandbox, first)) == len(full)
    with pytest.raises(ValueError):
        sandbox.end_walks_early(0)


def test_the_controls_over_the_admin_api(sandbox: Sandbox) -> None:
    first = sandbox.granted_catalogs()[0]
    with RemoteSandbox(sandbox.base_url) as remote:
        remote.end_walks_early(1, empty=True, catalog=first)
        remote.fail_next(1, "oversized", endpoint="lookup", body_bytes=2048)
    [page] = _walk(sandbox, first)
    assert page["items"] == [] and "nextCursor" not in page
    url = sandbox.truth_search_items(first)[0]["productUrl"]
    response = httpx.post(
        sandbox.base_url + "/products/lookup",
        json={"url": url},
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
    )
    assert len(response.content) == 2048 and response.content.startswith(OVERSIZED_PREFIX)


def test_a_search_can_ignore_its_catalogs_scope(sandbox: Sandbox) -> None:
    first, second = sandbox.granted_catalogs()
    sandbox.ignore_search_scope()
    assert _catalog_keys(_walk(sandbox, first)) == {first, second}
    sandbox.clear_faults()
    assert _catalog_keys(_walk(sandbox, first)) == {first}


def _catalog_keys(pages: list[dict[str, object]]) -> set[object]:
    keys: set[object] = set()
    for page in pages:
        items = page["items"]
        assert isinstance(items, list)
        keys.update(item["catalogKey"] for item in items)
    return keys

"""Reading an HTTP response body with a size limit, so that an oversized answer never sits in memory."""

from __future__ import annotations

from typing import Any, Final

import httpx

from octogen_source.errors import OctogenResponseTooLargeError

_DROPPED_HEADERS = ("content-encoding", "content-length", "transfer-encoding")


async def read_bounded(response: httpx.Response, limit: int, endpoint: str) -> httpx.Response:
    """The streamed ``response`` read whole into a new response, unless its decoded body passes ``limit``
    bytes: then :class:`OctogenResponseTooLargeError`, raised as soon as the limit is passed (a declared
    ``Content-Length`` above it is refused before the body is read). The stream is always closed.

    The count is of decoded bytes, so a small compressed body that inflates past the limit is refused too.
    """
    try:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large(endpoint, limit, f"a body of {int(declared):,} bytes (announced)")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise too_large(endpoint, limit, "a longer body")
            chunks.append(chunk)
    finally:
        await response.aclose()
    headers = httpx.Headers(
        [(name, value) for name, value in response.headers.multi_items() if name not in _DROPPED_HEADERS]
    )
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(chunks),
        request=response.request,
        extensions=response.extensions,
    )


def too_large(endpoint: str, limit: int, received: str) -> OctogenResponseTooLargeError:
    return OctogenResponseTooLargeError(
        f"the Octogen API answered {endpoint} with {received}, more than the {limit:,}-byte limit; refused"
        " (raise it with max_response_bytes, sources.octogen.max_response_bytes or --max-response-bytes)",
        endpoint=endpoint,
        limit=limit,
    )


MAX_TEXT_CHARS: Final = 1024 * 1024
"""Longer text values in the wire answers a sync stores are cut to this many characters. Real titles,
descriptions and URLs are a few KB at most, so every real value stays whole, while no cell a load writes can
exceed 1 MiB (a garbage value such as a 1-billion-character name cannot take a load down). Only a body
longer than this can hold such a value, so real answers (a 100-hit page is ~190 KB) are never even scanned."""


def clip_long_text(value: Any, limit: int = MAX_TEXT_CHARS) -> int:
    """Cuts, in place, every string of the JSON value ``value`` (nested dicts and lists) that is longer than
    ``limit`` characters; returns how many were cut. Keys are data of the API too, but are left alone."""
    entries: list[tuple[Any, Any]]
    if isinstance(value, dict):
        entries = list(value.items())
    elif isinstance(value, list):
        entries = list(enumerate(value))
    else:
        return 0
    clipped = 0
    for key, item in entries:
        if isinstance(item, str):
            if len(item) > limit:
                value[key] = item[:limit]
                clipped += 1
        else:
            clipped += clip_long_text(item, limit)
    return clipped

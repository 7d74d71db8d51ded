"""Opaque keyset cursors bound to the search filters.

A cursor is base64url (unpadded) of ``{"v": 1, "f": <filters fingerprint>, "after": <last uuid>}``.
Results are ordered by uuid (a random, stable order that has nothing to do with updatedAt), so the next
page is "matching products with uuid > after": adding or removing products between pages neither repeats
nor skips the rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

CURSOR_VERSION = 1


class CursorError(ValueError):
    """The cursor is not one this sandbox issued, or it was issued for other filters."""


def filters_fingerprint(filters: Any) -> str:
    """A short, stable digest of already-normalized filters (any JSON-serialisable value)."""
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(fingerprint: str, after_uuid: str) -> str:
    payload = json.dumps({"v": CURSOR_VERSION, "f": fingerprint, "after": after_uuid}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> str:
    """The uuid the cursor resumes after; :class:`CursorError` if undecodable or bound to other filters."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise CursorError("cursor is not valid") from exc
    if (
        not isinstance(payload, dict)
        or payload.get("v") != CURSOR_VERSION
        or not isinstance(payload.get("f"), str)
        or not isinstance(payload.get("after"), str)
    ):
        raise CursorError("cursor is not valid")
    if payload["f"] != fingerprint:
        raise CursorError("cursor does not match the search filters")
    return str(payload["after"])

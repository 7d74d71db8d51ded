"""Nested API values as the JSON text the tables store for them."""

from __future__ import annotations

from typing import Any

import orjson


def json_text(value: Any) -> str:
    """A nested value as the JSON text stored for it (keys in the order the API sent them)."""
    try:
        # decoded JSON has only string keys: the same text as with OPT_NON_STR_KEYS, a fifth faster
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()

"""What a request handler of the sandbox answers: a reply (body, content type, headers) or an API error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"
MARKDOWN = "text/markdown"


@dataclass(frozen=True)
class Reply:
    """A 200 answer other than plain JSON bytes (e.g. markdown, or extra headers)."""

    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An error response of the API: status, ``detail`` and extra response headers."""

    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = headers or {}

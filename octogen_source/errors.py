"""The error model shared by the client, the dlt source and the BigQuery helpers.

Every error the package raises is an :class:`OctogenError`. HTTP errors carry what a caller needs to act on
them (``status_code``, ``detail``, ``response``, ``request_id``); messages are one readable line that ends
with the request id when the API gave one, and never contain a key.
"""

from __future__ import annotations

from typing import Any

import httpx


class OctogenError(Exception):
    """Base class of every error raised by octogen_source."""


class MissingAPIKeyError(OctogenError):
    """No API key was given and ``OCTO_API_KEY`` is not set; raised before any request is made."""


class OctogenConnectionError(OctogenError):
    """The API could not be reached: timeout, DNS failure, refused or dropped connection."""


class OctogenAPIError(OctogenError):
    """The API answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        detail: Any = None,
        response: httpx.Response | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.response = response
        self.request_id = request_id
        """The API's id of the request (``x-request-id``, else the body's ``requestId``), for support."""


class OctogenAuthenticationError(OctogenAPIError):
    """401: the API key is missing, malformed or revoked."""


class OctogenForbiddenError(OctogenAPIError):
    """403: a valid key attempted an action it is not allowed."""


class OctogenInsufficientCreditError(OctogenAPIError):
    """402: the organization's prepaid credit is exhausted; never retried (every request is billed).

    ``top_up_url`` is the API's top-up link when its ``detail`` carries one.
    """

    def __init__(self, message: str, *, top_up_url: str | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.top_up_url = top_up_url


class OctogenNotFoundError(OctogenAPIError):
    """404: the catalog, product or domain is not visible to this key."""


class OctogenEndpointRetiredError(OctogenNotFoundError):
    """404 from an endpoint the API has retired (``GET /catalogs``, retired on 2026-07-09)."""


class OctogenValidationError(OctogenAPIError):
    """422: the API rejected the request's parameters; ``detail`` is the API's validation list."""


class OctogenRateLimitError(OctogenAPIError):
    """429: rate limited. Retried by the client after ``retry_after``; raised when the retries run out.

    ``retry_after`` is the ``Retry-After`` wait in seconds (``None`` when absent or unusable);
    ``limit``, ``remaining`` and ``reset`` are the ``X-RateLimit-*`` headers' values as sent (``None`` when
    absent).
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        limit: str | None = None,
        remaining: str | None = None,
        reset: str | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining
        self.reset = reset


class OctogenResponseTooLargeError(OctogenError):
    """A response body was larger than the client's ``max_response_bytes``: refused, never retried."""

    def __init__(self, message: str, *, endpoint: str, limit: int) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.limit = limit


class OctogenScopeError(OctogenError):
    """A search scope this API generation cannot honour (several catalogs on a seed-era API).

    Raised rather than returning pages whose scope the API ignored (they would hold every catalog's
    products); not sent at all once the client knows the API is seed-era.
    """


class OctogenBigQueryError(OctogenError):
    """A BigQuery Analytics Hub operation failed."""


class OctogenBigQueryAccessPendingError(OctogenBigQueryError):
    """Subscribing was refused with permission denied: Octogen's grant has not propagated yet; retry later."""


ERRORS_BY_STATUS: dict[int, type[OctogenAPIError]] = {
    401: OctogenAuthenticationError,
    402: OctogenInsufficientCreditError,
    403: OctogenForbiddenError,
    404: OctogenNotFoundError,
    422: OctogenValidationError,
    429: OctogenRateLimitError,
}

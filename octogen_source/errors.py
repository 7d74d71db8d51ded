"""The error model shared by the client, the dlt source and the BigQuery helpers.

Every error the package raises is an :class:`OctogenError`, and says whether running the same thing again
may succeed: ``retryable``, set where the error is raised and read by the client's retry policy
(:func:`octogen_source.retries.is_retryable`), by the sync (``SyncError.retryable``) and by the Airflow DAG.
As httpx tells them apart, four families:

- configuration (:class:`OctogenConfigurationError`, also a ``ValueError``): a bad setting or argument, a
  missing key, a request the client will not send (:class:`OctogenRequestError`); never retryable;
- transport (:class:`OctogenConnectionError`, alias :data:`OctogenTransportError`): the API was not reached
  or the connection broke; retryable;
- API status (:class:`OctogenAPIError` and its per-status classes): the API answered an error status;
  retryable for 429 and 5xx, never for 4xx (402 above all: every request is billed);
- response (:class:`OctogenResponseError`): the API answered 2xx with a body the client cannot use (not
  JSON, another shape, a cursor that never advances, too large); not retryable (the same request gets the
  same answer; the run fails with one line naming the endpoint).

HTTP errors carry what a caller needs to act on them (``status_code``, ``detail``, ``response``,
``request_id``); messages are one readable line that ends with the request id when the API gave one, and
never contain a key.
"""

from __future__ import annotations

from typing import Any

import httpx


class OctogenError(Exception):
    """Base class of every error raised by octogen_source."""

    retryable: bool = False
    """Whether the same request or run may succeed when made again (a class default; an error may set its
    own where it is raised)."""


class OctogenConfigurationError(OctogenError, ValueError):
    """A setting or argument is missing, malformed or out of range; raised before any request is made."""


class MissingAPIKeyError(OctogenConfigurationError):
    """No API key was given and ``OCTO_API_KEY`` is not set; raised before any request is made."""


class OctogenConnectionError(OctogenError):
    """The API could not be reached: timeout, DNS failure, refused or dropped connection."""

    retryable = True


OctogenTransportError = OctogenConnectionError
"""httpx's name for the same family."""


class OctogenAPIError(OctogenError):
    """The API answered with an error status; retryable for 429 and 5xx."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        detail: Any = None,
        response: httpx.Response | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = status_retryable(status_code) if retryable is None else retryable
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


class OctogenRequestError(OctogenConfigurationError):
    """A request the client refused to send: its parameters fail the client's own checks.

    ``detail`` is a list of problems shaped like the API's 422 ``detail`` (``loc``, ``msg``, ``type``,
    ``input``); nothing was sent, so ``status_code``, ``response`` and ``request_id`` are None. The API's own
    422 is :class:`OctogenValidationError`.
    """

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.detail = detail
        self.status_code: int | None = None
        self.response: httpx.Response | None = None
        self.request_id: str | None = None


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


class OctogenResponseError(OctogenError):
    """The API answered 2xx with a body the client cannot use: not JSON, another shape, a cursor that never
    advances, a scope it did not honour. Not retryable: the same request gets the same answer.

    ``status_code``, ``detail``, ``response`` and ``request_id`` as on :class:`OctogenAPIError` (the answer's
    status is a success).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 200,
        detail: Any = None,
        response: httpx.Response | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.response = response
        self.request_id = request_id


class OctogenResponseTooLargeError(OctogenResponseError):
    """A response body was larger than the client's ``max_response_bytes``: refused, never retried."""

    def __init__(self, message: str, *, endpoint: str, limit: int) -> None:
        super().__init__(message, status_code=0)
        self.endpoint = endpoint
        self.limit = limit


class OctogenScopeError(OctogenRequestError):
    """A search scope this API generation cannot honour (several catalogs on a seed-era API).

    Raised rather than returning pages whose scope the API ignored (they would hold every catalog's
    products); not sent at all once the client knows the API is seed-era.
    """


class OctogenBigQueryError(OctogenError):
    """A BigQuery Analytics Hub operation failed."""


class OctogenBigQueryAccessPendingError(OctogenBigQueryError):
    """Subscribing was refused with permission denied: Octogen's grant has not propagated yet; retry later."""

    retryable = True


def status_retryable(status_code: int) -> bool:
    """An API status worth another attempt: 429 (after its Retry-After) and 5xx; never 402 or another 4xx."""
    return status_code == 429 or status_code >= 500


ERRORS_BY_STATUS: dict[int, type[OctogenAPIError]] = {
    401: OctogenAuthenticationError,
    402: OctogenInsufficientCreditError,
    403: OctogenForbiddenError,
    404: OctogenNotFoundError,
    422: OctogenValidationError,
    429: OctogenRateLimitError,
}

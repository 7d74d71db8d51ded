"""The error model shared by the client, the dlt source and the BigQuery helpers.

Every error the package raises is an :class:`OctogenError`. HTTP errors carry what a caller needs to act on
them (``status_code``, ``detail``, ``response``); messages are one readable line and never contain a key.
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
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.response = response


class OctogenAuthenticationError(OctogenAPIError):
    """401: the API key is missing, malformed or revoked."""


class OctogenForbiddenError(OctogenAPIError):
    """403: a valid key attempted an action it is not allowed."""


class OctogenNotFoundError(OctogenAPIError):
    """404: the catalog or product is not visible to this key."""


class OctogenValidationError(OctogenAPIError):
    """422: the API rejected the request's parameters; ``detail`` is the API's validation list."""


class OctogenBigQueryError(OctogenError):
    """A BigQuery Analytics Hub operation failed."""


class OctogenBigQueryAccessPendingError(OctogenBigQueryError):
    """Subscribing was refused with permission denied: Octogen's grant has not propagated yet; retry later."""


ERRORS_BY_STATUS: dict[int, type[OctogenAPIError]] = {
    401: OctogenAuthenticationError,
    403: OctogenForbiddenError,
    404: OctogenNotFoundError,
    422: OctogenValidationError,
}

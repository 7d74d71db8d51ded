"""Errors of every family, split by whether a retry can help: the cases the error-model tests (and the Airflow
DAG's, in its own environment) run over."""

from __future__ import annotations

from octogen_source.errors import (
    ERRORS_BY_STATUS,
    MissingAPIKeyError,
    OctogenAPIError,
    OctogenConfigurationError,
    OctogenConnectionError,
    OctogenError,
    OctogenRequestError,
    OctogenResponseError,
    OctogenResponseTooLargeError,
)
from octogen_source.source import InvalidSettingError


def api_error(status: int) -> OctogenAPIError:
    error_class = ERRORS_BY_STATUS.get(status, OctogenAPIError)
    return error_class(f"Octogen API {status}", status_code=status)


RETRYABLE: list[OctogenError] = [
    OctogenConnectionError("Could not reach the Octogen API on POST /products/search: ConnectError"),
    api_error(429),
    api_error(500),
    api_error(502),
    api_error(503),
]
FINAL: list[OctogenError] = [
    api_error(400),
    api_error(401),
    api_error(402),
    api_error(403),
    api_error(404),
    api_error(422),
    OctogenResponseError("Octogen API 200 on POST /products/search: invalid JSON response"),
    OctogenResponseTooLargeError("too large", endpoint="POST /products/search", limit=1024),
    OctogenRequestError("Octogen API request not sent: body.limit", detail=[]),
    OctogenConfigurationError("base_url must be an http(s) URL"),
    MissingAPIKeyError("no key"),
    InvalidSettingError("page_size must be between 1 and 100"),
]

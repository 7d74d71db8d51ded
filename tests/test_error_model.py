"""One error model: every error says whether a retry can help (``retryable``), set where it is raised, and the
client's retry policy, the sync and the Airflow DAG all read that one attribute (the DAG's side, which needs
Airflow, is tests/test_airflow_dag.py::test_the_dag_retries_exactly_what_the_errors_retryable_says)."""

from __future__ import annotations

import asyncio

import pytest

from octogen_source.client import OctogenClient
from octogen_source.errors import (
    OctogenAPIError,
    OctogenConfigurationError,
    OctogenConnectionError,
    OctogenError,
    OctogenRequestError,
    OctogenResponseError,
    OctogenTransportError,
    OctogenValidationError,
)
from octogen_source.retries import RetryPolicy, is_retryable
from octogen_source.sync import SyncError, failure_is_retryable
from tests.error_cases import FINAL, RETRYABLE, api_error


@pytest.mark.parametrize("error", RETRYABLE + FINAL, ids=lambda error: type(error).__name__)
def test_the_client_the_sync_and_the_dag_read_one_attribute(error: OctogenError) -> None:
    expected = any(error is candidate for candidate in RETRYABLE)
    assert error.retryable is expected
    assert is_retryable(error) is expected  # the client's retry policy
    try:
        raise RuntimeError("a step of the pipeline failed") from error  # as dlt wraps what a source raised
    except RuntimeError as wrapped:
        assert failure_is_retryable(wrapped) is expected  # the sync
        assert SyncError("one line", retryable=failure_is_retryable(wrapped)).retryable is expected


def test_outside_octogen_errors_a_failed_sync_may_heal_and_the_client_never_retries_them() -> None:
    assert failure_is_retryable(OSError("the warehouse is unreachable"))
    assert not is_retryable(OSError("not one of ours"))


def test_the_four_families_are_told_apart() -> None:
    transport = OctogenConnectionError("x")
    assert OctogenTransportError is OctogenConnectionError and not isinstance(transport, OctogenAPIError)
    response = OctogenResponseError("x")
    assert not isinstance(response, OctogenAPIError) and response.status_code == 200
    request = OctogenRequestError("not sent", detail=[{"loc": ["body", "limit"], "msg": "bad"}])
    assert isinstance(request, OctogenConfigurationError) and isinstance(request, ValueError)
    assert request.status_code is None and request.response is None  # nothing was sent
    # not the API's 422: nothing was sent
    assert not isinstance(request, OctogenAPIError)
    api_422 = api_error(422)
    assert isinstance(api_422, OctogenValidationError) and not isinstance(api_422, OctogenConfigurationError)


@pytest.mark.parametrize("base_url", ["ftp://api.example/v1", "not a url", "http://[::1"])
def test_a_bad_base_url_is_a_configuration_error(base_url: str) -> None:
    with pytest.raises(OctogenConfigurationError, match="base_url"):
        OctogenClient(api_key="octo_test", base_url=base_url)


def test_a_bad_retry_policy_is_a_configuration_error() -> None:
    with pytest.raises(OctogenConfigurationError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_a_request_error_is_raised_before_anything_is_sent() -> None:
    async def search() -> None:
        async with OctogenClient(api_key="octo_test", base_url="http://127.0.0.1:9/v1") as client:
            await client.search_products(limit=0)

    with pytest.raises(OctogenRequestError) as raised:
        asyncio.run(search())
    assert not raised.value.retryable and raised.value.detail

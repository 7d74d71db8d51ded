"""The BigQuery emulator tests' module fixtures (tests/conftest.py makes them every module's): an emulator
process per module, a fake token endpoint, and the process environment of a BigQuery sync against them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from dlt.common.configuration.specs.gcp_credentials import GcpDefaultCredentials

from tests.bigquery_emulator import (
    SETUP_SCRIPT,
    BigQueryEmulator,
    FakeTokenEndpoint,
    adc_environment,
    emulator_missing_reason,
    running_emulator,
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    reason = emulator_missing_reason()
    if reason is not None and os.environ.get("CI"):
        # CI must exercise the BigQuery load path: install the emulator (idempotent) rather than skip
        subprocess.run(["bash", str(SETUP_SCRIPT)], check=False, timeout=900)
        reason = emulator_missing_reason()
        if reason is not None:
            pytest.fail(reason)
    if reason is not None:
        pytest.skip(reason)
    with running_emulator(tmp_path_factory.mktemp("bqemulator")) as running:
        yield running


@pytest.fixture(scope="module")
def token_endpoint() -> Iterator[FakeTokenEndpoint]:
    endpoint = FakeTokenEndpoint()
    endpoint.start()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def bigquery_environment(
    emulator: BigQueryEmulator, token_endpoint: FakeTokenEndpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The process environment of a BigQuery sync against the emulator."""
    environment = adc_environment(emulator, token_endpoint, tmp_path_factory.mktemp("adc"))
    with pytest.MonkeyPatch.context() as patch:
        for name in ("DESTINATION__BIGQUERY__CREDENTIALS", "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID"):
            patch.delenv(name, raising=False)
        for name, value in environment.items():
            patch.setenv(name, value)
        # dlt remembers a failed Application Default Credentials lookup for 10 minutes, process-wide
        patch.setattr(GcpDefaultCredentials, "_LAST_FAILED_DEFAULT", 0.0)
        yield environment

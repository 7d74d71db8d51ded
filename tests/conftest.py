"""Shared fixtures: a real sandbox of the Octogen API on 127.0.0.1 for every test that needs one, and a clean
environment for the CLI pointing at it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from octogen_source.sandbox import Sandbox
from tests.bigquery_emulator.fixtures import (  # noqa: F401  (module fixtures of the emulator tests)
    bigquery_environment,
    emulator,
    token_endpoint,
)
from tests.cli_support import cli_environment
from tests.fake_authorization_server import FakeAuthorizationServer
from tests.fake_control_plane import FakeControlPlane

# Bytecode caching on for the Python processes the tests start (xdist's workers, the group environments'
# child pytests, the installed wheel's commands, the BigQuery emulator): the venvs they run in are built
# without bytecode, and with PYTHONDONTWRITEBYTECODE set each of those processes would compile all it imports
# again (Airflow and dlt in .airflow-venv: 10 s per import, 2.5 s once their bytecode is written).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Modules each dominated by one long test (a child pytest in a venv of its own, venvs built from the wheel, a
# BigQuery emulator process, thirty killed syncs), longest first: xdist hands out whole modules in this order
# (pyproject's addopts), so the short modules fill the time beside the long ones rather than one long module
# running alone at the end.
LONG_MODULES_FIRST = (
    "test_airflow_environment.py",
    "test_mcp1_environment.py",
    "test_warehouse_bigquery_emulator.py",
    "test_installed_wheel.py",
    "test_views_bigquery_emulator.py",
    "test_sync_kill_leftovers.py",
    "test_vendor_sdk_environment.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_MODULES_FIRST.index(name) if name in LONG_MODULES_FIRST else len(LONG_MODULES_FIRST)

    items.sort(key=rank)  # stable: collection order otherwise


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A sandbox speaking today's API (the default generation), 2 of its 3 catalogs granted."""
    with Sandbox(catalogs=3, products=60, ungranted=1) as running:
        yield running


@pytest.fixture
def seed_sandbox() -> Iterator[Sandbox]:
    """The same sandbox speaking the seed-era API (May 2026): GET /catalogs, ``catalog``, string brands."""
    with Sandbox(catalogs=3, products=60, ungranted=1, generation="seed") as running:
        yield running


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def start(**kwargs: Any) -> Sandbox:
        running = Sandbox(**kwargs)
        running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox: Sandbox) -> Iterator[Sandbox]:
    """A clean environment for the CLI pointing at ``sandbox``, run from tmp_path (tests/cli_support.py)."""
    yield from cli_environment(monkeypatch, tmp_path, sandbox)


@pytest.fixture(scope="module")
def control_plane_server() -> Iterator[FakeControlPlane]:
    """A fake Octogen control plane per test module (the BigQuery tools' tests reset it per test)."""
    with FakeControlPlane() as running:
        yield running


@pytest.fixture(scope="module")
def auth_server(control_plane_server: FakeControlPlane) -> Iterator[FakeAuthorizationServer]:
    """A fake authorization server per test module whose access tokens ``control_plane_server`` accepts."""
    with FakeAuthorizationServer(on_access_token=control_plane_server.allow_token) as running:
        yield running

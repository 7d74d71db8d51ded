"""Shared fixtures: a real sandbox of the Octogen API on 127.0.0.1 for every test that needs one."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from octogen_source.sandbox import Sandbox

# Bytecode caching on for the Python processes the tests start (xdist's workers, the group environments'
# child pytests, the installed wheel's commands, the BigQuery emulator): the venvs they run in are built
# without bytecode, and with PYTHONDONTWRITEBYTECODE set each of those processes would compile all it imports
# again (Airflow and dlt in .airflow-venv: 10 s per import, 2.5 s once their bytecode is written).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


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

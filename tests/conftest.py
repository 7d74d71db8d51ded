"""Shared fixtures: a real sandbox of the Octogen API on 127.0.0.1 for every test that needs one, and a clean
environment for the CLI pointing at it."""

from __future__ import annotations

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

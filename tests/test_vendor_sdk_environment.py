"""Runs the tests that use the vendor's own client (``octogen-ai-sdk``) in their own environment,
``.vendor-sdk-venv``: the SDK installs console scripts named like this project's (``octogen-bq-subscribe``,
``octogen-bq-autosubscribe``), so it stays out of the default environment, where it would replace them."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.group_environment import REPO, run_in_group_environment

VENDOR_SDK_VENV = Path(os.environ.get("OCTOGEN_VENDOR_SDK_VENV", REPO / ".vendor-sdk-venv"))
VENDOR_SDK_TESTS = ("tests/test_sandbox_sdk.py", "tests/test_client_vendor.py")


@pytest.mark.timeout(600)
@pytest.mark.skipif(
    importlib.util.find_spec("octogen_ai_sdk") is not None,
    reason="octogen-ai-sdk is installed here: its tests run directly",
)
def test_vendor_sdk_tests_pass_in_their_environment(tmp_path: Path) -> None:
    run_in_group_environment("vendor-sdk", VENDOR_SDK_VENV, VENDOR_SDK_TESTS, min_tests=6, tmp_path=tmp_path)

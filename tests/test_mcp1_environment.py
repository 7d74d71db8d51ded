"""Runs the control-plane tests on the ``mcp`` SDK's 1.x line too, in ``.mcp1-venv`` (the ``mcp1``
dependency group): the ``bigquery`` extra accepts 1.x and 2.x, and the default environment has 2.x."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from pathlib import Path

import pytest

from tests.group_environment import REPO, run_in_group_environment

MCP1_VENV = Path(os.environ.get("OCTOGEN_MCP1_VENV", REPO / ".mcp1-venv"))
MCP_TESTS = (
    "tests/test_bq_autosubscribe_control_plane.py",
    "tests/test_bq_autosubscribe.py",
    "tests/test_bq_autosubscribe_garbage.py",
    "tests/test_bq_refresh_token.py",
    "tests/test_bq_mcp_login.py",
)


@pytest.mark.timeout(900)
@pytest.mark.skipif(
    importlib.metadata.version("mcp").startswith("1."),
    reason="mcp 1.x is installed here: its tests run directly",
)
def test_control_plane_tests_pass_on_mcp_1x(tmp_path: Path) -> None:
    run_in_group_environment(
        "mcp1", MCP1_VENV, MCP_TESTS, min_tests=120, tmp_path=tmp_path, timeout=600, without_dev=True
    )
    version = subprocess.run(
        [str(MCP1_VENV / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('mcp'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version.startswith("1."), version

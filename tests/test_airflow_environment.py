"""Runs the real-Airflow tests in their own environment, ``.airflow-venv``.

Airflow 3 co-resolves with the project's locked dependencies (the ``airflow`` dependency group in
pyproject.toml: it adds packages and changes no pin), so production workers can import dlt and this package
beside Airflow. It is kept out of the default environment on purpose: with Airflow importable, every dlt
process probes it at start-up (about 4 s, and an airflow.db written under $AIRFLOW_HOME).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.group_environment import REPO, run_in_group_environment

AIRFLOW_VENV = Path(os.environ.get("OCTOGEN_AIRFLOW_VENV", REPO / ".airflow-venv"))
AIRFLOW_TESTS = ("tests/test_airflow_dag.py", "tests/test_bq_airflow_autosubscribe.py")


@pytest.mark.timeout(900)  # a cold uv cache downloads Airflow (about 130 MB installed) first
@pytest.mark.skipif(
    importlib.util.find_spec("airflow") is not None,
    reason="Airflow is installed here: tests/test_airflow_dag.py runs directly",
)
def test_airflow_dag_tests_pass_in_the_airflow_environment(tmp_path: Path) -> None:
    run_in_group_environment("airflow", AIRFLOW_VENV, AIRFLOW_TESTS, min_tests=24, tmp_path=tmp_path)

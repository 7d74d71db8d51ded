"""Runs the real-Airflow tests (tests/test_airflow_dag.py) in their own environment, ``.airflow-venv``.

Airflow 3 co-resolves with the project's locked dependencies (the ``airflow`` dependency group in
pyproject.toml: it adds packages and changes no pin), so production workers can import dlt and this package
beside Airflow. It is kept out of the default environment on purpose: with Airflow importable, every dlt
process probes it at start-up (about 4 s, and an airflow.db written under $AIRFLOW_HOME). So ``uv run pytest``
builds ``.airflow-venv`` from uv.lock (the dev and airflow groups; about a second on a warm uv cache) and runs
the Airflow tests there in a child pytest, whose outcome this test asserts.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_VENV = Path(os.environ.get("OCTOGEN_AIRFLOW_VENV", REPO / ".airflow-venv"))
AIRFLOW_TESTS = ("tests/test_airflow_dag.py", "tests/test_bq_airflow_autosubscribe.py")


def _child_environ() -> dict[str, str]:
    environ = {
        name: value
        for name, value in os.environ.items()
        if name != "VIRTUAL_ENV" and not name.startswith(("AIRFLOW", "PYTEST_"))
    }
    environ["UV_PROJECT_ENVIRONMENT"] = str(AIRFLOW_VENV)
    return environ


@pytest.mark.timeout(900)  # a cold uv cache downloads Airflow (about 130 MB installed) first
@pytest.mark.skipif(
    importlib.util.find_spec("airflow") is not None,
    reason="Airflow is installed here: tests/test_airflow_dag.py runs directly",
)
def test_airflow_dag_tests_pass_in_the_airflow_environment(tmp_path: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to build the Airflow environment (.airflow-venv)"
    environ = _child_environ()
    built = subprocess.run(
        [uv, "sync", "--locked", "--group", "airflow", "--quiet"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, f"uv sync --group airflow failed:\n{built.stderr[-3000:]}"

    junit = tmp_path / "airflow-tests.xml"
    child = subprocess.run(
        [
            str(AIRFLOW_VENV / "bin" / "python"),
            "-m",
            "pytest",
            *AIRFLOW_TESTS,
            "-q",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "basetemp"),
            "--junitxml",
            str(junit),
        ],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = (child.stdout + child.stderr)[-6000:]
    assert child.returncode == 0, f"the Airflow tests failed in {AIRFLOW_VENV}:\n{output}"
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None
    counts = {name: int(suite.get(name, "0")) for name in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] >= 7 and counts["failures"] == counts["errors"] == counts["skipped"] == 0, (
        f"{counts}\n{output}"
    )

"""Runs some test modules in an environment of their own, built from a dependency group of uv.lock.

Some dependencies must stay out of the default environment: Airflow (with it importable, every dlt process
probes it at start-up, about 4 s), and the vendor's SDK (``octogen-ai-sdk`` installs console scripts named
``octogen-bq-subscribe`` and ``octogen-bq-autosubscribe``, which would replace this project's). A test in the
default suite builds ``<repo>/<venv>`` with ``uv sync --locked --group <group>`` (about a second on a warm uv
cache) and runs the modules there in a child pytest, whose JUnit report it asserts: nothing failed, nothing
was skipped, at least as many tests ran as expected.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child_environ(venv: Path) -> dict[str, str]:
    environ = {
        name: value
        for name, value in os.environ.items()
        if name != "VIRTUAL_ENV" and not name.startswith(("AIRFLOW", "PYTEST_"))
    }
    environ["UV_PROJECT_ENVIRONMENT"] = str(venv)
    return environ


def run_in_group_environment(
    group: str,
    venv: Path,
    tests: Sequence[str],
    *,
    min_tests: int,
    tmp_path: Path,
    timeout: float = 240,
    without_dev: bool = False,
) -> None:
    """Builds ``venv`` from the ``group`` dependency group and runs ``tests`` there; fails unless every one
    of at least ``min_tests`` tests passed. ``without_dev``: a group that conflicts with ``dev`` (and so
    lists the test tools itself) is synced without it."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, f"uv is needed to build the {group} environment ({venv.name})"
    environ = child_environ(venv)
    built = subprocess.run(
        [
            uv,
            "sync",
            "--locked",
            *(["--no-default-groups"] if without_dev else []),
            "--group",
            group,
            "--quiet",
        ],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, f"uv sync --group {group} failed:\n{built.stderr[-3000:]}"

    junit = tmp_path / f"{group}-tests.xml"
    child = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pytest",
            *tests,
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
        timeout=timeout,
        check=False,
    )
    output = (child.stdout + child.stderr)[-6000:]
    assert child.returncode == 0, f"the {group} tests failed in {venv}:\n{output}"
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None
    counts = {name: int(suite.get(name, "0")) for name in ("tests", "failures", "errors", "skipped")}
    assert (
        counts["tests"] >= min_tests and counts["failures"] == counts["errors"] == counts["skipped"] == 0
    ), f"{counts}\n{output}"

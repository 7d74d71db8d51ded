"""Installed, it is the whole product (issue 12, item 1): the built wheel in a fresh venv, without and with
the ``bigquery`` extra. ``octogen-sync`` and ``python -m octogen_source`` answer ``--help``/``--version``,
``--demo`` runs from a plain install, a command that needs the missing extra says so in one line, and the
Airflow helpers import without Airflow (the DAGs' module names it; the DAGs themselves, from the installed
package, are tests/test_airflow_dag.py's).

The venvs are installed from uv's cache with the versions pinned by uv.lock (``uv export``): a few seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = shutil.which("uv")

pytestmark = [
    pytest.mark.skipif(UV is None, reason="needs uv to build and install the wheel"),
    pytest.mark.timeout(600),
]


@dataclass
class Installed:
    bin: Path

    def start(self, *argv: str, cwd: Path) -> subprocess.Popen[str]:
        program, *rest = argv
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("SOURCES__", "DESTINATION__", "OCTO_", "VIRTUAL_ENV"))
        }
        env["DLT_DATA_DIR"] = str(cwd / "dlt")
        return subprocess.Popen(
            [str(self.bin / program), *rest],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run_all(self, *commands: tuple[str, ...], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
        """Runs the commands one after the other: the first writes the fresh venv's bytecode, the others
        read it (at once, they would each compile the same modules: slower than in turn on two cores)."""
        done = []
        for argv in commands:
            process = self.start(*argv, cwd=cwd)
            out, err = process.communicate(timeout=180)
            done.append(subprocess.CompletedProcess(argv, process.returncode, out, err))
        return done

    def run(self, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return self.run_all(argv, cwd=cwd)[0]


def _uv(*argv: str, env: dict[str, str] | None = None) -> None:
    assert UV is not None
    done = subprocess.run([UV, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def installs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Installed]]:
    work = tmp_path_factory.mktemp("wheel")
    _uv("build", "--wheel", "--out-dir", str(work / "dist"))
    (wheel,) = (work / "dist").glob("octogen_dlt-*.whl")
    pins = work / "pins.txt"
    _uv(
        "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--extra", "bigquery",
        "--output-file", str(pins),
    )  # fmt: skip
    made: dict[str, Installed] = {}
    for name, requirement in (("plain", str(wheel)), ("bigquery", f"{wheel}[bigquery]")):
        venv = work / name
        _uv("venv", "--quiet", "--python", sys.executable, str(venv))
        env = {**os.environ, "VIRTUAL_ENV": str(venv)}
        _uv("pip", "install", "--quiet", "--constraint", str(pins), requirement, env=env)
        made[name] = Installed(venv / "bin")
    yield made


def test_the_commands_of_a_plain_install(installs: dict[str, Installed], tmp_path: Path) -> None:
    helped, module, versioned = installs["plain"].run_all(
        ("octogen-sync", "--help"),
        ("python", "-m", "octogen_source", "--help"),
        ("octogen-sync", "--version"),
        cwd=tmp_path,
    )
    assert helped.returncode == 0 and helped.stdout.startswith("usage: octogen-sync")
    assert "--demo" in helped.stdout
    assert module.returncode == 0 and module.stdout == helped.stdout
    assert versioned.returncode == 0 and versioned.stdout.strip() == "octogen-sync 0.3.0"


def test_the_demo_runs_from_a_plain_install(installs: dict[str, Installed], tmp_path: Path) -> None:
    demo = installs["plain"].run("octogen-sync", "--demo", "--no-details", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "The biggest discounts:" in demo.stdout and demo.stderr == ""
    with duckdb.connect(str(tmp_path / "octogen_demo.duckdb"), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM octogen.products").fetchone() == (450,)


def test_a_missing_extra_is_one_line_naming_it(installs: dict[str, Installed], tmp_path: Path) -> None:
    for done in installs["plain"].run_all(
        ("octogen-sync", "--destination", "bigquery"),
        ("octogen-bq-subscribe", "--help"),
        ("octogen-bq-autosubscribe", "--help"),
        ("octogen-mcp-login", "--help"),
        cwd=tmp_path,
    ):
        assert done.returncode == 1 and done.stdout == "", done.args
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert done.stderr.startswith("error: ") and "pip install 'octogen-dlt[bigquery]'" in done.stderr


def test_the_bigquery_extra_installs_the_bigquery_commands(
    installs: dict[str, Installed], tmp_path: Path
) -> None:
    commands = ("octogen-bq-subscribe", "octogen-bq-autosubscribe", "octogen-mcp-login")
    *helped, imported = installs["bigquery"].run_all(
        *((command, "--help") for command in commands),
        ("python", "-c", "import google.cloud.bigquery, dlt.destinations; dlt.destinations.bigquery()"),
        cwd=tmp_path,
    )
    for command, done in zip(commands, helped, strict=True):
        assert done.returncode == 0 and done.stdout.startswith(f"usage: {command}"), done.stderr
    assert imported.returncode == 0, imported.stderr


def test_the_airflow_helpers_import_without_airflow_and_the_dags_name_it(
    installs: dict[str, Installed], tmp_path: Path
) -> None:
    helpers, dags = installs["plain"].run_all(
        (
            "python",
            "-c",
            "from octogen_source.airflow.tasks import parse_catalogs, pipeline_name_for as name;"
            " print(parse_catalogs('northwind_apparel, harbor_outfitters'), name('Harbor-Outfitters'))",
        ),
        ("python", "-c", "import octogen_source.airflow.dags"),
        cwd=tmp_path,
    )
    assert helpers.returncode == 0, helpers.stderr
    assert helpers.stdout == "['northwind_apparel', 'harbor_outfitters'] octogen_harbor_outfitters\n"
    assert dags.returncode == 1 and dags.stderr.splitlines()[-1] == (
        "ImportError: octogen_source.airflow.dags needs Apache Airflow 3.2 or newer next to octogen-dlt:"
        " pip install 'apache-airflow>=3.2'"
    )

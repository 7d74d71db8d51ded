"""What the Airflow test modules share (they run inside ``.airflow-venv``): a throwaway AIRFLOW_HOME, the
DAGs as Airflow's DagBag parses them, and one real run of the autosubscribe DAG."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "pipelines" / "octogen_dag.py"


@pytest.fixture(scope="module", autouse=True)
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throwaway AIRFLOW_HOME with a SQLite metadata DB, set before Airflow is first imported; the DAG
    folder holds only a link to the DAG file (``dag.test()`` registers the DAGs of that folder)."""
    home = tmp_path_factory.mktemp("airflow_home")
    dags = home / "dags"
    dags.mkdir()
    (dags / DAG_FILE.name).symlink_to(DAG_FILE)
    with pytest.MonkeyPatch.context() as env:
        # the DAG reads OCTOGEN_* and AIRFLOW_VAR_* / AIRFLOW_CONN_*: only what each test sets counts
        for name in [name for name in os.environ if name.startswith(("OCTOGEN_", "AIRFLOW"))]:
            env.delenv(name)
        env.setenv("AIRFLOW_HOME", str(home))
        env.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
        env.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        from airflow.utils import db

        db.initdb()
        yield home


def load_dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False)
    assert bag.import_errors == {}
    return bag.dags


def run_autosubscribe_dag(*, retries: int | None = None) -> tuple[str, str]:
    """One real run of octogen_bigquery_autosubscribe: the run's and its task's state."""
    dag = load_dags()["octogen_bigquery_autosubscribe"]
    if retries is not None:
        dag.get_task("autosubscribe").retries = retries
    run = dag.test()
    (instance,) = run.get_task_instances()
    return str(run.state), str(instance.state)

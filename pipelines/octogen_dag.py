"""The Octogen DAGs (``octogen_sync``, ``octogen_bigquery_autosubscribe``), built by the installed package:
the same lines work in any dags folder (see docs/airflow.md and :mod:`octogen_source.airflow.dags`)."""

from octogen_source.airflow.dags import build_autosubscribe_dag, build_sync_dag

sync_dag = build_sync_dag()
autosubscribe_dag = build_autosubscribe_dag()

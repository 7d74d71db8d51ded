"""Octogen in Airflow: :mod:`octogen_source.airflow.dags` builds the DAGs (it imports Airflow), and
:mod:`octogen_source.airflow.tasks` holds what their tasks do, importable without Airflow."""

"""Syncing the Octogen source into a destination.

``run_sync(options) -> SyncReport`` is the programmatic entry point (the ``octogen-sync`` CLI and the Airflow
DAG call it). A failure of any kind raises :class:`SyncError` whose message is one readable line (never the
key, never a traceback); the original exception is its ``__cause__``.

Modules: ``options`` (what to sync where), ``run`` (the run itself), ``report`` (what it did),
``failures`` (a failure as one line, and whether retrying can help), ``summary`` (what a person reads).
"""

from octogen_source.sync.failures import (
    MAX_ERROR_LINE,
    SyncError,
    describe_failure,
    failure_is_configuration,
    failure_is_retryable,
    root_cause,
)
from octogen_source.sync.options import DEFAULT_DATASET, DEFAULT_PIPELINE_NAME, SyncOptions
from octogen_source.sync.report import SUMMARY_COLUMNS, SyncReport
from octogen_source.sync.run import run_sync
from octogen_source.sync.summary import format_summary, print_progress

__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_PIPELINE_NAME",
    "MAX_ERROR_LINE",
    "SUMMARY_COLUMNS",
    "SyncError",
    "SyncOptions",
    "SyncReport",
    "describe_failure",
    "failure_is_configuration",
    "failure_is_retryable",
    "format_summary",
    "print_progress",
    "root_cause",
    "run_sync",
]

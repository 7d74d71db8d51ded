"""One sync run: the Octogen source into a destination, with a per-catalog report (``run_sync``)."""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.extract import DltSource

from octogen_source.allocator import hold_malloc_thresholds
from octogen_source.errors import OctogenConfigurationError
from octogen_source.garbage_collection import fewer_collections
from octogen_source.history import record_history
from octogen_source.source import SourceSettings, WalkObserver, build_source, resolve_settings
from octogen_source.source.builder import SOURCE_NAME
from octogen_source.source.first_load import append_on_first_load, holds_no_products, only_appends
from octogen_source.source.leftovers import remove_abandoned_extracts, remove_earlier_loaded_packages
from octogen_source.source.resume import (
    clear_pending_packages,
    dataset_of_pipeline,
    finish_pending_packages,
)
from octogen_source.source.segments import run_in_segments
from octogen_source.source.tables import PRODUCTS, high_water_mark
from octogen_source.sync.failures import (
    SyncError,
    describe_failure,
    failure_is_configuration,
    failure_is_retryable,
)
from octogen_source.sync.held_database import duckdb_held_open
from octogen_source.sync.load_collector import GivingBackMemoryBeforeLoads
from octogen_source.sync.load_memory import appending_large_loads_with_less_memory
from octogen_source.sync.options import SyncOptions
from octogen_source.sync.report import SyncReport
from octogen_source.views import create_analyst_views
from octogen_source.warehouse import (
    apply_destination_hints,
    dataset_clash,
    dataset_in_destination,
    default_duckdb_path,
    destination_for,
)

log = logging.getLogger("octogen_source.sync")


def run_sync(options: SyncOptions) -> SyncReport:
    """Syncs, and reports per catalog. Raises :class:`SyncError` (one line) on any failure.

    Unless ``options.record_history`` is off, the run's figures are appended to ``sync_runs`` (see
    :mod:`octogen_source.history`), a failed run's too when the destination can be reached (not one that
    failed on a configuration mistake). The cyclic garbage collector runs less often meanwhile
    (:mod:`octogen_source.garbage_collection`), and glibc's malloc returns large freed blocks at once
    (:mod:`octogen_source.allocator`, for the rest of the process).
    """
    hold_malloc_thresholds()
    with fewer_collections():
        return _run_sync(options)


def _run_sync(options: SyncOptions) -> SyncReport:
    with ExitStack() as held:
        return _run_sync_holding(options, held)


def _run_sync_holding(options: SyncOptions, held: ExitStack) -> SyncReport:
    """The run; the DuckDB file is held open in ``held`` from the extract on (:mod:`held_database`)."""
    started = time.monotonic()
    report = SyncReport(
        catalogs=[],
        destination=options.destination,
        dataset=dataset_in_destination(options.dataset),
        pipeline_name=options.pipeline_name,
        seconds=0.0,
        load_ids=[],
        high_water=None,
        requested_catalogs=tuple(options.catalogs),
    )
    observer = WalkObserver(on_progress=options.progress)
    try:
        earlier_dataset = dataset_of_pipeline(options.pipeline_name, options.pipelines_dir)
        pipeline = _pipeline(options)
        # resolved in the pipeline's config section, before anything is done: a bad setting changes nothing
        settings = resolve_settings(given_settings(options), retry=options.retry)
        # a run killed during extract left a folder that dlt never reads again; one killed during
        # normalize or load left packages: finish them before extracting anew
        remove_abandoned_extracts(pipeline)
        report.notices = _finish_earlier_loads(pipeline, options, report.dataset, earlier_dataset)
        duckdb_path = _duckdb_path(options)
        first_load = duckdb_path is not None and holds_no_products(duckdb_path)
        if first_load and only_appends(settings):
            appending_large_loads_with_less_memory(pipeline, options.duckdb_memory_limit)
        # after the read-only look above: DuckDB opens a file either way in one process, not both at once
        held_duckdb = held.enter_context(duckdb_held_open(duckdb_path, options.dataset))

        def prepare(source: DltSource) -> None:
            apply_destination_hints(source, options.destination)
            if first_load:
                append_on_first_load(source)

        run_arguments: dict[str, Any] = {"loader_file_format": _loader_file_format(options)}
        if _loads_in_segments(options, settings):
            run_in_segments(
                pipeline,
                settings,
                observer,
                prepare=prepare,
                run_arguments=run_arguments,
                load_ids=report.load_ids,
                between_loads=None if held_duckdb is None else held_duckdb.let_go_and_hold_again,
            )
        else:
            source = build_source(settings, observer)
            prepare(source)
            report.load_ids = list(_load_ids(pipeline.run(source, **run_arguments)))
        create_analyst_views(pipeline)
        remove_earlier_loaded_packages(pipeline, keep=report.load_ids)
        if held_duckdb is not None:  # while the history is made: its load waits for it, the close is short
            held_duckdb.checkpoint_meanwhile()
    except Exception as error:
        base_url = observer.base_url or options.base_url
        line = describe_failure(error, secret=options.api_key, base_url=base_url)
        _finish_report(report, observer, started)
        report.error = line
        # a configuration mistake leaves the destination as it was: nothing to record (and no file to create)
        if options.record_history and not failure_is_configuration(error):
            _record_or_say_why(report, options, "this failed run")
        raise SyncError(line, report=report, retryable=failure_is_retryable(error)) from error
    resource_state = pipeline.state.get("sources", {}).get(SOURCE_NAME, {}).get("resources", {})
    report.high_water = high_water_mark(resource_state.get(PRODUCTS, {}))
    _finish_report(report, observer, started)
    if options.record_history:
        _record_or_say_why(report, options, "this run")
    return report


def _finish_report(report: SyncReport, observer: WalkObserver, started: float) -> None:
    report.catalogs = list(observer.catalogs.values())
    report.catalog_list_requests = observer.overhead.requests
    report.catalog_list_retries = observer.overhead.retries
    report.seconds = time.monotonic() - started
    report.finished_at = datetime.now(UTC)


def _record_or_say_why(report: SyncReport, options: SyncOptions, which: str) -> None:
    """Appends the run to ``sync_runs``; when that fails, a notice in the report says so (``which`` run)."""
    try:
        _record_history(report, options)
    except Exception as history_error:
        # not logged above debug: the CLI's --progress shows this logger, and a failure is one line
        note = describe_failure(history_error, secret=options.api_key)
        report.notices.append(f"{which} could not be recorded in sync_runs: {note}")
        log.debug("%s could not be recorded in sync_runs: %s", which, note)


def _record_history(report: SyncReport, options: SyncOptions) -> None:
    record_history(
        report.catalog_records(),
        destination=destination_for(
            options.destination,
            duckdb_path=_duckdb_path(options),
            duckdb_memory_limit=options.duckdb_memory_limit,
        ),
        dataset=options.dataset,
        pipeline_name=options.pipeline_name,
        pipelines_dir=options.pipelines_dir,
    )


def _finish_earlier_loads(
    pipeline: dlt.Pipeline, options: SyncOptions, written_dataset: str, earlier_dataset: str | None
) -> list[str]:
    """Finishes the loads an earlier run left; one notice when they failed again and were cleared, or were
    made for another dataset (``earlier_dataset``, the pipeline's before this run; ``written_dataset`` is
    this run's as the destination names it) and were dropped."""
    written_earlier = None if earlier_dataset is None else dataset_in_destination(earlier_dataset)
    if written_earlier not in (None, written_dataset) and pipeline.has_pending_data:
        try:
            dropped = clear_pending_packages(pipeline, dataset=written_earlier)
        except Exception as error:
            line = describe_failure(error, secret=options.api_key)
            raise SyncError(
                f"an earlier run left loads pending for dataset {earlier_dataset!r}; they could not be"
                f" dropped safely: {line}; run again once the destination answers",
                retryable=True,
            ) from error
        return [
            f"the loads an earlier run left pending for dataset {earlier_dataset!r} ({', '.join(dropped)})"
            f" were dropped, not loaded into {options.dataset!r}: a sync into {earlier_dataset!r} syncs"
            " their products again"
        ]
    try:
        cleared = finish_pending_packages(pipeline)
    except Exception as error:
        line = describe_failure(error, secret=options.api_key)
        raise SyncError(
            f"an earlier run's load is pending, failed again and could not be cleared safely: {line};"
            f" it is kept: run again once the destination answers (to drop it by hand: dlt pipeline"
            f" {options.pipeline_name} drop-pending-packages, then sync with --refetch-all)",
            retryable=True,
        ) from error
    if cleared is None:
        return []
    line = describe_failure(cleared.error, secret=options.api_key)
    return [
        f"the load an earlier run left pending ({', '.join(cleared.load_ids)}) failed again and was"
        f" cleared ({line}); this run synced its products again"
    ]


def _pipeline(options: SyncOptions) -> dlt.Pipeline:
    clash = dataset_clash(
        options.dataset, pipeline_name=options.pipeline_name, duckdb_path=_duckdb_path(options)
    )
    if clash is not None:
        raise OctogenConfigurationError(clash)  # found before anything is written: nothing recorded
    arguments: dict[str, Any] = {}
    if options.pipelines_dir is not None:
        arguments["pipelines_dir"] = options.pipelines_dir
    if options.collector is not None:
        arguments["progress"] = options.collector
    pipeline = dlt.pipeline(
        pipeline_name=options.pipeline_name,
        destination=destination_for(
            options.destination,
            duckdb_path=_duckdb_path(options),
            duckdb_memory_limit=options.duckdb_memory_limit,
        ),
        dataset_name=options.dataset,
        **arguments,
    )
    pipeline.collector = GivingBackMemoryBeforeLoads(pipeline.collector)
    return pipeline


def _loads_in_segments(options: SyncOptions, settings: SourceSettings) -> bool:
    """DuckDB loads while the walk goes on (:mod:`octogen_source.source.segments`). BigQuery loads each run
    as one package: a load job takes seconds whatever its size and a table takes 1,500 of them a day."""
    return options.destination == "duckdb" and settings.catalogs is not None


def _duckdb_path(options: SyncOptions) -> str | None:
    if options.destination != "duckdb":
        return None
    return options.duckdb_path or default_duckdb_path(options.pipeline_name)


def _loader_file_format(options: SyncOptions) -> str | None:
    """Parquet into DuckDB when pyarrow is there: at 15,000 products it loads in 0.5 s where dlt's default
    (SQL INSERT statements) takes 14 s and gigabytes of memory. BigQuery's format comes from its hints."""
    if options.loader_file_format is not None:
        return options.loader_file_format
    if options.destination == "duckdb" and importlib.util.find_spec("pyarrow") is not None:
        return "parquet"
    return None


def given_settings(options: SyncOptions) -> dict[str, Any]:
    """The source settings ``options`` set: only those, so that dlt resolves the others from its config
    providers (an argument passed, even None, would hide ``[sources.octogen]`` or ``SOURCES__OCTOGEN__*``)."""
    given: dict[str, Any] = {
        "catalogs": list(options.catalogs) or None,
        "facets": list(options.facets) or None,
        "tables": list(options.tables) or None,
        "refetch_all": options.full_refresh,
    }
    for name in (
        "api_key",
        "base_url",
        "q",
        "price_min",
        "price_max",
        "details",
        "page_size",
        "max_concurrent_lookups",
        "max_concurrent_catalogs",
        "retry_max_attempts",
        "retry_max_seconds",
        "max_response_bytes",
        "allow_mass_removal",
        "max_removal_share",
        "schema_contract",
        "walk_in_process",
    ):
        given[name] = getattr(options, name)
    return {name: value for name, value in given.items() if value is not None}


def _load_ids(info: LoadInfo | None) -> Iterator[str]:
    if info is not None:
        yield from info.loads_ids

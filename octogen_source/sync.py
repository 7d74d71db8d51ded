"""One sync run: the Octogen source into a destination, with a per-catalog report.

``run_sync(options) -> SyncReport`` is the programmatic entry point (the CLI in ``pipelines/sync.py`` and the
Airflow DAG call it). A failure of any kind raises :class:`SyncError` whose message is one readable line
(never the key, never a traceback); the original exception is its ``__cause__``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.destination.exceptions import DestinationException
from dlt.common.pipeline import LoadInfo
from dlt.destinations.exceptions import DestinationConnectionError
from dlt.pipeline.exceptions import PipelineStepFailed

from octogen_source.cli import format_table
from octogen_source.errors import (
    MissingAPIKeyError,
    OctogenAPIError,
    OctogenAuthenticationError,
    OctogenConnectionError,
    OctogenError,
    OctogenForbiddenError,
    OctogenInsufficientCreditError,
    OctogenRequestError,
    OctogenValidationError,
)
from octogen_source.garbage_collection import fewer_collections
from octogen_source.history import record_history
from octogen_source.retries import RetryPolicy
from octogen_source.source import CatalogReport, WalkObserver, octogen_source, parse_facet
from octogen_source.source.first_load import append_on_first_load, holds_no_products
from octogen_source.source.leftovers import remove_abandoned_extracts
from octogen_source.source.resume import finish_pending_packages
from octogen_source.source.tables import PRODUCTS, high_water_mark
from octogen_source.views import create_analyst_views
from octogen_source.warehouse import (
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    apply_destination_hints,
    default_duckdb_path,
    destination_for,
)

DEFAULT_PIPELINE_NAME = "octogen_sync"
DEFAULT_DATASET = "octogen"
MAX_ERROR_LINE = 400

log = logging.getLogger("octogen_source.sync")


class SyncError(OctogenError):
    """A sync failed; the message is the one line to show.

    ``report`` is what the failed run did (``outcome`` ``failed``, the figures of the catalogs it reached), as
    recorded in ``sync_runs``; ``None`` only where ``run_sync`` was not involved. ``retryable``: whether
    running the sync again may succeed (:func:`failure_is_retryable` of what failed).
    """

    def __init__(self, message: str, *, report: SyncReport | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.report = report
        self.retryable = retryable


@dataclass(frozen=True)
class SyncOptions:
    """What to sync where; ``None`` leaves a setting to dlt's config (.dlt/config.toml, env) or default."""

    destination: str = "duckdb"
    duckdb_path: str | None = None
    """DuckDB database file; default ``DESTINATION__DUCKDB__CREDENTIALS`` or ``<pipeline_name>.duckdb``."""
    dataset: str = DEFAULT_DATASET
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    pipelines_dir: str | None = None
    """Where dlt keeps the pipeline's working state; default ``DLT_DATA_DIR`` or ``~/.dlt``."""
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    catalogs: tuple[str, ...] = ()
    q: str | None = None
    facets: tuple[str, ...] = ()
    """``name=value1,value2`` each."""
    price_min: float | None = None
    price_max: float | None = None
    details: bool = True
    full_refresh: bool = False
    """Backfill: walk the selected catalogs again and re-load and look up every product as if all had
    changed. Nothing is dropped: other catalogs, price history and removals stay as they are."""
    page_size: int | None = None
    max_concurrent_lookups: int | None = None
    max_concurrent_catalogs: int | None = None
    retry: RetryPolicy | None = None
    loader_file_format: str | None = None
    duckdb_memory_limit: str | None = DEFAULT_DUCKDB_MEMORY_LIMIT
    """DuckDB's memory during the load (spilling beyond it); None: DuckDB's default, 80% of the RAM."""
    max_response_bytes: int | None = None
    """The largest API response body read; default ``sources.octogen.max_response_bytes`` or 16 MiB."""
    allow_mass_removal: bool | None = None
    """Sweep removals even when they would remove more than ``max_removal_share`` of a catalog (or its walk
    listed far fewer products than the last complete one); default ``sources.octogen.allow_mass_removal``."""
    max_removal_share: float | None = None
    progress: Callable[[CatalogReport], None] | None = None
    """Called after each page of each catalog (the CLI's ``--progress``)."""
    collector: Any = None
    """dlt's progress collector for extract, normalize and load (``dlt.pipeline(progress=...)``): a name
    (``"log"``, ``"tqdm"``, ...) or a collector such as ``dlt.progress.log(logger=sys.stderr)``."""
    record_history: bool = True
    """Append the run's per-catalog figures to ``sync_runs`` in the dataset (also when the sync fails)."""


@dataclass
class SyncReport:
    """What one sync did."""

    catalogs: list[CatalogReport]
    destination: str
    dataset: str
    pipeline_name: str
    seconds: float
    load_ids: list[str]
    high_water: datetime | None
    """The newest updatedAt any sync of this pipeline has seen (kept in the ``products`` resource state)."""
    catalog_list_requests: int = 0
    """Requests spent listing the catalogs (not attributed to one catalog)."""
    catalog_list_retries: int = 0
    """Retried requests among those."""
    notices: list[str] = field(default_factory=list)
    """What the run did before syncing that the user must know (a failed earlier load it cleared)."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """This run's id in ``sync_runs`` (one row per catalog)."""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    error: str | None = None
    """The one-line error of a failed run (then ``outcome`` is ``failed``)."""
    requested_catalogs: tuple[str, ...] = ()
    """The catalogs the run was asked for: a failed run reports those it never reached with zero figures."""

    def total(self, name: str) -> int:
        return sum(getattr(report, name) for report in self.catalogs)

    @property
    def requests(self) -> int:
        return self.total("requests") + self.catalog_list_requests

    @property
    def retries(self) -> int:
        return self.total("retries") + self.catalog_list_retries

    @property
    def warnings(self) -> list[str]:
        """One line each: skipped removal sweeps, records refused or cut, an earlier load cleared."""
        return [*self.notices, *(line for report in self.catalogs for line in report.warnings())]

    @property
    def outcome(self) -> str:
        """``failed`` (see ``error``), ``warnings`` (see ``warnings``) or ``ok``."""
        if self.error is not None:
            return "failed"
        return "warnings" if self.warnings else "ok"

    def catalog_records(self) -> list[dict[str, Any]]:
        """One JSON-ready record per catalog: the rows this run appends to ``sync_runs``.

        A failed run also lists the requested catalogs it never reached (zero figures), or, when it knew
        none, one record whose ``catalog`` is ``None``.
        """
        finished_at = self.finished_at or datetime.now(UTC)
        base: dict[str, Any] = {
            "run_id": self.run_id,
            "pipeline_name": self.pipeline_name,
            "load_id": self.load_ids[-1] if self.load_ids else None,
            "outcome": self.outcome,
            "error": self.error,
            "destination": self.destination,
            "dataset": self.dataset,
        }
        records: list[dict[str, Any]] = []
        for report in self.catalogs:
            started_at = self.started_at + timedelta(seconds=max(0.0, report.started - self._clock))
            finished = (
                started_at + timedelta(seconds=report.seconds) if report.finished is not None else finished_at
            )
            warnings = [*self.notices, *report.warnings()]
            outcome = base["outcome"] if self.error is not None or not warnings else "warnings"
            records.append(
                {
                    **base,
                    "catalog": report.catalog,
                    "started_at": started_at,
                    "finished_at": finished,
                    **{name: getattr(report, name) for name in _SUMMARY_COLUMNS[:-1]},
                    "seconds": round(report.seconds, 3),
                    "outcome": outcome,
                    "warnings": warnings,
                }
            )
        reached = {report.catalog for report in self.catalogs}
        missing = [catalog for catalog in self.requested_catalogs if catalog not in reached]
        if self.error is not None and not records and not missing:
            missing = [None]  # type: ignore[list-item]
        for catalog in missing if self.error is not None else ():
            records.append(
                {
                    **base,
                    "catalog": catalog,
                    "started_at": self.started_at,
                    "finished_at": finished_at,
                    **dict.fromkeys(_SUMMARY_COLUMNS[:-1], 0),
                    "seconds": 0.0,
                    "warnings": list(self.notices),
                }
            )
        return records

    def as_dict(self) -> dict[str, Any]:
        """The whole run as JSON-ready values (``json.dumps(report.as_dict())``): what ``--json`` prints."""
        records = self.catalog_records()
        return {
            "run_id": self.run_id,
            "pipeline_name": self.pipeline_name,
            "destination": self.destination,
            "dataset": self.dataset,
            "started_at": self.started_at.isoformat(),
            "finished_at": (self.finished_at or datetime.now(UTC)).isoformat(),
            "seconds": round(self.seconds, 3),
            "outcome": self.outcome,
            "error": self.error,
            "warnings": self.warnings,
            "load_ids": list(self.load_ids),
            "high_water": self.high_water.isoformat() if self.high_water else None,
            "totals": {
                **{name: self.total(name) for name in ("new", "changed", "removed", "lookups")},
                "requests": self.requests,
                "retries": self.retries,
            },
            "catalogs": [
                {
                    name: value.isoformat() if isinstance(value, datetime) else value
                    for name, value in record.items()
                    if name not in ("run_id", "pipeline_name", "destination", "dataset", "error")
                }
                for record in records
            ],
        }

    _clock: float = field(default_factory=time.monotonic, repr=False)
    """``time.monotonic()`` at ``started_at`` (the catalogs' clocks are monotonic)."""


def run_sync(options: SyncOptions) -> SyncReport:
    """Syncs, and reports per catalog. Raises :class:`SyncError` (one line) on any failure.

    Unless ``options.record_history`` is off, the run's figures are appended to ``sync_runs`` (see
    :mod:`octogen_source.history`), a failed run's too when the destination can be reached. The cyclic
    garbage collector runs less often meanwhile (:mod:`octogen_source.garbage_collection`).
    """
    with fewer_collections():
        return _run_sync(options)


def _run_sync(options: SyncOptions) -> SyncReport:
    started = time.monotonic()
    report = SyncReport(
        catalogs=[],
        destination=options.destination,
        dataset=options.dataset,
        pipeline_name=options.pipeline_name,
        seconds=0.0,
        load_ids=[],
        high_water=None,
        requested_catalogs=tuple(options.catalogs),
    )
    observer = WalkObserver(on_progress=options.progress)
    try:
        pipeline = _pipeline(options)
        # a run killed during extract left a folder that dlt never reads again; one killed during
        # normalize or load left packages: finish them before extracting anew
        remove_abandoned_extracts(pipeline)
        report.notices = _finish_earlier_loads(pipeline, options)
        source = octogen_source(**_source_arguments(options, observer))
        apply_destination_hints(source, options.destination)
        duckdb_path = _duckdb_path(options)
        if duckdb_path is not None and holds_no_products(duckdb_path):
            append_on_first_load(source)
        run_arguments: dict[str, Any] = {"loader_file_format": _loader_file_format(options)}
        info = pipeline.run(source, **run_arguments)
        report.load_ids = list(_load_ids(info))
        create_analyst_views(pipeline)
    except Exception as error:
        base_url = observer.base_url or options.base_url
        line = describe_failure(error, secret=options.api_key, base_url=base_url)
        _finish_report(report, observer, started)
        report.error = line
        if options.record_history:
            try:
                _record_history(report, options)
            except Exception as history_error:
                # not logged above debug: the CLI's --progress shows this logger, and a failure is one line
                note = describe_failure(history_error, secret=options.api_key)
                report.notices.append(f"this failed run could not be recorded in sync_runs: {note}")
                log.debug("the failed sync could not be recorded in sync_runs: %s", note)
        raise SyncError(line, report=report, retryable=failure_is_retryable(error)) from error
    resource_state = pipeline.state.get("sources", {}).get(source.name, {}).get("resources", {})
    report.high_water = high_water_mark(resource_state.get(PRODUCTS, {}))
    _finish_report(report, observer, started)
    if options.record_history:
        try:
            _record_history(report, options)
        except Exception as history_error:
            line = describe_failure(history_error, secret=options.api_key)
            report.notices.append(f"this run could not be recorded in sync_runs: {line}")
    return report


def _finish_report(report: SyncReport, observer: WalkObserver, started: float) -> None:
    report.catalogs = list(observer.catalogs.values())
    report.catalog_list_requests = observer.overhead.requests
    report.catalog_list_retries = observer.overhead.retries
    report.seconds = time.monotonic() - started
    report.finished_at = datetime.now(UTC)


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


def _finish_earlier_loads(pipeline: dlt.Pipeline, options: SyncOptions) -> list[str]:
    """Finishes the loads an earlier run left; one notice when they failed again and were cleared."""
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
    if options.pipeline_name == options.dataset:
        # DuckDB cannot tell the database from the schema when both have one name
        raise SyncError(f"the pipeline name and the dataset must differ (both are {options.dataset!r})")
    if options.duckdb_path is not None and Path(options.duckdb_path).stem == options.dataset:
        raise SyncError(
            f"the DuckDB file {options.duckdb_path!r} is named like the dataset {options.dataset!r}:"
            " DuckDB cannot tell them apart; rename the file or pass another --dataset"
        )
    arguments: dict[str, Any] = {}
    if options.pipelines_dir is not None:
        arguments["pipelines_dir"] = options.pipelines_dir
    if options.collector is not None:
        arguments["progress"] = options.collector
    return dlt.pipeline(
        pipeline_name=options.pipeline_name,
        destination=destination_for(
            options.destination,
            duckdb_path=_duckdb_path(options),
            duckdb_memory_limit=options.duckdb_memory_limit,
        ),
        dataset_name=options.dataset,
        **arguments,
    )


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


def _source_arguments(options: SyncOptions, observer: WalkObserver) -> dict[str, Any]:
    facets = [parse_facet(text) for text in options.facets]  # malformed facets fail before any request
    arguments: dict[str, Any] = {
        "details": options.details,
        "refetch_all": options.full_refresh,
        "observer": observer,
        "retry": options.retry,
    }
    # left out when unset, so that dlt resolves them from its config providers (an argument passed, even
    # None, would hide [sources.octogen] catalogs or SOURCES__OCTOGEN__CATALOGS)
    given: dict[str, Any] = {
        "catalogs": list(options.catalogs) or None,
        "q": options.q,
        "facets": facets or None,
        "price_min": options.price_min,
        "price_max": options.price_max,
    }
    for name in (
        "api_key",
        "base_url",
        "page_size",
        "max_concurrent_lookups",
        "max_concurrent_catalogs",
        "max_response_bytes",
        "allow_mass_removal",
        "max_removal_share",
    ):
        given[name] = getattr(options, name)
    arguments.update({name: value for name, value in given.items() if value is not None})
    return arguments


def _load_ids(info: LoadInfo | None) -> Iterator[str]:
    if info is not None:
        yield from info.loads_ids


# ---- failures -> one line ---------------------------------------------------------------------------------


def describe_failure(error: BaseException, *, secret: str | None = None, base_url: str | None = None) -> str:
    """One readable line for a failed sync: the root cause, never a traceback, never the key."""
    cause = root_cause(error)
    line = _describe(cause, error, base_url)
    # dlt puts a failed job's whole traceback into its message: the line ends where it starts
    line = _TRACEBACK.split(line, maxsplit=1)[0].rstrip(" :")
    line = " ".join(line.split())
    for key in (secret, *_environment_keys()):
        if key:
            line = line.replace(key, "[redacted]")
    return line if len(line) <= MAX_ERROR_LINE else line[: MAX_ERROR_LINE - 3] + "..."


def _environment_keys() -> Sequence[str]:
    return [
        value for name in ("OCTO_API_KEY", "SOURCES__OCTOGEN__API_KEY") if (value := os.environ.get(name))
    ]


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: dlt's step failures, causes and contexts."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, PipelineStepFailed):
            current = current.exception
        else:
            current = current.__cause__ or current.__context__


def root_cause(error: BaseException) -> BaseException:
    """The first Octogen error in the chain, else the first destination error, else the innermost error."""
    chain = list(_chain(error))
    for candidate in chain:
        if isinstance(candidate, OctogenError):
            return candidate
    for candidate in chain:
        if isinstance(candidate, DestinationException | ConfigFieldMissingException):
            return candidate
    return chain[-1]


def failure_is_retryable(error: BaseException) -> bool:
    """Whether running the failed sync again may succeed: the ``retryable`` of the first Octogen error in the
    chain (set where it was raised: the API unreachable, 429 or 5xx after the client's own retries), or, for
    anything outside Octogen's errors (the warehouse, the network to it), yes. A rejected or missing key, a
    catalog the key may not read, a refused request or a configuration mistake: no."""
    cause = root_cause(error)
    if isinstance(cause, OctogenError):
        return cause.retryable
    return True


def _describe(cause: BaseException, error: BaseException, base_url: str | None) -> str:
    if isinstance(cause, SyncError | MissingAPIKeyError):
        return str(cause)
    if isinstance(cause, OctogenInsufficientCreditError):
        top_up = f" at {cause.top_up_url}" if cause.top_up_url else " in the Octogen platform"
        return (
            "the Octogen organization's prepaid credit is exhausted (402): nothing was loaded from this run;"
            f" top up{top_up}, then run the sync again"
        )
    if isinstance(cause, OctogenAuthenticationError):
        return f"the Octogen API rejected the API key (401 {_detail(cause)})"
    if isinstance(cause, OctogenForbiddenError):
        return f"the API key is not allowed to do this (403 {_detail(cause)})"
    if isinstance(cause, OctogenRequestError) and cause.detail:
        return f"invalid request, not sent: {_detail(cause)}"
    if isinstance(cause, OctogenValidationError):
        return f"the Octogen API rejected the request: {_detail(cause)}"
    if isinstance(cause, OctogenConnectionError) and base_url:
        return f"cannot reach the Octogen API at {base_url}: " + str(cause).replace(
            "Could not reach the Octogen API on ", ""
        )
    if isinstance(cause, OctogenError):
        return str(cause)
    step = error.step if isinstance(error, PipelineStepFailed) else None
    where = f" during {step}" if step else ""
    if isinstance(cause, ConfigFieldMissingException):
        return (
            f"missing configuration{where}: {cause.spec_name} needs {', '.join(cause.fields)}"
            " (set it in .dlt/secrets.toml, .dlt/config.toml or the environment)"
        )
    if isinstance(cause, DestinationConnectionError):
        reason = _first_line(cause.inner_exc)
        return f"cannot connect to the destination (dataset {cause.dataset_name!r}): {reason}"
    if isinstance(cause, DestinationException) or step == "load":
        return f"the destination failed{where}: {_first_line(cause)}"
    return f"{type(cause).__name__}{where}: {_first_line(cause)}"


def _detail(error: OctogenAPIError | OctogenRequestError) -> str:
    detail = error.detail
    if isinstance(detail, list):
        return "; ".join(
            ".".join(str(part) for part in problem.get("loc") or ()) + f": {problem.get('msg', '')}"
            for problem in detail
            if isinstance(problem, dict)
        )
    return str(detail) if detail is not None else str(error)


_BLANK_LINES = re.compile(r"\n\s*\n")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|\n\s*File \"")


def _first_line(error: BaseException) -> str:
    """The first paragraph of an error message (dlt's messages go on with advice over many lines)."""
    text = str(error).strip() or type(error).__name__
    return _BLANK_LINES.split(text, maxsplit=1)[0]


# ---- the summary ------------------------------------------------------------------------------------------

_SUMMARY_COLUMNS = ("new", "changed", "removed", "lookups", "requests", "retries", "seconds")


def format_summary(report: SyncReport) -> str:
    """The per-catalog table the CLI prints after a sync."""
    rows = [
        [r.catalog, *(str(getattr(r, name)) for name in _SUMMARY_COLUMNS[:-1]), f"{r.seconds:.1f}"]
        for r in report.catalogs
    ]
    totals = [
        "total",
        *(str(report.total(name)) for name in ("new", "changed", "removed", "lookups")),
        str(report.requests),
        str(report.retries),
        f"{report.seconds:.1f}",
    ]
    lines = format_table(["catalog", *_SUMMARY_COLUMNS], [*rows, totals], right=range(1, 8))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    high_water = report.high_water.isoformat() if report.high_water else "none"
    lines.append(
        f"synced into {report.destination} dataset {report.dataset!r} (pipeline {report.pipeline_name!r});"
        f" newest updatedAt seen: {high_water}"
    )
    lines.extend(f"warning: {line}" for line in report.warnings)
    return "\n".join(lines)


def print_progress(stream: TextIO = sys.stderr) -> Callable[[CatalogReport], None]:
    """A ``SyncOptions.progress`` callback: one line per catalog at most every second, and at its end."""
    last_printed: dict[str, float] = {}

    def show(report: CatalogReport) -> None:
        now = time.monotonic()
        done = report.finished is not None
        if not done and now - last_printed.get(report.catalog, 0.0) < 1.0:
            return
        last_printed[report.catalog] = now
        state = "done" if done else "walking"
        stream.write(
            f"{report.catalog}: {state}, {report.walked} products seen, {report.new} new, "
            f"{report.changed} changed, {report.removed} removed, {report.lookups} lookups\n"
        )
        stream.flush()

    return show

"""``octogen-sync``: sync Octogen catalogs into DuckDB or BigQuery.

    octogen-sync --demo                 # a local sandbox into ./octogen_demo.duckdb
    octogen-sync                        # the configured catalogs into <pipeline>.duckdb
    octogen-sync --destination bigquery --catalog northwind_apparel
    octogen-sync --discover www.example-store.com   # which catalogs serve a store

``python -m octogen_source`` and ``python pipelines/sync.py`` (in a checkout) run the same ``main``. The key
comes from OCTO_API_KEY, SOURCES__OCTOGEN__API_KEY or .dlt/secrets.toml. Exit status 0 on success; on
failure one line on stderr and status 1 (2 for bad arguments; 1 too when an extra is not installed).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.schema.typing import TSchemaContract

from octogen_source.cli import OneLineArgumentParser
from octogen_source.commands.check import all_passed, checks_json, format_checks, run_checks
from octogen_source.commands.demo import DEMO_DATABASE, run_demo
from octogen_source.commands.extras import missing_bigquery_extra
from octogen_source.commands.output import failure_json, report_json
from octogen_source.discover import configured_base_url, discover, discovery_json, format_discovery
from octogen_source.errors import OctogenError
from octogen_source.sandbox.generations import API_GENERATIONS
from octogen_source.source import InvalidSettingError, parse_facet
from octogen_source.source.config import schema_contract_setting, table_selection
from octogen_source.source.settings import base_url_complaint
from octogen_source.sync import (
    DEFAULT_DATASET,
    DEFAULT_PIPELINE_NAME,
    SyncError,
    SyncOptions,
    describe_failure,
    failure_is_configuration,
    format_summary,
    print_progress,
    run_sync,
)
from octogen_source.warehouse import (
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    SUPPORTED_DESTINATIONS,
    dataset_clash,
    memory_bytes,
)

MIN_DUCKDB_MEMORY_LIMIT = "32MB"
"""The smallest ``--duckdb-memory-limit``: below it DuckDB runs out of memory merging even a few products."""

FULL_REFRESH_DEPRECATED = (
    "warning: --full-refresh is deprecated, use --refetch-all: it fetches every product of the selected"
    " catalogs again and drops nothing (in dlt, a full refresh starts the data over)"
)


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog="octogen-sync",
        prog_in_errors=False,
        description="Sync Octogen catalogs (products, details, price history) into DuckDB or BigQuery.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--check",
        action="store_true",
        help="check the key, each configured catalog, the credit and the destination without loading"
        " anything; one line per check, exit 0 only if all pass",
    )
    modes.add_argument("--demo", action="store_true", help=f"sync a local sandbox into ./{DEMO_DATABASE}")
    modes.add_argument(
        "--discover",
        metavar="HOST",
        help="print the catalogs serving a store (a host or any URL on it), then exit",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the result of a sync (per-catalog figures, totals, warnings, load ids), of --check or of"
        " --discover as JSON on stdout instead of the tables",
    )
    parser.add_argument(
        "--api-generation",
        choices=API_GENERATIONS,
        help="with --demo: the sandbox speaks today's API (current, the default) or the May 2026 one (seed)",
    )
    parser.add_argument("--destination", choices=SUPPORTED_DESTINATIONS, default="duckdb")
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME, help=argparse.SUPPRESS)
    # The source's settings: each defaults to "not given" (None), so that sources.octogen.* in
    # .dlt/config.toml or SOURCES__OCTOGEN__* in the environment apply unless a flag is given.
    source = parser.add_argument_group(
        "source settings", "each overrides sources.octogen.<setting> (.dlt/config.toml, SOURCES__OCTOGEN__*)"
    )
    source.add_argument("--catalog", action="append", default=[], metavar="KEY", help="repeatable")
    source.add_argument(
        "--base-url", type=base_url, metavar="URL", help="the Octogen API (https://api.octogen.ai/v1)"
    )
    source.add_argument("--q", help="keyword filter (a filtered sync never marks products removed)")
    source.add_argument(
        "--facet", action="append", default=[], metavar="NAME=V1,V2", help="facet filter, repeatable"
    )
    source.add_argument("--price-min", type=non_negative_float, metavar="PRICE")
    source.add_argument("--price-max", type=non_negative_float, metavar="PRICE")
    source.add_argument(
        "--details",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="look up new and changed products (on; --no-details skips the lookups and product_details)",
    )
    source.add_argument(
        "--tables",
        type=table_names,
        metavar="T1,T2",
        help="the tables to load, among catalogs, products, product_details, price_history (all)",
    )
    source.add_argument(
        "--schema-contract",
        type=schema_contract,
        metavar="MODE",
        help="dlt's schema contract: freeze, evolve, discard_row, discard_value, or JSON such as"
        ' \'{"columns": "freeze"}\' (evolve)',
    )
    source.add_argument("--page-size", type=positive_int, metavar="N", help="search page size, 1..100 (100)")
    source.add_argument(
        "--max-concurrent-lookups", type=positive_int, metavar="N", help="lookups in flight at once (16)"
    )
    source.add_argument(
        "--max-concurrent-catalogs", type=positive_int, metavar="N", help="catalogs walked at once (4)"
    )
    source.add_argument(
        "--retry-max-attempts",
        type=positive_int,
        metavar="N",
        help="attempts per request, the first included (6)",
    )
    source.add_argument(
        "--retry-max-seconds",
        type=positive_float,
        metavar="S",
        help="seconds per request, retries included (120)",
    )
    source.add_argument(
        "--refetch-all",
        action="store_true",
        default=None,
        help="backfill: walk the selected catalogs again, re-load and look up every product"
        " (nothing is dropped: not dlt's 'full refresh')",
    )
    source.add_argument(
        "--full-refresh", action="store_true", default=None, help="deprecated: the old name of --refetch-all"
    )
    parser.add_argument(
        "--duckdb-memory-limit",
        type=memory_size,
        default=DEFAULT_DUCKDB_MEMORY_LIMIT,
        metavar="SIZE",
        help=f"DuckDB's memory during the load, spilling beyond it ({DEFAULT_DUCKDB_MEMORY_LIMIT};"
        f" at least {MIN_DUCKDB_MEMORY_LIMIT}; half of it for a load of more than 500,000 rows that only"
        " appends, such as a first sync without details)",
    )
    source.add_argument(
        "--max-response-bytes",
        type=positive_int,
        metavar="N",
        help="refuse API answers larger than N bytes (16 MiB)",
    )
    source.add_argument(
        "--max-removal-share",
        type=share,
        metavar="F",
        help="skip a removal sweep that would remove more than this share of a catalog (0.2)",
    )
    source.add_argument(
        "--allow-mass-removal",
        action="store_true",
        default=None,
        help="mark removals even when a walk would remove more than --max-removal-share of a catalog",
    )
    source.add_argument(
        "--walk-in-process",
        action="store_true",
        default=None,
        help="walk the API in a child process of its own (Linux, DuckDB): faster, more memory",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show the walk per catalog and dlt's extract/normalize/load progress on stderr",
    )
    return parser


def package_version() -> str:
    try:
        return version("octogen-dlt")
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def non_negative_float(text: str) -> float:
    return _number(text, lambda value: value >= 0 and math.isfinite(value), "a number >= 0")


def positive_float(text: str) -> float:
    return _number(text, lambda value: value > 0 and math.isfinite(value), "a number > 0")


def share(text: str) -> float:
    return _number(text, lambda value: 0 <= value <= 1, "a share between 0 and 1")


def _number(text: str, accepted: Callable[[float], bool], what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not accepted(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def table_names(text: str) -> tuple[str, ...]:
    """``products,price_history``: known table names, else one line listing them."""
    try:
        return table_selection(text)
    except InvalidSettingError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("sources.octogen.tables: ")) from None


def schema_contract(text: str) -> TSchemaContract | None:
    try:
        return schema_contract_setting(text)
    except InvalidSettingError as error:
        raise argparse.ArgumentTypeError(
            str(error).removeprefix("sources.octogen.schema_contract: ")
        ) from None


def base_url(text: str) -> str:
    """An http(s) URL with a host (and a port from 1 to 65535 if it names one)."""
    complaint = base_url_complaint(text)
    if complaint is not None:
        raise argparse.ArgumentTypeError(complaint)
    return text


def memory_size(text: str) -> str:
    """A DuckDB memory size such as ``128MB`` or ``1.5GiB``, at least :data:`MIN_DUCKDB_MEMORY_LIMIT`."""
    size, minimum = memory_bytes(text), memory_bytes(MIN_DUCKDB_MEMORY_LIMIT)
    if size is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size such as 128MB or 1GB")
    if minimum is not None and size < minimum:
        raise argparse.ArgumentTypeError(
            f"{text!r} is below the minimum of {MIN_DUCKDB_MEMORY_LIMIT}"
            " (expected a size such as 128MB or 1GB)"
        )
    return text.strip()


def options_from(arguments: argparse.Namespace) -> SyncOptions:
    for facet in arguments.facet:
        parse_facet(facet)  # a malformed facet fails here, before the pipeline starts
    price_min, price_max = arguments.price_min, arguments.price_max
    if price_min is not None and price_max is not None and price_min > price_max:
        raise InvalidSettingError(f"--price-min ({price_min:g}) is above --price-max ({price_max:g})")
    if not arguments.dataset.strip():
        raise InvalidSettingError(f"--dataset needs a dataset name (such as {DEFAULT_DATASET!r})")
    if any(not catalog.strip() for catalog in arguments.catalog):
        raise InvalidSettingError("--catalog needs a catalog key (find them with --discover <store host>)")
    clash = dataset_clash(arguments.dataset, pipeline_name=arguments.pipeline_name, duckdb_path=None)
    if clash is not None:
        raise InvalidSettingError(f"--dataset: {clash}")
    return SyncOptions(
        destination=arguments.destination,
        dataset=arguments.dataset,
        pipeline_name=arguments.pipeline_name,
        catalogs=tuple(arguments.catalog),
        base_url=arguments.base_url,
        q=arguments.q,
        facets=tuple(arguments.facet),
        price_min=arguments.price_min,
        price_max=arguments.price_max,
        details=arguments.details,
        tables=arguments.tables or (),
        schema_contract=arguments.schema_contract,
        page_size=arguments.page_size,
        max_concurrent_lookups=arguments.max_concurrent_lookups,
        max_concurrent_catalogs=arguments.max_concurrent_catalogs,
        retry_max_attempts=arguments.retry_max_attempts,
        retry_max_seconds=arguments.retry_max_seconds,
        full_refresh=arguments.refetch_all or arguments.full_refresh,
        duckdb_memory_limit=arguments.duckdb_memory_limit,
        max_response_bytes=arguments.max_response_bytes,
        max_removal_share=arguments.max_removal_share,
        allow_mass_removal=arguments.allow_mass_removal,
        walk_in_process=arguments.walk_in_process,
        progress=print_progress(sys.stderr) if arguments.progress else None,
        collector=dlt_progress() if arguments.progress else None,
    )


def dlt_progress() -> Any:
    """dlt's own progress of extract, normalize and load, on stderr every 2 s (stdout stays the result)."""
    import dlt

    return dlt.progress.log(log_period=2.0, logger=sys.stderr, dump_system_stats=False)


def configure_logging(progress: bool) -> None:
    """Quiet by default (the summary or the one error line is the output); with --progress dlt's warnings
    and the client's retries are shown too. ``RUNTIME__LOG_LEVEL`` still wins for dlt."""
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING" if progress else "ERROR")
    logger = logging.getLogger("octogen_source")
    logger.setLevel(logging.INFO if progress else logging.CRITICAL)
    # a run that fails part-way leaves the walk's async generators to be closed by the event loop's shutdown,
    # which asyncio reports on stderr; the failure itself is the one line
    logging.getLogger("asyncio").setLevel(logging.INFO if progress else logging.CRITICAL)
    if progress and not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def exit_status(error: BaseException) -> int:
    """2 for a mistake in the arguments or configuration (see :func:`failure_is_configuration`), else 1."""
    return 2 if failure_is_configuration(error) else 1


def _base_url(arguments: argparse.Namespace) -> str | None:
    """The API base URL a failed command used, for its error line (None: the configuration is unreadable)."""
    try:
        return arguments.base_url or configured_base_url()
    except Exception:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
        if arguments.api_generation is not None and not arguments.demo:
            parser.error("--api-generation only applies to --demo")
    except SystemExit as exit_:  # --help, or a bad argument (already reported on one line)
        status = exit_.code if isinstance(exit_.code, int) else 2
        if status == 2 and "--json" in argv and parser.error_message is not None:
            print(failure_json(None, parser.error_message))
        return status
    configure_logging(arguments.progress)
    if arguments.full_refresh:
        print(FULL_REFRESH_DEPRECATED, file=sys.stderr)

    def fail(line: str, status: int, error: BaseException | None = None) -> int:
        print(line, file=sys.stderr)
        if arguments.json:
            print(failure_json(error, line.removeprefix("error: ")))
        return status

    try:
        options = options_from(arguments)
    except InvalidSettingError as error:
        return fail(f"error: {error} (see --help)", 2)
    if arguments.destination == "bigquery" and not arguments.demo and arguments.discover is None:
        missing = missing_bigquery_extra("--destination bigquery")
        if missing is not None:
            return fail(missing, 1)

    try:
        if arguments.discover is not None:
            found = discover(arguments.discover, api_key=None, base_url=arguments.base_url)
            print(discovery_json(found) if arguments.json else format_discovery(found))
        elif arguments.check:
            checks = run_checks(options)
            print(checks_json(checks) if arguments.json else format_checks(checks))
            return 0 if all_passed(checks) else 1
        elif arguments.demo:
            run_demo(options, arguments.api_generation or API_GENERATIONS[0], as_json=arguments.json)
        else:
            report = run_sync(options)
            print(report_json(report) if arguments.json else format_summary(report))
    except SyncError as error:
        return fail(f"error: {error}", exit_status(error), error)
    except (OctogenError, ConfigurationException) as error:
        line = describe_failure(error, secret=options.api_key, base_url=_base_url(arguments))
        return fail(f"error: {line}", exit_status(error), error)
    except KeyboardInterrupt:
        return fail("error: interrupted", 130)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly instead of a traceback at interpreter exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())

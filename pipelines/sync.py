"""Sync Octogen catalogs into DuckDB or BigQuery.

    uv run python pipelines/sync.py --demo                 # a local sandbox into ./octogen_demo.duckdb
    uv run python pipelines/sync.py                        # every granted catalog into <pipeline>.duckdb
    uv run python pipelines/sync.py --destination bigquery --catalog northwind_apparel
    uv run python pipelines/sync.py --discover www.example-store.com   # which catalogs serve a store

The key comes from OCTO_API_KEY, SOURCES__OCTOGEN__API_KEY or .dlt/secrets.toml. Exit status 0 on
success; on failure one line on stderr and status 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from octogen_source.cli import OneLineArgumentParser
from octogen_source.discover import discover, format_discovery
from octogen_source.errors import OctogenError, OctogenValidationError
from octogen_source.sandbox.generations import API_GENERATIONS
from octogen_source.source import InvalidSettingError, parse_facet
from octogen_source.sync import (
    DEFAULT_DATASET,
    DEFAULT_PIPELINE_NAME,
    SyncError,
    SyncOptions,
    format_summary,
    print_progress,
    run_sync,
)
from octogen_source.warehouse import DEFAULT_DUCKDB_MEMORY_LIMIT, SUPPORTED_DESTINATIONS, memory_bytes

DEMO_DATABASE = "octogen_demo.duckdb"
DEMO_PIPELINE = "octogen_demo"
DEMO_QUERY = """\
SELECT catalog, title, brand, current_price, original_price,
       ROUND(100 * (1 - current_price / original_price)) AS discount_pct, in_stock, sizes
FROM octogen.products_current
WHERE original_price > current_price
ORDER BY discount_pct DESC, current_price DESC, title
LIMIT 5"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="pipelines/sync.py",
        prog_in_errors=False,
        description="Sync Octogen catalogs (products, details, price history) into DuckDB or BigQuery.",
    )
    parser.add_argument("--demo", action="store_true", help=f"sync a local sandbox into ./{DEMO_DATABASE}")
    parser.add_argument(
        "--api-generation",
        choices=API_GENERATIONS,
        default=API_GENERATIONS[0],
        help="with --demo: the sandbox speaks today's API (current) or the May 2026 one (seed)",
    )
    parser.add_argument(
        "--discover",
        metavar="HOST",
        help="print the catalogs serving a store (a host or any URL on it), then exit",
    )
    parser.add_argument("--destination", choices=SUPPORTED_DESTINATIONS, default="duckdb")
    parser.add_argument("--catalog", action="append", default=[], metavar="KEY", help="repeatable")
    parser.add_argument("--q", help="keyword filter (a filtered sync never marks products removed)")
    parser.add_argument(
        "--facet", action="append", default=[], metavar="NAME=V1,V2", help="facet filter, repeatable"
    )
    parser.add_argument("--price-min", type=float)
    parser.add_argument("--price-max", type=float)
    parser.add_argument("--no-details", action="store_true", help="skip the detail lookups")
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME, help=argparse.SUPPRESS)
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="backfill: re-load and look up every product of the selected catalogs (nothing is dropped)",
    )
    parser.add_argument(
        "--duckdb-memory-limit",
        type=memory_size,
        default=DEFAULT_DUCKDB_MEMORY_LIMIT,
        metavar="SIZE",
        help=f"DuckDB's memory during the load, spilling beyond it ({DEFAULT_DUCKDB_MEMORY_LIMIT})",
    )
    parser.add_argument(
        "--max-response-bytes",
        type=positive_int,
        metavar="N",
        help="refuse API answers larger than N bytes (default 16 MiB, sources.octogen.max_response_bytes)",
    )
    parser.add_argument(
        "--allow-mass-removal",
        action="store_true",
        default=None,
        help="mark removals even when a walk would remove more than 20%% of a catalog (see README)",
    )
    parser.add_argument("--progress", action="store_true", help="print progress per catalog on stderr")
    return parser


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def memory_size(text: str) -> str:
    """A DuckDB memory size such as ``128MB`` or ``1.5GiB``."""
    if memory_bytes(text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size such as 128MB or 1GB")
    return text.strip()


def options_from(arguments: argparse.Namespace) -> SyncOptions:
    for facet in arguments.facet:
        parse_facet(facet)  # a malformed facet fails here, before the pipeline starts
    price_min, price_max = arguments.price_min, arguments.price_max
    if price_min is not None and price_max is not None and price_min > price_max:
        raise InvalidSettingError(f"--price-min ({price_min:g}) is above --price-max ({price_max:g})")
    if arguments.dataset == arguments.pipeline_name:
        raise InvalidSettingError(f"--dataset must differ from the pipeline name {arguments.pipeline_name!r}")
    for name in ("price_min", "price_max"):
        value = getattr(arguments, name)
        if value is not None and not math.isfinite(value):
            raise InvalidSettingError(f"--{name.replace('_', '-')} must be a number, got {value}")
    return SyncOptions(
        destination=arguments.destination,
        dataset=arguments.dataset,
        pipeline_name=arguments.pipeline_name,
        catalogs=tuple(arguments.catalog),
        q=arguments.q,
        facets=tuple(arguments.facet),
        price_min=arguments.price_min,
        price_max=arguments.price_max,
        details=not arguments.no_details,
        full_refresh=arguments.full_refresh,
        duckdb_memory_limit=arguments.duckdb_memory_limit,
        max_response_bytes=arguments.max_response_bytes,
        allow_mass_removal=arguments.allow_mass_removal,
        progress=print_progress() if arguments.progress else None,
    )


def run_demo(options: SyncOptions, generation: str) -> None:
    """Starts the sandbox on a free port, syncs it into ./octogen_demo.duckdb, shows a query."""
    import duckdb

    from octogen_source.sandbox import Sandbox

    with Sandbox(catalogs=3, products=150, ungranted=0, generation=generation) as sandbox:
        print(f"sandbox ({generation} API) running at {sandbox.base_url}; syncing into ./{DEMO_DATABASE}")
        report = run_sync(
            replace(
                options,
                api_key=sandbox.api_key,
                base_url=sandbox.base_url,
                duckdb_path=DEMO_DATABASE,
                pipeline_name=DEMO_PIPELINE,
                destination="duckdb",
                catalogs=options.catalogs or tuple(sandbox.granted_catalogs()),
            )
        )
    print(format_summary(report))
    query = DEMO_QUERY.replace("octogen.", f"{options.dataset}.")
    print(f"\nThe biggest discounts:\n{query}\n")
    with duckdb.connect(DEMO_DATABASE, read_only=True) as connection:
        cursor = connection.execute(query)
        header = [column[0] for column in cursor.description or ()]
        print(_table([header, *([str(value) for value in row] for row in cursor.fetchall())]))


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows)


def configure_logging(progress: bool) -> None:
    """Quiet by default (the summary or the one error line is the output); with --progress dlt's warnings
    and the client's retries are shown too. ``RUNTIME__LOG_LEVEL`` still wins for dlt."""
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING" if progress else "ERROR")
    logger = logging.getLogger("octogen_source")
    logger.setLevel(logging.INFO if progress else logging.CRITICAL)
    if progress and not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        arguments = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a bad argument (already reported on one line)
        return exit_.code if isinstance(exit_.code, int) else 2
    configure_logging(arguments.progress)
    try:
        options = options_from(arguments)
    except InvalidSettingError as error:
        print(f"error: {error} (see --help)", file=sys.stderr)
        return 2
    try:
        if arguments.discover is not None:
            print(format_discovery(discover(arguments.discover, api_key=None, base_url=None)))
        elif arguments.demo:
            run_demo(options, arguments.api_generation)
        else:
            print(format_summary(run_sync(options)))
    except OctogenValidationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if error.response is None else 1  # refused before sending: a bad argument
    except (SyncError, OctogenError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly instead of a traceback at interpreter exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())

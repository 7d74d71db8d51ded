"""``python -m octogen_source.sandbox --port P --catalogs N --products M [--seed S] [--ungranted U]
[--api-generation current|seed]``.

Prints the environment the sync reads, one ``NAME=value`` line each (``SOURCES__OCTOGEN__BASE_URL``,
``OCTO_API_KEY``, ``SOURCES__OCTOGEN__CATALOGS``: the key's granted catalogs, comma-separated), ready to
``export``, then serves until SIGINT or SIGTERM. The key is the sandbox's own, not a secret.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

from octogen_source.sandbox.generations import API_GENERATIONS, DEFAULT_GENERATION
from octogen_source.sandbox.server import base_url, bind_socket, start_server
from octogen_source.sandbox.state import SandboxState


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m octogen_source.sandbox",
        description="Serve a local sandbox of the Octogen Platform Catalog API v1 on 127.0.0.1.",
    )
    parser.add_argument("--port", type=_non_negative, default=0, help="TCP port (default 0: a free port)")
    parser.add_argument("--catalogs", type=_non_negative, default=3, help="number of catalogs (default 3)")
    parser.add_argument(
        "--products", type=_non_negative, default=200, help="products per catalog (default 200)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    parser.add_argument(
        "--ungranted", type=_non_negative, default=0, help="trailing catalogs the printed key is not granted"
    )
    parser.add_argument(
        "--api-generation",
        choices=API_GENERATIONS,
        default=DEFAULT_GENERATION,
        help="the API generation to speak: current (today's API, default) or seed (May 2026)",
    )
    return parser


BASE_URL_VARIABLE = "SOURCES__OCTOGEN__BASE_URL"
API_KEY_VARIABLE = "OCTO_API_KEY"
CATALOGS_VARIABLE = "SOURCES__OCTOGEN__CATALOGS"


def sync_environment(state: SandboxState, url: str) -> dict[str, str]:
    """The variables that point ``octogen-sync`` at this sandbox (what the sync reads, nothing else)."""
    return {
        BASE_URL_VARIABLE: url,
        API_KEY_VARIABLE: state.api_key,
        CATALOGS_VARIABLE: ",".join(state.granted_catalogs()),
    }


def _print_discover_hint(state: SandboxState) -> None:
    """On stderr (stdout stays the variables): the store hosts, which the current API cannot list."""
    hosts = ", ".join(state.store_host(catalog) for catalog in state.granted_catalogs())
    print(f"sandbox: store hosts for --discover: {hosts}", file=sys.stderr, flush=True)


async def _serve(state: SandboxState, port: int) -> int:
    try:
        sock = bind_socket(port)
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    runner = await start_server(state, sock)
    for name, value in sync_environment(state, base_url(sock.getsockname()[1])).items():
        print(f"{name}={value}", flush=True)
    _print_discover_hint(state)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    try:
        state = SandboxState(
            catalogs=args.catalogs,
            products=args.products,
            seed=args.seed,
            ungranted=args.ungranted,
            generation=args.api_generation,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"sandbox: {args.catalogs} catalogs x {args.products} products (seed {args.seed}, "
        f"{args.ungranted} ungranted, API generation {args.api_generation}) generated in "
        f"{time.perf_counter() - started:.2f} s; "
        "SIGINT/SIGTERM stops it",
        file=sys.stderr,
        flush=True,
    )
    return asyncio.run(_serve(state, args.port))


if __name__ == "__main__":
    sys.exit(main())

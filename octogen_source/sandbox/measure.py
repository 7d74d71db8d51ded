"""By-hand throughput check of the sandbox: ``python -m octogen_source.sandbox.measure``.

Starts ``python -m octogen_source.sandbox`` as a child process pinned to one CPU (Linux), walks every granted
catalog with keyset pagination from this process (pinned to another CPU when there is one), and prints
products per second of wall-clock time and per CPU-second of the sandbox process (products = distinct
products of the walk; the current generation also serves some twice across page boundaries, counted as
"items"). ``--api-generation`` picks the generation (current by default). Not part of the test suite: the
figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson


def _server_cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of /proc/<pid>/stat (1-based; we split after the comm field)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def _walk(client: httpx.Client, catalog: str, limit: int, generation: str) -> tuple[int, int]:
    """(distinct products, items served) of one catalog's walk."""
    seen: set[str] = set()
    items, cursor = 0, None
    scope: dict[str, Any] = {"catalog": catalog} if generation == "seed" else {"catalogs": [catalog]}
    while True:
        body: dict[str, Any] = {**scope, "limit": limit}
        if cursor:
            body["cursor"] = cursor
        response = client.post("/products/search", json=body)
        response.raise_for_status()
        page = orjson.loads(response.content)  # the client's decoding should not dominate the figures
        items += len(page["items"])
        seen.update(item["uuid"] for item in page["items"])
        cursor = page.get("nextCursor")
        if cursor is None:
            return len(seen), items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m octogen_source.sandbox.measure")
    parser.add_argument("--catalogs", type=int, default=3)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--walks", type=int, default=2, help="full walks; the first also renders the caches")
    parser.add_argument("--api-generation", choices=("current", "seed"), default="current")
    args = parser.parse_args(argv)

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    server_cpu, client_cpu = cpus[0], cpus[-1]
    started = time.perf_counter()
    command = [sys.executable, "-m", "octogen_source.sandbox", "--catalogs", str(args.catalogs)]
    command += ["--products", str(args.products), "--api-generation", args.api_generation]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: _pin(server_cpu))
    try:
        assert server.stdout is not None
        settings = dict(server.stdout.readline().strip().split("=", 1) for _ in range(3))
        startup = time.perf_counter() - started
        print(f"sandbox up (generation included) in {startup:.2f} s, pinned to CPU {server_cpu}")
        _pin(client_cpu)
        headers = {"Authorization": f"Bearer {settings['OCTO_API_KEY']}"}
        with httpx.Client(
            base_url=settings["SOURCES__OCTOGEN__BASE_URL"], headers=headers, timeout=60
        ) as client:
            root = settings["SOURCES__OCTOGEN__BASE_URL"].removesuffix("/v1")
            catalogs = httpx.get(f"{root}/_sandbox/info", timeout=60).json()["grantedCatalogs"]
            for walk_no in range(1, args.walks + 1):
                cpu_before, wall_before = _server_cpu_seconds(server.pid), time.perf_counter()
                walks = [_walk(client, catalog, args.limit, args.api_generation) for catalog in catalogs]
                products, items = sum(w[0] for w in walks), sum(w[1] for w in walks)
                wall = time.perf_counter() - wall_before
                cpu_after = _server_cpu_seconds(server.pid)
                line = (
                    f"walk {walk_no} ({args.api_generation}): {products} products ({items} items) in "
                    f"{wall:.2f} s = {products / wall:,.0f} products/s"
                )
                if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
                    cpu = cpu_after - cpu_before
                    line += f"; sandbox CPU {cpu:.2f} s = {products / cpu:,.0f} products per CPU-second"
                print(line, flush=True)
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Runs one measurement in a worker process and accounts for the CPU it and the sandbox used.

The machine is shared, so each measurement also records how much CPU other processes took meanwhile
(``background_cpu``: busy CPU time of the whole machine minus the worker's and the sandbox's, as a share of
all CPUs over the wall time). A high figure means the row is suspect and should be measured again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.sandbox_process import REPO_ROOT, SandboxProcess
from bench.worker import CLOCK_TICKS, RESULT_MARKER, process_cpu_seconds


class MeasurementFailed(RuntimeError):
    """A worker exited with an error; the message ends with its last lines of output."""


def _machine_busy_seconds() -> float:
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


@dataclass
class Measurement:
    name: str
    figures: dict[str, Any]
    """What the worker reported: seconds, products, peak_rss_bytes, ... (see bench.worker)."""
    server_requests: dict[str, int]
    """Requests that reached the sandbox, per endpoint."""
    sandbox_cpu_seconds: float
    background_cpu: float
    load_before: tuple[float, float, float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return float(self.figures["seconds"])

    @property
    def products(self) -> int:
        return int(self.figures.get("products", 0))

    @property
    def requests(self) -> int:
        return sum(self.server_requests.values())

    @property
    def peak_rss_bytes(self) -> int:
        return int(self.figures["peak_rss_bytes"])

    @property
    def machine_cpu_share(self) -> float:
        """The CPU the timed run used (its process, the walk's process when it has one, the sandbox meanwhile)
        as a share of all the machine's CPUs over its seconds: near 1, the machine's CPUs bound the run, not
        the network. The sandbox's over the worker's whole life where the worker did not time it (an older
        tree's worker): it then includes requests made before the clock (``dlt-floor`` builds its rows so)."""
        if self.seconds <= 0:
            return 0.0
        used = (
            float(self.figures.get("client_cpu_seconds", 0.0))
            + float(self.figures.get("children_cpu_seconds", 0.0))
            + float(self.figures.get("timed_sandbox_cpu_seconds", self.sandbox_cpu_seconds))
        )
        return used / (self.seconds * (os.cpu_count() or 1))

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.figures,
            "server_requests": self.server_requests,
            "sandbox_cpu_seconds": round(self.sandbox_cpu_seconds, 3),
            "machine_cpu_share": round(self.machine_cpu_share, 3),
            "background_cpu": round(self.background_cpu, 3),
            "load_before": list(self.load_before),
            **self.extra,
        }


def run_worker(
    name: str, sandbox: SandboxProcess, spec: dict[str, Any], *, tree: Path | None = None
) -> Measurement:
    """Runs ``bench.worker`` with ``spec`` (base URL and catalogs filled in) against ``sandbox``; with
    ``tree``, the worker and the code it measures come from that source tree (e.g. an older commit)."""
    full_spec = {
        "base_url": sandbox.base_url,
        "catalogs": sandbox.catalogs,
        "sandbox_pid": sandbox.pid,
        **spec,
    }
    if tree is not None:  # --walk-in-process is ours only: an earlier tree runs with its own default
        full_spec.pop("walk_in_process", None)
    sandbox.remote.reset_counts()
    load_before = os.getloadavg()
    sandbox_cpu, busy, wall = process_cpu_seconds(sandbox.pid), _machine_busy_seconds(), time.monotonic()
    children_cpu = _children_cpu_seconds()
    completed = subprocess.run(
        [sys.executable, "-m", "bench.worker", json.dumps(full_spec)],
        cwd=tree or REPO_ROOT,
        env=worker_environment(sandbox.api_key),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - wall
    sandbox_cpu = process_cpu_seconds(sandbox.pid) - sandbox_cpu
    worker_cpu = _children_cpu_seconds() - children_cpu
    others = max(0.0, _machine_busy_seconds() - busy - sandbox_cpu - worker_cpu)
    result_lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if completed.returncode != 0 or not result_lines:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-25:])
        raise MeasurementFailed(f"{name}: worker exited with {completed.returncode}\n{tail}")
    figures = json.loads(result_lines[-1][len(RESULT_MARKER) :])
    return Measurement(
        name=name,
        figures=figures,
        server_requests=sandbox.remote.request_counts,
        sandbox_cpu_seconds=sandbox_cpu,
        background_cpu=others / (wall * (os.cpu_count() or 1)),
        load_before=load_before,
    )


def _children_cpu_seconds() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def worker_environment(api_key: str) -> dict[str, str]:
    """The environment of a worker: the key, and bytecode caching on (with PYTHONDONTWRITEBYTECODE set,
    every worker would compile the modules it imports lazily, on the clock)."""
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    environment["OCTO_API_KEY"] = api_key
    return environment

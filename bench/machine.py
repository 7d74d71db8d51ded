"""What the figures were measured on: CPUs, CPU model, memory, load."""

from __future__ import annotations

import os
import platform
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def machine_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_bytes": _memory_bytes(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
    }


def describe_machine(info: dict[str, Any]) -> str:
    load = " ".join(f"{value:.2f}" for value in info["load_average"])
    return (
        f"{info['cpus']} CPUs ({info['cpu_model']}), {info['memory_bytes'] / 2**30:.1f} GiB RAM, "
        f"Python {info['python']}, load average {load}"
    )

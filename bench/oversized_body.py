"""Peak RSS of `pipelines/sync.py` when the API answers a search with an oversized body (issue 13).

    uv run python bench/oversized_body.py [--mib 1024] [--code DIR]

Starts the sandbox in this process, makes its next search answer ``--mib`` MiB of never-ending JSON, runs the
sync CLI in a subprocess (``--code``: another checkout's tree, e.g. an export of main, to compare) and prints
its exit status, seconds, peak RSS (ru_maxrss of the child) and error line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from octogen_source.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--code", type=Path, default=ROOT)
    arguments = parser.parse_args()
    with Sandbox(catalogs=1, products=50, ungranted=0) as sandbox, tempfile.TemporaryDirectory() as work:
        sandbox.fail_next(1, "oversized", endpoint="search", body_bytes=arguments.mib * 1024 * 1024)
        env = {
            **os.environ,
            "OCTO_API_KEY": sandbox.api_key,
            "SOURCES__OCTOGEN__BASE_URL": sandbox.base_url,
            "SOURCES__OCTOGEN__CATALOGS": sandbox.granted_catalogs()[0],
            "DLT_DATA_DIR": str(Path(work) / "dlt"),
            "PYTHONPATH": str(arguments.code),
        }
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, str(arguments.code / "pipelines" / "sync.py")],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - started
        assert child.stderr is not None
        error = child.stderr.read().decode(errors="replace").strip()
    print(f"body {arguments.mib} MiB; code {arguments.code}")
    peak_mib = usage.ru_maxrss / 1024
    print(f"exit {os.waitstatus_to_exitcode(status)}; {seconds:.1f} s; peak RSS {peak_mib:.0f} MiB")
    print(f"stderr ({len(error.splitlines())} lines): {error[:400]}")


if __name__ == "__main__":
    main()

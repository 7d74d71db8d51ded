"""What the CLI tests share: a clean environment pointing at the sandbox (``cli_environment``, behind the
``cli_env`` fixture), the one error line a failed command prints, and a port nothing listens on."""

from __future__ import annotations

import json
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from octogen_source.commands.sync import main
from octogen_source.sandbox import Sandbox

SCRIPT = Path(__file__).resolve().parents[1] / "pipelines" / "sync.py"
KEY_VARIABLES = ("OCTO_API_KEY", "SOURCES__OCTOGEN__API_KEY", "SOURCES__OCTOGEN__BASE_URL")


def cli_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox: Sandbox) -> Iterator[Sandbox]:
    """The ``cli_env`` fixture (tests/conftest.py): a clean environment pointing at the sandbox, run from
    tmp_path; the CLI's logging setup undone."""
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "ERROR")
    monkeypatch.setenv("SOURCES__OCTOGEN__BASE_URL", sandbox.base_url)
    monkeypatch.setenv("SOURCES__OCTOGEN__CATALOGS", json.dumps(sandbox.granted_catalogs()))
    monkeypatch.setenv("SOURCES__OCTOGEN__RETRY_MAX_ATTEMPTS", "1")
    logger = logging.getLogger("octogen_source")
    level, handlers = logger.level, list(logger.handlers)
    yield sandbox
    logger.setLevel(level)
    logger.handlers[:] = handlers


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str], status: int = 1) -> str:
    assert main(argv) == status
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PEAK_RSS_SHIM = """
import atexit, os, runpy, sys

def report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["PEAK_RSS_FILE"], "w") as out:
        out.write(peak)

atexit.register(report)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
"""Runs a script and writes its peak RSS in KiB (``VmHWM``) to ``$PEAK_RSS_FILE`` at exit. Not ``ru_maxrss``
from ``wait4``: on Linux a child's ``ru_maxrss`` starts from its parent's at the fork, so a test process
holding 500 MiB would see every child "peak" at 500 MiB; ``VmHWM`` starts anew at the exec."""


def peak_rss_command(script: Path) -> list[str]:
    """The command that runs ``script`` under :data:`PEAK_RSS_SHIM` (set ``PEAK_RSS_FILE`` in its env)."""
    return [sys.executable, "-c", PEAK_RSS_SHIM, str(script)]

"""The sandbox in its own process (so it never shares a GIL with what is measured), controlled over HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from octogen_source.sandbox import RemoteSandbox

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_SECONDS = 600


@dataclass
class SandboxProcess:
    process: subprocess.Popen[str]
    remote: RemoteSandbox
    base_url: str
    api_key: str
    catalogs: list[str]

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def sandbox_process(catalogs: int, products_per_catalog: int, *, seed: int = 0) -> Iterator[SandboxProcess]:
    """``python -m octogen_source.sandbox`` on a free port; stopped (SIGTERM) on exit."""
    command = [sys.executable, "-m", "octogen_source.sandbox", "--port", "0"]
    command += ["--catalogs", str(catalogs), "--products", str(products_per_catalog), "--seed", str(seed)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        settings: dict[str, str] = {}
        for _ in range(3):  # SOURCES__OCTOGEN__BASE_URL, OCTO_API_KEY, SOURCES__OCTOGEN__CATALOGS
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the sandbox exited before serving (exit code {process.wait(5)})")
            name, _, value = line.strip().partition("=")
            settings[name] = value
        base_url = settings["SOURCES__OCTOGEN__BASE_URL"]
        with RemoteSandbox(base_url, timeout=STARTUP_TIMEOUT_SECONDS) as remote:
            yield SandboxProcess(
                process=process,
                remote=remote,
                base_url=base_url,
                api_key=settings["OCTO_API_KEY"],
                catalogs=remote.granted_catalogs(),
            )
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

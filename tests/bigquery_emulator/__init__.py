"""A real BigQuery emulator (bqemulator, from PyPI) in its own process, and a fake Google token endpoint.

The emulator speaks BigQuery's REST API on 127.0.0.1; Google's own ``google-cloud-bigquery`` reaches it
through ``BIGQUERY_EMULATOR_HOST``. It lives in its own virtualenv (``tests/bigquery_emulator/setup.sh``)
because it pins sqlglot 30.x, which the project's dlt cannot use.

Credentials come the way production gets them when no service account is configured: Application Default
Credentials from ``GOOGLE_APPLICATION_CREDENTIALS``. The file is a service-account key (a fresh RSA key) whose
``token_uri`` is :class:`FakeTokenEndpoint` on 127.0.0.1, so google-auth's real JWT-bearer exchange runs over
HTTP and the client sends a real bearer token. Google's token service is the one thing faked: it cannot be
reached from here.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = Path(__file__).resolve().parent / "setup.sh"
EMULATOR_PROJECT = "octogen-emulator"
FAKE_ACCESS_TOKEN = "ya29.emulator-access-token"


def emulator_venv() -> Path:
    """Where setup.sh installs the emulator: ``$BQEMULATOR_VENV`` or ``.bqemulator-venv`` at the repo root."""
    return Path(os.environ.get("BQEMULATOR_VENV") or REPO_ROOT / ".bqemulator-venv")


def emulator_missing_reason() -> str | None:
    """Why the emulator cannot run here, or None when it can."""
    venv = emulator_venv()
    if not (venv / "bin" / "bqemulator").exists() or not (venv / ".octogen-ready").exists():
        return (
            f"BigQuery emulator not installed in {venv}: run `bash {SETUP_SCRIPT.relative_to(REPO_ROOT)}` "
            "(installs bqemulator 1.4.0 from PyPI into its own venv)"
        )
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class BigQueryEmulator:
    """One bqemulator process on a free 127.0.0.1 port, in-memory (ephemeral) storage."""

    workdir: Path
    venv: Path = field(default_factory=emulator_venv)
    project: str = EMULATOR_PROJECT
    port: int = 0
    _process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "bqemulator.log"

    def start(self, startup_timeout: float = 90.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        uploads = self.workdir / "uploads"
        uploads.mkdir(exist_ok=True)
        self.port = _free_port()
        env = {
            **os.environ,
            # the DuckDB spatial extension was installed under this HOME by setup.sh
            "HOME": str(self.venv / "duckdb-home"),
            "BQEMU_UPLOAD_STAGING_DIR": str(uploads),
            # avro comes from DuckDB's extension server, which is unreachable: don't try
            "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",
            "BQEMU_METRICS_ENABLED": "false",
        }
        for name in ("BIGQUERY_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"):
            env.pop(name, None)
        command = [
            str(self.venv / "bin" / "bqemulator"),
            "start",
            "--rest-host=127.0.0.1",
            f"--rest-port={self.port}",
            "--grpc-host=127.0.0.1",
            "--grpc-port=0",
            "--ephemeral",
            f"--project={self.project}",
            "--log-level=warning",
            "--log-format=console",
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"bqemulator exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.endpoint}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"bqemulator not healthy after {startup_timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=15)
        self._process = None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class _TokenHandler(BaseHTTPRequestHandler):
    server: _TokenServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.requests += 1
        body = json.dumps({"access_token": FAKE_ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        payload = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return


class _TokenServer(ThreadingHTTPServer):
    requests: int = 0


class FakeTokenEndpoint:
    """Google's OAuth token endpoint on 127.0.0.1: answers every refresh with one fixed access token."""

    def __init__(self) -> None:
        self._server = _TokenServer(("127.0.0.1", 0), _TokenHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/token"

    @property
    def requests(self) -> int:
        return self._server.requests

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def adc_environment(
    emulator: BigQueryEmulator, token_endpoint: FakeTokenEndpoint, directory: Path
) -> dict[str, str]:
    """Environment that points dlt's BigQuery destination at the emulator, configured only the dlt way.

    ``DATA_WRITER__DISABLE_COMPRESSION``: the emulator cannot read gzip-compressed JSONL load files (the
    format dlt uses for its state table), real BigQuery can. Everything else is plain production config.
    """
    adc_file = directory / "application_default_credentials.json"
    adc_file.write_text(json.dumps(service_account_info(emulator.project, token_endpoint.url)))
    return {
        "BIGQUERY_EMULATOR_HOST": emulator.endpoint,
        "GOOGLE_APPLICATION_CREDENTIALS": str(adc_file),
        "GOOGLE_CLOUD_PROJECT": emulator.project,
        "DESTINATION__BIGQUERY__LOCATION": "US",
        "DATA_WRITER__DISABLE_COMPRESSION": "true",
    }


def service_account_info(project: str, token_uri: str) -> dict[str, str]:
    """A service-account key file, as Google issues them, with a fresh RSA key and a local ``token_uri``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "emulator-key",
        "private_key": pem,
        "client_email": f"octogen-loader@{project}.iam.gserviceaccount.com",
        "client_id": "100000000000000000000",
        "token_uri": token_uri,
    }


def snapshot_dataset(client: Any, dataset: str, database: Path, schema: str = "octogen") -> Path:
    """Copies every table of the BigQuery ``dataset`` (emulated or real) into ``schema`` of a new DuckDB file,
    so the whole-table comparisons of the DuckDB sync tests apply unchanged."""
    with duckdb.connect(str(database)) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
        for table in client.list_tables(dataset):
            query = f"SELECT * FROM `{client.project}.{dataset}.{table.table_id}`"
            rows = client.query(query).to_arrow(create_bqstorage_client=False)
            connection.register("bigquery_rows", rows)
            connection.execute(f'CREATE TABLE "{schema}"."{table.table_id}" AS SELECT * FROM bigquery_rows')
            connection.unregister("bigquery_rows")
    return database


@contextmanager
def running_emulator(workdir: Path) -> Iterator[BigQueryEmulator]:
    emulator = BigQueryEmulator(workdir=workdir)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


__all__ = [
    "EMULATOR_PROJECT",
    "FAKE_ACCESS_TOKEN",
    "BigQueryEmulator",
    "FakeTokenEndpoint",
    "adc_environment",
    "emulator_missing_reason",
    "emulator_venv",
    "running_emulator",
    "service_account_info",
    "snapshot_dataset",
]

"""The Airflow autosubscribe DAG on a rotating refresh token from its ``octogen_mcp`` connection (issue 14,
item 5): a real ``dag.test()`` run, the connection naming the client-id and refresh-token files, against the
local OAuth authorization server and MCP server; the worker's stale OCTOGEN_MCP_ACCESS_TOKEN does not win.

Needs Airflow: run it in the Airflow environment like tests/test_airflow_dag.py
(``.airflow-venv/bin/python -m pytest tests/test_bq_airflow_autosubscribe.py``); skipped elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("airflow") is None,
    reason="needs Airflow: run in .airflow-venv like tests/test_airflow_dag.py",
)

if importlib.util.find_spec("airflow") is not None:
    from tests.airflow_support import airflow_home, run_autosubscribe_dag  # noqa: F401  (module fixture)

PROJECT = "acme-analytics"
PRINCIPAL = "serviceAccount:reader@acme-analytics.iam.gserviceaccount.com"


def _write(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")


@pytest.mark.timeout(120, method="thread")
def test_autosubscribe_dag_runs_on_the_connections_refresh_token_file(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.fake_analyticshub import FakeAnalyticsHub
    from tests.fake_authorization_server import FakeAuthorizationServer
    from tests.fake_control_plane import FakeControlPlane

    with (
        FakeControlPlane() as control_plane,
        FakeAnalyticsHub() as hub,
        FakeAuthorizationServer(on_access_token=control_plane.allow_token) as auth,
    ):
        control_plane.set_tokens()  # only minted tokens count
        control_plane.add_listing("shoes")
        reader = control_plane.add_subscriber(PROJECT, PRINCIPAL)
        control_plane.set_cell(reader, "shoes", "awaiting_subscription")
        client_id = auth.register_client()
        client_id_file = tmp_path / "octogen" / "mcp.client-id"
        refresh_token_file = tmp_path / "octogen" / "mcp.refresh"
        _write(client_id_file, client_id)
        _write(refresh_token_file, auth.issue_refresh_token(client_id))
        connection = {
            "conn_type": "generic",
            "host": control_plane.url,
            "extra": {
                "client_id_file": str(client_id_file),
                "refresh_token_file": str(refresh_token_file),
                "auth_server": auth.url,
            },
        }
        monkeypatch.setenv("AIRFLOW_CONN_OCTOGEN_MCP", json.dumps(connection))
        monkeypatch.setenv("AIRFLOW_VAR_OCTOGEN_BQ_PROJECT", PROJECT)
        monkeypatch.setenv("AIRFLOW_VAR_OCTOGEN_BQ_PRINCIPAL", PRINCIPAL)
        monkeypatch.setenv("OCTOGEN_ANALYTICSHUB_ENDPOINT", hub.address)
        monkeypatch.setenv("OCTOGEN_MCP_ACCESS_TOKEN", "at_stale_in_the_workers_environment")

        assert run_autosubscribe_dag() == ("success", "success")
        assert control_plane.cell_status(reader, "shoes") == "active"
        first = refresh_token_file.read_text().strip()
        assert auth.live_refresh_tokens(client_id) == [first]

        assert run_autosubscribe_dag() == ("success", "success")  # rotated again, still valid
        assert auth.live_refresh_tokens(client_id) == [refresh_token_file.read_text().strip()] != [first]

        # revoked: the task fails, its log names the file and the login command
        auth.revoke_all()
        assert run_autosubscribe_dag(retries=0) == ("failed", "failed")
        logs = "".join(capfd.readouterr())
        assert f"the refresh token in {refresh_token_file} was rejected" in logs
        assert "run octogen-mcp-login to sign in again" in logs
        for secret in auth.issued_secrets:
            assert secret not in logs

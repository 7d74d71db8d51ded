"""The autosubscribe pass end to end: the real CLI (in-process ``main(argv)``, and once as a subprocess)
against a real MCP server over Streamable HTTP on 127.0.0.1 (tests/fake_control_plane.py, spoken to by the
official ``mcp`` client) and Google's real Analytics Hub client over gRPC to a local fake
(tests/fake_analyticshub.py). Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from octogen_source.bigquery.autosubscribe import AutosubscribeOptions, CatalogAction, autosubscribe
from octogen_source.bigquery.autosubscribe_cli import main
from tests.bq_support import BASE_ARGS, PRINCIPAL, PROJECT, clear_credentials
from tests.fake_analyticshub import FakeAnalyticsHub
from tests.fake_control_plane import REFRESH, REGISTER, FakeControlPlane, listing_resource_name

pytestmark = pytest.mark.timeout(60)

CATALOGS = ("bags", "hats", "shoes")


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.out)

    def table(self) -> dict[str, tuple[str | None, str]]:
        """catalog → (cell status, action), from the --json output."""
        return {row["catalog"]: (row["status"], row["action"]) for row in self.json()["catalogs"]}


@pytest.fixture
def control_plane(control_plane_server: FakeControlPlane) -> FakeControlPlane:
    control_plane_server.reset()
    for catalog in CATALOGS:
        control_plane_server.add_listing(catalog)
    return control_plane_server


@pytest.fixture
def hub() -> Iterator[FakeAnalyticsHub]:
    with FakeAnalyticsHub() as running:
        yield running


@pytest.fixture(autouse=True)
def environment(
    monkeypatch: pytest.MonkeyPatch, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    clear_credentials(monkeypatch)
    monkeypatch.setenv("OCTOGEN_MCP_URL", control_plane.url)
    monkeypatch.setenv("OCTOGEN_MCP_ACCESS_TOKEN", control_plane.token)
    monkeypatch.setenv("OCTOGEN_ANALYTICSHUB_ENDPOINT", hub.address)
    # The control plane sees the linked dataset only once Analytics Hub really has the subscription.
    control_plane.linked_dataset_exists = lambda cell, subscriber: any(
        subscription.listing == cell["listingResource"]
        for subscription in hub.subscriptions(subscriber["subscriberProjectId"], cell["location"])
    )


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], control_plane: FakeControlPlane) -> Any:
    def run_cli(*args: str) -> Run:
        code = main([*BASE_ARGS, *args])
        captured = capsys.readouterr()
        result = Run(code, captured.out, captured.err)
        for secret in (control_plane.token, os.environ.get("OCTOGEN_MCP_ACCESS_TOKEN", "")):
            if secret:
                assert secret not in result.out + result.err
        assert "Traceback" not in result.err
        return result

    return run_cli


def reader(control_plane: FakeControlPlane, *, desired_state: str = "enabled") -> str:
    return control_plane.add_subscriber(PROJECT, PRINCIPAL, desired_state=desired_state)


# --- the reader -----------------------------------------------------------------------------------------


def test_missing_reader_dry_run_would_register_and_changes_nothing(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    result = run("--json")

    assert result.code == 0
    assert result.json()["reader"] == {
        "registration": "would_register",
        "subscriber_id": None,
        "desired_state": None,
    }
    assert result.table() == {catalog: (None, "skipped") for catalog in CATALOGS}
    assert control_plane.mutating_calls == []
    assert control_plane.subscribers == []
    assert hub.calls == []


def test_missing_reader_is_registered_with_apply_once(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    first = run("--apply", "--json")

    assert first.code == 0
    assert first.json()["reader"] == {
        "registration": "registered",
        "subscriber_id": "sub-1",
        "desired_state": "enabled",
    }
    assert control_plane.calls_of(REGISTER) == [
        {"request": {"subscriberProjectId": PROJECT, "subscriberPrincipal": PRINCIPAL}}
    ]
    assert control_plane.subscribers == [
        {
            "subscriberId": "sub-1",
            "subscriberProjectId": PROJECT,
            "subscriberPrincipal": PRINCIPAL,
            "desiredState": "enabled",
        }
    ]
    # A fresh registration's cells are "preparing" (the grant is asynchronous): nothing to subscribe yet.
    assert first.table() == {catalog: ("preparing", "pending") for catalog in CATALOGS}
    assert hub.calls == []

    second = run("--apply", "--json")
    assert second.json()["reader"]["registration"] == "existing"
    assert len(control_plane.calls_of(REGISTER)) == 1


def test_disabled_reader_subscribes_nothing(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    subscriber = reader(control_plane, desired_state="disabled")
    control_plane.set_cell(subscriber, "bags", "awaiting_subscription")
    control_plane.set_cell(subscriber, "hats", "removing")
    control_plane.set_cell(subscriber, "shoes", "active")

    result = run("--apply", "--json")

    assert result.code == 0
    assert result.json()["reader"] == {
        "registration": "existing",
        "subscriber_id": subscriber,
        "desired_state": "disabled",
    }
    assert result.table() == {
        "bags": ("awaiting_subscription", "skipped"),
        "hats": ("removing", "skipped"),
        "shoes": ("active", "skipped"),
    }
    details = {row["catalog"]: row["detail"] for row in result.json()["catalogs"]}
    assert details["hats"] == "reader disabled; teardown under way"
    assert control_plane.mutating_calls == []
    assert hub.calls == []


# --- cell states ----------------------------------------------------------------------------------------


def test_awaiting_subscription_is_subscribed_then_refreshed(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    subscriber = reader(control_plane)
    control_plane.set_cell(
        subscriber,
        "shoes",
        "awaiting_subscription",
        linkedDatasetSuggestion="octogen_shoes_v1",
        shareSchema="octogen_share_v1",
        schemaVersion=3,
    )
    listing = listing_resource_name("shoes")

    result = run("--apply", "--json", "--catalog", "shoes")

    assert result.code == 0, result.err
    [row] = result.json()["catalogs"]
    subscription = hub.subscriptions(PROJECT, "us")[0]
    assert row == {
        "catalog": "shoes",
        "status": "awaiting_subscription",
        "reason_code": None,
        "action": "subscribed",
        "detail": f"linked as {PROJECT}.octogen_shoes_v1; control plane status: active",
        "listing_resource": listing,
        "linked_dataset": f"{PROJECT}.octogen_shoes_v1",
        "subscription_name": subscription.name,
        "sample_query": f"SELECT * FROM `{PROJECT}.octogen_shoes_v1.products_current_v1` LIMIT 10",
        "refreshed_status": "active",
    }
    [request] = hub.subscribe_requests
    assert request.name == listing
    assert request.destination_dataset.dataset_reference.project_id == PROJECT
    assert request.destination_dataset.dataset_reference.dataset_id == "octogen_shoes_v1"
    assert request.destination_dataset.location == "us"
    assert control_plane.calls_of(REFRESH) == [
        {
            "catalog_key": "shoes",
            "subscriber_principal": PRINCIPAL,
            "share_schema": "octogen_share_v1",
            "schema_version": 3,
        }
    ]
    assert control_plane.cell_status(subscriber, "shoes") == "active"

    # The next pass finds it active and does nothing.
    hub.reset_calls()
    again = run("--apply", "--json", "--catalog", "shoes")
    assert again.table() == {"shoes": ("active", "already_active")}
    assert hub.subscribe_requests == []
    assert len(control_plane.calls_of(REFRESH)) == 1


def test_awaiting_with_existing_subscription_is_already_subscribed(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    subscriber = reader(control_plane)
    control_plane.set_cell(subscriber, "hats", "awaiting_subscription")
    existing = hub.add_subscription(
        project=PROJECT, listing=listing_resource_name("hats"), dataset_id="octogen_hats"
    )

    result = run("--apply", "--json", "--catalog", "hats")

    assert result.code == 0
    [row] = result.json()["catalogs"]
    assert (row["action"], row["subscription_name"], row["refreshed_status"]) == (
        "already_subscribed",
        existing.name,
        "active",
    )
    assert hub.subscribe_requests == []
    assert control_plane.calls_of(REFRESH) == [{"catalog_key": "hats", "subscriber_principal": PRINCIPAL}]


def test_listing_fields_come_from_the_listings_when_the_cell_has_none(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    control_plane.add_listing("gloves", location="eu", linked_dataset_suggestion="octogen_gloves")
    subscriber = reader(control_plane)
    control_plane.set_cell(subscriber, "gloves", "awaiting_subscription", listing_fields=False)

    result = run("--apply", "--catalog", "gloves")

    assert result.code == 0, result.err
    [request] = hub.subscribe_requests
    assert request.name == listing_resource_name("gloves", location="eu")
    assert request.destination_dataset.dataset_reference.dataset_id == "octogen_gloves"
    assert request.destination_dataset.location == "eu"


def test_dry_run_changes_nothing_on_either_fake(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    subscriber = reader(control_plane)
    for catalog in CATALOGS:
        control_plane.set_cell(subscriber, catalog, "awaiting_subscription")
    cells_before = control_plane.cells

    result = run()

    assert result.code == 0
    assert result.out.splitlines() == [
        "Dry run: nothing was changed (run again with --apply to act).",
        f"Reader {PRINCIPAL} in project {PROJECT}: subscriber {subscriber}, enabled.",
        "CATALOG  STATUS                 ACTION           DETAIL",
        *(
            f"{catalog:<7}  awaiting_subscription  would_subscribe  "
            f"would link {listing_resource_name(catalog)} as {PROJECT}.octogen_{catalog}"
            for catalog in CATALOGS
        ),
        "3 catalogs: 3 would_subscribe.",
    ]
    assert control_plane.mutating_calls == []
    assert control_plane.cells == cells_before
    assert hub.calls == []


def test_preparing_and_active_need_nothing(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    subscriber = reader(control_plane)
    control_plane.set_cell(subscriber, "bags", "preparing")
    control_plane.set_cell(subscriber, "hats", "active")
    control_plane.set_cell(subscriber, "shoes", "removing")

    result = run("--apply", "--json")

    assert result.code == 0
    assert result.table() == {
        "bags": ("preparing", "pending"),
        "hats": ("active", "already_active"),
        "shoes": ("removing", "skipped"),
    }
    assert control_plane.mutating_calls == []
    assert hub.calls == []


def test_failure_statuses_are_errors_and_intentional_reasons_skipped(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    for catalog in ("gloves", "socks"):
        control_plane.add_listing(catalog)
    subscriber = reader(control_plane)
    control_plane.set_cell(subscriber, "bags", "refresh_failed")
    control_plane.set_cell(subscriber, "hats", "access_grant_failed", reason_code="principal_not_found")
    control_plane.set_cell(subscriber, "shoes", "awaiting_subscription", reason_code="catalog_not_enabled")
    control_plane.set_cell(subscriber, "gloves", "preparing", reason_code="scope_revoked")
    control_plane.set_cell(subscriber, "socks", "paused")

    result = run("--apply", "--json")

    assert result.code == 1
    assert result.json()["ok"] is False
    assert {
        row["catalog"]: (row["status"], row["reason_code"], row["action"], row["detail"])
        for row in result.json()["catalogs"]
    } == {
        "bags": ("refresh_failed", None, "error", "control plane reports refresh_failed"),
        "gloves": (
            "preparing",
            "scope_revoked",
            "skipped",
            "the reader's access scope was revoked (scope_revoked)",
        ),
        "hats": (
            "access_grant_failed",
            "principal_not_found",
            "error",
            "control plane reports access_grant_failed (principal_not_found)",
        ),
        "shoes": (
            "awaiting_subscription",
            "catalog_not_enabled",
            "skipped",
            "catalog not enabled for BigQuery sharing (catalog_not_enabled)",
        ),
        "socks": ("paused", None, "skipped", "unrecognised status 'paused'; left alone"),
    }
    assert control_plane.mutating_calls == []
    assert hub.calls == []


def test_permission_denied_is_access_pending(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    subscriber = reader(control_plane)
    control_plane.set_cell(subscriber, "shoes", "awaiting_subscription")
    hub.deny_listing(listing_resource_name("shoes"))

    result = run("--apply", "--json", "--catalog", "shoes")

    assert result.code == 0
    assert result.table() == {"shoes": ("awaiting_subscription", "pending")}
    assert len(hub.subscribe_requests) == 1
    assert control_plane.mutating_calls == []  # nothing to refresh until the subscribe goes through
    assert control_plane.cell_status(subscriber, "shoes") == "awaiting_subscription"

    hub.grant_listing(listing_resource_name("shoes"))
    assert run("--apply", "--json", "--catalog", "shoes").table() == {
        "shoes": ("awaiting_subscription", "subscribed")
    }


def test_analytics_hub_failure_is_that_catalogs_error(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    subscriber = reader(control_plane)
    control_plane.set_cell(subscriber, "bags", "awaiting_subscription")
    control_plane.set_cell(subscriber, "hats", "awaiting_subscription")
    hub.fail_next("SubscribeListing", grpc.StatusCode.INVALID_ARGUMENT, "location mismatch")

    result = run("--apply", "--json")

    assert result.code == 1
    rows = {row["catalog"]: row for row in result.json()["catalogs"]}
    assert rows["bags"]["action"] == "error"
    assert "INVALID_ARGUMENT" in rows["bags"]["detail"] and "location mismatch" in rows["bags"]["detail"]
    assert rows["hats"]["action"] == "subscribed"
    assert [call["catalog_key"] for call in control_plane.calls_of(REFRESH)] == ["hats"]


# --- tool-level errors and the filter ---------------------------------------------------------------------


def test_catalog_filter_limits_the_pass(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    subscriber = reader(control_plane)
    for catalog in CATALOGS:
        control_plane.set_cell(subscriber, catalog, "awaiting_subscription")

    result = run("--apply", "--json", "--catalog", "hats", "--catalog", "bags")

    assert result.code == 0
    assert [row["catalog"] for row in result.json()["catalogs"]] == ["hats", "bags"]
    assert control_plane.calls_of("list_bigquery_listing_resources") == [{"catalogs": ["hats", "bags"]}]
    assert sorted(request.name for request in hub.subscribe_requests) == [
        listing_resource_name("bags"),
        listing_resource_name("hats"),
    ]
    assert control_plane.cell_status(subscriber, "shoes") == "awaiting_subscription"


def test_tool_level_errors_land_on_their_catalog(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    subscriber = reader(control_plane)
    for catalog in CATALOGS:
        control_plane.set_cell(subscriber, catalog, "awaiting_subscription")
    control_plane.revoke_catalog("bags")  # a filter naming it fails the whole listing call
    control_plane.fail_tool(REFRESH, "request_failed", catalog_key="hats", detail="upstream timeout")

    result = run("--apply", "--json", "--catalog", "bags", "--catalog", "hats", "--catalog", "shoes")

    assert result.code == 1
    rows = {row["catalog"]: (row["action"], row["detail"]) for row in result.json()["catalogs"]}
    assert rows == {
        "bags": ("error", "list_bigquery_listing_resources failed: catalog_not_granted"),
        "hats": (
            "error",
            f"linked as {PROJECT}.octogen_hats, but the status refresh failed: "
            "refresh_bigquery_subscription_status failed: request_failed (upstream timeout)",
        ),
        "shoes": ("subscribed", f"linked as {PROJECT}.octogen_shoes; control plane status: active"),
    }
    # The failing filtered call was retried per catalog to find the culprit.
    assert control_plane.calls_of("list_bigquery_listing_resources") == [
        {"catalogs": ["bags", "hats", "shoes"]},
        {"catalogs": ["bags"]},
        {"catalogs": ["hats"]},
        {"catalogs": ["shoes"]},
    ]
    assert "bags" not in {request.name.rsplit("/", 1)[-1] for request in hub.subscribe_requests}


def test_unknown_catalog_in_filter_is_an_error(run: Any, control_plane: FakeControlPlane) -> None:
    reader(control_plane)

    result = run("--json", "--catalog", "no-such-catalog")

    assert result.code == 1
    assert result.table() == {"no-such-catalog": (None, "error")}


@pytest.mark.parametrize("tool", ["list_bigquery_subscribers", "register_bigquery_subscriber"])
def test_pass_wide_tool_error_is_one_line_and_exit_1(
    run: Any, control_plane: FakeControlPlane, tool: str
) -> None:
    control_plane.fail_tool(tool, "not_authorized")

    result = run("--apply")

    assert result.code == 1
    assert result.out == ""
    assert result.err == f"octogen-bq-autosubscribe: error: {tool} failed: not_authorized\n"


def test_unfiltered_listing_tool_error_fails_the_pass(run: Any, control_plane: FakeControlPlane) -> None:
    control_plane.fail_tool("list_bigquery_listing_resources", "request_failed")

    result = run("--json")

    assert result.code == 1
    assert result.json() == {
        "mode": "dry_run",
        "ok": False,
        "error": "list_bigquery_listing_resources failed: request_failed",
        "exit_code": 1,
    }


# --- transport failures and the token --------------------------------------------------------------------


def test_rejected_token_is_one_clear_line(
    run: Any, monkeypatch: pytest.MonkeyPatch, control_plane: FakeControlPlane
) -> None:
    monkeypatch.setenv("OCTOGEN_MCP_ACCESS_TOKEN", "cp_expired_token_0123456789")

    result = run("--apply")

    assert result.code == 1
    assert result.out == ""
    assert (
        result.err == "octogen-bq-autosubscribe: error: control plane rejected the access token (HTTP 401)\n"
    )
    assert control_plane.rejected_tokens >= 1
    assert control_plane.calls == []


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, "control plane refused the request: the access token lacks the required scope (HTTP 403)"),
        (422, "control plane rejected the request as invalid (HTTP 422)"),
        (500, "control plane answered HTTP 500"),
        (404, "control plane answered HTTP 404: is the URL the MCP endpoint?"),
    ],
)
def test_http_failures_are_one_clear_line(
    run: Any, control_plane: FakeControlPlane, status: int, message: str
) -> None:
    control_plane.fail_http(status)

    result = run()

    assert (result.code, result.out, result.err) == (1, "", f"octogen-bq-autosubscribe: error: {message}\n")


def test_unreachable_control_plane(run: Any) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/mcp"

    result = run("--control-plane-url", url)

    assert result.code == 1
    assert (
        result.err
        == f"octogen-bq-autosubscribe: error: cannot reach the control plane at {url}: connection failed\n"
    )


def test_token_from_token_command(
    run: Any, monkeypatch: pytest.MonkeyPatch, control_plane: FakeControlPlane, tmp_path: Path
) -> None:
    script = tmp_path / "print token.py"
    script.write_text("import sys\nprint(sys.argv[1])\n")
    monkeypatch.delenv("OCTOGEN_MCP_ACCESS_TOKEN")
    monkeypatch.setenv("OCTOGEN_MCP_TOKEN_COMMAND", f"{sys.executable} '{script}' {control_plane.token}")
    reader(control_plane)

    result = run("--json")

    assert result.code == 0, result.err
    assert result.json()["reader"]["registration"] == "existing"


def test_failing_token_command_is_one_line(
    run: Any, monkeypatch: pytest.MonkeyPatch, control_plane: FakeControlPlane
) -> None:
    monkeypatch.delenv("OCTOGEN_MCP_ACCESS_TOKEN")
    monkeypatch.setenv("OCTOGEN_MCP_TOKEN_COMMAND", f"{sys.executable} -c 'import sys; sys.exit(3)'")

    result = run()

    assert (result.code, result.out) == (1, "")
    assert (
        result.err == f"octogen-bq-autosubscribe: error: token command {sys.executable} "
        "exited with status 3\n"
    )
    assert control_plane.http_requests == 0


def test_no_token_configured_is_exit_2(
    run: Any, monkeypatch: pytest.MonkeyPatch, control_plane: FakeControlPlane
) -> None:
    monkeypatch.delenv("OCTOGEN_MCP_ACCESS_TOKEN")

    result = run()

    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "octogen-bq-autosubscribe: error: no control-plane credentials: set OCTOGEN_MCP_REFRESH_TOKEN_FILE "
        "and OCTOGEN_MCP_CLIENT_ID_FILE (written by octogen-mcp-login), or OCTOGEN_MCP_TOKEN_COMMAND, or "
        "OCTOGEN_MCP_ACCESS_TOKEN\n"
    )
    assert control_plane.http_requests == 0


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--principal", PRINCIPAL], "the following arguments are required: --project"),
        (["--project", "my project", "--principal", PRINCIPAL], "--project must be a GCP project id"),
        (
            ["--project", PROJECT, "--principal", PRINCIPAL, "--catalog", ""],
            "--catalog must be a catalog key",
        ),
        (
            ["--project", PROJECT, "--principal", PRINCIPAL, "--control-plane-url", "ftp://x"],
            "control-plane URL must be an https URL",
        ),
    ],
)
def test_bad_arguments_exit_2(
    capsys: pytest.CaptureFixture[str], control_plane: FakeControlPlane, argv: list[str], complaint: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    captured = capsys.readouterr()
    assert exited.value.code == 2
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and complaint in captured.err
    assert control_plane.http_requests == 0


# --- shapes, concurrency, the entry point -----------------------------------------------------------------


def test_text_only_tool_results_are_understood(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    control_plane.result_style = "text"
    subscriber = reader(control_plane)
    control_plane.set_cell(subscriber, "bags", "active")
    control_plane.set_cell(subscriber, "shoes", "awaiting_subscription")

    result = run("--apply", "--json")

    assert result.code == 0
    assert result.table() == {
        "bags": ("active", "already_active"),
        "hats": (None, "skipped"),
        "shoes": ("awaiting_subscription", "subscribed"),
    }


def test_json_report_shape(run: Any, control_plane: FakeControlPlane) -> None:
    subscriber = reader(control_plane)
    control_plane.set_cell(subscriber, "hats", "active")

    report = run("--json", "--catalog", "hats").json()

    assert report == {
        "ok": True,
        "mode": "dry_run",
        "project": PROJECT,
        "principal": PRINCIPAL,
        "reader": {"registration": "existing", "subscriber_id": subscriber, "desired_state": "enabled"},
        "catalogs": [
            {
                "catalog": "hats",
                "status": "active",
                "reason_code": None,
                "action": "already_active",
                "detail": f"linked dataset {PROJECT}.octogen_hats active",
                "listing_resource": listing_resource_name("hats"),
                "linked_dataset": f"{PROJECT}.octogen_hats",
                "subscription_name": None,
                "sample_query": None,
                "refreshed_status": None,
            }
        ],
        "control_plane_url": control_plane.url,
        "credentials": "access token (OCTOGEN_MCP_ACCESS_TOKEN)",
    }


def test_overlapping_passes_do_no_harm(control_plane: FakeControlPlane, hub: FakeAnalyticsHub) -> None:
    control_plane.register_cell_status = "awaiting_subscription"
    options = AutosubscribeOptions(project=PROJECT, principal=PRINCIPAL, apply=True)
    reports: list[Any] = []
    failures: list[BaseException] = []

    def one_pass() -> None:
        try:
            reports.append(
                autosubscribe(options, control_plane_url=control_plane.url, access_token=control_plane.token)
            )
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=one_pass) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failures == []
    assert [report.exit_code for report in reports] == [0, 0, 0]
    assert len(control_plane.subscribers) == 1
    done = {
        CatalogAction.SUBSCRIBED,
        CatalogAction.ALREADY_SUBSCRIBED,
        CatalogAction.ALREADY_ACTIVE,
    }
    assert all(outcome.action in done for report in reports for outcome in report.catalogs)
    usable = [s for s in hub.subscriptions(PROJECT, "us") if s.state.name == "STATE_ACTIVE"]
    assert sorted(s.listing for s in usable) == sorted(listing_resource_name(catalog) for catalog in CATALOGS)


def test_console_script_entry_point(control_plane: FakeControlPlane) -> None:
    script = Path(sys.executable).parent / "octogen-bq-autosubscribe"
    environment = {**os.environ, "OCTOGEN_MCP_ACCESS_TOKEN": "cp_wrong_token_for_the_entry_point"}

    completed = subprocess.run(
        [str(script), *BASE_ARGS, "--apply"], capture_output=True, text=True, env=environment, timeout=60
    )

    assert completed.returncode == 1
    assert completed.stdout == ""
    assert (
        completed.stderr
        == "octogen-bq-autosubscribe: error: control plane rejected the access token (HTTP 401)\n"
    )


# --- result shapes (issue 11, item 7) ----------------------------------------------------------------------


@pytest.mark.parametrize("style", ["wrapped", "structured", "text"])
def test_every_result_shape_finds_the_reader_and_subscribes_what_awaits(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub, style: str
) -> None:
    """Current servers wrap every value as structuredContent {"result": ...}; older ones send it plain, or
    only as text. Read wrongly, the reader looks unregistered and every --apply pass registers it again."""
    control_plane.result_style = style  # type: ignore[assignment]
    subscriber = reader(control_plane)
    control_plane.set_cell(subscriber, "bags", "source_stale")
    control_plane.set_cell(subscriber, "shoes", "awaiting_subscription")

    first = run("--apply", "--json")
    second = run("--apply", "--json")

    assert (first.code, second.code) == (0, 0), first.err + second.err
    assert first.table() == {
        "bags": ("source_stale", "already_active"),
        "hats": (None, "skipped"),
        "shoes": ("awaiting_subscription", "subscribed"),
    }
    assert second.table()["shoes"] == ("active", "already_active")
    assert control_plane.calls_of(REGISTER) == []
    assert len(control_plane.calls_of(REFRESH)) == 1
    assert first.json()["reader"]["subscriber_id"] == subscriber


def test_source_stale_counts_as_active_and_is_reported_stale(
    run: Any, control_plane: FakeControlPlane
) -> None:
    subscriber = reader(control_plane)
    control_plane.set_cell(subscriber, "hats", "source_stale")

    result = run("--apply", "--catalog", "hats")

    assert result.code == 0
    assert "already_active" in result.out
    stale = "stale: Octogen's export is behind (source_stale)"
    assert f"linked dataset {PROJECT}.octogen_hats {stale}" in result.out
    assert control_plane.mutating_calls == []


def test_friendly_name_names_the_linked_datasets(
    run: Any, control_plane: FakeControlPlane, hub: FakeAnalyticsHub
) -> None:
    control_plane.set_cell(reader(control_plane), "shoes", "awaiting_subscription")

    result = run("--apply", "--friendly-name", "Octogen catalog (shoes)")

    assert result.code == 0, result.err
    (subscription,) = hub.subscriptions(PROJECT, "us")
    assert subscription.destination_dataset.friendly_name == "Octogen catalog (shoes)"

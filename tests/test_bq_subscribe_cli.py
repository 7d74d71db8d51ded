"""octogen-bq-subscribe against the local fake Analytics Hub over its real gRPC transport.

The CLI is pointed at the fake with OCTOGEN_ANALYTICSHUB_ENDPOINT (insecure loopback channel).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from octogen_source.bigquery.subscribe import ENDPOINT_ENV
from octogen_source.bigquery.subscribe_cli import main
from tests.fake_analyticshub import FakeAnalyticsHub

LISTING = "projects/octogen-share/locations/us/dataExchanges/octogen_catalogs/listings/acme-shoes"
PROJECT = "my-proj"
BASE_ARGS = ["--listing", LISTING, "--project", PROJECT]
QUERY = "SELECT * FROM `my-proj.octogen_acme_shoes.products_current_v1` LIMIT 10"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnalyticsHub]:
    with FakeAnalyticsHub() as running:
        monkeypatch.setenv(ENDPOINT_ENV, running.address)
        yield running


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*BASE_ARGS, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dry_run_says_what_it_would_do_and_changes_nothing(
    hub: FakeAnalyticsHub, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--friendly-name", "Acme")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "Dry run: nothing was changed.",
        f"Listing: {LISTING}",
        "Would subscribe, creating linked dataset my-proj.octogen_acme_shoes "
        "(location us, friendly name 'Acme').",
        "No subscription to this listing exists yet in project my-proj.",
        "Run again with --apply to subscribe.",
    ]
    assert hub.subscribe_requests == [] and hub.subscriptions(PROJECT, "us") == []
    assert len(hub.list_requests) == 1


def test_dry_run_reports_an_existing_subscription(
    hub: FakeAnalyticsHub, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = hub.add_subscription(project=PROJECT, listing=LISTING, dataset_id="octogen_acme_shoes")

    code, out, _ = run(capsys)

    assert code == 0
    assert "Already subscribed: linked dataset my-proj.octogen_acme_shoes (state ACTIVE)." in out
    assert f"Subscription: {existing.name}" in out and f"Query it: {QUERY}" in out
    assert "--apply would return this subscription as it is." in out
    assert hub.subscribe_requests == []


def test_dry_run_json(hub: FakeAnalyticsHub, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json", "--dataset", "acme", "--location", "US")

    assert code == 0
    assert json.loads(out) == {
        "mode": "dry_run",
        "action": "would_subscribe",
        "existing_checked": True,
        "note": None,
        "subscription": None,
        "listing_resource": LISTING,
        "destination": {"project": PROJECT, "dataset": "acme", "location": "US", "friendly_name": None},
    }
    assert hub.subscribe_requests == []


def test_dry_run_without_google_credentials_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))

    code, out, _ = run(capsys)
    assert code == 0
    assert "Note: could not check for an existing subscription: no usable Google credentials" in out
    assert "Would subscribe, creating linked dataset my-proj.octogen_acme_shoes (location us)." in out

    code, out, _ = run(capsys, "--json")
    report = json.loads(out)
    assert code == 0
    assert (report["action"], report["existing_checked"]) == ("would_subscribe", False)
    assert "gcloud auth application-default login" in report["note"]


def test_apply_subscribes_then_is_idempotent(
    hub: FakeAnalyticsHub, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--apply", "--friendly-name", "Acme")

    assert (code, err) == (0, "")
    [created] = hub.subscriptions(PROJECT, "us")
    assert out.splitlines() == [
        f"Listing: {LISTING}",
        "Subscribed: linked dataset my-proj.octogen_acme_shoes (state ACTIVE).",
        f"Subscription: {created.name}",
        f"Query it: {QUERY}",
    ]
    [request] = hub.subscribe_requests
    assert request.destination_dataset.friendly_name == "Acme"

    code, out, _ = run(capsys, "--apply", "--json")
    report = json.loads(out)
    assert code == 0 and len(hub.subscribe_requests) == 1
    assert report["mode"] == "apply" and report["action"] == "already_subscribed"
    assert report["subscription"] == {
        "listing_resource": LISTING,
        "linked_project": PROJECT,
        "linked_dataset": "octogen_acme_shoes",
        "state": "ACTIVE",
        "already_subscribed": True,
        "subscription_name": created.name,
        "sample_query": QUERY,
    }


def test_apply_access_pending_exits_3(hub: FakeAnalyticsHub, capsys: pytest.CaptureFixture[str]) -> None:
    hub.deny_listing(LISTING)

    code, out, err = run(capsys, "--apply")
    assert (code, out) == (3, "")
    assert err.startswith("octogen-bq-subscribe: access pending: ") and err.count("\n") == 1
    assert "retry in a few minutes" in err

    code, out, _ = run(capsys, "--apply", "--json")
    assert code == 3
    assert json.loads(out)["action"] == "access_pending"


def test_apply_other_failure_exits_1(hub: FakeAnalyticsHub, capsys: pytest.CaptureFixture[str]) -> None:
    hub.fail_next("SubscribeListing", grpc.StatusCode.UNAVAILABLE, "backend unavailable")

    code, out, err = run(capsys, "--apply")

    assert (code, out) == (1, "")
    assert err.startswith("octogen-bq-subscribe: error: Analytics Hub error while subscribing")
    assert "UNAVAILABLE: backend unavailable" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--listing", "acme-shoes", "--project", PROJECT],
        [*BASE_ARGS, "--dataset", "has-dash"],
        [*BASE_ARGS, "--location", "not a location"],
        ["--listing", LISTING],
        [*BASE_ARGS, "--unknown-flag"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    hub: FakeAnalyticsHub, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code: int | str | None
    try:
        code = main([*args, "--apply"])
    except SystemExit as exited:  # argparse's own checks exit from parse_args
        code = exited.code

    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("octogen-bq-subscribe: error: ") and err.count("\n") == 1
    assert hub.calls == []


def test_installed_entry_point_over_a_real_process(hub: FakeAnalyticsHub) -> None:
    script = Path(sys.executable).with_name("octogen-bq-subscribe")
    command = (
        [str(script)] if script.exists() else [sys.executable, "-m", "octogen_source.bigquery.subscribe_cli"]
    )
    env = {**os.environ, ENDPOINT_ENV: hub.address}

    applied = subprocess.run(
        [*command, *BASE_ARGS, "--apply", "--json"], env=env, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["action"] == "subscribed"

    hub.fail_next("ListSubscriptions", grpc.StatusCode.INTERNAL, "boom")
    failed = subprocess.run([*command, *BASE_ARGS], env=env, capture_output=True, text=True)
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr and failed.stderr.count("\n") == 1

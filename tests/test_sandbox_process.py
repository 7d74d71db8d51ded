"""The sandbox as its own process (`python -m octogen_source.sandbox`) and its /_sandbox/ controls."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

from octogen_source.sandbox import RemoteSandbox, RemoteSandboxError, Sandbox
from tests.sandbox_helpers import api_client, by_uuid, walk

CLI = [sys.executable, "-m", "octogen_source.sandbox"]
SEED = ["--api-generation", "seed"]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The seed-era API (May 2026): this module pins that generation's behaviour."""
    with Sandbox(catalogs=3, products=60, ungranted=1, generation="seed") as running:
        yield running


@pytest.fixture
def sandbox_process() -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    process = subprocess.Popen(
        [
            *CLI,
            "--port",
            "0",
            "--catalogs",
            "2",
            "--products",
            "40",
            "--seed",
            "3",
            "--ungranted",
            "1",
            *SEED,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(3)]
        settings = dict(line.split("=", 1) for line in lines)
        yield process, settings["SOURCES__OCTOGEN__BASE_URL"], settings["OCTO_API_KEY"]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_cli_serves_until_sigterm(sandbox_process: tuple[subprocess.Popen[str], str, str]) -> None:
    process, base_url, api_key = sandbox_process
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
    assert api_key.startswith("octo_live_")
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        catalogs = client.get("/catalogs").json()
        assert [c["catalog"] for c in catalogs] == ["northwind_apparel"]
        items = walk(client, catalog="northwind_apparel", limit=15)
        assert len(items) == 40
        with RemoteSandbox(base_url) as remote:
            assert remote.api_key == api_key and remote.base_url == base_url
            assert by_uuid(items) == by_uuid(remote.truth_search_items("northwind_apparel"))
    process.terminate()
    assert process.wait(10) == 0
    assert process.stderr is not None
    stderr = process.stderr.read()
    assert "Traceback" not in stderr
    # the granted catalog's store host (the current API cannot list it); stdout holds the variables
    assert "sandbox: store hosts for --discover: shop.northwind-apparel.example" in stderr


def test_same_seed_in_process_and_out_of_process_gives_the_same_catalog(
    sandbox_process: tuple[subprocess.Popen[str], str, str],
) -> None:
    _, base_url, api_key = sandbox_process
    local = Sandbox(catalogs=2, products=40, seed=3, ungranted=1, generation="seed")
    with RemoteSandbox(base_url) as remote:
        assert remote.truth_catalogs() == local.truth_catalogs()
        assert remote.truth_search_items("northwind_apparel") == local.truth_search_items("northwind_apparel")
    assert local.api_key == api_key


def test_cli_speaks_the_current_generation_unless_told_otherwise() -> None:
    process = subprocess.Popen(
        [*CLI, "--port", "0", "--catalogs", "1", "--products", "5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        settings = dict(process.stdout.readline().strip().split("=", 1) for _ in range(3))
        headers = {"Authorization": f"Bearer {settings['OCTO_API_KEY']}"}
        with httpx.Client(
            base_url=settings["SOURCES__OCTOGEN__BASE_URL"], headers=headers, timeout=10
        ) as client:
            assert client.get("/catalogs").status_code == 404
            assert client.get("/me").json()["organization"]["type"] == "catalog_partner"
        with RemoteSandbox(settings["SOURCES__OCTOGEN__BASE_URL"]) as remote:
            assert remote.info()["apiGeneration"] == remote.api_generation == "current"
            remote.set_api_generation("seed")
            assert (
                httpx.get(f"{settings['SOURCES__OCTOGEN__BASE_URL']}/catalogs", headers=headers).status_code
                == 200
            )
    finally:
        process.terminate()
        process.wait(10)
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run([*CLI, "--api-generation", "v7"], check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--products", "-1"], "expected a number >= 0"),
        (["--catalogs", "2", "--ungranted", "3"], "error: ungranted must be between 0 and catalogs"),
        (["--catalogs", "many"], "expected a whole number"),
    ],
)
def test_cli_bad_input_is_one_readable_line(arguments: list[str], message: str) -> None:
    result = subprocess.run([*CLI, *arguments], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_port_in_use_is_one_readable_line(sandbox: Sandbox) -> None:
    result = subprocess.run([*CLI, "--port", str(sandbox.port)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{sandbox.port}")
    )
    assert "Traceback" not in result.stderr


@pytest.fixture
def remote(sandbox: Sandbox) -> Iterator[RemoteSandbox]:
    with RemoteSandbox(sandbox.base_url) as controls:
        yield controls


def test_remote_controls_match_the_in_process_sandbox(sandbox: Sandbox, remote: RemoteSandbox) -> None:
    catalog = sandbox.granted_catalogs()[0]
    assert remote.api_key == sandbox.api_key and remote.base_url == sandbox.base_url
    assert remote.granted_catalogs() == sandbox.granted_catalogs()
    assert remote.all_catalogs() == sandbox.all_catalogs()
    assert remote.truth_catalogs() == sandbox.truth_catalogs()
    assert remote.truth_search_items(catalog) == sandbox.truth_search_items(catalog)
    uuid = sandbox.truth_search_items(catalog)[0]["uuid"]
    assert remote.truth_product_view(uuid) == sandbox.truth_product_view(uuid)
    assert remote.truth_lookup(uuid) == sandbox.truth_lookup(uuid)

    changed = remote.update_prices(catalog, 3)
    assert all(sandbox.truth_product_view(u)["updatedAt"] == remote.clock == sandbox.clock for u in changed)
    added = remote.add_products(catalog, 2) + remote.add_late_indexed(catalog, 1)
    added += remote.add_null_updated_at(catalog, 1) + remote.add_same_second(catalog, 1)
    removed = remote.remove_products(catalog, 2)
    truth = by_uuid(sandbox.truth_search_items(catalog))
    assert set(added) <= set(truth) and not set(removed) & set(truth) and len(truth) == 63
    assert remote.restore_products(removed) == removed
    with pytest.raises(KeyError):
        remote.truth_product_view("no-such-uuid")

    remote.set_wire_shape("v2")
    assert sandbox.wire_shape == remote.wire_shape == "v2"
    assert sandbox.api_generation == remote.api_generation == "current"
    assert isinstance(remote.truth_search_items(catalog)[0]["images"][0], dict)
    assert remote.truth_catalog_summaries() == sandbox.truth_catalog_summaries()
    assert remote.store_host(catalog) == sandbox.store_host(catalog) == "shop.northwind-apparel.example"
    remote.set_api_generation("seed")
    assert (sandbox.api_generation, remote.wire_shape) == ("seed", "v1")

    remote.exhaust_credit()
    assert sandbox.credit_exhausted and remote.credit_exhausted
    remote.restore_credit()
    assert not remote.credit_exhausted
    remote.set_rate_limit(None)
    assert sandbox.rate_limit is None and remote.rate_limit is None
    remote.set_rate_limit(120)
    assert remote.rate_limit == sandbox.rate_limit == 120

    empty_key = remote.add_key([])
    forbidden_key = remote.add_key(forbidden=True)
    with api_client(sandbox, empty_key) as client:
        assert client.get("/catalogs").json() == []
    with api_client(sandbox, forbidden_key) as client:
        assert client.get("/catalogs").status_code == 403
    remote.revoke_key(empty_key)
    with api_client(sandbox, empty_key) as client:
        assert client.get("/catalogs").status_code == 401


def test_remote_faults_and_counts(sandbox: Sandbox, remote: RemoteSandbox) -> None:
    with api_client(sandbox) as client:
        remote.fail_next(1, 429, endpoint="search", retry_after=2)
        response = client.post("/products/search", json={})
        assert (response.status_code, response.headers["Retry-After"]) == (429, "2")
        remote.set_fault_rates(rate_5xx=1.0)
        assert client.get("/catalogs").status_code in (500, 503)
        remote.clear_faults()
        assert client.get("/catalogs").status_code == 200
    assert (
        remote.request_counts
        == sandbox.request_counts
        == {
            "catalogs": 2,
            "search": 1,
            "lookup": 0,
            "me": 0,
            "domains": 0,
        }
    )
    assert remote.faults_injected == {"429": 1, **{k: 1 for k in sandbox.faults_injected if k != "429"}}
    remote.reset_counts()
    assert sandbox.request_counts == dict.fromkeys(("catalogs", "search", "lookup", "me", "domains"), 0)


def test_admin_rejects_bad_arguments_readably(sandbox: Sandbox, remote: RemoteSandbox) -> None:
    with pytest.raises(RemoteSandboxError, match="unknown catalog"):
        remote.add_products("no_such_catalog", 1)
    with pytest.raises(RemoteSandboxError, match="unknown fault kind"):
        remote.fail_next(1, "418")
    with pytest.raises(RemoteSandboxError, match="unknown wire shape"):
        remote.set_wire_shape("v9")
    response = httpx.post(f"{sandbox.admin_url}/mutations/explode", json={"catalog": "x", "count": 1})
    assert response.status_code == 400 and "unknown mutation" in response.json()["detail"]
    response = httpx.post(f"{sandbox.admin_url}/faults/rates", content=b"{not json")
    assert response.status_code == 400
    response = httpx.get(f"{sandbox.admin_url}/truth/search-items")
    assert response.status_code == 400 and "catalog" in response.json()["detail"]


def test_stop_while_a_request_is_in_flight(sandbox_factory: object) -> None:
    sandbox = Sandbox(catalogs=1, products=5, generation="seed").start()
    sandbox.set_fault_rates(latency=30)
    outcome: list[object] = []

    def slow_request() -> None:
        try:
            outcome.append(httpx.get(sandbox.base_url + "/catalogs", timeout=60).status_code)
        except httpx.TransportError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=slow_request)
    thread.start()
    while sandbox.request_counts["catalogs"] == 0:
        threading.Event().wait(0.01)
    sandbox.stop()  # does not wait for the 30 s latency
    thread.join(10)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError)

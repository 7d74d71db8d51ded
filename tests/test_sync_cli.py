"""``pipelines/sync.py``: every bad input ends with one readable line and a non-zero exit, no traceback; the
demo syncs a sandbox and shows a query. Most cases call ``main()`` in-process (same code path as the script);
one test runs the real script to check the exit status and the whole output of a process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from octogen_source.cli import format_table
from octogen_source.commands.sync import FULL_REFRESH_DEPRECATED, build_parser, main
from octogen_source.sandbox import Sandbox
from tests.cli_support import (
    KEY_VARIABLES,
    SCRIPT,
    closed_port,
    one_error_line,
)


def test_missing_key(cli_env: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no Octogen API key" in one_error_line(capsys, [], status=2)
    assert sum(cli_env.request_counts.values()) == 0


def test_rejected_and_forbidden_keys(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked = cli_env.add_key()
    cli_env.revoke_key(revoked)
    monkeypatch.setenv("OCTO_API_KEY", revoked)
    line = one_error_line(capsys, [])
    assert line == "error: the Octogen API rejected the API key (401 API key revoked)"
    assert revoked not in line
    monkeypatch.setenv("OCTO_API_KEY", cli_env.add_key(forbidden=True))
    assert "403 api_key_org_type_forbidden" in one_error_line(capsys, [])


def test_unknown_and_ungranted_catalogs(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    line = one_error_line(capsys, ["--catalog", "no_such_catalog"])
    assert line == (
        "error: unknown catalog 'no_such_catalog': this API key cannot see it (404 catalog_not_found);"
        " find catalog keys with `octogen-sync --discover <store URL or host>`"
    )
    ungranted = next(c for c in cli_env.all_catalogs() if c not in cli_env.granted_catalogs())
    assert f"unknown catalog {ungranted!r}" in one_error_line(capsys, ["--catalog", ungranted])
    assert cli_env.request_counts["lookup"] == 0


def test_unreachable_host(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    monkeypatch.setenv("SOURCES__OCTOGEN__BASE_URL", url)
    assert one_error_line(capsys, []).startswith(
        f"error: cannot reach the Octogen API at {url}: POST /products/search"
    )


def test_server_garbage(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    cli_env.fail_next(1, "garbage", endpoint="search")
    line = one_error_line(capsys, ["--no-details"])
    assert "POST /products/search: invalid JSON response" in line


def test_bad_filters(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    line = one_error_line(capsys, ["--facet", "no_such_facet=x"], status=2)  # the API's 422: bad input
    assert line.startswith("error: the Octogen API rejected the request: body.facets.0.name")
    assert "no_such_facet" in line
    assert "name=value1,value2" in one_error_line(capsys, ["--facet", "brand"], status=2)
    assert "--price-min (5) is above --price-max (1)" in one_error_line(
        capsys, ["--price-min", "5", "--price-max", "1"], status=2
    )
    assert "invalid choice: 'nope'" in one_error_line(capsys, ["--destination", "nope"], status=2)
    assert "unrecognized arguments" in one_error_line(capsys, ["--no-such-flag"], status=2)
    assert "'-5' is not a number >= 0" in one_error_line(capsys, ["--price-min", "-5"], status=2)
    assert "'banana' is not a memory size such as 128MB" in one_error_line(
        capsys, ["--duckdb-memory-limit", "banana"], status=2
    )


def test_destination_failures(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    # (not octogen.duckdb: a file named like the dataset is refused before any connection)
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "missing" / "warehouse.duckdb"))
    line = one_error_line(capsys, [])
    assert line.startswith("error: cannot connect to the destination (dataset 'octogen'): IO Error")
    assert "missing/warehouse.duckdb" in line
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS")
    # no Google credentials anywhere (the file ADC would read does not exist)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no_such_credentials.json"))
    line = one_error_line(capsys, ["--destination", "bigquery", "--no-details"], status=2)
    assert line.startswith("error: missing configuration") and "BigQuery" in line


def test_the_script_exits_with_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    revoked = sandbox.add_key()
    sandbox.revoke_key(revoked)
    env = {name: value for name, value in os.environ.items() if name not in KEY_VARIABLES}
    env.update(
        SOURCES__OCTOGEN__BASE_URL=sandbox.base_url,
        SOURCES__OCTOGEN__CATALOGS=json.dumps(sandbox.granted_catalogs()),
    )
    # each run in its own directory: both record their failure in sync_runs, and one DuckDB file (or one
    # dlt data directory) takes one writer at a time
    for name in ("missing", "rejected"):
        (tmp_path / name).mkdir()
    missing = subprocess.Popen(
        [sys.executable, str(SCRIPT)],
        cwd=tmp_path / "missing",
        env={**env, "DLT_DATA_DIR": str(tmp_path / "missing" / "dlt")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rejected = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--progress"],
        cwd=tmp_path / "rejected",
        env={**env, "OCTO_API_KEY": revoked, "DLT_DATA_DIR": str(tmp_path / "rejected" / "dlt")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for process, expected in (
        (missing, "error: no Octogen API key"),
        (rejected, "error: the Octogen API rejected the API key (401 API key revoked)"),
    ):
        out, err = process.communicate(timeout=120)
        assert process.returncode == (2 if process is missing else 1)  # a missing key is configuration
        assert out == ""
        if process is rejected:  # --progress: dlt's extract progress first, the error line last
            assert "Traceback" not in err and "Extract octogen" in err
            err = err.splitlines()[-1] + "\n"
        assert err.splitlines() == [err.strip()] and err.startswith(expected), err
        assert revoked not in err


def test_demo(cli_env: Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--demo"]) == 0
    out, err = capsys.readouterr()
    assert "northwind_apparel" in out and "total" in out
    assert "The biggest discounts:" in out and "discount_pct" in out
    assert err == ""
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("catalog ") and "discount_pct" in line)
    rows = lines[lines.index(header) + 1 :]
    assert len(rows) == 5
    for column in ("current_price", "original_price", "discount_pct"):  # numbers right-aligned
        end = header.index(column) + len(column)
        assert all(row[end - 1].isdigit() and row[end] == " " for row in rows), column
    sizes = [row[header.index("sizes") :] for row in rows]
    assert all(re.fullmatch(r"\w+(, \w+)*", cell) for cell in sizes), sizes  # not ['M', 'L']
    assert "['" not in out and "[]" not in out
    with duckdb.connect(str(tmp_path / "octogen_demo.duckdb"), read_only=True) as connection:
        live = connection.execute("SELECT count(*) FROM octogen.products WHERE removed_at IS NULL").fetchone()
        details = connection.execute("SELECT count(*) FROM octogen.product_details").fetchone()
    assert live == details == (450,)


def test_demo_without_details_shows_the_sizes_the_hits_carry(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--demo", "--no-details"]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("catalog ") and "sizes" in line)
    sizes = [row[header.index("sizes") :] for row in lines[lines.index(header) + 1 :]]
    assert len(sizes) == 5 and all(re.fullmatch(r"\w+(, \w+)*", cell) for cell in sizes), sizes


def test_demo_against_the_seed_era_api(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCES__OCTOGEN__CATALOGS")
    assert main(["--demo", "--api-generation", "seed", "--no-details"]) == 0
    out, _ = capsys.readouterr()
    assert "sandbox (seed API)" in out and "total              450" in out


@pytest.mark.parametrize(
    "configured",
    [lambda keys: ",".join(keys), lambda keys: " , ".join(keys) + ",", json.dumps],
    ids=["comma-separated", "spaced", "json-list"],
)
def test_catalogs_named_in_the_environment(
    cli_env: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    configured: Callable[[list[str]], str],
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    first = cli_env.granted_catalogs()[:1]
    monkeypatch.setenv("SOURCES__OCTOGEN__CATALOGS", configured(first))
    assert main(["--no-details"]) == 0
    out, _ = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()[1:2]] == first


def test_catalogs_named_in_config_toml(cli_env: Sandbox, tmp_path: Path) -> None:
    # a process of its own, started in the project folder as a user would (dlt reads ./.dlt once per process)
    last = cli_env.granted_catalogs()[-1]
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text(f'[sources.octogen]\ncatalogs = ["{last}"]\n')
    env = {name: value for name, value in os.environ.items() if name != "SOURCES__OCTOGEN__CATALOGS"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--no-details"],
        cwd=tmp_path,
        env={**env, "OCTO_API_KEY": cli_env.api_key},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split()[0] == last and lines[3].startswith("total")


def test_without_catalogs_the_current_api_gets_one_line_saying_how_to_name_them(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    monkeypatch.delenv("SOURCES__OCTOGEN__CATALOGS")
    line = one_error_line(capsys, [], status=2)
    assert "GET /catalogs was retired on 2026-07-09" in line and "--catalog KEY" in line
    assert "--discover" in line
    assert cli_env.request_counts["search"] == 0


def test_discover_prints_the_catalogs_serving_a_store(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    catalog = cli_env.granted_catalogs()[0]
    host = cli_env.store_host(catalog)
    for argument in (host, f"https://{host}/products/anything?variant=1"):
        assert main(["--discover", argument]) == 0
        out, err = capsys.readouterr()
        count = next(s["productCount"] for s in cli_env.truth_catalog_summaries() if s["catalog"] == catalog)
        name = next(s["displayName"] for s in cli_env.truth_catalog_summaries() if s["catalog"] == catalog)
        lines = out.splitlines()
        assert lines[0] == f"catalogs serving {host}:"
        assert lines[2].split()[0] == catalog and name in lines[2] and f" {count} " in lines[2]
        assert lines[-1] == f"sync with: --catalog {catalog}" and err == ""

    assert main(["--discover", "unknown-store.example"]) == 0
    assert "no catalog visible to this API key serves unknown-store.example" in capsys.readouterr().out

    monkeypatch.setenv("OCTO_API_KEY", "octo_live_0123456789abcdef0123456789abcdef_wrong")
    assert "401" in one_error_line(capsys, ["--discover", host])


def test_discover_on_the_seed_era_says_the_api_predates_domains(
    cli_env: Sandbox,
    seed_sandbox: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCES__OCTOGEN__BASE_URL", seed_sandbox.base_url)
    monkeypatch.setenv("OCTO_API_KEY", seed_sandbox.api_key)
    line = one_error_line(capsys, ["--discover", "shop.example"])
    assert line.startswith("error: this Octogen API has no GET /domains (it predates it")
    assert "`octogen-sync --check` without --catalog prints them" in line


def test_refetch_all_and_its_deprecated_alias_full_refresh(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    products = 60 * len(cli_env.granted_catalogs())
    assert main(["--no-details"]) == 0
    capsys.readouterr()
    for argv, warning in (
        (["--refetch-all"], ""),
        (["--full-refresh"], FULL_REFRESH_DEPRECATED + "\n"),
    ):
        assert main(argv) == 0
        out, err = capsys.readouterr()
        assert err == warning
        total = next(line.split() for line in out.splitlines() if line.startswith("total"))
        assert total[4] == str(products)  # every product looked up again; nothing dropped
    with duckdb.connect("octogen_sync.duckdb", read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM octogen.products").fetchone() == (products,)
    assert "deprecated: the old name of --refetch-all" in " ".join(build_parser().format_help().split())


def test_json_prints_the_run_result(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    catalogs = cli_env.granted_catalogs()
    assert main(["--json", "--no-details"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert err == "" and result["ok"] is True
    assert [entry["catalog"] for entry in result["catalogs"]] == catalogs
    assert all(entry["new"] == 60 and entry["complete"] is True for entry in result["catalogs"])
    assert all(entry["outcome"] == "ok" and entry["walked"] == 60 for entry in result["catalogs"])
    assert result["totals"]["new"] == 60 * len(catalogs) and result["totals"]["lookups"] == 0
    assert result["totals"]["requests"] == sum(entry["requests"] for entry in result["catalogs"])
    assert len(result["load_ids"]) == 1 and result["warnings"] == []
    assert (result["destination"], result["dataset"]) == ("duckdb", "octogen")

    monkeypatch.setenv("OCTO_API_KEY", "octo_live_not_a_key")
    assert main(["--json"]) == 1
    out, err = capsys.readouterr()
    failed = json.loads(out)  # the failed run's result: what sync_runs recorded
    assert failed["ok"] is False and failed["outcome"] == "failed"
    assert failed["error"] == err.strip().removeprefix("error: ")
    assert [entry["catalog"] for entry in failed["catalogs"]] == catalogs
    assert "octo_live_not_a_key" not in out
    assert err.startswith("error: the Octogen API rejected the API key (401")


def test_progress_shows_the_walk_and_dlts_normalize_and_load_on_stderr(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    assert main(["--progress", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["ok"] is True  # stdout stays the result
    for catalog in cli_env.granted_catalogs():
        assert f"{catalog}: done, 60 products seen, 60 new" in err
    for step in ("Extract", "Normalize", "Load"):
        assert f" {step} octogen " in err, err
    assert "Jobs: " in err and "Traceback" not in err


def test_the_table_printer_shows_values_as_a_person_reads_them() -> None:
    rows: list[list[object]] = [["x", 1234, 9.5, True, ["M", "L"]], ["yy", None, 10.25, False, []]]
    assert format_table(["a", "n", "price", "ok", "sizes"], rows) == [
        "a       n  price  ok     sizes",
        "x   1,234   9.50  true   M, L",
        "yy         10.25  false",
    ]
    assert format_table(["k", "v"], [["a", "1.5"]], right={1}) == ["k    v", "a  1.5"]

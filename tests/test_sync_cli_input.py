"""Bad input to ``octogen-sync`` found by running it as users do: every mistake in the arguments or the
configuration is one line and exit 2 (``--json`` says so on stdout too), modes that cannot go together are
refused, and a configuration mistake leaves the destination as it was (no file created, none changed)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from octogen_source.commands.sync import main
from octogen_source.sandbox import Sandbox
from tests.cli_support import closed_port, one_error_line


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--json", "--price-min", "5", "--price-max", "1"], "--price-min (5) is above --price-max (1)"),
        (["--json", "--bogus"], "unrecognized arguments: --bogus"),
        (["--json", "--page-size", "0"], "argument --page-size: '0' is not a positive integer"),
        (["--json", "--retry-max-seconds", "0"], "argument --retry-max-seconds: '0' is not a number > 0"),
    ],
)
def test_json_reports_a_bad_argument_on_stdout_too(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    result = json.loads(out)
    assert result["ok"] is False and message in result["error"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--demo", "--check"],
        ["--check", "--discover", "shop.example"],
        ["--demo", "--discover", "shop.example"],
        ["--api-generation", "seed"],
    ],
)
def test_modes_that_cannot_go_together_exit_2(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    line = one_error_line(capsys, argv, status=2)
    assert "not allowed with argument" in line or "--api-generation only applies to --demo" in line
    assert sum(cli_env.request_counts.values()) == 0


def test_discover_json_and_an_unreachable_api_named_by_its_url(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    catalog = cli_env.granted_catalogs()[0]
    host = cli_env.store_host(catalog)
    assert main(["--discover", host, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    summary = next(s for s in cli_env.truth_catalog_summaries() if s["catalog"] == catalog)
    assert result["ok"] is True and result["host"] == host
    assert [(c["catalog"], c["product_count"]) for c in result["catalogs"]] == [
        (catalog, summary["productCount"])
    ]

    unreachable = f"http://127.0.0.1:{closed_port()}/v1"
    monkeypatch.setenv("SOURCES__OCTOGEN__BASE_URL", unreachable)
    line = one_error_line(capsys, ["--discover", host])
    assert line.startswith(f"error: cannot reach the Octogen API at {unreachable}: GET /domains/")


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SOURCES__OCTOGEN__CATALOGS", '{"a": 1}', "sources.octogen.catalogs"),
        ("SOURCES__OCTOGEN__CATALOGS", "northwind apparel", "sources.octogen.catalogs"),
        ("SOURCES__OCTOGEN__PAGE_SIZE", "abc", "sources.octogen.page_size"),
        ("SOURCES__OCTOGEN__PAGE_SIZE", "0", "bad setting sources.octogen.page_size: 0 is out of range"),
        ("SOURCES__OCTOGEN__PRICE_MIN", "nan", "bad setting sources.octogen.price_min: nan is out of range"),
        ("SOURCES__OCTOGEN__PRICE_MAX", "-5", "bad setting sources.octogen.price_max: -5.0 is out of range"),
        ("SOURCES__OCTOGEN__RETRY_MAX_SECONDS", "-1", "bad setting sources.octogen.retry_max_seconds"),
        # no time for a first attempt: every request would fail unsent
        ("SOURCES__OCTOGEN__RETRY_MAX_SECONDS", "0", "bad setting sources.octogen.retry_max_seconds"),
        ("OCTO_API_KEY", "", "no Octogen API key"),
    ],
)
def test_a_configuration_mistake_leaves_the_destination_as_it_was(
    cli_env: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    value: str,
    named: str,
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    good = os.environ.get(variable)
    database = tmp_path / "octogen_sync.duckdb"
    monkeypatch.setenv(variable, value)
    assert named in one_error_line(capsys, ["--no-details"], status=2)
    assert not database.exists()  # nothing created, not even sync_runs
    assert sum(cli_env.request_counts.get(name, 0) for name in ("search", "lookup")) == 0

    if good is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, good)
    assert main(["--no-details"]) == 0
    capsys.readouterr()
    before = digest(database)
    monkeypatch.setenv(variable, value)
    assert named in one_error_line(capsys, ["--no-details"], status=2)
    assert digest(database) == before  # not a byte changed
    with duckdb.connect(str(database), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM octogen.sync_runs").fetchone() == (
            len(cli_env.granted_catalogs()),
        )


def test_a_broken_config_toml_is_named_and_exits_2(cli_env: Sandbox, tmp_path: Path) -> None:
    # a process of its own, started in the project folder (dlt reads ./.dlt once per process)
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text("[sources.octogen\ncatalogs = ['a']\n")
    ran = subprocess.run(
        [sys.executable, "-m", "octogen_source", "--no-details"],
        cwd=tmp_path,
        env={**os.environ, "OCTO_API_KEY": cli_env.api_key},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.startswith("error: cannot read the configuration: .dlt/config.toml: "), ran.stderr
    assert len(ran.stderr.splitlines()) == 1
    assert not (tmp_path / "octogen_sync.duckdb").exists()


def test_a_filter_the_api_refuses_is_found_by_check_and_leaves_the_destination_as_it_was(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    assert main(["--check", "--facet", "bogus=1"]) == 1
    lines = capsys.readouterr().out.splitlines()
    catalog_lines = [line for line in lines if " catalog " in line]
    assert catalog_lines and all(line.startswith("failed  catalog ") for line in catalog_lines)
    assert all("unknown facet name 'bogus'" in line for line in catalog_lines)

    assert main(["--no-details"]) == 0
    capsys.readouterr()
    database = tmp_path / "octogen_sync.duckdb"
    before = digest(database)
    line = one_error_line(capsys, ["--no-details", "--facet", "bogus=1"], status=2)
    assert "unknown facet name 'bogus'" in line
    assert digest(database) == before


def test_a_contract_refusal_is_one_line_on_stderr(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    assert main(["--tables", "products"]) == 0
    capsys.readouterr()
    # a process of its own: the walk, stopped part-way, leaves async generators that the interpreter closes at
    # its exit, which asyncio would report on stderr
    ran = subprocess.run(
        [sys.executable, "-m", "octogen_source", "--schema-contract", "freeze"],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 1 and ran.stdout == ""
    assert ran.stderr.startswith(
        "error: the schema contract refused the data during extract: tables are freeze"
    )
    assert len(ran.stderr.splitlines()) == 1, ran.stderr


@pytest.mark.parametrize("tables", ["", ","])
def test_a_table_selection_naming_no_table_is_refused(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], tables: str
) -> None:
    assert "names no table" in one_error_line(capsys, ["--tables", tables], status=2)
    assert sum(cli_env.request_counts.values()) == 0

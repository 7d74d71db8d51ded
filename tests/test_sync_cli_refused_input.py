"""Input ``octogen-sync`` used to accept and then fail on much later (after ~20 s of retries, inside DuckDB,
or by loading somewhere unintended), found by an audit of the installed wheel: each is now refused at once as
a bad argument or setting, one line naming it and the form expected, exit 2, no request sent, no file made.

- a base URL without a host, with whitespace in its host or with a port outside 1..65535 (flag, environment
  variable and .dlt/config.toml alike; the client refuses it too, so ``--discover`` does);
- an empty or blank ``--dataset`` (dlt would load into the dataset the pipeline used last);
- ``catalogs = 5`` in .dlt/config.toml (it was the catalog key '5'), the API key in .dlt/config.toml (dlt's
  own exception, exit 1);
- a ``--duckdb-memory-limit`` below 32MB (DuckDB ran out of memory in the load);
- an empty ``--catalog`` (it hid SOURCES__OCTOGEN__CATALOGS and the run said "no catalogs configured").

A failure the walk's task group raises reaches the error line as its first leaf exception, never as
"ExceptionGroup during extract: unhandled errors in a TaskGroup".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from octogen_source.client import OctogenClient
from octogen_source.commands.sync import build_parser
from octogen_source.errors import OctogenConfigurationError, OctogenConnectionError
from octogen_source.sandbox import Sandbox
from octogen_source.sync.failures import describe_failure, failure_is_retryable
from tests.cli_support import KEY_VARIABLES, one_error_line

BAD_BASE_URLS = [
    ("http://", "has no host"),
    ("http://exa mple.com/v1", "has whitespace in its host"),
    ("http://127.0.0.1:0/v1", "has port 0, not one from 1 to 65535"),
    ("http://127.0.0.1:99999/v1", "has port 99999, not one from 1 to 65535"),
]
EXPECTED_URL = "(expected an http(s) URL such as https://api.octogen.ai/v1)"


def run_in(folder: Path, argv: list[str], **environment: str) -> subprocess.CompletedProcess[str]:
    """``octogen-sync`` in a process of its own started in ``folder`` (dlt reads ./.dlt once per process),
    without the source's variables ``cli_env`` sets, so that ``folder/.dlt/config.toml`` is what applies."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SOURCES__OCTOGEN__") and name not in KEY_VARIABLES
    }
    env.update(SOURCES__OCTOGEN__RETRY_MAX_ATTEMPTS="1", **environment)
    return subprocess.run(
        [sys.executable, "-m", "octogen_source", *argv],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_config(folder: Path, text: str) -> None:
    (folder / ".dlt").mkdir(exist_ok=True)
    (folder / ".dlt" / "config.toml").write_text(text)


def no_search_or_lookup(sandbox: Sandbox) -> bool:
    return sum(sandbox.request_counts.get(name, 0) for name in ("search", "lookup")) == 0


# ---- 1. the base URL ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "problem"), BAD_BASE_URLS)
def test_a_base_url_flag_without_a_usable_host_or_port_is_a_bad_argument(
    cli_env: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    url: str,
    problem: str,
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    line = one_error_line(capsys, ["--no-details", "--base-url", url], status=2)
    assert line == f"error: argument --base-url: {url!r} {problem} {EXPECTED_URL} (see --help)"
    assert no_search_or_lookup(cli_env)
    assert not (tmp_path / "octogen_sync.duckdb").exists()


@pytest.mark.parametrize(("url", "problem"), BAD_BASE_URLS)
def test_a_base_url_from_the_environment_without_a_usable_host_or_port_is_a_bad_setting(
    cli_env: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    url: str,
    problem: str,
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    monkeypatch.setenv("SOURCES__OCTOGEN__BASE_URL", url)
    line = one_error_line(capsys, ["--no-details"], status=2)
    assert line == f"error: bad setting sources.octogen.base_url: {url!r} {problem} {EXPECTED_URL}"
    assert not (tmp_path / "octogen_sync.duckdb").exists()
    # --discover reads the same setting; the client refuses the URL before any request
    line = one_error_line(capsys, ["--discover", "shop.example"], status=2)
    assert line == f"error: base_url must be an http(s) URL with a host; {url!r} {problem}"
    assert sum(cli_env.request_counts.values()) == 0


def test_a_base_url_without_a_host_in_config_toml_is_a_bad_setting(cli_env: Sandbox, tmp_path: Path) -> None:
    catalog = cli_env.granted_catalogs()[0]
    write_config(tmp_path, f'[sources.octogen]\nbase_url = "http://"\ncatalogs = ["{catalog}"]\n')
    ran = run_in(tmp_path, ["--no-details"], OCTO_API_KEY=cli_env.api_key)
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.splitlines() == [
        f"error: bad setting sources.octogen.base_url: 'http://' has no host {EXPECTED_URL}"
    ]
    assert not (tmp_path / "octogen_sync.duckdb").exists()


@pytest.mark.parametrize(("url", "problem"), BAD_BASE_URLS)
def test_the_client_refuses_a_base_url_without_a_usable_host_or_port(url: str, problem: str) -> None:
    with pytest.raises(OctogenConfigurationError) as refused:
        OctogenClient(api_key="octo_test", base_url=url)
    assert str(refused.value) == f"base_url must be an http(s) URL with a host; {url!r} {problem}"


@pytest.mark.parametrize(
    "url", ["https://api.octogen.ai/v1", "http://127.0.0.1:65535/v1", "http://[::1]:1/v1"]
)
def test_a_usable_base_url_is_accepted(url: str) -> None:
    assert build_parser().parse_args(["--base-url", url]).base_url == url
    OctogenClient(api_key="octo_test", base_url=url)


def test_an_exception_group_is_described_by_its_first_leaf() -> None:
    """What the walk's task group raises (no mock: real exception groups, as asyncio builds them)."""
    overflow = ExceptionGroup("unhandled errors in a TaskGroup", [OverflowError("port must be 0-65535.")])
    line = describe_failure(overflow)
    assert line == "OverflowError: port must be 0-65535."

    unreachable = OctogenConnectionError("Could not reach the Octogen API on POST /products/search: boom")
    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [unreachable, ValueError("second")])])
    try:
        raise RuntimeError("extract failed") from nested  # as dlt wraps what a step raised
    except RuntimeError as error:
        wrapped = error
    for failure in (nested, wrapped):
        line = describe_failure(failure, base_url="http://127.0.0.1:9/v1")
        assert line == "cannot reach the Octogen API at http://127.0.0.1:9/v1: POST /products/search: boom"
        assert failure_is_retryable(failure)
    assert "ExceptionGroup" not in describe_failure(ExceptionGroup("g", [RuntimeError("x")]))


# ---- 2. the dataset ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["", "   "])
def test_an_empty_dataset_is_a_bad_argument(
    cli_env: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    dataset: str,
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    line = one_error_line(capsys, ["--no-details", "--dataset", dataset], status=2)
    assert line == "error: --dataset needs a dataset name (such as 'octogen') (see --help)"
    assert sum(cli_env.request_counts.values()) == 0
    assert not (tmp_path / "octogen_sync.duckdb").exists()


# ---- 3. catalogs and the API key in .dlt/config.toml -------------------------------------------------------


@pytest.mark.parametrize("value", ["5", "true", "2.5"])
def test_catalogs_that_are_not_a_list_in_config_toml_are_a_bad_setting(
    cli_env: Sandbox, tmp_path: Path, value: str
) -> None:
    write_config(tmp_path, f"[sources.octogen]\nbase_url = {cli_env.base_url!r}\ncatalogs = {value}\n")
    ran = run_in(tmp_path, ["--no-details"], OCTO_API_KEY=cli_env.api_key)
    assert ran.returncode == 2 and ran.stdout == ""
    shown = {"true": "True"}.get(value, value)
    assert ran.stderr.splitlines() == [
        f"error: sources.octogen.catalogs must be a list of catalog keys, not {shown!r}"
    ]
    assert no_search_or_lookup(cli_env)
    assert not (tmp_path / "octogen_sync.duckdb").exists()


def test_the_api_key_in_config_toml_is_a_bad_setting_that_never_shows_it(
    cli_env: Sandbox, tmp_path: Path
) -> None:
    catalog = cli_env.granted_catalogs()[0]
    write_config(
        tmp_path,
        f'[sources.octogen]\nbase_url = "{cli_env.base_url}"\ncatalogs = ["{catalog}"]\n'
        f'api_key = "{cli_env.api_key}"\n',
    )
    for argv in (["--no-details"], ["--no-details", "--json"]):
        ran = run_in(tmp_path, argv)
        assert ran.returncode == 2, ran.stderr
        assert ran.stderr.splitlines() == [
            "error: the Octogen API key (sources.octogen.api_key) cannot be in config.toml, which holds no"
            " secrets: put it in .dlt/secrets.toml ([sources.octogen] api_key) or set OCTO_API_KEY (or"
            " SOURCES__OCTOGEN__API_KEY)"
        ]
        assert cli_env.api_key not in ran.stderr + ran.stdout
    assert no_search_or_lookup(cli_env)
    assert not (tmp_path / "octogen_sync.duckdb").exists()


# ---- 4. the DuckDB memory limit ----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["1KB", "16MB", "31.9MB", "30MiB"])
def test_a_duckdb_memory_limit_below_32mb_is_a_bad_argument(
    cli_env: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    limit: str,
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    line = one_error_line(capsys, ["--duckdb-memory-limit", limit], status=2)
    assert line == (
        f"error: argument --duckdb-memory-limit: {limit!r} is below the minimum of 32MB"
        " (expected a size such as 128MB or 1GB) (see --help)"
    )
    assert sum(cli_env.request_counts.values()) == 0
    assert not (tmp_path / "octogen_sync.duckdb").exists()


def test_the_smallest_duckdb_memory_limit_is_32mb_and_a_negative_one_is_refused(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    for limit in ("32MB", "30.6MiB", "1GB"):
        assert build_parser().parse_args(["--duckdb-memory-limit", limit]).duckdb_memory_limit == limit
    line = one_error_line(capsys, ["--duckdb-memory-limit=-1GB"], status=2)
    assert line == (
        "error: argument --duckdb-memory-limit: '-1GB' is not a memory size such as 128MB or 1GB (see --help)"
    )


# ---- 5. an empty --catalog ---------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--catalog", ""], ["--catalog", "x", "--catalog", " "]])
def test_an_empty_catalog_flag_is_a_bad_argument_and_hides_no_configured_catalog(
    cli_env: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    assert os.environ["SOURCES__OCTOGEN__CATALOGS"]  # cli_env configures the sandbox's catalogs
    line = one_error_line(capsys, ["--no-details", *argv], status=2)
    assert (
        line == "error: --catalog needs a catalog key (find them with --discover <store host>) (see --help)"
    )
    assert sum(cli_env.request_counts.values()) == 0
    assert not (tmp_path / "octogen_sync.duckdb").exists()

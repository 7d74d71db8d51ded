"""``octogen-sync --check`` (issue 12, item 3): the key, each configured catalog and the destination are
checked without loading anything; one line per check, exit 0 only if all pass; ``--json`` for machines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from octogen_source.commands.sync import main
from octogen_source.sandbox import Sandbox
from tests.cli_support import KEY_VARIABLES


def check(
    capsys: pytest.CaptureFixture[str], argv: list[str], status: int, settings: str = "ok"
) -> list[str]:
    """The lines after the settings' (whose status is ``settings``)."""
    assert main(["--check", *argv]) == status
    out, err = capsys.readouterr()
    assert err == "" and "Traceback" not in out
    lines = out.splitlines()
    assert lines[0].startswith(f"{settings:<7} settings: "), lines[0]
    return lines[1:]


def test_everything_passes_against_the_current_api(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    lines = check(capsys, [], 0)
    catalogs = cli_env.granted_catalogs()
    assert len(lines) == 1 + len(catalogs) + 2 and all(line.startswith("ok ") for line in lines)
    assert "organization " in lines[0] and "rate limit " in lines[0] and " key octo_" in lines[0]
    assert cli_env.api_key not in "\n".join(lines)
    assert [line.split()[2].rstrip(":") for line in lines[1:-2]] == catalogs
    assert lines[-2] == (
        "ok      credit: not exhausted: the billed one-item searches were answered"
        " (the API reports no balance)"
    )
    assert lines[-1].startswith("ok      destination duckdb octogen_sync.duckdb: the file can be created")
    assert not (tmp_path / "octogen_sync.duckdb").exists()  # nothing loaded, nothing left behind
    assert cli_env.request_counts["search"] == len(catalogs)
    assert "lookup" not in cli_env.request_counts or cli_env.request_counts["lookup"] == 0


def test_the_seed_era_api_has_no_me(
    cli_env: Sandbox,
    seed_sandbox: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCES__OCTOGEN__BASE_URL", seed_sandbox.base_url)
    monkeypatch.setenv("OCTO_API_KEY", seed_sandbox.api_key)
    monkeypatch.delenv("SOURCES__OCTOGEN__CATALOGS")
    lines = check(capsys, [], 0)
    assert "this API has no GET /me: seed era" in lines[0] and lines[0].startswith("ok ")
    granted = ", ".join(seed_sandbox.granted_catalogs())
    assert lines[1] == (
        f"ok      catalog (none configured): none configured; the API lists 2 granted to this key,"
        f" all synced: {granted}"
    )
    lines = check(capsys, ["--catalog", seed_sandbox.granted_catalogs()[0], "--catalog", "no_such"], 1)
    assert [line.split()[0] for line in lines] == ["ok", "ok", "failed", "ok", "ok"]


def test_exhausted_credit_fails_the_credit_check_with_the_top_up_line(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    cli_env.exhaust_credit()
    try:
        lines = check(capsys, [], 1)
    finally:
        cli_env.restore_credit()
    catalogs = cli_env.granted_catalogs()
    assert [line.split()[0] for line in lines] == ["ok", *["skipped"] * len(catalogs), "failed", "ok"]
    assert lines[-2].startswith("failed  credit: the Octogen organization's prepaid credit is exhausted")
    assert "top up" in lines[-2]


def test_a_bad_key_fails_and_the_catalogs_are_not_checked(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked = cli_env.add_key()
    cli_env.revoke_key(revoked)
    monkeypatch.setenv("OCTO_API_KEY", revoked)
    lines = check(capsys, [], 1)
    assert lines[0].startswith("failed  api key at ") and "rejected the API key (401" in lines[0]
    assert all(line.startswith("skipped catalog ") for line in lines[1:-1]) and len(lines) == 4
    assert revoked not in "\n".join(lines)

    for name in KEY_VARIABLES[:2]:
        monkeypatch.delenv(name, raising=False)
    lines = check(capsys, [], 1, settings="skipped")
    assert lines[0].startswith("failed  api key: no Octogen API key")


def test_a_setting_the_sync_cannot_read_fails_the_settings_check(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    monkeypatch.setenv("SOURCES__OCTOGEN__PAGE_SIZE", "abc")
    lines = check(capsys, [], 1, settings="failed")
    assert all(line.startswith("ok ") for line in lines)  # the rest still checked
    monkeypatch.setenv("SOURCES__OCTOGEN__PAGE_SIZE", "500")
    check(capsys, [], 1, settings="failed")
    assert main(["--check"]) == 1
    out = capsys.readouterr().out.splitlines()[0]
    assert "page_size" in out and "500" in out


def test_an_unknown_catalog_fails_alone(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    first = cli_env.granted_catalogs()[0]
    lines = check(capsys, ["--catalog", first, "--catalog", "no_such_catalog"], 1)
    assert lines[1].startswith(f"ok      catalog {first}: ")
    assert lines[2] == (
        "failed  catalog no_such_catalog: unknown catalog: this API key cannot see it"
        " (404 catalog_not_found); find catalog keys with `octogen-sync --discover <store URL or host>`"
    )
    assert lines[3].startswith("ok      credit: not exhausted") and lines[4].startswith("ok      destination")


def test_an_unwritable_duckdb_path(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    (tmp_path / "a_file").write_text("not a directory")
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "a_file" / "octogen.duckdb"))
    lines = check(capsys, ["--dataset", "catalog_data"], 1)
    assert lines[-1].startswith(f"failed  destination duckdb {tmp_path}/a_file/octogen.duckdb: cannot write")
    assert all(line.startswith("ok ") for line in lines[:-1])


def test_an_existing_database_is_left_as_it_was(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import duckdb

    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    with duckdb.connect(str(tmp_path / "octogen_sync.duckdb")) as connection:
        connection.execute("CREATE TABLE kept (x INTEGER)")
    lines = check(capsys, [], 0)
    assert lines[-1].startswith("ok      destination duckdb octogen_sync.duckdb: the file opens")
    with duckdb.connect(str(tmp_path / "octogen_sync.duckdb"), read_only=True) as connection:
        tables = connection.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        schemas = connection.execute("SELECT schema_name FROM duckdb_schemas() WHERE NOT internal").fetchall()
    assert tables == [("main", "kept")] and ("octogen",) not in schemas


def test_json(cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    assert main(["--check", "--json", "--catalog", "no_such_catalog"]) == 1
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert err == "" and cli_env.api_key not in out
    assert result["ok"] is False
    assert [(c["check"], c["status"]) for c in result["checks"]] == [
        ("settings", "ok"),
        ("api_key", "ok"),
        ("catalog", "failed"),
        ("credit", "skipped"),
        ("destination", "ok"),
    ]
    facts = result["checks"][1]["facts"]
    assert facts["organization"] and cli_env.api_key.startswith(facts["key_prefix"])
    assert facts["rate_limit"]["limit"] >= facts["rate_limit"]["remaining"] >= 0


def test_bigquery_without_credentials(
    cli_env: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no_such_credentials.json"))
    lines = check(capsys, ["--destination", "bigquery"], 1)
    assert lines[-1].startswith("failed  destination bigquery dataset octogen: missing configuration")

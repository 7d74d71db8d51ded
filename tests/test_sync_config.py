"""Configuration the dlt way: every documented setting of the source is read from ``.dlt/config.toml`` (the
key from ``.dlt/secrets.toml``), an environment variable overrides it, and a CLI flag actually given overrides
both; a flag not given hides nothing. A bad value is one line naming the setting and the form expected.

The precedence is observed twice: through what syncs against the sandbox did (catalogs, details, page size,
filter, tables) and, for every setting, through the settings the sync resolves from the parsed command line
(``given_settings`` then ``resolve_settings``: the two calls ``run_sync`` makes before building the source).
dlt reads ``./.dlt`` when its config providers are made; the tests remake them after writing the files.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dlt.common.configuration.container import Container
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

from octogen_source.client import OctogenClient
from octogen_source.commands.sync import build_parser, main, options_from
from octogen_source.sandbox import Sandbox
from octogen_source.source import SourceSettings, resolve_settings
from octogen_source.sync.run import given_settings

SOURCE_VARIABLES = "SOURCES__OCTOGEN__"
DATASET = "octogen"


def reload_dlt_config() -> None:
    """dlt's config providers read ``./.dlt`` again (they read it once, when made)."""
    Container()[PluggableRunContext].reload_providers()


@dataclass
class Project:
    """A project folder (the cwd) with its own ``.dlt`` and dlt data dir."""

    root: Path

    def write(self, config: str = "", secrets: str = "") -> None:
        (self.root / ".dlt").mkdir(exist_ok=True)
        (self.root / ".dlt" / "config.toml").write_text(config)
        (self.root / ".dlt" / "secrets.toml").write_text(secrets)
        reload_dlt_config()

    @property
    def database(self) -> Path:
        return self.root / "octogen_sync.duckdb"


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Project]:
    for name in list(os.environ):
        if name.startswith(SOURCE_VARIABLES) or name == "OCTO_API_KEY":
            monkeypatch.delenv(name)
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "ERROR")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    home = Path.cwd()
    monkeypatch.chdir(tmp_path)
    logger = logging.getLogger("octogen_source")
    level, handlers = logger.level, list(logger.handlers)
    yield Project(tmp_path)
    logger.setLevel(level)
    logger.handlers[:] = handlers
    os.chdir(home)
    reload_dlt_config()


def resolved(argv: list[str]) -> SourceSettings:
    """The settings a sync run with ``argv`` resolves (``run_sync``'s own two calls)."""
    return resolve_settings(given_settings(options_from(build_parser().parse_args(argv))))


# ---- every setting: config.toml < env < CLI flag, through the resolved settings ----------------------------


@dataclass(frozen=True)
class Setting:
    name: str
    in_toml: str
    """The TOML value in [sources.octogen] (secrets.toml for the key)."""
    in_env: str
    flag: tuple[str, ...] | None
    """The CLI arguments; None: no flag (the key)."""
    read: Callable[[SourceSettings], Any]
    expected: tuple[Any, Any, Any]
    """What ``read`` gives: from config.toml, then with the env variable set, then with the flag too."""


def _retry(settings: SourceSettings) -> Any:
    assert settings.retry is not None
    return settings.retry


SETTINGS = [
    Setting(
        "catalogs",
        '["from_toml"]',
        "env_one,env_two",
        ("--catalog", "from_cli"),
        lambda s: s.catalogs,
        (("from_toml",), ("env_one", "env_two"), ("from_cli",)),
    ),
    Setting("q", '"linen"', "silk", ("--q", "wool"), lambda s: s.filters.q, ("linen", "silk", "wool")),
    Setting(
        "facets",
        '[{name = "color", values = ["red"]}]',
        '[{"name": "color", "values": ["blue"]}]',
        ("--facet", "color=green"),
        lambda s: [f.values for f in s.filters.facets],
        ([["red"]], [["blue"]], [["green"]]),
    ),
    Setting("price_min", "1.5", "2", ("--price-min", "3"), lambda s: s.filters.price_min, (1.5, 2.0, 3.0)),
    Setting(
        "price_max", "100", "200", ("--price-max", "300"), lambda s: s.filters.price_max, (100, 200, 300)
    ),
    Setting("details", "false", "true", ("--no-details",), lambda s: s.details, (False, True, False)),
    Setting("page_size", "10", "20", ("--page-size", "30"), lambda s: s.page_size, (10, 20, 30)),
    Setting(
        "max_concurrent_lookups",
        "2",
        "3",
        ("--max-concurrent-lookups", "5"),
        lambda s: s.max_concurrent_lookups,
        (2, 3, 5),
    ),
    Setting(
        "max_concurrent_catalogs",
        "2",
        "3",
        ("--max-concurrent-catalogs", "5"),
        lambda s: s.max_concurrent_catalogs,
        (2, 3, 5),
    ),
    Setting("refetch_all", "true", "false", ("--refetch-all",), lambda s: s.refetch_all, (True, False, True)),
    Setting(
        "retry_max_attempts",
        "2",
        "3",
        ("--retry-max-attempts", "4"),
        lambda s: _retry(s).max_attempts,
        (2, 3, 4),
    ),
    Setting(
        "retry_max_seconds",
        "10",
        "20.5",
        ("--retry-max-seconds", "30"),
        lambda s: _retry(s).max_total_seconds,
        (10.0, 20.5, 30.0),
    ),
    Setting(
        "max_response_bytes",
        "2048",
        "4096",
        ("--max-response-bytes", "8192"),
        lambda s: s.max_response_bytes,
        (2048, 4096, 8192),
    ),
    Setting(
        "max_removal_share",
        "0.1",
        "0.3",
        ("--max-removal-share", "0.5"),
        lambda s: s.max_removal_share,
        (0.1, 0.3, 0.5),
    ),
    Setting(
        "allow_mass_removal",
        "true",
        "false",
        ("--allow-mass-removal",),
        lambda s: s.allow_mass_removal,
        (True, False, True),
    ),
    Setting(
        "walk_in_process",
        "true",
        "false",
        ("--walk-in-process",),
        lambda s: s.walk_in_process,
        (True, False, True),
    ),
    Setting(
        "base_url",
        '"http://toml.example/v1"',
        "http://env.example/v1",
        ("--base-url", "http://cli.example/v1"),
        lambda s: s.base_url,
        ("http://toml.example/v1", "http://env.example/v1", "http://cli.example/v1"),
    ),
    Setting(
        "tables",
        '["products"]',
        "price_history,catalogs",
        ("--tables", "product_details"),
        lambda s: s.tables,
        (("products",), ("catalogs", "price_history"), ("product_details",)),
    ),
    Setting(
        "schema_contract",
        '{tables = "freeze", columns = "discard_value"}',
        '{"columns": "discard_row"}',
        ("--schema-contract", "freeze"),
        lambda s: s.schema_contract,
        ({"tables": "freeze", "columns": "discard_value"}, {"columns": "discard_row"}, "freeze"),
    ),
    Setting(
        "api_key",
        '"octo_from_secrets"',
        "octo_from_env",
        None,
        lambda s: s.api_key,
        (
            "octo_from_secrets",
            "octo_from_env",
            None,
        ),
    ),
]


@pytest.mark.parametrize("setting", SETTINGS, ids=[setting.name for setting in SETTINGS])
def test_each_setting_from_config_toml_then_env_then_the_flag(
    project: Project, monkeypatch: pytest.MonkeyPatch, setting: Setting
) -> None:
    table = f"[sources.octogen]\n{setting.name} = {setting.in_toml}\n"
    if setting.name == "api_key":
        project.write(secrets=table)
    else:
        monkeypatch.setenv("OCTO_API_KEY", "octo_fallback")
        project.write(config=table)
    from_toml, from_env, from_flag = setting.expected

    assert setting.read(resolved([])) == from_toml
    monkeypatch.setenv(SOURCE_VARIABLES + setting.name.upper(), setting.in_env)
    assert setting.read(resolved([])) == from_env
    if setting.flag is not None:
        assert setting.read(resolved(list(setting.flag))) == from_flag
        # another flag given hides nothing: the env value stays
        assert setting.read(resolved(["--dataset", "elsewhere"])) == from_env


def test_defaults_when_nothing_is_configured(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTO_API_KEY", "octo_fallback")
    project.write()
    settings = resolved([])
    assert settings == SourceSettings(
        api_key="octo_fallback",
        base_url="https://api.octogen.ai/v1",
        catalogs=None,
        filters=settings.filters,
        retry=None,
    )
    assert not settings.filters.is_filtered


def test_details_off_deselects_product_details_and_selecting_it_alone_with_details_off_is_refused(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", "octo_fallback")
    project.write(config="[sources.octogen]\ndetails = false\n")
    assert resolved([]).tables == ("catalogs", "products", "price_history")
    assert resolved(["--tables", "products,product_details"]).tables == ("products",)
    assert main(["--tables", "product_details", "--catalog", "x"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: sources.octogen.tables: only product_details is selected and details is off:"
        " nothing would be loaded"
    ]


# ---- a bad value: one line naming the setting and the form -------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        ("RETRY_MAX_ATTEMPTS", "abc", "retry_max_attempts: 'abc' is not an integer (expected e.g. 6)"),
        ("PAGE_SIZE", "1.5", "page_size: '1.5' is not an integer (expected e.g. 100)"),
        ("MAX_REMOVAL_SHARE", "lots", "max_removal_share: 'lots' is not a number (expected e.g. 0.2)"),
        ("PRICE_MIN", "cheap", "price_min: 'cheap' is not a number (expected e.g. 10)"),
        ("DETAILS", "maybe", "details: 'maybe' is not true or false (expected e.g. false)"),
        (
            "FACETS",
            "color=red",
            "facets: 'color=red' is not a list"
            ' (expected e.g. [{"name": "color", "values": ["navy blue"]}])',
        ),
    ],
)
def test_a_bad_value_names_the_setting_and_the_form(
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    line: str,
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", "octo_fallback")
    project.write(config='[sources.octogen]\ncatalogs = ["northwind_apparel"]\n')
    monkeypatch.setenv(SOURCE_VARIABLES + name, value)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: bad setting sources.octogen.{line}"]
    # nothing was extracted (the failed run is still recorded in sync_runs)
    assert not project.database.exists() or not _has_table(project.database, "products")


def test_a_bad_value_of_dlts_own_settings_is_one_line_too(
    project: Project, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write(
        config=f'[sources.octogen]\ncatalogs = ["{sandbox.granted_catalogs()[0]}"]\ndetails = false\n'
        f'base_url = "{sandbox.base_url}"\n\n[normalize.data_writer]\nfile_max_items = "many"\n',
        secrets=f'[sources.octogen]\napi_key = "{sandbox.api_key}"\n',
    )
    assert main([]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: bad setting file_max_items during normalize: the value given is not an integer"
    ]


@pytest.mark.parametrize(
    ("config", "line"),
    [
        (
            'tables = ["products", "reviews"]',
            "error: sources.octogen.tables: 'reviews' is not a table of the source;"
            " choose among catalogs, products, product_details, price_history",
        ),
        (
            'schema_contract = "strict"',
            "error: sources.octogen.schema_contract: 'strict' is not a contract mode; expected one of evolve,"
            " discard_value, freeze, discard_row, or a mode per entity (tables, columns, data_type) such as"
            ' {"columns": "freeze"}',
        ),
    ],
)
def test_a_bad_table_or_contract_in_config_is_one_line(
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    config: str,
    line: str,
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", "octo_fallback")
    project.write(config=f'[sources.octogen]\ncatalogs = ["northwind_apparel"]\n{config}\n')
    assert main([]) == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_a_bad_table_flag_lists_the_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tables", "products,reviews"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: argument --tables: 'reviews' is not a table of the source;"
        " choose among catalogs, products, product_details, price_history (see --help)"
    ]


# ---- what the syncs did: config.toml < env < flag, observed at the sandbox and in the tables ---------------


def _loaded_catalogs(database: Path) -> set[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(f"SELECT DISTINCT catalog FROM {DATASET}.products").fetchall()
    return {catalog for (catalog,) in rows}


def _has_table(database: Path, table: str) -> bool:
    with duckdb.connect(str(database), read_only=True) as connection:
        found = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [DATASET, table],
        ).fetchone()
    return found is not None and found[0] == 1


async def _pages(sandbox: Sandbox, catalog: str, page_size: int) -> int:
    async with OctogenClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        return len(
            [page async for page in client.iter_wire_search_pages(catalogs=[catalog], limit=page_size)]
        )


def test_the_syncs_use_config_toml_then_env_then_the_flags(
    project: Project, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = sandbox.granted_catalogs()
    sizes = {catalog: len(sandbox.truth_search_items(catalog)) for catalog in (first, second)}
    project.write(
        config=f'[sources.octogen]\ncatalogs = ["{first}"]\ndetails = false\npage_size = 7\n'
        f'base_url = "{sandbox.base_url}"\nretry_max_attempts = 1\n',
        secrets=f'[sources.octogen]\napi_key = "{sandbox.api_key}"\n',
    )
    stages: list[tuple[dict[str, str], list[str], str, bool, int]] = [
        ({}, [], first, False, 7),
        (
            {"CATALOGS": second, "DETAILS": "true", "PAGE_SIZE": "11"},
            ["--dataset", DATASET],  # a flag of another setting hides nothing
            second,
            True,
            11,
        ),
        ({}, ["--catalog", first, "--no-details", "--page-size", "13"], first, False, 13),
    ]
    # the pages the API serves a walk at each page size, counted with the client alone
    pages = {
        (catalog, size): asyncio.run(_pages(sandbox, catalog, size)) for _, _, catalog, _, size in stages
    }
    for number, (env, argv, catalog, details, page_size) in enumerate(stages):
        for name, value in env.items():
            monkeypatch.setenv(SOURCE_VARIABLES + name, value)
        monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(project.root / f"stage{number}.duckdb"))
        sandbox.reset_counts()
        assert main(argv) == 0, capsys.readouterr().err
        capsys.readouterr()
        database = project.root / f"stage{number}.duckdb"
        assert _loaded_catalogs(database) == {catalog}
        counts = sandbox.request_counts
        assert counts["lookup"] == (sizes[catalog] if details else 0)
        assert _has_table(database, "product_details") == details
        assert counts["search"] == pages[(catalog, page_size)]


def test_the_keyword_filter_from_config_env_and_flag(
    project: Project, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = sandbox.granted_catalogs()[0]
    titles = [hit["title"] for hit in sandbox.truth_search_items(catalog)]
    words = sorted({word.lower() for title in titles for word in title.split() if word.isalpha()})
    project.write(
        config=f'[sources.octogen]\ncatalogs = ["{catalog}"]\ndetails = false\nq = "{words[0]}"\n'
        f'base_url = "{sandbox.base_url}"\nretry_max_attempts = 1\n',
        secrets=f'[sources.octogen]\napi_key = "{sandbox.api_key}"\n',
    )
    loaded: list[set[str]] = []
    for number, (env, argv) in enumerate([({}, []), ({"Q": words[1]}, []), ({}, ["--q", words[2]])]):
        for name, value in env.items():
            monkeypatch.setenv(SOURCE_VARIABLES + name, value)
        monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(project.root / f"q{number}.duckdb"))
        assert main(argv) == 0, capsys.readouterr().err
        capsys.readouterr()
        with duckdb.connect(str(project.root / f"q{number}.duckdb"), read_only=True) as connection:
            loaded.append(
                {title for (title,) in connection.execute(f"SELECT title FROM {DATASET}.products").fetchall()}
            )
    for word, titles_loaded in zip(words[:3], loaded, strict=True):
        assert titles_loaded and all(word in title.lower() for title in titles_loaded), (word, titles_loaded)


# ---- the sandbox prints the variables the sync reads -------------------------------------------------------


def test_the_lines_the_sandbox_prints_are_what_the_sync_needs(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write()
    command = [sys.executable, "-m", "octogen_source.sandbox", "--catalogs", "2", "--products", "5"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline().strip() for _ in range(3)]
        printed = dict(line.split("=", 1) for line in lines)
        assert list(printed) == ["SOURCES__OCTOGEN__BASE_URL", "OCTO_API_KEY", "SOURCES__OCTOGEN__CATALOGS"]
        for name, value in printed.items():
            monkeypatch.setenv(name, value)
        assert main(["--no-details", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        synced = [entry["catalog"] for entry in result["catalogs"]]
        assert synced == printed["SOURCES__OCTOGEN__CATALOGS"].split(",") and len(synced) == 2
        assert _loaded_catalogs(project.database) == set(synced)
    finally:
        server.terminate()
        server.wait(10)

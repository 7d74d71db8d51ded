"""``octogen-sync --check``: validates the configuration without loading anything.

One line per check (``ok``/``failed``/``skipped`` and a detail):

- the settings: resolved as the sync resolves them (flags, environment, ``.dlt/*.toml``), so a value that
  cannot be read or is out of range fails here, naming the setting;
- the key: ``GET /me`` (organization, the key's printable prefix, never the key, rate-limit posture); a
  seed-era API has no ``/me``, which the line says, and the key is checked with a one-item search instead;
- each configured catalog: a one-item search (``limit=1``); with none configured, the catalog list where
  the API still has one (seed era), else the one line the sync would fail with;
- the organization's credit: the API has no balance to read, so the catalogs' searches (billed requests)
  tell it: ``ok`` when they were answered, ``failed`` with the top-up line on a 402;
- the destination: DuckDB's file opens (or can be created) and the dataset is writable (a schema and a table
  created in a transaction that is rolled back; a file the check created is removed again); BigQuery: dlt's
  destination client connects with the configured credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import dlt

from octogen_source.client import OctogenClient
from octogen_source.discover import configured_api_key, configured_base_url
from octogen_source.errors import (
    MissingAPIKeyError,
    OctogenEndpointRetiredError,
    OctogenInsufficientCreditError,
    OctogenNotFoundError,
)
from octogen_source.models import MeResponse
from octogen_source.retries import RetryPolicy
from octogen_source.source import SourceSettings, resolve_settings
from octogen_source.source.settings import catalog_keys
from octogen_source.sync import SyncOptions, describe_failure
from octogen_source.sync.run import given_settings
from octogen_source.warehouse import (
    dataset_clash,
    dataset_in_destination,
    default_duckdb_path,
    destination_for,
)

Status = Literal["ok", "failed", "skipped"]

CHECK_RETRY = RetryPolicy(max_attempts=2, max_total_seconds=15.0)
"""A check answers quickly: one retry for a blip, no two-minute wait."""


@dataclass
class Check:
    check: str
    """``settings``, ``api_key``, ``catalog``, ``credit`` or ``destination``."""
    target: str
    status: Status
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)
    """What the check learned, for ``--json`` (organization, key prefix, rate limit...)."""

    @property
    def line(self) -> str:
        target = f" {self.target}" if self.target else ""
        return f"{self.status:<7} {self.check.replace('_', ' ')}{target}: {self.detail}"


def run_checks(options: SyncOptions) -> list[Check]:
    """Every check, in order: the settings, the key, each catalog, the credit, the destination. Never raises
    for a failed check."""
    settings_check, settings = check_settings(options)
    checks = [settings_check]
    checks.extend(asyncio.run(_api_checks(options, settings)))
    checks.append(check_destination(options))
    return checks


def check_settings(options: SyncOptions) -> tuple[Check, SourceSettings | None]:
    """The source's settings as the sync would resolve them (flags over the environment over the TOML files):
    a value that cannot be read or is out of range fails here, naming the setting. The API checks use the
    settings resolved here (key, base URL, catalogs), when they could be."""
    try:
        settings = resolve_settings(given_settings(options), retry=options.retry)
    except MissingAPIKeyError:
        return Check("settings", "", "skipped", "not checked without a key (see the key's line)"), None
    except Exception as error:
        return Check("settings", "", "failed", describe_failure(error, secret=options.api_key)), None
    catalogs = ", ".join(settings.catalogs) if settings.catalogs else "none named"
    tables = "tables " + ", ".join(settings.tables)
    detail = (
        f"catalogs {catalogs}; details {'on' if settings.details else 'off'}; {tables};"
        f" page size {settings.page_size}"
        + ("; filtered (no removals)" if settings.filters.is_filtered else "")
    )
    return Check("settings", "", "ok", detail, {"catalogs": list(settings.catalogs or ())}), settings


def all_passed(checks: Sequence[Check]) -> bool:
    return all(check.status == "ok" for check in checks)


def format_checks(checks: Sequence[Check]) -> str:
    return "\n".join(check.line for check in checks)


def checks_json(checks: Sequence[Check]) -> str:
    return json.dumps({"ok": all_passed(checks), "checks": [asdict(check) for check in checks]}, indent=2)


# ---- the API ----------------------------------------------------------------------------------------------


async def _api_checks(options: SyncOptions, settings: SourceSettings | None) -> list[Check]:
    if settings is not None:
        base_url, configured = settings.base_url, settings.catalogs or ()
    else:  # the settings failed: the key and catalogs as far as they can be read
        base_url = options.base_url or configured_base_url()
        try:
            configured = options.catalogs or catalog_keys(dlt.config.get("sources.octogen.catalogs")) or ()
        except ValueError as error:
            return [Check("catalog", "(configured)", "failed", str(error))]
    try:
        api_key = settings.api_key if settings is not None else configured_api_key(options.api_key)
        client = OctogenClient(api_key=api_key, base_url=base_url, retry=CHECK_RETRY)
    except (MissingAPIKeyError, ValueError) as error:
        return [Check("api_key", "", "failed", str(error)), *_skipped(configured, "no usable key")]
    async with client:
        key = await _check_key(client, api_key, base_url)
        if key.status != "ok":
            return [key, *_skipped(configured, "the key check failed")]
        if not configured:
            return [key, await _check_listed_catalogs(client, api_key, base_url)]
        filters = settings.filters.as_search_arguments() if settings is not None else {}
        catalogs = [
            await _check_catalog(client, catalog, api_key, base_url, filters) for catalog in configured
        ]
        return [key, *catalogs, _check_credit(catalogs)]


def _skipped(catalogs: Sequence[str], why: str) -> list[Check]:
    return [Check("catalog", catalog, "skipped", f"not checked: {why}") for catalog in catalogs]


async def _check_key(client: OctogenClient, api_key: str, base_url: str) -> Check:
    target = f"at {base_url}"
    try:
        me = await client.get_me()
    except OctogenNotFoundError:
        # the seed-era API has no /me: a one-item search over what the key can see tells whether it works
        try:
            await client.search_products(limit=1)
        except Exception as error:
            return Check(
                "api_key", target, "failed", describe_failure(error, secret=api_key, base_url=base_url)
            )
        facts = {"api_generation": client.api_generation or "seed", "me": False}
        detail = "accepted by a one-item search (this API has no GET /me: seed era, May 2026)"
        return Check("api_key", target, "ok", detail, facts)
    except Exception as error:
        return Check("api_key", target, "failed", describe_failure(error, secret=api_key, base_url=base_url))
    return Check("api_key", target, "ok", _describe_me(me, api_key), _me_facts(me, api_key))


def _describe_me(me: MeResponse, api_key: str) -> str:
    parts = []
    organization = me.organization
    if organization is not None and (organization.name or organization.slug):
        kind = f" ({organization.type})" if organization.type else ""
        parts.append(f"organization {organization.name or organization.slug}{kind}")
    prefix = _safe_prefix(me, api_key)
    if prefix:
        parts.append(f"key {prefix}...")
    limit = me.rate_limit
    if limit is None:
        parts.append("no rate limit")
    elif limit.limit is not None:
        reset = f", resets {limit.reset_at.isoformat(timespec='seconds')}" if limit.reset_at else ""
        parts.append(f"rate limit {limit.remaining}/{limit.limit} requests left{reset}")
    return ", ".join(parts) or "accepted (GET /me)"


def _safe_prefix(me: MeResponse, api_key: str) -> str | None:
    """The key's display prefix, unless it would show the key itself."""
    prefix = me.key.prefix if me.key is not None else None
    if not prefix or prefix == api_key or len(prefix) >= len(api_key):
        return None
    return prefix


def _me_facts(me: MeResponse, api_key: str) -> dict[str, Any]:
    organization = me.organization
    limit = me.rate_limit
    return {
        "me": True,
        "organization": organization.name if organization else None,
        "organization_type": organization.type if organization else None,
        "key_prefix": _safe_prefix(me, api_key),
        "rate_limit": None
        if limit is None
        else {
            "limit": limit.limit,
            "remaining": limit.remaining,
            "reset_at": limit.reset_at.isoformat() if limit.reset_at else None,
        },
        "quotas": me.quotas,
    }


async def _check_catalog(
    client: OctogenClient, catalog: str, api_key: str, base_url: str, filters: Mapping[str, Any]
) -> Check:
    """A one-item search of the catalog with the run's filters (the API refuses a filter it does not know)."""
    try:
        page = await client.search_products(catalogs=[catalog], limit=1, **filters)
    except OctogenNotFoundError as error:
        code = error.detail.get("code") if isinstance(error.detail, dict) else error.detail
        return Check(
            "catalog",
            catalog,
            "failed",
            f"unknown catalog: this API key cannot see it (404 {code or 'not found'});"
            " find catalog keys with `octogen-sync --discover <store URL or host>`",
        )
    except OctogenInsufficientCreditError as error:
        line = describe_failure(error, secret=api_key, base_url=base_url)
        return Check("catalog", catalog, "skipped", line, {"credit_exhausted": True})
    except Exception as error:
        return Check("catalog", catalog, "failed", describe_failure(error, secret=api_key, base_url=base_url))
    found = "a product" if page.items else "no product (an empty catalog)"
    return Check("catalog", catalog, "ok", f"a one-item search found {found}", {"products": len(page.items)})


def _check_credit(catalogs: Sequence[Check]) -> Check:
    """The organization's prepaid credit, as the catalogs' one-item searches (billed requests) found it: the
    API reports no balance, only a 402 once it is exhausted."""
    exhausted = next((check for check in catalogs if check.facts.get("credit_exhausted")), None)
    if exhausted is not None:
        return Check("credit", "", "failed", exhausted.detail, {"exhausted": True})
    if any(check.status == "ok" for check in catalogs):
        detail = "not exhausted: the billed one-item searches were answered (the API reports no balance)"
        return Check("credit", "", "ok", detail, {"exhausted": False})
    return Check("credit", "", "skipped", "not checked: no billed search was answered")


async def _check_listed_catalogs(client: OctogenClient, api_key: str, base_url: str) -> Check:
    try:
        listed = await client.list_catalogs()
    except OctogenEndpointRetiredError as error:
        return Check("catalog", "(none configured)", "failed", str(error))
    except Exception as error:
        line = describe_failure(error, secret=api_key, base_url=base_url)
        return Check("catalog", "(none configured)", "failed", line)
    keys = [entry.catalog for entry in listed if entry.catalog]
    if not keys:
        return Check("catalog", "(none configured)", "failed", "the API lists no catalog granted to this key")
    detail = f"none configured; the API lists {len(keys)} granted to this key, all synced: {', '.join(keys)}"
    return Check("catalog", "(none configured)", "ok", detail, {"catalogs": keys})


# ---- the destination --------------------------------------------------------------------------------------


def check_destination(options: SyncOptions) -> Check:
    duckdb_path = None
    if options.destination == "duckdb":
        duckdb_path = options.duckdb_path or default_duckdb_path(options.pipeline_name)
    clash = dataset_clash(options.dataset, pipeline_name=options.pipeline_name, duckdb_path=duckdb_path)
    if clash is not None:
        target = options.destination if duckdb_path is None else f"duckdb {duckdb_path}"
        return Check("destination", target, "failed", clash)
    if duckdb_path is not None:
        return _check_duckdb(duckdb_path, dataset_in_destination(options.dataset))
    return _check_with_dlt(options)


def _check_duckdb(path: str, dataset: str) -> Check:
    import duckdb

    target = f"duckdb {path}"
    created = not os.path.exists(path)
    try:
        with duckdb.connect(path) as connection:
            connection.execute("BEGIN TRANSACTION")
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{dataset}"')
            connection.execute(f'CREATE TABLE "{dataset}"."_octogen_check" (probe INTEGER)')
            connection.execute("ROLLBACK")
    except (duckdb.Error, OSError) as error:
        return Check(
            "destination", target, "failed", f"cannot write dataset {dataset!r}: {_first_line(error)}"
        )
    finally:
        if created:
            for leftover in (path, f"{path}.wal"):
                with contextlib.suppress(OSError):
                    Path(leftover).unlink(missing_ok=True)
    state = "can be created" if created else "opens"
    return Check("destination", target, "ok", f"the file {state} and dataset {dataset!r} is writable")


def _check_with_dlt(options: SyncOptions) -> Check:
    """dlt's own client of the destination, with its configured credentials, in a throw-away pipeline."""
    target = f"{options.destination} dataset {options.dataset}"
    try:
        with tempfile.TemporaryDirectory() as pipelines_dir:
            pipeline = dlt.pipeline(
                pipeline_name=f"{options.pipeline_name}_check",
                destination=destination_for(options.destination),
                dataset_name=options.dataset,
                pipelines_dir=pipelines_dir,
            )
            with pipeline.destination_client() as client:
                exists = client.is_storage_initialized()
    except Exception as error:
        return Check("destination", target, "failed", describe_failure(error, secret=options.api_key))
    state = "exists" if exists else "does not exist yet (the first sync creates it)"
    return Check(
        "destination", target, "ok", f"connected with the configured credentials; the dataset {state}"
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.splitlines()[0].split())

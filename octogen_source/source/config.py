"""The source's configured values made into :class:`SourceSettings`: what ``octogen_source`` receives from dlt
(config.toml, secrets.toml, env, or its arguments), the forms ``tables`` and ``schema_contract`` take, and one
line for a value dlt cannot read."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast, get_args, get_origin

from dlt.common.schema.typing import TSchemaContract, TSchemaContractEntities, TSchemaEvolutionMode

from octogen_source.client import API_KEY_ENV, DEFAULT_MAX_RESPONSE_BYTES
from octogen_source.errors import MissingAPIKeyError
from octogen_source.models import Facet
from octogen_source.retries import RetryPolicy
from octogen_source.source.settings import (
    DEFAULT_MAX_CONCURRENT_CATALOGS,
    DEFAULT_MAX_CONCURRENT_LOOKUPS,
    DEFAULT_MAX_REMOVAL_SHARE,
    DEFAULT_PAGE_SIZE,
    SOURCE_TABLES,
    InvalidSettingError,
    SearchFilters,
    SourceSettings,
    catalog_keys,
    check_tables,
    coerce_facets,
    listed_names,
    out_of_range,
)
from octogen_source.table_names import PRODUCT_DETAILS

CONTRACT_MODES: tuple[str, ...] = get_args(TSchemaEvolutionMode)
CONTRACT_ENTITIES: tuple[str, ...] = get_args(TSchemaContractEntities)


def build_settings(
    *,
    api_key: str | None,
    base_url: str,
    catalogs: str | Sequence[str] | None,
    q: str | None,
    facets: Iterable[Facet | Mapping[str, Any] | str] | None,
    price_min: float | None,
    price_max: float | None,
    page_size: int,
    details: bool,
    max_concurrent_lookups: int,
    max_concurrent_catalogs: int,
    refetch_all: bool,
    retry_max_attempts: int | None,
    retry_max_seconds: float | None,
    max_response_bytes: int,
    max_removal_share: float,
    allow_mass_removal: bool,
    tables: str | Sequence[str] | None,
    schema_contract: str | Mapping[str, Any] | None,
    walk_in_process: bool = False,
    retry: RetryPolicy | None = None,
) -> SourceSettings:
    """The settings of a run from the values of the source's configuration (as ``octogen_source`` receives
    them from dlt: config.toml, env, secrets or its arguments). ``retry`` is a whole policy given in code, the
    two retry bounds apply on top of it.

    ``details`` off deselects ``product_details``, and a selection without ``product_details`` makes no
    lookups: both say the same thing.
    """
    key = (api_key or os.environ.get(API_KEY_ENV) or "").strip()
    if not key:
        raise MissingAPIKeyError(
            f"no Octogen API key: set {API_KEY_ENV}, SOURCES__OCTOGEN__API_KEY or "
            "[sources.octogen] api_key in .dlt/secrets.toml"
        )
    selected = table_selection(tables)
    if not details:
        selected = tuple(name for name in selected if name != PRODUCT_DETAILS)
        if not selected:
            raise InvalidSettingError(
                "sources.octogen.tables: only product_details is selected and details is off:"
                " nothing would be loaded"
            )
    return SourceSettings(
        api_key=key,
        base_url=base_url,
        catalogs=catalog_keys(catalogs),
        filters=SearchFilters(
            q=q or None,
            facets=coerce_facets(facets),
            price_min=price_min,
            price_max=price_max,
        ),
        page_size=page_size,
        details=PRODUCT_DETAILS in selected,
        max_concurrent_lookups=max_concurrent_lookups,
        max_concurrent_catalogs=max_concurrent_catalogs,
        refetch_all=refetch_all,
        retry=_retry_policy(retry, retry_max_attempts, retry_max_seconds),
        max_response_bytes=max_response_bytes,
        max_removal_share=max_removal_share,
        allow_mass_removal=allow_mass_removal,
        tables=selected,
        schema_contract=schema_contract_setting(schema_contract),
        walk_in_process=walk_in_process,
    )


def _retry_policy(
    policy: RetryPolicy | None, max_attempts: int | None, max_seconds: float | None
) -> RetryPolicy | None:
    if max_attempts is None and max_seconds is None:
        return policy
    base = policy if policy is not None else RetryPolicy()
    if max_attempts is not None and max_attempts < 1:
        raise out_of_range("retry_max_attempts", max_attempts, "an integer of at least 1")
    # 0 would leave no time for the first attempt (every request refused unsent)
    if max_seconds is not None and not (max_seconds > 0 and math.isfinite(max_seconds)):
        raise out_of_range("retry_max_seconds", max_seconds, "a number of seconds > 0")
    return replace(
        base,
        max_attempts=base.max_attempts if max_attempts is None else max_attempts,
        max_total_seconds=base.max_total_seconds if max_seconds is None else max_seconds,
    )


def table_selection(tables: str | Sequence[str] | None) -> tuple[str, ...]:
    """The selected tables in the source's order: a list (config.toml, code) or, from the environment or the
    CLI, a JSON list or comma-separated names; none given selects every table."""
    names = listed_names(tables, "sources.octogen.tables", "table names")
    if names is None:
        if tables is not None:  # given, but naming no table: "" or "," or []
            raise InvalidSettingError(
                f"sources.octogen.tables: {tables!r} names no table (leave it out to load all of"
                f" {', '.join(SOURCE_TABLES)})"
            )
        return SOURCE_TABLES
    check_tables(names)
    return tuple(name for name in SOURCE_TABLES if name in names)


def schema_contract_setting(contract: str | Mapping[str, Any] | None) -> TSchemaContract | None:
    """dlt's schema contract: a mode for everything (``freeze``) or a mode per entity (a TOML table, or JSON
    text from the environment: ``{"columns": "freeze"}``)."""
    expected = (
        f"expected one of {', '.join(CONTRACT_MODES)}, or a mode per entity"
        f' ({", ".join(CONTRACT_ENTITIES)}) such as {{"columns": "freeze"}}'
    )
    if contract is None or contract == "":
        return None
    if isinstance(contract, str):
        text = contract.strip()
        if not text.startswith("{"):
            if text not in CONTRACT_MODES:
                raise InvalidSettingError(
                    f"sources.octogen.schema_contract: {text[:80]!r} is not a contract mode; {expected}"
                )
            return cast(TSchemaEvolutionMode, text)
        try:
            contract = json.loads(text)
        except ValueError:
            raise InvalidSettingError(
                f"sources.octogen.schema_contract: {text[:80]!r} is not JSON; {expected}"
            ) from None
    if not isinstance(contract, Mapping) or not all(
        entity in CONTRACT_ENTITIES and mode in CONTRACT_MODES for entity, mode in contract.items()
    ):
        raise InvalidSettingError(
            f"sources.octogen.schema_contract: {str(contract)[:80]!r} is not a contract; {expected}"
        )
    return cast(TSchemaContract, dict(contract))


_EXPECTED_FORMS: dict[type, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "text",
    list: "a list",
    dict: "a table of names and values",
}
_EXAMPLES: dict[str, str] = {
    "base_url": "https://api.octogen.ai/v1",
    "catalogs": '["northwind_apparel", "harbor_outfitters"]',
    "facets": '[{"name": "color", "values": ["navy blue"]}]',
    "price_min": "10",
    "price_max": "80.5",
    "page_size": str(DEFAULT_PAGE_SIZE),
    "details": "false",
    "max_concurrent_lookups": str(DEFAULT_MAX_CONCURRENT_LOOKUPS),
    "max_concurrent_catalogs": str(DEFAULT_MAX_CONCURRENT_CATALOGS),
    "refetch_all": "true",
    "retry_max_attempts": "6",
    "retry_max_seconds": "120",
    "max_response_bytes": str(DEFAULT_MAX_RESPONSE_BYTES),
    "max_removal_share": str(DEFAULT_MAX_REMOVAL_SHARE),
    "allow_mass_removal": "true",
    "tables": "products,price_history",
    "schema_contract": "freeze",
    "walk_in_process": "true",
}


def bad_setting(field_name: str, value: Any, hint: Any) -> InvalidSettingError:
    """One line for a configured value dlt could not coerce to its setting's type (dlt's
    ``ConfigValueCannotBeCoercedException``): the setting, the value, the form expected and an example. A
    secret's value is never shown."""
    form = expected_form(hint)
    shown = "the value given" if field_name == "api_key" else repr(str(value)[:80])
    example = _EXAMPLES.get(field_name)
    return InvalidSettingError(
        f"bad setting sources.octogen.{field_name}: {shown} is not {form}"
        + (f" (expected e.g. {example})" if example else "")
    )


def expected_form(hint: Any) -> str:
    """``an integer``, ``a number``, ``true or false``, ... for the type a setting is declared with."""
    kind = get_origin(hint) or hint
    return _EXPECTED_FORMS.get(kind, f"of the form {getattr(kind, '__name__', kind)}")

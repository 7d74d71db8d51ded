"""What one run of the source is asked to do: which catalogs, which search filters, how much concurrency."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast, get_args, get_origin

from dlt.common.schema.typing import TSchemaContract, TSchemaContractEntities, TSchemaEvolutionMode

from octogen_source.client import API_KEY_ENV, DEFAULT_MAX_RESPONSE_BYTES
from octogen_source.errors import MissingAPIKeyError, OctogenConfigurationError
from octogen_source.models import Facet
from octogen_source.retries import RetryPolicy
from octogen_source.table_names import CATALOGS, PRICE_HISTORY, PRODUCT_DETAILS, PRODUCTS

DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_CONCURRENT_LOOKUPS = 16
DEFAULT_MAX_CONCURRENT_CATALOGS = 4
DEFAULT_MAX_REMOVAL_SHARE = 0.2
SOURCE_TABLES = (CATALOGS, PRODUCTS, PRODUCT_DETAILS, PRICE_HISTORY)
"""The tables the source can load, in the order it declares them (``tables`` selects among them)."""
CONTRACT_MODES: tuple[str, ...] = get_args(TSchemaEvolutionMode)
CONTRACT_ENTITIES: tuple[str, ...] = get_args(TSchemaContractEntities)


class InvalidSettingError(OctogenConfigurationError):
    """A setting of the source is out of range or malformed (checked before any request)."""


@dataclass(frozen=True)
class SearchFilters:
    """The search filters a walk sends with every page; a filtered walk never marks products removed."""

    q: str | None = None
    facets: tuple[Facet, ...] = ()
    price_min: float | None = None
    price_max: float | None = None

    @property
    def is_filtered(self) -> bool:
        return bool(self.q) or bool(self.facets) or self.price_min is not None or self.price_max is not None

    def as_search_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``OctogenClient.iter_search_pages``."""
        return {
            "q": self.q or None,
            "facets": list(self.facets) or None,
            "price_min": self.price_min,
            "price_max": self.price_max,
        }


@dataclass(frozen=True)
class SourceSettings:
    """Everything the walk needs; the key is kept out of ``repr``."""

    api_key: str = field(repr=False)
    base_url: str
    catalogs: tuple[str, ...] | None
    """Catalog keys to walk; None walks every catalog granted to the key."""
    filters: SearchFilters
    page_size: int = DEFAULT_PAGE_SIZE
    details: bool = True
    max_concurrent_lookups: int = DEFAULT_MAX_CONCURRENT_LOOKUPS
    max_concurrent_catalogs: int = DEFAULT_MAX_CONCURRENT_CATALOGS
    refetch_all: bool = False
    """Emit and look up every listed product as if it had changed (a backfill); what is loaded is still read,
    so removals are marked and other catalogs are left alone."""
    retry: RetryPolicy | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_removal_share: float = DEFAULT_MAX_REMOVAL_SHARE
    """A removal sweep that would remove more than this share of a catalog's live products is skipped."""
    allow_mass_removal: bool = False
    tables: tuple[str, ...] = SOURCE_TABLES
    """The tables to load (dlt's ``with_resources``); without ``product_details`` no lookup is made."""
    schema_contract: TSchemaContract | None = None
    """dlt's schema contract for every table of the source (None: dlt's default, evolve)."""

    def __post_init__(self) -> None:
        _check_tables(self.tables)
        size = self.max_response_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size < 1024:
            raise InvalidSettingError(f"max_response_bytes must be an integer of at least 1024, got {size!r}")
        if not 0 <= self.max_removal_share <= 1:
            raise InvalidSettingError(
                f"max_removal_share must be between 0 and 1, got {self.max_removal_share}"
            )
        if not 1 <= self.page_size <= 100:
            raise InvalidSettingError(f"page_size must be between 1 and 100, got {self.page_size}")
        if self.max_concurrent_lookups < 1:
            raise InvalidSettingError(
                f"max_concurrent_lookups must be at least 1, got {self.max_concurrent_lookups}"
            )
        if self.max_concurrent_catalogs < 1:
            raise InvalidSettingError(
                f"max_concurrent_catalogs must be at least 1, got {self.max_concurrent_catalogs}"
            )
        price_min, price_max = self.filters.price_min, self.filters.price_max
        if price_min is not None and price_max is not None and price_min > price_max:
            raise InvalidSettingError(f"price_min ({price_min}) is above price_max ({price_max})")

    @property
    def max_connections(self) -> int:
        """HTTP connections the walk can use at once: one search per catalog walked plus the lookups."""
        return self.max_concurrent_catalogs + (self.max_concurrent_lookups if self.details else 0)


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
    )


def _retry_policy(
    policy: RetryPolicy | None, max_attempts: int | None, max_seconds: float | None
) -> RetryPolicy | None:
    if max_attempts is None and max_seconds is None:
        return policy
    base = policy if policy is not None else RetryPolicy()
    try:
        return replace(
            base,
            max_attempts=base.max_attempts if max_attempts is None else max_attempts,
            max_total_seconds=base.max_total_seconds if max_seconds is None else max_seconds,
        )
    except ValueError as error:
        raise InvalidSettingError(str(error)) from None


def table_selection(tables: str | Sequence[str] | None) -> tuple[str, ...]:
    """The selected tables in the source's order: a list (config.toml, code) or, from the environment or the
    CLI, a JSON list or comma-separated names; none given selects every table."""
    names = _names(tables, "tables")
    if names is None:
        return SOURCE_TABLES
    _check_tables(names)
    return tuple(name for name in SOURCE_TABLES if name in names)


def _check_tables(names: Sequence[str]) -> None:
    unknown = [name for name in names if name not in SOURCE_TABLES]
    if unknown or not names:
        what = ", ".join(map(repr, unknown)) or "no table"
        verb = "are not tables" if len(unknown) > 1 else "is not a table" if unknown else "is selected"
        raise InvalidSettingError(
            f"sources.octogen.tables: {what} {verb} of the source; choose among {', '.join(SOURCE_TABLES)}"
        )


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


def parse_facet(text: str) -> Facet:
    """``name=v1,v2`` -> Facet(name, [v1, v2]); values are lowercased (the API matches lowercase values)."""
    name, sep, raw_values = text.partition("=")
    values = [value.strip().lower() for value in raw_values.split(",") if value.strip()]
    if not sep or not name.strip() or not values:
        raise InvalidSettingError(f"facet {text!r} is not of the form name=value1,value2")
    return Facet(name=name.strip(), values=values)


def coerce_facets(facets: Iterable[Facet | Mapping[str, Any] | str] | None) -> tuple[Facet, ...]:
    """Facets given as Facet objects, ``{"name", "values"}`` dicts (config) or ``name=v1,v2`` strings."""
    if facets is None:
        return ()
    if isinstance(facets, str | Mapping):
        facets = [facets]
    coerced: list[Facet] = []
    for facet in facets:
        if isinstance(facet, Facet):
            coerced.append(facet)
        elif isinstance(facet, str):
            coerced.append(parse_facet(facet))
        elif isinstance(facet, Mapping) and isinstance(facet.get("name"), str):
            values = facet.get("values")
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, Sequence) or not values:
                raise InvalidSettingError(f"facet {facet.get('name')!r} needs a non-empty list of values")
            coerced.append(Facet(name=facet["name"], values=[str(value).lower() for value in values]))
        else:
            raise InvalidSettingError(f"facet {facet!r} is neither name=value1,value2 nor {{name, values}}")
    return tuple(coerced)


def catalog_keys(catalogs: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """Configured catalog keys: a list (config.toml, code), or a string from the environment, either a JSON
    list (``SOURCES__OCTOGEN__CATALOGS='["a", "b"]'``) or comma-separated (``a,b``)."""
    return _names(catalogs, "catalogs")


def _names(names: Sequence[str] | str | None, setting: str) -> tuple[str, ...] | None:
    """A list of names given as a list, a JSON list or comma-separated text; None when none is given."""
    if isinstance(names, str):
        text = names.strip()
        if text.startswith("["):
            try:
                names = json.loads(text)
            except ValueError:
                raise InvalidSettingError(
                    f"sources.octogen.{setting}: {text[:80]!r} is neither a JSON list"
                    " nor comma-separated names"
                ) from None
        else:
            names = text.split(",")
    if names is None:
        return None
    if not isinstance(names, Sequence) or not all(isinstance(name, str) for name in names):
        raise InvalidSettingError(f"sources.octogen.{setting} must be a list of names")
    kept = tuple(name.strip() for name in names or () if name and name.strip())
    return kept or None


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

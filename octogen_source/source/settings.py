"""What one run of the source is asked to do: which catalogs, which search filters, how much concurrency."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dlt.common.schema.typing import TSchemaContract

from octogen_source.client import DEFAULT_BASE_URL, DEFAULT_MAX_RESPONSE_BYTES, base_url_problem
from octogen_source.errors import OctogenConfigurationError
from octogen_source.models import Facet
from octogen_source.retries import RetryPolicy
from octogen_source.table_names import CATALOGS, PRICE_HISTORY, PRODUCT_DETAILS, PRODUCTS

DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_CONCURRENT_LOOKUPS = 16
DEFAULT_MAX_CONCURRENT_CATALOGS = 4
DEFAULT_MAX_REMOVAL_SHARE = 0.2
SOURCE_TABLES = (CATALOGS, PRODUCTS, PRODUCT_DETAILS, PRICE_HISTORY)
"""The tables the source can load, in the order it declares them (``tables`` selects among them)."""


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
    walk_in_process: bool = False
    """Run the walk in a child process of its own where it can (Linux), so that its CPU does not share the
    GIL with dlt's extract (a sync loaded in segments, DuckDB): faster, but the child's memory adds to the
    sync's; by default, and elsewhere than Linux, in a thread."""

    def __post_init__(self) -> None:
        check_base_url(self.base_url)
        check_tables(self.tables)
        size = self.max_response_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size < 1024:
            raise out_of_range("max_response_bytes", size, "an integer of at least 1024")
        if not 0 <= self.max_removal_share <= 1:
            raise out_of_range("max_removal_share", self.max_removal_share, "a share between 0 and 1")
        if not 1 <= self.page_size <= 100:
            raise out_of_range("page_size", self.page_size, "an integer from 1 to 100")
        for name in ("max_concurrent_lookups", "max_concurrent_catalogs"):
            if getattr(self, name) < 1:
                raise out_of_range(name, getattr(self, name), "an integer of at least 1")
        for name in ("price_min", "price_max"):
            price = getattr(self.filters, name)
            if price is not None and not (price >= 0 and math.isfinite(price)):
                raise out_of_range(name, price, "a price >= 0")
        price_min, price_max = self.filters.price_min, self.filters.price_max
        if price_min is not None and price_max is not None and price_min > price_max:
            raise InvalidSettingError(f"price_min ({price_min}) is above price_max ({price_max})")


def out_of_range(name: str, value: object, expected: str) -> InvalidSettingError:
    """The one line of a setting whose value is of the right type but out of range."""
    return InvalidSettingError(
        f"bad setting sources.octogen.{name}: {value!r} is out of range (expected {expected})"
    )


def check_base_url(url: str) -> None:
    """The one line of a base URL the client would refuse, or one it would send requests to in vain (no host,
    whitespace in the host, port 0 or above 65535)."""
    complaint = base_url_complaint(url)
    if complaint is not None:
        raise InvalidSettingError(f"bad setting sources.octogen.base_url: {complaint}")


def base_url_complaint(url: str) -> str | None:
    """What is wrong with ``url`` as the API's base URL, with the form expected (see :func:`check_base_url`),
    or None; for the setting's line and the ``--base-url`` flag's alike."""
    problem = base_url_problem(url)
    if problem is None:
        return None
    return f"{str(url)[:80]!r} {problem} (expected an http(s) URL such as {DEFAULT_BASE_URL})"


def check_tables(names: Sequence[str]) -> None:
    unknown = [name for name in names if name not in SOURCE_TABLES]
    if unknown or not names:
        what = ", ".join(map(repr, unknown)) or "no table"
        verb = "are not tables" if len(unknown) > 1 else "is not a table" if unknown else "is selected"
        raise InvalidSettingError(
            f"sources.octogen.tables: {what} {verb} of the source; choose among {', '.join(SOURCE_TABLES)}"
        )


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


def catalog_keys(
    catalogs: Sequence[str] | str | None, *, setting: str = "sources.octogen.catalogs"
) -> tuple[str, ...] | None:
    """Configured catalog keys: a list (config.toml, code), or a string from the environment, either a JSON
    list (``SOURCES__OCTOGEN__CATALOGS='["a", "b"]'``) or comma-separated (``a,b``). ``setting``: where the
    value came from, named by the error of a malformed one."""
    return listed_names(catalogs, setting, "catalog keys")


def listed_names(
    names: Sequence[str] | str | None, setting: str, kind: str = "names"
) -> tuple[str, ...] | None:
    """A list of names (``kind``: catalog keys, table names) given as a list, a JSON list or comma-separated
    text; None when none is given. ``setting`` names the value in the error of a malformed one."""
    if isinstance(names, str):
        text = names.strip()
        if text.startswith("["):
            try:
                names = json.loads(text)
            except ValueError:
                raise InvalidSettingError(
                    f"{setting}: {text[:80]!r} is neither a JSON list nor comma-separated {kind.split()[-1]}"
                ) from None
        else:
            names = text.split(",")
    if names is None:
        return None
    if not isinstance(names, Sequence) or not all(isinstance(name, str) for name in names):
        raise InvalidSettingError(f"{setting} must be a list of {kind}, not {str(names)[:80]!r}")
    kept = tuple(name.strip() for name in names or () if name and name.strip())
    for name in kept:
        if _NOT_A_NAME.search(name):
            raise InvalidSettingError(
                f"{setting}: {name[:80]!r} is not a {kind[:-1]} (give a list, a JSON list or"
                f" comma-separated {kind.split()[-1]})"
            )
    return kept or None


_NOT_A_NAME = re.compile(r"[\s\"'{}\[\]:]")
"""Characters no catalog key or table name holds: a JSON object or a quoted list given as one name."""

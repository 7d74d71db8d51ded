"""The current generation's lookup request (ProgrammaticProductLookupRequest) and product-URL checks.

``{url, matchMode: strict|loose (loose), resolutionMode: auto|index_only|on_demand_only (auto),
onDemandCachePolicy: prefer_cache|refresh, format: json|md|markdown}``; unknown fields answer 422
``extra_forbidden``. A URL that is not absolute http(s) with a host answers 422 ``invalid_product_url``; one
whose host is loopback, private, link-local or a local name answers 422 ``unsafe_url``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from octogen_source.sandbox.answers import ApiError
from octogen_source.sandbox.search_request import extra_forbidden
from octogen_source.sandbox.validation import RequestValidationError, _error, _require_object, parse_json_body

MATCH_MODES = ("strict", "loose")
RESOLUTION_MODES = ("auto", "index_only", "on_demand_only")
CACHE_POLICIES = ("prefer_cache", "refresh")
FORMATS = ("json", "md", "markdown")
LOOKUP_FIELDS = frozenset({"url", "matchMode", "resolutionMode", "onDemandCachePolicy", "format"})
_LOCAL_SUFFIXES = (".local", ".localhost", ".internal", ".lan", ".home.arpa")


@dataclass(frozen=True)
class LookupRequest:
    url: str
    match_mode: str
    resolution_mode: str
    cache_policy: str
    format: str


@dataclass(frozen=True)
class ProductUrl:
    """A requested product URL, split: ``host`` lowercased without port and leading ``www.``."""

    requested: str
    host: str
    path: str
    query: str

    @property
    def loose(self) -> str:
        """What loose matching compares: https, the host, the lowercased path without a trailing slash."""
        return f"https://{self.host}{self.path.lower().rstrip('/')}"

    @property
    def normalized(self) -> str:
        """Octogen's normalization: https, no www., no fragment, the query kept (sorted)."""
        query = "&".join(sorted(part for part in self.query.split("&") if part))
        return f"https://{self.host}{self.path.rstrip('/') or '/'}" + (f"?{query}" if query else "")


def _literal(body: dict[str, Any], name: str, choices: tuple[str, ...], errors: list[dict[str, Any]]) -> str:
    value = body.get(name)
    if value is None:
        return choices[0]
    if value in choices:
        return str(value)
    expected = " or ".join(", ".join(f"'{c}'" for c in choices).rsplit(", ", 1))
    errors.append(
        _error("literal_error", ("body", name), f"Input should be {expected}", value, {"expected": expected})
    )
    return choices[0]


def parse_lookup_request(raw: bytes) -> LookupRequest:
    body = _require_object(parse_json_body(raw))
    errors = extra_forbidden(body, LOOKUP_FIELDS)
    url = body.get("url")
    if url is None:
        errors.append(_error("missing", ("body", "url"), "Field required", body))
    elif not isinstance(url, str):
        errors.append(_error("string_type", ("body", "url"), "Input should be a valid string", url))
    match_mode = _literal(body, "matchMode", ("loose", "strict"), errors)
    resolution_mode = _literal(body, "resolutionMode", RESOLUTION_MODES, errors)
    cache_policy = _literal(body, "onDemandCachePolicy", CACHE_POLICIES, errors)
    output = _literal(body, "format", FORMATS, errors)
    if errors:
        raise RequestValidationError(errors)
    assert isinstance(url, str)
    return LookupRequest(url.strip(), match_mode, resolution_mode, cache_policy, output)


def _unsafe(host: str) -> bool:
    """Loopback, private, link-local or reserved addresses, and names that only resolve locally."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host
    return not address.is_global


def parse_product_url(url: str) -> ProductUrl:
    """The split URL; ApiError 422 ``invalid_product_url`` or ``unsafe_url``."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        raise ApiError(422, "invalid_product_url") from None
    if parts.scheme.lower() not in ("http", "https") or not hostname or " " in url:
        raise ApiError(422, "invalid_product_url")
    host = hostname.lower().rstrip(".")
    if _unsafe(host):
        raise ApiError(422, "unsafe_url")
    if host.startswith("www."):
        host = host[len("www.") :]
    return ProductUrl(requested=url, host=host, path=parts.path or "/", query=parts.query)

"""Control a sandbox running in another process (``python -m octogen_source.sandbox``) over /_sandbox/."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx


class RemoteSandboxError(RuntimeError):
    """A control call was refused (status and ``detail`` from the sandbox)."""


class RemoteSandbox:
    """The control methods of :class:`~octogen_source.sandbox.Sandbox`, over HTTP.

    ``base_url`` is the API base (``http://127.0.0.1:<port>/v1``) or the server root.
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        root = base_url.rstrip("/")
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        self._http = httpx.Client(base_url=f"{root}/_sandbox", timeout=timeout)
        self._info: dict[str, Any] | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: str) -> Any:
        response = self._http.request(method, path, json=body, params=params or None)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:200]
            if response.status_code == 404:
                raise KeyError(detail)
            raise RemoteSandboxError(
                f"sandbox control {method} {path} failed ({response.status_code}): {detail}"
            )
        return response.json()

    def info(self) -> dict[str, Any]:
        """baseUrl, apiKey, catalogs, grantedCatalogs, apiGeneration, wireShape, clock."""
        return self._call("GET", "/info")

    def _static_info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = self.info()
        return self._info

    @property
    def base_url(self) -> str:
        return str(self._static_info()["baseUrl"])

    @property
    def api_key(self) -> str:
        return str(self._static_info()["apiKey"])

    @property
    def clock(self) -> str:
        return str(self.info()["clock"])

    @property
    def wire_shape(self) -> str:
        return str(self._call("GET", "/wire-shape")["shape"])

    @property
    def api_generation(self) -> str:
        return str(self._call("GET", "/api-generation")["generation"])

    def set_api_generation(self, name: str) -> None:
        self._call("POST", "/api-generation", {"generation": name})

    # credit and rate limit
    def exhaust_credit(self) -> None:
        self._call("POST", "/credit", {"exhausted": True})

    def restore_credit(self) -> None:
        self._call("POST", "/credit", {"exhausted": False})

    @property
    def credit_exhausted(self) -> bool:
        return bool(self._call("GET", "/credit")["exhausted"])

    def set_rate_limit(self, limit: int | None) -> None:
        self._call("POST", "/rate-limit", {"limit": limit})

    @property
    def rate_limit(self) -> int | None:
        limit = self._call("GET", "/rate-limit")["limit"]
        return None if limit is None else int(limit)

    # keys
    def add_key(self, catalogs: list[str] | None = None, *, forbidden: bool = False) -> str:
        return str(self._call("POST", "/keys", {"catalogs": catalogs, "forbidden": forbidden})["key"])

    def revoke_key(self, key: str) -> None:
        self._call("POST", "/keys/revoke", {"key": key})

    # truth
    def all_catalogs(self) -> list[str]:
        return list(self.info()["catalogs"])

    def granted_catalogs(self) -> list[str]:
        return list(self._call("GET", "/granted-catalogs"))

    def truth_catalogs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/truth/catalogs"))

    def truth_search_items(self, catalog: str) -> list[dict[str, Any]]:
        return list(self._call("GET", "/truth/search-items", catalog=catalog))

    def truth_catalog_summaries(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/truth/catalog-summaries"))

    def store_host(self, catalog: str) -> str:
        return str(self._call("GET", "/truth/store-host", catalog=catalog)["host"])

    def truth_product_view(self, uuid: str) -> dict[str, Any]:
        return dict(self._call("GET", "/truth/product-view", uuid=uuid))

    def truth_lookup(self, uuid: str) -> dict[str, Any]:
        return dict(self._call("GET", "/truth/lookup", uuid=uuid))

    # mutations
    def _mutate(self, name: str, body: dict[str, Any]) -> list[str]:
        return list(self._call("POST", f"/mutations/{name}", body)["uuids"])

    def update_prices(self, catalog: str, count: int) -> list[str]:
        return self._mutate("update_prices", {"catalog": catalog, "count": count})

    def recolor_products(self, catalog: str, count: int) -> list[str]:
        return self._mutate("recolor_products", {"catalog": catalog, "count": count})

    def add_products(self, catalog: str, count: int) -> list[str]:
        return self._mutate("add_products", {"catalog": catalog, "count": count})

    def remove_products(self, catalog: str, count: int) -> list[str]:
        return self._mutate("remove_products", {"catalog": catalog, "count": count})

    def move_products(self, catalog: str, count: int, to_catalog: str) -> list[str]:
        return self._mutate("move_products", {"catalog": catalog, "count": count, "to_catalog": to_catalog})

    def restore_products(self, uuids: Iterable[str]) -> list[str]:
        return self._mutate("restore_products", {"uuids": list(uuids)})

    def add_late_indexed(self, catalog: str, count: int) -> list[str]:
        return self._mutate("add_late_indexed", {"catalog": catalog, "count": count})

    def add_null_updated_at(self, catalog: str, count: int) -> list[str]:
        return self._mutate("add_null_updated_at", {"catalog": catalog, "count": count})

    def add_same_second(self, catalog: str, count: int) -> list[str]:
        return self._mutate("add_same_second", {"catalog": catalog, "count": count})

    def set_wire_shape(self, shape: str) -> None:
        self._call("POST", "/wire-shape", {"shape": shape})

    # faults and counters
    def fail_next(
        self,
        count: int,
        kind: str | int,
        *,
        endpoint: str | None = None,
        retry_after: float | str | None = None,
        body_bytes: int | None = None,
    ) -> None:
        body: dict[str, object] = {
            "count": count,
            "kind": str(kind),
            "endpoint": endpoint,
            "retry_after": retry_after,
        }
        if body_bytes is not None:
            body["body_bytes"] = body_bytes
        self._call("POST", "/faults/fail-next", body)

    def end_walks_early(self, after_pages: int, *, empty: bool = False, catalog: str | None = None) -> None:
        body = {"after_pages": after_pages, "empty": empty, "catalog": catalog}
        self._call("POST", "/faults/end-walks-early", body)

    def set_fault_rates(
        self,
        rate_429: float = 0.0,
        rate_5xx: float = 0.0,
        rate_drop: float = 0.0,
        latency: float = 0.0,
        retry_after: float | str | None = 1,
        seed: int = 0,
    ) -> None:
        body = {
            "rate_429": rate_429,
            "rate_5xx": rate_5xx,
            "rate_drop": rate_drop,
            "latency": latency,
            "retry_after": retry_after,
            "seed": seed,
        }
        self._call("POST", "/faults/rates", body)

    def clear_faults(self) -> None:
        self._call("POST", "/faults/clear")

    @property
    def request_counts(self) -> dict[str, int]:
        return dict(self._call("GET", "/counts"))

    @property
    def faults_injected(self) -> dict[str, int]:
        return dict(self._call("GET", "/faults")["injected"])

    def reset_counts(self) -> None:
        self._call("POST", "/counts/reset")

"""Unauthenticated control endpoints under ``/_sandbox/`` for a sandbox running in another process.

They expose the same controls as :class:`~octogen_source.sandbox.Sandbox` (see ``RemoteSandbox``):

- ``GET  /_sandbox/info``: baseUrl, apiKey, catalogs, grantedCatalogs, apiGeneration, wireShape, clock
- ``POST /_sandbox/keys`` ``{catalogs?, forbidden?}`` -> ``{key}``; ``POST /_sandbox/keys/revoke`` ``{key}``
- ``GET  /_sandbox/truth/catalogs``, ``/truth/catalog-summaries``, ``/truth/search-items?catalog=``,
  ``/truth/product-view?uuid=``, ``/truth/lookup?uuid=``, ``/truth/store-host?catalog=``
- ``POST /_sandbox/mutations/{name}`` ``{catalog, count}`` (``restore_products``: ``{uuids}``) -> ``{uuids}``
- ``GET|POST /_sandbox/api-generation`` ``{generation}`` ("current" | "seed"); ``GET|POST
  /_sandbox/wire-shape`` ``{shape}`` (the old names: "v2" | "v1")
- ``GET|POST /_sandbox/credit`` ``{exhausted}``; ``GET|POST /_sandbox/rate-limit`` ``{limit}`` (null: off)
- ``POST /_sandbox/faults/fail-next`` ``{count, kind, endpoint?, retry_after?}``, ``/faults/rates`` (the
  keyword arguments of ``set_fault_rates``), ``/faults/clear``; ``GET /_sandbox/faults`` -> ``{injected}``
- ``GET  /_sandbox/counts``; ``POST /_sandbox/counts/reset``

Bad arguments answer 400, unknown uuids 404, both as ``{"detail": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from octogen_source.sandbox.wire import dumps

if TYPE_CHECKING:
    from octogen_source.sandbox.state import SandboxState

ADMIN_PREFIX = "/_sandbox"
COUNTED_MUTATIONS = (
    "update_prices",
    "recolor_products",
    "add_products",
    "remove_products",
    "add_late_indexed",
    "add_null_updated_at",
    "add_same_second",
)
RATE_ARGUMENTS = ("rate_429", "rate_5xx", "rate_drop", "latency", "retry_after", "seed")

AdminAction = Callable[[web.Request, dict[str, Any]], Any]


def _respond(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type="application/json")


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read() if request.can_read_body else b""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ValueError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValueError("request body must be a JSON object")
    return body


def _arg(source: Any, name: str) -> Any:
    try:
        return source[name]
    except KeyError:
        raise ValueError(f"missing argument {name!r}") from None


def _wrap(action: AdminAction) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
            result = action(request, body)
        except KeyError as exc:
            return _respond({"detail": str(exc.args[0]) if exc.args else "not found"}, 404)
        except (ValueError, TypeError) as exc:
            return _respond({"detail": str(exc)}, 400)
        return _respond({} if result is None else result)

    return handler


def add_admin_routes(app: web.Application, state: SandboxState) -> None:
    def info(request: web.Request, _body: dict[str, Any]) -> dict[str, Any]:
        return {
            "baseUrl": f"http://{request.host}/v1",
            "apiKey": state.api_key,
            "catalogs": state.all_catalogs(),
            "grantedCatalogs": state.granted_catalogs(),
            "apiGeneration": state.api_generation,
            "wireShape": state.wire_shape,
            "clock": state.clock,
        }

    def mutate(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        name = request.match_info["name"]
        if name == "restore_products":
            uuids = _arg(body, "uuids")
            if not isinstance(uuids, list):
                raise ValueError("uuids must be a list")
            return {"uuids": state.restore_products(uuids)}
        if name == "move_products":
            moved = state.move_products(_arg(body, "catalog"), _arg(body, "count"), _arg(body, "to_catalog"))
            return {"uuids": moved}
        if name not in COUNTED_MUTATIONS:
            raise ValueError(f"unknown mutation {name!r}")
        method = getattr(state, name)
        return {"uuids": method(_arg(body, "catalog"), _arg(body, "count"))}

    def wire_shape(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            state.set_wire_shape(_arg(body, "shape"))
        return {"shape": state.wire_shape}

    def api_generation(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            state.set_api_generation(_arg(body, "generation"))
        return {"generation": state.api_generation}

    def credit(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            exhausted = _arg(body, "exhausted")
            if not isinstance(exhausted, bool):
                raise ValueError("exhausted must be true or false")
            (state.exhaust_credit if exhausted else state.restore_credit)()
        return {"exhausted": state.credit_exhausted}

    def rate_limit(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            state.set_rate_limit(_arg(body, "limit"))
        return {"limit": state.rate_limit}

    def fail_next(_request: web.Request, body: dict[str, Any]) -> None:
        state.fail_next(
            _arg(body, "count"),
            _arg(body, "kind"),
            endpoint=body.get("endpoint"),
            retry_after=body.get("retry_after"),
            **({"body_bytes": body["body_bytes"]} if "body_bytes" in body else {}),
        )

    def fault_rates(_request: web.Request, body: dict[str, Any]) -> None:
        unknown = set(body) - set(RATE_ARGUMENTS)
        if unknown:
            raise ValueError(f"unknown argument(s): {', '.join(sorted(unknown))}")
        state.set_fault_rates(**body)

    routes: list[tuple[str, str, AdminAction]] = [
        ("GET", "/info", info),
        (
            "POST",
            "/keys",
            lambda _r, b: {"key": state.add_key(b.get("catalogs"), forbidden=b.get("forbidden", False))},
        ),
        ("POST", "/keys/revoke", lambda _r, b: state.revoke_key(_arg(b, "key"))),
        ("GET", "/granted-catalogs", lambda _r, _b: state.granted_catalogs()),
        ("GET", "/truth/catalogs", lambda _r, _b: state.truth_catalogs()),
        ("GET", "/truth/search-items", lambda r, _b: state.truth_search_items(_arg(r.query, "catalog"))),
        ("GET", "/truth/product-view", lambda r, _b: state.truth_product_view(_arg(r.query, "uuid"))),
        ("GET", "/truth/lookup", lambda r, _b: state.truth_lookup(_arg(r.query, "uuid"))),
        ("GET", "/truth/catalog-summaries", lambda _r, _b: state.truth_catalog_summaries()),
        ("GET", "/truth/store-host", lambda r, _b: {"host": state.store_host(_arg(r.query, "catalog"))}),
        ("GET", "/api-generation", api_generation),
        ("POST", "/api-generation", api_generation),
        ("GET", "/credit", credit),
        ("POST", "/credit", credit),
        ("GET", "/rate-limit", rate_limit),
        ("POST", "/rate-limit", rate_limit),
        ("POST", "/mutations/{name}", mutate),
        ("GET", "/wire-shape", wire_shape),
        ("POST", "/wire-shape", wire_shape),
        ("POST", "/faults/fail-next", fail_next),
        ("POST", "/faults/rates", fault_rates),
        ("POST", "/faults/clear", lambda _r, _b: state.clear_faults()),
        (
            "POST",
            "/faults/end-walks-early",
            lambda _r, b: state.end_walks_early(
                _arg(b, "after_pages"), empty=bool(b.get("empty", False)), catalog=b.get("catalog")
            ),
        ),
        ("GET", "/faults", lambda _r, _b: {"injected": state.faults_injected}),
        ("GET", "/counts", lambda _r, _b: state.request_counts),
        ("POST", "/counts/reset", lambda _r, _b: state.reset_counts()),
    ]
    for method, path, action in routes:
        app.router.add_route(method, ADMIN_PREFIX + path, _wrap(action))

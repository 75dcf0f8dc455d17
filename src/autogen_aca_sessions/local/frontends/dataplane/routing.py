"""Routing of the data plane: the route table's entry, and the request's route resolved once.

:func:`route_middleware` runs first on every request of a pool's app. It splits the path at the
pool prefix (:mod:`.endpoint`), matches the rest against the route table, and puts the result, a
:class:`ResolvedRoute`, on the request under :data:`ROUTE_KEY`. Dispatch, the access log, the MCP
switch and fault injection read it from there; nothing parses the path a second time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from ..auth import Handler as RequestHandler
from ..auth import Middleware
from .context import Handler
from .endpoint import PoolPrefix, split_endpoint, split_path
from .operations import OPERATION_KEY, Operation
from .wire.versions import ApiVersionSpec, Contract, lookup_api_version

__all__ = [
    "ROUTE_KEY",
    "ResolvedRoute",
    "Route",
    "RouteMatch",
    "resolve",
    "resolved_route",
    "route_middleware",
]


@dataclass(frozen=True)
class Route:
    """One operation: the contract it belongs to, its method and its path below the endpoint."""

    contract: Contract | None
    """The contract the operation belongs to; ``None``: every contract."""
    operation: Operation
    """What the call is, for middlewares (fault injection picks calls by it)."""
    method: str
    """HTTP method."""
    pattern: re.Pattern[str]
    """Matches the operation path (segments joined by ``/``, no leading slash)."""
    handler: Handler
    """Serves the request."""
    available: Callable[[ApiVersionSpec], bool] = lambda spec: True
    """Whether the operation exists in an api-version of its contract."""

    def serves(self, spec: ApiVersionSpec) -> bool:
        """Whether this route exists in ``spec``."""
        return self.contract in (None, spec.contract) and self.available(spec)

    @property
    def template(self) -> str:
        """The route's path as the access log and spans name it (``/files/{name}/content``)."""
        return "/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", self.pattern.pattern)


@dataclass(frozen=True)
class RouteMatch:
    """A route whose pattern fits the request's path, and the path parameters it took."""

    route: Route
    """The route."""
    params: dict[str, str]
    """Its named groups (``name``, ``execution_id``)."""


OTHER_POOL_TEMPLATE = "(other pool)"
"""The route template logged for a path that names another pool."""

UNKNOWN_TEMPLATE = "(unknown)"
"""The route template logged for a path no route fits."""


@dataclass(frozen=True)
class ResolvedRoute:
    """What a request is, worked out once from its method, path and query."""

    prefix: PoolPrefix | None
    """The ``/subscriptions/.../sessionPools/{pool}`` part of the path, when it has one."""
    other_pool: bool
    """Whether that prefix names a pool this app does not serve (the call is answered 404)."""
    path: str
    """The path below the pool endpoint, segments joined by ``/`` (``files/a.csv/content``)."""
    matches: tuple[RouteMatch, ...]
    """Every route whose pattern fits :attr:`path`, in table order, whatever its method or
    api-version (dispatch picks among them and words its refusals from them)."""
    identifier: str | None
    """The ``identifier`` query parameter (the session), when present and readable."""
    method: str
    """The request's method."""
    spec: ApiVersionSpec | None = None
    """The api-version the query names, when it names one this server knows."""

    @property
    def route(self) -> Route | None:
        """The route that serves the request: the first with its method in its api-version, else
        (no api-version, or the operation is not in it) the first with its method in any."""
        with_method = [m.route for m in self.matches if m.route.method == self.method]
        if self.spec is not None:
            spec = self.spec
            served = next((r for r in with_method if r.serves(spec)), None)
            if served is not None:
                return served
        return with_method[0] if with_method else None

    @property
    def operation(self) -> Operation:
        """The operation of :attr:`route` (``OTHER`` when none)."""
        route = self.route
        return route.operation if route is not None else Operation.OTHER

    @property
    def template(self) -> str:
        """The route template for the access log and spans."""
        if self.other_pool:
            return OTHER_POOL_TEMPLATE
        route = self.route
        return route.template if route is not None else UNKNOWN_TEMPLATE


def resolve(
    routes: Sequence[Route],
    method: str,
    path: str,
    *,
    pool_name: str | None,
    identifier: str | None = None,
    api_version: str | None = None,
) -> ResolvedRoute:
    """Resolve ``method path`` against ``routes``; ``pool_name`` None accepts any pool prefix.

    Never raises: it runs on every request, hostile ones included, before the error middleware.
    """
    prefix, rest = split_endpoint(split_path(path))
    other = prefix is not None and pool_name is not None and prefix.pool.lower() != pool_name.lower()
    below = "/".join(rest)
    matches: list[RouteMatch] = []
    for route in routes:
        found = route.pattern.fullmatch(below)
        if found is not None:
            matches.append(RouteMatch(route, {k: v for k, v in found.groupdict().items() if v is not None}))
    return ResolvedRoute(
        prefix=prefix,
        other_pool=other,
        path=below,
        matches=tuple(matches),
        identifier=identifier,
        method=method.upper(),
        spec=lookup_api_version(api_version) if api_version else None,
    )


# aiohttp 3.13 added typed request keys (and warns about plain strings); older releases have none.
ROUTE_KEY: web.RequestKey[ResolvedRoute] | str = (
    web.RequestKey("aca_route", ResolvedRoute) if hasattr(web, "RequestKey") else "aca_route"
)
"""Request key under which :func:`route_middleware` puts the request's :class:`ResolvedRoute`."""


def _query(request: web.Request, name: str) -> str | None:
    try:
        return request.query.get(name)
    except (ValueError, UnicodeDecodeError):  # a query string that does not parse
        return None


def route_middleware(routes: Sequence[Route], pool_name: str) -> Middleware:
    """The outermost middleware of a pool's app: resolves the route once (:data:`ROUTE_KEY`), and
    names the operation under :data:`~.operations.OPERATION_KEY` for the caller's middlewares."""

    @web.middleware
    async def middleware(request: web.Request, handler: RequestHandler) -> web.StreamResponse:
        resolved = resolve(
            routes,
            request.method,
            request.path,
            pool_name=pool_name,
            identifier=_query(request, "identifier"),
            api_version=_query(request, "api-version"),
        )
        request[ROUTE_KEY] = resolved
        request[OPERATION_KEY] = resolved.operation
        return await handler(request)

    return middleware


def resolved_route(request: web.Request) -> ResolvedRoute | None:
    """The route :func:`route_middleware` resolved for ``request`` (None outside a pool's app)."""
    found = request.get(ROUTE_KEY)
    return found if isinstance(found, ResolvedRoute) else None

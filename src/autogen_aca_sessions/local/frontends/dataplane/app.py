"""The HTTP layer of the local session pool: routing, validation and responses for every api-version.

:func:`create_app` builds an :class:`aiohttp.web.Application` that speaks the dynamic-sessions
data plane (Azure's OpenAPI specification in Azure/azure-rest-api-specs,
``specification/app/data-plane/Microsoft.App.DynamicSessions/``, and the Microsoft Learn pages on
dynamic sessions) on top of a session runtime (``local/runtime/sessions.py``). Requests are served
both under the Azure-shaped endpoint path
``/subscriptions/<sub>/resourceGroups/<rg>/sessionPools/<pool>/...`` and at the server root, so a
relative ``Operation-Location`` resolves either way.

Middleware order, outermost first: ``route_middleware`` (which resolves the request's route once,
``routing.py``), the access log, the catch-all that turns every refusal into an Azure.Core error
body (and any unexpected exception into a logged 500), the caller's ``middlewares``, the MCP
switch, bearer-key authentication, fault injection, then the dispatcher. Every one after the
first reads the resolved route; none parses the path again.

Modules: ``endpoint.py`` parses the pool prefix, ``routing.py`` resolves routes, ``routes.py`` is
the route table, ``handlers.py`` the handlers, ``context.py`` what they share, ``wire/`` the
shapes of each contract.

Choices where the reference is silent:

* Order of refusals: 401 (key) before 404 (no such route) before 400 (api-version) before
  404 ``OperationNotSupported`` (the route exists in other api-versions; message names them)
  before 405. ``/.management/getSession`` and ``/.management/listSessions`` answer on every
  api-version.
* ``timeoutInSeconds``: default 60 (or the pool maximum when lower) on every contract; above the
  pool's ``max_execution_seconds`` it is clamped; below 1, fractional or not a number: 400.
* Output cap: 2025-10 cuts at ``outputStreamsMaxLength`` (default 4096, larger values clamped to
  10,000,000); other api-versions cut only at 10,000,000 characters as a memory guard. Nothing
  says a stream was cut (as on Azure) unless the pool has ``wire_extensions``: then new-contract
  results carry ``stdoutTruncated``/``stderrTruncated``, legacy results only when true.
* Failed executions: ``error.code`` is the exception class (``ZeroDivisionError``) for user errors,
  ``ExecutionTimeout`` (interrupted, state kept), ``KernelRestarted`` (timed out and restarted) or
  ``KernelDied``; ``error.stateLost`` always, top-level ``stateLost``/``timedOut`` when true.
  Several images: the first is the result; with ``wire_extensions`` the rest go in an
  undocumented ``images`` list.
* Asynchronous executions answer 202 on every new-contract api-version; every execution
  (synchronous too) can be fetched by ``GET /executions/<id>`` for a while (2,000 finished ones).
  A client-chosen ``operation-id`` still running in the same session is 409.
* Sessions: execute, upload, list, download, metadata and delete of files create the session
  (as Azure does); ``GET``/``DELETE /session`` never create and answer 404
  ``SessionWithIdentifierNotFound`` for an unknown identifier; ``GET /session`` does not reset
  the idle timer. Pool full: 404 ``SessionPoolFull``.
* Files: listings are never paged (``nextLink`` null); directories have no ``contentType``; the
  legacy list shows files only; ``recursive`` is honoured on 2025-10 only; ``directory`` is ``""``
  at the top. Deleting a directory removes its contents. Upload limit applies to the sum of the
  files of one request. Multipart filenames are taken as sent (RFC 7578: no percent-decoding);
  only the base name is kept.
* Identifiers: 1-256 printable ASCII characters without whitespace, ``/`` or ``\\``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from ...runtime.capacity import exhausted_resource
from ...runtime.outcome import ResourcesExhaustedError
from ...runtime.protocol import SessionLike, SessionManagerLike
from ..access_log import access_log_middleware
from ..auth import Handler as RequestHandler
from ..auth import Middleware, auth_middleware
from ..expect import expect_handler
from .context import CONTEXT_KEY, SESSION_GUID_HEADER, Call, PoolContext
from .handlers import LIST_SESSIONS_PAGE_SIZE, MANAGEMENT_PAGE_SIZE
from .routes import ROUTES, operation_of, retired_path_message
from .routing import ResolvedRoute, Route, resolve, resolved_route, route_middleware
from .wire.errors import WireError, error_body, error_response
from .wire.versions import API_VERSIONS, lookup_api_version

if TYPE_CHECKING:
    from ..mcp.server import McpServer
    from .faults import FaultInjector

__all__ = [
    "CONTEXT_KEY",
    "LIST_SESSIONS_PAGE_SIZE",
    "MANAGEMENT_PAGE_SIZE",
    "ROUTES",
    "PoolContext",
    "SessionLike",
    "SessionManagerLike",
    "create_app",
    "error_middleware",
    "operation_of",
    "operation_path",
]

logger = logging.getLogger("autogen_aca_sessions.local")


def _resolved(request: web.Request) -> ResolvedRoute:
    """The route ``route_middleware`` resolved (resolved here for a request it never saw)."""
    found = resolved_route(request)
    if found is not None:
        return found
    return resolve(
        ROUTES,
        request.method,
        request.path,
        pool_name=request.app[CONTEXT_KEY].config.pool_name,
        api_version=request.query.get("api-version"),
    )


def operation_path(request: web.Request) -> str:
    """The request's path below the pool endpoint (``executions``, ``files/a.csv/content``, ...).

    ``""`` for paths that name another pool.
    """
    resolved = _resolved(request)
    return "" if resolved.other_pool else resolved.path


def _route_of(request: web.Request) -> tuple[str, str]:
    """The route template (``/files/{name}``) and operation of a request, for the access log."""
    resolved = _resolved(request)
    return resolved.template, resolved.operation.value


def _versions_with(routes: Iterable[Route]) -> str:
    names = [spec.name for spec in API_VERSIONS.values() if any(r.serves(spec) for r in routes)]
    return ", ".join(names)


async def _dispatch(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT_KEY]
    resolved = _resolved(request)
    if resolved.other_pool:
        assert resolved.prefix is not None
        raise WireError(
            404,
            "SessionPoolNotFound",
            f"This server hosts the session pool '{ctx.config.pool_name}', not '{resolved.prefix.pool}'.",
            target="sessionPool",
        )
    op = resolved.path
    if not resolved.matches:
        retired = retired_path_message(op)
        raise WireError(404, "NotFound", retired or f"There is no operation at '/{op}'.", target="path")
    raw_version = request.query.get("api-version")
    if raw_version is None or not raw_version.strip():
        raise WireError(
            400,
            "MissingApiVersionParameter",
            "The 'api-version' query parameter is required; supported: " + ", ".join(API_VERSIONS) + ".",
            target="api-version",
        )
    spec = lookup_api_version(raw_version)
    if spec is None:
        raise WireError(
            400,
            "UnsupportedApiVersion",
            f"The api-version '{raw_version}' is not supported; supported: " + ", ".join(API_VERSIONS) + ".",
            target="api-version",
        )
    in_version = [m for m in resolved.matches if m.route.serves(spec)]
    if not in_version:
        raise WireError(
            404,
            "OperationNotSupported",
            f"'/{op}' is not an operation of api-version {spec.name}; "
            f"it exists in: {_versions_with(m.route for m in resolved.matches)}.",
            target="api-version",
        )
    for match in in_version:
        if match.route.method == request.method:
            call = Call(request, ctx, spec, dict(match.params))
            response = await match.route.handler(call)
            if call.session_guid is not None and not response.prepared:
                response.headers.setdefault(SESSION_GUID_HEADER, call.session_guid)
            return response
    elsewhere = [m.route for m in resolved.matches if m.route.method == request.method]
    if elsewhere:
        # e.g. the legacy POST /files/upload sent with a new-contract api-version
        raise WireError(
            404,
            "OperationNotSupported",
            f"{request.method} '/{op}' is not an operation of api-version {spec.name}; "
            f"it exists in: {_versions_with(elsewhere)}.",
            target="api-version",
        )
    allowed = sorted({m.route.method for m in in_version})
    raise WireError(
        405,
        "MethodNotAllowed",
        f"'/{op}' does not accept {request.method}; allowed: {', '.join(allowed)}.",
        target="method",
        headers={"Allow": ", ".join(allowed)},
    )


# ---------------------------------------------------------------------------------------------
# Middlewares and the application


_HTTP_CODES = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "RequestBodyTooLarge",
}


_RETRY_AFTER_SECONDS = 5
"""What ``Retry-After`` says when the server ran out of a resource."""


def _unavailable(message: str, retry_after: int) -> web.Response:
    return error_response(
        WireError(503, "ServiceUnavailable", message, headers={"Retry-After": str(retry_after)})
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every refusal becomes an Azure.Core error body; anything unexpected a logged 500."""
    try:
        return await handler(request)
    except WireError as err:
        return error_response(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, exc.reason.replace(" ", ""))
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return error_response(WireError(exc.status, code, exc.text or exc.reason, headers=headers))
    except ResourcesExhaustedError as exc:
        return _unavailable(str(exc), exc.retry_after)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        resource = exhausted_resource(exc)
        if resource is not None:
            # Nothing was done that a retry would repeat badly: the answer is "later", not a 500.
            logger.warning("out of %s serving %s %r: %s", resource, request.method, request.path, exc)
            return _unavailable(
                f"The local session pool ran out of {resource} serving this request; retry shortly.",
                _RETRY_AFTER_SECONDS,
            )
        # %r: the decoded path may hold a newline (%0A) that would forge a log line.
        logger.exception("unexpected error serving %s %r", request.method, request.path)
        return web.Response(
            status=500,
            text=json.dumps(
                error_body(
                    "InternalServerError", "The local session pool failed to serve the request; see its log."
                )
            ),
            content_type="application/json",
            charset="utf-8",
            headers={"x-ms-error-code": "InternalServerError"},
        )


def create_app(
    manager: SessionManagerLike,
    *,
    api_key: str,
    middlewares: Sequence[Middleware] = (),
    faults: FaultInjector | None = None,
    mcp: Callable[[], McpServer | None] | None = None,
) -> web.Application:
    """The aiohttp application of a local pool serving ``manager``'s sessions under ``manager.config``.

    ``middlewares`` run inside the error catch-all and outside authentication, so they see
    refused calls too and never let a bare exception escape. ``faults`` runs inside
    authentication (an unauthenticated caller can neither meet nor trigger a fault) and is
    given ``manager``'s session deleter for its ``expire`` fault. ``mcp`` serves ``/mcp`` (with
    its own ``x-ms-apikey`` auth, not the bearer key): it is asked on every request, so a pool can
    switch its MCP server on and off while running (None: ``/mcp`` is an unknown path).
    """
    config = manager.config
    ctx = PoolContext(manager=manager, api_key=api_key, config=config)
    inner: list[Middleware] = [auth_middleware(api_key)]
    if faults is not None:
        faults.bind_session_deleter(manager.delete)
        inner.append(faults.middleware)
    mcp_middlewares = [] if mcp is None else [_mcp_middleware(mcp)]
    # The access log is outside the catch-all: it sees every answer, the catch-all's 500s included.
    app = web.Application(
        middlewares=[
            route_middleware(ROUTES, config.pool_name),
            access_log_middleware(_route_of),
            error_middleware,
            *middlewares,
            *mcp_middlewares,
            *inner,
        ],
        client_max_size=config.max_json_bytes,
    )
    app[CONTEXT_KEY] = ctx
    app.router.add_route("*", "/{tail:.*}", _dispatch, expect_handler=expect_handler)
    app.on_shutdown.append(_cancel_background)
    return app


def _mcp_middleware(mcp: Callable[[], McpServer | None]) -> Middleware:
    """Serves ``{endpoint}/mcp`` (and ``/mcp``) before bearer authentication: it has its own key."""

    @web.middleware
    async def middleware(request: web.Request, handler: RequestHandler) -> web.StreamResponse:
        server = mcp()
        resolved = _resolved(request)
        if server is not None and not resolved.other_pool and resolved.path.lower() == "mcp":
            return await server.handle(request)
        return await handler(request)

    return middleware


async def _cancel_background(app: web.Application) -> None:
    ctx = app[CONTEXT_KEY]
    tasks = list(ctx.tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

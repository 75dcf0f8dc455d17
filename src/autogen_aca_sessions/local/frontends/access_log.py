"""One structured log line per request, and a server span per request when a tracer is configured.

The line (logger ``autogen_aca_sessions.local.access``, level INFO) reads
``POST /executions 200 4.1ms session="demo" operation=execute``; the same fields are on the
record as ``extra`` (``http_method``, ``http_route``, ``http_status``, ``duration_ms``,
``session_id``, ``operation``) for JSON log handlers. Values a caller chose (the session
identifier) are JSON-quoted, so a control character in them cannot forge a log line.

Spans follow the OpenTelemetry HTTP server conventions (``SERVER`` kind, ``{method} {route}``,
``http.request.method``, ``http.route``, ``url.path``, ``http.response.status_code``); they
continue a ``traceparent`` the caller sent. With no SDK installed they cost nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import typedefs, web
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["ACCESS_LOGGER", "access_log_middleware"]

ACCESS_LOGGER = "autogen_aca_sessions.local.access"
logger = logging.getLogger(ACCESS_LOGGER)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RouteOf = Callable[[web.Request], tuple[str, str]]
"""``(route template, operation)`` of a request, e.g. ``("/files/{name}", "files")``."""


_PROPAGATION_LIMITS = {"traceparent": 512, "tracestate": 512, "baggage": 4096}
"""The longest value of each W3C propagation header passed on (the propagators' own limits; the
baggage limit is one list-member's, so no member of a kept header is over it)."""

_MAX_BAGGAGE_MEMBERS = 180
"""W3C Baggage's most list-members."""


def _trace_carrier(request: web.Request) -> dict[str, str]:
    """The request's propagation headers that OpenTelemetry's propagators can read quietly.

    A caller chooses these bytes before authenticating: the propagators log a WARNING for an
    over-long value and raise on a non-UTF-8 one (aiohttp decodes it with surrogate escapes), so
    such values are dropped here, as a malformed ``traceparent`` is ignored anyway.
    """
    carrier: dict[str, str] = {}
    for name, limit in _PROPAGATION_LIMITS.items():
        value = request.headers.get(name)
        if value is None or len(value) > limit or not (value.isascii() and value.isprintable()):
            continue
        if name == "baggage" and value.count(",") >= _MAX_BAGGAGE_MEMBERS:
            continue
        carrier[name] = value
    return carrier


def access_log_middleware(route_of: RouteOf) -> typedefs.Middleware:
    """The outermost middleware of the pool's app: it sees every answer, refusals and 500s too."""

    @web.middleware
    async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route, operation = route_of(request)
        try:
            session = request.query.get("identifier")
        except (ValueError, UnicodeDecodeError):  # a query string that does not parse
            session = None
        tracer = trace.get_tracer("autogen_aca_sessions.local")
        attributes: dict[str, str | int] = {
            "http.request.method": request.method,
            "http.route": route,
            "url.path": request.path,
            "aca_sessions.operation": operation,
        }
        if session is not None:
            attributes["aca_sessions.session.id"] = session
        status = 500
        with tracer.start_as_current_span(
            f"{request.method} {route}",
            context=propagate.extract(_trace_carrier(request)),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                duration_ms = (time.perf_counter() - started) * 1000
                logger.info(
                    "%s %s %d %.1fms session=%s operation=%s",
                    request.method,
                    route,
                    status,
                    duration_ms,
                    json.dumps(session) if session is not None else "-",
                    operation,
                    extra={
                        "http_method": request.method,
                        "http_route": route,
                        "http_status": status,
                        "duration_ms": round(duration_ms, 3),
                        "session_id": session,
                        "operation": operation,
                    },
                )

    return access_log

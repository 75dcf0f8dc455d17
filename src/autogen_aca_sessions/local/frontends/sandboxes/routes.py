"""The route table of the Sandboxes data plane and its dispatcher.

Paths are below ``{g}`` = ``/subscriptions/{sub}/resourceGroups/{rg}/sandboxGroups/{group}``;
fixed words match in any letter case (ARM's habit), ids as sent. Both api-versions serve every
route (the shapes differ in the wire modules, not in the table).

Refusals, in order (the server has checked the key and found the group): 404 (no such route),
400 (api-version missing or unknown), 405 (method), then the handler's own (400 body or ids,
404 no such sandbox, 409 state, 413 size, 429 limit).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ...runtime.sandboxes.runtime import SandboxRuntime
from ..dataplane.wire.errors import WireError
from . import egress, secrets
from . import handlers as h
from .call import GroupRef, SandboxCall
from .stream import exec_stream
from .versions import SandboxApiVersion, lookup_sandbox_version

__all__ = ["ROUTES", "SandboxRoute", "dispatch", "route_template"]

Handler = Callable[[SandboxCall], Awaitable[web.StreamResponse]]

_SID = r"(?P<sandbox_id>[^/]+)"


@dataclass(frozen=True)
class SandboxRoute:
    """One operation: method, path pattern below ``{g}``, handler."""

    method: str
    """HTTP method."""
    pattern: re.Pattern[str]
    """Matches the path below the group (segments joined by ``/``)."""
    handler: Handler
    """Serves it."""


def _r(method: str, pattern: str, handler: Handler) -> SandboxRoute:
    return SandboxRoute(method, re.compile(pattern, re.IGNORECASE), handler)


def _named(what: str, refusal: Handler) -> Handler:
    async def handler(call: SandboxCall) -> web.StreamResponse:
        call.params["what"] = what
        return await refusal(call)

    return handler


def _ns(what: str) -> Handler:
    return _named(what, h.not_served)


ROUTES: tuple[SandboxRoute, ...] = (
    _r("GET", r"sandboxes", h.list_sandboxes),
    _r("PUT", r"sandboxes", h.create_sandbox),
    _r("POST", r"sandboxes", h.create_sandbox),
    _r("GET", r"sandboxes/count", h.count_sandboxes),
    _r("GET", rf"sandboxes/{_SID}", h.get_sandbox),
    _r("DELETE", rf"sandboxes/{_SID}", h.delete_sandbox),
    _r("POST", rf"sandboxes/{_SID}/executeShellCommand", h.execute_shell),
    _r("POST", rf"sandboxes/{_SID}/executeCommand", h.execute_command),
    _r("GET", rf"sandboxes/{_SID}/exec/stream", exec_stream),
    _r("GET", rf"sandboxes/{_SID}/logstream", _named("logstream", h.not_streamed)),
    _r("GET", rf"sandboxes/{_SID}/processes/stream", _named("processes/stream", h.not_streamed)),
    _r("POST", rf"sandboxes/{_SID}/stop(?:/async)?", h.stop_sandbox),
    _r("POST", rf"sandboxes/{_SID}/resume", h.resume_sandbox),
    _r("POST", rf"sandboxes/{_SID}/lifecycle", h.set_lifecycle),
    _r("GET", rf"sandboxes/{_SID}/stats", h.stats),
    _r("POST", rf"sandboxes/{_SID}/snapshot", h.snapshot),
    _r("POST", rf"sandboxes/{_SID}/commit", h.commit),
    _r("GET", rf"sandboxes/{_SID}/files", h.read_file),
    _r("PUT", rf"sandboxes/{_SID}/files", h.write_file),
    _r("POST", rf"sandboxes/{_SID}/files", h.write_file),
    _r("DELETE", rf"sandboxes/{_SID}/files", h.delete_file),
    _r("GET", rf"sandboxes/{_SID}/files/list", h.list_files),
    _r("GET", rf"sandboxes/{_SID}/files/stat", h.stat_file),
    _r("POST", rf"sandboxes/{_SID}/files/mkdir", h.mkdir),
    _r("GET", rf"sandboxes/{_SID}/egress-decisions", egress.egress_decisions),
    _r("GET", rf"sandboxes/{_SID}/egressDecisions", egress.egress_decisions),
    _r("POST", rf"sandboxes/{_SID}/egresspolicy", egress.set_egress_policy),
    _r("POST", rf"sandboxes/{_SID}/ports/(?:add|remove)", _ns("ports")),
    _r("PUT", rf"sandboxes/{_SID}/ports", _ns("ports")),
    _r("PATCH", rf"sandboxes/{_SID}/ports", _ns("ports")),
    _r("POST", rf"sandboxes/{_SID}/volumes/add", _ns("volumes/add")),
    _r("POST", rf"sandboxes/{_SID}/connections/add", _ns("connections/add")),
    _r("POST", rf"sandboxes/{_SID}/(?:enable|disable)", _ns("enable|disable")),
    _r("GET", r"snapshots", h.list_snapshots),
    _r("GET", r"snapshots/count", h.count_snapshots),
    _r("GET", r"snapshots/(?P<snapshot_id>[^/]+)", h.get_snapshot),
    _r("DELETE", r"snapshots/(?P<snapshot_id>[^/]+)", h.delete_snapshot),
    _r("GET", r"diskimages", h.list_disk_images),
    _r("PUT", r"diskimages", h.create_disk_image),
    _r("POST", r"diskimages", h.create_disk_image),
    _r("GET", r"diskimages/public", h.list_public_images),
    _r("GET", r"diskimages/public/(?P<image>[^/]+)", h.get_public_image),
    _r("GET", r"diskimages/(?P<image_id>[^/]+)", h.get_disk_image),
    _r("DELETE", r"diskimages/(?P<image_id>[^/]+)", h.delete_disk_image),
    _r("GET", r"volumes", h.empty_list),
    _r("PUT", r"volumes/[^/]+", _ns("volumes")),
    _r("GET", r"secrets", secrets.list_secrets),
    _r("PUT", r"secrets/(?P<secret_id>[^/]+)", secrets.put_secret),
    _r("DELETE", r"secrets/(?P<secret_id>[^/]+)", secrets.delete_secret),
    _r("GET", r"secrets/(?P<secret_id>[^/]+)/keys", secrets.secret_keys),
    _r("POST", r"secrets/(?P<secret_id>[^/]+)/peek", secrets.peek_secret),
)
"""Every operation served (first match wins: ``count`` and ``public`` before ids)."""


def route_template(pattern: re.Pattern[str]) -> str:
    """A route's path as a template (``sandboxes/{sandbox_id}/stats``), for logs."""
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.pattern)


def _version(request: web.Request) -> SandboxApiVersion:
    raw = next((v for k, v in request.query.items() if k.lower() == "api-version"), None)
    supported = ", ".join(v.value for v in SandboxApiVersion)
    if raw is None or not raw.strip():
        raise WireError(
            400,
            "MissingApiVersionParameter",
            f"The 'api-version' query parameter is required; supported: {supported}.",
            target="api-version",
        )
    version = lookup_sandbox_version(raw)
    if version is None:
        raise WireError(
            400,
            "UnsupportedApiVersion",
            f"The api-version '{raw[:64]}' is not served by the Sandboxes data plane; "
            f"supported: {supported}.",
            target="api-version",
        )
    return version


async def dispatch(
    request: web.Request, tail: list[str], runtime: SandboxRuntime, group: GroupRef
) -> web.StreamResponse:
    """Serve one (authenticated) request whose path is ``{g}/`` + ``tail`` (decoded segments)."""
    op = "/".join(tail)
    matches = [(route, match) for route in ROUTES if (match := route.pattern.fullmatch(op)) is not None]
    if not matches:
        raise WireError(
            404,
            "NotFound",
            f"There is no Sandboxes operation at '.../sandboxGroups/{{group}}/{op[:200]}'.",
            target="path",
        )
    version = _version(request)
    for route, match in matches:
        if route.method == request.method:
            params = {k: v for k, v in match.groupdict().items() if v is not None}
            return await route.handler(SandboxCall(request, runtime, group, version, params))
    allowed = sorted({route.method for route, _ in matches})
    raise WireError(
        405,
        "MethodNotAllowed",
        f"'.../{op[:200]}' does not accept {request.method}; allowed: {', '.join(allowed)}.",
        target="method",
        headers={"Allow": ", ".join(allowed)},
    )

"""A routed Sandboxes data-plane request (what every handler receives) and the request helpers
the handlers share: JSON bodies with a size cap, query values, ids, the sandbox looked up."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ...runtime.sandboxes.errors import SandboxError
from ...runtime.sandboxes.runtime import SandboxRuntime
from ...runtime.sandboxes.sandbox import LocalSandbox
from ..bodies import read_capped_body
from ..dataplane.wire.errors import WireError
from .errors import wire_error
from .versions import SandboxApiVersion
from .wire import wire_for
from .wire.common import VersionWire, bad_request

__all__ = ["MAX_JSON_BODY_BYTES", "GroupRef", "SandboxCall", "json_response"]

MAX_JSON_BODY_BYTES = 1024 * 1024
"""Largest JSON request body (a create, a command, a policy); above it 413."""

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def json_response(body: Any, status: int = 200) -> web.Response:
    """A JSON response."""
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", charset="utf-8"
    )


@dataclass(frozen=True)
class GroupRef:
    """The sandbox group a request is under."""

    runtime_id: str
    """The id the runtime knows it by."""
    path: str
    """``/subscriptions/{sub}/resourceGroups/{rg}/sandboxGroups/{name}`` as the client wrote it."""
    resource_id: str
    """The group's ARM id (``sandboxGroupId`` of its sandboxes)."""
    region: str
    """The group's location."""
    server_origin: str
    """The server's own ``scheme://host:port``: the origin of URLs handed back when the
    request's ``Host`` header is not one a URL may carry (non-UTF-8 bytes, controls)."""


@dataclass
class SandboxCall:
    """A routed request."""

    request: web.Request
    """The aiohttp request."""
    runtime: SandboxRuntime
    """The Sandboxes runtime."""
    group: GroupRef
    """The group the path names."""
    version: SandboxApiVersion
    """The api-version the request named."""
    params: dict[str, str] = field(default_factory=dict)
    """Path parameters (``sandbox_id``, ``snapshot_id``, ``image``)."""

    @property
    def wire(self) -> VersionWire:
        """How this api-version renders."""
        return wire_for(self.version)

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` the client reached; the server's own when its ``Host`` header
        cannot be echoed (a URL built from it would fail, or carry bytes back into headers)."""
        try:
            origin = str(self.request.url.origin())
        except (ValueError, UnicodeError):
            return self.group.server_origin
        if len(origin) > 200 or not (origin.isascii() and origin.isprintable()):
            return self.group.server_origin
        return origin

    def query(self, name: str) -> str | None:
        """A query parameter, by case-insensitive name (the first when repeated)."""
        for key, value in self.request.query.items():
            if key.lower() == name.lower():
                return value
        return None

    def flag(self, name: str, default: bool) -> bool:
        """A ``true``/``false`` query parameter."""
        raw = self.query(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise bad_request(f"The query parameter '{name}' must be true or false.", name)

    def path_query(self) -> str:
        """The ``path`` query parameter of a files call (required)."""
        path = self.query("path")
        if path is None or path == "":
            raise bad_request(
                "The 'path' query parameter (an absolute path in the sandbox) is required.", "path"
            )
        if len(path) > 4096 or "\x00" in path:
            raise bad_request("The 'path' query parameter is too long or holds a NUL character.", "path")
        return path

    def ident(self, name: str) -> str:
        """A path id (sandbox, snapshot, image), checked: 400 when it cannot be an id."""
        value = self.params[name]
        if not _ID.fullmatch(value) or ".." in value:
            raise bad_request(
                f"'{value[:80]}' is not a valid {name.replace('_', ' ')} (letters, digits, '.', '_', '-').",
                name,
                code="InvalidIdentifier",
            )
        return value

    def sandbox(self) -> LocalSandbox:
        """The live sandbox the path names (404 when it does not exist in this group)."""
        sandbox_id = self.ident("sandbox_id")
        try:
            return self.runtime.sandbox(self.group.runtime_id, sandbox_id)
        except SandboxError as exc:
            raise wire_error(exc) from exc

    async def json(self, *, required: bool = True) -> Any:
        """The JSON body (None when empty and not ``required``); 413 above the cap, 400 when not JSON."""
        raw = await read_capped_body(self.request, MAX_JSON_BODY_BYTES, _too_large)
        if not raw.strip():
            if required:
                raise bad_request("The request body is empty; send JSON.", "body")
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise bad_request(f"The request body is not valid JSON: {str(exc)[:200]}", "body") from exc


def _too_large() -> WireError:
    return WireError(
        413,
        "RequestBodyTooLarge",
        f"The request body is larger than {MAX_JSON_BODY_BYTES} bytes.",
        target="body",
    )


def runtime_call(call: Callable[[], Any]) -> Any:
    """Run a synchronous runtime call, turning its errors into HTTP refusals."""
    try:
        return call()
    except SandboxError as exc:
        raise wire_error(exc) from exc


async def runtime_await(work: Awaitable[Any]) -> Any:
    """Await a runtime call, turning its errors into HTTP refusals."""
    try:
        return await work
    except SandboxError as exc:
        raise wire_error(exc) from exc

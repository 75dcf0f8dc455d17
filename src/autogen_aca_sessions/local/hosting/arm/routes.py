"""The management-plane HTTP routes: ``Microsoft.App/sessionPools`` as ARM serves it.

::

    GET                  /subscriptions/{sub}/providers/Microsoft.App/sessionPools
    GET                  /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/sessionPools
    GET|PUT|PATCH|DELETE /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/sessionPools/{name}
    POST                 .../sessionPools/{name}/fetchMcpServerCredentials | rotateMcpServerCredentials
                         | regenerateCredentials (any case; the MCP api-versions only)
    GET                  /subscriptions/{sub}/providers/Microsoft.App/locations/{loc}/operationStatuses/{id}
    GET                  /subscriptions/{sub}/providers/Microsoft.App/locations/{loc}/operationResults/{id}

Refusals, in order: 401 (key), 404 (no such route), 400 (api-version missing or unknown),
405 (method), 400 (path names, then body), 404 (no such pool), 409 (an operation is running on
the pool). Every one has ARM's error body.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ...frontends.urls import request_url
from .errors import ArmError
from .model import ResourceKey, name_problem, resource_group_problem, subscription_problem
from .operations import Operation, OperationKind, OperationStatus
from .shapes import read_patch, read_put, render_pool
from .versions import ARM_API_VERSIONS, ArmApiVersion, lookup_arm_version

if TYPE_CHECKING:
    from ..server import LocalSessionsServer

__all__ = ["MAX_ARM_BODY_BYTES", "ManagementRoutes", "is_management_path"]

MAX_ARM_BODY_BYTES = 4 * 1024 * 1024
"""Largest management request body (ARM's own limit is about 4 MB); above it 413."""

_MCP_FETCH = "fetchmcpservercredentials"
_MCP_ROTATE = ("rotatemcpservercredentials", "regeneratecredentials")


def is_management_path(segments: Sequence[str]) -> bool:
    """Whether a path (split on ``/``) is under ``/subscriptions/{sub}[/resourceGroups/{rg}]/providers``."""
    folded = [s.lower() for s in segments]
    if len(folded) < 3 or folded[0] != "subscriptions":
        return False
    return folded[2] == "providers" or (
        len(folded) >= 5 and folded[2] == "resourcegroups" and folded[4] == "providers"
    )


@dataclass(frozen=True)
class _Target:
    """What a management path names."""

    kind: str
    """``list-sub``, ``list-rg``, ``pool``, ``action``, ``op-status`` or ``op-result``."""
    subscription: str
    resource_group: str | None = None
    name: str | None = None
    action: str | None = None
    operation_id: str | None = None


def _not_found(path: str) -> ArmError:
    return ArmError(
        404,
        "InvalidResourceType",
        f"There is no management operation at '{path}'. This server serves Microsoft.App/sessionPools "
        "(and the operation URLs it hands out).",
        target="path",
    )


def _parse_target(path: str, segments: list[str]) -> _Target:
    f = [s.lower() for s in segments]
    sub = segments[1]
    if f[2] == "providers":
        if f[3:] == ["microsoft.app", "sessionpools"]:
            return _Target("list-sub", sub)
        if (
            len(f) == 8
            and f[3:5] == ["microsoft.app", "locations"]
            and f[6] in ("operationstatuses", "operationresults")
        ):
            kind = "op-status" if f[6] == "operationstatuses" else "op-result"
            return _Target(kind, sub, operation_id=segments[7])
        raise _not_found(path)
    rg = segments[3]
    if f[5:7] != ["microsoft.app", "sessionpools"]:
        raise _not_found(path)
    rest = segments[7:]
    if not rest:
        return _Target("list-rg", sub, rg)
    if len(rest) == 1:
        return _Target("pool", sub, rg, rest[0])
    if len(rest) == 2 and rest[1].lower() in (_MCP_FETCH, *_MCP_ROTATE):
        return _Target("action", sub, rg, rest[0], action=rest[1].lower())
    raise _not_found(path)


_METHODS = {
    "list-sub": ("GET",),
    "list-rg": ("GET",),
    "pool": ("GET", "PUT", "PATCH", "DELETE"),
    "action": ("POST",),
    "op-status": ("GET",),
    "op-result": ("GET",),
}


def _version(request: web.Request) -> ArmApiVersion:
    raw = request.query.get("api-version")
    supported = ", ".join(ARM_API_VERSIONS)
    if raw is None or not raw.strip():
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests. "
            f"Supported: {supported}.",
            target="api-version",
        )
    version = lookup_arm_version(raw)
    if version is None:
        raise ArmError(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for api version '{raw}' and resource type "
            f"'sessionPools'. The supported api-versions are '{supported}'.",
            target="api-version",
        )
    return version


def _check_names(target: _Target) -> ResourceKey | None:
    checks = (
        (
            target.subscription,
            subscription_problem,
            "InvalidSubscriptionId",
            "subscription id",
            "subscriptionId",
        ),
        (
            target.resource_group,
            resource_group_problem,
            "InvalidResourceGroupName",
            "resource group name",
            "resourceGroupName",
        ),
        (target.name, name_problem, "InvalidSessionPoolName", "session pool name", "sessionPoolName"),
    )
    problems = [
        ArmError(400, code, f"The {what} '{value}' {problem}.", target=field)
        for value, check, code, what, field in checks
        if value is not None and (problem := check(value)) is not None
    ]
    if problems:
        raise problems[0]
    if target.resource_group is None or target.name is None:
        return None
    return ResourceKey(target.subscription, target.resource_group, target.name)


async def _read_json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_ARM_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_ARM_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ArmError(
            400,
            "InvalidRequestContent",
            "The request body is empty; send the session pool as JSON.",
            target="body",
        )
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ArmError(
            400,
            "InvalidRequestContent",
            f"The request body is not valid JSON: {str(exc)[:200]}",
            target="body",
        ) from exc


def _too_large() -> ArmError:
    return ArmError(
        413,
        "RequestBodyTooLarge",
        f"The request body is larger than the management plane's limit of {MAX_ARM_BODY_BYTES} bytes.",
        target="body",
    )


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


class ManagementRoutes:
    """Serves management requests against a server's pools."""

    def __init__(self, server: LocalSessionsServer, *, retry_after_seconds: int, page_size: int) -> None:
        self._server = server
        self._retry_after = str(retry_after_seconds)
        self._page_size = page_size

    async def handle(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        """Serve one (already authenticated) management request."""
        target = _parse_target(request.path, segments)
        version = _version(request)
        allowed = _METHODS[target.kind]
        if request.method not in allowed:
            raise ArmError(
                405,
                "MethodNotAllowed",
                f"'{request.path}' does not accept {request.method}; allowed: {', '.join(allowed)}.",
                target="method",
                headers={"Allow": ", ".join(allowed)},
            )
        key = _check_names(target)
        response: web.StreamResponse
        if target.kind in ("list-sub", "list-rg"):
            response = self._list(request, target, version)
        elif target.kind in ("op-status", "op-result"):
            response = self._operation(request, target, version)
        elif target.kind == "action":
            assert key is not None
            response = self._mcp_action(target, key, version)
        else:
            assert key is not None
            response = await self._pool(request, key, version)
        response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        client_id = request.headers.get("x-ms-client-request-id")
        if (
            client_id is not None
            and len(client_id) <= 200
            and client_id.isascii()
            and client_id.isprintable()
        ):
            response.headers.setdefault("x-ms-client-request-id", client_id)
        return response

    # ------------------------------------------------------------------ helpers

    def _origin(self, request: web.Request) -> str:
        return str(request_url(request, self._server.base_url).origin())

    def _operation_url(
        self, request: web.Request, operation: Operation, collection: str, version: ArmApiVersion
    ) -> str:
        return f"{self._origin(request)}{operation.path(collection)}?api-version={version.name}"

    def _not_found(self, key: ResourceKey) -> ArmError:
        return ArmError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.App/sessionPools/{key.name}' under resource group "
            f"'{key.resource_group}' was not found.",
            target="sessionPoolName",
        )

    # ------------------------------------------------------------------ pools

    async def _pool(
        self, request: web.Request, key: ResourceKey, version: ArmApiVersion
    ) -> web.StreamResponse:
        server = self._server
        pool = server.find_pool(key)
        if request.method == "GET":
            if pool is None:
                raise self._not_found(key)
            return _json(render_pool(pool.resource(), version))
        if request.method == "DELETE":
            if pool is None:
                return web.Response(status=204)
            operation = server.begin_delete(pool)
            location = self._operation_url(request, operation, "operationResults", version)
            return web.Response(status=202, headers={"Location": location, "Retry-After": self._retry_after})
        body = await _read_json(request)
        if request.method == "PUT":
            settings = read_put(body)
            created = pool is None
            pool, operation = await server.begin_create_or_replace(key, settings)
            headers = {
                "Azure-AsyncOperation": self._operation_url(request, operation, "operationStatuses", version),
                "Retry-After": self._retry_after,
            }
            return _json(render_pool(pool.resource(), version), 201 if created else 200, headers)
        if pool is None:
            raise self._not_found(key)
        settings = read_patch(body, pool.settings)
        operation = await server.begin_update(pool, settings)
        headers = {
            "Azure-AsyncOperation": self._operation_url(request, operation, "operationStatuses", version),
            "Location": self._operation_url(request, operation, "operationResults", version),
            "Retry-After": self._retry_after,
        }
        return web.Response(status=202, headers=headers)

    def _list(self, request: web.Request, target: _Target, version: ArmApiVersion) -> web.StreamResponse:
        pools = self._server.list_pools(
            subscription=target.subscription, resource_group=target.resource_group
        )
        raw_skip = request.query.get("$skipToken", request.query.get("$skiptoken", "0"))
        if not (raw_skip.isascii() and raw_skip.isdigit()) or len(raw_skip) > 9:  # "²" is a digit to str
            raise ArmError(
                400,
                "InvalidSkipToken",
                f"The $skipToken {raw_skip!r} is not one this server issued.",
                target="$skipToken",
            )
        skip = int(raw_skip)
        page = pools[skip : skip + self._page_size]
        next_link = None
        if skip + self._page_size < len(pools):
            next_link = str(
                request_url(request, self._server.base_url).with_query(
                    {"api-version": version.name, "$skipToken": str(skip + self._page_size)}
                )
            )
        return _json({"value": [render_pool(p.resource(), version) for p in page], "nextLink": next_link})

    def _mcp_action(self, target: _Target, key: ResourceKey, version: ArmApiVersion) -> web.StreamResponse:
        if not version.mcp:
            with_mcp = ", ".join(v.name for v in ARM_API_VERSIONS.values() if v.mcp)
            raise ArmError(
                400,
                "UnsupportedApiVersionForAction",
                f"The MCP credential actions exist in api-versions {with_mcp}, not {version.name}.",
                target="api-version",
            )
        pool = self._server.find_pool(key)
        if pool is None:
            raise self._not_found(key)
        if not pool.settings.mcp_enabled:
            raise ArmError(
                400,
                "SessionMCPServerNotEnabled",
                f"The MCP server of session pool '{key.name}' is not enabled; set "
                "properties.mcpServerSettings.isMcpServerEnabled to true first.",
                target="mcpServerSettings",
            )
        key_value = pool.mcp_api_key if target.action == _MCP_FETCH else self._server.rotate_mcp_key(pool)
        return _json({"apiKey": key_value})

    # ------------------------------------------------------------------ operations

    def _operation(self, request: web.Request, target: _Target, version: ArmApiVersion) -> web.StreamResponse:
        assert target.operation_id is not None
        operation = self._server.operations.get(target.subscription, target.operation_id)
        if operation is None:
            raise ArmError(
                404,
                "OperationNotFound",
                f"There is no operation '{target.operation_id}' in subscription '{target.subscription}'.",
                target="operationId",
            )
        if target.kind == "op-status":
            headers = {} if operation.done else {"Retry-After": self._retry_after}
            return _json(operation.status_body(), 200, headers)
        if not operation.done:
            return web.Response(
                status=202,
                headers={
                    "Location": self._operation_url(request, operation, "operationResults", version),
                    "Retry-After": self._retry_after,
                },
            )
        if operation.status is OperationStatus.FAILED and operation.error is not None:
            raise operation.error
        pool = self._server.find_pool(operation.key)
        if operation.kind is OperationKind.DELETE or pool is None:
            return web.Response(status=204)
        return _json(render_pool(pool.resource(), version))

"""The management-plane HTTP routes: ``Microsoft.App`` resources as ARM serves them.

::

    GET                  /subscriptions/{sub}/providers/Microsoft.App/sessionPools
    GET                  /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/sessionPools
    GET|PUT|PATCH|DELETE /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/sessionPools/{name}
    POST                 .../sessionPools/{name}/fetchMcpServerCredentials | rotateMcpServerCredentials
                         | regenerateCredentials (any case; the MCP api-versions only)
    GET                  /subscriptions/{sub}/providers/Microsoft.App/locations/{loc}/operationStatuses/{id}
    GET                  /subscriptions/{sub}/providers/Microsoft.App/locations/{loc}/operationResults/{id}

:func:`~.paths.parse_arm_path` says what a path names; :class:`ManagementRoutes` looks its
resource type up in a table (``sessionpools`` -> :class:`SessionPoolRoutes`), so another resource
type is one more :class:`ResourceRoutes` in that table.

Refusals, in order: 401 (key), 404 (no such route), 400 (api-version missing or unknown),
405 (method), 400 (path names, then body), 404 (no such pool), 409 (an operation is running on
the pool). Every one has ARM's error body.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, Protocol

from aiohttp import web

from .errors import ArmError
from .model import ResourceKey, name_problem
from .operations import ArmOperation, ArmOperationKind, ArmOperationStatus
from .paths import ArmPath, ArmTarget, parse_arm_path, unknown_path
from .registry import P, PoolRegistry
from .requests import (
    MAX_ARM_BODY_BYTES,
    ResourceNaming,
    check_method,
    check_names,
    json_response,
    list_page,
    read_json_body,
    require_version,
)
from .shapes import read_patch, read_put, render_pool
from .versions import ARM_API_VERSIONS, ArmApiVersion, lookup_arm_version

__all__ = ["MAX_ARM_BODY_BYTES", "SESSION_POOLS", "ManagementRoutes", "ResourceRoutes", "SessionPoolRoutes"]

SESSION_POOLS = "sessionpools"
"""The ``sessionPools`` resource type, folded as :class:`~.paths.ArmPath` holds it."""


_MCP_FETCH = "fetchmcpservercredentials"
_MCP_ROTATE = frozenset({"rotatemcpservercredentials", "regeneratecredentials"})

_METHODS: dict[ArmTarget, tuple[str, ...]] = {
    ArmTarget.SUBSCRIPTION_LIST: ("GET",),
    ArmTarget.RESOURCE_GROUP_LIST: ("GET",),
    ArmTarget.RESOURCE: ("GET", "PUT", "PATCH", "DELETE"),
    ArmTarget.ACTION: ("POST",),
    ArmTarget.OPERATION_STATUS: ("GET",),
    ArmTarget.OPERATION_RESULT: ("GET",),
}
"""The methods each kind of path accepts (any other is 405 with ``Allow``)."""


_NAMING = ResourceNaming(
    type_name="sessionPools",
    what="session pool",
    name_problem=name_problem,
    invalid_name_code="InvalidSessionPoolName",
    name_target="sessionPoolName",
)
"""How session pools are named in paths and errors."""


def _version(request: web.Request) -> ArmApiVersion:
    return require_version(request, "sessionPools", list(ARM_API_VERSIONS), lookup_arm_version)


def _check_method(request: web.Request, target: ArmTarget) -> None:
    check_method(request, _METHODS[target])


def _check_names(path: ArmPath) -> ResourceKey | None:
    return check_names(_NAMING, path.subscription, path.resource_group, path.name)


def _safe_header_value(value: str) -> bool:
    """Whether ``value`` may be sent back in a header as is (printable ASCII, not too long)."""
    return len(value) <= 200 and value.isascii() and value.isprintable()


_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
"""A ``Host`` header naming a DNS name, an IPv4 address or a bracketed IPv6 address, with an
optional port: one a client can follow back. ``a b`` or ``[zz]`` is printable ASCII, but no host."""


class ResourceRoutes(Protocol):
    """The routes of one resource type under ``Microsoft.App`` (one entry of the routes table)."""

    async def serve(self, request: web.Request, path: ArmPath, links: OperationLinks) -> web.StreamResponse:
        """Serve a list, resource or action path of this type (already authenticated)."""
        ...

    def version_name(self, request: web.Request) -> str:
        """The api-version the request names, checked against this type's versions (raises
        :class:`ArmError` 400 for one this type does not serve)."""
        ...

    def result(self, request: web.Request, operation: ArmOperation) -> web.StreamResponse:
        """The result of a finished, successful operation on a resource of this type."""
        ...


class OperationLinks:
    """Builds the ``Azure-AsyncOperation`` and ``Location`` URLs of operations, ASCII only."""

    def __init__(self, request: web.Request, fallback_origin: Callable[[], str], retry_after: str) -> None:
        self._request = request
        self._fallback = fallback_origin
        self.retry_after = retry_after
        """The ``Retry-After`` of long-running operations."""

    def origin(self) -> str:
        """``scheme://host:port`` the client reached; the server's own when the ``Host`` header
        is not one a header may carry back (headers stay ASCII)."""
        if _HOST.fullmatch(self._request.host) is None:
            return self._fallback()
        try:
            origin = str(self._request.url.origin())
        except (ValueError, UnicodeError):
            return self._fallback()
        return origin if _safe_header_value(origin) else self._fallback()

    def url(self, operation: ArmOperation, collection: str, version: str) -> str:
        """The operation's URL in ``collection`` (``operationStatuses`` or ``operationResults``),
        with the api-version named ``version``."""
        return f"{self.origin()}{operation.path(collection)}?api-version={version}"

    def operation_headers(
        self, operation: ArmOperation, version: str, *, with_location: bool = False
    ) -> dict[str, str]:
        """The headers of a response to a PUT or PATCH that began ``operation``: its status URL
        (``Azure-AsyncOperation``), with ``with_location`` its result URL too, and ``Retry-After``."""
        headers = {"Azure-AsyncOperation": self.url(operation, "operationStatuses", version)}
        if with_location:
            headers["Location"] = self.url(operation, "operationResults", version)
        headers["Retry-After"] = self.retry_after
        return headers

    def deleting(self, operation: ArmOperation, version: str) -> web.Response:
        """202 to a DELETE that began ``operation``: its result URL (``Location``) and ``Retry-After``."""
        location = self.url(operation, "operationResults", version)
        return web.Response(status=202, headers={"Location": location, "Retry-After": self.retry_after})


_TargetHandler = Callable[
    [web.Request, ArmPath, "OperationLinks", ArmApiVersion], Awaitable[web.StreamResponse]
]
"""Serves one kind of path of a resource type."""


class SessionPoolRoutes(Generic[P]):
    """``Microsoft.App/sessionPools`` against a :class:`~.registry.PoolRegistry`."""

    def __init__(self, registry: PoolRegistry[P], *, page_size: int) -> None:
        self._registry = registry
        self._page_size = page_size
        self._targets: Mapping[ArmTarget, _TargetHandler] = {
            ArmTarget.SUBSCRIPTION_LIST: self._list,
            ArmTarget.RESOURCE_GROUP_LIST: self._list,
            ArmTarget.RESOURCE: self._pool,
            ArmTarget.ACTION: self._mcp_action,
        }

    def version_name(self, request: web.Request) -> str:
        return _version(request).name

    async def serve(self, request: web.Request, path: ArmPath, links: OperationLinks) -> web.StreamResponse:
        if path.target is ArmTarget.ACTION and path.action != _MCP_FETCH and path.action not in _MCP_ROTATE:
            raise unknown_path(request.path)
        version = _version(request)
        _check_method(request, path.target)
        return await self._targets[path.target](request, path, links, version)

    def result(self, request: web.Request, operation: ArmOperation) -> web.StreamResponse:
        version = _version(request)
        pool = self._registry.find_pool(operation.key)
        if operation.kind is ArmOperationKind.DELETE or pool is None:
            return web.Response(status=204)
        return json_response(render_pool(pool.resource(), version))

    # ------------------------------------------------------------------ helpers

    def _existing(self, key: ResourceKey) -> P:
        pool = self._registry.find_pool(key)
        if pool is None:
            raise _NAMING.not_found(key)
        return pool

    # ------------------------------------------------------------------ pools

    async def _pool(
        self, request: web.Request, path: ArmPath, links: OperationLinks, version: ArmApiVersion
    ) -> web.StreamResponse:
        key = _check_names(path)
        assert key is not None  # a RESOURCE path names a group and a pool
        registry = self._registry
        pool = registry.find_pool(key)
        if request.method == "GET":
            return json_response(render_pool(self._existing(key).resource(), version))
        if request.method == "DELETE":
            if pool is None:
                return web.Response(status=204)
            return links.deleting(registry.begin_delete(pool), version.name)
        body = await read_json_body(request, "the session pool")
        if request.method == "PUT":
            settings = read_put(body)
            created = pool is None
            pool, operation = await registry.begin_create_or_replace(key, settings)
            headers = links.operation_headers(operation, version.name)
            return json_response(render_pool(pool.resource(), version), 201 if created else 200, headers)
        pool = self._existing(key)
        settings = read_patch(body, pool.settings)
        operation = await registry.begin_update(pool, settings)
        return web.Response(
            status=202, headers=links.operation_headers(operation, version.name, with_location=True)
        )

    async def _list(
        self, request: web.Request, path: ArmPath, links: OperationLinks, version: ArmApiVersion
    ) -> web.StreamResponse:
        _check_names(path)
        pools = self._registry.list_pools(subscription=path.subscription, resource_group=path.resource_group)
        return list_page(
            request,
            pools,
            page_size=self._page_size,
            origin=links.origin(),
            version_name=version.name,
            render=lambda p: render_pool(p.resource(), version),
        )

    async def _mcp_action(
        self, request: web.Request, path: ArmPath, links: OperationLinks, version: ArmApiVersion
    ) -> web.StreamResponse:
        key = _check_names(path)
        assert key is not None  # an ACTION path names a group and a pool
        if not version.mcp:
            with_mcp = ", ".join(v.name for v in ARM_API_VERSIONS.values() if v.mcp)
            raise ArmError(
                400,
                "UnsupportedApiVersionForAction",
                f"The MCP credential actions exist in api-versions {with_mcp}, not {version.name}.",
                target="api-version",
            )
        pool = self._existing(key)
        if not pool.settings.mcp_enabled:
            raise ArmError(
                400,
                "SessionMCPServerNotEnabled",
                f"The MCP server of session pool '{key.name}' is not enabled; set "
                "properties.mcpServerSettings.isMcpServerEnabled to true first.",
                target="mcpServerSettings",
            )
        key_value = pool.mcp_api_key if path.action == _MCP_FETCH else pool.rotate_mcp_api_key()
        return json_response({"apiKey": key_value})


class ManagementRoutes(Generic[P]):
    """Serves management requests: operation URLs itself, everything else through the table of
    resource types."""

    def __init__(
        self,
        registry: PoolRegistry[P],
        *,
        retry_after_seconds: int,
        page_size: int,
        origin: Callable[[], str],
    ) -> None:
        """``origin`` gives the server's own ``scheme://host:port``, used in operation URLs when
        the request's ``Host`` cannot be echoed."""
        self._registry = registry
        self._retry_after = str(retry_after_seconds)
        self._origin = origin
        self.resource_types: dict[str, ResourceRoutes] = {
            SESSION_POOLS: SessionPoolRoutes[P](registry, page_size=page_size)
        }
        """Resource types served, keyed by their folded name (``sessionpools``)."""

    def parse(self, path: str, segments: list[str]) -> ArmPath | None:
        """What a path names at the management plane; None for a data-plane path."""
        return parse_arm_path(path, segments)

    async def handle(self, request: web.Request, path: ArmPath) -> web.StreamResponse:
        """Serve one (already authenticated) management request."""
        links = OperationLinks(request, self._origin, self._retry_after)
        response: web.StreamResponse
        if path.target in (ArmTarget.OPERATION_STATUS, ArmTarget.OPERATION_RESULT):
            response = self._operation(request, path, links)
        else:
            routes = self.resource_types.get(path.resource_type or "")
            if routes is None:
                raise unknown_path(request.path)
            response = await routes.serve(request, path, links)
        response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        client_id = request.headers.get("x-ms-client-request-id")
        if client_id is not None and _safe_header_value(client_id):
            response.headers.setdefault("x-ms-client-request-id", client_id)
        return response

    def _operation(self, request: web.Request, path: ArmPath, links: OperationLinks) -> web.StreamResponse:
        # Operation URLs carry the api-version of the resource type that handed them out: any
        # type's version is accepted here (the session pools' refusal when none knows it).
        version = self._operation_version(request)
        _check_method(request, path.target)
        _check_names(path)
        assert path.operation_id is not None  # an operation path ends in its id
        operation = self._registry.operations.get(path.subscription, path.operation_id)
        if operation is None:
            raise ArmError(
                404,
                "OperationNotFound",
                f"There is no operation '{path.operation_id}' in subscription '{path.subscription}'.",
                target="operationId",
            )
        if path.target is ArmTarget.OPERATION_STATUS:
            headers = {} if operation.done else {"Retry-After": self._retry_after}
            return json_response(operation.status_body(), 200, headers)
        if not operation.done:
            return web.Response(
                status=202,
                headers={
                    "Location": links.url(operation, "operationResults", version),
                    "Retry-After": self._retry_after,
                },
            )
        if operation.status is ArmOperationStatus.FAILED and operation.error is not None:
            raise operation.error
        return self.resource_types[operation.resource_type].result(request, operation)

    def _operation_version(self, request: web.Request) -> str:
        first_refusal: ArmError | None = None
        for routes in self.resource_types.values():
            try:
                return routes.version_name(request)
            except ArmError as refusal:
                first_refusal = first_refusal or refusal
        assert first_refusal is not None  # the table always holds session pools
        raise first_refusal

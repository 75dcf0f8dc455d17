"""The management-plane HTTP routes of ``Microsoft.App/sandboxGroups``.

::

    GET                  /subscriptions/{sub}/providers/Microsoft.App/sandboxGroups
    GET                  /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/sandboxGroups
    GET|PUT|PATCH|DELETE /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/sandboxGroups/{name}

Long-running operations as for session pools: PUT answers 201/200 with the group and an
``Azure-AsyncOperation`` URL (the server's operation-status route serves it), PATCH 200 with
the group and that header (the SDK's ``patch_group_identity`` parses the body), DELETE 202 with
``Location`` (the group's sandboxes are deleted first; the result URL then answers 204).

Refusals, in order: 401 (key, by the server), 404 (no such route), 400 (api-version), 405
(method), 400 (names, then body), 404 (no such group), 409 (an operation is running on it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from ..model import ResourceKey
from ..operations import ArmOperation, ArmOperationKind
from ..paths import ArmPath, ArmTarget, unknown_path
from ..requests import (
    ResourceNaming,
    check_method,
    check_names,
    json_response,
    list_page,
    read_json_body,
    require_version,
)
from ..routes import OperationLinks
from .model import (
    SandboxGroupApiVersion,
    group_name_problem,
    lookup_group_version,
    read_group_patch,
    read_group_put,
)

if TYPE_CHECKING:
    from ...sandbox_groups import SandboxGroupHost

__all__ = ["SANDBOX_GROUPS", "SandboxGroupRoutes", "is_sandbox_group_path"]

SANDBOX_GROUPS = "sandboxgroups"
"""The folded resource type (its key in ``ManagementRoutes.resource_types``)."""

_PROVIDER = ["microsoft.app", "sandboxgroups"]


def is_sandbox_group_path(segments: Sequence[str]) -> bool:
    """Whether a management path (split on ``/``) names ``Microsoft.App/sandboxGroups``."""
    f = [s.lower() for s in segments]
    if len(f) >= 5 and f[0] == "subscriptions" and f[2] == "providers":
        return f[3:5] == _PROVIDER
    return (
        len(f) >= 7
        and f[0] == "subscriptions"
        and f[2] == "resourcegroups"
        and f[4:7] == ["providers", *_PROVIDER]
    )


_NAMING = ResourceNaming(
    type_name="sandboxGroups",
    what="sandbox group",
    name_problem=group_name_problem,
    invalid_name_code="InvalidSandboxGroupName",
    name_target="sandboxGroupName",
)
"""How sandbox groups are named in paths and errors."""


def _version(request: web.Request) -> SandboxGroupApiVersion:
    supported = [v.value for v in SandboxGroupApiVersion]
    return require_version(request, "sandboxGroups", supported, lookup_group_version)


class SandboxGroupRoutes:
    """``Microsoft.App/sandboxGroups``: one entry of ``ManagementRoutes.resource_types``.

    ``open_host`` gives the server's :class:`SandboxGroupHost`, opening the Sandboxes runtime on
    first use (a server that never hosts a sandbox pays nothing for it); it raises
    :class:`ArmError` when this machine cannot run sandboxes."""

    def __init__(self, open_host: Callable[[], Awaitable[SandboxGroupHost]], *, page_size: int) -> None:
        self._open_host = open_host
        self._host: SandboxGroupHost | None = None
        self._page_size = page_size

    def version_name(self, request: web.Request) -> str:
        return _version(request).value

    async def serve(self, request: web.Request, path: ArmPath, links: OperationLinks) -> web.StreamResponse:
        if path.target is ArmTarget.ACTION:
            raise unknown_path(request.path)
        version = _version(request)
        allowed = ("GET",) if path.target is not ArmTarget.RESOURCE else ("GET", "PUT", "PATCH", "DELETE")
        check_method(request, allowed)
        key = check_names(_NAMING, path.subscription, path.resource_group, path.name)
        self._host = host = await self._open_host()
        if key is None:
            return self._list(request, host, path, links, version)
        return await self._group(request, host, key, links, version)

    def result(self, request: web.Request, operation: ArmOperation) -> web.StreamResponse:
        _version(request)
        group = self._host.find(operation.key) if self._host is not None else None
        if operation.kind is ArmOperationKind.DELETE or group is None or self._host is None:
            return web.Response(status=204)
        return json_response(self._host.render(group))

    async def _group(
        self,
        request: web.Request,
        host: SandboxGroupHost,
        key: ResourceKey,
        links: OperationLinks,
        version: SandboxGroupApiVersion,
    ) -> web.Response:
        group = host.find(key)
        if request.method == "GET":
            if group is None:
                raise _NAMING.not_found(key)
            return json_response(host.render(group))
        if request.method == "DELETE":
            if group is None:
                return web.Response(status=204)
            return links.deleting(host.begin_delete(group), version.value)
        body = await read_json_body(request, "the sandbox group")
        if request.method == "PUT":
            settings = read_group_put(body)
            group, operation, created = await host.create_or_replace(key, settings)
        else:
            if group is None:
                raise _NAMING.not_found(key)
            group, operation = await host.update(group, read_group_patch(body, group.resource.settings))
            created = False
        headers = links.operation_headers(operation, version.value)
        return json_response(host.render(group), 201 if created else 200, headers)

    def _list(
        self,
        request: web.Request,
        host: SandboxGroupHost,
        path: ArmPath,
        links: OperationLinks,
        version: SandboxGroupApiVersion,
    ) -> web.Response:
        groups = host.list(subscription=path.subscription, resource_group=path.resource_group)
        return list_page(
            request,
            groups,
            page_size=self._page_size,
            origin=links.origin(),
            version_name=version.value,
            render=host.render,
        )

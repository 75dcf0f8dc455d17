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

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from yarl import URL

from ..errors import ArmError
from ..model import ResourceKey, resource_group_problem, subscription_problem
from ..operations import ArmOperation, ArmOperationKind
from ..paths import ArmPath, ArmTarget, unknown_path
from ..routes import MAX_ARM_BODY_BYTES, OperationLinks
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


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _version(request: web.Request) -> SandboxGroupApiVersion:
    raw = request.query.get("api-version")
    supported = ", ".join(v.value for v in SandboxGroupApiVersion)
    if raw is None or not raw.strip():
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests. "
            f"Supported: {supported}.",
            target="api-version",
        )
    version = lookup_group_version(raw)
    if version is None:
        raise ArmError(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for api version '{raw[:64]}' and resource type "
            f"'sandboxGroups'. The supported api-versions are '{supported}'.",
            target="api-version",
        )
    return version


async def _read_json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_ARM_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > MAX_ARM_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ArmError(
            400,
            "InvalidRequestContent",
            "The request body is empty; send the sandbox group as JSON.",
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
        if request.method not in allowed:
            raise ArmError(
                405,
                "MethodNotAllowed",
                f"'{request.path[:200]}' does not accept {request.method}; allowed: {', '.join(allowed)}.",
                target="method",
                headers={"Allow": ", ".join(allowed)},
            )
        self._check_names(path.subscription, path.resource_group, path.name)
        self._host = host = await self._open_host()
        if path.target is not ArmTarget.RESOURCE:
            return self._list(request, host, path, links, version)
        assert path.resource_group is not None
        assert path.name is not None
        return await self._group(
            request, host, ResourceKey(path.subscription, path.resource_group, path.name), links, version
        )

    def result(self, request: web.Request, operation: ArmOperation) -> web.StreamResponse:
        _version(request)
        group = self._host.find(operation.key) if self._host is not None else None
        if operation.kind is ArmOperationKind.DELETE or group is None or self._host is None:
            return web.Response(status=204)
        return _json(self._host.render(group))

    @staticmethod
    def _check_names(sub: str, rg: str | None, name: str | None) -> None:
        checks = (
            (sub, subscription_problem, "InvalidSubscriptionId", "subscription id", "subscriptionId"),
            (
                rg,
                resource_group_problem,
                "InvalidResourceGroupName",
                "resource group name",
                "resourceGroupName",
            ),
            (name, group_name_problem, "InvalidSandboxGroupName", "sandbox group name", "sandboxGroupName"),
        )
        for value, check, code, what, target in checks:
            if value is not None and (problem := check(value)) is not None:
                raise ArmError(400, code, f"The {what} '{value[:100]}' {problem}.", target=target)

    def _not_found(self, key: ResourceKey) -> ArmError:
        return ArmError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.App/sandboxGroups/{key.name}' under resource group "
            f"'{key.resource_group}' was not found.",
            target="sandboxGroupName",
        )

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
                raise self._not_found(key)
            return _json(host.render(group))
        if request.method == "DELETE":
            if group is None:
                return web.Response(status=204)
            operation = host.begin_delete(group)
            location = links.url(operation, "operationResults", version.value)
            return web.Response(status=202, headers={"Location": location, "Retry-After": links.retry_after})
        body = await _read_json(request)
        if request.method == "PUT":
            settings = read_group_put(body)
            group, operation, created = await host.create_or_replace(key, settings)
        else:
            if group is None:
                raise self._not_found(key)
            group, operation = await host.update(group, read_group_patch(body, group.resource.settings))
            created = False
        headers = {
            "Azure-AsyncOperation": links.url(operation, "operationStatuses", version.value),
            "Retry-After": links.retry_after,
        }
        return _json(host.render(group), 201 if created else 200, headers)

    def _list(
        self,
        request: web.Request,
        host: SandboxGroupHost,
        path: ArmPath,
        links: OperationLinks,
        version: SandboxGroupApiVersion,
    ) -> web.Response:
        groups = host.list(subscription=path.subscription, resource_group=path.resource_group)
        raw_skip = request.query.get("$skipToken", request.query.get("$skiptoken", "0"))
        if not (raw_skip.isascii() and raw_skip.isdigit()) or len(raw_skip) > 9:
            raise ArmError(
                400,
                "InvalidSkipToken",
                f"The $skipToken {raw_skip[:40]!r} is not one this server issued.",
                target="$skipToken",
            )
        skip = int(raw_skip)
        page = groups[skip : skip + self._page_size]
        next_link = None
        if skip + self._page_size < len(groups):
            next_link = str(
                URL(links.origin())
                .with_path(request.path)
                .with_query({"api-version": version.value, "$skipToken": str(skip + self._page_size)})
            )
        return _json({"value": [host.render(g) for g in page], "nextLink": next_link})

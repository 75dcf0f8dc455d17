"""What the routes of every ``Microsoft.App`` resource type check in a request, and how they
answer: the api-version, the method, the names in the path, the JSON body (size-capped), the
404 of a missing resource and the JSON response. ``sessionPools`` (``routes.py``) and
``sandboxGroups`` (``sandbox_groups/routes.py``) differ only in the :class:`ResourceNaming`
and the versions they pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from yarl import URL

from ...frontends.bodies import read_capped_body
from .errors import ArmError
from .model import ResourceKey, resource_group_problem, subscription_problem

__all__ = [
    "MAX_ARM_BODY_BYTES",
    "ResourceNaming",
    "check_method",
    "check_names",
    "json_response",
    "list_page",
    "read_json_body",
    "require_version",
]

MAX_ARM_BODY_BYTES = 4 * 1024 * 1024
"""Largest management request body (ARM's own limit is about 4 MB); above it 413."""

T = TypeVar("T")
V = TypeVar("V")


@dataclass(frozen=True)
class ResourceNaming:
    """How a resource type is named in paths, messages and error targets."""

    type_name: str
    """The type as ARM spells it (``sessionPools``)."""
    what: str
    """One resource in words (``session pool``)."""
    name_problem: Callable[[str], str | None]
    """What is wrong with a resource name (None when it is valid)."""
    invalid_name_code: str
    """The error code of a bad name (``InvalidSessionPoolName``)."""
    name_target: str
    """The error target of the name (``sessionPoolName``)."""

    def not_found(self, key: ResourceKey) -> ArmError:
        """ARM's 404 for a resource that does not exist."""
        return ArmError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.App/{self.type_name}/{key.name}' under resource group "
            f"'{key.resource_group}' was not found.",
            target=self.name_target,
        )


def require_version(
    request: web.Request, type_name: str, supported: Sequence[str], lookup: Callable[[str], V | None]
) -> V:
    """The api-version the request names, as ``lookup`` finds it among ``supported``: 400
    ``MissingApiVersionParameter`` without one, ``NoRegisteredProviderFound`` for another."""
    raw = request.query.get("api-version")
    listed = ", ".join(supported)
    if raw is None or not raw.strip():
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests. "
            f"Supported: {listed}.",
            target="api-version",
        )
    version = lookup(raw)
    if version is None:
        raise ArmError(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for api version '{raw[:64]}' and resource type "
            f"'{type_name}'. The supported api-versions are '{listed}'.",
            target="api-version",
        )
    return version


def check_method(request: web.Request, allowed: Sequence[str]) -> None:
    """405 with ``Allow`` for a method the path does not accept."""
    if request.method not in allowed:
        raise ArmError(
            405,
            "MethodNotAllowed",
            f"'{request.path[:200]}' does not accept {request.method}; allowed: {', '.join(allowed)}.",
            target="method",
            headers={"Allow": ", ".join(allowed)},
        )


def check_names(
    naming: ResourceNaming, subscription: str, resource_group: str | None, name: str | None
) -> ResourceKey | None:
    """400 for a bad subscription, resource group or resource name in the path; the resource's
    key when the path names one."""
    checks = (
        (subscription, subscription_problem, "InvalidSubscriptionId", "subscription id", "subscriptionId"),
        (
            resource_group,
            resource_group_problem,
            "InvalidResourceGroupName",
            "resource group name",
            "resourceGroupName",
        ),
        (name, naming.name_problem, naming.invalid_name_code, naming.what + " name", naming.name_target),
    )
    for value, problem_of, code, what, target in checks:
        if value is not None and (problem := problem_of(value)) is not None:
            raise ArmError(400, code, f"The {what} '{value[:100]}' {problem}.", target=target)
    if resource_group is None or name is None:
        return None
    return ResourceKey(subscription, resource_group, name)


async def read_json_body(request: web.Request, what: str) -> Any:
    """The request's JSON body (``what`` names it in the error): 413 above
    :data:`MAX_ARM_BODY_BYTES` (read no further), 400 when empty or not JSON."""
    raw = await read_capped_body(request, MAX_ARM_BODY_BYTES, _too_large)
    if not raw.strip():
        raise ArmError(
            400, "InvalidRequestContent", f"The request body is empty; send {what} as JSON.", target="body"
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


def list_page(
    request: web.Request,
    items: Sequence[T],
    *,
    page_size: int,
    origin: str,
    version_name: str,
    render: Callable[[T], Any],
) -> web.Response:
    """One page of a list, ``{"value", "nextLink"}``, from the request's ``$skipToken`` (400
    ``InvalidSkipToken`` for one this server did not issue); ``nextLink`` is absolute, on
    ``origin``, with the api-version asked for."""
    raw_skip = request.query.get("$skipToken", request.query.get("$skiptoken", "0"))
    if not (raw_skip.isascii() and raw_skip.isdigit()) or len(raw_skip) > 9:  # "²" is a digit to str
        raise ArmError(
            400,
            "InvalidSkipToken",
            f"The $skipToken {raw_skip[:40]!r} is not one this server issued.",
            target="$skipToken",
        )
    skip = int(raw_skip)
    page = items[skip : skip + page_size]
    next_link = None
    if skip + page_size < len(items):
        next_link = str(
            URL(origin)
            .with_path(request.path)
            .with_query({"api-version": version_name, "$skipToken": str(skip + page_size)})
        )
    return json_response({"value": [render(item) for item in page], "nextLink": next_link})


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer."""
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )

"""The data plane's route table: which handler serves which method, path and api-version.

Paths are below the pool endpoint, matched without regard to case. The first route whose pattern,
api-version and method fit serves a request (``app.py`` dispatches; ``routing.py`` resolves).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from . import handlers as h
from .context import Handler
from .endpoint import split_endpoint, split_path
from .operations import Operation
from .routing import Route
from .wire.versions import ApiVersionSpec, Contract

__all__ = ["RETIRED_PATHS", "ROUTES", "RetiredPath", "operation_of", "retired_path_message"]


def _r(
    contract: Contract | None,
    operation: Operation,
    method: str,
    pattern: str,
    handler: Handler,
    available: Callable[[ApiVersionSpec], bool] = lambda spec: True,
) -> Route:
    return Route(contract, operation, method, re.compile(pattern, re.IGNORECASE), handler, available)


ROUTES: tuple[Route, ...] = (
    _r(Contract.LEGACY, Operation.EXECUTE, "POST", r"code/execute", h.legacy_execute),
    _r(Contract.LEGACY, Operation.FILES, "POST", r"files/upload", h.legacy_upload),
    _r(Contract.LEGACY, Operation.FILES, "GET", r"files", h.legacy_list),
    _r(Contract.LEGACY, Operation.FILES, "GET", r"files/content/(?P<name>.+)", h.stream_file),
    _r(
        Contract.LEGACY,
        Operation.FILES,
        "GET",
        r"files/(?P<name>.+)",
        h.legacy_file,
        lambda s: s.file_item_operations,
    ),
    _r(
        Contract.LEGACY,
        Operation.FILES,
        "DELETE",
        r"files/(?P<name>.+)",
        h.legacy_delete_file,
        lambda s: s.file_item_operations,
    ),
    _r(Contract.CURRENT, Operation.EXECUTE, "POST", r"executions", h.execute),
    _r(Contract.CURRENT, Operation.POLL, "GET", r"executions/(?P<execution_id>[^/]+)", h.get_execution),
    _r(Contract.CURRENT, Operation.FILES, "POST", r"files", h.upload),
    _r(Contract.CURRENT, Operation.FILES, "GET", r"files", h.list_files),
    _r(Contract.CURRENT, Operation.FILES, "GET", r"files/(?P<name>.+)/content", h.stream_file),
    _r(Contract.CURRENT, Operation.FILES, "GET", r"files/(?P<name>.+)", h.get_file),
    _r(Contract.CURRENT, Operation.FILES, "DELETE", r"files/(?P<name>.+)", h.delete_file),
    _r(Contract.CURRENT, Operation.SESSION, "GET", r"session", h.get_session, lambda s: s.session_management),
    _r(
        Contract.CURRENT,
        Operation.SESSION,
        "DELETE",
        r"session",
        h.delete_session,
        lambda s: s.session_management,
    ),
    _r(
        Contract.CURRENT,
        Operation.LIST,
        "GET",
        r"listSessions",
        h.list_sessions,
        lambda s: s.session_management,
    ),
    _r(Contract.CURRENT, Operation.METADATA, "GET", r"metadata", h.metadata, lambda s: s.session_management),
    # Older docs show these without tying them to an api-version: every version serves them.
    _r(None, Operation.SESSION, "POST", r"\.management/getSession", h.management_get_session),
    _r(None, Operation.LIST, "POST", r"\.management/listSessions", h.management_list_sessions),
)
"""Every operation; the first route whose pattern, api-version and method fit serves a request."""


@dataclass(frozen=True)
class RetiredPath:
    """An endpoint form an early preview or an old sample used, which no api-version serves."""

    pattern: re.Pattern[str]
    """Matches the path below the pool endpoint."""
    message: str
    """What the 404 says instead of a bare "no operation here"."""


RETIRED_PATHS: tuple[RetiredPath, ...] = (
    # The seed's Semantic Kernel sample configured ".../sessionPools/{pool}/python/execute" as the
    # pool endpoint (an early preview's form); clients then append their own operation to it.
    RetiredPath(
        re.compile(r"python/execute(/.*)?", re.IGNORECASE),
        "'/python/execute' is the endpoint form of an early preview; no api-version serves it. Use "
        "the pool management endpoint without '/python/execute': POST {endpoint}/code/execute "
        "(api-version 2024-02-02-preview, 2024-08-02-preview) or POST {endpoint}/executions "
        "(2024-10-02-preview and later).",
    ),
)
"""Paths answered with a 404 whose message says where the operation went."""


def retired_path_message(path: str) -> str | None:
    """The message for ``path`` (below the endpoint) when it is a retired form, else None."""
    for retired in RETIRED_PATHS:
        if retired.pattern.fullmatch(path) is not None:
            return retired.message
    return None


def operation_of(method: str, path: str) -> Operation:
    """The operation of the route serving ``method path`` in some api-version (``OTHER`` if none).

    Any endpoint prefix is accepted (the pool name is not checked) and case is ignored, as
    routing ignores it.
    """
    _, rest = split_endpoint(split_path(path))
    below = "/".join(rest)
    for route in ROUTES:
        if route.method == method.upper() and route.pattern.fullmatch(below) is not None:
            return route.operation
    return Operation.OTHER

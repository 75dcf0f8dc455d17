"""The error answers of the Sandboxes data plane.

Every refusal is ``{"error": {"code", "message", "target", "details"}}`` (what azure-core reads
into ``HttpResponseError.error``) plus ``x-ms-error-code``; the spec's ProblemDetails keys
(``type``, ``title``, ``status``, ``detail``) sit alongside, since the spec's examples disagree on
the shape (reference section 5). No refusal is 403 (the SDK retries 403 for minutes) and none is
5xx except a 503 with ``Retry-After`` when the runtime cannot start a sandbox right now.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from ...runtime.sandboxes.errors import ErrorKind, SandboxError
from ..dataplane.wire.errors import WireError, error_body, error_response

__all__ = ["STATUS_BY_KIND", "sandbox_error_body", "sandbox_error_response", "wire_error"]

STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 400,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.LIMIT: 429,
    ErrorKind.TOO_LARGE: 413,
    # 507 would be the textbook answer, but a full sandbox disk is the caller's doing, not the
    # server's failure: a 4xx keeps "never 5xx for bad input" true and azure-core does not retry it.
    ErrorKind.INSUFFICIENT_STORAGE: 413,
    ErrorKind.UNAVAILABLE: 503,
}
"""The HTTP status of each class of runtime error."""


def wire_error(exc: SandboxError) -> WireError:
    """The HTTP refusal of a runtime error (``Retry-After`` when the runtime gave one; a limit
    or an unavailable runtime always has one)."""
    status = STATUS_BY_KIND[exc.kind]
    headers: dict[str, str] = {}
    retry_after = exc.retry_after
    if retry_after is None and status in (429, 503):
        retry_after = 1
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, int(retry_after)))
    return WireError(status, exc.code, exc.message, target=exc.target, headers=headers)


def sandbox_error_body(err: WireError) -> dict[str, Any]:
    """The error body: Azure.Core's ``error`` object plus ProblemDetails keys alongside."""
    body = error_body(err.code, err.message, err.target)
    try:
        title = HTTPStatus(err.status).phrase
    except ValueError:
        title = "Error"
    body.update({"type": "about:blank", "title": title, "status": err.status, "detail": err.message})
    return body


def sandbox_error_response(err: WireError) -> web.Response:
    """The HTTP response of ``err``."""
    return error_response(err, sandbox_error_body(err))

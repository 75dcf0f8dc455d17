"""From an error answer to the exception a caller catches: one table of statuses, and the
refinements that read the service's error code first (pool full)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from autogen_aca_sessions.client._retry import parse_retry_after
from autogen_aca_sessions.client.contracts import Request, Service
from autogen_aca_sessions.client.contracts._common import parse_error_body
from autogen_aca_sessions.client.errors import (
    SESSION_EXECUTOR_ROLE,
    PoolFullError,
    PoolNotFoundError,
    SessionsHTTPError,
    error_class_for_status,
)

__all__ = ["ErrorAnswer", "http_error"]

_SAID_PREVIEW_CHARS = 500
_POOL_FULL_HINTS = ("maxconcurrentsessions", "poolisfull", "poolfull", "sessionpoolfull")


@dataclass(frozen=True)
class ErrorAnswer:
    """An answer with an error status, and what the client did before giving up on it."""

    request: Request
    """The request that was answered."""
    url: str
    """The URL it was sent to."""
    status: int
    """HTTP status code."""
    headers: Mapping[str, str]
    """Response headers (looked up case-insensitively)."""
    body: bytes
    """The response body."""
    retries: int
    """How many times the request was sent again before this answer."""
    error_code: str | None
    """The service's error code (``x-ms-error-code``, else ``error.code`` in the body)."""
    said: str | None
    """The service's own message (``error.message``), if any."""
    fresh_token_tried: bool
    """Whether the request was sent again with another token after a 401."""


def _busy(answer: ErrorAnswer) -> str:
    tries = "retry" if answer.retries == 1 else "retries"
    return f"The service is busy (HTTP {answer.status}); gave up after {answer.retries} {tries}."


_MESSAGES: Mapping[int, Callable[[ErrorAnswer], str]] = {
    401: lambda answer: (
        "Authentication failed: the token is missing, invalid or expired (a fresh token was tried)."
        if answer.fresh_token_tried
        else "Authentication failed: the key or token was refused, and the credential has no other "
        "to try; check that it is the pool's."
    ),
    403: lambda _: (
        f"Permission denied: the caller needs the '{SESSION_EXECUTOR_ROLE}' role on the session pool."
    ),
    404: lambda _: "Not found.",
    413: lambda _: "The upload is larger than the service accepts (128 MB).",
    429: _busy,
    503: _busy,
}
"""What each status means to a caller; any other: "The service answered HTTP <status>."."""

_SANDBOXES_MESSAGES: Mapping[int, Callable[[ErrorAnswer], str]] = {
    **_MESSAGES,
    401: lambda answer: (
        "Authentication failed: the token is missing, invalid or expired (a fresh token was tried)."
        if answer.fresh_token_tried
        else "Authentication failed: the key or token was refused, and the credential has no other "
        "to try; check that it is the sandbox group's (a local server's: the key it printed)."
    ),
    403: lambda _: "Permission denied: the caller has no role on the sandbox group that allows this.",
    # The service's own message says its limit (dynamic sessions' 128 MB is not it).
    413: lambda _: "The request is larger than the service accepts.",
}
"""The same for a sandbox group's data plane, where the pool-specific explanations are wrong."""

_POOL_FULL_MESSAGE = (
    "The session pool is at its maximum of concurrent sessions (maxConcurrentSessions) and cannot "
    "allocate another. Delete idle sessions, wait for them to expire, or raise the pool's "
    "maxConcurrentSessions."
)
_POOL_NOT_FOUND_MESSAGE = (
    "No session pool at this endpoint; check the URL: it must be the pool's poolManagementEndpoint "
    "(https://<region>.dynamicsessions.io/subscriptions/<sub>/resourceGroups/<rg>/sessionPools/<pool>, "
    "or the endpoint a local pool prints), with nothing after the pool name."
)
_POOL_NOT_FOUND_CODE = "sessionpoolnotfound"
# Codes with which a 404 on a session-creating call is about the session, not the pool.
_SESSION_CODES = frozenset({"sessionnotfound", "sessionwithidentifiernotfound"})


def _looks_pool_full(*texts: str | None) -> bool:
    for text in texts:
        if text:
            squashed = "".join(ch for ch in text.lower() if ch.isalnum())
            if any(hint in squashed for hint in _POOL_FULL_HINTS):
                return True
    return False


def _is_pool_full(answer: ErrorAnswer) -> bool:
    """The service said, by its error code or message, that the pool is at its maximum."""
    return 400 <= answer.status < 500 and _looks_pool_full(answer.error_code, answer.said)


def _is_pool_not_found(answer: ErrorAnswer) -> bool:
    """A 404 naming no pool: ``SessionPoolNotFound``, or any 404 on a call that would create a
    session except one about the session itself (what pool full is was checked before)."""
    if answer.status != 404:
        return False
    code = (answer.error_code or "").lower()
    return code == _POOL_NOT_FOUND_CODE or (answer.request.creates_session and code not in _SESSION_CODES)


_REFINEMENTS: tuple[tuple[Callable[[ErrorAnswer], bool], type[SessionsHTTPError], str], ...] = (
    (_is_pool_full, PoolFullError, _POOL_FULL_MESSAGE),
    (_is_pool_not_found, PoolNotFoundError, _POOL_NOT_FOUND_MESSAGE),
)
"""Answers whose meaning is in the service's error code or message rather than in the status,
checked in order before the status table: (applies, class, message)."""


def http_error(
    request: Request,
    url: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    retries: int,
    *,
    fresh_token_tried: bool = False,
) -> SessionsHTTPError:
    """The exception for an error answer the client gives up on."""
    body_code, body_message = parse_error_body(body)
    answer = ErrorAnswer(
        request=request,
        url=url,
        status=status,
        headers=headers,
        body=body,
        retries=retries,
        error_code=headers.get("x-ms-error-code") or body_code,
        said=body_message,
        fresh_token_tried=fresh_token_tried,
    )
    refined = next((rule for rule in _REFINEMENTS if rule[0](answer)), None)
    if refined is not None:
        cls, message = refined[1], refined[2]
    else:
        cls = error_class_for_status(status)
        table = _SANDBOXES_MESSAGES if request.service is Service.SANDBOXES else _MESSAGES
        explain = table.get(status)
        message = explain(answer) if explain is not None else f"The service answered HTTP {status}."
    said = (body_message or "").strip()
    if len(said) > _SAID_PREVIEW_CHARS:
        said = said[:_SAID_PREVIEW_CHARS] + "..."
    if said:
        message = f"{message} Service said: {said}"
    return cls(
        status,
        message,
        error_code=answer.error_code,
        body=body.decode("utf-8", "replace"),
        headers=dict(headers),
        method=request.method,
        url=url,
        retry_after=parse_retry_after(headers),
        service_message=said or None,
    )

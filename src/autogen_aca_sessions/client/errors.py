"""Exceptions raised by the sessions client.

``SessionsError`` is the root. HTTP failures keep everything needed to diagnose them
(status, service error code, body, headers, method and URL) instead of a bare message.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "CredentialError",
    "ExecutionTimeoutError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PoolFullError",
    "PoolNotFoundError",
    "RequestMayHaveRunError",
    "RequestNotSentError",
    "ServerError",
    "ServiceUnavailableError",
    "SessionsConnectionError",
    "SessionsError",
    "SessionsHTTPError",
    "ThrottledError",
    "UnsupportedOperationError",
    "UploadOutcomeUnknownError",
    "ValidationError",
    "error_class_for_status",
    "left_no_session",
]

SESSION_EXECUTOR_ROLE = "Azure ContainerApps Session Executor"
_BODY_PREVIEW_CHARS = 500


class SessionsError(Exception):
    """Root of every error the sessions client raises."""


class UnsupportedOperationError(SessionsError):
    """The operation does not exist on the api-version the client speaks."""

    def __init__(self, operation: str, api_version: str, needed: str) -> None:
        super().__init__(
            f"{operation} is not available on api-version {api_version}; it needs {needed}. "
            "Construct the client with a newer api_version."
        )
        self.operation = operation
        self.api_version = api_version
        self.needed = needed


class ConfigurationError(SessionsError, ValueError):
    """A setting cannot be used (endpoint, token, session identifier, api-version ...); nothing
    was sent. Fix the configuration: retrying cannot help. Also a ``ValueError``."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting
        """Which setting is wrong (``pool_management_endpoint``, ``credential``, ...)."""


class CredentialError(SessionsError):
    """The credential could not produce a token (for example azure-identity's
    ``ClientAuthenticationError``: not logged in, no managed identity). The credential's own
    exception is the ``__cause__``; no request was sent."""


# Both transport and HTTP failures also derive from the builtin ConnectionError, as the errors
# of autogen-ext's executor do, so ``except ConnectionError`` written for it keeps working.
class SessionsHTTPError(SessionsError, ConnectionError):
    """The service answered with an error status."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        error_code: str | None = None,
        body: str = "",
        headers: Mapping[str, str] | None = None,
        method: str = "",
        url: str = "",
        retry_after: float | None = None,
        service_message: str | None = None,
    ) -> None:
        self.status_code = status_code
        """HTTP status code."""
        self.error_code = error_code
        """Service error code (``x-ms-error-code`` header or ``error.code`` in the body)."""
        self.message = message
        """Human-readable explanation."""
        self.body = body
        """Response body as text."""
        self.headers: dict[str, str] = dict(headers or {})
        """Response headers."""
        self.method = method
        """HTTP method of the failed request."""
        self.url = url
        """URL of the failed request."""
        self.retry_after = retry_after
        """The ``Retry-After`` the service sent, in seconds, if any."""
        self.service_message = service_message
        """The service's own message (``error.message`` of the body, or a plain-text body), if
        any; :attr:`message` already quotes it."""
        super().__init__(message)

    def __str__(self) -> str:
        parts = [f"HTTP {self.status_code}"]
        if self.error_code:
            parts.append(f"({self.error_code})")
        if self.method or self.url:
            parts.append(f"on {self.method} {self.url}".rstrip())
        text = " ".join(parts) + f": {self.message}"
        body = self.body.strip()
        # The body is shown only when the message does not already quote what the service said.
        if body and self.service_message is None and body not in self.message:
            preview = body if len(body) <= _BODY_PREVIEW_CHARS else body[:_BODY_PREVIEW_CHARS] + "..."
            text += f" | body: {preview}"
        return text


class ValidationError(SessionsHTTPError):
    """400: the service rejected the request (bad identifier, missing code, unknown api-version...)."""


class AuthenticationError(SessionsHTTPError):
    """401: the token is missing, invalid or expired (a refresh was already tried)."""


class PermissionDeniedError(SessionsHTTPError):
    """403: the caller lacks the "Azure ContainerApps Session Executor" role on the pool."""


class NotFoundError(SessionsHTTPError):
    """404: unknown execution, file or session (or a wrong endpoint)."""


class PoolFullError(NotFoundError):
    """The pool is at ``maxConcurrentSessions`` and cannot allocate a new session (the service's
    error code or message says so)."""


class PoolNotFoundError(NotFoundError):
    """No session pool answers at the endpoint: a 404 on a call that would create a session that
    is not the pool-full answer, or the service's ``SessionPoolNotFound``. Check the URL (it must
    be the pool's ``poolManagementEndpoint``, with nothing after the pool name)."""


class PayloadTooLargeError(SessionsHTTPError):
    """413: the upload exceeds the service limit (128 MB)."""


class ThrottledError(SessionsHTTPError):
    """429: too many requests; raised after the retries are used up."""


class ServiceUnavailableError(SessionsHTTPError):
    """503: the service is temporarily unavailable; raised after the retries are used up."""


class ServerError(SessionsHTTPError):
    """Any other 5xx."""


class SessionsConnectionError(SessionsError, ConnectionError):
    """The request did not get an HTTP answer (connection refused, reset, DNS, TLS...)."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        """HTTP method of the failed request."""
        self.url = url
        """URL of the failed request."""


class RequestNotSentError(SessionsConnectionError):
    """The request never reached the service (no connection, connecting timed out, TLS refused):
    nothing ran, so sending it again is safe."""

    def __init__(self, message: str, *, method: str = "", url: str = "", retryable: bool = True) -> None:
        super().__init__(message, method=method, url=url)
        self.retryable = retryable
        """Whether sending it again may succeed: False for what a retry cannot fix (a TLS failure),
        which the client then raises at once."""


class RequestMayHaveRunError(SessionsConnectionError):
    """The request was sent but no complete answer came (the connection broke, or no answer in
    time): it may have run. An execution is never resent for this; check before repeating it."""


class UploadOutcomeUnknownError(RequestMayHaveRunError):
    """An upload was sent but no answer came: the file may or may not be in the session. List the
    files (or upload again: an upload replaces a file of the same name)."""


class ExecutionTimeoutError(SessionsError):
    """The client stopped waiting for an execution (its timeout plus a grace period passed)."""

    def __init__(
        self,
        identifier: str,
        timeout_seconds: float,
        waited_seconds: float,
        *,
        execution_id: str | None = None,
    ) -> None:
        what = (
            f"execution {execution_id} in session {identifier!r}"
            if execution_id
            else (f"execution in session {identifier!r}")
        )
        super().__init__(
            f"Gave up waiting for the {what} after {waited_seconds:g} s. The server was told "
            f"timeoutInSeconds={timeout_seconds:g}, so it should stop the code itself; the session may "
            "still be busy for a moment."
        )
        self.identifier = identifier
        """The session identifier."""
        self.timeout_seconds = timeout_seconds
        """The execution time limit sent to the server."""
        self.waited_seconds = waited_seconds
        """How long the client waited before giving up."""
        self.execution_id = execution_id
        """The execution id, when known."""


def error_class_for_status(status_code: int) -> type[SessionsHTTPError]:
    """The exception class for an HTTP error status (before the pool-full refinement)."""
    mapping: dict[int, type[SessionsHTTPError]] = {
        400: ValidationError,
        401: AuthenticationError,
        403: PermissionDeniedError,
        404: NotFoundError,
        413: PayloadTooLargeError,
        429: ThrottledError,
        503: ServiceUnavailableError,
    }
    if status_code in mapping:
        return mapping[status_code]
    if status_code >= 500:
        return ServerError
    return SessionsHTTPError


def left_no_session(error: BaseException) -> bool:
    """Whether a request that raised ``error`` cannot have created a session: it was never sent
    (a configuration or credential problem, no connection), or the service refused it before
    allocating one (401, 403, pool full, no pool at the endpoint). Then there is nothing to
    release: a ``DELETE`` would only be refused the same way, or delete nothing."""
    return isinstance(
        error,
        (
            ConfigurationError,
            CredentialError,
            UnsupportedOperationError,
            RequestNotSentError,
            AuthenticationError,
            PermissionDeniedError,
            PoolFullError,
            PoolNotFoundError,
        ),
    )

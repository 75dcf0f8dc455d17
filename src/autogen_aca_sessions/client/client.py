"""The async sessions client: transport, auth, retries and polling.

Wire formats live in ``client/contracts`` (one module per contract); this module only moves
requests and maps HTTP outcomes to results and exceptions.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import json
import logging
import math
import platform
import random
import ssl as ssl_module
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from autogen_aca_sessions.client.auth import TOKEN_SCOPE, TokenProvider, TokenSource, claims_from_challenge
from autogen_aca_sessions.client.checks import refuse_control_characters
from autogen_aca_sessions.client.closing import AsyncClosing
from autogen_aca_sessions.client.contracts import Contract, Request, contract_for
from autogen_aca_sessions.client.contracts._common import load_json, parse_error_body
from autogen_aca_sessions.client.errors import (
    SESSION_EXECUTOR_ROLE,
    ConfigurationError,
    ExecutionTimeoutError,
    PoolFullError,
    RequestMayHaveRunError,
    RequestNotSentError,
    SessionsError,
    SessionsHTTPError,
    UploadOutcomeUnknownError,
    error_class_for_status,
)
from autogen_aca_sessions.client.limits import DEFAULT_API_VERSION, DEFAULT_MAX_OUTPUT_CHARS
from autogen_aca_sessions.client.models import (
    ApiVersion,
    ExecutionResult,
    PoolMetadata,
    SessionFile,
    SessionInfo,
)
from autogen_aca_sessions.telemetry import (
    http_attempt,
    http_status,
    note_poll,
    note_retry,
    traced_operation,
    with_trace_context,
)

__all__ = ["RetryPolicy", "SessionsClient"]

logger = logging.getLogger(__name__)

_Item = TypeVar("_Item")

MAX_IDENTIFIER_LENGTH = 256
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
# 429 and 503 mean the service turned the request away before doing anything: safe to resend
# even an execution. 502/504 may come from a gateway after the request reached the pool.
_RETRY_ANY_METHOD = frozenset({429, 503})
# 500 is retried only where a resend cannot repeat a side effect (GET, DELETE).
_RETRY_IDEMPOTENT_ONLY = frozenset({500, 502, 504})
_MAX_PAGES = 1000
_SAID_PREVIEW_CHARS = 500
_POOL_FULL_HINTS = ("maxconcurrentsessions", "poolisfull", "poolfull", "sessionpoolfull")
_SESSION_GUID_HEADER = "x-ms-session-guid"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class _NeverRaised(Exception):
    """Stands in for an aiohttp exception class this aiohttp version does not have."""


def _connect_timeout_error(module: Any) -> type[BaseException]:
    """aiohttp's "connecting timed out" exception (3.10+). Older versions raise a generic
    ServerTimeoutError for connect and read timeouts alike; a read timeout must never resend an
    execution, so there the connect case falls back to the (non-retried) read-timeout handling."""
    found = getattr(module, "ConnectionTimeoutError", None)
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    return _NeverRaised


_ConnectionTimeoutError = _connect_timeout_error(aiohttp)


def _package_version() -> str:
    try:
        from autogen_aca_sessions import __version__

        return __version__
    except ImportError:  # pragma: no cover - the package always defines it
        return "0"


DEFAULT_USER_AGENT = (
    f"autogen-aca-sessions/{_package_version()} aiohttp/{aiohttp.__version__} "
    f"python/{platform.python_version()}"
)


@dataclass
class _Response:
    status: int
    headers: CIMultiDict[str]
    body: bytes
    method: str
    url: str


class _NoAnswerInTime(Exception):
    """The request was sent but no complete answer came within its timeout."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"no answer within {waited:g} s")
        self.waited = waited


class _Failure(enum.Enum):
    """How an attempt ended without an answer, i.e. what the server can have seen of it."""

    NOT_SENT = "not sent"
    """No connection was made: the server saw nothing."""
    NO_ANSWER = "no answer"
    """Sent, and no complete answer in time: it may be running."""
    BROKEN = "broken"
    """Sent, and the connection broke before the answer: it may have run."""


class _AttemptFailed(Exception):
    """One attempt got no HTTP answer."""

    def __init__(self, failure: _Failure, reason: str, error: BaseException) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason
        self.error = error


@dataclass(frozen=True)
class RetryPolicy:
    """Which failed attempts are sent again, and after how long.

    Only what cannot repeat a side effect is resent: anything the service turned away before
    doing it (429, 503, no connection), and idempotent requests after anything else transient.
    """

    max_retries: int
    """Retries after the first attempt."""
    backoff_base: float
    """First backoff delay, doubled per retry (with jitter)."""
    backoff_max: float
    """Longest delay between retries (also caps ``Retry-After``)."""

    def retries_status(self, status: int, *, idempotent: bool) -> bool:
        """Whether an answer with ``status`` may be retried."""
        return status in _RETRY_ANY_METHOD or (idempotent and status in _RETRY_IDEMPOTENT_ONLY)

    def retries_failure(self, failure: _Failure, *, idempotent: bool) -> bool:
        """Whether an attempt that got no answer may be retried."""
        return failure is _Failure.NOT_SENT or idempotent

    def delay(
        self, attempt: int, retry_after: float | None, jitter: Callable[[float, float], float]
    ) -> float:
        """Seconds to wait before retry ``attempt + 1``: the service's ``Retry-After`` when it sent
        one, else exponential backoff with ``jitter(low, high)`` over its upper half."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2.0**attempt))
        # Full jitter over the upper half keeps retries of many clients apart.
        return ceiling / 2 + jitter(0.0, ceiling / 2)


class _Authorization:
    """The bearer-token step of one request: a token per attempt, and one forced refresh (with the
    service's claims challenge, when it sent one) after a 401."""

    def __init__(self, tokens: TokenProvider) -> None:
        self._tokens = tokens
        self._token: str | None = None
        self._refreshed = False
        self._rejected: str | None = None
        self._claims: str | None = None

    async def header(self) -> str:
        """The ``Authorization`` header value for the next attempt."""
        self._token = await self._tokens.get_token(rejected=self._rejected, claims=self._claims)
        return f"Bearer {self._token}"

    def retry_after_rejection(self, response: _Response) -> bool:
        """Whether ``response`` rejected the token and the request is to be sent once more with a
        fresh one (the token may have been revoked or expired early)."""
        if response.status == 401 and not self._refreshed:
            self._refreshed = True
            self._rejected = self._token
            self._claims = claims_from_challenge(response.headers.get("WWW-Authenticate"))
            return True
        self._rejected = None
        self._claims = None
        return False


def _is_loopback_host(host: str) -> bool:
    name = host.strip("[]").lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _validate_endpoint(endpoint: str, *, allow_insecure_http: bool = False) -> str:
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ConfigurationError(
            "pool_management_endpoint", "pool_management_endpoint must be a non-empty URL"
        )
    endpoint = refuse_control_characters("pool_management_endpoint", endpoint).strip()
    if any(c.isspace() for c in endpoint):
        raise ConfigurationError(
            "pool_management_endpoint", f"pool_management_endpoint {endpoint!r} contains a space"
        )
    parts = urlsplit(endpoint)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            "pool_management_endpoint",
            "pool_management_endpoint must be an http(s) URL such as https://<region>.dynamicsessions.io"
            f"/subscriptions/<sub>/resourceGroups/<rg>/sessionPools/<pool>; got {endpoint!r}",
        )
    if parts.query or parts.fragment or endpoint.rstrip("/").endswith(("?", "#")):
        raise ConfigurationError(
            "pool_management_endpoint",
            "pool_management_endpoint must not carry a query string or fragment (the client adds "
            f"api-version and identifier itself); remove everything from '?' or '#' in {endpoint!r}",
        )
    if "@" in parts.netloc:
        # Never echo the endpoint here: the part before '@' may be a password.
        raise ConfigurationError(
            "pool_management_endpoint",
            "pool_management_endpoint must not contain user information ('user:password@'); the "
            "client authenticates with bearer tokens from the credential",
        )
    if (
        parts.scheme.lower() == "http"
        and not allow_insecure_http
        and not _is_loopback_host(parts.hostname or "")
    ):
        raise ConfigurationError(
            "pool_management_endpoint",
            f"pool_management_endpoint {endpoint!r} uses plain http to a host that is not loopback: the "
            "bearer token would travel in clear text. Use https, or pass allow_insecure_http=True "
            "for a trusted network (for example a local pool in another container).",
        )
    return endpoint.rstrip("/")


def _validate_identifier(identifier: str) -> str:
    if not isinstance(identifier, str) or not identifier:
        raise ConfigurationError("session identifier", "session identifier must be a non-empty string")
    if len(identifier) > MAX_IDENTIFIER_LENGTH:
        raise ConfigurationError(
            "session identifier",
            f"session identifier is {len(identifier)} characters; the service allows at most "
            f"{MAX_IDENTIFIER_LENGTH}",
        )
    return refuse_control_characters("session identifier", identifier)


def _validate_name(name: str, what: str = "file name") -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty string")
    return name


def _validate_timeout(timeout_seconds: float) -> int:
    if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, (int, float)):
        raise TypeError("timeout_seconds must be a number")
    if not timeout_seconds > 0:
        raise ValueError("timeout_seconds must be positive")
    # The service takes whole seconds; round up so the code gets at least what was asked.
    return math.ceil(timeout_seconds)


def _parse_retry_after(headers: Mapping[str, str]) -> float | None:
    millis = headers.get("retry-after-ms") or headers.get("x-ms-retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _looks_pool_full(*texts: str | None) -> bool:
    for text in texts:
        if text:
            squashed = "".join(ch for ch in text.lower() if ch.isalnum())
            if any(hint in squashed for hint in _POOL_FULL_HINTS):
                return True
    return False


class SessionsClient(AsyncClosing):
    """Async client for one session pool's data plane.

    One ``aiohttp.ClientSession`` (created lazily, inside the running loop) serves every call
    for the client's lifetime; ``close()`` or ``async with`` releases it. Every method is a
    plain coroutine: cancelling the calling task cancels the request in flight.

    Args:
        pool_management_endpoint: The pool's ``poolManagementEndpoint`` (trailing ``/`` allowed,
            no query string).
        credential: Where tokens come from (see :data:`~autogen_aca_sessions.client.auth.TokenSource`);
            None uses ``azure.identity.aio.DefaultAzureCredential``.
        api_version: The data-plane api-version to speak; defaults to the newest.
        max_output_chars: Per-stream output limit asked for on 2025-10 (``outputStreamsMaxLength``).
        max_retries: Retries after the first attempt for throttling, unavailability and
            connection failures.
        request_timeout: Timeout of non-execution requests, in seconds.
        session: An ``aiohttp.ClientSession`` to use instead of our own (never closed by us).
        ssl: Passed to every request (an ``SSLContext`` for a self-signed local pool, False to
            skip verification); None uses aiohttp's default verification.
        user_agent: Prefix for the ``User-Agent`` header.
        token_scope: Scope tokens are requested for.
        execution_grace_seconds: How long past ``timeout_seconds`` to wait for an execution.
        retry_backoff_base: First backoff delay, doubled per retry (with jitter).
        retry_backoff_max: Longest delay between retries (also caps ``Retry-After``).
        poll_interval: First delay between polls of an asynchronous execution.
        allow_insecure_http: Accept an ``http://`` endpoint on a host that is not loopback
            (tokens then travel unencrypted). Loopback hosts (127.0.0.0/8, ::1, localhost) are
            always accepted over http.
    """

    def __init__(
        self,
        pool_management_endpoint: str,
        credential: TokenSource | None = None,
        *,
        api_version: ApiVersion | str = DEFAULT_API_VERSION,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        max_retries: int = 3,
        request_timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        ssl: ssl_module.SSLContext | bool | None = None,
        user_agent: str | None = None,
        token_scope: str = TOKEN_SCOPE,
        execution_grace_seconds: float = 10.0,
        retry_backoff_base: float = 0.5,
        retry_backoff_max: float = 30.0,
        poll_interval: float = 0.5,
        allow_insecure_http: bool = False,
    ) -> None:
        self._endpoint = _validate_endpoint(pool_management_endpoint, allow_insecure_http=allow_insecure_http)
        try:
            self._api_version = ApiVersion(api_version)
        except ValueError:
            known = ", ".join(v.value for v in ApiVersion)
            raise ConfigurationError(
                "api_version", f"unknown api_version {api_version!r}; supported: {known}"
            ) from None
        if max_output_chars <= 0:
            raise ValueError("max_output_chars must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if request_timeout <= 0:
            raise ValueError("request_timeout must be positive")
        if ssl is not None and not isinstance(ssl, (ssl_module.SSLContext, bool, aiohttp.Fingerprint)):
            raise TypeError(f"ssl must be an ssl.SSLContext, a bool or None; got {type(ssl).__name__}")
        if execution_grace_seconds < 0:
            raise ValueError("execution_grace_seconds must be >= 0")
        self._contract: Contract = contract_for(self._api_version)
        self._tokens = TokenProvider(credential, scope=token_scope)
        self._max_output_chars = max_output_chars
        self._retry = RetryPolicy(max_retries, retry_backoff_base, retry_backoff_max)
        self._request_timeout = request_timeout
        self._session = session
        self._owns_session = session is None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._ssl = ssl
        if user_agent:
            refuse_control_characters("user_agent", user_agent)
        self._user_agent = f"{user_agent} {DEFAULT_USER_AGENT}" if user_agent else DEFAULT_USER_AGENT
        self._grace = execution_grace_seconds
        self._poll_interval = poll_interval
        self._closed = False
        # Indirections so tests can observe waits without waiting.
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._random: Callable[[float, float], float] = random.uniform
        self._now: Callable[[], float] = time.monotonic

    # ------------------------------------------------------------------ properties
    @property
    def api_version(self) -> ApiVersion:
        """The api-version this client speaks."""
        return self._api_version

    @property
    def supports_session_management(self) -> bool:
        """Whether get/delete/list sessions and pool metadata exist on this api-version."""
        return self._api_version.supports_session_management

    @property
    def endpoint(self) -> str:
        """The pool management endpoint, without a trailing slash."""
        return self._endpoint

    @property
    def max_output_chars(self) -> int:
        """The per-stream output limit asked for on 2025-10."""
        return self._max_output_chars

    # ------------------------------------------------------------------ executions
    @traced_operation("execute")
    async def execute(
        self,
        identifier: str,
        code: str,
        *,
        timeout_seconds: int = 60,
        asynchronous: bool = False,
        operation_id: str | None = None,
        wait: bool = True,
    ) -> ExecutionResult:
        """Run ``code`` in session ``identifier`` and return its result.

        The server is told ``timeoutInSeconds``; the client waits at most that plus
        ``execution_grace_seconds`` and then raises :class:`ExecutionTimeoutError`. When the
        service answers 202 or a non-terminal status, the execution is polled until it ends
        (unless ``wait`` is False, which returns the first answer as is).
        """
        _validate_identifier(identifier)
        if not isinstance(code, str):
            raise TypeError("code must be a string")
        seconds = _validate_timeout(timeout_seconds)
        request = self._contract.execute_request(
            code, timeout_seconds=seconds, asynchronous=asynchronous, max_output_chars=self._max_output_chars
        )
        return await self._run_execution(identifier, request, seconds, operation_id, wait=wait)

    @traced_operation("execute_shell")
    async def execute_shell(
        self,
        identifier: str,
        command: str | Sequence[str],
        *,
        timeout_seconds: int = 60,
        operation_id: str | None = None,
    ) -> ExecutionResult:
        """Run a shell command in a shell pool's session; ``exit_code`` holds its exit status.

        ``command`` is a bash command line, or a program and its arguments as a list: 2025-10
        sends that as ``execCommandAndArgs`` (no shell parsing), older versions as a quoted
        ``shellCommand``.
        """
        _validate_identifier(identifier)
        if not isinstance(command, str):
            if not command or not all(isinstance(word, str) for word in command):
                raise TypeError("command must be a string or a non-empty sequence of strings")
            command = list(command)
        seconds = _validate_timeout(timeout_seconds)
        request = self._contract.shell_request(
            command, timeout_seconds=seconds, max_output_chars=self._max_output_chars
        )
        return await self._run_execution(identifier, request, seconds, operation_id, wait=True)

    @traced_operation("get_execution")
    async def get_execution(self, identifier: str, execution_id: str) -> ExecutionResult:
        """The current state of an execution (new contract)."""
        _validate_identifier(identifier)
        _validate_name(execution_id, "execution id")
        request = self._contract.get_execution_request(execution_id)
        response = await self._call(request, identifier)
        return self._parse_execution(response, identifier, execution_id)

    async def _run_execution(
        self, identifier: str, request: Request, timeout_seconds: int, operation_id: str | None, *, wait: bool
    ) -> ExecutionResult:
        op_id = operation_id or str(uuid.uuid4())
        started = self._now()
        budget = timeout_seconds + self._grace
        deadline = started + budget

        def gave_up(execution_id: str | None) -> ExecutionTimeoutError:
            return ExecutionTimeoutError(
                identifier, timeout_seconds, round(self._now() - started, 3), execution_id=execution_id
            )

        try:
            # One deadline covers the whole execution, retries after 429/503 included.
            response = await self._send(
                request, identifier, timeout=budget, headers={"operation-id": op_id}, deadline=deadline
            )
        except _NoAnswerInTime:
            raise gave_up(op_id) from None
        fallback_id = response.headers.get("operation-id") or op_id
        result = self._parse_execution(response, identifier, fallback_id)
        first_guid = result.session_guid
        if result.status.is_terminal or not wait or not self._contract.executions_pollable:
            return result

        poll_url = self._resolve_link(response.headers.get("Operation-Location"), identifier) or self._url(
            self._contract.get_execution_request(result.execution_id or fallback_id), identifier
        )
        poll_request = self._contract.get_execution_request(result.execution_id or fallback_id)
        interval = self._poll_interval
        delay = _parse_retry_after(response.headers)
        while True:
            wait_for = interval if delay is None else delay
            remaining = deadline - self._now()
            if remaining <= 0:
                raise gave_up(result.execution_id)
            await self._sleep(min(wait_for, remaining))
            remaining = deadline - self._now()
            if remaining <= 0:
                raise gave_up(result.execution_id)
            note_poll()
            try:
                response = await self._send(
                    poll_request,
                    identifier,
                    timeout=min(self._request_timeout, remaining),
                    url=poll_url,
                    deadline=deadline,
                )
            except _NoAnswerInTime:
                continue
            result = self._parse_execution(response, identifier, result.execution_id)
            if result.session_guid is None:
                result.session_guid = first_guid
            if result.status.is_terminal:
                return result
            delay = _parse_retry_after(response.headers)
            interval = min(interval * 2, max(self._poll_interval, 2.0))

    def _parse_execution(
        self, response: _Response, identifier: str, execution_id: str | None
    ) -> ExecutionResult:
        body = load_json(response.body)
        accepted = response.status == 202 and self._contract.executions_pollable
        if not isinstance(body, dict):
            if accepted:
                # An accepted execution with no body yet: still running.
                body = {}
            else:
                raise SessionsError(
                    f"{response.method} {response.url} answered HTTP {response.status} with a body that "
                    f"is not a JSON object: {response.body[:200]!r}"
                )
        result = self._contract.parse_execution(
            body,
            identifier=identifier,
            execution_id=execution_id,
            output_limit=self._contract.requested_output_limit(self._max_output_chars),
            accepted=accepted,
        )
        guid = (response.headers.get(_SESSION_GUID_HEADER) or "").strip()
        result.session_guid = guid or None
        return result

    # ------------------------------------------------------------------ files
    @traced_operation("upload_file")
    async def upload_file(
        self, identifier: str, name: str, data: bytes, *, path: str | None = None
    ) -> SessionFile:
        """Upload ``data`` as ``name`` into the session's ``/mnt/data`` (or ``path`` under it)."""
        _validate_identifier(identifier)
        _validate_name(name)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes")
        payload = bytes(data)
        request = self._contract.upload_request(path)
        field_name = self._contract.upload_field

        def form() -> aiohttp.FormData:
            # quote_fields=False: the file name goes on the wire as UTF-8 text ("a b.txt"), not
            # percent-encoded ("a%20b.txt"), which a server would otherwise store literally.
            built = aiohttp.FormData(quote_fields=False)
            built.add_field(field_name, payload, filename=name, content_type="application/octet-stream")
            return built

        # Big uploads need longer than a metadata call: allow about a second per megabyte more.
        timeout = self._request_timeout + len(payload) / 1_000_000
        response = await self._call(request, identifier, timeout=timeout, form=form)
        return self._contract.parse_uploaded(load_json(response.body), name)

    @traced_operation("list_files")
    async def list_files(
        self, identifier: str, *, path: str | None = None, recursive: bool = False
    ) -> list[SessionFile]:
        """The files (and directories) in the session's ``/mnt/data`` or ``path`` under it."""
        _validate_identifier(identifier)
        request = self._contract.list_files_request(path, recursive)
        return await self._paged(request, identifier, self._contract.parse_file_list)

    @traced_operation("get_file")
    async def get_file(self, identifier: str, name: str, *, path: str | None = None) -> SessionFile:
        """Metadata of one file."""
        _validate_identifier(identifier)
        _validate_name(name)
        response = await self._call(self._contract.get_file_request(name, path), identifier)
        return self._contract.parse_file(load_json(response.body), name)

    @traced_operation("download_file")
    async def download_file(self, identifier: str, name: str, *, path: str | None = None) -> bytes:
        """The content of one file."""
        _validate_identifier(identifier)
        _validate_name(name)
        response = await self._call(self._contract.download_request(name, path), identifier)
        return response.body

    @traced_operation("delete_file")
    async def delete_file(self, identifier: str, name: str, *, path: str | None = None) -> None:
        """Delete one file."""
        _validate_identifier(identifier)
        _validate_name(name)
        await self._call(self._contract.delete_file_request(name, path), identifier)

    # ------------------------------------------------------------------ sessions and pool
    @traced_operation("get_session")
    async def get_session(self, identifier: str) -> SessionInfo:
        """One session's state (2025-02-02-preview and later)."""
        _validate_identifier(identifier)
        response = await self._call(self._contract.get_session_request(), identifier)
        return self._contract.parse_session(load_json(response.body), identifier)

    @traced_operation("delete_session")
    async def delete_session(self, identifier: str) -> None:
        """Delete a session now, freeing its pool slot (2025-02-02-preview and later)."""
        _validate_identifier(identifier)
        await self._call(self._contract.delete_session_request(), identifier)

    @traced_operation("list_sessions")
    async def list_sessions(self) -> list[SessionInfo]:
        """Every session of the pool, following ``nextLink`` (2025-02-02-preview and later)."""
        return await self._paged(
            self._contract.list_sessions_request(), None, self._contract.parse_session_list
        )

    @traced_operation("get_metadata")
    async def get_metadata(self) -> PoolMetadata:
        """What the pool runs: runtimes, pre-installed packages, kernel (2025-02-02-preview and later)."""
        response = await self._call(self._contract.metadata_request(), None)
        return self._contract.parse_metadata(load_json(response.body))

    async def _paged(
        self,
        request: Request,
        identifier: str | None,
        parse: Callable[[object], tuple[list[_Item], str | None]],
    ) -> list[_Item]:
        """Every item of a listing, following the service's ``nextLink`` (at most ``_MAX_PAGES``)."""
        items: list[_Item] = []
        url: str | None = None
        for _ in range(_MAX_PAGES):
            response = await self._call(request, identifier, url=url)
            page, next_link = parse(load_json(response.body))
            items.extend(page)
            url = self._resolve_link(next_link, identifier) if next_link else None
            if url is None:
                break
        return items

    # ------------------------------------------------------------------ lifecycle
    async def close(self) -> None:
        """Release the HTTP session (if ours) and any credential we created. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()
        await self._tokens.close()

    # ------------------------------------------------------------------ transport
    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise SessionsError("this SessionsClient is closed")
        loop = asyncio.get_running_loop()
        if self._session is not None and self._owns_session and self._session_loop is not loop:
            # Our session is bound to an earlier event loop (e.g. a second asyncio.run()); it
            # cannot serve this one, so start afresh rather than fail.
            logger.debug("SessionsClient used from a new event loop; creating a new HTTP session")
            self._abandon_session(self._session)
            self._session = None
        if self._session is None:
            # Created here, inside the running loop, so it binds to the loop that uses it.
            connector = aiohttp.TCPConnector(limit=100, limit_per_host=50, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(connector=connector)
            self._session_loop = loop
        return self._session

    @staticmethod
    def _abandon_session(session: aiohttp.ClientSession) -> None:
        """Release an HTTP session bound to an earlier event loop without awaiting on it (that
        loop may be closed): close its connections and detach the connector, so neither sockets
        nor an "Unclosed client session" warning are left behind."""
        connector = session.connector
        session.detach()
        if connector is None:
            return
        try:
            # The private, synchronous half of close(): the public one schedules a task on the
            # connector's loop, which may no longer run.
            connector._close()
        except Exception:  # a closed loop refuses to schedule the transports' close callbacks
            logger.debug("Closing connections of an earlier event loop failed", exc_info=True)

    def _query(self, request: Request, identifier: str | None) -> str:
        params: list[tuple[str, str]] = [("api-version", self._api_version.value)]
        if request.per_session and identifier is not None:
            params.append(("identifier", identifier))
        params.extend(request.params.items())
        return urlencode(params, quote_via=quote, safe="")

    def _url(self, request: Request, identifier: str | None) -> str:
        return f"{self._endpoint}/{request.path}?{self._query(request, identifier)}"

    def _resolve_link(self, link: str | None, identifier: str | None) -> str | None:
        """An absolute URL for a link the service returned (``Operation-Location``,
        ``nextLink``), or None when it is missing or points to another origin (we never send
        our token anywhere but the pool)."""
        if not link:
            return None
        link = link.strip()
        base = urlsplit(self._endpoint)
        parts = urlsplit(link)
        if parts.scheme or parts.netloc:
            if (parts.scheme.lower(), parts.netloc.lower()) != (base.scheme.lower(), base.netloc.lower()):
                logger.warning("ignoring a link to another origin than the pool: %s", link)
                return None
            url = link
        elif link.startswith("/"):
            base_path = base.path.rstrip("/")
            origin = f"{base.scheme}://{base.netloc}"
            url = origin + link if base_path and link.startswith(base_path + "/") else self._endpoint + link
        else:
            url = f"{self._endpoint}/{link}"
        # The link is the server's text, not ours: encode whatever it left raw (spaces, non-ASCII)
        # while keeping its existing %XX escapes, so the request line stays valid.
        url = str(URL(url, encoded=False))
        present = {k.lower() for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
        missing: list[tuple[str, str]] = []
        if "api-version" not in present:
            missing.append(("api-version", self._api_version.value))
        if identifier is not None and "identifier" not in present:
            missing.append(("identifier", identifier))
        if missing:
            url += ("&" if "?" in url else "?") + urlencode(missing, quote_via=quote, safe="")
        return url

    async def _call(
        self,
        request: Request,
        identifier: str | None,
        *,
        timeout: float | None = None,
        url: str | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> _Response:
        seconds = timeout if timeout is not None else self._request_timeout
        try:
            return await self._send(request, identifier, timeout=seconds, url=url, form=form)
        except _NoAnswerInTime as exc:
            target = url or self._url(request, identifier)
            idempotent = request.method in _IDEMPOTENT_METHODS
            note = "" if idempotent else " The upload may or may not have completed."
            error = RequestMayHaveRunError if idempotent or form is None else UploadOutcomeUnknownError
            raise error(
                f"{request.method} {target}: {exc}.{note}", method=request.method, url=target
            ) from None

    async def _send(
        self,
        request: Request,
        identifier: str | None,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        url: str | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        deadline: float | None = None,
    ) -> _Response:
        """Send one request: attempts (:meth:`_attempt`) with a bearer token each
        (:class:`_Authorization`), repeated as the retry policy allows (:class:`RetryPolicy`).

        ``timeout`` bounds each attempt; ``deadline`` (on the ``_now`` clock), when given, bounds
        all attempts and the waits between them together.
        """
        target = url or self._url(request, identifier)
        method = request.method
        idempotent = method in _IDEMPOTENT_METHODS
        body = json.dumps(request.json).encode("utf-8") if request.json is not None else None
        policy = self._retry
        auth = _Authorization(self._tokens)
        attempt = 0
        while True:
            attempt_timeout = timeout
            if deadline is not None:
                remaining = deadline - self._now()
                if remaining <= 0:
                    raise _NoAnswerInTime(timeout)
                attempt_timeout = min(timeout, remaining)
            send_headers = {
                "Authorization": await auth.header(),
                "User-Agent": self._user_agent,
                "Accept": "application/json",
            }
            if body is not None:
                send_headers["Content-Type"] = "application/json"
            if headers:
                send_headers.update(headers)
            data = form() if form is not None else body
            try:
                response = await self._attempt(
                    method, target, send_headers, data, attempt_timeout, resend_count=attempt
                )
            except _AttemptFailed as failed:
                if not policy.retries_failure(failed.failure, idempotent=idempotent):
                    if failed.failure is _Failure.NO_ANSWER:
                        raise _NoAnswerInTime(attempt_timeout) from None
                    # The request may have reached the server: never send it twice.
                    unknown = UploadOutcomeUnknownError if form is not None else RequestMayHaveRunError
                    raise unknown(
                        f"{method} {target} failed after the request was sent ({failed.reason}); it was "
                        "not retried because it may have run.",
                        method=method,
                        url=target,
                    ) from failed.error
                if failed.failure is _Failure.NO_ANSWER and attempt >= policy.max_retries:
                    raise _NoAnswerInTime(attempt_timeout) from None
                delay = policy.delay(attempt, None, self._random)
                if attempt >= policy.max_retries or not self._in_time(deadline, delay):
                    gave_up = (
                        RequestNotSentError if failed.failure is _Failure.NOT_SENT else RequestMayHaveRunError
                    )
                    raise gave_up(
                        f"{method} {target} failed after {attempt + 1} attempt(s): {failed.reason}",
                        method=method,
                        url=target,
                    ) from failed.error
                reason = failed.reason
            else:
                if auth.retry_after_rejection(response):
                    continue
                status = response.status
                if 200 <= status < 300:
                    return response
                delay = policy.delay(attempt, _parse_retry_after(response.headers), self._random)
                if not (
                    policy.retries_status(status, idempotent=idempotent)
                    and attempt < policy.max_retries
                    and self._in_time(deadline, delay)
                ):
                    raise self._http_error(request, status, response.headers, response.body, target, attempt)
                reason = f"answered {status}"
            logger.info(
                "%s %s: %s; retry %d/%d in %.2fs",
                method,
                target,
                reason,
                attempt + 1,
                policy.max_retries,
                delay,
            )
            attempt += 1
            note_retry()
            await self._sleep(delay)

    async def _attempt(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        data: aiohttp.FormData | bytes | None,
        timeout: float,
        *,
        resend_count: int = 0,
    ) -> _Response:
        """One HTTP exchange, whatever its status; a failure to get an answer raises
        :class:`_AttemptFailed` saying whether the request can have reached the server.
        ``resend_count``: how many attempts of the same request came before (for its span)."""
        client_timeout = aiohttp.ClientTimeout(
            total=timeout, sock_connect=min(timeout, self._request_timeout)
        )
        session = self._get_session()
        with http_attempt(method, target, resend_count) as span:
            try:
                async with session.request(
                    method,
                    URL(target, encoded=True),
                    # W3C trace context, so a server that traces (the local pool does) continues it.
                    headers=with_trace_context(headers),
                    timeout=client_timeout,
                    allow_redirects=False,
                    # True is aiohttp's own default: verify with the system's trust store.
                    ssl=self._ssl if self._ssl is not None else True,
                    data=data,
                ) as resp:
                    payload = await resp.read()
                    http_status(span, resp.status)
                    return _Response(resp.status, CIMultiDict(resp.headers), payload, method, target)
            except _ConnectionTimeoutError as exc:
                raise _AttemptFailed(_Failure.NOT_SENT, f"connection timed out: {exc}", exc) from exc
            except aiohttp.ClientSSLError as exc:
                # A TLS failure will not fix itself on a retry.
                raise RequestNotSentError(
                    f"TLS error talking to {target}: {exc}. For a local pool with a self-signed "
                    "certificate pass ssl=<SSLContext trusting it>.",
                    method=method,
                    url=target,
                ) from exc
            except aiohttp.ClientConnectorError as exc:
                raise _AttemptFailed(_Failure.NOT_SENT, f"could not connect: {exc}", exc) from exc
            except asyncio.TimeoutError as exc:
                raise _AttemptFailed(_Failure.NO_ANSWER, f"no answer within {timeout:g} s", exc) from exc
            except aiohttp.ClientError as exc:
                raise _AttemptFailed(_Failure.BROKEN, f"{type(exc).__name__}: {exc}", exc) from exc

    def _in_time(self, deadline: float | None, delay: float) -> bool:
        """Whether waiting ``delay`` seconds still leaves time for another attempt."""
        return deadline is None or self._now() + delay < deadline

    def _http_error(
        self,
        request: Request,
        status: int,
        headers: CIMultiDict[str] | CIMultiDictProxy[str],
        payload: bytes,
        url: str,
        retries: int,
    ) -> SessionsHTTPError:
        body_code, body_message = parse_error_body(payload)
        error_code = headers.get("x-ms-error-code") or body_code
        text = payload.decode("utf-8", "replace")
        said = (body_message or "").strip()
        if len(said) > _SAID_PREVIEW_CHARS:
            said = said[:_SAID_PREVIEW_CHARS] + "..."
        cls = error_class_for_status(status)
        pool_full = (status == 404 and request.creates_session) or (
            400 <= status < 500 and _looks_pool_full(error_code, body_message)
        )
        if pool_full:
            cls = PoolFullError
            message = (
                "The session pool could not allocate a session: it may be at maxConcurrentSessions "
                "(the service answers 404 then). Delete idle sessions, wait for them to expire, or raise "
                "the pool's maxConcurrentSessions; also check the endpoint is right."
            )
        elif status == 401:
            message = (
                "Authentication failed: the token is missing, invalid or expired (a fresh token was tried)."
            )
        elif status == 403:
            message = (
                f"Permission denied: the caller needs the '{SESSION_EXECUTOR_ROLE}' role on the session pool."
            )
        elif status == 404:
            message = "Not found."
        elif status == 413:
            message = "The upload is larger than the service accepts (128 MB)."
        elif status in (429, 503):
            tries = "retry" if retries == 1 else "retries"
            message = f"The service is busy (HTTP {status}); gave up after {retries} {tries}."
        else:
            message = f"The service answered HTTP {status}."
        if said:
            message = f"{message} Service said: {said}"
        return cls(
            status,
            message,
            error_code=error_code,
            body=text,
            headers=dict(headers),
            method=request.method,
            url=url,
            retry_after=_parse_retry_after(headers),
        )

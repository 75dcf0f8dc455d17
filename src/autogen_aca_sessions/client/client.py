"""The async sessions client: one method per operation of the data plane.

Wire formats live in ``client/contracts`` (one module per contract); how a request goes out
(transport, tokens, retries) in ``client/_send.py``; this module builds each operation's request,
polls executions and parses answers.
"""

from __future__ import annotations

import platform
import ssl as ssl_module
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp

from autogen_aca_sessions.client._retry import IDEMPOTENT_METHODS, RetryPolicy, parse_retry_after
from autogen_aca_sessions.client._send import Answer, NoAnswerInTime, Sender
from autogen_aca_sessions.client._urls import PoolUrls
from autogen_aca_sessions.client.aiohttp_transport import AiohttpTransport
from autogen_aca_sessions.client.auth import TOKEN_SCOPE, TokenProvider, TokenSource
from autogen_aca_sessions.client.checks import (
    is_loopback_host,
    refuse_control_characters,
    validate_endpoint,
    validate_identifier,
    validate_name,
    validate_timeout,
)
from autogen_aca_sessions.client.clock import Clock, SystemClock
from autogen_aca_sessions.client.closing import AsyncClosing
from autogen_aca_sessions.client.contracts import Contract, Request, contract_for
from autogen_aca_sessions.client.contracts._common import load_json
from autogen_aca_sessions.client.errors import (
    ConfigurationError,
    ExecutionTimeoutError,
    RequestMayHaveRunError,
    SessionsError,
    UploadOutcomeUnknownError,
)
from autogen_aca_sessions.client.limits import DEFAULT_API_VERSION, DEFAULT_MAX_OUTPUT_CHARS
from autogen_aca_sessions.client.models import (
    ApiVersion,
    ExecutionResult,
    PoolMetadata,
    SessionFile,
    SessionInfo,
)
from autogen_aca_sessions.client.transport import FileUpload, Transport
from autogen_aca_sessions.telemetry import note_poll, traced_operation

__all__ = ["DEFAULT_USER_AGENT", "RetryPolicy", "SessionsClient"]

_Item = TypeVar("_Item")

_MAX_PAGES = 1000
_SESSION_GUID_HEADER = "x-ms-session-guid"


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


class SessionsClient(AsyncClosing):
    """Async client for one session pool's data plane.

    Requests go out through one :class:`~autogen_aca_sessions.client.transport.Transport`; the
    default, :class:`~autogen_aca_sessions.client.aiohttp_transport.AiohttpTransport`, keeps one
    ``aiohttp.ClientSession`` (created lazily, inside the running loop) for the client's
    lifetime; ``close()`` or ``async with`` releases it. Every method is a plain coroutine:
    cancelling the calling task cancels the request in flight.

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
        session: An ``aiohttp.ClientSession`` for the default transport to use instead of its
            own (never closed by us).
        ssl: Passed by the default transport to every request (an ``SSLContext`` for a
            self-signed local pool, False to skip verification); None uses aiohttp's default
            verification.
        user_agent: Prefix for the ``User-Agent`` header.
        token_scope: Scope tokens are requested for.
        execution_grace_seconds: How long past ``timeout_seconds`` to wait for an execution.
        retry_backoff_base: First backoff delay, doubled per retry (with jitter).
        retry_backoff_max: Longest delay between retries (also caps ``Retry-After``).
        poll_interval: First delay between polls of an asynchronous execution.
        allow_insecure_http: Accept an ``http://`` endpoint on a host that is not loopback
            (tokens then travel unencrypted). Loopback hosts (127.0.0.0/8, ::1, localhost) are
            always accepted over http.
        transport: Sends each attempt (see :mod:`autogen_aca_sessions.client.transport`); None
            uses an :class:`~autogen_aca_sessions.client.aiohttp_transport.AiohttpTransport`
            built from ``session`` and ``ssl``. A transport passed here is never closed by us,
            and cannot be combined with ``session`` or ``ssl`` (give those to it).
        clock: Time, waiting and retry jitter (see :class:`~autogen_aca_sessions.client.clock.Clock`);
            None uses the system's.
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
        transport: Transport | None = None,
        clock: Clock | None = None,
    ) -> None:
        endpoint = validate_endpoint(pool_management_endpoint, allow_insecure_http=allow_insecure_http)
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
        if execution_grace_seconds < 0:
            raise ValueError("execution_grace_seconds must be >= 0")
        if transport is not None and (session is not None or ssl is not None):
            raise ValueError("pass session and ssl to the transport, not beside it")
        if user_agent:
            refuse_control_characters("user_agent", user_agent)
        self._owns_transport = transport is None
        self._transport: Transport = transport or AiohttpTransport(session=session, ssl=ssl)
        self._contract: Contract = contract_for(self._api_version)
        self._urls = PoolUrls(endpoint, self._api_version)
        # A loopback endpoint without a credential is a local pool asked without its key: its
        # first call raises one CredentialError saying so (where DefaultAzureCredential would
        # otherwise be created), instead of DefaultAzureCredential's failures.
        self._tokens = TokenProvider(
            credential, scope=token_scope, local_endpoint=is_loopback_host(urlsplit(endpoint).hostname or "")
        )
        self._max_output_chars = max_output_chars
        self._request_timeout = request_timeout
        self._clock: Clock = clock or SystemClock()
        self._sender = Sender(
            self._transport,
            self._tokens,
            RetryPolicy(max_retries, retry_backoff_base, retry_backoff_max),
            self._clock,
            user_agent=f"{user_agent} {DEFAULT_USER_AGENT}" if user_agent else DEFAULT_USER_AGENT,
            request_timeout=request_timeout,
        )
        self._grace = execution_grace_seconds
        self._poll_interval = poll_interval
        self._closed = False

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
    def supports_recursive_listing(self) -> bool:
        """Whether ``list_files(recursive=True)`` exists on this api-version (asked of its contract)."""
        return self._contract.lists_recursively

    @property
    def endpoint(self) -> str:
        """The pool management endpoint, without a trailing slash."""
        return self._urls.endpoint

    @property
    def max_output_chars(self) -> int:
        """The per-stream output limit asked for on 2025-10."""
        return self._max_output_chars

    @property
    def transport(self) -> Transport:
        """What sends each attempt (the default :class:`AiohttpTransport` unless one was passed)."""
        return self._transport

    @property
    def clock(self) -> Clock:
        """Where time, waiting and retry jitter come from."""
        return self._clock

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
        validate_identifier(identifier)
        if not isinstance(code, str):
            raise TypeError("code must be a string")
        seconds = validate_timeout(timeout_seconds)
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
        validate_identifier(identifier)
        if not isinstance(command, str):
            if not command or not all(isinstance(word, str) for word in command):
                raise TypeError("command must be a string or a non-empty sequence of strings")
            command = list(command)
        seconds = validate_timeout(timeout_seconds)
        request = self._contract.shell_request(
            command, timeout_seconds=seconds, max_output_chars=self._max_output_chars
        )
        return await self._run_execution(identifier, request, seconds, operation_id, wait=True)

    @traced_operation("get_execution")
    async def get_execution(self, identifier: str, execution_id: str) -> ExecutionResult:
        """The current state of an execution (new contract)."""
        validate_identifier(identifier)
        validate_name(execution_id, "execution id")
        request = self._contract.get_execution_request(execution_id)
        response = await self._call(request, identifier)
        return self._parse_execution(response, identifier, execution_id)

    async def _run_execution(
        self, identifier: str, request: Request, timeout_seconds: int, operation_id: str | None, *, wait: bool
    ) -> ExecutionResult:
        op_id = operation_id or str(uuid.uuid4())
        started = self._clock.now()
        budget = timeout_seconds + self._grace
        deadline = started + budget

        def gave_up(execution_id: str | None) -> ExecutionTimeoutError:
            return ExecutionTimeoutError(
                identifier, timeout_seconds, round(self._clock.now() - started, 3), execution_id=execution_id
            )

        try:
            # One deadline covers the whole execution, retries after 429/503 included.
            response = await self._send(
                request, identifier, timeout=budget, headers={"operation-id": op_id}, deadline=deadline
            )
        except NoAnswerInTime:
            raise gave_up(op_id) from None
        fallback_id = response.headers.get("operation-id") or op_id
        result = self._parse_execution(response, identifier, fallback_id)
        first_guid = result.session_guid
        if result.status.is_terminal or not wait or not self._contract.executions_pollable:
            return result

        poll_request = self._contract.get_execution_request(result.execution_id or fallback_id)
        poll_url = self._urls.resolve_link(
            response.headers.get("Operation-Location"), identifier
        ) or self._urls.url(poll_request, identifier)
        interval = self._poll_interval
        delay = parse_retry_after(response.headers)
        while True:
            wait_for = interval if delay is None else delay
            remaining = deadline - self._clock.now()
            if remaining <= 0:
                raise gave_up(result.execution_id)
            await self._clock.sleep(min(wait_for, remaining))
            remaining = deadline - self._clock.now()
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
            except NoAnswerInTime:
                continue
            result = self._parse_execution(response, identifier, result.execution_id)
            if result.session_guid is None:
                result.session_guid = first_guid
            if result.status.is_terminal:
                return result
            delay = parse_retry_after(response.headers)
            interval = min(interval * 2, max(self._poll_interval, 2.0))

    def _parse_execution(
        self, response: Answer, identifier: str, execution_id: str | None
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
        validate_identifier(identifier)
        validate_name(name)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes")
        payload = bytes(data)
        request = self._contract.upload_request(path)
        upload = FileUpload(self._contract.upload_field, name, payload)
        # Big uploads need longer than a metadata call: allow about a second per megabyte more.
        timeout = self._request_timeout + len(payload) / 1_000_000
        response = await self._call(request, identifier, timeout=timeout, upload=upload)
        return self._contract.parse_uploaded(load_json(response.body), name)

    @traced_operation("list_files")
    async def list_files(
        self, identifier: str, *, path: str | None = None, recursive: bool = False
    ) -> list[SessionFile]:
        """The files (and directories) in the session's ``/mnt/data`` or ``path`` under it."""
        validate_identifier(identifier)
        request = self._contract.list_files_request(path, recursive)
        return await self._paged(request, identifier, self._contract.parse_file_list)

    @traced_operation("get_file")
    async def get_file(self, identifier: str, name: str, *, path: str | None = None) -> SessionFile:
        """Metadata of one file."""
        validate_identifier(identifier)
        validate_name(name)
        response = await self._call(self._contract.get_file_request(name, path), identifier)
        return self._contract.parse_file(load_json(response.body), name)

    @traced_operation("download_file")
    async def download_file(self, identifier: str, name: str, *, path: str | None = None) -> bytes:
        """The content of one file."""
        validate_identifier(identifier)
        validate_name(name)
        response = await self._call(self._contract.download_request(name, path), identifier)
        return response.body

    @traced_operation("delete_file")
    async def delete_file(self, identifier: str, name: str, *, path: str | None = None) -> None:
        """Delete one file."""
        validate_identifier(identifier)
        validate_name(name)
        await self._call(self._contract.delete_file_request(name, path), identifier)

    # ------------------------------------------------------------------ sessions and pool
    @traced_operation("get_session")
    async def get_session(self, identifier: str) -> SessionInfo:
        """One session's state (2025-02-02-preview and later)."""
        validate_identifier(identifier)
        response = await self._call(self._contract.get_session_request(), identifier)
        return self._contract.parse_session(load_json(response.body), identifier)

    @traced_operation("delete_session")
    async def delete_session(self, identifier: str) -> None:
        """Delete a session now, freeing its pool slot (2025-02-02-preview and later)."""
        validate_identifier(identifier)
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
            url = self._urls.resolve_link(next_link, identifier) if next_link else None
            if url is None:
                break
        return items

    # ------------------------------------------------------------------ sending
    def _open_sender(self) -> Sender:
        if self._closed:
            raise SessionsError("this SessionsClient is closed")
        return self._sender

    async def _send(
        self,
        request: Request,
        identifier: str | None,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        url: str | None = None,
        upload: FileUpload | None = None,
        deadline: float | None = None,
    ) -> Answer:
        sender = self._open_sender()
        target = url or self._urls.url(request, identifier)
        return await sender.send(
            request, target, timeout=timeout, headers=headers, upload=upload, deadline=deadline
        )

    async def _call(
        self,
        request: Request,
        identifier: str | None,
        *,
        timeout: float | None = None,
        url: str | None = None,
        upload: FileUpload | None = None,
    ) -> Answer:
        """Send a request that is not an execution: no answer in time is a connection error."""
        seconds = timeout if timeout is not None else self._request_timeout
        try:
            return await self._send(request, identifier, timeout=seconds, url=url, upload=upload)
        except NoAnswerInTime as exc:
            target = url or self._urls.url(request, identifier)
            idempotent = request.method in IDEMPOTENT_METHODS
            note = "" if idempotent else " The upload may or may not have completed."
            error = RequestMayHaveRunError if idempotent or upload is None else UploadOutcomeUnknownError
            raise error(
                f"{request.method} {target}: {exc}.{note}", method=request.method, url=target
            ) from None

    # ------------------------------------------------------------------ lifecycle
    async def close(self) -> None:
        """Release the default transport's HTTP session (if ours) and any credential we created.
        A transport passed in is left to its owner. Idempotent."""
        self._closed = True
        if self._owns_transport and isinstance(self._transport, AiohttpTransport):
            await self._transport.close()
        await self._tokens.close()

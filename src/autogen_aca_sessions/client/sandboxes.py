"""An async client for the ACA Sandboxes data plane (``2026-02-01-preview``), on our transport.

Why our own and not the SDK's ``aio`` client: docs/design.md, "Sandboxes client". In short, it
shares :class:`~autogen_aca_sessions.client._send.Sender` with :class:`SessionsClient`, so a shell
command (a POST) is never sent twice once it may have run, tokens refresh the same way, one
connection pool is reused, and failures are the typed errors of :mod:`.errors`.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from autogen_aca_sessions.client._retry import RetryPolicy
from autogen_aca_sessions.client._send import Answer, NoAnswerInTime, Sender
from autogen_aca_sessions.client.aiohttp_transport import AiohttpTransport
from autogen_aca_sessions.client.auth import TOKEN_SCOPE, TokenProvider, TokenSource
from autogen_aca_sessions.client.clock import SystemClock
from autogen_aca_sessions.client.contracts import Request, Service
from autogen_aca_sessions.client.errors import ConfigurationError, SessionsError
from autogen_aca_sessions.client.sandbox_stream import (
    OutputCallback,
    OutputChunk,
    OutputStream,
    StreamNotServed,
    deliver,
    open_stream,
    run_streamed,
)
from autogen_aca_sessions.client.transport import Transport

__all__ = [
    "SANDBOXES_API_VERSION",
    "OutputCallback",
    "OutputChunk",
    "OutputStream",
    "SandboxFile",
    "SandboxInfo",
    "SandboxState",
    "SandboxesClient",
    "ShellResult",
    "SuspendMode",
]

SANDBOXES_API_VERSION = "2026-02-01-preview"
"""The api-version the official SDK (0.1.0b4) sends; the local server serves it."""

_USER_AGENT = "autogen-aca-sessions-sandboxes"


class SandboxState(enum.Enum):
    """A sandbox's state as the data plane names it."""

    RUNNING = "Running"
    SUSPENDED = "Suspended"
    STOPPED = "Stopped"
    PENDING = "Pending"
    FAILED = "Failed"
    DELETING = "Deleting"
    UNKNOWN = "Unknown"

    @classmethod
    def from_wire(cls, value: object) -> SandboxState:
        """The state for a wire value (case-insensitive); UNKNOWN for one we do not know."""
        if isinstance(value, str):
            for state in cls:
                if state.value.lower() == value.lower():
                    return state
        return cls.UNKNOWN


class SuspendMode(enum.Enum):
    """What an automatic suspend keeps."""

    MEMORY = "Memory"
    """Memory and disk: processes continue where they were."""
    DISK = "Disk"
    """Disk only: processes end."""


@dataclass(frozen=True)
class SandboxInfo:
    """One sandbox as the data plane describes it."""

    id: str
    """The sandbox id (the name in its URL)."""
    state: SandboxState
    """Its state."""
    labels: dict[str, str]
    """Its labels."""
    raw: dict[str, Any]
    """The whole JSON body, for fields this model does not name."""


@dataclass(frozen=True)
class ShellResult:
    """The outcome of one ``executeShellCommand``."""

    exit_code: int
    """The command's exit code (non-zero after a timeout)."""
    stdout: str
    """Its standard output (what was captured, also after a timeout)."""
    stderr: str
    """Its standard error."""
    timed_out: bool
    """Whether the command was ended by its timeout."""
    truncated: bool
    """Whether the output was cut to the service's limit."""


@dataclass(frozen=True)
class SandboxFile:
    """One entry of a sandbox directory listing."""

    name: str
    """Its name."""
    path: str
    """Its absolute path in the sandbox."""
    size: int
    """Its size in bytes."""
    is_directory: bool
    """Whether it is a directory."""


def _sandbox(body: Any) -> SandboxInfo:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise SessionsError(f"The service answered without a sandbox id: {str(body)[:200]}")
    labels = body.get("labels")
    return SandboxInfo(
        id=body["id"],
        state=SandboxState.from_wire(body.get("state")),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        raw=body,
    )


def _json(answer: Answer) -> Any:
    try:
        return json.loads(answer.body)
    except ValueError as exc:
        raise SessionsError(f"{answer.method} {answer.url} answered with a body that is not JSON") from exc


def _lifecycle(idle_seconds: float | None, mode: SuspendMode) -> dict[str, Any]:
    if idle_seconds is None:
        # The mode also says what an explicit stop keeps.
        return {"autoSuspendPolicy": {"enabled": False, "mode": mode.value}}
    return {"autoSuspendPolicy": {"enabled": True, "interval": idle_seconds, "mode": mode.value}}


class SandboxesClient:
    """The data plane of one sandbox group.

    Args:
        endpoint: The data-plane base URL (``https://management.{region}.azuredevcompute.io`` on
            Azure, the local server's base URL locally).
        subscription_id, resource_group, sandbox_group: Where the group is.
        credential: A token credential, a callable returning a token, or a token string.
        transport: The HTTP transport (default: one aiohttp session, reused for every request).
        request_timeout: Seconds for one request besides shell commands.
        max_retries: Retries of a request the service turned away, or of an idempotent one.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        subscription_id: str,
        resource_group: str,
        sandbox_group: str,
        credential: TokenSource | None = None,
        transport: Transport | None = None,
        request_timeout: float = 60.0,
        max_retries: int = 3,
    ) -> None:
        if not endpoint.startswith(("https://", "http://")):
            raise ConfigurationError("endpoint", f"must be an http(s) URL, not {endpoint!r}")
        for name, value in (
            ("subscription_id", subscription_id),
            ("resource_group", resource_group),
            ("sandbox_group", sandbox_group),
        ):
            if not value:
                raise ConfigurationError(name, "must not be empty")
        self.endpoint = endpoint
        """The data-plane base URL."""
        self.subscription_id = subscription_id
        """The group's subscription."""
        self.resource_group = resource_group
        """The group's resource group."""
        self.sandbox_group = sandbox_group
        """The group's name."""
        local = endpoint.startswith(("http://127.", "http://localhost", "https://127.", "https://localhost"))
        self._base = (
            endpoint.rstrip("/")
            + f"/subscriptions/{quote(subscription_id, safe='')}"
            + f"/resourceGroups/{quote(resource_group, safe='')}"
            + f"/sandboxGroups/{quote(sandbox_group, safe='')}"
        )
        self._transport = transport or AiohttpTransport()
        self._owns_transport = transport is None
        self._tokens = TokenProvider(credential, scope=TOKEN_SCOPE, local_endpoint=local)
        self._timeout = request_timeout
        self._sender = Sender(
            self._transport,
            self._tokens,
            RetryPolicy(max_retries, 0.5, 10.0),
            SystemClock(),
            user_agent=_USER_AGENT,
            request_timeout=request_timeout,
        )
        self._stream_served: bool | None = None
        """Whether the server serves ``exec/stream`` (None until the first try)."""

    async def __aenter__(self) -> SandboxesClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the transport this client created (not one passed in)."""
        if self._owns_transport and isinstance(self._transport, AiohttpTransport):
            await self._transport.close()

    def _url(self, path: str, params: dict[str, str] | None = None) -> str:
        query = urlencode({"api-version": SANDBOXES_API_VERSION, **(params or {})})
        return f"{self._base}/{path}?{query}"

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        request = Request(method, path, json=body, per_session=False, service=Service.SANDBOXES)
        return await self._sender.send(request, self._url(path, params), timeout=timeout or self._timeout)

    @staticmethod
    def _sid(sandbox_id: str) -> str:
        if not sandbox_id:
            raise ConfigurationError("sandbox_id", "must not be empty")
        return "sandboxes/" + quote(sandbox_id, safe="")

    async def create(
        self,
        image: str = "python-3.12",
        *,
        labels: dict[str, str] | None = None,
        idle_suspend_seconds: float | None = None,
        suspend_mode: SuspendMode = SuspendMode.MEMORY,
    ) -> SandboxInfo:
        """Create a sandbox from a public disk image; with ``idle_suspend_seconds`` it suspends
        itself after that long idle (keeping memory in :attr:`SuspendMode.MEMORY`)."""
        body: dict[str, Any] = {
            "sourcesRef": {"diskImage": {"name": image, "isPublic": True}},
            "labels": labels or {},
            "lifecycle": _lifecycle(idle_suspend_seconds, suspend_mode),
        }
        return _sandbox(_json(await self._send("PUT", "sandboxes", body=body)))

    async def get(self, sandbox_id: str) -> SandboxInfo:
        """The sandbox; :class:`~.errors.NotFoundError` when there is none."""
        return _sandbox(_json(await self._send("GET", self._sid(sandbox_id))))

    async def delete(self, sandbox_id: str) -> None:
        """Delete the sandbox; :class:`~.errors.NotFoundError` when there is none."""
        await self._send("DELETE", self._sid(sandbox_id))

    async def stop(self, sandbox_id: str) -> SandboxInfo:
        """Suspend the sandbox (what it keeps follows its lifecycle's suspend mode)."""
        return _sandbox(_json(await self._send("POST", self._sid(sandbox_id) + "/stop", body={})))

    async def resume(self, sandbox_id: str) -> SandboxInfo:
        """Resume a suspended sandbox."""
        return _sandbox(_json(await self._send("POST", self._sid(sandbox_id) + "/resume", body={})))

    async def set_lifecycle(
        self, sandbox_id: str, idle_suspend_seconds: float | None, mode: SuspendMode = SuspendMode.MEMORY
    ) -> SandboxInfo:
        """Change when the sandbox suspends itself (None: never)."""
        body = {"lifecycle": _lifecycle(idle_suspend_seconds, mode)}
        return _sandbox(_json(await self._send("POST", self._sid(sandbox_id) + "/lifecycle", body=body)))

    async def exec_shell(
        self, sandbox_id: str, command: str, *, working_directory: str | None = None, timeout: float = 60.0
    ) -> ShellResult:
        """Run ``command`` with the sandbox's shell and wait for it.

        Never sent twice once it may have run: a broken connection after sending raises
        :class:`~.errors.RequestMayHaveRunError`; no answer in time raises
        :class:`~.errors.ExecutionTimeoutError`-like :class:`SessionsError`.
        """
        body: dict[str, Any] = {"command": command, "timeoutInSeconds": timeout}
        if working_directory is not None:
            body["workingDirectory"] = working_directory
        try:
            # The service ends the command at ``timeout``; the wire gets a margin for the answer.
            answer = await self._send(
                "POST", self._sid(sandbox_id) + "/executeShellCommand", body=body, timeout=timeout + 30.0
            )
        except NoAnswerInTime as exc:
            raise SessionsError(
                f"No answer to a shell command within {exc.waited:g} s; it may still run."
            ) from exc
        data = _json(answer)
        if not isinstance(data, dict):
            raise SessionsError("executeShellCommand answered with a body that is not an object")
        return ShellResult(
            exit_code=int(data.get("exitCode", -1)),
            stdout=str(data.get("stdout") or ""),
            stderr=str(data.get("stderr") or ""),
            timed_out=bool(data.get("timedOut", False)),
            truncated=bool(data.get("truncated", False)),
        )

    async def exec_stream(
        self,
        sandbox_id: str,
        command: str,
        *,
        on_output: OutputCallback,
        working_directory: str | None = None,
        timeout: float = 60.0,
    ) -> ShellResult:
        """Run ``command`` with the sandbox's shell, handing its output to ``on_output`` while it
        runs; returns what :meth:`exec_shell` would (the chunks joined, the exit code).

        ``on_output`` gets :class:`~.sandbox_stream.OutputChunk` s (stdout or stderr, text) as the
        command writes them; it may be a plain or a coroutine function. It is awaited before the
        next chunk is read, so a slow callback slows the command down rather than piling output up.

        Over ``GET {s}/exec/stream``, a WebSocket on this client's HTTP session and token. Where
        the server does not serve that stream (its upgrade is answered 404, 405 or 501, or it does
        not select our subprotocol, as real Azure, whose stream framing is undocumented, would
        not; or this client has a transport other than aiohttp's), the command runs through
        :meth:`exec_shell` instead and its output reaches ``on_output`` once, at the end (stdout,
        then stderr). After a 405, a 501 or another subprotocol the client does not try the
        stream again; a 404 (a gateway's, or no such route) is tried again next time, and a 404
        with the code ``SandboxNotFound`` is :class:`~.errors.NotFoundError`.

        Never run twice: nothing runs before the server accepted the stream, and a failure after
        the command was sent is :class:`~.errors.RequestMayHaveRunError`, not a retry or a fallback.
        Closing the stream early (cancelling this call, ``on_output`` raising, no end within
        ``timeout`` + 30 s) ends the command on the server: its process group is killed.
        """
        body: dict[str, Any] = {"command": command, "timeoutInSeconds": timeout}
        if working_directory is not None:
            body["workingDirectory"] = working_directory
        if self._stream_served is not False:
            url = self._ws_url(self._sid(sandbox_id) + "/exec/stream")
            try:
                socket = await open_stream(
                    self._transport,
                    url,
                    self._tokens,
                    self._sender.policy,
                    self._sender.clock,
                    user_agent=_USER_AGENT,
                    timeout=self._timeout,
                )
            except StreamNotServed as not_served:
                if not_served.lasting:
                    self._stream_served = False
            else:
                self._stream_served = True
                ran = await run_streamed(socket, url, body, on_output, wait=timeout + 30.0)
                return ShellResult(ran.exit_code, ran.stdout, ran.stderr, ran.timed_out, ran.truncated)
        result = await self.exec_shell(
            sandbox_id, command, working_directory=working_directory, timeout=timeout
        )
        for stream, text in ((OutputStream.STDOUT, result.stdout), (OutputStream.STDERR, result.stderr)):
            if text:
                await deliver(on_output, OutputChunk(stream, text))
        return result

    def _ws_url(self, path: str) -> str:
        url = self._url(path)
        if url.startswith("https://"):
            return "wss://" + url.removeprefix("https://")
        return "ws://" + url.removeprefix("http://")

    async def write_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` (absolute) in the sandbox, creating its directories."""
        request = Request("PUT", "files", per_session=False, service=Service.SANDBOXES)
        url = self._url(self._sid(sandbox_id) + "/files", {"path": path, "createDirs": "true"})
        await self._sender.send(
            request,
            url,
            timeout=self._timeout,
            headers={"Content-Type": "application/octet-stream"},
            raw_body=data,
        )

    async def read_file(self, sandbox_id: str, path: str) -> bytes:
        """The bytes of ``path`` in the sandbox."""
        answer = await self._send("GET", self._sid(sandbox_id) + "/files", params={"path": path})
        return answer.body

    async def list_files(self, sandbox_id: str, path: str) -> list[SandboxFile]:
        """The entries of directory ``path`` in the sandbox."""
        data = _json(await self._send("GET", self._sid(sandbox_id) + "/files/list", params={"path": path}))
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise SessionsError("files/list answered without 'entries'")
        return [
            SandboxFile(
                name=str(e.get("name", "")),
                path=str(e.get("path", "")),
                size=int(e.get("size") or 0),
                is_directory=bool(e.get("isDirectory", e.get("isDir", False))),
            )
            for e in entries
            if isinstance(e, dict)
        ]

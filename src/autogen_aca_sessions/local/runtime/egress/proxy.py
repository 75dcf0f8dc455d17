"""The egress proxy's connection handler: one sandbox's connections, decided and relayed.

Every connection comes in over the sandbox's own Unix socket, so who is asking is known
from the socket, never from anything the sandbox says. Per connection:

1. read one request head (bounded size, bounded time) and parse it strictly (``http1``);
2. decide it against the policy in force *now* (a policy change applies to the next one);
3. refuse IP literals no rule names, resolve the name here, and refuse guarded addresses
   (``destinations``) even in Audit mode;
4. plain HTTP: apply a Transform's headers (secrets read at this moment, never sent to the
   sandbox), forward exactly one request with ``Connection: close`` and its exactly-framed
   body, relay the answer; HTTPS: connect, answer 200, read the ClientHello and check its
   SNI against the ``CONNECT`` host, then replay it and splice both ways.

Denials answer 403 with a plain-text reason at once; nothing waits on a denied host.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._timeouts import within
from .decisions import Decision, DecisionAction, DecisionLog
from .destinations import DestinationGuard, IPAddress, ResolveError, Resolver
from .http1 import BodyFraming, HttpError, RequestHead, parse_request_head, relay_body
from .policy import EgressPolicy, HeaderOperationKind
from .sni import NotTLSError, read_client_hello
from .verdict import Scheme, Verdict, decide

__all__ = ["ConnectionCount", "ProxyLimits", "SandboxEgress", "SecretLookup", "handle_connection"]

logger = logging.getLogger(__name__)

SecretLookup = Callable[[str, "str | None"], "str | None"]
"""``(secret_id, key) -> value``: the group's secrets, read when a Transform applies."""

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
        "host",
        # The proxy answers 100-continue itself (below): upstream gets the body at once.
        "expect",
    }
)
_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}
_ids = itertools.count(1)


@dataclass(frozen=True)
class ProxyLimits:
    """The bounds that keep the proxy's memory and time finite whatever the sandbox sends."""

    max_head_bytes: int = 16 * 1024
    """Largest request head (request line and headers); above it 431."""
    head_seconds: float = 10.0
    """Time to send a whole request head (slowloris bound); then 408."""
    hello_seconds: float = 10.0
    """Time to send a whole ClientHello after ``200 Connection Established``."""
    connect_seconds: float = 10.0
    """Time to connect upstream; then 504."""
    idle_seconds: float = 120.0
    """A tunnel or relay with no byte either way for this long is closed."""
    max_connections_per_sandbox: int = 64
    """Concurrent connections of one sandbox; beyond it 503 with Retry-After."""
    max_connections: int = 1024
    """Concurrent connections of all sandboxes together (each costs the server two file
    descriptors; the data plane must keep its own); beyond it 503 with Retry-After."""
    max_lingering: int = 64
    """Connections refused for the caps that may linger to deliver their 503 readably; beyond
    it they are closed at once (a sandbox connecting in a loop must not hold descriptors)."""


@dataclass
class ConnectionCount:
    """Connections open through one gateway, all sandboxes together."""

    active: int = 0
    """Open now."""
    lingering: int = 0
    """Refused for the caps and still draining their request (see ``max_lingering``)."""


@dataclass
class SandboxEgress:
    """One sandbox's egress state: its policy (swappable at any time) and its decisions."""

    sandbox_id: str
    """Whose connections these are."""
    policy: EgressPolicy
    """The policy in force; replaced whole by ``update_policy`` (read once per connection)."""
    secrets: SecretLookup | None = None
    """The group's secrets, for Transform values."""
    log: DecisionLog = field(default_factory=DecisionLog)
    """Its decisions."""
    active: int = 0
    """Connections open now."""
    connections: set[asyncio.StreamWriter] = field(default_factory=set)
    """Open client streams (closed when the sandbox is detached)."""
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    """The tasks serving them (cancelled when the sandbox is detached)."""


class _Refused(Exception):
    def __init__(self, status: int, reason: str, *, rule: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.rule = rule


def _response(status: int, reason: str, *, retry_after: int | None = None) -> bytes:
    body = f"aca-sessions egress proxy: {reason}\n".encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "X-Aca-Egress: denied" if status == 403 else "X-Aca-Egress: error",
    ]
    if retry_after is not None:
        lines.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Activity:
    """When bytes last moved either way, so a one-way stream is not idle."""

    def __init__(self) -> None:
        self.last = time.monotonic()


async def _pipe(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, activity: _Activity, idle: float
) -> None:
    while True:
        try:
            chunk = await within(src.read(65536), idle)
        except asyncio.TimeoutError:
            if time.monotonic() - activity.last < idle:
                continue
            raise
        if not chunk:
            if dst.can_write_eof():
                with contextlib.suppress(OSError):
                    dst.write_eof()
            return
        activity.last = time.monotonic()
        dst.write(chunk)
        await dst.drain()


_LINGER_BYTES = 4 * 1024 * 1024
"""Most request bytes discarded after an error answer (see :func:`_answer_and_linger`)."""
_LINGER_SECONDS = 2.0
"""Longest wait for the client to stop sending after an error answer."""


async def _answer_and_linger(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes
) -> None:
    """Send an error answer, then read and drop what the client still sends (bounded).

    Closing a socket with unread input makes the kernel send a reset, which can destroy
    the answer before the client reads it; a client still uploading a giant head would
    see "connection reset" instead of the 431 that explains it.
    """
    with contextlib.suppress(Exception):
        writer.write(answer)
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _LINGER_SECONDS
        discarded = 0
        while discarded < _LINGER_BYTES:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            chunk = await within(reader.read(65536), remaining)
            if not chunk:
                break
            discarded += len(chunk)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await within(writer.wait_closed(), 2)


class _Connection:
    def __init__(
        self,
        state: SandboxEgress,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        resolver: Resolver,
        guard: DestinationGuard,
        limits: ProxyLimits,
    ) -> None:
        self.state = state
        self.reader = reader
        self.writer = writer
        self.resolver = resolver
        self.guard = guard
        self.limits = limits
        self.id = f"{state.sandbox_id}-{next(_ids)}"
        self.head: RequestHead | None = None

    def _log(self, action: DecisionAction, *, rule: str | None, reason: str) -> None:
        head = self.head
        if head is None:
            return
        decision = Decision(
            timestamp=datetime.datetime.now(datetime.timezone.utc),
            host=head.target.host,
            method=head.method,
            path=head.target.path,
            scheme=Scheme.HTTPS if head.is_connect else Scheme.HTTP,
            action=action,
            matched_rule=rule,
            reason=reason,
            connection_id=self.id,
        )
        self.state.log.record(decision)
        logger.info(
            "egress %s %s %s %s: %s",
            self.state.sandbox_id,
            action.value,
            head.method,
            head.target.host,
            reason,
        )

    async def run(self) -> None:
        try:
            await self._serve()
        except _Refused as refused:
            self._log(DecisionAction.DENY, rule=refused.rule, reason=refused.reason)
            await _answer_and_linger(self.reader, self.writer, _response(refused.status, refused.reason))
        except HttpError as exc:
            await _answer_and_linger(self.reader, self.writer, _response(exc.status, exc.reason))
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            await _close(self.writer)

    async def _read_head(self) -> RequestHead:
        try:
            data = await within(self.reader.readuntil(b"\r\n\r\n"), self.limits.head_seconds)
        except asyncio.LimitOverrunError as exc:
            raise HttpError(
                431, f"the request head is larger than {self.limits.max_head_bytes} bytes"
            ) from exc
        except asyncio.TimeoutError as exc:
            raise HttpError(408, "the request head did not arrive in time") from exc
        except asyncio.IncompleteReadError as exc:
            if len(exc.partial) >= self.limits.max_head_bytes:
                raise HttpError(431, "the request head is too large") from exc
            raise
        return parse_request_head(data)

    async def _serve(self) -> None:
        head = self.head = await self._read_head()
        policy = self.state.policy  # the policy in force for this whole connection
        scheme = Scheme.HTTPS if head.is_connect else Scheme.HTTP
        host = head.target.host
        verdict = decide(policy, host=host, scheme=scheme, method=head.method, path=head.target.path)
        literal = _is_ip(host)
        if literal and not verdict.names_literal:
            raise _Refused(403, f"{host} is an IP literal; only a rule naming that exact address reaches it")
        if not verdict.allowed:
            raise _Refused(403, verdict.reason, rule=verdict.matched_rule)
        address = await self._destination(host, head.target.port, explicit=literal and verdict.names_literal)
        if head.is_connect:
            await self._tunnel(head, verdict, address)
        else:
            await self._forward(head, verdict, address)

    async def _destination(self, host: str, port: int, *, explicit: bool) -> IPAddress:
        if _is_ip(host):
            candidates = [ipaddress.ip_address(host)]
        else:
            try:
                candidates = await within(self.resolver.resolve(host, port), self.limits.connect_seconds)
            except (ResolveError, asyncio.TimeoutError) as exc:
                raise HttpError(502, f"{host} could not be resolved by the egress proxy") from exc
            explicit = explicit or self.resolver.explicit
        reasons = []
        for candidate in candidates:
            reason = self.guard.refusal(candidate, port, explicit=explicit)
            if reason is None:
                return candidate
            reasons.append(reason)
        raise _Refused(403, reasons[0])

    async def _connect(
        self, address: IPAddress, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await within(asyncio.open_connection(str(address), port), self.limits.connect_seconds)
        except asyncio.TimeoutError as exc:
            raise HttpError(504, f"connecting to {address}:{port} timed out") from exc
        except OSError as exc:
            raise HttpError(502, f"connecting to {address}:{port} failed ({exc.strerror or exc})") from exc

    def _allowed_action(self, verdict: Verdict) -> DecisionAction:
        if verdict.would_deny:
            return DecisionAction.AUDIT
        return DecisionAction.TRANSFORM if verdict.headers else DecisionAction.ALLOW

    def _record_allowed(self, verdict: Verdict) -> None:
        # An audited connection goes out, but is logged among the denied: that is Audit's point.
        self._log(self._allowed_action(verdict), rule=verdict.matched_rule, reason=verdict.reason)

    async def _tunnel(self, head: RequestHead, verdict: Verdict, address: IPAddress) -> None:
        up_reader, up_writer = await self._connect(address, head.target.port)
        try:
            self.writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await self.writer.drain()
            try:
                hello = await within(read_client_hello(self.reader), self.limits.hello_seconds)
            except NotTLSError as exc:
                self._log(DecisionAction.DENY, rule=None, reason=f"not TLS: {exc}")
                return
            except asyncio.TimeoutError:
                self._log(DecisionAction.DENY, rule=None, reason="no ClientHello in time")
                return
            host = head.target.host
            if hello.server_name is None and not _is_ip(host):
                self._log(DecisionAction.DENY, rule=None, reason="the ClientHello names no server (SNI)")
                return
            if hello.server_name is not None and hello.server_name != host:
                self._log(
                    DecisionAction.DENY,
                    rule=None,
                    reason=f"the TLS SNI {hello.server_name!r} does not match the CONNECT host {host!r}",
                )
                return
            self._record_allowed(verdict)
            up_writer.write(hello.raw)
            await up_writer.drain()
            activity = _Activity()
            await asyncio.gather(
                _pipe(self.reader, up_writer, activity, self.limits.idle_seconds),
                _pipe(up_reader, self.writer, activity, self.limits.idle_seconds),
            )
        finally:
            await _close(up_writer)

    def _outgoing_headers(self, head: RequestHead, verdict: Verdict) -> list[tuple[str, str]]:
        listed = {
            token.strip().lower()
            for name, value in head.headers
            if name.lower() in ("connection", "proxy-connection")
            for token in value.split(",")
        }
        framing = {"content-length", "transfer-encoding"}
        headers = [
            (n, v)
            for n, v in head.headers
            if n.lower() not in _HOP_BY_HOP and (n.lower() not in listed or n.lower() in framing)
        ]
        for operation in verdict.headers:
            lowered = operation.name.lower()
            if operation.operation is not HeaderOperationKind.INSERT:
                headers = [(n, v) for n, v in headers if n.lower() != lowered]
            if operation.operation is HeaderOperationKind.REMOVE:
                continue
            value = operation.value
            if operation.secret is not None:
                ref = operation.secret
                secret = self.state.secrets(ref.secret_id, ref.secret_key) if self.state.secrets else None
                if secret is None or any(c in secret for c in "\r\n\0"):
                    # Fail closed: the request would go out without its credential otherwise.
                    raise _Refused(
                        403,
                        f"the secret {ref.secret_id!r} named by {verdict.matched_rule} is not available",
                        rule=verdict.matched_rule,
                    )
                value = ref.format.replace("{value}", secret) if ref.format else secret
            assert value is not None
            headers.append((operation.name, value))
        return headers

    async def _relay_response_head(self, up_reader: asyncio.StreamReader) -> None:
        """Pass the answer's head on with ``Connection: close`` (the proxy serves one request
        per connection, so a client must not keep it for another); interim 1xx heads as they are."""
        while True:
            try:
                data = await within(up_reader.readuntil(b"\r\n\r\n"), self.limits.idle_seconds)
            except (asyncio.LimitOverrunError, asyncio.IncompleteReadError) as exc:
                raise HttpError(
                    502, "the upstream answer is not HTTP/1.x with a head the proxy reads"
                ) from exc
            except asyncio.TimeoutError as exc:
                raise HttpError(504, "the upstream did not answer in time") from exc
            lines = data[:-4].split(b"\r\n")
            if not lines[0].startswith(b"HTTP/1."):
                raise HttpError(502, "the upstream answer is not HTTP/1.x")
            kept = [
                line
                for line in lines[1:]
                if line.split(b":", 1)[0].strip().lower()
                not in (b"connection", b"keep-alive", b"proxy-connection")
            ]
            interim = lines[0][9:12].startswith(b"1") and lines[0][9:12] != b"101"
            closing = [] if interim else [b"Connection: close"]
            self.writer.write(b"\r\n".join([lines[0], *kept, *closing]) + b"\r\n\r\n")
            await self.writer.drain()
            if not interim:
                return

    async def _forward(self, head: RequestHead, verdict: Verdict, address: IPAddress) -> None:
        headers = self._outgoing_headers(head, verdict)
        target = head.target
        host_header = target.host if ":" not in target.host else f"[{target.host}]"
        if target.port != 80:
            host_header += f":{target.port}"
        lines = [f"{head.method} {target.path} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{n}: {v}" for n, v in headers]
        lines.append("Connection: close")
        out_head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        up_reader, up_writer = await self._connect(address, target.port)
        try:
            self._record_allowed(verdict)
            up_writer.write(out_head)
            if head.expects_continue and head.framing is not BodyFraming.NONE:
                # The body is relayed before the answer is read, so an upstream 100 would reach
                # the client only after the body it waits to send: say it here instead.
                self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await self.writer.drain()
            await relay_body(head, self.reader, up_writer, idle_seconds=self.limits.idle_seconds)
            await self._relay_response_head(up_reader)
            activity = _Activity()
            await _pipe(up_reader, self.writer, activity, self.limits.idle_seconds)
        finally:
            await _close(up_writer)


async def handle_connection(
    state: SandboxEgress,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    resolver: Resolver,
    guard: DestinationGuard,
    limits: ProxyLimits,
    total: ConnectionCount,
) -> None:
    """Serve one connection of ``state``'s sandbox to its end (never raises)."""
    busy = None
    if state.active >= limits.max_connections_per_sandbox:
        busy = "too many connections from this sandbox at once"
    elif total.active >= limits.max_connections:
        busy = "the egress proxy is at its connection limit"
    if busy is not None:
        if total.lingering >= limits.max_lingering:
            writer.close()
            return
        total.lingering += 1
        try:
            await _answer_and_linger(reader, writer, _response(503, busy, retry_after=1))
            await _close(writer)
        finally:
            total.lingering -= 1
        return
    total.active += 1
    state.active += 1
    state.connections.add(writer)
    task = asyncio.current_task()
    if task is not None:
        state.tasks.add(task)
    try:
        await _Connection(state, reader, writer, resolver=resolver, guard=guard, limits=limits).run()
    except asyncio.CancelledError:
        # Detach or shutdown cancels open connections. This task is the connection's own
        # top-level task (nobody awaits it): ending it quietly keeps asyncio's stream server
        # from logging the cancellation as an error.
        writer.close()
    except Exception:  # a bug here must cost one connection, never the proxy
        logger.exception("egress proxy connection of %s failed", state.sandbox_id)
        await _close(writer)
    finally:
        total.active -= 1
        state.active -= 1
        state.connections.discard(writer)
        if task is not None:
            state.tasks.discard(task)

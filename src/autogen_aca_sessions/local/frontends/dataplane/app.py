"""The HTTP layer of the local session pool: routing, validation and responses for every api-version.

:func:`create_app` builds an :class:`aiohttp.web.Application` that speaks the dynamic-sessions
data plane (Azure's OpenAPI specification in Azure/azure-rest-api-specs,
``specification/app/data-plane/Microsoft.App.DynamicSessions/``, and the Microsoft Learn pages on
dynamic sessions) on top of a session runtime (``local/runtime/sessions.py``). Requests are served
both under the Azure-shaped endpoint path
``/subscriptions/<sub>/resourceGroups/<rg>/sessionPools/<pool>/...`` and at the server root, so a
relative ``Operation-Location`` resolves either way.

Middleware order, outermost first: the catch-all that turns every refusal into an Azure.Core
error body (and any unexpected exception into a logged 500), then ``operation_middleware``
(which names the request's operation for the middlewares inside), then the caller's
``middlewares``, then bearer-key authentication, then fault injection (which reads that
operation name), then the dispatcher.

Choices where the reference is silent:

* Order of refusals: 401 (key) before 404 (no such route) before 400 (api-version) before
  404 ``OperationNotSupported`` (the route exists in other api-versions; message names them)
  before 405. ``/.management/getSession`` and ``/.management/listSessions`` answer on every
  api-version.
* ``timeoutInSeconds``: default 60 (or the pool maximum when lower) on every contract; above the
  pool's ``max_execution_seconds`` it is clamped; below 1, fractional or not a number: 400.
* Output cap: 2025-10 cuts at ``outputStreamsMaxLength`` (default 4096, larger values clamped to
  10,000,000); other api-versions cut only at 10,000,000 characters as a memory guard. Nothing
  says a stream was cut (as on Azure) unless the pool has ``wire_extensions``: then new-contract
  results carry ``stdoutTruncated``/``stderrTruncated``, legacy results only when true.
* Failed executions: ``error.code`` is the exception class (``ZeroDivisionError``) for user errors,
  ``ExecutionTimeout`` (interrupted, state kept), ``KernelRestarted`` (timed out and restarted) or
  ``KernelDied``; ``error.stateLost`` always, top-level ``stateLost``/``timedOut`` when true.
  Several images: the first is the result; with ``wire_extensions`` the rest go in an
  undocumented ``images`` list.
* Asynchronous executions answer 202 on every new-contract api-version; every execution
  (synchronous too) can be fetched by ``GET /executions/<id>`` for a while (2,000 finished ones).
  A client-chosen ``operation-id`` still running in the same session is 409.
* Sessions: execute, upload, list, download, metadata and delete of files create the session
  (as Azure does); ``GET``/``DELETE /session`` never create and answer 404
  ``SessionWithIdentifierNotFound`` for an unknown identifier; ``GET /session`` does not reset
  the idle timer. Pool full: 404 ``SessionPoolFull``.
* Files: listings are never paged (``nextLink`` null); directories have no ``contentType``; the
  legacy list shows files only; ``recursive`` is honoured on 2025-10 only; ``directory`` is ``""``
  at the top. Deleting a directory removes its contents. Upload limit applies to the sum of the
  files of one request. Multipart filenames are taken as sent (RFC 7578: no percent-decoding);
  only the base name is kept.
* Identifiers: 1-256 printable ASCII characters without whitespace, ``/`` or ``\\``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ...config import Isolation, PoolConfig
from ...runtime import files
from ...runtime.capacity import exhausted_resource
from ...runtime.executions import ExecutionRecord, ExecutionStore
from ...runtime.identifiers import identifier_problem
from ...runtime.metadata import PoolRuntimeInfo
from ...runtime.outcome import CodeOutput, PoolFullError, ResourcesExhaustedError, ShellOutput
from ..access_log import access_log_middleware
from ..auth import Handler as RequestHandler
from ..auth import Middleware, auth_middleware
from .operations import OPERATION_KEY, Operation
from .wire import current, legacy
from .wire.common import ExecuteRequest
from .wire.errors import WireError, error_body, error_response
from .wire.versions import API_VERSIONS, ApiVersionSpec, Contract, lookup_api_version

if TYPE_CHECKING:
    from ..mcp.server import McpServer
    from .faults import FaultInjector

__all__ = [
    "LIST_SESSIONS_PAGE_SIZE",
    "MANAGEMENT_PAGE_SIZE",
    "SessionLike",
    "SessionManagerLike",
    "create_app",
    "operation_of",
    "operation_path",
]

logger = logging.getLogger("autogen_aca_sessions.local")

SESSION_GUID_HEADER = "x-ms-session-guid"
"""Names one incarnation of a session (a new random one whenever the identifier is created anew)."""

LIST_SESSIONS_PAGE_SIZE = 100
"""Sessions per page of ``GET /listSessions`` (``nextLink`` carries ``skip``)."""

MANAGEMENT_PAGE_SIZE = 300
"""Sessions per page of ``POST /.management/listSessions`` (the page size the old docs show)."""


class SessionLike(current.SessionLike, Protocol):
    """What the HTTP layer uses of the runtime's ``Session`` (design.md section 2): what the
    wire renders, plus files, execution and the idle timer."""

    @property
    def data_dir(self) -> Path: ...
    @property
    def guid(self) -> str: ...

    def touch(self) -> None: ...
    async def execute(self, code: str, *, timeout: float, max_output_chars: int) -> CodeOutput: ...
    async def run_shell(self, command: str, *, timeout: float, max_output_chars: int) -> ShellOutput: ...


class SessionManagerLike(Protocol):
    """What the HTTP layer uses of the runtime's ``SessionManager`` (design.md section 2)."""

    @property
    def config(self) -> PoolConfig: ...
    @property
    def isolation(self) -> Isolation: ...

    async def get_or_create(self, identifier: str) -> SessionLike: ...
    def get(self, identifier: str) -> SessionLike | None: ...
    async def delete(self, identifier: str) -> bool: ...
    def sessions(self) -> Sequence[SessionLike]: ...
    def metadata(self) -> PoolRuntimeInfo: ...


@dataclass
class PoolContext:
    """Everything the handlers share, stored on the application."""

    manager: SessionManagerLike
    """The session runtime."""
    api_key: str
    """The bearer key every request must carry."""
    config: PoolConfig
    """The pool's configuration: its type and name (other names under ``/sessionPools/`` are
    404), the execution cap ``timeoutInSeconds`` is clamped to, the body limits (above them 413)."""
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    """When the application was built (``createdAt`` of ``GET /metadata``)."""
    executions: ExecutionStore = field(default_factory=ExecutionStore)
    """Accepted executions, for ``GET /executions/<id>``."""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    """Background tasks of asynchronous executions."""


CONTEXT_KEY: web.AppKey[PoolContext] = web.AppKey("aca_pool_context", PoolContext)


# ---------------------------------------------------------------------------------------------
# Routing

Handler = Callable[["Call"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One operation: the contract it belongs to, its method and its path below the endpoint."""

    contract: Contract | None
    """The contract the operation belongs to; ``None``: every contract."""
    operation: Operation
    """What the call is, for middlewares (fault injection picks calls by it)."""
    method: str
    """HTTP method."""
    pattern: re.Pattern[str]
    """Matches the operation path (segments joined by ``/``, no leading slash)."""
    handler: Handler
    """Serves the request."""
    available: Callable[[ApiVersionSpec], bool] = lambda spec: True
    """Whether the operation exists in an api-version of its contract."""

    def serves(self, spec: ApiVersionSpec) -> bool:
        """Whether this route exists in ``spec``."""
        return self.contract in (None, spec.contract) and self.available(spec)


@dataclass
class Call:
    """A routed request: what handlers receive."""

    request: web.Request
    """The aiohttp request."""
    ctx: PoolContext
    """Shared pool state."""
    spec: ApiVersionSpec
    """The api-version the request named."""
    params: dict[str, str]
    """Path parameters (``name``, ``execution_id``)."""
    started: float = field(default_factory=time.perf_counter)
    """When routing finished (for ``x-ms-overall-execution-time``)."""
    session_guid: str | None = None
    """The ``x-ms-session-guid`` of the session the call reached, sent back on its response."""

    def query(self, name: str) -> str | None:
        """A query parameter (the first when repeated)."""
        return self.request.query.get(name)


def _split_endpoint(path: str, pool_name: str) -> list[str]:
    """The operation's path segments, with the optional ``/subscriptions/...`` prefix removed.

    Empty segments are dropped, which makes a trailing slash and the double slash of an endpoint
    that already ended in ``/`` harmless.
    """
    segments = [s for s in path.split("/") if s]
    if (
        len(segments) >= 6
        and segments[0].lower() == "subscriptions"
        and segments[2].lower() == "resourcegroups"
        and segments[4].lower() == "sessionpools"
    ):
        if segments[5].lower() != pool_name.lower():
            raise WireError(
                404,
                "SessionPoolNotFound",
                f"This server hosts the session pool '{pool_name}', not '{segments[5]}'.",
                target="sessionPool",
            )
        return segments[6:]
    return segments


def operation_path(request: web.Request) -> str:
    """The request's path below the pool endpoint (``executions``, ``files/a.csv/content``, ...).

    ``""`` for paths that name another pool.
    """
    ctx = request.app[CONTEXT_KEY]
    try:
        return "/".join(_split_endpoint(request.path, ctx.config.pool_name))
    except WireError:
        return ""


def operation_of(method: str, path: str) -> Operation:
    """The operation of the route serving ``method path`` in some api-version (``OTHER`` if none).

    Any endpoint prefix is accepted (the pool name is not checked) and case is ignored, as
    routing ignores it.
    """
    segments = [s for s in path.split("/") if s]
    if len(segments) >= 6 and [segments[i].lower() for i in (0, 2, 4)] == [
        "subscriptions",
        "resourcegroups",
        "sessionpools",
    ]:
        segments = segments[6:]
    op = "/".join(segments)
    for route in ROUTES:
        if route.method == method.upper() and route.pattern.fullmatch(op) is not None:
            return route.operation
    return Operation.OTHER


def _route_of(pool_name: str, request: web.Request) -> tuple[str, str]:
    """The route template (``/files/{name}``) and operation of a request, for the access log.

    Never raises: it runs before the error middleware, on every request, hostile ones included."""
    try:
        op = "/".join(_split_endpoint(request.path, pool_name))
    except WireError:
        return "(other pool)", Operation.OTHER.value
    for route in ROUTES:
        if route.method == request.method.upper() and route.pattern.fullmatch(op) is not None:
            template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route.pattern.pattern)
            return "/" + template, route.operation.value
    return "(unknown)", Operation.OTHER.value


@web.middleware
async def operation_middleware(request: web.Request, handler: RequestHandler) -> web.StreamResponse:
    """Names the request's operation (``request[OPERATION_KEY]``) for the middlewares inside."""
    request[OPERATION_KEY] = operation_of(request.method, request.path)
    return await handler(request)


def _versions_with(route_paths: Iterable[Route]) -> str:
    names = [spec.name for spec in API_VERSIONS.values() if any(r.serves(spec) for r in route_paths)]
    return ", ".join(names)


async def _dispatch(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT_KEY]
    op = "/".join(_split_endpoint(request.path, ctx.config.pool_name))
    candidates: list[tuple[Route, dict[str, str]]] = []
    for route in ROUTES:
        match = route.pattern.fullmatch(op)
        if match is not None:
            candidates.append((route, {k: v for k, v in match.groupdict().items() if v is not None}))
    if not candidates:
        raise WireError(404, "NotFound", f"There is no operation at '/{op}'.", target="path")
    raw_version = request.query.get("api-version")
    if raw_version is None or not raw_version.strip():
        raise WireError(
            400,
            "MissingApiVersionParameter",
            "The 'api-version' query parameter is required; supported: " + ", ".join(API_VERSIONS) + ".",
            target="api-version",
        )
    spec = lookup_api_version(raw_version)
    if spec is None:
        raise WireError(
            400,
            "UnsupportedApiVersion",
            f"The api-version '{raw_version}' is not supported; supported: " + ", ".join(API_VERSIONS) + ".",
            target="api-version",
        )
    in_version = [(r, p) for r, p in candidates if r.serves(spec)]
    if not in_version:
        raise WireError(
            404,
            "OperationNotSupported",
            f"'/{op}' is not an operation of api-version {spec.name}; "
            f"it exists in: {_versions_with(r for r, _ in candidates)}.",
            target="api-version",
        )
    for route, params in in_version:
        if route.method == request.method:
            call = Call(request, ctx, spec, params)
            response = await route.handler(call)
            if call.session_guid is not None and not response.prepared:
                response.headers.setdefault(SESSION_GUID_HEADER, call.session_guid)
            return response
    elsewhere = [r for r, _ in candidates if r.method == request.method]
    if elsewhere:
        # e.g. the legacy POST /files/upload sent with a new-contract api-version
        raise WireError(
            404,
            "OperationNotSupported",
            f"{request.method} '/{op}' is not an operation of api-version {spec.name}; "
            f"it exists in: {_versions_with(elsewhere)}.",
            target="api-version",
        )
    allowed = sorted({r.method for r, _ in in_version})
    raise WireError(
        405,
        "MethodNotAllowed",
        f"'/{op}' does not accept {request.method}; allowed: {', '.join(allowed)}.",
        target="method",
        headers={"Allow": ", ".join(allowed)},
    )


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, default=str),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _identifier(call: Call, name: str = "identifier") -> str:
    value = call.query(name)
    if value is None:
        raise WireError(
            400,
            "SessionRequestValidationFailed",
            f"The '{name}' query parameter (the session identifier) is required.",
            target=name,
        )
    problem = identifier_problem(value)
    if problem is not None:
        raise WireError(
            400,
            "SessionRequestValidationFailed",
            f"The session identifier {problem}.",
            target=name,
        )
    return value


async def _session(call: Call, identifier: str) -> SessionLike:
    """The session, created when new (execute, upload, list, download all create, like Azure)."""
    try:
        session = await call.ctx.manager.get_or_create(identifier)
    except PoolFullError as exc:
        raise WireError(
            404,
            "SessionPoolFull",
            f"{exc} (maxConcurrentSessions={exc.max_sessions})",
            target="identifier",
        ) from exc
    session.touch()
    call.session_guid = session.guid
    return session


def _session_not_found(identifier: str) -> WireError:
    return WireError(
        404,
        "SessionWithIdentifierNotFound",
        f"There is no session with identifier '{identifier}'.",
        target="identifier",
    )


async def _json_body(call: Call) -> Any:
    try:
        raw = await call.request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise WireError(
            413,
            "RequestBodyTooLarge",
            f"The request body is larger than the limit of {call.ctx.config.max_json_bytes} bytes.",
            target="body",
        ) from exc
    if not raw.strip():
        raise WireError(400, "InvalidRequestContent", "The request body is empty; send JSON.", target="body")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting or numbers
        raise WireError(
            400, "InvalidRequestContent", f"The request body is not valid JSON: {exc}", target="body"
        ) from exc


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


def _path_param(call: Call) -> PurePosixPath:
    return files.relative_dir(call.query("path"))


# ---------------------------------------------------------------------------------------------
# Executions


def _operation_id(call: Call) -> str:
    value = call.request.headers.get("operation-id")
    if value is None or not value.strip():
        return str(uuid.uuid4())
    value = value.strip()
    problem = identifier_problem(value)
    if problem is not None:
        raise WireError(
            400,
            "SessionRequestValidationFailed",
            f"The operation-id header {problem}.",
            target="operation-id",
        )
    return value


async def _run(session: SessionLike, record: ExecutionRecord, req: ExecuteRequest) -> None:
    try:
        if req.shell:
            record.output = await session.run_shell(
                req.code, timeout=req.timeout_seconds, max_output_chars=req.max_output_chars
            )
        else:
            record.output = await session.execute(
                req.code, timeout=req.timeout_seconds, max_output_chars=req.max_output_chars
            )
    except asyncio.CancelledError:
        record.internal_error = "The execution was cancelled because the pool is shutting down."
        raise
    except Exception as exc:
        record.internal_error = f"The session runtime failed: {type(exc).__name__}: {exc}"
        raise


async def _start_execution(
    call: Call, req: ExecuteRequest, identifier: str
) -> tuple[ExecutionRecord, SessionLike, dict[str, str]]:
    execution_id = _operation_id(call)
    existing = call.ctx.executions.get(identifier, execution_id)
    if existing is not None and not existing.finished:
        raise WireError(
            409,
            "ExecutionAlreadyRunning",
            f"Execution '{execution_id}' is still running in session '{identifier}'.",
            target="operation-id",
        )
    prep_started = time.perf_counter()
    session = await _session(call, identifier)
    record = ExecutionRecord(
        id=execution_id,
        identifier=identifier,
        execution_type=req.execution_type,
        shell=req.shell,
        timeout_seconds=req.timeout_seconds,
    )
    call.ctx.executions.add(record)
    headers = {
        "operation-id": execution_id,
        SESSION_GUID_HEADER: session.guid,
        "x-ms-preparation-time": _ms(time.perf_counter() - prep_started),
    }
    return record, session, headers


def _finish_headers(call: Call, headers: dict[str, str]) -> dict[str, str]:
    headers["x-ms-overall-execution-time"] = _ms(time.perf_counter() - call.started)
    return headers


def _operation_location(call: Call, record: ExecutionRecord) -> str:
    from urllib.parse import quote

    return (
        f"/executions/{quote(record.id, safe='')}?api-version={call.spec.name}"
        f"&identifier={quote(record.identifier, safe='')}"
    )


async def _legacy_execute(call: Call) -> web.StreamResponse:
    if call.ctx.config.is_shell:
        raise WireError(
            400,
            "SessionRequestValidationFailed",
            "Shell pools run commands through POST /executions with 'shellCommand' "
            "(api-version 2025-02-02-preview or later); the legacy contract only runs Python.",
            target="api-version",
        )
    identifier = _identifier(call)
    req = legacy.parse_execute(
        await _json_body(call), max_execution_seconds=call.ctx.config.execution_cap_seconds
    )
    record, session, headers = await _start_execution(call, req, identifier)
    await _run(session, record, req)
    assert isinstance(record.output, CodeOutput)
    return _json(
        legacy.render_execution(record.output, extensions=call.ctx.config.wire_extensions),
        call.spec.execute_status,
        _finish_headers(call, headers),
    )


async def _execute(call: Call) -> web.StreamResponse:
    identifier = _identifier(call)
    req = current.parse_execute(
        await _json_body(call),
        call.spec,
        shell_pool=call.ctx.config.is_shell,
        max_execution_seconds=call.ctx.config.execution_cap_seconds,
    )
    record, session, headers = await _start_execution(call, req, identifier)
    if req.asynchronous:
        task = asyncio.create_task(_run_in_background(call.ctx, session, record, req))
        record.task = task
        call.ctx.tasks.add(task)
        task.add_done_callback(call.ctx.tasks.discard)
        headers["Operation-Location"] = _operation_location(call, record)
        return _json(
            current.render_execution(record, extensions=call.ctx.config.wire_extensions),
            202,
            _finish_headers(call, headers),
        )
    await _run(session, record, req)
    status = call.spec.execute_status
    if status == 202:
        headers["Operation-Location"] = _operation_location(call, record)
    return _json(
        current.render_execution(record, extensions=call.ctx.config.wire_extensions),
        status,
        _finish_headers(call, headers),
    )


async def _run_in_background(
    ctx: PoolContext, session: SessionLike, record: ExecutionRecord, req: ExecuteRequest
) -> None:
    try:
        await _run(session, record, req)
    except asyncio.CancelledError:
        pass
    except ResourcesExhaustedError:
        pass  # logged once by the runtime; the record says why
    except Exception:
        logger.exception("asynchronous execution %s in session %s failed", record.id, record.identifier)
    finally:
        record.task = None


async def _get_execution(call: Call) -> web.StreamResponse:
    identifier = _identifier(call)
    execution_id = call.params["execution_id"]
    record = call.ctx.executions.get(identifier, execution_id)
    if record is None:
        raise WireError(
            404,
            "ExecutionNotFound",
            f"There is no execution '{execution_id}' in session '{identifier}'.",
            target="executionId",
        )
    session = call.ctx.manager.get(identifier)
    if session is not None:
        session.touch()
        # The incarnation holding the identifier now: a poller whose execution ran in an
        # earlier one (deleted, expired) sees a different guid and knows its state is gone.
        call.session_guid = session.guid
    return _json(
        current.render_execution(record, extensions=call.ctx.config.wire_extensions),
        200,
        {"operation-id": record.id},
    )


# ---------------------------------------------------------------------------------------------
# Files


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        chunk = await part.read_chunk(256 * 1024)
        if not chunk:
            return
        yield chunk


async def _receive_uploads(call: Call) -> list[files.FileInfo]:
    """Stream every file part of the multipart body into the session's ``path`` directory."""
    identifier = _identifier(call)
    rel_dir = _path_param(call)
    limit = call.ctx.config.max_upload_bytes
    # Clear overshoot is refused before reading a byte; the streamed count below is exact.
    length = call.request.content_length
    if length is not None and length > limit + 1024 * 1024:
        raise files.UploadTooLarge(limit)
    if not call.request.content_type.startswith("multipart/"):
        raise WireError(
            400,
            "InvalidRequestContent",
            "Uploads must be multipart/form-data with the file in the field 'file'.",
            target="file",
        )
    session = await _session(call, identifier)
    try:
        return await _store_parts(call, session, rel_dir, limit)
    except _MALFORMED_MULTIPART as exc:
        raise WireError(
            400, "InvalidRequestContent", f"The multipart body is malformed: {exc}", target="file"
        ) from exc


# What aiohttp's multipart reader raises on a body that does not parse (bad boundary, bad part
# headers, truncated part): the client's fault, so a 400 and never the catch-all 500.
_MALFORMED_MULTIPART = (ValueError, AssertionError, KeyError, HttpProcessingError)


async def _store_parts(
    call: Call, session: SessionLike, rel_dir: PurePosixPath, limit: int
) -> list[files.FileInfo]:
    reader = await call.request.multipart()
    stored: list[PurePosixPath] = []
    target: files.UploadDir | None = None
    remaining = limit
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise WireError(
                    400, "InvalidRequestContent", "Nested multipart bodies are not accepted.", target="file"
                )
            if part.filename is None and part.name != "file":
                await part.release()  # some clients send extra form fields; they carry nothing we need
                continue
            basename = files.upload_basename(part.filename)
            if target is None:
                target = await files.open_upload_dir(session.data_dir, rel_dir)
            remaining -= await files.write_upload(target, basename, _part_chunks(part), max_bytes=remaining)
            stored.append(rel_dir / basename)
    finally:
        if target is not None:
            await files.close_upload_dir(target)
    if not stored:
        raise WireError(
            400,
            "SessionRequestValidationFailed",
            "The multipart body has no file; send it in the form field 'file' with a filename.",
            target="file",
        )
    return [await files.file_info(session.data_dir, rel) for rel in stored]


async def _legacy_upload(call: Call) -> web.StreamResponse:
    return _json(legacy.render_file_list(await _receive_uploads(call)))


async def _upload(call: Call) -> web.StreamResponse:
    uploaded = await _receive_uploads(call)
    # One SessionResourceFile per the spec; extra parts are stored too, the first is reported.
    return _json(current.render_file(uploaded[0], call.spec))


async def _legacy_list(call: Call) -> web.StreamResponse:
    identifier = _identifier(call)
    rel_dir = _path_param(call)
    session = await _session(call, identifier)
    entries = await files.list_directory(session.data_dir, rel_dir)
    # The legacy shape has no type field: it lists files only.
    return _json(legacy.render_file_list([f for f in entries if not f.is_dir]))


def _recursive(call: Call) -> bool:
    value = call.query("recursive")
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise WireError(
            400,
            "SessionRequestValidationFailed",
            f"'recursive' must be true or false (got {value!r}).",
            target="recursive",
        )
    # Before 2025-10 there is no recursive listing (nor the 'directory' field to make sense of it).
    return lowered in ("true", "1") and call.spec.recursive_listing


async def _list(call: Call) -> web.StreamResponse:
    identifier = _identifier(call)
    rel_dir = _path_param(call)
    recursive = _recursive(call)
    session = await _session(call, identifier)
    entries = await files.list_directory(session.data_dir, rel_dir, recursive=recursive)
    return _json(current.render_file_list(entries, call.spec))


async def _named(call: Call) -> tuple[SessionLike, PurePosixPath]:
    identifier = _identifier(call)
    rel = files.relative_name(_path_param(call), call.params["name"])
    return await _session(call, identifier), rel


async def _stream_file(call: Call) -> web.StreamResponse:
    session, rel = await _named(call)
    handle, size = await files.open_download(session.data_dir, rel)
    chunks = files.iter_handle_chunks(handle, size)
    try:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(rel.name)}",
                SESSION_GUID_HEADER: session.guid,
            },
        )
        response.content_length = size
        await response.prepare(call.request)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await chunks.aclose()


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


async def _legacy_file(call: Call) -> web.StreamResponse:
    session, rel = await _named(call)
    return _json(legacy.render_file_list([await files.file_info(session.data_dir, rel)]))


async def _legacy_delete_file(call: Call) -> web.StreamResponse:
    session, rel = await _named(call)
    await files.delete_entry(session.data_dir, rel)
    return _json(legacy.DELETE_FILE_BODY)


async def _file(call: Call) -> web.StreamResponse:
    session, rel = await _named(call)
    return _json(current.render_file(await files.file_info(session.data_dir, rel), call.spec))


async def _delete_file(call: Call) -> web.StreamResponse:
    session, rel = await _named(call)
    await files.delete_entry(session.data_dir, rel)
    return web.Response(status=204)


# ---------------------------------------------------------------------------------------------
# Sessions and metadata


_MAX_SKIP_DIGITS = 18
"""Digits of ``skip`` read as a number; a longer one is past the end of any listing."""


def _skip(call: Call) -> int:
    value = call.query("skip")
    if value is None:
        return 0
    text = value.strip()
    # str.isdigit() admits "²", which int() refuses; ASCII digits only, and no more of them than
    # int() converts (past that the page is empty anyway).
    if not (text.isascii() and text.isdigit()):
        raise WireError(
            400,
            "SessionRequestValidationFailed",
            f"'skip' must be a non-negative integer (got {value[:100]!r}).",
            target="skip",
        )
    return int(text) if len(text) <= _MAX_SKIP_DIGITS else 10**_MAX_SKIP_DIGITS


def _page(call: Call, size: int) -> tuple[list[SessionLike], int, str | None]:
    skip = _skip(call)
    everything = sorted(call.ctx.manager.sessions(), key=lambda s: (s.created_at, s.identifier))
    page = everything[skip : skip + size]
    next_link = None
    if skip + size < len(everything):
        next_link = str(call.request.url.update_query({"skip": str(skip + size)}))
    return page, len(everything), next_link


async def _get_session(call: Call) -> web.StreamResponse:
    # Looking at a session does not create it, nor reset its idle timer (it would make
    # lastAccessedAt useless to the caller asking).
    identifier = _identifier(call)
    session = call.ctx.manager.get(identifier)
    if session is None:
        raise _session_not_found(identifier)
    return _json(current.render_session(session))


async def _delete_session(call: Call) -> web.StreamResponse:
    identifier = _identifier(call)
    if not await call.ctx.manager.delete(identifier):
        raise _session_not_found(identifier)
    return web.Response(status=204)


async def _list_sessions(call: Call) -> web.StreamResponse:
    page, _, next_link = _page(call, LIST_SESSIONS_PAGE_SIZE)
    return _json({"sessions": [current.render_session(s) for s in page], "nextLink": next_link})


async def _metadata(call: Call) -> web.StreamResponse:
    info = await asyncio.to_thread(call.ctx.manager.metadata)
    return _json(current.render_metadata(info, created_at=call.ctx.created_at))


async def _management_get_session(call: Call) -> web.StreamResponse:
    return await _get_session(call)


async def _management_list_sessions(call: Call) -> web.StreamResponse:
    page, total, next_link = _page(call, MANAGEMENT_PAGE_SIZE)
    return _json({"value": [current.render_session(s) for s in page], "count": total, "nextLink": next_link})


def _route(
    contract: Contract | None,
    operation: Operation,
    method: str,
    pattern: str,
    handler: Handler,
    available: Callable[[ApiVersionSpec], bool] = lambda spec: True,
) -> Route:
    return Route(contract, operation, method, re.compile(pattern, re.IGNORECASE), handler, available)


ROUTES: tuple[Route, ...] = (
    _route(Contract.LEGACY, Operation.EXECUTE, "POST", r"code/execute", _legacy_execute),
    _route(Contract.LEGACY, Operation.FILES, "POST", r"files/upload", _legacy_upload),
    _route(Contract.LEGACY, Operation.FILES, "GET", r"files", _legacy_list),
    _route(Contract.LEGACY, Operation.FILES, "GET", r"files/content/(?P<name>.+)", _stream_file),
    _route(
        Contract.LEGACY,
        Operation.FILES,
        "GET",
        r"files/(?P<name>.+)",
        _legacy_file,
        lambda s: s.file_item_operations,
    ),
    _route(
        Contract.LEGACY,
        Operation.FILES,
        "DELETE",
        r"files/(?P<name>.+)",
        _legacy_delete_file,
        lambda s: s.file_item_operations,
    ),
    _route(Contract.CURRENT, Operation.EXECUTE, "POST", r"executions", _execute),
    _route(Contract.CURRENT, Operation.POLL, "GET", r"executions/(?P<execution_id>[^/]+)", _get_execution),
    _route(Contract.CURRENT, Operation.FILES, "POST", r"files", _upload),
    _route(Contract.CURRENT, Operation.FILES, "GET", r"files", _list),
    _route(Contract.CURRENT, Operation.FILES, "GET", r"files/(?P<name>.+)/content", _stream_file),
    _route(Contract.CURRENT, Operation.FILES, "GET", r"files/(?P<name>.+)", _file),
    _route(Contract.CURRENT, Operation.FILES, "DELETE", r"files/(?P<name>.+)", _delete_file),
    _route(
        Contract.CURRENT, Operation.SESSION, "GET", r"session", _get_session, lambda s: s.session_management
    ),
    _route(
        Contract.CURRENT,
        Operation.SESSION,
        "DELETE",
        r"session",
        _delete_session,
        lambda s: s.session_management,
    ),
    _route(
        Contract.CURRENT,
        Operation.LIST,
        "GET",
        r"listSessions",
        _list_sessions,
        lambda s: s.session_management,
    ),
    _route(
        Contract.CURRENT, Operation.METADATA, "GET", r"metadata", _metadata, lambda s: s.session_management
    ),
    # Older docs show these without tying them to an api-version: every version serves them.
    _route(None, Operation.SESSION, "POST", r"\.management/getSession", _management_get_session),
    _route(None, Operation.LIST, "POST", r"\.management/listSessions", _management_list_sessions),
)
"""Every operation; the first route whose pattern, api-version and method fit serves a request."""


# ---------------------------------------------------------------------------------------------
# Middlewares and the application


_HTTP_CODES = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "RequestBodyTooLarge",
}


_RETRY_AFTER_SECONDS = 5
"""What ``Retry-After`` says when the server ran out of a resource."""


def _unavailable(message: str, retry_after: int) -> web.Response:
    return error_response(
        WireError(503, "ServiceUnavailable", message, headers={"Retry-After": str(retry_after)})
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every refusal becomes an Azure.Core error body; anything unexpected a logged 500."""
    try:
        return await handler(request)
    except WireError as err:
        return error_response(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, exc.reason.replace(" ", ""))
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return error_response(WireError(exc.status, code, exc.text or exc.reason, headers=headers))
    except ResourcesExhaustedError as exc:
        return _unavailable(str(exc), exc.retry_after)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        resource = exhausted_resource(exc)
        if resource is not None:
            # Nothing was done that a retry would repeat badly: the answer is "later", not a 500.
            logger.warning("out of %s serving %s %s: %s", resource, request.method, request.path, exc)
            return _unavailable(
                f"The local session pool ran out of {resource} serving this request; retry shortly.",
                _RETRY_AFTER_SECONDS,
            )
        logger.exception("unexpected error serving %s %s", request.method, request.path)
        return web.Response(
            status=500,
            text=json.dumps(
                error_body(
                    "InternalServerError", "The local session pool failed to serve the request; see its log."
                )
            ),
            content_type="application/json",
            charset="utf-8",
            headers={"x-ms-error-code": "InternalServerError"},
        )


def create_app(
    manager: SessionManagerLike,
    *,
    api_key: str,
    middlewares: Sequence[Middleware] = (),
    faults: FaultInjector | None = None,
    mcp: Callable[[], McpServer | None] | None = None,
) -> web.Application:
    """The aiohttp application of a local pool serving ``manager``'s sessions under ``manager.config``.

    ``middlewares`` run inside the error catch-all and outside authentication, so they see
    refused calls too and never let a bare exception escape. ``faults`` runs inside
    authentication (an unauthenticated caller can neither meet nor trigger a fault) and is
    given ``manager``'s session deleter for its ``expire`` fault. ``mcp`` serves ``/mcp`` (with
    its own ``x-ms-apikey`` auth, not the bearer key): it is asked on every request, so a pool can
    switch its MCP server on and off while running (None: ``/mcp`` is an unknown path).
    """
    config = manager.config
    ctx = PoolContext(manager=manager, api_key=api_key, config=config)
    inner: list[Middleware] = [auth_middleware(api_key)]
    if faults is not None:
        faults.bind_session_deleter(manager.delete)
        inner.append(faults.middleware)
    mcp_middlewares = [] if mcp is None else [_mcp_middleware(mcp)]
    # The access log is outermost: it sees every answer, the catch-all's 500s included.
    access_log = access_log_middleware(functools.partial(_route_of, config.pool_name))
    app = web.Application(
        middlewares=[
            access_log,
            error_middleware,
            operation_middleware,
            *middlewares,
            *mcp_middlewares,
            *inner,
        ],
        client_max_size=config.max_json_bytes,
    )
    app[CONTEXT_KEY] = ctx
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    app.on_shutdown.append(_cancel_background)
    return app


def _mcp_middleware(mcp: Callable[[], McpServer | None]) -> Middleware:
    """Serves ``{endpoint}/mcp`` (and ``/mcp``) before bearer authentication: it has its own key."""

    @web.middleware
    async def middleware(request: web.Request, handler: RequestHandler) -> web.StreamResponse:
        server = mcp()
        if server is not None and operation_path(request).lower() == "mcp":
            return await server.handle(request)
        return await handler(request)

    return middleware


async def _cancel_background(app: web.Application) -> None:
    ctx = app[CONTEXT_KEY]
    tasks = list(ctx.tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

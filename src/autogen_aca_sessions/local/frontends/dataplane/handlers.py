"""The data plane's handlers: one coroutine per operation, each given a routed :class:`~.context.Call`.

They reach sessions only through the runtime protocol (``runtime/protocol.py``) and answer in the
wire shapes of the call's contract (``wire/``). ``routes.py`` lists which handler serves which
method, path and api-version.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ...runtime import files
from ...runtime.executions import ExecutionRecord
from ...runtime.identifiers import identifier_problem
from ...runtime.outcome import CodeOutput, ResourcesExhaustedError, SessionLimitReached
from ...runtime.protocol import SessionLike, Upload
from ..urls import request_url
from .context import SESSION_GUID_HEADER, Call, PoolContext
from .wire import current, legacy
from .wire.common import ExecuteRequest
from .wire.errors import WireError

__all__ = [
    "LIST_SESSIONS_PAGE_SIZE",
    "MANAGEMENT_PAGE_SIZE",
    "delete_file",
    "delete_session",
    "execute",
    "get_execution",
    "get_file",
    "get_session",
    "legacy_delete_file",
    "legacy_execute",
    "legacy_file",
    "legacy_list",
    "legacy_upload",
    "list_files",
    "list_sessions",
    "management_get_session",
    "management_list_sessions",
    "metadata",
    "stream_file",
    "upload",
]

logger = logging.getLogger("autogen_aca_sessions.local")

LIST_SESSIONS_PAGE_SIZE = 100
"""Sessions per page of ``GET /listSessions`` (``nextLink`` carries ``skip``)."""

MANAGEMENT_PAGE_SIZE = 300
"""Sessions per page of ``POST /.management/listSessions`` (the page size the old docs show)."""


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
    except SessionLimitReached as exc:
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
    return (
        f"/executions/{quote(record.id, safe='')}?api-version={call.spec.name}"
        f"&identifier={quote(record.identifier, safe='')}"
    )


async def legacy_execute(call: Call) -> web.StreamResponse:
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


async def execute(call: Call) -> web.StreamResponse:
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


async def get_execution(call: Call) -> web.StreamResponse:
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


async def _upload_parts(call: Call) -> AsyncIterator[Upload]:
    """The file parts of the multipart body, each streamed as it is read."""
    reader = await call.request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise WireError(
                400, "InvalidRequestContent", "Nested multipart bodies are not accepted.", target="file"
            )
        if part.filename is None and part.name != "file":
            await part.release()  # some clients send extra form fields; they carry nothing we need
            continue
        yield Upload(files.upload_basename(part.filename), _part_chunks(part))


async def _store_parts(
    call: Call, session: SessionLike, rel_dir: PurePosixPath, limit: int
) -> list[files.FileInfo]:
    stored = await session.files.write(rel_dir, _upload_parts(call), max_bytes=limit)
    if not stored:
        raise WireError(
            400,
            "SessionRequestValidationFailed",
            "The multipart body has no file; send it in the form field 'file' with a filename.",
            target="file",
        )
    return stored


async def legacy_upload(call: Call) -> web.StreamResponse:
    return _json(legacy.render_file_list(await _receive_uploads(call)))


async def upload(call: Call) -> web.StreamResponse:
    uploaded = await _receive_uploads(call)
    # One SessionResourceFile per the spec; extra parts are stored too, the first is reported.
    return _json(current.render_file(uploaded[0], call.spec))


async def legacy_list(call: Call) -> web.StreamResponse:
    identifier = _identifier(call)
    rel_dir = _path_param(call)
    session = await _session(call, identifier)
    entries = await session.files.list_dir(rel_dir)
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


async def list_files(call: Call) -> web.StreamResponse:
    identifier = _identifier(call)
    rel_dir = _path_param(call)
    recursive = _recursive(call)
    session = await _session(call, identifier)
    entries = await session.files.list_dir(rel_dir, recursive=recursive)
    return _json(current.render_file_list(entries, call.spec))


async def _named(call: Call) -> tuple[SessionLike, PurePosixPath]:
    identifier = _identifier(call)
    rel = files.relative_name(_path_param(call), call.params["name"])
    return await _session(call, identifier), rel


async def stream_file(call: Call) -> web.StreamResponse:
    session, rel = await _named(call)
    content = await session.files.read(rel)
    chunks = content.chunks
    try:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(rel.name)}",
                SESSION_GUID_HEADER: session.guid,
            },
        )
        response.content_length = content.size
        await response.prepare(call.request)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await chunks.aclose()


def _quote(name: str) -> str:
    return quote(name, safe="")


async def legacy_file(call: Call) -> web.StreamResponse:
    session, rel = await _named(call)
    return _json(legacy.render_file_list([await session.files.info(rel)]))


async def legacy_delete_file(call: Call) -> web.StreamResponse:
    session, rel = await _named(call)
    await session.files.delete(rel)
    return _json(legacy.DELETE_FILE_BODY)


async def get_file(call: Call) -> web.StreamResponse:
    session, rel = await _named(call)
    return _json(current.render_file(await session.files.info(rel), call.spec))


async def delete_file(call: Call) -> web.StreamResponse:
    session, rel = await _named(call)
    await session.files.delete(rel)
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
        next_link = str(request_url(call.request).update_query({"skip": str(skip + size)}))
    return page, len(everything), next_link


async def get_session(call: Call) -> web.StreamResponse:
    # Looking at a session does not create it, nor reset its idle timer (it would make
    # lastAccessedAt useless to the caller asking).
    identifier = _identifier(call)
    session = call.ctx.manager.get(identifier)
    if session is None:
        raise _session_not_found(identifier)
    return _json(current.render_session(session))


async def delete_session(call: Call) -> web.StreamResponse:
    identifier = _identifier(call)
    if not await call.ctx.manager.delete(identifier):
        raise _session_not_found(identifier)
    return web.Response(status=204)


async def list_sessions(call: Call) -> web.StreamResponse:
    page, _, next_link = _page(call, LIST_SESSIONS_PAGE_SIZE)
    return _json({"sessions": [current.render_session(s) for s in page], "nextLink": next_link})


async def metadata(call: Call) -> web.StreamResponse:
    info = await call.ctx.manager.runtime_info()
    return _json(current.render_metadata(info, created_at=call.ctx.created_at))


async def management_get_session(call: Call) -> web.StreamResponse:
    return await get_session(call)


async def management_list_sessions(call: Call) -> web.StreamResponse:
    page, total, next_link = _page(call, MANAGEMENT_PAGE_SIZE)
    return _json({"value": [current.render_session(s) for s in page], "count": total, "nextLink": next_link})

"""The pool's MCP server at ``{endpoint}/mcp``: JSON-RPC 2.0 over HTTP POST, as Azure serves it.

Wire choices (README "MCP" documents them for users):

* Every answer to a POST is one ``application/json`` body (never an SSE stream), which is what
  Azure's ``curl`` tutorials read and what streamable-HTTP clients accept. A POST holding only
  notifications or responses gets ``202`` with no body. ``GET`` (the optional server-to-client
  stream) is ``405`` with ``Allow: POST, DELETE``, as the streamable-HTTP transport allows.
* ``initialize`` works with or without ``params``; the answer names the client's protocol
  version when it is one of :data:`~.protocol.SUPPORTED_PROTOCOL_VERSIONS`, else ``2025-03-26``.
  It issues an ``Mcp-Session-Id``. Nothing requires it (the tutorials never send it): a request
  without one is served; a request naming an unknown or ended one is ``404``, so a standard client
  starts over; ``DELETE`` with it ends it (``204``).
* ``Accept`` may be absent (``curl``); when present it must admit ``application/json`` (406 if not).
* Auth: ``x-ms-apikey`` must be the pool's MCP key; otherwise ``401`` with a JSON-RPC error body.
  A bearer token is never accepted here (as on Azure). A request carrying an ``Origin`` (a
  browser) is ``403`` unless that origin is a loopback host (DNS-rebinding guard).
* Envelope errors answer HTTP 400 with -32700 (not JSON) or -32600 (not a request); method
  errors answer 200 with -32601 or -32602. Batches (2025-03-26) of up to 32 messages are served
  in order; ``initialize`` may not be batched.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import mcp_types as mt
from aiohttp import web

from ...address import is_loopback_host
from ...config import PoolConfig
from ...runtime.protocol import SessionManagerLike
from .environments import EnvironmentRegistry
from .keys import MCP_API_KEY_HEADER, McpKey
from .protocol import (
    DEFAULT_PROTOCOL_VERSION,
    MAX_BATCH_LENGTH,
    SUPPORTED_PROTOCOL_VERSIONS,
    ClientReply,
    RpcCall,
    RpcError,
    RpcMethod,
    error_message,
    negotiate_version,
    parse_body,
    parse_message,
    result_message,
    wire_dict,
)
from .tools import TOOLS, ToolContext, call_tool, known_tool

__all__ = [
    "MAX_MCP_BODY_BYTES",
    "MCP_PROTOCOL_VERSION_HEADER",
    "MCP_SESSION_HEADER",
    "SERVER_NAME",
    "UNAUTHORIZED",
    "McpServer",
]

logger = logging.getLogger("autogen_aca_sessions.local.frontends.mcp")

MCP_SESSION_HEADER = "Mcp-Session-Id"
"""The streamable-HTTP transport's session header."""

MCP_PROTOCOL_VERSION_HEADER = "MCP-Protocol-Version"
"""The header clients of protocol 2025-06-18 and later send after initialization."""

SERVER_NAME = "Microsoft Container Apps MCP Server"
"""``serverInfo.name`` as the Azure docs list it (clients may show or match it)."""

UNAUTHORIZED = -32010
"""JSON-RPC code of a 401 body (the implementation-defined band -32000..-32019)."""

MAX_MCP_BODY_BYTES = 16 * 1024 * 1024
"""Largest MCP request body; above it 413 with a JSON-RPC error."""

MIN_ENVIRONMENTS = 1000
"""Launched environments a pool keeps at least (``10 * max_concurrent_sessions`` when more)."""

MAX_MCP_SESSIONS = 10_000
"""Most open ``Mcp-Session-Id`` values; the oldest is forgotten first (its client re-initializes)."""

INSTRUCTIONS = (
    "Sandboxed code execution. Call launchShell once to get an environmentId, then run Python with "
    "runPythonCodeInRemoteEnvironment or shell commands with runShellCommandInRemoteEnvironment, "
    "passing that id; files and variables persist between calls. If a call says the environment does "
    "not exist, launch a new one."
)


def _environment_cap(config: PoolConfig) -> int:
    return max(MIN_ENVIRONMENTS, 10 * config.max_concurrent_sessions)


def _server_version() -> str:
    try:
        return metadata.version("autogen-aca-sessions")
    except metadata.PackageNotFoundError:
        return "0"


def _json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _rpc_error_response(err: RpcError, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return _json_response(error_message(err), status, headers)


def _accepts_json(accept: str | None) -> bool:
    if accept is None or not accept.strip():
        return True
    for item in accept.split(","):
        media = item.split(";", 1)[0].strip().lower()
        if media in ("application/json", "application/*", "*/*"):
            return True
    return False


def _check_origin(request: web.Request) -> web.Response | None:
    """Refuse browser requests from pages not served by this machine (DNS rebinding).

    The streamable-HTTP transport asks servers to validate ``Origin``. Non-browser clients (VS
    Code, the SDKs, curl) send none; a browser page gets through only from a loopback origin.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    try:
        host = urlsplit(origin).hostname
    except ValueError:  # "http://[::1", "http://[zz]": no host to trust, so refused like any other
        host = None
    if host is not None and is_loopback_host(host):
        return None
    return _rpc_error_response(
        RpcError(
            UNAUTHORIZED,
            f"Requests from the web origin {origin!r} are refused: only pages served from this machine "
            "(localhost) may call the MCP endpoint from a browser.",
        ),
        403,
    )


class McpServer:
    """The MCP endpoint of one pool, serving its tools from the pool's session manager."""

    def __init__(
        self,
        manager: SessionManagerLike,
        config: PoolConfig,
        *,
        key: McpKey,
        max_body_bytes: int = MAX_MCP_BODY_BYTES,
    ) -> None:
        """Serve ``manager``'s sessions under ``config`` (pool type, time limit, cooldown, size)."""
        self.key = key
        """The MCP API key (rotatable)."""
        self.environments = EnvironmentRegistry(
            session_exists=lambda identifier: manager.get(identifier) is not None,
            cooldown_seconds=config.cooldown_period_seconds,
            max_environments=_environment_cap(config),
        )
        """Launched environments."""
        self._tools = ToolContext(
            manager=manager,
            environments=self.environments,
            shell_pool=config.is_shell,
            max_execution_seconds=config.max_execution_seconds,
        )
        self._max_body = max_body_bytes
        self._sessions: OrderedDict[str, None] = OrderedDict()
        self._version = _server_version()
        self._methods: Mapping[str, RpcMethod[Any]] = {
            "initialize": RpcMethod(mt.InitializeRequestParams, self._initialize, _initialize_params),
            "ping": RpcMethod(mt.RequestParams, _ping),
            "tools/list": RpcMethod(mt.PaginatedRequestParams, _list_tools),
            "tools/call": RpcMethod(mt.CallToolRequestParams, self._call_tool),
        }
        """The JSON-RPC methods served, each with the mcp-types model its params must fit."""

    def reconfigure(self, config: PoolConfig) -> None:
        """Follow the pool's new configuration (an ARM PATCH): cooldown, environment cap and time
        limit; launched environments and MCP sessions are kept."""
        self.environments.reconfigure(
            cooldown_seconds=config.cooldown_period_seconds, max_environments=_environment_cap(config)
        )
        self._tools = dataclasses.replace(
            self._tools, shell_pool=config.is_shell, max_execution_seconds=config.max_execution_seconds
        )

    # ------------------------------------------------------------------ HTTP

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one HTTP request to ``/mcp``."""
        refusal = _check_origin(request) or self._authenticate(request)
        if refusal is not None:
            return refusal
        if request.method == "POST":
            return await self._post(request)
        if request.method == "DELETE":
            return self._delete(request)
        return _rpc_error_response(
            RpcError(
                mt.INVALID_REQUEST,
                f"{request.method} is not served at /mcp: send JSON-RPC messages with POST "
                "(this server opens no server-to-client stream).",
            ),
            405,
            {"Allow": "POST, DELETE"},
        )

    def _authenticate(self, request: web.Request) -> web.Response | None:
        presented = request.headers.get(MCP_API_KEY_HEADER)
        if self.key.matches(presented):
            return None
        if presented:
            message = f"The {MCP_API_KEY_HEADER} header is not this pool's MCP API key."
        elif request.headers.get("Authorization"):
            message = (
                f"The MCP endpoint takes the pool's MCP API key in the {MCP_API_KEY_HEADER} header; "
                "a bearer token (the data plane's key) is not accepted here."
            )
        else:
            message = f"The request has no {MCP_API_KEY_HEADER} header; send the pool's MCP API key in it."
        return _rpc_error_response(RpcError(UNAUTHORIZED, message), 401)

    def _delete(self, request: web.Request) -> web.StreamResponse:
        session_id = request.headers.get(MCP_SESSION_HEADER)
        if not session_id:
            return _rpc_error_response(
                RpcError(
                    mt.INVALID_REQUEST, f"DELETE ends an MCP session: send its {MCP_SESSION_HEADER} header."
                ),
                400,
            )
        if self._sessions.pop(session_id, "absent") == "absent":
            return _rpc_error_response(RpcError(mt.INVALID_REQUEST, "There is no such MCP session."), 404)
        return web.Response(status=204)

    async def _read_body(self, request: web.Request) -> bytes | web.Response:
        too_large = _rpc_error_response(
            RpcError(mt.INVALID_REQUEST, f"The request body is larger than {self._max_body} bytes."), 413
        )
        if request.content_length is not None and request.content_length > self._max_body:
            return too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await request.content.read(256 * 1024)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self._max_body:
                return too_large
            chunks.append(chunk)

    async def _post(self, request: web.Request) -> web.StreamResponse:
        if not _accepts_json(request.headers.get("Accept")):
            return _rpc_error_response(
                RpcError(mt.INVALID_REQUEST, "Not Acceptable: this server answers application/json."), 406
            )
        session_id = request.headers.get(MCP_SESSION_HEADER)
        if session_id:
            if session_id not in self._sessions:
                return _rpc_error_response(
                    RpcError(
                        mt.INVALID_REQUEST,
                        "The MCP session has ended or is unknown; send initialize to start a new one.",
                    ),
                    404,
                )
            self._sessions.move_to_end(session_id)
        version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER)
        if version is not None and version.strip() not in SUPPORTED_PROTOCOL_VERSIONS:
            return _rpc_error_response(
                RpcError(
                    mt.INVALID_REQUEST,
                    f"Unsupported {MCP_PROTOCOL_VERSION_HEADER} {version!r}; supported: "
                    + ", ".join(SUPPORTED_PROTOCOL_VERSIONS)
                    + ".",
                ),
                400,
            )
        raw = await self._read_body(request)
        if isinstance(raw, web.Response):
            return raw
        try:
            body = parse_body(raw)
        except RpcError as err:
            return _rpc_error_response(err, 400)
        if isinstance(body, list):
            return await self._batch(body)
        try:
            message = parse_message(body)
        except RpcError as err:
            return _rpc_error_response(err, 400)
        if isinstance(message, ClientReply) or message.is_notification:
            return web.Response(status=202)
        answer = await self._answer(message)
        headers: dict[str, str] = {}
        if message.method == "initialize" and "result" in answer:
            headers[MCP_SESSION_HEADER] = self._open_session()
        return _json_response(answer, 200, headers)

    async def _batch(self, items: list[Any]) -> web.StreamResponse:
        if not items:
            return _rpc_error_response(
                RpcError(mt.INVALID_REQUEST, "Invalid Request: the batch is empty."), 400
            )
        if len(items) > MAX_BATCH_LENGTH:
            return _rpc_error_response(
                RpcError(
                    mt.INVALID_REQUEST, f"Invalid Request: a batch holds at most {MAX_BATCH_LENGTH} messages."
                ),
                400,
            )
        answers: list[dict[str, Any]] = []
        for item in items:
            try:
                message = parse_message(item)
            except RpcError as err:
                answers.append(error_message(err))
                continue
            if isinstance(message, ClientReply) or message.is_notification:
                continue
            if message.method == "initialize":
                answers.append(
                    error_message(
                        RpcError(
                            mt.INVALID_REQUEST,
                            "Invalid Request: initialize must not be part of a batch.",
                            message.request_id,
                        )
                    )
                )
                continue
            answers.append(await self._answer(message))
        if not answers:
            return web.Response(status=202)
        return _json_response(answers)

    def _open_session(self) -> str:
        session_id = uuid.uuid4().hex
        self._sessions[session_id] = None
        while len(self._sessions) > MAX_MCP_SESSIONS:
            self._sessions.popitem(last=False)
        return session_id

    # ------------------------------------------------------------------ JSON-RPC

    async def _answer(self, call: RpcCall) -> dict[str, Any]:
        assert call.request_id is not None
        try:
            result = await self._dispatch(call)
        except RpcError as err:
            err.request_id = call.request_id
            return error_message(err)
        return result_message(call.request_id, result)

    async def _dispatch(self, call: RpcCall) -> dict[str, Any]:
        method = self._methods.get(call.method)
        if method is None:
            raise RpcError(
                mt.METHOD_NOT_FOUND,
                f"Method not found: {call.method!r}. This server serves " + _names(self._methods) + ".",
            )
        return await method(call.params)

    async def _initialize(self, params: mt.InitializeRequestParams) -> dict[str, Any]:
        result = wire_dict(
            mt.InitializeResult(
                protocol_version=negotiate_version(params.protocol_version),
                capabilities=mt.ServerCapabilities(tools=mt.ToolsCapability(list_changed=False)),
                server_info=mt.Implementation(
                    name=SERVER_NAME, title="autogen-aca-sessions local session pool", version=self._version
                ),
                instructions=INSTRUCTIONS,
            )
        )
        # Azure's docs show tools as {"call": true, "list": true}; both shapes are sent so that a
        # client reading either finds what it looks for (capabilities are open objects).
        result["capabilities"]["tools"].update({"call": True, "list": True})
        return result

    async def _call_tool(self, params: mt.CallToolRequestParams) -> dict[str, Any]:
        name = params.name
        if not name:
            raise RpcError(
                mt.INVALID_PARAMS, "Invalid params: 'name' (the tool name) must be a non-empty string."
            )
        if not known_tool(name):
            raise RpcError(
                mt.INVALID_PARAMS,
                f"Unknown tool: {name!r}. Tools: " + ", ".join(t.name for t in TOOLS) + ".",
            )
        try:
            result = await call_tool(self._tools, name, params.arguments or {})
        except Exception as exc:
            logger.exception("MCP tool %s failed", name)
            raise RpcError(
                mt.INTERNAL_ERROR, f"Internal error running {name}: {type(exc).__name__}."
            ) from exc
        return wire_dict(result)


def _names(methods: Mapping[str, object]) -> str:
    names = list(methods)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _initialize_params(params: dict[str, Any]) -> dict[str, Any]:
    """``initialize`` params as the model wants them: Azure's tutorials send none, or a
    ``clientInfo`` without a version, and are served; what is sent must still fit the model."""
    filled: dict[str, Any] = {"protocolVersion": DEFAULT_PROTOCOL_VERSION, "capabilities": {}}
    filled.update({key: value for key, value in params.items() if value is not None})
    client = filled.get("clientInfo", {})
    if isinstance(client, dict):
        filled["clientInfo"] = {"name": "unknown", "version": "", **client}
    return filled


async def _ping(params: mt.RequestParams) -> dict[str, Any]:
    return {}


async def _list_tools(params: mt.PaginatedRequestParams) -> dict[str, Any]:
    # One page holds every tool: a cursor (which this server never hands out) changes nothing.
    return wire_dict(mt.ListToolsResult(tools=list(TOOLS)))

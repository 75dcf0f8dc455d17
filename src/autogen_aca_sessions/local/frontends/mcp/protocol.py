"""JSON-RPC 2.0 envelopes of the MCP server, validated and rendered with the MCP project's types.

Parsing never raises anything but :class:`RpcError`, so hostile bodies become JSON-RPC error
answers (-32700, -32600, -32601, -32602) and never reach the pool's catch-all 500.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import mcp_types as mt
from pydantic import BaseModel, ValidationError

__all__ = [
    "DEFAULT_PROTOCOL_VERSION",
    "MAX_BATCH_LENGTH",
    "SUPPORTED_PROTOCOL_VERSIONS",
    "ClientReply",
    "RpcCall",
    "RpcError",
    "RpcMethod",
    "error_message",
    "negotiate_version",
    "parse_body",
    "parse_message",
    "result_message",
    "wire_dict",
]

DEFAULT_PROTOCOL_VERSION = "2025-03-26"
"""What Azure's pool MCP server declares; answered when the client names no version or one we lack."""

SUPPORTED_PROTOCOL_VERSIONS: tuple[str, ...] = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
"""Handshake-era versions answered as asked (the tools use nothing newer than 2025-03-26 needs,
plus ``structuredContent``, which Azure sends on 2025-03-26 too)."""

MAX_BATCH_LENGTH = 32
"""Most messages in one JSON-RPC batch (2025-03-26 clients may batch; a bound keeps it cheap)."""


class RpcError(Exception):
    """A JSON-RPC error to answer with; ``request_id`` is ``None`` when it could not be read."""

    def __init__(self, code: int, message: str, request_id: Any = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        """The JSON-RPC error code."""
        self.message = message
        """One sentence saying what is wrong."""
        self.request_id = request_id
        """The id of the request at fault, or None."""
        self.data = data
        """Extra detail for the client (optional)."""


@dataclass(frozen=True)
class RpcCall:
    """A request (``id`` set) or a notification (``id`` None) after envelope validation."""

    method: str
    """The method name, as sent."""
    params: dict[str, Any]
    """The params object (``{}`` when absent)."""
    request_id: str | int | None
    """The request id; None for a notification."""

    @property
    def is_notification(self) -> bool:
        """Whether no answer is expected."""
        return self.request_id is None


@dataclass(frozen=True)
class ClientReply:
    """A response the client sent us (we never send requests, so it is dropped)."""

    request_id: Any
    """Its id."""


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def parse_body(raw: bytes) -> Any:
    """The decoded JSON body; -32700 when it is not JSON (bad UTF-8, absurd nesting included)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise RpcError(mt.PARSE_ERROR, f"Parse error: the body is not valid JSON ({exc}).") from None


def parse_message(obj: Any) -> RpcCall | ClientReply:
    """Validate one JSON-RPC message; raises :class:`RpcError` (-32600/-32602) when it is not one."""
    if not isinstance(obj, dict):
        raise RpcError(mt.INVALID_REQUEST, "Invalid Request: a JSON-RPC message must be a JSON object.")
    has_id = "id" in obj
    raw_id = obj.get("id")
    if has_id and not _valid_id(raw_id):
        raise RpcError(
            mt.INVALID_REQUEST,
            "Invalid Request: 'id' must be a string or an integer (not null, a float or a bool).",
        )
    request_id = raw_id if has_id else None
    if obj.get("jsonrpc") != "2.0":
        raise RpcError(mt.INVALID_REQUEST, "Invalid Request: 'jsonrpc' must be exactly \"2.0\".", request_id)
    if "method" not in obj:
        if has_id and ("result" in obj or "error" in obj):
            return ClientReply(request_id)
        raise RpcError(mt.INVALID_REQUEST, "Invalid Request: 'method' is required.", request_id)
    method = obj["method"]
    if not isinstance(method, str) or not method:
        raise RpcError(
            mt.INVALID_REQUEST, "Invalid Request: 'method' must be a non-empty string.", request_id
        )
    params = obj.get("params")
    if params is None:
        params = {}
    elif isinstance(params, list):
        raise RpcError(
            mt.INVALID_PARAMS, "Invalid params: MCP takes 'params' as an object, not an array.", request_id
        )
    elif not isinstance(params, dict):
        raise RpcError(mt.INVALID_REQUEST, "Invalid Request: 'params' must be an object.", request_id)
    model: BaseModel
    try:
        if has_id:
            model = mt.JSONRPCRequest.model_validate(
                {"jsonrpc": "2.0", "id": raw_id, "method": method, "params": params}
            )
        else:
            model = mt.JSONRPCNotification.model_validate(
                {"jsonrpc": "2.0", "method": method, "params": params}
            )
    except ValidationError as exc:  # defensive: the checks above should have caught it
        raise RpcError(mt.INVALID_REQUEST, f"Invalid Request: {exc.errors()[0]['msg']}", request_id) from None
    checked_id = getattr(model, "id", None)
    return RpcCall(method=method, params=params, request_id=checked_id)


def negotiate_version(asked: str) -> str:
    """The protocol version to answer ``initialize`` with: the client's when served, else ours."""
    return asked if asked in SUPPORTED_PROTOCOL_VERSIONS else DEFAULT_PROTOCOL_VERSION


P = TypeVar("P", bound=BaseModel)


class RpcMethod(Generic[P]):
    """One JSON-RPC method: the mcp-types model of its params, and its handler.

    Calling it validates the params (after ``prepare`` fills what clients may leave out) and runs
    the handler with the model; params that do not fit are -32602 naming the field.
    """

    def __init__(
        self,
        model: type[P],
        handler: Callable[[P], Awaitable[dict[str, Any]]],
        prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.model = model
        """The params model (``mt.CallToolRequestParams``, ...)."""
        self.handler = handler
        """Answers with the result object."""
        self.prepare = prepare
        """Fills params clients may omit, before validation (None: as sent)."""

    async def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validate ``params`` and run the handler; :class:`RpcError` -32602 when they do not fit."""
        if self.prepare is not None:
            params = self.prepare(params)
        try:
            model = self.model.model_validate(params)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "params"
            raise RpcError(mt.INVALID_PARAMS, f"Invalid params: '{where}': {first['msg']}.") from None
        return await self.handler(model)


def wire_dict(model: BaseModel) -> dict[str, Any]:
    """A result model as its camelCase JSON object, without the 2026 era's ``resultType``."""
    body: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    body.pop("resultType", None)
    return body


def result_message(request_id: str | int, result: dict[str, Any]) -> dict[str, Any]:
    """A JSON-RPC success response."""
    return mt.JSONRPCResponse(jsonrpc="2.0", id=request_id, result=result).model_dump(mode="json")


def error_message(err: RpcError) -> dict[str, Any]:
    """A JSON-RPC error response."""
    data = mt.ErrorData(code=err.code, message=err.message, data=err.data)
    message = mt.JSONRPCError(jsonrpc="2.0", id=err.request_id, error=data).model_dump(mode="json")
    if err.data is None:
        message["error"].pop("data", None)
    return message

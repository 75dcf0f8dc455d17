"""Framework-neutral async client for Azure Container Apps dynamic sessions.

Speaks the legacy contract (``2024-02-02-preview``, ``2024-08-02-preview``) and the new one
(``2024-10-02-preview``, ``2025-02-02-preview``, ``2025-10-02-preview``, the default). It never
imports AutoGen; the executor and the CLI build on it.
"""

from __future__ import annotations

from autogen_aca_sessions.client.aiohttp_transport import AiohttpTransport
from autogen_aca_sessions.client.auth import TOKEN_SCOPE, TokenSource
from autogen_aca_sessions.client.client import SessionsClient
from autogen_aca_sessions.client.clock import Clock, SystemClock
from autogen_aca_sessions.client.errors import (
    AuthenticationError,
    ConfigurationError,
    CredentialError,
    ExecutionTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PoolFullError,
    PoolNotFoundError,
    RequestMayHaveRunError,
    RequestNotSentError,
    ServerError,
    ServiceUnavailableError,
    SessionsConnectionError,
    SessionsError,
    SessionsHTTPError,
    ThrottledError,
    UnsupportedOperationError,
    UploadOutcomeUnknownError,
    ValidationError,
    left_no_session,
)
from autogen_aca_sessions.client.mcp import MCP_API_KEY_HEADER, McpConnection, fetch_mcp_connection
from autogen_aca_sessions.client.models import (
    ApiVersion,
    ExecutionResult,
    ExecutionStatus,
    ImageOutput,
    PackageInfo,
    PoolMetadata,
    SessionFile,
    SessionInfo,
)
from autogen_aca_sessions.client.transport import (
    FileUpload,
    ResponseTimeoutError,
    Transport,
    TransportRequest,
    TransportResponse,
)

__all__ = [
    "MCP_API_KEY_HEADER",
    "TOKEN_SCOPE",
    "AiohttpTransport",
    "ApiVersion",
    "AuthenticationError",
    "Clock",
    "ConfigurationError",
    "CredentialError",
    "ExecutionResult",
    "ExecutionStatus",
    "ExecutionTimeoutError",
    "FileUpload",
    "ImageOutput",
    "McpConnection",
    "NotFoundError",
    "PackageInfo",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PoolFullError",
    "PoolMetadata",
    "PoolNotFoundError",
    "RequestMayHaveRunError",
    "RequestNotSentError",
    "ResponseTimeoutError",
    "ServerError",
    "ServiceUnavailableError",
    "SessionFile",
    "SessionInfo",
    "SessionsClient",
    "SessionsConnectionError",
    "SessionsError",
    "SessionsHTTPError",
    "SystemClock",
    "ThrottledError",
    "TokenSource",
    "Transport",
    "TransportRequest",
    "TransportResponse",
    "UnsupportedOperationError",
    "UploadOutcomeUnknownError",
    "ValidationError",
    "fetch_mcp_connection",
    "left_no_session",
]

"""The async sessions client (skeleton; implementation follows)."""

from __future__ import annotations

import ssl as ssl_module
from types import TracebackType

import aiohttp

from autogen_aca_sessions.client.auth import TOKEN_SCOPE, TokenSource
from autogen_aca_sessions.client.models import (
    ApiVersion,
    ExecutionResult,
    PoolMetadata,
    SessionFile,
    SessionInfo,
)

__all__ = ["SessionsClient"]


class SessionsClient:
    """Async client for one session pool's data plane."""

    def __init__(
        self,
        pool_management_endpoint: str,
        credential: TokenSource | None = None,
        *,
        api_version: ApiVersion | str = ApiVersion.V2025_10_02_PREVIEW,
        max_output_chars: int = 1_000_000,
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
    ) -> None:
        raise NotImplementedError

    @property
    def api_version(self) -> ApiVersion:
        raise NotImplementedError

    @property
    def supports_session_management(self) -> bool:
        raise NotImplementedError

    async def execute(
        self,
        identifier: str,
        code: str,
        *,
        timeout_seconds: int = 60,
        asynchronous: bool = False,
        operation_id: str | None = None,
    ) -> ExecutionResult:
        raise NotImplementedError

    async def execute_shell(self, identifier: str, command: str, *, timeout_seconds: int = 60) -> ExecutionResult:
        raise NotImplementedError

    async def get_execution(self, identifier: str, execution_id: str) -> ExecutionResult:
        raise NotImplementedError

    async def upload_file(
        self, identifier: str, name: str, data: bytes, *, path: str | None = None
    ) -> SessionFile:
        raise NotImplementedError

    async def list_files(
        self, identifier: str, *, path: str | None = None, recursive: bool = False
    ) -> list[SessionFile]:
        raise NotImplementedError

    async def get_file(self, identifier: str, name: str, *, path: str | None = None) -> SessionFile:
        raise NotImplementedError

    async def download_file(self, identifier: str, name: str, *, path: str | None = None) -> bytes:
        raise NotImplementedError

    async def delete_file(self, identifier: str, name: str, *, path: str | None = None) -> None:
        raise NotImplementedError

    async def get_session(self, identifier: str) -> SessionInfo:
        raise NotImplementedError

    async def delete_session(self, identifier: str) -> None:
        raise NotImplementedError

    async def list_sessions(self) -> list[SessionInfo]:
        raise NotImplementedError

    async def get_metadata(self) -> PoolMetadata:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> SessionsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

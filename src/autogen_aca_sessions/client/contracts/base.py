"""What a contract module provides: request building and response parsing for one family of
api-versions. The client holds no JSON field names; it asks its contract."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from autogen_aca_sessions.client.errors import UnsupportedOperationError
from autogen_aca_sessions.client.models import (
    ApiVersion,
    ExecutionResult,
    PoolMetadata,
    SessionFile,
    SessionInfo,
)


def segment(value: str) -> str:
    """One URL path segment, percent-encoded (``/`` included)."""
    return quote(value, safe="")


class Service(enum.Enum):
    """Which Azure service a request goes to: its error answers mean different things (roles,
    limits, what the key belongs to)."""

    DYNAMIC_SESSIONS = "DynamicSessions"
    """A session pool's data plane."""
    SANDBOXES = "Sandboxes"
    """A sandbox group's data plane (ACA Sandboxes)."""


@dataclass(frozen=True)
class Request:
    """One HTTP request, independent of transport."""

    method: str
    """HTTP method."""
    path: str
    """Path relative to the pool endpoint; segments already percent-encoded."""
    params: dict[str, str] = field(default_factory=dict)
    """Query parameters besides ``api-version`` and ``identifier``."""
    json: dict[str, Any] | None = None
    """JSON body, if any."""
    per_session: bool = True
    """Whether the request names a session (adds ``identifier``)."""
    creates_session: bool = False
    """Whether the request allocates a session when the identifier is new (404 may mean pool full)."""
    service: Service = Service.DYNAMIC_SESSIONS
    """The service it goes to (what an error answer is explained as)."""


class Contract(ABC):
    """Wire format of one family of api-versions."""

    upload_field = "file"
    """Multipart form field that carries an uploaded file."""
    executions_pollable = True
    """Whether an execution can be unfinished in an answer (HTTP 202 or a running status) and then
    be polled until it ends; False where every execute answer is final."""

    def __init__(self, api_version: ApiVersion) -> None:
        self.api_version = api_version

    @property
    def lists_recursively(self) -> bool:
        """Whether a file listing can include the files of sub-directories (``recursive=true``)."""
        return False

    def unsupported(self, operation: str, needed: str) -> UnsupportedOperationError:
        """The error for an operation this api-version does not have."""
        return UnsupportedOperationError(operation, self.api_version.value, needed)

    # execution
    @abstractmethod
    def execute_request(
        self, code: str, *, timeout_seconds: int, asynchronous: bool, max_output_chars: int
    ) -> Request:
        """The request that runs ``code``."""

    @abstractmethod
    def shell_request(
        self, command: str | list[str], *, timeout_seconds: int, max_output_chars: int
    ) -> Request:
        """The request that runs a shell command line, or a program and its arguments (shell pools)."""

    @abstractmethod
    def get_execution_request(self, execution_id: str) -> Request:
        """The request that reads an execution's state."""

    @abstractmethod
    def requested_output_limit(self, max_output_chars: int) -> int | None:
        """The per-stream output limit this version sends, or None when it sends none."""

    @abstractmethod
    def parse_execution(
        self,
        body: Any,
        *,
        identifier: str,
        execution_id: str | None,
        output_limit: int | None,
        accepted: bool = False,
    ) -> ExecutionResult:
        """An execution result from a response body.

        ``execution_id`` is the fallback id (response header or the one we sent);
        ``output_limit`` the per-stream limit we asked for; ``accepted`` says the service
        answered 202 (an execution with no status yet is then still running)."""

    # files
    @abstractmethod
    def upload_request(self, path: str | None) -> Request:
        """The multipart upload request."""

    @abstractmethod
    def parse_uploaded(self, body: Any, name: str) -> SessionFile:
        """The uploaded file's entry."""

    @abstractmethod
    def list_files_request(self, path: str | None, recursive: bool) -> Request:
        """The file listing request."""

    @abstractmethod
    def parse_file_list(self, body: Any) -> tuple[list[SessionFile], str | None]:
        """Entries of a listing page and the next page link, if any."""

    @abstractmethod
    def get_file_request(self, name: str, path: str | None) -> Request:
        """The file metadata request."""

    @abstractmethod
    def parse_file(self, body: Any, name: str) -> SessionFile:
        """A file metadata entry."""

    @abstractmethod
    def download_request(self, name: str, path: str | None) -> Request:
        """The file content request."""

    @abstractmethod
    def delete_file_request(self, name: str, path: str | None) -> Request:
        """The file delete request."""

    # sessions and pool
    @abstractmethod
    def get_session_request(self) -> Request:
        """The session read request."""

    @abstractmethod
    def delete_session_request(self) -> Request:
        """The session delete request."""

    @abstractmethod
    def list_sessions_request(self) -> Request:
        """The session listing request."""

    @abstractmethod
    def parse_session(self, body: Any, identifier: str) -> SessionInfo:
        """One session."""

    @abstractmethod
    def parse_session_list(self, body: Any) -> tuple[list[SessionInfo], str | None]:
        """Sessions of a listing page and the next page link, if any."""

    @abstractmethod
    def metadata_request(self) -> Request:
        """The pool metadata request."""

    @abstractmethod
    def parse_metadata(self, body: Any) -> PoolMetadata:
        """Pool metadata."""

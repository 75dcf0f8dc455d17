"""The legacy contract: api-versions ``2024-02-02-preview`` and ``2024-08-02-preview``.

``POST code/execute`` with a ``properties`` wrapper, ``files/upload``, ``files``,
``files/content/<name>``; 2024-08 adds ``GET``/``DELETE files/<name>``. Synchronous only.
"""

from __future__ import annotations

from typing import Any

from autogen_aca_sessions.client.contracts import _common as c
from autogen_aca_sessions.client.contracts.base import Contract, Request, segment
from autogen_aca_sessions.client.models import (
    ApiVersion,
    ExecutionResult,
    ExecutionStatus,
    PoolMetadata,
    SessionFile,
    SessionInfo,
)

__all__ = ["LegacyContract"]

_NEW_CONTRACT = "api-version 2024-10-02-preview or later"
_SESSION_MANAGEMENT = "api-version 2025-02-02-preview or later"


def _file_entry(item: Any) -> SessionFile | None:
    entry = c.as_dict(item)
    props = c.as_dict(c.get_ci(entry, "properties")) or entry
    name = c.get_ci(props, "filename", "name", "fileName")
    if not isinstance(name, str):
        return None
    kind = c.get_ci(props, "type")
    return SessionFile(
        name=name,
        type=kind if isinstance(kind, str) and kind else "File",
        size_in_bytes=c.as_int(c.get_ci(props, "size", "sizeInBytes")),
        last_modified_at=c.parse_datetime(c.get_ci(props, "lastModifiedTime", "lastModifiedAt")),
        content_type=c.get_ci(props, "contentType"),
        directory=c.get_ci(props, "directory"),
        raw=entry,
    )


class LegacyContract(Contract):
    """Request building and response parsing for the legacy contract."""

    # Executions answer synchronously, with the final result; there is nothing to poll.
    executions_pollable = False

    def execute_request(
        self, code: str, *, timeout_seconds: int, asynchronous: bool, max_output_chars: int
    ) -> Request:
        if asynchronous:
            raise self.unsupported("asynchronous execution", _NEW_CONTRACT)
        properties = {
            "codeInputType": "inline",
            "executionType": "synchronous",
            "code": code,
            "timeoutInSeconds": timeout_seconds,
        }
        return Request("POST", "code/execute", json={"properties": properties}, creates_session=True)

    def shell_request(
        self, command: str | list[str], *, timeout_seconds: int, max_output_chars: int
    ) -> Request:
        raise self.unsupported("shell commands", "api-version 2025-02-02-preview or later (shell pools)")

    def get_execution_request(self, execution_id: str) -> Request:
        raise self.unsupported("reading an execution by id", _NEW_CONTRACT)

    def requested_output_limit(self, max_output_chars: int) -> int | None:
        return None

    def parse_execution(
        self,
        body: Any,
        *,
        identifier: str,
        execution_id: str | None,
        output_limit: int | None,
        accepted: bool = False,
    ) -> ExecutionResult:
        top = c.as_dict(body)
        props = c.as_dict(c.get_ci(top, "properties")) or top

        error = c.as_dict(c.get_ci(props, "error")) or c.as_dict(c.get_ci(top, "error"))
        error_code = c.get_ci(error, "code")
        error_code = str(error_code) if error_code is not None else None
        error_message = c.get_ci(error, "message")
        error_message = str(error_message) if error_message is not None else None

        status = c.parse_status(c.get_ci(props, "status"))
        if status is None:
            status = ExecutionStatus.FAILED if error else ExecutionStatus.SUCCEEDED

        stdout = c.as_str(c.get_ci(props, "stdout"))
        stderr = c.as_str(c.get_ci(props, "stderr"))

        found, result = c.first_present(props, "result", "executionResult")
        if not found:
            result = ""
        images = c.images_from_list(c.get_ci(props, "images")) or c.images_from_list(c.get_ci(top, "images"))
        if c.is_image_object(result):
            image = c.image_from(result)
            if image is not None:
                images.insert(0, image)
            result = ""

        def flag(*names: str) -> bool:
            return any(c.as_bool(c.get_ci(props, n)) or c.as_bool(c.get_ci(top, n)) for n in names)

        stdout_truncated = flag("stdoutTruncated") or (
            output_limit is not None and len(stdout) >= output_limit
        )
        stderr_truncated = flag("stderrTruncated") or (
            output_limit is not None and len(stderr) >= output_limit
        )
        ident = c.get_ci(top, "id")
        return ExecutionResult(
            execution_id=str(ident) if ident is not None else execution_id,
            identifier=identifier,
            status=status,
            stdout=stdout,
            stderr=stderr,
            result=result,
            images=images,
            execution_time_ms=c.as_int(c.get_ci(props, "executionTimeInMilliseconds")),
            stdout_truncated=stdout_truncated,
            stderr_truncated=stderr_truncated,
            error_code=error_code,
            error_message=error_message,
            exit_code=None,
            timed_out=c.is_timeout_code(error_code) or flag("timedOut"),
            state_lost=c.is_state_lost_code(error_code) or flag("stateLost"),
            raw=top,
        )

    # files
    def upload_request(self, path: str | None) -> Request:
        return Request("POST", "files/upload", params=c.path_params(path), creates_session=True)

    def parse_uploaded(self, body: Any, name: str) -> SessionFile:
        files, _ = self.parse_file_list(body)
        for entry in files:
            if entry.name == name:
                return entry
        if files:
            return files[0]
        return SessionFile(name=name, raw=c.as_dict(body))

    def list_files_request(self, path: str | None, recursive: bool) -> Request:
        if recursive:
            raise self.unsupported("recursive file listing", "api-version 2025-10-02-preview")
        return Request("GET", "files", params=c.path_params(path))

    def parse_file_list(self, body: Any) -> tuple[list[SessionFile], str | None]:
        items = body if isinstance(body, list) else c.get_ci(c.as_dict(body), "value")
        files = [f for f in (_file_entry(i) for i in (items if isinstance(items, list) else [])) if f]
        next_link = c.get_ci(c.as_dict(body), "nextLink")
        return files, next_link if isinstance(next_link, str) and next_link else None

    def _needs_2024_08(self, operation: str) -> None:
        if self.api_version is ApiVersion.V2024_02_02_PREVIEW:
            raise self.unsupported(operation, "api-version 2024-08-02-preview or later")

    def get_file_request(self, name: str, path: str | None) -> Request:
        self._needs_2024_08("reading file metadata")
        return Request("GET", f"files/{segment(name)}", params=c.path_params(path))

    def parse_file(self, body: Any, name: str) -> SessionFile:
        return self.parse_uploaded(body, name)

    def download_request(self, name: str, path: str | None) -> Request:
        return Request("GET", f"files/content/{segment(name)}", params=c.path_params(path))

    def delete_file_request(self, name: str, path: str | None) -> Request:
        self._needs_2024_08("deleting a file")
        return Request("DELETE", f"files/{segment(name)}", params=c.path_params(path))

    # sessions and pool: not on this contract
    def get_session_request(self) -> Request:
        raise self.unsupported("reading a session", _SESSION_MANAGEMENT)

    def delete_session_request(self) -> Request:
        raise self.unsupported("deleting a session", _SESSION_MANAGEMENT)

    def list_sessions_request(self) -> Request:
        raise self.unsupported("listing sessions", _SESSION_MANAGEMENT)

    def parse_session(self, body: Any, identifier: str) -> SessionInfo:
        raise self.unsupported("reading a session", _SESSION_MANAGEMENT)

    def parse_session_list(self, body: Any) -> tuple[list[SessionInfo], str | None]:
        raise self.unsupported("listing sessions", _SESSION_MANAGEMENT)

    def metadata_request(self) -> Request:
        raise self.unsupported("reading pool metadata", _SESSION_MANAGEMENT)

    def parse_metadata(self, body: Any) -> PoolMetadata:
        raise self.unsupported("reading pool metadata", _SESSION_MANAGEMENT)

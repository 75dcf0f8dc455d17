"""The new contract: api-versions ``2024-10-02-preview``, ``2025-02-02-preview`` and
``2025-10-02-preview``.

Flat JSON: ``POST executions`` (202 + ``Operation-Location`` on 2024-10, 200 later),
``GET executions/<id>``, ``files`` routes, and on 2025-02+ ``session``, ``listSessions``,
``metadata`` and shell commands. 2025-10 adds ``outputStreamsMaxLength`` and recursive listing.
"""

from __future__ import annotations

import shlex
from typing import Any

from autogen_aca_sessions.client.contracts import _common as c
from autogen_aca_sessions.client.contracts.base import Contract, Request, segment
from autogen_aca_sessions.client.models import (
    ApiVersion,
    ExecutionResult,
    ExecutionStatus,
    PackageInfo,
    PoolMetadata,
    SessionFile,
    SessionInfo,
)

__all__ = ["CurrentContract"]

_SESSION_MANAGEMENT = "api-version 2025-02-02-preview or later"
SERVICE_DEFAULT_OUTPUT_CAP = 4096
"""Characters per stream the service keeps when ``outputStreamsMaxLength`` is not honoured."""


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


def _file_entry(item: Any) -> SessionFile | None:
    entry = c.as_dict(item)
    # Tolerate the legacy wrapper and names too: some pools mix them.
    props = c.as_dict(c.get_ci(entry, "properties")) or entry
    name = c.get_ci(props, "name", "filename", "fileName")
    if not isinstance(name, str):
        return None
    kind = c.get_ci(props, "type")
    directory = c.get_ci(props, "directory")
    content_type = c.get_ci(props, "contentType")
    return SessionFile(
        name=name,
        type=kind if isinstance(kind, str) and kind else "File",
        size_in_bytes=c.as_int(c.get_ci(props, "sizeInBytes", "size")),
        last_modified_at=c.parse_datetime(c.get_ci(props, "lastModifiedAt", "lastModifiedTime")),
        content_type=content_type if isinstance(content_type, str) else None,
        directory=directory if isinstance(directory, str) and directory else None,
        raw=entry,
    )


def _package(item: Any) -> PackageInfo | None:
    if isinstance(item, str):
        return PackageInfo(name=item)
    entry = c.as_dict(item)
    name = c.get_ci(entry, "name")
    if not isinstance(name, str):
        return None
    return PackageInfo(name=name, version=_str_or_none(c.get_ci(entry, "version")))


def _packages(value: Any) -> list[PackageInfo]:
    if not isinstance(value, list):
        return []
    return [p for p in (_package(i) for i in value) if p is not None]


def _session(item: Any, identifier: str | None = None) -> SessionInfo | None:
    entry = c.as_dict(item)
    props = c.as_dict(c.get_ci(entry, "properties")) or entry
    ident = c.get_ci(props, "identifier", "id", "sessionId")
    if ident is None:
        ident = identifier
    if ident is None:
        return None
    etag = c.get_ci(props, "etag")
    return SessionInfo(
        identifier=str(ident),
        created_at=c.parse_datetime(c.get_ci(props, "createdAt")),
        last_accessed_at=c.parse_datetime(c.get_ci(props, "lastAccessedAt")),
        expire_at=c.parse_datetime(c.get_ci(props, "expireAt", "expiresAt")),
        etag=_str_or_none(etag),
        raw=entry,
    )


class CurrentContract(Contract):
    """Request building and response parsing for the new contract."""

    @property
    def _has_session_management(self) -> bool:
        return self.api_version.supports_session_management

    def _output_limit_supported(self) -> bool:
        return self.api_version is ApiVersion.V2025_10_02_PREVIEW

    @property
    def lists_recursively(self) -> bool:
        """Recursive listing came with 2025-10-02-preview."""
        return self.api_version is ApiVersion.V2025_10_02_PREVIEW

    def execute_request(
        self, code: str, *, timeout_seconds: int, asynchronous: bool, max_output_chars: int
    ) -> Request:
        body: dict[str, Any] = {
            "codeInputType": "Inline",
            "executionType": "Asynchronous" if asynchronous else "Synchronous",
            "code": code,
            "timeoutInSeconds": timeout_seconds,
        }
        if self._output_limit_supported():
            body["outputStreamsMaxLength"] = max_output_chars
        return Request("POST", "executions", json=body, creates_session=True)

    def shell_request(
        self, command: str | list[str], *, timeout_seconds: int, max_output_chars: int
    ) -> Request:
        if not self.api_version.supports_shell:
            raise self.unsupported("shell commands", "api-version 2025-02-02-preview or later (shell pools)")
        body: dict[str, Any] = {"executionType": "Synchronous", "timeoutInSeconds": timeout_seconds}
        if isinstance(command, str):
            body["shellCommand"] = command
        elif self.api_version is ApiVersion.V2025_10_02_PREVIEW:
            body["execCommandAndArgs"] = command
        else:
            # Before 2025-10 there is no argument list: the same words, quoted for bash.
            body["shellCommand"] = shlex.join(command)
        if self._output_limit_supported():
            body["outputStreamsMaxLength"] = max_output_chars
        return Request("POST", "executions", json=body, creates_session=True)

    def get_execution_request(self, execution_id: str) -> Request:
        return Request("GET", f"executions/{segment(execution_id)}")

    def requested_output_limit(self, max_output_chars: int) -> int | None:
        return max_output_chars if self._output_limit_supported() else None

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
        wrapped = c.as_dict(c.get_ci(top, "properties"))
        envelope = wrapped if wrapped and c.get_ci(top, "status") is None else top
        inner = c.get_ci(envelope, "result")
        # The documented shape nests streams under `result`; tolerate them at the top level too.
        res = inner if isinstance(inner, dict) and not c.is_image_object(inner) else envelope

        error = c.as_dict(c.get_ci(envelope, "error")) or c.as_dict(c.get_ci(res, "error"))
        error_code = _str_or_none(c.get_ci(error, "code"))
        error_message = _str_or_none(c.get_ci(error, "message"))

        raw_status = c.get_ci(envelope, "status")
        exit_code = c.parse_exit_code(raw_status)
        if exit_code is None:
            exit_code = c.parse_exit_code(c.get_ci(res, "exitCode"))
        status = c.parse_status(raw_status)
        if status is None:
            if accepted and exit_code is None and not error:
                status = ExecutionStatus.RUNNING
            elif exit_code is not None:
                status = ExecutionStatus.SUCCEEDED if exit_code == 0 else ExecutionStatus.FAILED
            else:
                status = ExecutionStatus.FAILED if error else ExecutionStatus.SUCCEEDED

        stdout = c.as_str(c.get_ci(res, "stdout"))
        stderr = c.as_str(c.get_ci(res, "stderr"))
        found, result = c.first_present(res, "executionResult", "result")
        if not found:
            result = ""
        images = c.images_from_list(c.get_ci(res, "images")) or c.images_from_list(
            c.get_ci(envelope, "images")
        )
        if c.is_image_object(result):
            image = c.image_from(result)
            if image is not None:
                images.insert(0, image)
            result = ""

        def flag(*names: str) -> bool:
            return any(c.as_bool(c.get_ci(res, n)) or c.as_bool(c.get_ci(envelope, n)) for n in names)

        stdout_truncated = flag("stdoutTruncated") or (
            output_limit is not None and len(stdout) >= output_limit
        )
        stderr_truncated = flag("stderrTruncated") or (
            output_limit is not None and len(stderr) >= output_limit
        )

        def possibly_cut(text: str, flagged: bool) -> bool:
            # The service's default cap cuts without a flag; when we asked for more (or could not
            # ask), a stream of exactly that length may still have been cut by a server that
            # ignored our limit.
            return (
                not flagged
                and len(text) == SERVICE_DEFAULT_OUTPUT_CAP
                and (output_limit is None or output_limit > SERVICE_DEFAULT_OUTPUT_CAP)
            )

        ident = c.get_ci(envelope, "id")
        return ExecutionResult(
            execution_id=str(ident) if ident is not None else execution_id,
            identifier=identifier,
            status=status,
            stdout=stdout,
            stderr=stderr,
            result=result,
            images=images,
            execution_time_ms=c.as_int(c.get_ci(res, "executionTimeInMilliseconds")),
            stdout_truncated=stdout_truncated,
            stderr_truncated=stderr_truncated,
            error_code=error_code,
            error_message=error_message,
            exit_code=exit_code,
            timed_out=c.is_timeout_code(error_code) or flag("timedOut"),
            state_lost=c.is_state_lost_code(error_code) or flag("stateLost"),
            raw=top,
            stdout_possibly_truncated=possibly_cut(stdout, stdout_truncated),
            stderr_possibly_truncated=possibly_cut(stderr, stderr_truncated),
        )

    # files
    def upload_request(self, path: str | None) -> Request:
        return Request("POST", "files", params=c.path_params(path), creates_session=True)

    def parse_uploaded(self, body: Any, name: str) -> SessionFile:
        data = c.as_dict(body)
        if isinstance(c.get_ci(data, "value"), list) or isinstance(body, list):
            files, _ = self.parse_file_list(body)
            for entry in files:
                if entry.name == name:
                    return entry
            if files:
                return files[0]
        single = _file_entry(data)
        return single if single is not None else SessionFile(name=name, raw=data)

    def list_files_request(self, path: str | None, recursive: bool) -> Request:
        params = c.path_params(path)
        if recursive:
            if not self.lists_recursively:
                raise self.unsupported("recursive file listing", "api-version 2025-10-02-preview")
            params["recursive"] = "true"
        return Request("GET", "files", params=params)

    def parse_file_list(self, body: Any) -> tuple[list[SessionFile], str | None]:
        items = body if isinstance(body, list) else c.get_ci(c.as_dict(body), "value")
        files = [f for f in (_file_entry(i) for i in (items if isinstance(items, list) else [])) if f]
        next_link = c.get_ci(c.as_dict(body), "nextLink")
        return files, next_link if isinstance(next_link, str) and next_link else None

    def get_file_request(self, name: str, path: str | None) -> Request:
        return Request("GET", f"files/{segment(name)}", params=c.path_params(path))

    def parse_file(self, body: Any, name: str) -> SessionFile:
        return self.parse_uploaded(body, name)

    def download_request(self, name: str, path: str | None) -> Request:
        return Request("GET", f"files/{segment(name)}/content", params=c.path_params(path))

    def delete_file_request(self, name: str, path: str | None) -> Request:
        return Request("DELETE", f"files/{segment(name)}", params=c.path_params(path))

    # sessions and pool
    def _check_session_management(self, operation: str) -> None:
        if not self._has_session_management:
            raise self.unsupported(operation, _SESSION_MANAGEMENT)

    def get_session_request(self) -> Request:
        self._check_session_management("reading a session")
        return Request("GET", "session")

    def delete_session_request(self) -> Request:
        self._check_session_management("deleting a session")
        return Request("DELETE", "session")

    def list_sessions_request(self) -> Request:
        self._check_session_management("listing sessions")
        return Request("GET", "listSessions", per_session=False)

    def parse_session(self, body: Any, identifier: str) -> SessionInfo:
        session = _session(body, identifier)
        assert session is not None  # identifier is a fallback, so an entry always results
        return session

    def parse_session_list(self, body: Any) -> tuple[list[SessionInfo], str | None]:
        data = c.as_dict(body)
        items = body if isinstance(body, list) else c.get_ci(data, "sessions", "value")
        sessions = [s for s in (_session(i) for i in (items if isinstance(items, list) else [])) if s]
        next_link = c.get_ci(data, "nextLink")
        return sessions, next_link if isinstance(next_link, str) and next_link else None

    def metadata_request(self) -> Request:
        self._check_session_management("reading pool metadata")
        return Request("GET", "metadata", per_session=False)

    def parse_metadata(self, body: Any) -> PoolMetadata:
        data = c.as_dict(body)
        return PoolMetadata(
            runtimes=_packages(c.get_ci(data, "runtimes")),
            preinstalled_packages=_packages(c.get_ci(data, "preInstalledPackages", "preinstalledPackages")),
            jupyter_kernel=c.as_dict(c.get_ci(data, "jupyterKernel")),
            created_at=c.parse_datetime(c.get_ci(data, "createdAt")),
            last_updated_at=c.parse_datetime(c.get_ci(data, "lastUpdatedAt")),
            raw=data,
        )

"""The Agent Framework tools: run code or shell commands in the conversation's session, move files.

Each tool is a :class:`agent_framework.FunctionTool` with a fixed JSON schema. The session comes
from the ``AgentSession`` of the invocation (``FunctionInvocationContext.session``), so every
conversation has its own session. A failure never escapes as an exception: it comes back as a
tool result saying what happened, with the output so far, and the session stays usable.
"""

from __future__ import annotations

from typing import Any, ClassVar

from agent_framework import AgentSession, Content, FunctionInvocationContext, FunctionTool

from autogen_aca_sessions.agent_framework._backend import BackendConfig, CodeBackend, RunOutcome
from autogen_aca_sessions.agent_framework._config import ApprovalModeName, SandboxesConfig
from autogen_aca_sessions.agent_framework._instructions import (
    download_file_description,
    execute_code_description,
    list_files_description,
    run_shell_description,
    upload_file_description,
    work_dir,
)
from autogen_aca_sessions.agent_framework._results import cut, error_contents, execution_contents
from autogen_aca_sessions.agent_framework._sandboxes import gone_message
from autogen_aca_sessions.agent_framework._sessions import PathNotAllowedError
from autogen_aca_sessions.client import (
    ExecutionTimeoutError,
    NotFoundError,
    PoolFullError,
    PoolNotFoundError,
    RequestMayHaveRunError,
    SessionsConnectionError,
    SessionsError,
    SessionsHTTPError,
)
from autogen_aca_sessions.client.sandbox_python import SandboxGoneError

__all__ = [
    "DOWNLOAD_FILE_SCHEMA",
    "EXECUTE_CODE_SCHEMA",
    "LIST_FILES_SCHEMA",
    "RUN_SHELL_SCHEMA",
    "UPLOAD_FILE_SCHEMA",
    "DownloadFileTool",
    "ExecuteCodeTool",
    "ListFilesTool",
    "RunShellTool",
    "UploadFileTool",
]

EXECUTE_CODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "description": "Python code to run in the session (it keeps state between calls).",
        },
    },
    "required": ["code"],
    "additionalProperties": False,
}
RUN_SHELL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string", "description": "Shell command (or script) to run in the session."},
    },
    "required": ["command"],
    "additionalProperties": False,
}
UPLOAD_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "description": "Path of the file, relative to the upload directory."},
    },
    "required": ["path"],
    "additionalProperties": False,
}
LIST_FILES_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
DOWNLOAD_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "File name relative to /mnt/data, e.g. 'chart.png'."},
        "local_name": {
            "type": "string",
            "description": "Name to save it under in the download directory (default: the same name).",
        },
    },
    "required": ["name"],
    "additionalProperties": False,
}


_GROUP_FULL = "MaxSandboxCountReached"
"""The Sandboxes data plane's error code for a group at its ``maxSandboxCount``."""


def _session_of(ctx: FunctionInvocationContext | None) -> AgentSession | None:
    return ctx.session if ctx is not None else None


def _failure(exc: Exception, service: str = "session pool") -> list[Content]:
    """A tool result for a call that raised: what happened and what the model can do.
    ``service`` names where the code runs in the generic failures ("session pool", "sandbox group")."""
    if isinstance(exc, ExecutionTimeoutError):
        return error_contents(
            f"No answer from the session within {exc.waited_seconds:g} s (limit {exc.timeout_seconds} s). "
            "The code may still be running; try smaller steps.",
            error_code="Timeout",
        )
    if isinstance(exc, PathNotAllowedError):
        return error_contents(f"Refused: {exc}", error_code="PathNotAllowed")
    if isinstance(exc, PoolFullError):
        return error_contents(
            f"The session pool has no free session right now; try again later. {exc}", error_code="PoolFull"
        )
    if isinstance(exc, PoolNotFoundError):
        return error_contents(
            f"No session pool answers at the configured endpoint; check pool_management_endpoint. {exc}",
            error_code="PoolNotFound",
        )
    if isinstance(exc, (FileNotFoundError, NotFoundError)):
        return error_contents(f"Not found: {exc}", error_code="NotFound")
    if isinstance(exc, RequestMayHaveRunError):
        return error_contents(
            f"The request reached the pool but no answer came back, so it may have run; check the session's "
            f"state before running it again. {exc}",
            error_code=type(exc).__name__,
        )
    if isinstance(exc, SandboxGoneError):
        return error_contents(gone_message(exc.sandbox_id), error_code="SandboxGone")
    if isinstance(exc, SessionsHTTPError) and exc.error_code == _GROUP_FULL:
        return error_contents(
            "The sandbox group holds as many sandboxes as it may (suspended ones count), so no new "
            f"sandbox can start for this conversation now; try again later. {exc}",
            error_code="SandboxGroupFull",
        )
    if isinstance(exc, SessionsConnectionError):
        return error_contents(f"Could not reach the {service}: {exc}", error_code=type(exc).__name__)
    if isinstance(exc, SessionsError):
        return error_contents(f"The {service} refused the call: {exc}", error_code=type(exc).__name__)
    return error_contents(f"{type(exc).__name__}: {exc}", error_code=type(exc).__name__)


class _SessionTool(FunctionTool):
    """A tool bound to one :class:`~._backend.CodeBackend` (dynamic sessions or sandboxes);
    subclasses declare their name, schema and description and implement ``_act`` (the
    conversation's ``AgentSession`` and the arguments)."""

    DEFAULT_NAME: ClassVar[str]
    SCHEMA: ClassVar[dict[str, Any]]
    KIND: ClassVar[str | None] = None
    READ_ONLY: ClassVar[bool] = False
    """Read-only tools never wait for approval, whatever the approval mode."""

    def __init__(
        self,
        sessions: CodeBackend,
        *,
        name: str | None = None,
        approval_mode: ApprovalModeName | None = None,
    ) -> None:
        mode: ApprovalModeName = (
            "never_require" if self.READ_ONLY else approval_mode or sessions.config.approval_mode
        )
        super().__init__(
            name=name or self.DEFAULT_NAME,
            description=self._describe(sessions.config),
            approval_mode=mode,
            kind=self.KIND,
            func=self._call,
            input_model=self._schema(sessions.config),
        )
        self._sessions = sessions

    @property
    def sessions(self) -> CodeBackend:
        """The backend this tool runs in (a ``DynamicSessions`` or a ``Sandboxes``)."""
        return self._sessions

    @staticmethod
    def _describe(config: BackendConfig) -> str:
        raise NotImplementedError

    @classmethod
    def _schema(cls, config: BackendConfig) -> dict[str, Any]:
        """The JSON schema of the arguments (a subclass may name the backend's directory)."""
        return cls.SCHEMA

    async def _call(self, ctx: FunctionInvocationContext, **arguments: Any) -> list[Content]:
        # Agent Framework passes the invocation context as `ctx` (found by its annotation).
        try:
            return await self._act(_session_of(ctx), **arguments)
        except (SessionsError, ValueError, OSError) as exc:
            sandboxes = isinstance(self._sessions.config, SandboxesConfig)
            return _failure(exc, "sandbox group" if sandboxes else "session pool")

    async def _act(self, session: AgentSession | None, **arguments: Any) -> list[Content]:
        raise NotImplementedError

    def _contents(self, outcome: RunOutcome) -> list[Content]:
        config = self._sessions.config
        return execution_contents(
            outcome.result,
            max_output_chars=config.max_output_chars,
            max_images=config.max_images,
            timeout_seconds=config.timeout_seconds,
            notes=outcome.notes,
        )


class ExecuteCodeTool(_SessionTool):
    """``execute_code``: Python in the conversation's session; stdout, stderr, value and images back."""

    DEFAULT_NAME = "execute_code"
    SCHEMA = EXECUTE_CODE_SCHEMA
    _describe = staticmethod(execute_code_description)

    async def _act(self, session: AgentSession | None, code: str) -> list[Content]:  # type: ignore[override]
        return self._contents(await self._sessions.run_code(session, code))


class RunShellTool(_SessionTool):
    """``run_shell``: a shell command in the conversation's session (shell pools) or sandbox."""

    DEFAULT_NAME = "run_shell"
    SCHEMA = RUN_SHELL_SCHEMA
    KIND = "shell"
    _describe = staticmethod(run_shell_description)

    async def _act(self, session: AgentSession | None, command: str) -> list[Content]:  # type: ignore[override]
        return self._contents(await self._sessions.run_shell(session, command))


class UploadFileTool(_SessionTool):
    """``upload_file``: a file of the allowed local directory into the working directory."""

    DEFAULT_NAME = "upload_file"
    SCHEMA = UPLOAD_FILE_SCHEMA

    _describe = staticmethod(upload_file_description)

    async def _act(self, session: AgentSession | None, path: str) -> list[Content]:  # type: ignore[override]
        uploaded = await self._sessions.upload_from_allowed_dir(session, path)
        size = f" ({uploaded.size_in_bytes} bytes)" if uploaded.size_in_bytes is not None else ""
        root = work_dir(self._sessions.config)
        return [Content.from_text(f"Uploaded {path} as {root}/{uploaded.relative_path}{size}.")]


class ListFilesTool(_SessionTool):
    """``list_files``: what is in the working directory (read-only, never needs approval)."""

    DEFAULT_NAME = "list_files"
    SCHEMA = LIST_FILES_SCHEMA
    READ_ONLY = True

    _describe = staticmethod(list_files_description)

    async def _act(self, session: AgentSession | None) -> list[Content]:  # type: ignore[override]
        files = await self._sessions.list_files(session)
        entries = [entry for entry in files if not entry.is_directory]
        if not entries:
            return [Content.from_text(f"{work_dir(self._sessions.config)} is empty.")]
        lines = []
        for entry in entries:
            size = f"{entry.size_in_bytes} bytes" if entry.size_in_bytes is not None else "size unknown"
            changed = f", changed {entry.last_modified_at.isoformat()}" if entry.last_modified_at else ""
            lines.append(f"{entry.relative_path} ({size}{changed})")
        return [Content.from_text(cut("\n".join(lines), self._sessions.config.max_output_chars))]


class DownloadFileTool(_SessionTool):
    """``download_file``: a file of the session into the allowed local directory."""

    DEFAULT_NAME = "download_file"
    SCHEMA = DOWNLOAD_FILE_SCHEMA

    _describe = staticmethod(download_file_description)

    @classmethod
    def _schema(cls, config: BackendConfig) -> dict[str, Any]:
        root = work_dir(config)
        name = {"type": "string", "description": f"File name relative to {root}, e.g. 'chart.png'."}
        return {**DOWNLOAD_FILE_SCHEMA, "properties": {**DOWNLOAD_FILE_SCHEMA["properties"], "name": name}}

    async def _act(  # type: ignore[override]
        self, session: AgentSession | None, name: str, local_name: str | None = None
    ) -> list[Content]:
        saved = await self._sessions.download_to_allowed_dir(session, name, local_name)
        root = work_dir(self._sessions.config)
        remote = name.removeprefix(root + "/")
        return [Content.from_text(f"Saved {root}/{remote} as {saved.name} in the download directory.")]

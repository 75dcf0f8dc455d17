"""Dynamic sessions for Agent Framework conversations: one session per ``AgentSession``.

:class:`DynamicSessions` owns the connection to one pool (a :class:`SessionsClient`), maps each
Agent Framework ``AgentSession`` to a session identifier kept in the ``AgentSession``'s state (so
a saved and restored conversation finds its session again), prepares every session once (working
directory, injected functions) and again after the service replaced it, and deletes the sessions
it created when it is closed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl as ssl_module
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from autogen_aca_sessions.agent_framework._backend import RunOutcome
from autogen_aca_sessions.agent_framework._config import DynamicSessionsConfig, PoolKind
from autogen_aca_sessions.agent_framework._functions import InjectedFunction
from autogen_aca_sessions.agent_framework._workspace import (
    PathNotAllowedError,
    WorkspaceBackend,
    resolve_inside,
    workspace_parts,
)
from autogen_aca_sessions.client import (
    ExecutionResult,
    NotFoundError,
    SessionFile,
    SessionsClient,
    SessionsError,
    TokenSource,
    left_no_session,
)
from autogen_aca_sessions.client.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    CheckpointSessionGoneError,
    checkpoint_session,
    inspect_checkpoint,
    restore_session,
)
from autogen_aca_sessions.client.limits import DEFAULT_MAX_OUTPUT_CHARS, MAX_EXECUTION_SECONDS
from autogen_aca_sessions.client.session_code import packages_code, setup_code
from autogen_aca_sessions.client.session_replacement import (
    failed_for_missing_functions,
    replaced_since,
    setup_lost,
)

if TYPE_CHECKING:
    from agent_framework import AgentSession

# PathNotAllowedError and resolve_inside live in _workspace now; still importable from here.
__all__ = [
    "STATE_KEY",
    "DynamicSessions",
    "PathNotAllowedError",
    "RunOutcome",
    "SessionSetupError",
    "resolve_inside",
]

logger = logging.getLogger(__name__)

STATE_KEY = "aca_dynamic_sessions"
"""Key in ``AgentSession.state`` under which the session identifier is kept."""

_SETUP_TIMEOUT_SECONDS = 60
_CHECKPOINT_SECONDS = 120
"""Least time limit of the cells that pack and unpack a checkpoint (a large namespace takes
longer than a typical call; the service's cap of 220 s still applies)."""
_MAX_SERVICE_OUTPUT_CHARS = DEFAULT_MAX_OUTPUT_CHARS
_MIN_SERVICE_OUTPUT_CHARS = 200_000


class SessionSetupError(SessionsError):
    """The session could not be prepared (working directory or injected functions)."""


class DynamicSessions(WorkspaceBackend):
    """The sessions of one pool, for Agent Framework agents.

    Args:
        config: The serialisable configuration (endpoint, pool kind, limits, approval, directories).
        credential: Where tokens come from: an azure-core ``TokenCredential`` or
            ``AsyncTokenCredential``, a callable returning a token (sync or async), or a token
            string such as a local pool's key. None uses ``DefaultAzureCredential``.
        functions: Functions importable in every Python session as ``from <functions_module> import f``.
        client: A :class:`SessionsClient` to use instead of creating one (then never closed here).
        ssl: TLS setting for a local pool serving a self-signed certificate.

    Use it with ``async with`` (or call :meth:`close`): that deletes the sessions it created
    (``release_on_close``) and closes its connections.
    """

    def __init__(
        self,
        config: DynamicSessionsConfig,
        *,
        credential: TokenSource | None = None,
        functions: Sequence[InjectedFunction] = (),
        client: SessionsClient | None = None,
        ssl: ssl_module.SSLContext | bool | None = None,
    ) -> None:
        if functions and config.pool_kind is PoolKind.SHELL:
            raise ValueError(
                "Injected functions need a Python pool: a shell pool has no interpreter to load them."
            )
        super().__init__(functions)
        self._config = config
        if client is None:
            client = SessionsClient(
                config.pool_management_endpoint,
                credential,
                api_version=config.api_version,
                # Ask the service for more than the model sees, so the cut keeps start and end.
                max_output_chars=min(
                    _MAX_SERVICE_OUTPUT_CHARS, max(_MIN_SERVICE_OUTPUT_CHARS, config.max_output_chars * 4)
                ),
                request_timeout=config.request_timeout,
                ssl=ssl,
                allow_insecure_http=config.allow_insecure_http,
                user_agent="autogen-aca-sessions-agent-framework",
            )
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client
        self._created: set[str] = set()
        self._used: set[str] = set()
        # identifier -> the x-ms-session-guid seen when it was prepared (None when not reported).
        self._prepared: dict[str, str | None] = {}
        self._default_identifier: str | None = None
        # identifier -> (path, key) of the last checkpoint made or restored for it.
        self._checkpoints: dict[str, tuple[Path, bytes | None]] = {}

    # ------------------------------------------------------------------ properties
    @property
    def config(self) -> DynamicSessionsConfig:
        """The configuration."""
        return self._config

    @property
    def client(self) -> SessionsClient:
        """The sessions client underneath."""
        return self._client

    @property
    def tool_kinds(self) -> tuple[PoolKind, ...]:
        """The pool's kind: a Python pool runs ``execute_code``, a shell pool ``run_shell``."""
        return (self._config.pool_kind,)

    @property
    def created_identifiers(self) -> frozenset[str]:
        """Identifiers this object made up (the sessions it releases on close once used)."""
        return frozenset(self._created)

    # ------------------------------------------------------------------ session mapping
    def identifier_for(self, session: AgentSession | None) -> str:
        """The session identifier for an ``AgentSession``: the caller-chosen one from the
        configuration, else the one stored in the ``AgentSession``'s state, else a new one (stored
        there). Without an ``AgentSession`` every call shares one identifier of this object."""
        if self._config.session_identifier is not None:
            return self._config.session_identifier
        if session is None:
            if self._default_identifier is None:
                self._default_identifier = self._new_identifier()
            return self._default_identifier
        entry = session.state.get(STATE_KEY)
        if isinstance(entry, dict) and isinstance(entry.get("identifier"), str):
            return str(entry["identifier"])
        identifier = self._new_identifier()
        session.state[STATE_KEY] = {"identifier": identifier}
        return identifier

    def bind(self, session: AgentSession, identifier: str) -> None:
        """Make ``session`` use the caller-chosen ``identifier`` (never released by this object)."""
        if not isinstance(identifier, str) or not 0 < len(identifier) <= 256:
            raise ValueError("identifier must have 1 to 256 characters")
        session.state[STATE_KEY] = {"identifier": identifier}

    def _new_identifier(self) -> str:
        identifier = f"{self._config.identifier_prefix}{uuid.uuid4()}"
        self._created.add(identifier)
        return identifier

    @contextlib.contextmanager
    def _naming(self, identifier: str) -> Iterator[None]:
        """Around one request naming ``identifier``: it counts as used (released on close) from
        before it goes out, unless it failed in a way that created no session (never sent, or
        refused with 401, 403, pool full, no pool), the executor's rule too."""
        was_used = identifier in self._used
        self._used.add(identifier)
        try:
            yield
        except Exception as exc:
            if not was_used and left_no_session(exc):
                self._used.discard(identifier)
            raise

    # ------------------------------------------------------------------ executions
    async def run_code(
        self, session: AgentSession | None, code: str, *, timeout_seconds: int | None = None
    ) -> RunOutcome:
        """Run Python code in the session of ``session`` (prepared first when needed), with
        ``timeout_seconds`` (default: the configuration's) as the service's time limit."""
        self._check_open()
        if self._config.pool_kind is not PoolKind.PYTHON:
            raise SessionsError("this pool runs shell commands: use run_shell")
        seconds = timeout_seconds or self._config.timeout_seconds
        identifier = self.identifier_for(session)
        async with self._lock(identifier):
            await self._prepare(identifier)
            result = await self._client.execute(identifier, code, timeout_seconds=seconds)
            notes: list[str] = []
            if self._was_replaced(identifier, result):
                result = await self._after_replacement(identifier, code, result, notes, seconds)
                note = await self._restore_after_loss(identifier)
                if note is not None:
                    notes.append(note)
            return RunOutcome(result=result, identifier=identifier, notes=notes)

    async def run_shell(
        self, session: AgentSession | None, command: str, *, timeout_seconds: int | None = None
    ) -> RunOutcome:
        """Run a shell command in the session of ``session`` (shell pools)."""
        self._check_open()
        if self._config.pool_kind is not PoolKind.SHELL:
            raise SessionsError("this pool runs Python: use run_code")
        identifier = self.identifier_for(session)
        async with self._lock(identifier):
            with self._naming(identifier):
                result = await self._client.execute_shell(
                    identifier, command, timeout_seconds=timeout_seconds or self._config.timeout_seconds
                )
            notes: list[str] = []
            if replaced_since(self._prepared.get(identifier), result):
                notes.append(
                    "The session was replaced since the last command: files written before are gone."
                )
            if result.session_guid:
                self._prepared[identifier] = result.session_guid
            return RunOutcome(result=result, identifier=identifier, notes=notes)

    def _was_replaced(self, identifier: str, result: ExecutionResult) -> bool:
        return setup_lost(self._prepared.get(identifier), result)

    async def _restore_after_loss(self, identifier: str) -> str | None:
        """With ``restore_checkpoint_on_loss``, put the session's last checkpoint back after its
        state was lost; the note for the model (None when there was nothing to restore)."""
        last = self._checkpoints.get(identifier)
        if not self._config.restore_checkpoint_on_loss or last is None:
            return None
        path, key = last
        try:
            await inspect_checkpoint(path, key=key)
            info = await self._restore_into(identifier, path, key)
        except (SessionsError, ValueError, OSError) as exc:
            return f"Restoring the last checkpoint failed, so nothing of it is back: {exc}"
        names = ", ".join(info.variables) or "none"
        return (
            f"The last checkpoint was restored after this call ran: variables {names} and "
            f"{len(info.files)} file(s) are back (work done after that checkpoint is gone); run the "
            "code again if it needed them."
        )

    async def _after_replacement(
        self, identifier: str, code: str, result: ExecutionResult, notes: list[str], seconds: int
    ) -> ExecutionResult:
        self._prepared.pop(identifier, None)
        notes.append(
            "The session's interpreter was replaced: variables from earlier calls are gone (files in "
            "/mnt/data may be gone too)."
        )
        await self._prepare(identifier)
        module = self._functions
        if module is not None and failed_for_missing_functions(
            result, self._config.functions_module, module.names
        ):
            # It failed only because the fresh interpreter lacked the injected functions.
            notes.append("The code ran again once the injected functions were set up.")
            return await self._client.execute(identifier, code, timeout_seconds=seconds)
        notes.append("The working directory and injected functions are set up again for the next call.")
        return result

    def _setup_source(self) -> str:
        module = self._functions
        return setup_code(
            self._config.functions_module,
            module.source if module else None,
            module.names if module else (),
        )

    async def _prepare(self, identifier: str) -> None:
        """Working directory and injected functions, once per session incarnation."""
        if identifier in self._prepared:
            return
        code = self._setup_source()
        with self._naming(identifier):
            result = await self._client.execute(
                identifier,
                code,
                timeout_seconds=min(_SETUP_TIMEOUT_SECONDS, max(self._config.timeout_seconds, 10)),
            )
        if not result.succeeded:
            raise SessionSetupError(
                f"Preparing session {identifier!r} failed (working directory / injected functions): "
                f"{(result.stderr or result.error_message or result.status.value).strip()[-2000:]}"
            )
        self._prepared[identifier] = result.session_guid

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_seconds(self) -> int:
        return min(MAX_EXECUTION_SECONDS, max(self._config.timeout_seconds, _CHECKPOINT_SECONDS))

    async def checkpoint(
        self, session: AgentSession | None, path: str | os.PathLike[str], *, key: bytes | None = None
    ) -> CheckpointInfo:
        """Save the files and picklable variables of ``session``'s dynamic session to ``path``.

        The same as the AutoGen executor's ``checkpoint`` (see
        :mod:`autogen_aca_sessions.client.checkpoint`): signed with ``key``, the injected
        functions left out, what would not pickle listed in :attr:`CheckpointInfo.skipped`.

        Raises:
            CheckpointSessionGoneError: the session no longer exists (cooldown, or deleted).
            CheckpointError: a shell pool, a conversation that has run nothing yet, or a session
                that could not pack its state.
        """
        self._check_open()
        if self._config.pool_kind is not PoolKind.PYTHON:
            raise CheckpointError(
                "A shell pool has no interpreter whose variables could be kept; download the files instead."
            )
        if not self.has_session(session):
            raise CheckpointError("This conversation has run nothing yet: there is nothing to checkpoint.")
        identifier = self.identifier_for(session)
        if identifier in self._created and identifier not in self._used:
            raise CheckpointError(
                f"Session {identifier!r} has run nothing yet: there is nothing to checkpoint."
            )
        module = self._functions
        async with self._lock(identifier):
            try:
                with self._naming(identifier):
                    info = await checkpoint_session(
                        self._client,
                        identifier,
                        path,
                        key=key,
                        timeout_seconds=self._checkpoint_seconds(),
                        exclude=module.names if module else (),
                        expected_session_guid=self._prepared.get(identifier),
                    )
            except CheckpointSessionGoneError:
                # Whatever answered (if anything) is a new session, never prepared.
                self._prepared.pop(identifier, None)
                raise
        self._checkpoints[identifier] = (Path(path), key)
        return info

    async def restore(
        self, session: AgentSession | None, path: str | os.PathLike[str], *, key: bytes | None = None
    ) -> CheckpointInfo:
        """Put the files and variables of the checkpoint at ``path`` into ``session``'s dynamic
        session (a new one when the conversation has none yet).

        The signature is checked before anything is sent; variables are unpickled inside the
        session only. The working directory and injected functions are set up in the same cell.

        Raises:
            CheckpointTamperedError: the file was not signed with this key or was changed since.
            CheckpointError: a shell pool, or the session could not unpack it.
        """
        self._check_open()
        if self._config.pool_kind is not PoolKind.PYTHON:
            raise CheckpointError("A shell pool has no interpreter to restore variables into.")
        # The signature first: a file that is not ours reaches no session, not even its set-up.
        await inspect_checkpoint(path, key=key)
        identifier = self.identifier_for(session)
        async with self._lock(identifier):
            info = await self._restore_into(identifier, Path(path), key)
        self._checkpoints[identifier] = (Path(path), key)
        return info

    async def _restore_into(self, identifier: str, path: Path, key: bytes | None) -> CheckpointInfo:
        """Restore a checkpoint whose signature was checked; set-up in the same cell."""
        with self._naming(identifier):
            info = await restore_session(
                self._client,
                identifier,
                path,
                key=key,
                timeout_seconds=self._checkpoint_seconds(),
                prelude=self._setup_source(),
            )
        self._prepared[identifier] = info.session_guid
        return info

    # ------------------------------------------------------------------ what the session offers
    async def _find_packages(self, session: AgentSession | None) -> list[str]:
        """From the pool's metadata where the api-version has it; otherwise (Python pools) asked of
        the session itself."""
        names: list[str] = []
        if self._client.supports_session_management:
            try:
                metadata = await self._client.get_metadata()
                names = [package.name for package in metadata.preinstalled_packages if package.name]
            except SessionsError as exc:
                logger.debug("pool metadata unavailable: %s", exc)
        if not names and self._config.pool_kind is PoolKind.PYTHON:
            identifier = self.identifier_for(session)
            async with self._lock(identifier):
                await self._prepare(identifier)
                result = await self._client.execute(identifier, packages_code(), timeout_seconds=30)
            if result.succeeded and isinstance(result.result, list):
                names = [str(name) for name in result.result]
        return names

    def has_session(self, session: AgentSession | None) -> bool:
        """Whether ``session`` already has a dynamic session identifier (without creating one)."""
        if self._config.session_identifier is not None:
            return True
        if session is None:
            return self._default_identifier is not None
        entry = session.state.get(STATE_KEY)
        return isinstance(entry, dict) and isinstance(entry.get("identifier"), str)

    # ------------------------------------------------------------------ files
    async def upload(self, session: AgentSession | None, name: str, data: bytes) -> SessionFile:
        """Put ``data`` into the session's ``/mnt/data`` as ``name`` (``dir/name`` allowed)."""
        self._check_open()
        directory, base = _split_session_path(name)
        identifier = self.identifier_for(session)
        with self._naming(identifier):
            return await self._client.upload_file(identifier, base, data, path=directory)

    async def download(self, session: AgentSession | None, name: str) -> bytes:
        """The content of ``name`` in the session's ``/mnt/data``."""
        self._check_open()
        directory, base = _split_session_path(name)
        identifier = self.identifier_for(session)
        with self._naming(identifier):
            return await self._client.download_file(identifier, base, path=directory)

    async def list_files(self, session: AgentSession | None) -> list[SessionFile]:
        """The files in the session's ``/mnt/data`` (recursive where the api-version allows)."""
        self._check_open()
        identifier = self.identifier_for(session)
        with self._naming(identifier):
            return await self._client.list_files(
                identifier, recursive=self._client.supports_recursive_listing
            )

    # ------------------------------------------------------------------ lifecycle
    async def release(self, session: AgentSession | str) -> None:
        """Delete the dynamic session of ``session`` (an ``AgentSession`` or an identifier) now."""
        identifier = session if isinstance(session, str) else self.identifier_for(session)
        await self._delete(identifier)

    async def _delete(self, identifier: str) -> None:
        self._prepared.pop(identifier, None)
        self._used.discard(identifier)
        if not self._client.supports_session_management:
            logger.debug(
                "api-version %s cannot delete sessions; %s expires on its own",
                self._client.api_version,
                identifier,
            )
            return
        with contextlib.suppress(NotFoundError):
            await self._client.delete_session(identifier)

    async def after_run(self, session: AgentSession | None) -> None:
        """Nothing between runs: a dynamic session ends by itself after its cooldown."""

    async def close(self) -> None:
        """Delete the sessions this object created and used (``release_on_close``), then close the
        client if it is ours. Idempotent; a failed deletion is logged, never raised."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._config.release_on_close:
                for identifier in sorted(self._created & self._used):
                    try:
                        await self._delete(identifier)
                    except SessionsError as exc:
                        logger.warning("could not release session %s: %s", identifier, exc)
        finally:
            if self._owns_client:
                await self._client.close()

    def __repr__(self) -> str:
        return f"DynamicSessions({self._config.pool_management_endpoint!r}, {self._config.pool_kind})"


def _split_session_path(name: str) -> tuple[str | None, str]:
    """``dir/sub/file`` -> (``dir/sub``, ``file``); refuses absolute paths out of /mnt/data and ``..``."""
    parts = workspace_parts(name, "/mnt/data", "the session's /mnt/data")
    directory = "/".join(parts[:-1]) or None
    return directory, parts[-1]

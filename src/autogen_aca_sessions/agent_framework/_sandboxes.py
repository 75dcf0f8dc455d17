"""ACA Sandboxes for Agent Framework conversations: one sandbox per ``AgentSession``.

:class:`Sandboxes` is the second :class:`~._backend.CodeBackend`. A conversation's sandbox is
created on its first call, and its id is written into ``AgentSession.state`` (so
``AgentSession.to_dict()`` carries it and a new process, given the restored ``AgentSession``,
resumes the same sandbox with its memory). Python runs in the persistent interpreter of
:class:`~autogen_aca_sessions.client.sandbox_python.SandboxPython`, the same one the AutoGen
executor uses.

Between runs the sandbox is suspended, memory kept, twice over: the CodeAct provider's after-run
hook suspends it at once (``suspend_after_run``: the turn is over, and a person may take minutes
to answer), and the sandbox's own lifecycle policy (``idle_suspend_seconds``) suspends it when
no hook gets to run (a process that died, a tool used without the provider). Any call resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from autogen_aca_sessions.agent_framework._backend import RunOutcome
from autogen_aca_sessions.agent_framework._config import PoolKind, SandboxesConfig
from autogen_aca_sessions.agent_framework._functions import InjectedFunction
from autogen_aca_sessions.agent_framework._sessions import SessionSetupError
from autogen_aca_sessions.agent_framework._workspace import WorkspaceBackend, workspace_parts
from autogen_aca_sessions.client import (
    ExecutionResult,
    ExecutionStatus,
    SessionFile,
    SessionsError,
    TokenSource,
)
from autogen_aca_sessions.client.checks import is_loopback_host
from autogen_aca_sessions.client.errors import ConfigurationError
from autogen_aca_sessions.client.sandbox_python import (
    TIMEOUT_EXIT_CODE,
    WORK_DIR,
    SandboxGoneError,
    SandboxPython,
    SandboxSetupError,
)
from autogen_aca_sessions.client.sandboxes import SandboxesClient, SandboxState, ShellResult
from autogen_aca_sessions.client.session_code import setup_code

if TYPE_CHECKING:
    from agent_framework import AgentSession

__all__ = ["SANDBOX_STATE_KEY", "SandboxGoneError", "Sandboxes"]

logger = logging.getLogger(__name__)

SANDBOX_STATE_KEY = "aca_sandbox"
"""Key in ``AgentSession.state`` under which the conversation's sandbox id is kept."""

_MAX_LISTED = 1000
"""Most entries :meth:`Sandboxes.list_files` walks (a model can create millions of files)."""
_ENDED_NOTE = (
    "The sandbox's Python interpreter had ended (the code exited it, or it crashed): "
    "variables from earlier calls are gone; files in the sandbox are kept."
)
_PACKAGES_COMMAND = (
    'python3 -c "import json; from importlib import metadata as m; '
    "print(json.dumps(sorted({d.metadata['Name'] or '' for d in m.distributions()} - {''})))\""
)

_T = TypeVar("_T")


def gone_message(sandbox_id: str) -> str:
    """What the model (or the shell tooling) is told when the conversation's sandbox is gone."""
    return (
        f"The conversation's sandbox '{sandbox_id}' no longer exists (it was deleted, or the saved "
        "conversation named a wrong id): its variables and files are gone. The next call starts a "
        "new, empty sandbox; redo the steps whose results are needed."
    )


class Sandboxes(WorkspaceBackend):
    """The sandboxes of one sandbox group, for Agent Framework agents: one per ``AgentSession``.

    Args:
        config: The serialisable configuration (endpoint, group, image, limits, suspend policy).
        credential: Where tokens come from: an azure-core ``TokenCredential`` or
            ``AsyncTokenCredential``, a callable returning a token, or a token string such as a
            local server's key. None uses ``DefaultAzureCredential``.
        functions: Functions importable in every sandbox's interpreter as
            ``from <functions_module> import f``.
        client: A :class:`SandboxesClient` to use instead of creating one (then never closed here).

    Use it with ``async with`` (or call :meth:`close`): that suspends the sandboxes it ran code in
    (they are kept for a later process) or, with ``delete_on_close``, deletes those it created.
    """

    def __init__(
        self,
        config: SandboxesConfig,
        *,
        credential: TokenSource | None = None,
        functions: Sequence[InjectedFunction] = (),
        client: SandboxesClient | None = None,
    ) -> None:
        super().__init__(functions)
        self._config = config
        # Run in every new interpreter: the functions, and the sandbox's working directory.
        self._setup: str | None = (
            setup_code(
                self._config.functions_module,
                self._functions.source,
                self._functions.names,
                directory=WORK_DIR,
            )
            if self._functions is not None
            else None
        )
        if client is None:
            _check_endpoint(config)
            client = SandboxesClient(
                config.endpoint,
                subscription_id=config.subscription_id,
                resource_group=config.resource_group,
                sandbox_group=config.sandbox_group,
                credential=credential,
                request_timeout=config.request_timeout,
            )
            self._owns_client = True
        else:
            if credential is not None:
                raise ValueError("credential belongs to the SandboxesClient passed in")
            self._owns_client = False
        self._client = client
        # sandbox id -> its runner (which remembers whether its interpreter is known to run).
        self._runners: dict[str, SandboxPython] = {}
        self._created: set[str] = set()
        self._used: set[str] = set()
        self._default_sandbox: str | None = None

    # ------------------------------------------------------------------ properties
    @property
    def config(self) -> SandboxesConfig:
        """The configuration."""
        return self._config

    @property
    def client(self) -> SandboxesClient:
        """The sandbox group's client underneath."""
        return self._client

    @property
    def tool_kinds(self) -> tuple[PoolKind, ...]:
        """A sandbox runs both: Python in its interpreter and shell commands."""
        return (PoolKind.PYTHON, PoolKind.SHELL)

    @property
    def work_dir(self) -> str:
        """The working directory of code and files in every sandbox."""
        return WORK_DIR

    @property
    def created_sandboxes(self) -> frozenset[str]:
        """Ids of the sandboxes this object created."""
        return frozenset(self._created)

    # ------------------------------------------------------------------ conversation mapping
    def sandbox_id_for(self, session: AgentSession | None) -> str | None:
        """The id of the conversation's sandbox, None before its first call (never creates one)."""
        if session is None:
            return self._default_sandbox
        entry = session.state.get(SANDBOX_STATE_KEY)
        if isinstance(entry, dict) and isinstance(entry.get("sandbox_id"), str):
            return str(entry["sandbox_id"])
        return None

    def has_session(self, session: AgentSession | None) -> bool:
        """Whether the conversation has a sandbox already."""
        return self.sandbox_id_for(session) is not None

    def bind(self, session: AgentSession, sandbox_id: str) -> None:
        """Make ``session`` continue in the existing sandbox ``sandbox_id`` (never deleted here)."""
        if not isinstance(sandbox_id, str) or not sandbox_id:
            raise ValueError("sandbox_id must be a non-empty string")
        session.state[SANDBOX_STATE_KEY] = {"sandbox_id": sandbox_id}

    def _remember(self, session: AgentSession | None, sandbox_id: str | None) -> None:
        if session is None:
            self._default_sandbox = sandbox_id
        elif sandbox_id is None:
            session.state.pop(SANDBOX_STATE_KEY, None)
        else:
            session.state[SANDBOX_STATE_KEY] = {"sandbox_id": sandbox_id}

    def _runner(self, sandbox_id: str) -> SandboxPython:
        runner = self._runners.get(sandbox_id)
        if runner is None:
            runner = self._runners[sandbox_id] = SandboxPython(self._client, sandbox_id, setup=self._setup)
        return runner

    async def _sandbox_for(self, session: AgentSession | None) -> SandboxPython:
        """The conversation's sandbox, created on its first call."""
        existing = self.sandbox_id_for(session)
        if existing is not None:
            return self._runner(existing)
        key = "conversation:" + (session.session_id if session is not None else "")
        async with self._lock(key):
            # Another call of the same conversation may have created it while this one waited.
            existing = self.sandbox_id_for(session)
            if existing is not None:
                return self._runner(existing)
            try:
                runner = await SandboxPython.create(
                    self._client,
                    self._config.image,
                    idle_suspend_seconds=self._config.idle_suspend_seconds,
                    setup=self._setup,
                )
            except SandboxSetupError as exc:
                raise SessionSetupError(
                    f"Preparing a new sandbox failed (injected functions): {exc.detail}"
                ) from exc
            self._runners[runner.sandbox_id] = runner
            self._created.add(runner.sandbox_id)
            self._remember(session, runner.sandbox_id)
            return runner

    @contextlib.asynccontextmanager
    async def running(self, session: AgentSession | None) -> AsyncIterator[SandboxPython]:
        """The conversation's sandbox, running and locked for one call (its injected functions are
        the runner's set-up code, run in every new interpreter).

        A sandbox found gone is forgotten by the conversation (the next call starts a new one)
        and reported as :class:`SandboxGoneError`.
        """
        self._check_open()
        runner = await self._sandbox_for(session)
        sandbox_id = runner.sandbox_id
        async with self._lock(sandbox_id):
            try:
                await runner.ensure_running()
                self._used.add(sandbox_id)
                yield runner
            except SandboxGoneError:
                self._forget(session, sandbox_id)
                raise

    def _forget(self, session: AgentSession | None, sandbox_id: str) -> None:
        if self.sandbox_id_for(session) == sandbox_id:
            self._remember(session, None)
        self._runners.pop(sandbox_id, None)
        self._used.discard(sandbox_id)

    # ------------------------------------------------------------------ executions
    async def run_code(
        self, session: AgentSession | None, code: str, *, timeout_seconds: int | None = None
    ) -> RunOutcome:
        """Run Python in the interpreter of the conversation's sandbox (resumed when suspended);
        at the time limit the block is interrupted, its output so far kept, its variables too.
        A cancelled call interrupts its block, so the next call does not wait behind it."""
        seconds = float(timeout_seconds or self._config.timeout_seconds)
        async with self.running(session) as runner:
            started = time.monotonic()
            try:
                ran, notes = await self._run_python(runner, code, seconds)
            except asyncio.CancelledError:
                # Shielded: the interrupt must reach the sandbox although this task is cancelled.
                with contextlib.suppress(SessionsError):
                    await asyncio.shield(runner.interrupt())
                raise
        timed_out = ran.exit_code == TIMEOUT_EXIT_CODE
        result = _execution_result(runner.sandbox_id, ran, started, timed_out=timed_out, shell=False)
        return RunOutcome(result=result, identifier=runner.sandbox_id, notes=notes)

    async def _run_python(
        self, runner: SandboxPython, code: str, seconds: float
    ) -> tuple[ShellResult, list[str]]:
        """Run a block; the runner starts a new interpreter (with the injected functions) when the
        old one is gone, and sends the block again only when it never reached the old one (so
        nothing runs twice): the notes say what the model lost."""
        try:
            ran = await runner.run_python(code, timeout=seconds)
        except SandboxSetupError as exc:
            raise SessionSetupError(
                f"Preparing sandbox {runner.sandbox_id!r} failed (injected functions): {exc.detail}"
            ) from exc
        notes: list[str] = []
        if ran.interpreter_restarted:
            notes += [_ENDED_NOTE, "A new interpreter was started and this code ran in it."]
        if ran.interpreter_ended and ran.timed_out:
            notes.append(
                "The code did not stop when interrupted at its time limit, so the sandbox's Python "
                "interpreter was restarted: variables from earlier calls are gone; files are kept."
            )
        elif ran.interpreter_ended:
            notes += [_ENDED_NOTE, "A new interpreter starts with the next call."]
        return ran, notes

    async def run_shell(
        self, session: AgentSession | None, command: str, *, timeout_seconds: int | None = None
    ) -> RunOutcome:
        """Run a bash script in the conversation's sandbox, in its working directory."""
        seconds = float(timeout_seconds or self._config.timeout_seconds)
        async with self.running(session) as runner:
            started = time.monotonic()
            ran = await runner.run_shell(command, program="bash", timeout=seconds)
        result = _execution_result(runner.sandbox_id, ran, started, timed_out=ran.timed_out, shell=True)
        return RunOutcome(result=result, identifier=runner.sandbox_id)

    # ------------------------------------------------------------------ files
    async def _file_call(self, runner: SandboxPython, make: Callable[[], Awaitable[_T]], name: str) -> _T:
        """A file request; a 404 means a missing file unless the sandbox itself is gone (the
        runner reads every 404 as a gone sandbox, so the sandbox is asked once more)."""
        try:
            return await runner.call(make)
        except SandboxGoneError:
            sandbox_id = runner.sandbox_id
            await runner.call(lambda: self._client.get(sandbox_id))
            raise FileNotFoundError(f"{name!r} does not exist in the sandbox's {WORK_DIR}") from None

    async def upload(self, session: AgentSession | None, name: str, data: bytes) -> SessionFile:
        """Put ``data`` into the sandbox's working directory as ``name`` (``dir/name`` allowed)."""
        relative = workspace_path(name)
        async with self.running(session) as runner:
            sandbox_id = runner.sandbox_id
            await self._file_call(
                runner, lambda: self._client.write_file(sandbox_id, f"{WORK_DIR}/{relative}", data), name
            )
        path = PurePosixPath(relative)
        directory = str(path.parent) if str(path.parent) != "." else None
        return SessionFile(name=path.name, size_in_bytes=len(data), directory=directory)

    async def download(self, session: AgentSession | None, name: str) -> bytes:
        """The content of ``name`` in the sandbox's working directory."""
        relative = workspace_path(name)
        async with self.running(session) as runner:
            sandbox_id = runner.sandbox_id
            return await self._file_call(
                runner, lambda: self._client.read_file(sandbox_id, f"{WORK_DIR}/{relative}"), name
            )

    async def list_files(self, session: AgentSession | None) -> list[SessionFile]:
        """The files under the sandbox's working directory, recursively (at most 1000 entries)."""
        found: list[SessionFile] = []
        async with self.running(session) as runner:
            sandbox_id = runner.sandbox_id
            pending: list[str] = [""]
            while pending and len(found) < _MAX_LISTED:
                relative = pending.pop(0)
                directory = f"{WORK_DIR}/{relative}".rstrip("/")
                entries = await self._file_call(
                    runner, partial(self._client.list_files, sandbox_id, directory), relative or WORK_DIR
                )
                for entry in sorted(entries, key=lambda e: e.name):
                    child = f"{relative}/{entry.name}".lstrip("/")
                    found.append(
                        SessionFile(
                            name=entry.name,
                            type="Directory" if entry.is_directory else "File",
                            size_in_bytes=None if entry.is_directory else entry.size,
                            directory=relative or None,
                        )
                    )
                    if entry.is_directory:
                        pending.append(child)
        return found[:_MAX_LISTED]

    # ------------------------------------------------------------------ what the sandbox offers
    async def _find_packages(self, session: AgentSession | None) -> list[str]:
        """Names of the Python packages in the image, asked of the conversation's sandbox."""
        async with self.running(session) as runner:
            sandbox_id = runner.sandbox_id
            ran = await runner.call(
                lambda: self._client.exec_shell(sandbox_id, _PACKAGES_COMMAND, timeout=30)
            )
        names: list[str] = []
        if ran.exit_code == 0:
            with contextlib.suppress(ValueError):
                parsed = json.loads(ran.stdout)
                if isinstance(parsed, list):
                    names = [str(name) for name in parsed]
        return names

    # ------------------------------------------------------------------ lifecycle
    async def state(self, session: AgentSession | None) -> SandboxState | None:
        """The state of the conversation's sandbox (None before its first call)."""
        sandbox_id = self.sandbox_id_for(session)
        if sandbox_id is None:
            return None
        runner = self._runner(sandbox_id)
        try:
            info = await runner.call(lambda: self._client.get(sandbox_id))
        except SandboxGoneError:
            self._forget(session, sandbox_id)
            raise
        return info.state

    async def suspend(self, session: AgentSession | None) -> bool:
        """Suspend the conversation's sandbox, memory kept, unless it is suspended already;
        whether it was running. Waits for a call in progress to end first."""
        self._check_open()
        sandbox_id = self.sandbox_id_for(session)
        if sandbox_id is None:
            return False
        runner = self._runner(sandbox_id)
        async with self._lock(sandbox_id):
            try:
                return await self._suspend(runner)
            except SandboxGoneError:
                self._forget(session, sandbox_id)
                raise

    async def _suspend(self, runner: SandboxPython) -> bool:
        sandbox_id = runner.sandbox_id
        info = await runner.call(lambda: self._client.get(sandbox_id))
        if info.state is not SandboxState.RUNNING:
            return False
        await runner.stop()
        return True

    async def resume(self, session: AgentSession | None) -> None:
        """Resume the conversation's sandbox now (any call does it too)."""
        async with self.running(session):
            pass

    async def after_run(self, session: AgentSession | None) -> None:
        """Suspend the conversation's sandbox when a run ended (``suspend_after_run``). Never
        raises: the run's answer is already there; a failure is logged."""
        if not self._config.suspend_after_run or self._closed or not self.has_session(session):
            return
        try:
            await self.suspend(session)
        except SessionsError as exc:
            logger.warning("could not suspend the conversation's sandbox after the run: %s", exc)

    async def release(self, session: AgentSession | None) -> None:
        """Delete the conversation's sandbox now; its next call starts a new one."""
        sandbox_id = self.sandbox_id_for(session)
        if sandbox_id is None:
            return
        async with self._lock(sandbox_id):
            await self._runner(sandbox_id).delete()
        self._forget(session, sandbox_id)

    async def close(self) -> None:
        """Suspend the sandboxes this object ran code in (kept for a later process), or with
        ``delete_on_close`` delete the ones it created; then close the client if it is ours.
        Idempotent; a failure is logged, never raised."""
        if self._closed:
            return
        self._closed = True
        try:
            for sandbox_id in sorted(self._used | (self._created if self._config.delete_on_close else set())):
                runner = self._runner(sandbox_id)
                try:
                    async with self._lock(sandbox_id):
                        if self._config.delete_on_close and sandbox_id in self._created:
                            await runner.delete()
                        else:
                            await self._suspend(runner)
                except SessionsError as exc:
                    logger.warning("could not release sandbox %s: %s", sandbox_id, exc)
        finally:
            if self._owns_client:
                await self._client.close()

    def __repr__(self) -> str:
        return f"Sandboxes({self._config.endpoint!r}, group={self._config.sandbox_group!r})"


def _check_endpoint(config: SandboxesConfig) -> None:
    parts = urlsplit(config.endpoint)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ConfigurationError("endpoint", f"endpoint must be an http(s) URL, not {config.endpoint!r}")
    if (
        parts.scheme.lower() == "http"
        and not config.allow_insecure_http
        and not is_loopback_host(parts.hostname or "")
    ):
        raise ConfigurationError(
            "endpoint",
            f"endpoint {config.endpoint!r} uses plain http to a host that is not loopback: the bearer "
            "token would travel in clear text. Use https, or set allow_insecure_http for a trusted network.",
        )


def workspace_path(name: str) -> str:
    """``name`` relative to the working directory (``/root/work/`` prefix allowed); refuses
    ``..``, other absolute paths and backslashes."""
    parts = workspace_parts(name, WORK_DIR, f"the sandbox's {WORK_DIR}")
    return "/".join(parts)


def _execution_result(
    sandbox_id: str, ran: ShellResult, started: float, *, timed_out: bool, shell: bool
) -> ExecutionResult:
    """A sandbox command's outcome in the model the tools report (no images, no value: the
    interpreter prints what the model needs to see)."""
    return ExecutionResult(
        execution_id=None,
        identifier=sandbox_id,
        status=ExecutionStatus.SUCCEEDED if ran.exit_code == 0 else ExecutionStatus.FAILED,
        stdout=ran.stdout,
        stderr=ran.stderr,
        result="",
        execution_time_ms=round((time.monotonic() - started) * 1000),
        stdout_truncated=ran.truncated,
        error_code="Timeout" if timed_out else None,
        # A Python block that ended with SystemExit and printed nothing still says why it failed.
        error_message=(
            f"The code exited with status {ran.exit_code}."
            if not shell and not timed_out and ran.exit_code != 0 and not ran.stderr.strip()
            else None
        ),
        exit_code=ran.exit_code if shell else None,
        timed_out=timed_out,
    )

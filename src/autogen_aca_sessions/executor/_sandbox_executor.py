"""``ACASandboxCodeExecutor``: AutoGen code execution in an ACA sandbox that can be suspended.

Each executor holds one sandbox. Python blocks run in a persistent interpreter inside it
(``client.sandbox_python``), so variables live between blocks, across :meth:`suspend`/:meth:`resume`
(memory mode), and across processes: :meth:`save_state` (and the component config) carry the
sandbox id, and a new executor given that state (:meth:`load_state`) continues in the same
sandbox. The text a model reads is made by the dynamic executor's renderer (``_render.py``), so
both executors follow one set of console conventions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from autogen_core import CancellationToken, Component
from autogen_core.code_executor import CodeBlock
from pydantic import BaseModel, Field
from typing_extensions import Self

from autogen_aca_sessions.client import ExecutionResult, ExecutionStatus, TokenSource
from autogen_aca_sessions.client.errors import SessionsError
from autogen_aca_sessions.client.limits import DEFAULT_MAX_OUTPUT_CHARS
from autogen_aca_sessions.client.sandbox_python import (
    WORK_DIR,
    PythonRun,
    SandboxGoneError,
    SandboxPython,
    SandboxSetupError,
)
from autogen_aca_sessions.client.sandboxes import OutputCallback, SandboxesClient, ShellResult, SuspendMode
from autogen_aca_sessions.client.session_code import setup_code
from autogen_aca_sessions.executor._executor_base import (
    EnvironmentToken,
    InjectedFunctionsExecutor,
    write_file,
)
from autogen_aca_sessions.executor._functions import InjectedFunction, normalize_package_name
from autogen_aca_sessions.executor._render import PYTHON_LANGUAGES, SHELL_LANGUAGES, OutputRenderer
from autogen_aca_sessions.executor._results import ACADynamicSessionsBlockResult, ACADynamicSessionsCodeResult

__all__ = [
    "ACASandboxCodeExecutor",
    "ACASandboxCodeExecutorConfig",
    "ACASandboxCodeResult",
    "SandboxGoneError",
]

logger = logging.getLogger("autogen_aca_sessions.executor")

_STATE_KEY = "sandbox_id"

INTERPRETER_RESTARTED_NOTE = (
    "The sandbox's Python interpreter was not running (the sandbox was suspended in Disk mode, or "
    "the interpreter had ended), so a new one was started: variables and imports from earlier "
    "blocks are gone (files on disk are kept); injected functions were set up again."
)
INTERPRETER_ENDED_NOTE = (
    "The sandbox's Python interpreter ended during this block, so its variables and imports are "
    "gone (files on disk are kept); the next block starts a new one with the injected functions."
)
INTERPRETER_KILLED_NOTE = (
    "The block did not stop at its time limit, so the interpreter was ended: variables and "
    "imports are gone (files on disk are kept); the next block starts a new one."
)

_PACKAGES_COMMAND = (
    "python3 -c 'import json; from importlib import metadata as m; "
    'print(json.dumps(sorted({d.metadata["Name"] or "" for d in m.distributions()} - {""})))\''
)


class ACASandboxCodeExecutorConfig(BaseModel):
    """Serialisable configuration of :class:`ACASandboxCodeExecutor`.

    Holds no secret: the credential is never written. On load the token comes from the
    environment variable named by ``api_key_env`` when set, else from ``DefaultAzureCredential``.
    Injected functions are not serialised (they are code); pass them again after loading.
    """

    endpoint: str = Field(description="The Sandboxes data-plane base URL.")
    subscription_id: str = Field(description="The sandbox group's subscription.")
    resource_group: str = Field(description="The sandbox group's resource group.")
    sandbox_group: str = Field(description="The sandbox group's name.")
    sandbox_id: str | None = Field(
        default=None, description="The sandbox to continue in (None: a new one on the first block)."
    )
    timeout: int = Field(default=60, description="Time limit of one code block, in seconds.")
    idle_suspend_seconds: float | None = Field(
        default=None, description="Suspend a new sandbox after this long idle (None: never)."
    )
    suspend_mode: SuspendMode = Field(
        default=SuspendMode.MEMORY, description="What a new sandbox keeps when suspended."
    )
    image: str = Field(default="python-3.12", description="The public disk image of a new sandbox.")
    work_dir: str | None = Field(
        default=None, description="Local directory for downloads; None: a temporary one."
    )
    functions_module: str = Field(default="functions", description="Module name of the injected functions.")
    suppress_result_output: bool = Field(
        default=False, description="Leave the last expression's value out of the output text."
    )
    max_output_chars: int = Field(
        default=DEFAULT_MAX_OUTPUT_CHARS, description="Most characters of stdout, stderr and output text."
    )
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding a static bearer token (a local server's key)."
    )


@dataclass
class ACASandboxCodeResult(ACADynamicSessionsCodeResult):
    """The result of :meth:`ACASandboxCodeExecutor.execute_code_blocks`: the dynamic executor's
    result (same fields, same text), plus where it ran and what happened to the interpreter."""

    sandbox_id: str = ""
    """The sandbox the blocks ran in (also in ``session_id``)."""
    interpreter_restarted: bool = False
    """A new interpreter was started during this call in place of one whose variables are gone
    (``state_lost`` is then True, and a note in ``output`` tells the model)."""


class ACASandboxCodeExecutor(InjectedFunctionsExecutor, Component[ACASandboxCodeExecutorConfig]):
    """Runs ``python`` and ``sh`` blocks in an ACA sandbox, in order; stops at the first failure.

    The contract is :class:`ACADynamicSessionsCodeExecutor`'s (same output text, truncation
    markers, time-limit lines, injected functions, component config), on a sandbox that can be
    suspended with its memory and resumed in another process.

    Python blocks run in one interpreter that keeps its variables; the value of a block's last
    expression is shown as a notebook shows it (unless ``suppress_result_output``). Shell blocks
    (``sh``, ``bash``, ``shell``) run as scripts. Everything runs in ``/root/work`` of the sandbox.
    Figures are not captured: save them to files and :meth:`download_files` them.

    When a block finds the interpreter gone (the sandbox was suspended in Disk mode, or the
    interpreter ended), a new one is started, the injected functions are set up in it again, the
    block runs, and its output says that the earlier variables were lost (``state_lost``). A
    sandbox that no longer exists raises :class:`SandboxGoneError`; the executor never moves to
    a new sandbox by itself (:meth:`restart` does).

    Args:
        client: The sandbox group's client (shared: not closed by the executor). Without it,
            ``endpoint``, ``subscription_id``, ``resource_group`` and ``sandbox_group`` name the
            group and the executor makes (and closes) its own client.
        sandbox_id: Continue in this sandbox (as :meth:`load_state` does); None creates one on
            the first block.
        timeout: Seconds per block; at the limit the block is interrupted, its output so far is
            kept, and the interpreter keeps its variables.
        idle_suspend_seconds: With a value, a new sandbox suspends itself after that long idle,
            and the next block resumes it.
        suspend_mode: What a new sandbox keeps when suspended (Memory: everything; Disk: files).
        image: The public disk image a new sandbox starts from.
        work_dir: The local directory :meth:`download_files` writes into (None: a temporary one,
            removed on :meth:`stop`).
        functions: Functions made available to the code (as the dynamic executor's); loaded once
            per interpreter. Not serialised.
        functions_module: Module name under which the functions can be imported.
        suppress_result_output: Leave the last expression's value out of the output.
        max_output_chars: Most characters kept of each block's stdout and stderr and of the text.
        credential: A token credential, a callable returning a token, or a token string (with no
            ``client``); None reads ``api_key_env``, else ``DefaultAzureCredential``.
        api_key_env: Environment variable holding a static bearer token.
        on_output: Called (plain or coroutine function) with each
            :class:`~autogen_aca_sessions.client.sandboxes.OutputChunk` of a block's output while
            the block runs; where the server does not stream, once per block at its end. Not
            serialised.
    """

    component_type = "code_executor"
    component_config_schema = ACASandboxCodeExecutorConfig
    component_provider_override = "autogen_aca_sessions.executor.ACASandboxCodeExecutor"

    def __init__(
        self,
        client: SandboxesClient | None = None,
        *,
        endpoint: str | None = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        sandbox_group: str | None = None,
        credential: TokenSource | None = None,
        api_key_env: str | None = None,
        sandbox_id: str | None = None,
        timeout: int = 60,
        idle_suspend_seconds: float | None = None,
        suspend_mode: SuspendMode = SuspendMode.MEMORY,
        image: str = "python-3.12",
        work_dir: str | Path | None = None,
        functions: Sequence[InjectedFunction] = (),
        functions_module: str = "functions",
        suppress_result_output: bool = False,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        on_output: OutputCallback | None = None,
    ) -> None:
        if timeout < 1:
            raise ValueError("Timeout must be greater than or equal to 1.")
        if max_output_chars < 1:
            raise ValueError("max_output_chars must be at least 1.")
        if not functions_module.isidentifier():
            raise ValueError(f"functions_module must be a valid Python identifier, got {functions_module!r}.")
        _check_sandbox_id(sandbox_id)
        if client is None:
            missing = [
                name
                for name, value in (
                    ("endpoint", endpoint),
                    ("subscription_id", subscription_id),
                    ("resource_group", resource_group),
                    ("sandbox_group", sandbox_group),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"Without a client, pass {', '.join(missing)} (the sandbox group).")
            group = (str(endpoint), str(subscription_id), str(resource_group), str(sandbox_group))
        else:
            group = (client.endpoint, client.subscription_id, client.resource_group, client.sandbox_group)
        self._group = group
        self._client = client
        self._owns_client = client is None
        self._credential = credential
        self._api_key_env = api_key_env
        self._timeout = timeout
        self._idle = idle_suspend_seconds
        self._suspend_mode = suspend_mode
        self._image = image
        self._work_dir = Path(work_dir) if work_dir is not None else None
        self._temp_dir: tempfile.TemporaryDirectory[str] | None = None
        self._set_functions(functions, functions_module)
        self._packages_checked: str | None = None  # the sandbox whose packages were checked
        self._suppress_result_output = suppress_result_output
        self._max_output_chars = max_output_chars
        self._renderer = OutputRenderer(
            max_output_chars=max_output_chars,
            suppress_result_output=suppress_result_output,
            server_timeout=timeout,
        )
        self._sandbox: SandboxPython | None = None
        if sandbox_id is not None:
            self._sandbox = self._python(sandbox_id)
        self._lock = asyncio.Lock()
        self._suspended = False
        self._on_output = on_output

    # ----------------------------------------------------------------- properties

    @property
    def sandbox_id(self) -> str | None:
        """The sandbox in use (None until the first block, or after :meth:`restart`)."""
        return self._sandbox.sandbox_id if self._sandbox is not None else None

    @property
    def timeout(self) -> int:
        """Seconds per block."""
        return self._timeout

    @property
    def work_dir(self) -> Path:
        """Local directory downloaded files are written to."""
        if self._work_dir is not None:
            return self._work_dir
        if self._temp_dir is None:
            self._temp_dir = tempfile.TemporaryDirectory(prefix="aca_sandbox_")
        return Path(self._temp_dir.name)

    @property
    def client(self) -> SandboxesClient:
        """The sandbox group's client (made on first use when none was passed)."""
        return self._ensure_client()

    def _ensure_client(self) -> SandboxesClient:
        if self._client is None:
            credential = self._credential
            if credential is None and self._api_key_env:
                credential = EnvironmentToken(self._api_key_env, "the sandbox group")
            endpoint, subscription, resource_group, group = self._group
            self._client = SandboxesClient(
                endpoint,
                subscription_id=subscription,
                resource_group=resource_group,
                sandbox_group=group,
                credential=credential,
            )
            self._owns_client = True
            if self._sandbox is not None:
                # Used again after stop() closed the old client: the same sandbox, the new client.
                self._sandbox = SandboxPython(
                    self._client, self._sandbox.sandbox_id, setup=self._setup_source()
                )
        return self._client

    def _setup_source(self) -> str | None:
        module = self._functions_source
        if module is None:
            return None
        return setup_code(self._functions_module, module.source, module.names, directory=WORK_DIR)

    def _python(self, sandbox_id: str) -> SandboxPython:
        return SandboxPython(self._ensure_client(), sandbox_id, setup=self._setup_source())

    # ----------------------------------------------------------------- state

    async def save_state(self) -> Mapping[str, Any]:
        """What a new executor needs to continue in the same sandbox (its id)."""
        return {_STATE_KEY: self.sandbox_id}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Continue in the sandbox ``state`` names (from :meth:`save_state`).

        Raises:
            ValueError: the state is not one :meth:`save_state` wrote.
            SandboxGoneError: the sandbox it names does not exist (a wrong id, or deleted).
        """
        if not isinstance(state, Mapping) or _STATE_KEY not in state:
            raise ValueError(f"Not an ACASandboxCodeExecutor state: it has no '{_STATE_KEY}'.")
        sandbox_id = state[_STATE_KEY]
        _check_sandbox_id(sandbox_id)
        async with self._lock:
            if sandbox_id is None:
                self._sandbox = None
                return
            sandbox = self._python(sandbox_id)
            # Ask now, so a wrong id fails here with its name rather than at some later block.
            await sandbox.call(partial(self._ensure_client().get, sandbox_id))
            self._sandbox = sandbox
            self._suspended = False

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Nothing to start: the sandbox is created or resumed by the first block."""

    async def stop(self) -> None:
        """Delete the sandbox, unless :meth:`suspend` was the last thing done to it (a suspended
        sandbox is kept for whoever loads this executor's saved state); close a client the
        executor made and remove a temporary ``work_dir``. Errors while deleting are logged."""
        async with self._lock:
            if self._sandbox is not None and not self._suspended:
                try:
                    await self._delete()
                except SessionsError:
                    logger.warning("Deleting sandbox %s failed", self.sandbox_id, exc_info=True)
            if self._client is not None and self._owns_client:
                client, self._client = self._client, None
                await client.close()
            if self._temp_dir is not None:
                temp_dir, self._temp_dir = self._temp_dir, None
                await asyncio.to_thread(temp_dir.cleanup)

    async def restart(self) -> None:
        """Delete the sandbox; the next block runs in a new one (no variables, no files)."""
        async with self._lock:
            await self._delete()

    async def suspend(self) -> None:
        """Suspend the sandbox; in Memory mode memory, files and processes are kept until
        :meth:`resume` (or the next block); in Disk mode only files."""
        async with self._lock:
            if self._sandbox is None:
                raise RuntimeError("There is no sandbox to suspend: no block has run yet.")
            await self._sandbox.stop()
            self._suspended = True

    async def resume(self) -> None:
        """Resume a suspended sandbox (the next block does it too).

        Raises:
            SandboxGoneError: the sandbox was deleted (it is never replaced silently).
        """
        async with self._lock:
            if self._sandbox is None:
                raise RuntimeError("There is no sandbox to resume: no block has run yet.")
            # Whoever suspended it (this executor, another process, the idle policy).
            await self._sandbox.ensure_running()
            self._suspended = False

    async def _delete(self) -> None:
        if self._sandbox is None:
            return
        await self._sandbox.delete()
        self._sandbox = None
        self._suspended = False
        self._packages_checked = None

    async def _ready(self) -> SandboxPython:
        """The sandbox, created or running."""
        if self._sandbox is None:
            self._sandbox = await SandboxPython.create(
                self._ensure_client(),
                self._image,
                idle_suspend_seconds=self._idle,
                suspend_mode=self._suspend_mode,
                setup=self._setup_source(),
            )
        elif self._suspended:
            await self._sandbox.ensure_running()
        # Not suspended by us: a sandbox that suspended itself (idle policy) is resumed by the
        # first request it refuses (SandboxPython.call), so a warm block costs one request.
        self._suspended = False
        if self._required_packages and self._packages_checked != self._sandbox.sandbox_id:
            await self._check_required_packages(self._sandbox)
        return self._sandbox

    # ----------------------------------------------------------------- packages and functions

    async def get_available_packages(self, cancellation_token: CancellationToken | None = None) -> set[str]:
        """Names of the Python distributions installed in the sandbox."""
        async with self._lock:
            return await self._packages(await self._ready())

    async def _packages(self, sandbox: SandboxPython) -> set[str]:
        client = self._ensure_client()
        ran = await sandbox.call(partial(client.exec_shell, sandbox.sandbox_id, _PACKAGES_COMMAND))
        try:
            names = json.loads(ran.stdout)
        except ValueError:
            names = None
        if ran.exit_code != 0 or not isinstance(names, list):
            raise ValueError(f"Failed to get list of available packages: {(ran.stderr or ran.stdout)[-500:]}")
        return {str(name) for name in names}

    async def _check_required_packages(self, sandbox: SandboxPython) -> None:
        available = {normalize_package_name(name) for name in await self._packages(sandbox)}
        missing = sorted(spec for name, spec in self._required_packages.items() if name not in available)
        if missing:
            raise ValueError(
                "Packages unavailable in the sandbox: "
                + ", ".join(missing)
                + ". The injected functions need them, but the sandbox's image does not have them."
            )
        self._packages_checked = sandbox.sandbox_id

    # ----------------------------------------------------------------- execution

    async def execute_code_blocks(
        self, code_blocks: list[CodeBlock], cancellation_token: CancellationToken
    ) -> ACASandboxCodeResult:
        """Run the blocks in order in the sandbox; the first failing block stops the rest.

        Raises:
            SandboxGoneError: the sandbox does not exist (wrong or deleted id).
            ValueError: injected functions need packages the sandbox lacks, or fail to load.
            asyncio.CancelledError: the cancellation token was cancelled (a running Python block
                is interrupted; the interpreter keeps its variables).
        """
        async with self._lock:
            task = asyncio.ensure_future(self._run_blocks(code_blocks))
            cancellation_token.link_future(task)
            try:
                return await task
            except asyncio.CancelledError:
                if self._sandbox is not None:
                    # Interrupt the block still running in the interpreter, so the next one can run.
                    await self._sandbox.interrupt()
                raise

    async def _run_blocks(self, code_blocks: Sequence[CodeBlock]) -> ACASandboxCodeResult:
        try:
            return await self._run_blocks_in(await self._ready(), code_blocks)
        except SandboxSetupError as exc:
            raise ValueError(f"Functions failed to load: {exc.detail}") from exc

    async def _run_blocks_in(
        self, sandbox: SandboxPython, code_blocks: Sequence[CodeBlock]
    ) -> ACASandboxCodeResult:
        blocks: list[ACADynamicSessionsBlockResult] = []
        notes: list[str] = []
        restarted = False
        for block in code_blocks:
            language = block.language.strip().lower()
            if language in PYTHON_LANGUAGES:
                ran: ShellResult = await self._run_python(sandbox, block.code)
                shell = False
            elif language in SHELL_LANGUAGES:
                program = "sh" if language == "sh" else "bash"
                ran = await sandbox.run_shell(
                    block.code, program=program, timeout=self._timeout, on_output=self._on_output
                )
                shell = True
            else:
                blocks.append(self._renderer.unsupported(block))
                break
            block_notes = _notes_for(ran)
            restarted = restarted or (isinstance(ran, PythonRun) and ran.interpreter_restarted)
            notes.extend(block_notes)
            blocks.append(
                self._renderer.block(
                    block, _as_execution(ran, sandbox.sandbox_id, shell), [], block_notes, shell=shell
                )
            )
            if blocks[-1].exit_code != 0:
                break
        combined = self._renderer.combine(blocks, notes, sandbox.sandbox_id)
        values = {f.name: getattr(combined, f.name) for f in fields(ACADynamicSessionsCodeResult)}
        return ACASandboxCodeResult(**values, sandbox_id=sandbox.sandbox_id, interpreter_restarted=restarted)

    async def _run_python(self, sandbox: SandboxPython, code: str) -> PythonRun:
        return await sandbox.run_python(
            code,
            timeout=self._timeout,
            max_chars=self._max_output_chars,
            show_value=not self._suppress_result_output,
            on_output=self._on_output,
        )

    # ----------------------------------------------------------------- files

    async def upload_files(
        self, files: Sequence[Path | str], cancellation_token: CancellationToken | None = None
    ) -> None:
        """Copy local files into the sandbox's working directory (by their base names); relative
        paths are taken relative to ``work_dir``."""
        paths = await self._local_upload_paths(files)
        async with self._lock:
            sandbox = await self._ready()
            client = self._ensure_client()
            for path in paths:
                data = await asyncio.to_thread(path.read_bytes)
                await sandbox.call(
                    partial(client.write_file, sandbox.sandbox_id, f"{WORK_DIR}/{path.name}", data)
                )

    async def download_files(
        self, files: Sequence[Path | str], cancellation_token: CancellationToken | None = None
    ) -> list[Path]:
        """Copy files from the sandbox's working directory into ``work_dir``; returns their paths.

        A name that would land outside ``work_dir`` (``..``, an absolute path elsewhere) raises
        :class:`ValueError` before anything is downloaded.
        """
        plan = [(_remote_name(name), self.work_dir / _remote_name(name)) for name in files]
        async with self._lock:
            sandbox = await self._ready()
            client = self._ensure_client()
            written: list[Path] = []
            for name, local in plan:
                data = await sandbox.call(partial(client.read_file, sandbox.sandbox_id, f"{WORK_DIR}/{name}"))
                await asyncio.to_thread(write_file, local, data)
                written.append(local)
            return written

    async def get_file_list(self, cancellation_token: CancellationToken | None = None) -> list[str]:
        """The names of the files in the sandbox's working directory."""
        async with self._lock:
            sandbox = await self._ready()
            client = self._ensure_client()
            entries = await sandbox.call(partial(client.list_files, sandbox.sandbox_id, WORK_DIR))
            return sorted(e.name for e in entries if not e.is_directory)

    # ----------------------------------------------------------------- component config

    def _to_config(self) -> ACASandboxCodeExecutorConfig:
        self._warn_unserialised(self._credential is not None, self._api_key_env)
        endpoint, subscription, resource_group, group = self._group
        return ACASandboxCodeExecutorConfig(
            endpoint=endpoint,
            subscription_id=subscription,
            resource_group=resource_group,
            sandbox_group=group,
            sandbox_id=self.sandbox_id,
            timeout=self._timeout,
            idle_suspend_seconds=self._idle,
            suspend_mode=self._suspend_mode,
            image=self._image,
            work_dir=str(self._work_dir) if self._work_dir is not None else None,
            functions_module=self._functions_module,
            suppress_result_output=self._suppress_result_output,
            max_output_chars=self._max_output_chars,
            api_key_env=self._api_key_env,
        )

    @classmethod
    def _from_config(cls, config: ACASandboxCodeExecutorConfig) -> Self:
        return cls(
            endpoint=config.endpoint,
            subscription_id=config.subscription_id,
            resource_group=config.resource_group,
            sandbox_group=config.sandbox_group,
            api_key_env=config.api_key_env,
            sandbox_id=config.sandbox_id,
            timeout=config.timeout,
            idle_suspend_seconds=config.idle_suspend_seconds,
            suspend_mode=config.suspend_mode,
            image=config.image,
            work_dir=config.work_dir,
            functions_module=config.functions_module,
            suppress_result_output=config.suppress_result_output,
            max_output_chars=config.max_output_chars,
        )


# --------------------------------------------------------------------- module helpers


def _check_sandbox_id(sandbox_id: object) -> None:
    """A sandbox id from a caller or a saved state: None or a plain path segment."""
    if sandbox_id is None:
        return
    if not isinstance(sandbox_id, str):
        raise ValueError(f"A sandbox id must be a string, not {type(sandbox_id).__name__}.")
    if not sandbox_id or sandbox_id in (".", "..") or any(c in sandbox_id for c in "/\\\x00?#"):
        raise ValueError(f"{sandbox_id!r} is not a sandbox id.")


def _notes_for(ran: ShellResult) -> tuple[str, ...]:
    if not isinstance(ran, PythonRun):
        return ()
    if ran.interpreter_ended:
        return (INTERPRETER_KILLED_NOTE if ran.timed_out else INTERPRETER_ENDED_NOTE,)
    if ran.interpreter_restarted:
        return (INTERPRETER_RESTARTED_NOTE,)
    return ()


def _as_execution(ran: ShellResult, sandbox_id: str, shell: bool) -> ExecutionResult:
    """A block's command result in the renderer's terms (the value, when shown, is in stdout)."""
    lost = isinstance(ran, PythonRun) and (ran.interpreter_ended or ran.interpreter_restarted)
    failed = not shell and ran.exit_code != 0 and not ran.timed_out
    return ExecutionResult(
        execution_id=None,
        identifier=sandbox_id,
        status=ExecutionStatus.FAILED if failed else ExecutionStatus.SUCCEEDED,
        stdout=ran.stdout,
        stderr=ran.stderr,
        exit_code=ran.exit_code,
        timed_out=ran.timed_out,
        # The notes tell the loss; the timeout line must not say "kept" when it was not.
        state_lost=lost,
        error_message=f"exit code {ran.exit_code}" if failed else None,
        stdout_truncated=ran.truncated,
    )


def _remote_name(file: Path | str) -> str:
    """A path relative to the sandbox's working directory; anything leaving it is refused."""
    raw = str(file).replace("\\", "/")
    posix = PurePosixPath(raw)
    if posix.is_absolute():
        try:
            posix = posix.relative_to(WORK_DIR)
        except ValueError:
            raise ValueError(f"Refusing {raw!r}: only files under {WORK_DIR} can be downloaded") from None
    if not posix.parts or ".." in posix.parts:
        raise ValueError(f"Refusing {raw!r}: it names no file inside {WORK_DIR}")
    return str(posix)

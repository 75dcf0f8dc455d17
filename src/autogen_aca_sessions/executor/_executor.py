"""The AutoGen code executor for Azure Container Apps dynamic sessions: the adapter.

It speaks AutoGen (``CodeExecutor``, ``Component``) and turns blocks into code; what it knows
about its session, and the requests that keep it, belong to the session keeper
(``_session.py``), and the text a model reads is made by the pure output renderer
(``_render.py``)."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from autogen_core import CancellationToken, Component
from autogen_core.code_executor import (
    CodeBlock,
    FunctionWithRequirements,
    FunctionWithRequirementsStr,
)
from pydantic import BaseModel, Field
from typing_extensions import ParamSpec, Self

from autogen_aca_sessions import telemetry
from autogen_aca_sessions.client import (
    ApiVersion,
    NotFoundError,
    PoolFullError,
    PoolNotFoundError,
    SessionsClient,
    TokenSource,
)
from autogen_aca_sessions.client.checkpoint import CheckpointInfo
from autogen_aca_sessions.client.limits import (
    DEFAULT_API_VERSION,
    DEFAULT_MAX_OUTPUT_CHARS,
    MAX_EXECUTION_SECONDS,
)
from autogen_aca_sessions.executor._executor_base import (
    EnvironmentToken,
    InjectedFunctionsExecutor,
    write_file,
)
from autogen_aca_sessions.executor._kernel_code import MNT_DATA, shell_code
from autogen_aca_sessions.executor._render import (
    PYTHON_LANGUAGES,
    SHELL_LANGUAGES,
    OutputRenderer,
)
from autogen_aca_sessions.executor._results import ACADynamicSessionsBlockResult, ACADynamicSessionsCodeResult
from autogen_aca_sessions.executor._session import (
    Invalidation,
    KeeperSettings,
    SessionKeeper,
    linked,
)

__all__ = ["ACADynamicSessionsCodeExecutor", "ACADynamicSessionsCodeExecutorConfig"]

logger = logging.getLogger("autogen_aca_sessions.executor")

A = ParamSpec("A")

MAX_INLINE_COMMAND_BYTES = 100_000
"""Largest shell-pool command sent inline; Linux refuses one argument over 128 KiB."""


class ACADynamicSessionsCodeExecutorConfig(BaseModel):
    """Serialisable configuration of :class:`ACADynamicSessionsCodeExecutor`.

    Holds no secret: the credential is never written. On load, the token comes from the
    environment variable named by ``api_key_env`` when set, else from ``DefaultAzureCredential``.
    Injected functions are not serialised either (they are code); pass them again after loading.
    """

    pool_management_endpoint: str = Field(description="The session pool's management endpoint.")
    timeout: int = Field(default=60, description="Time limit of one code block, in seconds.")
    work_dir: str | None = Field(
        default=None, description="Local directory for images and downloads; None: a temporary one."
    )
    functions_module: str = Field(default="functions", description="Module name of the injected functions.")
    suppress_result_output: bool = Field(
        default=False, description="Leave the last expression's value out of the output text."
    )
    session_id: str | None = Field(
        default=None, description="A caller-chosen session identifier (never an executor-generated one)."
    )
    api_version: str = Field(default=DEFAULT_API_VERSION.value, description="Data-plane api-version.")
    max_output_chars: int = Field(
        default=DEFAULT_MAX_OUTPUT_CHARS, description="Most characters of stdout, stderr and output text."
    )
    release_session_on_stop: bool | None = Field(
        default=None,
        description="Delete the session on stop(): None releases only an executor-created session.",
    )
    api_key_env: str | None = Field(
        default=None,
        description="Environment variable holding a static bearer token (e.g. a local pool's key).",
    )
    shell_pool: bool = Field(default=False, description="The pool is a Shell pool (commands, no kernel).")
    allow_insecure_http: bool = Field(
        default=False, description="Accept a plain-http endpoint on a host that is not loopback."
    )
    restore_checkpoint_on_loss: bool = Field(
        default=False,
        description="When the session's state is lost, restore the last checkpoint made or restored "
        "by the executor, and say so in the block's output.",
    )


class ACADynamicSessionsCodeExecutor(
    InjectedFunctionsExecutor, Component[ACADynamicSessionsCodeExecutorConfig]
):
    """Runs code blocks in an Azure Container Apps dynamic session (or the local session pool).

    A drop-in replacement for ``autogen_ext.code_executors.azure.ACADynamicSessionsCodeExecutor``:
    the positional parameters, their names and defaults are the same, so switching is one changed
    import. Everything after ``session_id`` is keyword-only and new.

    .. caution::
        This runs LLM-generated code in the session pool the endpoint names.

    Execution:
        Blocks run in order in one session (a Jupyter kernel: state persists between blocks and
        calls); the first failing block stops the rest. ``python``/``py``/``python3`` blocks run as
        Python; ``sh``/``bash``/``shell`` blocks run as scripts inside the session (through a small
        Python wrapper using ``subprocess``, in ``/mnt/data``) and report the script's real exit
        status. Any other language gives exit code 1 and a message; nothing is sent. Code runs in
        ``/mnt/data``, where uploaded files land. Concurrent calls on one executor run one after
        the other. On a Shell pool pass ``shell_pool=True`` (see below).

    Time limits:
        Each block is sent with ``timeoutInSeconds=timeout`` (at most 220, the service's cap). A
        block that hits it returns exit code 124 with the output produced before the limit and a
        line saying whether the interpreter state was kept; the session stays usable.

    Cancellation:
        Cancelling the ``cancellation_token`` aborts the HTTP request at once and raises
        :class:`asyncio.CancelledError`. The service has no cancel operation, so code already
        running remotely continues until its ``timeoutInSeconds``; the next call on the session
        waits for it.

    Output:
        :class:`ACADynamicSessionsCodeResult` with the text the model reads (stdout, stderr and,
        unless ``suppress_result_output``, the last expression's value when it has one) and the
        same information structured. Images are saved as files in ``work_dir`` and named in the
        text ("Saved image to <path>"), never pasted as base64. Output beyond
        ``max_output_chars`` is cut and the cut is marked in the text.

    Injected functions:
        ``functions`` (``FunctionWithRequirements``, plain functions or
        ``FunctionWithRequirementsStr``) are loaded once per session before the first block, as
        a module registered under ``functions_module`` (``from functions import f``) and also
        bound directly in the namespace (``f(...)``). They are loaded again after
        :meth:`restart` and whenever the service replaced the interpreter (a dead or restarted
        kernel, a vanished session); the result says so. A function whose ``python_packages`` are
        not all in :meth:`get_available_packages` raises :class:`ValueError` naming them.

    Session policy:
        The executor keeps one session identifier: ``session_id`` when given (respected also
        across :meth:`restart`), else a UUID it generated itself.

        - :meth:`restart` gives a fresh interpreter. On api-versions with session management
          (2025-02-02-preview and later) it deletes the session: an executor-created identifier
          is replaced by a new UUID, a caller-supplied one is kept, so the next call gets a fresh
          session under the same name. On older api-versions (no delete) an executor-created
          identifier is replaced by a new UUID (the old session expires after the pool's cooldown)
          and for a caller-supplied one the interpreter namespace is reset
          (``get_ipython().reset()``) before the next block. That reset clears variables and
          imported names, but not the interpreter itself: modules stay in ``sys.modules`` (a
          re-import is not a fresh import), the working directory, environment variables and
          threads or child processes the code started remain, and so do the files in
          ``/mnt/data``. Use an executor-generated id or api-version 2025-02-02-preview or later
          where a truly fresh interpreter matters.
        - Replaced sessions: the service deletes a session after its idle cooldown; a later call
          with the same identifier gets a fresh one. The executor notices through the
          ``x-ms-session-guid`` header of the block's own answer (nothing is probed first; after
          300 s of idleness the working directory set-up travels with the block), sets the
          session up again, says so in the output and marks the result ``state_lost``; a block
          that failed only because the injected functions were missing is sent once more.
        - One request per block: a session's set-up (change to ``/mnt/data``) travels as the
          first line of its first block's cell, invisible in tracebacks; injected functions, a
          pending reset, and blocks that must start their cell (``from __future__``, ``%%``
          magics, an indented first line) get a set-up request of their own.
        - :meth:`stop` closes the HTTP connections (of a client the executor created) and
          releases the session (``DELETE /session``) when the api-version supports it and
          ``release_session_on_stop`` says so: ``None`` (default) releases only a session the
          executor created itself, ``True`` also a caller-supplied one, ``False`` never. Errors
          while releasing are logged, not raised. A temporary ``work_dir`` is removed on stop.

    Component config:
        ``dump_component()`` writes no secret: the credential is not serialised. Set
        ``api_key_env`` to the name of an environment variable holding a static bearer token
        (for example for the local pool) to have ``load_component()`` read it from there; without
        it the loaded executor uses ``DefaultAzureCredential``. Injected functions, a shared
        ``client`` and an executor-generated session id are not serialised.

    Args:
        pool_management_endpoint: The pool's management endpoint
            (``https://<region>.dynamicsessions.io/subscriptions/.../sessionPools/<pool>``).
        credential: An azure-core ``TokenCredential`` or ``AsyncTokenCredential``, a callable
            returning a token string (sync or async), a token string, or None for
            ``DefaultAzureCredential`` (or ``api_key_env``).
        timeout: Time limit of one code block in seconds. Default 60. The service caps it at 220.
        work_dir: Local directory for saved images and downloaded files; None (default) makes a
            temporary directory.
        functions: Functions to make available to the code. Not serialised.
        functions_module: Module name under which the functions can be imported.
        suppress_result_output: Leave the last expression's value out of the output text.
        session_id: Session identifier to use; None generates a UUID.
        api_version: Data-plane api-version; the newest by default.
        max_output_chars: Most characters kept of each block's stdout and stderr (the service is
            asked for this much) and of the output text.
        release_session_on_stop: See "Session policy".
        client: A :class:`~autogen_aca_sessions.client.SessionsClient` to share (then the
            executor never closes it, and ``pool_management_endpoint``, ``credential``,
            ``api_version`` and ``max_output_chars`` for the requests are the client's).
        api_key_env: Environment variable holding a static bearer token, used when
            ``credential`` is None.
        shell_pool: The pool is a Shell pool (2025-02-02-preview and later): every block runs as
            a command through ``shellCommand`` (Python blocks as ``python3 -c``), with its real
            exit status. Commands share only the files in ``/mnt/data``; there is no interpreter
            state and no injected functions.
        allow_insecure_http: Accept an ``http://`` endpoint on a host that is not loopback (the
            token then travels unencrypted); loopback hosts are always accepted.
        restore_checkpoint_on_loss: Off by default. When on and the service says the session's
            state was lost (the session gone, after its cooldown or a delete; the interpreter
            replaced), restore the last checkpoint this executor made or restored
            (:meth:`checkpoint`, :meth:`restore`) and say so in the block's output. A block
            that had not run yet (the session was found gone first) runs after the restore; one
            that already ran without the state is not sent again (that could repeat its
            effects): the note asks the model to. After an idle gap of 300 s or more the
            executor asks whether the session still exists before the block (one ``GET
            /session``, on api-versions with session management). :meth:`restart` forgets
            the checkpoint.
    """

    component_type = "code_executor"
    component_config_schema = ACADynamicSessionsCodeExecutorConfig
    component_provider_override = "autogen_aca_sessions.executor.ACADynamicSessionsCodeExecutor"

    def __init__(
        self,
        pool_management_endpoint: str,
        credential: TokenSource | None,
        timeout: int = 60,
        work_dir: Path | str | None = None,
        functions: Sequence[
            FunctionWithRequirements[Any, A] | Callable[..., Any] | FunctionWithRequirementsStr
        ] = [],  # the upstream default, kept for drop-in compatibility; never mutated
        functions_module: str = "functions",
        suppress_result_output: bool = False,
        session_id: str | None = None,
        *,
        api_version: ApiVersion | str = DEFAULT_API_VERSION,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        release_session_on_stop: bool | None = None,
        client: SessionsClient | None = None,
        api_key_env: str | None = None,
        shell_pool: bool = False,
        allow_insecure_http: bool = False,
        restore_checkpoint_on_loss: bool = False,
    ) -> None:
        if timeout < 1:
            raise ValueError("Timeout must be greater than or equal to 1.")
        if timeout > MAX_EXECUTION_SECONDS:
            warnings.warn(
                f"timeout={timeout} exceeds the service's cap of {MAX_EXECUTION_SECONDS} s per "
                f"execution; blocks will be stopped after {MAX_EXECUTION_SECONDS} s.",
                stacklevel=2,
            )
        if not functions_module.isidentifier():
            raise ValueError(f"functions_module must be a valid Python identifier, got {functions_module!r}.")
        if session_id is not None and not session_id:
            raise ValueError("session_id must not be empty (pass None to generate one).")
        if max_output_chars < 1:
            raise ValueError("max_output_chars must be at least 1.")

        self._pool_management_endpoint = pool_management_endpoint
        self._credential = credential
        self._api_key_env = api_key_env
        self._timeout = timeout
        self._server_timeout = min(timeout, MAX_EXECUTION_SECONDS)
        self._set_functions(functions, functions_module)
        self._suppress_result_output = suppress_result_output
        self._api_version = ApiVersion(client.api_version if client is not None else api_version)
        self._max_output_chars = max_output_chars
        self._release_session_on_stop = release_session_on_stop
        self._shell_pool = shell_pool
        self._allow_insecure_http = allow_insecure_http
        self._restore_checkpoint_on_loss = restore_checkpoint_on_loss
        if shell_pool and not self._api_version.supports_shell:
            raise ValueError(
                f"shell_pool needs api-version 2025-02-02-preview or later, not {self._api_version.value}."
            )
        if shell_pool and functions:
            raise ValueError(
                "Injected functions need a Python pool: a Shell pool has no interpreter to load them."
            )

        self._work_dir: Path | None = None
        self._temp_dir: tempfile.TemporaryDirectory[str] | None = None
        if work_dir is not None:
            self._work_dir = Path(work_dir)
            self._work_dir.mkdir(parents=True, exist_ok=True)
        else:
            self._temp_dir = tempfile.TemporaryDirectory(prefix="aca_sessions_")

        self._client: SessionsClient | None = client
        self._owns_client = client is None
        self._caller_session_id = session_id
        self._lock = asyncio.Lock()
        self._started = False
        self._renderer = OutputRenderer(
            max_output_chars=max_output_chars,
            suppress_result_output=suppress_result_output,
            server_timeout=self._server_timeout,
        )
        self._keeper = SessionKeeper(
            KeeperSettings(
                caller_session_id=session_id,
                api_version=self._api_version,
                shell_pool=shell_pool,
                server_timeout=self._server_timeout,
                functions_module=functions_module,
                functions=self._functions_source,
                required_packages=self._required_packages,
                restore_checkpoint_on_loss=restore_checkpoint_on_loss,
            ),
            client=self._ensure_client,
            clock=time.monotonic,
        )

    # ----------------------------------------------------------------- properties

    @property
    def timeout(self) -> int:
        """Time limit of one code block, in seconds."""
        return self._timeout

    @property
    def work_dir(self) -> Path:
        """Local directory where images and downloaded files are written."""
        if self._work_dir is not None:
            if self._work_dir == Path("."):
                warnings.warn("Using the current directory as work_dir is deprecated", DeprecationWarning, 2)
            return self._work_dir
        if self._temp_dir is None:
            # Stopped earlier (which removed the temporary directory) and used again.
            self._temp_dir = tempfile.TemporaryDirectory(prefix="aca_sessions_")
        return Path(self._temp_dir.name)

    @property
    def session_id(self) -> str:
        """The session identifier the next call will use."""
        return self._keeper.session_id

    @property
    def api_version(self) -> ApiVersion:
        """The data-plane api-version spoken."""
        return self._api_version

    @property
    def max_output_chars(self) -> int:
        """Most characters kept of each stream and of the output text."""
        return self._max_output_chars

    @property
    def client(self) -> SessionsClient:
        """The sessions client (created on first use when none was passed)."""
        return self._ensure_client()

    @property
    def _clock(self) -> Callable[[], float]:
        """The session keeper's clock (monotonic seconds; tests step it over idle gaps)."""
        return self._keeper.clock

    @_clock.setter
    def _clock(self, clock: Callable[[], float]) -> None:
        self._keeper.clock = clock

    # ----------------------------------------------------------------- lifecycle

    def _ensure_client(self) -> SessionsClient:
        if self._client is None:
            credential: TokenSource | None = self._credential
            if credential is None and self._api_key_env:
                credential = EnvironmentToken(self._api_key_env, "the session pool")
            self._client = SessionsClient(
                self._pool_management_endpoint,
                credential,
                api_version=self._api_version,
                max_output_chars=self._max_output_chars,
                allow_insecure_http=self._allow_insecure_http,
            )
            self._owns_client = True
        return self._client

    async def start(self) -> None:
        """Create the HTTP client. No request is made: the session starts with the first call."""
        self._ensure_client()
        self._started = True

    async def stop(self) -> None:
        """Release an executor-created session (see the class docstring), close connections the
        executor opened and remove a temporary ``work_dir``. Errors while releasing are logged."""
        async with self._lock:
            if self._keeper.should_release(self._release_session_on_stop):
                await self._keeper.delete_logged(reason="stop")
                self._keeper.invalidate(Invalidation.RELEASED)
            if self._client is not None and self._owns_client:
                client, self._client = self._client, None
                try:
                    await client.close()
                except Exception:
                    logger.warning("Closing the sessions client failed", exc_info=True)
            if self._temp_dir is not None:
                temp_dir, self._temp_dir = self._temp_dir, None
                # Removing a tree of saved images and downloads blocks: not on the event loop.
                await asyncio.to_thread(temp_dir.cleanup)
            self._started = False

    async def restart(self) -> None:
        """Give the next call a fresh interpreter (see "Session policy" in the class docstring)."""
        async with self._lock:
            await self._keeper.restart()

    # ----------------------------------------------------------------- checkpoints

    async def checkpoint(
        self,
        path: str | os.PathLike[str],
        *,
        key: bytes | None = None,
        cancellation_token: CancellationToken | None = None,
    ) -> CheckpointInfo:
        """Save the session's files (``/mnt/data``) and every picklable variable to ``path``.

        The file is signed with ``key`` (default: ``ACA_SESSIONS_CHECKPOINT_KEY`` or the per-user
        key file); :meth:`restore` needs the same key. The injected functions are left out (a
        restore sets them up again). Variables that would not pickle are listed in
        :attr:`CheckpointInfo.skipped`, not lost silently. See
        :mod:`autogen_aca_sessions.client.checkpoint` for what a checkpoint keeps.

        Raises:
            CheckpointSessionGoneError: the session no longer exists (its cooldown ran out, or it
                was deleted): there is nothing left to keep.
            CheckpointError: the session could not pack its state (the message says why), or the
                executor is on a Shell pool, or its own session has run nothing yet.
        """
        self._ensure_client()
        async with self._lock:
            return await self._keeper.checkpoint(path, key, cancellation_token)

    async def restore(
        self,
        path: str | os.PathLike[str],
        *,
        key: bytes | None = None,
        cancellation_token: CancellationToken | None = None,
    ) -> CheckpointInfo:
        """Put the files and variables of the checkpoint at ``path`` into this executor's session.

        The signature is checked before anything is sent; the variables are unpickled inside the
        session only, never in this process. The session is set up in the same cell (working
        directory, injected functions), so later blocks find both. The result names the variables
        now defined again; :attr:`CheckpointInfo.skipped` lists those the checkpoint could not keep
        and those that would not unpickle in this session.

        Raises:
            CheckpointTamperedError: the file was not signed with this key or was changed since.
            CheckpointError: the session could not unpack it (the message says why).
        """
        self._ensure_client()
        async with self._lock:
            return await self._keeper.restore(path, key, cancellation_token)

    # ----------------------------------------------------------------- helpers

    async def get_available_packages(self, cancellation_token: CancellationToken | None = None) -> set[str]:
        """Names of the Python distributions available in the session.

        From the pool's metadata where the api-version has it (2025-02-02-preview and later),
        otherwise from ``importlib.metadata`` inside the interpreter. Cached per session.
        """
        async with self._lock:
            return set(await self._keeper.packages(cancellation_token))

    # ----------------------------------------------------------------- execution

    async def execute_code_blocks(
        self, code_blocks: list[CodeBlock], cancellation_token: CancellationToken
    ) -> ACADynamicSessionsCodeResult:
        """Run the blocks in order in the session; the first failing block stops the rest.

        Returns:
            The combined result; ``exit_code`` is that of the last block run (0 when all
            succeeded, 124 on a time limit).

        Raises:
            ValueError: injected functions need packages the pool lacks, or fail to load.
            asyncio.CancelledError: the cancellation token was cancelled.
            SessionsError: the service could not be reached or refused the request (HTTP errors
                keep status, error code and body).
        """
        async with self._lock:
            with telemetry.code_blocks_span(type(self).__name__, self._keeper.session_id, len(code_blocks)):
                return await self._execute_blocks(code_blocks, cancellation_token)

    async def _execute_blocks(
        self, code_blocks: list[CodeBlock], cancellation_token: CancellationToken
    ) -> ACADynamicSessionsCodeResult:
        blocks: list[ACADynamicSessionsBlockResult] = []
        notes: list[str] = []
        for block in code_blocks:
            language = block.language.strip().lower()
            with telemetry.code_block_span(language, block.code) as span:
                outcome = await self._execute_block(block, language, notes, cancellation_token)
                telemetry.block_outcome(span, outcome)
            blocks.append(outcome)
            if outcome.exit_code != 0:
                break
        return self._renderer.combine(blocks, notes, self._keeper.session_id)

    async def _execute_block(
        self, block: CodeBlock, language: str, notes: list[str], cancellation_token: CancellationToken
    ) -> ACADynamicSessionsBlockResult:
        """Run one block (or refuse its language); notes it adds to the call's result go to ``notes``."""
        shell = language in SHELL_LANGUAGES or (self._shell_pool and language in PYTHON_LANGUAGES)
        if language in PYTHON_LANGUAGES and self._shell_pool:
            code: str | None = await self._shell_pool_command("python3", block.code, cancellation_token)
        elif language in PYTHON_LANGUAGES:
            code = block.code
        elif language in SHELL_LANGUAGES and self._shell_pool:
            # The pool runs commands with bash; an sh block asks for sh explicitly.
            program = "sh" if language == "sh" else "bash"
            code = await self._shell_pool_command(program, block.code, cancellation_token)
        elif language in SHELL_LANGUAGES:
            program = "sh" if language == "sh" else "bash"
            code = shell_code(block.code, program, self._shell_limit())
        else:
            code = None
        if code is None:
            return self._renderer.unsupported(block)
        outcome, block_notes = await self._run_block(block, code, cancellation_token, shell=shell)
        notes.extend(block_notes)
        return outcome

    async def _shell_pool_command(
        self, program: str, code: str, cancellation_token: CancellationToken
    ) -> str:
        """The shell command that runs ``code`` with ``program`` on a Shell pool.

        The pool runs a command as one argument (``bash -c <command>``), which the kernel limits
        to 128 KiB (E2BIG). A small block is passed inline; a larger one is uploaded into
        ``/mnt/data`` as a hidden file, run from there and removed afterwards.
        """
        inline = code if program == "bash" else f"{program} -c {shlex.quote(code)}"
        if len(inline.encode("utf-8", "surrogatepass")) <= MAX_INLINE_COMMAND_BYTES:
            return inline
        suffix = ".py" if program.startswith("python") else ".sh"
        name = f".aca_block_{uuid.uuid4().hex}{suffix}"
        self._ensure_client()
        await self._keeper.upload(name, code.encode("utf-8", "surrogatepass"), cancellation_token)
        return f"{program} {name}; __aca_rc=$?; rm -f -- {name}; exit $__aca_rc"

    def _shell_limit(self) -> float:
        # Slightly under the service's limit, so the wrapper kills the script itself and its
        # partial output still comes back.
        margin = max(0.5, min(2.0, self._server_timeout * 0.1))
        return max(0.5, self._server_timeout - margin)

    async def _run_block(
        self, block: CodeBlock, code: str, cancellation_token: CancellationToken, *, shell: bool
    ) -> tuple[ACADynamicSessionsBlockResult, tuple[str, ...]]:
        """Send one block through the session keeper and render what came back; returns the block
        result and the notes it adds to the call's result."""
        self._ensure_client()
        sent = await self._keeper.run_block(code, cancellation_token)
        if sent.result is None:
            assert sent.gave_up is not None
            return self._renderer.no_answer(
                block, sent.gave_up, sent.notes, replaced=sent.replaced
            ), sent.notes
        result = sent.result
        image_paths = [await self._save_image(image.data, image.format) for image in result.images]
        notes = sent.notes + self._renderer.notes_for(result, replaced=sent.replaced)
        rendered = self._renderer.block(
            block, result, image_paths, notes, shell=shell, replaced=sent.replaced
        )
        return rendered, notes

    async def _save_image(self, data: bytes, image_format: str) -> str:
        extension = (image_format or "png").lower().lstrip(".")
        if not extension.isalnum():
            extension = "png"
        path = self.work_dir / f"image_{uuid.uuid4().hex[:12]}.{extension}"
        await asyncio.to_thread(path.write_bytes, data)
        return str(path)

    # ----------------------------------------------------------------- files

    async def upload_files(
        self, files: list[Path | str], cancellation_token: CancellationToken | None = None
    ) -> None:
        """Upload local files to ``/mnt/data`` in the session, each under its base name.

        Relative paths are taken relative to ``work_dir``; absolute paths as they are.
        """
        self._ensure_client()
        paths = await self._local_upload_paths(files)
        for path in paths:
            data = await asyncio.to_thread(path.read_bytes)
            await self._keeper.upload(path.name, data, cancellation_token)

    async def download_files(
        self, files: list[Path | str], cancellation_token: CancellationToken | None = None
    ) -> list[str]:
        """Download files from ``/mnt/data`` in the session into ``work_dir``.

        Names are relative to ``/mnt/data`` (``/mnt/data/...`` is accepted too) and keep their
        sub-directories locally. A name that would land outside ``work_dir`` raises
        :class:`ValueError` before anything is downloaded.

        Returns:
            The local paths written, in order, as ``str(work_dir / name)`` (as upstream returns
            them; not resolved).
        """
        client = self._ensure_client()
        work_dir = self.work_dir
        # resolve() touches the file system (symlinks, network mounts): keep it off the loop.
        plan = await asyncio.to_thread(_download_plan, work_dir, files)
        written: list[str] = []
        for name, directory, destination, shown_path in plan:
            try:
                with self._keeper.naming_session():
                    data = await linked(
                        client.download_file(self._keeper.session_id, name, path=directory),
                        cancellation_token,
                    )
            except NotFoundError as exc:
                if isinstance(exc, (PoolFullError, PoolNotFoundError)):
                    raise
                shown = f"{directory}/{name}" if directory else name
                raise FileNotFoundError(f"{shown} does not exist in {MNT_DATA} of the session") from exc
            await asyncio.to_thread(write_file, destination, data)
            written.append(shown_path)
        return written

    async def get_file_list(self, cancellation_token: CancellationToken | None = None) -> list[str]:
        """Names of the files in ``/mnt/data`` of the session (directories are not listed)."""
        client = self._ensure_client()
        with self._keeper.naming_session():
            entries = await linked(client.list_files(self._keeper.session_id), cancellation_token)
        return [entry.name for entry in entries if not entry.is_directory]

    # ----------------------------------------------------------------- component config

    def _to_config(self) -> ACADynamicSessionsCodeExecutorConfig:
        self._warn_unserialised(self._credential is not None, self._api_key_env)
        return ACADynamicSessionsCodeExecutorConfig(
            pool_management_endpoint=self._pool_management_endpoint,
            timeout=self._timeout,
            work_dir=str(self._work_dir) if self._work_dir is not None else None,
            functions_module=self._functions_module,
            suppress_result_output=self._suppress_result_output,
            session_id=self._caller_session_id,
            api_version=self._api_version.value,
            max_output_chars=self._max_output_chars,
            release_session_on_stop=self._release_session_on_stop,
            api_key_env=self._api_key_env,
            shell_pool=self._shell_pool,
            allow_insecure_http=self._allow_insecure_http,
            restore_checkpoint_on_loss=self._restore_checkpoint_on_loss,
        )

    @classmethod
    def _from_config(cls, config: ACADynamicSessionsCodeExecutorConfig) -> Self:
        return cls(
            config.pool_management_endpoint,
            None,
            timeout=config.timeout,
            work_dir=config.work_dir,
            functions_module=config.functions_module,
            suppress_result_output=config.suppress_result_output,
            session_id=config.session_id,
            api_version=config.api_version,
            max_output_chars=config.max_output_chars,
            release_session_on_stop=config.release_session_on_stop,
            api_key_env=config.api_key_env,
            shell_pool=config.shell_pool,
            allow_insecure_http=config.allow_insecure_http,
            restore_checkpoint_on_loss=config.restore_checkpoint_on_loss,
        )


# --------------------------------------------------------------------- module helpers


def _remote_relative(file: Path | str) -> str:
    """A session path relative to /mnt/data; absolute paths elsewhere are refused."""
    raw = str(file).replace("\\", "/")
    posix = PurePosixPath(raw)
    if posix.is_absolute():
        try:
            posix = posix.relative_to(MNT_DATA)
        except ValueError:
            raise ValueError(
                f"Refusing to download {raw!r}: only files under {MNT_DATA} can be downloaded"
            ) from None
    relative = str(posix)
    if relative in ("", "."):
        raise ValueError(f"Refusing to download {raw!r}: it names no file")
    return relative


def _download_plan(work_dir: Path, files: Sequence[Path | str]) -> list[tuple[str, str | None, Path, str]]:
    """(remote name, remote directory, resolved local destination, path to report) per file;
    refuses any name whose destination (symlinks followed) is not inside ``work_dir``."""
    base = work_dir.resolve()
    plan: list[tuple[str, str | None, Path, str]] = []
    for file in files:
        relative = _remote_relative(file)
        destination = (base / relative).resolve()
        if destination == base or not destination.is_relative_to(base):
            raise ValueError(
                f"Refusing to download {str(file)!r}: it would be written outside work_dir {base}"
            )
        parent, _, name = relative.rpartition("/")
        plan.append((name, parent or None, destination, str(work_dir / relative)))
    return plan

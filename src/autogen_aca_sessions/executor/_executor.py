"""The AutoGen code executor for Azure Container Apps dynamic sessions."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shlex
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path, PurePosixPath
from string import Template
from typing import Any, ClassVar, TypeVar

from autogen_core import CancellationToken, Component
from autogen_core.code_executor import (
    CodeBlock,
    CodeExecutor,
    FunctionWithRequirements,
    FunctionWithRequirementsStr,
)
from pydantic import BaseModel, Field
from typing_extensions import ParamSpec, Self

from autogen_aca_sessions.client import (
    ApiVersion,
    ExecutionResult,
    ExecutionTimeoutError,
    NotFoundError,
    PoolFullError,
    SessionsClient,
    SessionsHTTPError,
    TokenSource,
    UnsupportedOperationError,
)
from autogen_aca_sessions.executor._functions import (
    FunctionsModule,
    InjectedFunction,
    build_functions_module,
    normalize_package_name,
    required_packages,
    stub_for,
)
from autogen_aca_sessions.executor._kernel_code import (
    MNT_DATA,
    packages_code,
    reset_code,
    setup_code,
    shell_code,
)
from autogen_aca_sessions.executor._results import ACADynamicSessionsBlockResult, ACADynamicSessionsCodeResult

__all__ = ["ACADynamicSessionsCodeExecutor", "ACADynamicSessionsCodeExecutorConfig"]

logger = logging.getLogger("autogen_aca_sessions.executor")

A = ParamSpec("A")
T = TypeVar("T")

PYTHON_LANGUAGES = ("python", "py", "python3")
SHELL_LANGUAGES = ("sh", "bash", "shell")

DEFAULT_API_VERSION = ApiVersion.V2025_10_02_PREVIEW
DEFAULT_MAX_OUTPUT_CHARS = 1_000_000
MAX_SERVICE_TIMEOUT_SECONDS = 220
"""The service stops any execution after this many seconds whatever it is asked for."""
MAX_INLINE_COMMAND_BYTES = 100_000
"""Largest shell-pool command sent inline; Linux refuses one argument over 128 KiB."""
TIMEOUT_EXIT_CODE = 124
"""Exit status of a block that hit its time limit (as ``timeout(1)`` reports it)."""

IDLE_PROBE_SECONDS = 300.0
"""The shortest cooldown a pool can have: after this long without a request the session may have
been deleted and a later call gets a fresh one, so the executor checks before running a block."""
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Error codes with which the service says the identifier no longer names a session.
_SESSION_GONE_CODES = frozenset({"sessionwithidentifiernotfound", "sessionnotfound"})


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


class _EnvironmentToken:
    """Reads a static bearer token from an environment variable at every use (never stored)."""

    def __init__(self, variable: str) -> None:
        self.variable = variable

    def __call__(self) -> str:
        value = os.environ.get(self.variable)
        if not value:
            raise RuntimeError(
                f"Environment variable {self.variable!r} (api_key_env) is not set or empty; "
                "it must hold the bearer token for the session pool."
            )
        return value


class ACADynamicSessionsCodeExecutor(CodeExecutor, Component[ACADynamicSessionsCodeExecutorConfig]):
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
          ``x-ms-session-guid`` header (and checks before a block after 300 s of idleness), sets
          the session up again, says so in the output and marks the result ``state_lost``; a
          block that failed only because the injected functions were missing is sent once more.
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
    """

    component_type = "code_executor"
    component_config_schema = ACADynamicSessionsCodeExecutorConfig
    component_provider_override = "autogen_aca_sessions.executor.ACADynamicSessionsCodeExecutor"

    SUPPORTED_LANGUAGES: ClassVar[list[str]] = [*PYTHON_LANGUAGES, *SHELL_LANGUAGES]
    FUNCTION_PROMPT_TEMPLATE: ClassVar[str] = """You have access to the following user defined functions.

$functions"""

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
    ) -> None:
        if timeout < 1:
            raise ValueError("Timeout must be greater than or equal to 1.")
        if timeout > MAX_SERVICE_TIMEOUT_SECONDS:
            warnings.warn(
                f"timeout={timeout} exceeds the service's cap of {MAX_SERVICE_TIMEOUT_SECONDS} s per "
                f"execution; blocks will be stopped after {MAX_SERVICE_TIMEOUT_SECONDS} s.",
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
        self._server_timeout = min(timeout, MAX_SERVICE_TIMEOUT_SECONDS)
        self._functions: list[InjectedFunction] = list(functions)
        self._functions_module = functions_module
        self._suppress_result_output = suppress_result_output
        self._api_version = ApiVersion(client.api_version if client is not None else api_version)
        self._max_output_chars = max_output_chars
        self._release_session_on_stop = release_session_on_stop
        self._shell_pool = shell_pool
        self._allow_insecure_http = allow_insecure_http
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

        # Built now so that unreadable or unparsable functions fail at construction, not mid-chat.
        self._functions_source: FunctionsModule | None = (
            build_functions_module(self._functions) if self._functions else None
        )
        self._required_packages = required_packages(self._functions)

        self._client: SessionsClient | None = client
        self._owns_client = client is None
        self._caller_session_id = session_id
        self._session_id = session_id or str(uuid.uuid4())
        self._session_used = False
        self._setup_done = False
        self._reset_pending = False
        self._packages_checked = False
        self._available_packages: set[str] | None = None
        self._lock = asyncio.Lock()
        self._started = False
        self._session_guid: str | None = None
        """The ``x-ms-session-guid`` of the session incarnation the setup ran in, when known."""
        self._last_request_at: float | None = None
        self._clock: Callable[[], float] = time.monotonic

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
    def functions_module(self) -> str:
        """Module name under which the injected functions can be imported."""
        return self._functions_module

    @property
    def functions(self) -> list[str]:
        """Names of the injected functions."""
        return list(self._functions_source.names) if self._functions_source else []

    @property
    def session_id(self) -> str:
        """The session identifier the next call will use."""
        return self._session_id

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

    def _supports_session_management(self) -> bool:
        return self._api_version.supports_session_management

    # ----------------------------------------------------------------- lifecycle

    def _ensure_client(self) -> SessionsClient:
        if self._client is None:
            credential: TokenSource | None = self._credential
            if credential is None and self._api_key_env:
                credential = _EnvironmentToken(self._api_key_env)
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
            if self._should_release():
                await self._delete_session_logged(self._session_id, reason="stop")
                self._forget_session()
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

    def _should_release(self) -> bool:
        policy = self._release_session_on_stop
        if policy is False:
            return False
        own = self._caller_session_id is None
        if policy is None and not own:
            return False
        if own and not self._session_used:
            return False
        if not self._supports_session_management():
            logger.debug(
                "Not releasing session %s: api-version %s has no session management",
                self._session_id,
                self._api_version.value,
            )
            return False
        return True

    async def restart(self) -> None:
        """Give the next call a fresh interpreter (see "Session policy" in the class docstring)."""
        async with self._lock:
            own = self._caller_session_id is None
            deleted = False
            if self._supports_session_management() and (self._session_used or not own):
                deleted = await self._delete_session_logged(self._session_id, reason="restart")
            if own:
                self._session_id = str(uuid.uuid4())
                self._session_used = False
                self._reset_pending = False
            elif not deleted and not self._shell_pool:
                # The caller's identifier stays; without a delete its interpreter is reset instead.
                self._reset_pending = True
            self._setup_done = False
            self._session_guid = None
            self._packages_checked = False
            self._available_packages = None

    def _forget_session(self) -> None:
        """After a release: a later call starts over in a new session."""
        if self._caller_session_id is None:
            self._session_id = str(uuid.uuid4())
        self._session_used = False
        self._setup_done = False
        self._session_guid = None
        self._reset_pending = False
        self._packages_checked = False
        self._available_packages = None

    async def _delete_session_logged(self, identifier: str, *, reason: str) -> bool:
        """Delete a session; True when it is gone (also when it did not exist)."""
        try:
            await self._ensure_client().delete_session(identifier)
        except NotFoundError:
            return True
        except Exception:
            logger.warning("Releasing session %s on %s failed", identifier, reason, exc_info=True)
            return False
        logger.debug("Released session %s on %s", identifier, reason)
        return True

    # ----------------------------------------------------------------- helpers

    @staticmethod
    async def _linked(awaitable: Awaitable[T], cancellation_token: CancellationToken | None) -> T:
        """Await ``awaitable`` as a task the token can cancel at once."""
        task = asyncio.ensure_future(awaitable)
        if cancellation_token is not None:
            cancellation_token.link_future(task)
        return await task

    def format_functions_for_prompt(self, prompt_template: str = FUNCTION_PROMPT_TEMPLATE) -> str:
        """Describe the injected functions for a prompt.

        The template's ``$functions`` is replaced by the functions' stubs (signature and
        docstring), separated by blank lines.
        """
        return Template(prompt_template).substitute(
            functions="\n\n".join(stub_for(func) for func in self._functions)
        )

    # ----------------------------------------------------------------- session setup

    def _touch(self) -> None:
        """Record that a request naming the session is about to go out. Called *before* the request:
        once it may have reached the service, the session may exist and must be released on stop."""
        self._session_used = True
        self._last_request_at = self._clock()

    def _idle_too_long(self) -> bool:
        last = self._last_request_at
        return last is not None and self._clock() - last >= IDLE_PROBE_SECONDS

    def _is_replaced(self, result: ExecutionResult) -> bool:
        """Whether ``result`` came from another incarnation of the session than the one set up."""
        return (
            not self._shell_pool
            and self._session_guid is not None
            and result.session_guid is not None
            and result.session_guid != self._session_guid
        )

    def _failed_for_missing_setup(self, result: ExecutionResult) -> bool:
        """Whether a failed block failed because the injected functions were not loaded (it ran in
        a fresh interpreter): then sending it again after the setup cannot repeat any state."""
        module = self._functions_source
        if result.succeeded or module is None:
            return False
        text = _ANSI_ESCAPE.sub("", "\n".join(part for part in (result.stderr, result.error_message) if part))
        if re.search(rf"No module named '{re.escape(self._functions_module)}'", text):
            return True
        return any(
            re.search(rf"NameError: name '{re.escape(name)}' is not defined", text) for name in module.names
        )

    async def _ensure_setup(self, cancellation_token: CancellationToken | None) -> bool:
        """Reset (when pending), change to /mnt/data and load the injected functions.

        After an idle gap long enough for the service to have replaced the session, first checks
        (with a no-op execution) whether it did. Returns True when the session turned out to be a
        new incarnation, i.e. earlier interpreter state is gone.
        """
        probe_due = self._setup_done and not self._reset_pending and self._idle_too_long()
        if self._setup_done and not self._reset_pending and not probe_due:
            return False
        if self._shell_pool:
            # Commands start in /mnt/data and share nothing but files: there is nothing to set up.
            self._setup_done = True
            self._reset_pending = False
            return False
        client = self._ensure_client()
        replaced = False
        if probe_due:
            self._touch()
            probe = await self._linked(
                client.execute(self._session_id, "pass\n", timeout_seconds=self._server_timeout),
                cancellation_token,
            )
            replaced = self._is_replaced(probe) or probe.state_lost
            if not replaced and self._session_guid is not None and probe.session_guid == self._session_guid:
                return False
            # Replaced, or the service names no incarnation: load everything again (harmless).
            self._setup_done = False
        if self._reset_pending:
            self._touch()
            reset = await self._linked(
                client.execute(self._session_id, reset_code(), timeout_seconds=self._server_timeout),
                cancellation_token,
            )
            if not reset.succeeded and not reset.state_lost:
                raise RuntimeError(
                    f"Resetting the interpreter of session {self._session_id!r} failed: "
                    f"{(reset.stderr or reset.error_message or '').strip()}"
                )
            self._reset_pending = False
        if self._required_packages and not self._packages_checked:
            await self._check_required_packages(cancellation_token)
        module = self._functions_source
        code = setup_code(
            self._functions_module if module else None,
            module.source if module else None,
            module.names if module else (),
        )
        self._touch()
        outcome = await self._linked(
            client.execute(self._session_id, code, timeout_seconds=self._server_timeout), cancellation_token
        )
        if not outcome.succeeded:
            detail = (outcome.stderr or outcome.error_message or outcome.stdout).strip()
            if module is not None:
                raise ValueError(f"Functions failed to load: {detail}")
            raise RuntimeError(f"Failed to set up the working directory in the session: {detail}")
        self._session_guid = outcome.session_guid
        self._setup_done = True
        return replaced

    async def _check_required_packages(self, cancellation_token: CancellationToken | None) -> None:
        available = {normalize_package_name(name) for name in await self._packages(cancellation_token)}
        missing = sorted(spec for name, spec in self._required_packages.items() if name not in available)
        if missing:
            raise ValueError(
                "Packages unavailable in environment: "
                + ", ".join(missing)
                + ". The injected functions need them, but the session pool does not have them "
                "installed (a pool's package set is fixed)."
            )
        self._packages_checked = True

    async def get_available_packages(self, cancellation_token: CancellationToken | None = None) -> set[str]:
        """Names of the Python distributions available in the session.

        From the pool's metadata where the api-version has it (2025-02-02-preview and later),
        otherwise from ``importlib.metadata`` inside the interpreter. Cached per session.
        """
        async with self._lock:
            return set(await self._packages(cancellation_token))

    async def _packages(self, cancellation_token: CancellationToken | None) -> set[str]:
        if self._available_packages is not None:
            return self._available_packages
        client = self._ensure_client()
        names: set[str] = set()
        if self._supports_session_management():
            try:
                metadata = await self._linked(client.get_metadata(), cancellation_token)
                names = {package.name for package in metadata.preinstalled_packages if package.name}
            except (UnsupportedOperationError, SessionsHTTPError) as exc:
                logger.debug("Pool metadata unavailable (%s); asking the interpreter", exc)
        if not names and self._shell_pool:
            names = await self._packages_from_shell(client, cancellation_token)
        elif not names:
            self._touch()
            outcome = await self._linked(
                client.execute(self._session_id, packages_code(), timeout_seconds=self._server_timeout),
                cancellation_token,
            )
            if not outcome.succeeded or not isinstance(outcome.result, list):
                detail = (outcome.stderr or outcome.error_message or repr(outcome.result)).strip()
                raise ValueError(f"Failed to get list of available packages: {detail}")
            names = {str(name) for name in outcome.result}
        self._available_packages = names
        return names

    async def _packages_from_shell(
        self, client: SessionsClient, cancellation_token: CancellationToken | None
    ) -> set[str]:
        command = "python3 -c " + shlex.quote(
            "import json, importlib.metadata as m; "
            "print(json.dumps(sorted({d.metadata['Name'] or '' for d in m.distributions()} - {''})))"
        )
        self._touch()
        outcome = await self._linked(
            client.execute_shell(self._session_id, command, timeout_seconds=self._server_timeout),
            cancellation_token,
        )
        try:
            listed = json.loads(outcome.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            detail = (outcome.stderr or outcome.stdout).strip()
            raise ValueError(f"Failed to get list of available packages: {detail}") from None
        return {str(name) for name in listed}

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
            blocks: list[ACADynamicSessionsBlockResult] = []
            notes: list[str] = []
            for block in code_blocks:
                language = block.language.strip().lower()
                if language in PYTHON_LANGUAGES and self._shell_pool:
                    command = await self._shell_pool_command("python3", block.code, cancellation_token)
                    outcome = await self._run_block(block, command, cancellation_token, notes, shell=True)
                elif language in PYTHON_LANGUAGES:
                    outcome = await self._run_block(block, block.code, cancellation_token, notes)
                elif language in SHELL_LANGUAGES and self._shell_pool:
                    # The pool runs commands with bash; an sh block asks for sh explicitly.
                    program = "sh" if language == "sh" else "bash"
                    command = await self._shell_pool_command(program, block.code, cancellation_token)
                    outcome = await self._run_block(block, command, cancellation_token, notes, shell=True)
                elif language in SHELL_LANGUAGES:
                    limit = self._shell_limit()
                    program = "sh" if language == "sh" else "bash"
                    code = shell_code(block.code, program, limit)
                    outcome = await self._run_block(block, code, cancellation_token, notes, shell=True)
                else:
                    outcome = ACADynamicSessionsBlockResult(
                        language=block.language,
                        exit_code=1,
                        output=(
                            f"Unsupported language {block.language!r}: this executor runs Python "
                            f"({', '.join(PYTHON_LANGUAGES)}) and shell ({', '.join(SHELL_LANGUAGES)}) "
                            "blocks. Nothing was executed for this block.\n"
                        ),
                        executed=False,
                    )
                blocks.append(outcome)
                if outcome.exit_code != 0:
                    break
            return self._combine(blocks, notes)

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
        client = self._ensure_client()
        self._touch()
        await self._linked(
            client.upload_file(self._session_id, name, code.encode("utf-8", "surrogatepass")),
            cancellation_token,
        )
        return f"{program} {name}; __aca_rc=$?; rm -f -- {name}; exit $__aca_rc"

    def _shell_limit(self) -> float:
        # Slightly under the service's limit, so the wrapper kills the script itself and its
        # partial output still comes back.
        margin = max(0.5, min(2.0, self._server_timeout * 0.1))
        return max(0.5, self._server_timeout - margin)

    async def _run_block(
        self,
        block: CodeBlock,
        code: str,
        cancellation_token: CancellationToken,
        notes: list[str],
        *,
        shell: bool = False,
    ) -> ACADynamicSessionsBlockResult:
        client = self._ensure_client()
        block_notes: list[str] = []
        gone = (
            f"The session {self._session_id!r} was replaced by the service (its idle timeout expired "
            "or it was deleted), so earlier variables and imports are gone"
        )
        replaced = await self._ensure_setup(cancellation_token)
        if replaced:
            block_notes.append(f"{gone}; the working directory and injected functions were set up again.")
        try:
            try:
                self._touch()
                result = await self._linked(self._send(client, code), cancellation_token)
            except SessionsHTTPError as exc:
                if not _session_gone(exc):
                    raise
                # The request never ran: set the new session up and send the block once more.
                block_notes.append(
                    f"The session {self._session_id!r} no longer existed; a new one was set up "
                    "(working directory, injected functions) and the block was sent again."
                )
                self._setup_done = False
                self._available_packages = None
                self._packages_checked = False
                await self._ensure_setup(cancellation_token)
                self._touch()
                result = await self._linked(self._send(client, code), cancellation_token)
            if self._is_replaced(result):
                # The block ran in a new incarnation of the session that was never set up.
                replaced = True
                self._setup_done = False
                if self._failed_for_missing_setup(result):
                    # It failed only for want of the injected functions, in a fresh interpreter:
                    # sending it again after the setup cannot repeat any interpreter state.
                    await self._ensure_setup(cancellation_token)
                    self._touch()
                    result = await self._linked(self._send(client, code), cancellation_token)
                    block_notes.append(
                        f"{gone}; this block first ran without the injected functions, so they were "
                        "set up again and the block was sent once more."
                    )
                else:
                    block_notes.append(
                        f"{gone}; this block ran in the new session before the working directory and "
                        "injected functions were set up again (they are before the next block)."
                    )
        except ExecutionTimeoutError as exc:
            notes.extend(block_notes)
            return ACADynamicSessionsBlockResult(
                language=block.language,
                exit_code=TIMEOUT_EXIT_CODE,
                output=_join(
                    [
                        *(note + "\n" for note in block_notes),
                        f"Timed out: no answer from the session within {exc.waited_seconds:g} s (the "
                        f"limit is {self._server_timeout} s); whether the interpreter state was kept is "
                        "unknown.\n",
                    ]
                ),
                timed_out=True,
                state_lost=replaced,
            )
        self._last_request_at = self._clock()
        outcome = await self._block_result(block, result, block_notes, shell=shell, replaced=replaced)
        notes.extend(block_notes)
        return outcome

    def _send(self, client: SessionsClient, code: str) -> Awaitable[ExecutionResult]:
        """Execute a block: as a command on a Shell pool, as code in the interpreter otherwise."""
        if self._shell_pool:
            return client.execute_shell(self._session_id, code, timeout_seconds=self._server_timeout)
        return client.execute(self._session_id, code, timeout_seconds=self._server_timeout)

    async def _block_result(
        self,
        block: CodeBlock,
        result: ExecutionResult,
        notes: list[str],
        *,
        shell: bool,
        replaced: bool = False,
    ) -> ACADynamicSessionsBlockResult:
        """Turn one execution into a block result; ``notes`` holds sentences to add to its text
        and receives any new ones."""
        value = result.result
        if result.timed_out:
            exit_code = TIMEOUT_EXIT_CODE
        elif result.exit_code is not None:
            exit_code = result.exit_code
        elif not result.succeeded:
            exit_code = 1
        elif shell:
            exit_code = _as_exit_code(value)
        else:
            exit_code = 0
        image_paths = [await self._save_image(image.data, image.format) for image in result.images]
        # The service cuts streams only on 2025-10; cut them here on every version alike.
        stdout, stdout_cut = _cut_head(result.stdout, self._max_output_chars)
        stderr, stderr_cut = _cut_head(result.stderr, self._max_output_chars)
        stdout_truncated = result.stdout_truncated or stdout_cut
        stderr_truncated = result.stderr_truncated or stderr_cut

        parts: list[str] = [stdout, stderr]
        if stdout_truncated:
            parts.append(f"[stdout truncated after {len(stdout)} characters]\n")
        if stderr_truncated:
            parts.append(f"[stderr truncated after {len(stderr)} characters]\n")
        for stream, maybe in (
            ("stdout", result.stdout_possibly_truncated and not stdout_truncated),
            ("stderr", result.stderr_possibly_truncated and not stderr_truncated),
        ):
            if maybe:
                parts.append(
                    f"[{stream} has exactly 4096 characters, the service's default output cap: it may "
                    "have been cut]\n"
                )
        parts.append(self._result_text(value, shell=shell))
        parts.extend(f"Saved image to {path}\n" for path in image_paths)
        if not result.succeeded and not result.timed_out and not (stderr or stdout):
            detail = result.error_message or result.error_code or "no details"
            parts.append(f"Execution failed: {detail}\n")
        if result.timed_out:
            kept = "was lost (the interpreter was restarted)" if result.state_lost else "was kept"
            parts.append(
                f"Timed out after {self._server_timeout} s; the session's interpreter state {kept}.\n"
            )
        if result.state_lost:
            self._setup_done = False
        if result.state_lost and not replaced:
            notes.append(
                "The session's interpreter was replaced, so earlier variables and imports are gone; "
                "the working directory and injected functions are set up again before the next block."
            )
        parts.extend(note + "\n" for note in notes)
        return ACADynamicSessionsBlockResult(
            language=block.language,
            exit_code=exit_code,
            output=_join(parts),
            stdout=stdout,
            stderr=stderr,
            result=None if value == "" else value,
            image_paths=image_paths,
            execution_time_ms=result.execution_time_ms,
            execution_id=result.execution_id,
            timed_out=result.timed_out,
            state_lost=result.state_lost or replaced,
            stdout_truncated=stdout_truncated,
            stderr_truncated=stderr_truncated,
            possibly_truncated=result.stdout_possibly_truncated or result.stderr_possibly_truncated,
        )

    def _result_text(self, value: Any, *, shell: bool) -> str:
        """The last expression's value as the model reads it ("" when not shown)."""
        if shell or self._suppress_result_output or value is None or value == "":
            return ""
        # str() as upstream does: the model reads Python values (True, None, {'a': 1}), not JSON.
        return value if isinstance(value, str) else str(value)

    async def _save_image(self, data: bytes, image_format: str) -> str:
        extension = (image_format or "png").lower().lstrip(".")
        if not extension.isalnum():
            extension = "png"
        path = self.work_dir / f"image_{uuid.uuid4().hex[:12]}.{extension}"
        await asyncio.to_thread(path.write_bytes, data)
        return str(path)

    def _combine(
        self, blocks: list[ACADynamicSessionsBlockResult], notes: list[str]
    ) -> ACADynamicSessionsCodeResult:
        output = _join([block.output for block in blocks])
        # The limit counts what the code produced, not the lines the executor adds (markers,
        # notes, image paths), so those never push a result over it.
        produced = sum(
            len(block.stdout)
            + len(block.stderr)
            + len(self._result_text(block.result, shell=block.language.strip().lower() in SHELL_LANGUAGES))
            for block in blocks
        )
        truncated = produced > self._max_output_chars
        if truncated:
            output = _cut_middle(
                output, self._max_output_chars + len(output) - produced, self._max_output_chars
            )
        last = blocks[-1] if blocks else None
        return ACADynamicSessionsCodeResult(
            exit_code=last.exit_code if last else 0,
            output=output,
            stdout="".join(block.stdout for block in blocks),
            stderr="".join(block.stderr for block in blocks),
            result=last.result if last else None,
            image_paths=[path for block in blocks for path in block.image_paths],
            execution_time_ms=sum(block.execution_time_ms or 0 for block in blocks),
            session_id=self._session_id,
            blocks=blocks,
            timed_out=any(block.timed_out for block in blocks),
            state_lost=any(block.state_lost for block in blocks),
            output_truncated=truncated,
            stdout_truncated=any(block.stdout_truncated for block in blocks),
            stderr_truncated=any(block.stderr_truncated for block in blocks),
            notes=notes,
        )

    # ----------------------------------------------------------------- files

    async def upload_files(
        self, files: list[Path | str], cancellation_token: CancellationToken | None = None
    ) -> None:
        """Upload local files to ``/mnt/data`` in the session, each under its base name.

        Relative paths are taken relative to ``work_dir``; absolute paths as they are.
        """
        client = self._ensure_client()
        paths: list[Path] = []
        for file in files:
            path = Path(file)
            if not path.is_absolute():
                path = self.work_dir / path
            # File system calls may block (network mounts): never on the event loop.
            if not await asyncio.to_thread(path.is_file):
                raise FileNotFoundError(f"{file} does not exist (looked for {path})")
            paths.append(path)
        for path in paths:
            data = await asyncio.to_thread(path.read_bytes)
            self._touch()
            await self._linked(client.upload_file(self._session_id, path.name, data), cancellation_token)

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
            self._touch()
            try:
                data = await self._linked(
                    client.download_file(self._session_id, name, path=directory), cancellation_token
                )
            except NotFoundError as exc:
                if isinstance(exc, PoolFullError):
                    raise
                shown = f"{directory}/{name}" if directory else name
                raise FileNotFoundError(f"{shown} does not exist in {MNT_DATA} of the session") from exc
            await asyncio.to_thread(_write_file, destination, data)
            written.append(shown_path)
        return written

    async def get_file_list(self, cancellation_token: CancellationToken | None = None) -> list[str]:
        """Names of the files in ``/mnt/data`` of the session (directories are not listed)."""
        client = self._ensure_client()
        self._touch()
        entries = await self._linked(client.list_files(self._session_id), cancellation_token)
        return [entry.name for entry in entries if not entry.is_directory]

    # ----------------------------------------------------------------- component config

    def _to_config(self) -> ACADynamicSessionsCodeExecutorConfig:
        if self._functions:
            warnings.warn(
                "ACADynamicSessionsCodeExecutor: injected functions are not serialised; pass them "
                "again when loading this component.",
                stacklevel=3,
            )
        if self._credential is not None and self._api_key_env is None:
            warnings.warn(
                "ACADynamicSessionsCodeExecutor: the credential is not serialised; the loaded executor "
                "will use DefaultAzureCredential. Set api_key_env to read a static token from an "
                "environment variable instead.",
                stacklevel=3,
            )
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
        )


# --------------------------------------------------------------------- module helpers


def _session_gone(exc: SessionsHTTPError) -> bool:
    if isinstance(exc, PoolFullError):
        return False
    code = (exc.error_code or "").lower()
    return code in _SESSION_GONE_CODES


def _as_exit_code(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return 1


def _join(parts: Sequence[str]) -> str:
    """Concatenate text pieces, putting a newline between pieces where one is missing."""
    out = ""
    for part in parts:
        if not part:
            continue
        if out and not out.endswith("\n"):
            out += "\n"
        out += part
    return out


def _cut_head(text: str, limit: int) -> tuple[str, bool]:
    """The first ``limit`` characters of ``text`` and whether anything was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def _cut_middle(text: str, limit: int, max_output_chars: int) -> str:
    """Keep the head and the tail (where tracebacks are) of ``text`` within ``limit`` characters.

    The marker counts exactly the characters left out (the marker's own length included in the
    budget), so kept + omitted always equals ``len(text)``.
    """
    omitted = len(text) - limit
    marker = ""
    keep = 0
    # The marker's length depends on the number it shows; two rounds settle any change of digits.
    for _ in range(3):
        marker = f"\n[... {omitted} characters of output omitted (max_output_chars={max_output_chars}) ...]\n"
        keep = max(0, min(len(text), limit - len(marker)))
        if len(text) - keep == omitted:
            break
        omitted = len(text) - keep
    head = keep * 2 // 3
    tail = keep - head
    return text[:head] + marker + (text[len(text) - tail :] if tail else "")


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


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)

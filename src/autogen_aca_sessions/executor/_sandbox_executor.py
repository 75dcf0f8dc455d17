"""``ACASandboxCodeExecutor``: AutoGen code execution in an ACA sandbox that can be suspended.

Each executor holds one sandbox. Python blocks run in a persistent interpreter inside it
(``_sandbox_repl``), so variables live between blocks, across :meth:`suspend`/:meth:`resume`
(memory mode), and across processes: :meth:`save_state` carries the sandbox id, and a new
executor given that state (:meth:`load_state`) continues in the same sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeExecutor, CodeResult

from autogen_aca_sessions.client.errors import NotFoundError, SessionsError, SessionsHTTPError
from autogen_aca_sessions.client.sandboxes import SandboxesClient, SandboxState, ShellResult
from autogen_aca_sessions.executor._sandbox_repl import CLIENT, REPL_DIR, SERVER, TIMEOUT_EXIT_CODE

__all__ = ["ACASandboxCodeExecutor", "ACASandboxCodeResult", "SandboxGoneError"]

_PYTHON = frozenset({"python", "py", "python3"})
_SHELL = frozenset({"sh", "bash", "shell"})
_WORK_DIR = "/root/work"
"""Where blocks run and where uploaded files go in the sandbox."""
_STATE_KEY = "sandbox_id"
_T = TypeVar("_T")


class SandboxGoneError(SessionsError):
    """The executor's sandbox does not exist (a wrong id in the saved state, or it was deleted)."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(
            f"Sandbox '{sandbox_id}' does not exist in this sandbox group (a wrong id, or it was "
            "deleted); its memory and files are gone. Call restart() to continue in a new sandbox."
        )
        self.sandbox_id = sandbox_id


@dataclass
class ACASandboxCodeResult(CodeResult):
    """The result of one ``execute_code_blocks`` call in a sandbox."""

    sandbox_id: str = ""
    """The sandbox the blocks ran in."""
    timed_out: bool = False
    """Whether a block hit the time limit (its partial output is kept; the sandbox stays usable)."""
    blocks: list[CodeResult] = field(default_factory=list)
    """One result per block run, in order (blocks after a failing one are not run)."""


class ACASandboxCodeExecutor(CodeExecutor):
    """Runs ``python`` and ``sh`` blocks in an ACA sandbox, in order; stops at the first failure.

    Args:
        client: The sandbox group's client (not closed by the executor).
        sandbox_id: Continue in this sandbox (as :meth:`load_state` does); None creates one on
            the first block.
        timeout: Seconds per block; at the limit the block is interrupted, its output so far
            is kept, and the interpreter keeps its variables.
        idle_suspend_seconds: With a value, the sandbox suspends itself (memory kept) after that
            long idle, and the next block resumes it.
        image: The public disk image a new sandbox starts from.
        work_dir: The local directory :meth:`download_files` writes into.
    """

    def __init__(
        self,
        client: SandboxesClient,
        *,
        sandbox_id: str | None = None,
        timeout: float = 60.0,
        idle_suspend_seconds: float | None = None,
        image: str = "python-3.12",
        work_dir: str | Path = ".",
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._client = client
        self._sandbox_id = sandbox_id
        self._timeout = timeout
        self._idle = idle_suspend_seconds
        self._image = image
        self._work_dir = Path(work_dir)
        self._lock = asyncio.Lock()
        self._repl_ready = False
        self._suspended = False

    @property
    def sandbox_id(self) -> str | None:
        """The sandbox in use (None until the first block, or after :meth:`restart`)."""
        return self._sandbox_id

    @property
    def timeout(self) -> float:
        """Seconds per block."""
        return self._timeout

    async def save_state(self) -> Mapping[str, Any]:
        """What a new executor needs to continue in the same sandbox (its id)."""
        return {_STATE_KEY: self._sandbox_id}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Continue in the sandbox ``state`` names (from :meth:`save_state`)."""
        sandbox_id = state.get(_STATE_KEY)
        if sandbox_id is not None and not isinstance(sandbox_id, str):
            raise ValueError(f"state['{_STATE_KEY}'] must be a string, not {type(sandbox_id).__name__}")
        self._sandbox_id = sandbox_id
        self._repl_ready = False

    async def start(self) -> None:
        """Nothing to start: the sandbox is created or resumed by the first block."""

    async def stop(self) -> None:
        """Delete the sandbox, unless :meth:`suspend` was the last thing done to it (a suspended
        sandbox is kept for whoever loads this executor's saved state)."""
        async with self._lock:
            if self._sandbox_id is not None and not self._suspended:
                await self._delete()

    async def restart(self) -> None:
        """Delete the sandbox; the next block runs in a new one (no variables, no files)."""
        async with self._lock:
            await self._delete()

    async def suspend(self) -> None:
        """Suspend the sandbox; memory, files and processes are kept until :meth:`resume` (or the
        next block)."""
        async with self._lock:
            if self._sandbox_id is None:
                raise RuntimeError("There is no sandbox to suspend: no block has run yet.")
            sandbox_id = self._sandbox_id
            await self._call(lambda: self._client.stop(sandbox_id))
            self._suspended = True

    async def resume(self) -> None:
        """Resume a suspended sandbox (the next block does it too)."""
        async with self._lock:
            await self._ready()

    async def _delete(self) -> None:
        if self._sandbox_id is None:
            return
        with contextlib.suppress(NotFoundError):
            await self._client.delete(self._sandbox_id)
        self._sandbox_id = None
        self._repl_ready = False
        self._suspended = False

    async def _call(self, make: Callable[[], Awaitable[_T]]) -> _T:
        """Send one request for the sandbox; a wrong or deleted id is :class:`SandboxGoneError`.

        A sandbox that suspended itself (lifecycle policy) between our look at its state and this
        request refuses it with ``SandboxNotRunning`` before running anything, so resuming it and
        sending the request once more cannot run anything twice.
        """
        assert self._sandbox_id is not None
        try:
            try:
                return await make()
            except SessionsHTTPError as exc:
                if exc.error_code != "SandboxNotRunning":
                    raise
                await self._client.resume(self._sandbox_id)
                return await make()
        except NotFoundError as exc:
            raise SandboxGoneError(self._sandbox_id) from exc

    async def _ready(self) -> str:
        """The sandbox id, with the sandbox created or running."""
        if self._sandbox_id is None:
            info = await self._client.create(self._image, idle_suspend_seconds=self._idle)
            self._sandbox_id = info.id
            await self._client.exec_shell(info.id, f"mkdir -p {_WORK_DIR} {REPL_DIR}")
        else:
            sandbox_id = self._sandbox_id
            info = await self._call(lambda: self._client.get(sandbox_id))
            if info.state is not SandboxState.RUNNING:
                await self._call(lambda: self._client.resume(sandbox_id))
        self._suspended = False
        return self._sandbox_id

    async def _ensure_repl(self, sandbox_id: str) -> None:
        if self._repl_ready:
            return
        alive = await self._call(
            lambda: self._client.exec_shell(
                sandbox_id, f"kill -0 $(cat {REPL_DIR}/repl.pid 2>/dev/null) 2>/dev/null"
            )
        )
        if alive.exit_code != 0:
            await self._call(
                lambda: self._client.write_file(sandbox_id, f"{REPL_DIR}/server.py", SERVER.encode())
            )
            await self._call(
                lambda: self._client.write_file(sandbox_id, f"{REPL_DIR}/client.py", CLIENT.encode())
            )
            # The server is up when its pid file is written (after it listens).
            start = (
                f"rm -f {REPL_DIR}/repl.pid; cd {_WORK_DIR} && "
                f"nohup python3 {REPL_DIR}/server.py {REPL_DIR} >{REPL_DIR}/server.log 2>&1 & "
                f"for i in $(seq 100); do [ -s {REPL_DIR}/repl.pid ] && exit 0; sleep 0.05; done; "
                f"cat {REPL_DIR}/server.log; exit 1"
            )
            started = await self._call(lambda: self._client.exec_shell(sandbox_id, start))
            if started.exit_code != 0:
                raise SessionsError(
                    f"The sandbox's Python interpreter did not start: {started.stdout[-500:]}"
                )
        self._repl_ready = True

    async def execute_code_blocks(
        self, code_blocks: list[CodeBlock], cancellation_token: CancellationToken
    ) -> ACASandboxCodeResult:
        """Run the blocks in order in the sandbox; the first failing block stops the rest.

        Raises:
            SandboxGoneError: the sandbox does not exist (wrong or deleted id).
            asyncio.CancelledError: the cancellation token was cancelled (a running Python block
                is interrupted; the interpreter keeps its variables).
        """
        async with self._lock:
            task = asyncio.ensure_future(self._run_blocks(code_blocks))
            cancellation_token.link_future(task)
            try:
                return await task
            except asyncio.CancelledError:
                if self._sandbox_id is not None and self._repl_ready:
                    # Interrupt the block still running in the interpreter, so the next one can run.
                    await self._client.exec_shell(self._sandbox_id, f"kill -INT $(cat {REPL_DIR}/repl.pid)")
                raise

    async def _run_blocks(self, code_blocks: Sequence[CodeBlock]) -> ACASandboxCodeResult:
        sandbox_id = await self._ready()
        results: list[CodeResult] = []
        for block in code_blocks:
            language = block.language.strip().lower()
            if language in _PYTHON:
                await self._ensure_repl(sandbox_id)
                ran = await self._run_python(sandbox_id, block.code)
            elif language in _SHELL:
                ran = await self._run_shell(sandbox_id, block.code, "sh" if language == "sh" else "bash")
            else:
                results.append(CodeResult(exit_code=1, output=f"Unsupported language: {block.language}\n"))
                break
            results.append(CodeResult(exit_code=ran.exit_code, output=_output(ran, self._timeout)))
            if ran.exit_code != 0:
                break
        last = results[-1].exit_code if results else 0
        return ACASandboxCodeResult(
            exit_code=last,
            output="".join(r.output for r in results),
            sandbox_id=sandbox_id,
            timed_out=last == TIMEOUT_EXIT_CODE,
            blocks=results,
        )

    async def _run_python(self, sandbox_id: str, code: str) -> ShellResult:
        block = f"{REPL_DIR}/block_{uuid.uuid4().hex}.py"
        await self._call(
            lambda: self._client.write_file(sandbox_id, block, code.encode("utf-8", "surrogatepass"))
        )
        command = f"python3 {REPL_DIR}/client.py {REPL_DIR} {block} {self._timeout:g}"
        return await self._call(
            lambda: self._client.exec_shell(
                sandbox_id, command, working_directory=_WORK_DIR, timeout=self._timeout + 15
            )
        )

    async def _run_shell(self, sandbox_id: str, code: str, program: str) -> ShellResult:
        script = f"{REPL_DIR}/block_{uuid.uuid4().hex}.sh"
        await self._call(
            lambda: self._client.write_file(sandbox_id, script, code.encode("utf-8", "surrogatepass"))
        )
        command = f"{program} {script}; rc=$?; rm -f {script}; exit $rc"
        ran = await self._call(
            lambda: self._client.exec_shell(
                sandbox_id, command, working_directory=_WORK_DIR, timeout=self._timeout
            )
        )
        if ran.timed_out:
            return ShellResult(TIMEOUT_EXIT_CODE, ran.stdout, ran.stderr, True, ran.truncated)
        return ran

    async def upload_files(self, files: Sequence[Path | str], cancellation_token: CancellationToken) -> None:
        """Copy local files into the sandbox's working directory (by their names)."""
        async with self._lock:
            sandbox_id = await self._ready()
            for file in files:
                path = Path(file)
                data = await asyncio.to_thread(path.read_bytes)
                await self._call(
                    partial(self._client.write_file, sandbox_id, f"{_WORK_DIR}/{path.name}", data)
                )

    async def download_files(self, files: Sequence[str], cancellation_token: CancellationToken) -> list[Path]:
        """Copy files from the sandbox's working directory into ``work_dir``; returns their paths."""
        async with self._lock:
            sandbox_id = await self._ready()
            written: list[Path] = []
            for name in files:
                local = self._work_dir / Path(name).name
                data = await self._call(partial(self._client.read_file, sandbox_id, f"{_WORK_DIR}/{name}"))
                await asyncio.to_thread(local.write_bytes, data)
                written.append(local)
            return written

    async def get_file_list(self, cancellation_token: CancellationToken | None = None) -> list[str]:
        """The names of the files in the sandbox's working directory."""
        async with self._lock:
            sandbox_id = await self._ready()
            entries = await self._call(lambda: self._client.list_files(sandbox_id, _WORK_DIR))
            return sorted(e.name for e in entries if not e.is_directory)


def _output(ran: ShellResult, timeout: float) -> str:
    """The console text of one block: stdout, stderr, then a line on a time limit."""
    text = ran.stdout + ran.stderr
    if text and not text.endswith("\n"):
        text += "\n"
    if ran.exit_code == TIMEOUT_EXIT_CODE:
        text += f"Timed out after {timeout:g} s; the sandbox's interpreter state was kept.\n"
    return text

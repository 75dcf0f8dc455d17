"""``ACASandboxCodeExecutor``: AutoGen code execution in an ACA sandbox that can be suspended.

Each executor holds one sandbox. Python blocks run in a persistent interpreter inside it
(``client.sandbox_python``), so variables live between blocks, across :meth:`suspend`/:meth:`resume`
(memory mode), and across processes: :meth:`save_state` carries the sandbox id, and a new
executor given that state (:meth:`load_state`) continues in the same sandbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeExecutor, CodeResult

from autogen_aca_sessions.client.sandbox_python import (
    TIMEOUT_EXIT_CODE,
    WORK_DIR,
    SandboxGoneError,
    SandboxPython,
)
from autogen_aca_sessions.client.sandboxes import OutputCallback, SandboxesClient, ShellResult

__all__ = ["ACASandboxCodeExecutor", "ACASandboxCodeResult", "SandboxGoneError"]

_PYTHON = frozenset({"python", "py", "python3"})
_SHELL = frozenset({"sh", "bash", "shell"})
_STATE_KEY = "sandbox_id"


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
        on_output: Called (plain or coroutine function) with each
            :class:`~autogen_aca_sessions.client.sandboxes.OutputChunk` of a block's output while
            the block runs; where the server does not stream, once per block at its end.
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
        on_output: OutputCallback | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._client = client
        self._sandbox: SandboxPython | None = (
            SandboxPython(client, sandbox_id) if sandbox_id is not None else None
        )
        self._timeout = timeout
        self._idle = idle_suspend_seconds
        self._image = image
        self._work_dir = Path(work_dir)
        self._lock = asyncio.Lock()
        self._suspended = False
        self._on_output = on_output

    @property
    def sandbox_id(self) -> str | None:
        """The sandbox in use (None until the first block, or after :meth:`restart`)."""
        return self._sandbox.sandbox_id if self._sandbox is not None else None

    @property
    def timeout(self) -> float:
        """Seconds per block."""
        return self._timeout

    async def save_state(self) -> Mapping[str, Any]:
        """What a new executor needs to continue in the same sandbox (its id)."""
        return {_STATE_KEY: self.sandbox_id}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Continue in the sandbox ``state`` names (from :meth:`save_state`)."""
        sandbox_id = state.get(_STATE_KEY)
        if sandbox_id is not None and not isinstance(sandbox_id, str):
            raise ValueError(f"state['{_STATE_KEY}'] must be a string, not {type(sandbox_id).__name__}")
        self._sandbox = SandboxPython(self._client, sandbox_id) if sandbox_id is not None else None

    async def start(self) -> None:
        """Nothing to start: the sandbox is created or resumed by the first block."""

    async def stop(self) -> None:
        """Delete the sandbox, unless :meth:`suspend` was the last thing done to it (a suspended
        sandbox is kept for whoever loads this executor's saved state)."""
        async with self._lock:
            if self._sandbox is not None and not self._suspended:
                await self._delete()

    async def restart(self) -> None:
        """Delete the sandbox; the next block runs in a new one (no variables, no files)."""
        async with self._lock:
            await self._delete()

    async def suspend(self) -> None:
        """Suspend the sandbox; memory, files and processes are kept until :meth:`resume` (or the
        next block)."""
        async with self._lock:
            if self._sandbox is None:
                raise RuntimeError("There is no sandbox to suspend: no block has run yet.")
            await self._sandbox.stop()
            self._suspended = True

    async def resume(self) -> None:
        """Resume a suspended sandbox (the next block does it too)."""
        async with self._lock:
            await self._ready()

    async def _delete(self) -> None:
        if self._sandbox is None:
            return
        await self._sandbox.delete()
        self._sandbox = None
        self._suspended = False

    async def _ready(self) -> SandboxPython:
        """The sandbox, created or running."""
        if self._sandbox is None:
            self._sandbox = await SandboxPython.create(
                self._client, self._image, idle_suspend_seconds=self._idle
            )
        else:
            await self._sandbox.ensure_running()
        self._suspended = False
        return self._sandbox

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
                if self._sandbox is not None:
                    # Interrupt the block still running in the interpreter, so the next one can run.
                    await self._sandbox.interrupt()
                raise

    async def _run_blocks(self, code_blocks: Sequence[CodeBlock]) -> ACASandboxCodeResult:
        sandbox = await self._ready()
        results: list[CodeResult] = []
        for block in code_blocks:
            language = block.language.strip().lower()
            ran: ShellResult
            if language in _PYTHON:
                ran = await sandbox.run_python(block.code, timeout=self._timeout, on_output=self._on_output)
            elif language in _SHELL:
                program = "sh" if language == "sh" else "bash"
                ran = await sandbox.run_shell(
                    block.code, program=program, timeout=self._timeout, on_output=self._on_output
                )
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
            sandbox_id=sandbox.sandbox_id,
            timed_out=last == TIMEOUT_EXIT_CODE,
            blocks=results,
        )

    async def upload_files(self, files: Sequence[Path | str], cancellation_token: CancellationToken) -> None:
        """Copy local files into the sandbox's working directory (by their names)."""
        async with self._lock:
            sandbox = await self._ready()
            for file in files:
                path = Path(file)
                data = await asyncio.to_thread(path.read_bytes)
                await sandbox.call(
                    partial(self._client.write_file, sandbox.sandbox_id, f"{WORK_DIR}/{path.name}", data)
                )

    async def download_files(self, files: Sequence[str], cancellation_token: CancellationToken) -> list[Path]:
        """Copy files from the sandbox's working directory into ``work_dir``; returns their paths."""
        async with self._lock:
            sandbox = await self._ready()
            written: list[Path] = []
            for name in files:
                local = self._work_dir / Path(name).name
                data = await sandbox.call(
                    partial(self._client.read_file, sandbox.sandbox_id, f"{WORK_DIR}/{name}")
                )
                await asyncio.to_thread(local.write_bytes, data)
                written.append(local)
            return written

    async def get_file_list(self, cancellation_token: CancellationToken | None = None) -> list[str]:
        """The names of the files in the sandbox's working directory."""
        async with self._lock:
            sandbox = await self._ready()
            entries = await sandbox.call(partial(self._client.list_files, sandbox.sandbox_id, WORK_DIR))
            return sorted(e.name for e in entries if not e.is_directory)


def _output(ran: ShellResult, timeout: float) -> str:
    """The console text of one block: stdout, stderr, then a line on a time limit."""
    text = ran.stdout + ran.stderr
    if text and not text.endswith("\n"):
        text += "\n"
    if ran.exit_code == TIMEOUT_EXIT_CODE:
        text += f"Timed out after {timeout:g} s; the sandbox's interpreter state was kept.\n"
    return text

"""One sandbox as a place to run code: its persistent Python interpreter and its shell.

Framework-neutral: the AutoGen executor and the Agent Framework tools both run blocks through
:class:`SandboxPython`, so they share one interpreter protocol (``_sandbox_repl``), one rule for
a sandbox that suspended itself, and one error for a sandbox that is gone.
"""

from __future__ import annotations

import contextlib
import shlex
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from autogen_aca_sessions.client._sandbox_repl import (
    GRACE_SECONDS,
    INTERPRETER_ENDED_EXIT_CODE,
    INTERPRETER_KILLED_EXIT_CODE,
    MAX_INLINE_BYTES,
    NEEDS_BASH_EXIT_CODE,
    NO_INTERPRETER_EXIT_CODE,
    REPL_DIR,
    SERVER,
    TIMEOUT_EXIT_CODE,
    block_command,
    start_command,
)
from autogen_aca_sessions.client.errors import NotFoundError, SessionsError, SessionsHTTPError
from autogen_aca_sessions.client.sandbox_stream import OutputCallback
from autogen_aca_sessions.client.sandboxes import SandboxesClient, SandboxState, ShellResult, SuspendMode

__all__ = [
    "TIMEOUT_EXIT_CODE",
    "WORK_DIR",
    "PythonRun",
    "SandboxGoneError",
    "SandboxPython",
    "SandboxSetupError",
]

WORK_DIR = "/root/work"
"""Where blocks run and where uploaded files go in the sandbox."""

_T = TypeVar("_T")


class SandboxGoneError(SessionsError):
    """The sandbox does not exist (a wrong id in a saved state, or it was deleted)."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(
            f"Sandbox '{sandbox_id}' does not exist in this sandbox group (a wrong id, or it was "
            "deleted); its memory and files are gone. Restart to continue in a new sandbox."
        )
        self.sandbox_id = sandbox_id


class SandboxSetupError(SessionsError):
    """The set-up code (injected functions) failed in a new interpreter."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"The set-up code failed in the sandbox's new interpreter: {detail}")
        self.detail = detail
        """What the set-up printed (its traceback)."""


@dataclass(frozen=True)
class PythonRun(ShellResult):
    """The outcome of one Python block: the command's result and what happened to the interpreter."""

    interpreter_restarted: bool = False
    """A new interpreter was started for this block in place of an earlier one, whose variables
    are gone (a Disk-mode suspend or resume, an interpreter killed in between)."""
    interpreter_ended: bool = False
    """The interpreter ended during this block (it did not stop at its time limit, or it crashed
    or was killed): its variables are gone and the next block starts a new one."""


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class SandboxPython:
    """Runs Python blocks (in one interpreter that keeps its variables) and shell scripts in one
    sandbox, resuming it when it suspended itself.

    Not safe for concurrent blocks: callers serialise them (one block at a time per sandbox).
    """

    def __init__(
        self,
        client: SandboxesClient,
        sandbox_id: str,
        *,
        work_dir: str = WORK_DIR,
        setup: str | None = None,
    ) -> None:
        self._client = client
        self._sandbox_id = sandbox_id
        self._work_dir = work_dir
        self._interpreter_started = False
        self._loss_told = False
        self._through_bash = False
        self._setup = setup

    @property
    def sandbox_id(self) -> str:
        """The sandbox this runs in."""
        return self._sandbox_id

    @property
    def client(self) -> SandboxesClient:
        """The sandbox group's client."""
        return self._client

    @property
    def setup(self) -> str | None:
        """Python run in every new interpreter before its first block (injected functions)."""
        return self._setup

    @classmethod
    async def create(
        cls,
        client: SandboxesClient,
        image: str,
        *,
        idle_suspend_seconds: float | None = None,
        suspend_mode: SuspendMode = SuspendMode.MEMORY,
        setup: str | None = None,
    ) -> SandboxPython:
        """A new sandbox from ``image``, its working directory made and its interpreter started
        (with the set-up code run in it).

        Raises:
            SandboxSetupError: the set-up code failed (the sandbox is deleted again).
        """
        info = await client.create(
            image, idle_suspend_seconds=idle_suspend_seconds, suspend_mode=suspend_mode
        )
        made = cls(client, info.id, setup=setup)
        # Started at once: it makes the working directory too, which any first call needs.
        try:
            await made._start_interpreter()
        except BaseException:
            with contextlib.suppress(SessionsError):
                await made.delete()
            raise
        return made

    def forget_interpreter(self) -> None:
        """Look for the interpreter again before the next block (after a disk-mode resume, say)."""
        self._interpreter_started = False

    async def call(self, make: Callable[[], Awaitable[_T]]) -> _T:
        """Send one request for the sandbox; a wrong or deleted id is :class:`SandboxGoneError`.

        A sandbox that suspended itself (lifecycle policy) between our look at its state and this
        request refuses it with ``SandboxNotRunning`` before running anything, so resuming it and
        sending the request once more cannot run anything twice.
        """
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

    async def ensure_running(self) -> None:
        """Resume the sandbox unless it runs."""
        sandbox_id = self._sandbox_id
        info = await self.call(lambda: self._client.get(sandbox_id))
        if info.state is not SandboxState.RUNNING:
            await self.call(lambda: self._client.resume(sandbox_id))

    async def stop(self) -> None:
        """Suspend the sandbox (what it keeps follows its lifecycle's suspend mode)."""
        sandbox_id = self._sandbox_id
        await self.call(lambda: self._client.stop(sandbox_id))

    async def delete(self) -> None:
        """Delete the sandbox (nothing happens when it is already gone)."""
        with contextlib.suppress(NotFoundError):
            await self._client.delete(self._sandbox_id)
        self._interpreter_started = False

    async def _start_interpreter(self) -> bool:
        """Start the interpreter (and run the set-up code in it); True when an earlier one had run
        in this sandbox and is gone, with its variables."""
        sandbox_id, client = self._sandbox_id, self._client
        await self.call(lambda: client.write_file(sandbox_id, f"{REPL_DIR}/server.py", SERVER.encode()))
        started = await self.call(lambda: client.exec_shell(sandbox_id, start_command(self._work_dir)))
        if started.exit_code != 0:
            raise SessionsError(f"The sandbox's Python interpreter did not start: {started.stdout[-500:]}")
        self._interpreter_started = True
        if self._setup is not None:
            ran = await self._send_block(self._setup, timeout=60.0, max_chars=100_000, show_value=False)
            if ran.exit_code != 0:
                raise SandboxSetupError((ran.stderr or ran.stdout)[-2000:])
        return "restarted" in started.stdout

    async def _command(self, command: str, timeout: float, on_output: OutputCallback | None) -> ShellResult:
        """Run ``command`` in the working directory: streamed to ``on_output`` when given."""
        sandbox_id, client, work_dir = self._sandbox_id, self._client, self._work_dir
        if on_output is None:
            return await self.call(
                lambda: client.exec_shell(sandbox_id, command, working_directory=work_dir, timeout=timeout)
            )
        # call() resumes and sends again only on SandboxNotRunning, which the stream raises only
        # when nothing ran (before the upgrade, or before the command started).
        return await self.call(
            lambda: client.exec_stream(
                sandbox_id, command, on_output=on_output, working_directory=work_dir, timeout=timeout
            )
        )

    async def _send_block(
        self,
        code: str,
        *,
        timeout: float,
        max_chars: int,
        show_value: bool,
        on_output: OutputCallback | None = None,
    ) -> ShellResult:
        """One request per block: the command carries the block (a large one is written first)."""
        sandbox_id, client = self._sandbox_id, self._client
        block_id = uuid.uuid4().hex
        data = code.encode("utf-8", "surrogatepass")
        cap = max_chars + 1
        command: str | None = None
        if b"\0" not in data and _is_utf8(data):
            command = block_command(block_id, timeout, cap, show_value, data, None)
        if command is None or len(command.encode()) > MAX_INLINE_BYTES:
            path = f"{REPL_DIR}/block_{block_id}.py"
            await self.call(lambda: client.write_file(sandbox_id, path, data))
            command = block_command(block_id, timeout, cap, show_value, None, path)
            assert command is not None
        # The interpreter interrupts the block at ``timeout`` and ends itself GRACE_SECONDS later:
        # the command's own limit is only a backstop.
        limit = timeout + GRACE_SECONDS + 10
        if self._through_bash:
            return await self._command("exec bash -c " + shlex.quote(command), limit, on_output)
        ran = await self._command(command, limit, on_output)
        if ran.exit_code == NEEDS_BASH_EXIT_CODE:
            # The service's shell is not bash (the command stopped at its first line): from now
            # on every block goes through bash.
            self._through_bash = True
            ran = await self._command("exec bash -c " + shlex.quote(command), limit, on_output)
        return ran

    async def run_python(
        self,
        code: str,
        *,
        timeout: float,
        max_chars: int = 1_000_000,
        show_value: bool = False,
        on_output: OutputCallback | None = None,
    ) -> PythonRun:
        """Run ``code`` in the sandbox's interpreter; at ``timeout`` it is interrupted (exit code
        :data:`TIMEOUT_EXIT_CODE`, output so far kept, variables kept).

        One request per block while the interpreter runs. When none answers (a Disk-mode
        resume, a new sandbox, an interpreter that ended) nothing has run: a new one is started,
        the set-up code runs in it, and the block is sent again; the result says whether an
        earlier interpreter's variables were lost. ``max_chars`` bounds each stream (one more
        character is kept, so a caller can tell a cut); ``show_value`` prints the value of a
        last expression, as an interactive interpreter does. With ``on_output``, the block's
        output reaches it while the block runs (:meth:`SandboxesClient.exec_stream`; once at the
        end where the server does not stream).
        """
        restarted = False
        send = partial(
            self._send_block,
            code,
            timeout=timeout,
            max_chars=max_chars,
            show_value=show_value,
            on_output=on_output,
        )
        ran = await send()
        if ran.exit_code == NO_INTERPRETER_EXIT_CODE:
            # Nothing ran. An interpreter this object had seen is gone (a Disk-mode suspend);
            # one started in another process is known by the pid file it left.
            seen = self._interpreter_started
            restarted = await self._start_interpreter() or seen
            ran = await send()
            if ran.exit_code == NO_INTERPRETER_EXIT_CODE:
                raise SessionsError("The sandbox's Python interpreter started but does not answer.")
        else:
            self._interpreter_started = True
        ended = ran.exit_code in (INTERPRETER_ENDED_EXIT_CODE, INTERPRETER_KILLED_EXIT_CODE)
        if ended:
            # The next block starts a new one; its loss is told now, not again then.
            self._interpreter_started = False
            self._loss_told = True
        elif restarted and self._loss_told:
            restarted = False
            self._loss_told = False
        return PythonRun(
            exit_code=TIMEOUT_EXIT_CODE if ran.exit_code == INTERPRETER_KILLED_EXIT_CODE else ran.exit_code,
            stdout=ran.stdout,
            stderr=ran.stderr,
            timed_out=ran.exit_code in (TIMEOUT_EXIT_CODE, INTERPRETER_KILLED_EXIT_CODE) or ran.timed_out,
            truncated=ran.truncated,
            interpreter_restarted=restarted,
            interpreter_ended=ended,
        )

    async def run_shell(
        self, code: str, *, program: str = "sh", timeout: float, on_output: OutputCallback | None = None
    ) -> ShellResult:
        """Run ``code`` as a script of ``program`` in the working directory; a timeout is exit code
        :data:`TIMEOUT_EXIT_CODE` with the output so far. ``on_output``: as in :meth:`run_python`."""
        sandbox_id, client = self._sandbox_id, self._client
        script = f"{REPL_DIR}/block_{uuid.uuid4().hex}.sh"
        await self.call(lambda: client.write_file(sandbox_id, script, code.encode("utf-8", "surrogatepass")))
        command = f"{program} {script}; rc=$?; rm -f {script}; exit $rc"
        ran = await self._command(command, timeout, on_output)
        if ran.timed_out:
            return ShellResult(TIMEOUT_EXIT_CODE, ran.stdout, ran.stderr, True, ran.truncated)
        return ran

    async def interrupt(self) -> None:
        """Interrupt the Python block that is running (the interpreter keeps its variables)."""
        if self._interpreter_started:
            await self._client.exec_shell(self._sandbox_id, f"read P < {REPL_DIR}/repl.pid && kill -INT $P")

"""Shell commands of a Shell pool's sessions: the counterpart of :meth:`.kernel.Kernel.execute`.

Each command runs as ``bash <file>`` in the session's sandbox with its data directory as the
working directory, under the same limits as a kernel, and is killed (with everything it
started) at its time limit.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from .bubblewrap import SANDBOX_RUN_DIR, PidsCgroup, Sandbox
from .cell import OutputBuffer
from .kernel_folder import kernel_environment
from .outcome import ShellOutput
from .signals import kill_process_group

__all__ = ["SHELL_TIMEOUT_EXIT", "ShellRunner"]

SHELL_SCRIPT = "command.sh"
"""Name of the file a shell command is run from, in the command's private run dir."""
SHELL_TIMEOUT_EXIT = 124
"""Exit status of a shell command killed at its time limit (as ``timeout(1)`` reports)."""


class ShellRunner:
    """Runs shell commands in a pool's sandbox; one per pool, shared by its sessions."""

    def __init__(self, sandbox: Sandbox, *, run_base: Path, hidden: Sequence[Path], egress: bool) -> None:
        self.sandbox = sandbox
        """The pool's resolved sandbox."""
        self.run_base = run_base
        """Where each command's private run directory is made."""
        self.hidden = list(hidden)
        """Host directories commands must not see."""
        self.egress = egress
        """Whether commands may use the network."""

    async def run(
        self,
        command: str,
        *,
        data_dir: Path,
        uid: int | None,
        timeout: float,
        max_output_chars: int,
        groups: set[int] | None = None,
    ) -> ShellOutput:
        """Run ``command`` for the session of ``data_dir`` (and ``uid``); never raises for its failure.

        While it runs, its process group is in ``groups``, so that deleting the session can kill it.
        """
        sandbox = self.sandbox
        cgroup = None
        if sandbox.cgroup is not None and sandbox.limits.max_processes is not None:
            with contextlib.suppress(OSError):
                cgroup = sandbox.cgroup.create(f"sh{uuid.uuid4().hex[:10]}", sandbox.limits.max_processes)
        inner_data = sandbox.data_mount or str(data_dir)
        # The command goes in a file, never in argv: one argument may be at most 128 KiB
        # (E2BIG), and stdin stays /dev/null so that a command reading it cannot eat its own
        # rest. The file lives in a private run dir shown at /run/aca, like a kernel's.
        run_dir = self.run_base / f"sh{uuid.uuid4().hex[:10]}"
        owner = uid if sandbox.drops_privileges else None
        await asyncio.to_thread(_write_shell_script, run_dir, command, owner)
        inner_run = SANDBOX_RUN_DIR if sandbox.sandboxed else str(run_dir)
        spec = sandbox.boot_spec(
            "exec",
            uid=uid,
            with_nproc=cgroup is None or sandbox.drops_privileges,
            argv=["bash", os.path.join(inner_run, SHELL_SCRIPT)],
            die_with_parent=not sandbox.sandboxed,
        )
        env = kernel_environment(data_dir=inner_data, run_dir="/tmp")
        env["PYTHONUNBUFFERED"] = "1"
        cmd = sandbox.command(
            spec,
            data_dir=data_dir,
            run_dir=run_dir,
            hide=self.hidden,
            egress=self.egress,
            env=env,
            cgroup_procs=cgroup / "cgroup.procs" if cgroup is not None else None,
        )
        started = time.monotonic()
        stdout = OutputBuffer(max_output_chars)
        stderr = OutputBuffer(max_output_chars)
        timed_out = False
        try:
            process = await cmd.start(capture_output=True)
            assert process.stdout is not None
            assert process.stderr is not None
            if groups is not None:
                groups.add(process.pid)
            pumps = asyncio.gather(_pump(process.stdout, stdout), _pump(process.stderr, stderr))
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), timeout=timeout)
            except asyncio.TimeoutError:
                timed_out = True
            finally:
                if process.returncode is None or timed_out:
                    kill_process_group(process)
                    await process.wait()
                if groups is not None:
                    groups.discard(process.pid)
            # A background child may hold the pipes open; do not wait for it beyond a moment.
            try:
                await asyncio.wait_for(pumps, timeout=1.0)
            except asyncio.TimeoutError:
                pumps.cancel()
                with contextlib.suppress(BaseException):
                    await pumps
            exit_code = process.returncode if process.returncode is not None else -1
            if exit_code < 0 and not timed_out:
                exit_code = 128 - exit_code
        finally:
            if cgroup is not None:
                await asyncio.to_thread(PidsCgroup.remove, cgroup)
            await asyncio.to_thread(shutil.rmtree, run_dir, True)
        if timed_out:
            exit_code = SHELL_TIMEOUT_EXIT
            stderr.write(f"Command timed out after {timeout:g} s and was killed.\n")
        return ShellOutput(
            exit_code=exit_code,
            stdout=stdout.text(),
            stderr=stderr.text(),
            stdout_length=stdout.total,
            stderr_length=stderr.total,
            duration_ms=int((time.monotonic() - started) * 1000),
            timed_out=timed_out,
        )


async def _pump(stream: asyncio.StreamReader, into: OutputBuffer) -> None:
    # Chunks may split a character: decode incrementally.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            into.write(decoder.decode(b"", final=True))
            return
        into.write(decoder.decode(chunk))


def _write_shell_script(run_dir: Path, command: str, uid: int | None) -> None:
    """Put ``command`` in ``run_dir``, readable only by the session's uid (or the server's)."""
    run_dir.mkdir(mode=0o700)
    script = run_dir / SHELL_SCRIPT
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as handle:
        handle.write(command)
    if uid is not None:
        os.chown(run_dir, uid, uid)
        os.chown(script, uid, uid)

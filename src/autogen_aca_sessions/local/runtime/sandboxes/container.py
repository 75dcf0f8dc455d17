"""One run of a sandbox's processes: bubblewrap, its init, the agent and whatever commands start.

A run lasts from start (or a Disk-mode resume) to a Disk-mode stop or delete. A Memory-mode
suspend freezes the run (cgroup freezer, else SIGSTOP of every process) and resume thaws it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...limits import ResourceLimits
from ..bubblewrap import Sandbox, interpreter_paths
from ..egress import EgressAttachment
from ..signals import die_with_server, kill_process_group
from . import processes
from .agent_client import AgentClient
from .cgroups import CgroupSupport, SandboxCgroup
from .disk import MOUNTS, TMP_BYTES
from .errors import SandboxStartFailed
from .models import SandboxResources

__all__ = ["Container", "ContainerHost"]

_AGENT = Path(__file__).with_name("agent.py")
_START_TIMEOUT_SECONDS = 30.0
_OPEN_FILES = 4096


@dataclass(frozen=True)
class ContainerHost:
    """What every sandbox of a runtime shares: the confinement, the cgroups, where sockets live."""

    bubblewrap: Sandbox
    """The resolved bubblewrap confinement (always sandboxed: the runtime refuses to run without)."""
    cgroups: CgroupSupport
    """The cgroup controllers this server may use."""
    run_base: Path
    """Directory of the agents' listening sockets and bubblewrap logs (hidden from sandboxes)."""
    hide: tuple[Path, ...]
    """Host directories no sandbox may see (the runtime's root, the server's files)."""


def _reshow_under(mountpoint: str) -> list[str]:
    """Options showing again, read-only, the interpreter's directories below ``mountpoint``."""
    args: list[str] = []
    top = Path(mountpoint)
    for needed in interpreter_paths():
        try:
            rel = needed.relative_to(top)
        except ValueError:
            continue
        if rel == Path("."):
            continue
        # Mount points bubblewrap makes itself are 0700: make the parents first, traversable.
        for parent in reversed(rel.parents):
            if parent != Path("."):
                args += ["--perms", "0755", "--dir", str(top / parent)]
        args += ["--ro-bind", str(needed), str(needed)]
    return args


class Container:
    """A started run; make one with :meth:`start`."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        cgroup: SandboxCgroup | None,
        client: AgentClient,
        socket_path: Path,
        log_path: Path,
    ) -> None:
        self.process = process
        """The bubblewrap process (outside the sandbox's namespaces)."""
        self.cgroup = cgroup
        """The run's cgroups, when the machine allows any."""
        self.client = client
        """The agent's client."""
        self.socket_path = socket_path
        self.log_path = log_path
        self.started = time.monotonic()
        """When the run started (``time.monotonic``)."""
        self.frozen = False
        """Whether its processes are frozen (Memory-mode suspend)."""
        self.unenforced: list[str] = []
        self.own_pids: frozenset[int] = frozenset()
        """Host pids of bubblewrap, its init and the agent (never killed as commands)."""
        self.init_pid: int | None = None
        """Host pid of bubblewrap's init inside: ``/proc/<init_pid>/ns/net`` is the sandbox's
        network namespace (for the egress proxy)."""
        """Limits the machine did not let the runtime set through cgroups (rlimits stand in)."""

    @classmethod
    async def start(
        cls,
        host: ContainerHost,
        *,
        name: str,
        disk: Path,
        uid: int | None,
        resources: SandboxResources,
        hostname: str,
        egress: EgressAttachment,
    ) -> Container:
        """Start bubblewrap and the agent on ``disk``; returns once the agent answers.

        ``egress`` is the sandbox's door to the egress proxy: the run gets a loopback-only
        network namespace with the proxy's socket at ``/run/aca-egress``, and the agent is
        started behind the in-namespace forwarder (which ``exec``s it: same pid).
        """
        socket_path = host.run_base / f"{name}.sock"
        log_path = host.run_base / f"{name}.log"
        cgroup: SandboxCgroup | None = None
        unenforced: list[str] = []
        if host.cgroups.v2 is not None or host.cgroups.v1:
            cgroup = await asyncio.to_thread(host.cgroups.create, name)
            unenforced = await asyncio.to_thread(
                cgroup.set_limits,
                memory_bytes=resources.memory_bytes,
                cpu_millicores=resources.cpu_millicores,
                max_processes=resources.max_processes,
            )
        else:
            unenforced = ["memory", "cpu", "pids"]
        # Where no cgroup limits memory or processes, rlimits do (per process, per uid).
        confinement = Sandbox(
            host.bubblewrap.isolation,
            bwrap_path=host.bubblewrap.bwrap_path,
            limits=ResourceLimits(
                memory_bytes=resources.memory_bytes if "memory" in unenforced else None,
                max_processes=resources.max_processes,
                file_size_bytes=resources.disk_bytes,
                open_files=_OPEN_FILES,
            ),
            cgroup=None,
        )
        # The gate replaces the plain --unshare-net: still loopback only, plus the forwarder.
        confinement.egress_gate = egress
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()
            listener.bind(str(socket_path))
            os.chmod(socket_path, 0o600)
            listener.listen(128)
            fd = listener.fileno()
            boot = confinement.boot_spec(
                "script",
                uid=uid,
                with_nproc="pids" in unenforced,
                argv=[str(_AGENT), str(fd)],
            )
            extra: list[str] = ["--hostname", hostname]
            for mountpoint, sub in MOUNTS.items():
                if mountpoint == "/mnt/data":
                    continue  # bubblewrap.Sandbox binds data_dir there
                extra += ["--bind", str(disk / sub), mountpoint, *_reshow_under(mountpoint)]
            extra += ["--size", str(TMP_BYTES), "--perms", "1777", "--tmpfs", "/tmp", *_reshow_under("/tmp")]
            extra += ["--chdir", "/root"]
            command = confinement.command(
                boot,
                data_dir=disk / MOUNTS["/mnt/data"],
                run_dir=None,
                hide=list(host.hide),
                egress=False,
                env=_agent_env(),
                extra_args=extra,
            )
            argv = command.argv
            if cgroup is not None:
                # Join every group before anything forks, so every descendant is counted.
                files = [str(p) for p in cgroup.procs_files]
                script = (
                    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1"; shift; n=$((n-1)); done; exec "$@"'
                )
                argv = ["/bin/sh", "-c", script, "sh", str(len(files)), *files, *argv]
            log = await asyncio.to_thread(os.open, log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=str(command.cwd),
                    env=command.env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    pass_fds=(fd,),
                    preexec_fn=die_with_server(),
                )
            finally:
                os.close(log)
        except OSError as exc:
            listener.close()
            if cgroup is not None:
                await asyncio.to_thread(cgroup.remove)
            raise SandboxStartFailed(f"could not start the sandbox: {exc}") from exc
        # The agent holds the listening socket now; the server only connects by path.
        listener.close()
        container = cls(process, cgroup, AgentClient(socket_path), socket_path, log_path)
        container.unenforced = unenforced
        ping = asyncio.ensure_future(container.client.ping())
        exited = asyncio.ensure_future(process.wait())
        try:
            done, _ = await asyncio.wait(
                {ping, exited}, timeout=_START_TIMEOUT_SECONDS, return_when="FIRST_COMPLETED"
            )
            if ping not in done or ping.exception() is not None:
                raise SandboxStartFailed(f"the sandbox's agent did not start: {container._log_tail()}")
            await asyncio.to_thread(container._protect_agent)
        except BaseException:
            ping.cancel()
            await container.kill()
            raise
        finally:
            exited.cancel()
        return container

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode(errors="replace").strip() or "no output"
        except OSError:
            return "no output"

    def pids(self) -> list[int]:
        """Host pids of the run's processes (blocking)."""
        if self.cgroup is not None:
            return self.cgroup.pids()
        if self.process.returncode is not None:
            return []
        return [self.process.pid, *processes.descendants(self.process.pid)]

    def _protect_agent(self) -> None:
        """Note the run's own processes and shield them from the OOM killer (blocking).

        Called once the agent answered and before any command: bubblewrap, its init and the
        agent are then the whole tree. A command that eats the sandbox's memory is killed,
        not the agent that would answer the next command.
        """
        inside = processes.descendants(self.process.pid)
        self.own_pids = frozenset([self.process.pid, *inside])
        parents = processes.parents_of(inside)
        self.init_pid = next((p for p in inside if parents.get(p) == self.process.pid), None)
        for pid in self.own_pids:
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/oom_score_adj").write_text("-1000")

    def command_pids(self) -> list[int]:
        """Host pids of the commands' processes: everything but bubblewrap, its init and the agent."""
        return [p for p in processes.descendants(self.process.pid) if p not in self.own_pids]

    async def freeze(self) -> None:
        """Stop every process of the run where it is (Memory-mode suspend)."""
        if self.cgroup is not None and self.cgroup.can_freeze:
            await self.cgroup.freeze(True)
        else:
            await asyncio.to_thread(processes.signal_all, self.process.pid, signal.SIGSTOP)
        self.frozen = True

    async def thaw(self) -> None:
        """Let every process go on from where it was frozen."""
        if self.cgroup is not None and self.cgroup.can_freeze:
            await self.cgroup.freeze(False)
        else:
            await asyncio.to_thread(processes.signal_all, self.process.pid, signal.SIGCONT)
        self.frozen = False

    async def kill_commands(self) -> int:
        """Kill every command's processes (the agent stays); returns how many were signalled."""
        pids = await asyncio.to_thread(self.command_pids)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    async def kill(self) -> None:
        """Kill every process of the run and wait for bubblewrap to end; remove its groups."""
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.remove)
        else:
            if self.frozen:
                await asyncio.to_thread(processes.signal_all, self.process.pid, signal.SIGCONT)
            await asyncio.to_thread(processes.signal_all, self.process.pid, signal.SIGKILL)
        kill_process_group(self.process)
        await self.process.wait()
        for path in (self.socket_path, self.log_path):
            with contextlib.suppress(OSError):
                path.unlink()

    def usage(self) -> tuple[int, int, int]:
        """(CPU ns, memory bytes, processes) of the run (blocking)."""
        pids = self.pids()
        cpu: int | None = None
        memory: int | None = None
        if self.cgroup is not None:
            cpu = self.cgroup.cpu_usage_ns()
            memory = self.cgroup.memory_bytes()
        if cpu is None or memory is None:
            proc_cpu, proc_memory = processes.proc_usage(pids)
            cpu = proc_cpu if cpu is None else cpu
            memory = proc_memory if memory is None else memory
        return cpu, memory, len(pids)


def _agent_env() -> dict[str, str]:
    return {
        # The public images serve the server's own Python (images.py): its directory comes first,
        # so ``python3`` in a sandbox is that interpreter, with its packages (pandas, numpy), as
        # the image's description says, not whatever /usr/bin holds.
        "PATH": os.path.dirname(sys.executable)
        + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
    }


def command_env(environment: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The environment of a command: the agent's plus ``environment`` (later pairs win)."""
    env = _agent_env()
    env.update({"TERM": "dumb", "USER": "root", "PYTHONUNBUFFERED": "1"})
    env.update(dict(environment))
    return env

"""How a session's processes are confined: bubblewrap when it works here, else nothing (loudly).

With ``bwrap`` each kernel or shell command sees:

- a read-only view of the host's file system, with a fresh ``/tmp``, its own ``/dev``
  and ``/proc``, and the home directories hidden (only the Python installation inside
  them is shown again, read-only);
- its own data directory, read-write, at ``/mnt/data`` and nothing of the pool root
  (other sessions' directories, the server's private files);
- its own runtime directory (Jupyter's unix sockets) at ``/run/aca``;
- no network unless egress is allowed (then the host's network, as the service does), or,
  with an egress gate (the pool's allowlist, a local extension), loopback only plus the
  egress proxy's forwarder (see ``egress/``);
- its own PID namespace (host processes are invisible), a new terminal session, and
  death when the server dies;
- a user namespace in which it is uid 1000 without any capability;
- resource limits: address space, file size, open files (rlimits set by
  ``_kernel_boot.py``) and the number of processes (a pids cgroup when the server can
  make one, else ``RLIMIT_NPROC``, which is void for processes of the host's root).

Without a sandbox (``sandbox="none"``, or ``"auto"`` where bwrap is missing or broken)
code runs as the server's user with the session's data directory as its working
directory: absolute ``/mnt/data/...`` paths do not work there, only relative ones; the
same rlimits apply. That mode is for development on machines without bubblewrap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Isolation, SandboxMode
from ..limits import ResourceLimits
from .cgroup_tree import own_cgroup_paths, remove_cgroup, sweep_cgroups
from .egress import EgressAttachment
from .signals import die_with_server

__all__ = [
    "BWRAP_PATH",
    "SANDBOX_DATA_DIR",
    "SANDBOX_RUN_DIR",
    "PidsCgroup",
    "ResourceLimits",
    "Sandbox",
    "SandboxCommand",
]

logger = logging.getLogger(__name__)

BWRAP_PATH = "/usr/bin/bwrap"
"""Where bubblewrap is looked for unless the caller names another path."""
SANDBOX_DATA_DIR = "/mnt/data"
"""Where a sandboxed session sees its data directory (as on the real service)."""
SANDBOX_RUN_DIR = "/run/aca"
"""Where a sandboxed kernel sees its runtime directory (connection file and sockets)."""
SANDBOX_UID = 1000
"""The uid code runs as inside the sandbox's user namespace when bwrap is not started by root."""
SESSION_UID_BASE = 1_600_000_000
"""First host uid given to sessions when the server runs as root (one uid per session)."""
SESSION_UID_SPAN = 1_000_000
"""How many session uids are cycled through."""


class PidsCgroup:
    """A pids cgroup (v1 or v2) under which the server makes one child group per kernel."""

    def __init__(self, base: Path) -> None:
        self.base = base
        """The directory the per-kernel groups are made in."""

    @classmethod
    def find(cls) -> PidsCgroup | None:
        """The pids cgroup this process may make child groups in, if any (probed by trying)."""
        candidates: list[Path] = []
        own = own_cgroup_paths()
        if "pids" in own:
            candidates.append(Path("/sys/fs/cgroup/pids") / own["pids"].lstrip("/"))
        if "" in own:
            v2 = Path("/sys/fs/cgroup") / own[""].lstrip("/")
            try:
                if "pids" in (v2 / "cgroup.subtree_control").read_text().split():
                    candidates.append(v2)
            except OSError:
                pass
        for base in candidates:
            probe = base / f"aca-probe-{uuid.uuid4().hex[:8]}"
            try:
                probe.mkdir()
            except OSError:
                continue
            try:
                (probe / "pids.max").write_text("8\n")
                found = cls(base)
                found.sweep()
                return found
            except OSError:
                continue
            finally:
                with contextlib.suppress(OSError):
                    probe.rmdir()
        return None

    def create(self, name: str, max_pids: int) -> Path:
        """Make a group for ``name`` limited to ``max_pids`` tasks; returns its directory.

        The group's name carries this server's pid, so that a later server can remove the
        groups of one that died without cleaning up (see :meth:`sweep`).
        """
        group = self.base / f"aca-{os.getpid()}-{name}"
        group.mkdir(exist_ok=True)
        (group / "pids.max").write_text(f"{max_pids}\n")
        return group

    def sweep(self) -> None:
        """Remove groups left behind by servers that are gone (killed before their cleanup)."""
        sweep_cgroups(self.base, "aca-")

    @staticmethod
    def remove(group: Path) -> None:
        """Kill whatever is left in ``group`` and delete it (best effort, never raises)."""
        if not remove_cgroup(group):
            logger.warning("could not remove cgroup %s", group)


@dataclass
class SandboxCommand:
    """A command ready to start: argv, working directory and environment."""

    argv: list[str]
    """The full command line (bwrap and the boot script included)."""
    cwd: Path
    """The host working directory to start it in."""
    env: dict[str, str] = field(default_factory=dict)
    """The environment it starts with."""

    async def start(
        self, *, capture_output: bool = False, lifeline: int | None = None
    ) -> asyncio.subprocess.Process:
        """Start it with stdin closed, leading a session of its own (the runtime kills the group).

        Its output is discarded unless ``capture_output`` asks for pipes. ``lifeline`` is the read
        end of a pipe whose write end only this process holds, given as stdin: a workload that
        reads its stdin (``cat``) gets end-of-file when this process ends however it ends, and
        exits, which ends bwrap and its pid namespace. ``PR_SET_PDEATHSIG`` alone did not: on this
        project's CI kernel a child whose parent was SIGKILLed was re-parented to init and kept
        running. (A plain descriptor, not ``asyncio.subprocess.PIPE``: asyncio's ``wait()`` would
        then also wait for that pipe to close.)
        """
        output = asyncio.subprocess.PIPE if capture_output else asyncio.subprocess.DEVNULL
        return await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=str(self.cwd),
            env=self.env,
            stdin=lifeline if lifeline is not None else asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
            preexec_fn=die_with_server(),
        )


class Sandbox:
    """The confinement in force for a pool; make one with :meth:`resolve`."""

    def __init__(
        self,
        isolation: Isolation,
        *,
        bwrap_path: str | None,
        limits: ResourceLimits,
        cgroup: PidsCgroup | None,
        warning: str | None = None,
    ) -> None:
        self.isolation = Isolation.parse(isolation)
        """``bwrap`` or ``none``: what is actually in force."""
        self.bwrap_path = bwrap_path
        """The bubblewrap binary in use (``None`` without a sandbox)."""
        self.limits = limits
        """The resource limits every session gets."""
        self.cgroup = cgroup
        """The pids cgroup used for process limits, if the server may make one."""
        self.warning = warning
        """Why code runs unsandboxed, when it does (also logged as a warning)."""
        self.egress_gate: EgressAttachment | None = None
        """The pool's egress gate (its allowlist, a local extension), set by the session runtime:
        then a sandbox without egress gets a loopback-only network whose only way out is the
        egress proxy, instead of no network at all."""

    @property
    def unsandboxed(self) -> bool:
        """True when session code runs without any confinement (a loud state)."""
        return self.isolation is Isolation.NONE

    @property
    def sandboxed(self) -> bool:
        """True when session code runs in bubblewrap."""
        return self.isolation is Isolation.BWRAP

    @classmethod
    def resolve(
        cls,
        mode: SandboxMode | str = SandboxMode.AUTO,
        *,
        bwrap_path: str = BWRAP_PATH,
        limits: ResourceLimits | None = None,
    ) -> Sandbox:
        """Decide what confinement to use (blocking: probes bwrap once; call in a thread).

        ``mode`` is ``"auto"`` (bwrap when it works, else none with a warning), ``"bwrap"``
        (bwrap or ``RuntimeError``) or ``"none"``.
        """
        limits = limits or ResourceLimits()
        mode = SandboxMode.parse(mode)
        cgroup = PidsCgroup.find() if limits.max_processes is not None else None
        if mode is SandboxMode.NONE:
            return cls(Isolation.NONE, bwrap_path=None, limits=limits, cgroup=cgroup)
        if not os.path.exists(bwrap_path) and bwrap_path == BWRAP_PATH:
            bwrap_path = shutil.which("bwrap") or bwrap_path
        problem = _probe_bwrap(bwrap_path)
        if problem is None:
            return cls(Isolation.BWRAP, bwrap_path=bwrap_path, limits=limits, cgroup=cgroup)
        if mode is SandboxMode.BWRAP:
            raise RuntimeError(f"sandbox='bwrap' was asked for but bubblewrap cannot be used: {problem}")
        warning = (
            f"RUNNING SESSION CODE WITHOUT A SANDBOX: {problem}. Code sent to this pool runs "
            "as the server's own user with full access to this machine and its network. "
            "Install bubblewrap (apt-get install bubblewrap) or pass sandbox='none' to silence this."
        )
        logger.warning(warning)
        return cls(Isolation.NONE, bwrap_path=None, limits=limits, cgroup=cgroup, warning=warning)

    @property
    def data_mount(self) -> str | None:
        """Where code sees its data directory, or ``None`` when it sees the host path."""
        return SANDBOX_DATA_DIR if self.sandboxed else None

    @property
    def drops_privileges(self) -> bool:
        """Whether session code runs as its own unprivileged host uid (bwrap started by root).

        Then files only root may read (``/etc/shadow``, the server's secrets) stay closed,
        ``RLIMIT_NPROC`` counts the session's processes, and sessions cannot touch each
        other's files even by path. Started by another user, bwrap maps that user's uid instead.
        """
        return self.sandboxed and os.geteuid() == 0

    def boot_spec(self, mode: str, *, uid: int | None, with_nproc: bool, **extra: object) -> str:
        """The JSON argument of ``_kernel_boot.py``: limits, the uid to become, the workload."""
        spec: dict[str, object] = {"mode": mode, "limits": self.limits.rlimits(with_nproc=with_nproc)}
        if uid is not None and self.drops_privileges:
            spec["uid"] = uid
        spec.update(extra)
        return json.dumps(spec)

    def command(
        self,
        boot_spec: str,
        *,
        data_dir: Path,
        run_dir: Path | None,
        hide: Sequence[Path],
        egress: bool,
        env: dict[str, str],
        cgroup_procs: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> SandboxCommand:
        """The command that runs ``_kernel_boot.py <boot_spec>`` confined to ``data_dir``.

        ``run_dir`` is shown at ``/run/aca`` (kernels keep their sockets there); ``hide``
        lists host directories the code must not see (the pool root, the server's private
        files); ``cgroup_procs`` is the ``cgroup.procs`` file of the group to start in;
        ``extra_args`` are bubblewrap options applied after all of the above (a sandbox of the
        Sandboxes runtime binds its own disk over ``/root`` and ``/home`` with them).
        """
        boot = [sys.executable, str(Path(__file__).with_name("_kernel_boot.py")), boot_spec]
        # Full egress (the service's EgressEnabled) wins over the gate; without bwrap there is
        # no namespace to gate (the session runtime refuses that combination on start).
        gate = self.egress_gate if self.sandboxed and not egress else None
        if self.sandboxed:
            assert self.bwrap_path is not None
            args = self._bwrap_args(data_dir, run_dir, hide, egress, gate)
            argv = [self.bwrap_path, *args, *extra_args, *(gate.wrap(boot) if gate is not None else boot)]
        else:
            argv = boot
        if gate is not None:
            env = {**env, **gate.env}
        cwd = data_dir
        if cgroup_procs is not None:
            # Join the group before anything forks, so every descendant is counted.
            argv = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup_procs), *argv]
        return SandboxCommand(argv=argv, cwd=cwd, env=env)

    def _bwrap_args(
        self,
        data_dir: Path,
        run_dir: Path | None,
        hide: Sequence[Path],
        egress: bool,
        gate: EgressAttachment | None = None,
    ) -> list[str]:
        args = [
            "--ro-bind", "/", "/",
            "--dev", "/dev",
            "--proc", "/proc",
            "--perms", "1777", "--tmpfs", "/tmp",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--cap-drop", "ALL",
            "--die-with-parent",
            "--new-session",
            "--hostname", "sandbox",
        ]  # fmt: skip
        if self.drops_privileges:
            # Privileged bwrap, no user namespace: the boot script keeps only what it needs
            # to switch to the session's own host uid, and then has no capability at all.
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        if not egress and gate is None:
            args.append("--unshare-net")
        private = _private_dirs()
        for hidden in private:
            args += ["--tmpfs", str(hidden)]
        # Re-show, read-only, what the interpreter needs from inside a hidden directory
        # (pyenv lives in /root here; a project's virtualenv lives in its directory; a
        # checkout or virtualenv under /tmp sits below the fresh /tmp).
        homes = [*private, Path("/tmp")]
        for needed in _interpreter_paths():
            home = next((h for h in homes if _is_within(needed, h)), None)
            if home is None:
                continue
            for parent in reversed(needed.relative_to(home).parents):
                if parent != Path("."):
                    args += ["--perms", "0755", "--dir", str(home / parent)]
            args += ["--ro-bind", str(needed), str(needed)]
        # The pool root and the server's private files go last, so nothing re-shows them.
        for hidden in _hidden_dirs(hide):
            if hidden not in private:
                args += ["--tmpfs", str(hidden)]
        if run_dir is not None:
            args += ["--tmpfs", "/run", "--bind", str(run_dir), SANDBOX_RUN_DIR]
        args += ["--tmpfs", "/mnt", "--bind", str(data_dir), SANDBOX_DATA_DIR]
        if gate is not None:
            if run_dir is None:
                args += ["--tmpfs", "/run"]  # the gate's socket is mounted under /run
            args += gate.bwrap_args  # a loopback-only network and the proxy's socket
        args += ["--chdir", SANDBOX_DATA_DIR]
        return args


def _is_within(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
    except ValueError:
        return False
    return True


def _hidden_dirs(extra: Sequence[Path]) -> list[Path]:
    """Existing directories among ``extra`` worth hiding (``/tmp`` is replaced as a whole)."""
    hidden: list[Path] = []
    for candidate in extra:
        try:
            resolved = Path(candidate).resolve()
        except OSError:
            continue
        if not resolved.is_dir() or resolved == Path("/") or _is_within(resolved, Path("/tmp")):
            continue
        if resolved not in hidden:
            hidden.append(resolved)
    return hidden


_SYSTEM_DIRS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/opt",
    "/var",
    "/srv",
)


def _private_dirs() -> list[Path]:
    """Directories hidden because private files live there: homes and the server's cwd.

    The server's working directory is typically a project holding secrets (``.env``);
    it is hidden unless it is a system directory (or one of their parents).
    """
    candidates = [Path("/root"), Path.home()]
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        cwd = Path("/")
    # Hiding a system directory (or a parent of one) would break the sandbox; a directory
    # inside one is fine, the interpreter's own directories are shown again anyway.
    if not any(_is_within(Path(system), cwd) for system in _SYSTEM_DIRS):
        candidates.append(cwd)
    return _hidden_dirs(candidates)


def interpreter_paths() -> tuple[Path, ...]:
    """Directories the sandboxed interpreter needs (re-shown read-only where a mount hides them)."""
    return _interpreter_paths()


@functools.lru_cache(maxsize=1)
def _interpreter_paths() -> tuple[Path, ...]:
    """Directories the kernel's interpreter reads from: prefixes, site-packages, PYTHONPATH."""
    import site

    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)]
    candidates += [*site.getsitepackages(), site.getusersitepackages()]
    candidates += os.environ.get("PYTHONPATH", "").split(os.pathsep)
    # Where this package is imported from (a source checkout's ``src`` for an editable
    # install): the boot and start-up scripts run from there.
    candidates.append(str(Path(__file__).resolve().parents[3]))
    paths: list[Path] = []
    for entry in candidates:
        if not entry:
            continue
        try:
            resolved = Path(entry).resolve()
        except OSError:
            continue
        if resolved.is_dir() and not any(_is_within(resolved, p) for p in paths):
            paths = [p for p in paths if not _is_within(p, resolved)]
            paths.append(resolved)
    return tuple(paths)


_PROBE_ARGS = (
    "--ro-bind", "/", "/",
    "--dev", "/dev",
    "--proc", "/proc",
    "--perms", "1777", "--tmpfs", "/tmp",
    "--unshare-pid",
    "--unshare-net",
    "--cap-drop", "ALL",
    "--die-with-parent",
    "--new-session",
)  # fmt: skip


def _probe_bwrap(bwrap_path: str) -> str | None:
    """Why bwrap at ``bwrap_path`` cannot run a sandbox like ours here, or ``None`` if it can."""
    if not os.path.exists(bwrap_path):
        return f"{bwrap_path} does not exist"
    privileged = os.geteuid() == 0
    mode_args = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if privileged else ["--unshare-user"]
    try:
        proc = subprocess.run(
            [bwrap_path, *_PROBE_ARGS, *mode_args, "/bin/true"],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{bwrap_path} could not be run ({exc})"
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
        return f"{bwrap_path} does not work here ({detail})"
    return None

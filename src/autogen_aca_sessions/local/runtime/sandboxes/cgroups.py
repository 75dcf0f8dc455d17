"""Per-sandbox cgroups: freezer (memory-mode suspend), memory, CPU and pids limits, and stats.

Works with a cgroup v2 hierarchy (``cgroup.freeze``, ``memory.max``, ``cpu.max``, ``pids.max``)
or with v1 controllers mounted one by one under ``/sys/fs/cgroup/<controller>`` (this machine
and CI). Whatever the server may not create (probed by trying, as the session pool does for
pids) is simply absent: the runtime then falls back to signals for suspend, rlimits for
memory and processes, and ``/proc`` for stats, and says so in :attr:`CgroupSupport.missing`.
Every group's name carries the server's pid, so groups left by a killed server can be swept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..cgroup_tree import own_cgroup_paths, remove_cgroup, sweep_cgroups

__all__ = ["CgroupSupport", "SandboxCgroup"]

logger = logging.getLogger(__name__)

_ROOT = Path("/sys/fs/cgroup")
_V1_CONTROLLERS = ("freezer", "memory", "cpu", "cpuacct", "pids")
_CFS_PERIOD_US = 100_000


def _probe(base: Path, check: str) -> bool:
    probe = base / f"aca-sbx-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        return (probe / check).exists()
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


@dataclass(frozen=True)
class CgroupSupport:
    """Which controllers the server may make per-sandbox groups in, and where."""

    v2: Path | None = None
    """The v2 directory to make groups in (with the controllers enabled there), if any."""
    v1: dict[str, Path] = field(default_factory=dict)
    """v1 controller name → directory to make groups in."""
    v2_controllers: frozenset[str] = frozenset()
    """Controllers enabled for children of :attr:`v2`."""

    @classmethod
    def detect(cls) -> CgroupSupport:
        """Probe what this process may create (blocking: call in a thread)."""
        own = own_cgroup_paths()
        if (_ROOT / "cgroup.controllers").exists():
            base = _ROOT / own.get("", "/").lstrip("/")
            try:
                enabled = frozenset((base / "cgroup.subtree_control").read_text().split())
            except OSError:
                enabled = frozenset()
            if _probe(base, "cgroup.freeze"):
                return cls(v2=base, v2_controllers=enabled)
            return cls()
        found: dict[str, Path] = {}
        for name in _V1_CONTROLLERS:
            for mount in (_ROOT / name, _ROOT / "cpu,cpuacct"):
                base = mount / own.get(name, "/").lstrip("/")
                if base.is_dir() and _probe(base, "cgroup.procs"):
                    found[name] = base
                    break
        return cls(v1=found)

    def has(self, controller: str) -> bool:
        """Whether per-sandbox groups get ``controller`` (``freezer``, ``memory``, ``cpu``, ``pids``)."""
        if self.v2 is not None:
            return controller == "freezer" or controller in self.v2_controllers
        return controller in self.v1

    @property
    def missing(self) -> list[str]:
        """Controllers the server cannot use here, for the log and the docs."""
        return [c for c in ("freezer", "memory", "cpu", "pids") if not self.has(c)]

    def create(self, name: str) -> SandboxCgroup:
        """Make the groups of one sandbox run (blocking)."""
        leaf = f"aca-sbx-{os.getpid()}-{name}"
        dirs: dict[str, Path] = {}
        if self.v2 is not None:
            group = self.v2 / leaf
            group.mkdir(exist_ok=True)
            dirs["v2"] = group
        else:
            for controller, base in self.v1.items():
                group = base / leaf
                group.mkdir(exist_ok=True)
                dirs[controller] = group
        return SandboxCgroup(self, dirs)

    def sweep(self) -> None:
        """Remove groups of servers that died without cleaning up (blocking)."""
        bases = [self.v2] if self.v2 is not None else list(self.v1.values())
        for base in bases:
            if base is not None:
                sweep_cgroups(base, "aca-sbx-")


class SandboxCgroup:
    """The groups one sandbox run's processes live in (made by :meth:`CgroupSupport.create`)."""

    def __init__(self, support: CgroupSupport, dirs: dict[str, Path]) -> None:
        self.support = support
        """What the machine allows."""
        self.dirs = dirs
        """Controller (or ``"v2"``) → the group's directory."""

    def _dir(self, controller: str) -> Path | None:
        if "v2" in self.dirs:
            return self.dirs["v2"] if self.support.has(controller) else None
        return self.dirs.get(controller)

    @property
    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process writes its pid to, to join every group."""
        return [d / "cgroup.procs" for d in self.dirs.values()]

    def set_limits(self, *, memory_bytes: int, cpu_millicores: int, max_processes: int) -> list[str]:
        """Apply the limits the machine allows (blocking); returns those that could not be set."""
        unset: list[str] = []
        v2 = "v2" in self.dirs
        writes: list[tuple[str, str, str]] = [
            ("memory", "memory.max" if v2 else "memory.limit_in_bytes", str(memory_bytes)),
            ("pids", "pids.max", str(max_processes)),
        ]
        quota = max(1000, cpu_millicores * _CFS_PERIOD_US // 1000)
        if v2:
            writes.append(("cpu", "cpu.max", f"{quota} {_CFS_PERIOD_US}"))
        else:
            writes.append(("cpu", "cpu.cfs_period_us", str(_CFS_PERIOD_US)))
            writes.append(("cpu", "cpu.cfs_quota_us", str(quota)))
        if v2:
            # No swap: a memory-mode sandbox's memory is what it uses, and limits stay exact.
            writes.append(("memory", "memory.swap.max", "0"))
        for controller, name, value in writes:
            directory = self._dir(controller)
            try:
                if directory is None:
                    raise OSError
                (directory / name).write_text(value)
            except OSError:
                if name != "memory.swap.max" and controller not in unset:
                    unset.append(controller)
        return unset

    def pids(self) -> list[int]:
        """Host pids of every process in the group (blocking)."""
        directory = next(iter(self.dirs.values()), None)
        if directory is None:
            return []
        try:
            return [int(p) for p in (directory / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    @property
    def can_freeze(self) -> bool:
        """Whether the freezer is available for this group."""
        return self._dir("freezer") is not None

    async def freeze(self, frozen: bool) -> None:
        """Freeze or thaw every process, returning once the kernel says it is done."""
        directory = self._dir("freezer")
        assert directory is not None
        if "v2" in self.dirs:
            await asyncio.to_thread((directory / "cgroup.freeze").write_text, "1" if frozen else "0")
            want = f"frozen {1 if frozen else 0}"
            # The kernel finishes freezing asynchronously; its file is read until it says so.
            while want not in await asyncio.to_thread((directory / "cgroup.events").read_text):  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            return
        target = "FROZEN" if frozen else "THAWED"
        state = directory / "freezer.state"
        while True:
            await asyncio.to_thread(state.write_text, target)
            if (await asyncio.to_thread(state.read_text)).strip() == target:
                return
            await asyncio.sleep(0.001)

    def cpu_usage_ns(self) -> int | None:
        """CPU time used by the group, in ns (blocking)."""
        if "v2" in self.dirs:
            with contextlib.suppress(OSError, ValueError, StopIteration):
                text = (self.dirs["v2"] / "cpu.stat").read_text()
                line = next(x for x in text.splitlines() if x.startswith("usage_usec "))
                return int(line.split()[1]) * 1000
            return None
        directory = self.dirs.get("cpuacct")
        with contextlib.suppress(OSError, ValueError, AttributeError):
            return int((directory / "cpuacct.usage").read_text())  # type: ignore[operator]
        return None

    def memory_bytes(self) -> int | None:
        """Memory the group uses now (blocking)."""
        directory = self._dir("memory")
        if directory is None:
            return None
        name = "memory.current" if "v2" in self.dirs else "memory.usage_in_bytes"
        with contextlib.suppress(OSError, ValueError):
            return int((directory / name).read_text())
        return None

    def remove(self) -> None:
        """Kill what is left (thawing it first) and delete the groups (blocking, never raises)."""
        for directory in self.dirs.values():
            if not remove_cgroup(directory):
                logger.warning("could not remove cgroup %s", directory)

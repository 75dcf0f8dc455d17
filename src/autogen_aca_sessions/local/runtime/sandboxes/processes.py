"""A sandbox's processes found through ``/proc`` (where no cgroup could be made for it).

Every process of a sandbox descends from its bubblewrap process: orphans are adopted by
bubblewrap's init inside the sandbox's pid namespace, which itself is bubblewrap's child. So
walking parent links from ``/proc/<pid>/stat`` finds them all, including daemons.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

__all__ = ["descendants", "parents_of", "proc_usage", "signal_all"]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
            # The command name may hold spaces and parentheses: split after the last ')'.
            fields = data[data.rindex(b")") + 2 :].split()
            parents[int(entry)] = int(fields[1])
    return parents


def descendants(root: int) -> list[int]:
    """Pids of every process below ``root`` (not ``root`` itself); blocking."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def signal_all(root: int, sig: signal.Signals) -> int:
    """Send ``sig`` to every descendant of ``root`` until no new one shows up; returns how many.

    A process that forks while the set is being stopped has a child the first pass missed,
    so passes repeat until one finds nothing new (a stopped process cannot fork).
    """
    seen: set[int] = set()
    for _ in range(100):
        fresh = [p for p in descendants(root) if p not in seen]
        if not fresh:
            break
        for pid in fresh:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        seen.update(fresh)
        if sig is not signal.SIGSTOP:
            break
    if sig is signal.SIGSTOP:
        _wait_stopped(seen)
    return len(seen)


def _wait_stopped(pids: set[int], limit_s: float = 5.0) -> None:
    """Wait until each process is stopped (or gone): a signal is delivered when the process next
    runs, so on a busy machine one can still be running for a moment after ``kill`` returned, and
    a suspend must not answer "Suspended" before its processes are."""
    deadline = time.monotonic() + limit_s
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if _state(pid) not in (None, "T", "t", "Z", "X")}
        if pending:
            time.sleep(0.002)


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def proc_usage(pids: list[int]) -> tuple[int, int]:
    """(CPU time in ns, resident memory in bytes) summed over ``pids``; blocking."""
    cpu_ticks = 0
    rss_pages = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
            fields = data[data.rindex(b")") + 2 :].split()
            cpu_ticks += int(fields[11]) + int(fields[12])
            rss_pages += int(fields[21])
    return cpu_ticks * 1_000_000_000 // _CLOCK_TICKS, rss_pages * _PAGE


def parents_of(pids: list[int]) -> dict[int, int]:
    """Parent pid of each of ``pids`` that still exists (blocking)."""
    wanted = set(pids)
    return {pid: ppid for pid, ppid in _parents().items() if pid in wanted}

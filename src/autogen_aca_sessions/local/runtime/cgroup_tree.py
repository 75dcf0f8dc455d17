"""The server's place in the cgroup tree, and removing the groups it made: where this process
sits (per controller), one group removed (kill what is left, then delete it), and the leftovers
of servers that died before their own cleanup. Shared by the sessions' pids groups
(``bubblewrap.PidsCgroup``) and the sandboxes' groups (``sandboxes/cgroups.py``). Blocking:
callers run these in a thread (or once, at start-up).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = ["own_cgroup_paths", "remove_cgroup", "sweep_cgroups"]

_ATTEMPTS = 200
_PAUSE_SECONDS = 0.005


def own_cgroup_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller (``"pids"``, ...), and ``""`` -> its v2 path."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            paths[""] = path
        for name in controllers.split(","):
            if name:
                paths[name] = path
    return paths


def remove_cgroup(group: Path) -> bool:
    """Thaw the group, kill every process left in it and delete it, retrying while killed
    processes finish exiting (about a second at most). True once it is gone; never raises."""
    # A frozen group's processes cannot die: thaw first (v1 freezer and v2 both; a file the
    # group lacks is skipped).
    for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
        with contextlib.suppress(OSError):
            (group / name).write_text(value)
    for _ in range(_ATTEMPTS):
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            group.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            # Not empty yet: killed processes leave the group only once they have exited.
            time.sleep(_PAUSE_SECONDS)
    return False


def sweep_cgroups(base: Path, prefix: str) -> None:
    """Remove the groups in ``base`` named ``{prefix}{pid}-...`` whose server (``pid``) is gone."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        owner = entry.name[len(prefix) :].split("-", 1)[0]
        if not owner.isdigit():
            continue
        try:
            os.kill(int(owner), 0)
            continue  # its server still runs
        except ProcessLookupError:
            pass
        except OSError:
            continue  # alive, under another uid
        remove_cgroup(entry)

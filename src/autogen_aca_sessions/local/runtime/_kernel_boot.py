"""First program run inside a session's sandbox: apply resource limits, then become the workload.

Run as ``python _kernel_boot.py '<json spec>'`` (by path, not as a module, so it works
whether or not the package is importable by the kernel's interpreter). The spec says:

- ``limits``: ``{"RLIMIT_AS": n, ...}`` soft=hard limits to set; inherited by every child.
- ``uid`` (optional): the host uid (and gid) to become once the limits are set; the
  sandbox leaves this script CAP_SETUID/CAP_SETGID for exactly that, and switching drops them.
- ``mode``: ``"kernel"`` starts an IPython kernel in this very process (saves one
  interpreter start-up), ``"exec"`` replaces this process with ``argv``, ``"script"`` runs
  the Python file ``argv[0]`` in this very process as ``__main__`` with ``sys.argv = argv``
  (the Sandboxes runtime's agent; saves an interpreter start-up too).
- ``connection_file`` and ``startup`` (kernel mode): the Jupyter connection file and the
  file ``_kernel_startup.py`` to run before the first cell.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any


def _apply_limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        which = getattr(resource, name, None)
        if which is None:
            continue
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError) as exc:
            print(f"aca-sessions: could not set {name}={value}: {exc}", file=sys.stderr)


def _become(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit("aca-sessions: could not switch to the session's uid")


def _die_with_parent() -> None:
    """Unsandboxed kernels have no bwrap to kill them when the server dies; ask the kernel."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass


def _unbounded_send_queues() -> None:
    """Never drop iopub messages in the kernel (PUB sockets drop at the high-water mark).

    Over unix sockets the kernel outruns a reader quickly (small socket buffers), and a
    print loop with ``flush=True`` lost output. The kernel only queues what the server
    will keep: output beyond the caller's cap is dropped before it is sent.
    """
    import zmq

    original = zmq.Context.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.setsockopt(zmq.SNDHWM, 0)

    zmq.Context.__init__ = init  # type: ignore[method-assign]


def main() -> None:
    spec = json.loads(sys.argv[1])
    _apply_limits(spec.get("limits", {}))
    if "uid" in spec:
        _become(int(spec["uid"]))
    if spec.get("die_with_parent"):
        _die_with_parent()
    if spec["mode"] == "exec":
        argv = spec["argv"]
        os.execvp(argv[0], argv)
    if spec["mode"] == "script":
        import runpy

        sys.argv = list(spec["argv"])
        runpy.run_path(sys.argv[0], run_name="__main__")
        return
    run_kernel(spec["connection_file"], spec["startup"])


def run_kernel(connection_file: str, startup: str) -> None:
    """Become an IPython kernel (never returns); also used by the fork-from-template prototype."""
    # Running a script puts its own directory first on sys.path; user code must not
    # import this package's private modules by accident.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    startup_line = (
        "import runpy as __aca_runpy; "
        f"__aca_runpy.run_path({startup!r}, run_name='__aca_startup__'); "
        "del __aca_runpy"
    )
    _unbounded_send_queues()
    from ipykernel.kernelapp import IPKernelApp
    from traitlets.config import Config

    config = Config()
    config.IPKernelApp.exec_lines = [startup_line]
    config.IPKernelApp.quiet = True
    # History lives in memory: the sandbox's home is not writable and nothing reads it back.
    config.HistoryManager.hist_file = ":memory:"
    sys.argv = [sys.executable, "-f", connection_file]
    app = IPKernelApp.instance(config=config)
    app.initialize(["-f", connection_file])  # type: ignore[no-untyped-call]
    app.start()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()

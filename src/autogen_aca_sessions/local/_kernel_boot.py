"""First program run inside a session's sandbox: apply resource limits, then become the workload.

Run as ``python _kernel_boot.py '<json spec>'`` (by path, not as a module, so it works
whether or not the package is importable by the kernel's interpreter). The spec says:

- ``limits``: ``{"RLIMIT_AS": n, ...}`` soft=hard limits to set; inherited by every child.
- ``mode``: ``"kernel"`` starts an IPython kernel in this very process (saves one
  interpreter start-up), ``"exec"`` replaces this process with ``argv``.
- ``connection_file`` and ``startup`` (kernel mode): the Jupyter connection file and the
  file ``_kernel_startup.py`` to run before the first cell.
"""

from __future__ import annotations

import json
import os
import resource
import sys


def _apply_limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        which = getattr(resource, name, None)
        if which is None:
            continue
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError) as exc:
            print(f"aca-sessions: could not set {name}={value}: {exc}", file=sys.stderr)


def main() -> None:
    spec = json.loads(sys.argv[1])
    _apply_limits(spec.get("limits", {}))
    if spec["mode"] == "exec":
        argv = spec["argv"]
        os.execvp(argv[0], argv)
    # Running a script puts its own directory first on sys.path; user code must not
    # import this package's private modules by accident.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    startup = spec["startup"]
    startup_line = (
        "import runpy as __aca_runpy; "
        f"__aca_runpy.run_path({startup!r}, run_name='__aca_startup__'); "
        "del __aca_runpy"
    )
    from ipykernel.kernelapp import IPKernelApp
    from traitlets.config import Config

    config = Config()
    config.IPKernelApp.exec_lines = [startup_line]
    config.IPKernelApp.quiet = True
    # History lives in memory: the sandbox's home is not writable and nothing reads it back.
    config.HistoryManager.hist_file = ":memory:"
    sys.argv = [sys.executable, "-f", spec["connection_file"]]
    app = IPKernelApp.instance(config=config)
    app.initialize(["-f", spec["connection_file"]])
    app.start()

if __name__ == "__main__":
    main()

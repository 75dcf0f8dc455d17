"""A template process that imports the kernel and the data stack once and forks kernels from it.

Run as ``python _kernel_template.py '<json spec>'`` by
:class:`~._kernel_template_launcher.TemplateKernelLauncher`; the spec names the inherited
file descriptor of one end of a socket pair (``fd``), the modules to import (``preload``),
the kernel start-up file (``startup``) and where the probe's module list is cached
(``probe_cache``, optional). Why: a fresh ipykernel with NumPy, pandas and
matplotlib imported owns ~100 MiB; a kernel forked from here shares those pages
copy-on-write and owns ~15 MiB (``benchmarks/README.md``).

What makes the children small (figures in ``benchmarks/README.md``, the ``memory`` benchmark):
the modules a started kernel loads are imported here; the kernel application's
configuration and its ``InteractiveShell`` are built here (a child only makes its sockets,
threads and kernel object); the kernel's scan of ``sys.modules`` for the debugger is
skipped; ``_kernel_startup.py`` runs here once (each kernel only runs its ``_main`` again);
the free blocks of the small-object heap and the free chunks of the C heap are filled
before ``gc.freeze()`` so that a child's allocations land in pages of its own.

Sandbox: a request may name ``ns_pid``, a process already inside a session's bwrap sandbox
(the launcher's holder). The forked child then joins that process's namespaces, forks once
more so that the kernel is inside the sandbox's pid namespace, and the kernel drops every
capability, becomes the session's uid and sets the session's rlimits before any session
code runs. This process is a child subreaper: kernels whose middle process exited are
re-parented here, so their exit status is reported like that of direct children.

The template stays single-threaded (a fork copies only the calling thread; ``setns`` into
a mount or user namespace is refused to a multi-threaded process).

Protocol (one JSON object per line):

- launcher -> template: ``{"id": n, "connection_file": ..., "cwd": ..., "env": {...},
  "limits": {...}, "ns_pid": p|null, "uid": u|null, "cgroup_procs": path|null}``
- template -> launcher: ``{"ready": modules, "probed": bool}`` once (``probed``: the probe
  kernel ran; false when its module list came from the ``probe_cache`` directory), then
  ``{"id": n, "pid": pid}`` (the kernel's host pid) or ``{"id": n, "error": ...}``, and
  ``{"exited": pid, "status": s}`` for every reaped process (``s`` negative: killed by signal ``-s``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import re
import selectors
import signal
import socket
import sys
import tempfile
from typing import Any

_PR_SET_PDEATHSIG = 1
_PR_CAPBSET_DROP = 24
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_CAPABILITY_VERSION_3 = 0x20080522
_NAMESPACES = {
    # The user namespace first: the others are then entered with its capabilities.
    "user": 0x10000000,
    "ipc": 0x08000000,
    "uts": 0x04000000,
    "net": 0x40000000,
    "cgroup": 0x02000000,
    "pid": 0x20000000,
    # Last: it changes what /proc (and every other path) means.
    "mnt": 0x00020000,
}

_libc = ctypes.CDLL(None, use_errno=True)
_APP: Any = None
"""The kernel application, configured here and finished in each child."""
_BALLAST: list[bytes] = []
"""Fills the template's free small-object blocks; never read, never freed."""


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


# -- preparing the template -------------------------------------------------------------


def _kernel_config(startup: str, *, probe: bool = False) -> Any:
    from traitlets.config import Config

    config = Config()
    config.IPKernelApp.quiet = True
    if probe:
        # The probe kernel runs the start-up file as a kernel does; forked kernels get it
        # from the template (see _run_startup_once).
        config.IPKernelApp.exec_lines = [
            "import runpy as __aca_runpy; "
            f"__aca_runpy.run_path({startup!r}, run_name='__aca_startup__'); "
            "del __aca_runpy"
        ]
    # No history database: a SQLite connection must not be shared across forks, and
    # nothing reads the history back (the shell's In/Out still work).
    config.HistoryManager.enabled = False
    return config


def _probe_modules(startup: str) -> list[str]:
    """The modules a started kernel has loaded, found in a throwaway forked kernel."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_fd)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            from ipykernel.kernelapp import IPKernelApp

            where = tempfile.mkdtemp(prefix="aca-probe-")
            app: Any = IPKernelApp.instance(config=_kernel_config(startup, probe=True))
            app.initialize(
                [
                    "-f",
                    os.path.join(where, "k.json"),
                    "--IPKernelApp.transport=ipc",
                    f"--IPKernelApp.ip={os.path.join(where, 'k')}",
                ]
            )
            if app.shell is not None:
                app.shell.run_cell(
                    "import numpy, pandas, matplotlib.pyplot as plt\nplt.plot([1])\nplt.close('all')\n1",
                    store_history=False,
                )
            with contextlib.suppress(OSError):
                for name in os.listdir(where):
                    os.unlink(os.path.join(where, name))
                os.rmdir(where)
            os.write(write_fd, "\n".join(sorted(sys.modules)).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 1 << 16):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode().split("\n")


_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _probe_cache_path(cache_dir: str, modules: list[str], startup: str) -> str:
    """Where the probe's module list is kept for this interpreter and these installed packages.

    The key changes when anything the list depends on may have: the interpreter (its path and
    version), the modules asked for, the start-up file's text, and the modification time of
    every directory on ``sys.path`` (installing, upgrading or removing a package adds or
    removes entries in its site-packages directory, which changes that directory's time).
    """
    import hashlib

    key = hashlib.sha256()
    key.update(json.dumps([sys.executable, sys.version, modules]).encode())
    with open(startup, "rb") as source:
        key.update(source.read())
    for entry in sys.path:
        with contextlib.suppress(OSError):
            key.update(f"{entry}\0{os.stat(entry or '.').st_mtime_ns}\0".encode())
    return os.path.join(cache_dir, f"template-modules-{key.hexdigest()[:32]}.txt")


def _cached_modules(path: str) -> list[str] | None:
    """The cached module list, or ``None`` when there is none or it is not a list of names."""
    try:
        with open(path, encoding="utf-8") as cached:
            names = cached.read().split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if not names or not all(_MODULE_NAME.fullmatch(name) for name in names):
        return None
    return names


def _store_modules(path: str, names: list[str]) -> None:
    """Keep the module list for the next template (best effort: a cache, not a requirement)."""
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".modules-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write("\n".join(names))
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _preload(modules: list[str], startup: str, probe: bool, cache_dir: str | None) -> tuple[int, bool]:
    """Import ``modules`` and (``probe``) what a started kernel loads; returns the module count
    and whether the throwaway probe kernel ran (False: its list came from ``cache_dir``)."""
    import importlib

    for name in ("ipykernel.ipkernel", "ipykernel.kernelapp", *modules):
        try:
            importlib.import_module(name)
        except Exception as exc:
            print(f"aca-template: could not import {name}: {exc}", file=sys.stderr)
    probed = False
    if probe:
        cache = _probe_cache_path(cache_dir, modules, startup) if cache_dir else None
        names = _cached_modules(cache) if cache is not None else None
        if names is None:
            # The probe is a forked kernel that starts and runs a plotting cell (~0.15 s).
            names = [n for n in _probe_modules(startup) if n != "__main__" and _MODULE_NAME.fullmatch(n)]
            probed = True
            if cache is not None:
                _store_modules(cache, names)
        for name in names:
            if name not in sys.modules:
                with contextlib.suppress(Exception):
                    importlib.import_module(name)
    return len(sys.modules), probed


def _prepare_app(startup: str) -> None:
    """Build every part of a kernel that needs no socket and no thread: config, profile, shell."""
    global _APP
    import ipykernel.debugger
    from ipykernel.compiler import XCachingCompiler
    from ipykernel.kernelapp import IPKernelApp
    from ipykernel.zmqshell import ZMQInteractiveShell
    from IPython.core.application import BaseIPythonApplication

    # Sessions have no debugger (the service has none); it would also keep a module list.
    ipykernel.debugger._is_debugpy_available = False
    app: Any = IPKernelApp.instance(config=_kernel_config(startup))
    # The part of IPKernelApp.initialize that opens nothing; the rest runs in each child.
    BaseIPythonApplication.initialize(app, [])  # type: ignore[no-untyped-call]
    shell: Any = ZMQInteractiveShell.instance(
        parent=app, profile_dir=app.profile_dir, compiler_class=XCachingCompiler
    )
    # The template has no sockets: publishing a traceback would fail, and IPython would then
    # format (with pygments, the costliest part of the start-up) a traceback of that failure
    # too, twice per cell. The formatting of the cells' own tracebacks still runs; only the
    # send is left out here, and the class's method is back for the kernels (deleted below).
    shell._showtraceback = lambda etype, evalue, stb: None
    try:
        # Cells fill the compiler's and the transformers' caches once for every kernel, and
        # import what formats a traceback (stack_data, pygments): a kernel's first interrupted
        # cell would otherwise spend its grace period importing them, and be restarted.
        shell.run_cell("_aca_warm = 1\ndel _aca_warm", store_history=False, silent=True)
        for cell in ("raise KeyboardInterrupt", "1 / 0", "def _aca_f():\n    raise ValueError(1)\n_aca_f()"):
            shell.run_cell(cell, store_history=False)
        shell.user_ns.pop("_aca_f", None)
        # Many cells: CPython 3.11 quickens a code object after a few calls and specialises its
        # instructions in place; done here, the kernels' hot paths do not write to shared pages.
        # No value is displayed: the display hook needs a request's message, which the
        # template never has (it failed at its first line and cost a traceback each cell).
        for _ in range(16):
            shell.run_cell("print(1)\n_aca_value = 1 + 1", store_history=False)
        shell.user_ns.pop("_aca_value", None)
    finally:
        del shell._showtraceback
    shell.last_execution_result = None
    from jupyter_client.session import Session

    # The same for the message signing and (de)serialisation every request goes through.
    warm_session: Any = Session(key=b"warm")
    for _ in range(16):
        parts = warm_session.serialize(warm_session.msg("execute_request", {"code": "1"}))
        _, msg_list = warm_session.feed_identities(parts)
        warm_session.deserialize(msg_list)
    _APP = app
    _run_startup_once(startup)


_STARTUP_MAIN: Any = None
"""The start-up file's ``_main``, run once more in each kernel once its kernel object exists."""


def _run_startup_once(startup: str) -> None:
    """Run ``_kernel_startup.py`` here, so its code, its hooks on the shell and the matplotlib
    integration are shared by every kernel instead of being compiled and made in each.

    Its ``_main`` runs again in each kernel (with the kernel's own working directory,
    streams and kernel object); what it did here to the template's paths is undone.
    """
    global _STARTUP_MAIN
    import runpy

    path, cwd = list(sys.path), os.getcwd()
    try:
        namespace = runpy.run_path(startup, run_name="__aca_startup__")
    finally:
        sys.path[:] = path
        os.chdir(cwd)
    _STARTUP_MAIN = namespace["_main"]


def _free_blocks() -> tuple[dict[int, int], int]:
    """Free blocks per pymalloc size class and unused pools (from ``sys._debugmallocstats``)."""
    with tempfile.TemporaryFile(mode="w+") as out:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    free = {
        int(m.group(1)): int(m.group(2))
        for m in re.finditer(r"^\s*\d+\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s*$", text, re.MULTILINE)
    }
    unused = re.search(r"^(\d+) unused pools \*", text, re.MULTILINE)
    return free, int(unused.group(1)) if unused else 0


def _fill_free_blocks() -> None:
    """Occupy the heap's free small blocks so that a child's new objects do not dirty shared pages."""
    free, unused_pools = _free_blocks()
    for size, count in free.items():
        length = size - 33  # a bytes object of length n takes 33 + n bytes
        if length >= 2:
            _BALLAST.extend(b"\0" * length for _ in range(count))
    _BALLAST.extend(b"\0" * 31 for _ in range(unused_pools * 256))


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost",
        )
    ]  # fmt: skip


_MALLOC_BALLAST: list[int] = []
"""Blocks that fill the free chunks of the template's C heap; never freed."""


def _fill_free_chunks() -> None:
    """Occupy the free chunks of the C heap (objects above pymalloc's 512 bytes live there).

    A child's larger allocations would otherwise be carved out of chunks in pages it shares
    with the template; with them taken, they come from the top of the heap instead.
    """
    try:
        mallinfo2 = _libc.mallinfo2
    except AttributeError:
        return  # glibc older than 2.33
    mallinfo2.restype = _MallInfo2
    malloc = _libc.malloc
    malloc.restype = ctypes.c_void_p
    malloc.argtypes = [ctypes.c_size_t]
    free = _libc.free
    free.argtypes = [ctypes.c_void_p]
    size = 1 << 16
    for _ in range(1 << 20):
        if size < 16:
            return
        info = mallinfo2()
        if info.fordblks - info.keepcost < size:
            size //= 2
            continue
        block = malloc(size)
        if mallinfo2().keepcost != info.keepcost or not block:
            # Carved from the top of the heap: no free chunk of this size is left.
            if block:
                free(block)
            size //= 2
            continue
        _MALLOC_BALLAST.append(block)


# -- the forked child ---------------------------------------------------------------------


def _join_namespaces(ns_pid: int) -> None:
    """Enter every namespace of ``ns_pid`` that differs from ours (the pid one: for children)."""
    fds: list[tuple[str, int]] = []
    for name in _NAMESPACES:
        theirs = f"/proc/{ns_pid}/ns/{name}"
        try:
            if os.readlink(theirs) == os.readlink(f"/proc/self/ns/{name}"):
                continue
            # Opened before any is entered: /proc is the host's only until then.
            fds.append((name, os.open(theirs, os.O_RDONLY)))
        except FileNotFoundError:
            continue
    for name, fd in fds:
        try:
            _check(_libc.setns(fd, _NAMESPACES[name]), f"setns({name})")
        finally:
            os.close(fd)


def _drop_privileges(uid: int | None) -> None:
    """No capability in any set, the session's uid when given, and no way to regain either."""
    for cap in range(64):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL past the last capability this system knows
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid or os.getgid() != uid:
            raise OSError("could not switch to the session's uid")
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")


def _apply_limits(limits: dict[str, int]) -> None:
    import resource

    for name, value in limits.items():
        which = getattr(resource, name, None)
        if which is not None:
            resource.setrlimit(which, (value, value))


def _become_kernel(request: dict[str, Any], devnull: int) -> None:
    """In the final kernel process: confine, then serve (never returns)."""
    os.setsid()  # leads its own group: the runtime kills the group
    if request.get("ns_pid"):
        _drop_privileges(request.get("uid"))
    else:
        # No sandbox init to take it down: die with the template.
        _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
    _apply_limits(request.get("limits") or {})
    os.environ.clear()
    os.environ.update(request.get("env") or {})
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.chdir(request["cwd"])
    # Session code must not import this package's private modules from the script's dir.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.argv = [sys.executable, "-f", request["connection_file"]]
    _run_prepared_kernel(request["connection_file"])


class _NoModuleList:
    """Show ``IPythonKernel.__init__`` an empty ``sys.modules`` while the kernel is built.

    It copies every module's file name for the debugger: in a forked child that writes the
    reference counts of ~1,500 shared objects (~9 MiB of pages become private).
    """

    def __enter__(self) -> None:
        import ipykernel.ipkernel

        real = sys

        class _Empty:
            def copy(self) -> dict[str, Any]:
                return {}

        class _Sys:
            modules = _Empty()

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        module: Any = ipykernel.ipkernel
        module.sys = _Sys()

    def __exit__(self, *exc: object) -> None:
        import ipykernel.ipkernel

        module: Any = ipykernel.ipkernel
        module.sys = sys


def _run_prepared_kernel(connection_file: str) -> None:
    """The steps of ``IPKernelApp.initialize`` after the configuration, then ``start``."""
    app = _APP
    app.connection_file = connection_file
    app.init_pdb()
    app.init_blackhole()
    app.init_connection_file()
    app.init_poller()
    app.init_sockets()
    app.init_heartbeat()
    app.write_connection_file()
    app.log_connection_info()
    app.init_io()
    app.init_signal()
    with _NoModuleList():
        app.init_kernel()
    kernel = app.kernel
    # The kernel got the template's shell (a singleton built without a kernel): attach it.
    kernel.shell.kernel = kernel
    kernel.shell.parent = kernel
    app.init_path()
    app.init_shell()
    if app.shell is not None:
        app.init_gui_pylab()
        app.init_extensions()
        app.init_code()
    # The shell's matplotlib integration was made in the template (it is the same shell);
    # hidden from the start-up file, it is not made a second time in every kernel.
    inline = sys.modules.pop("matplotlib_inline.backend_inline", None)
    try:
        _STARTUP_MAIN()
    finally:
        if inline is not None:
            sys.modules["matplotlib_inline.backend_inline"] = inline
    app.start()


def _child(request: dict[str, Any], report: int, close: list[Any]) -> None:
    """In the forked child. Never returns: becomes the kernel, or (sandboxed) the middle
    process that forks the kernel inside the sandbox's pid namespace and exits."""
    status = 1
    try:
        for item in close:
            if isinstance(item, int):
                os.close(item)
            else:
                item.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        devnull = os.open(os.devnull, os.O_RDWR)
        if request.get("cgroup_procs"):
            # Before the next fork, so that the kernel and all it starts are counted.
            with open(request["cgroup_procs"], "w") as procs:
                procs.write(str(os.getpid()))
        ns_pid = request.get("ns_pid")
        if ns_pid:
            _join_namespaces(int(ns_pid))
            inner = os.fork()
            if inner != 0:
                os.write(report, f"{inner}\n".encode())
                status = 0
                return
            os.close(report)
        else:
            os.write(report, f"{os.getpid()}\n".encode())
            os.close(report)
        _become_kernel(request, devnull)
        status = 0
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(report, f"E{exc!r}\n".encode())
        with contextlib.suppress(OSError):
            os.write(2, f"aca-template: kernel start failed: {exc!r}\n".encode())
    finally:
        os._exit(status)


# -- the serving loop -----------------------------------------------------------------


def main() -> None:
    spec = json.loads(sys.argv[1])
    _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
    # Sandboxed kernels outlive their middle process: they are re-parented here and reaped.
    _check(_libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "PR_SET_CHILD_SUBREAPER")
    channel = socket.socket(fileno=int(spec["fd"]))
    if os.getppid() != int(spec.get("parent", os.getppid())):
        return  # the launcher died before PR_SET_PDEATHSIG took effect
    import _kernel_boot  # type: ignore[import-not-found]  # this script's directory is on sys.path

    _kernel_boot._unbounded_send_queues()
    startup = str(spec["startup"])
    count, probed = _preload(
        list(spec.get("preload", [])), startup, bool(spec.get("probe", True)), spec.get("probe_cache")
    )
    _prepare_app(startup)
    gc.collect()
    # Filling one size class can open a pool of another: a few passes settle it.
    for _ in range(3):
        _fill_free_blocks()
    _fill_free_chunks()
    # Objects alive now are never walked by a child's collector, so their pages stay shared.
    gc.freeze()

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(channel, selectors.EVENT_READ, "channel")
    selector.register(wake_read, selectors.EVENT_READ, "signal")

    def send(message: dict[str, Any]) -> None:
        channel.sendall((json.dumps(message) + "\n").encode())

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            send({"exited": pid, "status": code})

    def start_kernel(request: dict[str, Any]) -> dict[str, Any]:
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            return {"id": request["id"], "error": f"fork failed: {exc}"}
        if pid == 0:
            _child(request, write_fd, [selector, channel, wake_read, wake_write, read_fd])
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as answer:
            line = answer.readline().decode(errors="replace").strip()
        if line.isdigit():
            return {"id": request["id"], "pid": int(line)}
        return {"id": request["id"], "error": line[1:] if line else "the kernel process exited at once"}

    send({"ready": count, "probed": probed})
    pending = b""
    while True:
        for key, _ in selector.select():
            if key.data == "signal":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 4096)
                reap()
                continue
            try:
                chunk = channel.recv(1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                return  # the launcher is gone; PR_SET_PDEATHSIG takes the kernels down
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                send(start_kernel(json.loads(line)))
            # Middle processes exit at once; reap them now rather than at the next wake-up.
            reap()


if __name__ == "__main__":
    main()

"""Prototype: a template process that pre-imports the data stack and forks kernels from it.

Why: a plain ipykernel with NumPy, pandas and matplotlib imported holds 100-120 MiB of
unique memory, nearly all of it the same module code and objects in every kernel. A
template that imports the stack once and forks each kernel shares those pages copy-on-write,
so a kernel only owns what it writes after the fork.

Run as ``python fork_template.py SOCKET``; it prints ``READY`` on stdout when it listens.
Each request on the Unix socket is one JSON line
``{"connection_file": "...", "cwd": "...", "log": "...", "ns_pid": null, "uid": null,
"env": null, "limits": {}, "cgroup_procs": null}`` and the answer is one JSON line
``{"pid": N}`` (the kernel's host pid) or ``{"error": "..."}``. ``ns_pid``, when given, is the
pid of a process already inside a sandbox (the pool's own ``bwrap`` command running
``sleep infinity``): the forked kernel joins that process's namespaces, becomes ``uid``
without any capability, takes ``env`` and the rlimits ``limits``, and only then starts;
that is how the sandbox is kept (see ``benchmarks/README.md``).

The template stays single-threaded on purpose: ``fork`` from a process with threads only
copies the calling thread and can leave locks held for ever in the child.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import signal
import socket
import sys
import tempfile
from typing import Any

# What the kernel's own start-up sets; set here so the modules imported below see the
# same environment as in a kernel (the inline backend, no GUI).
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

KERNEL_ARGS = ["--HistoryManager.enabled=False", "--IPKernelApp.quiet=True"]
"""Options every forked kernel starts with. History off: its SQLite file and writer thread
cost memory per kernel and give an agent nothing."""

_CLONE_FLAGS = {
    "user": 0x10000000,
    "mnt": 0x00020000,
    "ipc": 0x08000000,
    "uts": 0x04000000,
    "net": 0x40000000,
    "pid": 0x20000000,
    "cgroup": 0x02000000,
}


def _probe_kernel_modules() -> list[str]:
    """The modules a started kernel has loaded, found in a throwaway forked child.

    Importing them all in the template moves their code objects and module state into
    shared pages; anything a kernel imports only after the fork is private to it.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            from ipykernel.kernelapp import IPKernelApp

            tmp = tempfile.mkdtemp()
            app: Any = IPKernelApp.instance()
            app.initialize(["-f", os.path.join(tmp, "probe.json"), *KERNEL_ARGS])
            shell = app.shell
            if shell is not None:
                shell.run_cell("import numpy, pandas, matplotlib.pyplot as plt\n1+1", store_history=False)
            names = "\n".join(sorted(sys.modules)).encode()
            os.write(write_fd, names)
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while True:
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode().split("\n")


class _NoModuleScan:
    """Hide ``sys.modules`` from ``IPythonKernel.__init__`` while the kernel is built.

    The kernel lists the file of every loaded module for its debugger. In a forked child that
    one line increments the reference count of ~1,500 module objects and their ``__file__``
    strings, each on its own page of the template's heap: ~9 MiB of shared pages become
    private. The list only serves the debugger, which the template turns off.
    """

    def __init__(self) -> None:
        import ipykernel.ipkernel

        self._module: Any = ipykernel.ipkernel
        self._real_sys = self._module.sys

    def __enter__(self) -> None:
        real = self._real_sys

        class _Modules:
            def copy(self) -> dict[str, Any]:
                return {}

        class _Sys:
            modules = _Modules()

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        self._module.sys = _Sys()

    def __exit__(self, *exc: object) -> None:
        self._module.sys = self._real_sys


_APP: Any = None
"""The kernel application, configured in the template (``lean`` mode) and finished in each child."""


def _prepare_lean_app() -> None:
    """Build, in the template, every part of a kernel that needs no socket and no thread.

    The configuration parse, the profile directory and the ``InteractiveShell`` (the biggest
    object graph a kernel owns) are made once here, warmed by running a cell, and inherited
    by every child; a child then only makes its sockets, threads and the kernel object.
    """
    global _APP
    import ipykernel.debugger
    import ipykernel.ipkernel
    from ipykernel.compiler import XCachingCompiler
    from ipykernel.kernelapp import IPKernelApp
    from ipykernel.zmqshell import ZMQInteractiveShell
    from IPython.core.application import BaseIPythonApplication

    # No debugger in a session (the service has none): it would also keep the module list.
    ipykernel.debugger._is_debugpy_available = False
    app: Any = IPKernelApp.instance()
    # Only the part of IPKernelApp.initialize that touches no socket: the rest runs per child.
    base: Any = BaseIPythonApplication
    base.initialize(app, list(KERNEL_ARGS))
    shell: Any = ZMQInteractiveShell.instance(
        parent=app, profile_dir=app.profile_dir, compiler_class=XCachingCompiler
    )
    # Compile and run a cell once so the caches it fills (AST transformers, the compiler's
    # flags, regexes) are shared instead of built again in every kernel.
    shell.run_cell("_warm = 1\ndel _warm", store_history=False, silent=True)
    _APP = app


def _run_lean_kernel(connection_file: str) -> None:
    """Finish the pre-built application in a forked child and serve for ever.

    The steps are those of ``IPKernelApp.initialize`` after the configuration parse, in the
    same order; only the kernel construction is wrapped (see ``_NoModuleScan``) and the
    template's shell is attached to the new kernel.
    """
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
    with _NoModuleScan():
        app.init_kernel()
    kernel = app.kernel
    # IPythonKernel asked for the singleton shell and got the template's one, built without a
    # kernel: point it at this child's kernel.
    kernel.shell.kernel = kernel
    kernel.shell.parent = kernel
    app.init_path()
    app.init_shell()
    if app.shell is not None:
        app.init_gui_pylab()
        app.init_extensions()
        app.init_code()
    sys.stdout.flush()
    sys.stderr.flush()
    app.start()


def preload(stack: bool = True, probe: bool = True) -> int:
    """Import the kernel and (optionally) the data stack; returns how many modules are loaded."""
    import ipykernel.ipkernel
    import ipykernel.kernelapp  # noqa: F401

    if stack:
        import importlib

        for module in ("numpy", "pandas", "matplotlib", "matplotlib.pyplot"):
            importlib.import_module(module)
    if probe:
        for name in _probe_kernel_modules():
            if not name or name in sys.modules or name == "__main__":
                continue
            try:
                __import__(name)
            except Exception:
                continue
    return len(sys.modules)


def _join_namespaces(ns_pid: int) -> None:
    """Enter the namespaces of ``ns_pid`` (a process already in the sandbox).

    Must run in the freshly forked, still single-threaded child: ``setns`` into a user or
    mount namespace is refused to a multi-threaded process.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    # The user namespace first so that the others are entered with its capabilities.
    # Opened first: /proc is the host's only until the mount namespace changes.
    fds = {}
    for name in ("user", "ipc", "uts", "net", "pid", "mnt"):
        path = f"/proc/{ns_pid}/ns/{name}"
        try:
            if os.readlink(path) == os.readlink(f"/proc/self/ns/{name}"):
                continue
        except OSError:
            continue
        fds[name] = os.open(path, os.O_RDONLY)
    for name, fd in fds.items():
        try:
            if libc.setns(fd, _CLONE_FLAGS[name]) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns({name}) failed: {os.strerror(err)}")
        finally:
            os.close(fd)
    # setns(mnt) resets root and cwd to the namespace's root, which bwrap pivoted to the
    # sandbox's tree; the cwd is set again from the request afterwards.
    os.chdir("/")


_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _drop_privileges(uid: int | None) -> None:
    """What the pool's sandboxed kernels get: the session's own uid (when the pool runs as
    root), no capability in any set (bwrap's ``--cap-drop ALL``), and no way back.

    The child joined the sandbox's namespaces as the template's user (root, with every
    capability); a kernel must run as the one bwrap starts would.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):
        # Fails with EINVAL past the last capability this kernel knows: that is the end.
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        # From root to a non-zero uid: the permitted and effective sets are cleared too.
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise OSError("could not switch to the session's uid")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)(0, 0, 0, 0, 0, 0)
    if libc.capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset failed: {os.strerror(err)}")
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"PR_SET_NO_NEW_PRIVS failed: {os.strerror(err)}")


def _apply_limits(limits: dict[str, int]) -> None:
    import resource

    for name, value in limits.items():
        which = getattr(resource, name, None)
        if which is not None:
            resource.setrlimit(which, (value, value))


def _child(listener: socket.socket, conn: socket.socket, request: dict[str, Any], pid_pipe: int) -> None:
    """Runs in the forked child: become a kernel (or, when sandboxed, the middle process that
    starts it inside the sandbox's pid namespace). Never returns."""
    code = 1
    try:
        listener.close()
        conn.close()
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # Host paths: opened before the mount namespace changes.
        log = os.open(request.get("log") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        devnull = os.open(os.devnull, os.O_RDONLY)
        if request.get("cgroup_procs"):
            # Before the fork below, so the kernel and everything it starts are counted.
            with open(request["cgroup_procs"], "w") as procs:
                procs.write(str(os.getpid()))
        ns_pid = request.get("ns_pid")
        if ns_pid:
            _join_namespaces(int(ns_pid))
            # setns(pid) only applies to children: the kernel is the next fork. This middle
            # process reports its host pid and exits at once, so the kernel is adopted (and
            # later reaped) by the sandbox's own init, and dies with it.
            inner = os.fork()
            if inner != 0:
                os.write(pid_pipe, f"{inner}\n".encode())
                os._exit(0)
            _drop_privileges(request.get("uid"))
        else:
            os.write(pid_pipe, f"{os.getpid()}\n".encode())
        os.close(pid_pipe)
        _apply_limits(request.get("limits") or {})
        if request.get("env") is not None:
            os.environ.clear()
            os.environ.update(request["env"])
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request.get("cwd") or "/")
        sys.argv = ["ipykernel_launcher", "-f", request["connection_file"], *KERNEL_ARGS]
        if _APP is not None:
            _run_lean_kernel(request["connection_file"])
        else:
            from ipykernel.kernelapp import IPKernelApp

            IPKernelApp.launch_instance(argv=sys.argv[1:])
        code = 0
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"forked kernel failed: {exc!r}\n".encode())
    finally:
        os._exit(code)


_BALLAST: list[Any] = []
"""Objects that fill the template's free pymalloc blocks; never used, never freed."""


def _pymalloc_free_blocks() -> tuple[dict[int, int], int]:
    """Free blocks per size class, and unused pools, as ``sys._debugmallocstats`` reports."""
    import re

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
    free: dict[int, int] = {}
    for match in re.finditer(r"^\s*\d+\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s*$", text, re.MULTILINE):
        free[int(match.group(1))] = int(match.group(2))
    unused = re.search(r"^(\d+) unused pools \*", text, re.MULTILINE)
    return free, int(unused.group(1)) if unused else 0


def fill_free_blocks() -> int:
    """Fill the free blocks of the template's small-object heap with ballast; returns bytes.

    A child's first small allocations would otherwise go into those blocks, in pages it
    shares with the template, and each such page becomes private; with them full, a child
    allocates from fresh arenas of its own and leaves the shared pages alone.
    """
    free, unused_pools = _pymalloc_free_blocks()
    used = 0
    for size, count in free.items():
        # A bytes object of length n asks pymalloc for 33 + n bytes: that lands in class `size`.
        length = size - 33
        if length < 2:
            continue
        for _ in range(count):
            _BALLAST.append(b"\0" * length)
        used += size * count
    # Unused pools: taken by whichever size class needs one next; fill them with one class.
    per_pool = 16384 // 64
    for _ in range(unused_pools * per_pool):
        _BALLAST.append(b"\0" * (64 - 33))
    used += unused_pools * 16384
    return used


def serve(
    path: str,
    stack: bool = True,
    freeze: bool = True,
    probe: bool = True,
    lean: bool = True,
    ballast: bool = True,
) -> None:
    """Preload, freeze the heap, then fork one kernel per request, for ever."""
    count = preload(stack=stack, probe=probe)
    if lean:
        _prepare_lean_app()
    # Everything allocated so far goes to the permanent generation: the collector in a child
    # never walks (and so never writes to) those objects, keeping their pages shared.
    gc.collect()
    if ballast:
        # Filling one class can open a new pool of another: a few passes settle it.
        for _ in range(3):
            fill_free_blocks()
    if freeze:
        gc.freeze()
    # Children are reaped by the kernel; the template only needs them gone from the table.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    listener.bind(path)
    listener.listen(64)
    print(f"READY {os.getpid()} modules={count}", flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            if not data:
                continue
            if data.strip() == b"quit":
                break
            try:
                request = json.loads(data)
            except ValueError as exc:
                conn.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
                continue
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _child(listener, conn, request, write_fd)
            os.close(write_fd)
            # The kernel's host pid: the child itself, or the grandchild inside the sandbox.
            with os.fdopen(read_fd) as answer:
                line = answer.readline().strip()
            if line:
                conn.sendall(json.dumps({"pid": int(line)}).encode() + b"\n")
            else:
                conn.sendall(json.dumps({"error": "the kernel could not be started"}).encode() + b"\n")
    listener.close()


def main(argv: list[str]) -> None:
    """Entry point: ``fork_template.py SOCKET [--no-stack|--no-freeze|--no-probe|--no-lean|--no-ballast]``."""
    serve(
        argv[0],
        stack="--no-stack" not in argv,
        freeze="--no-freeze" not in argv,
        probe="--no-probe" not in argv,
        lean="--no-lean" not in argv,
        ballast="--no-ballast" not in argv,
    )


if __name__ == "__main__":
    main(sys.argv[1:])

"""The persistent Python interpreter run inside a sandbox, and the shell command that reaches it.

Both are text sent into the sandbox; nothing here runs in the caller's process.

Why a shell command and not a Python client: a block is one ``executeShellCommand`` whose
command is the block itself, handed to the interpreter by shell builtins only (``read``,
``printf``, ``test``, redirections). No program starts per block (a ``python3`` client cost
~5-7 ms of start-up on every block, most of a warm block's time), and no file is written first
(one request per block instead of two).

The protocol (``REPL_DIR``):

- ``server.py`` (``SERVER``) holds two FIFOs open read-write, so neither side's ``open`` ever
  waits for the other: ``req`` (requests in) and ``done`` (one ``<id> <client pid> <exit
  code>`` line out per block; a client that reads another's line while that one still waits
  puts it back). It keeps ``req`` at descriptor ``REQ_FD`` as well: a client believes the pid in
  ``repl.pid`` only when ``/proc/<pid>/fd/<REQ_FD>`` is that very FIFO, so a pid reused after a
  Disk-mode resume (a fresh pid namespace) or a dead server is never mistaken for the
  interpreter, and a client never blocks on a FIFO nobody reads.
- A request is ``<id> <client pid> <time limit> <output cap> <show value> <source>\\n`` where
  source is a byte count (the code follows inline) or ``@<path>`` (a block too large for one
  command argument, written as a file first). The server opens the client's own stdout and
  stderr (``/proc/<pid>/fd/7`` and ``8``, copies of 1 and 2: while ``printf`` writes the
  request, 1 is the FIFO). During the block its descriptors 1 and 2 are pipes, shared by
  ``print`` and the block's child processes (``subprocess.run``, ``os.system``), which a pump
  thread copies to the client's output as it is written (what a streaming caller needs), in
  the order it was written, at most the cap. When the block ends, 1 and 2 go back to the log:
  what a background child writes later goes there, so it neither holds the command open nor
  dies of a closed pipe. Output written in the instant before the interpreter itself dies may
  be lost with the pump.
- At the time limit a watchdog thread interrupts the main thread (``KeyboardInterrupt``; the
  variables stay). A block that does not stop within ``GRACE`` seconds more (a C call that never
  checks for signals, a swallowed interrupt) ends the interpreter itself: the answer says so and
  the next block starts a new interpreter.

Client exit codes beyond the block's own (``sys.exit`` codes pass through): ``TIMEOUT_EXIT_CODE``
after the time limit, ``NO_INTERPRETER_EXIT_CODE`` when no interpreter answers (nothing ran),
``INTERPRETER_ENDED_EXIT_CODE`` when it ended during the block, and
``INTERPRETER_KILLED_EXIT_CODE`` when it was ended for not stopping at the limit.
"""

from __future__ import annotations

import shlex

__all__ = [
    "INTERPRETER_ENDED_EXIT_CODE",
    "INTERPRETER_KILLED_EXIT_CODE",
    "MAX_INLINE_BYTES",
    "NO_INTERPRETER_EXIT_CODE",
    "REPL_DIR",
    "REQ_FD",
    "SERVER",
    "TIMEOUT_EXIT_CODE",
    "block_command",
    "start_command",
]

REPL_DIR = "/root/.aca_repl"
"""Where the server, its FIFOs, its pid and large block files live in the sandbox."""

REQ_FD = 250
"""The descriptor at which the server keeps its request FIFO (the clients' liveness check)."""

TIMEOUT_EXIT_CODE = 124
"""The block's exit code after its time limit (as coreutils ``timeout``)."""

NO_INTERPRETER_EXIT_CODE = 252
"""No interpreter answers in the sandbox; the block was not sent."""

INTERPRETER_KILLED_EXIT_CODE = 253
"""The block did not stop after its time limit; the interpreter ended itself (variables lost)."""

INTERPRETER_ENDED_EXIT_CODE = 254
"""The interpreter ended while the block ran (``os._exit``, a crash, the OOM killer)."""

MAX_INLINE_BYTES = 100_000
"""Largest command sent inline; Linux refuses one argument (``bash -c <command>``) over 128 KiB."""

GRACE_SECONDS = 5.0
"""How long a block may go on after its interrupt at the time limit before the interpreter ends."""

SERVER = r"""
import ast, io, linecache, os, select, signal, sys, threading, traceback
DIR, GRACE, REQ_FD = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
REQ, DONE = os.path.join(DIR, "req"), os.path.join(DIR, "done")
for path in (REQ, DONE):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.mkfifo(path, 0o600)
fd = os.open(REQ, os.O_RDWR)
os.dup2(fd, REQ_FD, inheritable=False)
os.close(fd)
done_fd = os.open(DONE, os.O_RDWR)
requests = io.open(REQ_FD, "rb", closefd=False)
# Between blocks descriptors 1 and 2 (and so print(), and children) go to the log.
log_fd = os.dup(1)

class Out(io.TextIOBase):
    # sys.stdout / sys.stderr: straight to descriptor 1 or 2, no buffer to lose at an interrupt.
    # During a block those are pipes the pump forwards, shared with the block's child processes,
    # so Python's output and a child's arrive in the order they were written.
    def __init__(self, number, name):
        self.number, self.name = number, name
    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = text.encode("utf-8", "backslashreplace")
        try:
            while data:
                data = data[os.write(self.number, data):]
        except OSError:
            pass
        return len(text)
    def writable(self):
        return True
    def isatty(self):
        return False
    def fileno(self):
        return self.number
    @property
    def encoding(self):
        return "utf-8"

sys.stdout, sys.stderr = Out(1, "<stdout>"), Out(2, "<stderr>")
scope = {"__name__": "__main__", "__builtins__": __builtins__}
running = threading.Event()
main_thread = threading.get_ident()

def on_sigint(signum, frame):
    # Between blocks an interrupt (a cancellation that came late) must not end the server.
    if running.is_set():
        raise KeyboardInterrupt

signal.signal(signal.SIGINT, on_sigint)

def answer(block_id, pid, code):
    os.write(done_fd, f"{block_id} {pid} {code}\n".encode())

class Pump:
    # Copies the block's pipes to the client's output (at most `cap` bytes a stream) until the
    # block ends; after that whatever children still write goes to the log, so a background
    # child never holds the client's output open (nor dies of a closed pipe).
    def __init__(self, pipes, targets, cap):
        self.pipes, self.targets, self.left = pipes, targets, [cap, cap]
        self.wake_r, self.wake_w = os.pipe()
        self.drained = threading.Event()
        # The wake pipe is closed by the second of the pump's end and finish(): never while the
        # other may still use its descriptor number.
        self.lock, self.users = threading.Lock(), 2
        threading.Thread(target=self.run, daemon=True).start()
    def forward(self, index, data):
        target = self.targets[index] if self.targets is not None else None
        if target is None:
            os.write(log_fd, data)
            return
        part = data[: self.left[index]]
        self.left[index] -= len(part)
        try:
            while part:
                part = part[os.write(target, part):]
        except OSError:
            pass
    def run(self):
        open_pipes = list(self.pipes)
        while open_pipes:
            ready, _, _ = select.select(open_pipes + [self.wake_r], [], [])
            if self.wake_r in ready:
                # The block ended: take what is already written, then stop forwarding.
                os.read(self.wake_r, 1)
                for src in list(open_pipes):
                    os.set_blocking(src, False)
                    try:
                        while data := os.read(src, 65536):
                            self.forward(self.pipes.index(src), data)
                        open_pipes.remove(src)
                        os.close(src)
                    except BlockingIOError:
                        os.set_blocking(src, True)
                self.targets = None
                self.drained.set()
                continue
            for src in ready:
                data = os.read(src, 65536)
                if data:
                    self.forward(self.pipes.index(src), data)
                else:
                    open_pipes.remove(src)
                    os.close(src)
        self.targets = None
        self.drained.set()
        self.release()
    def release(self):
        with self.lock:
            self.users -= 1
            if self.users == 0:
                os.close(self.wake_r)
                os.close(self.wake_w)
    def finish(self):
        os.write(self.wake_w, b"x")
        self.drained.wait(2.0)
        self.release()

def watchdog(block_id, pid, limit, finished, state):
    if finished.wait(limit):
        return
    state["timed_out"] = True
    signal.pthread_kill(main_thread, signal.SIGINT)
    if finished.wait(GRACE):
        return
    try:
        sys.stderr.write(f"\nThe block did not stop within {GRACE:g} s of its limit; the interpreter ends.\n")
        state["pump"].finish()
    finally:
        answer(block_id, pid, 253)
        os._exit(1)

def run(source, name, show):
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    tree = ast.parse(source, name)
    last = None
    if show and tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, name, "exec"), scope)
    if last is not None:
        value = eval(compile(last, name, "eval"), scope)
        if value is not None:
            scope["_"] = value
            sys.stdout.write(repr(value) + "\n")

def block_source(header):
    block_id, pid, limit, cap, show, source = header
    int(pid), float(limit), int(cap)
    if source.startswith("@"):
        try:
            with open(source[1:], "rb") as f:
                data = f.read()
            os.unlink(source[1:])
        except OSError as exc:
            data = f"raise OSError({str(exc)!r})".encode()
    else:
        data = requests.read(int(source))
    return data.decode("utf-8", "surrogateescape")

with open(os.path.join(DIR, "repl.pid.new"), "w") as f:
    f.write(f"{os.getpid()}\n")
os.replace(os.path.join(DIR, "repl.pid.new"), os.path.join(DIR, "repl.pid"))
count = 0
while True:
    header = requests.readline().decode("utf-8", "replace").split()
    try:
        source = block_source(header)
    except (ValueError, TypeError) as exc:
        # Not a request of ours (a client cut short, stray bytes): answer if it named itself.
        os.write(log_fd, f"bad request {header[:6]!r}: {exc}\n".encode())
        if len(header) >= 2:
            answer(header[0], header[1], 2)
        continue
    block_id, pid, limit, cap, show = header[:5]
    count += 1
    targets = []
    for number in (7, 8):
        try:
            targets.append(os.open(f"/proc/{pid}/fd/{number}", os.O_WRONLY | os.O_APPEND))
        except OSError as exc:
            os.write(log_fd, f"cannot reach the client's output: {exc}\n".encode())
            targets.append(None)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.close(out_w)
    os.close(err_w)
    pump = Pump([out_r, err_r], targets, int(cap) * 4)
    finished, state = threading.Event(), {"timed_out": False, "pump": pump}
    watch = (block_id, pid, float(limit), finished, state)
    threading.Thread(target=watchdog, args=watch, daemon=True).start()
    code = 0
    try:
        running.set()
        try:
            run(source, f"<block {count}>", show == "1")
        finally:
            running.clear()
    except KeyboardInterrupt:
        if state["timed_out"]:
            code = 124
        else:
            sys.stderr.write("KeyboardInterrupt: the block was interrupted\n")
            code = 130
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            sys.stderr.write(f"{exc.code}\n")
    except BaseException as exc:
        # Hide the server's own frames: the traceback starts in the block.
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        sys.stderr.write("".join(traceback.format_exception(type(exc), exc, tb)))
        code = 1
    finally:
        finished.set()
        for stream in (sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        pump.finish()
        for target in targets:
            if target is not None:
                os.close(target)
    answer(block_id, pid, code & 0xFF)
"""


def start_command(work_dir: str) -> str:
    """The shell command that starts the interpreter (``work_dir`` is its working directory) and
    waits until it listens. Prints ``restarted`` when an earlier interpreter had run in this
    sandbox (its pid file is there: its variables are gone); exits non-zero with the server's
    log when it does not come up."""
    d, w = shlex.quote(REPL_DIR), shlex.quote(work_dir)
    return (
        f"mkdir -p {d} {w} || exit 1; [ -e {d}/repl.pid ] && echo restarted; rm -f {d}/repl.pid; "
        f"cd {w} && nohup python3 {d}/server.py {d} {GRACE_SECONDS:g} {REQ_FD} "
        f">{d}/server.log 2>&1 </dev/null & "
        f"i=0; while [ $i -lt 1000 ]; do [ -s {d}/repl.pid ] && exit 0; "
        f"kill -0 $! 2>/dev/null || break; sleep 0.01; i=$((i+1)); done; cat {d}/server.log; exit 1"
    )


def block_command(
    block_id: str, limit: float, cap: int, show_value: bool, code: bytes | None, path: str | None
) -> str:
    """The shell command that hands one block to the interpreter and waits for its exit code.

    ``code`` travels inline (UTF-8 without NUL; at most :data:`MAX_INLINE_BYTES` once quoted),
    else ``path`` names a file already written. Shell builtins only: nothing is started.
    """
    d = shlex.quote(REPL_DIR)
    if code is not None:
        source, payload = str(len(code)), " " + shlex.quote(code.decode("utf-8"))
    else:
        assert path is not None
        source, payload = shlex.quote("@" + path), " ''"
    fields = f"{block_id} $$ {limit:g} {cap} {int(show_value)} {source}"
    return (
        f"read P < {d}/repl.pid 2>/dev/null && [ /proc/$P/fd/{REQ_FD} -ef {d}/req ] "
        f"|| exit {NO_INTERPRETER_EXIT_CODE}\n"
        # The server opens the output at 7 and 8: 1 is the FIFO while printf writes the request.
        "exec 7>&1 8>&2\n"
        # ``done`` is opened before the request goes out: were the interpreter to end before the
        # client opened it, the open would wait for a writer forever; opened first, its end is EOF.
        f"{{ printf '%s\\n%s' \"{fields}\"{payload} > {d}/req\n"
        f'while read -r J K R; do [ "$J" = {block_id} ] && exit "$R"; '
        # Another client's answer (two executors on one sandbox): put it back while it waits.
        f'kill -0 "$K" 2>/dev/null && printf "%s %s %s\\n" "$J" "$K" "$R" >> {d}/done; done\n'
        f"exit {INTERPRETER_ENDED_EXIT_CODE}; }} < {d}/done"
    )

"""The persistent Python interpreter run inside a sandbox, and the shell command that reaches it.

Both are text sent into the sandbox; nothing here runs in the caller's process.

Why a shell command and not a Python client: a block is one ``executeShellCommand`` whose
command is the block itself, handed to the interpreter by shell builtins only (``read``,
``printf``, ``test``, redirections). No program starts per block (a ``python3`` client cost
~5-7 ms of start-up on every block, most of a warm block's time), and no file is written first
(one request per block instead of two).

The protocol (``REPL_DIR``):

- ``server.py`` (``SERVER``) holds the FIFO ``req`` open read-write (so a client's ``open``
  never waits) and reads requests from it; each block's exit code goes to a FIFO of its own,
  ``ans.<id>`` (so two clients never read each other's answer). It keeps ``req`` at
  descriptor ``REQ_FD`` as well: a client believes the pid in
  ``repl.pid`` only when ``/proc/<pid>/fd/<REQ_FD>`` is that very FIFO, so a pid reused after a
  Disk-mode resume (a fresh pid namespace) or a dead server is never mistaken for the
  interpreter, and a client never blocks on a FIFO nobody reads.
- A request is one line, ``<id> <client pid> <time limit> <output cap> <show value> <source>``,
  where source is ``-`` (the code is the client's here-document at its descriptor 9, which the
  server reads through ``/proc``) or ``@<path>`` (a block too large for one command argument,
  written as a file first). The server opens the client's own stdout and
  stderr (``/proc/<pid>/fd/7`` and ``8``, copies of 1 and 2: while ``printf`` writes the
  request, 1 is the FIFO). During the block its descriptors 1 and 2 are pipes the block's
  child processes write to (``subprocess.run``, ``os.system``), which a pump thread copies to
  the client's output as it comes (what a streaming caller needs), at most the cap; ``print``
  writes to the client at once, after what the pipes hold (so the order is kept, and nothing
  printed is lost when the interpreter ends right after). When the block ends, 1 and 2 go back
  to the log: what a background child writes later goes there, so it neither holds the command
  open nor dies of a closed pipe.
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
    "NEEDS_BASH_EXIT_CODE",
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

NEEDS_BASH_EXIT_CODE = 251
"""The command ran in a shell other than bash (it waits with bash's ``read -t``); nothing was sent.
The caller runs it again through ``bash -c``."""

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
REQ = os.path.join(DIR, "req")
for name in os.listdir(DIR):
    if name in ("req", "tick") or name.startswith("ans."):
        os.unlink(os.path.join(DIR, name))
os.mkfifo(REQ, 0o600)
# One byte per answer FIFO made: a client waiting for its own sleeps reading this (no spinning
# on two shared cores, where a spinning client keeps the server from running).
os.mkfifo(os.path.join(DIR, "tick"), 0o600)
tick_fd = os.open(os.path.join(DIR, "tick"), os.O_RDWR | os.O_NONBLOCK)
fd = os.open(REQ, os.O_RDWR)
os.dup2(fd, REQ_FD, inheritable=False)
os.close(fd)
requests = io.open(REQ_FD, "rb", closefd=False)
# Between blocks descriptors 1 and 2 (and so print(), and children) go to the log.
log_fd = os.dup(1)

class Out(io.TextIOBase):
    # sys.stdout / sys.stderr. During a block a write goes to the client at once, through the
    # pump (after whatever child processes wrote before it: the order is kept); no buffer, so
    # nothing is lost at an interrupt or when the interpreter ends right after. Between blocks
    # (a thread the code left running) it goes to the log.
    def __init__(self, index, name):
        self.index, self.name = index, name
    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = text.encode("utf-8", "backslashreplace")
        pump = current[0]
        if pump is not None:
            pump.write(self.index, data)
        else:
            write_all(log_fd, data)
        return len(text)
    def writable(self):
        return True
    def isatty(self):
        return False
    def fileno(self):
        return self.index + 1
    @property
    def encoding(self):
        return "utf-8"

def write_all(fd, data):
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass

current = [None]
sys.stdout, sys.stderr = Out(0, "<stdout>"), Out(1, "<stderr>")
scope = {"__name__": "__main__", "__builtins__": __builtins__}
running = threading.Event()
main_thread = threading.get_ident()

def on_sigint(signum, frame):
    # Between blocks an interrupt (a cancellation that came late) must not end the server.
    if running.is_set():
        raise KeyboardInterrupt

signal.signal(signal.SIGINT, on_sigint)

answers = {}

def open_answer(block_id, pid):
    # Each block's exit code goes into a FIFO of its own, so two clients never read each other's.
    # It appears (renamed into place) only once held open, so a client never waits on an open.
    # Those of clients that have ended are removed now (a live one may not have read its yet).
    for old, (fd, client) in list(answers.items()):
        if not os.path.exists(f"/proc/{client}"):
            del answers[old]
            os.close(fd)
            try:
                os.unlink(os.path.join(DIR, "ans." + old))
            except FileNotFoundError:
                pass
    path = os.path.join(DIR, "ans." + block_id)
    os.mkfifo(path + ".new", 0o600)
    answers[block_id] = (os.open(path + ".new", os.O_RDWR), pid)
    os.rename(path + ".new", path)
    try:
        os.write(tick_fd, b"x")
    except BlockingIOError:
        pass  # full of bytes no client took: the waiting ones wake anyway

def answer(block_id, code):
    os.write(answers[block_id][0], f"{code}\n".encode())

class Pump:
    # Copies the block's descriptors 1 and 2 (pipes its child processes share) to the client's
    # output, at most `cap` bytes a stream, until the block ends; after that whatever children
    # still write goes to the log, so a background child never holds the client's output open
    # (nor dies of a closed pipe). One lock orders its copies with Python's own writes.
    def __init__(self, pipes, targets, cap):
        for src in pipes:
            os.set_blocking(src, False)
        self.pipes, self.open, self.targets, self.left = pipes, list(pipes), targets, [cap, cap]
        self.io = threading.Lock()
        self.wake_r, self.wake_w = os.pipe()
        self.drained = threading.Event()
        # The wake pipe is closed by the second of the pump's end and finish(): never while the
        # other may still use its descriptor number.
        self.lock, self.users = threading.Lock(), 2
        threading.Thread(target=self.run, daemon=True).start()
    def send(self, index, data):
        target = self.targets[index] if self.targets is not None else None
        if target is None:
            write_all(log_fd, data)
            return
        part = data[: self.left[index]]
        self.left[index] -= len(part)
        write_all(target, part)
    def drain(self, close):
        # Everything the pipes hold now (the lock is held). Only the pump's thread closes a
        # pipe at its end: another thread closing it could pull it from under select().
        for src in list(self.open):
            while True:
                try:
                    data = os.read(src, 65536)
                except BlockingIOError:
                    break
                if not data:
                    if close:
                        self.open.remove(src)
                        os.close(src)
                    break
                self.send(self.pipes.index(src), data)
    def write(self, index, data):
        with self.io:
            self.drain(close=False)
            self.send(index, data)
    def run(self):
        while True:
            with self.io:
                pipes = list(self.open)
            if not pipes:
                break
            ready, _, _ = select.select(pipes + [self.wake_r], [], [])
            with self.io:
                if self.wake_r in ready:
                    # The block ended: take what is already written, then stop forwarding.
                    os.read(self.wake_r, 1)
                    self.drain(close=True)
                    self.targets = None
                    self.drained.set()
                else:
                    self.drain(close=True)
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
        answer(block_id, 253)
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
    if not (block_id.isalnum() and block_id.isascii()):
        raise ValueError("a block id is letters and digits")
    if source.startswith("@"):
        try:
            with open(source[1:], "rb") as f:
                data = f.read()
            os.unlink(source[1:])
        except OSError as exc:
            data = f"raise OSError({str(exc)!r})".encode()
    elif source == "-":
        # The block is the client's here-document at its descriptor 9; the shell adds a newline.
        with open(f"/proc/{pid}/fd/9", "rb") as f:
            data = f.read()[:-1]
    else:
        raise ValueError(f"unknown source {source!r}")
    return data.decode("utf-8", "surrogateescape")

with open(os.path.join(DIR, "repl.pid.new"), "w") as f:
    f.write(f"{os.getpid()}\n")
os.replace(os.path.join(DIR, "repl.pid.new"), os.path.join(DIR, "repl.pid"))
count = 0
while True:
    header = requests.readline().decode("utf-8", "replace").split()
    try:
        source = block_source(header)
    except (ValueError, TypeError, OSError) as exc:
        # Not a request of ours (a client cut short, stray bytes): answer if it named itself.
        os.write(log_fd, f"bad request {header[:6]!r}: {exc}\n".encode())
        if len(header) >= 2 and header[0].isalnum() and header[0].isascii() and header[1].isdigit():
            open_answer(header[0], header[1])
            answer(header[0], 2)
        continue
    open_answer(header[0], header[1])
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
    current[0] = pump
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
        if tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<block"):
            tb = None  # raised while compiling the block (ast, compile): the error alone says it
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
        current[0] = None
        for target in targets:
            if target is not None:
                os.close(target)
    answer(block_id, code & 0xFF)
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
) -> str | None:
    """The shell command that hands one block to the interpreter and waits for its exit code.

    ``code`` travels in the command as a here-document (UTF-8 without NUL, no line equal to the
    delimiter; None is returned for a block that cannot), else ``path`` names a file already
    written. The request itself is one short line: a shell writes a line in one ``write``, so
    two clients' requests never interleave (a request carrying the code would, past the first
    line). Shell builtins only, nothing is started (``read -t`` is bash's, the shell
    ``executeShellCommand`` runs).
    """
    d = shlex.quote(REPL_DIR)
    delimiter = f"ACA_BLOCK_{block_id}"
    heredoc = ""
    if code is not None:
        text = code.decode("utf-8")
        if delimiter in text.splitlines():
            return None
        source, heredoc = "-", f"exec 9<<'{delimiter}'\n{text}\n{delimiter}\n"
    else:
        assert path is not None
        source = shlex.quote("@" + path)
    fields = f"{block_id} $$ {limit:g} {cap} {int(show_value)} {source}"
    ended = INTERPRETER_ENDED_EXIT_CODE
    return (
        f'[ -n "$BASH_VERSION" ] || exit {NEEDS_BASH_EXIT_CODE}\n'
        f"read P < {d}/repl.pid 2>/dev/null && [ /proc/$P/fd/{REQ_FD} -ef {d}/req ] "
        f"|| exit {NO_INTERPRETER_EXIT_CODE}\n"
        # The server opens the output at 7 and 8: 1 is the FIFO while printf writes the request.
        "exec 7>&1 8>&2\n"
        f"{heredoc}"
        f"printf '%s\\n' \"{fields}\" > {d}/req\n"
        # The answer FIFO appears when the interpreter takes the request (at once, unless another
        # client's block runs); each one made wakes a waiter through ``tick``. The interpreter
        # gone meanwhile, it ended.
        f"until [ -p {d}/ans.{block_id} ]; do kill -0 $P 2>/dev/null || exit {ended}; "
        f"read -t 1 -n 1 -r _ <> {d}/tick; done\n"
        # Opened read-write: the open never waits, and an answer written before it is kept. The
        # interpreter ending unanswered is seen by polling it between one-second waits; found
        # ended, one more look, for an answer it wrote just before (it does at its time limit).
        # A wait that times out mid-line keeps what it read in X: A gathers it.
        f"exec 6<> {d}/ans.{block_id}\n"
        "A=\n"
        f"until read -t 1 -r X <&6; do A=$A$X; kill -0 $P 2>/dev/null || "
        f'{{ read -t 0.1 -r X <&6; A=$A$X; [ -n "$A" ] && exit "$A"; exit {ended}; }}; done\n'
        'exit "$A$X"\n'
    )

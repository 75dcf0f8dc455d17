"""The persistent Python interpreter run inside a sandbox, and the command that reaches it.

Both are source text written into the sandbox; nothing here runs in the caller's process.

The server (``SERVER``) listens on a Unix socket and runs each block file it is sent with
``exec`` in one globals dict, in its main thread, so variables live between blocks and a SIGINT
(sent by the client at the block's time limit, or on cancellation) interrupts the block with
``KeyboardInterrupt`` and leaves the interpreter and its variables in place. Output goes back in
frames (``O``/``E`` + length + data, then ``X`` + exit code) as it is written.

The client (``CLIENT``) is what each ``executeShellCommand`` runs: it sends one block file,
copies frames to its own stdout/stderr as they come (so a timed-out call keeps what was
printed), and exits with the block's code (124 after its time limit).
"""

from __future__ import annotations

__all__ = ["CLIENT", "REPL_DIR", "SERVER", "TIMEOUT_EXIT_CODE"]

REPL_DIR = "/root/.aca_repl"
"""Where the server, its socket, its pid and the block files live in the sandbox."""

TIMEOUT_EXIT_CODE = 124
"""The block's exit code after its time limit (as coreutils ``timeout``)."""

SERVER = r"""
import os, signal, socket, struct, sys, traceback
DIR = sys.argv[1]
SOCK = os.path.join(DIR, "repl.sock")

class Stream:
    def __init__(self, kind):
        self.kind = kind
        self.conn = None
    def write(self, text):
        if self.conn is not None and text:
            data = text.encode("utf-8", "replace")
            try:
                self.conn.sendall(self.kind + struct.pack(">I", len(data)) + data)
            except OSError:
                self.conn = None
        return len(text)
    def flush(self):
        pass
    def isatty(self):
        return False

out, err = Stream(b"O"), Stream(b"E")
real_out, real_err = sys.stdout, sys.stderr
scope = {"__name__": "__main__"}
try:
    os.unlink(SOCK)
except FileNotFoundError:
    pass
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(SOCK)
server.listen(1)
with open(os.path.join(DIR, "repl.pid"), "w") as f:
    f.write(str(os.getpid()))
while True:
    try:
        conn, _ = server.accept()
    except KeyboardInterrupt:
        continue
    try:
        path = conn.makefile("rb").readline().decode().strip()
        out.conn = err.conn = conn
        sys.stdout, sys.stderr = out, err
        code = 0
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
            exec(compile(source, "<block>", "exec"), scope)
        except KeyboardInterrupt:
            err.write("KeyboardInterrupt: the block was interrupted\n")
            code = 130
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            err.write(traceback.format_exc())
            code = 1
        finally:
            sys.stdout, sys.stderr = real_out, real_err
            out.conn = err.conn = None
        conn.sendall(b"X" + struct.pack(">i", code))
    except (OSError, KeyboardInterrupt):
        pass
    finally:
        conn.close()
"""

CLIENT = r"""
import os, signal, socket, struct, sys, time
DIR, BLOCK, LIMIT = sys.argv[1], sys.argv[2], float(sys.argv[3])
pid = int(open(os.path.join(DIR, "repl.pid")).read())
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect(os.path.join(DIR, "repl.sock"))
conn.sendall(BLOCK.encode() + b"\n")
deadline = time.monotonic() + LIMIT
interrupted = False
buf = b""
def frames():
    global buf, interrupted
    while True:
        while len(buf) >= 5:
            kind = buf[:1]
            if kind == b"X":
                yield kind, struct.unpack(">i", buf[1:5])[0]
                return
            size = struct.unpack(">I", buf[1:5])[0]
            if len(buf) < 5 + size:
                break
            yield kind, buf[5:5 + size]
            buf = buf[5 + size:]
        left = deadline - time.monotonic()
        if left <= 0 and not interrupted:
            os.kill(pid, signal.SIGINT)
            interrupted = True
        conn.settimeout(max(0.05, left) if not interrupted else 10.0)
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            if interrupted:
                return
            continue
        if not chunk:
            return
        buf += chunk
code = 1
for kind, data in frames():
    if kind == b"X":
        code = data
    else:
        stream = sys.stdout if kind == b"O" else sys.stderr
        stream.buffer.write(data)
        stream.flush()
os.unlink(BLOCK)
sys.exit(124 if interrupted else code)
"""

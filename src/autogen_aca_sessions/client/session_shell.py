"""A shell script run inside a Python session's interpreter, through ``subprocess``.

Framework-neutral (no AutoGen, no Agent Framework): the AutoGen executor runs its ``sh`` blocks
with it and the Agent Framework shell executor its commands, on Python pools, which have no
shell endpoint of their own. The script runs in ``/mnt/data`` in a process group of its own,
killed whole at its time limit, so its partial output still comes back with status 124.
"""

from __future__ import annotations

from autogen_aca_sessions.client.session_code import MNT_DATA

__all__ = ["SHELL_TIMED_OUT_MARK", "shell_code"]

SHELL_TIMED_OUT_MARK = "[timed out: the shell script was killed after"
"""The start of the line the wrapper adds to stderr when it killed the script at its limit."""

_SHELL_BODY = """
import os, shutil, signal, subprocess, sys
_program = shutil.which(_shell) or (shutil.which("sh") if _shell != "sh" else None) or "/bin/sh"
_cwd = _mnt if os.path.isdir(_mnt) else os.getcwd()
_argv = [_program, "-c", _script]
_file = None
if len(_script.encode("utf-8", "surrogatepass")) > 100000:
    # Linux refuses a single argument over 128 KiB (E2BIG): run a big script from a file.
    import tempfile
    _fd, _file = tempfile.mkstemp(suffix=".sh")
    with os.fdopen(_fd, "w", encoding="utf-8", errors="surrogatepass") as _handle:
        _handle.write(_script)
    _argv = [_program, _file]

def _remove_file():
    # A shell reads its script as it goes: the file is removed only once the shell has ended.
    if _file is not None:
        try:
            os.unlink(_file)
        except OSError:
            pass

try:
    _proc = subprocess.Popen(
        _argv, cwd=_cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
except BaseException:
    _remove_file()
    raise

def _kill_group():
    try:
        os.killpg(_proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

_note = ""
try:
    _out, _err = _proc.communicate(timeout=_limit)
    _rc = _proc.returncode
except subprocess.TimeoutExpired:
    _kill_group()
    try:
        _out, _err = _proc.communicate(timeout=2)
    except subprocess.TimeoutExpired:
        # A child that left the process group still holds the pipes: give up on the rest.
        _out, _err = b"", b""
    _rc = 124
    _note = "\\n[timed out: the shell script was killed after %g s]\\n" % _limit
except BaseException:
    # Interrupted (the service's own time limit): do not leave the script running.
    _kill_group()
    raise
finally:
    _remove_file()
sys.stdout.write(_out.decode("utf-8", "replace"))
sys.stdout.flush()
sys.stderr.write(_err.decode("utf-8", "replace") + _note)
sys.stderr.flush()
"""


def shell_code(script: str, shell: str, limit_seconds: float) -> str:
    """Run ``script`` with ``shell`` in ``/mnt/data``; the expression's value is the exit status.

    The script gets ``limit_seconds`` (a little less than the service's limit, so its partial
    output still comes back); when killed at that limit the status is 124, as with ``timeout(1)``.
    """
    args = {"_script": script, "_shell": shell, "_limit": float(limit_seconds), "_mnt": MNT_DATA}
    pairs = ", ".join(f"{key!r}: {value!r}" for key, value in args.items())
    return f"(lambda _g: (exec({_SHELL_BODY!r}, _g), _g['_rc'])[1])({{{pairs}}})\n"

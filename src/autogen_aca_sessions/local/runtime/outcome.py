"""What the session runtime hands back to the HTTP layer: api-version-free results.

The HTTP layer (``local/wire``) turns these into the response shape of the api-version a
request named; the runtime (``local/runtime/kernel.py``, ``local/runtime/sessions.py``) never knows about
api-versions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "NO_RESULT",
    "CodeOutput",
    "ImageData",
    "Outcome",
    "ResourcesExhaustedError",
    "SessionLimitReached",
    "ShellOutput",
]


class _NoResult:
    """Marker for a cell whose last statement is not an expression (the wire says ``""``)."""

    _instance: _NoResult | None = None

    def __new__(cls) -> _NoResult:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_RESULT"


NO_RESULT: Any = _NoResult()
"""The cell produced no value; distinct from a cell whose value is ``None`` (wire: ``null``)."""


class Outcome(enum.Enum):
    """How an execution ended."""

    SUCCEEDED = "succeeded"
    """The code ran to the end."""
    FAILED = "failed"
    """The code raised; the formatted traceback is in ``stderr``."""
    TIMED_OUT_INTERRUPTED = "timed_out_interrupted"
    """The time limit was hit and the interrupt was honoured: interpreter state is kept."""
    TIMED_OUT_RESTARTED = "timed_out_restarted"
    """The time limit was hit, the interrupt was not honoured, the kernel was restarted: state lost."""
    KERNEL_DIED = "kernel_died"
    """The kernel exited or was killed (exit, signal, out of memory): a new one serves the next call."""


@dataclass(frozen=True)
class ImageData:
    """An image the cell displayed (for example a matplotlib figure)."""

    data: bytes
    """The encoded image bytes."""
    format: str = "png"
    """The image format; ``png`` is the only one the service documents."""


@dataclass
class CodeOutput:
    """The result of one code execution in a session's kernel."""

    outcome: Outcome
    """How the execution ended."""
    stdout: str = ""
    """Standard output, cut to the ``max_output_chars`` the caller asked for."""
    stderr: str = ""
    """Standard error, cut likewise; holds the traceback on failure and a line saying what
    happened on a timeout or a dead kernel."""
    stdout_length: int = 0
    """How many characters the code wrote to stdout in all (more than ``len(stdout)`` when cut)."""
    stderr_length: int = 0
    """How many characters were written to stderr in all."""
    result: Any = NO_RESULT
    """The JSON-ready value of the last expression, ``None`` for a ``None`` value, ``NO_RESULT`` when
    the cell ended in a statement or in a call that returned ``None`` (``print(...)``, as the
    service shows nothing for it). Values JSON cannot hold are converted as the service does
    (``float('nan')`` -> ``"nan"``; other objects -> their text representation)."""
    images: list[ImageData] = field(default_factory=list)
    """Images displayed by the cell, in display order."""
    error_name: str | None = None
    """The exception class name when the code raised (``ZeroDivisionError``)."""
    error_value: str | None = None
    """The exception message when the code raised."""
    duration_ms: int = 0
    """Wall time of the execution, in milliseconds."""
    state_lost: bool = False
    """True when the interpreter was replaced during or right before this call, so variables,
    imports and injected functions from earlier calls are gone."""
    message: str | None = None
    """A human-readable sentence for timeouts and dead kernels (also appended to ``stderr``)."""

    @classmethod
    def kernel_died(cls, message: str) -> CodeOutput:
        """The result of a call that found no live kernel: ``message`` says why; state is lost."""
        return cls(
            outcome=Outcome.KERNEL_DIED,
            stderr=message + "\n",
            stderr_length=len(message) + 1,
            state_lost=True,
            message=message,
            error_name="KernelDied",
            error_value=message,
        )

    @property
    def stdout_truncated(self) -> bool:
        """Whether ``stdout`` was cut."""
        return self.stdout_length > len(self.stdout)

    @property
    def stderr_truncated(self) -> bool:
        """Whether ``stderr`` was cut."""
        return self.stderr_length > len(self.stderr)


@dataclass
class ShellOutput:
    """The result of one shell command (Shell pools)."""

    exit_code: int
    """The command's exit status; 124 when it was killed at the time limit."""
    stdout: str = ""
    """Standard output, cut to ``max_output_chars``."""
    stderr: str = ""
    """Standard error, cut likewise."""
    stdout_length: int = 0
    """Characters written to stdout in all."""
    stderr_length: int = 0
    """Characters written to stderr in all."""
    duration_ms: int = 0
    """Wall time, in milliseconds."""
    timed_out: bool = False
    """True when the command was killed at the time limit."""


class SessionLimitReached(Exception):
    """A new session was asked for while the pool already holds ``max_concurrent_sessions``."""

    def __init__(self, max_sessions: int, reason: str | None = None) -> None:
        super().__init__(
            reason
            or (
                f"The session pool is at its maximum of {max_sessions} concurrent sessions; "
                "delete a session or wait for an idle one to expire."
            )
        )
        self.max_sessions = max_sessions
        """The pool's configured maximum (``maxConcurrentSessions``)."""


class ResourcesExhaustedError(Exception):
    """The server ran out of a resource (open files, memory, processes) before doing the call.

    Nothing ran: the call may be sent again after :attr:`retry_after` seconds (HTTP 503).
    """

    def __init__(self, resource: str, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(
            f"The local session pool ran out of {resource} and could not start a kernel ({detail}); "
            f"nothing was run. Retry in {retry_after} s, or delete sessions to free their resources."
        )
        self.resource = resource
        """What ran out (``open files``, ``memory``, ``processes or threads`` ...)."""
        self.retry_after = retry_after
        """Seconds after which a retry may succeed."""

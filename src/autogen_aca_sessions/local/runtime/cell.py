"""One cell's run in a kernel, as two small values: what came back, and when to give up.

:class:`CellCollector` takes the kernel's messages for one ``execute_request`` and turns them
into a :class:`~.outcome.CodeOutput`; :class:`CellDeadline` says, at each moment, whether to
keep waiting, interrupt the cell or kill the kernel. :meth:`.kernel.Kernel.execute` only moves
messages from the sockets to the collector and acts on the deadline's word.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .outcome import NO_RESULT, CodeOutput, ImageData, Outcome

__all__ = [
    "INTERRUPT_GRACE_SECONDS",
    "MAX_IMAGES",
    "CellCollector",
    "CellDeadline",
    "DeadlineAction",
    "OutputBuffer",
    "strip_ansi",
]

INTERRUPT_GRACE_SECONDS = 1.5
"""How long an interrupted kernel gets to go idle before it is killed and replaced."""
MAX_IMAGES = 64
"""Images kept per execution; more are dropped (they are counted in nothing)."""
REPLY_AFTER_IDLE_SECONDS = 2.0
"""How long the execute reply may lag the idle status (or the status the reply) before the call
ends without it: iopub drops messages under pressure, and a lost one must not hang the call."""
INTERRUPT_RESEND_SECONDS = 0.25
"""How often an unanswered interrupt is sent again during the grace period."""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour and cursor escapes (IPython colours tracebacks)."""
    return _ANSI.sub("", text)


class OutputBuffer:
    """Keeps the first ``limit`` characters of a stream and counts all of them."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self._parts: list[str] = []
        self._kept = 0
        self.total = 0
        """Characters written in all."""
        self.frozen = False
        """Set once the kernel's own record replaced the text: later stream messages are ignored."""

    def write(self, text: str) -> None:
        self.total += len(text)
        room = self.limit - self._kept
        if room > 0:
            piece = text[:room]
            self._parts.append(piece)
            self._kept += len(piece)

    def text(self) -> str:
        return "".join(self._parts)

    def replace(self, text: str) -> None:
        """Take ``text`` as what was kept (the kernel's own record, which nothing can drop)."""
        self._parts = [text[: self.limit]]
        self._kept = len(self._parts[0])
        self.total = self._kept


class DeadlineAction(enum.Enum):
    """What :meth:`CellDeadline.action` asks the kernel's caller to do now."""

    WAIT = "wait"
    """Keep collecting messages."""
    INTERRUPT = "interrupt"
    """Send (or send again) an interrupt request."""
    KILL = "kill"
    """The interrupt did not stop the cell in its grace period: kill and replace the kernel."""


@dataclass
class CellDeadline:
    """The timeout policy of one cell: interrupt at ``deadline``, resend the interrupt every
    :data:`INTERRUPT_RESEND_SECONDS` (one that lands before the cell starts is ignored by the
    idle kernel), kill after :data:`INTERRUPT_GRACE_SECONDS` without the cell stopping."""

    deadline: float
    """When the cell's time is up (``time.monotonic()`` clock)."""
    interrupted_at: float | None = None
    """When the first interrupt went out; ``None`` while the cell is within its time."""
    last_interrupt: float = 0.0
    """When the latest interrupt went out."""

    @property
    def interrupted(self) -> bool:
        """Whether the cell ran out of time (it was interrupted at least once)."""
        return self.interrupted_at is not None

    def action(self, now: float) -> DeadlineAction:
        """What to do at ``now``; records an interrupt it asks for."""
        if self.interrupted_at is None:
            if now < self.deadline:
                return DeadlineAction.WAIT
            self.interrupted_at = self.last_interrupt = now
            return DeadlineAction.INTERRUPT
        if now >= self.interrupted_at + INTERRUPT_GRACE_SECONDS:
            return DeadlineAction.KILL
        if now - self.last_interrupt >= INTERRUPT_RESEND_SECONDS:
            self.last_interrupt = now
            return DeadlineAction.INTERRUPT
        return DeadlineAction.WAIT

    def next_check(self) -> float:
        """The next moment :meth:`action` may answer something other than ``WAIT``."""
        if self.interrupted_at is None:
            return self.deadline
        return min(
            self.interrupted_at + INTERRUPT_GRACE_SECONDS, self.last_interrupt + INTERRUPT_RESEND_SECONDS
        )


@dataclass
class CellCollector:
    """The messages of one ``execute_request`` (``msg_id``), collected into its output."""

    msg_id: str
    """The request's message id: messages with another parent are not this cell's."""
    max_output_chars: int
    """How many characters of each stream to keep."""
    started: float = field(default_factory=time.monotonic)
    """When the request went out (``time.monotonic()``)."""
    images: list[ImageData] = field(default_factory=list)
    """PNG images displayed by the cell, at most :data:`MAX_IMAGES`."""
    error: dict[str, Any] | None = None
    """The content of the cell's ``error`` message (or its error reply)."""
    reply: dict[str, Any] | None = None
    """The content of the ``execute_reply``, once it came."""
    idle_at: float | None = None
    """When the kernel reported itself idle after this cell."""
    reply_at: float | None = None
    """When the reply came."""

    def __post_init__(self) -> None:
        self.stdout = OutputBuffer(self.max_output_chars)
        self.stderr = OutputBuffer(self.max_output_chars)

    def complete(self, now: float) -> bool:
        """Whether the cell is over: reply and idle status both came, or one of them came and the
        other is overdue."""
        if self.reply is not None and self.idle_at is not None:
            return True
        if self.reply_at is not None and now - self.reply_at > REPLY_AFTER_IDLE_SECONDS:
            return True
        return self.idle_at is not None and now - self.idle_at > REPLY_AFTER_IDLE_SECONDS

    def on_shell(self, msg: dict[str, Any]) -> None:
        """Take a message from the shell channel."""
        if msg["parent_header"].get("msg_id") != self.msg_id or msg["msg_type"] != "execute_reply":
            return
        self.reply = msg["content"]
        self.reply_at = time.monotonic()
        if _apply_kernel_counts(msg.get("metadata", {}), self.stdout, self.stderr):
            # The kernel's record is complete: stream messages still in flight on iopub would
            # only repeat what it holds.
            self.stdout.frozen = self.stderr.frozen = True

    def on_iopub(self, msg: dict[str, Any]) -> None:
        """Take a message from the iopub channel."""
        if msg["parent_header"].get("msg_id") != self.msg_id:
            return
        kind = msg["msg_type"]
        content = msg["content"]
        if kind == "status":
            if content.get("execution_state") == "idle":
                self.idle_at = time.monotonic()
        elif kind == "error":
            self.error = content
        elif kind == "stream":
            buffer = self.stderr if content.get("name") == "stderr" else self.stdout
            if not buffer.frozen:
                buffer.write(content.get("text", ""))
        elif kind in ("display_data", "execute_result"):
            png = content.get("data", {}).get("image/png")
            if isinstance(png, str) and len(self.images) < MAX_IMAGES:
                with contextlib.suppress(binascii.Error, ValueError):
                    self.images.append(ImageData(data=base64.b64decode(png), format="png"))

    def finish(
        self,
        outcome: Outcome,
        *,
        message: str | None = None,
        result: Any = NO_RESULT,
        error_name: str | None = None,
        error_value: str | None = None,
        state_lost: bool = False,
    ) -> CodeOutput:
        """The cell's output ending in ``outcome``; ``message`` is also appended to stderr."""
        if message:
            separator = "\n" if self.stderr.total and not self.stderr.text().endswith("\n") else ""
            self.stderr.write(separator + message + "\n")
        return CodeOutput(
            outcome=outcome,
            stdout=self.stdout.text(),
            stderr=self.stderr.text(),
            stdout_length=self.stdout.total,
            stderr_length=self.stderr.total,
            result=result,
            images=self.images,
            error_name=error_name,
            error_value=error_value,
            duration_ms=int((time.monotonic() - self.started) * 1000),
            state_lost=state_lost,
            message=message,
        )

    def outcome(self, deadline: CellDeadline, timeout: float) -> CodeOutput:
        """The output of a cell that ended (the kernel is alive): interrupted, aborted, failed
        or succeeded."""
        if deadline.interrupted:
            message = (
                f"Execution timed out after {timeout:g} s and was interrupted; "
                "the session's state (variables, imports) is kept."
            )
            return self.finish(
                Outcome.TIMED_OUT_INTERRUPTED, message=message, error_name="TimeoutError", error_value=message
            )
        reply = self.reply
        if reply is not None and reply.get("status") == "aborted":
            message = "The kernel aborted this execution before running it; run it again."
            return self.finish(
                Outcome.FAILED, result=None, message=message, error_name="Aborted", error_value=message
            )
        error = reply if reply is not None and reply.get("status") == "error" else self.error
        # (the reply is never lost; the iopub error message may be)
        if error is not None:
            traceback = "\n".join(strip_ansi(line) for line in error.get("traceback", []))
            if not traceback:
                traceback = f"{error.get('ename', 'Error')}: {error.get('evalue', '')}"
            if self.stderr.total and not self.stderr.text().endswith("\n"):
                self.stderr.write("\n")
            self.stderr.write(traceback + ("" if traceback.endswith("\n") else "\n"))
            return self.finish(
                Outcome.FAILED,
                result=None,
                error_name=str(error.get("ename", "Error")),
                error_value=strip_ansi(str(error.get("evalue", ""))),
            )
        return self.finish(Outcome.SUCCEEDED, result=_read_result(reply))


def _apply_kernel_counts(metadata: dict[str, Any], stdout: OutputBuffer, stderr: OutputBuffer) -> bool:
    """Take the kernel's own record of the output: the kept text and the full counts.

    The kernel sends only the first ``cap`` characters on iopub, and iopub is not
    exact under a storm of small flushed writes (ipykernel loses or repeats stream
    messages then); the reply carries the kernel's own record, which is.
    """
    kept = metadata.get("aca_output")
    counts = metadata.get("aca_output_chars")
    for name, buffer in (("stdout", stdout), ("stderr", stderr)):
        text = kept.get(name) if isinstance(kept, dict) else None
        total = counts.get(name) if isinstance(counts, dict) else None
        if isinstance(text, str):
            buffer.replace(text)
        if isinstance(total, int):
            buffer.total = max(total, len(buffer.text()))
    return isinstance(kept, dict)


def _read_result(reply: dict[str, Any] | None) -> Any:
    if reply is None:
        return NO_RESULT
    expr = reply.get("user_expressions", {}).get("r", {})
    if expr.get("status") != "ok":
        return NO_RESULT
    text = expr.get("data", {}).get("text/plain")
    if not isinstance(text, str):
        return NO_RESULT
    try:
        described = json.loads(text)
    except ValueError:
        return NO_RESULT
    if not isinstance(described, dict) or described.get("kind") != "value":
        return NO_RESULT
    return described.get("value")

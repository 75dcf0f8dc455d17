"""Typed results of :class:`ACADynamicSessionsCodeExecutor`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autogen_core.code_executor import CodeResult

__all__ = ["ACADynamicSessionsBlockResult", "ACADynamicSessionsCodeResult"]


@dataclass
class ACADynamicSessionsBlockResult:
    """What one code block did in the session."""

    language: str
    """The block's language as given (``python``, ``bash``, ...)."""
    exit_code: int
    """0 on success, 1 when Python code raised or the language is unsupported, the script's own
    exit status for shell blocks, 124 when the block hit the time limit."""
    output: str
    """The text this block contributed to :attr:`ACADynamicSessionsCodeResult.output`."""
    stdout: str = ""
    """Standard output of the block."""
    stderr: str = ""
    """Standard error of the block (the traceback when Python code raised)."""
    result: Any = None
    """The JSON value of the block's last expression; ``None`` when it had none. For shell blocks
    this is the exit status."""
    image_paths: list[str] = field(default_factory=list)
    """Files in ``work_dir`` the block's images were saved to."""
    execution_time_ms: int | None = None
    """Execution time the service reported, in milliseconds."""
    execution_id: str | None = None
    """The service's id of the execution, when it reported one."""
    executed: bool = True
    """False when nothing was sent to the session (unsupported language)."""
    timed_out: bool = False
    """True when the block hit its time limit (on the server, or the client stopped waiting)."""
    state_lost: bool = False
    """True when the service replaced the interpreter during or right before this block."""
    stdout_truncated: bool = False
    """True when stdout was cut at ``max_output_chars`` (by the service or by the executor)."""
    stderr_truncated: bool = False
    """True when stderr was cut at ``max_output_chars``."""
    possibly_truncated: bool = False
    """True when stdout or stderr has exactly the service's default cap of 4096 characters without
    a truncation flag: the service may have cut it silently (the output text says so)."""


@dataclass
class ACADynamicSessionsCodeResult(CodeResult):
    """The result of :meth:`ACADynamicSessionsCodeExecutor.execute_code_blocks`.

    ``exit_code`` and ``output`` are those of :class:`autogen_core.code_executor.CodeResult`; the
    other fields carry the same information in structured form.
    """

    stdout: str = ""
    """Standard output of every executed block, concatenated."""
    stderr: str = ""
    """Standard error of every executed block, concatenated."""
    result: Any = None
    """The last-expression value of the last executed block (``None`` when it had none)."""
    image_paths: list[str] = field(default_factory=list)
    """Every image file saved into ``work_dir`` by this call, in display order."""
    execution_time_ms: int = 0
    """Sum of the service-reported execution times of the executed blocks, in milliseconds."""
    session_id: str = ""
    """The session identifier the blocks ran in."""
    blocks: list[ACADynamicSessionsBlockResult] = field(default_factory=list)
    """Per-block details, in order; blocks after the first failing one are absent."""
    timed_out: bool = False
    """True when a block hit its time limit (``exit_code`` is then 124)."""
    state_lost: bool = False
    """True when the service replaced the interpreter during this call; the executor set the
    working directory and the injected functions up again."""
    output_truncated: bool = False
    """True when ``output`` was cut to ``max_output_chars`` (a marker line says where)."""
    stdout_truncated: bool = False
    """True when any block's stdout was cut."""
    stderr_truncated: bool = False
    """True when any block's stderr was cut."""
    notes: list[str] = field(default_factory=list)
    """Sentences about what the executor did besides running the blocks (re-running setup after
    the session was replaced, for example); each also appears in ``output``."""

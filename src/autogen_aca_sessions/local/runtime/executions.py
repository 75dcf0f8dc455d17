"""Executions the pool has accepted, so that ``GET /executions/<id>`` can answer for them.

Every execution is recorded (synchronous ones too: 2024-10-02-preview hands out an
``Operation-Location`` for them that a client may poll). Finished records are forgotten oldest
first beyond a fixed number, so a long-running pool does not grow without bound.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .outcome import CodeOutput, ShellOutput

__all__ = ["ExecutionRecord", "ExecutionStore"]


@dataclass
class ExecutionRecord:
    """One execution, running or finished."""

    id: str
    """The execution id (the ``operation-id`` the client sent, or a fresh UUID)."""
    identifier: str
    """The session it runs in."""
    execution_type: str
    """``Synchronous`` or ``Asynchronous``, echoed in the resource."""
    shell: bool
    """Whether it is a shell command (Shell pools)."""
    timeout_seconds: int
    """The time limit it runs under."""
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    """When the pool accepted it."""
    output: CodeOutput | ShellOutput | None = None
    """The runtime's result once finished."""
    internal_error: str | None = None
    """Set when the runtime raised instead of returning a result (the execution failed)."""
    task: asyncio.Task[None] | None = None
    """The background task of an asynchronous execution while it runs."""

    @property
    def finished(self) -> bool:
        """Whether a result (or an internal failure) is in."""
        return self.output is not None or self.internal_error is not None


class ExecutionStore:
    """Execution records keyed by (session identifier, execution id)."""

    def __init__(self, max_finished: int = 2_000) -> None:
        self._records: OrderedDict[tuple[str, str], ExecutionRecord] = OrderedDict()
        self._max_finished = max_finished

    def get(self, identifier: str, execution_id: str) -> ExecutionRecord | None:
        """The record, or ``None`` when unknown or already forgotten."""
        return self._records.get((identifier, execution_id))

    def add(self, record: ExecutionRecord) -> None:
        """Remember ``record`` (replacing a finished one with the same key)."""
        key = (record.identifier, record.id)
        self._records.pop(key, None)
        self._records[key] = record
        self._trim()

    def running(self) -> list[ExecutionRecord]:
        """Records whose execution has not finished."""
        return [r for r in self._records.values() if not r.finished]

    def _trim(self) -> None:
        excess = len(self._records) - self._max_finished
        if excess <= 0:
            return
        for key in [k for k, r in self._records.items() if r.finished][:excess]:
            del self._records[key]

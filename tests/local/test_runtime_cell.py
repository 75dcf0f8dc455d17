"""The cell's timeout policy and message collector (``local/runtime/cell.py``), without a kernel."""

from __future__ import annotations

from typing import Any

from autogen_aca_sessions.local.runtime.cell import (
    INTERRUPT_GRACE_SECONDS,
    INTERRUPT_RESEND_SECONDS,
    CellCollector,
    CellDeadline,
    DeadlineAction,
)
from autogen_aca_sessions.local.runtime.outcome import NO_RESULT, Outcome


def test_deadline_waits_until_the_time_is_up_then_interrupts_once() -> None:
    deadline = CellDeadline(10.0)
    assert deadline.action(9.99) is DeadlineAction.WAIT
    assert not deadline.interrupted
    assert deadline.action(10.0) is DeadlineAction.INTERRUPT
    assert deadline.interrupted
    assert deadline.action(10.0 + INTERRUPT_RESEND_SECONDS / 2) is DeadlineAction.WAIT


def test_deadline_resends_the_interrupt_then_kills_after_the_grace_period() -> None:
    deadline = CellDeadline(0.0)
    assert deadline.action(0.0) is DeadlineAction.INTERRUPT
    assert deadline.action(INTERRUPT_RESEND_SECONDS) is DeadlineAction.INTERRUPT
    assert deadline.next_check() == min(INTERRUPT_GRACE_SECONDS, 2 * INTERRUPT_RESEND_SECONDS)
    assert deadline.action(INTERRUPT_GRACE_SECONDS) is DeadlineAction.KILL


def _msg(
    parent: str, kind: str, content: dict[str, Any], channel_meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "parent_header": {"msg_id": parent},
        "msg_type": kind,
        "content": content,
        "metadata": channel_meta or {},
    }


def test_collector_ignores_other_cells_and_keeps_the_kernel_record_over_streams() -> None:
    cell = CellCollector("m1", max_output_chars=5)
    cell.on_iopub(_msg("other", "stream", {"name": "stdout", "text": "not mine"}))
    cell.on_iopub(_msg("m1", "stream", {"name": "stdout", "text": "abcdefgh"}))
    assert cell.stdout.text() == "abcde"
    assert cell.stdout.total == 8
    cell.on_shell(
        _msg(
            "m1",
            "execute_reply",
            {"status": "ok"},
            {"aca_output": {"stdout": "xyz", "stderr": ""}, "aca_output_chars": {"stdout": 30, "stderr": 0}},
        )
    )
    cell.on_iopub(_msg("m1", "stream", {"name": "stdout", "text": "late repeat"}))
    assert cell.stdout.text() == "xyz"
    assert cell.stdout.total == 30
    assert not cell.complete(cell.reply_at or 0.0)
    cell.on_iopub(_msg("m1", "status", {"execution_state": "idle"}))
    assert cell.complete(cell.reply_at or 0.0)
    output = cell.outcome(CellDeadline(float("inf")), timeout=60)
    assert output.outcome is Outcome.SUCCEEDED
    assert output.result is NO_RESULT
    assert output.stdout_truncated


def test_collector_reports_the_reply_error_even_when_the_iopub_error_was_lost() -> None:
    cell = CellCollector("m1", max_output_chars=100)
    cell.on_shell(
        _msg(
            "m1",
            "execute_reply",
            {"status": "error", "ename": "ZeroDivisionError", "evalue": "division by zero"},
        )
    )
    output = cell.outcome(CellDeadline(float("inf")), timeout=60)
    assert output.outcome is Outcome.FAILED
    assert output.error_name == "ZeroDivisionError"
    assert output.stderr == "ZeroDivisionError: division by zero\n"


def test_collector_ends_a_cell_whose_reply_never_follows_the_idle_status() -> None:
    cell = CellCollector("m1", max_output_chars=100)
    cell.on_iopub(_msg("m1", "status", {"execution_state": "idle"}))
    assert cell.idle_at is not None
    assert not cell.complete(cell.idle_at + 1.0)
    assert cell.complete(cell.idle_at + 2.5)

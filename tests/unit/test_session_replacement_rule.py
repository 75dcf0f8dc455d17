"""The one rule both adapters use to tell a replaced session, and a block that failed only for
want of the injected functions, from an execution's answer."""

from __future__ import annotations

import pytest

from autogen_aca_sessions.client import ExecutionResult, ExecutionStatus
from autogen_aca_sessions.client.session_replacement import (
    failed_for_missing_functions,
    replaced_since,
    setup_lost,
)


def result(
    *,
    succeeded: bool = False,
    stderr: str = "",
    error_message: str | None = None,
    guid: str | None = None,
    error_code: str | None = None,
) -> ExecutionResult:
    return ExecutionResult(
        execution_id="e",
        identifier="s",
        status=ExecutionStatus.SUCCEEDED if succeeded else ExecutionStatus.FAILED,
        stderr=stderr,
        error_message=error_message,
        error_code=error_code,
        session_guid=guid,
        state_lost=error_code == "KernelRestarted",
    )


@pytest.mark.parametrize(
    ("known", "answered", "replaced"),
    [("g1", "g2", True), ("g1", "g1", False), (None, "g2", False), ("g1", None, False), (None, None, False)],
)
def test_a_session_is_replaced_only_when_both_incarnations_are_named_and_differ(
    known: str | None, answered: str | None, replaced: bool
) -> None:
    assert replaced_since(known, result(guid=answered)) is replaced


def test_the_setup_is_lost_after_a_replacement_or_an_interpreter_restart() -> None:
    assert setup_lost("g1", result(guid="g2"))
    assert setup_lost("g1", result(guid="g1", error_code="KernelRestarted"))
    assert not setup_lost("g1", result(guid="g1"))


@pytest.mark.parametrize(
    "failure",
    [
        {"stderr": "ModuleNotFoundError: No module named 'functions'"},
        {"stderr": "NameError: name 'make_orders' is not defined"},
        # IPython colours its tracebacks; the service may report them in the error message only.
        {"error_message": "\x1b[0;31mNameError\x1b[0m: name 'make_orders' is not defined"},
        {"error_message": "\x1b[31mModuleNotFoundError\x1b[0m: No module named 'functions'"},
    ],
)
def test_a_failure_for_want_of_the_injected_functions_is_recognised(failure: dict[str, str]) -> None:
    assert failed_for_missing_functions(result(**failure), "functions", ["make_orders"])


@pytest.mark.parametrize(
    "outcome",
    [
        result(succeeded=True, stderr="NameError: name 'make_orders' is not defined"),
        result(stderr="NameError: name 'other' is not defined"),
        result(stderr="No module named 'pandas'"),
        result(stderr="ZeroDivisionError: division by zero"),
    ],
)
def test_other_outcomes_are_not_taken_for_missing_functions(outcome: ExecutionResult) -> None:
    assert not failed_for_missing_functions(outcome, "functions", ["make_orders"])

"""Session replacement (``x-ms-session-guid``), the check after an idle gap, and the release of
a session a failed first request may have created, pinned against the scripted fake pool."""

from __future__ import annotations

from typing import Any

import pytest

from autogen_aca_sessions.client import SessionsConnectionError
from tests.unit.conftest import FakePool
from tests.unit.test_executor_wire import (
    EXECUTIONS,
    SESSION,
    answer,
    codes,
    deletes,
    executor,
    is_setup,
    run,
    succeeded,
)


def shout(text: str) -> str:
    """Upper-case ``text``."""
    return text.upper() + "!"


def failed(stderr: str) -> dict[str, Any]:
    return {
        "id": "e",
        "status": "Failed",
        "result": {"stdout": "", "stderr": stderr, "executionResult": None},
    }


def reply_with_guid(pool: FakePool, guid: str, body: dict[str, Any] | None = None) -> None:
    pool.reply(200, body or succeeded(), method="POST", path=EXECUTIONS, headers={"x-ms-session-guid": guid})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_replaced_session_gets_functions_again_and_a_block_failing_for_them_is_resent(
    fake_pool: FakePool,
) -> None:
    reply_with_guid(fake_pool, "g1")  # setup
    reply_with_guid(fake_pool, "g1", succeeded("A!\n"))  # block 1
    # Block 2 lands in a new incarnation: the functions are missing there.
    reply_with_guid(
        fake_pool, "g2", failed("Traceback...\n\x1b[31mNameError\x1b[0m: name 'shout' is not defined\n")
    )
    reply_with_guid(fake_pool, "g2")  # setup again
    reply_with_guid(fake_pool, "g2", succeeded("B!\n"))  # block 2 resent
    async with executor(fake_pool, functions=[shout], session_id="fixed") as target:
        await run(target, ("python", "print(shout('a'))"))
        result = await run(target, ("python", "print(shout('b'))"))
    sent = codes(fake_pool)
    assert len(sent) == 5
    assert is_setup(sent[0])
    assert is_setup(sent[3])
    assert sent[2] == sent[4] == "print(shout('b'))"
    assert result.exit_code == 0
    assert result.stdout == "B!\n"
    assert result.state_lost
    assert "was replaced by the service" in result.output
    assert "sent once more" in result.output


async def test_block_that_succeeded_in_a_replaced_session_is_not_resent_but_setup_runs_next(
    fake_pool: FakePool,
) -> None:
    reply_with_guid(fake_pool, "g1")  # setup
    reply_with_guid(fake_pool, "g2", succeeded("2\n"))  # block 1 in a new incarnation
    reply_with_guid(fake_pool, "g2")  # setup before block 2
    reply_with_guid(fake_pool, "g2", succeeded("3\n"))  # block 2
    async with executor(fake_pool, functions=[shout], session_id="fixed") as target:
        first = await run(target, ("python", "print(1+1)"))
        second = await run(target, ("python", "print(1+2)"))
    sent = codes(fake_pool)
    assert [is_setup(code) for code in sent] == [True, False, True, False]
    assert first.state_lost
    assert "was replaced by the service" in first.output
    assert not second.state_lost


async def test_a_failure_unrelated_to_the_setup_is_not_resent(fake_pool: FakePool) -> None:
    reply_with_guid(fake_pool, "g1")
    reply_with_guid(fake_pool, "g2", failed("ZeroDivisionError: division by zero\n"))
    answer(fake_pool)
    async with executor(fake_pool, functions=[shout], session_id="fixed") as target:
        result = await run(target, ("python", "1/0"))
    assert len(codes(fake_pool)) == 2
    assert result.exit_code == 1
    assert result.state_lost


async def test_after_an_idle_gap_the_session_is_checked_before_the_block(fake_pool: FakePool) -> None:
    reply_with_guid(fake_pool, "g1")  # setup
    reply_with_guid(fake_pool, "g1")  # block 1
    reply_with_guid(fake_pool, "g2")  # probe after 301 s idle: a new incarnation
    reply_with_guid(fake_pool, "g2")  # setup
    reply_with_guid(fake_pool, "g2", succeeded("A!\n"))  # block 2
    clock = Clock()
    target = executor(fake_pool, functions=[shout], session_id="fixed")
    target._clock = clock
    async with target:
        await run(target, ("python", "1"))
        clock.now += 301
        result = await run(target, ("python", "print(shout('a'))"))
    sent = codes(fake_pool)
    assert len(sent) == 5
    assert is_setup(sent[0])
    assert sent[2] == "pass\n"
    assert is_setup(sent[3])
    assert sent[4] == "print(shout('a'))"
    assert result.exit_code == 0
    assert result.state_lost
    assert "set up again" in result.output


async def test_after_an_idle_gap_the_same_session_is_used_without_setting_up_again(
    fake_pool: FakePool,
) -> None:
    reply_with_guid(fake_pool, "g1")
    reply_with_guid(fake_pool, "g1")
    reply_with_guid(fake_pool, "g1")
    reply_with_guid(fake_pool, "g1")  # probe: same incarnation
    reply_with_guid(fake_pool, "g1")
    clock = Clock()
    target = executor(fake_pool, functions=[shout], session_id="fixed")
    target._clock = clock
    async with target:
        await run(target, ("python", "1"))
        clock.now += 299
        await run(target, ("python", "2"))  # not idle long enough: no probe
        clock.now += 300
        result = await run(target, ("python", "3"))
    sent = codes(fake_pool)
    assert sent[1:] == ["1", "2", "pass\n", "3"]
    assert not result.state_lost


async def test_a_session_the_first_request_may_have_created_is_released_on_stop(fake_pool: FakePool) -> None:
    # The first execution reaches the pool (which may create the session) and the connection
    # drops before an answer: the executor must still delete its own session on stop.
    fake_pool.reply(disconnect=True, method="POST", path=EXECUTIONS)
    fake_pool.reply(204, method="DELETE", path=SESSION)
    target = executor(fake_pool)
    own = target.session_id
    async with target:
        with pytest.raises(SessionsConnectionError):
            await run(target, ("python", "1"))
    assert len(deletes(fake_pool)) == 1
    assert f"identifier={own}" in deletes(fake_pool)[0].raw

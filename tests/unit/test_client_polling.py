"""Asynchronous executions: 202 / non-terminal answers are polled through Operation-Location
(relative or absolute) until they end, honouring Retry-After, within the execution deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from autogen_aca_sessions.client import ExecutionStatus, ExecutionTimeoutError, SessionsClient
from tests.unit.conftest import POOL_PATH, FakeClock, FakePool

Factory = Callable[..., SessionsClient]
V = "2024-10-02-preview"


def resource(status: str, **result: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "exec-7",
        "identifier": "sess-1",
        "executionType": "Asynchronous",
        "status": status,
    }
    if result:
        body["result"] = result
    return body


def poll_requests(pool: FakePool) -> list[str]:
    return [r.raw for r in pool.requests if r.method == "GET"]


async def test_202_with_relative_operation_location_is_polled_until_done(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    location = f"/executions/exec-7?api-version={V}&identifier=sess-1"
    fake_pool.reply(
        202,
        resource("Running"),
        method="POST",
        headers={"Operation-Location": location, "operation-id": "exec-7"},
    )
    fake_pool.reply(json_body=resource("Running"), method="GET")
    fake_pool.reply(
        json_body=resource("Succeeded", stdout="63\n", stderr="", executionResult=63), method="GET"
    )
    result = await make_client(api_version=V, poll_interval=0.5).execute("sess-1", "print(7*9)")
    assert result.status is ExecutionStatus.SUCCEEDED
    assert (result.stdout, result.result, result.execution_id) == ("63\n", 63, "exec-7")
    assert poll_requests(fake_pool) == [location, location]
    assert fake_clock.sleeps == [0.5, 1.0]
    for request in fake_pool.requests:
        assert request.headers["Authorization"] == "Bearer test-token"


async def test_host_relative_operation_location_is_resolved_against_the_origin(
    make_client: Factory, fake_pool: FakePool
) -> None:
    location = f"{POOL_PATH}/executions/exec-7?api-version={V}&identifier=sess-1"
    fake_pool.reply(202, resource("Running"), method="POST", headers={"Operation-Location": location})
    fake_pool.reply(json_body=resource("Succeeded"), method="GET")
    await make_client(api_version=V).execute("sess-1", "1")
    assert poll_requests(fake_pool) == [f"/executions/exec-7?api-version={V}&identifier=sess-1"]


async def test_absolute_same_origin_operation_location_is_used(
    make_client: Factory, fake_pool: FakePool
) -> None:
    location = f"{fake_pool.endpoint}/executions/exec-7?identifier=sess-1&api-version={V}&x=1"
    fake_pool.reply(202, resource("Running"), method="POST", headers={"Operation-Location": location})
    fake_pool.reply(json_body=resource("Succeeded"), method="GET")
    await make_client(api_version=V).execute("sess-1", "1")
    assert poll_requests(fake_pool) == [f"/executions/exec-7?identifier=sess-1&api-version={V}&x=1"]


async def test_operation_location_on_another_origin_is_ignored(
    make_client: Factory, fake_pool: FakePool
) -> None:
    location = "https://attacker.example/executions/exec-7"
    fake_pool.reply(202, resource("Running"), method="POST", headers={"Operation-Location": location})
    fake_pool.reply(json_body=resource("Succeeded"), method="GET")
    await make_client(api_version=V).execute("sess-1", "1")
    assert poll_requests(fake_pool) == [f"/executions/exec-7?api-version={V}&identifier=sess-1"]


async def test_operation_location_without_query_gets_api_version_and_identifier(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(
        202, resource("Running"), method="POST", headers={"Operation-Location": "executions/exec-7"}
    )
    fake_pool.reply(json_body=resource("Succeeded"), method="GET")
    await make_client(api_version=V).execute("sess id", "1")
    assert poll_requests(fake_pool) == [f"/executions/exec-7?api-version={V}&identifier=sess%20id"]


async def test_without_operation_location_the_body_id_is_polled(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=resource("NotStarted"), method="POST")
    fake_pool.reply(json_body=resource("Running"), method="GET")
    fake_pool.reply(json_body=resource("Succeeded"), method="GET")
    result = await make_client().execute("sess-1", "1", asynchronous=True)
    assert result.succeeded
    assert (
        poll_requests(fake_pool)
        == ["/executions/exec-7?api-version=2025-10-02-preview&identifier=sess-1"] * 2
    )


async def test_202_without_body_polls_the_operation_id_header(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(202, method="POST", headers={"operation-id": "from-header"})
    fake_pool.reply(json_body={"status": "Succeeded", "result": {"stdout": "x"}}, method="GET")
    result = await make_client(api_version=V).execute("sess-1", "1", operation_id="mine")
    assert poll_requests(fake_pool) == [f"/executions/from-header?api-version={V}&identifier=sess-1"]
    assert result.execution_id == "from-header"
    assert result.stdout == "x"


async def test_202_without_anything_polls_our_operation_id(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(202, method="POST")
    fake_pool.reply(json_body={"status": "Succeeded"}, method="GET")
    result = await make_client(api_version=V).execute("sess-1", "1", operation_id="mine")
    assert poll_requests(fake_pool) == [f"/executions/mine?api-version={V}&identifier=sess-1"]
    assert result.execution_id == "mine"


async def test_retry_after_on_accepted_and_running_answers_sets_the_poll_delay(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    fake_pool.reply(202, resource("Running"), method="POST", headers={"Retry-After": "3"})
    fake_pool.reply(json_body=resource("Running"), method="GET", headers={"Retry-After": "4"})
    fake_pool.reply(json_body=resource("Succeeded"), method="GET")
    await make_client(api_version=V).execute("sess-1", "1")
    assert fake_clock.sleeps == [3.0, 4.0]


async def test_polling_gives_up_at_the_execution_deadline(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    fake_pool.reply(202, resource("Running"), method="POST")
    fake_pool.reply(json_body=resource("Running"), method="GET", repeat=True)
    client = make_client(api_version=V, execution_grace_seconds=5, poll_interval=1)
    with pytest.raises(ExecutionTimeoutError) as info:
        await client.execute("sess-1", "while True: pass", timeout_seconds=10)
    assert sum(fake_clock.sleeps) == pytest.approx(15)
    assert info.value.execution_id == "exec-7"
    assert info.value.identifier == "sess-1"
    assert info.value.timeout_seconds == 10
    assert "timeoutInSeconds=10" in str(info.value)
    assert len(poll_requests(fake_pool)) >= 7


async def test_wait_false_returns_the_first_answer(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(202, resource("Running"), method="POST")
    result = await make_client(api_version=V).execute("sess-1", "1", asynchronous=True, wait=False)
    assert result.status is ExecutionStatus.RUNNING
    assert not result.status.is_terminal
    assert poll_requests(fake_pool) == []


async def test_a_throttled_poll_is_retried(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(202, resource("Running"), method="POST")
    fake_pool.reply(503, method="GET")
    fake_pool.reply(json_body=resource("Succeeded"), method="GET")
    assert (await make_client(api_version=V).execute("sess-1", "1")).succeeded
    assert len(poll_requests(fake_pool)) == 2


async def test_failed_terminal_state_ends_polling(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(202, resource("Running"), method="POST")
    fake_pool.reply(
        json_body={
            **resource("Failed", stderr="Traceback"),
            "error": {"code": "ExecutionTimeout", "message": "m"},
        },
        method="GET",
    )
    result = await make_client(api_version=V).execute("sess-1", "1")
    assert result.status is ExecutionStatus.FAILED
    assert result.timed_out
    assert result.stderr == "Traceback"


async def test_get_execution_returns_a_running_state_without_polling(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=resource("Running"))
    result = await make_client().get_execution("sess-1", "exec-7")
    assert result.status is ExecutionStatus.RUNNING
    assert len(fake_pool.requests) == 1


async def test_a_poll_that_gets_no_answer_in_time_is_repeated(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(202, resource("Running"), method="POST")
    fake_pool.reply(json_body=resource("Running"), method="GET", delay=30)
    fake_pool.reply(json_body=resource("Succeeded"), method="GET")
    result = await make_client(api_version=V, request_timeout=0.2).execute("sess-1", "1")
    assert result.succeeded
    assert len(poll_requests(fake_pool)) == 2

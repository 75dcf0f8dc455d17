"""Fault injection (``local/frontends/dataplane/faults.py``) and what our client and executor do
with each fault.

The first half pins the injector itself on a bare aiohttp app; the second runs it inside a real
local pool and checks the promises of the client and the executor: 429 and 503 are retried
(honouring ``Retry-After``), a dropped connection or a 500 on an execution is not (a counter the
session code increments proves no block ran twice), and every failure reaches the caller as a
clear exception or result.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from autogen_aca_sessions.local.frontends.dataplane.faults import (
    POOL_FULL_ERROR_CODE,
    Fault,
    FaultInjector,
    FaultPlan,
    FaultPlanError,
    classify_operation,
)
from tests.security._support import fresh_identifier, record

# --------------------------------------------------------------------------------------------
# The plan and the middleware on their own


def test_plan_parses_the_cli_string_and_describes_itself_back() -> None:
    plan = FaultPlan.parse("429=0.2, 503=0.1,latency=200ms,drop=0.05,seed=7,ops=execute+files,next=500x2")
    assert plan.rates == {Fault.THROTTLED: 0.2, Fault.UNAVAILABLE: 0.1, Fault.DROP: 0.05}
    assert plan.latency_seconds == pytest.approx(0.2)
    assert plan.seed == 7
    assert plan.operations == frozenset({"execute", "files"})
    assert plan.schedule == (Fault.INTERNAL, Fault.INTERNAL)
    assert FaultPlan.parse(plan.describe()) == plan


@pytest.mark.parametrize(
    "text",
    [
        "429",
        "429=x",
        "429=1.5",
        "429=0.6,503=0.6",
        "teapot=0.1",
        "latency=fast",
        "ops=compile",
        "seed=abc",
        "next=429xZ",
        "retry_after=-1",
    ],
)
def test_plan_refuses_what_it_does_not_understand(text: str) -> None:
    with pytest.raises(FaultPlanError):
        FaultPlan.parse(text)


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("POST", "/subscriptions/s/resourceGroups/r/sessionPools/p/executions", "execute"),
        ("POST", "/code/execute", "execute"),
        ("GET", "/executions/abc", "poll"),
        ("GET", "/EXECUTIONS/abc/", "poll"),
        ("GET", "/files", "files"),
        ("DELETE", "/files/a.txt", "files"),
        ("GET", "/files/content/a.txt", "files"),
        ("GET", "/session", "session"),
        ("POST", "/.management/getSession", "session"),
        ("GET", "/listSessions", "list"),
        ("GET", "/metadata", "metadata"),
        ("GET", "/elsewhere", "other"),
    ],
)
def test_operations_are_told_apart_by_method_and_path(method: str, path: str, operation: str) -> None:
    assert classify_operation(method, path) == operation


class TinyApp:
    """A bare aiohttp app behind the injector, counting the calls that reach it."""

    def __init__(self, injector: FaultInjector) -> None:
        self.injector = injector
        self.reached = 0
        self.url = ""
        self.runner: web.AppRunner | None = None

    async def _handler(self, request: web.Request) -> web.Response:
        self.reached += 1
        return web.json_response({"ok": True})

    async def __aenter__(self) -> TinyApp:
        app = web.Application(middlewares=[self.injector.middleware])
        app.router.add_route("*", "/{tail:.*}", self._handler)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def _statuses(app: TinyApp, n: int, path: str = "/executions", method: str = "POST") -> list[Any]:
    out: list[Any] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            try:
                async with http.request(method, app.url + path) as resp:
                    await resp.read()
                    out.append(resp.status)
            except aiohttp.ServerDisconnectedError:
                out.append("dropped")
    return out


async def test_seeded_rates_replay_the_same_faults() -> None:
    plan = "429=0.3,503=0.2,500=0.1,drop=0.1,seed=11"
    async with TinyApp(FaultInjector(plan)) as first:
        a = await _statuses(first, 60)
    async with TinyApp(FaultInjector(plan)) as second:
        b = await _statuses(second, 60)
    assert a == b
    assert {429, 503, 500, "dropped", 200} <= set(a)
    record("fault injector requests (unit)", 120)


async def test_scheduled_faults_hit_exactly_the_next_matching_calls() -> None:
    injector = FaultInjector("next=429x2,retry_after=3,ops=execute")
    async with TinyApp(injector) as app, aiohttp.ClientSession() as http:
        async with http.get(app.url + "/files") as resp:  # not an execution: untouched
            assert resp.status == 200
        for expected in (429, 429, 200):
            async with http.post(app.url + "/executions") as resp:
                body = await resp.json()
                assert resp.status == expected
                if expected == 429:
                    assert resp.headers["Retry-After"] == "3"
                    assert resp.headers["x-ms-error-code"] == body["error"]["code"] == "TooManyRequests"
    assert injector.stats.injected["429"] == 2
    assert injector.pending == 0
    assert app.reached == 2


async def test_drop_closes_without_an_answer_before_or_after_the_handler_ran() -> None:
    injector = FaultInjector()
    async with TinyApp(injector) as app:
        injector.schedule("drop")
        assert await _statuses(app, 1) == ["dropped"]
        assert app.reached == 0
        injector.schedule(Fault.DROP_AFTER)
        assert await _statuses(app, 1) == ["dropped"]
        assert app.reached == 1
        injector.schedule("500_after")
        assert await _statuses(app, 1) == [500]
        assert app.reached == 2


async def test_pool_full_only_applies_to_calls_naming_a_session() -> None:
    injector = FaultInjector("full=1.0")
    async with TinyApp(injector) as app, aiohttp.ClientSession() as http:
        async with http.get(app.url + "/metadata") as resp:
            assert resp.status == 200
        async with http.post(app.url + "/executions?identifier=abc") as resp:
            body = await resp.json()
            assert resp.status == 404
            assert body["error"]["code"] == POOL_FULL_ERROR_CODE
    assert injector.stats.skipped["full"] == 1


async def test_latency_is_added_and_accounted() -> None:
    injector = FaultInjector("latency=50ms,jitter=10ms")
    async with TinyApp(injector) as app:
        assert await _statuses(app, 4) == [200] * 4
    assert 0.2 <= injector.stats.delayed_seconds <= 0.24 + 1e-9


async def test_a_disabled_injector_passes_everything() -> None:
    injector = FaultInjector("503=1.0")
    injector.enabled = False
    async with TinyApp(injector) as app:
        assert await _statuses(app, 3) == [200] * 3


# --------------------------------------------------------------------------------------------
# Against a real pool, through our client and executor


class PoolUnderFaults:
    def __init__(self, pool: Any, injector: FaultInjector) -> None:
        self.pool = pool
        self.injector = injector


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def faulty() -> AsyncIterator[PoolUnderFaults]:
    from autogen_aca_sessions import LocalSessionPool

    injector = FaultInjector("retry_after=0")
    async with LocalSessionPool(
        sandbox="auto", ready_sessions=2, max_concurrent_sessions=10, faults=injector
    ) as pool:
        yield PoolUnderFaults(pool, injector)


@pytest_asyncio.fixture(loop_scope="module")
async def client(faulty: PoolUnderFaults) -> AsyncIterator[Any]:
    from autogen_aca_sessions.client import SessionsClient

    faulty.injector.clear_schedule()
    async with SessionsClient(
        faulty.pool.endpoint,
        faulty.pool.credential,
        max_retries=3,
        retry_backoff_base=0.01,
        retry_backoff_max=0.05,
    ) as c:
        yield c
        faulty.injector.clear_schedule()
        # Free the slots: the pool is small and shared by the whole module.
        while CREATED:
            with contextlib.suppress(Exception):
                await c.delete_session(CREATED.pop())


BUMP = "counter = globals().get('counter', 0) + 1\ncounter"


async def _counter(client: Any, identifier: str) -> int:
    result = await client.execute(identifier, "globals().get('counter', 0)")
    assert result.succeeded, result
    return int(result.result)


async def _retrying(call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return await call(*args)


CREATED: list[str] = []


def _created(name: str) -> str:
    """A fresh identifier, remembered so that the module deletes its session at the end."""
    identifier = fresh_identifier(name)
    CREATED.append(identifier)
    return identifier


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("fault", ["429", "503"])
async def test_client_retries_throttling_and_unavailability_and_the_code_runs_once(
    faulty: PoolUnderFaults, client: Any, fault: str
) -> None:
    ident = _created("retry")
    await client.execute(ident, "counter = 0")
    faulty.injector.schedule(fault, 2, operations=["execute"])
    result = await client.execute(ident, BUMP)
    assert result.succeeded
    assert result.result == 1
    assert faulty.injector.pending == 0
    assert await _counter(client, ident) == 1
    record("injected faults survived (client)", 2)


@pytest.mark.asyncio(loop_scope="module")
async def test_client_gives_up_on_persistent_throttling_with_a_clear_error(
    faulty: PoolUnderFaults, client: Any
) -> None:
    from autogen_aca_sessions.client import ThrottledError

    ident = _created("throttled")
    await client.execute(ident, "counter = 0")
    faulty.injector.schedule("429", 4, operations=["execute"])
    with pytest.raises(ThrottledError) as info:
        await client.execute(ident, BUMP)
    assert info.value.status_code == 429
    assert info.value.retry_after == 0
    assert "429" in str(info.value)
    assert await _counter(client, ident) == 0
    record("injected faults survived (client)", 4)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("fault", "ran"),
    [("drop", 0), ("drop_after", 1), ("500", 0), ("500_after", 1)],
)
async def test_execution_is_never_retried_after_a_drop_or_a_500_so_no_block_runs_twice(
    faulty: PoolUnderFaults, client: Any, fault: str, ran: int
) -> None:
    from autogen_aca_sessions.client import ServerError, SessionsConnectionError

    ident = _created("noretry")
    await client.execute(ident, "counter = 0")
    faulty.injector.schedule(fault, 1, operations=["execute"])
    expected = SessionsConnectionError if fault.startswith("drop") else ServerError
    with pytest.raises(expected) as info:
        await client.execute(ident, BUMP)
    assert faulty.injector.pending == 0
    assert await _counter(client, ident) == ran
    if expected is ServerError:
        assert info.value.status_code == 500  # type: ignore[attr-defined]
    else:
        assert "not retried" in str(info.value)
    record("injected faults survived (client)")


@pytest.mark.asyncio(loop_scope="module")
async def test_idempotent_reads_survive_a_dropped_connection(faulty: PoolUnderFaults, client: Any) -> None:
    ident = _created("read")
    await client.upload_file(ident, "a.txt", b"hello")
    faulty.injector.schedule("drop", 1, operations=["files"])
    assert await client.download_file(ident, "a.txt") == b"hello"
    assert faulty.injector.pending == 0
    record("injected faults survived (client)")


@pytest.mark.asyncio(loop_scope="module")
async def test_pool_full_reaches_the_caller_as_pool_full_error(faulty: PoolUnderFaults, client: Any) -> None:
    from autogen_aca_sessions.client import PoolFullError

    faulty.injector.schedule("full", 1, operations=["execute"])
    with pytest.raises(PoolFullError) as info:
        await client.execute(_created("full"), "1")
    assert info.value.status_code == 404
    record("injected faults survived (client)")


@pytest.mark.asyncio(loop_scope="module")
async def test_an_expired_session_comes_back_fresh_and_the_lost_state_shows(
    faulty: PoolUnderFaults, client: Any
) -> None:
    ident = _created("expire")
    await client.execute(ident, "counter = 41")
    faulty.injector.schedule("expire", 1, operations=["execute"])
    result = await client.execute(ident, "counter + 1")
    assert faulty.injector.stats.injected["expire"] >= 1
    assert not result.succeeded
    assert "NameError" in result.stderr
    record("injected faults survived (client)")


@pytest.mark.asyncio(loop_scope="module")
async def test_a_seeded_storm_of_faults_loses_and_repeats_nothing(
    faulty: PoolUnderFaults, client: Any
) -> None:
    """20 executions under random 429/503 (seeded): each ran exactly once, in order."""
    from autogen_aca_sessions.client import SessionsClient

    before = sum(faulty.injector.stats.injected[k] for k in ("429", "503"))
    faulty.injector.replace_plan("429=0.3,503=0.2,retry_after=0,seed=7,ops=execute")
    try:
        async with SessionsClient(
            faulty.pool.endpoint,
            faulty.pool.credential,
            max_retries=12,
            retry_backoff_base=0.01,
            retry_backoff_max=0.02,
        ) as c:
            ident = _created("storm")
            await _retrying(c.execute, ident, "counter = 0")
            values = [(await c.execute(ident, BUMP)).result for _ in range(20)]
            assert values == list(range(1, 21))
            faulty.injector.replace_plan("retry_after=0")
            assert await _counter(c, ident) == 20
    finally:
        faulty.injector.replace_plan("retry_after=0")
    injected = sum(faulty.injector.stats.injected[k] for k in ("429", "503")) - before
    assert injected > 0
    record("injected faults survived (seeded storm)", injected)


@pytest.mark.asyncio(loop_scope="module")
async def test_faults_never_touch_unauthenticated_calls(faulty: PoolUnderFaults, client: Any) -> None:
    """A caller without the key gets 401 and cannot consume (or trigger) a scheduled fault."""
    ident = _created("unauth")
    await client.execute(ident, "counter = 7")
    faulty.injector.schedule("expire", 1, operations=["execute"])
    url = f"{faulty.pool.endpoint}/executions?api-version=2025-10-02-preview&identifier={ident}"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"code": "1"}, headers={"Authorization": "Bearer wrong"}) as resp:
            assert resp.status == 401
        async with http.post(url, json={"code": "1"}) as resp:
            assert resp.status == 401
    assert faulty.injector.pending == 1
    faulty.injector.clear_schedule()
    assert await _counter(client, ident) == 7


# --- the executor ---------------------------------------------------------------------------


async def _executor(faulty: PoolUnderFaults) -> Any:
    from autogen_aca_sessions import ACADynamicSessionsCodeExecutor

    executor = ACADynamicSessionsCodeExecutor(faulty.pool.endpoint, faulty.pool.credential, timeout=30)
    await executor.start()
    return executor


async def _run(executor: Any, code: str) -> Any:
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock

    return await executor.execute_code_blocks([CodeBlock(code=code, language="python")], CancellationToken())


async def _with_executor(faulty: PoolUnderFaults, body: Callable[[Any], Awaitable[None]]) -> None:
    executor = await _executor(faulty)
    try:
        faulty.injector.clear_schedule()
        first = await _run(executor, "counter = 0\nprint('ready')")
        assert first.exit_code == 0, first.output
        await body(executor)
    finally:
        faulty.injector.clear_schedule()
        await executor.stop()


async def _executor_counter(executor: Any) -> int:
    result = await _run(executor, "print(globals().get('counter', 0))")
    assert result.exit_code == 0, result.output
    numbers = [line for line in result.output.splitlines() if line.strip().isdigit()]
    assert numbers, result.output
    return int(numbers[0])


@pytest.mark.asyncio(loop_scope="module")
async def test_executor_rides_out_throttling(faulty: PoolUnderFaults) -> None:
    async def body(executor: Any) -> None:
        faulty.injector.schedule("429", 2, operations=["execute"])
        result = await _run(executor, "counter += 1\nprint(counter)")
        assert result.exit_code == 0, result.output
        assert await _executor_counter(executor) == 1

    await _with_executor(faulty, body)
    record("injected faults survived (executor)", 2)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("fault", "ran"), [("drop_after", 1), ("500_after", 1), ("drop", 0)])
async def test_executor_surfaces_a_lost_answer_as_an_exception_and_never_reruns_the_block(
    faulty: PoolUnderFaults, fault: str, ran: int
) -> None:
    from autogen_aca_sessions.client import SessionsError

    async def body(executor: Any) -> None:
        faulty.injector.schedule(fault, 1, operations=["execute"])
        with pytest.raises(SessionsError):
            await _run(executor, "counter += 1\nprint(counter)")
        assert await _executor_counter(executor) == ran

    await _with_executor(faulty, body)
    record("injected faults survived (executor)")


@pytest.mark.asyncio(loop_scope="module")
async def test_executor_reports_lost_state_after_an_expired_session_as_a_failed_block(
    faulty: PoolUnderFaults,
) -> None:
    async def body(executor: Any) -> None:
        faulty.injector.schedule("expire", 1, operations=["execute"])
        result = await _run(executor, "counter += 1\nprint(counter)")
        assert result.exit_code != 0
        assert "NameError" in result.output

    await _with_executor(faulty, body)
    record("injected faults survived (executor)")

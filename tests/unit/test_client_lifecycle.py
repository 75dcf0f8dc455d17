"""One pooled HTTP session per client, created lazily and released on close; external
sessions left alone; cancellation and client-side waiting limits."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

import aiohttp
import pytest

from autogen_aca_sessions.client import (
    AiohttpTransport,
    ExecutionTimeoutError,
    RequestMayHaveRunError,
    SessionsClient,
    SessionsConnectionError,
    SessionsError,
    UploadOutcomeUnknownError,
)
from tests.unit.conftest import FakePool

Factory = Callable[..., SessionsClient]
OK = {"status": "Succeeded", "result": {"stdout": "", "stderr": ""}}


def http_session(client: SessionsClient) -> aiohttp.ClientSession | None:
    """The HTTP session of the client's default transport (None before its first request)."""
    transport = client.transport
    assert isinstance(transport, AiohttpTransport)
    return transport.session


async def test_session_is_created_lazily_and_reused_across_calls(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"value": []}, repeat=True)
    client = make_client()
    assert http_session(client) is None  # nothing created outside a running request
    await client.list_files("sess-1")
    session = http_session(client)
    assert isinstance(session, aiohttp.ClientSession)
    await client.list_files("sess-1")
    await client.list_files("sess-1")
    assert http_session(client) is session
    # Kept-alive connection: every request came from the same client port.
    assert len({r.peer for r in fake_pool.requests}) == 1


async def test_close_releases_our_session_and_later_calls_fail(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"value": []}, repeat=True)
    client = make_client()
    await client.list_files("sess-1")
    session = http_session(client)
    assert session is not None
    await client.close()
    assert session.closed
    await client.close()  # idempotent
    with pytest.raises(SessionsError, match="closed"):
        await client.list_files("sess-1")


async def test_async_with_closes_the_client(fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"value": []})
    async with SessionsClient(fake_pool.endpoint, "t") as client:
        await client.list_files("sess-1")
        session = http_session(client)
    assert session is not None
    assert session.closed


async def test_external_session_is_used_and_not_closed(fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"value": []})
    async with aiohttp.ClientSession() as external:
        async with SessionsClient(fake_pool.endpoint, "t", session=external) as client:
            await client.list_files("sess-1")
            assert http_session(client) is external
        assert not external.closed
    assert len(fake_pool.requests) == 1


async def test_cancelling_a_call_cancels_the_request_and_leaves_the_client_usable(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=OK, method="POST", delay=30)
    fake_pool.reply(json_body={"value": []}, method="GET")
    client = make_client()
    task = asyncio.create_task(client.execute("sess-1", "import time; time.sleep(30)"))
    await fake_pool.request_seen.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    session = http_session(client)
    assert session is not None
    assert not session.closed
    assert await client.list_files("sess-1") == []


async def test_execution_that_outlives_timeout_plus_grace_raises_execution_timeout(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=OK, delay=30)
    client = make_client(execution_grace_seconds=0.2)
    with pytest.raises(ExecutionTimeoutError) as info:
        await client.execute("sess-1", "while True: pass", timeout_seconds=1, operation_id="op-5")
    error = info.value
    assert error.identifier == "sess-1"
    assert error.execution_id == "op-5"
    assert error.timeout_seconds == 1
    assert "sess-1" in str(error)
    assert "timeoutInSeconds=1" in str(error)
    assert len(fake_pool.requests) == 1  # never resent


async def test_slow_non_execution_request_raises_connection_error(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"value": []}, delay=30, repeat=True)
    with pytest.raises(SessionsConnectionError, match="no answer within") as info:
        await make_client(request_timeout=0.3, max_retries=1).list_files("sess-1")
    assert info.value.method == "GET"
    assert isinstance(info.value, RequestMayHaveRunError)
    assert not isinstance(info.value, UploadOutcomeUnknownError)
    # A read-only request is asked again once (max_retries=1) before giving up.
    assert len(fake_pool.requests) == 2


async def test_slow_upload_says_it_may_have_completed(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"name": "a"}, delay=30)
    with pytest.raises(SessionsConnectionError, match="may or may not have completed") as info:
        await make_client(request_timeout=0.3).upload_file("sess-1", "a", b"x")
    assert isinstance(info.value, UploadOutcomeUnknownError)
    assert len(fake_pool.requests) == 1


def test_a_client_can_be_used_from_successive_event_loops() -> None:
    # Sync on purpose: two asyncio.run() calls, as a script calling the client twice would do.
    # The endpoint refuses connections, so each run must end in a clean SessionsConnectionError
    # (its never-sent kind, RequestNotSentError) rather than an error about a session bound to
    # the first (closed) loop.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = SessionsClient(f"http://127.0.0.1:{port}/pool", "t", max_retries=0)

    async def once() -> str:
        try:
            await client.list_files("sess-1")
        except SessionsConnectionError as exc:
            return type(exc).__name__
        return "no error"

    assert asyncio.run(once()) == "RequestNotSentError"
    assert asyncio.run(once()) == "RequestNotSentError"
    asyncio.run(client.close())


def test_the_http_session_of_an_earlier_event_loop_is_released() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = SessionsClient(f"http://127.0.0.1:{port}/pool", "t", max_retries=0)
    sessions: list[aiohttp.ClientSession] = []

    async def once() -> None:
        with contextlib.suppress(SessionsConnectionError):
            await client.list_files("sess-1")
        assert http_session(client) is not None
        sessions.append(http_session(client))

    asyncio.run(once())
    first = sessions[0]
    connector = first.connector
    assert connector is not None
    asyncio.run(once())
    assert sessions[1] is not first
    assert first.closed
    assert connector.closed
    asyncio.run(client.close())

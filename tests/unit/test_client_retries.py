"""Bounded retries with backoff and Retry-After, and the rule that an execution (or upload)
that may have reached the server is never sent twice."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from autogen_aca_sessions.client import (
    AiohttpTransport,
    RequestMayHaveRunError,
    RequestNotSentError,
    ServerError,
    ServiceUnavailableError,
    SessionsClient,
    SessionsConnectionError,
    ThrottledError,
    UploadOutcomeUnknownError,
)
from tests.unit.conftest import FakeClock, FakePool

Factory = Callable[..., SessionsClient]
OK = {"id": "e1", "status": "Succeeded", "result": {"stdout": "ok\n", "stderr": "", "executionResult": ""}}


async def test_429_with_retry_after_seconds_then_success(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    fake_pool.reply(
        429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, headers={"Retry-After": "2"}
    )
    fake_pool.reply(json_body=OK)
    result = await make_client().execute("sess-1", "print('ok')", operation_id="op-1")
    assert result.stdout == "ok\n"
    assert len(fake_pool.requests) == 2
    assert fake_clock.sleeps == [2.0]
    # The resend is the same execution: same operation id, same body.
    assert [r.headers["operation-id"] for r in fake_pool.requests] == ["op-1", "op-1"]
    assert fake_pool.requests[0].body == fake_pool.requests[1].body


async def test_429_with_retry_after_http_date(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=20)
    fake_pool.reply(429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    fake_pool.reply(json_body={"value": []})
    await make_client().list_files("sess-1")
    (slept,) = fake_clock.sleeps
    assert 15 < slept <= 20


async def test_retry_after_ms_header_is_honoured(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    fake_pool.reply(503, headers={"retry-after-ms": "1500"})
    fake_pool.reply(json_body={"value": []})
    await make_client().list_files("sess-1")
    assert fake_clock.sleeps == [1.5]


async def test_retry_after_is_capped_by_backoff_max(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    fake_pool.reply(429, headers={"Retry-After": "3600"})
    fake_pool.reply(json_body={"value": []})
    await make_client(retry_backoff_max=5).list_files("sess-1")
    assert fake_clock.sleeps == [5]


async def test_unparseable_retry_after_falls_back_to_backoff(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    fake_pool.reply(503, headers={"Retry-After": "soon"})
    fake_pool.reply(json_body={"value": []})
    await make_client(retry_backoff_base=0.25).list_files("sess-1")
    assert fake_clock.sleeps == [0.25]


async def test_503_on_execute_is_retried(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(503, text="busy")
    fake_pool.reply(json_body=OK)
    assert (await make_client().execute("sess-1", "1")).succeeded
    assert len(fake_pool.requests) == 2


async def test_exhausted_throttling_raises_with_exponential_backoff(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    fake_pool.reply(429, {"error": {"code": "TooManyRequests", "message": "no"}}, repeat=True)
    with pytest.raises(ThrottledError) as info:
        await make_client(max_retries=3, retry_backoff_base=0.1).execute("sess-1", "1")
    assert len(fake_pool.requests) == 4
    assert fake_clock.sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert info.value.status_code == 429
    assert "3 retries" in str(info.value)


async def test_backoff_has_jitter_in_the_upper_half(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    fake_pool.reply(503, repeat=True)
    fake_clock.lowest_jitter = True
    client = make_client(max_retries=2, retry_backoff_base=1.0)
    with pytest.raises(ServiceUnavailableError):
        await client.list_files("sess-1")
    assert fake_clock.sleeps == [0.5, 1.0]


async def test_max_retries_zero_means_one_attempt(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(503, repeat=True)
    with pytest.raises(ServiceUnavailableError):
        await make_client(max_retries=0).list_files("sess-1")
    assert len(fake_pool.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_server_and_gateway_errors_are_retried_for_idempotent_requests(
    status: int, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(status, method="GET")
    fake_pool.reply(json_body={"value": []}, method="GET")
    fake_pool.reply(status, method="DELETE")
    fake_pool.reply(204, method="DELETE")
    client = make_client()
    assert await client.list_files("sess-1") == []
    await client.delete_session("sess-1")
    assert [r.method for r in fake_pool.requests] == ["GET", "GET", "DELETE", "DELETE"]


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_server_errors_on_execute_are_never_retried(
    status: int, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(status, {"error": {"code": "InternalServerError", "message": "boom"}}, repeat=True)
    with pytest.raises(ServerError) as info:
        await make_client().execute("sess-1", "launch_missiles()")
    assert len(fake_pool.requests) == 1
    assert info.value.status_code == status


async def test_server_errors_on_upload_are_never_retried(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(502, repeat=True)
    with pytest.raises(ServerError):
        await make_client().upload_file("sess-1", "a.txt", b"x")
    assert len(fake_pool.requests) == 1


async def test_server_disconnect_mid_execute_is_not_retried(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(disconnect=True, repeat=True)
    with pytest.raises(SessionsConnectionError, match="not retried because it may have run") as info:
        await make_client().execute("sess-1", "launch_missiles()")
    assert len(fake_pool.requests) == 1
    assert info.value.method == "POST"
    assert isinstance(info.value.__cause__, aiohttp.ClientError)
    assert isinstance(info.value, RequestMayHaveRunError)
    assert not isinstance(info.value, UploadOutcomeUnknownError)


async def test_server_disconnect_mid_upload_is_not_retried(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(disconnect=True, repeat=True)
    with pytest.raises(SessionsConnectionError) as info:
        await make_client().upload_file("sess-1", "a.txt", b"x")
    assert len(fake_pool.requests) == 1
    assert isinstance(info.value, UploadOutcomeUnknownError)


async def test_server_disconnect_on_a_read_is_retried(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(disconnect=True)
    fake_pool.reply(json_body={"value": [{"name": "a"}]})
    files = await make_client().list_files("sess-1")
    assert [f.name for f in files] == ["a"]
    assert len(fake_pool.requests) == 2


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_retried_then_raised(make_client: Factory, fake_clock: FakeClock) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}/pool"
    with pytest.raises(SessionsConnectionError, match="could not connect") as info:
        await make_client(endpoint, max_retries=2).execute("sess-1", "1")
    assert len(fake_clock.sleeps) == 2
    assert "3 attempt(s)" in str(info.value)
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
    assert isinstance(info.value, RequestNotSentError)


class _RefusingConnector(aiohttp.TCPConnector):
    """A real connector whose first ``refusals`` connects fail as a refused (or timed-out) connect
    would: through aiohttp's public connector seam, so the transport's own mapping of aiohttp's
    errors is what the client sees."""

    def __init__(self, refusals: int, *, timeout: bool) -> None:
        super().__init__()
        self.remaining = refusals
        self.timeout = timeout

    async def connect(self, req: Any, traces: Any, timeout: aiohttp.ClientTimeout) -> Any:
        if self.remaining > 0:
            self.remaining -= 1
            if self.timeout:
                raise aiohttp.ConnectionTimeoutError("Connection timeout to host")
            key = SimpleNamespace(host="127.0.0.1", port=1, ssl=True)
            raise aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))  # type: ignore[arg-type]
        return await super().connect(req, traces, timeout)


@pytest.fixture
async def refusing() -> AsyncIterator[Callable[..., AiohttpTransport]]:
    """Transports whose first connects are refused (they never reach the server)."""
    sessions: list[aiohttp.ClientSession] = []

    def make(refusals: int, *, timeout: bool = False) -> AiohttpTransport:
        session = aiohttp.ClientSession(connector=_RefusingConnector(refusals, timeout=timeout))
        sessions.append(session)
        return AiohttpTransport(session=session)

    yield make
    for session in sessions:
        await session.close()


async def test_execute_is_resent_after_a_connect_failure(
    make_client: Factory,
    fake_pool: FakePool,
    refusing: Callable[..., AiohttpTransport],
    fake_clock: FakeClock,
) -> None:
    fake_pool.reply(json_body=OK)
    result = await make_client(transport=refusing(2)).execute("sess-1", "1")
    assert result.succeeded
    assert len(fake_pool.requests) == 1  # the two refused attempts never reached the pool
    assert len(fake_clock.sleeps) == 2


async def test_upload_is_resent_after_a_connect_failure_with_a_fresh_form(
    make_client: Factory,
    fake_pool: FakePool,
    refusing: Callable[..., AiohttpTransport],
    fake_clock: FakeClock,
) -> None:
    fake_pool.reply(json_body={"name": "a.txt"})
    entry = await make_client(transport=refusing(1)).upload_file("sess-1", "a.txt", b"payload")
    assert entry.name == "a.txt"
    assert fake_pool.requests[0].form == {"file": ("a.txt", b"payload")}
    assert len(fake_clock.sleeps) == 1


async def test_execute_is_resent_after_a_connect_timeout(
    make_client: Factory,
    fake_pool: FakePool,
    refusing: Callable[..., AiohttpTransport],
    fake_clock: FakeClock,
) -> None:
    fake_pool.reply(json_body=OK)
    assert (await make_client(transport=refusing(1, timeout=True)).execute("sess-1", "1")).succeeded
    assert len(fake_pool.requests) == 1
    assert len(fake_clock.sleeps) == 1


async def test_repeated_disconnects_on_a_read_use_our_retries(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    # aiohttp itself resends an idempotent request once after a disconnect; the third
    # attempt is ours.
    fake_pool.reply(disconnect=True)
    fake_pool.reply(disconnect=True)
    fake_pool.reply(json_body={"value": []})
    assert await make_client().list_files("sess-1") == []
    assert len(fake_pool.requests) == 3
    assert len(fake_clock.sleeps) == 1


async def test_disconnects_on_a_read_give_up_after_max_retries(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(disconnect=True, repeat=True)
    with pytest.raises(SessionsConnectionError, match="attempt"):
        await make_client(max_retries=1).list_files("sess-1")


async def test_throttling_retries_stop_at_the_execution_deadline(
    make_client: Factory, fake_pool: FakePool, fake_clock: FakeClock
) -> None:
    # timeout 5 s + grace 10 s = a 15 s budget for the whole execution, retries included.
    fake_pool.reply(429, headers={"Retry-After": "10"}, repeat=True, method="POST")
    client = make_client(max_retries=5, execution_grace_seconds=10)
    with pytest.raises(ThrottledError):
        await client.execute("sess-1", "1", timeout_seconds=5)
    # One wait of 10 s fits the budget; a second one would not, so no third attempt.
    assert fake_clock.sleeps == [10.0]
    assert len(fake_pool.requests) == 2


async def test_read_timeout_on_a_get_is_retried(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"value": []}, delay=30, method="GET")
    fake_pool.reply(json_body={"value": [{"name": "a.txt"}]}, method="GET")
    files = await make_client(request_timeout=0.3).list_files("sess-1")
    assert [f.name for f in files] == ["a.txt"]
    assert len(fake_pool.requests) == 2


async def test_read_timeout_on_an_execution_is_not_retried(make_client: Factory, fake_pool: FakePool) -> None:
    from autogen_aca_sessions.client import ExecutionTimeoutError

    fake_pool.reply(json_body=OK, delay=30, repeat=True)
    with pytest.raises(ExecutionTimeoutError):
        await make_client(execution_grace_seconds=0.3).execute("sess-1", "1", timeout_seconds=1)
    assert len(fake_pool.requests) == 1


def test_connect_timeout_class_falls_back_on_old_aiohttp() -> None:
    from autogen_aca_sessions.client.aiohttp_transport import _connect_timeout_error

    assert _connect_timeout_error(aiohttp) is aiohttp.ConnectionTimeoutError
    # aiohttp < 3.10 has no ConnectionTimeoutError: nothing may then be treated as "never
    # reached the server", least of all its generic ServerTimeoutError (also read timeouts).
    old = SimpleNamespace(ServerTimeoutError=aiohttp.ServerTimeoutError)
    fallback = _connect_timeout_error(old)
    assert not issubclass(aiohttp.ServerTimeoutError, fallback)
    assert not issubclass(fallback, aiohttp.ClientError)

"""The public transport seam: a caller's transport sees each attempt as built (URL, headers,
body), its answers are parsed as the default transport's are, and the failure types it raises
decide what is retried, exactly as for the default transport."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from autogen_aca_sessions.client import (
    ExecutionTimeoutError,
    FileUpload,
    RequestMayHaveRunError,
    RequestNotSentError,
    ResponseTimeoutError,
    SessionsClient,
    Transport,
    TransportRequest,
    TransportResponse,
)
from tests.unit.conftest import FakeClock

ENDPOINT = "https://eastus.dynamicsessions.io/subscriptions/s/resourceGroups/r/sessionPools/p"
OK = {"status": "Succeeded", "result": {"stdout": "hi\n", "stderr": "", "executionResult": 2}}

Step = Callable[[TransportRequest], TransportResponse]


class ScriptedTransport:
    """Answers attempts with scripted steps (a response, or a raised failure) and records them."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.sent: list[TransportRequest] = []
        self.closed = False

    async def send(self, request: TransportRequest) -> TransportResponse:
        self.sent.append(request)
        return self.steps.pop(0)(request)

    async def close(self) -> None:
        self.closed = True


def answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> Step:
    payload = json.dumps(body).encode() if body is not None else b""
    return lambda _: TransportResponse(status, headers or {}, payload)


def fail(error: Exception) -> Step:
    def step(request: TransportRequest) -> TransportResponse:
        raise error

    return step


def client_over(transport: ScriptedTransport, **options: object) -> SessionsClient:
    return SessionsClient(ENDPOINT, "tok", transport=transport, clock=FakeClock(), **options)  # type: ignore[arg-type]


async def test_a_callers_transport_sends_the_built_request_and_its_answer_is_parsed() -> None:
    transport = ScriptedTransport(answer(200, OK, {"X-MS-SESSION-GUID": "g-1"}))
    assert isinstance(transport, Transport)
    client = client_over(transport)

    result = await client.execute("sess-1", "print('hi')", timeout_seconds=5, operation_id="op-1")

    assert result.stdout == "hi\n"
    assert result.session_guid == "g-1"  # header looked up whatever its letter case
    (sent,) = transport.sent
    assert sent.method == "POST"
    assert sent.url == f"{ENDPOINT}/executions?api-version=2025-10-02-preview&identifier=sess-1"
    assert sent.headers["Authorization"] == "Bearer tok"
    assert sent.headers["operation-id"] == "op-1"
    assert sent.headers["Content-Type"] == "application/json"
    assert isinstance(sent.body, bytes)
    assert json.loads(sent.body)["code"] == "print('hi')"
    assert sent.timeout == 15  # timeoutInSeconds plus the default 10 s grace
    assert sent.connect_timeout == 15


async def test_an_upload_reaches_the_transport_as_one_file_part() -> None:
    transport = ScriptedTransport(answer(200, {"name": "a b.txt"}))
    await client_over(transport).upload_file("sess-1", "a b.txt", b"payload")
    (sent,) = transport.sent
    assert sent.body == FileUpload("file", "a b.txt", b"payload")
    assert "Content-Type" not in sent.headers  # the transport's multipart encoder sets it


async def test_not_sent_is_retried_even_for_an_execution() -> None:
    refused = RequestNotSentError("could not connect: refused")
    transport = ScriptedTransport(fail(refused), answer(200, OK))
    assert (await client_over(transport).execute("sess-1", "1")).succeeded
    assert len(transport.sent) == 2


async def test_a_broken_execution_is_never_resent_and_keeps_the_transports_cause() -> None:
    cause = OSError("reset by peer")
    broken = RequestMayHaveRunError("connection reset")
    broken.__cause__ = cause
    transport = ScriptedTransport(fail(broken), answer(200, OK))
    with pytest.raises(RequestMayHaveRunError, match="not retried because it may have run") as info:
        await client_over(transport).execute("sess-1", "launch()")
    assert len(transport.sent) == 1
    assert info.value.__cause__ is cause
    assert info.value.method == "POST"


async def test_a_response_timeout_on_an_execution_is_an_execution_timeout() -> None:
    transport = ScriptedTransport(fail(ResponseTimeoutError("no answer within 2 s")), answer(200, OK))
    with pytest.raises(ExecutionTimeoutError):
        await client_over(transport, execution_grace_seconds=1).execute("sess-1", "1", timeout_seconds=1)
    assert len(transport.sent) == 1


async def test_a_failure_a_retry_cannot_fix_is_raised_at_once() -> None:
    tls = RequestNotSentError("TLS error talking to the pool", retryable=False)
    transport = ScriptedTransport(fail(tls), answer(200, {"value": []}))
    with pytest.raises(RequestNotSentError) as info:
        await client_over(transport).list_files("sess-1")
    assert info.value is tls
    assert len(transport.sent) == 1


async def test_closing_the_client_leaves_a_callers_transport_open() -> None:
    transport = ScriptedTransport()
    client = client_over(transport)
    await client.close()
    assert not transport.closed
    assert client.transport is transport


def test_a_transport_cannot_be_combined_with_session_or_ssl() -> None:
    with pytest.raises(ValueError, match="to the transport"):
        SessionsClient(ENDPOINT, "tok", transport=ScriptedTransport(), ssl=False)

"""The kind of a transport failure is its type: never sent, may have run, upload outcome unknown.

Each stays a ``SessionsConnectionError`` and a builtin ``ConnectionError`` for code written
against the single class."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from autogen_aca_sessions import PoolFullError as TopLevelPoolFullError
from autogen_aca_sessions.client import (
    PoolFullError,
    RequestMayHaveRunError,
    RequestNotSentError,
    SessionsClient,
    SessionsConnectionError,
    UploadOutcomeUnknownError,
)
from tests.unit.conftest import FakeClock, FakePool

Factory = Callable[..., SessionsClient]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_kind_is_a_connection_error() -> None:
    for kind in (RequestNotSentError, RequestMayHaveRunError, UploadOutcomeUnknownError):
        assert issubclass(kind, SessionsConnectionError)
        assert issubclass(kind, ConnectionError)
    assert issubclass(UploadOutcomeUnknownError, RequestMayHaveRunError)
    assert not issubclass(RequestNotSentError, RequestMayHaveRunError)


async def test_a_refused_connection_is_never_sent(make_client: Factory, fake_clock: FakeClock) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}/pool"
    with pytest.raises(RequestNotSentError):
        await make_client(endpoint, max_retries=1).execute("sess-1", "1")


async def test_a_broken_execute_may_have_run(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(disconnect=True, repeat=True)
    with pytest.raises(RequestMayHaveRunError) as info:
        await make_client().execute("sess-1", "launch_missiles()")
    assert not isinstance(info.value, UploadOutcomeUnknownError)
    assert len(fake_pool.requests) == 1


async def test_a_broken_upload_has_an_unknown_outcome(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(disconnect=True, repeat=True)
    with pytest.raises(UploadOutcomeUnknownError):
        await make_client().upload_file("sess-1", "a.txt", b"x")
    assert len(fake_pool.requests) == 1


async def test_an_unanswered_upload_has_an_unknown_outcome(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"name": "a"}, delay=30)
    with pytest.raises(UploadOutcomeUnknownError):
        await make_client(request_timeout=0.3).upload_file("sess-1", "a", b"x")


async def test_an_unanswered_read_may_have_run_but_is_no_upload(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"value": []}, delay=30, repeat=True)
    with pytest.raises(RequestMayHaveRunError) as info:
        await make_client(request_timeout=0.3, max_retries=0).list_files("sess-1")
    assert not isinstance(info.value, UploadOutcomeUnknownError)


def test_the_top_level_pool_full_error_is_the_clients() -> None:
    assert TopLevelPoolFullError is PoolFullError

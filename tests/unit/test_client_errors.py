"""HTTP failures become typed exceptions that keep status, service code, body, headers,
method and URL, with messages that say what to do."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autogen_aca_sessions.client import (
    AuthenticationError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PoolFullError,
    PoolNotFoundError,
    ServerError,
    ServiceUnavailableError,
    SessionsClient,
    SessionsError,
    SessionsHTTPError,
    ThrottledError,
    ValidationError,
)
from tests.unit.conftest import FakePool

Factory = Callable[..., SessionsClient]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ValidationError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, SessionsHTTPError),
        (413, PayloadTooLargeError),
        (429, ThrottledError),
        (500, ServerError),
        (503, ServiceUnavailableError),
        (507, ServerError),
    ],
)
async def test_status_maps_to_error_class(
    status: int, cls: type[SessionsHTTPError], make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(status, {"error": {"code": "SomeCode", "message": "what happened"}}, repeat=True)
    with pytest.raises(SessionsHTTPError) as info:
        await make_client(max_retries=0).get_file("sess-1", "a.csv")
    assert type(info.value) is cls
    error = info.value
    assert isinstance(error, SessionsError)
    assert error.status_code == status
    assert error.error_code == "SomeCode"
    assert error.method == "GET"
    assert error.url == f"{fake_pool.endpoint}/files/a.csv?api-version=2025-10-02-preview&identifier=sess-1"
    assert "what happened" in error.message
    assert '"code": "SomeCode"' in error.body
    assert error.headers["Content-Type"] == "application/json"
    text = str(error)
    assert f"HTTP {status}" in text
    assert "(SomeCode)" in text
    assert "GET " in text
    assert "what happened" in text


async def test_header_error_code_wins_over_body(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(
        400, {"error": {"code": "FromBody", "message": "m"}}, headers={"x-ms-error-code": "FromHeader"}
    )
    with pytest.raises(ValidationError) as info:
        await make_client().list_files("sess-1")
    assert info.value.error_code == "FromHeader"


async def test_403_names_the_session_executor_role(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(403, text="Forbidden")
    with pytest.raises(PermissionDeniedError) as info:
        await make_client().execute("sess-1", "1")
    assert "Azure ContainerApps Session Executor" in str(info.value)
    assert "Forbidden" in str(info.value)


POOL_FULL_BODY = {"error": {"code": "SessionPoolFull", "message": "The pool is at maxConcurrentSessions=5"}}


@pytest.mark.parametrize("operation", ["execute", "upload"])
async def test_the_pool_full_answer_on_a_session_creating_call_is_pool_full(
    operation: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(404, POOL_FULL_BODY)
    client = make_client()
    call = (
        client.execute("sess-1", "1") if operation == "execute" else client.upload_file("sess-1", "a", b"x")
    )
    with pytest.raises(PoolFullError) as info:
        await call
    assert isinstance(info.value, NotFoundError)
    assert "maxConcurrentSessions" in str(info.value)
    assert "check the URL" not in str(info.value)
    assert len(fake_pool.requests) == 1


@pytest.mark.parametrize("version", ["2024-02-02-preview", "2024-10-02-preview"])
async def test_pool_full_on_legacy_and_new_execute_is_pool_full(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(404, POOL_FULL_BODY)
    with pytest.raises(PoolFullError):
        await make_client(api_version=version).execute("sess-1", "1")


@pytest.mark.parametrize(
    ("operation", "reply"),
    [
        # The local pool's (and Azure's) answer for a pool name it does not host.
        ("execute", {"json_body": {"error": {"code": "SessionPoolNotFound", "message": "no pool 'x'"}}}),
        # A wrong path (the ARM resource path, '/code/execute' appended): a bare 404.
        ("execute", {"text": "Not Found"}),
        ("execute", {"text": ""}),
        ("upload", {"text": "404: Not Found"}),
        # SessionPoolNotFound says so whatever the call.
        ("list", {"json_body": {"error": {"code": "SessionPoolNotFound", "message": "no pool 'x'"}}}),
    ],
)
@pytest.mark.parametrize("version", ["2024-02-02-preview", "2025-10-02-preview"])
async def test_any_other_404_on_a_session_creating_call_is_pool_not_found(
    operation: str, reply: dict[str, object], version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(404, **reply)  # type: ignore[arg-type]
    client = make_client(api_version=version)
    calls = {
        "execute": lambda: client.execute("sess-1", "1"),
        "upload": lambda: client.upload_file("sess-1", "a", b"x"),
        "list": lambda: client.list_files("sess-1"),
    }
    with pytest.raises(PoolNotFoundError) as info:
        await calls[operation]()
    assert isinstance(info.value, NotFoundError)
    assert not isinstance(info.value, PoolFullError)
    assert "No session pool at this endpoint; check the URL" in str(info.value)
    assert "maxConcurrentSessions" not in str(info.value)
    assert len(fake_pool.requests) == 1


async def test_a_404_about_the_session_on_execute_is_plain_not_found(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(404, {"error": {"code": "SessionNotFound", "message": "no session"}})
    with pytest.raises(NotFoundError) as info:
        await make_client().execute("sess-1", "1")
    assert type(info.value) is NotFoundError
    assert info.value.error_code == "SessionNotFound"


def test_pool_not_found_is_exported_at_the_top_level() -> None:
    import autogen_aca_sessions

    assert autogen_aca_sessions.PoolNotFoundError is PoolNotFoundError
    assert "PoolNotFoundError" in autogen_aca_sessions.__all__


async def test_404_on_a_lookup_is_plain_not_found(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(404, {"error": {"code": "ExecutionNotFound", "message": "no such execution"}})
    with pytest.raises(NotFoundError) as info:
        await make_client().get_execution("sess-1", "nope")
    assert not isinstance(info.value, (PoolFullError, PoolNotFoundError))
    assert info.value.error_code == "ExecutionNotFound"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": {"code": "SessionPoolIsFull", "message": "m"}}),
        (429, {"error": {"code": "MaxConcurrentSessionsReached", "message": "m"}}),
        (409, {"error": {"code": "Conflict", "message": "The pool is full, try later"}}),
        (404, {"error": {"code": "x", "message": "max concurrent sessions reached"}}),
    ],
)
async def test_pool_full_codes_and_messages_are_recognised(
    status: int, body: dict[str, object], make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(status, body, repeat=True)
    with pytest.raises(PoolFullError) as info:
        await make_client(max_retries=0).get_session("sess-1")
    assert info.value.status_code == status


async def test_plain_text_error_body_is_kept(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(500, text="Upstream exploded: stack trace here")
    with pytest.raises(ServerError) as info:
        await make_client(api_version="2024-02-02-preview").execute("sess-1", "1")
    assert info.value.body == "Upstream exploded: stack trace here"
    assert info.value.error_code is None
    assert "Upstream exploded" in str(info.value)
    assert "/code/execute?" in str(info.value)


async def test_long_bodies_are_shortened_in_the_message(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(500, body=b"<html>" + b"x" * 5000, headers={"Content-Type": "text/html"}, repeat=True)
    with pytest.raises(ServerError) as info:
        await make_client().list_files("sess-1")
    assert len(info.value.body) == 5006
    assert len(str(info.value)) < 1500


async def test_413_says_the_limit(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(413, text="Request Entity Too Large")
    with pytest.raises(PayloadTooLargeError, match="128 MB"):
        await make_client().upload_file("sess-1", "big.bin", b"x" * 10)


async def test_throttled_error_carries_retry_after(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(429, headers={"Retry-After": "7"})
    with pytest.raises(ThrottledError) as info:
        await make_client(max_retries=0).list_files("sess-1")
    assert info.value.retry_after == 7.0


async def test_redirects_are_not_followed(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(302, headers={"Location": "https://elsewhere.example/steal"})
    with pytest.raises(SessionsHTTPError) as info:
        await make_client().list_files("sess-1")
    assert info.value.status_code == 302
    assert len(fake_pool.requests) == 1


async def test_http_and_transport_errors_are_builtin_connection_errors(
    make_client: Factory, fake_pool: FakePool
) -> None:
    # Code written for autogen-ext's executor catches ConnectionError; it must keep working.
    from autogen_aca_sessions.client import SessionsConnectionError, SessionsHTTPError

    fake_pool.reply(403, {"error": {"code": "Forbidden", "message": "no"}})
    with pytest.raises(ConnectionError) as info:
        await make_client().list_files("sess-1")
    assert isinstance(info.value, SessionsHTTPError)
    assert info.value.status_code == 403
    assert issubclass(SessionsConnectionError, ConnectionError)
    assert str(SessionsConnectionError("boom", method="GET")) == "boom"

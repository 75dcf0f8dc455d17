"""Tokens: every kind of source, caching until five minutes before expiry, one forced refresh
on 401, one shared refresh for concurrent callers, sync credentials kept off the loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from autogen_aca_sessions.client import (
    TOKEN_SCOPE,
    AuthenticationError,
    SessionsClient,
    TransportRequest,
    TransportResponse,
)
from autogen_aca_sessions.client.auth import TokenProvider
from tests.unit.conftest import FakePool

Factory = Callable[..., SessionsClient]
OK_LIST: dict[str, Any] = {"value": []}
AZURE_POOL = "https://eastus.dynamicsessions.io/subscriptions/s/resourceGroups/r/sessionPools/p"


class SyncCredential:
    """An azure-core TokenCredential stand-in that records where and how it was called."""

    def __init__(self, tokens: list[str] | None = None, lifetime: float = 3600) -> None:
        self.tokens = list(tokens or ["sync-1", "sync-2", "sync-3"])
        self.lifetime = lifetime
        self.calls: list[tuple[tuple[str, ...], int]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, threading.get_ident()))
        return AccessToken(self.tokens.pop(0), int(time.time() + self.lifetime))


class AsyncCredential:
    def __init__(self, lifetime: float = 3600) -> None:
        self.calls = 0
        self.closed = False
        self.lifetime = lifetime
        self.gate: asyncio.Event | None = None

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.calls += 1
        assert scopes == (TOKEN_SCOPE,)
        if self.gate is not None:
            await self.gate.wait()
        return AccessToken(f"async-{self.calls}", int(time.time() + self.lifetime))

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> AsyncCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def bearer(pool: FakePool) -> list[str]:
    return [r.headers["Authorization"] for r in pool.requests]


async def test_sync_credential_runs_in_a_worker_thread_with_the_dynamicsessions_scope(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=OK_LIST)
    credential = SyncCredential()
    await make_client(credential=credential).list_files("sess-1")
    ((scopes, thread_id),) = credential.calls
    assert scopes == ("https://dynamicsessions.io/.default",)
    assert thread_id != threading.get_ident()  # never on the event loop's thread
    assert bearer(fake_pool) == ["Bearer sync-1"]


async def test_token_is_cached_until_near_expiry(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body=OK_LIST, repeat=True)
    credential = SyncCredential()
    client = make_client(credential=credential)
    for _ in range(3):
        await client.list_files("sess-1")
    assert len(credential.calls) == 1
    assert bearer(fake_pool) == ["Bearer sync-1"] * 3


async def test_token_is_refreshed_five_minutes_before_expiry(
    make_client: Factory, fake_pool: FakePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_pool.reply(json_body=OK_LIST, repeat=True)
    credential = SyncCredential(lifetime=3600)
    client = make_client(credential=credential)
    start = time.time()
    monkeypatch.setattr(time, "time", lambda: start)
    await client.list_files("sess-1")
    monkeypatch.setattr(time, "time", lambda: start + 3600 - 301)
    await client.list_files("sess-1")
    assert len(credential.calls) == 1
    monkeypatch.setattr(time, "time", lambda: start + 3600 - 299)
    await client.list_files("sess-1")
    assert len(credential.calls) == 2
    assert bearer(fake_pool) == ["Bearer sync-1", "Bearer sync-1", "Bearer sync-2"]


async def test_async_credential_is_awaited_and_not_closed_by_us(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=OK_LIST)
    credential = AsyncCredential()
    client = make_client(credential=credential)
    await client.list_files("sess-1")
    await client.close()
    assert credential.calls == 1
    assert not credential.closed
    assert bearer(fake_pool) == ["Bearer async-1"]


async def test_sync_callable_runs_off_the_loop(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body=OK_LIST)
    threads: list[int] = []

    def token() -> str:
        threads.append(threading.get_ident())
        return "from-callable"

    await make_client(credential=token).list_files("sess-1")
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()
    assert bearer(fake_pool) == ["Bearer from-callable"]


async def test_async_callable_and_async_callable_object(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body=OK_LIST, repeat=True)

    async def token() -> str:
        return "async-fn"

    class Source:
        async def __call__(self) -> str:
            return "async-obj"

    await make_client(credential=token).list_files("sess-1")
    await make_client(credential=Source()).list_files("sess-1")
    assert bearer(fake_pool) == ["Bearer async-fn", "Bearer async-obj"]


async def test_401_forces_one_refresh_and_one_retry(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(401, {"error": {"code": "InvalidToken", "message": "expired"}})
    fake_pool.reply(json_body={"status": "Succeeded", "result": {}})
    credential = SyncCredential()
    result = await make_client(credential=credential).execute("sess-1", "1", operation_id="op")
    assert result.succeeded
    assert len(credential.calls) == 2
    assert bearer(fake_pool) == ["Bearer sync-1", "Bearer sync-2"]


async def test_401_with_a_callable_token_calls_it_again(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(401)
    fake_pool.reply(json_body=OK_LIST)
    issued = iter(["old", "new"])
    await make_client(credential=lambda: next(issued)).list_files("sess-1")
    assert bearer(fake_pool) == ["Bearer old", "Bearer new"]


async def test_second_401_raises_authentication_error(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(401, {"error": {"code": "InvalidToken", "message": "no"}}, repeat=True)
    with pytest.raises(AuthenticationError) as info:
        await make_client(credential=SyncCredential()).list_files("sess-1")
    assert len(fake_pool.requests) == 2
    assert info.value.status_code == 401
    assert info.value.error_code == "InvalidToken"
    assert "(a fresh token was tried)" in str(info.value)


@pytest.mark.parametrize("kind", ["string", "callable", "async callable", "credential"])
async def test_a_fixed_key_refused_with_401_is_sent_once_and_says_no_other_was_tried(
    kind: str, make_client: Factory, fake_pool: FakePool
) -> None:
    async def async_key() -> str:
        return "wrong-key"

    class SameKeyCredential:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("wrong-key", int(time.time() + 3600))

    credentials: dict[str, Any] = {
        "string": "wrong-key",
        "callable": lambda: "wrong-key",
        "async callable": async_key,
        "credential": SameKeyCredential(),
    }
    fake_pool.reply(401, {"error": {"code": "Unauthorized", "message": "bad key"}}, repeat=True)
    with pytest.raises(AuthenticationError) as info:
        await make_client(credential=credentials[kind]).execute("sess-1", "1")
    assert [r.method for r in fake_pool.requests] == ["POST"]
    assert "a fresh token was tried" not in str(info.value)
    assert "no other to try" in str(info.value)


async def test_an_error_line_quotes_the_services_message_once(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(401, {"error": {"code": "Unauthorized", "message": "The API key is not valid."}})
    with pytest.raises(AuthenticationError) as info:
        await make_client(credential="wrong-key").execute("sess-1", "1")
    text = str(info.value)
    assert text.count("The API key is not valid.") == 1
    assert info.value.service_message == "The API key is not valid."
    assert "The API key is not valid." in info.value.body


async def test_concurrent_callers_share_one_refresh() -> None:
    credential = AsyncCredential()
    credential.gate = asyncio.Event()
    provider = TokenProvider(credential)
    waiters = [asyncio.create_task(provider.get_token()) for _ in range(10)]
    await asyncio.sleep(0)
    credential.gate.set()
    tokens = await asyncio.gather(*waiters)
    assert tokens == ["async-1"] * 10
    assert credential.calls == 1


async def test_concurrent_401s_share_one_forced_refresh() -> None:
    credential = AsyncCredential()
    provider = TokenProvider(credential)
    first = await provider.get_token()
    again = await asyncio.gather(*(provider.get_token(rejected=first) for _ in range(5)))
    assert again == ["async-2"] * 5
    assert credential.calls == 2


class AnsweringTransport:
    """Answers every attempt with an empty file listing, keeping each ``Authorization`` sent."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []

    async def send(self, request: TransportRequest) -> TransportResponse:
        self.authorizations.append(request.headers["Authorization"])
        return TransportResponse(200, {"Content-Type": "application/json"}, b'{"value": []}')


async def test_default_credential_is_created_lazily_and_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.identity.aio

    created: list[AsyncCredential] = []

    def factory() -> AsyncCredential:
        created.append(AsyncCredential())
        return created[-1]

    monkeypatch.setattr(azure.identity.aio, "DefaultAzureCredential", factory)
    # An Azure endpoint (a loopback one never tries DefaultAzureCredential); the transport seam
    # stands in for the service.
    transport = AnsweringTransport()
    client = SessionsClient(AZURE_POOL, None, transport=transport)
    assert created == []
    await client.list_files("sess-1")
    await client.list_files("sess-1")
    assert len(created) == 1
    await client.close()
    assert created[0].closed
    assert transport.authorizations == ["Bearer async-1"] * 2


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:{port}/subscriptions/s/resourceGroups/r/sessionPools/p",
        "http://localhost:{port}/subscriptions/s/resourceGroups/r/sessionPools/p",
        "https://[::1]:{port}/subscriptions/s/resourceGroups/r/sessionPools/p",
    ],
)
async def test_a_loopback_endpoint_without_a_credential_asks_for_the_local_pools_key(
    endpoint: str, fake_pool: FakePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import azure.identity.aio

    from autogen_aca_sessions.client import CredentialError

    def never() -> AsyncCredential:
        raise AssertionError("DefaultAzureCredential must not be tried for a local pool")

    monkeypatch.setattr(azure.identity.aio, "DefaultAzureCredential", never)
    async with SessionsClient(endpoint.format(port=fake_pool.url.rsplit(":", 1)[1]), None) as client:
        with pytest.raises(CredentialError) as info:
            await client.execute("sess-1", "1")
    assert str(info.value).startswith("a local pool wants an API key: pass credential=...")
    assert "--api-key or ACA_SESSIONS_API_KEY" in str(info.value)
    assert len(str(info.value).splitlines()) == 1
    assert info.value.__cause__ is None
    assert fake_pool.requests == []


def test_unusable_credentials_are_refused() -> None:
    with pytest.raises(TypeError, match="credential must be"):
        TokenProvider(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        TokenProvider("")


async def test_credential_returning_no_token_is_reported() -> None:
    class Broken:
        def get_token(self, *scopes: str) -> object:
            return object()

    with pytest.raises(TypeError, match="no token string"):
        await TokenProvider(Broken()).get_token()  # type: ignore[arg-type]


async def test_custom_scope_is_requested() -> None:
    credential = SyncCredential()
    provider = TokenProvider(credential, scope="https://acasessions.io/.default")
    await provider.get_token()
    assert credential.calls[0][0] == ("https://acasessions.io/.default",)
    assert provider.scope == "https://acasessions.io/.default"


async def test_credential_failure_is_a_credential_error_and_sends_nothing(
    make_client: Factory, fake_pool: FakePool
) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    from autogen_aca_sessions.client import CredentialError, SessionsError

    class NotLoggedIn:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            raise ClientAuthenticationError("Please run 'az login' to set up an account")

    with pytest.raises(CredentialError, match="az login") as info:
        await make_client(credential=NotLoggedIn()).list_files("sess-1")
    assert isinstance(info.value, SessionsError)
    assert isinstance(info.value.__cause__, ClientAuthenticationError)
    assert fake_pool.requests == []


async def test_async_callable_failure_is_a_credential_error(
    make_client: Factory, fake_pool: FakePool
) -> None:
    from autogen_aca_sessions.client import CredentialError

    async def broken() -> str:
        raise RuntimeError("vault unreachable")

    with pytest.raises(CredentialError, match="vault unreachable"):
        await make_client(credential=broken).list_files("sess-1")


async def test_401_claims_challenge_is_passed_to_the_credential(
    make_client: Factory, fake_pool: FakePool
) -> None:
    import base64

    claims = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
    encoded = base64.urlsafe_b64encode(claims.encode()).decode().rstrip("=")
    seen: list[Any] = []

    class ClaimsCredential:
        def get_token(self, *scopes: str, claims: str | None = None, **kwargs: Any) -> AccessToken:
            seen.append(claims)
            return AccessToken(f"tok-{len(seen)}", int(time.time() + 3600))

    fake_pool.reply(
        401,
        headers={
            "WWW-Authenticate": f'Bearer realm="", error="insufficient_claims", claims="{encoded}"',
        },
    )
    fake_pool.reply(json_body=OK_LIST)
    await make_client(credential=ClaimsCredential()).list_files("sess-1")
    assert seen == [None, claims]
    assert [r.headers["Authorization"] for r in fake_pool.requests] == ["Bearer tok-1", "Bearer tok-2"]


def test_claims_challenge_parsing() -> None:
    from autogen_aca_sessions.client.auth import claims_from_challenge

    assert claims_from_challenge(None) is None
    assert claims_from_challenge('Bearer realm="x"') is None
    assert claims_from_challenge('Bearer claims="not base64 {"') == "not base64 {"
    assert claims_from_challenge('Bearer claims="eyJhIjoxfQ"') == '{"a":1}'

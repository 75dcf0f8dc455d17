"""LocalSessionPool itself: binding rules, TLS, credentials, Shell pools, pool limits, lifecycle."""

from __future__ import annotations

import asyncio
import re
import stat
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _http_helpers import CURRENT_VERSIONS, LEGACY_VERSIONS, call, execute, form
from aiohttp import web

from autogen_aca_sessions.local import AsyncStaticKeyCredential, LocalSessionPool, StaticKeyCredential
from autogen_aca_sessions.local.hosting.tls import generate_self_signed

PoolFactory = Callable[..., Awaitable[LocalSessionPool]]
V = "2025-10-02-preview"


def _http(pool: LocalSessionPool, **kwargs: Any) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {pool.api_key}"}, **kwargs)


# ---------------------------------------------------------------------------- construction


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", "10.0.0.1"])
def test_binding_a_non_loopback_address_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        LocalSessionPool(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses_are_accepted(host: str) -> None:
    LocalSessionPool(host=host)


def test_allow_remote_lifts_the_refusal() -> None:
    pool = LocalSessionPool(host="0.0.0.0", allow_remote=True)
    assert pool.host == "0.0.0.0"


@pytest.mark.parametrize(
    "options",
    [
        {"pool_type": "NodeLTS"},
        {"pool_name": "a/b"},
        {"pool_name": ""},
        {"tls_cert": "/tmp/cert.pem"},
        {"max_execution_seconds": 0},
        {"port": 70000},
    ],
)
def test_bad_options_are_refused_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is checked by the cases above
        LocalSessionPool(**options)


def test_a_random_api_key_is_generated_when_none_is_given() -> None:
    first, second = LocalSessionPool(), LocalSessionPool()
    assert len(first.api_key) >= 32
    assert first.api_key != second.api_key
    assert LocalSessionPool(api_key="given").api_key == "given"


async def test_credentials_hand_out_the_api_key_with_a_far_future_expiry() -> None:
    pool = LocalSessionPool(api_key="k-123")
    assert isinstance(pool.credential, StaticKeyCredential)
    assert isinstance(pool.async_credential, AsyncStaticKeyCredential)
    token = pool.credential.get_token("https://dynamicsessions.io/.default")
    assert token.token == "k-123"
    assert token.expires_on > time.time() + 365 * 24 * 3600
    async_token = await pool.async_credential.get_token("https://dynamicsessions.io/.default")
    assert async_token.token == "k-123"
    info = pool.credential.get_token_info("https://dynamicsessions.io/.default")
    assert info.token == "k-123"
    await pool.async_credential.close()


def test_endpoint_is_unavailable_before_start() -> None:
    with pytest.raises(RuntimeError):
        _ = LocalSessionPool().endpoint


# ---------------------------------------------------------------------------- running pools


async def test_endpoint_is_shaped_like_azure_and_close_removes_everything(make_pool: PoolFactory) -> None:
    pool = await make_pool(pool_name="my-pool", ready_sessions=0)
    assert re.fullmatch(
        r"http://127\.0\.0\.1:\d+/subscriptions/0{8}-0{4}-0{4}-0{4}-0{12}/resourceGroups/local/sessionPools/my-pool",
        pool.endpoint,
    )
    assert pool.isolation in ("bwrap", "none")
    root = pool.root_dir
    assert await asyncio.to_thread(root.is_dir)
    async with _http(pool) as http:
        reply = await call(http, "GET", f"{pool.endpoint}/files", version=V, identifier="s1")
        assert reply.status == 200
    await pool.close()
    await pool.close()  # idempotent
    assert not await asyncio.to_thread(root.exists)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await call(http, "GET", f"{pool.endpoint}/files", version=V, identifier="s1")


async def test_a_full_pool_answers_404_pool_full_until_a_session_is_deleted(make_pool: PoolFactory) -> None:
    pool = await make_pool(max_concurrent_sessions=1, ready_sessions=1)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    async with _http(pool) as http:
        ok = await execute(http, pool.endpoint, V, first, "1")
        assert ok.status == 200
        for version in (V, LEGACY_VERSIONS[0]):
            full = await execute(http, pool.endpoint, version, second, "1")
            assert full.status == 404
            err = full.error
            assert err["code"] == "SessionPoolFull"
            assert "maxConcurrentSessions=1" in err["message"]
        upload = await call(
            http, "POST", f"{pool.endpoint}/files", version=V, identifier=second, data=form("a.txt", b"1")
        )
        assert upload.status == 404
        assert upload.error["code"] == "SessionPoolFull"
        listing = await call(http, "GET", f"{pool.endpoint}/files", version=V, identifier=second)
        assert listing.status == 404
        # The existing session keeps working.
        assert (await execute(http, pool.endpoint, V, first, "2")).status == 200
        deleted = await call(http, "DELETE", f"{pool.endpoint}/session", version=V, identifier=first)
        assert deleted.status == 204
        assert (await execute(http, pool.endpoint, V, second, "3")).status == 200


async def test_tls_pool_serves_https_to_clients_trusting_its_certificate(make_pool: PoolFactory) -> None:
    pool = await make_pool(tls=True, ready_sessions=0)
    assert pool.endpoint.startswith("https://127.0.0.1:")
    cert = pool.tls_cert_path
    assert cert is not None
    assert pool.tls_ca_file == cert
    key_mode = (await asyncio.to_thread((cert.parent / "key.pem").stat)).st_mode
    assert stat.S_IMODE(key_mode) == 0o600
    async with _http(pool, connector=aiohttp.TCPConnector(ssl=pool.ssl_context())) as http:
        reply = await call(http, "GET", f"{pool.endpoint}/metadata", version=V)
        assert reply.status == 200
    # Also by host name: the certificate names localhost.
    by_name = pool.endpoint.replace("127.0.0.1", "localhost")
    async with _http(pool, connector=aiohttp.TCPConnector(ssl=pool.ssl_context())) as http:
        assert (await call(http, "GET", f"{by_name}/metadata", version=V)).status == 200
    async with _http(pool) as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await call(http, "GET", f"{pool.endpoint}/metadata", version=V)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            await call(http, "GET", pool.endpoint.replace("https://", "http://") + "/metadata", version=V)


async def test_tls_pool_uses_a_given_certificate_and_key(make_pool: PoolFactory, tmp_path: Path) -> None:
    cert, key = await asyncio.to_thread(generate_self_signed, tmp_path / "mine")
    pool = await make_pool(tls_cert=cert, tls_key=key, ready_sessions=0)
    assert pool.tls
    assert pool.tls_cert_path == cert
    async with _http(pool, connector=aiohttp.TCPConnector(ssl=pool.ssl_context())) as http:
        assert (await call(http, "GET", f"{pool.endpoint}/metadata", version=V)).status == 200


async def test_shell_pool_runs_a_300_kb_command(make_pool: PoolFactory) -> None:
    pool = await make_pool(pool_type="Shell", ready_sessions=0)
    command = "n=0\n" + "n=$((n+1))\n" * 30_000 + "echo $n"
    assert len(command) > 300_000
    async with _http(pool) as http:
        reply = await call(
            http,
            "POST",
            f"{pool.endpoint}/executions",
            version=V,
            identifier=str(uuid.uuid4()),
            json={"shellCommand": command, "timeoutInSeconds": 60},
        )
    assert reply.status == 200, reply.body[:500]
    body = reply.json()
    assert body["status"] == "0", body
    assert body["result"]["stdout"] == "30000\n"


async def test_shell_pool_runs_shell_commands_with_the_exit_code_as_status(make_pool: PoolFactory) -> None:
    pool = await make_pool(pool_type="Shell", ready_sessions=0)
    identifier = str(uuid.uuid4())
    async with _http(pool) as http:
        ok = await call(
            http,
            "POST",
            f"{pool.endpoint}/executions",
            version=V,
            identifier=identifier,
            json={"shellCommand": "echo hi; echo err >&2", "timeoutInSeconds": 30},
        )
        assert ok.status == 200
        body = ok.json()
        assert body["status"] == "0"
        assert body["result"]["stdout"] == "hi\n"
        assert body["result"]["stderr"] == "err\n"
        assert body["result"]["executionResult"] == ""
        failing = await call(
            http,
            "POST",
            f"{pool.endpoint}/executions",
            version="2025-02-02-preview",
            identifier=identifier,
            json={"shellCommand": "exit 3"},
        )
        assert failing.json()["status"] == "3"
        # 'code' is taken as the command when 'shellCommand' is absent.
        fallback = await call(
            http,
            "POST",
            f"{pool.endpoint}/executions",
            version=V,
            identifier=identifier,
            json={"code": "echo fb"},
        )
        assert fallback.json()["result"]["stdout"] == "fb\n"
        for version, op in (
            (LEGACY_VERSIONS[0], "code/execute"),
            (CURRENT_VERSIONS[0], "executions"),
        ):
            refused = await call(
                http,
                "POST",
                f"{pool.endpoint}/{op}",
                version=version,
                identifier=identifier,
                json={"shellCommand": "ls", "properties": {"code": "ls"}},
            )
            assert refused.status == 400
            assert refused.error["target"] == "api-version"
        missing = await call(
            http, "POST", f"{pool.endpoint}/executions", version=V, identifier=identifier, json={}
        )
        assert missing.status == 400
        assert missing.error["target"] == "shellCommand"
        meta = await call(http, "GET", f"{pool.endpoint}/metadata", version=V)
        assert meta.json()["runtimes"][0]["name"] == "bash"


async def test_shell_timeout_reports_execution_timeout(make_pool: PoolFactory) -> None:
    pool = await make_pool(pool_type="Shell", ready_sessions=0)
    async with _http(pool) as http:
        reply = await call(
            http,
            "POST",
            f"{pool.endpoint}/executions",
            version=V,
            identifier="shell-timeout",
            json={"shellCommand": "sleep 30", "timeoutInSeconds": 1},
        )
    body = reply.json()
    assert body["status"] == "124"
    assert body["error"]["code"] == "ExecutionTimeout"


async def test_caller_middlewares_see_every_request_including_refused_ones(make_pool: PoolFactory) -> None:
    seen: list[tuple[str, str]] = []

    @web.middleware
    async def recorder(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append((request.method, request.path))
        response: web.StreamResponse = await handler(request)
        response.headers["x-recorded"] = "yes"
        return response

    pool = await make_pool(middlewares=[recorder], ready_sessions=0)
    async with _http(pool) as http:
        ok = await call(http, "GET", f"{pool.endpoint}/metadata", version=V)
        assert ok.headers["x-recorded"] == "yes"
    async with aiohttp.ClientSession() as anonymous:
        refused = await call(anonymous, "GET", f"{pool.endpoint}/metadata", version=V)
        assert refused.status == 401
    assert len(seen) == 2


async def test_fault_injector_plugs_in_through_the_faults_option(make_pool: PoolFactory) -> None:
    from autogen_aca_sessions.local.frontends.dataplane.faults import FaultInjector

    injector = FaultInjector.from_string("next=429")
    pool = await make_pool(faults=injector, ready_sessions=0)
    async with _http(pool) as http:
        first = await call(http, "GET", f"{pool.endpoint}/metadata", version=V)
        second = await call(http, "GET", f"{pool.endpoint}/metadata", version=V)
    assert first.status == 429
    assert second.status == 200


async def test_serve_forever_serves_until_cancelled_then_closes() -> None:
    pool = LocalSessionPool(ready_sessions=0)
    task = asyncio.create_task(pool.serve_forever())
    for _ in range(600):
        if pool._bound_port is not None:
            break
        await asyncio.sleep(0.05)
    async with _http(pool) as http:
        assert (await call(http, "GET", f"{pool.endpoint}/metadata", version=V)).status == 200
    root = pool.root_dir
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await asyncio.to_thread(root.exists)


@pytest.mark.parametrize("local_pool", [{"ready_sessions": 0, "pool_name": "param-pool"}], indirect=True)
async def test_local_pool_fixture_takes_options_and_helpers_agree(
    local_pool: LocalSessionPool,
    pool_endpoint: str,
    auth_headers: dict[str, str],
    pool_http: aiohttp.ClientSession,
) -> None:
    assert pool_endpoint.endswith("/sessionPools/param-pool")
    assert auth_headers == {"Authorization": f"Bearer {local_pool.api_key}"}
    reply = await call(pool_http, "GET", f"{pool_endpoint}/metadata", version=V)
    assert reply.status == 200


def test_generated_api_keys_never_start_with_a_dash() -> None:
    # A key starting with "-" reads as an option in `aca-sessions exec --api-key KEY`.
    keys = [LocalSessionPool().api_key for _ in range(3000)]
    assert not [key for key in keys if key.startswith("-")]
    assert len(set(keys)) == len(keys)


async def test_starting_a_pool_raises_no_deprecation_warning(make_pool: PoolFactory) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await make_pool(ready_sessions=0)
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert not [m for m in messages if "shutdown_timeout" in m], messages


async def test_a_fault_plan_string_is_served_by_the_running_pool() -> None:
    async with LocalSessionPool(ready_sessions=0, faults="429=1,seed=7") as pool, _http(pool) as http:
        reply = await call(http, "GET", f"{pool.endpoint}/metadata", version=V)
        assert reply.status == 429
        assert pool.faults is not None
        assert pool.faults.stats.injected["429"] == 1


async def test_wait_ready_returns_once_a_started_kernel_is_free(make_pool: PoolFactory) -> None:
    pool = await make_pool(ready_sessions=1)
    await pool.wait_ready()
    assert pool.manager.ready_count == 1
    await pool.wait_ready()  # ready stays ready: a second wait returns at once


@pytest.mark.parametrize("options", [{"pool_type": "Shell"}, {"ready_sessions": 0}])
async def test_wait_ready_does_not_wait_on_a_pool_that_keeps_no_kernel_ready(
    make_pool: PoolFactory, options: dict[str, Any]
) -> None:
    pool = await make_pool(**options)
    # Set during start: the wait completes without yielding to a kernel start.
    waiter = asyncio.ensure_future(pool.wait_ready())
    await asyncio.sleep(0)
    assert waiter.done()
    assert pool.manager.ready_count == 0

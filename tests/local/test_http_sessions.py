"""Session management and pool metadata routes (2025-02-02-preview and later, and .management)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import aiohttp
import pytest
from _http_helpers import ALL_VERSIONS, MANAGED_VERSIONS, call, execute

from autogen_aca_sessions.local import LocalSessionPool
from autogen_aca_sessions.local.frontends.dataplane import handlers as handlers_module

pytestmark = pytest.mark.asyncio(loop_scope="module")

COOLDOWN = 600
POOL_OPTIONS = {"ready_sessions": 2, "cooldown_period_seconds": COOLDOWN}
MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _parse(stamp: str) -> datetime:
    assert MILLIS.match(stamp), stamp
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@pytest.mark.parametrize("version", MANAGED_VERSIONS)
async def test_get_session_of_unknown_identifier_is_404_and_creates_nothing(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, version: str
) -> None:
    reply = await call(
        module_http, "GET", f"{module_pool.endpoint}/session", version=version, identifier=session_id
    )
    assert reply.status == 404
    err = reply.error
    assert err["code"] == "SessionWithIdentifierNotFound"
    assert err["target"] == "identifier"
    assert module_pool.manager.get(session_id) is None


@pytest.mark.parametrize("version", MANAGED_VERSIONS)
async def test_get_session_answers_the_session_resource(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, version: str
) -> None:
    await execute(module_http, module_pool.endpoint, version, session_id, "1")
    reply = await call(
        module_http, "GET", f"{module_pool.endpoint}/session", version=version, identifier=session_id
    )
    assert reply.status == 200
    body = reply.json()
    assert set(body) == {"identifier", "createdAt", "lastAccessedAt", "expireAt", "etag"}
    assert body["identifier"] == session_id
    created, accessed, expires = (_parse(body[k]) for k in ("createdAt", "lastAccessedAt", "expireAt"))
    assert created <= accessed
    assert round((expires - accessed).total_seconds()) == COOLDOWN
    assert isinstance(body["etag"], str)
    assert body["etag"]


async def test_every_call_on_a_session_moves_last_accessed_but_get_session_does_not(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    v = MANAGED_VERSIONS[1]
    await execute(module_http, module_pool.endpoint, v, session_id, "1")
    first = await call(
        module_http, "GET", f"{module_pool.endpoint}/session", version=v, identifier=session_id
    )
    again = await call(
        module_http, "GET", f"{module_pool.endpoint}/session", version=v, identifier=session_id
    )
    assert first.json()["lastAccessedAt"] == again.json()["lastAccessedAt"]
    await call(module_http, "GET", f"{module_pool.endpoint}/files", version=v, identifier=session_id)
    after = await call(
        module_http, "GET", f"{module_pool.endpoint}/session", version=v, identifier=session_id
    )
    assert _parse(after.json()["lastAccessedAt"]) >= _parse(first.json()["lastAccessedAt"])
    assert after.json()["etag"] != first.json()["etag"]


@pytest.mark.parametrize("version", MANAGED_VERSIONS)
async def test_delete_session_frees_it_and_a_later_call_gets_a_fresh_one(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, version: str
) -> None:
    first = await execute(module_http, module_pool.endpoint, version, session_id, "secret = 1")
    deleted = await call(
        module_http, "DELETE", f"{module_pool.endpoint}/session", version=version, identifier=session_id
    )
    assert deleted.status == 204
    assert deleted.body == b""
    assert module_pool.manager.get(session_id) is None
    again = await call(
        module_http, "DELETE", f"{module_pool.endpoint}/session", version=version, identifier=session_id
    )
    assert again.status == 404
    assert again.error["code"] == "SessionWithIdentifierNotFound"
    fresh = await execute(module_http, module_pool.endpoint, version, session_id, "'secret' in globals()")
    assert fresh.json()["result"]["executionResult"] is False
    assert fresh.headers["x-ms-session-guid"] != first.headers["x-ms-session-guid"]


async def test_session_guid_is_stable_within_a_session(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    one = await execute(module_http, module_pool.endpoint, "2024-02-02-preview", session_id, "1")
    two = await execute(module_http, module_pool.endpoint, "2025-10-02-preview", session_id, "2")
    assert one.headers["x-ms-session-guid"] == two.headers["x-ms-session-guid"]


async def test_each_incarnation_of_an_identifier_gets_a_random_guid_sent_on_execute_poll_and_file_calls(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    version = "2025-10-02-preview"
    endpoint = module_pool.endpoint
    first = await execute(module_http, endpoint, version, session_id, "1")
    session = module_pool.manager.get(session_id)
    assert session is not None
    guid = first.headers["x-ms-session-guid"]
    assert guid == session.guid
    assert uuid.UUID(guid).version == 4  # random, not derived from the identifier
    execution = first.json()["id"]
    polled = await call(
        module_http, "GET", f"{endpoint}/executions/{execution}", version=version, identifier=session_id
    )
    assert polled.status == 200
    assert polled.headers["x-ms-session-guid"] == guid
    listed = await call(module_http, "GET", f"{endpoint}/files", version=version, identifier=session_id)
    assert listed.status == 200
    assert listed.headers["x-ms-session-guid"] == guid
    deleted = await call(module_http, "DELETE", f"{endpoint}/session", version=version, identifier=session_id)
    assert deleted.status == 204
    again = await execute(module_http, endpoint, version, session_id, "2")
    assert again.headers["x-ms-session-guid"] != guid
    # The old execution's record is still served; the guid names the incarnation holding the
    # identifier now, so a poller learns that the session it started in was replaced.
    polled_again = await call(
        module_http, "GET", f"{endpoint}/executions/{execution}", version=version, identifier=session_id
    )
    assert polled_again.headers["x-ms-session-guid"] == again.headers["x-ms-session-guid"]


@pytest.mark.parametrize("version", MANAGED_VERSIONS)
async def test_list_sessions_lists_current_sessions_without_identifier(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, version: str
) -> None:
    await execute(module_http, module_pool.endpoint, version, session_id, "1")
    reply = await call(module_http, "GET", f"{module_pool.endpoint}/listSessions", version=version)
    assert reply.status == 200
    body = reply.json()
    assert set(body) == {"sessions", "nextLink"}
    assert body["nextLink"] is None
    mine = [s for s in body["sessions"] if s["identifier"] == session_id]
    assert len(mine) == 1
    assert set(mine[0]) == {"identifier", "createdAt", "lastAccessedAt", "expireAt", "etag"}


async def test_list_sessions_pages_with_skip_and_next_link(
    module_pool: LocalSessionPool,
    module_http: aiohttp.ClientSession,
    session_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v = MANAGED_VERSIONS[1]
    other = str(uuid.uuid4())
    try:
        await call(module_http, "GET", f"{module_pool.endpoint}/files", version=v, identifier=session_id)
        await call(module_http, "GET", f"{module_pool.endpoint}/files", version=v, identifier=other)
        monkeypatch.setattr(handlers_module, "LIST_SESSIONS_PAGE_SIZE", 1)
        total = len(module_pool.manager.sessions())
        seen: list[str] = []
        url: str | None = f"{module_pool.endpoint}/listSessions?api-version={v}"
        while url is not None:
            reply = await call(module_http, "GET", url)
            assert reply.status == 200
            page = reply.json()
            assert len(page["sessions"]) == 1
            seen.append(page["sessions"][0]["identifier"])
            url = page["nextLink"]
            if url is not None:
                assert f"skip={len(seen)}" in url
                assert "api-version=" in url
        assert len(seen) == total
        assert {session_id, other} <= set(seen)
    finally:
        await module_pool.manager.delete(other)


async def test_list_sessions_refuses_a_bad_skip(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession
) -> None:
    reply = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/listSessions",
        version=MANAGED_VERSIONS[0],
        params={"skip": "-1"},
    )
    assert reply.status == 400
    assert reply.error["target"] == "skip"


@pytest.mark.parametrize("version", MANAGED_VERSIONS)
async def test_metadata_lists_runtimes_packages_and_kernel(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, version: str
) -> None:
    reply = await call(module_http, "GET", f"{module_pool.endpoint}/metadata", version=version)
    assert reply.status == 200
    body = reply.json()
    assert {"runtimes", "preInstalledPackages", "jupyterKernel", "createdAt", "lastUpdatedAt"} <= set(body)
    assert body["runtimes"][0]["name"] == "Python"
    names = {p["name"].lower() for p in body["preInstalledPackages"]}
    assert {"numpy", "pandas", "matplotlib"} <= names
    assert all(set(p) == {"name", "version"} for p in body["preInstalledPackages"])
    assert body["jupyterKernel"]["name"]
    _parse(body["createdAt"])
    _parse(body["lastUpdatedAt"])


@pytest.mark.parametrize("version", ALL_VERSIONS)
async def test_management_get_and_list_sessions_work_on_every_version(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, version: str
) -> None:
    await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files",
        version="2025-10-02-preview",
        identifier=session_id,
    )
    got = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/.management/getSession",
        version=version,
        identifier=session_id,
    )
    assert got.status == 200
    assert got.json()["identifier"] == session_id
    listed = await call(
        module_http, "POST", f"{module_pool.endpoint}/.management/listSessions", version=version
    )
    assert listed.status == 200
    body = listed.json()
    assert set(body) == {"value", "count", "nextLink"}
    assert body["count"] == len(module_pool.manager.sessions())
    assert session_id in {s["identifier"] for s in body["value"]}
    unknown = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/.management/getSession",
        version=version,
        identifier=str(uuid.uuid4()),
    )
    assert unknown.status == 404

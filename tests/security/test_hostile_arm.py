"""Hostile requests on the management plane (``Microsoft.App/sessionPools``) and on the
pool-routing layer of ``LocalSessionsServer``: every one gets a 4xx with ARM's error body, none a
5xx or a hang, nothing is created, and the server serves a valid call afterwards.

URLs longer than aiohttp's 8190-byte request line are refused by the HTTP parser before any
handler runs (``test_hostile_http.py`` covers that layer); the long names here stay below it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from yarl import URL

from autogen_aca_sessions.local import LocalSessionsServer
from tests.security._support import is_error_body, record

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUB = "3f0c1d2e-1111-4222-8333-944455556666"
V = "2025-10-02-preview"
POOLS = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/sessionPools"
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=60)
JSON = {"Content-Type": "application/json"}


@dataclass
class Case:
    """One hostile management request."""

    name: str
    method: str
    path: str
    """Already percent-encoded, from the server root."""
    query: str = f"api-version={V}"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True
    statuses: tuple[int, ...] = (400,)


def _bad_pool(**extra: Any) -> bytes:
    """A body that must be refused: otherwise valid, with one bad value (so nothing is made)."""
    body: dict[str, Any] = {"location": "westus", "properties": {"containerType": "NodeLTS"}}
    body.update(extra)
    return json.dumps(body).encode()


def corpus() -> list[Case]:
    cases: list[Case] = []
    add = cases.append
    # --- authentication ---
    for name, header in [
        ("no auth header", None),
        ("empty auth", ""),
        ("bearer without token", "Bearer"),
        ("wrong token", "Bearer nope"),
        ("basic scheme", "Basic {key}"),
        ("key prefix", "Bearer {key_prefix}"),
        ("huge token", "Bearer " + "k" * 6000),
    ]:
        headers = {} if header is None else {"Authorization": header}
        for method, path in (("GET", POOLS), ("PUT", f"{POOLS}/authpool"), ("DELETE", f"{POOLS}/authpool")):
            add(
                Case(
                    f"auth: {name} {method}",
                    method,
                    path,
                    headers=headers,
                    auth=False,
                    statuses=(401,),
                    body=_bad_pool() if method == "PUT" else None,
                )
            )
    # --- api-version ---
    for name, query in [
        ("missing", ""),
        ("empty", "api-version="),
        ("unknown", "api-version=1999-01-01"),
        ("huge", "api-version=" + "9" * 3000),
        ("unicode", "api-version=%E2%80%AE2025-10-02-preview"),
        ("nul", "api-version=2025-10-02-preview%00"),
    ]:
        add(Case(f"api-version: {name}", "GET", f"{POOLS}/abc", query=query))
    # --- paths ---
    for name, path, statuses in [
        ("name with nul", f"{POOLS}/ab%00c", (400,)),
        ("name 3k", f"{POOLS}/{'a' * 3000}", (400,)),
        ("unicode name", f"{POOLS}/p%C3%B6ol", (400,)),
        ("name with encoded slash", f"{POOLS}/a%2Fb", (400,)),
        ("dot-dot name", f"{POOLS}/%2e%2e", (400, 404)),
        (
            "rg with encoded slash",
            f"/subscriptions/{SUB}/resourceGroups/a%2Fb/providers/Microsoft.App/sessionPools",
            (400,),
        ),
        (
            "rg 5k",
            f"/subscriptions/{SUB}/resourceGroups/{'r' * 5000}/providers/Microsoft.App/sessionPools",
            (400,),
        ),
        ("subscription not a guid", "/subscriptions/x/providers/Microsoft.App/sessionPools", (400,)),
        ("subscription with nul", "/subscriptions/a%00b/providers/Microsoft.App/sessionPools", (400,)),
        ("unknown provider", f"/subscriptions/{SUB}/providers/Microsoft.Evil/things", (404,)),
        ("unknown child", f"{POOLS}/abc/sessions", (404,)),
        ("deep child", f"{POOLS}/abc/" + "x/" * 500, (404,)),
        ("unknown action", f"{POOLS}/abc/deleteEverything", (404,)),
        (
            "operations without id",
            f"/subscriptions/{SUB}/providers/Microsoft.App/locations/x/operationStatuses",
            (404,),
        ),
        (
            "operation unknown id",
            f"/subscriptions/{SUB}/providers/Microsoft.App/locations/x/operationStatuses/nope",
            (404,),
        ),
        (
            "operation 10k id",
            f"/subscriptions/{SUB}/providers/Microsoft.App/locations/x/operationResults/{'i' * 3000}",
            (404,),
        ),
        (
            "operation id with nul",
            f"/subscriptions/{SUB}/providers/Microsoft.App/locations/x/operationResults/a%00b",
            (404,),
        ),
        (
            "data plane of no pool",
            f"/subscriptions/{SUB}/resourceGroups/rg/sessionPools/ghost/executions",
            (404,),
        ),
        (
            "data plane nul pool",
            f"/subscriptions/{SUB}/resourceGroups/rg/sessionPools/gh%00ost/executions",
            (404,),
        ),
        ("root without a default pool", "/executions", (404,)),
    ]:
        add(Case(f"path: {name}", "GET", path, statuses=statuses))
    # --- methods ---
    for method, path in [
        ("POST", f"{POOLS}/abc"),
        ("PUT", POOLS),
        ("DELETE", POOLS),
        ("OPTIONS", f"{POOLS}/abc"),
        ("TRACE", f"{POOLS}/abc"),
        ("GET", f"{POOLS}/abc/fetchMcpServerCredentials"),
        ("PUT", f"{POOLS}/abc/rotateMcpServerCredentials"),
        ("POST", f"/subscriptions/{SUB}/providers/Microsoft.App/sessionPools"),
    ]:
        add(Case(f"method: {method} {path[-40:]}", method, path, statuses=(405,)))
    # --- list paging ---
    for token in ("-1", "abc", "9" * 40, "1e3"):
        add(Case(f"list: $skipToken {token}", "GET", POOLS, query=f"api-version={V}&$skipToken={token}"))
    # --- bodies (PUT and PATCH) ---
    deep = b"[" * 100_000 + b"]" * 100_000
    bodies: list[tuple[str, bytes, dict[str, str], tuple[int, ...]]] = [
        ("empty", b"", JSON, (400,)),
        ("whitespace", b"   \n", JSON, (400,)),
        ("not json", b"{location: westus}", JSON, (400,)),
        ("bad utf-8", b'{"location": "\xff\xfe"}', JSON, (400,)),
        ("utf-8 bom", b"\xef\xbb\xbf" + _bad_pool(), JSON, (400,)),
        ("deep nesting", deep, JSON, (400,)),
        ("deep object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, JSON, (400,)),
        (
            "huge integer",
            b'{"location":"x","properties":{"scaleConfiguration":{"maxConcurrentSessions":'
            + b"9" * 5000
            + b"}}}",
            JSON,
            (400,),
        ),
        (
            "1e400",
            b'{"location":"x","properties":{"scaleConfiguration":{"maxConcurrentSessions":1e400}}}',
            JSON,
            (400,),
        ),
        (
            "NaN",
            b'{"location":"x","properties":{"scaleConfiguration":{"maxConcurrentSessions":NaN}}}',
            JSON,
            (400,),
        ),
        (
            "-Infinity cooldown",
            b'{"location":"x","properties":{"dynamicPoolConfiguration":{"lifecycleConfiguration":{"cooldownPeriodInSeconds":-Infinity}}}}',
            JSON,
            (400,),
        ),
        ("array", b"[]", JSON, (400,)),
        ("null", b"null", JSON, (400,)),
        ("number", b"42", JSON, (400,)),
        ("properties array", json.dumps({"location": "x", "properties": []}).encode(), JSON, (400,)),
        ("location object", json.dumps({"location": {"a": 1}}).encode(), JSON, (400,)),
        ("tags list", _bad_pool(tags=["a"]), JSON, (400,)),
        ("tags nested", _bad_pool(tags={"a": {"b": 1}}), JSON, (400,)),
        ("identity string", _bad_pool(identity="SystemAssigned"), JSON, (400,)),
        # Issue 22: a location outside the served names never reaches a header; identity
        # entries without their identity, and lists over their caps, are refused unread.
        (
            "location non-ascii",
            json.dumps({"location": "東京 ①", "properties": {"containerType": "Shell"}}).encode(),
            JSON,
            (400,),
        ),
        (
            "location with control character",
            json.dumps({"location": "west\r\nus", "properties": {"containerType": "Shell"}}).encode(),
            JSON,
            (400,),
        ),
        (
            "managed identities empty objects",
            json.dumps(
                {
                    "location": "x",
                    "properties": {"containerType": "Shell", "managedIdentitySettings": [{}] * 5000},
                }
            ).encode(),
            JSON,
            (400,),
        ),
        (
            "tags over the cap",
            json.dumps(
                {
                    "location": "x",
                    "tags": {str(i): "" for i in range(5000)},
                    "properties": {"containerType": "Shell"},
                }
            ).encode(),
            JSON,
            (400,),
        ),
        (
            "10k properties",
            json.dumps(
                {
                    "location": "x",
                    "properties": {f"k{i}": i for i in range(10_000)} | {"containerType": "GpuBase"},
                }
            ).encode(),
            JSON,
            (400,),
        ),
        (
            "secrets of numbers",
            json.dumps({"location": "x", "properties": {"secrets": [1, 2, 3]}}).encode(),
            JSON,
            (400,),
        ),
        (
            "mcp settings string",
            json.dumps({"location": "x", "properties": {"mcpServerSettings": "on"}}).encode(),
            JSON,
            (400,),
        ),
        (
            "lifecycle string",
            json.dumps(
                {
                    "location": "x",
                    "properties": {"dynamicPoolConfiguration": {"lifecycleConfiguration": "Timed"}},
                }
            ).encode(),
            JSON,
            (400,),
        ),
        (
            "container type number",
            json.dumps({"location": "x", "properties": {"containerType": 7}}).encode(),
            JSON,
            (400,),
        ),
        (
            "container type with nul",
            json.dumps({"location": "x", "properties": {"containerType": "Shell\u0000"}}).encode(),
            JSON,
            (400,),
        ),
        ("text/plain", _bad_pool(), {"Content-Type": "text/plain"}, (400,)),
        ("form", b"location=westus", {"Content-Type": "application/x-www-form-urlencoded"}, (400,)),
        ("over 4 MiB", _bad_pool(tags={"t": "a" * (5 * 1024 * 1024)}), JSON, (413,)),
        ("declared 1 GiB", b"{}", {**JSON, "Content-Length": str(1024**3)}, (413,)),
    ]
    for name, body, headers, statuses in bodies:
        add(
            Case(
                f"PUT body: {name}",
                "PUT",
                f"{POOLS}/hostilepool",
                body=body,
                headers=headers,
                statuses=statuses,
            )
        )
        if name not in ("declared 1 GiB",):
            add(
                Case(
                    f"PATCH body: {name}",
                    "PATCH",
                    f"{POOLS}/hostilepool",
                    body=body,
                    headers=headers,
                    statuses=(*statuses, 404),
                )
            )
    return cases


CORPUS = corpus()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[LocalSessionsServer]:
    async with LocalSessionsServer(retry_after_seconds=1) as srv:
        yield srv


class _Unexpected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def _healthy(http: aiohttp.ClientSession, srv: LocalSessionsServer) -> None:
    auth = {"Authorization": f"Bearer {srv.api_key}"}
    url = f"{srv.base_url}{POOLS}/healthy?api-version={V}"
    body = {
        "location": "westus",
        "properties": {"containerType": "Shell", "scaleConfiguration": {"readySessionInstances": 0}},
    }
    async with http.put(url, json=body, headers=auth) as resp:
        assert resp.status == 201, await resp.text()
        op = resp.headers["Azure-AsyncOperation"]
    for _ in range(200):
        async with http.get(op, headers=auth) as resp:
            if (await resp.json())["status"] == "Succeeded":
                break
        await asyncio.sleep(0.05)
    async with http.get(url, headers=auth) as resp:
        assert resp.status == 200
    assert await srv.delete_pool("healthy", resource_group="rg", subscription=SUB)


def _judge(case: Case, status: int, body: bytes, code_header: str | None) -> str | None:
    if status >= 500:
        return f"got {status} {body[:300]!r}"
    if status not in case.statuses:
        return f"got {status}, documented: {case.statuses} ({body[:200]!r})"
    try:
        data = json.loads(body)
    except ValueError:
        return f"{status} body is not JSON: {body[:200]!r}"
    if not is_error_body(data) or not {"code", "message", "target", "details"} <= set(data["error"]):
        return f"{status} body is not ARM's error shape: {data!r}"
    if code_header != data["error"]["code"]:
        return f"x-ms-error-code {code_header!r} differs from {data['error']['code']!r}"
    return None


async def _declared_but_short() -> AsyncIterator[bytes]:
    yield b"{"


async def test_every_hostile_management_request_gets_a_4xx_with_arms_error_body(
    server: LocalSessionsServer,
) -> None:
    handler = _Unexpected()
    logging.getLogger("autogen_aca_sessions").addHandler(handler)
    failures: list[str] = []
    key = server.api_key
    try:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:
            await _healthy(http, server)
            for case in CORPUS:
                headers = {k: v.format(key=key, key_prefix=key[:-1]) for k, v in case.headers.items()}
                if case.auth:
                    headers.setdefault("Authorization", f"Bearer {key}")
                data: Any = case.body
                if "Content-Length" in headers:
                    data = _declared_but_short()
                url = URL(f"{server.base_url}{case.path}?{case.query}", encoded=True)
                try:
                    async with http.request(case.method, url, data=data, headers=headers) as resp:
                        problem = _judge(
                            case, resp.status, await resp.read(), resp.headers.get("x-ms-error-code")
                        )
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    problem = f"no answer ({type(exc).__name__}: {exc})"
                if problem:
                    failures.append(f"{case.name}: {problem}")
            record("hostile management-plane requests", len(CORPUS))
            assert server.list_pools() == [], "a refused request made a pool"
            await _healthy(http, server)
    finally:
        logging.getLogger("autogen_aca_sessions").removeHandler(handler)
    assert not failures, "\n".join(failures)
    assert not [m for m in handler.messages if "unexpected" in m], handler.messages

"""A corpus of known-bad requests: each gets a documented 4xx with the Azure.Core error body,
none a 5xx, a hang or a crash (the server answers a valid call afterwards).

Requests the HTTP parser itself refuses (garbage on the socket, oversized headers) never reach
the pool's handlers; for those the promise is a 4xx (or a closed connection), no hang and a
server that still serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from tests.security._support import API, PoolProcess, RawPool, is_error_body, raw_pool, record

IDENT = "hostile-a"
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=60)


POOL_PROCESS = {"name": "hostile", "sandbox": "auto", "ready_sessions": 1, "max_concurrent_sessions": 6}


@dataclass
class Case:
    """One hostile request."""

    name: str
    method: str
    tail: str
    """Path below the endpoint, already percent-encoded as it goes on the wire."""
    query: str = f"api-version={API}&identifier={IDENT}"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True
    statuses: tuple[int, ...] = (400,)
    root: bool = False
    """Send the path from the server root rather than below the endpoint."""


def _exec(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def _multipart(boundary: str, parts: list[tuple[str, str | None, bytes]], *, close: bool = True) -> bytes:
    out = b""
    for name, filename, payload in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + payload + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return out


JSON = {"Content-Type": "application/json"}
DEEP = b"[" * 100_000 + b"]" * 100_000
GOOD = {"codeInputType": "Inline", "executionType": "Synchronous", "code": "1+1", "timeoutInSeconds": 10}


def corpus() -> list[Case]:
    cases: list[Case] = []
    add = cases.append
    # --- authentication ---
    for name, header in [
        ("no auth header", None),
        ("empty auth", ""),
        ("bearer without token", "Bearer"),
        ("bearer blank token", "Bearer    "),
        ("wrong token", "Bearer not-the-key"),
        ("basic scheme", "Basic {key}"),
        ("token prefix of key", "Bearer {key_prefix}"),
        ("key plus suffix", "Bearer {key}x"),
        ("key twice", "Bearer {key} {key}"),
        ("token with nul-free junk", "Bearer \u00e9\u00e8"),
        ("very long token", "Bearer " + "k" * 6000),
    ]:
        headers = {} if header is None else {"Authorization": header}
        add(
            Case(
                f"auth: {name}",
                "POST",
                "executions",
                body=_exec(GOOD),
                headers={**JSON, **headers},
                auth=False,
                statuses=(401,),
            )
        )
    add(Case("auth checked before routing", "GET", "no-such-route", auth=False, statuses=(401, 404)))
    # --- bad JSON bodies ---
    for name, body in [
        ("empty body", b""),
        ("whitespace body", b"   \n"),
        ("truncated json", b'{"code": "1+1"'),
        ("json null", b"null"),
        ("json array", b"[]"),
        ("json number", b"1"),
        ("json string", b'"code"'),
        ("invalid utf-8", b'{"code": "\xff\xfe"}'),
        ("nan timeout", b'{"code": "1", "timeoutInSeconds": NaN}'),
        ("infinite timeout", b'{"code": "1", "timeoutInSeconds": 1e999}'),
        ("deeply nested json", DEEP),
        ("code is number", {"code": 5}),
        ("code is null", {"code": None}),
        ("code is list", {"code": ["print(1)"]}),
        ("code missing", {"codeInputType": "Inline"}),
        ("code with NUL", {"code": "print(1)\x00"}),
        ("bad base64 code", {"code": "!!!", "codeInputType": "InlineBase64"}),
        ("base64 of invalid utf-8", {"code": "/w==", "codeInputType": "InlineBase64"}),
        ("unknown codeInputType", {"code": "1", "codeInputType": "Weird"}),
        ("codeInputType number", {"code": "1", "codeInputType": 3}),
        ("unknown executionType", {"code": "1", "executionType": "Later"}),
        ("timeout string", {"code": "1", "timeoutInSeconds": "10"}),
        ("timeout zero", {"code": "1", "timeoutInSeconds": 0}),
        ("timeout negative", {"code": "1", "timeoutInSeconds": -5}),
        ("timeout fraction", {"code": "1", "timeoutInSeconds": 1.5}),
        ("timeout bool", {"code": "1", "timeoutInSeconds": True}),
        ("output max negative", {"code": "1", "outputStreamsMaxLength": -1}),
        ("output max string", {"code": "1", "outputStreamsMaxLength": "big"}),
        ("properties not object", {"properties": []}),
        ("properties code wrong type", {"properties": {"code": {}}}),
        ("shellCommand on python pool", {"shellCommand": "ls"}),
        ("useEmptyKernel string", {"code": "1", "useEmptyKernel": "yes"}),
    ]:
        add(Case(f"execute: {name}", "POST", "executions", body=_exec(body), headers=JSON))
    add(
        Case(
            "legacy execute: json array",
            "POST",
            "code/execute",
            query=f"api-version=2024-02-02-preview&identifier={IDENT}",
            body=b"[]",
            headers=JSON,
        )
    )
    add(
        Case(
            "legacy execute: properties missing code",
            "POST",
            "code/execute",
            query=f"api-version=2024-02-02-preview&identifier={IDENT}",
            body=_exec({"properties": {}}),
            headers=JSON,
        )
    )
    # --- huge bodies ---
    add(
        Case(
            "execute: 65 MiB body",
            "POST",
            "executions",
            body=b'{"code": "' + b"x" * (65 * 1024 * 1024) + b'"}',
            headers=JSON,
            statuses=(413,),
        )
    )
    # --- bad identifiers ---
    for name, ident in [
        ("missing", None),
        ("empty", ""),
        ("space", "a%20b"),
        ("slash", "a%2Fb"),
        ("backslash", "a%5Cb"),
        ("too long", "a" * 300),
        ("non-ascii", "%C3%A9t%C3%A9"),
        ("control char", "a%01b"),
        ("nul", "a%00b"),
        ("newline", "a%0Ab"),
        ("tab", "a%09"),
    ]:
        query = f"api-version={API}" + ("" if ident is None else f"&identifier={ident}")
        add(Case(f"identifier: {name}", "POST", "executions", query=query, body=_exec(GOOD), headers=JSON))
        add(Case(f"identifier on files: {name}", "GET", "files", query=query))
        add(Case(f"identifier on session: {name}", "GET", "session", query=query))
    add(
        Case(
            "operation-id with space",
            "POST",
            "executions",
            body=_exec(GOOD),
            headers={**JSON, "operation-id": "a b"},
        )
    )
    add(
        Case(
            "operation-id too long",
            "POST",
            "executions",
            body=_exec(GOOD),
            headers={**JSON, "operation-id": "o" * 400},
        )
    )
    # --- api-versions ---
    for name, version in [
        ("missing", None),
        ("empty", ""),
        ("unknown date", "2023-01-01"),
        ("garbage", "latest"),
        ("very long", "v" * 5000),
        ("sql-ish", "2025-10-02-preview'%20OR%201=1"),
    ]:
        query = f"identifier={IDENT}" + ("" if version is None else f"&api-version={version}")
        add(Case(f"api-version: {name}", "POST", "executions", query=query, body=_exec(GOOD), headers=JSON))
    add(
        Case(
            "session route on legacy version",
            "GET",
            "session",
            query=f"api-version=2024-02-02-preview&identifier={IDENT}",
            statuses=(404,),
        )
    )
    add(
        Case(
            "executions route on legacy version",
            "POST",
            "executions",
            query=f"api-version=2024-02-02-preview&identifier={IDENT}",
            body=_exec(GOOD),
            headers=JSON,
            statuses=(404,),
        )
    )
    # --- unknown routes ---
    for name, tail, root in [
        ("unknown op", "frobnicate", False),
        ("deep unknown", "executions/x/y/z", False),
        ("root", "", True),
        ("other pool", "subscriptions/s/resourceGroups/r/sessionPools/other-pool/executions", True),
        ("long path", "a/" * 2000, False),
        ("nul in path", "exec%00utions", False),
        ("dot segments", "%2e%2e/%2e%2e/executions", False),
        ("stopSession (custom container only)", ".management/stopSession", False),
        ("unknown execution id", "executions/does-not-exist", False),
        ("unknown file", "files/nope.txt", False),
        ("unknown file content", "files/nope.txt/content", False),
    ]:
        add(Case(f"route: {name}", "GET", tail, root=root, statuses=(404, 400)))
    add(
        Case(
            "delete unknown session",
            "DELETE",
            "session",
            query=f"api-version={API}&identifier=never-made",
            statuses=(404, 400),
        )
    )
    # --- wrong methods ---
    for method, tail in [
        ("PUT", "executions"),
        ("PATCH", "executions"),
        ("DELETE", "executions"),
        ("GET", "executions"),
        ("POST", "metadata"),
        ("PUT", "files"),
        ("POST", "session"),
        ("POST", "listSessions"),
        ("OPTIONS", "executions"),
        ("TRACE", "executions"),
        ("PUT", "files/a.txt/content"),
    ]:
        add(Case(f"method: {method} {tail}", method, tail, statuses=(405, 404, 400)))
    # --- uploads / multipart ---
    b = "XyZboundary"
    mp = {"Content-Type": f"multipart/form-data; boundary={b}"}
    for name, body, headers, statuses in [
        ("not multipart", b"hello", {"Content-Type": "text/plain"}, (400,)),
        (
            "no boundary",
            _multipart(b, [("file", "a.txt", b"x")]),
            {"Content-Type": "multipart/form-data"},
            (400,),
        ),
        ("wrong boundary", _multipart("other", [("file", "a.txt", b"x")]), mp, (400,)),
        ("empty multipart", f"--{b}--\r\n".encode(), mp, (400,)),
        (
            "truncated multipart",
            _multipart(b, [("file", "a.txt", b"x" * 1000)], close=False)[:-300],
            mp,
            (400,),
        ),
        ("no closing boundary", _multipart(b, [("file", "a.txt", b"abc")], close=False), mp, (400,)),
        ("part without filename", _multipart(b, [("file", None, b"x")]), mp, (400,)),
        ("empty filename", _multipart(b, [("file", "", b"x")]), mp, (400,)),
        ("dotdot filename", _multipart(b, [("file", "..", b"x")]), mp, (400,)),
        ("slash-only filename", _multipart(b, [("file", "/", b"x")]), mp, (400,)),
        ("only other fields", _multipart(b, [("notfile", None, b"x")]), mp, (400,)),
        ("garbage body", b"\x00\x01\x02" * 100, mp, (400,)),
        (
            "nested multipart",
            (
                f'--{b}\r\nContent-Disposition: form-data; name="file"\r\n'
                "Content-Type: multipart/mixed; boundary=inner\r\n\r\n"
                f"--inner\r\n\r\nx\r\n--inner--\r\n--{b}--\r\n"
            ).encode(),
            mp,
            (400,),
        ),
        ("bad part headers", f"--{b}\r\nNo-Colon-Here\r\n\r\nx\r\n--{b}--\r\n".encode(), mp, (400,)),
    ]:
        add(Case(f"upload: {name}", "POST", "files", body=body, headers=headers, statuses=statuses))
    add(
        Case(
            "upload: over 128 MiB declared",
            "POST",
            "files",
            headers={**mp, "Content-Length": str(200 * 1024**2)},
            body=None,
            statuses=(413,),
        )
    )
    # --- query oddities ---
    add(
        Case(
            "list: recursive garbage",
            "GET",
            "files",
            query=f"api-version={API}&identifier={IDENT}&recursive=maybe",
        )
    )
    add(Case("listSessions: negative skip", "GET", "listSessions", query=f"api-version={API}&skip=-1"))
    add(Case("listSessions: skip text", "GET", "listSessions", query=f"api-version={API}&skip=abc"))
    add(
        Case("files: path with nul", "GET", "files", query=f"api-version={API}&identifier={IDENT}&path=a%00b")
    )
    add(
        Case("files: path escaping", "GET", "files", query=f"api-version={API}&identifier={IDENT}&path=../..")
    )
    return cases


CORPUS = corpus()


def _url(pool: PoolProcess, case: Case) -> URL:
    if case.root:
        parts = urlsplit(pool.endpoint)
        return URL(f"{parts.scheme}://{parts.netloc}/{case.tail}?{case.query}", encoded=True)
    return URL(f"{pool.endpoint.rstrip('/')}/{case.tail}?{case.query}", encoded=True)


async def _healthy(raw: RawPool) -> None:
    assert await raw.value(IDENT, "2 + 3") == 5


async def test_every_known_bad_request_gets_a_documented_4xx_with_the_error_body(pool: PoolProcess) -> None:
    failures: list[str] = []
    async with raw_pool(pool) as raw:
        await _healthy(raw)
        key = pool.api_key
        for case in CORPUS:
            headers = {k: v.format(key=key, key_prefix=key[:-1]) for k, v in case.headers.items()}
            if case.auth:
                headers.setdefault("Authorization", f"Bearer {key}")
            data: Any = case.body
            if case.body is None and "Content-Length" in headers:
                data = _declared_but_short()
            try:
                async with raw.http.request(
                    case.method, _url(pool, case), data=data, headers=headers, timeout=CLIENT_TIMEOUT
                ) as resp:
                    body = await resp.read()
                    status = resp.status
                    error_code_header = resp.headers.get("x-ms-error-code")
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failures.append(f"{case.name}: no answer ({type(exc).__name__}: {exc})")
                continue
            problem = _judge(case, status, body, error_code_header)
            if problem:
                failures.append(f"{case.name}: {problem}")
        record("hostile corpus requests", len(CORPUS))
        await _healthy(raw)
    assert pool.alive()
    unexpected = [line for line in pool.stderr_lines if "unexpected error" in line]
    assert not failures, "\n".join(failures) + "\n--- server log ---\n" + pool.log_tail(30)
    assert not unexpected, pool.log_tail(60)


async def _declared_but_short() -> Any:
    # A body that announces 200 MiB (Content-Length is sent as given): the pool must refuse it
    # from the header, not wait for it all.
    yield b"--XyZboundary\r\n"


def _judge(case: Case, status: int, body: bytes, error_code_header: str | None) -> str | None:
    if status >= 500:
        return f"got {status} {body[:300]!r}"
    if not 400 <= status < 500:
        return f"got {status}, not a 4xx"
    if status not in case.statuses:
        return f"got {status}, documented: {case.statuses} ({body[:200]!r})"
    if case.method == "HEAD":
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return f"{status} body is not JSON: {body[:200]!r}"
    if not is_error_body(data):
        return f"{status} body is not the Azure.Core error shape: {data!r}"
    if error_code_header != data["error"]["code"]:
        return f"x-ms-error-code {error_code_header!r} differs from body code {data['error']['code']!r}"
    return None


async def test_upload_over_128_mib_streamed_without_length_gets_413(pool: PoolProcess) -> None:
    """A chunked upload (no Content-Length) that goes over the limit is cut off with 413."""
    async with raw_pool(pool) as raw:

        async def big() -> Any:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(130):
                yield chunk

        form = aiohttp.FormData()
        form.add_field("file", big(), filename="huge.bin", content_type="application/octet-stream")
        async with raw.http.post(raw.url("files", identifier=IDENT), data=form, headers=raw.auth) as resp:
            body = await resp.read()
        record("hostile corpus requests", 1)
        assert resp.status == 413, body[:300]
        assert is_error_body(json.loads(body))
        names = await raw.value(IDENT, "import os; sorted(os.listdir('.'))")
        assert not [n for n in names if "huge" in n or n.startswith(".aca-upload")], names
        await _healthy(raw)


PROTOCOL_GARBAGE = [
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello on a plain port
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /\r\n\r\n",
    b"POST /executions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /executions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /executions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
    b"POST /executions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(500)) + b"\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    b"\xff" * 1000,
    b"FOO /executions HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /executions HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
]


async def _raw_exchange(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 20)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_protocol_garbage_is_refused_without_a_hang_or_crash(pool: PoolProcess) -> None:
    outcomes: list[str] = []
    for payload in PROTOCOL_GARBAGE:
        answer = await _raw_exchange(pool.port, payload)
        status_line = answer.split(b"\r\n", 1)[0]
        outcomes.append(status_line.decode(errors="replace"))
        if answer:
            parts = status_line.split()
            assert len(parts) >= 2, status_line
            assert parts[1].startswith(b"4"), (payload[:60], status_line)
    record("hostile protocol-level inputs", len(PROTOCOL_GARBAGE))
    async with raw_pool(pool) as raw:
        await _healthy(raw)
    assert pool.alive()


async def test_slow_headers_from_one_client_do_not_block_others(pool: PoolProcess) -> None:
    """A client that sends half a request line and stalls (slowloris) does not stop the pool."""
    writers = []
    for _ in range(20):
        _, writer = await asyncio.open_connection("127.0.0.1", pool.port)
        writer.write(b"POST /executions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
        await writer.drain()
        writers.append(writer)
    try:
        async with raw_pool(pool) as raw:
            await _healthy(raw)
    finally:
        for writer in writers:
            writer.close()
    record("hostile protocol-level inputs", 20)


async def test_many_concurrent_bad_requests_leave_the_pool_serving(pool: PoolProcess) -> None:
    bad = [c for c in CORPUS if c.body is None or len(c.body) < 100_000]
    async with raw_pool(pool) as raw:

        async def fire(case: Case) -> int:
            headers = {
                k: v.format(key=pool.api_key, key_prefix=pool.api_key[:-1]) for k, v in case.headers.items()
            }
            headers.pop("Content-Length", None)
            if case.auth:
                headers.setdefault("Authorization", f"Bearer {pool.api_key}")
            async with raw.http.request(
                case.method, _url(pool, case), data=case.body, headers=headers, timeout=CLIENT_TIMEOUT
            ) as resp:
                await resp.read()
                return resp.status

        statuses = await asyncio.gather(*(fire(c) for c in bad * 3))
        record("hostile corpus requests (concurrent burst)", len(statuses))
        assert all(status < 500 for status in statuses), sorted(set(statuses))
        await _healthy(raw)

"""Fixtures for the sessions client's unit tests.

aioresponses 0.7.9 cannot build responses for aiohttp 3.14 (``ClientResponse`` now needs
``stream_writer``), so the client is tested against a scripted HTTP server on 127.0.0.1
instead. That is stricter anyway: tests see the exact bytes on the wire (raw path and query,
headers, body, multipart) and real transport failures.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import BodyPartReader, MultipartReader, StreamReader, web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy

from autogen_aca_sessions.client import SessionsClient

POOL_PATH = "/subscriptions/sub/resourceGroups/rg/sessionPools/pool"


@dataclass
class Recorded:
    """One request the fake pool received, as it arrived."""

    method: str
    raw: str
    """Raw path and query exactly as sent, relative to the pool path."""
    headers: CIMultiDictProxy[str]
    body: bytes
    """The body bytes as sent (multipart bodies included)."""
    form: dict[str, tuple[str | None, bytes]] = field(default_factory=dict)
    """Multipart fields: name -> (filename, content)."""
    peer: str = ""
    """The client's address and port (equal across requests on a kept-alive connection)."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    path: str | None = None
    """Regex matched against the raw path (relative to the pool) when set."""
    repeat: bool = False
    delay: float = 0.0
    disconnect: bool = False


class FakePool:
    """A scripted HTTP server that records requests and answers with queued replies."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: list[Reply] = []
        self.url = ""
        self.request_seen = asyncio.Event()
        """Set once the first request has arrived."""

    @property
    def endpoint(self) -> str:
        return self.url + POOL_PATH

    def reply(
        self,
        status: int = 200,
        json_body: Any = None,
        *,
        text: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        method: str | None = None,
        path: str | None = None,
        repeat: bool = False,
        delay: float = 0.0,
        disconnect: bool = False,
    ) -> None:
        hdrs = dict(headers or {})
        if json_body is not None:
            payload = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif text is not None:
            payload = text.encode()
            hdrs.setdefault("Content-Type", "text/plain")
        else:
            payload = body or b""
        self.replies.append(Reply(status, payload, hdrs, method, path, repeat, delay, disconnect))

    def _pick(self, method: str, raw: str) -> Reply | None:
        for index, candidate in enumerate(self.replies):
            if candidate.method and candidate.method != method:
                continue
            if candidate.path and not re.search(candidate.path, raw):
                continue
            if not candidate.repeat:
                del self.replies[index]
            return candidate
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path
        if raw.startswith(POOL_PATH):
            raw = raw[len(POOL_PATH) :]
        form: dict[str, tuple[str | None, bytes]] = {}
        body = await request.read()
        if request.content_type.startswith("multipart/"):
            # Parsed from the recorded bytes, so tests can pin both the raw part headers (in
            # ``body``) and what a multipart parser makes of them (in ``form``).
            loop = asyncio.get_running_loop()
            # A limit above the body size: the whole body is fed at once, with no transport to pause.
            stream = StreamReader(BaseProtocol(loop), len(body) + 2**16, loop=loop)
            stream.feed_data(body)
            stream.feed_eof()
            reader = MultipartReader(request.headers, stream)
            while (part := await reader.next()) is not None:
                assert isinstance(part, BodyPartReader)
                form[part.name or ""] = (part.filename, await part.read())
        peername = request.transport.get_extra_info("peername") if request.transport else None
        peer = f"{peername[0]}:{peername[1]}" if peername else ""
        self.requests.append(Recorded(request.method, raw, request.headers, body, form, peer))
        self.request_seen.set()
        chosen = self._pick(request.method, raw)
        if chosen is None:
            return web.Response(status=599, text=f"no scripted reply for {request.method} {raw}")
        if chosen.delay:
            await asyncio.sleep(chosen.delay)
        if chosen.disconnect:
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError
        return web.Response(status=chosen.status, body=chosen.body, headers=chosen.headers)


class FakeClock:
    """A :class:`~autogen_aca_sessions.client.clock.Clock` whose time only moves when the client
    sleeps, so waits cost nothing, and whose jitter is fixed (the top of its range unless
    ``lowest_jitter`` is set)."""

    def __init__(self) -> None:
        self.current = 1000.0
        self.sleeps: list[float] = []
        self.lowest_jitter = False

    def now(self) -> float:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += seconds
        await asyncio.sleep(0)

    def uniform(self, low: float, high: float) -> float:
        return low if self.lowest_jitter else high


@pytest.fixture
async def fake_pool() -> AsyncIterator[FakePool]:
    pool = FakePool()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", pool.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    pool.url = str(server.make_url("")).rstrip("/")
    try:
        yield pool
    finally:
        await server.close()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_client(
    fake_pool: FakePool, fake_clock: FakeClock
) -> AsyncIterator[Callable[..., SessionsClient]]:
    """Clients aimed at the fake pool, with a static token and the fake clock (no real waiting,
    fixed jitter)."""
    made: list[SessionsClient] = []

    def factory(endpoint: str | None = None, **kwargs: Any) -> SessionsClient:
        kwargs.setdefault("credential", "test-token")
        kwargs.setdefault("retry_backoff_base", 0.01)
        kwargs.setdefault("clock", fake_clock)
        client = SessionsClient(endpoint or fake_pool.endpoint, **kwargs)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.close()

"""SandboxesClient.exec_stream against the real local server (real bubblewrap sandboxes), and its
fallback to executeShellCommand behind a gateway that does not carry the stream."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from autogen_aca_sessions.client.aiohttp_transport import AiohttpTransport
from autogen_aca_sessions.client.errors import (
    AuthenticationError,
    NotFoundError,
    RequestMayHaveRunError,
    SessionsHTTPError,
    ValidationError,
)
from autogen_aca_sessions.client.sandbox_stream import STREAM_SUBPROTOCOL
from autogen_aca_sessions.client.sandboxes import OutputChunk, OutputStream, SandboxesClient
from autogen_aca_sessions.client.transport import TransportRequest, TransportResponse
from autogen_aca_sessions.local import LocalSessionsServer

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-stream-client"
GROUP = "stream-client-group"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Env:
    server: LocalSessionsServer
    client: SandboxesClient
    sandbox_id: str

    def another_client(self, endpoint: str | None = None, **kwargs: object) -> SandboxesClient:
        return SandboxesClient(
            endpoint or self.server.base_url,
            subscription_id=SUB,
            resource_group=RG,
            sandbox_group=GROUP,
            credential=self.server.api_key,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env() -> AsyncIterator[Env]:
    async with LocalSessionsServer() as server:
        await server.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        async with SandboxesClient(
            server.base_url,
            subscription_id=SUB,
            resource_group=RG,
            sandbox_group=GROUP,
            credential=server.api_key,
        ) as client:
            sandbox = await client.create()
            yield Env(server, client, sandbox.id)


@dataclass
class Collector:
    """An ``on_output`` that keeps the chunks and signals when stdout holds a text."""

    chunks: list[OutputChunk] = field(default_factory=list)
    seen: dict[str, asyncio.Event] = field(default_factory=dict)

    def expect(self, text: str) -> asyncio.Event:
        return self.seen.setdefault(text, asyncio.Event())

    def __call__(self, chunk: OutputChunk) -> None:
        self.chunks.append(chunk)
        stdout = "".join(c.text for c in self.chunks if c.stream is OutputStream.STDOUT)
        for text, event in self.seen.items():
            if text in stdout:
                event.set()


async def test_output_reaches_the_callback_before_the_command_ends(env: Env) -> None:
    await env.client.exec_shell(env.sandbox_id, "rm -f /root/go")
    heard = Collector()
    first = heard.expect("first\n")
    command = "echo first; while [ ! -e /root/go ]; do sleep 0.05; done; echo second; echo warn >&2; exit 4"
    run = asyncio.ensure_future(env.client.exec_stream(env.sandbox_id, command, on_output=heard))
    await first.wait()
    # The command cannot end before this write: the callback saw its output while it ran.
    assert not run.done()
    await env.client.write_file(env.sandbox_id, "/root/go", b"")
    result = await run
    assert (result.exit_code, result.stdout, result.stderr) == (4, "first\nsecond\n", "warn\n")
    assert not result.timed_out
    assert [c.stream for c in heard.chunks if c.stream is OutputStream.STDERR] == [OutputStream.STDERR]
    assert "".join(c.text for c in heard.chunks if c.stream is OutputStream.STDOUT) == result.stdout


async def test_an_async_callback_is_awaited_and_the_result_matches_exec_shell(env: Env) -> None:
    got: list[str] = []

    async def on_output(chunk: OutputChunk) -> None:
        await asyncio.sleep(0)
        got.append(chunk.text)

    command = "printf 'caf\\303\\251\\n'; echo e >&2; exit 2"
    streamed = await env.client.exec_stream(
        env.sandbox_id, command, on_output=on_output, working_directory="/tmp"
    )
    plain = await env.client.exec_shell(env.sandbox_id, command, working_directory="/tmp")
    assert streamed == plain
    assert "".join(got) == "café\ne\n"


async def test_a_timeout_keeps_the_partial_output(env: Env) -> None:
    result = await env.client.exec_stream(
        env.sandbox_id, "echo started; sleep 600", on_output=Collector(), timeout=1
    )
    assert result.timed_out
    assert result.stdout == "started\n"


async def test_cancelling_the_call_kills_the_command(env: Env) -> None:
    heard = Collector()
    ready = heard.expect("ready\n")
    command = "sleep 3600 & echo $! > /root/sleeper2; echo ready; wait"
    run = asyncio.ensure_future(env.client.exec_stream(env.sandbox_id, command, on_output=heard))
    await ready.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    gone = await env.client.exec_shell(
        env.sandbox_id,
        "p=$(cat /root/sleeper2); while kill -0 $p 2>/dev/null; do sleep 0.05; done; echo gone",
        timeout=60,
    )
    assert (gone.stdout, gone.timed_out) == ("gone\n", False)


async def test_a_callback_that_raises_ends_the_command_and_the_error_propagates(env: Env) -> None:
    def on_output(chunk: OutputChunk) -> None:
        raise RuntimeError("the caller gave up")

    with pytest.raises(RuntimeError, match="gave up"):
        await env.client.exec_stream(
            env.sandbox_id, "sleep 3600 & echo $! > /root/sleeper3; echo ready; wait", on_output=on_output
        )
    gone = await env.client.exec_shell(
        env.sandbox_id,
        "p=$(cat /root/sleeper3); while kill -0 $p 2>/dev/null; do sleep 0.05; done; echo gone",
        timeout=60,
    )
    assert gone.stdout == "gone\n"


async def test_refusals_are_the_typed_errors_of_exec_shell(env: Env) -> None:
    with pytest.raises(NotFoundError):
        await env.client.exec_stream("no-such-sandbox", "true", on_output=Collector())
    with pytest.raises(ValidationError):
        await env.client.exec_stream(env.sandbox_id, "true", on_output=Collector(), working_directory="rel")
    suspended = await env.client.create()
    await env.client.stop(suspended.id)
    with pytest.raises(SessionsHTTPError) as refused:
        await env.client.exec_stream(suspended.id, "true", on_output=Collector())
    assert (refused.value.status_code, refused.value.error_code) == (409, "SandboxNotRunning")
    await env.client.delete(suspended.id)
    # None of those turned the stream off for this client.
    heard = Collector()
    await env.client.exec_stream(env.sandbox_id, "echo again; sleep 0.01; echo twice", on_output=heard)
    assert next(c.text for c in heard.chunks) == "again\n"


# -- fallback where the stream is not served --------------------------------------------------


@dataclass
class Gateway:
    """A reverse proxy in front of the real server that does not carry ``exec/stream``: it answers
    the upgrade with ``status`` (or, for 101, upgrades without our subprotocol)."""

    upstream: str
    status: int
    stream_messages: list[str] = field(default_factory=list)
    """Anything a client sent on an upgraded socket."""
    url: str = ""
    subprotocol: str = "someone-elses.v2"
    """The only subprotocol its upgrade selects."""
    answer: str | None = None
    """With our subprotocol: the one frame it sends back to a command before it closes (none
    when empty)."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/exec/stream"):
            if self.status != 101:
                return web.Response(status=self.status, text="no streams here")
            socket = web.WebSocketResponse(protocols=(self.subprotocol,))
            await socket.prepare(request)
            async for message in socket:
                self.stream_messages.append(str(message.data))
                if self.answer:
                    await socket.send_str(self.answer)
                if self.answer is not None:
                    break  # and close, without an exit frame
            return socket
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=await request.read()
            ) as answer,
        ):
            body = await answer.read()
            keep = {
                k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "x-ms-error-code")
            }
            return web.Response(status=answer.status, body=body, headers=keep)


@pytest_asyncio.fixture(loop_scope="module")
async def gateway_for(env: Env) -> AsyncIterator[Callable[[int], Awaitable[Gateway]]]:
    runners: list[web.AppRunner] = []

    async def start(status: int) -> Gateway:
        gateway = Gateway(env.server.base_url, status)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", gateway.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        gateway.url = f"http://127.0.0.1:{port}"
        return gateway

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize("status", [404, 405, 501, 101], ids=["404", "405", "501", "other-subprotocol"])
async def test_where_the_stream_is_not_served_the_command_runs_once_through_exec_shell(
    env: Env, gateway_for: Callable[[int], Awaitable[Gateway]], status: int
) -> None:
    gateway = await gateway_for(status)
    counter = f"/root/count-{status}"
    heard = Collector()
    async with env.another_client(gateway.url) as client:
        result = await client.exec_stream(
            env.sandbox_id, f"echo ran >> {counter}; echo out; echo err >&2", on_output=heard
        )
    assert (result.exit_code, result.stdout, result.stderr) == (0, "out\n", "err\n")
    # Delivered once, at the end, stdout first.
    assert heard.chunks == [
        OutputChunk(OutputStream.STDOUT, "out\n"),
        OutputChunk(OutputStream.STDERR, "err\n"),
    ]
    assert (await env.client.read_file(env.sandbox_id, counter)) == b"ran\n"
    assert gateway.stream_messages == []


async def test_a_transport_other_than_aiohttp_falls_back(env: Env) -> None:
    class Recording:
        def __init__(self) -> None:
            self.inner = AiohttpTransport()
            self.methods: list[str] = []

        async def send(self, request: TransportRequest) -> TransportResponse:
            self.methods.append(request.method)
            return await self.inner.send(request)

    transport = Recording()
    heard = Collector()
    async with env.another_client(transport=transport) as client:
        result = await client.exec_stream(env.sandbox_id, "echo via post", on_output=heard)
    assert result.stdout == "via post\n"
    await transport.inner.close()
    assert transport.methods == ["POST"]
    assert [c.text for c in heard.chunks] == ["via post\n"]


async def test_a_wrong_key_is_an_authentication_error_before_anything_runs(env: Env) -> None:
    async with SandboxesClient(
        env.server.base_url,
        subscription_id=SUB,
        resource_group=RG,
        sandbox_group=GROUP,
        credential="not-the-key",
    ) as client:
        with pytest.raises(AuthenticationError):
            await client.exec_stream(env.sandbox_id, "true", on_output=Collector())


@pytest.mark.parametrize(
    "answer", [None, '{"type": "progress"}', "not json"], ids=["closes", "unknown-frame", "not-json"]
)
async def test_a_server_that_breaks_the_protocol_after_the_command_is_may_have_run(
    env: Env, gateway_for: Callable[[int], Awaitable[Gateway]], answer: str | None
) -> None:
    gateway = await gateway_for(101)
    gateway.subprotocol = STREAM_SUBPROTOCOL
    gateway.answer = answer if answer is not None else ""
    async with env.another_client(gateway.url) as client:
        with pytest.raises(RequestMayHaveRunError):
            await client.exec_stream(env.sandbox_id, "echo once", on_output=Collector())
        # Not retried and no fallback: the command went out once.
        assert len(gateway.stream_messages) == 1


async def test_the_stream_runs_over_tls_on_the_transports_own_ssl_settings() -> None:
    async with LocalSessionsServer(tls=True) as server:
        await server.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        transport = AiohttpTransport(ssl=ssl.create_default_context(cafile=str(server.tls_ca_file)))
        try:
            async with SandboxesClient(
                server.base_url,
                subscription_id=SUB,
                resource_group=RG,
                sandbox_group=GROUP,
                credential=server.api_key,
                transport=transport,
            ) as client:
                assert server.base_url.startswith("https://")
                sandbox = await client.create()
                heard = Collector()
                first = heard.expect("over wss\n")
                command = "echo over wss; while [ ! -e /root/go-tls ]; do sleep 0.05; done"
                run = asyncio.ensure_future(client.exec_stream(sandbox.id, command, on_output=heard))
                await first.wait()  # streamed: the fallback would deliver only after the end
                await client.write_file(sandbox.id, "/root/go-tls", b"")
                assert (await run).stdout == "over wss\n"
        finally:
            await transport.close()

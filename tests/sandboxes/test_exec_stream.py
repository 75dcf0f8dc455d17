"""``GET {s}/exec/stream`` on the real local server, driven by aiohttp's own WebSocket client:
output while the command runs, the end frame, hangups, and hostile handshakes and frames."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from autogen_aca_sessions.client.sandboxes import SandboxesClient
from autogen_aca_sessions.local import LocalSessionsServer
from autogen_aca_sessions.local.frontends.sandboxes import stream as stream_module
from autogen_aca_sessions.local.frontends.sandboxes.stream import SUBPROTOCOL
from autogen_aca_sessions.local.runtime.sandboxes.sandbox import MAX_OUTPUT_BYTES

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-stream"
GROUP = "stream-group"
API = "api-version=2026-02-01-preview"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Plane:
    """The server, a client of its Sandboxes plane, one HTTP session, and one sandbox."""

    server: LocalSessionsServer
    client: SandboxesClient
    http: aiohttp.ClientSession
    sandbox_id: str

    def url(self, sandbox_id: str | None = None, query: str = API) -> str:
        sid = sandbox_id or self.sandbox_id
        return (
            f"{self.server.base_url}/subscriptions/{SUB}/resourceGroups/{RG}/sandboxGroups/{GROUP}"
            f"/sandboxes/{sid}/exec/stream?{query}"
        )

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.server.api_key}"}

    async def connect(self, sandbox_id: str | None = None) -> aiohttp.ClientWebSocketResponse:
        return await self.http.ws_connect(self.url(sandbox_id), headers=self.auth, protocols=(SUBPROTOCOL,))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plane() -> AsyncIterator[Plane]:
    async with LocalSessionsServer() as server:
        await server.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        async with (
            SandboxesClient(
                server.base_url,
                subscription_id=SUB,
                resource_group=RG,
                sandbox_group=GROUP,
                credential=server.api_key,
            ) as client,
            aiohttp.ClientSession() as http,
        ):
            sandbox = await client.create()
            yield Plane(server, client, http, sandbox.id)


@dataclass
class Heard:
    """What the server sent on one socket."""

    stdout: str = ""
    stderr: str = ""
    end: dict[str, Any] | None = None
    """The exit or error frame."""
    frames: list[dict[str, Any]] = field(default_factory=list)


async def listen(socket: aiohttp.ClientWebSocketResponse, heard: Heard, *, until: str | None = None) -> Heard:
    """Read frames until the server closes (or until stdout holds ``until``)."""
    async for message in socket:
        assert message.type is aiohttp.WSMsgType.TEXT, message
        frame = json.loads(message.data)
        heard.frames.append(frame)
        if frame["type"] == "stdout":
            heard.stdout += frame["data"]
        elif frame["type"] == "stderr":
            heard.stderr += frame["data"]
        else:
            heard.end = frame
        if until is not None and until in heard.stdout:
            return heard
    return heard


async def test_output_arrives_while_the_command_runs_then_its_exit_code_and_duration(plane: Plane) -> None:
    await plane.client.exec_shell(plane.sandbox_id, "rm -f /root/go1")
    command = "echo first; while [ ! -e /root/go1 ]; do sleep 0.05; done; echo second; echo oops >&2; exit 7"
    async with await plane.connect() as socket:
        assert socket.protocol == SUBPROTOCOL
        await socket.send_json({"command": command})
        heard = await listen(socket, Heard(), until="first\n")
        # The command is still waiting for the file: it can only end after this write.
        assert heard.end is None
        await plane.client.write_file(plane.sandbox_id, "/root/go1", b"")
        await listen(socket, heard)
        assert socket.close_code == 1000
    assert heard.stdout == "first\nsecond\n"
    assert heard.stderr == "oops\n"
    assert heard.end is not None
    assert heard.end["type"] == "exit"
    assert heard.end["exitCode"] == 7
    assert isinstance(heard.end["executionTimeMs"], int)
    assert heard.end["executionTimeMs"] >= 0
    assert heard.end["timedOut"] is False
    assert heard.end["truncated"] is False


async def test_a_character_split_across_writes_arrives_whole_and_bad_bytes_become_replacements(
    plane: Plane,
) -> None:
    await plane.client.exec_shell(plane.sandbox_id, "rm -f /root/go2")
    command = r"printf 'a\342\202'; while [ ! -e /root/go2 ]; do sleep 0.05; done; printf '\254 \377\n'"
    async with await plane.connect() as socket:
        await socket.send_json({"command": command})
        heard = await listen(socket, Heard(), until="a")
        await plane.client.write_file(plane.sandbox_id, "/root/go2", b"")
        await listen(socket, heard)
    assert heard.stdout == "a\u20ac \ufffd\n"
    assert heard.end is not None
    assert heard.end["exitCode"] == 0


async def test_the_frames_joined_are_what_execute_shell_command_answers(plane: Plane) -> None:
    command = "echo out; printf 'no newline' >&2; exit 3"
    async with await plane.connect() as socket:
        await socket.send_json({"command": command})
        heard = await listen(socket, Heard())
    answer = await plane.client.exec_shell(plane.sandbox_id, command)
    assert (heard.stdout, heard.stderr) == (answer.stdout, answer.stderr) == ("out\n", "no newline")
    assert heard.end is not None
    assert heard.end["exitCode"] == answer.exit_code == 3


async def test_a_timeout_ends_the_command_and_its_note_comes_as_stderr(plane: Plane) -> None:
    async with await plane.connect() as socket:
        await socket.send_json({"command": "echo started; sleep 600", "timeoutInSeconds": 1})
        heard = await listen(socket, Heard())
    assert heard.stdout == "started\n"
    assert heard.end is not None
    assert heard.end["timedOut"] is True
    assert heard.end["exitCode"] != 0
    assert "timeout of 1 s" in heard.stderr


async def test_args_run_the_program_without_a_shell(plane: Plane) -> None:
    async with await plane.connect() as socket:
        await socket.send_json({"command": "printf", "args": ["%s|", "a b", "$HOME"]})
        heard = await listen(socket, Heard())
    assert heard.stdout == "a b|$HOME|"
    assert heard.end is not None
    assert heard.end["exitCode"] == 0


async def test_output_past_the_cap_is_dropped_and_marked_truncated(plane: Plane) -> None:
    command = f"head -c {MAX_OUTPUT_BYTES + 4096} /dev/zero | tr '\\0' a"
    async with await plane.connect() as socket:
        await socket.send_json({"command": command})
        heard = await listen(socket, Heard())
    assert len(heard.stdout) == MAX_OUTPUT_BYTES
    assert heard.end is not None
    assert heard.end["truncated"] is True
    assert "was dropped" in heard.stderr


async def test_frames_sent_after_the_command_are_ignored(plane: Plane) -> None:
    await plane.client.exec_shell(plane.sandbox_id, "rm -f /root/go3")
    async with await plane.connect() as socket:
        await socket.send_json(
            {"command": "echo up; while [ ! -e /root/go3 ]; do sleep 0.05; done; echo done"}
        )
        heard = await listen(socket, Heard(), until="up\n")
        await socket.send_str("not a command")
        await socket.send_bytes(b"\x00\xff")
        await plane.client.write_file(plane.sandbox_id, "/root/go3", b"")
        await listen(socket, heard)
    assert heard.stdout == "up\ndone\n"
    assert heard.end is not None
    assert heard.end["exitCode"] == 0


async def test_a_client_that_goes_away_kills_the_command(plane: Plane) -> None:
    socket = await plane.connect()
    await socket.send_json({"command": "sleep 3600 & echo $! > /root/sleeper; echo ready; wait"})
    await listen(socket, Heard(), until="ready\n")
    await socket.close()
    # Waits (inside the sandbox) until the sleeper is gone; a live one would run into the timeout.
    gone = await plane.client.exec_shell(
        plane.sandbox_id,
        "p=$(cat /root/sleeper); while kill -0 $p 2>/dev/null; do sleep 0.05; done; echo gone",
        timeout=60,
    )
    assert (gone.stdout, gone.timed_out) == ("gone\n", False)


# -- refusals before the upgrade --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers", "status", "code"),
    [
        (API, {}, 401, "AuthenticationFailed"),
        ("", None, 400, "MissingApiVersionParameter"),
        ("api-version=1999-01-01", None, 400, "UnsupportedApiVersion"),
        (API + "&user=someone", None, 400, "InvalidRequest"),
    ],
    ids=["no-auth", "no-api-version", "unknown-api-version", "other-user"],
)
async def test_a_bad_handshake_is_refused_with_its_status_and_error_code(
    plane: Plane, query: str, headers: dict[str, str] | None, status: int, code: str
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await plane.http.ws_connect(
            plane.url(query=query), headers=plane.auth if headers is None else headers
        )
    assert refused.value.status == status
    assert refused.value.headers is not None
    assert refused.value.headers["x-ms-error-code"] == code


async def test_an_unknown_sandbox_is_404_before_the_upgrade(plane: Plane) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await plane.connect("no-such-sandbox")
    assert refused.value.status == 404


async def test_a_plain_get_is_told_to_upgrade(plane: Plane) -> None:
    async with plane.http.get(plane.url(), headers=plane.auth) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "WebSocketUpgradeRequired"
    async with plane.http.post(plane.url(), headers=plane.auth) as response:
        assert response.status == 405


async def test_a_suspended_sandbox_is_409_before_the_upgrade_and_nothing_runs(plane: Plane) -> None:
    sandbox = await plane.client.create()
    await plane.client.stop(sandbox.id)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await plane.connect(sandbox.id)
    assert refused.value.status == 409
    assert refused.value.headers is not None
    assert refused.value.headers["x-ms-error-code"] == "SandboxNotRunning"
    await plane.client.delete(sandbox.id)


async def test_non_utf8_header_bytes_get_a_4xx(plane: Plane) -> None:
    host, port = plane.server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    path = plane.url().removeprefix(plane.server.base_url)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode()
        + b"Authorization: Bearer \xff\xfe\r\nX-Junk: \xc3\x28\r\n"
        + b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    status = int(status_line.split()[1])
    assert 400 <= status < 500, status_line


# -- refusals after the upgrade ---------------------------------------------------------------


async def refused_first_frame(plane: Plane, send: Any) -> tuple[dict[str, Any] | None, int | None]:
    async with await plane.connect() as socket:
        await send(socket)
        heard = await listen(socket, Heard())
        return heard.end, socket.close_code


@pytest.mark.parametrize(
    ("first", "code"),
    [
        (b"\x00binary", "InvalidRequest"),
        ("not json", "InvalidRequest"),
        ("[1, 2]", "InvalidRequest"),
        ('{"cmd": "ls"}', "InvalidRequest"),
        ('{"command": "  "}', "InvalidRequest"),
        ('{"command": "ls", "timeoutInSeconds": -1}', "InvalidRequest"),
        ('{"command": "ls", "workingDirectory": "relative"}', "InvalidRequest"),
        ('{"command": "ls", "args": "not-a-list"}', "InvalidRequest"),
        ("[" * 100_000 + "]" * 100_000, "InvalidRequest"),
    ],
    ids=["binary", "not-json", "array", "no-command", "blank", "timeout", "cwd", "args", "deep-nesting"],
)
async def test_a_bad_first_frame_gets_an_error_frame_and_close_code_4400(
    plane: Plane, first: str | bytes, code: str
) -> None:
    async def send(socket: aiohttp.ClientWebSocketResponse) -> None:
        if isinstance(first, bytes):
            await socket.send_bytes(first)
        else:
            await socket.send_str(first)

    end, close_code = await refused_first_frame(plane, send)
    assert end is not None
    assert end["type"] == "error"
    assert (end["status"], end["error"]["code"]) == (400, code)
    assert close_code == 4400


async def test_a_first_frame_over_the_size_cap_closes_with_1009(plane: Plane) -> None:
    async def send(socket: aiohttp.ClientWebSocketResponse) -> None:
        await socket.send_str(json.dumps({"command": "x" * (2 * 1024 * 1024)}))

    end, close_code = await refused_first_frame(plane, send)
    assert end is None
    assert close_code == 1009


async def test_a_text_frame_that_is_not_utf8_closes_with_1007(plane: Plane) -> None:
    async def send(socket: aiohttp.ClientWebSocketResponse) -> None:
        await socket.send_frame(b'{"command": "\xff"}', aiohttp.WSMsgType.TEXT)

    end, close_code = await refused_first_frame(plane, send)
    assert end is None
    assert close_code == 1007


async def test_no_command_in_time_gets_command_missing(plane: Plane, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "FIRST_MESSAGE_SECONDS", 0.2)

    async def send(socket: aiohttp.ClientWebSocketResponse) -> None:
        return None

    end, close_code = await refused_first_frame(plane, send)
    assert end is not None
    assert end["error"]["code"] == "CommandMissing"
    assert close_code == 4400


async def test_the_sandbox_keeps_working_after_the_hostile_streams(plane: Plane) -> None:
    async with await plane.connect() as socket:
        await socket.send_json({"command": "echo still here"})
        heard = await listen(socket, Heard())
    assert heard.stdout == "still here\n"


@pytest.mark.parametrize("stream", ["logstream", "processes/stream"])
async def test_the_spec_only_log_and_process_streams_are_refused_with_a_reason_before_any_upgrade(
    plane: Plane, stream: str
) -> None:
    """A local sandbox has no container entrypoint whose log or process table could be streamed:
    a WebSocket client gets the error body (the refusal comes before the upgrade), not a 404."""
    url = plane.url().replace("/exec/stream?", f"/{stream}?")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await plane.http.ws_connect(url, headers=plane.auth)
    assert refused.value.status == 400
    assert refused.value.headers is not None
    assert refused.value.headers["x-ms-error-code"] == "OperationNotSupportedLocally"
    async with plane.http.get(url, headers=plane.auth) as response:
        body = await response.json()
    assert response.status == 400
    assert "exec/stream" in body["error"]["message"]

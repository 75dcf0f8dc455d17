"""The server's own limits run out after a few sessions: every request past that point gets the
documented answer (404 pool full for a new session, or 503 with Retry-After), never a 500; the
sessions already held keep working, and nothing of a refused session lingers.

The server runs in its own process (``limited_pool_server``) so that its open-file limit can be
lowered, soft and hard, without touching the test's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
import pytest_asyncio
from _http_helpers import Reply, call, execute, form

from autogen_aca_sessions.local.runtime.capacity import FD_RESERVE, FDS_PER_SESSION, ZMQ_SOCKETS_PER_SESSION

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300)]

V = "2025-10-02-preview"
REPO = Path(__file__).resolve().parents[2]
HELD_AT_MOST = 3
"""The lowered limits hold this many kernels (the test allows fewer: connections count too)."""
PAST_THE_LIMIT = 6
"""New identifiers tried after the first refusal."""


@dataclass
class LimitedServer:
    endpoint: str
    pid: int
    process: asyncio.subprocess.Process
    log_file: Path
    http: aiohttp.ClientSession
    statuses: list[int] = field(default_factory=list)

    async def request(self, method: str, path: str, identifier: str | None = None, **kwargs: Any) -> Reply:
        url = f"{self.endpoint}{path}"
        reply = await call(self.http, method, url, version=V, identifier=identifier, **kwargs)
        self.statuses.append(reply.status)
        return reply

    async def execute(self, identifier: str, code: str) -> Reply:
        reply = await execute(self.http, self.endpoint, V, identifier, code)
        self.statuses.append(reply.status)
        return reply

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    async def stop(self) -> None:
        await self.http.close()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 60)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()

    def kernel_processes(self) -> int:
        """Kernel interpreters alive under the server: a plain kernel under its bwrap, a forked one
        under the template (which is the server's own child and not counted)."""
        count = 0
        for child in psutil.Process(self.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.name().startswith("python") and child.ppid() != self.pid:
                    count += 1
        return count


@pytest_asyncio.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[Any]:
    servers: list[LimitedServer] = []

    async def start(**options: Any) -> LimitedServer:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        log_file = tmp_path / f"server-{len(servers)}.log"
        with log_file.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.local.limited_pool_server",
                json.dumps(options),
                cwd=REPO,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 120)
        assert line, f"the server did not start: {log_file.read_text()}"
        info = json.loads(line)
        # One connection: the server's descriptor count must not move with the client's pool.
        http = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {info['api_key']}"},
            connector=aiohttp.TCPConnector(limit=1),
        )
        server = LimitedServer(
            endpoint=info["endpoint"], pid=info["pid"], process=process, log_file=log_file, http=http
        )
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()


async def _fill(server: LimitedServer) -> tuple[list[str], Reply]:
    """Create sessions one at a time until the server refuses one; (held identifiers, the refusal)."""
    held: list[str] = []
    for i in range(HELD_AT_MOST + 4):
        identifier = f"held-{i}"
        reply = await server.execute(identifier, f"value = {i}\nvalue")
        if reply.status != 200:
            return held, reply
        assert reply.json()["status"] == "Succeeded", reply.json()
        held.append(identifier)
    raise AssertionError(f"the lowered limits held more than {HELD_AT_MOST} sessions: {held}")


async def _held_sessions_keep_working(server: LimitedServer, held: list[str]) -> None:
    for i, identifier in enumerate(held):
        reply = await server.execute(identifier, "value")
        assert reply.status == 200, reply.body
        assert reply.json()["result"]["executionResult"] == i
    upload = await server.request("POST", "/files", held[0], data=form("kept.txt", b"still here"))
    assert upload.status in (200, 201), upload.body
    download = await server.request("GET", "/files/kept.txt/content", held[0])
    assert download.status == 200, download.body
    assert download.body == b"still here"


@pytest.mark.parametrize("launcher", ["fork", "plain"])
async def test_out_of_open_files_new_sessions_get_pool_full_and_held_ones_keep_working(
    start_server: Any, launcher: str
) -> None:
    # Room for the reserve kept for held sessions and a few sessions' descriptors, no more.
    server: LimitedServer = await start_server(
        open_files_headroom=FD_RESERVE + FDS_PER_SESSION * HELD_AT_MOST + 4 + 24,
        max_sessions=600,
        kernel_launcher=launcher,
    )
    held, refusal = await _fill(server)
    assert held, "not even one session fitted"
    assert refusal.status == 404, refusal.body
    assert refusal.error["code"] == "SessionPoolFull"
    assert "open files" in refusal.error["message"]
    for i in range(PAST_THE_LIMIT):
        reply = await server.execute(f"past-{i}", "1")
        assert reply.status == 404, reply.body
        assert reply.error["code"] == "SessionPoolFull"
    await _held_sessions_keep_working(server, held)
    listed = await server.request("GET", "/listSessions")
    assert listed.status == 200
    assert sorted(s["identifier"] for s in listed.json()["sessions"]) == sorted(held)
    # Deleting a session gives its descriptors back: a new one fits again.
    deleted = await server.request("DELETE", "/session", held[-1])
    assert deleted.status in (200, 202, 204), deleted.body
    await asyncio.sleep(1.1)  # the server recounts its descriptors at most every second
    again = await server.execute("after-delete", "'fits'")
    assert again.status == 200, again.body
    assert set(server.statuses) <= {200, 201, 202, 204, 404}, server.statuses
    await server.stop()
    log = server.log()
    assert "Traceback" not in log, log
    assert log.count("ran out of open files") == 1, log


@pytest.mark.parametrize("launcher", ["fork", "plain"])
async def test_out_of_zmq_sockets_a_new_session_gets_503_and_its_kernel_is_stopped(
    start_server: Any, launcher: str
) -> None:
    server: LimitedServer = await start_server(
        zmq_max_sockets=ZMQ_SOCKETS_PER_SESSION * HELD_AT_MOST, kernel_launcher=launcher
    )
    held, refusal = await _fill(server)
    assert len(held) == HELD_AT_MOST
    assert refusal.status == 503, refusal.body
    assert refusal.error["code"] == "ServiceUnavailable"
    assert int(refusal.headers["Retry-After"]) > 0
    assert "ZeroMQ sockets" in refusal.error["message"]
    for i in range(PAST_THE_LIMIT):
        reply = await server.execute(f"past-{i}", "1")
        assert reply.status == 503, reply.body
        assert "Retry-After" in reply.headers
    # A refused session holds nothing: not listed, and its kernel was stopped at once.
    listed = await server.request("GET", "/listSessions")
    assert sorted(s["identifier"] for s in listed.json()["sessions"]) == sorted(held)
    for _ in range(50):
        if server.kernel_processes() == len(held):
            break
        await asyncio.sleep(0.2)
    assert server.kernel_processes() == len(held)
    await _held_sessions_keep_working(server, held)
    assert set(server.statuses) <= {200, 201, 202, 204, 503}, server.statuses
    await server.stop()
    log = server.log()
    assert "Traceback" not in log, log
    assert log.count("ran out of ZeroMQ sockets") == 1, log

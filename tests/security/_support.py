"""Helpers shared by the security and soak tests: a pool in its own process and raw HTTP to it.

The figures SECURITY.md quotes are counted with :func:`record` and :func:`note` (``tests/_figures.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import psutil

from tests._figures import note as note
from tests._figures import record as record

REPO = Path(__file__).resolve().parents[2]
API = "2025-10-02-preview"
BWRAP = shutil.which("bwrap") is not None


@dataclass
class PoolProcess:
    """A LocalSessionPool serving from its own process (see ``pool_server.py``)."""

    process: subprocess.Popen[bytes]
    """The server process."""
    endpoint: str
    """The pool management endpoint it printed."""
    api_key: str
    """The key every call needs."""
    isolation: str
    """What the pool said is in force: ``bwrap`` or ``none``."""
    pid: int
    """The server's pid."""
    port: int
    """The port it listens on (127.0.0.1)."""
    tmpdir: Path
    """``TMPDIR`` (and Jupyter's runtime dir) of the server: everything it makes lands here."""
    warnings: list[str]
    """Warnings raised while the pool started."""
    stderr_lines: list[str] = field(default_factory=list)
    """What the server wrote to stderr (logs), kept for failure messages."""
    seen_descendants: set[int] = field(default_factory=set)
    """Pids of every process seen under the server (kernels, sandboxes), for the leak check."""
    stopped_report: dict[str, Any] = field(default_factory=dict)
    """The server's last line after shutdown (fault counters)."""

    def url(self, operation: str, **query: str) -> str:
        """The URL of ``operation`` (``executions``, ``files/a.txt/content``...) with query params."""
        params = {"api-version": API, **query}
        text = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
        return f"{self.endpoint.rstrip('/')}/{operation}?{text}"

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def server(self) -> psutil.Process:
        """psutil handle of the server."""
        return psutil.Process(self.pid)

    def descendants(self) -> list[psutil.Process]:
        """Every live process under the server; also remembered for the leak check."""
        try:
            children = self.server().children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen_descendants.update(child.pid for child in children)
        return list(children)

    def alive(self) -> bool:
        """Whether the server process still runs."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's stderr, for failure messages."""
        return "\n".join(self.stderr_lines[-lines:])


def start_pool_process(
    tmp_root: Path,
    *,
    ready_timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    **options: Any,
) -> PoolProcess:
    """Start a pool in its own process with ``options`` and wait until it serves.

    ``cwd`` is the server's working directory (default: the repository).
    """
    tmpdir = Path(tempfile.mkdtemp(prefix="pooltmp-", dir=tmp_root))
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["TMPDIR"] = str(tmpdir)
    child_env["JUPYTER_RUNTIME_DIR"] = str(tmpdir / "jupyter-runtime")
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    options.setdefault("host", "127.0.0.1")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.security.pool_server", json.dumps(options)],
        cwd=str(cwd or REPO),
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stderr_lines: list[str] = []
    stderr = process.stderr

    def drain_stderr() -> None:
        for raw in iter(stderr.readline, b""):
            stderr_lines.append(raw.decode(errors="replace").rstrip())
            if len(stderr_lines) > 2000:
                del stderr_lines[:1000]

    threading.Thread(target=drain_stderr, daemon=True).start()
    first: list[bytes] = []
    reader = threading.Thread(target=lambda: first.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(ready_timeout)
    if not first or not first[0]:
        process.kill()
        process.wait()
        time.sleep(0.2)
        raise AssertionError("pool did not start:\n" + "\n".join(stderr_lines[-60:]))
    info = json.loads(first[0])
    pool = PoolProcess(
        process=process,
        endpoint=info["endpoint"],
        api_key=info["api_key"],
        isolation=info["isolation"],
        pid=info["pid"],
        port=info["port"],
        tmpdir=tmpdir,
        warnings=list(info.get("warnings", [])),
        stderr_lines=stderr_lines,
    )
    pool.descendants()
    return pool


@dataclass
class Leftovers:
    """What a pool left behind after it shut down."""

    processes: list[str]
    """Descriptions of processes that were under the server and still run."""
    tmp_entries: list[str]
    """Paths still present in the server's ``TMPDIR`` (the empty Jupyter runtime dir aside)."""
    exit_code: int | None
    """The server's exit status."""


def stop_pool_process(pool: PoolProcess, *, timeout: float = 60.0) -> Leftovers:
    """SIGTERM the server, wait for it, and say what it left behind (then clean up the rest)."""
    pool.descendants()
    if pool.process.poll() is None:
        pool.process.send_signal(signal.SIGTERM)
        try:
            pool.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pool.process.kill()
            pool.process.wait()
    assert pool.process.stdout is not None
    for line in pool.process.stdout.read().decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            pool.stopped_report = json.loads(line)
    # Kernels exit asynchronously after their parent: give stragglers a moment before judging.
    survivors: list[psutil.Process] = []
    for _ in range(50):
        survivors = _existing(pool.seen_descendants)
        if not survivors:
            break
        time.sleep(0.1)
    descriptions = []
    for proc in survivors:
        with contextlib.suppress(psutil.Error):
            descriptions.append(f"{proc.pid} {' '.join(proc.cmdline())[:200]}")
    runtime = pool.tmpdir / "jupyter-runtime"
    tmp_entries = sorted(str(p.relative_to(pool.tmpdir)) for p in pool.tmpdir.rglob("*") if p != runtime)
    for proc in survivors:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    shutil.rmtree(pool.tmpdir, ignore_errors=True)
    return Leftovers(processes=descriptions, tmp_entries=tmp_entries, exit_code=pool.process.returncode)


def _existing(pids: set[int]) -> list[psutil.Process]:
    alive = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.Error:
            continue
    return alive


class RawPool:
    """Plain aiohttp calls to a pool, so these tests do not depend on our own client."""

    def __init__(self, endpoint: str, api_key: str, http: aiohttp.ClientSession) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.api_key = api_key
        self.http = http
        self.used: set[str] = set()
        """Identifiers this object ran code in (deleted by :func:`raw_pool` on exit)."""

    async def delete_session(self, identifier: str) -> int:
        """``DELETE /session``; returns the status."""
        async with self.http.delete(self.url("session", identifier=identifier), headers=self.auth) as resp:
            await resp.read()
            return resp.status

    def url(self, operation: str, api_version: str = API, **query: str) -> str:
        params = {"api-version": api_version, **query}
        text = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
        return f"{self.endpoint}/{operation}?{text}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def execute(
        self, identifier: str, code: str, *, timeout: int = 60, max_output: int = 100_000
    ) -> dict[str, Any]:
        """Run ``code`` synchronously; returns the response JSON (plus ``_status``)."""
        self.used.add(identifier)
        body = {
            "codeInputType": "Inline",
            "executionType": "Synchronous",
            "code": code,
            "timeoutInSeconds": timeout,
            "outputStreamsMaxLength": max_output,
        }
        async with self.http.post(
            self.url("executions", identifier=identifier),
            json=body,
            headers=self.auth,
            timeout=aiohttp.ClientTimeout(total=timeout + 60),
        ) as resp:
            data: dict[str, Any] = await resp.json(content_type=None)
            data["_status"] = resp.status
            return data

    async def value(self, identifier: str, code: str, *, timeout: int = 60) -> Any:
        """Run ``code`` and return its last expression's value; fail loudly if it did not succeed."""
        data = await self.execute(identifier, code, timeout=timeout)
        assert data["_status"] == 200, data
        assert data.get("status") == "Succeeded", data
        return data["result"]["executionResult"]

    async def upload(self, identifier: str, name: str, payload: bytes, path: str | None = None) -> int:
        form = aiohttp.FormData()
        form.add_field("file", payload, filename=name, content_type="application/octet-stream")
        query = {"identifier": identifier, **({"path": path} if path is not None else {})}
        async with self.http.post(self.url("files", **query), data=form, headers=self.auth) as resp:
            await resp.read()
            return resp.status

    async def download(self, identifier: str, name: str) -> tuple[int, bytes]:
        async with self.http.get(
            self.url(f"files/{quote(name, safe='')}/content", identifier=identifier), headers=self.auth
        ) as resp:
            return resp.status, await resp.read()


@contextlib.asynccontextmanager
async def raw_pool(pool: PoolProcess) -> AsyncIterator[RawPool]:
    """A :class:`RawPool` with its own HTTP session."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=180)) as http:
        raw = RawPool(pool.endpoint, pool.api_key, http)
        try:
            yield raw
        finally:
            # Free the slots so that later tests on the same pool do not find it full.
            for identifier in raw.used:
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    await raw.delete_session(identifier)


def fresh_identifier(tag: str) -> str:
    """A session identifier no other test uses: ``tag`` (what the test does) and a random part."""
    return f"{tag}-{uuid.uuid4().hex[:12]}"


def is_error_body(data: Any) -> bool:
    """Whether ``data`` is the documented Azure.Core error body."""
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return False
    err = data["error"]
    return isinstance(err.get("code"), str) and bool(err["code"]) and isinstance(err.get("message"), str)

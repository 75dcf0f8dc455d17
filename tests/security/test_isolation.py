"""Isolation: what code in a session can reach, with bubblewrap and without.

With ``sandbox="bwrap"`` session code must not read or write another session's files, the
server's files or its key (``/proc`` included), reach the network (the pool's own port
included) unless egress is on, see other sessions' processes, or signal the server. Without a
sandbox those promises cannot hold on one machine; there the pool must say so (isolation
``none`` and a warning), and the promises that do not depend on the sandbox (each session's own
``/mnt/data`` as the file routes see it, the file routes refusing every path out of it, no
server secret handed to the kernel's environment) are tested in both modes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from tests.security._support import API, PoolProcess, RawPool, fresh_identifier, note, raw_pool, record
from tests.security.conftest import SERVER_SECRET_ENV, PoolFactory, require_bwrap

MODES = ["bwrap", "none"]


@pytest.fixture(scope="module")
def pools(make_pool: PoolFactory) -> dict[str, PoolProcess]:
    """One pool per sandbox mode, started lazily."""
    return _LazyPools(make_pool)


class _LazyPools(dict[str, PoolProcess]):
    def __init__(self, factory: PoolFactory) -> None:
        super().__init__()
        self._factory = factory

    def __missing__(self, mode: str) -> PoolProcess:
        if mode in ("bwrap", "egress"):
            require_bwrap()
        options: dict[str, Any] = {"ready_sessions": 1, "max_concurrent_sessions": 8}
        if mode == "egress":
            options.update(sandbox="bwrap", egress=True)
        else:
            options.update(sandbox=mode)
        pool = self._factory(f"iso-{mode}", **options)
        self[mode] = pool
        return pool


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lis = Listener()
    yield lis
    lis.close()


async def _json_value(raw: RawPool, identifier: str, code: str) -> Any:
    """Run code whose last expression is ``json.dumps(...)``; return the decoded value."""
    value = await raw.value(identifier, code)
    return json.loads(value)


# --- the pool says what isolation it gives -------------------------------------------------------


def test_bwrap_pool_reports_bwrap_isolation(pools: dict[str, PoolProcess]) -> None:
    assert pools["bwrap"].isolation == "bwrap"


def test_pool_with_sandbox_none_reports_isolation_none(pools: dict[str, PoolProcess]) -> None:
    assert pools["none"].isolation == "none"


def test_auto_sandbox_without_bubblewrap_falls_back_to_none_with_a_loud_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from autogen_aca_sessions.local.runtime.bubblewrap import Sandbox

    with caplog.at_level(logging.WARNING):
        sandbox = Sandbox.resolve("auto", bwrap_path="/nonexistent/bwrap")
    assert sandbox.isolation == "none"
    assert sandbox.warning is not None
    assert "WITHOUT A SANDBOX" in sandbox.warning
    assert any("WITHOUT A SANDBOX" in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeError, match="bubblewrap"):
        Sandbox.resolve("bwrap", bwrap_path="/nonexistent/bwrap")


# --- files of other sessions and of the server ----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_each_session_sees_only_its_own_files(pools: dict[str, PoolProcess], mode: str) -> None:
    pool = pools[mode]
    a, b = fresh_identifier("files-a"), fresh_identifier("files-b")
    async with raw_pool(pool) as raw:
        await raw.value(a, "open('secret-a.txt', 'w').write('only for a')")
        seen_by_b = await _json_value(raw, b, "import json, os; json.dumps(sorted(os.listdir('.')))")
        assert "secret-a.txt" not in seen_by_b
        status, body = await raw.download(b, "secret-a.txt")
        assert status == 404, body
        async with raw.http.get(raw.url("files", identifier=b), headers=raw.auth) as resp:
            listing = await resp.json()
        assert all(item["name"] != "secret-a.txt" for item in listing["value"])
        # ...while a sees it through the file routes, so the check above can fail.
        status, body = await raw.download(a, "secret-a.txt")
        assert (status, body) == (200, b"only for a")


def _host_path_of(pool: PoolProcess, name: str) -> Path:
    matches = [p for p in pool.tmpdir.rglob(name) if p.is_file()]
    if not matches:
        # The pool root may live elsewhere than TMPDIR; ask psutil where the kernels run.
        for child in pool.descendants():
            try:
                cwd = Path(child.cwd())
            except Exception:
                continue
            if (cwd / name).is_file():
                matches.append(cwd / name)
    assert matches, f"could not find the host path of {name}"
    return matches[0]


async def test_sandboxed_session_cannot_open_another_sessions_directory(
    pools: dict[str, PoolProcess],
) -> None:
    pool = pools["bwrap"]
    a, b = fresh_identifier("dir-a"), fresh_identifier("dir-b")
    async with raw_pool(pool) as raw:
        await raw.value(a, "open('a-private.txt', 'w').write('a private')")
        host_file = _host_path_of(pool, "a-private.txt")
        code = (
            "import json, os\n"
            f"target = {str(host_file)!r}\n"
            "out = {}\n"
            "try:\n    out['read'] = open(target).read()\nexcept OSError as e:\n    out['read'] = None\n"
            "try:\n    open(target, 'w').write('b was here'); out['write'] = True\n"
            "except OSError:\n    out['write'] = False\n"
            "try:\n    out['list'] = os.listdir(os.path.dirname(os.path.dirname(target)))\n"
            "except OSError:\n    out['list'] = None\n"
            "json.dumps(out)"
        )
        result = await _json_value(raw, b, code)
        assert result["read"] is None, result
        assert result["write"] is False, result
        assert result["list"] is None or not any(a in entry for entry in result["list"]), result
        assert host_file.read_text() == "a private"


async def test_sandboxed_session_cannot_read_the_servers_files(
    pools: dict[str, PoolProcess], server_dir: Path
) -> None:
    """The server's working directory (a project directory holding its .env) and other
    root-only host files such as /etc/shadow stay out of reach of session code (an empty
    directory in their place is fine: it shows nothing)."""
    pool = pools["bwrap"]
    targets = [str(server_dir / ".env"), str(server_dir), "/etc/shadow"]
    code = (
        "import json, os\nout = {}\n"
        f"for t in {targets!r}:\n"
        "    try:\n"
        "        out[t] = (sorted(os.listdir(t)) or None) if os.path.isdir(t) else open(t).read()[:200]\n"
        "    except OSError as e:\n"
        "        out[t] = None\n"
        "json.dumps(out)"
    )
    async with raw_pool(pool) as raw:
        result = await _json_value(raw, fresh_identifier("srvfiles"), code)
    readable = {t: v for t, v in result.items() if v is not None}
    assert not readable, f"session code read host files: {readable}"


async def test_sandboxed_session_cannot_find_the_api_key_anywhere_in_proc(
    pools: dict[str, PoolProcess],
) -> None:
    """No process the session can see (server, bwrap, kernel) shows the key in its environment
    or command line, and the server's /proc entries are out of reach."""
    pool = pools["bwrap"]
    code = (
        "import json, os\n"
        f"key = {pool.api_key!r}.encode()\n"
        f"server = {pool.pid}\n"
        "found = []\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    for part in ('environ', 'cmdline'):\n"
        "        try:\n"
        "            if key in open(f'/proc/{pid}/{part}', 'rb').read():\n"
        "                found.append(f'{pid}/{part}')\n"
        "        except OSError:\n"
        "            pass\n"
        "server_view = {}\n"
        "for part in ('environ', 'cmdline', 'fd', 'maps'):\n"
        "    p = f'/proc/{server}/{part}'\n"
        "    try:\n"
        "        server_view[part] = len(os.listdir(p)) if part == 'fd' else len(open(p, 'rb').read())\n"
        "    except OSError:\n"
        "        server_view[part] = None\n"
        f"in_env = [k for k, v in os.environ.items() if key.decode() in v or k == {SERVER_SECRET_ENV!r}]\n"
        "json.dumps({'found': found, 'server_view': server_view, 'in_env': in_env})"
    )
    async with raw_pool(pool) as raw:
        result = await _json_value(raw, fresh_identifier("prockey"), code)
    assert result["found"] == [], f"api key visible in /proc entries: {result['found']}"
    assert result["in_env"] == []
    # The server's pid is either absent from the sandbox's /proc or names a sandbox process;
    # in neither case may its environment hold the key (checked above). It must not be the
    # server: its command line names our pool_server module.
    assert all(v is None for v in result["server_view"].values()) or not result["found"]


@pytest.mark.parametrize("mode", MODES)
async def test_server_secrets_are_not_in_the_kernels_environment(
    pools: dict[str, PoolProcess], mode: str
) -> None:
    """The kernel does not inherit the server's environment (where keys live)."""
    pool = pools[mode]
    code = (
        "import json, os\n"
        f"key, name = {pool.api_key!r}, {SERVER_SECRET_ENV!r}\n"
        "json.dumps([k for k, v in os.environ.items() if key in v or k == name])"
    )
    async with raw_pool(pool) as raw:
        leaked = await _json_value(raw, fresh_identifier("env"), code)
    assert leaked == []


async def test_sandboxed_session_code_is_not_root_and_holds_no_capability(
    pools: dict[str, PoolProcess],
) -> None:
    """Neither root nor any capability, and setuid binaries cannot hand them back."""
    code = (
        "import json, os\n"
        "status = dict(line.split(':\\t', 1) for line in open('/proc/self/status').read().splitlines()"
        " if ':\\t' in line)\n"
        "caps = {k: int(status[k].strip(), 16) for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')}\n"
        "try:\n    os.setuid(0)\n    became_root = True\nexcept OSError:\n    became_root = False\n"
        "json.dumps({'uid': os.getuid(), 'euid': os.geteuid(), 'caps': caps,"
        " 'no_new_privs': status.get('NoNewPrivs', '').strip(), 'became_root': became_root})"
    )
    async with raw_pool(pools["bwrap"]) as raw:
        result = await _json_value(raw, fresh_identifier("caps"), code)
    assert result["became_root"] is False, result
    assert result["caps"]["CapEff"] == 0, result
    assert result["caps"]["CapPrm"] == 0, result
    assert result["caps"]["CapAmb"] == 0, result
    # A bounding set with capabilities left is harmless only if exec cannot raise privileges.
    assert result["caps"]["CapBnd"] == 0 or result["no_new_privs"] == "1", result
    note("sandboxed session identity (bwrap)", {k: result[k] for k in ("uid", "no_new_privs")})


# --- network ------------------------------------------------------------------------------------


def _connect_code(ports: list[int]) -> str:
    return (
        "import json, socket\nout = {}\n"
        f"for port in {ports!r}:\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', port), timeout=3).close()\n"
        "        out[str(port)] = 'connected'\n"
        "    except OSError as e:\n"
        "        out[str(port)] = type(e).__name__\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 80)\n"
        "    out['dns'] = 'resolved'\n"
        "except OSError as e:\n"
        "    out['dns'] = type(e).__name__\n"
        "json.dumps(out)"
    )


async def test_sandboxed_session_cannot_reach_loopback_or_the_pools_port(
    pools: dict[str, PoolProcess], listener: Listener
) -> None:
    pool = pools["bwrap"]
    async with raw_pool(pool) as raw:
        result = await _json_value(raw, fresh_identifier("net"), _connect_code([listener.port, pool.port]))
    assert result[str(listener.port)] != "connected", result
    assert result[str(pool.port)] != "connected", result
    assert result["dns"] != "resolved", result
    assert listener.accepted == 0


async def test_sandboxed_session_with_egress_reaches_the_loopback_listener(
    pools: dict[str, PoolProcess], listener: Listener
) -> None:
    """The same probe succeeds when egress is on: the test above can tell the difference."""
    pool = pools["egress"]
    assert pool.isolation == "bwrap"
    async with raw_pool(pool) as raw:
        result = await _json_value(raw, fresh_identifier("egress"), _connect_code([listener.port]))
    assert result[str(listener.port)] == "connected", result
    for _ in range(20):
        if listener.accepted:
            break
        await asyncio.sleep(0.05)
    assert listener.accepted >= 1


# --- processes ----------------------------------------------------------------------------------


async def test_sandboxed_session_cannot_see_other_sessions_processes(pools: dict[str, PoolProcess]) -> None:
    pool = pools["bwrap"]
    marker = f"marker-{uuid.uuid4().hex}"
    a, b = fresh_identifier("proc-a"), fresh_identifier("proc-b")
    spawn = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', {marker!r}])\n"
        "child.pid > 0"
    )
    scan = (
        "import json, os\nhits = []\nkernels = 0\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n"
        "        cmd = open(f'/proc/{pid}/cmdline', 'rb').read().decode(errors='replace')\n"
        "    except OSError:\n"
        "        continue\n"
        f"    if {marker!r} in cmd or 'pool_server' in cmd:\n"
        "        hits.append(cmd.replace(chr(0), ' ')[:200])\n"
        "    if '_kernel_boot' in cmd and 'bwrap' not in cmd.split(chr(0))[0]:\n"
        "        kernels += 1\n"
        "json.dumps({'hits': hits, 'kernels': kernels})"
    )
    async with raw_pool(pool) as raw:
        assert await raw.value(a, spawn) is True
        # The marker process does exist on the host, so a scan that can see it would find it.
        host_hits = [p for p in pool.descendants() if marker in " ".join(_cmdline(p))]
        assert host_hits, "the marker process was not started"
        result = await _json_value(raw, b, scan)
        await raw.value(a, "child.kill(); child.wait(); True")
    assert result["hits"] == [], result
    assert result["kernels"] <= 1, result


def _cmdline(proc: Any) -> list[str]:
    try:
        return list(proc.cmdline())
    except Exception:
        return []


async def test_sandboxed_session_cannot_signal_the_server(pools: dict[str, PoolProcess]) -> None:
    pool = pools["bwrap"]
    code = (
        "import json, os\n"
        "try:\n"
        f"    os.kill({pool.pid}, 0)\n"
        "    out = 'delivered'\n"
        "except OSError as e:\n"
        "    out = type(e).__name__\n"
        "json.dumps(out)"
    )
    async with raw_pool(pool) as raw:
        result = await _json_value(raw, fresh_identifier("signal"), code)
    assert result in ("ProcessLookupError", "PermissionError"), result
    assert pool.alive()


async def test_unsandboxed_session_can_signal_the_server_which_is_why_none_warns(
    pools: dict[str, PoolProcess],
) -> None:
    """Documents the gap of sandbox="none": the same probe reaches the server (signal 0 only)."""
    pool = pools["none"]
    code = f"import os\nos.kill({pool.pid}, 0)\n'delivered'"
    async with raw_pool(pool) as raw:
        assert await raw.value(fresh_identifier("signal-none"), code) == "delivered"
    assert pool.isolation == "none"


# --- file routes refuse every path out of /mnt/data -----------------------------------------------

ESCAPING_NAMES = [
    "../x",
    "..",
    "a/../../x",
    "%2e%2e/x",
    "%2E%2E%2Fx",
    "..%2Fx",
    "..%2F..%2Fetc%2Fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "%2e%2e%5cx",
    "..%5c..%5cetc%5cpasswd",
    "%2Fetc%2Fpasswd",
    "%2F%2Fetc%2Fpasswd",
    "%2Fmnt%2Fdata%2F..%2F..%2Fetc%2Fpasswd",
    "%2Fproc%2Fself%2Fenviron",
    "x%00.txt",
    "....%2F....%2Fetc%2Fpasswd",
    "%c0%ae%c0%ae%2Fetc%2Fpasswd",
]
ESCAPING_PATHS = [
    "..",
    "../..",
    "/etc",
    "/",
    "/mnt/data/../..",
    "/mnt/data/../../etc",
    "/mnt/database",
    "a/../../..",
    "%2e%2e",
    "/proc/self",
]


def _raw_url(pool: PoolProcess, encoded_path_tail: str, query: str) -> URL:
    base = pool.endpoint.rstrip("/")
    return URL(f"{base}/{encoded_path_tail}?api-version={API}&{query}", encoded=True)


def _leaks_host_content(body: bytes) -> bool:
    return b"root:" in body or b"daemon:" in body or SERVER_SECRET_ENV.encode() in body


@pytest.mark.parametrize("mode", MODES)
async def test_file_routes_refuse_names_that_escape_mnt_data(
    pools: dict[str, PoolProcess], mode: str
) -> None:
    pool = pools[mode]
    ident = fresh_identifier("esc")
    async with raw_pool(pool) as raw:
        await raw.value(ident, "open('x', 'w').write('inside'); True")
        tried = 0
        for name in ESCAPING_NAMES:
            for tail in (f"files/{name}/content", f"files/{name}", f"files/content/{name}"):
                for method in ("GET", "DELETE"):
                    if method == "DELETE" and tail.endswith("content"):
                        continue
                    url = _raw_url(pool, tail, f"identifier={ident}")
                    async with raw.http.request(method, url, headers=raw.auth) as resp:
                        body = await resp.read()
                    tried += 1
                    assert 400 <= resp.status < 500, (method, tail, resp.status, body[:200])
                    assert not _leaks_host_content(body), (method, tail)
        for path in ESCAPING_PATHS:
            q = f"identifier={ident}&path={path if '%' in path else quote(path, safe='')}"
            for tail in ("files", "files/passwd/content", "files/x"):
                async with raw.http.get(_raw_url(pool, tail, q), headers=raw.auth) as resp:
                    body = await resp.read()
                tried += 1
                assert 400 <= resp.status < 500, (tail, path, resp.status, body[:200])
                assert not _leaks_host_content(body), (tail, path)
            form = aiohttp.FormData()
            form.add_field("file", b"escaped", filename="escaped.txt")
            async with raw.http.post(_raw_url(pool, "files", q), data=form, headers=raw.auth) as resp:
                body = await resp.read()
            tried += 1
            assert 400 <= resp.status < 500, ("upload", path, resp.status, body[:200])
        # Multipart filenames that try to climb out are reduced to their base name (documented).
        for filename in ("../../escaped-up.txt", "/etc/escaped-abs.txt", "..\\..\\escaped-win.txt"):
            form = aiohttp.FormData()
            form.add_field("file", b"escaped", filename=filename)
            async with raw.http.post(raw.url("files", identifier=ident), data=form, headers=raw.auth) as resp:
                await resp.read()
            tried += 1
            assert resp.status < 500
        # The file inside is still there and nothing was written outside the session.
        assert await raw.download(ident, "x") == (200, b"inside")
        names = await _json_value(raw, ident, "import json, os; json.dumps(sorted(os.listdir('.')))")
        assert {"x"} <= set(names)
    assert not [name for name in os.listdir("/etc") if name.startswith("escaped")]
    record(f"path escapes tried ({mode})", tried)


SYMLINK_SETUP = (
    "import os\n"
    "for name, target in [('link-file', {file!r}), ('link-root', '/'), ('link-up', '..'),\n"
    "                     ('link-secret', {secret!r}), ('link-dir', {hostdir!r}),\n"
    "                     ('link-target', {target!r})]:\n"
    "    if os.path.lexists(name):\n"
    "        os.remove(name)\n"
    "    os.symlink(target, name)\n"
    "os.makedirs('sub', exist_ok=True)\n"
    "if not os.path.lexists('sub/deep-up'):\n"
    "    os.symlink('../..', 'sub/deep-up')\n"
    "True"
)


@pytest.mark.parametrize("mode", MODES)
async def test_file_routes_do_not_follow_symlinks_planted_by_session_code(
    pools: dict[str, PoolProcess], mode: str, server_dir: Path, host_dir: Path
) -> None:
    """Links made by session code point at host paths; the server (which sees the host) must
    neither read nor write through them."""
    pool = pools[mode]
    ident = fresh_identifier("symlink")
    target = host_dir / f"write-target-{uuid.uuid4().hex[:8]}.txt"
    target.write_text("untouched")
    host_subdir = host_dir / f"hostdir-{uuid.uuid4().hex[:8]}"
    host_subdir.mkdir()
    (host_subdir / "hostfile.txt").write_text("root:host-only")
    setup = SYMLINK_SETUP.format(
        file="/etc/passwd", secret=str(server_dir / ".env"), hostdir=str(host_subdir), target=str(target)
    )
    tried = 0
    async with raw_pool(pool) as raw:
        assert await raw.value(ident, setup) is True
        reads = [
            "files/link-file/content",
            "files/link-secret/content",
            "files/link-root/content",
            "files/link-root%2Fetc%2Fpasswd/content",
            "files/link-up%2F..%2Fetc%2Fpasswd/content",
            "files/sub%2Fdeep-up%2Fetc%2Fpasswd/content",
            "files/link-dir%2Fhostfile.txt/content",
            "files/link-file",
            "files/link-dir%2Fhostfile.txt",
            "files/content/link-file",
        ]
        for tail in reads:
            async with raw.http.get(_raw_url(pool, tail, f"identifier={ident}"), headers=raw.auth) as resp:
                body = await resp.read()
            tried += 1
            assert 400 <= resp.status < 500, (tail, resp.status, body[:200])
            assert not _leaks_host_content(body), tail
            assert b"host-only" not in body
        for list_path in ("link-root", "link-dir", "link-up", "sub/deep-up", "link-root/etc"):
            for recursive in ("false", "true"):
                q = f"identifier={ident}&path={quote(list_path, safe='')}&recursive={recursive}"
                async with raw.http.get(_raw_url(pool, "files", q), headers=raw.auth) as resp:
                    body = await resp.read()
                tried += 1
                assert 400 <= resp.status < 500, (list_path, resp.status, body[:300])
        # A recursive listing of the session's own root must not wander through the links.
        list_url = raw.url("files", identifier=ident, recursive="true")
        async with raw.http.get(list_url, headers=raw.auth) as resp:
            listing = await resp.json()
        tried += 1
        assert resp.status == 200
        names = {item["name"] for item in listing["value"]}
        assert "hostfile.txt" not in names
        assert "passwd" not in names
        # Writes: an upload onto a link's name replaces the link; into a linked directory is refused.
        upload_paths: list[str | None] = [None, "link-dir", "link-root/tmp", "sub/deep-up"]
        for path in upload_paths:
            form = aiohttp.FormData()
            filename = "link-target" if path is None else "new.txt"
            form.add_field("file", b"overwritten by upload", filename=filename)
            query = {"identifier": ident, **({"path": path} if path else {})}
            async with raw.http.post(raw.url("files", **query), data=form, headers=raw.auth) as resp:
                body = await resp.read()
            tried += 1
            if path is None:
                assert resp.status == 200, body[:300]
            else:
                assert 400 <= resp.status < 500, (path, resp.status, body[:300])
        # Deleting through a link: the link goes, the host file stays.
        for tail in ("files/link-dir%2Fhostfile.txt", "files/link-secret"):
            async with raw.http.delete(_raw_url(pool, tail, f"identifier={ident}"), headers=raw.auth) as resp:
                await resp.read()
            tried += 1
            assert resp.status < 500
    assert target.read_text() == "untouched"
    assert (host_subdir / "hostfile.txt").read_text() == "root:host-only"
    assert not (host_subdir / "new.txt").exists()
    assert (server_dir / ".env").exists()
    record(f"symlink escapes tried ({mode})", tried)


RACE_CODE = """
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
def make_race(directory, link, target):
    os.makedirs(directory, exist_ok=True)
    if not os.path.lexists(link):
        os.symlink(target, link)
    stop, swaps = threading.Event(), [0]
    def flip():
        while not stop.is_set():
            if libc.renameat2(AT_FDCWD, directory.encode(), AT_FDCWD, link.encode(), RENAME_EXCHANGE) == 0:
                swaps[0] += 1
    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    return stop, thread, swaps
"""
RACE_ATTEMPTS = 100


async def _race_requests(raw: RawPool, make_request: Any) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    for attempt in range(RACE_ATTEMPTS):
        try:
            status, body = await asyncio.wait_for(make_request(attempt), 8)
            key = f"{status}" + (" host-content" if b"root:" in body else "")
        except asyncio.TimeoutError:
            key = "hang"
        except aiohttp.ClientError as exc:
            key = f"connection error {type(exc).__name__}"
        outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes


async def test_downloads_are_not_fooled_by_a_directory_swapped_for_a_symlink(
    pools: dict[str, PoolProcess],
) -> None:
    """Time-of-check to time-of-use: session code swaps a directory and a link to /etc back and
    forth while the file routes read ``swap-dir/passwd``; no answer may carry the host file,
    none may be a 5xx or hang."""
    pool = pools["bwrap"]
    ident = fresh_identifier("race-down")
    async with raw_pool(pool) as raw:
        setup = RACE_CODE + (
            "open('swap-dir/passwd', 'w').write('decoy') if os.path.isdir('swap-dir') else None\n"
            "race = make_race('swap-dir', 'swap-link', '/etc')\nTrue"
        )
        assert (
            await raw.value(
                ident,
                "import os; os.makedirs('swap-dir', exist_ok=True)\n"
                "open('swap-dir/passwd', 'w').write('decoy'); True",
            )
            is True
        )
        assert await raw.value(ident, setup) is True
        url = _raw_url(pool, "files/swap-dir%2Fpasswd/content", f"identifier={ident}")

        async def download(_: int) -> tuple[int, bytes]:
            async with raw.http.get(url, headers=raw.auth) as resp:
                return resp.status, await resp.read()

        outcomes = await _race_requests(raw, download)
        swaps = await raw.value(ident, "race[0].set(); race[1].join(); race[2][0]")
    record("race downloads tried (bwrap)", RACE_ATTEMPTS)
    assert swaps > 0, "the race never swapped; the test proves nothing"
    bad = {
        k: v for k, v in outcomes.items() if "host-content" in k or k.startswith("5") or not k[0].isdigit()
    }
    assert not bad, f"downloads during the swap race: {outcomes}"


async def test_uploads_are_not_fooled_by_a_directory_swapped_for_a_symlink(
    pools: dict[str, PoolProcess], host_dir: Path
) -> None:
    """The same race on uploads: ``path=up-dir`` is swapped with a link to a host directory;
    no uploaded file may land there."""
    pool = pools["bwrap"]
    ident = fresh_identifier("race-up")
    outside = host_dir / f"upload-target-{uuid.uuid4().hex[:8]}"
    outside.mkdir()
    async with raw_pool(pool) as raw:
        setup = RACE_CODE + f"race = make_race('up-dir', 'up-link', {str(outside)!r})\nTrue"
        assert await raw.value(ident, setup) is True

        async def upload(attempt: int) -> tuple[int, bytes]:
            form = aiohttp.FormData()
            form.add_field("file", b"escaped", filename=f"pwned-{attempt}.txt")
            url = raw.url("files", identifier=ident, path="up-dir")
            async with raw.http.post(url, data=form, headers=raw.auth) as resp:
                return resp.status, await resp.read()

        outcomes = await _race_requests(raw, upload)
        swaps = await raw.value(ident, "race[0].set(); race[1].join(); race[2][0]")
    record("race uploads tried (bwrap)", RACE_ATTEMPTS)
    assert swaps > 0, "the race never swapped; the test proves nothing"
    landed = sorted(p.name for p in outside.iterdir())
    assert landed == [], f"{len(landed)} uploads landed outside the session ({outcomes})"
    bad = {k: v for k, v in outcomes.items() if not k.startswith(("2", "4"))}
    assert not bad, f"uploads during the swap race: {outcomes}"

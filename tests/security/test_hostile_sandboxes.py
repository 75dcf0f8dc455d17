"""Hostile requests on the Sandboxes routes (ARM ``Microsoft.App/sandboxGroups`` and the
Sandboxes data plane): non-UTF-8 header bytes, bodies built to bloat memory, bad ids, and file
paths that try to leave the sandbox. Every one is answered below 500 (0 answered with 5xx), with
a JSON error body where it is refused, and the server's own files never come back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio

from autogen_aca_sessions.local import LocalSessionsServer
from tests.security._support import record

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUB = "7c2d3e4f-1111-4222-8333-944455556666"
RG = "rg-hostile"
GROUP = "hostile"
API = "2026-02-01-preview"
ARM = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.App/sandboxGroups"
DATA = f"/subscriptions/{SUB}/resourceGroups/{RG}/sandboxGroups/{GROUP}"
SECRET = "server-secret-7f3a9c"
"""Written into a file under the server's root: no sandbox route may hand it back."""
TIMEOUT = aiohttp.ClientTimeout(total=120)


@dataclass
class Served:
    """The server, a running sandbox in ``GROUP``, and the server's secret file."""

    server: LocalSessionsServer
    http: aiohttp.ClientSession
    sandbox_id: str
    secret_path: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.server.api_key}"}

    def url(self, path: str, query: str = "") -> str:
        sep = "&" if query else ""
        return f"{self.server.base_url}{path}?api-version={API}{sep}{query}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served() -> AsyncIterator[Served]:
    async with LocalSessionsServer() as server:
        await server.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        secret = server.root_dir / "server" / "secret.txt"
        await asyncio.to_thread(secret.write_text, SECRET)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            auth = {"Authorization": f"Bearer {server.api_key}"}
            async with http.put(
                f"{server.base_url}{DATA}/sandboxes?api-version={API}",
                json={"sourcesRef": {"diskImage": {"name": "python-3.12", "isPublic": True}}},
                headers=auth,
            ) as resp:
                assert resp.status in (200, 201), await resp.text()
                sandbox_id = (await resp.json())["id"]
            yield Served(server, http, sandbox_id, str(secret))


# --- non-UTF-8 and control bytes in headers, sent on a raw socket so nothing cleans them ---

BAD_HEADER_VALUES = {
    "non-utf8": b"\xff\xfe",
    "bad-utf8-sequence": b"\xc3\x28\xa0\xe2\x82",
    "control-chars": b"a\x01\x1b[2Jb\x7f",
}
HEADERS_UNDER_TEST = ("Authorization", "Content-Type", "x-ms-client-request-id", "Host")


def _targets(sandbox_id: str) -> list[tuple[str, str, bytes]]:
    return [
        ("GET", f"{ARM}?api-version={API}", b""),
        ("PUT", f"{ARM}/hdrgroup?api-version={API}", b'{"location":"local"}'),
        ("GET", f"{DATA}/sandboxes?api-version={API}", b""),
        (
            "POST",
            f"{DATA}/sandboxes/{sandbox_id}/executeShellCommand?api-version={API}",
            b'{"command":"true"}',
        ),
        ("GET", f"{DATA}/sandboxes/{sandbox_id}/files?path=/etc/hostname&api-version={API}", b""),
    ]


async def _raw_status(port: int, method: str, target: str, headers: dict[str, bytes], body: bytes) -> int:
    lines = [f"{method} {target} HTTP/1.1".encode()]
    lines += [name.encode() + b": " + value for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}".encode(), b"Connection: close", b"", b""]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"\r\n".join(lines) + body)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 60)
    finally:
        writer.close()
    return int(head.split(b" ")[1])


@pytest.mark.parametrize("header", HEADERS_UNDER_TEST)
@pytest.mark.parametrize("value_name", sorted(BAD_HEADER_VALUES))
async def test_malformed_header_bytes_on_sandbox_routes_get_no_5xx(
    served: Served, header: str, value_name: str
) -> None:
    port = served.server.port
    statuses = []
    for method, target, body in _targets(served.sandbox_id):
        headers = {
            "Host": b"127.0.0.1",
            "Authorization": f"Bearer {served.server.api_key}".encode(),
            "Content-Type": b"application/json",
        }
        headers[header] = BAD_HEADER_VALUES[value_name]
        statuses.append(await _raw_status(port, method, target, headers, body))
    record("sandboxes hostile header requests", len(statuses))
    assert all(0 < s < 500 for s in statuses), statuses
    if header == "Authorization":  # refused by the HTTP parser (400) or the key check (401)
        assert set(statuses) <= {400, 401}, statuses


# --- bodies built to bloat memory, bad ids, path escapes ---


@dataclass(frozen=True)
class Case:
    """One hostile request; ``{sid}`` in the path is the running sandbox's id."""

    name: str
    method: str
    path: str
    query: str = ""
    body: bytes | None = None
    content_type: str = "application/json"
    bloat: int = 0
    """When set, ``@`` in the body becomes this many ``x`` (built when the test runs, so that
    collecting the tests holds no large bodies), sent in 1 MiB chunks without a length."""


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


CASES = [
    # Bodies built to bloat memory.
    Case("huge ARM group body", "PUT", f"{ARM}/bloat", body=b'{"location":"@"}', bloat=12 << 20),
    Case("deep ARM group body", "PUT", f"{ARM}/deep", body=_deep(200_000)),
    Case("huge create body", "PUT", f"{DATA}/sandboxes", body=b'{"labels":{"a":"@"}}', bloat=12 << 20),
    Case("deep create body", "PUT", f"{DATA}/sandboxes", body=_deep(200_000)),
    Case(
        "huge exec body",
        "POST",
        f"{DATA}/sandboxes/{{sid}}/executeShellCommand",
        body=b'{"command":"@"}',
        bloat=12 << 20,
    ),
    Case("deep exec body", "POST", f"{DATA}/sandboxes/{{sid}}/executeShellCommand", body=_deep(200_000)),
    Case("exec body not json", "POST", f"{DATA}/sandboxes/{{sid}}/executeShellCommand", body=b"\xff\xfe{"),
    Case(
        "exec command not a string",
        "POST",
        f"{DATA}/sandboxes/{{sid}}/executeShellCommand",
        body=b'{"command":[1,2]}',
    ),
    Case(
        "lifecycle absurd interval",
        "POST",
        f"{DATA}/sandboxes/{{sid}}/lifecycle",
        body=b'{"autoSuspendPolicy":{"enabled":true,"interval":1e308}}',
    ),
    Case("mkdir body not an object", "POST", f"{DATA}/sandboxes/{{sid}}/files/mkdir", body=b'"x"'),
    # Bad ids and names.
    Case("group name with dots", "PUT", f"{ARM}/..", body=b'{"location":"local"}'),
    Case("group name too long", "PUT", f"{ARM}/{'g' * 300}", body=b'{"location":"local"}'),
    Case("group name non-ascii", "PUT", f"{ARM}/{quote('gröup')}", body=b'{"location":"local"}'),
    Case("no such group", "GET", f"/subscriptions/{SUB}/resourceGroups/{RG}/sandboxGroups/nope/sandboxes"),
    Case(
        "encoded slash in group",
        "GET",
        f"/subscriptions/{SUB}/resourceGroups/{RG}/sandboxGroups/a%2Fb/sandboxes",
    ),
    Case("sandbox id dot-dot", "GET", f"{DATA}/sandboxes/%2E%2E"),
    Case("sandbox id NUL", "GET", f"{DATA}/sandboxes/a%00b"),
    Case("sandbox id long", "GET", f"{DATA}/sandboxes/{'s' * 4000}"),
    Case("sandbox id non-utf8", "GET", f"{DATA}/sandboxes/%FF%FE"),
    Case(
        "exec on unknown sandbox",
        "POST",
        f"{DATA}/sandboxes/0000/executeShellCommand",
        body=b'{"command":"true"}',
    ),
    Case("snapshot id traversal", "GET", f"{DATA}/snapshots/..%2F..%2Fetc"),
    Case("disk image id traversal", "DELETE", f"{DATA}/diskimages/..%2F..%2F"),
    Case(
        "create from unknown snapshot",
        "PUT",
        f"{DATA}/sandboxes",
        body=b'{"sourcesRef":{"snapshot":{"id":"../../x"}}}',
    ),
    Case(
        "create from unknown image",
        "PUT",
        f"{DATA}/sandboxes",
        body=b'{"sourcesRef":{"diskImage":{"name":"../../../bin","isPublic":true}}}',
    ),
    Case("labels filter garbage", "GET", f"{DATA}/sandboxes", query="labels=%FF%FE,=,==,a"),
    Case("bad api-version", "GET", f"{DATA}/sandboxes", query="api-version=%FF"),
    # Path escapes in file paths (the server's secret file, the host's root, /proc).
    Case("read server secret", "GET", f"{DATA}/sandboxes/{{sid}}/files", query="path={secret}"),
    Case(
        "read secret via dot-dot",
        "GET",
        f"{DATA}/sandboxes/{{sid}}/files",
        query="path=/root/../../..{secret}",
    ),
    Case(
        "read secret via proc root",
        "GET",
        f"{DATA}/sandboxes/{{sid}}/files",
        query="path=/proc/1/root{secret}",
    ),
    Case("stat secret", "GET", f"{DATA}/sandboxes/{{sid}}/files/stat", query="path={secret}"),
    Case("list server root", "GET", f"{DATA}/sandboxes/{{sid}}/files/list", query="path={root}"),
    Case("read with NUL", "GET", f"{DATA}/sandboxes/{{sid}}/files", query="path=/etc/passwd%00.txt"),
    Case("read non-utf8 path", "GET", f"{DATA}/sandboxes/{{sid}}/files", query="path=/root/%FF%FE"),
    Case("read empty path", "GET", f"{DATA}/sandboxes/{{sid}}/files", query="path="),
    Case(
        "write through dot-dot",
        "PUT",
        f"{DATA}/sandboxes/{{sid}}/files",
        query="path=../../../../tmp/escape&createDirs=true",
        body=b"x",
        content_type="application/octet-stream",
    ),
    Case(
        "write huge file",
        "PUT",
        f"{DATA}/sandboxes/{{sid}}/files",
        query="path=/root/big&createDirs=true",
        body=b"@",
        bloat=260 << 20,
        content_type="application/octet-stream",
    ),
    Case(
        "delete root recursively", "DELETE", f"{DATA}/sandboxes/{{sid}}/files", query="path=/&recursive=true"
    ),
    Case(
        "mkdir in proc",
        "POST",
        f"{DATA}/sandboxes/{{sid}}/files/mkdir",
        body=b'{"path":"/proc/1/root/escape"}',
    ),
]


async def _bloated(body: bytes, size: int) -> AsyncIterator[bytes]:
    head, tail = body.split(b"@", 1)
    yield head
    chunk = b"x" * (1 << 20)
    for _ in range(size // len(chunk)):
        yield chunk
    yield tail


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_hostile_sandbox_request_gets_no_5xx_and_no_server_file(served: Served, case: Case) -> None:
    root = str(served.server.root_dir)
    path = case.path.replace("{sid}", served.sandbox_id)
    query = case.query.replace("{secret}", quote(served.secret_path)).replace("{root}", quote(root))
    url = f"{served.server.base_url}{path}?" + (
        query if "api-version=" in query else f"api-version={API}&{query}"
    )
    headers = {**served.auth, "Content-Type": case.content_type}
    data: bytes | AsyncIterator[bytes] | None = case.body
    if case.bloat and case.body is not None:
        data = _bloated(case.body, case.bloat)
    async with served.http.request(case.method, url, data=data, headers=headers) as resp:
        body = await resp.read()
        status = resp.status
    record("sandboxes hostile requests", 1)
    assert status < 500, (status, body[:300])
    assert SECRET.encode() not in body
    assert root.encode() not in body or status >= 400  # a listing never shows the server's tree
    if status >= 400:
        assert "error" in json.loads(body), body[:300]


async def test_server_still_serves_the_sandbox_after_the_hostile_requests(served: Served) -> None:
    url = served.url(f"{DATA}/sandboxes/{served.sandbox_id}/executeShellCommand")
    async with served.http.post(url, json={"command": "echo alive"}, headers=served.auth) as resp:
        assert resp.status == 200
        reply = await resp.json()
    assert reply["stdout"] == "alive\n"

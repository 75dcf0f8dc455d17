"""Hostile requests on the Sandboxes egress and secrets routes (``{s}/egresspolicy``,
``{s}/egress-decisions``, ``{g}/secrets/...``): bodies built to bloat memory, deep and broken
JSON, policies that would smuggle headers or reach what the local proxy cannot honour, and
secret ids and values that are not ids or header values. Every one is answered below 500 with
a JSON error body, no refused write changes what is in force, no answer but ``peek`` carries a
secret's value, and the sandbox serves a command afterwards.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio

from autogen_aca_sessions.local import LocalSessionsServer
from autogen_aca_sessions.local.runtime.sandboxes.secrets import MAX_SECRETS_PER_GROUP
from tests.security._support import record

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUB = "3a9e0b1c-2222-4333-8444-955566667777"
RG = "rg-hostile-egress"
GROUP = "hostile-egress"
API = "2026-02-01-preview"
DATA = f"/subscriptions/{SUB}/resourceGroups/{RG}/sandboxGroups/{GROUP}"
SECRET_VALUE = "sk-hostile-egress-9d8c7b6a"
"""The value of the group's secret ``kept``: only ``peek`` may answer it."""
TIMEOUT = aiohttp.ClientTimeout(total=120)


@dataclass
class Served:
    """The server, a running sandbox in ``GROUP`` (default policy) and the secret ``kept``."""

    server: LocalSessionsServer
    http: aiohttp.ClientSession
    sandbox_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.server.api_key}"}

    def url(self, path: str) -> str:
        return f"{self.server.base_url}{path}?api-version={API}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served() -> AsyncIterator[Served]:
    async with LocalSessionsServer() as server, aiohttp.ClientSession(timeout=TIMEOUT) as http:
        await server.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        auth = {"Authorization": f"Bearer {server.api_key}"}
        base = f"{server.base_url}{DATA}"
        async with http.put(f"{base}/sandboxes?api-version={API}", json={}, headers=auth) as resp:
            assert resp.status in (200, 201), await resp.text()
            sandbox_id = (await resp.json())["id"]
        body = {"values": {"value": SECRET_VALUE}}
        async with http.put(f"{base}/secrets/kept?api-version={API}", json=body, headers=auth) as resp:
            assert resp.status == 201, await resp.text()
        yield Served(server, http, sandbox_id)


@dataclass(frozen=True)
class Case:
    """One hostile request; ``{sid}`` in the path is the running sandbox's id."""

    name: str
    method: str
    path: str
    body: bytes | None = None
    bloat: int = 0
    """When set, ``@`` in the body becomes this many ``x``, sent in 1 MiB chunks without a length."""
    status: int = 400
    """The status the request must get."""


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def _policy(policy: object) -> bytes:
    return json.dumps(policy).encode()


def _transform(header: object) -> bytes:
    return _policy(
        {"rules": [{"match": {"host": "api.test"}, "action": {"type": "Transform", "headers": [header]}}]}
    )


POLICY = f"{DATA}/sandboxes/{{sid}}/egresspolicy"
SECRETS = f"{DATA}/secrets"

CASES = [
    # The policy write: bodies built to bloat memory, broken JSON.
    Case("huge policy", "POST", POLICY, b'{"defaultAction":"Allow","x":"@"}', bloat=12 << 20, status=413),
    Case("deep policy", "POST", POLICY, _deep(200_000)),
    Case("policy not json", "POST", POLICY, b"\xff\xfe{"),
    Case("policy an array", "POST", POLICY, b'[{"defaultAction":"Allow"}]'),
    Case("policy empty body", "POST", POLICY, b""),
    Case("default action unknown", "POST", POLICY, _policy({"defaultAction": "Maybe"})),
    Case("default action non-utf8", "POST", POLICY, b'{"defaultAction":"Allo\xff"}'),
    Case(
        "too many host rules",
        "POST",
        POLICY,
        _policy({"hostRules": [{"pattern": f"h{i}.test", "action": "Allow"} for i in range(1025)]}),
    ),
    Case(
        "too many rules",
        "POST",
        POLICY,
        _policy({"rules": [{"match": {"host": "a.test"}, "action": "Allow"}] * 257}),
    ),
    Case(
        "host with a space",
        "POST",
        POLICY,
        _policy({"hostRules": [{"pattern": "a b.test", "action": "Allow"}]}),
    ),
    Case(
        "host non-ascii",
        "POST",
        POLICY,
        _policy({"hostRules": [{"pattern": "bücher.test", "action": "Allow"}]}),
    ),
    Case(
        "host with a port",
        "POST",
        POLICY,
        _policy({"hostRules": [{"pattern": "a.test:80", "action": "Allow"}]}),
    ),
    Case(
        "host 300 chars", "POST", POLICY, _policy({"hostRules": [{"pattern": "a" * 300, "action": "Allow"}]})
    ),
    Case("host rule not an object", "POST", POLICY, _policy({"hostRules": ["*"]})),
    Case(
        "transform sets Host", "POST", POLICY, _transform({"operation": "Set", "name": "Host", "value": "x"})
    ),
    Case(
        "transform sets Transfer-Encoding",
        "POST",
        POLICY,
        _transform({"operation": "Set", "name": "Transfer-Encoding", "value": "chunked"}),
    ),
    Case(
        "header value smuggles a line",
        "POST",
        POLICY,
        _transform({"operation": "Set", "name": "X-A", "value": "v\r\nX-Evil: 1"}),
    ),
    Case(
        "header name with colon",
        "POST",
        POLICY,
        _transform({"operation": "Set", "name": "X-A:b", "value": "v"}),
    ),
    Case(
        "secret format smuggles a line",
        "POST",
        POLICY,
        _transform(
            {
                "operation": "Set",
                "name": "X-A",
                "valueRef": {"secretRef": {"secretId": "kept", "format": "{value}\r\nX-Evil: 1"}},
            }
        ),
    ),
    Case(
        "managed identity",
        "POST",
        POLICY,
        _transform(
            {"operation": "Set", "name": "X-A", "valueRef": {"managedIdentityRef": {"resource": "https://x"}}}
        ),
    ),
    Case(
        "rewrite",
        "POST",
        POLICY,
        _policy({"rules": [{"match": {"host": "a.test"}, "action": {"type": "Rewrite", "host": "b.test"}}]}),
    ),
    Case("legacy inspection", "POST", POLICY, _policy({"trafficInspection": "Legacy"})),
    Case("enforcement unknown", "POST", POLICY, _policy({"http": {"enforcementMode": "Off"}})),
    Case("policy on unknown sandbox", "POST", f"{DATA}/sandboxes/0000/egresspolicy", b"{}", status=404),
    Case("decisions of unknown sandbox", "GET", f"{DATA}/sandboxes/0000/egress-decisions", status=404),
    Case("decisions of bad id", "GET", f"{DATA}/sandboxes/%2E%2E/egressDecisions", status=404),
    # Secrets: ids that are not ids.
    Case("secret id too short", "PUT", f"{SECRETS}/ab", b'{"values":{"k":"v"}}'),
    Case("secret id too long", "PUT", f"{SECRETS}/{'s' * 65}", b'{"values":{"k":"v"}}'),
    Case("secret id 4000 chars", "PUT", f"{SECRETS}/{'s' * 4000}", b'{"values":{"k":"v"}}'),
    Case("secret id with dots", "PUT", f"{SECRETS}/a.b.c", b'{"values":{"k":"v"}}'),
    Case("secret id dot-dot", "PUT", f"{SECRETS}/%2E%2E", b'{"values":{"k":"v"}}', status=404),
    Case("secret id NUL", "PUT", f"{SECRETS}/abc%00def", b'{"values":{"k":"v"}}'),
    Case("secret id non-utf8", "PUT", f"{SECRETS}/%FF%FE%FD", b'{"values":{"k":"v"}}'),
    Case("secret id encoded slash", "DELETE", f"{SECRETS}/abc%2Fdef", status=404),
    Case("keys of bad id", "GET", f"{SECRETS}/a_b/keys"),
    Case("peek of bad id", "POST", f"{SECRETS}/%FF%FF%FF/peek"),
    # Secrets: bodies.
    Case("secret huge body", "PUT", f"{SECRETS}/huge", b'{"values":{"k":"@"}}', bloat=12 << 20, status=413),
    Case("secret deep body", "PUT", f"{SECRETS}/deep", _deep(200_000)),
    Case("secret body not json", "PUT", f"{SECRETS}/nojson", b"\xff\xfe{"),
    Case("secret body an array", "PUT", f"{SECRETS}/array", b'[{"values":{}}]'),
    Case("secret without values", "PUT", f"{SECRETS}/novalues", b'{"value":"x"}'),
    Case("secret values not an object", "PUT", f"{SECRETS}/notobj", b'{"values":"x"}'),
    Case("secret values empty", "PUT", f"{SECRETS}/empty", b'{"values":{}}'),
    Case("secret value a number", "PUT", f"{SECRETS}/number", b'{"values":{"k":5}}'),
    Case("secret value smuggles a line", "PUT", f"{SECRETS}/crlf", b'{"values":{"k":"a\\r\\nX-Evil: 1"}}'),
    Case("secret value non-ascii", "PUT", f"{SECRETS}/nonascii", b'{"values":{"k":"caf\\u00e9"}}'),
    Case("secret value NUL", "PUT", f"{SECRETS}/nul", b'{"values":{"k":"a\\u0000b"}}'),
    Case("secret value too long", "PUT", f"{SECRETS}/long", _policy({"values": {"k": "v" * 8193}})),
    Case("secret key with slash", "PUT", f"{SECRETS}/badkey", b'{"values":{"a/b":"v"}}'),
    Case(
        "secret too many keys",
        "PUT",
        f"{SECRETS}/manykeys",
        _policy({"values": {f"k{i}": "v" for i in range(33)}}),
    ),
    Case("peek huge body", "POST", f"{SECRETS}/kept/peek", b'{"x":"@"}', bloat=12 << 20, status=413),
    Case("keys of unknown secret", "GET", f"{SECRETS}/nope-nope/keys", status=404),
    Case("peek of unknown secret", "POST", f"{SECRETS}/nope-nope/peek", status=404),
    Case("delete unknown secret", "DELETE", f"{SECRETS}/nope-nope", status=404),
]


async def _bloated(body: bytes, size: int) -> AsyncIterator[bytes]:
    head, tail = body.split(b"@", 1)
    yield head
    chunk = b"x" * (1 << 20)
    for _ in range(size // len(chunk)):
        yield chunk
    yield tail


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_hostile_egress_or_secret_request_is_refused_below_500(served: Served, case: Case) -> None:
    url = served.url(case.path.replace("{sid}", served.sandbox_id))
    data: bytes | AsyncIterator[bytes] | None = case.body
    if case.bloat and case.body is not None:
        data = _bloated(case.body, case.bloat)
    headers = {**served.auth, "Content-Type": "application/json"}
    async with served.http.request(case.method, url, data=data, headers=headers) as resp:
        body = await resp.read()
        status = resp.status
    record("sandboxes hostile egress and secrets requests", 1)
    assert status == case.status, (status, body[:300])
    assert "error" in json.loads(body), body[:300]
    assert SECRET_VALUE.encode() not in body


BAD_HEADER_VALUES = {
    "non-utf8": b"\xff\xfe",
    "bad-utf8-sequence": b"\xc3\x28\xa0\xe2\x82",
    "control-chars": b"a\x01\x1b[2Jb\x7f",
}


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


@pytest.mark.parametrize("header", ["Authorization", "Content-Type", "x-ms-client-request-id", "Host"])
@pytest.mark.parametrize("value_name", sorted(BAD_HEADER_VALUES))
async def test_malformed_header_bytes_on_egress_and_secret_routes_get_no_5xx(
    served: Served, header: str, value_name: str
) -> None:
    sid = served.sandbox_id
    targets = [
        ("POST", f"{DATA}/sandboxes/{sid}/egresspolicy?api-version={API}", b'{"defaultAction":"Deny"}'),
        ("GET", f"{DATA}/sandboxes/{sid}/egress-decisions?api-version={API}", b""),
        ("PUT", f"{SECRETS}/hdr-secret?api-version={API}", b'{"values":{"k":"v"}}'),
        ("POST", f"{SECRETS}/kept/peek?api-version={API}", b""),
    ]
    statuses = []
    for method, target, body in targets:
        headers = {
            "Host": b"127.0.0.1",
            "Authorization": f"Bearer {served.server.api_key}".encode(),
            "Content-Type": b"application/json",
        }
        headers[header] = BAD_HEADER_VALUES[value_name]
        statuses.append(await _raw_status(served.server.port, method, target, headers, body))
    record("sandboxes hostile egress and secrets header requests", len(statuses))
    assert all(0 < s < 500 for s in statuses), statuses
    if header == "Authorization":
        assert set(statuses) <= {400, 401}, statuses


async def test_refused_writes_changed_nothing_and_the_sandbox_still_serves(served: Served) -> None:
    sandbox = served.url(f"{DATA}/sandboxes/{served.sandbox_id}")
    async with served.http.get(sandbox, headers=served.auth) as resp:
        policy = (await resp.json())["egressPolicy"]
    assert (policy["defaultAction"], policy["hostRules"], policy["rules"]) == ("Deny", [], [])
    async with served.http.get(served.url(SECRETS), headers=served.auth) as resp:
        listing = await resp.read()
    assert [s["id"] for s in json.loads(listing)["secrets"]] in (["kept"], ["kept", "hdr-secret"])
    assert SECRET_VALUE.encode() not in listing
    async with served.http.post(
        served.url(f"{DATA}/sandboxes/{served.sandbox_id}/executeShellCommand"),
        json={"command": "echo alive"},
        headers=served.auth,
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["stdout"] == "alive\n"


async def test_a_group_keeps_a_bounded_number_of_secrets_and_says_when_to_retry(served: Served) -> None:
    async with served.http.get(served.url(SECRETS), headers=served.auth) as resp:
        held = len((await resp.json())["secrets"])
    ids = [f"quota-{i:04d}" for i in range(MAX_SECRETS_PER_GROUP - held + 1)]
    statuses = []
    try:
        for secret_id in ids:
            async with served.http.put(
                served.url(f"{SECRETS}/{secret_id}"), json={"values": {"k": "v"}}, headers=served.auth
            ) as resp:
                statuses.append(resp.status)
        # The last of these is one too many.
        assert statuses == [201] * (len(ids) - 1) + [429]
        async with served.http.put(
            served.url(f"{SECRETS}/quota-more"), json={"values": {"k": "v"}}, headers=served.auth
        ) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "10"
            assert (await resp.json())["error"]["code"] == "SecretQuotaExceeded"
        # Replacing one it keeps is not a new one.
        async with served.http.put(
            served.url(f"{SECRETS}/kept"), json={"values": {"value": SECRET_VALUE}}, headers=served.auth
        ) as resp:
            assert resp.status == 200
    finally:
        for secret_id in ids:
            async with served.http.delete(served.url(f"{SECRETS}/{secret_id}"), headers=served.auth):
                pass

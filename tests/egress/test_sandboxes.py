"""Egress of ACA Sandboxes, end to end: the official SDK (``azure-containerapps-sandbox``) and raw
HTTP against the real local server over TLS, real bubblewrap sandboxes, and the "outside world"
of ``world.py`` (HTTP and HTTPS servers on 127.0.0.1 that the server's egress proxy reaches
through the test-only resolver: ``api.test``, ``sub.api.test``, ``other.test``).

Commands inside use curl and the host's Python, which honour ``HTTP(S)_PROXY``; HTTPS trusts the
world's CA, written into the sandbox through the files API.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import pytest_asyncio
from azure.containerapps.sandbox import (
    EgressHeader,
    EgressHeaderValueRef,
    EgressHostRule,
    EgressPolicy,
    EgressSecretRef,
    SandboxClient,
    SandboxGroupClient,
)
from azure.core.exceptions import HttpResponseError

from autogen_aca_sessions.local import LocalSessionsServer
from tests.sandboxes._wire_helpers import RG, SDK_API, SPEC_API, SUB, Raw, group_client

from .probes import ESCAPE_PROBE, secret_search
from .sandboxed import needs_bwrap
from .world import World, world_servers

pytestmark = [needs_bwrap, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

GROUP = "egress"
CA = "/root/world-ca.pem"
"""Where each sandbox gets the world's CA."""
CURL = "curl -sS --max-time 30 -w '|%{http_code}\\n' "
"""curl printing the body, then ``|``, the status (``000`` when there was no answer) and a line
end: :func:`answers` splits the output of several."""
SECRET = "sk-sandbox-egress-5be0c4a1d2"
"""The value of the group secret the Transform tests add at the edge."""

T = TypeVar("T")


@dataclass
class Env:
    """The server, its world, the SDK's group client and raw HTTP."""

    server: LocalSessionsServer
    world: World
    client: SandboxGroupClient
    raw: Raw

    async def sdk(self, fn: Callable[[], T]) -> T:
        """Run a (blocking) SDK call in a thread while the loop serves it."""
        return await asyncio.to_thread(fn)

    async def sandbox(self, **create: Any) -> SandboxClient:
        """A Running sandbox (SDK create), holding the world's CA at :data:`CA`."""
        sandbox: SandboxClient = await self.sdk(
            lambda: self.client.begin_create_sandbox(disk="python-3.12", **create).result()
        )
        ca = self.world.ca_file.read_bytes()
        await self.sdk(lambda: sandbox.write_file(CA, ca))
        return sandbox

    async def delete(self, sandbox: SandboxClient) -> None:
        await self.sdk(lambda: sandbox.begin_delete().result())

    async def sh(self, sandbox: SandboxClient, command: str) -> tuple[int, str, str]:
        """Run a shell command in the sandbox: exit code, stdout, stderr."""
        result = await self.sdk(lambda: sandbox.exec(command))
        return result.exit_code, result.stdout, result.stderr

    def url(self, sandbox: SandboxClient, tail: str, *, version: str = SDK_API) -> str:
        path = f"sandboxes/{sandbox.sandbox_id}" + (f"/{tail}" if tail else "")
        return self.raw.group_url(GROUP, path, version=version)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    directory: Path = tmp_path_factory.mktemp("world")
    async with (
        world_servers(directory) as world,
        LocalSessionsServer(tls=True) as server,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=server.ssl_context()),
            timeout=aiohttp.ClientTimeout(total=120),
        ) as http,
    ):
        await server.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        runtime = (await server.sandbox_groups()).runtime
        runtime.egress.override_resolver(world.resolver())
        yield Env(server, world, group_client(server, GROUP), Raw(server, http))


def answers(out: str) -> list[tuple[str, str]]:
    """``(body, status)`` of each :data:`CURL` in ``out``, in order."""
    return [(body.strip(), status) for body, status in re.findall(r"(.*?)\|(\d{3})\n", out, re.DOTALL)]


def _paths(world: World) -> list[str]:
    return [seen.path for seen in world.seen]


async def test_a_new_sandbox_denies_everything_at_once_and_logs_it(env: Env) -> None:
    sandbox = await env.sandbox()
    try:
        policy = await env.sdk(sandbox.get_egress_policy)
        assert policy.default_action == "Deny"  # shown, so the SDK's own default (Allow) never applies
        code, out, _ = await env.sh(sandbox, f"{CURL} http://api.test:{env.world.http_port}/denied")
        assert code == 0
        [(body, status)] = answers(out)
        assert status == "403"
        assert "api.test is not allowed" in body
        code, _, err = await env.sh(sandbox, f"{CURL} --cacert {CA} https://api.test:{env.world.https_port}/")
        assert code == 56, err  # the CONNECT was answered 403 (a hang would be 28)
        assert "403" in err
        assert "/denied" not in _paths(env.world)
        decisions = await env.sdk(sandbox.get_egress_decisions)
        assert decisions.network_egress is not None
        denied = decisions.network_egress.denied
        assert [(d.host, d.method, d.scheme) for d in denied] == [
            ("api.test", "CONNECT", "https"),
            ("api.test", "GET", "http"),
        ]
        assert denied[1].path == "/denied"
        assert decisions.network_egress.allowed == []
    finally:
        await env.delete(sandbox)


async def test_an_allowed_host_works_over_http_and_https_and_both_are_logged(env: Env) -> None:
    sandbox = await env.sandbox()
    try:
        policy = await env.sdk(lambda: sandbox.add_egress_host_rule("api.test", action="Allow"))
        assert [(r.pattern, r.action) for r in policy.host_rules] == [("api.test", "Allow")]
        code, out, err = await env.sh(
            sandbox,
            f"{CURL} http://api.test:{env.world.http_port}/plain; "
            f"{CURL} --cacert {CA} https://api.test:{env.world.https_port}/tls; "
            f"{CURL} http://other.test:{env.world.http_port}/other",
        )
        assert code == 0, err
        got = answers(out)
        assert got[:2] == [("hello GET /plain", "200"), ("hello GET /tls", "200")]
        assert got[2][1] == "403"
        raw = await env.raw.call("GET", env.url(sandbox, "egress-decisions"))
        assert raw.status == 200
        body = raw.json()
        allowed = body["networkEgress"]["allowed"]
        assert [(d["host"], d["scheme"], d["action"], d["matchedRule"]) for d in allowed] == [
            ("api.test", "https", "Allow", "hostRules[0]:api.test"),
            ("api.test", "http", "Allow", "hostRules[0]:api.test"),
        ]
        assert [d["host"] for d in body["networkEgress"]["denied"]] == ["other.test"]
        assert allowed[0]["timestamp"] >= allowed[1]["timestamp"]  # newest first
        assert body["http"] == body["networkEgress"]
    finally:
        await env.delete(sandbox)


async def test_wildcard_rules_match_names_below_the_domain_and_the_first_match_wins(env: Env) -> None:
    sandbox = await env.sandbox()
    try:
        body = {
            "defaultAction": "Deny",
            "hostRules": [
                {"pattern": "*.api.test", "action": "Allow"},
                {"pattern": "api.test", "action": "Deny"},
                {"pattern": "*.test", "action": "Allow"},
            ],
        }
        reply = await env.raw.call("POST", env.url(sandbox, "egresspolicy"), body=body)
        assert reply.status == 200, reply.body
        assert reply.json()["hostRules"] == body["hostRules"]
        port = env.world.http_port
        code, out, err = await env.sh(
            sandbox,
            f"for h in sub.api.test api.test other.test; do {CURL} http://$h:{port}/w-$h; done",
        )
        assert code == 0, err
        assert [status for _, status in answers(out)] == ["200", "403", "200"]
        decisions = (await env.raw.call("GET", env.url(sandbox, "egress-decisions"))).json()
        assert decisions["networkEgress"]["denied"][0]["matchedRule"] == "hostRules[1]:api.test"
    finally:
        await env.delete(sandbox)


async def test_a_transform_header_from_a_group_secret_arrives_but_never_enters_the_sandbox(env: Env) -> None:
    await env.sdk(lambda: env.client.upsert_secret("upstream-key", {"value": SECRET}))
    sandbox = await env.sandbox()
    try:
        header = EgressHeader(
            operation="Set",
            name="X-Api-Key",
            value_ref=EgressHeaderValueRef(
                secret_ref=EgressSecretRef(secret_id="upstream-key", format="Key {value}")
            ),
        )
        policy = await env.sdk(
            lambda: sandbox.add_egress_transform_rule("api.test", [header], name="add-key")
        )
        assert policy.rules[0].action is not None
        assert policy.rules[0].action.type == "Transform"
        searched = ["/root", "/home", "/mnt/data", "/tmp", "/run", "/dev/shm"]
        url = f"http://api.test:{env.world.http_port}/with-key"
        # The search finds a needle it was handed in its own command line (it does look there)...
        probe = secret_search(hex_needle=False).replace("'", "'\\''")
        code, out, err = await env.sh(sandbox, f"python3 -c '{probe}' {url} {SECRET} {' '.join(searched)}")
        assert code == 0, err
        assert out.splitlines() == ["hello GET /with-key", "True"]
        # ...and does not find the secret handed to it hex-encoded: nothing else holds it.
        probe = secret_search(hex_needle=True).replace("'", "'\\''")
        code, out, err = await env.sh(
            sandbox, f"python3 -c '{probe}' {url}2 {SECRET.encode().hex()} {' '.join(searched)}"
        )
        assert code == 0, err
        assert out.splitlines() == ["hello GET /with-key2", "False"]
        arrived = [s for s in env.world.seen if s.path.startswith("/with-key")]
        assert [s.headers.get("x-api-key") for s in arrived] == [f"Key {SECRET}"] * 2
        # Nor is it in the sandbox's record on the wire, or in its files on the host.
        assert SECRET not in json.dumps((await env.raw.call("GET", env.url(sandbox, ""))).json())
        # HTTPS cannot carry the header (the proxy does not decrypt): the rule denies it.
        code, _, err = await env.sh(sandbox, f"{CURL} --cacert {CA} https://api.test:{env.world.https_port}/")
        assert code == 56, err
        assert "Transform" in policy_warning(await env.raw.call("GET", env.url(sandbox, "")))
        # A deleted secret fails the request closed: it never goes out without its credential.
        await env.sdk(lambda: env.client.delete_secret("upstream-key"))
        _, out, _ = await env.sh(sandbox, f"{CURL} {url}3")
        [(body, status)] = answers(out)
        assert status == "403"
        assert "upstream-key" in body
        assert "/with-key3" not in _paths(env.world)
    finally:
        await env.delete(sandbox)


def policy_warning(reply: Any) -> str:
    """The ``validationWarnings`` of the sandbox's egress policy, joined."""
    return " ".join(reply.json()["egressPolicy"].get("validationWarnings", []))


async def test_group_secrets_are_listed_without_values_and_peeked_with_them(env: Env) -> None:
    first = await env.sdk(lambda: env.client.upsert_secret("list-me", {"a": "1", "b": "2"}))
    assert first.id == "list-me"
    assert first.values == {}  # a write does not echo the values
    listed = await env.sdk(lambda: list(env.client.list_secrets()))
    mine = [s for s in listed if s.id == "list-me"]
    assert [(s.id, s.keys) for s in mine] == [("list-me", ["a", "b"])]
    assert mine[0].created_at is not None
    assert await env.sdk(lambda: env.client.list_secret_keys("list-me")) == ["a", "b"]
    peeked = await env.sdk(lambda: env.client.peek_secret("list-me"))
    assert peeked.values == {"a": "1", "b": "2"}
    replaced = await env.raw.call(
        "PUT", env.raw.group_url(GROUP, "secrets/list-me"), body={"values": {"c": "3"}}
    )
    assert replaced.status == 200
    assert replaced.json()["keys"] == ["c"]
    listing = await env.raw.call("GET", env.raw.group_url(GROUP, "secrets"))
    assert SECRET not in listing.body.decode()
    assert "values" not in next(s for s in listing.json()["secrets"] if s["id"] == "list-me")
    await env.sdk(lambda: env.client.delete_secret("list-me"))
    with pytest.raises(HttpResponseError) as caught:
        await env.sdk(lambda: env.client.peek_secret("list-me"))
    assert caught.value.status_code == 404
    assert caught.value.error is not None
    assert caught.value.error.code == "SecretNotFound"


async def test_audit_mode_lets_everything_out_and_logs_what_would_be_denied(env: Env) -> None:
    sandbox = await env.sandbox()
    try:
        body = {
            "http": {
                "defaultAction": "Deny",
                "enforcementMode": "Audit",
                "hostRules": [{"pattern": "api.test", "action": "Allow"}],
            }
        }
        reply = await env.raw.call("POST", env.url(sandbox, "egresspolicy", version=SPEC_API), body=body)
        assert reply.status == 200, reply.body
        assert reply.json()["http"]["enforcementMode"] == "Audit"
        port = env.world.http_port
        code, out, err = await env.sh(
            sandbox, f"{CURL} http://api.test:{port}/audit-ok; {CURL} http://other.test:{port}/audited"
        )
        assert code == 0, err
        assert answers(out) == [("hello GET /audit-ok", "200"), ("hello GET /audited", "200")]
        spec = (await env.raw.call("GET", env.url(sandbox, "egressDecisions", version=SPEC_API))).json()
        assert [(d["host"], d["action"]) for d in spec["http"]["denied"]] == [("other.test", "Audit")]
        assert [(d["host"], d["action"]) for d in spec["http"]["allowed"]] == [("api.test", "Allow")]
    finally:
        await env.delete(sandbox)


async def test_a_policy_change_applies_to_the_next_request_of_a_running_process(env: Env) -> None:
    sandbox = await env.sandbox()
    try:
        await env.sdk(lambda: sandbox.add_egress_host_rule("api.test"))
        # One Python process makes a request, waits for a file the test writes, and makes another.
        script = (
            "import os, sys, time, urllib.request, urllib.error\n"
            "def status(path):\n"
            "    try:\n"
            "        return urllib.request.urlopen(sys.argv[1] + path).status\n"
            "    except urllib.error.HTTPError as exc:\n"
            "        return exc.code\n"
            "first = status('/before')\n"
            "while not os.path.exists('/root/go'):\n"
            "    time.sleep(0.05)\n"
            "print(os.getpid(), first, status('/after'))\n"
        )
        await env.sdk(lambda: sandbox.write_file("/root/change.py", script))
        url = f"http://api.test:{env.world.http_port}"
        running = asyncio.ensure_future(env.sh(sandbox, f"python3 /root/change.py {url}"))
        while "/before" not in _paths(env.world):
            await asyncio.wait_for(env.world.arrived.wait(), 120)
            env.world.arrived.clear()
        reply = await env.raw.call("POST", env.url(sandbox, "egresspolicy"), body={"defaultAction": "Deny"})
        assert reply.status == 200
        await env.sdk(lambda: sandbox.write_file("/root/go", ""))
        code, out, err = await asyncio.wait_for(running, 120)
        assert code == 0, err
        _, first, second = out.split()
        assert (first, second) == ("200", "403")
        assert "/after" not in _paths(env.world)
    finally:
        await env.delete(sandbox)


@pytest.mark.parametrize("mode", ["Enforced", "Audit"])
async def test_the_server_ports_are_unreachable_whatever_the_policy(env: Env, mode: str) -> None:
    sandbox = await env.sandbox()
    port = env.server.port
    try:
        body = {
            "defaultAction": "Allow",
            "enforcementMode": mode,
            "hostRules": [{"pattern": "127.0.0.1", "action": "Allow"}, {"pattern": "*", "action": "Allow"}],
        }
        assert (await env.raw.call("POST", env.url(sandbox, "egresspolicy"), body=body)).status == 200
        # The data plane, ARM and MCP share the server's port: by IP literal, by a name that
        # resolves to it, over HTTP and HTTPS, it is refused (the Unix-socket proxy has no port).
        via_proxy = "--noproxy '' --proxy \"$HTTP_PROXY\""
        code, out, err = await env.sh(
            sandbox,
            f"{CURL} {via_proxy} http://127.0.0.1:{port}/; {CURL} http://api.test:{port}/; "
            f'{CURL} {via_proxy} -k https://127.0.0.1:{port}/; echo "exit $?"',
        )
        got = answers(out)
        assert [status for _, status in got] == ["403", "403", "000"], (out, err)
        assert all("own ports" in answer for answer, _ in got[:2]), out
        assert out.endswith("exit 56\n"), (out, err)
        # Nor directly, and nothing else leaves: raw TCP, UDP/DNS, IPv6, raw sockets, /proc/net.
        probe = ESCAPE_PROBE.replace("'", "'\\''")
        code, out, err = await env.sh(sandbox, f"python3 -c '{probe}' {port} {env.world.http_port}")
        assert code == 0, err
        result = json.loads(out)
        assert [name for name, value in result.items() if value == "OPEN"] == []
        assert result["proc_net_shows_port"] is False
        assert result["interfaces"] == ["lo"]
        decisions = (await env.raw.call("GET", env.url(sandbox, "egress-decisions"))).json()
        assert decisions["networkEgress"]["allowed"] == []
    finally:
        await env.delete(sandbox)


@pytest.mark.parametrize("mode", ["Memory", "Disk"])
async def test_the_policy_and_the_log_survive_a_stop_and_resume(env: Env, mode: str) -> None:
    sandbox = await env.sandbox(auto_suspend_mode=mode)
    port = env.world.http_port
    try:
        await env.sdk(lambda: sandbox.add_egress_host_rule("api.test"))
        assert answers((await env.sh(sandbox, f"{CURL} http://api.test:{port}/{mode}-1"))[1]) == [
            (f"hello GET /{mode}-1", "200")
        ]
        await env.sdk(lambda: sandbox.begin_stop().result())
        # Not running: a policy write is refused with 409, as the service does.
        deny = {"defaultAction": "Deny"}
        reply = await env.raw.call("POST", env.url(sandbox, "egresspolicy"), body=deny)
        assert (reply.status, reply.json()["error"]["code"]) == (409, "SandboxNotRunning")
        decisions = (await env.raw.call("GET", env.url(sandbox, "egress-decisions"))).json()
        assert [d["path"] for d in decisions["networkEgress"]["allowed"]] == [f"/{mode}-1"]
        await env.sdk(lambda: sandbox.begin_resume().result())
        _, out, _ = await env.sh(
            sandbox, f"{CURL} http://api.test:{port}/{mode}-2; {CURL} http://other.test:{port}/"
        )
        assert [status for _, status in answers(out)] == ["200", "403"]
        decisions = (await env.raw.call("GET", env.url(sandbox, "egress-decisions"))).json()
        assert [d["path"] for d in decisions["networkEgress"]["allowed"]] == [f"/{mode}-2", f"/{mode}-1"]
        # The SDK resumes a stopped sandbox before writing its policy.
        await env.sdk(lambda: sandbox.begin_stop().result())
        policy = await env.sdk(lambda: sandbox.add_egress_host_rule("other.test"))
        assert [r.pattern for r in policy.host_rules] == ["api.test", "other.test"]
        _, out, _ = await env.sh(sandbox, f"{CURL} http://other.test:{port}/{mode}-3")
        assert answers(out) == [(f"hello GET /{mode}-3", "200")]
    finally:
        await env.delete(sandbox)


async def test_a_create_body_policy_is_in_force_from_the_first_command(env: Env) -> None:
    policy = EgressPolicy(default_action="Allow")
    sandbox = await env.sandbox(egress_policy=policy)
    try:
        shown = await env.sdk(sandbox.get_egress_policy)
        assert shown.default_action == "Allow"
        port = env.world.http_port
        _, out, _ = await env.sh(sandbox, f"{CURL} http://other.test:{port}/first")
        assert answers(out) == [("hello GET /first", "200")]
        # Replaced whole with the SDK's set_egress_policy, then its default flipped back.
        narrowed = EgressPolicy(default_action="Deny", host_rules=[EgressHostRule(pattern="api.test")])
        answered = await env.sdk(lambda: sandbox.set_egress_policy(narrowed))
        assert (answered.default_action, [r.pattern for r in answered.host_rules]) == ("Deny", ["api.test"])
        _, out, _ = await env.sh(
            sandbox, f"{CURL} http://other.test:{port}/narrow; {CURL} http://api.test:{port}/"
        )
        assert [status for _, status in answers(out)] == ["403", "200"]
        await env.sdk(lambda: sandbox.set_egress_default("Allow"))
        _, out, _ = await env.sh(sandbox, f"{CURL} http://other.test:{port}/wide")
        assert answers(out) == [("hello GET /wide", "200")]
    finally:
        await env.delete(sandbox)


async def test_policies_the_local_proxy_cannot_honour_are_refused_naming_the_field(env: Env) -> None:
    sandbox = await env.sandbox()
    try:
        with pytest.raises(HttpResponseError) as caught:
            await env.sdk(lambda: sandbox.add_egress_rewrite_rule("api.test", rewrite_host="other.test"))
        assert caught.value.status_code == 400
        assert caught.value.error is not None
        assert caught.value.error.code == "InvalidEgressPolicy"
        assert caught.value.error.target == "rules[0].action.type"
        # The refused policy did not replace the one in force.
        assert (await env.sdk(sandbox.get_egress_policy)).rules == []
        bad_create = await env.raw.call(
            "PUT",
            env.raw.group_url(GROUP, "sandboxes"),
            body={"egressPolicy": {"hostRules": [{"pattern": "bad host!", "action": "Allow"}]}},
        )
        assert bad_create.status == 400
        assert bad_create.json()["error"]["target"] == "egressPolicy.hostRules[0].pattern"
        skip = await env.raw.call(
            "PUT", env.raw.group_url(GROUP, "sandboxes"), body={"skipEgressProxy": True}
        )
        assert (skip.status, skip.json()["error"]["target"]) == (400, "skipEgressProxy")
    finally:
        await env.delete(sandbox)

"""Egress from inside real bubblewrap namespaces: curl and Python through the forwarder and proxy."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import textwrap
from pathlib import Path

from autogen_aca_sessions.local.runtime.egress import EgressPolicy

from .probes import ESCAPE_PROBE, secret_search
from .sandboxed import BWRAP, CA_INSIDE, interpreter_binds, needs_bwrap, run_sandboxed
from .world import big_body, gateway_for, world_servers

pytestmark = needs_bwrap

ALLOW_API = {"defaultAction": "Deny", "hostRules": [{"pattern": "*.test", "action": "Allow"}]}
SEARCHED = ("/run", "/tmp", "/dev/shm")
"""Where the namespace tests' secret search looks for files (the writable and runtime places)."""
CURL = ["curl", "-sS", "--max-time", "30", "-o", "/dev/stdout", "-w", "\n%{http_code}"]


async def test_denied_host_fails_fast_inside_with_the_proxy_403(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", EgressPolicy.deny_all())
        code, out, _ = await run_sandboxed(attachment, [*CURL, f"http://api.test:{world.http_port}/"])
        assert code == 0
        assert out.endswith("\n403")
        assert "api.test is not allowed" in out
        code, out, err = await run_sandboxed(attachment, [*CURL, f"https://api.test:{world.https_port}/"])
        assert code != 0  # curl reports the CONNECT refusal
        assert "403" in err
        assert world.seen == []


async def test_allowed_host_works_over_http_and_https_with_curl(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", EgressPolicy.from_wire(ALLOW_API))
        code, out, err = await run_sandboxed(attachment, [*CURL, f"http://api.test:{world.http_port}/plain"])
        assert (code, out) == (0, "hello GET /plain\n200"), err
        code, out, err = await run_sandboxed(
            attachment,
            [*CURL, "--cacert", CA_INSIDE, f"https://api.test:{world.https_port}/tls"],
            ca_file=world.ca_file,
        )
        assert (code, out) == (0, "hello GET /tls\n200"), err


async def test_allowed_host_works_from_python_urllib(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import ssl, urllib.request
        print(urllib.request.urlopen("http://sub.api.test:{{0}}/py").read().decode())
        ctx = ssl.create_default_context(cafile="{CA_INSIDE}")
        print(urllib.request.urlopen("https://api.test:{{1}}/pys", context=ctx).read().decode())
        """
    )
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", EgressPolicy.from_wire(ALLOW_API))
        code, out, err = await run_sandboxed(
            attachment,
            [sys.executable, "-c", script.format(world.http_port, world.https_port)],
            ca_file=world.ca_file,
        )
        assert code == 0, err
        assert out.split() == ["hello", "GET", "/py", "hello", "GET", "/pys"]


async def test_injected_header_arrives_but_is_invisible_inside(tmp_path: Path) -> None:
    secret = "sk-egress-test-4f1b2c9d"
    policy = EgressPolicy.from_wire(
        {
            "rules": [
                {
                    "match": {"host": "api.test", "scheme": "http"},
                    "action": {
                        "type": "Transform",
                        "headers": [
                            {
                                "operation": "Set",
                                "name": "X-Api-Key",
                                "valueRef": {"secretRef": {"secretId": "k"}},
                            }
                        ],
                    },
                }
            ]
        }
    )
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", policy, secrets=lambda i, k: secret if i == "k" else None)
        # First run: the probe is handed the secret in argv, so its search must find it there
        # (proves the search sees /proc/*/cmdline). Second run: it gets it hex-encoded, so only
        # a leak through env, files, /proc or the reply could make it find the secret.
        code, out, err = await run_sandboxed(
            attachment,
            [
                sys.executable,
                "-c",
                secret_search(hex_needle=False),
                f"http://api.test:{world.http_port}/k",
                secret,
                *SEARCHED,
            ],
        )
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0] == "hello GET /k"
        assert world.seen[0].headers["x-api-key"] == secret
        assert lines[1] == "True"
        code, out, err = await run_sandboxed(
            attachment,
            [
                sys.executable,
                "-c",
                secret_search(hex_needle=True),
                f"http://api.test:{world.http_port}/k2",
                secret.encode().hex(),
                *SEARCHED,
            ],
        )
        assert code == 0, err
        assert out.splitlines() == ["hello GET /k2", "False"]
        assert world.seen[1].headers["x-api-key"] == secret


async def test_audit_mode_inside_lets_through_and_logs(tmp_path: Path) -> None:
    policy = EgressPolicy.from_wire({"http": {"defaultAction": "Deny", "enforcementMode": "Audit"}})
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", policy)
        code, out, _ = await run_sandboxed(attachment, [*CURL, f"http://other.test:{world.http_port}/a"])
        assert (code, out) == (0, "hello GET /a\n200")
        denied = gateway.decisions("sb").to_wire()["networkEgress"]["denied"]
        assert [(d["host"], d["action"]) for d in denied] == [("other.test", "Audit")]


async def test_policy_change_applies_to_the_running_sandbox_next_request(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, urllib.request, urllib.error
        def status():
            try:
                return urllib.request.urlopen(sys.argv[1]).status
            except urllib.error.HTTPError as exc:
                return exc.code
        print(status(), flush=True)
        sys.stdin.readline()
        print(status(), flush=True)
        """
    )
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", EgressPolicy.deny_all())
        assert BWRAP is not None
        proc = await asyncio.create_subprocess_exec(
            BWRAP,
            *(
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--tmpfs",
                "/tmp",
                "--tmpfs",
                "/run",
            ),
            *("--unshare-user", "--unshare-pid", "--die-with-parent"),
            *interpreter_binds(),
            *attachment.bwrap_args,
            *attachment.wrap([sys.executable, "-c", script, f"http://api.test:{world.http_port}/p"]),
            env={"PATH": "/usr/bin:/bin", **attachment.env},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 60)
        gateway.update_policy("sb", EgressPolicy.from_wire(ALLOW_API))
        proc.stdin.write(b"\n")
        await proc.stdin.drain()
        second = await asyncio.wait_for(proc.stdout.readline(), 60)
        await asyncio.wait_for(proc.wait(), 60)
        assert (first.strip(), second.strip()) == (b"403", b"200")


async def test_raw_sockets_dns_ipv6_and_proc_net_do_not_get_out(tmp_path: Path) -> None:
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", EgressPolicy.from_wire({"defaultAction": "Allow"}))
        code, out, err = await run_sandboxed(
            attachment, [sys.executable, "-c", ESCAPE_PROBE, str(world.http_port)]
        )
        assert code == 0, err
        result = json.loads(out)
        opened = [name for name, value in result.items() if value == "OPEN"]
        assert opened == []
        assert result["proc_net_shows_port"] is False
        assert result["interfaces"] == ["lo"]
        assert world.seen == []


async def test_large_bodies_cross_the_forwarder_and_proxy_intact_both_ways(tmp_path: Path) -> None:
    size = 24 * 1024 * 1024
    script = textwrap.dedent(
        """
        import hashlib, ssl, sys, urllib.request
        http_port, https_port, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
        ctx = ssl.create_default_context(cafile=sys.argv[4])
        for url in (f"http://api.test:{http_port}/big/{size}", f"https://api.test:{https_port}/big/{size}"):
            data = urllib.request.urlopen(url, context=ctx).read()
            print(len(data), hashlib.sha256(data).hexdigest())
        body = bytes(range(256)) * (size // 256)
        request = urllib.request.Request(f"http://api.test:{http_port}/echo-length", data=body, method="POST")
        print(urllib.request.urlopen(request).read().decode())
        """
    )
    expected = hashlib.sha256(big_body(size)).hexdigest()
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", EgressPolicy.from_wire(ALLOW_API))
        code, out, err = await run_sandboxed(
            attachment,
            [sys.executable, "-c", script, str(world.http_port), str(world.https_port), str(size), CA_INSIDE],
            ca_file=world.ca_file,
            timeout=120,
        )
        assert code == 0, err
        assert out.splitlines() == [f"{size} {expected}", f"{size} {expected}", str(size)]


async def test_a_sandbox_sees_only_its_own_proxy_socket(tmp_path: Path) -> None:
    probe = textwrap.dedent(
        """
        import os, socket, sys
        print(sorted(os.listdir("/run/aca-egress")))
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(sys.argv[1])
            print("OPEN")
        except OSError as exc:
            print(type(exc).__name__)
        """
    )
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        mine = await gateway.attach("mine", EgressPolicy.deny_all())
        other = await gateway.attach("other", EgressPolicy.from_wire(ALLOW_API))
        code, out, err = await run_sandboxed(mine, [sys.executable, "-c", probe, str(other.socket_path)])
        assert code == 0, err
        assert out.splitlines() == ["['proxy.sock']", "FileNotFoundError"]


async def test_requests_and_aiohttp_sessions_inside_work_over_http_and_https(tmp_path: Path) -> None:
    # Real clients with their own proxy handling: requests (urllib3 pool, kept-alive sessions)
    # and aiohttp (trust_env), several requests per session over HTTP and HTTPS.
    script = textwrap.dedent(
        """
        import asyncio, ssl, sys
        import aiohttp, requests
        http_url, https_url, ca = sys.argv[1], sys.argv[2], sys.argv[3]
        with requests.Session() as s:
            print([s.get(f"{u}{i}", verify=ca).text for u in (http_url, https_url) for i in range(3)])
            print(s.get("http://denied.example/").status_code)
        async def main():
            ctx = ssl.create_default_context(cafile=ca)
            async with aiohttp.ClientSession(trust_env=True) as s:
                out = []
                for u in (http_url, https_url):
                    for i in range(3):
                        async with s.get(f"{u}{i}", ssl=ctx) as r:
                            out.append(await r.text())
                print(out)
        asyncio.run(main())
        """
    )
    async with world_servers(tmp_path) as world, gateway_for(world, tmp_path / "eg") as gateway:
        attachment = await gateway.attach("sb", EgressPolicy.from_wire(ALLOW_API))
        http_url = f"http://api.test:{world.http_port}/r"
        https_url = f"https://api.test:{world.https_port}/s"
        code, out, err = await run_sandboxed(
            attachment, [sys.executable, "-c", script, http_url, https_url, CA_INSIDE], ca_file=world.ca_file
        )
        assert code == 0, err
        expected = str([f"hello GET /{p}{i}" for p in "rs" for i in range(3)])
        assert out.splitlines() == [expected, "403", expected]

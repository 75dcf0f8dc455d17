"""Egress proxy figures (issue 20): latency added by the proxy, and 200 namespaces at once.

A script, not a test (no figure is asserted)::

    python benchmarks/bench_egress.py                      # every part
    python benchmarks/bench_egress.py --requests 400 --sandboxes 200

1. **Latency.** The same client (a small Python program: one fresh TCP connection and one
   ``GET`` per request, ``Connection: close``) runs twice at once: on the host, straight to
   a loopback HTTP server, and inside a bubblewrap sandbox (own network namespace) through
   its forwarder and the egress proxy. Requests alternate in blocks between the two, so a
   busy machine slows both alike. The server runs in a process of its own; the proxy runs in
   this process's event loop, as in the local server. Prints p50/p90/p99 side by side and the
   p50 difference (target: at most +1 ms).
2. **Through a Sandboxes sandbox.** The same comparison with the client inside a real sandbox
   of the Sandboxes runtime (``SandboxRuntime``: its agent, its uid, its egress policy given at
   create), run block by block with ``exec`` (each block's first request, a cold start, is
   dropped; the durations are measured inside, so the exec round trip does not count).
3. **200 namespaces.** Attaches N sandboxes to one gateway, starts N bubblewrap sandboxes at
   once (each its own network namespace with its forwarder), has each make one request through
   the proxy at the same moment, and reports this process's RSS before and after (the proxy's
   memory), the forwarders' total RSS, and how many requests succeeded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
from harness import Config, Row

from autogen_aca_sessions.local.runtime.bubblewrap import interpreter_paths
from autogen_aca_sessions.local.runtime.egress import EgressGateway, EgressPolicy, StaticResolver
from autogen_aca_sessions.local.runtime.egress.gateway import FORWARDER
from autogen_aca_sessions.local.runtime.sandboxes import GroupLimits, SandboxRuntime, SandboxSpec

SERVER = textwrap.dedent(
    """
    import asyncio, sys
    async def handle(reader, writer):
        try:
            await reader.readuntil(b"\\r\\n\\r\\n")
            writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok")
            await writer.drain()
        except Exception:
            pass
        writer.close()
    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()
    asyncio.run(main())
    """
)

# Reads "N" lines on stdin, makes N requests, prints their durations (ns), one line.
CLIENT = textwrap.dedent(
    """
    import socket, sys, time
    host, port, target, via_proxy = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "proxy"
    if via_proxy:
        authority = target.split('/')[2]
        request = f"GET {target} HTTP/1.1\\r\\nHost: {authority}\\r\\nConnection: close\\r\\n\\r\\n"
    else:
        request = f"GET / HTTP/1.1\\r\\nHost: {host}:{port}\\r\\nConnection: close\\r\\n\\r\\n"
    request = request.encode()
    def connect():
        if host.startswith("/"):  # the proxy's Unix socket itself (no forwarder)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(host)
            return s
        return socket.create_connection((host, port))
    def once():
        start = time.perf_counter_ns()
        with connect() as s:
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"bad answer: {data[:200]!r}")
        return time.perf_counter_ns() - start
    for line in sys.stdin:
        n = int(line)
        print(" ".join(str(once()) for _ in range(n)), flush=True)
    """
)

BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"


def _bwrap_prefix() -> list[str]:
    # The fresh /tmp and /run would hide a checkout (and its venv) living there: show the
    # interpreter's directories again, read-only.
    shown = [
        arg
        for path in interpreter_paths()
        if path.is_relative_to("/tmp") or path.is_relative_to("/run")
        for arg in ("--ro-bind", str(path), str(path))
    ]
    return [
        BWRAP,
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--tmpfs", "/run",
        *shown,
        "--unshare-user", "--uid", "1000", "--gid", "1000",
        "--unshare-pid",
        "--unshare-ipc",
        "--cap-drop", "ALL",
        "--die-with-parent",
    ]  # fmt: skip


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def _start_server() -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", SERVER, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    port = int(await proc.stdout.readline())
    return proc, port


async def _ask(proc: asyncio.subprocess.Process, n: int) -> list[float]:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(f"{n}\n".encode())
    await proc.stdin.drain()
    line = await proc.stdout.readline()
    if not line:
        raise RuntimeError("the client ended early")
    return [int(v) / 1e6 for v in line.split()]


async def latency(requests: int, block: int) -> tuple[list[float], list[float]]:
    """Prints the three paths side by side; returns (host, through the proxy) in milliseconds."""
    server, port = await _start_server()
    root = Path(tempfile.mkdtemp(prefix="egress-bench-"))
    gateway = EgressGateway(root, resolver=StaticResolver({"world.bench": "127.0.0.1"}))
    try:
        policy = EgressPolicy.allow_hosts(["world.bench"])
        attachment = await gateway.attach("bench", policy)
        target = f"http://world.bench:{port}/"
        host_client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, "127.0.0.1", str(port), target, "direct",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        inside = [sys.executable, "-c", CLIENT, "127.0.0.1", "3128", target, "proxy"]
        sandbox_client = await asyncio.create_subprocess_exec(
            *_bwrap_prefix(), *attachment.bwrap_args, *attachment.wrap(inside),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **attachment.env},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        socket_client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, str(attachment.socket_path), "0", target, "proxy",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        clients = [host_client, sandbox_client, socket_client]
        # Warm every path (imports, first connections), then take turns in blocks.
        for proc in clients:
            await _ask(proc, 20)
        direct: list[float] = []
        proxied: list[float] = []
        proxy_only: list[float] = []
        turn = 0
        while len(direct) < requests:
            n = min(block, requests - len(direct))
            order = [(host_client, direct), (sandbox_client, proxied), (socket_client, proxy_only)]
            order = order[turn % 3 :] + order[: turn % 3]
            for proc, sink in order:
                sink.extend(await _ask(proc, n))
            turn += 1
        for proc in clients:
            assert proc.stdin is not None
            proc.stdin.close()
            await proc.wait()
        print(f"Latency: {requests} GETs each, fresh connection per request, blocks of {block}, alternating")
        _print_rows(
            (
                ("host -> server", direct),
                ("sandbox -> forwarder -> proxy", proxied),
                ("host -> proxy socket (no forwarder)", proxy_only),
            )
        )
        print(f"decisions logged: {len(gateway.decisions('bench').allowed)} (the last 50 kept)")
        return direct, proxied
    finally:
        await gateway.close()
        server.kill()
        await server.wait()
        shutil.rmtree(root, ignore_errors=True)


def _print_rows(rows: tuple[tuple[str, list[float]], ...]) -> None:
    print(f"{'path':<38}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for name, values in rows:
        row = [_percentile(values, q) for q in (50, 90, 99)] + [statistics.fmean(values)]
        print(f"{name:<38}" + "".join(f"{v:>9.3f}" for v in row))
    added = _percentile(rows[1][1], 50) - _percentile(rows[0][1], 50)
    print(f"added at p50: {added:+.3f} ms (target: at most +1 ms) -> {'met' if added <= 1 else 'NOT met'}")


async def sandbox_latency(requests: int, block: int) -> None:
    server, port = await _start_server()
    root = Path(tempfile.mkdtemp(prefix="egress-bench-"))
    try:
        async with await SandboxRuntime.open(root / "sandboxes", ready_sandboxes=0) as runtime:
            runtime.egress.override_resolver(StaticResolver({"world.bench": "127.0.0.1"}))
            runtime.create_group("bench", GroupLimits())
            policy = {"defaultAction": "Deny", "hostRules": [{"pattern": "world.bench", "action": "Allow"}]}
            info = await runtime.create("bench", SandboxSpec(egress_policy=policy))
            sandbox = runtime.sandbox("bench", info.id)
            await sandbox.write_file("/root/client.py", CLIENT.encode())
            target = f"http://world.bench:{port}/"
            host_client = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CLIENT, "127.0.0.1", str(port), target, "direct",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip

            async def inside(n: int) -> list[float]:
                command = f"echo {n + 1} | python3 /root/client.py 127.0.0.1 3128 {target} proxy"
                result = await sandbox.exec_shell(command, timeout=120)
                if result.exit_code != 0:
                    raise RuntimeError(f"the sandbox's client failed: {result.stderr}")
                return [int(v) / 1e6 for v in result.stdout.split()][1:]  # drop the cold first one

            await _ask(host_client, 20)
            await inside(20)
            direct: list[float] = []
            proxied: list[float] = []
            turn = 0
            while len(direct) < requests:
                n = min(block, requests - len(direct))
                if turn % 2:
                    proxied.extend(await inside(n))
                    direct.extend(await _ask(host_client, n))
                else:
                    direct.extend(await _ask(host_client, n))
                    proxied.extend(await inside(n))
                turn += 1
            assert host_client.stdin is not None
            host_client.stdin.close()
            await host_client.wait()
            print(f"Through a Sandboxes sandbox: {requests} GETs each, blocks of {block}, alternating")
            _print_rows((("host -> server", direct), ("sandbox -> forwarder -> proxy", proxied)))
            log = sandbox.egress_decisions
            print(
                f"decisions logged: {len(log.allowed)} allowed, {len(log.denied)} denied (the last 50 kept)"
            )
    finally:
        server.kill()
        await server.wait()
        shutil.rmtree(root, ignore_errors=True)


def _rss_mib(pid: int | None = None) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def namespaces(count: int) -> None:
    server, port = await _start_server()
    root = Path(tempfile.mkdtemp(prefix="egress-bench-"))
    gateway = EgressGateway(root, resolver=StaticResolver({"world.bench": "127.0.0.1"}))
    procs: list[asyncio.subprocess.Process] = []
    try:
        before = _rss_mib()
        policy = EgressPolicy.allow_hosts(["world.bench"])
        target = f"http://world.bench:{port}/"
        started = time.perf_counter()
        for i in range(count):
            attachment = await gateway.attach(f"sb{i}", policy)
            inside = [sys.executable, "-c", CLIENT, "127.0.0.1", "3128", target, "proxy"]
            procs.append(
                await asyncio.create_subprocess_exec(
                    *_bwrap_prefix(),
                    *attachment.bwrap_args,
                    *attachment.wrap(inside),
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **attachment.env},
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        attached = _rss_mib()
        # Every sandbox makes one request at the same moment.
        results = await asyncio.gather(*(_ask(p, 1) for p in procs), return_exceptions=True)
        elapsed = time.perf_counter() - started
        ok = sum(1 for r in results if not isinstance(r, BaseException))
        after = _rss_mib()
        relays: list[psutil.Process] = []
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                relays += [
                    child
                    for child in psutil.Process(proc.pid).children(recursive=True)
                    if child.cmdline()[3:4] == [str(FORWARDER)]
                ]
        rss = [r.memory_info().rss for r in relays]
        uss = [r.memory_full_info().uss for r in relays]
        namespaces_seen = len({os.readlink(f"/proc/{r.pid}/ns/net") for r in relays})
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{count} sandboxes at once ({elapsed:.1f} s to start all and get every answer)")
        print(f"  requests answered 200: {ok}/{count}")
        print(f"  distinct network namespaces of the forwarders: {namespaces_seen}")
        rss_line = f"{before:.1f} MiB before, {attached:.1f} MiB attached, {after:.1f} MiB after"
        print(f"  server process RSS: {rss_line}")
        per_sandbox = (after - before) * 1024 / count
        print(f"  proxy cost: {per_sandbox:.0f} KiB per attached sandbox; peak RSS {peak:.1f} MiB")
        if relays:
            print(
                f"  forwarder relays: {len(relays)}, RSS {sum(rss) / 2**20 / len(rss):.1f} MiB each, "
                f"unique (USS) {sum(uss) / 2**20 / len(uss):.1f} MiB each, {sum(uss) / 2**20:.0f} MiB in all"
            )
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        await asyncio.gather(*(p.wait() for p in procs), return_exceptions=True)
        await gateway.close()
        server.kill()
        await server.wait()
        shutil.rmtree(root, ignore_errors=True)


NAME = "egress"
DESCRIPTION = "an allowed HTTP GET through the egress proxy vs the same GET from the host (interleaved)"


async def run(cfg: Config) -> list[Row]:
    """The latency figure for ``run.py`` (the other parts stay in this script's ``main``)."""
    if shutil.which("bwrap") is None:
        return [Row(benchmark=NAME, figure="all figures", note="skipped: bubblewrap is not installed")]
    direct, proxied = await latency(cfg.n(600, 40), 20)
    host_p50 = statistics.median(direct)
    added = statistics.median(proxied) - host_p50
    return [
        Row(
            benchmark=NAME,
            figure="GET through forwarder + proxy, added over the host's own GET (p50)",
            value=added,
            samples=len(proxied),
            baseline="host -> server GET p50",
            baseline_value=host_p50,
            target="at most +1 ms",
            met=added <= 1.0,
        )
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=600, help="requests per path (latency)")
    parser.add_argument("--block", type=int, default=20, help="requests per alternating block")
    parser.add_argument("--sandboxes", type=int, default=200, help="sandboxes at once")
    parser.add_argument("--only", choices=["latency", "sandbox", "namespaces"], default=None)
    args = parser.parse_args()
    if args.only in (None, "latency"):
        await latency(args.requests, args.block)
    if args.only in (None, "sandbox"):
        print()
        await sandbox_latency(args.requests, args.block)
    if args.only in (None, "namespaces"):
        print()
        await namespaces(args.sandboxes)


if __name__ == "__main__":
    asyncio.run(main())

"""Issue 18's figures end to end: the Sandboxes data plane through HTTPS on loopback, driven by
the official SDK's ``aio`` client (``azure-containerapps-sandbox``) and by our own
``SandboxesClient``, side by side in one run against one ``LocalSessionsServer(tls=True)``.

- create from the Python image -> the first command's result (SDK ``begin_create_sandbox`` +
  ``exec``; ours ``create`` + ``exec_shell``), interleaved;
- Memory-mode stop -> resume -> first command (a background process held across it), both
  clients interleaved; plus resume -> first command alone;
- ``executeShellCommand`` of ``true`` vs the dynamic-sessions data plane's shell execution
  (``POST {pool}/executions {"shellCommand": "true"}`` on a Shell pool of the same server, the
  same TLS, the same aiohttp session), interleaved: the ratio is the target;
- N Disk-mode suspended sandboxes held through HTTP, then a sample resumed and each checked to
  still hold its own file.

It also checks that the SDK's pollers never wait: every create, stop and resume sends exactly
one request (the answer already shows the final state), recorded on the SDK's own transport.

Standalone: ``python benchmarks/bench_sandboxes_http.py [--samples 20] [--hold 1000]``; or in the
suite: ``python benchmarks/run.py --only sandboxes_http``. Run as root for per-sandbox uids.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import Config, Row, dist_row, log, ratio, summarise  # noqa: E402

NAME = "sandboxes_http"
DESCRIPTION = "Sandboxes through HTTPS: SDK aio vs SandboxesClient; exec vs the Shell pool; N suspended"
SUB = "0b5e8c1a-2d3f-4e5a-8b6c-7d8e9f0a1b2c"
RG = "rg-bench"
GROUP = "bench"
HOLD_GROUP = "hold"
SESSIONS_API = "2025-10-02-preview"
SANDBOXES_API = "2026-02-01-preview"


class _Recorder:
    """``METHOD path-tail`` of every request the SDK's transport sends (to count poller GETs)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def take(self) -> list[str]:
        sent, self.sent = self.sent, []
        return sent


def _recording_transport(recorder: _Recorder, ca_file: str) -> Any:
    from azure.core.pipeline.transport import AioHttpTransport

    class RecordingTransport(AioHttpTransport):  # type: ignore[misc]
        async def send(self, request: Any, **kwargs: Any) -> Any:
            path = request.url.split("?", 1)[0].rsplit("/sandboxGroups/", 1)[-1]
            # The sandbox's id is left out, so that every sample's sequence reads the same.
            parts = path.split("/")
            if len(parts) > 2 and parts[1] == "sandboxes":
                parts[2] = "{id}"
            recorder.sent.append(f"{request.method} {'/'.join(parts[1:])}")
            kwargs.setdefault("connection_verify", ca_file)
            return await super().send(request, **kwargs)

    return RecordingTransport()


async def _interleaved(
    samples: int, steps: dict[str, Callable[[], Awaitable[float]]]
) -> dict[str, list[float]]:
    """Run each step ``samples`` times, rotating the order every round: all see the same load."""
    out: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for i in range(samples):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            out[name].append(await steps[name]())
    return out


async def run(cfg: Config) -> list[Row]:
    return await measure(cfg, hold=cfg.n(1000, 20), resume_sample=cfg.n(50, 5))


async def measure(cfg: Config, *, hold: int, resume_sample: int) -> list[Row]:
    import aiohttp
    from azure.containerapps.sandbox.aio import SandboxGroupClient

    from autogen_aca_sessions.client.sandboxes import SuspendMode
    from autogen_aca_sessions.local import LocalSessionsServer

    samples = cfg.n(20, 3)
    rows: list[Row] = []
    async with LocalSessionsServer(tls=True) as server:
        ca = str(server.tls_ca_file)
        await server.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG, max_sandbox_count=50)
        runtime = (await server.sandbox_groups()).runtime
        shell_pool = await server.create_pool("shellbench", container_type="Shell", ready_session_instances=1)
        recorder = _Recorder()
        sdk_transport = _recording_transport(recorder, ca)
        sdk = SandboxGroupClient(
            server.base_url,
            server.async_credential,
            subscription_id=SUB,
            resource_group=RG,
            sandbox_group=GROUP,
            transport=sdk_transport,
            connection_verify=ca,
        )
        ssl_context = server.ssl_context()
        auth = {"Authorization": f"Bearer {server.api_key}"}
        async with (
            sdk_transport,
            sdk,
            _our_client(server, GROUP, ssl_context) as ours,
            aiohttp.ClientSession(headers=auth) as http,
        ):
            # -------------------------------------------------------------- create -> first command
            # The SDK's requests per operation: a GET that comes straight after the write and
            # finds the final state is fine; a poller that waits 3 s would show a second GET.
            sequences: dict[str, set[str]] = {"create": set(), "stop": set(), "resume": set()}

            async def sdk_create() -> float:
                await runtime.wait_ready()
                recorder.take()
                start = time.perf_counter()
                sandbox = await (await sdk.begin_create_sandbox(disk="python-3.12")).result()
                result = await sandbox.exec("echo ready")
                took = time.perf_counter() - start
                sequences["create"].add(" + ".join(recorder.take()[:-1]))  # without the exec
                assert result.stdout == "ready\n", result
                await (await sandbox.begin_delete()).result()
                return took

            async def our_create() -> float:
                await runtime.wait_ready()
                start = time.perf_counter()
                info = await ours.create("python-3.12")
                result = await ours.exec_shell(info.id, "echo ready")
                took = time.perf_counter() - start
                assert result.stdout == "ready\n", result
                await ours.delete(info.id)
                return took

            created = await _interleaved(samples, {"sdk": sdk_create, "ours": our_create})
            log(cfg, f"create -> first command: {len(created['sdk'])} samples each")
            rows.append(
                dist_row(
                    NAME,
                    "create (python-3.12) -> first command result, official SDK aio",
                    created["sdk"],
                    target="p50 <= 150 ms",
                    met=summarise(created["sdk"])[0] <= 150,
                    note=f"SDK requests: {' | '.join(sorted(sequences['create']))}",
                )
            )
            rows.append(
                dist_row(
                    NAME,
                    "create (python-3.12) -> first command result, SandboxesClient",
                    created["ours"],
                    target="p50 <= 150 ms",
                    met=summarise(created["ours"])[0] <= 150,
                )
            )

            # -------------------------------------------------------------- stop -> resume -> first command
            sdk_box = await (await sdk.begin_create_sandbox(disk="python-3.12")).result()
            await sdk_box.exec("nohup sleep 3600 >/dev/null 2>&1 &")
            our_box = await ours.create("python-3.12", suspend_mode=SuspendMode.MEMORY)
            await ours.exec_shell(our_box.id, "nohup sleep 3600 >/dev/null 2>&1 &")
            probe = "pgrep -f 'sleep 3600' >/dev/null && echo kept"
            resume_only: dict[str, list[float]] = {"sdk": [], "ours": []}

            async def sdk_cycle() -> float:
                recorder.take()
                start = time.perf_counter()
                await (await sdk_box.begin_stop()).result()
                sequences["stop"].add(" + ".join(recorder.take()))
                stopped = time.perf_counter()
                await (await sdk_box.begin_resume()).result()
                sequences["resume"].add(" + ".join(recorder.take()))
                result = await sdk_box.exec(probe)
                end = time.perf_counter()
                assert result.stdout == "kept\n", result
                resume_only["sdk"].append(end - stopped)
                return end - start

            async def our_cycle() -> float:
                start = time.perf_counter()
                await ours.stop(our_box.id)
                stopped = time.perf_counter()
                await ours.resume(our_box.id)
                result = await ours.exec_shell(our_box.id, probe)
                end = time.perf_counter()
                assert result.stdout == "kept\n", result
                resume_only["ours"].append(end - stopped)
                return end - start

            cycles = await _interleaved(samples, {"sdk": sdk_cycle, "ours": our_cycle})
            for who, label in (("sdk", "official SDK aio"), ("ours", "SandboxesClient")):
                rows.append(
                    dist_row(
                        NAME,
                        f"Memory-mode stop -> resume -> first command (process kept), {label}",
                        cycles[who],
                        target="p50 <= 50 ms",
                        met=summarise(cycles[who])[0] <= 50,
                        note=(
                            f"SDK requests: stop {' | '.join(sorted(sequences['stop']))}; "
                            f"resume {' | '.join(sorted(sequences['resume']))}"
                            if who == "sdk"
                            else ""
                        ),
                    )
                )
                rows.append(dist_row(NAME, f"Memory-mode resume -> first command, {label}", resume_only[who]))

            # -------------------------------------------------------------- exec true vs the Shell pool
            exec_url = (
                f"{server.base_url}/subscriptions/{SUB}/resourceGroups/{RG}/sandboxGroups/{GROUP}"
                f"/sandboxes/{our_box.id}/executeShellCommand?api-version={SANDBOXES_API}"
            )
            plane_url = (
                f"{shell_pool.endpoint}/executions?api-version={SESSIONS_API}&identifier={uuid.uuid4()}"
            )

            async def raw_sandbox() -> float:
                start = time.perf_counter()
                async with http.post(exec_url, json={"command": "true"}, ssl=ssl_context) as resp:
                    body = await resp.json()
                took = time.perf_counter() - start
                assert resp.status == 200, body
                assert body["exitCode"] == 0, body
                return took

            async def raw_plane() -> float:
                start = time.perf_counter()
                async with http.post(
                    plane_url, json={"shellCommand": "true", "timeoutInSeconds": 30}, ssl=ssl_context
                ) as resp:
                    body = await resp.json()
                took = time.perf_counter() - start
                assert resp.status == 200, body
                return took

            async def client_sandbox() -> float:
                start = time.perf_counter()
                result = await ours.exec_shell(our_box.id, "true")
                took = time.perf_counter() - start
                assert result.exit_code == 0, result
                return took

            async def sdk_sandbox() -> float:
                start = time.perf_counter()
                result = await sdk_box.exec("true")
                took = time.perf_counter() - start
                assert result.exit_code == 0, result
                return took

            await raw_plane()  # the session's first call pays its set-up
            execs = await _interleaved(
                samples * 3,
                {"raw": raw_sandbox, "plane": raw_plane, "client": client_sandbox, "sdk": sdk_sandbox},
            )
            plane_p50 = summarise(execs["plane"])[0]
            rows.append(
                dist_row(
                    NAME,
                    "baseline: dynamic-sessions Shell pool POST /executions 'true' (aiohttp, same server)",
                    execs["plane"],
                )
            )
            for who, label in (
                ("raw", "executeShellCommand 'true' (aiohttp, same session)"),
                ("client", "executeShellCommand 'true' via SandboxesClient"),
                ("sdk", "executeShellCommand 'true' via the official SDK aio"),
            ):
                p50 = summarise(execs[who])[0]
                rows.append(
                    dist_row(
                        NAME,
                        label,
                        execs[who],
                        baseline="Shell pool /executions",
                        baseline_value=plane_p50,
                        ratio=ratio(p50, plane_p50),
                        target="<= 1.5x the Shell pool" if who == "raw" else None,
                        met=(p50 <= 1.5 * plane_p50) if who == "raw" else None,
                    )
                )
            await (await sdk_box.begin_delete()).result()
            await ours.delete(our_box.id)

            # -------------------------------------------------------------- N Disk-mode suspended
            if hold > 0:
                rows.extend(await _hold(cfg, server, ssl_context, hold, resume_sample))
    return rows


@contextlib.asynccontextmanager
async def _our_client(server: Any, group: str, ssl_context: Any) -> AsyncIterator[Any]:
    """Our ``SandboxesClient`` on ``group`` of ``server``, trusting its certificate (the
    transport is ours to close: a client closes only a transport it made)."""
    from autogen_aca_sessions.client.aiohttp_transport import AiohttpTransport
    from autogen_aca_sessions.client.sandboxes import SandboxesClient

    transport = AiohttpTransport(ssl=ssl_context)
    try:
        async with SandboxesClient(
            server.base_url,
            subscription_id=SUB,
            resource_group=RG,
            sandbox_group=group,
            credential=server.api_key,
            transport=transport,
        ) as client:
            yield client
    finally:
        await transport.close()


def _rss_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _hold(cfg: Config, server: Any, ssl_context: Any, count: int, resume_sample: int) -> list[Row]:
    from autogen_aca_sessions.client.sandboxes import SandboxState, SuspendMode
    from autogen_aca_sessions.local.runtime.sandboxes.disk import disk_usage

    group = await server.create_sandbox_group(
        HOLD_GROUP, subscription=SUB, resource_group=RG, max_sandbox_count=count + 1
    )
    runtime = (await server.sandbox_groups()).runtime
    rss_before = _rss_mib()
    procs_before = len(os.listdir("/proc"))
    each: list[float] = []
    ids: list[str] = []
    async with _our_client(server, HOLD_GROUP, ssl_context) as client:
        for i in range(count):
            start = time.perf_counter()
            info = await client.create(
                "python-3.12", idle_suspend_seconds=3600, suspend_mode=SuspendMode.DISK
            )
            await client.write_file(info.id, "/root/mine.txt", f"{i} {info.id}".encode())
            stopped = await client.stop(info.id)
            each.append(time.perf_counter() - start)
            assert stopped.state is SandboxState.STOPPED, stopped
            ids.append(info.id)
            if (i + 1) % 100 == 0:
                log(cfg, f"  ... {i + 1} suspended through HTTP, server RSS {_rss_mib():.0f} MiB")
        group_dir = runtime.get_group(group.runtime_id).directory
        disk_mib = await asyncio.to_thread(disk_usage, group_dir) / 2**20
        rss = _rss_mib() - rss_before
        procs = len(os.listdir("/proc")) - procs_before
        step = max(1, count // max(1, resume_sample))
        sample = [(i, ids[i]) for i in range(0, count, step)][:resume_sample]
        resumed: list[float] = []
        lost = 0
        for i, sandbox_id in sample:
            start = time.perf_counter()
            await client.resume(sandbox_id)
            content = await client.read_file(sandbox_id, "/root/mine.txt")
            resumed.append(time.perf_counter() - start)
            lost += content != f"{i} {sandbox_id}".encode()
        # Every other sandbox is still there, still Stopped (none was lost or woken by the others).
        still = 0
        for sandbox_id in ids:
            still += (await client.get(sandbox_id)).state is SandboxState.STOPPED
    await server.delete_sandbox_group(HOLD_GROUP, subscription=SUB, resource_group=RG)
    held_note = (
        f"server RSS +{rss:.0f} MiB ({rss * 1024 / count:.0f} KiB each), disk {disk_mib:.0f} MiB, "
        f"processes {procs:+d}, {still} still Stopped after the sample resumed"
    )
    return [
        dist_row(NAME, f"create + write + Disk-mode stop through HTTP, each of {count}", each),
        Row(
            benchmark=NAME,
            figure=f"Disk-mode suspended sandboxes held at once through HTTP [{held_note}]",
            value=count,
            unit="sandboxes",
            target="1,000, nothing lost",
            met=count >= 1000 and lost == 0,
        ),
        dist_row(
            NAME,
            f"Disk-mode resume -> file read through HTTP, {len(sample)} of the {count}",
            resumed,
            note=f"{lost} lost",
            met=lost == 0,
            target="nothing lost",
        ),
    ]


def main() -> None:
    from run import render_table

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--hold", type=int, default=1000, help="Disk-mode suspended sandboxes held at once")
    parser.add_argument("--resume-sample", type=int, default=50)
    args = parser.parse_args()
    cfg = Config(samples=args.samples)
    before = os.getloadavg()
    rows = asyncio.run(measure(cfg, hold=args.hold, resume_sample=args.resume_sample))
    after = os.getloadavg()
    print(f"load average before: {before}, after: {after}")
    print(render_table(rows))


if __name__ == "__main__":
    main()

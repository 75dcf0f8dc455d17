"""The Sandboxes runtime (issue 18), measured without HTTP; prints p50/p99 per figure.

Run: ``python benchmarks/bench_sandboxes.py [--samples 30] [--hold 1000]`` (as root for the
per-sandbox uids, as the server runs in CI). Figures:

- create from the Python image -> first command's result (``create`` returns Running), with a
  ready sandbox free (the runtime's default) and with none (a cold start of bubblewrap and agent);
- Memory-mode stop -> resume -> first command (a background ``sleep`` held across it);
- ``exec_shell("true")`` on a running sandbox, interleaved with the baseline: the data plane's
  Shell pool answering ``POST /executions {"shellCommand": "true"}`` over loopback HTTP (the
  runtime figure has no HTTP; the wire layer adds its own);
- N sandboxes suspended in Disk mode at once: create+stop time each, server RSS, disk used,
  processes left; then a sample resumed, each checked to still hold its own file.

Not a test: nothing is asserted. The machine is shared: read the load average printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from harness import percentile  # noqa: E402

from autogen_aca_sessions.local.runtime.sandboxes import (  # noqa: E402
    AutoSuspendPolicy,
    GroupLimits,
    LifecyclePolicy,
    SandboxRuntime,
    SandboxSpec,
    SuspendMode,
)
from autogen_aca_sessions.local.runtime.sandboxes.disk import disk_usage  # noqa: E402


def _row(figure: str, values_s: list[float], note: str = "") -> None:
    ms = [v * 1000 for v in values_s]
    print(
        f"| {figure} | {statistics.median(ms):.1f} | {percentile(ms, 99):.1f} | {len(ms)} | {note} |",
        flush=True,
    )


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _mode(mode: SuspendMode) -> SandboxSpec:
    return SandboxSpec(lifecycle=LifecyclePolicy(AutoSuspendPolicy(True, 3600, mode)))


async def _create_first(rt: SandboxRuntime, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        # With ready sandboxes, wait for the refill first (as the session benchmarks do): a
        # start running in the background would compete with what is measured on two cores.
        await rt.wait_ready()
        start = time.perf_counter()
        info = await rt.create("bench", SandboxSpec())
        result = await rt.sandbox("bench", info.id).exec_shell("echo ready")
        out.append(time.perf_counter() - start)
        assert result.stdout == "ready\n", result
        await rt.delete("bench", info.id)
    return out


async def _suspend_resume(rt: SandboxRuntime, samples: int) -> tuple[list[float], list[float], list[float]]:
    info = await rt.create("bench", _mode(SuspendMode.MEMORY))
    sandbox = rt.sandbox("bench", info.id)
    await sandbox.exec_shell("nohup sleep 3600 >/dev/null 2>&1 &")
    stop_s, resume_first_s, cycle_s = [], [], []
    for _ in range(samples):
        start = time.perf_counter()
        await sandbox.stop()
        stopped = time.perf_counter()
        await sandbox.resume()
        result = await sandbox.exec_shell("pgrep -f 'sleep 3600' >/dev/null && echo kept")
        end = time.perf_counter()
        assert result.stdout == "kept\n", result
        stop_s.append(stopped - start)
        resume_first_s.append(end - stopped)
        cycle_s.append(end - start)
    await rt.delete("bench", info.id)
    return stop_s, resume_first_s, cycle_s


async def _exec_true(rt: SandboxRuntime, samples: int) -> tuple[list[float], list[float] | None, str]:
    info = await rt.create("bench", SandboxSpec())
    sandbox = rt.sandbox("bench", info.id)
    ours: list[float] = []
    base: list[float] = []
    note = ""
    try:
        import aiohttp

        from autogen_aca_sessions import LocalSessionPool
    except Exception as exc:  # the baseline is optional
        note = f"baseline unavailable: {exc!r}"
        for _ in range(samples):
            start = time.perf_counter()
            await sandbox.exec_shell("true")
            ours.append(time.perf_counter() - start)
        return ours, None, note
    async with LocalSessionPool(pool_type="Shell", ready_sessions=1) as pool:
        url = f"{pool.endpoint}/executions?api-version=2025-10-02-preview&identifier={uuid.uuid4()}"
        headers = {"Authorization": f"Bearer {pool.api_key}"}
        async with aiohttp.ClientSession(headers=headers) as http:

            async def plane() -> None:
                async with http.post(url, json={"shellCommand": "true", "timeoutInSeconds": 30}) as resp:
                    body = await resp.json()
                    assert resp.status == 200, body

            await plane()  # the session's first call pays its set-up
            for i in range(samples * 2):
                # Interleaved, rotating order: both see the same load.
                for which in ("ours", "plane") if i % 2 == 0 else ("plane", "ours"):
                    start = time.perf_counter()
                    if which == "ours":
                        await sandbox.exec_shell("true")
                        ours.append(time.perf_counter() - start)
                    else:
                        await plane()
                        base.append(time.perf_counter() - start)
    await rt.delete("bench", info.id)
    return ours, base, note


async def _hold(rt: SandboxRuntime, count: int, resume_sample: int) -> None:
    rt.create_group("hold", GroupLimits(max_sandboxes=count + 1))
    rss_before = _rss_mib()
    procs_before = len(os.listdir("/proc"))
    per_sandbox: list[float] = []
    ids: list[str] = []
    for i in range(count):
        start = time.perf_counter()
        info = await rt.create("hold", _mode(SuspendMode.DISK))
        sandbox = rt.sandbox("hold", info.id)
        await sandbox.write_file("/root/mine.txt", f"{i} {info.id}".encode())
        await sandbox.stop()
        per_sandbox.append(time.perf_counter() - start)
        ids.append(info.id)
        if (i + 1) % 100 == 0:
            print(f"  ... {i + 1} suspended, server RSS {_rss_mib():.0f} MiB", file=sys.stderr, flush=True)
    group_dir = rt.get_group("hold").directory
    disk_mib = await asyncio.to_thread(disk_usage, group_dir) / (1024 * 1024)
    rss = _rss_mib() - rss_before
    procs = len(os.listdir("/proc")) - procs_before
    _row(f"create + write + Disk-mode stop, each of {count}", per_sandbox)
    print(
        f"| {count} Disk-mode suspended sandboxes held | server RSS +{rss:.0f} MiB "
        f"({rss * 1024 / count:.0f} KiB each), disk {disk_mib:.0f} MiB, processes {procs:+d} | | | |",
        flush=True,
    )
    step = max(1, count // resume_sample)
    sample = [(i, ids[i]) for i in range(0, count, step)][:resume_sample]
    resume_s: list[float] = []
    lost = 0
    for i, sandbox_id in sample:
        sandbox = rt.sandbox("hold", sandbox_id)
        start = time.perf_counter()
        await sandbox.resume()
        content = await sandbox.read_file("/root/mine.txt")
        resume_s.append(time.perf_counter() - start)
        lost += content != f"{i} {sandbox_id}".encode()
    _row(f"Disk-mode resume -> file read, {len(sample)} of the {count}", resume_s, f"{lost} lost")
    await rt.delete_group("hold")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--hold", type=int, default=1000, help="Disk-mode suspended sandboxes held at once")
    parser.add_argument("--resume-sample", type=int, default=50)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-sbx-") as tmp:
        rt = await SandboxRuntime.open(Path(tmp) / "sandboxes")
        try:
            rt.create_group("bench", GroupLimits(max_sandboxes=10))
            print(f"cgroup controllers unavailable: {rt.unenforced_limits or 'none'}; uid per sandbox: "
                  f"{rt.host.bubblewrap.drops_privileges}")  # fmt: skip
            print("| figure | p50 ms | p99 ms | n | note |\n|---|---|---|---|---|")
            _row("create (python-3.12) -> first command result, a ready sandbox free",
                 await _create_first(rt, args.samples), "target p50 <= 150 ms")  # fmt: skip
            cold = await SandboxRuntime.open(Path(tmp) / "cold", ready_sandboxes=0)
            try:
                cold.create_group("bench", GroupLimits(max_sandboxes=10))
                _row("create (python-3.12) -> first command result, none ready (cold start)",
                     await _create_first(cold, args.samples), "target p50 <= 150 ms")  # fmt: skip
            finally:
                await cold.aclose()
            stop_s, resume_s, cycle_s = await _suspend_resume(rt, args.samples)
            _row("Memory-mode stop (freeze)", stop_s)
            _row("Memory-mode resume -> first command (process kept)", resume_s, "target p50 <= 50 ms")
            _row("Memory-mode stop -> resume -> first command", cycle_s)
            ours, base, note = await _exec_true(rt, args.samples)
            _row("exec_shell('true'), runtime only (no HTTP)", ours, note)
            if base:
                ratio = statistics.median(ours) / statistics.median(base)
                _row("baseline: data-plane Shell pool POST /executions 'true' (HTTP)", base,
                     f"ratio ours/baseline {ratio:.2f} (target <= 1.5 incl. the wire's HTTP)")  # fmt: skip
            if args.hold > 0:
                await _hold(rt, args.hold, args.resume_sample)
        finally:
            await rt.aclose()
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())

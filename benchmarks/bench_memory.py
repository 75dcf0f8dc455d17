"""Memory per idle session with NumPy, pandas and matplotlib imported, and what a machine holds.

Three kinds of kernel, each after ``STACK_IMPORT`` ran in it and it sat idle:
- a plain ipykernel started by ``jupyter_client`` (the baseline);
- a session of the local pool with ``kernel_launcher="plain"``, measured as the whole process
  tree the pool started for it (sandbox wrapper included);
- a session of the local pool with ``kernel_launcher="fork"`` (the default: the runtime's fork-template
  launcher, ``local/runtime/_kernel_template_launcher.py``), sandboxed and not: the kernel plus, in
  bwrap mode, its holder sandbox (bwrap, its init, ``sleep``); the template's own memory once;
  and the new-session latency through the pool with and without a ready kernel.
Only what ships is measured (the fork-template prototype this launcher grew from is in git history).
USS is what a session really costs (freed when it goes); PSS spreads shared pages over
their sharers. The capacity figures divide the machine's memory by the measured USS: they
are extrapolated, not measured.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid

from harness import (
    STACK_IMPORT,
    Config,
    Memory,
    RawKernel,
    Row,
    dist_row,
    kernel_pids_of,
    log,
    open_pool,
    pool_available,
    pool_credential,
    ratio,
    raw_cold_start,
    summarise,
    top_level_new,
    total_memory_gib,
    tree_memory,
    wait_ready,
)

NAME = "memory"
DESCRIPTION = "USS/PSS per idle session with numpy/pandas/matplotlib imported; sessions per machine"
TARGET_USS_MIB = 15.0
AZURE_MAX_SESSIONS = 600
SETTLE_S = 1.0


def _rows_for(kind: str, mems: list[Memory], baseline_uss: float | None, extra_note: str = "") -> list[Row]:
    uss = statistics.median(m.uss for m in mems)
    pss = statistics.median(m.pss for m in mems)
    total = total_memory_gib()
    capacity = int(total * 1024 // uss)
    rows = [
        Row(
            benchmark=NAME,
            figure=f"{kind}: USS per idle session",
            value=uss,
            unit="MiB",
            samples=len(mems),
            baseline="plain ipykernel USS" if baseline_uss is not None else None,
            baseline_value=baseline_uss,
            ratio=None if baseline_uss is None else uss / baseline_uss,
            target=f"<= {TARGET_USS_MIB:g} MiB",
            met=uss <= TARGET_USS_MIB,
            note=extra_note,
        ),
        Row(
            benchmark=NAME,
            figure=f"{kind}: PSS per idle session",
            value=pss,
            unit="MiB",
            samples=len(mems),
            note=f"{len(mems)} alike kernels alive",
        ),
        Row(
            benchmark=NAME,
            figure=f"{kind}: idle sessions in {total:.0f} GiB",
            value=float(capacity),
            unit="sessions",
            target=f">= {AZURE_MAX_SESSIONS} (Azure pool max)",
            met=capacity >= AZURE_MAX_SESSIONS,
            note="extrapolated from measured USS",
        ),
    ]
    return rows


async def measure_plain(count: int) -> tuple[list[Memory], list[float]]:
    """Plain ipykernels, all alive at once, the stack imported in each; and their start times
    (``start_kernel`` to the first execute answered)."""
    kernels: list[RawKernel] = []
    starts: list[float] = []
    try:
        for _ in range(count):
            seconds, kernel = await raw_cold_start()
            starts.append(seconds)
            reply = await kernel.execute(STACK_IMPORT)
            if reply.get("status") != "ok":
                raise RuntimeError(f"stack import failed in a plain kernel: {reply}")
            kernels.append(kernel)
        await asyncio.sleep(SETTLE_S)
        return [tree_memory(k.pid) for k in kernels], starts
    finally:
        for kernel in kernels:
            await kernel.stop()


async def measure_pool(count: int) -> tuple[list[Memory], str]:
    """Sessions of the local pool, all alive at once, the stack imported in each."""
    from autogen_aca_sessions.client import SessionsClient

    mems: list[Memory] = []
    # The plain launcher by name: the default forks kernels from a template (measured below).
    async with open_pool(
        ready_sessions=0, max_concurrent_sessions=count + 2, kernel_launcher="plain"
    ) as pool:
        isolation = str(getattr(getattr(pool, "manager", None), "isolation", "?"))
        async with SessionsClient(pool.endpoint, pool_credential(pool)) as client:
            roots: list[list[int]] = []
            for _ in range(count):
                before = kernel_pids_of(os.getpid())
                result = await client.execute(str(uuid.uuid4()), STACK_IMPORT, timeout_seconds=120)
                if not result.succeeded:
                    raise RuntimeError(f"stack import failed in a pool session: {result.stderr[-500:]}")
                roots.append(top_level_new(before, kernel_pids_of(os.getpid())))
            await asyncio.sleep(SETTLE_S)
            for pids in roots:
                if not pids:
                    raise RuntimeError("could not find the process tree of a pool session")
                parts = [tree_memory(p) for p in pids]
                mems.append(Memory.combined(parts))
    return mems, isolation


async def measure_pool_fork(
    count: int, sandbox: str, ready_samples: int
) -> tuple[list[Memory], Memory, str, list[float], list[float]]:
    """Sessions of the local pool with ``kernel_launcher="fork"``: memory of ``count`` idle
    sessions (kernel + holder sandbox), the template process's own memory, and the time from
    the first call on a new identifier to its result with no ready kernel (a fork per call)
    and with one ready (``ready_samples`` samples, the pool refilled before each)."""
    import psutil

    from autogen_aca_sessions.client import SessionsClient

    mems: list[Memory] = []
    holders: list[float] = []
    cold: list[float] = []
    warm: list[float] = []
    async with open_pool(
        ready_sessions=0, max_concurrent_sessions=count + 2, sandbox=sandbox, kernel_launcher="fork"
    ) as pool:
        manager = pool.manager
        isolation = str(manager.isolation)
        async with SessionsClient(pool.endpoint, pool_credential(pool)) as client:
            # The template starts on the first launch; it is paid once, not per session.
            first = await client.execute("fork-warmup", "1", timeout_seconds=300)
            if not first.succeeded:
                raise RuntimeError(f"first forked kernel failed: {first.stderr[-500:]}")
            await manager.delete("fork-warmup")
            identifiers = []
            for _ in range(count):
                identifier = str(uuid.uuid4())
                started = time.perf_counter()
                result = await client.execute(identifier, "1 + 1", timeout_seconds=120)
                cold.append(time.perf_counter() - started)
                if not result.succeeded or result.result != 2:
                    raise RuntimeError(f"a forked pool session failed: {result.stderr[-500:]}")
                result = await client.execute(identifier, STACK_IMPORT, timeout_seconds=120)
                if not result.succeeded:
                    raise RuntimeError(
                        f"stack import failed in a forked pool session: {result.stderr[-500:]}"
                    )
                identifiers.append(identifier)
            await asyncio.sleep(SETTLE_S)
            for identifier in identifiers:
                session = manager.get(identifier)
                kernel = session.kernel if session is not None else None
                if kernel is None:
                    raise RuntimeError("a forked session has no kernel")
                process = kernel.launched.process
                parts = [tree_memory(process.pid)]
                holder = getattr(process, "holder", None)
                if holder is not None:
                    parts.append(tree_memory(holder.pid))
                    holders.append(parts[-1].uss)
                mems.append(Memory.combined(parts))
            template_pid = manager.template_pid
            if template_pid is None:
                raise RuntimeError("the fork launcher's template is not running")
            info = psutil.Process(template_pid).memory_full_info()
            template = Memory(uss=info.uss / 2**20, pss=info.pss / 2**20, rss=info.rss / 2**20, processes=1)
    async with (
        open_pool(
            ready_sessions=2,
            max_concurrent_sessions=ready_samples + 4,
            sandbox=sandbox,
            kernel_launcher="fork",
        ) as pool,
        SessionsClient(pool.endpoint, pool_credential(pool)) as client,
    ):
        await wait_ready(pool, 2, limit_s=300)
        for _ in range(ready_samples):
            await wait_ready(pool, 2)
            started = time.perf_counter()
            result = await client.execute(str(uuid.uuid4()), "1 + 1", timeout_seconds=120)
            warm.append(time.perf_counter() - started)
            if not result.succeeded:
                raise RuntimeError(f"a ready forked session failed: {result.stderr[-500:]}")
    if holders:
        isolation += f"; holder sandbox (bwrap, its init, sleep) {statistics.median(holders):.2f} MiB of it"
    return mems, template, isolation, cold, warm


async def run(cfg: Config) -> list[Row]:
    count = cfg.n(4, 2)
    rows: list[Row] = []
    log(cfg, f"memory: {count} plain ipykernels")
    plain, plain_starts = await measure_plain(count)
    cold_p50, _ = summarise(plain_starts)
    plain_uss = statistics.median(m.uss for m in plain)
    rows += _rows_for("plain ipykernel (baseline)", plain, None)

    why = pool_available()
    if why is None:
        log(cfg, f"memory: {count} local-pool sessions")
        try:
            pool_mems, isolation = await measure_pool(count)
            rows += _rows_for(
                "local pool session, kernel_launcher=plain",
                pool_mems,
                plain_uss,
                extra_note=f"isolation={isolation}",
            )
        except Exception as exc:
            rows.append(Row(benchmark=NAME, figure="local pool session", note=f"FAILED: {exc!r}"[:200]))
    else:
        rows.append(Row(benchmark=NAME, figure="local pool session", note=f"skipped: {why}"))

    for mode in ("bwrap", "none"):
        label = f"pool, kernel_launcher=fork (default), sandbox={mode}"
        log(cfg, f"memory: {count} local-pool sessions with kernel_launcher=fork, sandbox={mode}")
        try:
            f_mems, f_template, f_isolation, f_cold, f_warm = await measure_pool_fork(
                count, mode, cfg.n(10, 3)
            )
        except Exception as exc:
            rows.append(Row(benchmark=NAME, figure=label, note=f"FAILED: {exc!r}"[:300]))
            continue
        rows += _rows_for(
            label,
            f_mems,
            plain_uss,
            extra_note=f"isolation={f_isolation}; kernel"
            + (" + holder bwrap/init/sleep" if mode == "bwrap" else ""),
        )
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"{label}: the template process itself (paid once)",
                value=f_template.uss,
                unit="MiB USS",
                note=f"PSS {f_template.pss:.0f} MiB",
            )
        )
        cold_fork_p50, _ = summarise(f_cold)
        rows.append(
            dist_row(
                NAME,
                f"{label}: new session, no ready kernel (fork per call), first call -> result",
                f_cold,
                baseline="cold jupyter_client start",
                baseline_value=cold_p50,
                ratio=ratio(cold_fork_p50, cold_p50),
                target="<= cold start p50",
                met=cold_fork_p50 <= cold_p50,
            )
        )
        warm_p50, warm_p99 = summarise(f_warm)
        rows.append(
            dist_row(
                NAME,
                f"{label}: new session, ready kernel free, first call -> result",
                f_warm,
                target="p50 <= 20 ms, p99 <= 100 ms",
                met=warm_p50 <= 20 and warm_p99 <= 100,
            )
        )

    return rows

"""Concurrency: N agents, each with its own executor and session, running M blocks at once.

The sessions are created first (not timed into the block figures, but the time to have all
N ready is reported), then all N agents run their M blocks concurrently, each agent one
block after the other (a conversation is sequential). Figures per N: per-block latency p50 /
p99 and throughput (blocks per second across all agents), with N=1 as the baseline.
One pool serves every level (``max_concurrent_sessions`` >= the largest N); the first N
sessions of the largest level are reused for the smaller ones.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness import (
    Config,
    Row,
    dist_row,
    gather_limited,
    log,
    open_pool,
    pool_available,
    pool_credential,
    ratio,
    summarise,
)

NAME = "concurrency"
DESCRIPTION = "N agents x M blocks at once: throughput and p99 as N grows"
START_PARALLEL = 4
"""Sessions created at once during set-up: more only queues kernel boots on two cores."""


async def run(cfg: Config) -> list[Row]:
    why = pool_available()
    if why is not None:
        return [Row(benchmark=NAME, figure="all figures", note=f"skipped: {why}")]
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock

    from autogen_aca_sessions import ACADynamicSessionsCodeExecutor

    levels = sorted(set(cfg.agents))
    biggest = levels[-1]
    m = cfg.blocks_per_agent
    rows: list[Row] = []
    async with open_pool(
        ready_sessions=2, max_concurrent_sessions=biggest + 4, cooldown_period_seconds=3600
    ) as pool:
        credential = pool_credential(pool)
        executors: list[Any] = []
        token = CancellationToken()

        async def make() -> Any:
            executor = ACADynamicSessionsCodeExecutor(pool.endpoint, credential, timeout=120)
            await executor.start()
            out = await executor.execute_code_blocks([CodeBlock(code="n = 0", language="python")], token)
            if out.exit_code != 0:
                raise RuntimeError(f"session set-up failed: {out.output[-300:]}")
            return executor

        try:
            log(cfg, f"concurrency: creating {biggest} sessions ({START_PARALLEL} at a time)")
            start = time.perf_counter()
            executors = await gather_limited(START_PARALLEL, (make() for _ in range(biggest)))
            setup_s = time.perf_counter() - start
            rows.append(
                Row(
                    benchmark=NAME,
                    figure=f"set-up: {biggest} sessions created and first block run",
                    value=setup_s * 1000,
                    note=f"{setup_s / biggest * 1000:.0f} ms per session on average",
                )
            )
            base_throughput: float | None = None
            base_p50: float | None = None
            for n in levels:
                latencies: list[float] = []

                async def agent(executor: Any, lat: list[float] = latencies) -> None:
                    for j in range(m):
                        t0 = time.perf_counter()
                        out = await executor.execute_code_blocks(
                            [CodeBlock(code=f"n += 1\nprint(n, {j})", language="python")], token
                        )
                        lat.append(time.perf_counter() - t0)
                        if out.exit_code != 0:
                            raise RuntimeError(f"block failed: {out.output[-300:]}")

                log(cfg, f"concurrency: N={n} agents x M={m} blocks")
                t0 = time.perf_counter()
                await asyncio.gather(*(agent(e) for e in executors[:n]))
                wall = time.perf_counter() - t0
                throughput = n * m / wall
                p50, _ = summarise(latencies)
                if base_throughput is None:
                    base_throughput, base_p50 = throughput, p50
                rows.append(
                    dist_row(
                        NAME,
                        f"N={n}, M={m}: per-block latency",
                        latencies,
                        baseline="N=1 p50",
                        baseline_value=base_p50,
                        ratio=ratio(p50, base_p50),
                    )
                )
                rows.append(
                    Row(
                        benchmark=NAME,
                        figure=f"N={n}, M={m}: throughput",
                        value=throughput,
                        unit="blocks/s",
                        samples=n * m,
                        baseline="N=1 throughput",
                        baseline_value=base_throughput,
                        ratio=ratio(throughput, base_throughput),
                        note=f"wall {wall * 1000:.0f} ms",
                    )
                )
        finally:
            log(cfg, f"concurrency: stopping {len(executors)} executors")
            await gather_limited(16, (e.stop() for e in executors))
    return rows

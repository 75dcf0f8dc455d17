"""The same workload through autogen-ext's ACADynamicSessionsCodeExecutor and through ours.

Both against the same local pool (the upstream executor speaks api-version
2024-02-02-preview, which the pool serves too). The workload is what an agent does: a fresh
executor, B small blocks one ``execute_code_blocks`` call each (the first pays the session's
set-up), then F files uploaded and downloaded again. The executors (upstream, ours, and ours
on the upstream's api-version) go through the workload interleaved, block by block in a
rotating order, so that all see the same machine load; a workload's total is the sum of its
own steps. The figure is the median total over rounds, plus per-block latencies.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from harness import (
    Config,
    Row,
    dist_row,
    log,
    open_pool,
    pool_available,
    pool_credential,
    ratio,
    speedup_rows,
    wait_ready,
)

NAME = "upstream"
DESCRIPTION = "B blocks + file upload/download: autogen-ext executor vs ours, same pool"
FILES = 5
FILE_BYTES = 64 * 1024
TARGET_SPEEDUP = 2.0


class Contestant:
    """One executor going through the workload step by step (so the steps can interleave)."""

    def __init__(self, name: str, executor: Any) -> None:
        self.name = name
        self.executor = executor
        self.first_block = 0.0
        self.blocks: list[float] = []
        self.files = 0.0
        self.names: list[str] = []

    @property
    def total(self) -> float:
        """Seconds the whole workload took: first block + the other blocks + the file phase."""
        return self.first_block + sum(self.blocks) + self.files

    async def block(self, i: int) -> float:
        from autogen_core import CancellationToken
        from autogen_core.code_executor import CodeBlock

        t0 = time.perf_counter()
        out = await self.executor.execute_code_blocks(
            [CodeBlock(code=f"x = {i}\nprint(x * 2)", language="python")], CancellationToken()
        )
        seconds = time.perf_counter() - t0
        if out.exit_code != 0 or str(i * 2) not in out.output:
            raise RuntimeError(f"{self.name}: block {i} failed: {out.output[-300:]}")
        return seconds

    async def file_phase(self, files: int) -> None:
        from autogen_core import CancellationToken

        token = CancellationToken()
        work_dir = Path(self.executor.work_dir)
        names = []
        for i in range(files):
            name = f"bench_{i}.bin"
            (work_dir / name).write_bytes(os.urandom(FILE_BYTES))
            names.append(name)
        t0 = time.perf_counter()
        await self.executor.upload_files(names, token)
        for name in names:
            (work_dir / name).unlink()
        await self.executor.download_files(names, token)
        self.files = time.perf_counter() - t0
        for name in names:
            if (work_dir / name).stat().st_size != FILE_BYTES:
                raise RuntimeError(f"{self.name}: {name} came back with the wrong size")


def _rotated(items: list[Contestant], shift: int) -> list[Contestant]:
    shift %= len(items)
    return items[shift:] + items[:shift]


async def run(cfg: Config) -> list[Row]:
    why = pool_available()
    if why is not None:
        return [Row(benchmark=NAME, figure="all figures", note=f"skipped: {why}")]
    from autogen_ext.code_executors.azure import ACADynamicSessionsCodeExecutor as UpstreamExecutor

    from autogen_aca_sessions import ACADynamicSessionsCodeExecutor

    blocks = cfg.upstream_blocks
    rounds = 1 if cfg.quick else 3
    contestants = ["upstream", "ours", "ours_legacy"]
    totals: dict[str, list[float]] = {c: [] for c in contestants}
    file_phase: dict[str, list[float]] = {c: [] for c in contestants}
    per_block: dict[str, list[float]] = {c: [] for c in contestants}
    first_block: dict[str, list[float]] = {c: [] for c in contestants}
    ready = len(contestants)
    async with open_pool(ready_sessions=ready, max_concurrent_sessions=ready * rounds + 4) as pool:
        credential = pool_credential(pool)
        for r in range(rounds):
            runners = [
                Contestant("upstream", UpstreamExecutor(pool.endpoint, credential, timeout=60)),
                Contestant("ours", ACADynamicSessionsCodeExecutor(pool.endpoint, credential, timeout=60)),
                # Ours on the upstream's api-version: separates the executor from the contract.
                Contestant(
                    "ours_legacy",
                    ACADynamicSessionsCodeExecutor(
                        pool.endpoint, credential, timeout=60, api_version="2024-02-02-preview"
                    ),
                ),
            ]
            for runner in runners:
                await runner.executor.start()
            try:
                # Step by step, all three interleaved and in a rotating order, so that they
                # share whatever load the (shared) machine has at each moment.
                for runner in _rotated(runners, r):
                    await wait_ready(pool, ready)
                    runner.first_block = await runner.block(0)
                await wait_ready(pool, ready)
                for i in range(1, blocks):
                    for runner in _rotated(runners, i + r):
                        runner.blocks.append(await runner.block(i))
                for runner in _rotated(runners, r):
                    await runner.file_phase(FILES)
            finally:
                for runner in runners:
                    await runner.executor.stop()
            for runner in runners:
                totals[runner.name].append(runner.total)
                file_phase[runner.name].append(runner.files)
                first_block[runner.name].append(runner.first_block)
                per_block[runner.name].extend(runner.blocks)
            log(
                cfg,
                f"upstream round {r + 1}/{rounds}: "
                + ", ".join(f"{x.name} {x.total:.2f} s ({x.files * 1000:.0f} ms files)" for x in runners),
            )

    up_total = statistics.median(totals["upstream"])
    our_total = statistics.median(totals["ours"])
    up_block = statistics.median(per_block["upstream"]) * 1000
    workload = f"{blocks} blocks + {FILES} x {FILE_BYTES // 1024} KiB up/down"
    rows = [
        *speedup_rows(
            NAME,
            theirs=(f"upstream executor: {workload}", up_total),
            ours=(f"our executor: {workload}", our_total),
            samples=rounds,
            target=TARGET_SPEEDUP,
        ),
        dist_row(NAME, "upstream executor: first block (session set-up)", first_block["upstream"]),
        dist_row(
            NAME,
            "our executor: first block (session set-up)",
            first_block["ours"],
            baseline="upstream first block",
            baseline_value=statistics.median(first_block["upstream"]) * 1000,
            ratio=ratio(statistics.median(first_block["upstream"]), statistics.median(first_block["ours"])),
            ratio_note="upstream / ours",
        ),
        dist_row(NAME, "upstream executor: per block after the first", per_block["upstream"]),
        dist_row(
            NAME,
            "our executor: per block after the first",
            per_block["ours"],
            baseline="upstream per block",
            baseline_value=up_block,
            ratio=ratio(up_block, statistics.median(per_block["ours"]) * 1000),
            ratio_note="upstream / ours",
        ),
        dist_row(
            NAME,
            "our executor on api-version 2024-02-02-preview: per block after the first",
            per_block["ours_legacy"],
            baseline="upstream per block",
            baseline_value=up_block,
            ratio=ratio(up_block, statistics.median(per_block["ours_legacy"]) * 1000),
            ratio_note="upstream / ours",
        ),
        Row(
            benchmark=NAME,
            figure="our executor on 2024-02-02-preview: whole workload",
            value=statistics.median(totals["ours_legacy"]) * 1000,
            samples=rounds,
            baseline="upstream total",
            baseline_value=up_total * 1000,
            ratio=ratio(up_total, statistics.median(totals["ours_legacy"])),
            ratio_note="upstream / ours",
        ),
        Row(
            benchmark=NAME,
            figure="file phase (upload + download), upstream",
            value=statistics.median(file_phase["upstream"]) * 1000,
            samples=rounds,
        ),
        Row(
            benchmark=NAME,
            figure="file phase (upload + download), ours",
            value=statistics.median(file_phase["ours"]) * 1000,
            samples=rounds,
            baseline="upstream",
            baseline_value=statistics.median(file_phase["upstream"]) * 1000,
            ratio=ratio(statistics.median(file_phase["upstream"]), statistics.median(file_phase["ours"])),
            ratio_note="upstream / ours",
        ),
    ]
    return rows

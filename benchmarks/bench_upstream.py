"""The same workload through autogen-ext's ACADynamicSessionsCodeExecutor and through ours.

Both against the same local pool (the upstream executor speaks api-version
2024-02-02-preview, which the pool serves too). The workload is what an agent does: a fresh
executor, B small blocks one ``execute_code_blocks`` call each (the first pays the session's
set-up), then F files uploaded and downloaded again. Rounds alternate the order of the two
executors; the figure is the median total time of the workload, plus the per-block latency.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from harness import Config, Row, dist_row, log, open_pool, pool_available, pool_credential, ratio, wait_ready

NAME = "upstream"
DESCRIPTION = "B blocks + file upload/download: autogen-ext executor vs ours, same pool"
FILES = 5
FILE_BYTES = 64 * 1024
TARGET_SPEEDUP = 2.0


async def workload(executor: Any, blocks: int, files: int) -> tuple[float, list[float], float]:
    """Run the workload on a started executor: (total s, per-block s, file phase s)."""
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock

    token = CancellationToken()
    work_dir = Path(executor.work_dir)
    names = []
    for i in range(files):
        name = f"bench_{i}.bin"
        (work_dir / name).write_bytes(os.urandom(FILE_BYTES))
        names.append(name)
    per_block: list[float] = []
    start = time.perf_counter()
    for i in range(blocks):
        t0 = time.perf_counter()
        out = await executor.execute_code_blocks(
            [CodeBlock(code=f"x = {i}\nprint(x * 2)", language="python")], token
        )
        per_block.append(time.perf_counter() - t0)
        if out.exit_code != 0 or str(i * 2) not in out.output:
            raise RuntimeError(f"{type(executor).__module__}: block {i} failed: {out.output[-300:]}")
    t_files = time.perf_counter()
    await executor.upload_files(names, token)
    for name in names:
        (work_dir / name).unlink()
    await executor.download_files(names, token)
    for name in names:
        if (work_dir / name).stat().st_size != FILE_BYTES:
            raise RuntimeError(f"{type(executor).__module__}: {name} came back with the wrong size")
    end = time.perf_counter()
    return end - start, per_block, end - t_files


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
    async with open_pool(ready_sessions=2, max_concurrent_sessions=3 * rounds + 4) as pool:
        credential = pool_credential(pool)
        for r in range(rounds):
            order = contestants if r % 2 == 0 else contestants[::-1]
            for who in order:
                await wait_ready(pool, 2)
                executor: Any
                if who == "upstream":
                    executor = UpstreamExecutor(pool.endpoint, credential, timeout=60)
                elif who == "ours":
                    executor = ACADynamicSessionsCodeExecutor(pool.endpoint, credential, timeout=60)
                else:
                    # Ours on the upstream's api-version: separates the executor from the contract.
                    executor = ACADynamicSessionsCodeExecutor(
                        pool.endpoint, credential, timeout=60, api_version="2024-02-02-preview"
                    )
                await executor.start()
                try:
                    total, blocks_s, files_s = await workload(executor, blocks, FILES)
                finally:
                    await executor.stop()
                totals[who].append(total)
                file_phase[who].append(files_s)
                first_block[who].append(blocks_s[0])
                per_block[who].extend(blocks_s[1:])
                log(
                    cfg,
                    f"upstream round {r + 1}/{rounds}: {who} {total:.2f} s ({files_s * 1000:.0f} ms files)",
                )

    up_total = statistics.median(totals["upstream"])
    our_total = statistics.median(totals["ours"])
    speedup = up_total / our_total if our_total else None
    up_block = statistics.median(per_block["upstream"]) * 1000
    rows = [
        Row(
            benchmark=NAME,
            figure=f"upstream executor: {blocks} blocks + {FILES} x {FILE_BYTES // 1024} KiB up/down",
            value=up_total * 1000,
            samples=rounds,
            note="median total of rounds",
        ),
        Row(
            benchmark=NAME,
            figure=f"our executor: {blocks} blocks + {FILES} x {FILE_BYTES // 1024} KiB up/down",
            value=our_total * 1000,
            samples=rounds,
            baseline="upstream total",
            baseline_value=up_total * 1000,
            ratio=speedup,
            ratio_note="upstream / ours",
            target=f">= {TARGET_SPEEDUP:g}x faster",
            met=speedup is not None and speedup >= TARGET_SPEEDUP,
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

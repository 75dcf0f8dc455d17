"""Warm execution: one trivial block on a session that already has its kernel.

Measured round-robin in one loop, so every path sees the same machine load:
- the floor: ``AsyncKernelClient.execute`` + wait for idle on a plain ipykernel started by
  ``jupyter_client`` on this machine (no HTTP, no sandbox);
- a bare HTTP POST of the execute request to the local pool (aiohttp, keep-alive, prebuilt
  body): the pool's own cost, without the client library;
- ``SessionsClient.execute``: adds the client library (auth, JSON, parsing);
- ``ACADynamicSessionsCodeExecutor.execute_code_blocks``: adds the executor; the figure the
  target is about.
``--profile`` also runs the executor path under pyinstrument and prints where the time goes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from harness import (
    TRIVIAL_BLOCK,
    Config,
    RawKernel,
    Row,
    dist_row,
    log,
    open_pool,
    pool_available,
    pool_credential,
    ratio,
    skip_plain_first_kernel,
    summarise,
)

NAME = "warm"
DESCRIPTION = "warm execute of a trivial block: executor / client / bare HTTP vs raw jupyter_client"
WARMUP = 10
TARGET_RATIO = 1.1
MANY_FILES = 2000
RESULTS = Path(__file__).resolve().parent / "results"


async def _bare_post(http: Any, url: str, headers: dict[str, str], body: bytes) -> None:
    async with http.post(url, data=body, headers=headers) as response:
        payload = await response.read()
        if response.status >= 300:
            raise RuntimeError(f"bare POST got {response.status}: {payload[:200]!r}")


async def run(cfg: Config) -> list[Row]:
    why = pool_available()
    if why is not None:
        return [Row(benchmark=NAME, figure="all figures", note=f"skipped: {why}")]
    import json

    import aiohttp
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock

    from autogen_aca_sessions import ACADynamicSessionsCodeExecutor
    from autogen_aca_sessions.client import SessionsClient

    count = cfg.n(200, 20)
    raw = RawKernel()
    await raw.start()
    samples: dict[str, list[float]] = {
        "raw": [],
        "http": [],
        "client": [],
        "executor": [],
        "executor_files": [],
    }
    try:
        async with open_pool(ready_sessions=3, max_concurrent_sessions=8) as pool:
            await skip_plain_first_kernel(pool)
            credential = pool_credential(pool)
            executor = ACADynamicSessionsCodeExecutor(pool.endpoint, credential)
            await executor.start()
            block = [CodeBlock(code=TRIVIAL_BLOCK, language="python")]
            token = CancellationToken()
            async with SessionsClient(pool.endpoint, credential) as client, aiohttp.ClientSession() as http:
                client_session = str(uuid.uuid4())
                http_session = str(uuid.uuid4())
                url = f"{pool.endpoint}/executions?api-version=2025-10-02-preview&identifier={http_session}"
                headers = {"Authorization": f"Bearer {pool.api_key}", "Content-Type": "application/json"}
                body = json.dumps(
                    {
                        "codeInputType": "Inline",
                        "executionType": "Synchronous",
                        "code": TRIVIAL_BLOCK,
                        "timeoutInSeconds": 60,
                    }
                ).encode()

                async def one_raw() -> None:
                    await raw.execute(TRIVIAL_BLOCK)

                async def one_http() -> None:
                    await _bare_post(http, url, headers, body)

                async def one_client() -> None:
                    result = await client.execute(client_session, TRIVIAL_BLOCK)
                    if not result.succeeded:
                        raise RuntimeError(result.stderr[-300:])

                async def one_executor() -> None:
                    out = await executor.execute_code_blocks(block, token)
                    if out.exit_code != 0:
                        raise RuntimeError(out.output[-300:])

                paths = {"raw": one_raw, "http": one_http, "client": one_client, "executor": one_executor}
                # Only the four interleaved paths; the many-files figure is measured afterwards.
                for fn in paths.values():
                    for _ in range(WARMUP):
                        await fn()
                log(cfg, f"warm: {count} rounds of raw / bare HTTP / client / executor")
                for i in range(count):
                    # Rotate the order too, so none of the paths always runs right after another.
                    names = list(paths)
                    shift = i % len(names)
                    for name in names[shift:] + names[:shift]:
                        start = time.perf_counter()
                        await paths[name]()
                        samples[name].append(time.perf_counter() - start)
                # The same executor call once its session holds many files: the pool's
                # per-call work must not grow with the data directory.
                made = await client.execute(
                    executor.session_id,
                    f"import os\nfor i in range({MANY_FILES}):\n"
                    "    open(f'/mnt/data/bench_{i}.txt', 'w').close()\nlen(os.listdir('/mnt/data'))",
                    timeout_seconds=120,
                )
                if not made.succeeded:
                    raise RuntimeError(f"could not create the files: {made.stderr[-300:]}")
                for _ in range(3):
                    await one_executor()
                for _ in range(min(count, 40)):
                    start = time.perf_counter()
                    await one_executor()
                    samples["executor_files"].append(time.perf_counter() - start)
                if cfg.profile:
                    await _profile(cfg, one_executor, max(50, count // 2))
            await executor.stop()
    finally:
        await raw.stop()

    raw_p50, raw_p99 = summarise(samples["raw"])
    rows = [dist_row(NAME, "baseline: raw jupyter_client execute + wait idle", samples["raw"])]
    labels = {
        "http": "bare HTTP POST to the local pool",
        "client": "SessionsClient.execute via the local pool",
        "executor": "executor.execute_code_blocks via the local pool",
        "executor_files": f"executor, same, with {MANY_FILES:,} files in /mnt/data (measured after)",
    }
    for name, label in labels.items():
        p50, p99 = summarise(samples[name])
        target = None
        met = None
        if name == "executor":
            target = f"p50 <= {TARGET_RATIO}x raw floor"
            met = p50 <= TARGET_RATIO * raw_p50
        rows.append(
            dist_row(
                NAME,
                label,
                samples[name],
                baseline="raw jupyter_client",
                baseline_value=raw_p50,
                ratio=ratio(p50, raw_p50),
                target=target,
                met=met,
                note=f"p99 ratio {p99 / raw_p99:.2f}x" if raw_p99 else "",
            )
        )
    return rows


async def _profile(cfg: Config, fn: Any, count: int) -> None:
    """Run ``fn`` ``count`` times under pyinstrument; print and save the profile."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        log(cfg, "warm: pyinstrument is not installed; no profile")
        return
    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    for _ in range(count):
        await fn()
    profiler.stop()
    out = RESULTS
    text = profiler.output_text(unicode=False, color=False, show_all=False)

    def save() -> None:
        out.mkdir(exist_ok=True)
        (out / "warm_profile.txt").write_text(text)
        (out / "warm_profile.html").write_text(profiler.output_html())

    await asyncio.to_thread(save)
    log(cfg, f"warm: profile of {count} executor calls written to {out / 'warm_profile.txt'}")

"""Recovery: from a timed-out block (interrupt honoured) to the session serving the next call.

A block sleeps past its 1 s limit; the pool interrupts the kernel (SIGINT, which
``time.sleep`` honours) and answers with a timed-out result; the next call then runs. Figures:
- recovery: from the deadline (send time + limit) to the answer of the next call; it counts
  both how late the timed-out answer came and how long the next call took;
- the two parts on their own;
- the baseline: the same thing on a plain jupyter_client kernel (interrupt at the deadline,
  wait for the interrupted cell's idle, run the next cell).
Each sample also checks the interpreter state was kept (a variable set before survives).
"""

from __future__ import annotations

import asyncio
import time
import uuid

from harness import (
    Config,
    RawKernel,
    Row,
    dist_row,
    log,
    open_pool,
    pool_available,
    pool_credential,
    ratio,
    summarise,
)

NAME = "recovery"
DESCRIPTION = "timed-out block (interrupt honoured) to the next call served"
LIMIT_S = 1
SLEEPER = "import time\ntime.sleep(30)"
TARGET_MS = 250.0


async def measure_raw(count: int) -> list[float]:
    """Interrupt at the deadline, then the next cell, on a plain kernel."""
    kernel = RawKernel()
    await kernel.start()
    samples = []
    try:
        await kernel.execute("kept = 42")
        for _ in range(count):
            msg_id = kernel.send(SLEEPER)
            await asyncio.sleep(LIMIT_S)
            deadline = time.perf_counter()
            await kernel.interrupt()
            await kernel.wait_for(msg_id, timeout=30)
            result = await kernel.execute("kept")
            samples.append(time.perf_counter() - deadline)
            if result.get("status") != "ok":
                raise RuntimeError(f"raw kernel lost its state: {result}")
    finally:
        await kernel.stop()
    return samples


async def measure_pool(count: int, cfg: Config) -> tuple[list[float], list[float], list[float], int]:
    """(recovery, timed-out answer lateness, next call) in seconds, and how many lost state."""
    from autogen_aca_sessions.client import SessionsClient

    recovery: list[float] = []
    lateness: list[float] = []
    next_call: list[float] = []
    lost = 0
    async with (
        open_pool(ready_sessions=1, max_concurrent_sessions=4) as pool,
        SessionsClient(pool.endpoint, pool_credential(pool)) as client,
    ):
        identifier = str(uuid.uuid4())
        await client.execute(identifier, "kept = 42")
        for i in range(count):
            sent = time.perf_counter()
            result = await client.execute(identifier, SLEEPER, timeout_seconds=LIMIT_S)
            answered = time.perf_counter()
            if not result.timed_out:
                raise RuntimeError(f"the block was not reported as timed out: {result.raw}")
            if result.state_lost:
                lost += 1
            after = await client.execute(identifier, "print(kept)")
            done = time.perf_counter()
            if after.stdout.strip() != "42":
                lost += 0 if result.state_lost else 1
            deadline = sent + LIMIT_S
            recovery.append(done - deadline)
            lateness.append(answered - deadline)
            next_call.append(done - answered)
            log(
                cfg,
                f"recovery sample {i + 1}/{count}: {recovery[-1] * 1000:.0f} ms (answer "
                f"{lateness[-1] * 1000:.0f} ms after the deadline, next call {next_call[-1] * 1000:.0f} ms)",
            )
    return recovery, lateness, next_call, lost


async def run(cfg: Config) -> list[Row]:
    count = cfg.n(10, 2)
    log(cfg, f"recovery: {count} interrupts on a plain jupyter_client kernel")
    raw = await measure_raw(count)
    raw_p50, _ = summarise(raw)
    rows = [dist_row(NAME, "baseline: raw jupyter_client interrupt -> next cell answered", raw)]
    why = pool_available()
    if why is not None:
        rows.append(Row(benchmark=NAME, figure="pool figures", note=f"skipped: {why}"))
        return rows
    log(cfg, f"recovery: {count} timed-out blocks on the local pool")
    recovery, lateness, next_call, lost = await measure_pool(count, cfg)
    p50, _ = summarise(recovery)
    rows += [
        dist_row(
            NAME,
            f"pool: deadline ({LIMIT_S} s limit) -> next call answered",
            recovery,
            baseline="raw interrupt -> next cell",
            baseline_value=raw_p50,
            ratio=ratio(p50, raw_p50),
            target=f"p50 <= {TARGET_MS:g} ms",
            met=p50 <= TARGET_MS and lost == 0,
            note="state kept every time" if lost == 0 else f"state LOST {lost} times",
        ),
        dist_row(NAME, "pool: part 1, deadline -> timed-out answer", lateness),
        dist_row(NAME, "pool: part 2, timed-out answer -> next call answered", next_call),
    ]
    return rows

"""Prototype: would warming each ready kernel before it is handed out speed up a new session?

Two local pools run side by side; in one, every kernel the pool starts runs a few
throwaway executions (a print, an expression value, a caught exception) right after it
is ready, before it joins the ready queue. Then, interleaved, the first call on a new
identifier is timed on each pool (ready kernel free, pool refilled before each sample).
The runtime is not edited: ``SessionManager._start_kernel`` is wrapped for the pool whose
root directory says so.

    python benchmarks/prototypes/prewarm_ready.py [--samples 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import open_pool, percentile, pool_credential, wait_ready

WARM_CELLS = ["print(1)", "1 + 1", "try:\n    1 / 0\nexcept ZeroDivisionError:\n    pass"]
"""What a warmed kernel runs once: the stream path, the result path, the traceback-free error path."""
MARKER = "prewarmed-pool"
WARMED: list[Any] = []
"""Kernels the wrapper warmed (proof that it ran)."""


def install_prewarm() -> None:
    from autogen_aca_sessions.local.sessions import SessionManager

    original = SessionManager._start_kernel

    async def start_and_warm(self: Any, slot: Any) -> Any:
        kernel = await original(self, slot)
        if MARKER in str(self.root):
            for code in WARM_CELLS:
                await kernel.execute(code, timeout=30, max_output_chars=10_000)
            WARMED.append(kernel)
        return kernel

    SessionManager._start_kernel = start_and_warm  # type: ignore[method-assign]


async def main(samples: int) -> None:
    from autogen_aca_sessions.client import SessionsClient

    install_prewarm()
    ready = 2
    times: dict[str, list[float]] = {"plain": [], "prewarmed": []}
    with tempfile.TemporaryDirectory(prefix=MARKER) as warm_root:
        async with (
            open_pool(ready_sessions=ready, max_concurrent_sessions=samples + 4) as plain,
            open_pool(
                ready_sessions=ready, max_concurrent_sessions=samples + 4, root_dir=Path(warm_root) / "root"
            ) as warmed,
            SessionsClient(plain.endpoint, pool_credential(plain)) as plain_client,
            SessionsClient(warmed.endpoint, pool_credential(warmed)) as warm_client,
        ):
            pools = [("plain", plain, plain_client), ("prewarmed", warmed, warm_client)]
            for _name, pool, client in pools:
                await wait_ready(pool, ready)
                await client.execute(str(uuid.uuid4()), "1")
            for i in range(samples):
                order = pools if i % 2 == 0 else pools[::-1]
                for name, pool, client in order:
                    await wait_ready(pool, ready)
                    await wait_ready(pools[0][1] if name != "plain" else pools[1][1], ready)
                    identifier = str(uuid.uuid4())
                    t0 = time.perf_counter()
                    result = await client.execute(identifier, "1+1")
                    times[name].append(time.perf_counter() - t0)
                    if not result.succeeded:
                        raise RuntimeError(result.stderr)
                    await client.delete_session(identifier)
    for name, values in times.items():
        ms = [v * 1000 for v in values]
        p50, p99 = statistics.median(ms), percentile(ms, 99)
        print(f"{name:10s} first call: p50 {p50:.1f} ms, p99 {p99:.1f} ms, n={len(ms)}")
    print(f"kernels warmed before being handed out: {len(WARMED)}")
    ratio = statistics.median(times["prewarmed"]) / statistics.median(times["plain"])
    print(f"prewarmed / plain (p50): {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20)
    asyncio.run(main(parser.parse_args().samples))

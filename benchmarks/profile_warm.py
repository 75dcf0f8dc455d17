"""Where the CPU time of a warm ``execute_code_blocks`` goes, layer by layer.

The executor, the client, the pool's HTTP layer and its kernel client all run in this one
process and event loop, so one ``cProfile`` run sees the whole path except the kernel
itself (a separate process). Prints CPU milliseconds per call by layer (own time of the
functions in each package) and the costliest functions.

    python benchmarks/profile_warm.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import TRIVIAL_BLOCK, RawKernel, open_pool, pool_credential, skip_plain_first_kernel  # noqa: E402

LAYERS = [
    ("autogen_aca_sessions/executor", "our executor"),
    ("autogen_aca_sessions/client", "our client"),
    ("autogen_aca_sessions/local", "local pool (HTTP layer + runtime)"),
    ("aiohttp", "aiohttp (client + server)"),
    ("multidict", "aiohttp (client + server)"),
    ("yarl", "aiohttp (client + server)"),
    ("jupyter_client", "jupyter_client (pool -> kernel messaging)"),
    ("zmq", "pyzmq"),
    ("dateutil", "dateutil (jupyter_client parses message dates)"),
    ("json", "json"),
    ("hmac", "hmac (message signing)"),
    ("hashlib", "hmac (message signing)"),
    ("asyncio", "asyncio event loop"),
    ("selectors", "asyncio event loop"),
    ("autogen_core", "autogen_core"),
    ("uuid", "uuid"),
    ("logging", "logging"),
]


def layer_of(filename: str) -> str:
    for marker, name in LAYERS:
        if f"/{marker}/" in filename or filename.endswith(f"/{marker}.py") or f"/{marker}" in filename:
            return name
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins / C"
    return "other"


def _kernel_processes(identifier: str, pool: Any) -> list[psutil.Process]:
    """The processes of the session's kernel (found through the pool's runtime)."""
    session = pool.manager.get(identifier)
    kernel = session.kernel if session is not None else None
    pid = kernel.pid if kernel is not None else None
    if pid is None:
        return []
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cpu_of(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


async def main(calls: int) -> None:
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock

    from autogen_aca_sessions import ACADynamicSessionsCodeExecutor

    async with open_pool(ready_sessions=1, max_concurrent_sessions=4) as pool:
        await skip_plain_first_kernel(pool)
        executor = ACADynamicSessionsCodeExecutor(pool.endpoint, pool_credential(pool))
        await executor.start()
        block = [CodeBlock(code=TRIVIAL_BLOCK, language="python")]
        token = CancellationToken()
        for _ in range(20):
            await executor.execute_code_blocks(block, token)
        # Unprofiled first: the profiler itself multiplies the CPU time.
        kernel_procs = _kernel_processes(executor.session_id, pool)
        kernel_before = _cpu_of(kernel_procs)
        plain_wall = time.perf_counter()
        plain_cpu = time.process_time()
        for _ in range(calls):
            await executor.execute_code_blocks(block, token)
        plain_cpu = time.process_time() - plain_cpu
        plain_wall = time.perf_counter() - plain_wall
        pool_kernel_cpu = _cpu_of(kernel_procs) - kernel_before
        # CPU time, not wall time: waiting in epoll is the kernel working, not a cost here.
        profiler = cProfile.Profile(time.process_time)
        wall = time.perf_counter()
        cpu = time.process_time()
        profiler.enable()
        for _ in range(calls):
            await executor.execute_code_blocks(block, token)
        profiler.disable()
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        await executor.stop()

    raw = RawKernel()
    await raw.start()
    try:
        for _ in range(20):
            await raw.execute(TRIVIAL_BLOCK)
        raw_procs = [psutil.Process(raw.pid)]
        raw_kernel_before = _cpu_of(raw_procs)
        raw_wall = time.perf_counter()
        raw_cpu = time.process_time()
        for _ in range(calls):
            await raw.execute(TRIVIAL_BLOCK)
        raw_cpu = time.process_time() - raw_cpu
        raw_wall = time.perf_counter() - raw_wall
        raw_kernel_cpu = _cpu_of(raw_procs) - raw_kernel_before
    finally:
        await raw.stop()

    print(
        f"unprofiled, {calls} calls: executor via pool {plain_wall / calls * 1000:.2f} ms/call wall, "
        f"{plain_cpu / calls * 1000:.2f} ms/call CPU in this process (executor + client + pool)"
    )
    print(
        f"kernel process CPU per call: pool's kernel {pool_kernel_cpu / calls * 1000:.2f} ms, "
        f"plain ipykernel {raw_kernel_cpu / calls * 1000:.2f} ms"
    )
    print(
        f"unprofiled, {calls} calls: raw jupyter_client {raw_wall / calls * 1000:.2f} ms/call wall, "
        f"{raw_cpu / calls * 1000:.2f} ms/call CPU in this process (the client side of the floor)"
    )
    stats = pstats.Stats(profiler)
    by_layer: dict[str, float] = {}
    by_function: dict[str, float] = {}
    table: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, func), (_cc, _nc, tottime, _ct, _callers) in table.items():
        layer = layer_of(filename)
        by_layer[layer] = by_layer.get(layer, 0.0) + tottime
        key = "/".join(filename.split("/")[-2:]) + f":{line}({func})"
        by_function[key] = by_function.get(key, 0.0) + tottime
    print(
        f"profiled, {calls} calls: wall {wall / calls * 1000:.2f} ms/call, "
        f"CPU {cpu / calls * 1000:.2f} ms/call (profiler overhead included)"
    )
    print("(the kernel's own CPU is in another process and not included)")
    print()
    print("CPU ms per call by layer (own time):")
    for name, seconds in sorted(by_layer.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / calls * 1000:6.3f}  {name}")
    print()
    print("costliest functions (own time, ms per call):")
    for name, seconds in sorted(by_function.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {seconds / calls * 1000:6.3f}  {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    asyncio.run(main(parser.parse_args().calls))

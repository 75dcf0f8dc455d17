"""The AutoGen executor on a sandbox (issue 19): resume -> first block, and a warm block side by
side with the dynamic-sessions executor.

One local server holds both a session pool and a sandbox group (loopback, real kernels, real
bubblewrap sandboxes). Figures:

- Memory-mode resume -> first block's result: the executor suspends its sandbox, then the next
  block's result is timed from the call of ``resume()`` (the same executor), and from
  ``load_state()`` of a new executor built from the saved state (as a new process would: its
  first block finds the sandbox suspended and resumes it). Target p50 <= 60 ms.
- A warm block (``x = 1`` then ``print(x)``-sized work) through ``ACASandboxCodeExecutor`` and
  through ``ACADynamicSessionsCodeExecutor``, interleaved block by block. Target: sandbox p50 at
  most 1.3x the dynamic session's.

Not a test: nothing is asserted. The machine is shared: read the load average in the notes.
"""

from __future__ import annotations

import os
import time

from harness import Config, Row, dist_row, log, pool_available, ratio, summarise

NAME = "sandbox_executor"
DESCRIPTION = "the AutoGen executor on a sandbox: resume -> first block, warm block vs a dynamic session"

_SUB = "00000000-0000-0000-0000-000000000000"
_RG = "rg-bench"
_GROUP = "bench-group"
_BLOCK = "total = sum(range(100))\nprint(total)"


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


async def run(cfg: Config) -> list[Row]:
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock

    from autogen_aca_sessions.client.sandboxes import SandboxesClient
    from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor, ACASandboxCodeExecutor
    from autogen_aca_sessions.local import LocalSessionsServer

    why = pool_available()
    if why is not None:
        return [Row(benchmark=NAME, figure="all figures", note=f"skipped: {why}")]
    resumes = cfg.n(30, 5)
    warm_blocks = cfg.n(200, 20)
    block = [CodeBlock(code=_BLOCK, language="python")]
    load_before = _load()
    async with LocalSessionsServer() as server:
        pool = await server.create_pool("benchpool", ready_session_instances=1)
        await server.create_sandbox_group(_GROUP, subscription=_SUB, resource_group=_RG)
        async with SandboxesClient(
            server.base_url,
            subscription_id=_SUB,
            resource_group=_RG,
            sandbox_group=_GROUP,
            credential=server.api_key,
        ) as client:
            sandbox = ACASandboxCodeExecutor(client)
            dynamic = ACADynamicSessionsCodeExecutor(server.endpoint_for(pool.key), server.api_key)
            for executor in (sandbox, dynamic):
                first = await executor.execute_code_blocks(block, CancellationToken())
                assert first.output == "4950\n", first.output

            same: list[float] = []
            loaded: list[float] = []
            for i in range(resumes):
                await sandbox.suspend()
                start = time.perf_counter()
                await sandbox.resume()
                result = await sandbox.execute_code_blocks(block, CancellationToken())
                same.append(time.perf_counter() - start)
                assert result.output == "4950\n", result.output

                await sandbox.suspend()
                state = await sandbox.save_state()
                start = time.perf_counter()
                other = ACASandboxCodeExecutor(client)
                await other.load_state(state)
                result = await other.execute_code_blocks(block, CancellationToken())
                loaded.append(time.perf_counter() - start)
                assert result.output == "4950\n", result.output
                await sandbox.resume()
                log(cfg, f"resume sample {i + 1}/{resumes}")

            warm_sandbox: list[float] = []
            warm_dynamic: list[float] = []
            for _ in range(warm_blocks):
                for executor, into in ((sandbox, warm_sandbox), (dynamic, warm_dynamic)):
                    start = time.perf_counter()
                    result = await executor.execute_code_blocks(block, CancellationToken())
                    into.append(time.perf_counter() - start)
                    assert result.output == "4950\n", result.output
            await sandbox.stop()
            await dynamic.stop()
    load_after = _load()
    loads = f"load average {load_before} before, {load_after} after (pid {os.getpid()})"
    same_p50, _ = summarise(same)
    loaded_p50, _ = summarise(loaded)
    sandbox_p50, _ = summarise(warm_sandbox)
    dynamic_p50, _ = summarise(warm_dynamic)
    return [
        dist_row(
            NAME,
            "Memory-mode resume -> first block's result (resume(), then the block)",
            same,
            target="p50 <= 60 ms",
            met=same_p50 <= 60,
            note=loads,
        ),
        dist_row(
            NAME,
            "Memory-mode resume -> first block's result (a new executor from the saved state)",
            loaded,
            target="p50 <= 60 ms",
            met=loaded_p50 <= 60,
        ),
        dist_row(NAME, "baseline: warm block, ACADynamicSessionsCodeExecutor (local pool)", warm_dynamic),
        dist_row(
            NAME,
            "warm block, ACASandboxCodeExecutor (local sandbox), interleaved",
            warm_sandbox,
            baseline="the same block on a dynamic session",
            baseline_value=dynamic_p50,
            ratio=ratio(sandbox_p50, dynamic_p50),
            target="<= 1.3x",
            met=sandbox_p50 <= 1.3 * dynamic_p50,
        ),
    ]

"""Streaming a sandbox command's output (issue 19), over the real local server; prints p50/p99.

Run: ``python benchmarks/bench_exec_stream.py [--samples 40]``. Figures, each pair interleaved
(one of each per round, so machine load falls on both alike):

- ``exec_stream("true")`` vs ``exec_shell("true")``: what the WebSocket costs a short command
  (upgrade, command frame, exit frame, close) against one POST;
- ``echo first; sleep 0.5; echo last`` streamed: time to the first chunk vs time to the result
  (the point of streaming: the first line arrives ~0.5 s before the end);
- a Python block ``print(1)`` through ``SandboxPython.run_python`` with and without ``on_output``.

Not a test: nothing is asserted. The machine is shared: read the load average printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from harness import percentile  # noqa: E402

from autogen_aca_sessions.client.sandbox_python import SandboxPython  # noqa: E402
from autogen_aca_sessions.client.sandboxes import OutputChunk, SandboxesClient  # noqa: E402
from autogen_aca_sessions.local import LocalSessionsServer  # noqa: E402

SUB = "00000000-0000-0000-0000-000000000000"


def _ignore(chunk: OutputChunk) -> None:
    del chunk


async def _ms(work: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await work()
    return (time.perf_counter() - start) * 1000


def _line(name: str, values: list[float]) -> str:
    return f"{name:<48} p50 {percentile(values, 50):8.1f} ms   p99 {percentile(values, 99):8.1f} ms"


async def main(samples: int) -> None:
    print(f"load average before: {os.getloadavg()}")
    async with LocalSessionsServer() as server:
        await server.create_sandbox_group("bench", subscription=SUB, resource_group="bench")
        async with SandboxesClient(
            server.base_url,
            subscription_id=SUB,
            resource_group="bench",
            sandbox_group="bench",
            credential=server.api_key,
        ) as client:
            sandbox = await SandboxPython.create(client, "python-3.12")
            sid = sandbox.sandbox_id
            await client.exec_stream(sid, "true", on_output=_ignore)  # warm both paths
            await client.exec_shell(sid, "true")

            stream_true: list[float] = []
            shell_true: list[float] = []
            for _ in range(samples):
                stream_true.append(await _ms(lambda: client.exec_stream(sid, "true", on_output=_ignore)))
                shell_true.append(await _ms(lambda: client.exec_shell(sid, "true")))

            first: list[float] = []
            whole: list[float] = []
            for _ in range(max(samples // 4, 5)):
                start = time.perf_counter()
                seen: list[float] = []

                def on_output(chunk: OutputChunk, seen: list[float] = seen, start: float = start) -> None:
                    if not seen:
                        seen.append((time.perf_counter() - start) * 1000)

                await client.exec_stream(sid, "echo first; sleep 0.5; echo last", on_output=on_output)
                whole.append((time.perf_counter() - start) * 1000)
                first.append(seen[0])

            await sandbox.run_python("x = 0", timeout=30)  # the interpreter started
            py_stream: list[float] = []
            py_plain: list[float] = []
            for _ in range(samples):
                py_stream.append(
                    await _ms(lambda: sandbox.run_python("print(1)", timeout=30, on_output=_ignore))
                )
                py_plain.append(await _ms(lambda: sandbox.run_python("print(1)", timeout=30)))
            await sandbox.delete()

    print(_line("exec_stream('true')", stream_true))
    print(_line("exec_shell('true')", shell_true))
    ratio = percentile(stream_true, 50) / percentile(shell_true, 50)
    print(f"{'  stream / shell, p50':<48} {ratio:8.2f}x")
    print(_line("echo; sleep 0.5; echo: first chunk", first))
    print(_line("echo; sleep 0.5; echo: result", whole))
    print(_line("run_python('print(1)') with on_output", py_stream))
    print(_line("run_python('print(1)') without", py_plain))
    ratio = percentile(py_stream, 50) / percentile(py_plain, 50)
    print(f"{'  streamed / plain, p50':<48} {ratio:8.2f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40)
    asyncio.run(main(parser.parse_args().samples))

"""Start-up of two checkouts side by side: launch -> first block, and -> a second session's first block.

Each sample is a fresh process running ``async with LocalSessionPool()`` with default settings,
then ``print(1)`` on a new identifier and on a second one; the variants (interpreters of two
worktrees, each with the package installed) are run in a rotating order, so that load drifting
over the run hits all of them alike. The first variant is the baseline of the ratios::

    python benchmarks/ab_startup.py 9 base=/work/wt/base/.venv/bin/python new=.venv/bin/python

A variant may add environment variables: ``nocache=.venv/bin/python:XDG_CACHE_HOME=/proc/none``
(a cache directory that cannot be written: the fork template probes its modules every time).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

SCRIPT = r"""
import asyncio, json, time
import aiohttp
from autogen_aca_sessions import LocalSessionPool
BODY = {"codeInputType": "Inline", "executionType": "Synchronous", "code": "print(1)", "timeoutInSeconds": 60}
async def main():
    async with LocalSessionPool() as pool:
        entered = time.monotonic()
        url = f"{pool.endpoint}/executions?api-version=2025-10-02-preview&identifier="
        headers = {"Authorization": f"Bearer {pool.api_key}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(url + "first", json=BODY, headers=headers) as resp:
                first = (await resp.json())["result"]["stdout"]
            done = time.monotonic()
            async with http.post(url + "second", json=BODY, headers=headers) as resp:
                second = (await resp.json())["result"]["stdout"]
            second_done = time.monotonic()
    print(json.dumps({"entered": entered, "done": done, "second": second_done, "out": [first, second]}))
asyncio.run(main())
"""


@dataclass
class Variant:
    """One interpreter (a checkout's venv) and the environment it runs with."""

    name: str
    """The label in the output."""
    python: str
    """The interpreter that runs the pool."""
    env: dict[str, str]
    """Variables added to this process's environment."""
    entered: list[float] = field(default_factory=list)
    """Launch -> ``async with`` returned, seconds."""
    first: list[float] = field(default_factory=list)
    """Launch -> the first block's result, seconds."""
    second: list[float] = field(default_factory=list)
    """Launch -> a second session's first block's result, seconds."""


def parse(arg: str) -> Variant:
    name, _, rest = arg.partition("=")
    python, _, extra = rest.partition(":")
    env = dict(item.split("=", 1) for item in extra.split(",") if item)
    return Variant(name, python, env)


async def sample(variant: Variant) -> None:
    start = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        variant.python,
        "-c",
        SCRIPT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **variant.env},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 300)
    if process.returncode != 0 or not out:
        raise RuntimeError(f"{variant.name}: the pool script failed (exit {process.returncode})")
    info = json.loads(out.decode().strip().splitlines()[-1])
    if info["out"] != ["1\n", "1\n"]:
        raise RuntimeError(f"{variant.name}: unexpected results {info['out']}")
    variant.entered.append(info["entered"] - start)
    variant.first.append(info["done"] - start)
    variant.second.append(info["second"] - start)


def load() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


async def main(argv: list[str]) -> None:
    count = int(argv[0])
    variants = [parse(arg) for arg in argv[1:]]
    print(f"load average before: {load()}", flush=True)
    for i in range(count):
        shift = i % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            await sample(variant)
    print(f"load average after: {load()}")
    base = variants[0]
    base_first, base_second = statistics.median(base.first), statistics.median(base.second)
    for v in variants:
        first, second = statistics.median(v.first), statistics.median(v.second)
        print(
            f"{v.name}: async with {statistics.median(v.entered) * 1000:.0f} ms; "
            f"first block p50 {first * 1000:.0f} ms ({first / base_first:.2f}x), "
            f"max {max(v.first) * 1000:.0f} ms; "
            f"second session p50 {second * 1000:.0f} ms ({second / base_second:.2f}x)  n={len(v.first)}"
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

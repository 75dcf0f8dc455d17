"""Start-up: from launching a process that starts a pool to the first block's result (issue 21).

Whole-process timing, default settings, each sample a fresh process (so the interpreter, the
imports, the sandbox set-up, the fork template's data-stack import and the first kernel are
all paid, as a new user, a test session or a CI job pays them):

- ``LocalSessionPool``: a script that does ``async with LocalSessionPool() as pool`` and then
  POSTs ``print(1)`` to a new identifier; timed from the launch to ``async with`` returning and
  to the result;
- ``aca-sessions serve``: the CLI launched, its banner read for the endpoint and key, the same
  POST sent at once; timed from the launch to the banner, to the ``ready`` line and to the result.

Baseline (interleaved, same run): a bare interpreter importing the data stack the fork
template imports (``numpy, pandas, matplotlib.pyplot``): the floor a pool that imports it
before its first kernel answers cannot beat. ``CLOCK_MONOTONIC`` is system-wide on Linux, so
the child's timestamps are read against the parent's launch time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from harness import Config, Row, dist_row, log, pool_available, ratio, summarise

NAME = "startup"
DESCRIPTION = "process launch -> pool ready -> first block result (LocalSessionPool, aca-sessions serve)"
API = "2025-10-02-preview"
BODY = {"codeInputType": "Inline", "executionType": "Synchronous", "code": "print(1)", "timeoutInSeconds": 60}
TARGET_S = 1.0

_POOL_SCRIPT = """
import asyncio, json, time
t_import = time.monotonic()
import aiohttp
from autogen_aca_sessions import LocalSessionPool

async def main():
    async with LocalSessionPool() as pool:
        entered = time.monotonic()
        url = f"{pool.endpoint}/executions?api-version=%(api)s&identifier=startup"
        headers = {"Authorization": f"Bearer {pool.api_key}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=%(body)r, headers=headers) as resp:
                body = await resp.json()
        done = time.monotonic()
        print(json.dumps({"entered": entered, "done": done, "status": resp.status,
                          "stdout": body.get("result", {}).get("stdout")}), flush=True)

asyncio.run(main())
"""

_FLOOR_SCRIPT = "import numpy, pandas, matplotlib.pyplot"


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("aca-sessions")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "autogen_aca_sessions.cli"]


async def _pool_sample() -> tuple[float, float]:
    """(launch -> ``async with`` returned, launch -> first result) in seconds."""
    script = _POOL_SCRIPT % {"api": API, "body": BODY}
    start = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await asyncio.wait_for(process.communicate(), 300)
    if process.returncode != 0 or not out:
        raise RuntimeError(f"the pool script failed (exit {process.returncode})")
    info = json.loads(out.decode().strip().splitlines()[-1])
    if info["status"] != 200 or info["stdout"] != "1\n":
        raise RuntimeError(f"unexpected first result {info}")
    return info["entered"] - start, info["done"] - start


async def _serve_sample(http: Any) -> tuple[float, float | None, float]:
    """(launch -> banner, launch -> ``ready`` line or None, launch -> first result) in seconds."""
    start = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *_cli(), "serve", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert process.stdout is not None
    stdout = process.stdout
    try:
        endpoint = key = ""
        while not (endpoint and key):
            line = (await asyncio.wait_for(stdout.readline(), 300)).decode()
            if not line:
                raise RuntimeError("aca-sessions serve ended before its banner")
            name, _, value = line.strip().partition(":")
            if name == "Endpoint":
                endpoint = value.strip()
            elif name == "API key":
                key = value.strip()
        banner = time.monotonic() - start
        ready_at: list[float] = []

        async def watch_ready() -> None:
            while line := await stdout.readline():
                if line.decode().startswith("aca-sessions: ready"):
                    ready_at.append(time.monotonic() - start)

        watcher = asyncio.ensure_future(watch_ready())
        url = f"{endpoint}/executions?api-version={API}&identifier=startup"
        async with http.post(url, json=BODY, headers={"Authorization": f"Bearer {key}"}) as resp:
            body = await resp.json()
        done = time.monotonic() - start
        if resp.status != 200 or body.get("result", {}).get("stdout") != "1\n":
            raise RuntimeError(f"unexpected first result {resp.status} {body}")
        # The ready line, when the CLI prints one, comes before or with the first result.
        await asyncio.sleep(0)
        watcher.cancel()
        return banner, (ready_at[0] if ready_at else None), done
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 120)


async def _floor_sample() -> float:
    start = time.monotonic()
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", _FLOOR_SCRIPT)
    if await process.wait() != 0:
        raise RuntimeError("importing the data stack failed")
    return time.monotonic() - start


async def run(cfg: Config) -> list[Row]:
    import aiohttp

    reason = pool_available()
    if reason:
        return [Row(benchmark=NAME, figure="skipped", note=reason)]
    n = cfg.n(default=7, quick=2)
    entered: list[float] = []
    first: list[float] = []
    banner: list[float] = []
    ready: list[float] = []
    served: list[float] = []
    floor: list[float] = []
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            # Round-robin in a rotating order: load drifting over the run hits every figure alike.
            steps = ["pool", "serve", "floor"]
            steps = steps[i % 3 :] + steps[: i % 3]
            for step in steps:
                if step == "pool":
                    a, b = await _pool_sample()
                    entered.append(a)
                    first.append(b)
                elif step == "serve":
                    c, r, d = await _serve_sample(http)
                    banner.append(c)
                    if r is not None:
                        ready.append(r)
                    served.append(d)
                else:
                    floor.append(await _floor_sample())
            log(cfg, f"startup {i + 1}/{n}: pool first result {first[-1]:.2f} s, serve {served[-1]:.2f} s")
    floor_p50 = summarise(floor)[0]
    target = f"p50 <= {TARGET_S * 1000:.0f} ms"
    base = "python importing numpy, pandas, matplotlib.pyplot (p50)"

    def row(figure: str, values: list[float], **extra: Any) -> Row:
        p50 = summarise(values)[0]
        figures = {"baseline": base, "baseline_value": floor_p50, "ratio": ratio(p50, floor_p50)}
        return dist_row(NAME, figure, values, **figures, **extra)

    rows = [
        row("LocalSessionPool: launch -> async with returns", entered),
        row(
            "LocalSessionPool: launch -> first block result",
            first,
            target=target,
            met=summarise(first)[0] <= TARGET_S * 1000,
        ),
        row("aca-sessions serve: launch -> banner", banner),
    ]
    if ready:
        rows.append(row("aca-sessions serve: launch -> ready line", ready))
    rows += [
        row(
            "aca-sessions serve: launch -> first block result",
            served,
            target=target,
            met=summarise(served)[0] <= TARGET_S * 1000,
        ),
        dist_row(NAME, "baseline: data-stack import in a bare interpreter", floor),
    ]
    return rows


if __name__ == "__main__":  # pragma: no cover - manual run
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for r in asyncio.run(run(Config(quick="--quick" in sys.argv))):
        print(r)

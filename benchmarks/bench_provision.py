"""Provisioning: a pool made through the management plane, from PUT to its first result.

Measured against one ``LocalSessionsServer`` over real HTTP (what curl, the az CLI and
azure-mgmt-appcontainers wait for, minus the ``Retry-After`` they sleep):

- PUT -> the operation status reports ``Succeeded`` (status polled every 10 ms);
- PUT -> the first ``shellCommand`` result in the new (Shell) pool: what a per-tenant or
  per-test-run pool costs before it is useful;
- DELETE -> the ``Location`` answers 204;
- the server's resident memory per idle Shell pool (N pools at once);

and, as the baseline, a standalone ``LocalSessionPool`` (Shell) from ``start()`` to its first
result: what a process per pool would cost instead.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

from harness import Config, Row, dist_row, log, pool_available, ratio, summarise

NAME = "provision"
DESCRIPTION = (
    "ARM create -> Succeeded -> first result, delete, memory per idle pool; baseline: standalone pool"
)
SUB = "00000000-0000-0000-0000-000000000000"
API = "2025-10-02-preview"


async def _wait_status(http: Any, url: str) -> None:
    while True:
        async with http.get(url) as resp:
            body = await resp.json()
        if body["status"] != "InProgress":
            if body["status"] != "Succeeded":
                raise RuntimeError(f"operation ended {body}")
            return
        await asyncio.sleep(0.01)


async def _wait_gone(http: Any, url: str) -> None:
    while True:
        async with http.get(url) as resp:
            await resp.read()
            if resp.status != 202:
                if resp.status != 204:
                    raise RuntimeError(f"delete ended with {resp.status}")
                return
        await asyncio.sleep(0.01)


async def _first_result(http: Any, endpoint: str) -> None:
    url = f"{endpoint}/executions?api-version={API}&identifier={uuid.uuid4()}"
    async with http.post(url, json={"shellCommand": "echo ready", "timeoutInSeconds": 30}) as resp:
        body = await resp.json()
    if resp.status != 200 or body["result"]["stdout"] != "ready\n":
        raise RuntimeError(f"first call failed: {resp.status} {body}")


def _rss_mib() -> float:
    import psutil

    return float(psutil.Process(os.getpid()).memory_info().rss) / (1024 * 1024)


async def run(cfg: Config) -> list[Row]:
    problem = pool_available()
    if problem is not None:
        return [Row(benchmark=NAME, figure="skipped", note=problem)]
    import aiohttp

    from autogen_aca_sessions import LocalSessionPool, LocalSessionsServer

    samples = cfg.n(20, 3)
    idle_pools = cfg.n(20, 3)
    succeeded: list[float] = []
    first: list[float] = []
    deleted: list[float] = []
    body = {
        "location": "local",
        "properties": {"containerType": "Shell", "scaleConfiguration": {"maxConcurrentSessions": 5}},
    }
    async with LocalSessionsServer() as server:
        base = (
            f"{server.base_url}/subscriptions/{SUB}/resourceGroups/bench/providers/Microsoft.App/sessionPools"
        )
        headers = {"Authorization": f"Bearer {server.api_key}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            log(cfg, f"{NAME}: {samples} create / first result / delete cycles")
            for i in range(samples):
                url = f"{base}/bench{i}?api-version={API}"
                start = time.perf_counter()
                async with http.put(url, json=body) as resp:
                    created = await resp.json()
                    operation = resp.headers["Azure-AsyncOperation"]
                await _wait_status(http, operation)
                succeeded.append(time.perf_counter() - start)
                await _first_result(http, created["properties"]["poolManagementEndpoint"])
                first.append(time.perf_counter() - start)
                start = time.perf_counter()
                async with http.delete(url) as resp:
                    location = resp.headers["Location"]
                await _wait_gone(http, location)
                deleted.append(time.perf_counter() - start)
            log(cfg, f"{NAME}: memory of {idle_pools} idle Shell pools")
            before = _rss_mib()
            for i in range(idle_pools):
                async with http.put(f"{base}/idle{i}?api-version={API}", json=body) as resp:
                    operation = resp.headers["Azure-AsyncOperation"]
                await _wait_status(http, operation)
            await asyncio.sleep(0.5)
            per_pool = (_rss_mib() - before) / idle_pools

    baseline: list[float] = []
    log(cfg, f"{NAME}: baseline, {samples} standalone LocalSessionPool starts")
    for _ in range(samples):
        start = time.perf_counter()
        async with LocalSessionPool(pool_type="Shell", ready_sessions=0) as pool:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {pool.api_key}"}) as http:
                await _first_result(http, pool.endpoint)
            baseline.append(time.perf_counter() - start)
    base_p50 = summarise(baseline)[0]
    first_p50 = summarise(first)[0]
    return [
        dist_row(NAME, "ARM PUT -> operation Succeeded (Shell pool)", succeeded),
        dist_row(
            NAME,
            "ARM PUT -> first shellCommand result in the new pool",
            first,
            baseline="standalone LocalSessionPool: start() -> first result",
            baseline_value=base_p50,
            ratio=ratio(first_p50, base_p50),
        ),
        dist_row(NAME, "ARM DELETE -> Location answers 204", deleted),
        Row(
            benchmark=NAME,
            figure="server RSS per idle Shell pool",
            value=per_pool,
            unit="MiB",
            samples=idle_pools,
            note="in-process RSS growth over N pools / N (no kernels: Shell pools)",
        ),
    ]

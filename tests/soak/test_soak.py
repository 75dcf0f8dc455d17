"""Soak: many concurrent clients, mixed operations, for a while; nothing lost, nothing leaking.

Each worker owns a session and keeps, on both sides, a running total of the numbers it sent:
every execution must return exactly the value derived from its input (``n * 3 + worker``) and
the session's total must match the client's, so a lost, repeated or misrouted execution fails
the test. Files are uploaded, listed, downloaded byte for byte and deleted; sessions are deleted
and come back fresh. The server's RSS and open descriptors are measured after a warm-up and at
the end, both times with every worker paused and its session alive.

``SOAK_SECONDS`` sets the duration (default 20 s here; the ``slow`` variant, run by
``nox -s soak``, defaults to 600 s), ``SOAK_CLIENTS`` the number of workers.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.security._support import RawPool, note, record, start_pool_process, stop_pool_process

RSS_GROWTH_LIMIT = 48 * 2**20
"""Allowed growth of the server's RSS between warm-up and end: allocator noise, the bounded
execution history and aiohttp's buffers fit in it; a per-request leak over thousands of
requests does not."""
FD_GROWTH_LIMIT = 8
"""Allowed growth of the server's open descriptors (a kernel more or less in the ready pool)."""


@dataclass
class Tally:
    """What the workers did and what went wrong."""

    ops: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)


class Worker:
    def __init__(self, index: int, raw: RawPool, tally: Tally, seed: int) -> None:
        self.index = index
        self.raw = raw
        self.tally = tally
        self.rng = random.Random(seed)
        self.identifier = f"soak-{index}"
        self.total = 0
        self.files = 0

    async def ensure_session(self) -> None:
        data = await self.raw.execute(self.identifier, "total = globals().get('total', 0)\ntotal")
        self._expect(data, self.total, "ensure")

    def _expect(self, data: dict[str, object], value: object, what: str) -> None:
        result = data.get("result")
        got = result.get("executionResult") if isinstance(result, dict) else None
        if data.get("_status") != 200 or data.get("status") != "Succeeded" or got != value:
            self.tally.wrong.append(f"worker {self.index} {what}: expected {value!r}, got {data!r:.300}")

    async def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.65:
            n = self.rng.randrange(1, 10_000)
            data = await self.raw.execute(
                self.identifier, f"total = globals().get('total', 0) + {n}\n[{n} * 3 + {self.index}, total]"
            )
            self.total += n
            self._expect(data, [n * 3 + self.index, self.total], "execute")
            self.tally.ops["execute"] += 1
        elif roll < 0.85:
            payload = self.rng.randbytes(self.rng.randrange(1, 256 * 1024))
            name = f"w{self.index}-{self.files}.bin"
            self.files += 1
            status = await self.raw.upload(self.identifier, name, payload)
            if status != 200:
                self.tally.wrong.append(f"worker {self.index} upload {name}: {status}")
            async with self.raw.http.get(
                self.raw.url("files", identifier=self.identifier), headers=self.raw.auth
            ) as resp:
                listing = await resp.json()
            if name not in {item["name"] for item in listing.get("value", [])}:
                self.tally.wrong.append(f"worker {self.index} list: {name} missing")
            status, body = await self.raw.download(self.identifier, name)
            if status != 200 or body != payload:
                self.tally.wrong.append(f"worker {self.index} download {name}: {status}, {len(body)} bytes")
            async with self.raw.http.delete(
                self.raw.url(f"files/{name}", identifier=self.identifier), headers=self.raw.auth
            ) as resp:
                if resp.status != 204:
                    self.tally.wrong.append(f"worker {self.index} delete file: {resp.status}")
            self.tally.ops["file round trip"] += 1
        elif roll < 0.95:
            async with self.raw.http.get(self.raw.url("listSessions"), headers=self.raw.auth) as resp:
                data = await resp.json()
            if resp.status != 200 or "sessions" not in data:
                self.tally.wrong.append(f"worker {self.index} listSessions: {resp.status}")
            self.tally.ops["list sessions"] += 1
        else:
            status = await self.raw.delete_session(self.identifier)
            if status not in (204, 404):
                self.tally.wrong.append(f"worker {self.index} delete session: {status}")
            self.total = 0  # the next call gets a fresh session
            self.tally.ops["delete session"] += 1


def _measure(pid: int) -> tuple[int, int]:
    proc = psutil.Process(pid)
    return proc.memory_info().rss, proc.num_fds()


async def _soak(tmp_path: Path, seconds: float, clients: int) -> None:
    pool = start_pool_process(
        tmp_path,
        sandbox="auto",
        ready_sessions=2,
        max_concurrent_sessions=clients + 4,
        max_execution_seconds=30,
    )
    tally = Tally()
    try:
        connector = aiohttp.TCPConnector(limit=clients * 2)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120)
        ) as http:
            raw = RawPool(pool.endpoint, pool.api_key, http)
            workers = [Worker(i, raw, tally, seed=1000 + i) for i in range(clients)]
            warmup = max(5.0, seconds / 4)

            async def run_for(duration: float) -> None:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + duration

                async def drive(worker: Worker) -> None:
                    while loop.time() < deadline:
                        await worker.step()

                await asyncio.gather(*(drive(w) for w in workers))
                await asyncio.gather(*(w.ensure_session() for w in workers))

            await run_for(warmup)
            await asyncio.sleep(1.0)  # let the ready pool refill before measuring
            rss_warm, fds_warm = _measure(pool.pid)
            await run_for(seconds - warmup)
            await asyncio.sleep(1.0)
            rss_end, fds_end = _measure(pool.pid)
    finally:
        leftovers = stop_pool_process(pool)
    total_ops = sum(tally.ops.values())
    record("soak operations", total_ops)
    for name, count in tally.ops.items():
        record(f"soak operations: {name}", count)
    record("soak lost or wrong results", len(tally.wrong))
    note(
        f"soak {seconds:g}s x {clients} clients: server RSS MiB warm -> end",
        f"{rss_warm / 2**20:.1f} -> {rss_end / 2**20:.1f}",
    )
    note(f"soak {seconds:g}s x {clients} clients: server fds warm -> end", f"{fds_warm} -> {fds_end}")
    # The server's own log says why, when it answered something wrong (a 500 logs a traceback).
    assert tally.wrong == [], "\n".join([*tally.wrong[:20], "--- server log:", *pool.stderr_lines[-60:]])
    assert tally.ops["execute"] > clients, tally.ops
    assert rss_end - rss_warm < RSS_GROWTH_LIMIT, (rss_warm, rss_end)
    assert fds_end - fds_warm <= FD_GROWTH_LIMIT, (fds_warm, fds_end)
    assert leftovers.processes == [], leftovers.processes
    assert leftovers.tmp_entries == [], leftovers.tmp_entries


async def test_short_soak_loses_nothing_and_does_not_grow(tmp_path: Path) -> None:
    seconds = float(os.environ.get("SOAK_SECONDS", "20"))
    clients = int(os.environ.get("SOAK_CLIENTS", "6"))
    await _soak(tmp_path, seconds, clients)


@pytest.mark.slow
@pytest.mark.timeout(7200)
async def test_long_soak_loses_nothing_and_does_not_grow(tmp_path: Path) -> None:
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    clients = int(os.environ.get("SOAK_CLIENTS", "12"))
    await _soak(tmp_path, seconds, clients)

"""N sessions held at once by one pool with default settings, each with the data stack imported.

The pool serves from its own process (``harness.PoolProcess``) so that its RSS and descriptors are
its own. Sessions are created the way an application would: ``POST /executions`` on new
identifiers, 8 at a time, each importing NumPy, pandas and matplotlib. A bystander session makes
a warm call every 200 ms all along, and keeps going once all N are held. Afterwards a few more
new identifiers are tried: past the configured maximum the documented answer is 404. Reported:
USS and PSS per session (summed over the server's process tree), the server's RSS, descriptors
and threads, the time to create the N sessions, the bystander's latency, and every 5xx.

Settings: the defaults, except ``max_concurrent_sessions`` (N + 1, the bystander included) and
``cooldown_period_seconds`` (an hour, so that nothing expires while the run lasts).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import Counter
from typing import Any

from harness import MIB, STACK_IMPORT, Config, PoolProcess, Row, dist_row, log, pool_available

NAME = "density"
DESCRIPTION = "N sessions (default 600) with the data stack, held at once with default settings"
API_VERSION = "2025-10-02-preview"
CREATE_CONCURRENCY = 8
BYSTANDER_EVERY_S = 0.2
HELD_PHASE_CALLS = 50
PAST_MAXIMUM_TRIES = 8
TARGET_USS_MIB = 15.0
TARGET_BYSTANDER_P99_MS = 100.0


class Client:
    """Raw HTTP calls (no retries, so that every 5xx is seen) with their statuses counted."""

    def __init__(self, http: Any, endpoint: str) -> None:
        self.http = http
        self.url = f"{endpoint}/executions"
        self.statuses: Counter[int] = Counter()

    async def execute(self, identifier: str, code: str) -> tuple[float, int, Any]:
        body = {
            "codeInputType": "Inline",
            "executionType": "Synchronous",
            "code": code,
            "timeoutInSeconds": 220,
        }
        params = {"api-version": API_VERSION, "identifier": identifier}
        started = time.perf_counter()
        async with self.http.post(self.url, params=params, json=body) as response:
            payload = await response.json(content_type=None)
            status = response.status
        self.statuses[status] += 1
        return time.perf_counter() - started, status, payload


def _server_figures(pid: int) -> dict[str, float]:
    """The server's own RSS, descriptors and threads, and USS/PSS over its process tree."""
    import psutil

    server = psutil.Process(pid)
    figures: dict[str, float] = {
        "server_rss": server.memory_info().rss / MIB,
        "server_fds": server.num_fds(),
        "server_threads": server.num_threads(),
    }
    uss = pss = template_uss = 0.0
    processes = 0
    for proc in server.children(recursive=True):
        try:
            info = proc.memory_full_info()
            # The template is the server's own child; the kernels forked from it share its
            # command line but are its children.
            is_template = proc.ppid() == pid and any("_kernel_template" in part for part in proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        processes += 1
        uss += info.uss / MIB
        pss += info.pss / MIB
        if is_template:
            template_uss += info.uss / MIB
    server_info = server.memory_full_info()
    figures.update(
        kernels_uss=uss,
        kernels_pss=pss,
        template_uss=template_uss,
        processes=processes,
        server_uss=server_info.uss / MIB,
        server_pss=server_info.pss / MIB,
    )
    return figures


async def run(cfg: Config) -> list[Row]:
    why = pool_available()
    if why is not None:
        return [Row(benchmark=NAME, figure="all figures", note=f"skipped: {why}")]
    import aiohttp

    n = cfg.density_sessions
    latencies: dict[str, list[float]] = {"creating": [], "held": []}
    create_times: list[float] = []
    failures: list[str] = []
    phase = "creating"
    async with PoolProcess(max_concurrent_sessions=n + 1, cooldown_period_seconds=3600) as pool:
        connector = aiohttp.TCPConnector(limit=CREATE_CONCURRENCY + 2)
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {pool.api_key}"}, connector=connector, timeout=timeout
        ) as http:
            client = Client(http, pool.endpoint)
            _, status, _ = await client.execute("bystander", "x = 1\nx")
            if status != 200:
                raise RuntimeError(f"the bystander session could not be created: {status}")
            before = await asyncio.to_thread(_server_figures, pool.pid)
            stop = asyncio.Event()

            async def bystander() -> None:
                while not stop.is_set():
                    seconds, status, _ = await client.execute("bystander", "x")
                    if status == 200:
                        latencies[phase].append(seconds)
                    else:
                        failures.append(f"bystander {status}")
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), BYSTANDER_EVERY_S)

            watcher = asyncio.ensure_future(bystander())
            gate = asyncio.Semaphore(CREATE_CONCURRENCY)
            done = 0

            async def create(i: int) -> None:
                nonlocal done
                async with gate:
                    seconds, status, payload = await client.execute(f"dense-{i}", STACK_IMPORT + "\n'ok'")
                if status == 200 and payload.get("status") == "Succeeded":
                    create_times.append(seconds)
                else:
                    failures.append(f"dense-{i}: {status} {str(payload)[:200]}")
                done += 1
                if done % 50 == 0:
                    log(cfg, f"density: {done}/{n} sessions created")

            started = time.perf_counter()
            await asyncio.gather(*(create(i) for i in range(n)))
            create_wall = time.perf_counter() - started
            phase = "held"
            # The bystander goes on with all N held; then the loop ends.
            await asyncio.sleep(BYSTANDER_EVERY_S * (10 if cfg.quick else HELD_PHASE_CALLS))
            stop.set()
            await watcher
            past: Counter[int] = Counter()
            for i in range(PAST_MAXIMUM_TRIES):
                _, status, _ = await client.execute(f"past-{i}", "1")
                past[status] += 1
            log(cfg, "density: measuring the server's process tree")
            after = await asyncio.to_thread(_server_figures, pool.pid)
            statuses = dict(client.statuses)

    held = len(create_times)
    sessions = held + 1  # the bystander too
    five_xx = sum(count for status, count in statuses.items() if status >= 500)
    uss_per = (after["kernels_uss"] - after["template_uss"]) / sessions
    pss_per = after["kernels_pss"] / sessions
    load = "load average {:.1f}".format(__import__("os").getloadavg()[0])
    rows = [
        Row(
            benchmark=NAME,
            figure=f"sessions held at once (data stack in each), default settings [{load}]",
            value=held,
            unit="sessions",
            note=f"{n} asked; statuses {statuses}; first failures: {failures[:3]}"
            if failures
            else f"{n} asked",
            target=f"{n}, zero 5xx",
            met=held == n and five_xx == 0,
        ),
        Row(
            benchmark=NAME,
            figure="5xx answers during the whole run",
            value=five_xx,
            unit="",
            target="0",
            met=five_xx == 0,
        ),
        Row(
            benchmark=NAME,
            figure=f"new identifiers past the maximum ({n + 1}): answered 404",
            value=past.get(404, 0),
            unit=f"of {PAST_MAXIMUM_TRIES}",
            note=f"statuses {dict(past)}",
            target="all 404",
            met=past.get(404, 0) == PAST_MAXIMUM_TRIES,
        ),
        Row(
            benchmark=NAME,
            figure="USS per session (kernels' process trees, the template's own memory excluded)",
            value=uss_per,
            unit="MiB",
            samples=sessions,
            note=f"template {after['template_uss']:.0f} MiB USS once; {after['processes']:.0f} processes",
            target=f"<= {TARGET_USS_MIB:g} MiB",
            met=uss_per <= TARGET_USS_MIB,
        ),
        Row(
            benchmark=NAME,
            figure="PSS per session (everything under the server)",
            value=pss_per,
            unit="MiB",
            samples=sessions,
        ),
        Row(
            benchmark=NAME,
            figure="server process: RSS",
            value=after["server_rss"],
            unit="MiB",
            note=f"{before['server_rss']:.0f} MiB with 1 session; USS {after['server_uss']:.0f} MiB",
        ),
        Row(
            benchmark=NAME,
            figure="server process: open file descriptors",
            value=after["server_fds"],
            unit="fds",
            note=f"{before['server_fds']:.0f} with 1 session; "
            f"{(after['server_fds'] - before['server_fds']) / max(1, held):.1f} per session; "
            f"threads {after['server_threads']:.0f} ({before['server_threads']:.0f} with 1)",
        ),
        Row(
            benchmark=NAME,
            figure=f"time to create {held} sessions, {CREATE_CONCURRENCY} at a time",
            value=create_wall,
            unit="s",
            note=f"{create_wall / max(1, held) * 1000:.0f} ms per session",
        ),
    ]
    if create_times:
        rows.append(
            dist_row(NAME, "one session's creation (POST /executions with the stack import)", create_times)
        )
    for which in ("creating", "held"):
        values = latencies[which]
        if not values:
            continue
        p99 = sorted(values)[max(0, -(-99 * len(values) // 100) - 1)] * 1000
        rows.append(
            dist_row(
                NAME,
                "bystander's warm call while sessions are "
                + ("being created" if which == "creating" else "held"),
                values,
                target=f"p99 <= {TARGET_BYSTANDER_P99_MS:g} ms" if which == "held" else None,
                met=p99 <= TARGET_BYSTANDER_P99_MS if which == "held" else None,
            )
        )
    median_create = statistics.median(create_times or [0])
    log(
        cfg,
        f"density: {held}/{n} held, 5xx {five_xx}, USS {uss_per:.1f} MiB, created in {median_create:.2f} s",
    )
    return rows

"""Our executor and autogen-ext's over TLS through a link with a real round trip.

The local pool serves TLS; a delaying TCP proxy (``harness.DelayProxy``, plain asyncio) puts a
round trip (20 ms by default, ``--rtt-ms``) between the executors and the pool, and a TCP
handshake's round trip on every new connection. Each executor runs the same blocks through the
proxy and straight to the pool (TLS on loopback), interleaved block by block, so the network's
share of a block is its time through the proxy minus its time on loopback; divided by the
round trip it is the round trips the block costs. The pool counts the requests and the proxy
the connections each block needed. The workload figure is the upstream benchmark's (a fresh
executor, B blocks, 5 x 64 KiB files up and down), both executors through the proxy.
"""

from __future__ import annotations

import statistics
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench_upstream import FILES, Contestant
from harness import (
    Config,
    DelayProxy,
    RequestCounter,
    Row,
    dist_row,
    log,
    open_pool,
    pool_available,
    pool_credential,
    ratio,
    speedup_rows,
    trust_certificate_by_default,
    wait_ready,
)

NAME = "wan"
DESCRIPTION = "over TLS with a round trip: round trips per block, ours vs autogen-ext's executor"
TARGET_ROUND_TRIPS = 1.1
TARGET_SPEEDUP = 3.0


def _with_port(endpoint: str, port: int) -> str:
    parts = urlsplit(endpoint)
    return urlunsplit((parts.scheme, f"{parts.hostname}:{port}", parts.path, parts.query, parts.fragment))


class Measured(Contestant):
    """A contestant that also records the requests and connections each of its blocks needed."""

    def __init__(self, name: str, executor: Any, counter: RequestCounter, proxy: DelayProxy | None) -> None:
        super().__init__(name, executor)
        self.counter = counter
        self.proxy = proxy
        self.first_requests: list[int] = []
        self.first_connections: list[int] = []
        self.requests: list[int] = []
        self.connections: list[int] = []
        self.after_restart: list[float] = []
        self.restart_requests: list[int] = []

    async def restarted_block(self, i: int) -> None:
        """``restart()`` (a new session next), then the new session's first block on the same client."""
        await self.executor.restart()
        requests = self.counter.total
        self.after_restart.append(await self.block(i))
        self.restart_requests.append(self.counter.total - requests)

    async def step(self, i: int) -> None:
        requests = self.counter.total
        connections = self.proxy.connections if self.proxy is not None else 0
        seconds = await self.block(i)
        if self.proxy is not None:
            await self.proxy.settle()
        used_requests = self.counter.total - requests
        used_connections = (self.proxy.connections if self.proxy is not None else 0) - connections
        if i == 0:
            self.first_block = seconds
            self.first_requests.append(used_requests)
            self.first_connections.append(used_connections)
        else:
            self.blocks.append(seconds)
            self.requests.append(used_requests)
            self.connections.append(used_connections)


async def _calibrate(wan: str, lo: str, credential: Any, into: dict[str, list[float]], samples: int) -> None:
    """One request per sample through the link and on loopback, interleaved, connections kept."""
    from autogen_aca_sessions.client import SessionsClient

    async with SessionsClient(wan, credential) as through, SessionsClient(lo, credential) as local:
        await through.get_metadata()
        await local.get_metadata()
        for _ in range(samples):
            for key, client in (("wan", through), ("lo", local)):
                started = time.perf_counter()
                await client.get_metadata()
                into[key].append(time.perf_counter() - started)


def _rotated(items: list[Measured], shift: int) -> list[Measured]:
    shift %= len(items)
    return items[shift:] + items[:shift]


async def run(cfg: Config) -> list[Row]:
    why = pool_available()
    if why is not None:
        return [Row(benchmark=NAME, figure="all figures", note=f"skipped: {why}")]
    from autogen_ext.code_executors.azure import ACADynamicSessionsCodeExecutor as UpstreamExecutor

    from autogen_aca_sessions import ACADynamicSessionsCodeExecutor

    rtt = cfg.rtt_ms
    blocks = 5 if cfg.quick else cfg.wan_blocks
    rounds = 1 if cfg.quick else 3
    names = ["ours_wan", "ours_lo", "upstream_wan", "upstream_lo"]
    first: dict[str, list[float]] = {n: [] for n in names}
    bare: dict[str, list[float]] = {"wan": [], "lo": []}
    restarted: dict[str, list[float]] = {n: [] for n in names}
    warm: dict[str, list[float]] = {n: [] for n in names}
    totals: dict[str, list[float]] = {n: [] for n in names}
    files: dict[str, list[float]] = {n: [] for n in names}
    counts: dict[str, Measured] = {}
    counter = RequestCounter()
    ready = len(names)
    async with open_pool(
        tls=True,
        ready_sessions=ready,
        max_concurrent_sessions=ready * rounds + 4,
        middlewares=[counter.middleware()],
    ) as pool:
        assert pool.tls_cert_path is not None
        trust_certificate_by_default(pool.tls_cert_path)
        credential = pool_credential(pool)
        async with DelayProxy(pool.port, rtt) as proxy:
            wan = _with_port(pool.endpoint, proxy.port)
            for r in range(rounds):
                runners = [
                    Measured(
                        "ours_wan",
                        ACADynamicSessionsCodeExecutor(wan, credential, timeout=60),
                        counter,
                        proxy,
                    ),
                    Measured(
                        "ours_lo",
                        ACADynamicSessionsCodeExecutor(pool.endpoint, credential, timeout=60),
                        counter,
                        None,
                    ),
                    Measured("upstream_wan", UpstreamExecutor(wan, credential, timeout=60), counter, proxy),
                    Measured(
                        "upstream_lo", UpstreamExecutor(pool.endpoint, credential, timeout=60), counter, None
                    ),
                ]
                for runner in runners:
                    await runner.executor.start()
                try:
                    for runner in _rotated(runners, r):
                        await wait_ready(pool, ready)
                        await runner.step(0)
                    await wait_ready(pool, ready)
                    for i in range(1, blocks):
                        for runner in _rotated(runners, i + r):
                            await runner.step(i)
                    for runner in _rotated(runners, r):
                        await runner.file_phase(FILES)
                    for runner in _rotated(runners, r):
                        await wait_ready(pool, ready)
                        await runner.restarted_block(blocks)
                    await _calibrate(wan, pool.endpoint, credential, bare, 5 if cfg.quick else 30)
                finally:
                    for runner in runners:
                        await runner.executor.stop()
                for runner in runners:
                    first[runner.name].append(runner.first_block)
                    restarted[runner.name].extend(runner.after_restart)
                    warm[runner.name].extend(runner.blocks)
                    totals[runner.name].append(runner.total)
                    files[runner.name].append(runner.files)
                    if runner.name in counts:
                        counts[runner.name].first_requests += runner.first_requests
                        counts[runner.name].first_connections += runner.first_connections
                        counts[runner.name].requests += runner.requests
                        counts[runner.name].connections += runner.connections
                        counts[runner.name].restart_requests += runner.restart_requests
                    else:
                        counts[runner.name] = runner
                log(
                    cfg,
                    f"wan round {r + 1}/{rounds}: " + ", ".join(f"{x.name} {x.total:.2f} s" for x in runners),
                )

    def med(values: list[float]) -> float:
        return statistics.median(values) * 1000

    rows: list[Row] = []
    round_trips: dict[str, dict[str, float]] = {}
    for who in ("ours", "upstream"):
        c = counts[f"{who}_wan"]
        label = "our executor" if who == "ours" else "autogen-ext executor"
        ours = who == "ours"
        trips: dict[str, float] = {}
        for key, series, what, requests in (
            (
                "restart",
                restarted,
                "new session's first block after restart() (set-up included, connection kept)",
                f"{statistics.median(c.restart_requests):g} requests",
            ),
            (
                "first",
                first,
                "fresh executor's first block (set-up and the connection's TCP + TLS handshakes included)",
                f"{statistics.median(c.first_requests):g} requests, "
                f"{statistics.median(c.first_connections):g} new connections",
            ),
            (
                "warm",
                warm,
                "warm block",
                f"{statistics.median(c.requests):g} requests, "
                f"{statistics.median(c.connections):g} new connections per block",
            ),
        ):
            wan_ms, lo_ms = med(series[f"{who}_wan"]), med(series[f"{who}_lo"])
            trips[key] = (wan_ms - lo_ms) / rtt
            # The warm block's target is held to its figure net of the link's excess (below).
            held_to = ours and key == "restart"
            rows += [
                dist_row(NAME, f"{label}: {what}, through the {rtt:g} ms link", series[f"{who}_wan"]),
                dist_row(NAME, f"{label}: {what}, TLS on loopback", series[f"{who}_lo"]),
                Row(
                    benchmark=NAME,
                    figure=f"{label}: round trips the link adds to a {what}",
                    value=trips[key],
                    unit="RTT",
                    samples=len(series[f"{who}_wan"]),
                    note=requests,
                    target=f"<= {TARGET_ROUND_TRIPS:g} round trips" if held_to else None,
                    met=trips[key] <= TARGET_ROUND_TRIPS if held_to else None,
                ),
            ]
        round_trips[who] = trips
    link_trips = (med(bare["wan"]) - med(bare["lo"])) / rtt
    rows.append(
        Row(
            benchmark=NAME,
            figure="calibration: round trips the link adds to a bare GET /metadata (connection kept)",
            value=link_trips,
            unit="RTT",
            samples=len(bare["wan"]),
            note="exactly 1 on an ideal link; the excess is the proxy's own delay on this machine",
        )
    )
    # The link's own excess (its proxy's scheduling on this machine: link_trips - 1) is paid by
    # every exchange; the target counts the round trips a warm block needs, so it is read net
    # of that excess: warm - (link_trips - 1), which is 1 for a block that is one exchange.
    net_warm = round_trips["ours"]["warm"] - (link_trips - 1)
    rows.append(
        Row(
            benchmark=NAME,
            figure="our executor: warm block round trips net of the link's excess (warm - calibration + 1)",
            value=net_warm,
            unit="RTT",
            samples=len(warm["ours_wan"]),
            note=f"{statistics.median(counts['ours_wan'].requests):g} requests per block",
            target=f"<= {TARGET_ROUND_TRIPS:g} round trips",
            met=net_warm <= TARGET_ROUND_TRIPS,
        )
    )
    up, ours_total = statistics.median(totals["upstream_wan"]), statistics.median(totals["ours_wan"])
    rows += [
        Row(
            benchmark=NAME,
            figure="round trips per warm block, autogen-ext / ours",
            value=ratio(round_trips["upstream"]["warm"], round_trips["ours"]["warm"]),
            unit="x",
        ),
        *speedup_rows(
            NAME,
            theirs=(f"autogen-ext executor: {blocks} blocks + {FILES} files up/down through the link", up),
            ours=(f"our executor: {blocks} blocks + {FILES} files up/down through the link", ours_total),
            samples=rounds,
            target=TARGET_SPEEDUP,
        ),
        Row(
            benchmark=NAME,
            figure="file phase through the link, ours",
            value=med(files["ours_wan"]),
            samples=rounds,
            baseline="autogen-ext",
            baseline_value=med(files["upstream_wan"]),
            ratio=ratio(med(files["upstream_wan"]), med(files["ours_wan"])),
            ratio_note="autogen-ext / ours",
        ),
    ]
    return rows

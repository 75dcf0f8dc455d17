"""Shared pieces of the benchmark suite: statistics, result rows, raw Jupyter baselines, memory.

Every benchmark module exposes ``NAME``, ``DESCRIPTION`` and ``async def run(cfg) -> list[Row]``.
``run.py`` picks the modules, runs them one after the other and prints the rows.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
if str(SRC) not in sys.path:
    # `python benchmarks/run.py` from a checkout where the package is not installed.
    sys.path.insert(0, str(SRC))

MIB = 1024 * 1024
STACK_IMPORT = "import numpy, pandas, matplotlib\nimport matplotlib.pyplot as plt\nimport gc; gc.collect()"
"""What "the data stack imported" means in every memory figure. ``gc.collect()`` runs last so
the figure includes the pages a full collection dirties (what an idle kernel reaches anyway)."""

TRIVIAL_BLOCK = "print(1)"
"""The trivial block of the warm-execution figures: one statement and one stream message."""


@dataclass
class Config:
    """Sizes for one run; ``quick`` shrinks every one of them."""

    quick: bool = False
    """Smallest sizes that still exercise every code path (for the smoke test)."""
    samples: int | None = None
    """Override of the per-benchmark sample count (None: the benchmark's default)."""
    agents: list[int] = field(default_factory=lambda: [1, 10, 50, 100])
    """Concurrency levels N of the concurrency benchmark."""
    blocks_per_agent: int = 5
    """M: blocks each agent runs in the concurrency benchmark."""
    upstream_blocks: int = 200
    """Blocks of the upstream-comparison workload."""
    verbose: bool = True
    """Print progress lines to stderr."""
    profile: bool = False
    """Profile the warm-execution hot path with pyinstrument (if installed)."""

    def n(self, default: int, quick: int) -> int:
        """The sample count for a benchmark whose defaults are ``default`` / ``quick``."""
        if self.samples is not None:
            return max(1, self.samples)
        return quick if self.quick else default


@dataclass
class Row:
    """One figure of the results table."""

    benchmark: str
    """Which benchmark produced it (``new_session``, ``warm``, ...)."""
    figure: str
    """What was measured, in words."""
    p50: float | None = None
    """Median (milliseconds unless ``unit`` says otherwise)."""
    p99: float | None = None
    """99th percentile (nearest rank; with fewer than 100 samples it is the maximum)."""
    unit: str = "ms"
    """Unit of ``p50`` / ``p99`` / ``value``."""
    value: float | None = None
    """A single figure (throughput, memory, capacity) instead of a distribution."""
    samples: int = 0
    """How many measurements the figure summarises."""
    baseline: str | None = None
    """What the figure is compared with."""
    baseline_value: float | None = None
    """The baseline's median (or value), measured in the same run."""
    ratio: float | None = None
    """Figure / baseline (medians), or as ``ratio_note`` says."""
    ratio_note: str = ""
    """How the ratio reads when not figure / baseline (e.g. "upstream / ours")."""
    target: str | None = None
    """The target this figure is held to, in words."""
    met: bool | None = None
    """Whether the target is met; None when the figure has no target."""
    note: str = ""
    """Anything a reader needs to read the figure right (extrapolated, skipped, ...)."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


def log(cfg: Config, message: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    if cfg.verbose:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile by nearest rank (no interpolation: a p99 is a real sample)."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summarise(values_s: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds of durations given in seconds."""
    ms = [v * 1000.0 for v in values_s]
    return statistics.median(ms), percentile(ms, 99)


def dist_row(benchmark: str, figure: str, values_s: Sequence[float], **kwargs: Any) -> Row:
    """A distribution row from durations in seconds."""
    p50, p99 = summarise(values_s)
    return Row(benchmark=benchmark, figure=figure, p50=p50, p99=p99, samples=len(values_s), **kwargs)


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """Run ``fn()`` and return (seconds, its result)."""
    start = time.perf_counter()
    result = await fn()
    return time.perf_counter() - start, result


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` when both are known and ``b`` is not zero."""
    if a is None or b is None or b == 0:
        return None
    return a / b


# --------------------------------------------------------------------------- raw Jupyter baseline


class RawKernel:
    """A plain ipykernel started by ``jupyter_client``: the floor every figure is held to.

    No pool, no HTTP, no sandbox: ``AsyncKernelManager.start_kernel`` and an
    ``AsyncKernelClient`` talking ZeroMQ to it directly.
    """

    def __init__(self) -> None:
        from jupyter_client.manager import AsyncKernelManager

        self.manager = AsyncKernelManager(kernel_name="python3")
        self.client: Any = None

    async def start(self) -> None:
        """Start the kernel and wait until it answers ``kernel_info``."""
        await self.manager.start_kernel(stderr=open(os.devnull, "w"))  # noqa: SIM115, ASYNC230 - owned by the kernel process
        self.client = self.manager.client()
        self.client.start_channels()
        await self.client.wait_for_ready(timeout=120)

    @property
    def pid(self) -> int:
        """Process id of the kernel."""
        provisioner: Any = self.manager.provisioner
        return int(provisioner.process.pid)

    async def execute(self, code: str, timeout: float = 120.0) -> dict[str, Any]:
        """One execute round trip: send, wait for the kernel to go idle on IOPub, read the reply."""
        return await self.wait_for(self.send(code), timeout)

    def send(self, code: str) -> str:
        """Send an execute request without waiting; its message id."""
        msg_id: str = self.client.execute(code, store_history=False)
        return msg_id

    async def wait_for(self, msg_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the kernel went idle after request ``msg_id``; its reply's content."""
        client = self.client
        deadline = time.monotonic() + timeout
        while True:
            msg = await client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                break
        while True:
            reply = await client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return dict(reply["content"])

    async def interrupt(self) -> None:
        """Send the kernel SIGINT (its interrupt mode is ``signal``)."""
        await self.manager.interrupt_kernel()

    async def stop(self) -> None:
        """Stop the channels and kill the kernel."""
        if self.client is not None:
            self.client.stop_channels()
        await self.manager.shutdown_kernel(now=True)


async def raw_cold_start() -> tuple[float, RawKernel]:
    """Seconds from ``start_kernel`` to the answer of the first execute, and the kernel."""
    kernel = RawKernel()
    start = time.perf_counter()
    await kernel.start()
    await kernel.execute("1+1")
    return time.perf_counter() - start, kernel


# --------------------------------------------------------------------------- memory


@dataclass
class Memory:
    """Memory of one process tree, from ``psutil.Process.memory_full_info``."""

    uss: float
    """Unique set size, MiB: what killing the tree would give back."""
    pss: float
    """Proportional set size, MiB: private pages plus a share of every shared page."""
    rss: float
    """Resident set size, MiB (counts shared pages in full)."""
    processes: int
    """Processes in the tree."""

    @classmethod
    def combined(cls, parts: list[Memory]) -> Memory:
        """The memory of several process trees that together make one session."""
        return cls(
            uss=sum(p.uss for p in parts),
            pss=sum(p.pss for p in parts),
            rss=sum(p.rss for p in parts),
            processes=sum(p.processes for p in parts),
        )


def tree_memory(pid: int) -> Memory:
    """USS, PSS and RSS summed over ``pid`` and all its descendants."""
    import psutil

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    uss = pss = rss = 0
    counted = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        uss += info.uss
        pss += info.pss
        rss += info.rss
        counted += 1
    return Memory(uss=uss / MIB, pss=pss / MIB, rss=rss / MIB, processes=counted)


def total_memory_gib() -> float:
    """Physical memory of this machine, GiB."""
    import psutil

    return float(psutil.virtual_memory().total) / (1024**3)


def machine_description() -> dict[str, Any]:
    """CPU model, core count, memory, Python and key package versions."""
    import platform

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str] = {}
    from importlib import metadata

    for pkg in ("aiohttp", "jupyter_client", "ipykernel", "autogen-ext", "numpy", "pandas", "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "absent"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(total_memory_gib(), 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


# --------------------------------------------------------------------------- the local pool


class StaticToken:
    """A credential for both executors: ``get_token(scope).token`` and a plain callable."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """azure-core ``TokenCredential`` shape (what the upstream executor calls)."""
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def __call__(self) -> str:
        return self._token


def pool_credential(pool: Any) -> StaticToken:
    """A credential that authenticates to ``pool`` with its API key."""
    return StaticToken(str(pool.api_key))


def open_pool(**kwargs: Any) -> Any:
    """``LocalSessionPool(**kwargs)`` (an async context manager), imported lazily."""
    from autogen_aca_sessions import LocalSessionPool

    return LocalSessionPool(**kwargs)


def pool_available() -> str | None:
    """None when the local pool can be imported, else why not."""
    try:
        from autogen_aca_sessions import LocalSessionPool  # noqa: F401
    except Exception as exc:
        return f"LocalSessionPool not importable: {exc!r}"
    return None


async def wait_ready(pool: Any, count: int, limit_s: float = 180.0) -> None:
    """Until ``pool`` holds ``count`` ready kernels, then a moment for the last one to settle.

    Taking a ready kernel makes the pool boot a new one in the background; on two cores that
    boot competes with whatever is measured next, so benchmarks wait for the refill first.
    """
    deadline = time.monotonic() + limit_s
    manager = pool.manager
    while manager.ready_count < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the pool did not refill to {count} ready kernels in {limit_s:g} s")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)


def kernel_pids_of(parent_pid: int) -> set[int]:
    """Pids of every descendant of ``parent_pid`` (to find the kernels a pool started)."""
    import psutil

    try:
        return {p.pid for p in psutil.Process(parent_pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def top_level_new(before: Iterable[int], after: Iterable[int]) -> list[int]:
    """Pids in ``after`` but not ``before`` whose parent is not itself new (tree roots)."""
    import psutil

    new = set(after) - set(before)
    roots = []
    for pid in new:
        try:
            parent = psutil.Process(pid).ppid()
        except psutil.NoSuchProcess:
            continue
        if parent not in new:
            roots.append(pid)
    return sorted(roots)


async def gather_limited(limit: int, coros: Iterable[Awaitable[Any]]) -> list[Any]:
    """``asyncio.gather`` with at most ``limit`` awaitables in flight."""
    sem = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[Any]) -> Any:
        async with sem:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))

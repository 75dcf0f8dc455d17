"""Shared pieces of the benchmark suite: statistics, result rows, raw Jupyter baselines, memory.

Every benchmark module exposes ``NAME``, ``DESCRIPTION`` and ``async def run(cfg) -> list[Row]``.
``run.py`` picks the modules, runs them one after the other and prints the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    rtt_ms: float = 20.0
    """Round trip the WAN benchmark's delaying proxy adds."""
    wan_blocks: int = 100
    """Blocks per executor and round of the WAN benchmark."""
    density_sessions: int = 600
    """Sessions the density benchmark holds at once."""

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


def speedup_rows(
    benchmark: str,
    *,
    theirs: tuple[str, float],
    ours: tuple[str, float],
    samples: int,
    target: float,
) -> list[Row]:
    """Two value rows comparing whole workloads: ``(label, median seconds)`` of the other executor,
    then ours with the speed-up (theirs / ours) held to ``>= target``x."""
    their_label, their_s = theirs
    our_label, our_s = ours
    speedup = ratio(their_s, our_s)
    short = their_label.split(":", 1)[0].removesuffix(" executor")
    return [
        Row(
            benchmark=benchmark,
            figure=their_label,
            value=their_s * 1000,
            samples=samples,
            note="median total of rounds",
        ),
        Row(
            benchmark=benchmark,
            figure=our_label,
            value=our_s * 1000,
            samples=samples,
            baseline=f"{short} total",
            baseline_value=their_s * 1000,
            ratio=speedup,
            ratio_note=f"{short} / ours",
            target=f">= {target:g}x faster",
            met=speedup is not None and speedup >= target,
        ),
    ]


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


async def skip_plain_first_kernel(pool: Any) -> None:
    """Give the pool's first kernel to a throwaway session and delete it.

    With the default fork launcher a pool's first kernel is a plain interpreter started while
    the template starts (issue 21); warm-path and new-session figures are about the forked
    kernels every later session gets, as before that change.
    """
    manager = pool.manager
    session = await manager.get_or_create("bench-first-kernel")
    await session.execute("1", timeout=120, max_output_chars=100)
    await manager.delete("bench-first-kernel")


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


# --------------------------------------------------------------------------- a WAN-like link


class DelayProxy:
    """A TCP proxy on 127.0.0.1 that makes the link behind it look like a wide-area one.

    Every byte is held for half the round trip in each direction (in order, per connection),
    and a new connection's first bytes wait one more round trip, which is what a TCP handshake
    costs a client before it can send. Plain asyncio, no kernel modules, no ``tc netem``; it
    runs in a process of its own so that its timing does not wait on the benchmark's event
    loop (the pool and the clients). Bytes are forwarded as they come (TLS passes through
    untouched); ``connections`` counts the connections clients opened through it.
    """

    def __init__(self, target_port: int, rtt_ms: float) -> None:
        self.target_port = target_port
        self.rtt_ms = rtt_ms
        self.connections = 0
        """Connections accepted so far (as reported by the proxy process)."""
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DelayProxy:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "delay-proxy",
            str(self.target_port),
            str(self.rtt_ms),
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 60)
        self.port = int(line.split()[1])
        self._reader = asyncio.ensure_future(self._count(self._process.stdout))
        return self

    async def _count(self, stdout: asyncio.StreamReader) -> None:
        while await stdout.readline():
            self.connections += 1

    async def settle(self) -> None:
        """Let the connection reports the proxy sent so far arrive."""
        await asyncio.sleep(0.01)

    async def __aexit__(self, *exc: object) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader


async def _delay_proxy_main(target_port: int, rtt_ms: float) -> None:
    """The proxy process: prints ``port <n>``, then a line per accepted connection."""
    import socket

    delay = rtt_ms / 2000.0

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, not_before: float) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(65536)
                queue.put_nowait((max(time.monotonic(), not_before) + delay, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            writer.close()

    async def accept(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        print("connection", flush=True)
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
            for writer in (client_w, server_w):
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # The handshake's round trip: the client's first bytes reach the far end this late.
            handshake_until = time.monotonic() + 2 * delay
            await asyncio.gather(pump(client_r, server_w, handshake_until), pump(server_r, client_w, 0.0))
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            client_w.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def trust_certificate_by_default(cafile: Path) -> None:
    """Make aiohttp's default TLS context trust ``cafile`` (a local pool's self-signed certificate).

    autogen-ext's executor opens its own ``aiohttp.ClientSession`` per call with the default
    context and takes no TLS options; adding the certificate there lets both executors verify
    the pool the same way. Benchmark-only.
    """
    from aiohttp import connector

    for name in ("_SSL_CONTEXT_VERIFIED",):
        context = getattr(connector, name, None)
        if context is not None:
            context.load_verify_locations(cafile=str(cafile))


class RequestCounter:
    """An aiohttp middleware for the pool that counts the requests it serves, by method and route."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    @property
    def total(self) -> int:
        """Requests counted so far."""
        return sum(self.counts.values())

    def middleware(self) -> Any:
        """The middleware to pass in ``LocalSessionPool(middlewares=[...])``."""
        from aiohttp import web

        @web.middleware
        async def count(request: Any, handler: Any) -> Any:
            tail = request.path.rsplit("/sessionPools/", 1)[-1].split("/", 1)[-1]
            key = f"{request.method} /{tail.split('/')[0]}"
            self.counts[key] = self.counts.get(key, 0) + 1
            return await handler(request)

        return count


# --------------------------------------------------------------------------- a pool in its own process

_POOL_PROCESS_SCRIPT = """
import asyncio, json, os, signal, sys
from autogen_aca_sessions import LocalSessionPool

async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with LocalSessionPool(**json.loads(sys.argv[1])) as pool:
        print(json.dumps({"endpoint": pool.endpoint, "api_key": pool.api_key, "pid": os.getpid(),
                          "isolation": pool.isolation}), flush=True)
        await stop.wait()

asyncio.run(main())
"""


class PoolProcess:
    """A ``LocalSessionPool`` serving from its own process, so its memory and descriptors are its own."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.endpoint = ""
        self.api_key = ""
        self.pid = 0
        self.isolation = ""
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> PoolProcess:
        import json

        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _POOL_PROCESS_SCRIPT,
            json.dumps(self.options),
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 300)
        if not line:
            raise RuntimeError("the pool process did not start")
        info = json.loads(line)
        self.endpoint, self.api_key, self.pid = info["endpoint"], info["api_key"], info["pid"]
        self.isolation = info["isolation"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 180)
        except asyncio.TimeoutError:
            # Its kernels die with it (their sandboxes watch the server).
            process.kill()
            await process.wait()


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "delay-proxy":
    asyncio.run(_delay_proxy_main(int(sys.argv[2]), float(sys.argv[3])))

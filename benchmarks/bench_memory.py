"""Memory per idle session with NumPy, pandas and matplotlib imported, and what a machine holds.

Three kinds of kernel, each after ``STACK_IMPORT`` ran in it and it sat idle:
- a plain ipykernel started by ``jupyter_client`` (the baseline);
- a session of the local pool (what ships), measured as the whole process tree the pool
  started for it (sandbox wrapper included);
- a session of the local pool with ``kernel_launcher="fork"`` (the runtime's fork-template
  launcher, ``local/_kernel_template_launcher.py``), sandboxed and not: the kernel plus, in
  bwrap mode, its holder sandbox (bwrap, its init, ``sleep``); the template's own memory once;
  and the new-session latency through the pool with and without a ready kernel;
- a kernel forked from the template prototype (``prototypes/fork_template.py``), whose pages
  are shared copy-on-write with the template; the template's own memory is reported once.
USS is what a session really costs (freed when it goes); PSS spreads shared pages over
their sharers. The capacity figures divide the machine's memory by the measured USS: they
are extrapolated, not measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from harness import (
    STACK_IMPORT,
    Config,
    Memory,
    RawKernel,
    Row,
    dist_row,
    kernel_pids_of,
    log,
    open_pool,
    pool_available,
    pool_credential,
    ratio,
    raw_cold_start,
    summarise,
    top_level_new,
    total_memory_gib,
    tree_memory,
    wait_ready,
)

NAME = "memory"
DESCRIPTION = "USS/PSS per idle session with numpy/pandas/matplotlib imported; sessions per machine"
TARGET_USS_MIB = 15.0
AZURE_MAX_SESSIONS = 600
SETTLE_S = 1.0
TEMPLATE = Path(__file__).resolve().parent / "prototypes" / "fork_template.py"


def _rows_for(kind: str, mems: list[Memory], baseline_uss: float | None, extra_note: str = "") -> list[Row]:
    uss = statistics.median(m.uss for m in mems)
    pss = statistics.median(m.pss for m in mems)
    total = total_memory_gib()
    capacity = int(total * 1024 // uss)
    rows = [
        Row(
            benchmark=NAME,
            figure=f"{kind}: USS per idle session",
            value=uss,
            unit="MiB",
            samples=len(mems),
            baseline="plain ipykernel USS" if baseline_uss is not None else None,
            baseline_value=baseline_uss,
            ratio=None if baseline_uss is None else uss / baseline_uss,
            target=f"<= {TARGET_USS_MIB:g} MiB",
            met=uss <= TARGET_USS_MIB,
            note=extra_note,
        ),
        Row(
            benchmark=NAME,
            figure=f"{kind}: PSS per idle session",
            value=pss,
            unit="MiB",
            samples=len(mems),
            note=f"{len(mems)} alike kernels alive",
        ),
        Row(
            benchmark=NAME,
            figure=f"{kind}: idle sessions in {total:.0f} GiB",
            value=float(capacity),
            unit="sessions",
            target=f">= {AZURE_MAX_SESSIONS} (Azure pool max)",
            met=capacity >= AZURE_MAX_SESSIONS,
            note="extrapolated from measured USS",
        ),
    ]
    return rows


def _start_row(label: str, starts: list[float], cold_p50: float) -> Row:
    p50, _ = summarise(starts)
    return dist_row(
        NAME,
        f"{label}, request -> first execute answered",
        starts,
        baseline="cold jupyter_client start",
        baseline_value=cold_p50,
        ratio=ratio(p50, cold_p50),
        note="what a pool with no ready kernel could offer",
    )


async def measure_plain(count: int) -> tuple[list[Memory], list[float]]:
    """Plain ipykernels, all alive at once, the stack imported in each; and their start times
    (``start_kernel`` to the first execute answered)."""
    kernels: list[RawKernel] = []
    starts: list[float] = []
    try:
        for _ in range(count):
            seconds, kernel = await raw_cold_start()
            starts.append(seconds)
            reply = await kernel.execute(STACK_IMPORT)
            if reply.get("status") != "ok":
                raise RuntimeError(f"stack import failed in a plain kernel: {reply}")
            kernels.append(kernel)
        await asyncio.sleep(SETTLE_S)
        return [tree_memory(k.pid) for k in kernels], starts
    finally:
        for kernel in kernels:
            await kernel.stop()


async def measure_pool(count: int) -> tuple[list[Memory], str]:
    """Sessions of the local pool, all alive at once, the stack imported in each."""
    from autogen_aca_sessions.client import SessionsClient

    mems: list[Memory] = []
    async with open_pool(ready_sessions=0, max_concurrent_sessions=count + 2) as pool:
        isolation = str(getattr(getattr(pool, "manager", None), "isolation", "?"))
        async with SessionsClient(pool.endpoint, pool_credential(pool)) as client:
            roots: list[list[int]] = []
            for _ in range(count):
                before = kernel_pids_of(os.getpid())
                result = await client.execute(str(uuid.uuid4()), STACK_IMPORT, timeout_seconds=120)
                if not result.succeeded:
                    raise RuntimeError(f"stack import failed in a pool session: {result.stderr[-500:]}")
                roots.append(top_level_new(before, kernel_pids_of(os.getpid())))
            await asyncio.sleep(SETTLE_S)
            for pids in roots:
                if not pids:
                    raise RuntimeError("could not find the process tree of a pool session")
                parts = [tree_memory(p) for p in pids]
                mems.append(
                    Memory(
                        uss=sum(p.uss for p in parts),
                        pss=sum(p.pss for p in parts),
                        rss=sum(p.rss for p in parts),
                        processes=sum(p.processes for p in parts),
                    )
                )
    return mems, isolation


async def measure_pool_fork(
    count: int, sandbox: str, ready_samples: int
) -> tuple[list[Memory], Memory, str, list[float], list[float]]:
    """Sessions of the local pool with ``kernel_launcher="fork"``: memory of ``count`` idle
    sessions (kernel + holder sandbox), the template process's own memory, and the time from
    the first call on a new identifier to its result with no ready kernel (a fork per call)
    and with one ready (``ready_samples`` samples, the pool refilled before each)."""
    import psutil

    from autogen_aca_sessions.client import SessionsClient

    mems: list[Memory] = []
    holders: list[float] = []
    cold: list[float] = []
    warm: list[float] = []
    async with open_pool(
        ready_sessions=0, max_concurrent_sessions=count + 2, sandbox=sandbox, kernel_launcher="fork"
    ) as pool:
        manager = pool.manager
        isolation = str(manager.isolation)
        async with SessionsClient(pool.endpoint, pool_credential(pool)) as client:
            # The template starts on the first launch; it is paid once, not per session.
            first = await client.execute("fork-warmup", "1", timeout_seconds=300)
            if not first.succeeded:
                raise RuntimeError(f"first forked kernel failed: {first.stderr[-500:]}")
            await manager.delete("fork-warmup")
            identifiers = []
            for _ in range(count):
                identifier = str(uuid.uuid4())
                started = time.perf_counter()
                result = await client.execute(identifier, "1 + 1", timeout_seconds=120)
                cold.append(time.perf_counter() - started)
                if not result.succeeded or result.result != 2:
                    raise RuntimeError(f"a forked pool session failed: {result.stderr[-500:]}")
                result = await client.execute(identifier, STACK_IMPORT, timeout_seconds=120)
                if not result.succeeded:
                    raise RuntimeError(
                        f"stack import failed in a forked pool session: {result.stderr[-500:]}"
                    )
                identifiers.append(identifier)
            await asyncio.sleep(SETTLE_S)
            for identifier in identifiers:
                session = manager.get(identifier)
                kernel = session._slot.kernel if session is not None else None
                if kernel is None:
                    raise RuntimeError("a forked session has no kernel")
                process = kernel.launched.process
                parts = [tree_memory(process.pid)]
                holder = getattr(process, "holder", None)
                if holder is not None:
                    parts.append(tree_memory(holder.pid))
                    holders.append(parts[-1].uss)
                mems.append(
                    Memory(
                        uss=sum(p.uss for p in parts),
                        pss=sum(p.pss for p in parts),
                        rss=sum(p.rss for p in parts),
                        processes=sum(p.processes for p in parts),
                    )
                )
            template_pid = manager._launcher.template_pid
            info = psutil.Process(template_pid).memory_full_info()
            template = Memory(uss=info.uss / 2**20, pss=info.pss / 2**20, rss=info.rss / 2**20, processes=1)
    async with (
        open_pool(
            ready_sessions=2,
            max_concurrent_sessions=ready_samples + 4,
            sandbox=sandbox,
            kernel_launcher="fork",
        ) as pool,
        SessionsClient(pool.endpoint, pool_credential(pool)) as client,
    ):
        await wait_ready(pool, 2, limit_s=300)
        for _ in range(ready_samples):
            await wait_ready(pool, 2)
            started = time.perf_counter()
            result = await client.execute(str(uuid.uuid4()), "1 + 1", timeout_seconds=120)
            warm.append(time.perf_counter() - started)
            if not result.succeeded:
                raise RuntimeError(f"a ready forked session failed: {result.stderr[-500:]}")
    if holders:
        isolation += f"; holder sandbox (bwrap, its init, sleep) {statistics.median(holders):.2f} MiB of it"
    return mems, template, isolation, cold, warm


class SandboxHolder:
    """One session's sandbox, made by the pool's own ``Sandbox.command`` (same bwrap arguments,
    same per-session uid) but running ``sleep infinity`` instead of a kernel: the forked kernel
    then joins its namespaces."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.run_dir = root / "run"
        self.process: asyncio.subprocess.Process | None = None
        self.ns_pid: int | None = None
        self.uid: int | None = None
        self.env: dict[str, str] = {}
        self.limits: dict[str, int] = {}

    async def start(self, sandbox: Any, uid: int, hide: list[Path]) -> None:
        import psutil

        from autogen_aca_sessions.local.kernel import kernel_environment
        from autogen_aca_sessions.local.sandbox import SANDBOX_DATA_DIR, SANDBOX_RUN_DIR

        self.data_dir.mkdir(parents=True)
        self.run_dir.mkdir(parents=True)
        with_nproc = True
        self.uid = uid if sandbox.drops_privileges else None
        if self.uid is not None:
            os.chown(self.data_dir, uid, uid)
            os.chown(self.run_dir, uid, uid)
        self.limits = sandbox.limits.rlimits(with_nproc=with_nproc)
        spec = sandbox.boot_spec("exec", uid=uid, with_nproc=with_nproc, argv=["sleep", "infinity"])
        self.env = kernel_environment(data_dir=SANDBOX_DATA_DIR, run_dir=SANDBOX_RUN_DIR)
        command = sandbox.command(
            spec, data_dir=self.data_dir, run_dir=self.run_dir, hide=hide, egress=False, env=self.env
        )
        self.process = await asyncio.create_subprocess_exec(
            *command.argv,
            cwd=str(command.cwd),
            env=command.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = asyncio.get_running_loop().time() + 30
        while self.ns_pid is None:
            for proc in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if proc.name() == "sleep":
                        self.ns_pid = proc.pid
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("the sandbox holder did not start")
            await asyncio.sleep(0.01)

    def kernel_request(self, log_path: str) -> tuple[dict[str, Any], str]:
        """The template request that starts a kernel in this sandbox, and the host-side
        connection file."""
        from jupyter_client.connect import write_connection_file

        from autogen_aca_sessions.local.sandbox import SANDBOX_DATA_DIR, SANDBOX_RUN_DIR

        host_conn = str(self.run_dir / "kernel.json")
        write_connection_file(host_conn, transport="ipc", ip=f"{SANDBOX_RUN_DIR}/k")
        if self.uid is not None:
            os.chown(host_conn, self.uid, self.uid)
        request = {
            "connection_file": f"{SANDBOX_RUN_DIR}/kernel.json",
            "cwd": SANDBOX_DATA_DIR,
            "log": log_path,
            "ns_pid": self.ns_pid,
            "uid": self.uid,
            "env": self.env,
            "limits": self.limits,
        }
        return request, host_conn

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


SANDBOX_PROBE = """
import os, socket
caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0]
try:
    socket.create_connection(('1.1.1.1', 53), timeout=0.5)
    net = 'network reachable'
except OSError:
    net = 'no network'
print(os.getcwd(), os.getuid(), caps, os.getpid(), net, sorted(os.listdir('/mnt/data')), sep='|')
"""
"""Run in a forked sandboxed kernel: what it sees (cwd, uid, effective capabilities, its pid
in the sandbox, network, its data directory)."""


class ForkTemplate:
    """Client side of the prototype: start the template, fork kernels, talk to them."""

    def __init__(self, workdir: str, options: list[str]) -> None:
        self.workdir = workdir
        self.socket_path = os.path.join(workdir, "template.sock")
        self.options = options
        self.process: subprocess.Popen[str] | None = None
        self.kernels: list[tuple[int, Any]] = []

    async def start(self) -> None:
        # Started once per measurement, before any timing: a blocking Popen is harmless here.
        self.process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, str(TEMPLATE), self.socket_path, *self.options],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = await asyncio.to_thread(self.process.stdout.readline)
        if not line.startswith("READY"):
            raise RuntimeError(f"template did not start: {line!r}")

    def _request(self, payload: dict[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(self.socket_path)
            sock.sendall(json.dumps(payload).encode() + b"\n")
            answer: dict[str, Any] = json.loads(sock.makefile().readline())
        return answer

    async def fork_kernel(self, sandbox: SandboxHolder | None = None) -> tuple[int, Any]:
        """Fork one kernel (inside ``sandbox`` when given); return (pid, a ready client)."""
        from jupyter_client.asynchronous.client import AsyncKernelClient
        from jupyter_client.connect import write_connection_file

        name = uuid.uuid4().hex[:8]
        if sandbox is None:
            conn = os.path.join(self.workdir, f"{name}.json")
            write_connection_file(conn, transport="ipc", ip=os.path.join(self.workdir, f"ipc-{name}"))
            request: dict[str, Any] = {"connection_file": conn, "cwd": self.workdir, "log": conn + ".log"}
            host_conn = conn
        else:
            request, host_conn = sandbox.kernel_request(os.path.join(self.workdir, f"{name}.log"))
        answer = await asyncio.to_thread(self._request, request)
        if "pid" not in answer:
            raise RuntimeError(f"template refused: {answer}")
        client = AsyncKernelClient()
        client.load_connection_file(host_conn)
        if sandbox is not None:
            # The file names the sockets as the kernel sees them; the host reaches them here.
            client.ip = str(sandbox.run_dir / "k")
        client.start_channels()
        await kernel_info_ready(client, timeout=60)
        self.kernels.append((int(answer["pid"]), client))
        return int(answer["pid"]), client

    async def stop(self) -> None:
        for pid, client in self.kernels:
            client.stop_channels()
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        if self.process is not None:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


async def kernel_info_ready(client: Any, timeout: float) -> None:
    """Until the kernel answers ``kernel_info`` and its IOPub reaches us.

    Not ``wait_for_ready``: that also drains IOPub for a fixed 0.2 s or more after the answer,
    which would be counted as start-up time here. An IOPub status message about one of our
    requests proves the subscription is live, so nothing of the next execute is lost.
    """
    deadline = time.perf_counter() + timeout
    sent: set[str] = set()
    while True:
        sent.add(client.kernel_info())
        try:
            while True:
                msg = await client.get_iopub_msg(timeout=0.1)
                if msg["parent_header"].get("msg_id") in sent and msg["msg_type"] == "status":
                    break
        except Exception:
            if time.perf_counter() > deadline:
                raise TimeoutError("the forked kernel did not answer kernel_info") from None
            continue
        # The shell replies to these requests stay queued: execute_on skips them by parent id.
        return


async def execute_on(client: Any, code: str, timeout: float = 120.0) -> dict[str, Any]:
    """An execute round trip on a bare ``AsyncKernelClient``."""
    msg_id = client.execute(code, store_history=False)
    while True:
        msg = await client.get_iopub_msg(timeout=timeout)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            break
    while True:
        reply = await client.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return dict(reply["content"])


async def measure_forked(count: int, options: list[str]) -> tuple[list[Memory], Memory, list[float]]:
    """Kernels forked from the template, the stack imported in each; the template itself; and
    the kernels' start times (fork request to the first execute answered)."""
    with tempfile.TemporaryDirectory(prefix="bench-fork-") as workdir:
        template = ForkTemplate(workdir, options)
        try:
            await template.start()
            pids = []
            starts = []
            for _ in range(count):
                t0 = time.perf_counter()
                pid, client = await template.fork_kernel()
                await execute_on(client, "1+1")
                starts.append(time.perf_counter() - t0)
                reply = await execute_on(client, STACK_IMPORT)
                if reply.get("status") != "ok":
                    raise RuntimeError(f"stack import failed in a forked kernel: {reply}")
                pids.append(pid)
            await asyncio.sleep(SETTLE_S)
            assert template.process is not None
            template_mem = tree_memory(template.process.pid)
            # The template's tree includes its children; take them out.
            kids = [tree_memory(p) for p in pids]
            own = Memory(
                uss=template_mem.uss - sum(k.uss for k in kids),
                pss=template_mem.pss - sum(k.pss for k in kids),
                rss=template_mem.rss - sum(k.rss for k in kids),
                processes=1,
            )
            return kids, own, starts
        finally:
            await template.stop()


async def measure_forked_sandboxed(count: int) -> tuple[list[Memory], Memory, str, list[float]]:
    """Kernels forked from the template into sandboxes made by the pool's ``Sandbox``.

    The memory of a session is bwrap, its init, ``sleep`` and the kernel (in the sandbox's
    pid namespace, but on the host a child of init once the middle process is gone). Returns
    also what the first kernel saw from inside.
    """
    from autogen_aca_sessions.local.sandbox import SESSION_UID_BASE, Sandbox

    sandbox = await asyncio.to_thread(Sandbox.resolve, "bwrap")
    with tempfile.TemporaryDirectory(prefix="bench-forksb-") as workdir:
        os.chmod(workdir, 0o755)
        template = ForkTemplate(workdir, [])
        holders: list[SandboxHolder] = []
        kernel_pids: list[int] = []
        starts: list[float] = []
        seen = ""
        try:
            await template.start()
            for i in range(count):
                t0 = time.perf_counter()
                holder = SandboxHolder(Path(workdir) / f"s{i}")
                await holder.start(sandbox, SESSION_UID_BASE + 4242 + i, hide=[])
                holders.append(holder)
                kernel_pid, client = await template.fork_kernel(holder)
                await execute_on(client, "1+1")
                starts.append(time.perf_counter() - t0)
                (holder.data_dir / "input.csv").write_text("a,b\n1,2\n")
                kernel_pids.append(kernel_pid)
                if i == 0:
                    seen = await _stdout_of(client, SANDBOX_PROBE)
                reply = await execute_on(client, STACK_IMPORT)
                if reply.get("status") != "ok":
                    raise RuntimeError(f"stack import failed in a sandboxed forked kernel: {reply}")
            await asyncio.sleep(SETTLE_S)
            mems = []
            for holder, kernel_pid in zip(holders, kernel_pids, strict=True):
                assert holder.process is not None
                # The kernel's parent (the middle process) is gone, so it is not in the
                # holder's tree on the host even though it is inside the sandbox.
                parts = [tree_memory(holder.process.pid), tree_memory(kernel_pid)]
                mems.append(
                    Memory(
                        uss=sum(p.uss for p in parts),
                        pss=sum(p.pss for p in parts),
                        rss=sum(p.rss for p in parts),
                        processes=sum(p.processes for p in parts),
                    )
                )
            assert template.process is not None
            template_tree = tree_memory(template.process.pid)
            return mems, template_tree, seen, starts
        finally:
            await template.stop()
            for holder in holders:
                await holder.stop()


async def _stdout_of(client: Any, code: str) -> str:
    msg_id = client.execute(code, store_history=False)
    out: list[str] = []
    while True:
        msg = await client.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("ERROR " + msg["content"]["ename"] + ": " + msg["content"]["evalue"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    await client.get_shell_msg(timeout=60)
    return "".join(out).strip()


async def run(cfg: Config) -> list[Row]:
    count = cfg.n(4, 2)
    rows: list[Row] = []
    log(cfg, f"memory: {count} plain ipykernels")
    plain, plain_starts = await measure_plain(count)
    cold_p50, _ = summarise(plain_starts)
    plain_uss = statistics.median(m.uss for m in plain)
    rows += _rows_for("plain ipykernel (baseline)", plain, None)

    why = pool_available()
    if why is None:
        log(cfg, f"memory: {count} local-pool sessions")
        try:
            pool_mems, isolation = await measure_pool(count)
            rows += _rows_for("local pool session", pool_mems, plain_uss, extra_note=f"isolation={isolation}")
        except Exception as exc:
            rows.append(Row(benchmark=NAME, figure="local pool session", note=f"FAILED: {exc!r}"[:200]))
    else:
        rows.append(Row(benchmark=NAME, figure="local pool session", note=f"skipped: {why}"))

    for mode in ("bwrap", "none"):
        label = f"pool, kernel_launcher=fork, sandbox={mode}"
        log(cfg, f"memory: {count} local-pool sessions with kernel_launcher=fork, sandbox={mode}")
        try:
            f_mems, f_template, f_isolation, f_cold, f_warm = await measure_pool_fork(
                count, mode, cfg.n(10, 3)
            )
        except Exception as exc:
            rows.append(Row(benchmark=NAME, figure=label, note=f"FAILED: {exc!r}"[:300]))
            continue
        rows += _rows_for(
            label,
            f_mems,
            plain_uss,
            extra_note=f"isolation={f_isolation}; kernel"
            + (" + holder bwrap/init/sleep" if mode == "bwrap" else ""),
        )
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"{label}: the template process itself (paid once)",
                value=f_template.uss,
                unit="MiB USS",
                note=f"PSS {f_template.pss:.0f} MiB",
            )
        )
        cold_fork_p50, _ = summarise(f_cold)
        rows.append(
            dist_row(
                NAME,
                f"{label}: new session, no ready kernel (fork per call), first call -> result",
                f_cold,
                baseline="cold jupyter_client start",
                baseline_value=cold_p50,
                ratio=ratio(cold_fork_p50, cold_p50),
                target="<= cold start p50",
                met=cold_fork_p50 <= cold_p50,
            )
        )
        warm_p50, warm_p99 = summarise(f_warm)
        rows.append(
            dist_row(
                NAME,
                f"{label}: new session, ready kernel free, first call -> result",
                f_warm,
                target="p50 <= 20 ms, p99 <= 100 ms",
                met=warm_p50 <= 20 and warm_p99 <= 100,
            )
        )

    variants: list[tuple[str, list[str]]] = [("fork template (prototype)", [])]
    if not cfg.quick:
        variants.append(("fork template, plain ipykernel init (prototype)", ["--no-lean"]))
    if shutil.which("bwrap") or shutil.which("bwrap", path="/usr/bin"):
        log(cfg, f"memory: {count} kernels forked from the template into bwrap sandboxes")
        try:
            sb_mems, sb_template, seen, sb_starts = await measure_forked_sandboxed(count)
            rows += _rows_for(
                "fork template + pool's bwrap sandbox (prototype)",
                sb_mems,
                plain_uss,
                extra_note="whole tree incl. bwrap+holder",
            )
            rows.append(
                Row(
                    benchmark=NAME,
                    figure="fork template + bwrap: the template process itself (paid once)",
                    value=sb_template.uss,
                    unit="MiB USS",
                    note=f"kernel saw cwd|uid|CapEff|pid|net|files: {seen}",
                )
            )
            rows.append(_start_row("fork template + bwrap: new sandboxed kernel", sb_starts, cold_p50))
        except Exception as exc:
            rows.append(
                Row(benchmark=NAME, figure="fork template + bwrap (prototype)", note=f"FAILED: {exc!r}"[:300])
            )
    for label, options in variants:
        log(cfg, f"memory: {count} kernels forked from the template {options}")
        kids, template_own, starts = await measure_forked(count, options)
        rows += _rows_for(label, kids, plain_uss, extra_note="no sandbox")
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"{label}: the template process itself (paid once)",
                value=template_own.uss,
                unit="MiB USS",
                note=f"PSS {template_own.pss:.0f} MiB",
            )
        )
        rows.append(_start_row(f"{label}: new kernel", starts, cold_p50))
    return rows

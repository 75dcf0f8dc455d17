"""Memory per idle session with NumPy, pandas and matplotlib imported, and what a machine holds.

Three kinds of kernel, each after ``STACK_IMPORT`` ran in it and it sat idle:
- a plain ipykernel started by ``jupyter_client`` (the baseline);
- a session of the local pool (what ships), measured as the whole process tree the pool
  started for it (sandbox wrapper included);
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
import socket
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from harness import (
    STACK_IMPORT,
    Config,
    Memory,
    RawKernel,
    Row,
    kernel_pids_of,
    log,
    open_pool,
    pool_available,
    pool_credential,
    top_level_new,
    total_memory_gib,
    tree_memory,
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


async def measure_plain(count: int) -> list[Memory]:
    """Plain ipykernels, all alive at once, the stack imported in each."""
    kernels: list[RawKernel] = []
    try:
        for _ in range(count):
            kernel = RawKernel()
            await kernel.start()
            reply = await kernel.execute(STACK_IMPORT)
            if reply.get("status") != "ok":
                raise RuntimeError(f"stack import failed in a plain kernel: {reply}")
            kernels.append(kernel)
        await asyncio.sleep(SETTLE_S)
        return [tree_memory(k.pid) for k in kernels]
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

    async def fork_kernel(self) -> tuple[int, Any]:
        """Fork one kernel; return (pid, a ready AsyncKernelClient)."""
        from jupyter_client.asynchronous.client import AsyncKernelClient
        from jupyter_client.connect import write_connection_file

        name = uuid.uuid4().hex[:8]
        conn = os.path.join(self.workdir, f"{name}.json")
        write_connection_file(conn, transport="ipc", ip=os.path.join(self.workdir, f"ipc-{name}"))
        answer = await asyncio.to_thread(
            self._request, {"connection_file": conn, "cwd": self.workdir, "log": conn + ".log"}
        )
        if "pid" not in answer:
            raise RuntimeError(f"template refused: {answer}")
        client = AsyncKernelClient()
        client.load_connection_file(conn)
        client.start_channels()
        await client.wait_for_ready(timeout=60)
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


async def measure_forked(count: int, options: list[str]) -> tuple[list[Memory], Memory]:
    """Kernels forked from the template, the stack imported in each; and the template itself."""
    with tempfile.TemporaryDirectory(prefix="bench-fork-") as workdir:
        template = ForkTemplate(workdir, options)
        try:
            await template.start()
            pids = []
            for _ in range(count):
                pid, client = await template.fork_kernel()
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
            return kids, own
        finally:
            await template.stop()


async def run(cfg: Config) -> list[Row]:
    count = cfg.n(4, 2)
    rows: list[Row] = []
    log(cfg, f"memory: {count} plain ipykernels")
    plain = await measure_plain(count)
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

    variants: list[tuple[str, list[str]]] = [("fork template (prototype)", [])]
    if not cfg.quick:
        variants.append(("fork template, plain ipykernel init (prototype)", ["--no-lean"]))
    for label, options in variants:
        log(cfg, f"memory: {count} kernels forked from the template {options}")
        kids, template_own = await measure_forked(count, options)
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
    return rows

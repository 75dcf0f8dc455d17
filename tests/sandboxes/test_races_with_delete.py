"""Hostile timing on the Sandboxes data plane: a resume, a stop, a command or a file write sent
at the same moment as a DELETE of the same sandbox, on the real server over loopback HTTP.

Whatever order the two land in, every answer is a documented status with a JSON error body
where it refuses (never 5xx), and afterwards the sandbox is fully gone: a GET is 404, none of its
processes is alive, none of its cgroups and none of its files is left.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from autogen_aca_sessions.local import LocalSessionsServer
from autogen_aca_sessions.local.runtime.sandboxes import SandboxRuntime, SandboxState
from autogen_aca_sessions.local.runtime.sandboxes.errors import SandboxNotFound
from tests.sandboxes._wire_helpers import RG, SUB, Raw, Reply

pytestmark = pytest.mark.asyncio(loop_scope="module")

GROUP = "races"
ROUNDS = 3
"""Races of each kind, mode and order."""


@dataclass
class Served:
    raw: Raw
    runtime: SandboxRuntime
    runtime_group: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served() -> AsyncIterator[Served]:
    async with LocalSessionsServer() as server, aiohttp.ClientSession() as http:
        group = await server.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        runtime = (await server.sandbox_groups()).runtime
        yield Served(Raw(server, http), runtime, group.runtime_id)


@dataclass(frozen=True)
class Traces:
    """What a sandbox leaves on the host while it exists."""

    home: Path
    """Its directory (disk, sockets)."""
    uid: int | None
    """The host uid its processes run as (None when the server is not root)."""
    pids: tuple[int, ...]
    """Its processes before the race."""
    cgroup_leaf: str
    """The name its runs' cgroups end with."""


async def _traces(served: Served, sandbox_id: str) -> Traces:
    sandbox = served.runtime.sandbox(served.runtime_group, sandbox_id)
    run = sandbox.container
    assert run is not None
    pids = await asyncio.to_thread(run.pids)
    traces = Traces(sandbox.home, sandbox.uid, tuple(pids), f"-{sandbox.home.name}")
    # The check that nothing is left must see what a live sandbox has, or it proves nothing.
    live = await asyncio.to_thread(_left_behind, served, traces)
    assert f"its directory {traces.home}" in live
    assert any(item.startswith("process ") for item in live), live
    if run.cgroup is not None:
        assert any(item.startswith("cgroup ") for item in live), live
    return traces


def _alive_not_zombie(pid: int) -> tuple[int, bytes] | None:
    """(uid, state) of a live, non-zombie process; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        uid = os.stat(f"/proc/{pid}").st_uid
    except (OSError, IndexError):
        return None
    return None if state == b"Z" else (uid, state)


def _left_behind(served: Served, traces: Traces) -> list[str]:
    """Everything of the sandbox still on the host (blocking)."""
    left: list[str] = []
    if traces.home.exists():
        left.append(f"its directory {traces.home}")
    left += [f"process {pid}" for pid in traces.pids if _alive_not_zombie(pid) is not None]
    if traces.uid is not None:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (found := _alive_not_zombie(int(entry))) and found[0] == traces.uid:
                left.append(f"process {entry} of uid {traces.uid}")
    cgroups = served.runtime.host.cgroups
    bases = [cgroups.v2] if cgroups.v2 is not None else list(cgroups.v1.values())
    for base in bases:
        if base is not None and base.is_dir():
            left += [f"cgroup {e}" for e in base.iterdir() if e.name.endswith(traces.cgroup_leaf)]
    return left


async def _create(served: Served, mode: str) -> str:
    body = {
        "sourcesRef": {"diskImage": {"name": "python-3.12", "isPublic": True}},
        "lifecycle": {"autoSuspendPolicy": {"enabled": True, "interval": 3600, "mode": mode}},
    }
    made = await served.raw.call("PUT", served.raw.group_url(GROUP, "sandboxes"), body=body)
    assert made.status == 201, made.body
    sandbox_id: str = made.json()["id"]
    # Processes that a delete must kill, one of them outside the command's session.
    ran = await served.raw.call(
        "POST",
        served.raw.group_url(GROUP, f"sandboxes/{sandbox_id}/executeShellCommand"),
        body={"command": "nohup sleep 3600 >/dev/null 2>&1 & (setsid sleep 3601 &)"},
    )
    assert ran.status == 200, ran.body
    return sandbox_id


def _documented(reply: Reply, allowed: set[int]) -> None:
    assert reply.status in allowed, (reply.status, reply.body[:400])
    if reply.status >= 400:
        error = reply.json()["error"]
        assert error["code"] in {"SandboxNotFound", "SandboxNotRunning", "ConflictingOperation"}, error


class Order(enum.Enum):
    """Which of the two requests the server takes first."""

    OTHER_FIRST = "other-first"
    """The other request has begun its work (its state change is seen) when the DELETE is sent:
    the DELETE waits for it, and it answers as if no DELETE had come."""
    DELETE_FIRST = "delete-first"
    """The DELETE has begun (the sandbox is Deleting) when the other request is sent: 404."""
    TOGETHER = "together"
    """Both sent at once, whichever the server takes first."""


async def _race(
    served: Served,
    sandbox_id: str,
    other: tuple[str, str, dict[str, object] | None],
    order: Order,
    *,
    begun: tuple[SandboxState, ...] = (),
    raw: bytes | None = None,
) -> Reply:
    """Send ``other`` and a DELETE of the sandbox in ``order`` (``begun``: the states that show
    ``other`` has begun its work); the DELETE must answer 204 whatever the order."""
    method, tail, body = other
    sandbox = served.runtime.sandbox(served.runtime_group, sandbox_id)
    url = served.raw.group_url(GROUP, f"sandboxes/{sandbox_id}{tail}")
    delete_url = served.raw.group_url(GROUP, f"sandboxes/{sandbox_id}")
    if order is Order.TOGETHER:
        answer, deleted = await asyncio.gather(
            served.raw.call(method, url, body=body, raw=raw), served.raw.call("DELETE", delete_url)
        )
    elif order is Order.OTHER_FIRST:
        first = asyncio.ensure_future(served.raw.call(method, url, body=body, raw=raw))
        await sandbox.wait_for_state(*begun)
        deleted = await served.raw.call("DELETE", delete_url)
        answer = await first
    else:
        first = asyncio.ensure_future(served.raw.call("DELETE", delete_url))
        await sandbox.wait_for_state(SandboxState.DELETING)
        answer = await served.raw.call(method, url, body=body, raw=raw)
        deleted = await first
    assert deleted.status == 204, deleted.body
    return answer


async def _gone(served: Served, sandbox_id: str, traces: Traces) -> None:
    got = await served.raw.call("GET", served.raw.group_url(GROUP, f"sandboxes/{sandbox_id}"))
    assert got.status == 404, got.body
    assert got.json()["error"]["code"] == "SandboxNotFound"
    assert await asyncio.to_thread(_left_behind, served, traces) == []


EXPECTED = {Order.OTHER_FIRST: {200}, Order.DELETE_FIRST: {404}, Order.TOGETHER: {200, 404}}
"""What the other request may answer in each order (its success status, or 404)."""
ORDERS = [pytest.param(order, id=order.value) for order in Order]
MODES = [pytest.param(mode, id=mode.lower()) for mode in ("Memory", "Disk")]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("mode", MODES)
async def test_resume_racing_delete_answers_200_or_404_and_leaves_nothing(
    served: Served, mode: str, order: Order
) -> None:
    for _ in range(ROUNDS):
        sandbox_id = await _create(served, mode)
        traces = await _traces(served, sandbox_id)
        stopped = await served.raw.call("POST", served.raw.group_url(GROUP, f"sandboxes/{sandbox_id}/stop"))
        assert stopped.status == 200, stopped.body
        begun = (SandboxState.RESUMING, SandboxState.RUNNING)
        resumed = await _race(served, sandbox_id, ("POST", "/resume", None), order, begun=begun)
        _documented(resumed, EXPECTED[order])
        await _gone(served, sandbox_id, traces)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("mode", MODES)
async def test_stop_racing_delete_answers_200_or_404_and_leaves_nothing(
    served: Served, mode: str, order: Order
) -> None:
    for _ in range(ROUNDS):
        sandbox_id = await _create(served, mode)
        traces = await _traces(served, sandbox_id)
        begun = (SandboxState.STOPPING, SandboxState.SUSPENDED, SandboxState.STOPPED)
        stopped = await _race(served, sandbox_id, ("POST", "/stop", None), order, begun=begun)
        _documented(stopped, EXPECTED[order])
        await _gone(served, sandbox_id, traces)


@pytest.mark.parametrize("order", [Order.TOGETHER, Order.DELETE_FIRST], ids=["together", "delete-first"])
async def test_a_command_racing_delete_answers_its_result_or_404_and_leaves_nothing(
    served: Served, order: Order
) -> None:
    for _ in range(ROUNDS):
        sandbox_id = await _create(served, "Memory")
        traces = await _traces(served, sandbox_id)
        # A command still running when the delete lands (the delete kills it).
        command = {"command": "sleep 0.3; echo done"}
        ran = await _race(served, sandbox_id, ("POST", "/executeShellCommand", command), order)
        _documented(ran, EXPECTED[order])
        if ran.status == 200:
            assert ran.json()["stdout"] == "done\n"
        await _gone(served, sandbox_id, traces)


@pytest.mark.parametrize("order", [Order.TOGETHER, Order.DELETE_FIRST], ids=["together", "delete-first"])
async def test_a_file_write_racing_delete_answers_201_or_404_and_leaves_nothing(
    served: Served, order: Order
) -> None:
    for _ in range(ROUNDS):
        sandbox_id = await _create(served, "Memory")
        traces = await _traces(served, sandbox_id)
        upload = ("PUT", "/files?path=/root/big.bin&createDirs=true", None)
        wrote = await _race(served, sandbox_id, upload, order, raw=b"x" * (8 * 1024 * 1024))
        _documented(wrote, {201, 404} if order is Order.TOGETHER else {404})
        await _gone(served, sandbox_id, traces)


@pytest.mark.parametrize("call", ["resume", "stop"])
async def test_a_call_queued_behind_a_delete_finds_the_sandbox_gone(served: Served, call: str) -> None:
    """The order no HTTP timing can force: the call found the sandbox before the delete began,
    then waited for the sandbox's lock behind it. It must answer not found, not a 409 naming
    the ``Deleting`` state it cannot act on."""
    sandbox_id = await _create(served, "Disk")
    traces = await _traces(served, sandbox_id)
    sandbox = served.runtime.sandbox(served.runtime_group, sandbox_id)
    await sandbox.stop()
    # A Disk-mode resume starts a new run: it holds the lock while the delete and the call queue.
    resuming = asyncio.ensure_future(sandbox.resume())
    await sandbox.wait_for_state(SandboxState.RESUMING)
    deleting = asyncio.ensure_future(served.runtime.delete(served.runtime_group, sandbox_id))
    await asyncio.sleep(0)  # the delete is now waiting for the lock, ahead of the call
    queued = asyncio.ensure_future(sandbox.resume() if call == "resume" else sandbox.stop())
    assert (await resuming).state is SandboxState.RUNNING
    await deleting
    with pytest.raises(SandboxNotFound):
        await queued
    await _gone(served, sandbox_id, traces)

"""A pool made through the management plane is real, and its settings are in force."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import uuid
from datetime import datetime
from typing import Any

import psutil
import pytest

from autogen_aca_sessions.local import LocalSessionsServer
from autogen_aca_sessions.local.hosting.hosted import HostedPool
from autogen_aca_sessions.local.runtime.sessions import SessionManager
from tests.arm._helpers import DATA_API, SUB, Arm, Reply, execute_body

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _execute(arm: Arm, endpoint: str, identifier: str, body: dict[str, Any]) -> Reply:
    return await arm.call(
        "POST", f"{endpoint}/executions?api-version={DATA_API}&identifier={identifier}", body=body
    )


async def _shell(arm: Arm, endpoint: str, identifier: str, command: str) -> Reply:
    return await _execute(arm, endpoint, identifier, {"shellCommand": command, "timeoutInSeconds": 30})


SEED_DATA = (
    '{"location": "koreacentral","properties": { "poolManagementType": "Dynamic", '
    '"maxConcurrentSessions": 10, "name": "seedpool", "dynamicPoolConfiguration": { '
    '"poolType": "JupyterPython", "executionType": "Timed", "coolDownPeriodInSecond": 310 } } }'
)
"""The seed's ``-d`` body, its pool name filled in."""


async def _curl(*args: str) -> tuple[int, str]:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("the seed's flow is run with the curl binary, which is not installed")
    process = await asyncio.create_subprocess_exec(
        curl,
        "-sS",
        "-w",
        "\n%{http_code}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err
    body, _, status = out.decode().rpartition("\n")
    return int(status), body


async def test_the_seed_curl_flow_creates_a_pool_and_runs_code_at_its_endpoint(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    # The seed's command, its api-version and its body, with the placeholders filled in.
    url = arm.pool_url("seedpool", version="2023-08-01-preview")
    status, text = await _curl(
        "-X",
        "PUT",
        url,
        "-H",
        "Content-Type: application/json",
        "-H",
        f"Authorization: Bearer {arm_server.api_key}",
        "-d",
        SEED_DATA,
    )
    assert status in (200, 201), text
    endpoint = json.loads(text)["properties"]["poolManagementEndpoint"]
    assert endpoint == f"{arm_server.base_url}/subscriptions/{SUB}/resourceGroups/rg1/sessionPools/seedpool"
    # Straight away, as the seed does: a pool still provisioning is waited for, not refused.
    identifier = str(uuid.uuid4())
    status, text = await _curl(
        "-X",
        "POST",
        f"{endpoint}/executions?api-version={DATA_API}&identifier={identifier}",
        "-H",
        f"Authorization: Bearer {arm_server.api_key}",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps(execute_body("print(6*7)")),
    )
    assert status == 200, text
    assert json.loads(text)["result"]["stdout"] == "42\n"
    shown = (await arm.call("GET", url)).json()
    assert shown["properties"]["provisioningState"] == "Succeeded"
    assert shown["properties"]["maxConcurrentSessions"] == 10
    assert shown["properties"]["dynamicPoolConfiguration"]["coolDownPeriodInSecond"] == 310
    # The cooldown is the session's idle limit on the data plane.
    session = await arm.call("GET", f"{endpoint}/session?api-version={DATA_API}&identifier={identifier}")
    info = session.json()
    gap = datetime.fromisoformat(info["expireAt"].replace("Z", "+00:00")) - datetime.fromisoformat(
        info["lastAccessedAt"].replace("Z", "+00:00")
    )
    assert round(gap.total_seconds()) == 310
    await arm.delete("seedpool")


async def test_max_concurrent_sessions_reached_gives_the_data_planes_404_and_patch_raises_it(
    arm: Arm,
) -> None:
    body = await arm.create(
        "smallpool", {"scaleConfiguration": {"maxConcurrentSessions": 1, "readySessionInstances": 0}}
    )
    endpoint = body["properties"]["poolManagementEndpoint"]
    first = await _shell(arm, endpoint, "first-session", "echo one")
    assert first.status == 200, first.body
    full = await _shell(arm, endpoint, "second-session", "echo two")
    assert full.status == 404
    assert full.error["code"] == "SessionPoolFull"
    guid = first.headers["x-ms-session-guid"]
    patch = await arm.call(
        "PATCH",
        arm.pool_url("smallpool"),
        body={"properties": {"scaleConfiguration": {"maxConcurrentSessions": 2}}},
    )
    await arm.wait_async_operation(patch.headers["Azure-AsyncOperation"])
    second = await _shell(arm, endpoint, "second-session", "echo two")
    assert second.status == 200
    # A limit change is applied in place: the existing session lives on.
    again = await _shell(arm, endpoint, "first-session", "echo one")
    assert again.headers["x-ms-session-guid"] == guid
    await arm.delete("smallpool")


async def test_a_shell_pool_runs_shell_commands(arm: Arm) -> None:
    body = await arm.create("shellpool")
    endpoint = body["properties"]["poolManagementEndpoint"]
    reply = await _shell(arm, endpoint, "shell-a", "echo hello from $0; exit 3")
    assert reply.status == 200, reply.body
    data = reply.json()
    assert data["result"]["stdout"].startswith("hello from")
    assert data["status"] == "3"
    await arm.delete("shellpool")


async def test_ready_session_instances_start_kernels_ahead_of_need(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    await arm.create(
        "readypool",
        {
            "containerType": "PythonLTS",
            "scaleConfiguration": {"maxConcurrentSessions": 3, "readySessionInstances": 0},
        },
    )
    pool = arm_server.get_pool("readypool", resource_group="rg1", subscription=SUB)
    assert pool is not None
    await asyncio.sleep(0.5)
    assert _manager(pool).ready_count == 0
    patch = await arm.call(
        "PATCH",
        arm.pool_url("readypool"),
        body={"properties": {"scaleConfiguration": {"readySessionInstances": 1}}},
    )
    await arm.wait_async_operation(patch.headers["Azure-AsyncOperation"])
    for _ in range(600):
        if _manager(pool).ready_count == 1:
            break
        await asyncio.sleep(0.1)
    assert _manager(pool).ready_count == 1
    await arm.delete("readypool")


async def test_on_container_exit_is_shown_and_sets_the_session_lifetime(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    life = {
        "lifecycleType": "OnContainerExit",
        "maxAlivePeriodInSeconds": 600,
        "cooldownPeriodInSeconds": None,
    }
    body = await arm.create("exitpool", {"dynamicPoolConfiguration": {"lifecycleConfiguration": life}})
    assert body["properties"]["dynamicPoolConfiguration"] == {
        "lifecycleConfiguration": {"lifecycleType": "OnContainerExit", "maxAlivePeriodInSeconds": 600}
    }
    pool = arm_server.get_pool("exitpool", resource_group="rg1", subscription=SUB)
    assert pool is not None
    assert _manager(pool).config.max_alive_period_seconds == 600
    endpoint = body["properties"]["poolManagementEndpoint"]
    await _shell(arm, endpoint, "exit-session", "true")
    await asyncio.sleep(1.1)
    await _shell(arm, endpoint, "exit-session", "true")  # touching it does not move the end
    info = (
        await arm.call("GET", f"{endpoint}/session?api-version={DATA_API}&identifier=exit-session")
    ).json()
    created = datetime.fromisoformat(info["createdAt"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(info["expireAt"].replace("Z", "+00:00"))
    assert round((expires - created).total_seconds()) == 600
    flat = (await arm.call("GET", arm.pool_url("exitpool", version="2024-08-02-preview"))).json()
    assert flat["properties"]["dynamicPoolConfiguration"] == {
        "executionType": "OnContainerExit",
        "maxAlivePeriodInSeconds": 600,
    }
    await arm.delete("exitpool")


async def test_on_container_exit_ends_a_busy_session_at_its_max_alive_period(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    # Azure's minimum is 300 s; the Python API takes short periods so that the rule can be watched.
    pool = await arm_server.create_pool(
        "alivepool", container_type="Shell", lifecycle_type="OnContainerExit", max_alive_period_seconds=2
    )
    first = await _shell(arm, pool.endpoint, "kept-busy", "true")
    guid = first.headers["x-ms-session-guid"]
    seen = {guid}
    for _ in range(20):  # touched every 0.3 s: a Timed pool would keep it forever
        await asyncio.sleep(0.3)
        reply = await _shell(arm, pool.endpoint, "kept-busy", "true")
        seen.add(reply.headers["x-ms-session-guid"])
    assert len(seen) >= 2, "the session outlived its max alive period"
    await arm_server.delete_pool("alivepool")


async def test_timed_sessions_end_after_the_cooldown_when_idle(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    pool = await arm_server.create_pool("idlepool", container_type="Shell", cooldown_period_seconds=1)
    await _shell(arm, pool.endpoint, "idle", "true")
    assert _manager(pool).get("idle") is not None
    for _ in range(100):
        if _manager(pool).get("idle") is None:
            break
        await asyncio.sleep(0.1)
    assert _manager(pool).get("idle") is None
    await arm_server.delete_pool("idlepool")


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock


async def test_session_network_configuration_controls_egress(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    body = await arm.create("netpool", {"sessionNetworkConfiguration": {"status": "EgressDisabled"}})
    pool = arm_server.get_pool("netpool", resource_group="rg1", subscription=SUB)
    assert pool is not None
    if pool.isolation != "bwrap":
        pytest.skip("egress is only enforced by the bubblewrap sandbox, which is not available here")
    endpoint = body["properties"]["poolManagementEndpoint"]
    listener = _listener()
    port = listener.getsockname()[1]
    try:
        probe = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"
        blocked = await _shell(arm, endpoint, "net-a", probe)
        assert "connected" not in blocked.json()["result"]["stdout"]
        patch = await arm.call(
            "PATCH",
            arm.pool_url("netpool"),
            body={"properties": {"sessionNetworkConfiguration": {"status": "egressEnabled"}}},
        )
        status = await arm.wait_async_operation(patch.headers["Azure-AsyncOperation"])
        assert status["status"] == "Succeeded"
        shown = (await arm.call("GET", arm.pool_url("netpool"))).json()
        assert shown["properties"]["sessionNetworkConfiguration"] == {"status": "EgressEnabled"}
        allowed = await _shell(arm, endpoint, "net-b", probe)
        assert allowed.json()["result"]["stdout"] == "connected\n", allowed.body
    finally:
        listener.close()
    await arm.delete("netpool")


def _manager(pool: HostedPool) -> SessionManager:
    assert pool.manager is not None, "the pool is not provisioned"
    return pool.manager


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


async def test_deleting_a_pool_stops_its_kernels_and_removes_its_files_and_nothing_else(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    keep = await arm.create(
        "keeper",
        {
            "containerType": "PythonLTS",
            "scaleConfiguration": {"maxConcurrentSessions": 2, "readySessionInstances": 0},
        },
    )
    keep_endpoint = keep["properties"]["poolManagementEndpoint"]
    assert (await _execute(arm, keep_endpoint, "keep-1", execute_body("x = 5"))).status == 200
    keeper = arm_server.get_pool("keeper", resource_group="rg1", subscription=SUB)
    assert keeper is not None
    before = _descendants()
    doomed_body = await arm.create(
        "doomed",
        {
            "containerType": "PythonLTS",
            "scaleConfiguration": {"maxConcurrentSessions": 2, "readySessionInstances": 1},
        },
    )
    doomed_endpoint = doomed_body["properties"]["poolManagementEndpoint"]
    reply = await _execute(
        arm, doomed_endpoint, "doomed-1", execute_body("open('/mnt/data/f.txt','w').write('x'); print('ok')")
    )
    assert reply.json()["result"]["stdout"] == "ok\n"
    doomed = arm_server.get_pool("doomed", resource_group="rg1", subscription=SUB)
    assert doomed is not None
    root = doomed.root
    assert any(root.rglob("f.txt"))
    theirs = _descendants() - before
    assert theirs, "the pool's kernels should be running"
    await arm.delete("doomed")
    assert not root.exists()
    for _ in range(100):
        if not (_descendants() & theirs):
            break
        await asyncio.sleep(0.1)
    assert not (_descendants() & theirs)
    # The other pool, its session and its state are untouched.
    assert keeper.root.exists()
    still = await _execute(arm, keep_endpoint, "keep-1", execute_body("print(x)"))
    assert still.json()["result"]["stdout"] == "5\n"
    gone = await _execute(arm, doomed_endpoint, "doomed-1", execute_body("1"))
    assert gone.status == 404
    await arm.delete("keeper")


async def test_a_session_cannot_see_another_pools_files(arm: Arm, arm_server: LocalSessionsServer) -> None:
    a = await arm.create("poola")
    b = await arm.create("poolb")
    pool_a = arm_server.get_pool("poola", resource_group="rg1", subscription=SUB)
    assert pool_a is not None
    if pool_a.isolation != "bwrap":
        pytest.skip("pools are only kept apart by the bubblewrap sandbox, which is not available here")
    await _shell(
        arm, a["properties"]["poolManagementEndpoint"], "writer", "echo secret > /mnt/data/secret.txt"
    )
    secret = next(pool_a.root.rglob("secret.txt"))
    peek = await _shell(
        arm, b["properties"]["poolManagementEndpoint"], "reader", f"cat {secret}; ls {arm_server.root_dir}"
    )
    out = peek.json()["result"]
    assert "secret" not in out["stdout"]
    await arm.delete("poola")
    await arm.delete("poolb")


async def test_the_data_plane_of_pools_needs_the_servers_key(
    arm: Arm, arm_server: LocalSessionsServer
) -> None:
    body = await arm.create("keyed")
    endpoint = body["properties"]["poolManagementEndpoint"]
    reply = await arm.call(
        "POST",
        f"{endpoint}/executions?api-version={DATA_API}&identifier=abcd",
        body={"shellCommand": "true"},
        headers={"Authorization": "Bearer wrong"},
    )
    assert reply.status == 401
    unknown = await arm.call(
        "POST",
        endpoint.replace("/keyed", "/nothere") + f"/executions?api-version={DATA_API}&identifier=abcd",
        body={},
    )
    assert unknown.status == 404
    assert unknown.error["code"] == "SessionPoolNotFound"
    await arm.delete("keyed")


async def test_a_request_running_while_its_pool_is_deleted_ends_without_a_server_error(arm: Arm) -> None:
    body = await arm.create("racepool")
    endpoint = body["properties"]["poolManagementEndpoint"]
    running = asyncio.ensure_future(_shell(arm, endpoint, "sleeper", "sleep 20; echo done"))
    await asyncio.sleep(1.0)
    await arm.delete("racepool")
    reply = await asyncio.wait_for(running, 60)
    assert reply.status < 500, reply.body
    assert "done" not in reply.body.decode()
    after = await _shell(arm, endpoint, "sleeper", "true")
    assert after.status == 404

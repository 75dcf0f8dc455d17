"""The official SDK ``azure-containerapps-sandbox`` (sync clients), unchanged, against the real
local server over TLS on 127.0.0.1: the documented quickstart, stop/resume in both suspend
modes, snapshots, commit, lifecycle, stats, labels, images and the refusals it must see."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from azure.containerapps.sandbox import AutoDeletePolicy, AutoSuspendPolicy, LifecyclePolicy
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from autogen_aca_sessions.local import LocalSessionsServer
from tests.sandboxes._wire_helpers import RG, SUB, RecordingTransport, group_client

pytestmark = pytest.mark.asyncio(loop_scope="module")

GROUP = "sdk-sync"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[LocalSessionsServer]:
    async with LocalSessionsServer(tls=True) as srv:
        await srv.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        yield srv


async def test_quickstart_flow_keeps_files_and_a_background_process_across_stop_and_resume(
    server: LocalSessionsServer,
) -> None:
    def flow() -> dict[str, Any]:
        client = group_client(server, GROUP)
        sandbox = client.begin_create_sandbox(disk="python-3.12").result()
        out: dict[str, Any] = {"exec": sandbox.exec("python3 -c 'print(6*7)'")}
        sandbox.write_file("/root/a.txt", "hello")
        out["read"] = sandbox.read_file("/root/a.txt")
        sandbox.exec("nohup sleep 3600 >/dev/null 2>&1 &")
        sandbox.begin_stop().result()
        out["stopped"] = sandbox.get()
        sandbox.begin_resume().result()
        out["resumed"] = sandbox.get().state
        out["read_after"] = sandbox.read_file("/root/a.txt")
        out["pgrep"] = sandbox.exec("pgrep -f 'sleep 3600'")
        sandbox.begin_delete().result()
        try:
            sandbox.get()
        except ResourceNotFoundError as exc:
            out["after_delete"] = exc.status_code
        return out

    out = await asyncio.to_thread(flow)
    assert (out["exec"].exit_code, out["exec"].stdout, out["exec"].stderr) == (0, "42\n", "")
    assert out["read"] == b"hello"
    assert out["stopped"].state == "Suspended"
    assert out["stopped"].state_details.stopped_reason == "UserStopped"
    assert out["resumed"] == "Running"
    assert out["read_after"] == b"hello"
    assert out["pgrep"].exit_code == 0
    assert out["pgrep"].stdout.strip().isdigit()
    assert out["after_delete"] == 404


async def test_create_stop_and_resume_answer_their_final_state_so_the_pollers_look_once(
    server: LocalSessionsServer,
) -> None:
    transport = RecordingTransport(connection_verify=str(server.tls_ca_file))

    def flow() -> dict[str, list[str]]:
        client = group_client(server, GROUP, transport=transport)
        steps: dict[str, list[str]] = {}
        sandbox = client.begin_create_sandbox(disk="python-3.12").result()
        steps["create"], transport.sent[:] = list(transport.sent), []
        sandbox.begin_stop().result()
        steps["stop"], transport.sent[:] = list(transport.sent), []
        sandbox.begin_resume().result()
        steps["resume"], transport.sent[:] = list(transport.sent), []
        sandbox.begin_delete().result()
        steps["delete"] = list(transport.sent)
        return steps

    steps = await asyncio.to_thread(flow)
    base = f"/subscriptions/{SUB}/resourceGroups/{RG}/sandboxGroups/{GROUP}/sandboxes"
    assert steps["create"] == [f"PUT {base}"]
    sandbox_path = steps["stop"][0].split(" ", 1)[1].rsplit("/", 1)[0]
    # begin_stop and begin_resume always GET once after their POST; once is enough.
    assert steps["stop"] == [f"POST {sandbox_path}/stop", f"GET {sandbox_path}"]
    assert steps["resume"] == [f"POST {sandbox_path}/resume", f"GET {sandbox_path}"]
    assert steps["delete"] == [f"DELETE {sandbox_path}", f"GET {sandbox_path}"]


async def test_disk_mode_stop_keeps_the_disk_but_not_the_processes(server: LocalSessionsServer) -> None:
    def flow() -> tuple[str | None, bytes, int]:
        sandbox = group_client(server, GROUP).begin_create_sandbox(auto_suspend_mode="Disk").result()
        sandbox.write_file("/root/kept.txt", b"disk")
        sandbox.exec("nohup sleep 3600 >/dev/null 2>&1 &")
        sandbox.begin_stop().result()
        state = sandbox.get().state
        sandbox.begin_resume().result()
        kept = sandbox.read_file("/root/kept.txt")
        gone = sandbox.exec("pgrep -f 'sleep 3600'").exit_code
        sandbox.begin_delete().result()
        return state, kept, gone

    state, kept, gone = await asyncio.to_thread(flow)
    assert state == "Stopped"
    assert kept == b"disk"
    assert gone == 1  # pgrep: no such process


async def test_a_snapshot_restores_the_disk_into_a_new_sandbox(
    server: LocalSessionsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # begin_create_snapshot polls through a group client the SDK builds without the caller's
    # connection_verify (an SDK bug), so requests must trust the server's CA from the environment.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.tls_ca_file))

    def flow() -> dict[str, Any]:
        client = group_client(server, GROUP)
        source = client.begin_create_sandbox().result()
        source.write_file("/root/notes/plan.txt", "step 1")
        snap = source.begin_create_snapshot(name="before").result()
        source.write_file("/root/notes/plan.txt", "changed later")
        restored = client.begin_create_sandbox(disk=None, snapshot_id=snap.id).result()
        out = {
            "snap": snap,
            "listed": [s.id for s in client.list_snapshots()],
            "got": client.get_snapshot(snap.id),
            "restored": restored.read_file("/root/notes/plan.txt"),
            "source_ref": restored.get().sources_ref,
        }
        client.begin_delete_snapshot(snap.id).result()
        out["listed_after"] = [s.id for s in client.list_snapshots()]
        restored.begin_delete().result()
        source.begin_delete().result()
        return out

    out = await asyncio.to_thread(flow)
    assert out["snap"].id
    assert out["snap"].labels == {"name": "before"}
    assert out["got"].sandbox_id == out["snap"].sandbox_id
    assert out["snap"].id in out["listed"]
    assert out["restored"] == b"step 1"
    assert out["source_ref"].snapshot.id == out["snap"].id
    assert out["snap"].id not in out["listed_after"]


async def test_commit_makes_a_disk_image_that_new_sandboxes_start_from(
    server: LocalSessionsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.tls_ca_file))

    def flow() -> dict[str, Any]:
        client = group_client(server, GROUP)
        source = client.begin_create_sandbox().result()
        source.write_file("/root/tool.sh", "echo built")
        image = source.begin_commit(name="toolbox").result()
        child = client.begin_create_sandbox(disk=None, disk_id=image.id).result()
        out: dict[str, Any] = {
            "image": image,
            "listed": [i.id for i in client.list_disk_images()],
            "child": child.exec("bash /root/tool.sh").stdout,
        }
        try:
            client.delete_disk_image(image.id)
        except HttpResponseError as exc:
            out["in_use"] = (exc.status_code, exc.error.code if exc.error else None)
        child.begin_delete().result()
        client.begin_delete_disk_image(image.id).result()
        source.begin_delete().result()
        return out

    out = await asyncio.to_thread(flow)
    assert out["image"].status.state == "Ready"
    assert out["image"].name == "toolbox"
    assert out["image"].id in out["listed"]
    assert out["child"] == "built\n"
    assert out["in_use"] == (409, "ResourceInUse")


async def test_a_registry_disk_image_is_refused_as_failed_not_faked(server: LocalSessionsServer) -> None:
    def flow() -> str:
        try:
            group_client(server, GROUP).begin_create_disk_image(
                "mcr.microsoft.com/azurelinux/base/python:3.12"
            ).result()
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    assert "failed" in (await asyncio.to_thread(flow)).lower()


async def test_lifecycle_policy_is_applied_and_an_idle_sandbox_suspends_itself(
    server: LocalSessionsServer,
) -> None:
    def flow() -> dict[str, Any]:
        sandbox = group_client(server, GROUP).begin_create_sandbox(auto_suspend_seconds=600).result()
        policy = LifecyclePolicy(
            auto_suspend=AutoSuspendPolicy(enabled=True, interval=1, mode="Memory"),
            auto_delete=AutoDeletePolicy(enabled=False),
        )
        out: dict[str, Any] = {"answer": sandbox.set_lifecycle_policy(policy)}
        # Wait on the state (the runtime suspends it after 1 s without activity; Stopping is
        # the way there, not where it ends).
        for _ in range(600):
            current = sandbox.get()
            if current.state not in ("Running", "Stopping"):
                break
            time.sleep(0.05)
        out["idle"] = current
        sandbox.begin_resume().result()
        out["resumed"] = sandbox.exec("echo back").stdout
        sandbox.begin_delete().result()
        return out

    out = await asyncio.to_thread(flow)
    assert out["answer"].auto_suspend.interval == 1
    assert out["answer"].auto_suspend.mode == "Memory"
    assert out["idle"].state == "Suspended"
    assert out["idle"].state_details.stopped_reason == "Idle"
    assert out["idle"].lifecycle.auto_suspend.interval == 1
    assert out["resumed"] == "back\n"


async def test_stats_labels_and_public_images(server: LocalSessionsServer) -> None:
    def flow() -> dict[str, Any]:
        client = group_client(server, GROUP)
        tagged = client.begin_create_sandbox(
            labels={"team": "blue"}, memory="512Mi", disk_size="1Gi"
        ).result()
        other = client.begin_create_sandbox(labels={"team": "red"}).result()
        tagged.write_file("/root/blob.bin", b"x" * 100_000)
        out = {
            "stats": tagged.get_stats(),
            "blue": [s.id for s in client.list_sandboxes(labels={"team": "blue"})],
            "public": [i.name for i in client.list_public_disk_images()],
            "one_public": client.get_public_disk_image("python-3.12").name,
            "tagged": tagged.sandbox_id,
            "resources": tagged.get().resources,
        }
        tagged.begin_delete().result()
        other.begin_delete().result()
        return out

    out = await asyncio.to_thread(flow)
    assert out["blue"] == [out["tagged"]]
    assert out["stats"].memory.total_bytes == 512 * 1024**2
    assert out["stats"].storage.total_bytes == 1024**3
    assert out["stats"].storage.used_bytes >= 100_000
    assert out["stats"].cpu.usage_core_nano_seconds > 0
    assert (out["resources"].memory, out["resources"].disk) == ("512Mi", "1Gi")
    assert "python-3.12" in out["public"]
    assert "ubuntu" in out["public"]
    assert out["one_public"] == "python-3.12"


async def test_what_the_local_server_does_not_serve_is_a_clear_400(server: LocalSessionsServer) -> None:
    def flow() -> list[tuple[int | None, str | None]]:
        client = group_client(server, GROUP)
        seen: list[tuple[int | None, str | None]] = []
        try:
            client.begin_create_sandbox(ports=[8080])
        except HttpResponseError as exc:
            seen.append((exc.status_code, exc.error.code if exc.error else None))
        sandbox = client.begin_create_sandbox().result()
        try:
            sandbox.add_port(8080)
        except HttpResponseError as exc:
            seen.append((exc.status_code, exc.error.code if exc.error else None))
        sandbox.begin_delete().result()
        return seen

    assert await asyncio.to_thread(flow) == [(400, "InvalidRequest"), (400, "OperationNotSupportedLocally")]

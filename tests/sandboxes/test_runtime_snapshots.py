"""Snapshots and disk images on the real runtime: what they keep, restoring, committing, refusals."""

from __future__ import annotations

import pytest

from autogen_aca_sessions.local.runtime.sandboxes import (
    AutoSuspendPolicy,
    ConflictingOperation,
    DiskImageState,
    InvalidRequest,
    LifecyclePolicy,
    NotFound,
    ResourceInUse,
    SandboxResources,
    SandboxRuntime,
    SandboxSource,
    SandboxSpec,
    SandboxState,
    SnapshotContent,
    SourceKind,
    SuspendMode,
    UnsupportedSnapshotContent,
)
from tests.sandboxes._helpers import GROUP, MakeSandbox


async def test_snapshot_restores_the_disk_into_a_new_sandbox(
    runtime: SandboxRuntime, make_sandbox: MakeSandbox
) -> None:
    resources = SandboxResources(cpu_millicores=500, memory_bytes=512 << 20, disk_bytes=1 << 30)
    original = await make_sandbox(SandboxSpec(resources=resources, environment={"E": "kept"}))
    await original.write_file("/root/a.txt", b"before")
    await original.exec_shell("mkdir -p /mnt/data/d && echo data > /mnt/data/d/x && ln -s a.txt /root/link")
    snapshot = await runtime.snapshot(GROUP, original.id, {"name": "s1"})
    assert snapshot.keeps == frozenset({SnapshotContent.DISK})
    assert snapshot.labels == {"name": "s1"}
    assert runtime.get_snapshot(GROUP, snapshot.id) == snapshot
    await original.write_file("/root/a.txt", b"after")

    restored = await make_sandbox(SandboxSpec(source=SandboxSource(SourceKind.SNAPSHOT, snapshot.id)))
    assert await restored.read_file("/root/a.txt") == b"before"
    assert await restored.read_file("/mnt/data/d/x") == b"data\n"
    assert (await restored.exec_shell("readlink /root/link; echo $E")).stdout == "a.txt\nkept\n"
    # The restored files belong to the new sandbox's own user: it can change them.
    assert (await restored.exec_shell("echo mine >> /root/a.txt && cat /root/a.txt")).stdout == "beforemine\n"
    assert restored.resources == resources
    assert await original.read_file("/root/a.txt") == b"after"


async def test_snapshot_of_a_suspended_sandbox_leaves_it_suspended(
    runtime: SandboxRuntime, make_sandbox: MakeSandbox
) -> None:
    sandbox = await make_sandbox()
    await sandbox.write_file("/root/a.txt", b"x")
    await sandbox.stop()
    await runtime.snapshot(GROUP, sandbox.id)
    assert sandbox.state is SandboxState.SUSPENDED


async def test_memory_in_a_snapshot_is_refused_not_half_kept(
    runtime: SandboxRuntime, make_sandbox: MakeSandbox
) -> None:
    sandbox = await make_sandbox()
    with pytest.raises(UnsupportedSnapshotContent, match="CRIU"):
        await runtime.snapshot(
            GROUP, sandbox.id, keep=frozenset({SnapshotContent.DISK, SnapshotContent.MEMORY})
        )
    assert runtime.list_snapshots(GROUP) == []


async def test_commit_makes_an_image_new_sandboxes_start_from(
    runtime: SandboxRuntime, make_sandbox: MakeSandbox
) -> None:
    sandbox = await make_sandbox()
    await sandbox.exec_shell("mkdir -p /root/app && echo 'print(\"from image\")' > /root/app/main.py")
    image = await runtime.commit(GROUP, sandbox.id, {"name": "app"})
    assert (image.state, image.name, image.source_sandbox_id) == (DiskImageState.READY, "app", sandbox.id)
    assert image.size_bytes > 0

    child = await make_sandbox(SandboxSpec(source=SandboxSource(SourceKind.DISK_IMAGE, image.id)))
    assert (await child.exec_shell("python3 /root/app/main.py")).stdout == "from image\n"
    with pytest.raises(ResourceInUse):
        await runtime.delete_disk_image(GROUP, image.id)
    await runtime.delete(GROUP, child.id)
    await runtime.delete_disk_image(GROUP, image.id)
    assert runtime.list_disk_images(GROUP) == []


async def test_registry_images_fail_with_a_reason_and_cannot_be_used(runtime: SandboxRuntime) -> None:
    image = runtime.create_registry_image(GROUP, "mcr.microsoft.com/devcontainers/python:3.12")
    assert image.state is DiskImageState.FAILED
    assert image.message is not None
    assert "registry" in image.message
    with pytest.raises(InvalidRequest):
        await runtime.create(GROUP, SandboxSpec(source=SandboxSource(SourceKind.DISK_IMAGE, image.id)))


async def test_unknown_sources_are_refused(runtime: SandboxRuntime) -> None:
    with pytest.raises(InvalidRequest, match=r"python-3\.12"):
        await runtime.create(GROUP, SandboxSpec(source=SandboxSource(SourceKind.PUBLIC_IMAGE, "windows")))
    with pytest.raises(NotFound):
        await runtime.create(GROUP, SandboxSpec(source=SandboxSource(SourceKind.SNAPSHOT, "nope")))
    assert runtime.list_sandboxes(GROUP) == []


async def test_public_images_list_what_create_accepts(runtime: SandboxRuntime) -> None:
    names = [image.name for image in runtime.public_images()]
    assert "python-3.12" in names
    assert "ubuntu" in names
    assert runtime.public_image("PYTHON3.12").name == "python-3.12"
    for name in names:
        info = await runtime.create(GROUP, SandboxSpec(source=SandboxSource(SourceKind.PUBLIC_IMAGE, name)))
        await runtime.delete(GROUP, info.id)


async def test_snapshot_of_a_none_mode_sandbox_after_stop_is_a_conflict(
    runtime: SandboxRuntime, make_sandbox: MakeSandbox
) -> None:
    spec = SandboxSpec(lifecycle=LifecyclePolicy(AutoSuspendPolicy(True, 300, SuspendMode.NONE)))
    sandbox = await make_sandbox(spec)
    await sandbox.stop()
    with pytest.raises(ConflictingOperation, match="kept no disk"):
        await runtime.snapshot(GROUP, sandbox.id)

"""What a sandbox cannot reach: other sandboxes, the server's files and processes, paths out of its disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autogen_aca_sessions.local.runtime.sandboxes import (
    FileNotFound,
    InvalidRequest,
    PathOutsideSandbox,
    SandboxRuntime,
)
from tests.sandboxes._helpers import MakeSandbox

REPO = Path(__file__).resolve().parents[2]


async def test_a_sandbox_cannot_see_another_sandboxs_files_or_processes(
    runtime: SandboxRuntime, make_sandbox: MakeSandbox
) -> None:
    a = await make_sandbox()
    b = await make_sandbox()
    await a.write_file("/root/secret", b"only a")
    await a.exec_shell("nohup sleep 3700 >/dev/null 2>&1 &")
    assert (await b.exec_shell("pgrep -f 'sleep 3700'")).exit_code == 1
    assert (await b.exec_shell(f"cat {a.disk}/root/secret")).exit_code != 0
    assert (await b.exec_shell(f"ls -A {runtime.root}")).stdout == ""
    assert (await b.exec_shell("cat /root/secret")).exit_code != 0
    # Its process list holds only bubblewrap's init, the agent and the command itself.
    ps = await b.exec_shell("ls /proc | grep -c '^[0-9]'")
    assert int(ps.stdout) <= 6, ps
    assert a.uid != b.uid or a.uid is None


async def test_the_servers_files_keys_and_network_are_out_of_reach(
    runtime: SandboxRuntime, make_sandbox: MakeSandbox
) -> None:
    sandbox = await make_sandbox()
    assert (await sandbox.exec_shell(f"cat {REPO}/pyproject.toml")).exit_code != 0
    assert (await sandbox.exec_shell(f"ls -A {runtime.host.run_base}")).stdout == ""
    # /root is the sandbox's own (only the interpreter's mount point shows), not the host's.
    host_root = sorted(os.listdir("/root"))
    inside = (await sandbox.exec_shell("ls -A /root")).stdout.split()
    assert [name for name in inside if name in host_root and name != ".pyenv"] == []
    if os.geteuid() == 0:
        assert (await sandbox.exec_shell("cat /etc/shadow")).exit_code != 0
    # Only the loopback interface exists: no packet can leave the sandbox.
    interfaces = (await sandbox.exec_shell("tail -n +3 /proc/net/dev | cut -d: -f1")).stdout.split()
    assert interfaces == ["lo"]
    assert (await sandbox.exec_shell("touch /usr/x /etc/x")).exit_code != 0


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "/root/../etc/passwd", "/root/a\x00b", "/mnt", "/tmp/x", "..\\x", "/proc/self/environ"],
)
async def test_file_paths_outside_the_disk_are_refused(make_sandbox: MakeSandbox, path: str) -> None:
    sandbox = await make_sandbox()
    with pytest.raises(PathOutsideSandbox):
        await sandbox.read_file(path)
    with pytest.raises(PathOutsideSandbox):
        await sandbox.write_file(path, b"x")


async def test_links_planted_inside_do_not_lead_out(make_sandbox: MakeSandbox) -> None:
    a = await make_sandbox()
    b = await make_sandbox()
    await b.write_file("/root/b-secret", b"b")
    planted = await a.exec_shell(
        f"ln -s /etc /root/etc && ln -s /etc/passwd /root/pw && ln -s {b.disk}/root /root/b && "
        "echo in > /root/a.txt && ln -s a.txt /root/inlink"
    )
    assert planted.exit_code == 0
    for path in ("/root/etc/passwd", "/root/pw", "/root/b/b-secret"):
        with pytest.raises((PathOutsideSandbox, FileNotFound)):
            await a.read_file(path)
    with pytest.raises((PathOutsideSandbox, FileNotFound)):
        await a.write_file("/root/etc/evil", b"x")
    with pytest.raises((PathOutsideSandbox, FileNotFound)):
        await a.write_file("/root/b/evil", b"x")
    assert not (b.disk / "root" / "evil").exists()
    # Links leading out are not listed; a link inside is, as a link.
    listing = {e.name: e for e in await a.list_files("/root")}
    assert "pw" not in listing
    assert "etc" not in listing
    assert (listing["inlink"].is_symlink, listing["inlink"].symlink_target) == (True, "a.txt")
    assert await a.read_file("/root/inlink") == b"in\n"
    # Deleting a link removes the link only.
    await a.delete_file("/root/b")
    assert await b.read_file("/root/b-secret") == b"b"


async def test_bad_command_arguments_are_invalid_requests(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    for call in (
        sandbox.exec_shell(""),
        sandbox.exec_argv([]),
        sandbox.exec_argv(["echo", "a\x00b"]),
        sandbox.exec_shell("true", timeout=-1),
        sandbox.exec_shell("true", env={"A=B": "x"}),
        sandbox.exec_shell("true", cwd="relative"),
    ):
        with pytest.raises(InvalidRequest):
            await call
    missing_dir = await sandbox.exec_shell("true", cwd="/root/nope")
    assert missing_dir.exit_code != 0


async def test_init_pid_names_the_sandboxs_own_network_namespace(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    run = sandbox.container
    assert run is not None
    assert run.init_pid is not None
    inside = os.readlink(f"/proc/{run.init_pid}/ns/net")
    assert inside != os.readlink("/proc/self/ns/net")
    ours = (await sandbox.exec_shell("readlink /proc/self/ns/net")).stdout.strip()
    assert ours == inside

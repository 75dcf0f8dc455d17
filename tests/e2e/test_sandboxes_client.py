"""SandboxesClient against the real local server's Sandboxes data plane (real bubblewrap sandboxes)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from tests.e2e._sandbox_group import served_group

from autogen_aca_sessions.client.errors import NotFoundError
from autogen_aca_sessions.client.sandboxes import SandboxesClient, SandboxState

RG = "rg-client"
GROUP = "client-group"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[SandboxesClient]:
    async with served_group(GROUP, RG) as served:
        yield served.client


async def test_shell_files_and_suspend_resume_keep_a_background_process(client: SandboxesClient) -> None:
    sandbox = await client.create(labels={"who": "test"})
    assert sandbox.labels == {"who": "test"}
    result = await client.exec_shell(sandbox.id, "echo out; echo err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    await client.write_file(sandbox.id, "/root/work/data.bin", b"\x00\xffbytes")
    assert await client.read_file(sandbox.id, "/root/work/data.bin") == b"\x00\xffbytes"
    names = {f.name: f for f in await client.list_files(sandbox.id, "/root/work")}
    assert names["data.bin"].size == 7
    assert not names["data.bin"].is_directory
    await client.exec_shell(sandbox.id, "nohup sleep 3600 >/dev/null 2>&1 & echo $! > /root/pid")
    assert (await client.stop(sandbox.id)).state is not SandboxState.RUNNING
    assert (await client.resume(sandbox.id)).state is SandboxState.RUNNING
    alive = await client.exec_shell(sandbox.id, "kill -0 $(cat /root/pid) && echo alive")
    assert alive.stdout == "alive\n"
    await client.delete(sandbox.id)


async def test_a_deleted_sandbox_is_not_found(client: SandboxesClient) -> None:
    sandbox = await client.create()
    await client.delete(sandbox.id)
    with pytest.raises(NotFoundError):
        await client.get(sandbox.id)
    with pytest.raises(NotFoundError):
        await client.exec_shell("no-such-sandbox", "true")


async def test_a_timed_out_command_keeps_its_partial_output(client: SandboxesClient) -> None:
    sandbox = await client.create()
    result = await client.exec_shell(sandbox.id, "echo started; sleep 30", timeout=1)
    assert result.timed_out
    assert result.stdout == "started\n"
    assert (await client.exec_shell(sandbox.id, "echo usable")).stdout == "usable\n"
    await client.delete(sandbox.id)

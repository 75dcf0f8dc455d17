"""ACASandboxCodeExecutor against the real local server: real bubblewrap sandboxes, a real
interpreter kept inside the sandbox between blocks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock
from tests.e2e._sandbox_group import py, served_group

from autogen_aca_sessions.client.errors import NotFoundError
from autogen_aca_sessions.client.sandboxes import SandboxesClient, SandboxState
from autogen_aca_sessions.executor import ACASandboxCodeExecutor, SandboxGoneError

RG = "rg-executor"
GROUP = "executor-group"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[SandboxesClient]:
    async with served_group(GROUP, RG) as served:
        yield served.client


async def run(executor: ACASandboxCodeExecutor, *blocks: CodeBlock) -> tuple[int, str]:
    result = await executor.execute_code_blocks(list(blocks), CancellationToken())
    return result.exit_code, result.output


async def test_variables_files_and_a_background_process_survive_suspend_and_resume(
    client: SandboxesClient,
) -> None:
    executor = ACASandboxCodeExecutor(client)
    assert await run(executor, py("x = 41\nprint('set')")) == (0, "set\n")
    await run(
        executor,
        CodeBlock(
            code="echo kept > notes.txt; nohup sleep 3600 >/dev/null 2>&1 & echo $! > pid", language="sh"
        ),
    )
    await executor.suspend()
    assert executor.sandbox_id is not None
    assert (await client.get(executor.sandbox_id)).state is not SandboxState.RUNNING
    await executor.resume()
    assert await run(executor, py("print(x + 1)")) == (0, "42\n")
    assert await run(
        executor, CodeBlock(code="cat notes.txt; kill -0 $(cat pid) && echo alive", language="sh")
    ) == (
        0,
        "kept\nalive\n",
    )
    assert "notes.txt" in await executor.get_file_list()
    await executor.restart()


async def test_a_second_executor_resumes_the_same_sandbox_from_saved_state(client: SandboxesClient) -> None:
    first = ACASandboxCodeExecutor(client)
    await run(first, py("import math\nrows = [math.sqrt(9), 4.0]"))
    await first.suspend()
    state = await first.save_state()
    await first.stop()  # a suspended sandbox is kept for the saved state
    second = ACASandboxCodeExecutor(client)
    await second.load_state(state)
    assert await run(second, py("print(sum(rows))")) == (0, "7.0\n")
    assert second.sandbox_id == state["sandbox_id"]
    await second.stop()
    with pytest.raises(NotFoundError):
        await client.get(str(state["sandbox_id"]))


async def test_restart_releases_the_sandbox_and_the_next_block_gets_a_new_one(
    client: SandboxesClient,
) -> None:
    executor = ACASandboxCodeExecutor(client)
    await run(executor, py("y = 1"))
    old = executor.sandbox_id
    assert old is not None
    await executor.restart()
    with pytest.raises(NotFoundError):
        await client.get(old)
    code, output = await run(executor, py("print(y)"))
    assert code == 1
    assert "NameError" in output
    assert executor.sandbox_id not in (None, old)
    await executor.stop()


async def test_a_wrong_or_deleted_sandbox_id_is_a_clear_error(client: SandboxesClient) -> None:
    executor = ACASandboxCodeExecutor(client)
    with pytest.raises(SandboxGoneError, match="no-such-sandbox"):
        await executor.load_state({"sandbox_id": "no-such-sandbox"})
    assert executor.sandbox_id is None
    other = ACASandboxCodeExecutor(client)
    await run(other, py("z = 1"))
    assert other.sandbox_id is not None
    await client.delete(other.sandbox_id)
    with pytest.raises(SandboxGoneError, match="deleted"):
        await run(other, py("print(z)"))


async def test_a_timeout_keeps_partial_output_and_the_interpreter(client: SandboxesClient) -> None:
    executor = ACASandboxCodeExecutor(client, timeout=1)
    await run(executor, py("kept = 'yes'"))
    code, output = await run(executor, py("import time\nprint('started', flush=True)\ntime.sleep(60)"))
    assert code == 124
    assert output.startswith("started\n")
    assert "Timed out after 1 s" in output
    assert await run(executor, py("print(kept)")) == (0, "yes\n")
    code, output = await run(executor, CodeBlock(code="echo begun; sleep 60", language="sh"))
    assert code == 124
    assert output.startswith("begun\n")
    await executor.stop()


async def test_blocks_run_in_order_and_stop_at_the_first_failure(client: SandboxesClient) -> None:
    executor = ACASandboxCodeExecutor(client)
    result = await executor.execute_code_blocks(
        [py("print('a')"), CodeBlock(code="echo b; exit 3", language="sh"), py("print('never')")],
        CancellationToken(),
    )
    assert result.exit_code == 3
    assert result.output == "a\nb\n"
    assert len(result.blocks) == 2
    await executor.stop()


async def test_cancellation_interrupts_the_block_and_keeps_the_interpreter(client: SandboxesClient) -> None:
    executor = ACASandboxCodeExecutor(client, timeout=120)
    await run(executor, py("n = 5"))
    token = CancellationToken()
    running = asyncio.ensure_future(
        executor.execute_code_blocks(
            [py("open('started', 'w').close()\nimport time\ntime.sleep(100)")], token
        )
    )
    assert executor.sandbox_id is not None
    sandbox_id = executor.sandbox_id
    # Wait inside the sandbox until the block is running (no wall-clock margin on this side).
    waited = await client.exec_shell(
        sandbox_id, "until test -e /root/work/started; do sleep 0.05; done", timeout=60
    )
    assert waited.exit_code == 0
    token.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await run(executor, py("print(n)")) == (0, "5\n")
    await executor.stop()


async def test_files_go_up_and_come_back(client: SandboxesClient, tmp_path: Path) -> None:
    executor = ACASandboxCodeExecutor(client, work_dir=tmp_path / "out")
    (tmp_path / "out").mkdir()
    source = tmp_path / "in.csv"
    source.write_bytes(b"a,b\n1,2\n")
    await executor.upload_files([source], CancellationToken())
    assert await run(executor, py("print(open('in.csv').read().splitlines()[1])")) == (0, "1,2\n")
    await run(executor, py("open('made.txt', 'w').write('made')"))
    assert await executor.get_file_list() == ["in.csv", "made.txt"]
    [local] = await executor.download_files(["made.txt"], CancellationToken())
    assert local.read_text() == "made"
    await executor.stop()

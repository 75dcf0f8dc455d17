"""ACASandboxCodeExecutor keeps ACADynamicSessionsCodeExecutor's contract, on the real local
server (real bubblewrap sandboxes, the real interpreter inside them): component config, injected
functions in every new interpreter, the shared renderer's text, and a loss of the interpreter
told to the model, never silent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from autogen_core import CancellationToken, ComponentModel
from autogen_core.code_executor import CodeBlock, FunctionWithRequirements
from tests.e2e._sandbox_group import ServedGroup, py, served_group

from autogen_aca_sessions.client.sandboxes import SandboxesClient, SuspendMode
from autogen_aca_sessions.executor import ACASandboxCodeExecutor, ACASandboxCodeResult
from autogen_aca_sessions.local import LocalSessionsServer

RG = "rg-parity"
GROUP = "parity-group"
KEY_ENV = "ACA_TEST_SANDBOX_PARITY_KEY"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served() -> AsyncIterator[ServedGroup]:
    async with served_group(GROUP, RG) as group:
        yield group


@pytest.fixture
def server(served: ServedGroup) -> LocalSessionsServer:
    return served.server


@pytest.fixture
def client(served: ServedGroup) -> SandboxesClient:
    return served.client


async def run(executor: ACASandboxCodeExecutor, *blocks: CodeBlock) -> ACASandboxCodeResult:
    return await executor.execute_code_blocks(list(blocks), CancellationToken())


def add_tax(amount: float, rate: float = 0.2) -> float:
    """The amount with tax added."""
    return round(amount * (1 + rate), 2)


frame_of = FunctionWithRequirements.from_str(
    'def frame_of(rows: int) -> "pandas.DataFrame":\n'
    '    """A DataFrame of ``rows`` rows."""\n'
    '    return pandas.DataFrame({"n": list(range(rows))})\n',
    python_packages=["pandas"],
    global_imports=["pandas"],
)


async def test_the_component_config_carries_the_sandbox_and_a_loaded_executor_continues_in_it(
    server: LocalSessionsServer, client: SandboxesClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, server.api_key)
    first = ACASandboxCodeExecutor(client, api_key_env=KEY_ENV, timeout=30, suppress_result_output=True)
    await run(first, py("kept = 'from the first executor'"))
    await first.suspend()
    model = first.dump_component()
    assert model.provider == "autogen_aca_sessions.executor.ACASandboxCodeExecutor"
    assert model.config["sandbox_id"] == first.sandbox_id
    assert server.api_key not in model.model_dump_json()
    # A new process would have only this JSON.
    loaded = ACASandboxCodeExecutor.load_component(
        ComponentModel.model_validate_json(model.model_dump_json())
    )
    assert loaded.sandbox_id == first.sandbox_id
    assert loaded.timeout == 30
    result = await run(loaded, py("print(kept)"))
    assert (result.exit_code, result.output) == (0, "from the first executor\n")
    assert not result.state_lost
    await loaded.stop()


async def test_injected_functions_are_loaded_in_every_new_interpreter_and_the_loss_is_told(
    client: SandboxesClient,
) -> None:
    executor = ACASandboxCodeExecutor(
        client, functions=[add_tax, frame_of], suspend_mode=SuspendMode.DISK, timeout=60
    )
    assert executor.functions == ["add_tax", "frame_of"]
    assert '"""The amount with tax added."""' in executor.format_functions_for_prompt()
    first = await run(
        executor, py("total = add_tax(100)\nfrom functions import frame_of\nprint(total, len(frame_of(3)))")
    )
    assert (first.exit_code, first.output) == (0, "120.0 3\n")
    assert not first.state_lost
    await run(executor, py("open('kept.txt', 'w').write('on disk')"))
    # Disk mode: the suspend ends every process, the interpreter with its variables.
    await executor.suspend()
    await executor.resume()
    after = await run(executor, py("print(add_tax(10), open('kept.txt').read())"))
    assert after.exit_code == 0
    assert after.output.startswith("12.0 on disk\n")
    assert after.state_lost
    assert after.interpreter_restarted
    assert "variables and imports from earlier blocks are gone" in after.output
    assert after.notes
    assert after.notes[0] in after.output
    gone = await run(executor, py("print(total)"))
    assert gone.exit_code == 1
    assert "NameError" in gone.output
    assert not gone.state_lost  # told once, not at every block
    await executor.stop()


async def test_functions_whose_packages_the_sandbox_lacks_are_refused_by_name(
    client: SandboxesClient,
) -> None:
    needs = FunctionWithRequirements.from_str(
        "def nothing():\n    return 1\n", python_packages=["surely-not-installed-pkg>=1"]
    )
    executor = ACASandboxCodeExecutor(client, functions=[needs])
    with pytest.raises(ValueError, match="surely-not-installed-pkg>=1"):
        await run(executor, py("print(1)"))
    await executor.stop()


async def test_functions_that_fail_to_load_are_a_value_error(client: SandboxesClient) -> None:
    broken = FunctionWithRequirements.from_str(
        "def broken():\n    return 1\n", global_imports=["no_such_module_x"]
    )
    executor = ACASandboxCodeExecutor(client, functions=[broken])
    with pytest.raises(
        ValueError, match=r"(?s)Functions failed to load: .*No module named 'no_such_module_x'"
    ):
        await run(executor, py("print(1)"))
    await executor.stop()


async def test_the_text_follows_the_dynamic_executors_conventions(client: SandboxesClient) -> None:
    executor = ACASandboxCodeExecutor(client)
    shown = await run(executor, py("x = 6\nx * 7"))
    assert shown.output == "42\n"
    raised = await run(executor, py("def f():\n    raise ValueError('bad value')\nf()"))
    assert raised.exit_code == 1
    # The traceback names the block's own lines, not the interpreter's machinery.
    assert "raise ValueError('bad value')" in raised.output
    assert "server.py" not in raised.output
    unsupported = await run(executor, CodeBlock(code="1", language="cobol"))
    assert unsupported.exit_code == 1
    assert unsupported.output.startswith("Unsupported language 'cobol'")
    exited = await run(executor, py("import sys\nsys.exit(3)"))
    assert exited.exit_code == 3
    await executor.stop()


async def test_output_over_max_output_chars_is_cut_and_marked(client: SandboxesClient) -> None:
    executor = ACASandboxCodeExecutor(client, max_output_chars=50)
    flood = await run(executor, py("print('y' * 10_000_000)"))
    assert flood.stdout_truncated
    assert "[stdout truncated after 50 characters]" in flood.output
    assert flood.stdout == "y" * 50
    await executor.stop()


async def test_suppress_result_output_leaves_the_value_out(client: SandboxesClient) -> None:
    executor = ACASandboxCodeExecutor(client, suppress_result_output=True)
    assert (await run(executor, py("6 * 7"))).output == ""
    await executor.stop()


async def test_a_block_too_large_for_one_command_still_runs(client: SandboxesClient) -> None:
    executor = ACASandboxCodeExecutor(client)
    lines = "".join(f"v{i} = {i}  # {'pad' * 20}\n" for i in range(3000))
    result = await run(executor, py(lines + "print(v2999)"))
    assert (result.exit_code, result.output) == (0, "2999\n")
    await executor.stop()


async def test_an_interpreter_that_ends_during_a_block_is_told_and_the_next_block_has_a_new_one(
    client: SandboxesClient,
) -> None:
    executor = ACASandboxCodeExecutor(client, functions=[add_tax])
    await run(executor, py("lost = 1"))
    ended = await run(executor, py("import os\nprint('before')\nos._exit(9)"))
    assert ended.exit_code != 0
    assert ended.output.startswith("before\n")
    assert ended.state_lost
    assert "interpreter ended during this block" in ended.output
    after = await run(executor, py("print(add_tax(1))\nprint('lost' in globals())"))
    assert (after.exit_code, after.output) == (0, "1.2\nFalse\n")
    await executor.stop()


async def test_a_block_that_ignores_its_time_limit_ends_the_interpreter_and_says_so(
    client: SandboxesClient,
) -> None:
    executor = ACASandboxCodeExecutor(client, timeout=1)
    stubborn = (
        "import time\nprint('begun', flush=True)\n"
        "while True:\n    try:\n        time.sleep(100)\n    except KeyboardInterrupt:\n        pass\n"
    )
    result = await run(executor, py("v = 1"), py(stubborn))
    assert result.exit_code == 124
    assert result.timed_out
    assert result.state_lost
    assert result.output.startswith("begun\n")
    assert "the interpreter was ended" in result.output
    assert "state was kept" not in result.output
    assert (await run(executor, py("print('v' in globals())"))).output == "False\n"
    await executor.stop()


async def test_child_processes_output_arrives_in_order_with_the_blocks_own(client: SandboxesClient) -> None:
    executor = ACASandboxCodeExecutor(client)
    code = (
        "import os, subprocess, sys\n"
        "print('a')\n"
        "subprocess.run(['echo', 'b'])\n"
        "os.system('echo c')\n"
        "print('d')\n"
        "subprocess.run(['sh', '-c', 'echo to-stderr >&2'])\n"
        "written = os.write(1, b'e\\n')\n"
    )
    result = await run(executor, py(code))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "a\nb\nc\nd\ne\n", "to-stderr\n")
    await executor.stop()


async def test_a_background_child_does_not_hold_the_block_nor_leak_into_the_next(
    client: SandboxesClient,
) -> None:
    executor = ACASandboxCodeExecutor(client)
    started = await run(
        executor,
        py(
            "import subprocess\n"
            "child = subprocess.Popen(['sh', '-c', 'echo early; while :; do sleep 0.01; echo late; done'])\n"
            "print('started')"
        ),
    )
    assert started.exit_code == 0
    # What the child wrote while its block ran is the block's (interleaved with print's writes).
    assert "started" in started.output
    # The child still writes, but it holds the first block's pipe, which now goes to the
    # interpreter's log: nothing of it reaches a later block, and it lives on.
    for _ in range(3):
        later = await run(executor, py("print(child.poll())"))
        assert later.output == "None\n"
    await run(executor, py("child.kill()"))
    await executor.stop()

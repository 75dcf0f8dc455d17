"""The Agent Framework tools and CodeAct provider on ACA Sandboxes: real Agent Framework agents, a
scripted model, the real local server on loopback with real bubblewrap sandboxes.

One sandbox per ``AgentSession``; suspended when a run ends; a new process resumes it from the
``AgentSession``'s serialised state; a deleted sandbox is a clear tool result.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

pytest.importorskip("agent_framework")

from agent_framework import Agent, AgentLoopMiddleware, AgentSession, Content

from autogen_aca_sessions.agent_framework import (
    SANDBOX_STATE_KEY,
    CodeActProvider,
    CodeBackend,
    DynamicSessionsCodeActProvider,
    Sandboxes,
    SandboxesConfig,
    session_tools,
)
from autogen_aca_sessions.agent_framework.testing import ScriptedChatClient, ToolCall
from autogen_aca_sessions.client.sandboxes import SandboxesClient, SandboxState
from autogen_aca_sessions.local import LocalSessionsServer
from tests.af_adapter._helpers import call, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-af"
GROUP = "af-group"
REPO = Path(__file__).resolve().parents[2]


def growth(values: list[float]) -> list[float]:
    """Relative change between consecutive values."""
    return [values[i + 1] / values[i] - 1 for i in range(len(values) - 1)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[LocalSessionsServer]:
    async with LocalSessionsServer() as running:
        await running.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        yield running


def config_for(server: LocalSessionsServer, **overrides: object) -> SandboxesConfig:
    return SandboxesConfig(
        endpoint=server.base_url,
        subscription_id=SUB,
        resource_group=RG,
        sandbox_group=GROUP,
        **overrides,  # type: ignore[arg-type]
    )


@pytest_asyncio.fixture(loop_scope="module")
async def sandboxes(server: LocalSessionsServer) -> AsyncIterator[Sandboxes]:
    async with Sandboxes(
        config_for(server, timeout_seconds=20, delete_on_close=True),
        credential=server.api_key,
        functions=[growth],
    ) as owned:
        yield owned


def tool_results(client: ScriptedChatClient, call_index: int) -> list[Content]:
    """The function results the model received in one of its calls."""
    return [
        content
        for message in client.calls[call_index]
        for content in message.contents
        if content.type == "function_result"
    ]


def result_text(result: Content) -> str:
    return "\n".join(item.text or "" for item in (result.items or []) if item.type == "text")


async def test_both_backends_are_code_backends_and_a_sandbox_offers_python_and_shell(
    sandboxes: Sandboxes,
) -> None:
    assert isinstance(sandboxes, CodeBackend)
    assert [tool.name for tool in session_tools(sandboxes)] == ["execute_code", "run_shell", "list_files"]
    # The old name still builds the same provider.
    assert DynamicSessionsCodeActProvider is CodeActProvider


async def test_variables_persist_across_turns_with_the_sandbox_suspended_in_between(
    sandboxes: Sandboxes,
) -> None:
    client = ScriptedChatClient(
        [
            ToolCall("execute_code", {"code": "prices = [100, 110, 121]\nprint(len(prices))"}),
            "Loaded 3 prices.",
            ToolCall(
                "execute_code",
                {"code": "from functions import growth\nprint([round(g, 3) for g in growth(prices)])"},
            ),
            "Growth is 10% per step.",
        ]
    )
    agent = Agent(client=client, context_providers=[CodeActProvider(sandboxes)])
    conversation = agent.create_session()

    first = await agent.run("Load the prices.", session=conversation)
    after_first = await sandboxes.state(conversation)
    second = await agent.run("How fast do they grow?", session=conversation)

    assert first.text == "Loaded 3 prices."
    assert second.text == "Growth is 10% per step."
    # The provider's after-run hook suspended the sandbox between the turns.
    assert after_first is SandboxState.SUSPENDED
    assert await sandboxes.state(conversation) is SandboxState.SUSPENDED
    assert "stdout:\n3" in result_text(tool_results(client, 1)[-1])
    assert "stdout:\n[0.1, 0.1]" in result_text(tool_results(client, 3)[-1])
    sandbox_id = conversation.state[SANDBOX_STATE_KEY]["sandbox_id"]
    assert sandbox_id in sandboxes.created_sandboxes


async def test_inside_an_agent_loop_the_sandbox_is_suspended_once_at_the_end_of_the_turn(
    sandboxes: Sandboxes,
) -> None:
    client = ScriptedChatClient(
        [
            ToolCall("execute_code", {"code": "step = 1"}),
            "first pass",
            ToolCall("execute_code", {"code": "step += 1\nprint(step)"}),
            "second pass",
        ]
    )
    conversation = AgentSession()
    between: list[SandboxState | None] = []

    async def should_continue(*, iteration: int, **_: object) -> bool:
        between.append(await sandboxes.state(conversation))
        return iteration < 2

    with warnings.catch_warnings():
        # Agent Framework flags its loop middleware as experimental.
        warnings.simplefilter("ignore")
        loop = AgentLoopMiddleware(should_continue, next_message=lambda **_: "go on")
    agent = Agent(client=client, context_providers=[CodeActProvider(sandboxes)], middleware=[loop])

    await agent.run("Count the steps.", session=conversation)

    # Between the loop's iterations the sandbox ran on; the turn's end suspended it.
    assert between == [SandboxState.RUNNING, SandboxState.RUNNING]
    assert await sandboxes.state(conversation) is SandboxState.SUSPENDED
    assert "stdout:\n2" in result_text(tool_results(client, 3)[-1])
    await sandboxes.release(conversation)


async def test_two_conversations_get_two_sandboxes(sandboxes: Sandboxes) -> None:
    code = session_tools(sandboxes)[0]
    first, second = AgentSession(), AgentSession()
    await call(code, first, code="owner = 'first'")
    seen = text_of(await call(code, second, code="print('owner' in globals())"))

    assert "stdout:\nFalse" in seen
    assert sandboxes.sandbox_id_for(first) != sandboxes.sandbox_id_for(second)


async def test_python_and_shell_share_the_working_directory_and_files_tools_see_it(
    sandboxes: Sandboxes, tmp_path: Path
) -> None:
    conversation = AgentSession()
    upload_dir, download_dir = tmp_path / "in", tmp_path / "out"
    upload_dir.mkdir()
    (upload_dir / "numbers.csv").write_text("n\n1\n2\n")
    config = sandboxes.config.model_copy(
        update={"upload_dir": str(upload_dir), "download_dir": str(download_dir)}
    )
    async with Sandboxes(config, client=sandboxes.client) as backend:
        tools = {tool.name: tool for tool in session_tools(backend)}
        uploaded = text_of(await call(tools["upload_file"], conversation, path="numbers.csv"))
        summed = text_of(
            await call(
                tools["execute_code"],
                conversation,
                code="import csv, os\nrows = list(csv.DictReader(open('numbers.csv')))\n"
                "print(os.getcwd(), sum(int(r['n']) for r in rows))\n"
                "os.makedirs('out', exist_ok=True)\nopen('out/total.txt', 'w').write('3')",
            )
        )
        shell = text_of(await call(tools["run_shell"], conversation, command="cat out/total.txt; exit 4"))
        listed = text_of(await call(tools["list_files"], conversation))
        saved = text_of(await call(tools["download_file"], conversation, name="out/total.txt"))
        missing = await call(tools["download_file"], conversation, name="nope.txt")
        escape = await call(tools["download_file"], conversation, name="../etc/passwd")
        await backend.release(conversation)

    assert "Uploaded numbers.csv as /root/work/numbers.csv (6 bytes)." in uploaded
    assert "stdout:\n/root/work 3" in summed
    assert "exit code: 4" in shell
    assert "stdout:\n3" in shell
    assert listed.splitlines() == ["numbers.csv (6 bytes)", "out/total.txt (1 bytes)"]
    assert "Saved /root/work/out/total.txt as total.txt in the download directory." in saved
    assert (download_dir / "total.txt").read_text() == "3"
    # A missing file is a missing file, not a gone sandbox.
    assert missing[-1].error_code == "NotFound"
    assert "'nope.txt' does not exist" in text_of(missing)
    assert escape[-1].error_code == "PathNotAllowed"


async def test_a_timed_out_call_keeps_its_output_and_the_interpreter_its_variables(
    sandboxes: Sandboxes,
) -> None:
    conversation = AgentSession()
    code = session_tools(sandboxes)[0]
    await call(code, conversation, code="kept = 'still here'")
    slow = await sandboxes.run_code(
        conversation, "import time\nprint('started', flush=True)\ntime.sleep(60)", timeout_seconds=1
    )
    after = text_of(await call(code, conversation, code="print(kept)"))

    assert slow.result.timed_out
    assert slow.result.stdout == "started\n"
    assert "stdout:\nstill here" in after


async def test_a_cancelled_call_interrupts_its_block_and_the_next_call_runs_at_once(
    sandboxes: Sandboxes,
) -> None:
    conversation = AgentSession()
    await sandboxes.run_code(conversation, "kept = 'yes'")
    sandbox_id = sandboxes.sandbox_id_for(conversation)
    assert sandbox_id is not None
    slow = asyncio.ensure_future(
        sandboxes.run_code(conversation, "import time\nopen('started', 'w').close()\ntime.sleep(600)")
    )
    # Wait, inside the sandbox, until the block runs (its marker file exists); then cancel the call.
    wait = "until test -f /root/work/started; do sleep 0.05; done"
    assert (await sandboxes.client.exec_shell(sandbox_id, wait, timeout=120)).exit_code == 0
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow

    after = await sandboxes.run_code(conversation, "print(kept)", timeout_seconds=10)

    assert not after.result.timed_out
    assert after.result.stdout == "yes\n"
    await sandboxes.release(conversation)


async def test_the_instructions_name_the_tools_the_directory_and_the_functions(sandboxes: Sandboxes) -> None:
    provider = CodeActProvider(sandboxes)
    conversation = AgentSession()
    await sandboxes.upload(conversation, "orders.csv", b"id,amount\n1,5\n")

    instructions = await provider.instructions(conversation)

    assert "`execute_code`" in instructions
    assert "`run_shell`" in instructions
    assert "The working directory is /root/work" in instructions
    assert "- orders.csv (14 bytes)" in instructions
    assert "def growth(values: list[float]) -> list[float]:" in instructions
    assert "suspended" in instructions


async def test_a_deleted_sandbox_is_a_clear_tool_result_and_the_next_call_starts_afresh(
    sandboxes: Sandboxes,
) -> None:
    conversation = AgentSession()
    code = session_tools(sandboxes)[0]
    await call(code, conversation, code="lost = 1")
    gone_id = sandboxes.sandbox_id_for(conversation)
    assert gone_id is not None
    # Deleted behind the conversation's back (another process, the portal).
    await sandboxes.client.delete(gone_id)

    failed = await call(code, conversation, code="print(lost)")
    again = text_of(await call(code, conversation, code="print('lost' in globals())"))

    assert failed[-1].type == "error"
    assert failed[-1].error_code == "SandboxGone"
    assert f"sandbox '{gone_id}' no longer exists" in text_of(failed)
    assert "The next call starts a new, empty sandbox" in text_of(failed)
    assert "stdout:\nFalse" in again
    assert sandboxes.sandbox_id_for(conversation) not in (None, gone_id)


async def test_a_wrong_sandbox_id_in_a_restored_conversation_is_a_clear_tool_result(
    sandboxes: Sandboxes,
) -> None:
    conversation = AgentSession()
    sandboxes.bind(conversation, "no-such-sandbox")

    failed = await call(session_tools(sandboxes)[0], conversation, code="print(1)")

    assert failed[-1].error_code == "SandboxGone"
    assert "sandbox 'no-such-sandbox' no longer exists" in text_of(failed)


async def test_a_block_that_swallows_the_interrupt_gets_the_interpreter_replaced(
    sandboxes: Sandboxes,
) -> None:
    conversation = AgentSession()
    code = session_tools(sandboxes)[0]
    await call(code, conversation, code="before = 1")
    stubborn = (
        "import time\nprint('looping', flush=True)\nwhile True:\n"
        "    try:\n        time.sleep(0.2)\n    except KeyboardInterrupt:\n        pass"
    )

    stuck = await sandboxes.run_code(conversation, stubborn, timeout_seconds=1)
    after = text_of(await call(code, conversation, code="print('before' in globals())"))

    assert stuck.result.timed_out
    assert stuck.result.stdout == "looping\n"
    assert any("interpreter was restarted" in note for note in stuck.notes)
    assert "stdout:\nFalse" in after
    await sandboxes.release(conversation)


async def test_code_that_ends_the_interpreter_is_told_so_and_the_next_call_gets_a_new_one(
    sandboxes: Sandboxes,
) -> None:
    conversation = AgentSession()
    code = session_tools(sandboxes)[0]
    await call(code, conversation, code="x = 1\nopen('kept.txt', 'w').write('kept')")

    ended = text_of(await call(code, conversation, code="import os\nprint('bye', flush=True)\nos._exit(3)"))
    after = text_of(await call(code, conversation, code="print('x' in globals(), open('kept.txt').read())"))
    exited = text_of(await call(code, conversation, code="import sys\nsys.exit(2)"))
    still = text_of(await call(code, conversation, code="print('alive')"))

    assert "stdout:\nbye" in ended
    assert "Python interpreter had ended" in ended
    assert "A new interpreter starts with the next call." in ended
    assert "stdout:\nFalse kept" in after
    # SystemExit ends the block, not the interpreter.
    assert "error: The code exited with status 2." in exited
    assert "interpreter had ended" not in exited
    assert "stdout:\nalive" in still
    await sandboxes.release(conversation)


async def test_an_interpreter_killed_between_calls_is_replaced_and_the_code_runs_once_in_the_new_one(
    sandboxes: Sandboxes,
) -> None:
    conversation = AgentSession()
    code, shell = session_tools(sandboxes)[:2]
    await call(code, conversation, code="y = 2")
    await call(shell, conversation, command="kill -9 $(cat /root/.aca_repl/repl.pid)")

    ran = text_of(await call(code, conversation, code="open('runs.txt', 'a').write('x')\nprint('ran')"))
    runs = text_of(await call(shell, conversation, command="cat runs.txt"))

    assert "stdout:\nran" in ran
    assert "A new interpreter was started and this code ran in it." in ran
    # It never reached the dead interpreter, and ran exactly once in the new one.
    assert runs.endswith("stdout:\nx")
    await sandboxes.release(conversation)


async def test_concurrent_first_calls_of_one_conversation_make_one_sandbox(sandboxes: Sandboxes) -> None:
    conversation = AgentSession()
    before = sandboxes.created_sandboxes

    outcomes = await asyncio.gather(
        *(sandboxes.run_code(conversation, f"print({index})") for index in range(3))
    )

    assert len({outcome.identifier for outcome in outcomes}) == 1
    assert len(sandboxes.created_sandboxes - before) == 1
    await sandboxes.release(conversation)


async def test_a_full_sandbox_group_is_a_clear_tool_result(server: LocalSessionsServer) -> None:
    await server.create_sandbox_group("af-full", subscription=SUB, resource_group=RG, max_sandbox_count=1)
    config = config_for(server).model_copy(update={"sandbox_group": "af-full", "delete_on_close": True})
    async with (
        SandboxesClient(
            server.base_url,
            subscription_id=SUB,
            resource_group=RG,
            sandbox_group="af-full",
            credential=server.api_key,
            max_retries=0,
        ) as client,
        Sandboxes(config, client=client) as backend,
    ):
        code = session_tools(backend)[0]
        first = text_of(await call(code, AgentSession(), code="print('first')"))
        refused = await call(code, AgentSession(), code="print('second')")

    assert "stdout:\nfirst" in first
    assert refused[-1].error_code == "SandboxGroupFull"
    assert "try again later" in text_of(refused)


_CHILD = """
import asyncio, json, os, sys
from agent_framework import Agent, AgentSession
from autogen_aca_sessions.agent_framework import CodeActProvider, SandboxesConfig
from autogen_aca_sessions.agent_framework.testing import ScriptedChatClient, ToolCall

async def main() -> None:
    config = SandboxesConfig.from_dict(json.loads(os.environ["AF_CONFIG"]))
    session = AgentSession.from_dict(json.loads(os.environ["AF_SESSION"]))
    client = ScriptedChatClient([ToolCall("execute_code", {"code": "print(total * 2)"}), "doubled"])
    async with CodeActProvider(config, credential=os.environ["AF_KEY"]) as codeact:
        agent = Agent(client=client, context_providers=[codeact])
        response = await agent.run("Double it.", session=session)
    results = [c for m in client.calls[-1] for c in m.contents if c.type == "function_result"]
    print(json.dumps({
        "reply": response.text,
        "result": "\\n".join(i.text or "" for i in results[-1].items or [] if i.type == "text"),
        "session": session.to_dict(),
    }))

asyncio.run(main())
"""


async def test_a_new_process_resumes_the_same_sandbox_from_the_serialised_session(
    server: LocalSessionsServer,
) -> None:
    config = config_for(server, timeout_seconds=20)
    client = ScriptedChatClient([ToolCall("execute_code", {"code": "total = sum(range(10))"}), "set"])
    async with CodeActProvider(config, credential=server.api_key) as codeact:
        agent = Agent(client=client, context_providers=[codeact])
        conversation = agent.create_session()
        await agent.run("Set the total.", session=conversation)
        sandbox_id = conversation.state[SANDBOX_STATE_KEY]["sandbox_id"]
    saved = json.dumps(conversation.to_dict())
    # Closing the provider kept the sandbox (suspended) for a later process.
    async with Sandboxes(config, credential=server.api_key) as probe:
        assert await probe.state(AgentSession.from_dict(json.loads(saved))) is SandboxState.SUSPENDED

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
        "AF_CONFIG": json.dumps(config.to_dict()),
        "AF_SESSION": saved,
        "AF_KEY": server.api_key,
    }

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(_CHILD),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await child.communicate()
    assert child.returncode == 0, err.decode()[-3000:]
    answer = json.loads(out.decode().strip().splitlines()[-1])

    assert answer["reply"] == "doubled"
    assert "stdout:\n90" in answer["result"]
    assert answer["session"]["state"][SANDBOX_STATE_KEY]["sandbox_id"] == sandbox_id
    async with Sandboxes(config, credential=server.api_key) as cleanup:
        resumed = AgentSession.from_dict(answer["session"])
        # The child's provider suspended it after its run.
        assert await cleanup.state(resumed) is SandboxState.SUSPENDED
        await cleanup.release(resumed)

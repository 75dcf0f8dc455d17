"""The execute-code and file tools end to end: a real local pool, real kernels, real Agent Framework."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

pytest.importorskip("agent_framework")

from agent_framework import AgentSession, FunctionTool

from autogen_aca_sessions.agent_framework import (
    STATE_KEY,
    DownloadFileTool,
    DynamicSessions,
    DynamicSessionsConfig,
    ExecuteCodeTool,
    ListFilesTool,
    UploadFileTool,
)
from autogen_aca_sessions.client import NotFoundError
from autogen_aca_sessions.local import LocalSessionPool
from tests.af_adapter._helpers import call, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")
POOL_OPTIONS = {"ready_sessions": 1, "max_execution_seconds": 30}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_orders(n: int) -> list[dict[str, int]]:
    """n orders with an id and an amount."""
    return [{"id": i, "amount": 10 * i} for i in range(n)]


@pytest_asyncio.fixture(loop_scope="module")
async def sessions(module_pool: LocalSessionPool, tmp_path: Path) -> AsyncIterator[DynamicSessions]:
    (tmp_path / "in").mkdir()
    config = DynamicSessionsConfig(
        pool_management_endpoint=module_pool.endpoint,
        # Generous: a fresh kernel's first matplotlib import can take seconds on a busy machine.
        timeout_seconds=60,
        upload_dir=str(tmp_path / "in"),
        download_dir=str(tmp_path / "out"),
    )
    async with DynamicSessions(config, credential=module_pool.api_key, functions=[make_orders]) as owned:
        yield owned


async def test_state_persists_across_calls_of_one_agent_session(sessions: DynamicSessions) -> None:
    tool = ExecuteCodeTool(sessions)
    conversation = AgentSession()

    first = await call(tool, conversation, code="total = 40\nprint('set', total)")
    second = await call(tool, conversation, code="total + 2")

    assert "stdout:\nset 40" in text_of(first)
    assert "value: 42" in text_of(second)


async def test_each_agent_session_gets_its_own_dynamic_session(sessions: DynamicSessions) -> None:
    tool = ExecuteCodeTool(sessions)
    alice, bob = AgentSession(), AgentSession()

    await call(tool, alice, code="secret = 'alice'")
    seen_by_bob = await call(tool, bob, code="print('secret' in globals())")

    assert "stdout:\nFalse" in text_of(seen_by_bob)
    alice_id = alice.state[STATE_KEY]["identifier"]
    bob_id = bob.state[STATE_KEY]["identifier"]
    assert alice_id != bob_id
    assert {alice_id, bob_id} <= sessions.created_identifiers
    # The identifier lives in the AgentSession's state, so a restored conversation finds its session.
    restored = AgentSession.from_dict(alice.to_dict())
    assert "value: 'alice'" in text_of(await call(tool, restored, code="repr(secret)"))


async def test_a_caller_chosen_identifier_is_used_and_not_released(
    module_pool: LocalSessionPool, sessions: DynamicSessions
) -> None:
    tool = ExecuteCodeTool(sessions)
    conversation = AgentSession()
    sessions.bind(conversation, "my-chosen-session")

    await call(tool, conversation, code="chosen = 1")

    assert "my-chosen-session" not in sessions.created_identifiers
    listed = {info.identifier for info in await sessions.client.list_sessions()}
    assert "my-chosen-session" in listed
    await module_pool.manager.delete("my-chosen-session")


async def test_a_displayed_figure_comes_back_as_image_content_not_text(sessions: DynamicSessions) -> None:
    contents = await call(
        ExecuteCodeTool(sessions),
        AgentSession(),
        code="import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()",
    )

    images = [c for c in contents if c.type == "data"]
    assert len(images) == 1
    assert images[0].media_type == "image/png"
    assert images[0].uri is not None
    assert images[0].uri.startswith("data:image/png;base64,")
    assert "images: 1 attached" in text_of(contents)
    assert "base64" not in text_of(contents)  # the image is not pasted into the text


async def test_a_timeout_returns_partial_output_and_the_session_keeps_working(
    module_pool: LocalSessionPool,
) -> None:
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint, timeout_seconds=4)
    async with DynamicSessions(config, credential=module_pool.api_key) as owned:
        tool = ExecuteCodeTool(owned)
        conversation = AgentSession()
        await call(tool, conversation, code="kept = 'still here'")

        timed_out = await call(
            tool,
            conversation,
            code="import time\nprint('before the wait', flush=True)\ntime.sleep(30)\nprint('after')",
        )
        after = await call(tool, conversation, code="kept if 'kept' in globals() else 'lost'")

    assert "status: timed out after 4 s" in text_of(timed_out)
    assert "before the wait" in text_of(timed_out)
    assert "after\n" not in text_of(timed_out)
    errors = [c for c in timed_out if c.type == "error"]
    assert errors
    assert errors[0].message == "Execution timed out"
    # The pool interrupts the code and keeps the state; when the interrupt does not land in time it
    # restarts the kernel, and the result must then say the state is gone. Either way it works on.
    if "interpreter was replaced" in text_of(timed_out):
        assert "value: lost" in text_of(after)
    else:
        assert "value: still here" in text_of(after)


async def test_an_exception_is_a_clear_tool_result_with_the_traceback(sessions: DynamicSessions) -> None:
    contents = await call(ExecuteCodeTool(sessions), AgentSession(), code="print('partial')\n1 / 0")

    text = text_of(contents)
    assert "status: failed" in text
    assert "stdout:\npartial" in text
    assert "ZeroDivisionError" in text
    assert any(c.type == "error" and c.error_code for c in contents)


async def test_long_output_is_cut_to_the_configured_limit_keeping_both_ends(
    module_pool: LocalSessionPool,
) -> None:
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint, max_output_chars=200)
    async with DynamicSessions(config, credential=module_pool.api_key) as owned:
        contents = await call(ExecuteCodeTool(owned), None, code="print('FIRST' + 'x' * 5000 + 'LAST')")

    text = text_of(contents)
    assert "FIRST" in text
    assert "LAST" in text
    assert "characters cut" in text
    assert len(text) < 600


async def test_injected_functions_are_importable_and_set_up_again_after_replacement(
    module_pool: LocalSessionPool, sessions: DynamicSessions
) -> None:
    tool = ExecuteCodeTool(sessions)
    conversation = AgentSession()
    code = "from functions import make_orders\nsum(o['amount'] for o in make_orders(4))"

    first = await call(tool, conversation, code=code)
    # The service replaces a session whose cooldown ran out; deleting it has the same effect.
    await module_pool.manager.delete(conversation.state[STATE_KEY]["identifier"])
    again = await call(tool, conversation, code=code)
    cwd = await call(tool, conversation, code="import os\nos.getcwd()")

    assert "value: 60" in text_of(first)
    assert "value: 60" in text_of(again)
    assert "interpreter was replaced" in text_of(again)
    assert "value: /mnt/data" in text_of(cwd)


async def test_a_bare_call_of_an_injected_function_is_sent_again_after_replacement(
    module_pool: LocalSessionPool, sessions: DynamicSessions
) -> None:
    # The injected functions are also bound in the namespace, so code may call them without an
    # import; in a replaced interpreter that fails with a NameError, not an import error, and the
    # same rule as the executor's must send the code again once they are set up.
    tool = ExecuteCodeTool(sessions)
    conversation = AgentSession()
    code = "sum(o['amount'] for o in make_orders(4))"

    first = await call(tool, conversation, code=code)
    await module_pool.manager.delete(conversation.state[STATE_KEY]["identifier"])
    again = await call(tool, conversation, code=code)

    assert "value: 60" in text_of(first)
    assert "interpreter was replaced" in text_of(again)
    assert "ran again once the injected functions were set up" in text_of(again)
    assert "value: 60" in text_of(again)
    assert "NameError" not in text_of(again)


async def test_files_move_between_the_allowed_directories_and_the_session(
    sessions: DynamicSessions, tmp_path: Path
) -> None:
    conversation = AgentSession()
    (tmp_path / "in" / "numbers.csv").write_text("n\n1\n2\n3\n")

    uploaded = await call(UploadFileTool(sessions), conversation, path="numbers.csv")
    summed = await call(
        ExecuteCodeTool(sessions),
        conversation,
        code=(
            "import pandas as pd\nd = pd.read_csv('numbers.csv')\n"
            "d.assign(sq=d.n**2).to_csv('squares.csv', index=False)\nint(d.n.sum())"
        ),
    )
    listing = await call(ListFilesTool(sessions), conversation)
    downloaded = await call(
        DownloadFileTool(sessions), conversation, name="squares.csv", local_name="result.csv"
    )

    assert "Uploaded numbers.csv as /mnt/data/numbers.csv" in text_of(uploaded)
    assert "value: 6" in text_of(summed)
    assert "numbers.csv" in text_of(listing)
    assert "squares.csv" in text_of(listing)
    assert "as result.csv" in text_of(downloaded)
    assert (tmp_path / "out" / "result.csv").read_text() == "n,sq\n1,1\n2,4\n3,9\n"


@pytest.mark.parametrize(
    ("tool_class", "arguments"),
    [
        (UploadFileTool, {"path": "../secret.txt"}),
        (UploadFileTool, {"path": "/etc/passwd"}),
        (DownloadFileTool, {"name": "squares.csv", "local_name": "../escaped.csv"}),
        (DownloadFileTool, {"name": "../../etc/passwd"}),
    ],
)
async def test_path_escapes_are_refused_as_tool_results(
    sessions: DynamicSessions, tmp_path: Path, tool_class: type[FunctionTool], arguments: dict[str, str]
) -> None:
    (tmp_path / "secret.txt").write_text("not for the session")
    tool = tool_class(sessions)  # type: ignore[call-arg]

    contents = await call(tool, AgentSession(), **arguments)

    assert "Refused:" in text_of(contents)
    assert [c.error_code for c in contents if c.type == "error"] == ["PathNotAllowed"]
    assert not (tmp_path / "escaped.csv").exists()


async def test_a_missing_session_file_is_reported_not_raised(sessions: DynamicSessions) -> None:
    contents = await call(DownloadFileTool(sessions), AgentSession(), name="nothing-here.txt")

    assert "Not found" in text_of(contents)


async def test_close_releases_the_sessions_it_created_and_only_those(module_pool: LocalSessionPool) -> None:
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint)
    owned = DynamicSessions(config, credential=module_pool.api_key)
    tool = ExecuteCodeTool(owned)
    mine = AgentSession()
    chosen = AgentSession()
    owned.bind(chosen, "kept-after-close")
    await call(tool, mine, code="1")
    await call(tool, chosen, code="1")
    created = mine.state[STATE_KEY]["identifier"]

    async with owned:
        pass

    listed = {info.identifier for info in await _list_sessions(module_pool)}
    assert created not in listed
    assert "kept-after-close" in listed
    await module_pool.manager.delete("kept-after-close")
    with pytest.raises(NotFoundError):
        await _get_session(module_pool, created)


async def test_without_an_agent_session_calls_share_one_session_of_the_owner(
    sessions: DynamicSessions,
) -> None:
    tool = ExecuteCodeTool(sessions)

    await call(tool, None, code="shared = 7")
    contents = await call(tool, None, code="shared")

    assert "value: 7" in text_of(contents)


async def _list_sessions(pool: LocalSessionPool) -> list[Any]:
    from autogen_aca_sessions.client import SessionsClient

    async with SessionsClient(pool.endpoint, pool.api_key) as client:
        return await client.list_sessions()


async def _get_session(pool: LocalSessionPool, identifier: str) -> Any:
    from autogen_aca_sessions.client import SessionsClient

    async with SessionsClient(pool.endpoint, pool.api_key) as client:
        return await client.get_session(identifier)

"""ACASandboxCodeExecutor when its sandbox is taken away, on the real local server: a resume that
races a delete loses nothing silently (no block ever runs in a fresh sandbox passed off as the
old one), and a wrong id from a saved state is a clear error at once."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from autogen_core import CancellationToken
from tests.e2e._sandbox_group import SUB, ServedGroup, py, served_group

from autogen_aca_sessions.client.errors import NotFoundError, SessionsError
from autogen_aca_sessions.client.sandboxes import SandboxesClient, ShellResult
from autogen_aca_sessions.executor import ACASandboxCodeExecutor, SandboxGoneError
from autogen_aca_sessions.local import LocalSessionsServer

RG = "rg-hostile"
GROUP = "hostile-group"

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


async def _suspended_executor(client: SandboxesClient) -> tuple[ACASandboxCodeExecutor, str]:
    executor = ACASandboxCodeExecutor(client)
    await executor.execute_code_blocks([py("work = 'precious'")], CancellationToken())
    await executor.suspend()
    assert executor.sandbox_id is not None
    return executor, executor.sandbox_id


@pytest.mark.parametrize("order", ["delete-first", "together", "resume-first"])
async def test_a_resume_racing_a_delete_never_runs_a_block_in_a_fresh_sandbox(
    client: SandboxesClient, order: str
) -> None:
    executor, sandbox_id = await _suspended_executor(client)
    if order == "delete-first":
        await client.delete(sandbox_id)
        outcomes: list[BaseException | None] = [await _outcome(executor.resume())]
    elif order == "together":
        raced = await asyncio.gather(executor.resume(), client.delete(sandbox_id), return_exceptions=True)
        outcomes = [raced[0] if isinstance(raced[0], BaseException) else None]
    else:
        await executor.resume()
        await client.delete(sandbox_id)
        outcomes = [None]
    # The resume either failed as "gone" or happened before the delete; either way the next
    # block says the sandbox is gone: it never runs in a new sandbox under the old one's name.
    assert outcomes[0] is None or isinstance(outcomes[0], (SandboxGoneError, SessionsError))
    with pytest.raises(SandboxGoneError, match=sandbox_id):
        await executor.execute_code_blocks([py("print(work)")], CancellationToken())
    assert executor.sandbox_id == sandbox_id
    # Still gone on the next try (no silent replacement later either), until restart().
    with pytest.raises(SandboxGoneError):
        await executor.execute_code_blocks([py("print(1)")], CancellationToken())
    with pytest.raises(NotFoundError):
        await client.get(sandbox_id)
    await executor.restart()
    fresh = await executor.execute_code_blocks([py("print('work' in globals())")], CancellationToken())
    assert fresh.output == "False\n"
    assert executor.sandbox_id != sandbox_id
    await executor.stop()


async def _outcome(awaitable: object) -> BaseException | None:
    try:
        await awaitable  # type: ignore[misc]
    except Exception as exc:  # the test inspects which error it was
        return exc
    return None


async def test_a_delete_while_a_block_runs_is_sandbox_gone_not_an_empty_result(
    client: SandboxesClient,
) -> None:
    executor = ACASandboxCodeExecutor(client, timeout=120)
    await executor.execute_code_blocks([py("n = 1")], CancellationToken())
    sandbox_id = executor.sandbox_id
    assert sandbox_id is not None
    running = asyncio.ensure_future(
        executor.execute_code_blocks(
            [py("open('started', 'w').close()\nimport time\ntime.sleep(100)")], CancellationToken()
        )
    )
    waited = await client.exec_shell(
        sandbox_id, "until test -e /root/work/started; do sleep 0.05; done", timeout=60
    )
    assert waited.exit_code == 0
    await client.delete(sandbox_id)
    # The command in flight is answered "gone", never as a block that ran and printed nothing.
    with pytest.raises(SandboxGoneError, match=sandbox_id):
        await running
    with pytest.raises(SandboxGoneError):
        await executor.execute_code_blocks([py("print(n)")], CancellationToken())


@pytest.mark.parametrize(
    ("state", "error", "match"),
    [
        ({"sandbox_id": "no-such-sandbox"}, SandboxGoneError, "no-such-sandbox"),
        ({"sandbox_id": "../../other-group"}, ValueError, "not a sandbox id"),
        ({"sandbox_id": ""}, ValueError, "not a sandbox id"),
        ({"sandbox_id": 42}, ValueError, "must be a string"),
        ({"session_id": "x"}, ValueError, "has no 'sandbox_id'"),
    ],
    ids=["unknown", "path", "empty", "not-a-string", "another-executors-state"],
)
async def test_a_wrong_saved_state_is_a_clear_error_at_load(
    client: SandboxesClient, state: dict[str, object], error: type[Exception], match: str
) -> None:
    executor = ACASandboxCodeExecutor(client)
    with pytest.raises(error, match=match):
        await executor.load_state(state)
    assert executor.sandbox_id is None
    await executor.stop()


async def test_a_state_saved_before_the_sandbox_was_deleted_is_refused_at_load(
    client: SandboxesClient,
) -> None:
    executor, sandbox_id = await _suspended_executor(client)
    state = await executor.save_state()
    await client.delete(sandbox_id)
    later = ACASandboxCodeExecutor(client)
    with pytest.raises(SandboxGoneError, match="deleted"):
        await later.load_state(state)
    await later.stop()


async def test_two_executors_on_one_sandbox_each_get_their_own_answers(client: SandboxesClient) -> None:
    first = ACASandboxCodeExecutor(client)
    await first.execute_code_blocks([py("import time\nshared = 0")], CancellationToken())
    second = ACASandboxCodeExecutor(client)
    await second.load_state(await first.save_state())

    async def count(executor: ACASandboxCodeExecutor, name: str) -> list[str]:
        outputs = []
        for i in range(5):
            block = py(f"shared += 1\ntime.sleep(0.01)\nprint('{name}', {i})")
            outputs.append((await executor.execute_code_blocks([block], CancellationToken())).output)
        return outputs

    ones, twos = await asyncio.gather(count(first, "one"), count(second, "two"))
    assert ones == [f"one {i}\n" for i in range(5)]
    assert twos == [f"two {i}\n" for i in range(5)]
    final = await first.execute_code_blocks([py("shared")], CancellationToken())
    assert final.output == "10\n"
    await first.stop()


_SURROGATE_ERROR = (
    "UnicodeEncodeError: 'utf-8' codec can't encode characters in position 7-9: surrogates not allowed\n"
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("print('a')\x00", (1, "SyntaxError: source code string cannot contain null bytes\n")),
        ("print('\udcff')", (1, _SURROGATE_ERROR)),
        ("print('x')\n" + "#" * 200_000, (0, "x\n")),
    ],
    ids=["nul", "lone-surrogate", "over-one-argument"],
)
async def test_blocks_no_command_line_can_carry_still_get_a_clear_result(
    client: SandboxesClient, code: str, expected: tuple[int, str]
) -> None:
    executor = ACASandboxCodeExecutor(client)
    result = await executor.execute_code_blocks([py(code)], CancellationToken())
    # Python's own verdict on the text (the block ran, or its error alone), never a hang or a
    # lost block, and none of the interpreter's machinery in the text.
    assert (result.exit_code, result.output) == expected
    follow = await executor.execute_code_blocks([py("print('still here')")], CancellationToken())
    assert follow.output == "still here\n"
    await executor.stop()


class _DashShellClient(SandboxesClient):
    """A data plane whose shell is dash, not bash (the service's shell is not documented)."""

    async def exec_shell(  # type: ignore[override]
        self, sandbox_id: str, command: str, **kwargs: Any
    ) -> ShellResult:
        return await super().exec_shell(sandbox_id, "exec dash -c " + shlex.quote(command), **kwargs)


async def test_blocks_still_run_where_the_services_shell_is_not_bash(server: LocalSessionsServer) -> None:
    dash = _DashShellClient(
        server.base_url,
        subscription_id=SUB,
        resource_group=RG,
        sandbox_group=GROUP,
        credential=server.api_key,
    )
    async with dash:
        executor = ACASandboxCodeExecutor(dash)
        first = await executor.execute_code_blocks([py("kept = 6 * 7\nprint(kept)")], CancellationToken())
        second = await executor.execute_code_blocks([py("print(kept)")], CancellationToken())
        assert (first.exit_code, first.output) == (0, "42\n")
        assert (second.exit_code, second.output) == (0, "42\n")
        await executor.stop()

"""End-to-end: running code blocks through ACADynamicSessionsCodeExecutor against the real local pool."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _executor_helpers import LEGACY, NEWEST, make_executor
from _executor_helpers import run_blocks as run
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

from autogen_aca_sessions.client import SessionsClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

BOTH = pytest.mark.parametrize("api_version", [LEGACY, NEWEST])


@BOTH
async def test_python_block_prints_and_state_persists_between_calls(pool: Any, api_version: str) -> None:
    async with make_executor(pool, api_version=api_version) as executor:
        first = await run(executor, ("python", "x = 21\nprint('hello')"))
        second = await run(executor, ("py", "print(x * 2)"))
    assert first.exit_code == 0
    assert first.output == "hello\n"
    assert second.exit_code == 0
    assert second.output.strip() == "42"
    assert second.session_id == first.session_id


@BOTH
async def test_last_expression_value_is_in_output_unless_suppressed(pool: Any, api_version: str) -> None:
    async with make_executor(pool, api_version=api_version) as shown:
        with_value = await run(shown, ("python", "6 * 7"))
        no_value = await run(shown, ("python", "y = 1"))
        python_value = await run(shown, ("python", "{'a': [1, True, None]}"))
    async with make_executor(pool, api_version=api_version, suppress_result_output=True) as hidden:
        suppressed = await run(hidden, ("python", "6 * 7"))
    assert with_value.output.strip() == "42"
    assert with_value.result == 42
    assert no_value.output == ""
    # Shown as Python reads it, not as the JSON the wire carried.
    assert python_value.output.strip() == "{'a': [1, True, None]}"
    assert no_value.result is None
    assert suppressed.output == ""
    assert suppressed.result == 42


@BOTH
async def test_traceback_gives_exit_code_1_and_first_failing_block_stops_the_rest(
    pool: Any, api_version: str
) -> None:
    async with make_executor(pool, api_version=api_version) as executor:
        result = await run(
            executor,
            ("python", "print('one')"),
            ("python", "1 / 0"),
            ("python", "print('three')"),
        )
    assert result.exit_code == 1
    assert "one" in result.output
    assert "ZeroDivisionError" in result.output
    assert "three" not in result.output
    assert [block.exit_code for block in result.blocks] == [0, 1]


@BOTH
async def test_shell_blocks_report_the_scripts_real_exit_code(pool: Any, api_version: str) -> None:
    async with make_executor(pool, api_version=api_version) as executor:
        ok = await run(executor, ("bash", "echo out; echo err >&2; true"))
        failed = await run(executor, ("sh", "echo before; exit 3"), ("python", "print('not run')"))
        shell = await run(executor, ("shell", "for i in 1 2; do echo n$i; done"))
    assert ok.exit_code == 0
    assert "out" in ok.stdout
    assert "err" in ok.stderr
    assert failed.exit_code == 3
    assert "before" in failed.output
    assert "not run" not in failed.output
    assert shell.exit_code == 0
    assert shell.stdout.split() == ["n1", "n2"]


async def test_shell_blocks_run_in_the_same_directory_as_python_code(pool: Any) -> None:
    async with make_executor(pool) as executor:
        python_cwd = await run(executor, ("python", "import os; print(os.getcwd())"))
        shell_cwd = await run(executor, ("bash", "pwd"))
        created = await run(
            executor,
            ("sh", "echo data > made_by_shell.txt"),
            ("python", "print(open('made_by_shell.txt').read())"),
        )
    assert shell_cwd.stdout.strip() == python_cwd.stdout.strip()
    assert created.exit_code == 0
    assert "data" in created.output


async def test_unknown_language_gives_exit_code_1_and_sends_nothing(pool: Any) -> None:
    async with make_executor(pool, api_version=NEWEST) as executor:
        result = await run(executor, ("rust", 'fn main() { println!("hi"); }'))
        async with SessionsClient(pool.endpoint, pool.credential, api_version=NEWEST) as client:
            sessions = {info.identifier for info in await client.list_sessions()}
    assert result.exit_code == 1
    assert "Unsupported language 'rust'" in result.output
    assert result.blocks[0].executed is False
    assert executor.session_id not in sessions


async def test_unknown_language_after_a_good_block_stops_there(pool: Any) -> None:
    async with make_executor(pool) as executor:
        result = await run(
            executor, ("python", "print('ran')"), ("javascript", "1"), ("python", "print('no')")
        )
    assert result.exit_code == 1
    assert "ran" in result.output
    assert "no\n" not in result.output
    assert len(result.blocks) == 2


@BOTH
async def test_busy_loop_times_out_with_exit_code_124_and_session_stays_usable(
    pool: Any, api_version: str
) -> None:
    async with make_executor(pool, api_version=api_version, timeout=2) as executor:
        await run(executor, ("python", "kept = 'yes'"))
        timed_out = await run(executor, ("python", "print('started', flush=True)\nwhile True:\n    pass"))
        after = await run(executor, ("python", "print('alive')"))
    assert timed_out.exit_code == 124
    assert timed_out.timed_out
    assert "started" in timed_out.output
    assert "Timed out after 2 s" in timed_out.output
    assert after.exit_code == 0
    assert after.stdout.strip() == "alive"


async def test_sleep_times_out_keeping_earlier_output_and_state(pool: Any) -> None:
    async with make_executor(pool, timeout=2) as executor:
        await run(executor, ("python", "kept = 'yes'"))
        timed_out = await run(
            executor,
            ("python", "import time\nprint('before sleep', flush=True)\ntime.sleep(30)\nprint('after')"),
        )
        after = await run(executor, ("python", "print(kept)"))
    assert timed_out.exit_code == 124
    assert "before sleep" in timed_out.output
    assert "after\n" not in timed_out.output
    assert "state was kept" in timed_out.output
    assert after.stdout.strip() == "yes"


async def test_shell_script_over_the_limit_is_killed_with_exit_code_124(pool: Any) -> None:
    async with make_executor(pool, timeout=2) as executor:
        timed_out = await run(executor, ("bash", "echo partial; sleep 30; echo never"))
        after = await run(executor, ("bash", "echo fine"))
    assert timed_out.exit_code == 124
    assert "partial" in timed_out.output
    assert "never" not in timed_out.output
    assert after.exit_code == 0
    assert after.stdout.strip() == "fine"


async def wait_for_file(pool: Any, identifier: str, name: str) -> None:
    """Wait until the code running in the session has created ``name`` in /mnt/data (a signal
    from inside the session, so the test never guesses how long the code needs to start)."""
    async with SessionsClient(pool.endpoint, pool.credential, api_version=NEWEST) as client:
        while True:
            if name in {entry.name for entry in await client.list_files(identifier)}:
                return
            await asyncio.sleep(0.05)


async def test_cancellation_raises_cancelled_error_without_waiting_for_the_code(pool: Any) -> None:
    async with make_executor(pool, timeout=30) as executor:
        await run(executor, ("python", "print('warm')"))
        token = CancellationToken()
        call = asyncio.ensure_future(
            executor.execute_code_blocks(
                [
                    CodeBlock(
                        code="import pathlib, time\npathlib.Path('started.flag').touch()\ntime.sleep(25)",
                        language="python",
                    )
                ],
                token,
            )
        )
        await asyncio.wait_for(wait_for_file(pool, executor.session_id, "started.flag"), timeout=60)
        assert not call.done()
        token.cancel()
        # The code sleeps 25 s more: only a working cancellation ends the call before that.
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(call, timeout=20)


async def test_session_is_usable_after_a_cancelled_block(pool: Any) -> None:
    async with make_executor(pool, timeout=30) as executor:
        await run(executor, ("python", "kept = 'yes'"))
        token = CancellationToken()
        call = asyncio.ensure_future(
            executor.execute_code_blocks(
                [
                    CodeBlock(
                        code=(
                            "import pathlib, time\npathlib.Path('running.flag').touch()\n"
                            "time.sleep(4)\nlate = 1"
                        ),
                        language="python",
                    )
                ],
                token,
            )
        )
        await asyncio.wait_for(wait_for_file(pool, executor.session_id, "running.flag"), timeout=60)
        token.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The remote block runs to its end (the service has no cancel); the next call queues behind it.
        after = await run(executor, ("python", "print(kept, late)"))
    assert after.exit_code == 0, after.output
    assert after.stdout.strip() == "yes 1"


@BOTH
async def test_long_output_over_max_output_chars_is_cut_and_marked(pool: Any, api_version: str) -> None:
    async with make_executor(pool, api_version=api_version, max_output_chars=1000) as executor:
        result = await run(executor, ("python", "print('a' * 5000)\nprint('END')"))
    assert result.exit_code == 0
    # One stream over the limit: its first 1000 characters are kept and the cut is said.
    assert result.stdout_truncated
    assert result.stdout == "a" * 1000
    assert "[stdout truncated after 1000 characters]" in result.output


@BOTH
async def test_output_over_max_output_chars_keeps_head_and_tail_around_a_marker(
    pool: Any, api_version: str
) -> None:
    code = "import sys\nprint('a' * 900)\n_ = sys.stderr.write('b' * 900 + 'END\\n')"
    async with make_executor(pool, api_version=api_version, max_output_chars=1000) as executor:
        result = await run(executor, ("python", code))
    assert result.exit_code == 0
    assert result.output_truncated
    produced = len("a" * 900 + "\n") + len("b" * 900 + "END\n")
    # The tail (where tracebacks and final lines are) survives the cut.
    assert result.output.endswith("END\n")
    head, marker, tail = result.output.partition("\n[... ")
    assert marker
    omitted_text, _, tail = tail.partition(" characters of output omitted (max_output_chars=1000) ...]\n")
    omitted = int(omitted_text)
    assert len(result.output) == 1000
    assert head.startswith("a")
    assert set(head) == {"a"}
    assert tail.endswith("END\n")
    assert set(tail[: -len("END\n")]) == {"b"}
    # Every character is either kept or counted in the marker.
    assert len(head) + len(tail) + omitted == produced


async def test_structured_result_fields_describe_each_block(pool: Any) -> None:
    async with make_executor(pool) as executor:
        result = await run(executor, ("python", "print('a')"), ("bash", "echo b"))
        assert result.session_id == executor.session_id
    assert result.stdout.split() == ["a", "b"]
    assert [block.language for block in result.blocks] == ["python", "bash"]
    assert all(block.executed for block in result.blocks)
    assert result.execution_time_ms >= 0


async def test_a_shell_block_over_the_argument_size_limit_runs(pool: Any) -> None:
    # Linux refuses one argument over 128 KiB: the script must not travel as "bash -c <script>".
    script = "x=" + "a" * 150_000 + "\necho ${#x}\n"
    async with make_executor(pool) as executor:
        result = await run(executor, ("bash", script))
    assert result.exit_code == 0, result.output[-500:]
    assert result.stdout.strip() == "150000"

"""The pytest plugin, used the way a user uses it: a test file of their own, run by pytest in a subprocess.

The user's directory has no pytest configuration (pytest-asyncio in strict mode): the plugin,
found through its ``pytest11`` entry point, must be all it takes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autogen_aca_sessions.local import LocalSessionPool
from autogen_aca_sessions.pytest_plugin import API_KEY_ENV, ENDPOINT_ENV

USER_TESTS = """
import pytest
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock


async def run(executor, language, code):
    return await executor.execute_code_blocks([CodeBlock(code=code, language=language)], CancellationToken())


async def test_my_agent(aca_executor):
    first = await run(aca_executor, "python", "x = 6 * 7\\nprint(x)")
    second = await run(aca_executor, "python", "print(x + 1)")
    assert (first.exit_code, first.output.strip()) == (0, "42")
    assert second.output.strip() == "43"
    assert first.session_id == second.session_id


async def test_each_test_gets_a_fresh_session(aca_executor):
    result = await run(aca_executor, "python", "print('x' in globals())")
    assert result.output.strip() == "False"


async def test_client(aca_client, aca_pool):
    result = await aca_client.execute("user-session", "import pandas as pd\\npd.Series([1, 2, 3]).sum()")
    assert result.result == 6
    await aca_client.delete_session("user-session")


def test_pool_is_described(aca_pool):
    print("POOL", aca_pool.is_local, aca_pool.endpoint, aca_pool.pool_type)


@pytest.mark.aca_executor(timeout=2)
async def test_executor_options_from_the_marker(aca_executor):
    result = await run(aca_executor, "python", "import time\\ntime.sleep(30)")
    assert result.exit_code == 124


@pytest.mark.aca_pool(pool_type="Shell", ready_sessions=0)
async def test_a_shell_pool_from_the_marker(aca_executor, aca_pool):
    result = await run(aca_executor, "bash", "echo from bash; exit 3")
    assert aca_pool.pool_type == "Shell"
    assert result.exit_code == 3
    assert "from bash" in result.output


@pytest.mark.aca_pool(faults="503=1.0,retry_after=0,ops=execute")
async def test_faults_from_the_marker(aca_client):
    from autogen_aca_sessions.client import ServiceUnavailableError

    with pytest.raises(ServiceUnavailableError):
        await aca_client.execute("faulty", "1")


@pytest.mark.asyncio(loop_scope="module")
async def test_a_module_scoped_loop_works_too(aca_executor):
    result = await run(aca_executor, "python", "print('module loop')")
    assert result.output.strip() == "module loop"
"""


MODULE_LOOP_TESTS = """
import asyncio

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")
LOOPS = []


async def test_first(aca_client):
    LOOPS.append(asyncio.get_running_loop())


async def test_second_runs_in_the_modules_loop_too(aca_client):
    LOOPS.append(asyncio.get_running_loop())
    assert LOOPS[0] is LOOPS[1]
"""


def _outcomes(result: pytest.RunResult) -> dict[str, int]:
    return {key: value for key, value in result.parseoutcomes().items() if key not in ("seconds", "warnings")}


def readme_example() -> str:
    """The test file the README's "Testing your agents" section shows."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Testing your agents", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    return next(block for block in blocks if block.startswith("# test_my_agent.py"))


def test_a_users_async_test_runs_against_a_local_pool_with_no_set_up(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user=USER_TESTS, test_my_agent=readme_example(), test_module_loop=MODULE_LOOP_TESTS
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "-W", "ignore::DeprecationWarning")

    assert _outcomes(result) == {"passed": 11}, result.stdout.str()[-4000:]
    result.stdout.fnmatch_lines(["*POOL True http://127.0.0.1:*/subscriptions/*/sessionPools/* PythonLTS"])


async def test_the_same_tests_run_against_the_pool_an_environment_variable_names(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_user=USER_TESTS, test_my_agent=readme_example())
    # A pool the plugin did not start (as `aca-sessions serve` or Azure would be): no local pool
    # is started, and tests that need the local pool's options are skipped, saying why.
    async with LocalSessionPool(ready_sessions=1) as remote:
        monkeypatch.setenv(ENDPOINT_ENV, remote.endpoint)
        monkeypatch.setenv(API_KEY_ENV, remote.api_key)

        result = await _run_in_thread(pytester, "-p", "no:cacheprovider", "-s", "-rs")

        listed = [s.identifier for s in remote.manager.sessions()]

    assert _outcomes(result) == {"passed": 7, "skipped": 2}, result.stdout.str()[-4000:]
    result.stdout.fnmatch_lines([f"*POOL False {remote.endpoint} PythonLTS"])
    result.stdout.fnmatch_lines([f"*needs a local pool (faults) but {ENDPOINT_ENV} names a remote one*"])
    result.stdout.fnmatch_lines([f"*needs a Shell pool; the pool {ENDPOINT_ENV} names is PythonLTS*"])
    assert listed == []  # every executor released its session; the client test deleted its own


def test_without_the_local_extra_the_plugin_registers_nothing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import importlib.abc
import sys


class NoLocalExtra(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("jupyter_client", "ipykernel"):
            raise ModuleNotFoundError(name)
        return None


sys.meta_path.insert(0, NoLocalExtra())
"""
    )
    pytester.makepyfile(
        test_plain="def test_unrelated():\n    assert True\n",
        test_wants_pool="def test_needs(aca_executor):\n    pass\n",
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    assert _outcomes(result) == {"passed": 1, "errors": 1}, result.stdout.str()[-4000:]
    result.stdout.fnmatch_lines(["*fixture 'aca_executor' not found*"])


async def _run_in_thread(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # The remote pool serves on this test's event loop, so the child pytest must be waited
    # for off the loop.
    import asyncio

    return await asyncio.to_thread(pytester.runpytest_subprocess, *args)

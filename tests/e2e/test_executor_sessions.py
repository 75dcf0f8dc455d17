"""End-to-end: session policy (restart, stop, replaced interpreters) and injected functions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from _executor_helpers import LEGACY, NEWEST, NO_DELETE, make_executor
from _executor_helpers import run_code as run
from autogen_core import CancellationToken
from autogen_core.code_executor import FunctionWithRequirements, with_requirements

from autogen_aca_sessions.client import SessionsClient
from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALL_KINDS = pytest.mark.parametrize("api_version", [LEGACY, NO_DELETE, NEWEST])


async def live_sessions(pool: Any) -> set[str]:
    async with SessionsClient(pool.endpoint, pool.credential, api_version=NEWEST) as client:
        return {info.identifier for info in await client.list_sessions()}


@with_requirements(python_packages=["numpy"], global_imports=["numpy"])
def mean_of(values: list[float]) -> float:
    """The arithmetic mean."""
    return float(numpy.mean(values))  # type: ignore[name-defined]  # noqa: F821 - imported in the session


def shout(text: str) -> str:
    """Upper-case text with an exclamation mark."""
    return text.upper() + "!"


TWICE = FunctionWithRequirements.from_str("def twice(x):\n    return 2 * x\n")


@ALL_KINDS
async def test_injected_functions_are_importable_and_usable_directly(pool: Any, api_version: str) -> None:
    functions = [mean_of, shout, TWICE]
    async with make_executor(pool, api_version=api_version, functions=functions) as executor:
        imported = await run(
            executor, "from functions import mean_of, shout\nprint(mean_of([1, 2, 3]), shout('hi'))"
        )
        direct = await run(executor, "print(twice(21), shout('x'))")
        module = await run(executor, "import functions\nprint(functions.twice(5))")
    assert imported.exit_code == 0, imported.output
    assert imported.stdout.strip() == "2.0 HI!"
    assert direct.stdout.strip() == "42 X!"
    assert module.stdout.strip() == "10"


class OnlyOnTheCallersSide:
    """A type the session has never heard of."""


def describe(item: OnlyOnTheCallersSide | None = None) -> str:
    """Annotated with a type that does not exist in the session."""
    return "described"


async def test_functions_annotated_with_caller_side_types_still_load(pool: Any) -> None:
    async with make_executor(pool, functions=[describe]) as executor:
        result = await run(executor, "print(describe())")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "described"


async def test_functions_module_name_is_configurable(pool: Any) -> None:
    async with make_executor(pool, functions=[shout], functions_module="tools") as executor:
        result = await run(executor, "from tools import shout\nprint(shout('ok'))")
    assert result.stdout.strip() == "OK!"


@ALL_KINDS
async def test_restart_wipes_state_and_sets_functions_up_again_for_own_session(
    pool: Any, api_version: str
) -> None:
    async with make_executor(pool, api_version=api_version, functions=[shout]) as executor:
        await run(executor, "secret = 1")
        before = executor.session_id
        await executor.restart()
        gone = await run(executor, "print(secret)")
        functions_back = await run(executor, "print(shout('again'))")
    assert executor.session_id != before
    assert gone.exit_code == 1
    assert "NameError" in gone.output
    assert functions_back.stdout.strip() == "AGAIN!"


@ALL_KINDS
async def test_restart_keeps_a_caller_session_id_but_gives_a_fresh_interpreter(
    pool: Any, api_version: str
) -> None:
    session_id = f"caller-{uuid.uuid4()}"
    async with make_executor(
        pool, api_version=api_version, session_id=session_id, functions=[shout]
    ) as executor:
        await run(executor, "secret = 1")
        await executor.restart()
        gone = await run(executor, "print(secret)")
        functions_back = await run(executor, "from functions import shout\nprint(shout('again'))")
        assert executor.session_id == session_id
        assert gone.session_id == session_id
    assert gone.exit_code == 1
    assert "NameError" in gone.output
    assert functions_back.stdout.strip() == "AGAIN!"


async def test_stop_releases_the_executors_own_session(pool: Any) -> None:
    executor = make_executor(pool, api_version=NEWEST)
    await executor.start()
    await run(executor, "print(1)")
    own_id = executor.session_id
    assert own_id in await live_sessions(pool)
    await executor.stop()
    assert own_id not in await live_sessions(pool)


async def test_stop_keeps_a_caller_supplied_session(pool: Any) -> None:
    session_id = f"caller-{uuid.uuid4()}"
    async with make_executor(pool, api_version=NEWEST, session_id=session_id) as executor:
        await run(executor, "kept = 'still here'")
    assert session_id in await live_sessions(pool)
    async with make_executor(pool, api_version=NEWEST, session_id=session_id) as again:
        result = await run(again, "print(kept)")
    assert result.stdout.strip() == "still here"


async def test_release_session_on_stop_true_releases_a_caller_session(pool: Any) -> None:
    session_id = f"caller-{uuid.uuid4()}"
    async with make_executor(
        pool, api_version=NEWEST, session_id=session_id, release_session_on_stop=True
    ) as executor:
        await run(executor, "x = 1")
    assert session_id not in await live_sessions(pool)


async def test_release_session_on_stop_false_keeps_the_own_session(pool: Any) -> None:
    async with make_executor(pool, api_version=NEWEST, release_session_on_stop=False) as executor:
        await run(executor, "x = 1")
        own_id = executor.session_id
    assert own_id in await live_sessions(pool)


async def test_executor_is_usable_again_after_stop(pool: Any) -> None:
    executor = make_executor(pool, functions=[shout])
    async with executor:
        await run(executor, "print(1)")
    async with executor:
        result = await run(executor, "print(shout('back'))")
    assert result.stdout.strip() == "BACK!"


@pytest.mark.parametrize("api_version", [LEGACY, NEWEST])
async def test_replaced_interpreter_is_reported_and_functions_set_up_again(
    pool: Any, api_version: str
) -> None:
    async with make_executor(pool, api_version=api_version, functions=[shout]) as executor:
        await run(executor, "x = 1")
        died = await run(executor, "import os\nos._exit(1)")
        after = await run(executor, "print(shout('up'))")
        lost = await run(executor, "print(x)")
    assert died.exit_code != 0
    assert died.state_lost
    assert "set up again" in died.output
    assert after.exit_code == 0, after.output
    assert after.stdout.strip() == "UP!"
    assert "NameError" in lost.output


async def test_function_needing_a_missing_package_raises_value_error_naming_it(pool: Any) -> None:
    @with_requirements(python_packages=["surely-not-installed-pkg>=1.0", "numpy"])
    def needs_missing() -> int:
        return 1

    async with make_executor(pool, functions=[needs_missing]) as executor:
        with pytest.raises(ValueError, match="surely-not-installed-pkg") as info:
            await run(executor, "print(1)")
    assert "numpy" not in str(info.value)


async def test_function_that_fails_to_load_raises_value_error(pool: Any) -> None:
    broken = FunctionWithRequirements.from_str(
        "def broken():\n    return 1\n", global_imports=["module_that_does_not_exist_anywhere"]
    )
    async with make_executor(pool, functions=[broken]) as executor:
        with pytest.raises(ValueError, match="Functions failed to load"):
            await run(executor, "print(1)")


async def test_code_runs_in_mnt_data_or_the_sessions_data_directory(pool: Any) -> None:
    async with make_executor(pool) as executor:
        await executor.upload_files([_write(executor, "probe.txt", b"probe")], CancellationToken())
        result = await run(executor, "print(open('probe.txt').read())")
    assert result.stdout.strip() == "probe"


def _write(executor: ACADynamicSessionsCodeExecutor, name: str, data: bytes) -> str:
    path = executor.work_dir / name
    path.write_bytes(data)
    return name


async def test_a_session_replaced_by_the_service_gets_its_functions_and_directory_again(pool: Any) -> None:
    # The service deletes an idle session after its cooldown; a later call with the same
    # identifier gets a fresh one. Simulated by deleting it from another client.
    identifier = f"fixed-{uuid.uuid4().hex[:8]}"
    async with make_executor(pool, functions=[shout], session_id=identifier) as executor:
        first = await run(executor, "import os; print(shout('a'), os.getcwd())")
        async with SessionsClient(pool.endpoint, pool.credential, api_version=NEWEST) as other:
            await other.delete_session(identifier)
        second = await run(executor, "import os; print(shout('b'), os.getcwd())")
        third = await run(executor, "from functions import shout as s; print(s('c'))")
    assert first.exit_code == 0, first.output
    assert first.stdout.split() == ["A!", "/mnt/data"]
    assert not first.state_lost
    assert second.exit_code == 0, second.output
    assert second.stdout.split() == ["B!", "/mnt/data"]
    assert second.state_lost
    assert "was replaced by the service" in second.output
    assert third.exit_code == 0, third.output
    assert third.stdout.strip() == "C!"
    assert not third.state_lost

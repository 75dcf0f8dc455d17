"""What the executor sends over the wire, pinned against the scripted fake pool of
``tests/unit/conftest.py`` (aioresponses cannot build responses for aiohttp 3.14)."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, with_requirements

from autogen_aca_sessions.client import (
    AuthenticationError,
    CredentialError,
    ExecutionTimeoutError,
    PermissionDeniedError,
    PoolFullError,
    PoolNotFoundError,
    SessionsClient,
)
from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor, ACADynamicSessionsCodeResult
from autogen_aca_sessions.executor._setup_prefix import SETUP_LINE
from tests.unit.conftest import FakePool, Recorded

NEWEST = "2025-10-02-preview"
LEGACY = "2024-02-02-preview"
EXECUTIONS = r"^/executions\?"
LEGACY_EXECUTE = r"^/code/execute\?"
SESSION = r"^/session\?"
METADATA = r"^/metadata\?"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
LEGACY_OK = {"properties": {"status": "Success", "stdout": "", "stderr": "", "result": ""}}


def succeeded(stdout: str = "", result: Any = "") -> dict[str, Any]:
    return {
        "id": "exec-1",
        "identifier": "ignored",
        "executionType": "Synchronous",
        "status": "Succeeded",
        "result": {
            "stdout": stdout,
            "stderr": "",
            "executionResult": result,
            "executionTimeInMilliseconds": 3,
        },
    }


def answer(
    pool: FakePool, *bodies: dict[str, Any], default: dict[str, Any] | None = None, legacy: bool = False
) -> None:
    """Queue execution answers in order, then answer every further execution with ``default``."""
    path = LEGACY_EXECUTE if legacy else EXECUTIONS
    for body in bodies:
        pool.reply(200, body, method="POST", path=path)
    pool.reply(200, default or (LEGACY_OK if legacy else succeeded()), method="POST", path=path, repeat=True)


def executions(pool: FakePool) -> list[Recorded]:
    return [
        r
        for r in pool.requests
        if r.method == "POST" and ("/executions" in r.raw or "/code/execute" in r.raw)
    ]


def codes(pool: FakePool) -> list[str]:
    out = []
    for request in executions(pool):
        body = request.json()
        out.append(body.get("code") or body["properties"]["code"])
    return out


def deletes(pool: FakePool) -> list[Recorded]:
    return [r for r in pool.requests if r.method == "DELETE"]


def executor(pool: FakePool, **kwargs: Any) -> ACADynamicSessionsCodeExecutor:
    kwargs.setdefault("api_version", NEWEST)
    return ACADynamicSessionsCodeExecutor(pool.endpoint, "token", **kwargs)


async def run(
    target: ACADynamicSessionsCodeExecutor, *blocks: tuple[str, str]
) -> ACADynamicSessionsCodeResult:
    return await target.execute_code_blocks(
        [CodeBlock(code=code, language=language) for language, code in blocks], CancellationToken()
    )


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def is_setup(code: str) -> bool:
    return "/mnt/data" in code and "chdir" in code


async def test_setup_travels_with_the_first_block_and_every_execution_carries_the_timeout(
    fake_pool: FakePool,
) -> None:
    answer(fake_pool)
    async with executor(fake_pool, timeout=17, session_id="sid-1") as target:
        await run(target, ("python", "print(1)"))
        await run(target, ("python", "print(2)"))
    sent = codes(fake_pool)
    assert sent == [SETUP_LINE + "\nprint(1)", "print(2)"]
    assert is_setup(sent[0])
    assert all(request.json()["timeoutInSeconds"] == 17 for request in executions(fake_pool))
    assert all("identifier=sid-1" in request.raw for request in executions(fake_pool))


async def test_unknown_language_sends_no_request(fake_pool: FakePool) -> None:
    async with executor(fake_pool) as target:
        result = await run(target, ("cobol", "DISPLAY 'HI'."))
    assert result.exit_code == 1
    assert "Unsupported language 'cobol'" in result.output
    assert fake_pool.requests == []


async def test_code_is_sent_unchanged(fake_pool: FakePool) -> None:
    answer(fake_pool)
    code = "python_var = 1\n%timeit -n1 pass\nprint(f'{python_var!r}')"
    async with executor(fake_pool) as target:
        await run(target, ("python", code))
        await run(target, ("python", code))
    # The first carries the set-up line in front of it; the block itself is never changed.
    assert codes(fake_pool) == [SETUP_LINE + "\n" + code, code]


async def test_stop_deletes_the_executors_own_session(fake_pool: FakePool) -> None:
    answer(fake_pool)
    fake_pool.reply(204, method="DELETE", path=SESSION)
    target = executor(fake_pool)
    own = target.session_id
    async with target:
        await run(target, ("python", "1"))
    assert len(deletes(fake_pool)) == 1
    assert f"identifier={own}" in deletes(fake_pool)[0].raw


@pytest.mark.parametrize(
    ("status", "body", "raised"),
    [
        (401, {"error": {"code": "Unauthorized", "message": "The key is not valid."}}, AuthenticationError),
        (403, {"error": {"code": "Forbidden", "message": "no role"}}, PermissionDeniedError),
        (404, {"error": {"code": "SessionPoolFull", "message": "at maxConcurrentSessions"}}, PoolFullError),
        (404, {"error": {"code": "SessionPoolNotFound", "message": "no pool 'x'"}}, PoolNotFoundError),
    ],
)
async def test_a_refused_first_block_sends_one_post_and_stop_deletes_nothing(
    fake_pool: FakePool, status: int, body: dict[str, Any], raised: type[Exception]
) -> None:
    # A wrong static key, a missing role, a full pool or a wrong URL: the refused request created
    # no session, so there is nothing to release (a DELETE would only be refused the same way).
    fake_pool.reply(status, body, repeat=True)
    target = executor(fake_pool)
    with pytest.raises(raised) as info:
        async with target:
            await run(target, ("python", "print(1)"))
    assert [r.method for r in fake_pool.requests] == ["POST"]
    assert deletes(fake_pool) == []
    assert str(info.value).count(body["error"]["message"]) == 1


async def test_a_local_pool_without_a_key_is_one_credential_error_and_nothing_is_sent(
    fake_pool: FakePool,
) -> None:
    target = ACADynamicSessionsCodeExecutor(fake_pool.endpoint, None, api_version=NEWEST)
    with pytest.raises(CredentialError, match=r"^a local pool wants an API key: pass credential=\.\.\."):
        async with target:
            await run(target, ("python", "print(1)"))
    assert fake_pool.requests == []


async def test_a_session_used_before_a_refused_block_is_still_released(fake_pool: FakePool) -> None:
    answer(fake_pool, succeeded(stdout="1\n"), default={"status": "Failed"})
    target = executor(fake_pool)
    async with target:
        await run(target, ("python", "print(1)"))
        fake_pool.replies.clear()
        fake_pool.reply(403, {"error": {"code": "Forbidden", "message": "role revoked"}}, method="POST")
        fake_pool.reply(204, method="DELETE", path=SESSION)
        with pytest.raises(PermissionDeniedError):
            await run(target, ("python", "print(2)"))
    assert [r.method for r in fake_pool.requests] == ["POST", "POST", "DELETE"]


async def test_stop_keeps_a_caller_supplied_session(fake_pool: FakePool) -> None:
    answer(fake_pool)
    async with executor(fake_pool, session_id="theirs") as target:
        await run(target, ("python", "1"))
    assert deletes(fake_pool) == []


async def test_stop_without_any_call_sends_nothing(fake_pool: FakePool) -> None:
    async with executor(fake_pool):
        pass
    assert fake_pool.requests == []


async def test_stop_on_an_api_version_without_delete_sends_none(fake_pool: FakePool) -> None:
    answer(fake_pool, legacy=True)
    async with executor(fake_pool, api_version=LEGACY) as target:
        await run(target, ("python", "1"))
    assert deletes(fake_pool) == []
    assert len(executions(fake_pool)) == 1


async def test_failure_to_release_on_stop_is_logged_not_raised(
    fake_pool: FakePool, caplog: pytest.LogCaptureFixture
) -> None:
    answer(fake_pool)
    fake_pool.reply(
        403, {"error": {"code": "Forbidden", "message": "no role"}}, method="DELETE", path=SESSION
    )
    target = executor(fake_pool)
    with caplog.at_level(logging.WARNING, logger="autogen_aca_sessions.executor"):
        async with target:
            await run(target, ("python", "1"))
    assert len(deletes(fake_pool)) == 1
    assert any("Releasing session" in record.getMessage() for record in caplog.records)


async def test_restart_with_caller_id_deletes_keeps_the_id_and_sets_up_again(fake_pool: FakePool) -> None:
    answer(fake_pool)
    fake_pool.reply(204, method="DELETE", path=SESSION)
    async with executor(fake_pool, session_id="caller", release_session_on_stop=False) as target:
        await run(target, ("python", "a = 1"))
        await target.restart()
        await run(target, ("python", "print(a)"))
        assert target.session_id == "caller"
    # One request per first block: the set-up travels with it.
    assert codes(fake_pool) == [SETUP_LINE + "\na = 1", SETUP_LINE + "\nprint(a)"]
    assert all("identifier=caller" in request.raw for request in executions(fake_pool))
    assert len(deletes(fake_pool)) == 1
    assert "identifier=caller" in deletes(fake_pool)[0].raw


async def test_restart_on_legacy_with_caller_id_resets_the_namespace(fake_pool: FakePool) -> None:
    answer(fake_pool, legacy=True)
    async with executor(fake_pool, api_version=LEGACY, session_id="caller") as target:
        await run(target, ("python", "a = 1"))
        await target.restart()
        await run(target, ("python", "print(a)"))
    sent = codes(fake_pool)
    assert len(sent) == 4
    assert sent[0] == SETUP_LINE + "\na = 1"
    assert "reset(new_session=False)" in sent[1]
    assert is_setup(sent[2])
    assert sent[3] == "print(a)"
    assert deletes(fake_pool) == []


async def test_restart_with_own_id_on_legacy_switches_to_a_new_identifier(fake_pool: FakePool) -> None:
    answer(fake_pool, legacy=True)
    async with executor(fake_pool, api_version=LEGACY) as target:
        first = target.session_id
        await run(target, ("python", "a = 1"))
        await target.restart()
        await run(target, ("python", "print(a)"))
        second = target.session_id
    assert first != second
    assert [f"identifier={first}" in r.raw for r in executions(fake_pool)] == [True, False]
    assert not any("reset(" in code for code in codes(fake_pool))


async def test_server_timeout_gives_124_with_the_output_before_it(fake_pool: FakePool) -> None:
    timed_out = {
        "id": "e",
        "status": "Failed",
        "error": {"code": "ExecutionTimeout", "message": "Execution timed out after 5 seconds."},
        "result": {"stdout": "partial\n", "stderr": "", "executionResult": ""},
    }
    answer(fake_pool, timed_out)
    async with executor(fake_pool, timeout=5) as target:
        result = await run(target, ("python", "print('partial'); spin()"), ("python", "print('skipped')"))
    assert result.exit_code == 124
    assert result.timed_out
    assert result.output.startswith("partial\n")
    assert "Timed out after 5 s" in result.output
    assert len(result.blocks) == 1
    assert len(executions(fake_pool)) == 1


async def test_client_giving_up_gives_124_and_says_state_is_unknown(fake_pool: FakePool) -> None:
    class GivingUp(SessionsClient):
        async def execute(self, identifier: str, code: str, **kwargs: Any) -> Any:
            raise ExecutionTimeoutError(identifier, 5, 15.0)

    answer(fake_pool)
    client = GivingUp(fake_pool.endpoint, "token")
    target = executor(fake_pool, client=client, timeout=5)
    result = await run(target, ("python", "x"))
    await target.stop()
    await client.close()
    assert result.exit_code == 124
    assert result.timed_out
    assert "unknown" in result.output


async def test_replaced_interpreter_is_reported_and_setup_runs_again(fake_pool: FakePool) -> None:
    died = {
        "id": "e",
        "status": "Failed",
        "error": {"code": "KernelDied", "message": "The kernel died."},
        "result": {"stdout": "", "stderr": "kernel died\n", "executionResult": ""},
    }
    answer(fake_pool, succeeded(), died)
    async with executor(fake_pool, functions=[shout]) as target:
        first = await run(target, ("python", "crash()"))
        await run(target, ("python", "print(shout('x'))"))
    assert first.state_lost
    assert first.notes
    assert "set up again" in first.output
    assert [is_setup(code) for code in codes(fake_pool)] == [True, False, True, False]


async def test_vanished_session_is_set_up_again_and_the_block_resent(fake_pool: FakePool) -> None:
    fake_pool.reply(200, succeeded(), method="POST", path=EXECUTIONS)
    fake_pool.reply(
        400,
        {"error": {"code": "SessionWithIdentifierNotFound", "message": "not found"}},
        headers={"x-ms-error-code": "SessionWithIdentifierNotFound"},
        method="POST",
        path=EXECUTIONS,
    )
    answer(fake_pool)
    async with executor(fake_pool) as target:
        await run(target, ("python", "print(0)"))
        result = await run(target, ("python", "print(1)"))
    assert result.exit_code == 0
    assert [is_setup(code) for code in codes(fake_pool)] == [True, False, True, False]
    assert codes(fake_pool)[1] == codes(fake_pool)[3] == "print(1)"
    assert "no longer existed" in result.output


async def test_legacy_image_result_is_saved_as_a_png_file(fake_pool: FakePool, tmp_path: Path) -> None:
    image = {"type": "image", "format": "png", "base64_data": base64.b64encode(PNG).decode()}
    drawn = {"properties": {"status": "Success", "stdout": "drawn\n", "stderr": "", "result": image}}
    answer(fake_pool, drawn, legacy=True)
    async with executor(fake_pool, api_version=LEGACY, work_dir=tmp_path) as target:
        result = await run(target, ("python", "plt.show()"))
    assert len(result.image_paths) == 1
    saved = Path(result.image_paths[0])
    assert saved.parent == tmp_path
    assert read_bytes(saved) == PNG
    assert result.output == f"drawn\nSaved image to {saved}\n"


async def test_output_cut_by_the_service_is_marked(fake_pool: FakePool) -> None:
    answer(fake_pool, succeeded(stdout="x" * 50))
    async with executor(fake_pool, max_output_chars=50) as target:
        result = await run(target, ("python", "print('x' * 100)"))
    assert executions(fake_pool)[-1].json()["outputStreamsMaxLength"] == 50
    assert result.stdout_truncated
    assert "[stdout truncated" in result.output


async def test_output_text_over_max_output_chars_is_cut_in_the_middle_and_marked(fake_pool: FakePool) -> None:
    answer(fake_pool, succeeded(stdout="HEAD" + "x" * 140), succeeded(stdout="y" * 140 + "TAIL"))
    async with executor(fake_pool, api_version="2025-02-02-preview", max_output_chars=200) as target:
        result = await run(target, ("python", "noisy()"), ("python", "noisy()"))
    assert result.output_truncated
    # 200 characters of output plus the newline the executor put between the two blocks.
    assert len(result.output) <= 201
    assert "max_output_chars=200" in result.output
    assert result.output.startswith("HEAD")
    assert result.output.endswith("TAIL")
    assert not result.stdout_truncated
    assert "characters of output omitted" in result.output


async def test_shell_block_reports_the_exit_status_the_wrapper_returns(fake_pool: FakePool) -> None:
    answer(fake_pool, succeeded(stdout="hi\n", result=3))
    async with executor(fake_pool) as target:
        result = await run(target, ("bash", "echo hi; exit 3"))
    assert result.exit_code == 3
    assert result.output == "hi\n"
    assert "subprocess" in codes(fake_pool)[-1]
    assert "echo hi; exit 3" in codes(fake_pool)[-1]


@with_requirements(python_packages=["pandas>=2", "numpy"])
def needs_pandas() -> int:
    return 1


def shout(text: str) -> str:
    return text.upper()


async def test_missing_packages_from_pool_metadata_raise_before_any_execution(fake_pool: FakePool) -> None:
    metadata = {"runtimes": [], "preInstalledPackages": [{"name": "numpy", "version": "2"}]}
    fake_pool.reply(200, metadata, method="GET", path=METADATA)
    async with executor(fake_pool, functions=[needs_pandas]) as target:
        with pytest.raises(ValueError, match=r"pandas>=2"):
            await run(target, ("python", "print(1)"))
    assert executions(fake_pool) == []


async def test_packages_come_from_the_interpreter_on_legacy_versions(fake_pool: FakePool) -> None:
    listed = {"properties": {"status": "Success", "stdout": "", "result": ["numpy", "pandas"]}}
    answer(fake_pool, default=listed, legacy=True)
    async with executor(fake_pool, api_version=LEGACY) as target:
        packages = await target.get_available_packages(CancellationToken())
        await target.get_available_packages(CancellationToken())
    assert packages == {"numpy", "pandas"}
    assert len(executions(fake_pool)) == 1
    assert "importlib" in codes(fake_pool)[0]
    assert "pkg_resources" not in codes(fake_pool)[0]

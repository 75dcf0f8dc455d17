"""Session replacement (``x-ms-session-guid``), release of sessions a failed first request may
have created, shell-pool blocks beyond the argument limit, and the executor's file and config
edges, pinned against the scripted fake pool."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from autogen_aca_sessions.client import SessionsConnectionError
from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor
from tests.unit.conftest import FakePool
from tests.unit.test_executor_wire import (
    EXECUTIONS,
    SESSION,
    answer,
    codes,
    deletes,
    executor,
    is_setup,
    run,
    succeeded,
)


def shout(text: str) -> str:
    """Upper-case ``text``."""
    return text.upper() + "!"


def failed(stderr: str) -> dict[str, Any]:
    return {
        "id": "e",
        "status": "Failed",
        "result": {"stdout": "", "stderr": stderr, "executionResult": None},
    }


def reply_with_guid(pool: FakePool, guid: str, body: dict[str, Any] | None = None) -> None:
    pool.reply(200, body or succeeded(), method="POST", path=EXECUTIONS, headers={"x-ms-session-guid": guid})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_replaced_session_gets_functions_again_and_a_block_failing_for_them_is_resent(
    fake_pool: FakePool,
) -> None:
    reply_with_guid(fake_pool, "g1")  # setup
    reply_with_guid(fake_pool, "g1", succeeded("A!\n"))  # block 1
    # Block 2 lands in a new incarnation: the functions are missing there.
    reply_with_guid(
        fake_pool, "g2", failed("Traceback...\n\x1b[31mNameError\x1b[0m: name 'shout' is not defined\n")
    )
    reply_with_guid(fake_pool, "g2")  # setup again
    reply_with_guid(fake_pool, "g2", succeeded("B!\n"))  # block 2 resent
    async with executor(fake_pool, functions=[shout], session_id="fixed") as target:
        await run(target, ("python", "print(shout('a'))"))
        result = await run(target, ("python", "print(shout('b'))"))
    sent = codes(fake_pool)
    assert len(sent) == 5
    assert is_setup(sent[0])
    assert is_setup(sent[3])
    assert sent[2] == sent[4] == "print(shout('b'))"
    assert result.exit_code == 0
    assert result.stdout == "B!\n"
    assert result.state_lost
    assert "was replaced by the service" in result.output
    assert "sent once more" in result.output


async def test_block_that_succeeded_in_a_replaced_session_is_not_resent_but_setup_runs_next(
    fake_pool: FakePool,
) -> None:
    reply_with_guid(fake_pool, "g1")  # setup
    reply_with_guid(fake_pool, "g2", succeeded("2\n"))  # block 1 in a new incarnation
    reply_with_guid(fake_pool, "g2")  # setup before block 2
    reply_with_guid(fake_pool, "g2", succeeded("3\n"))  # block 2
    async with executor(fake_pool, functions=[shout], session_id="fixed") as target:
        first = await run(target, ("python", "print(1+1)"))
        second = await run(target, ("python", "print(1+2)"))
    sent = codes(fake_pool)
    assert [is_setup(code) for code in sent] == [True, False, True, False]
    assert first.state_lost
    assert "was replaced by the service" in first.output
    assert not second.state_lost


async def test_a_failure_unrelated_to_the_setup_is_not_resent(fake_pool: FakePool) -> None:
    reply_with_guid(fake_pool, "g1")
    reply_with_guid(fake_pool, "g2", failed("ZeroDivisionError: division by zero\n"))
    answer(fake_pool)
    async with executor(fake_pool, functions=[shout], session_id="fixed") as target:
        result = await run(target, ("python", "1/0"))
    assert len(codes(fake_pool)) == 2
    assert result.exit_code == 1
    assert result.state_lost


async def test_after_an_idle_gap_the_session_is_checked_before_the_block(fake_pool: FakePool) -> None:
    reply_with_guid(fake_pool, "g1")  # setup
    reply_with_guid(fake_pool, "g1")  # block 1
    reply_with_guid(fake_pool, "g2")  # probe after 301 s idle: a new incarnation
    reply_with_guid(fake_pool, "g2")  # setup
    reply_with_guid(fake_pool, "g2", succeeded("A!\n"))  # block 2
    clock = Clock()
    target = executor(fake_pool, functions=[shout], session_id="fixed")
    target._clock = clock
    async with target:
        await run(target, ("python", "1"))
        clock.now += 301
        result = await run(target, ("python", "print(shout('a'))"))
    sent = codes(fake_pool)
    assert len(sent) == 5
    assert is_setup(sent[0])
    assert sent[2] == "pass\n"
    assert is_setup(sent[3])
    assert sent[4] == "print(shout('a'))"
    assert result.exit_code == 0
    assert result.state_lost
    assert "set up again" in result.output


async def test_after_an_idle_gap_the_same_session_is_used_without_setting_up_again(
    fake_pool: FakePool,
) -> None:
    reply_with_guid(fake_pool, "g1")
    reply_with_guid(fake_pool, "g1")
    reply_with_guid(fake_pool, "g1")
    reply_with_guid(fake_pool, "g1")  # probe: same incarnation
    reply_with_guid(fake_pool, "g1")
    clock = Clock()
    target = executor(fake_pool, functions=[shout], session_id="fixed")
    target._clock = clock
    async with target:
        await run(target, ("python", "1"))
        clock.now += 299
        await run(target, ("python", "2"))  # not idle long enough: no probe
        clock.now += 300
        result = await run(target, ("python", "3"))
    sent = codes(fake_pool)
    assert sent[1:] == ["1", "2", "pass\n", "3"]
    assert not result.state_lost


async def test_a_session_the_first_request_may_have_created_is_released_on_stop(fake_pool: FakePool) -> None:
    # The first execution reaches the pool (which may create the session) and the connection
    # drops before an answer: the executor must still delete its own session on stop.
    fake_pool.reply(disconnect=True, method="POST", path=EXECUTIONS)
    fake_pool.reply(204, method="DELETE", path=SESSION)
    target = executor(fake_pool)
    own = target.session_id
    async with target:
        with pytest.raises(SessionsConnectionError):
            await run(target, ("python", "1"))
    assert len(deletes(fake_pool)) == 1
    assert f"identifier={own}" in deletes(fake_pool)[0].raw


async def test_output_of_exactly_4096_characters_is_said_to_be_possibly_cut(fake_pool: FakePool) -> None:
    answer(fake_pool, succeeded(), succeeded("x" * 4096))
    async with executor(fake_pool, api_version="2025-02-02-preview") as target:
        result = await run(target, ("python", "print('x' * 4096, end='')"))
    assert "may have been cut" in result.output
    assert result.blocks[0].possibly_truncated


async def test_big_shell_pool_blocks_are_uploaded_and_run_from_a_file(fake_pool: FakePool) -> None:
    fake_pool.reply(200, {"name": "f", "type": "File"}, method="POST", path=r"^/files\?")
    answer(fake_pool, default={"status": "0", "result": {"stdout": "ok\n", "stderr": ""}})
    code = "x = '" + "a" * 150_000 + "'\nprint(len(x))\n"
    async with executor(fake_pool, shell_pool=True) as target:
        result = await run(target, ("python", code), ("bash", "echo small"))
    assert result.exit_code == 0
    uploads = [r for r in fake_pool.requests if r.raw.startswith("/files?")]
    assert len(uploads) == 1
    filename, content = uploads[0].form["file"]
    assert content == code.encode()
    assert filename is not None
    assert filename.startswith(".aca_block_")
    commands = [r.json()["shellCommand"] for r in fake_pool.requests if r.raw.startswith("/executions")]
    assert commands[0] == f"python3 {filename}; __aca_rc=$?; rm -f -- {filename}; exit $__aca_rc"
    assert commands[1] == "echo small"


async def test_download_returns_work_dir_joined_paths_like_upstream(
    fake_pool: FakePool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fake_pool.reply(200, body=b"data", method="GET")
    async with executor(fake_pool, work_dir="out") as target:
        paths = await target.download_files(["sub/a.txt"])
    assert paths == [str(Path("out") / "sub/a.txt")]
    assert (tmp_path / "out" / "sub" / "a.txt").read_bytes() == b"data"


async def test_download_through_a_symlink_out_of_work_dir_is_refused(
    fake_pool: FakePool, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "esc").symlink_to(outside)
    async with executor(fake_pool, work_dir=work) as target:
        with pytest.raises(ValueError, match="outside work_dir"):
            await target.download_files(["esc/x.txt"])
    assert fake_pool.requests == []
    assert list(outside.iterdir()) == []


async def test_file_system_work_stays_off_the_event_loop(
    fake_pool: FakePool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    threads: list[tuple[str, int]] = []
    original_resolve = Path.resolve
    original_is_file = Path.is_file

    def resolve(self: Path, strict: bool = False) -> Path:
        threads.append(("resolve", threading.get_ident()))
        return original_resolve(self, strict)

    def is_file(self: Path) -> bool:
        threads.append(("is_file", threading.get_ident()))
        return original_is_file(self)

    (tmp_path / "up.txt").write_bytes(b"u")
    fake_pool.reply(200, {"name": "up.txt"}, method="POST")
    fake_pool.reply(200, body=b"d", method="GET")
    target = executor(fake_pool)
    assert target._temp_dir is not None
    cleanup = target._temp_dir.cleanup

    def recorded_cleanup() -> None:
        threads.append(("cleanup", threading.get_ident()))
        cleanup()

    target._temp_dir.cleanup = recorded_cleanup  # type: ignore[method-assign]
    monkeypatch.setattr(Path, "resolve", resolve)
    monkeypatch.setattr(Path, "is_file", is_file)
    async with target:
        await target.upload_files([tmp_path / "up.txt"])
        await target.download_files(["d.txt"])
    monkeypatch.undo()
    seen = {name for name, _ in threads}
    assert {"resolve", "is_file", "cleanup"} <= seen
    assert all(thread != loop_thread for _, thread in threads)


def test_dumping_a_config_with_a_credential_warns_that_it_falls_back_to_the_default(tmp_path: Path) -> None:
    target = ACADynamicSessionsCodeExecutor(
        "https://eastus.dynamicsessions.io/p", "secret-token", work_dir=tmp_path
    )
    with pytest.warns(UserWarning, match="DefaultAzureCredential"):
        config = target.dump_component().config
    assert "secret-token" not in str(config)
    keyed = ACADynamicSessionsCodeExecutor(
        "http://127.0.0.1:1/p", "k", work_dir=tmp_path, api_key_env="POOL_KEY"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keyed.dump_component()


async def test_plain_http_endpoint_needs_an_explicit_opt_in(tmp_path: Path) -> None:
    target = ACADynamicSessionsCodeExecutor("http://pool.internal:8080/p", "t", work_dir=tmp_path)
    with pytest.raises(ValueError, match="clear text"):
        await target.start()
    allowed = ACADynamicSessionsCodeExecutor(
        "http://pool.internal:8080/p", None, work_dir=tmp_path, allow_insecure_http=True
    )
    await allowed.start()
    loaded = ACADynamicSessionsCodeExecutor.load_component(allowed.dump_component())
    assert loaded.dump_component().config["allow_insecure_http"] is True
    await allowed.stop()


@pytest.mark.parametrize(("length", "limit"), [(1805, 1000), (100_000, 999), (10_050, 10_000), (500, 80)])
def test_middle_cut_marker_counts_exactly_the_characters_left_out(length: int, limit: int) -> None:
    from autogen_aca_sessions.executor._render import _cut_middle

    text = "".join(chr(ord("a") + i % 26) for i in range(length))
    cut = _cut_middle(text, limit, limit)
    head, _, rest = cut.partition("\n[... ")
    number, _, tail = rest.partition(" characters of output omitted")
    tail = tail.partition("...]\n")[2]
    assert text.startswith(head)
    assert text.endswith(tail)
    assert len(head) + len(tail) + int(number) == length
    assert len(cut) == limit

"""Output the service may have cut, shell-pool blocks beyond the argument limit, and the executor's
file and config edges (downloads, file-system work off the event loop, serialised config, plain
http), pinned against the scripted fake pool."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import pytest

from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor
from tests.unit.conftest import FakePool
from tests.unit.test_executor_wire import (
    answer,
    executor,
    run,
    succeeded,
)


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

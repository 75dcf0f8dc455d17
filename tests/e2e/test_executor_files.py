"""End-to-end: files, images, packages and the component config against the real local pool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _executor_helpers import LEGACY, NEWEST, make_executor
from _executor_helpers import run_code as run
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeExecutor

from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor

pytestmark = pytest.mark.asyncio(loop_scope="module")

BOTH = pytest.mark.parametrize("api_version", [LEGACY, NEWEST])
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_bytes(path: Path | str) -> bytes:
    return Path(path).read_bytes()


PLOT = """
import matplotlib
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.plot([1, 2, 3], [3, 1, 2])
plt.show()
print("plotted")
"""


@BOTH
async def test_images_are_saved_as_png_files_and_named_in_the_output(
    pool: Any, api_version: str, tmp_path: Path
) -> None:
    async with make_executor(pool, api_version=api_version, work_dir=tmp_path) as executor:
        first = await run(executor, PLOT)
        second = await run(executor, PLOT)
    assert first.exit_code == 0, first.output
    assert len(first.image_paths) == 1
    image = Path(first.image_paths[0])
    assert image.parent == tmp_path
    assert image.suffix == ".png"
    assert read_bytes(image).startswith(PNG_MAGIC)
    assert f"Saved image to {image}" in first.output
    assert "base64" not in first.output
    assert "iVBORw0KGgo" not in first.output
    assert "plotted" in first.output
    assert second.image_paths != first.image_paths


CSV_ROUND_TRIP = """
import pandas as pd
df = pd.read_csv("data.csv")
df.to_csv("out.csv", index=False)
print(df.a.sum())
"""


@BOTH
async def test_upload_list_and_download_round_trip(pool: Any, api_version: str, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    absolute = outside / "absolute.txt"
    absolute.write_text("abs")
    async with make_executor(pool, api_version=api_version, work_dir=tmp_path / "work") as executor:
        (executor.work_dir / "data.csv").write_text("a,b\n1,2\n")
        await executor.upload_files(["data.csv", absolute], CancellationToken())
        names = await executor.get_file_list(CancellationToken())
        computed = await run(executor, CSV_ROUND_TRIP)
        (executor.work_dir / "data.csv").unlink()
        local_paths = await executor.download_files(
            ["out.csv", "/mnt/data/absolute.txt"], CancellationToken()
        )
    assert {"data.csv", "absolute.txt"} <= set(names)
    assert computed.stdout.strip() == "1"
    assert [Path(p).name for p in local_paths] == ["out.csv", "absolute.txt"]
    assert read_bytes(local_paths[0]) == b"a,b\n1,2\n"
    assert read_bytes(local_paths[1]) == b"abs"
    assert all(Path(p).parent == (tmp_path / "work").resolve() for p in local_paths)


MAKE_SUB_FILE = """
import os
os.makedirs("sub", exist_ok=True)
open("sub/deep.txt", "w").write("deep")
"""


@BOTH
async def test_download_keeps_sub_directories(pool: Any, api_version: str, tmp_path: Path) -> None:
    async with make_executor(pool, api_version=api_version, work_dir=tmp_path) as executor:
        made = await run(executor, MAKE_SUB_FILE)
        assert made.exit_code == 0, made.output
        local_paths = await executor.download_files(["sub/deep.txt"], CancellationToken())
    assert local_paths == [str((tmp_path / "sub" / "deep.txt").resolve())]
    assert read_bytes(local_paths[0]) == b"deep"


@pytest.mark.parametrize(
    "name", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "/mnt/data/../etc/passwd"]
)
async def test_download_names_escaping_work_dir_are_refused(pool: Any, tmp_path: Path, name: str) -> None:
    work = tmp_path / "work"
    async with make_executor(pool, work_dir=work) as executor:
        with pytest.raises(ValueError, match="Refusing"):
            await executor.download_files([name], CancellationToken())
    assert not (tmp_path / "escape.txt").exists()


async def test_download_of_a_missing_file_raises_file_not_found(pool: Any, tmp_path: Path) -> None:
    async with make_executor(pool, work_dir=tmp_path) as executor:
        await run(executor, "print(1)")
        with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
            await executor.download_files(["nope.txt"], CancellationToken())


async def test_upload_of_a_missing_local_file_raises_file_not_found(pool: Any, tmp_path: Path) -> None:
    async with make_executor(pool, work_dir=tmp_path) as executor:
        with pytest.raises(FileNotFoundError):
            await executor.upload_files(["not-there.bin"], CancellationToken())


@BOTH
async def test_available_packages_include_the_data_stack(pool: Any, api_version: str) -> None:
    async with make_executor(pool, api_version=api_version) as executor:
        packages = await executor.get_available_packages(CancellationToken())
        again = await executor.get_available_packages(CancellationToken())
    lowered = {name.lower() for name in packages}
    assert {"numpy", "pandas", "matplotlib"} <= lowered
    assert again == packages


async def test_component_round_trip_writes_no_secret_and_loads_a_working_executor(
    pool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = pool.api_key
    monkeypatch.setenv("ACA_TEST_POOL_TOKEN", token)
    original = ACADynamicSessionsCodeExecutor(
        pool.endpoint,
        token,
        timeout=30,
        work_dir=tmp_path,
        suppress_result_output=True,
        api_version=LEGACY,
        max_output_chars=5000,
        release_session_on_stop=True,
        api_key_env="ACA_TEST_POOL_TOKEN",
    )
    model = original.dump_component()
    dumped = model.model_dump_json()
    assert token not in dumped
    assert model.component_type == "code_executor"
    assert model.provider == "autogen_aca_sessions.executor.ACADynamicSessionsCodeExecutor"
    assert json.loads(dumped)["config"]["api_key_env"] == "ACA_TEST_POOL_TOKEN"

    loaded = CodeExecutor.load_component(json.loads(dumped))
    assert isinstance(loaded, ACADynamicSessionsCodeExecutor)
    assert loaded.dump_component().config == model.config
    assert loaded.timeout == 30
    assert loaded.work_dir == tmp_path
    async with loaded:
        result = await run(loaded, "print('loaded ok')\n40 + 2")
    assert result.stdout.strip() == "loaded ok"
    assert "42" not in result.output  # suppress_result_output survived the round trip

"""The package as users get it: a wheel and an sdist built from this checkout, the wheel installed
(not editable) into a fresh virtual environment outside the checkout, and the main job run there.

Marked ``packaging``: part of the full suite CI runs (it needs a few minutes and the package
index pip is configured with); ``-m "not packaging"`` leaves it out.
"""

from __future__ import annotations

import email.parser
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

import autogen_aca_sessions

pytestmark = [pytest.mark.packaging, pytest.mark.early]

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "autogen_aca_sessions"
PROJECT = "autogen-aca-sessions"
# Variables that would point the installed package at another pool or model than a local one.
_FOREIGN_ENV = (
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "ACA_POOL_MANAGEMENT_ENDPOINT",
    "ACA_SESSIONS_API_KEY",
    "ACA_SESSIONS_TEST_POOL_ENDPOINT",
)


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    completed = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert completed.returncode == 0, (
        f"{args}: exit {completed.returncode}\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    )
    return completed.stdout


def tracked_package_files() -> set[str]:
    listed = run("git", "ls-files", f"src/{PACKAGE}", cwd=REPO).split()
    return {name.removeprefix("src/") for name in listed if not name.endswith(".md")}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel and an sdist, built as a release would be (isolated build environment)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to know which files the package is made of")
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, REPO, cwd=REPO)
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh virtual environment outside the checkout with the wheel and its local, examples and
    testing extras installed: its bin directory and an environment that uses it."""
    home = tmp_path_factory.mktemp("user")
    venv = home / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=home)
    [wheel] = dist.glob("*.whl")
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", f"{wheel}[local,examples,testing]", cwd=home)
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return venv / "bin", env


def test_the_wheel_carries_every_file_of_the_package_and_its_entry_points(dist: Path) -> None:
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_text = archive.read(entry_points).decode()

    # The kernels' and the sandbox's helper scripts are run as files, not imported: they must be there.
    assert tracked_package_files() <= names, sorted(tracked_package_files() - names)
    for script in ("_kernel_startup.py", "_kernel_template.py", "_kernel_boot.py"):
        assert f"{PACKAGE}/local/runtime/{script}" in names
    assert f"{PACKAGE}/py.typed" in names
    assert not any(name.startswith(("tests/", "examples/")) for name in names)
    assert "aca-sessions = autogen_aca_sessions.cli:main" in entry_text
    assert "aca_sessions = autogen_aca_sessions.pytest_plugin" in entry_text


def test_the_wheel_installs_by_its_project_name(dist: Path, tmp_path: Path) -> None:
    # What a package index serves is found by name: publishing the build output is then one step
    # (`twine upload dist/*`), and `pip install 'autogen-aca-sessions[testing]'` works after it.
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [metadata_file] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(metadata_file).decode())
    target = tmp_path / "target"

    run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--no-deps",
        "--find-links",
        dist,
        "--target",
        target,
        f"{PROJECT}[testing]=={autogen_aca_sessions.__version__}",
        cwd=tmp_path,
    )

    assert metadata["Name"] == PROJECT
    assert metadata["Version"] == autogen_aca_sessions.__version__
    assert {"local", "testing", "agent-framework", "examples"} <= set(
        metadata.get_all("Provides-Extra") or []
    )
    assert (target / PACKAGE / "cli.py").is_file()


def test_the_sdist_carries_the_sources_and_the_readme(dist: Path) -> None:
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}

    assert {"pyproject.toml", "README.md"} <= names
    assert {f"src/{name}" for name in tracked_package_files()} <= names


def test_the_quickstart_runs_from_the_installed_wheel(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    bin_dir, env = installed
    # The user's copy of the example, away from the checkout: only the installed package is importable.
    for name in ("quickstart.py", "_common.py", "_requirements.py", "_sales.py"):
        shutil.copy(REPO / "examples" / name, tmp_path / name)

    where = run(
        bin_dir / "python", "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)", cwd=tmp_path, env=env
    )
    completed = subprocess.run(
        [str(bin_dir / "python"), "quickstart.py", "--output-dir", str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )

    assert str(bin_dir.parent) in where
    assert str(REPO) not in where
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "Chart saved to" in completed.stdout
    assert "Unknown child process" not in completed.stderr
    assert (tmp_path / "out" / "revenue_by_region.png").read_bytes().startswith(b"\x89PNG")


def test_aca_sessions_serve_from_the_installed_wheel_runs_code(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    bin_dir, env = installed
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = "packaging-test-key"
    serve = subprocess.Popen(
        [
            str(bin_dir / "aca-sessions"),
            "serve",
            "--port",
            str(port),
            "--api-key",
            key,
            "--ready-sessions",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        endpoint = _wait_for_endpoint(serve)
        executed = run(
            bin_dir / "aca-sessions",
            "exec",
            f"--endpoint={endpoint}",
            f"--api-key={key}",
            "-c",
            "import pandas as pd\nprint(pd.Series([1, 2, 3]).sum() * 7)",
            cwd=tmp_path,
            env=env,
            timeout=180,
        )
        assert executed.strip() == "42"
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(60)
        finally:
            if serve.poll() is None:
                serve.kill()
    assert serve.returncode == 0


def _wait_for_endpoint(serve: subprocess.Popen[str]) -> str:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert serve.stdout is not None
        for line in iter(serve.stdout.readline, ""):
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        found = re.match(r"\s*export ACA_POOL_MANAGEMENT_ENDPOINT=(\S+)", line)
        if found:
            return found.group(1).strip("'\"")
    raise AssertionError("serve printed no endpoint:\n" + "".join(seen))

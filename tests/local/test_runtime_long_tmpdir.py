"""Kernels start whatever TMPDIR is: their sockets stay within a Unix socket address's length."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.runtime.outcome import Outcome
from autogen_aca_sessions.local.runtime.sessions import SessionManager


async def test_a_long_tmpdir_does_not_stop_kernels_from_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_tmp = tmp_path / ("t" * 60) / ("u" * 40)
    long_tmp.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(long_tmp))
    config = PoolConfig(sandbox="auto", ready_sessions=0, kernel_launcher="plain")
    async with SessionManager(root=tmp_path / "pool", config=config) as manager:
        session = await manager.get_or_create("long-tmpdir")
        out = await session.execute("6 * 7", timeout=60, max_output_chars=100)
    assert out.outcome is Outcome.SUCCEEDED, out.stderr
    assert out.result == 42

"""Choosing the sandbox: bwrap when asked and present, a loud fallback, clear refusals."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from autogen_aca_sessions.local.runtime.bubblewrap import ResourceLimits, Sandbox


def test_asking_for_bwrap_without_bwrap_fails_clearly(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-bwrap")
    with pytest.raises(RuntimeError, match="bubblewrap") as caught:
        Sandbox.resolve("bwrap", bwrap_path=missing)
    assert missing in str(caught.value)


def test_auto_without_bwrap_runs_unsandboxed_and_says_so_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        sandbox = Sandbox.resolve("auto", bwrap_path=str(tmp_path / "nope"))
    assert sandbox.isolation == "none"
    assert sandbox.unsandboxed
    assert sandbox.warning is not None
    assert "WITHOUT A SANDBOX" in sandbox.warning
    assert any("WITHOUT A SANDBOX" in r.getMessage() for r in caplog.records)


def test_an_unknown_sandbox_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="sandbox"):
        Sandbox.resolve("docker")


def test_limits_render_as_rlimits() -> None:
    limits = ResourceLimits(memory_bytes=None, max_processes=10, file_size_bytes=5, open_files=None)
    assert limits.rlimits(with_nproc=True) == {"RLIMIT_CORE": 0, "RLIMIT_FSIZE": 5, "RLIMIT_NPROC": 10}
    assert "RLIMIT_NPROC" not in limits.rlimits(with_nproc=False)
    assert json.loads(json.dumps(limits.rlimits(with_nproc=True)))

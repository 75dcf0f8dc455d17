"""Fixtures for the Sandboxes runtime: a real runtime (bubblewrap, cgroups where allowed) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from autogen_aca_sessions.local.runtime.sandboxes import (
    GroupLimits,
    LocalSandbox,
    SandboxRuntime,
    SandboxSpec,
)
from tests.sandboxes._helpers import GROUP, MakeSandbox


@pytest_asyncio.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[SandboxRuntime]:
    """A runtime with one group ``g`` (limits as :class:`GroupLimits` defaults); closed after the test."""
    rt = await SandboxRuntime.open(tmp_path / "sandboxes")
    rt.create_group(GROUP, GroupLimits())
    try:
        yield rt
    finally:
        await rt.aclose()


@pytest_asyncio.fixture
async def make_sandbox(runtime: SandboxRuntime) -> MakeSandbox:
    """``await make_sandbox(spec=None, group="g")``: a Running sandbox."""

    async def make(spec: SandboxSpec | None = None, group: str = GROUP) -> LocalSandbox:
        info = await runtime.create(group, spec or SandboxSpec())
        return runtime.sandbox(group, info.id)

    return make

"""Fixtures of the runtime tests: one real ``SessionManager`` per module, and a loopback listener.

``manager`` is module-scoped (the module's tests run in the module's event loop:
``pytestmark = pytest.mark.asyncio(loop_scope="module")``) and configured by the module:

* ``MANAGER_CONFIG`` (required): the manager's ``PoolConfig``.
* ``MANAGER_ENV`` (optional): variables put in the server's environment while the manager lives
  (a secret the sandbox must keep from session code, say); removed again afterwards.
* ``make_launcher(root)`` (optional): a kernel launcher the manager is given instead of the one
  it would make; it is started before the manager and closed after it.

Tests name their sessions with fresh identifiers, so no state leaks between them.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator, Mapping

import pytest
import pytest_asyncio

from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.runtime.sessions import SessionManager


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def manager(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SessionManager]:
    """The module's ``SessionManager``, started; closed (with its launcher) after the module."""
    module = request.module
    config = getattr(module, "MANAGER_CONFIG", None)
    if not isinstance(config, PoolConfig):
        pytest.fail(f"{module.__name__} uses the manager fixture without a MANAGER_CONFIG PoolConfig")
    env: Mapping[str, str] = getattr(module, "MANAGER_ENV", {})
    root = tmp_path_factory.mktemp(module.__name__.rsplit(".", 1)[-1]) / "pool"
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(_restore_environment, {name: os.environ.get(name) for name in env})
        os.environ.update(env)
        make_launcher = getattr(module, "make_launcher", None)
        launcher = None
        if make_launcher is not None:
            launcher = await stack.enter_async_context(make_launcher(root))
        manager = await stack.enter_async_context(SessionManager(root=root, config=config, launcher=launcher))
        yield manager


def _restore_environment(saved: Mapping[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def listener() -> Iterator[int]:
    """The port of a TCP socket listening on the host's loopback (for egress probes)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()

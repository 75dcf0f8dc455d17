"""pytest plugin: test your agents against real sandboxed sessions (entry point ``pytest11``).

Installed with the package; it only registers its fixtures when the ``local`` extra is
installed (or :data:`ENDPOINT_ENV` names a pool to use instead), so it costs nothing and
imports nothing heavy otherwise.

Fixtures:

* ``aca_pool`` - an :class:`AcaPool`: a :class:`~autogen_aca_sessions.LocalSessionPool`
  started once per test session (per distinct set of options) and closed at the end, or
  the pool :data:`ENDPOINT_ENV` names.
* ``aca_executor`` - an ``ACADynamicSessionsCodeExecutor`` on that pool, with its own session,
  released after the test.
* ``aca_client`` - a ``SessionsClient`` on that pool, closed after the test.

Options, from the most specific: ``@pytest.mark.aca_pool(pool_type="Shell", sandbox="none",
ready_sessions=1, faults="429=0.2,seed=7", scope="function", ...)`` (any
``LocalSessionPool`` keyword; ``scope="function"`` gives the test a pool of its own), then
the ini options ``aca_pool_type``, ``aca_sandbox``, ``aca_ready_sessions``, ``aca_faults``.
``@pytest.mark.aca_executor(timeout=30, functions=[...])`` passes keywords to the executor.

The local pool runs on an event loop of its own, in a thread, so tests in any event loop
(function, module or session scoped) and synchronous tests can use it.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import Any

import pytest

from ._pytest_pools import (
    _INI,
    API_KEY_ENV,
    ENDPOINT_ENV,
    FIXTURES,
    POOL_TYPE_ENV,
    AcaPool,
    _active,
    installed,
)

__all__ = ["API_KEY_ENV", "ENDPOINT_ENV", "FIXTURES", "POOL_TYPE_ENV", "AcaPool", "installed"]


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, help_text in _INI.values():
        parser.addini(name, help_text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "aca_pool(**options): LocalSessionPool options for the aca_* fixtures "
        "(scope='function' for a pool of the test's own)",
    )
    config.addinivalue_line("markers", "aca_executor(**options): ACADynamicSessionsCodeExecutor options")
    if _active():
        from . import _pytest_fixtures

        config.pluginmanager.register(_pytest_fixtures, "autogen_aca_sessions.fixtures")


@pytest.hookimpl(hookwrapper=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> Generator[None, Any, None]:
    # An async test that uses our fixtures runs under pytest-asyncio without the user marking
    # it or setting asyncio_mode: "async def test_x(aca_executor)" is all a test needs. A mark
    # the user gave (on the test, its class or its module) is left alone, loop scope and all.
    if (
        inspect.iscoroutinefunction(obj)
        and any(p in FIXTURES for p in inspect.signature(obj).parameters)
        and not any(m.name == "asyncio" for m in getattr(obj, "pytestmark", []))
        and collector.get_closest_marker("asyncio") is None
        and _active()
        and installed("pytest_asyncio")
        and collector.config.getini("asyncio_mode") != "auto"
    ):
        pytest.mark.asyncio(obj)
    yield

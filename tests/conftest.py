"""Shared fixtures: real local session pools on 127.0.0.1 with real kernels.

Function-scoped (each test gets its own pool; simplest, slowest):

* ``make_pool`` - async factory: ``pool = await make_pool(pool_type="Shell", max_upload_bytes=1024)``;
  every pool it made is closed after the test. Defaults: ``ready_sessions=1``.
* ``local_pool`` - one started ``LocalSessionPool``; options through indirect parametrisation:
  ``@pytest.mark.parametrize("local_pool", [{"pool_type": "Shell"}], indirect=True)``.
* ``pool_endpoint`` / ``auth_headers`` - ``local_pool.endpoint`` and its ``Authorization`` header.
* ``pool_http`` - an ``aiohttp.ClientSession`` sending ``auth_headers`` (and trusting the pool's
  certificate when it serves TLS).

Module-scoped (one pool per test module; much cheaper when a module has many tests). The module
must run its tests in the module's event loop: ``pytestmark = pytest.mark.asyncio(loop_scope="module")``.
Options come from an optional module-level dict ``POOL_OPTIONS``:

* ``module_pool`` - the module's ``LocalSessionPool``.
* ``module_http`` - an ``aiohttp.ClientSession`` for it (auth header set).
* ``session_id`` - a fresh UUID identifier; the session it names (if any) is deleted after the test,
  so kernels do not pile up in a module-scoped pool.

``patient_interrupts`` (``@pytest.mark.usefixtures("patient_interrupts")``) is for tests that pin
the "interrupted, state kept" outcome of a timeout: see its docstring.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import pytest_asyncio

from tests import _figures

if TYPE_CHECKING:
    from autogen_aca_sessions.local import LocalSessionPool

pytest_plugins = ["pytester"]

PoolFactory = Callable[..., Awaitable["LocalSessionPool"]]

DEFAULT_TEST_POOL_OPTIONS: dict[str, Any] = {"ready_sessions": 1}
"""What test pools use unless told otherwise: one warm kernel keeps start-up cheap."""


def _options(extra: dict[str, Any] | None) -> dict[str, Any]:
    return {**DEFAULT_TEST_POOL_OPTIONS, **(extra or {})}


def _http_for(pool: LocalSessionPool) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=pool.ssl_context()) if pool.tls else aiohttp.TCPConnector()
    return aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {pool.api_key}"},
        connector=connector,
    )


PATIENT_INTERRUPT_GRACE_SECONDS = 60.0
"""How long an interrupted cell may take to stop in tests that pin the interrupted outcome."""


@pytest.fixture
def patient_interrupts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give an interrupted cell a minute, not the pool's 1.5 s, to stop before its kernel is killed.

    For tests that pin "timed out, interrupted, state kept" on pools in this process: on a loaded
    machine (a parallel suite) a kernel can need more than 1.5 s to take the interrupt and go idle,
    and the pool then rightly restarts it. With this the test waits for the kernel to go idle (the
    call returns as soon as it does), so the outcome no longer depends on the machine's load.
    """
    from autogen_aca_sessions.local.runtime import cell

    monkeypatch.setattr(cell, "INTERRUPT_GRACE_SECONDS", PATIENT_INTERRUPT_GRACE_SECONDS)


@pytest_asyncio.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    """Start ``LocalSessionPool`` instances on demand; all are closed after the test."""
    from autogen_aca_sessions.local import LocalSessionPool

    pools: list[LocalSessionPool] = []

    async def factory(**options: Any) -> LocalSessionPool:
        pool = LocalSessionPool(**_options(options))
        await pool.start()
        pools.append(pool)
        return pool

    try:
        yield factory
    finally:
        for pool in reversed(pools):
            await pool.close()


@pytest_asyncio.fixture
async def local_pool(request: pytest.FixtureRequest) -> AsyncIterator[LocalSessionPool]:
    """A started pool for one test; ``indirect=True`` parametrisation passes its options."""
    from autogen_aca_sessions.local import LocalSessionPool

    extra = getattr(request, "param", None)
    async with LocalSessionPool(**_options(extra)) as pool:
        yield pool


@pytest.fixture
def pool_endpoint(local_pool: LocalSessionPool) -> str:
    """The pool management endpoint of ``local_pool``."""
    return local_pool.endpoint


@pytest.fixture
def auth_headers(local_pool: LocalSessionPool) -> dict[str, str]:
    """The ``Authorization`` header ``local_pool`` wants."""
    return {"Authorization": f"Bearer {local_pool.api_key}"}


@pytest_asyncio.fixture
async def pool_http(local_pool: LocalSessionPool) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for ``local_pool`` that sends the bearer key."""
    async with _http_for(local_pool) as http:
        yield http


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_pool(request: pytest.FixtureRequest) -> AsyncIterator[LocalSessionPool]:
    """One pool for a whole test module; options from the module's ``POOL_OPTIONS`` dict."""
    from autogen_aca_sessions.local import LocalSessionPool

    extra = getattr(request.module, "POOL_OPTIONS", None)
    async with LocalSessionPool(**_options(extra)) as pool:
        yield pool


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_http(module_pool: LocalSessionPool) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for ``module_pool`` that sends the bearer key."""
    async with _http_for(module_pool) as http:
        yield http


@pytest_asyncio.fixture(loop_scope="module")
async def session_id(module_pool: LocalSessionPool) -> AsyncIterator[str]:
    """A fresh session identifier in ``module_pool``; its session is deleted after the test."""
    identifier = str(uuid.uuid4())
    yield identifier
    await module_pool.manager.delete(identifier)


# ---------------------------------------------------------------- the order modules are handed out


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules marked ``early`` first, the rest in their usual order (the sort is stable).

    pytest-xdist (``--dist loadscope --no-loadscope-reorder``) hands whole modules to workers in
    this order. A module of a few long tests (building and installing the wheel, say) handed out
    last would keep one worker busy after the others ran out of work; handed out first, the many
    short modules fill the other workers meanwhile.
    """
    early = {
        item.module
        for item in items
        if isinstance(item, pytest.Function) and item.get_closest_marker("early")
    }
    items.sort(key=lambda item: getattr(item, "module", None) not in early)


# ---------------------------------------------------------------- the security and soak figures


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: hand this worker's figures to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_figures.WORKEROUTPUT_KEY] = _figures.snapshot()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the xdist controller: add up the figures of a worker that finished."""
    figures = getattr(node, "workeroutput", {}).get(_figures.WORKEROUTPUT_KEY)
    if figures:
        _figures.merge(figures)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print the figures SECURITY.md quotes once, where the run's summary is printed."""
    if hasattr(config, "workerinput"):
        return  # a worker: its figures went to the controller
    lines = _figures.summary_lines()
    if lines:
        terminalreporter.section("security and soak figures (SECURITY.md)")
        for line in lines:
            terminalreporter.write_line(line)
    _figures.dump_figures()

"""The fixtures of the pytest plugin (registered by :mod:`.pytest_plugin` when it is active)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ._pytest_pools import (
    _DEFAULTS,
    _INI,
    API_KEY_ENV,
    ENDPOINT_ENV,
    POOL_TYPE_ENV,
    AcaPool,
    _PoolRegistry,
    _PoolThread,
    installed,
)

LOOP_SCOPES = ("function", "class", "module", "package", "session")


def _pool_options(request: pytest.FixtureRequest) -> tuple[dict[str, Any], str]:
    options = dict(_DEFAULTS)
    for key, (ini_name, _) in _INI.items():
        value = request.config.getini(ini_name)
        if value not in (None, ""):
            options[key] = int(value) if key == "ready_sessions" else str(value)
    marker = request.node.get_closest_marker("aca_pool")
    if marker is not None:
        options.update(marker.kwargs)
    scope = str(options.pop("scope", "session"))
    if scope not in ("session", "function"):
        raise pytest.UsageError(f"aca_pool scope must be 'session' or 'function', not {scope!r}")
    return options, scope


@pytest.fixture(scope="session")
def _aca_pool_registry() -> Iterator[_PoolRegistry]:
    registry = _PoolRegistry()
    try:
        yield registry
    finally:
        registry.close()


@pytest.fixture
def aca_pool(request: pytest.FixtureRequest, _aca_pool_registry: _PoolRegistry) -> Iterator[AcaPool]:
    """The pool under test: a shared local pool, or the one ``ACA_SESSIONS_TEST_POOL_ENDPOINT`` names."""
    options, scope = _pool_options(request)
    pool_type = str(options.get("pool_type", "PythonLTS"))
    endpoint = os.environ.get(ENDPOINT_ENV, "").strip()
    if endpoint:
        remote_type = os.environ.get(POOL_TYPE_ENV, "").strip() or "PythonLTS"
        local_only = sorted(set(options) - {"pool_type", *_DEFAULTS})
        if local_only or scope != "session":
            what = ", ".join(local_only) or f"scope={scope}"
            pytest.skip(f"needs a local pool ({what}) but {ENDPOINT_ENV} names a remote one")
        if pool_type != remote_type:
            pytest.skip(f"needs a {pool_type} pool; the pool {ENDPOINT_ENV} names is {remote_type}")
        key = os.environ.get(API_KEY_ENV, "").strip() or None
        yield AcaPool(endpoint=endpoint, credential=key, api_key=key, pool_type=pool_type, local=None)
        return
    if not installed("jupyter_client"):
        pytest.fail("aca_pool needs the local extra: pip install 'autogen-aca-sessions[local]'")
    host = _PoolThread(options) if scope == "function" else _aca_pool_registry.get(options)
    try:
        pool = host.pool
        yield AcaPool(
            endpoint=pool.endpoint,
            credential=pool.credential,
            api_key=pool.api_key,
            pool_type=str(pool.pool_type),
            local=pool,
        )
    finally:
        if scope == "function":
            host.close()


def _test_loop_scope(request: pytest.FixtureRequest) -> str:
    """The event loop scope the test runs in (its asyncio marker, else pytest-asyncio's default)."""
    marker = request.node.get_closest_marker("asyncio")
    scope = None
    if marker is not None:
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    if not scope:
        try:
            scope = request.config.getini("asyncio_default_test_loop_scope")
        except ValueError:
            scope = None
    return str(scope) if scope in LOOP_SCOPES else "function"


@pytest.fixture
def aca_executor(request: pytest.FixtureRequest, aca_pool: AcaPool) -> Any:
    """An ``ACADynamicSessionsCodeExecutor`` with its own session on ``aca_pool``, released after the test.

    Keywords of ``@pytest.mark.aca_executor(...)`` go to its constructor.
    """
    return request.getfixturevalue(f"_aca_executor_{_test_loop_scope(request)}")


@pytest.fixture
def aca_client(request: pytest.FixtureRequest, aca_pool: AcaPool) -> Any:
    """A ``SessionsClient`` on ``aca_pool``, closed after the test (sessions it makes are yours to delete)."""
    return request.getfixturevalue(f"_aca_client_{_test_loop_scope(request)}")


async def _executor(request: pytest.FixtureRequest, pool: AcaPool) -> AsyncIterator[Any]:
    from .executor import ACADynamicSessionsCodeExecutor

    marker = request.node.get_closest_marker("aca_executor")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if pool.pool_type == "Shell":
        options.setdefault("shell_pool", True)
    async with ACADynamicSessionsCodeExecutor(pool.endpoint, pool.credential, **options) as executor:
        yield executor


async def _client(pool: AcaPool) -> AsyncIterator[Any]:
    from .client import SessionsClient

    async with SessionsClient(pool.endpoint, pool.credential) as client:
        yield client


def _define_async_fixtures() -> None:
    """One executor and one client fixture per event loop scope, so each runs in the test's loop."""
    try:
        import pytest_asyncio
    except ImportError:
        for scope in LOOP_SCOPES:
            for kind in ("executor", "client"):
                name = f"_aca_{kind}_{scope}"
                globals()[name] = pytest.fixture(_needs_pytest_asyncio, name=name)
        return
    for scope in LOOP_SCOPES:

        async def executor_fixture(request: pytest.FixtureRequest, aca_pool: AcaPool) -> AsyncIterator[Any]:
            async for executor in _executor(request, aca_pool):
                yield executor

        async def client_fixture(aca_pool: AcaPool) -> AsyncIterator[Any]:
            async for client in _client(aca_pool):
                yield client

        for kind, function in (("executor", executor_fixture), ("client", client_fixture)):
            name = f"_aca_{kind}_{scope}"
            globals()[name] = pytest_asyncio.fixture(function, loop_scope=scope, name=name)  # type: ignore[call-overload]


def _needs_pytest_asyncio() -> None:
    pytest.fail("the aca_executor and aca_client fixtures need pytest-asyncio: pip install pytest-asyncio")


_define_async_fixtures()

"""The plugin's shared pieces: where the test pool comes from, and the local pools it starts.

:mod:`.pytest_plugin` (the hooks) and :mod:`._pytest_fixtures` (the fixtures it registers) both
import from here, so that neither imports the other's module at import time.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .local import LocalSessionPool

ENDPOINT_ENV = "ACA_SESSIONS_TEST_POOL_ENDPOINT"
"""Names a pool management endpoint to run the tests against instead of a local pool."""
API_KEY_ENV = "ACA_SESSIONS_TEST_API_KEY"
"""With :data:`ENDPOINT_ENV`: a static bearer key (a pool from ``aca-sessions serve``);
unset, ``DefaultAzureCredential`` authenticates (an Azure pool)."""
POOL_TYPE_ENV = "ACA_SESSIONS_TEST_POOL_TYPE"
"""With :data:`ENDPOINT_ENV`: that pool's type (``PythonLTS``, the default, or ``Shell``);
tests marked for another type are skipped."""

FIXTURES = ("aca_pool", "aca_executor", "aca_client")
_LOCAL_EXTRA = ("jupyter_client", "ipykernel")
_INI: dict[str, tuple[str, str]] = {
    "pool_type": ("aca_pool_type", "local pool type for aca_pool: PythonLTS or Shell"),
    "sandbox": ("aca_sandbox", "local pool sandbox for aca_pool: auto, bwrap or none"),
    "ready_sessions": ("aca_ready_sessions", "pre-started kernels of the aca_pool local pool"),
    "faults": ("aca_faults", "fault plan of the aca_pool local pool, e.g. 429=0.2,seed=7"),
}
_DEFAULTS: dict[str, Any] = {"ready_sessions": 1}
"""One warm kernel: a test's first session starts at once, and start-up stays cheap."""


@dataclass(frozen=True)
class AcaPool:
    """The pool the ``aca_*`` fixtures use: where it is and how to authenticate to it."""

    endpoint: str
    """The pool management endpoint (pass it to an executor or client)."""
    credential: Any
    """What to pass as ``credential``: the local pool's key credential, the static key of
    :data:`API_KEY_ENV`, or ``None`` (``DefaultAzureCredential``) for an Azure pool."""
    api_key: str | None
    """The bearer key of a local (or ``aca-sessions serve``) pool; ``None`` for Azure."""
    pool_type: str
    """``PythonLTS`` or ``Shell`` (as configured; for a remote pool, as the marker or ini say)."""
    local: LocalSessionPool | None
    """The local pool object, ``None`` when the tests run against a remote pool. It runs on
    its own event loop in another thread: read its attributes, do not await its methods."""

    @property
    def isolation(self) -> str | None:
        """The local pool's sandbox in force (``bwrap`` or ``none``); ``None`` for a remote pool."""
        return self.local.isolation if self.local is not None else None

    @property
    def is_local(self) -> bool:
        """Whether this is a local pool started by the plugin."""
        return self.local is not None


class _PoolThread:
    """A LocalSessionPool served by an event loop on a daemon thread of its own."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="aca-pool", daemon=True)
        self._thread.start()
        try:
            self.pool: LocalSessionPool = self._call(_start_pool(dict(options)))
        except BaseException:
            self._stop_loop()
            raise

    def _call(self, coroutine: Any, timeout: float = 300) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout)

    def close(self) -> None:
        try:
            self._call(self.pool.close(), timeout=120)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        if not self._thread.is_alive():
            self._loop.close()


async def _start_pool(options: dict[str, Any]) -> LocalSessionPool:
    from .local import FaultInjector, LocalSessionPool

    faults = options.get("faults")
    if isinstance(faults, str):
        options["faults"] = FaultInjector.from_string(faults) if faults.strip() else None
    pool = LocalSessionPool(**options)
    await pool.start()
    return pool


class _PoolRegistry:
    """The session's shared local pools, one per distinct set of options."""

    def __init__(self) -> None:
        self._pools: dict[str, _PoolThread] = {}
        self._lock = threading.Lock()

    def get(self, options: Mapping[str, Any]) -> _PoolThread:
        key = repr(sorted(options.items()))
        with self._lock:
            if key not in self._pools:
                self._pools[key] = _PoolThread(options)
            return self._pools[key]

    def close(self) -> None:
        for host in reversed(list(self._pools.values())):
            host.close()
        self._pools.clear()


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _active() -> bool:
    if os.environ.get(ENDPOINT_ENV, "").strip():
        return True
    return all(installed(name) for name in _LOCAL_EXTRA)

"""Run a LocalSessionPool in its own process, for tests that need the server apart from the test.

A separate process gives the tests a server pid that session code can aim at (``/proc/<pid>``,
``os.kill``), a server whose memory and file descriptors can be measured without the test's own
buffers in the figures, and a server that can crash without taking pytest with it.

Usage: ``python -m tests.security.pool_server '<json options>'``. Prints one JSON line with
``endpoint``, ``api_key``, ``isolation``, ``pid``, ``port`` once serving, and one line with
``stopped`` (plus the fault counters when a plan was given) after SIGTERM/SIGINT shut it down.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import warnings
from typing import Any
from urllib.parse import urlsplit


async def _serve(options: dict[str, Any]) -> None:
    from autogen_aca_sessions import LocalSessionPool
    from autogen_aca_sessions.local.frontends.dataplane.faults import FaultInjector

    faults_text = options.pop("faults", None)
    injector = FaultInjector.from_string(faults_text) if faults_text else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pool = LocalSessionPool(faults=injector, **options)
        await pool.__aenter__()
    try:
        port = urlsplit(pool.endpoint).port
        print(
            json.dumps(
                {
                    "endpoint": pool.endpoint,
                    "api_key": pool.api_key,
                    "isolation": pool.isolation,
                    "pid": _pid(),
                    "port": port,
                    "warnings": [str(w.message) for w in caught],
                }
            ),
            flush=True,
        )
        await stop.wait()
    finally:
        await pool.__aexit__(None, None, None)
    report: dict[str, Any] = {"stopped": True}
    if injector is not None:
        report["injected"] = dict(injector.stats.injected)
    print(json.dumps(report), flush=True)


def _pid() -> int:
    import os

    return os.getpid()


def main() -> None:
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    asyncio.run(_serve(options))


if __name__ == "__main__":
    main()

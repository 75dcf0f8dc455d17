"""A local pool in its own process with its limits lowered: few open files, few ZeroMQ sockets.

Usage: ``python -m tests.local.limited_pool_server '<json>'`` with ``open_files_headroom`` (the
process's open-file limit, soft and hard, becomes what it holds at start-up plus this many;
omitted: unchanged), ``zmq_max_sockets`` (omitted: the default sizing), ``max_sessions`` and
``kernel_launcher``.
Prints one JSON line with ``endpoint``, ``api_key``, ``pid`` and ``open_files`` once serving;
logs go to stderr. Stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.frontends.dataplane.app import create_app
from autogen_aca_sessions.local.limits import ResourceLimits
from autogen_aca_sessions.local.runtime.capacity import open_fd_count
from autogen_aca_sessions.local.runtime.sessions import SessionManager

POOL = "limited"


async def _serve(options: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    headroom = options.get("open_files_headroom")
    limit = None
    if headroom is not None:
        # Warm what the first session would load anyway, so the count below is the baseline.
        limit = open_fd_count() + int(headroom)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    root = Path(tempfile.mkdtemp(prefix="aca-limited-"))
    # A session's own open-file limit must fit under the server's lowered hard limit, which its
    # kernels inherit (a kernel cannot raise its limit above it).
    config = PoolConfig(
        pool_name=POOL,
        ready_sessions=0,
        max_concurrent_sessions=int(options.get("max_sessions", 100)),
        limits=ResourceLimits(open_files=64),
        kernel_launcher=options.get("kernel_launcher", PoolConfig().kernel_launcher),
    )
    manager = SessionManager(root=root, config=config, zmq_max_sockets=options.get("zmq_max_sockets"))
    await manager.start()
    app = create_app(manager, api_key="limited-key")
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    site = web.SockSite(runner, sock)
    await site.start()
    port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/subscriptions/0/resourceGroups/local/sessionPools/{POOL}"
    print(
        json.dumps({"endpoint": endpoint, "api_key": "limited-key", "pid": os.getpid(), "open_files": limit}),
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await manager.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
    asyncio.run(_serve(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))


if __name__ == "__main__":
    main()

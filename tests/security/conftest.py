"""Fixtures of the security suite: pools in their own processes, one per sandbox mode."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.security._support import BWRAP, PoolProcess, start_pool_process, stop_pool_process

SERVER_SECRET_ENV = "ACA_TEST_SERVER_SECRET"


@pytest.fixture(scope="module")
def host_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host directory outside every session: the server's own files live here."""
    return tmp_path_factory.mktemp("host")


@pytest.fixture(scope="module")
def server_dir() -> Iterator[Path]:
    """The server's working directory, like a user's project directory: outside ``/tmp`` and
    outside the home directory, holding a private ``.env`` with the server's secrets."""
    path = Path(tempfile.mkdtemp(prefix="aca-server-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


PoolFactory = Callable[..., PoolProcess]


@pytest.fixture(scope="module")
def make_pool(host_dir: Path, server_dir: Path) -> Iterator[PoolFactory]:
    """Start pools on demand (``make_pool(name, sandbox=..., ...)``); all stopped at module end.

    Each pool's key is also in the server's environment (``ACA_TEST_SERVER_SECRET``), on its
    command line and in ``<server_dir>/.env`` (mode 0600), as a user's secrets would be.
    """
    started: list[PoolProcess] = []

    def factory(name: str, **options: Any) -> PoolProcess:
        key = f"key-{name}-{secrets.token_hex(16)}"
        secret_file = server_dir / ".env"
        secret_file.write_text(f"{SERVER_SECRET_ENV}={key}\n")
        secret_file.chmod(0o600)
        pool = start_pool_process(
            host_dir, env={SERVER_SECRET_ENV: key}, cwd=server_dir, api_key=key, **options
        )
        started.append(pool)
        return pool

    yield factory
    for pool in started:
        if pool.process.poll() is None:
            stop_pool_process(pool)


@pytest.fixture(scope="module")
def pool(request: pytest.FixtureRequest, make_pool: PoolFactory) -> PoolProcess:
    """The module's pool process, from the module's ``POOL_PROCESS`` dict (``name`` and the pool's
    options); a module-level ``prepare_pool(pool)`` runs once it serves (to seed sessions, say)."""
    options = dict(getattr(request.module, "POOL_PROCESS", {}))
    if "name" not in options:
        pytest.fail(f"{request.module.__name__} uses the pool fixture without a POOL_PROCESS name")
    started = make_pool(options.pop("name"), **options)
    prepare = getattr(request.module, "prepare_pool", None)
    if prepare is not None:
        prepare(started)
    return started


def require_bwrap() -> None:
    """Fail (not skip) when bubblewrap is missing: the bwrap half of the suite must not vanish."""
    if not BWRAP:
        pytest.fail("bubblewrap (bwrap) is not installed; .ci/run installs it. Sandbox promises untested.")

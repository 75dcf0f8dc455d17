"""What ``aca-sessions exec`` prints when the pool refuses it: one line, the advice first, against a
real ``aca-sessions serve`` process (issue 22, items 5, 7, 9 and 12)."""

from __future__ import annotations

import asyncio
import queue
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from test_cli import ServedPool, cli, cli_env, start_serve, stop_serve

from autogen_aca_sessions.cli import EXIT_SERVICE_ERROR, EXIT_USAGE
from autogen_aca_sessions.cli_errors import KeySource, describe_failure, is_local_endpoint
from autogen_aca_sessions.client import PoolNotFoundError, SessionsClient

NO_POOL = "aca-sessions exec: no session pool at this endpoint; check the URL"
POOL_FULL = "aca-sessions exec: the pool is at its maximum of concurrent sessions"
READ_LOG_SECONDS = 60.0


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedPool]:
    # One session at most, so that the pool-full answer is one held session away; the access log
    # (INFO) shows which requests reached the server.
    served = start_serve(
        "--ready-sessions",
        "0",
        "--max-concurrent-sessions",
        "1",
        "--log-level",
        "INFO",
        "--root-dir",
        str(tmp_path_factory.mktemp("cli-errors")),
    )
    try:
        yield served
    finally:
        stop_serve(served)


def one_line(completed: subprocess.CompletedProcess[str], status: int) -> str:
    """The single stderr line of a failed exec (asserting there is exactly one, and no traceback)."""
    assert completed.returncode == status, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    return lines[0]


def server_lines_until(pool: ServedPool, marker: str) -> list[str]:
    """The server's output lines up to and including the first that contains ``marker``."""
    seen: list[str] = []
    deadline = time.monotonic() + READ_LOG_SECONDS
    while time.monotonic() < deadline:
        try:
            line = pool.lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"the server never logged {marker!r}:\n" + "".join(seen))


@pytest.mark.parametrize(
    ("endpoint_of", "further_advice"),
    [
        (lambda e: e.rsplit("/", 1)[0] + "/nosuchpool", None),
        (lambda e: e.replace("/sessionPools/", "/providers/Microsoft.App/sessionPools/"), "ARM resource id"),
        (lambda e: e + "/code/execute", "drop '/code/execute'"),
        (lambda e: e + "/python/execute", "drop '/python/execute'"),
        (lambda e: e.split("/sessionPools/")[0] + "/sandboxGroups/mygroup", "this is a sandbox group"),
    ],
    ids=[
        "unknown-pool",
        "arm-resource-path",
        "code-execute-appended",
        "seed-python-execute-appended",
        "sandbox-group",
    ],
)
def test_exec_on_an_endpoint_without_a_pool_says_to_check_the_url_not_that_the_pool_is_full(
    pool: ServedPool, endpoint_of: Callable[[str], str], further_advice: str | None
) -> None:
    endpoint = endpoint_of(pool.endpoint)

    line = one_line(
        cli("exec", f"--endpoint={endpoint}", f"--api-key={pool.api_key}", "-c", "print(1)"),
        EXIT_SERVICE_ERROR,
    )

    assert line.startswith(NO_POOL), line
    assert ".../subscriptions/S/resourceGroups/R/sessionPools/P" in line
    assert "maximum" not in line
    assert "HTTP 404" in line
    if further_advice is not None:
        assert further_advice in line


def test_exec_prints_the_services_message_once_after_the_advice(pool: ServedPool) -> None:
    endpoint = pool.endpoint.rsplit("/", 1)[0] + "/nosuchpool"

    line = one_line(
        cli("exec", f"--endpoint={endpoint}", f"--api-key={pool.api_key}", "-c", "print(1)"),
        EXIT_SERVICE_ERROR,
    )

    # The local server names the pool it hosts; the client's Python-API advice is not repeated.
    said = "no session pool 'nosuchpool'"
    assert line.count(said) == 1, line
    assert line.index("check the URL") < line.index(said)
    assert "SessionPoolNotFound" in line
    assert "body:" not in line
    assert "maxConcurrentSessions" not in line


def test_exec_with_a_wrong_key_prints_one_line_and_deletes_no_session_it_never_created(
    pool: ServedPool,
) -> None:
    wrong = cli("exec", f"--endpoint={pool.endpoint}", "--api-key=wrong-key", "-c", "print(1)")
    # A request that succeeds, logged after everything the failed exec sent (its session is
    # deleted at once: the pool holds one).
    marker = pool.exec("--session-id", "after-wrong-key", "-c", "print(2)")
    asyncio.run(_delete_session(pool, "after-wrong-key"))

    line = one_line(wrong, EXIT_SERVICE_ERROR)
    assert marker.returncode == 0, marker.stderr
    assert line.startswith("aca-sessions exec: the pool refused the key from --api-key;"), line
    assert "HTTP 401" in line
    assert "a fresh token was tried" not in line
    logged = server_lines_until(pool, 'session="after-wrong-key"')
    assert any("POST /executions 401" in entry for entry in logged), "".join(logged)
    assert not [entry for entry in logged if "DELETE /session" in entry], "".join(logged)


def test_exec_with_a_wrong_key_from_the_environment_names_the_variable(pool: ServedPool) -> None:
    completed = cli(
        "exec",
        f"--endpoint={pool.endpoint}",
        "-c",
        "print(1)",
        env={**cli_env(), "ACA_SESSIONS_API_KEY": "wrong-key"},
    )

    line = one_line(completed, EXIT_SERVICE_ERROR)
    assert line.startswith("aca-sessions exec: the pool refused the key from $ACA_SESSIONS_API_KEY;"), line


def test_exec_when_the_pool_is_at_its_maximum_says_so(pool: ServedPool) -> None:
    held = pool.exec("--session-id", "holder", "-c", "print('holding the only slot')")
    assert held.returncode == 0, held.stderr
    try:
        completed = pool.exec("-c", "print(1)")
    finally:
        asyncio.run(_delete_session(pool, "holder"))

    line = one_line(completed, EXIT_SERVICE_ERROR)
    assert line.startswith(POOL_FULL), line
    assert "HTTP 404 SessionPoolFull" in line
    assert "check the URL" not in line


async def _delete_session(pool: ServedPool, identifier: str) -> None:
    async with SessionsClient(pool.endpoint, pool.api_key) as client:
        await client.delete_session(identifier)


@pytest.mark.parametrize(
    "endpoint",
    [
        # Nothing listens on port 9: had a request been sent, the exit status would be 125.
        "http://127.0.0.1:9/subscriptions/s/resourceGroups/r/sessionPools/p",
        "http://localhost:9/subscriptions/s/resourceGroups/r/sessionPools/p",
        "https://[::1]:9/subscriptions/s/resourceGroups/r/sessionPools/p",
    ],
)
@pytest.mark.parametrize("empty_variable", [False, True], ids=["unset", "empty-variable"])
def test_exec_on_a_local_endpoint_without_a_key_asks_for_one_before_any_request(
    endpoint: str, empty_variable: bool
) -> None:
    env = cli_env()
    if empty_variable:
        env["ACA_SESSIONS_API_KEY"] = ""

    line = one_line(cli("exec", f"--endpoint={endpoint}", "-c", "print(1)", env=env), EXIT_USAGE)

    assert line == "aca-sessions exec: a local pool wants --api-key (or ACA_SESSIONS_API_KEY)"


@pytest.mark.parametrize(
    ("endpoint", "advice"),
    [
        ("http://127.0.0.1:8321", "a server's root"),
        ("http://127.0.0.1:8321/", "a server's root"),
        (
            "https://x.dynamicsessions.io/subscriptions/s/resourceGroups/r/providers/Microsoft.App/sessionPools/p",
            "ARM resource id",
        ),
        (
            "https://x.dynamicsessions.io/subscriptions/s/resourceGroups/r/sessionPools/p/executions",
            "drop '/executions'",
        ),
        (
            "https://x.dynamicsessions.io/subscriptions/s/resourceGroups/r/sessionPools/p/python/execute/",
            "drop '/python/execute'",
        ),
        (
            "https://127.0.0.1:8321/subscriptions/s/resourceGroups/r/sandboxGroups/g",
            "this is a sandbox group (ACA Sandboxes), not a session pool",
        ),
        ("https://x.dynamicsessions.io/subscriptions/s/resourceGroups/r/sessionPools/typo", None),
    ],
)
def test_a_missing_pool_names_what_is_wrong_with_a_known_wrong_endpoint_shape(
    endpoint: str, advice: str | None
) -> None:
    # The server's root is answered as a missing pool once it stops serving pools there (issue 22 item 6).
    error = PoolNotFoundError(
        404,
        "No session pool at this endpoint; check the URL. Service said: There is no such pool.",
        error_code="SessionPoolNotFound",
        service_message="There is no such pool.",
    )

    line = describe_failure(error, endpoint, KeySource.FLAG)

    assert line.startswith("no session pool at this endpoint; check the URL")
    if advice is None:
        assert line.endswith("sessionPools/P) [HTTP 404 SessionPoolNotFound: There is no such pool.]"), line
    else:
        assert advice in line


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("http://127.0.0.1:8321/subscriptions/s/resourceGroups/r/sessionPools/p", True),
        ("http://127.1.2.3/x", True),
        ("http://localhost:8321/x", True),
        ("http://pool.localhost/x", True),
        ("https://[::1]:8321/x", True),
        ("https://eastus.dynamicsessions.io/subscriptions/s/resourceGroups/r/sessionPools/p", False),
        ("http://10.0.0.5/x", False),
        ("http://[::1/x", False),  # malformed: the client names the problem
        ("not a url", False),
    ],
)
def test_local_endpoints_are_the_loopback_ones(endpoint: str, local: bool) -> None:
    assert is_local_endpoint(endpoint) is local

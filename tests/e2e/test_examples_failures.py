"""What a new user sees when an example is pointed at a server with a mistake in its settings:
one line naming what refused and why, exit status 1, no traceback. Real examples in their own
process, against a real local server on loopback."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.test_examples import EXAMPLES, REPO, example_env

from autogen_aca_sessions.local import LocalSessionsServer

SUB = "00000000-0000-0000-0000-000000000000"


async def test_agent_framework_sandbox_with_a_wrong_key_fails_in_one_line_naming_the_sandbox_group() -> None:
    pytest.importorskip("agent_framework")
    async with LocalSessionsServer() as server:
        await server.create_sandbox_group("wrongkey", subscription=SUB, resource_group="examples")
        env = {
            **example_env(),
            "ACA_SANDBOXES_ENDPOINT": server.base_url,
            "ACA_SANDBOXES_SUBSCRIPTION_ID": SUB,
            "ACA_SANDBOXES_RESOURCE_GROUP": "examples",
            "ACA_SANDBOX_GROUP": "wrongkey",
            "ACA_SANDBOXES_API_KEY": "not-the-key",
        }
        # Not subprocess.run: the server answering the example runs on this event loop.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLES / "agent_framework_sandbox.py"),
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=280)
    failed = [line for line in (out + err).decode().splitlines() if line.startswith("FAILED")]
    assert process.returncode == 1, (out, err)
    assert len(failed) == 1, (out, err)
    assert "The sandbox group refused the call" in failed[0]
    assert "HTTP 401" in failed[0]
    assert "pool" not in failed[0]
    assert not failed[0].endswith(":"), failed[0]
    assert "Traceback" not in err.decode()


def test_ctrl_c_during_a_streamed_block_ends_the_example_with_one_line_and_status_130() -> None:
    # As from a terminal: SIGINT raises KeyboardInterrupt (a background child ignores it).
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "stream_sandbox_progress.py")],
        cwd=REPO,
        env=example_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # the block's output, streamed while it runs
        seen.append(line)
        if line.startswith("epoch 1/5"):
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert seen[-1].startswith("epoch 1/5"), seen
    assert process.returncode == 130, err
    assert err.strip().splitlines() == ["Interrupted."], err
    assert "Training finished" not in out


async def test_suspend_between_tasks_on_an_untrusted_certificate_fails_in_one_line_saying_how_to_trust_it(
    tmp_path: Path,
) -> None:
    async with LocalSessionsServer(tls=True) as server:
        await server.create_sandbox_group("untrusted", subscription=SUB, resource_group="examples")
        env = {
            **{name: value for name, value in example_env().items() if name != "SSL_CERT_FILE"},
            "ACA_SANDBOXES_ENDPOINT": server.base_url,
            # The same variable names as agent_framework_sandbox.py's.
            "ACA_SANDBOXES_SUBSCRIPTION_ID": SUB,
            "ACA_SANDBOXES_RESOURCE_GROUP": "examples",
            "ACA_SANDBOX_GROUP": "untrusted",
            "ACA_SANDBOXES_API_KEY": server.api_key,
        }
        # Not subprocess.run: the server answering the example runs on this event loop.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLES / "suspend_between_tasks.py"),
            "--state",
            str(tmp_path / "work.json"),
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=280)
    stderr = err.decode()
    failed = [line for line in stderr.splitlines() if line.startswith("FAILED")]
    assert process.returncode == 1, (out, err)
    assert len(failed) == 1, stderr
    assert "CERTIFICATE_VERIFY_FAILED" in failed[0]
    assert "SSL_CERT_FILE" in failed[0]
    assert "Traceback" not in stderr

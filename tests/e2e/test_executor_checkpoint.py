"""End-to-end: ``ACADynamicSessionsCodeExecutor.checkpoint`` / ``restore`` on the real local pool.

The work of one executor's session (variables, a DataFrame, a function defined in the session,
files) comes back in another executor's new session, the injected functions set up with it; what
cannot be kept is listed; a changed checkpoint reaches no session and nothing of it is unpickled
in this process; a session that is gone is a clear error, not an empty checkpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import pickle
import tarfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from _executor_helpers import LEGACY, NEWEST, NO_DELETE, make_executor
from _executor_helpers import run_code as run

from autogen_aca_sessions.executor import (
    CheckpointError,
    CheckpointSessionGoneError,
    CheckpointTamperedError,
)
from autogen_aca_sessions.local import LocalSessionPool

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = b"executor-test-key"


def shout(text: str) -> str:
    """Upper-case text with an exclamation mark."""
    return text.upper() + "!"


WORK = """
import pandas as pd
frame = pd.DataFrame({"region": ["north", "south"], "revenue": [120.5, 80.25]})
def loud_total():
    return shout(str(frame.revenue.sum()))
counter = (n for n in range(3))
with open("summary.txt", "w") as out:
    out.write("two regions")
"""


@pytest.mark.parametrize("api_version", [LEGACY, NO_DELETE, NEWEST])
async def test_a_restored_executor_has_the_variables_files_and_injected_functions_of_the_checkpoint(
    module_pool: LocalSessionPool, tmp_path: Path, api_version: str
) -> None:
    path = tmp_path / "work.ckpt"
    async with make_executor(module_pool, api_version=api_version, functions=[shout]) as first:
        done = await run(first, WORK)
        assert done.exit_code == 0, done.output
        saved = await first.checkpoint(path, key=KEY)
        first_session = first.session_id
    assert {"frame", "loud_total", "pd"} <= set(saved.variables) | set(saved.modules)
    # The injected function is the executor's to set up again, not part of the work.
    assert "shout" not in saved.variables
    assert {(s.name, s.type) for s in saved.skipped} == {("counter", "generator"), ("out", "TextIOWrapper")}
    assert "summary.txt" in saved.files

    async with make_executor(module_pool, api_version=api_version, functions=[shout]) as second:
        assert second.session_id != first_session
        restored = await second.restore(path, key=KEY)
        assert {"frame", "loud_total"} <= set(restored.variables)
        assert {s.name for s in restored.skipped} == {"counter", "out"}
        after = await run(second, "print(loud_total(), open('summary.txt').read(), shout('ok'))")
        assert after.exit_code == 0, after.output
        assert after.stdout.strip() == "200.75! two regions OK!"
        assert "summary.txt" in await second.get_file_list()


async def test_a_restore_after_a_restart_is_not_wiped_by_the_pending_reset(
    module_pool: LocalSessionPool, tmp_path: Path
) -> None:
    # Without session deletion a restart of a caller's session resets the namespace before the
    # next block; a restore in between must do that reset first, not after.
    path = tmp_path / "kept.ckpt"
    identifier = f"ckpt-{uuid.uuid4().hex[:12]}"
    async with make_executor(module_pool, api_version=NO_DELETE, session_id=identifier) as executor:
        assert (await run(executor, "kept = 41")).exit_code == 0
        await executor.checkpoint(path, key=KEY)
        await executor.restart()
        await executor.restore(path, key=KEY)
        after = await run(executor, "print(kept + 1)")
    assert after.stdout.strip() == "42", after.output


class _RunsWhereUnpickled:
    """Unpickling it evaluates code: the session's process id, and a file it tries to touch."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (eval, (self.expression,))


def _resign(source: Path, target: Path, variables: dict[str, bytes], key: bytes) -> None:
    """A checkpoint holding ``variables`` (raw pickles), signed with ``key`` as a real one is."""
    with zipfile.ZipFile(source) as original:
        manifest = json.loads(original.read("manifest.json"))
    state = pickle.dumps({"pickler": "pickle", "variables": variables})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("state.pickle")
        info.size = len(state)
        tar.addfile(info, io.BytesIO(state))
    archive = buffer.getvalue()
    manifest.update(
        variables=sorted(variables),
        archive_sha256=hashlib.sha256(archive).hexdigest(),
        archive_bytes=len(archive),
    )
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    with zipfile.ZipFile(target, "w") as out:
        out.writestr("manifest.json", manifest_bytes)
        out.writestr("signature", hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest())
        out.writestr("session.tar", archive)


async def test_a_changed_checkpoint_reaches_no_session_and_nothing_is_unpickled_here(
    module_pool: LocalSessionPool, tmp_path: Path
) -> None:
    path = tmp_path / "a.ckpt"
    async with make_executor(module_pool) as source:
        assert (await run(source, "value = 1")).exit_code == 0
        await source.checkpoint(path, key=KEY)

    marker = tmp_path / "unpickled-here"
    payload = {
        "pid": pickle.dumps(_RunsWhereUnpickled("__import__('os').getpid()")),
        "touched": pickle.dumps(_RunsWhereUnpickled(f"open({str(marker)!r}, 'w').close() or 'touched'")),
    }
    forged = tmp_path / "forged.ckpt"
    # Signed with another key (an attacker's): refused before any request names the session.
    _resign(path, forged, payload, b"not the caller's key")
    async with make_executor(module_pool) as target:
        with pytest.raises(CheckpointTamperedError, match="not signed with this key"):
            await target.restore(forged, key=KEY)
        assert module_pool.manager.get(target.session_id) is None

        # Signed with the caller's own key, the same pickles are unpickled in the session only.
        _resign(path, forged, payload, KEY)
        restored = await target.restore(forged, key=KEY)
        assert "pid" in restored.variables
        pid = await run(target, "print(pid)")
    assert int(pid.stdout.strip()) != os.getpid()
    assert not marker.exists()


@pytest.mark.parametrize("api_version", [LEGACY, NEWEST])
async def test_a_checkpoint_of_a_session_that_is_gone_is_a_clear_error_and_writes_nothing(
    module_pool: LocalSessionPool, tmp_path: Path, api_version: str
) -> None:
    path = tmp_path / "gone.ckpt"
    async with make_executor(module_pool, api_version=api_version) as executor:
        assert (await run(executor, "work = [1, 2, 3]")).exit_code == 0
        # The service ends the session under the executor (its cooldown, or a delete).
        assert await module_pool.manager.delete(executor.session_id)
        with pytest.raises(CheckpointSessionGoneError, match="no longer exists"):
            await executor.checkpoint(path, key=KEY)
        assert not path.exists()
        # The executor goes on in a new session, set up again.
        after = await run(executor, "import os\nprint(os.getcwd(), 'work' in globals())")
    assert after.stdout.strip() == "/mnt/data False", after.output


async def test_an_executor_that_ran_nothing_has_nothing_to_checkpoint(
    module_pool: LocalSessionPool, tmp_path: Path
) -> None:
    async with make_executor(module_pool) as executor:
        with pytest.raises(CheckpointError, match="has run nothing yet"):
            await executor.checkpoint(tmp_path / "empty.ckpt", key=KEY)
        assert module_pool.manager.get(executor.session_id) is None


class _SteppedClock:
    """A monotonic clock the test moves forward over an idle gap (no waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_with_restore_on_loss_a_session_that_ended_while_idle_is_restored_before_the_block(
    module_pool: LocalSessionPool, tmp_path: Path
) -> None:
    clock = _SteppedClock()
    async with make_executor(module_pool, functions=[shout], restore_checkpoint_on_loss=True) as executor:
        executor._clock = clock
        assert (await run(executor, "total = 41\nopen('kept.txt', 'w').write('kept')")).exit_code == 0
        await executor.checkpoint(tmp_path / "last.ckpt", key=KEY)
        # The pool's cooldown ends the session while the executor is idle.
        assert await module_pool.manager.delete(executor.session_id)
        clock.now += 301
        after = await run(executor, "print(total + 1, open('kept.txt').read(), shout('x'))")
    assert after.exit_code == 0, after.output
    assert after.stdout.strip() == "42 kept X!"
    assert "had ended (its idle timeout expired)" in after.output
    assert "the last checkpoint" in after.output
    assert "was restored before this block ran: variables total" in after.output


@pytest.mark.parametrize("restore_checkpoint_on_loss", [True, False])
async def test_a_block_that_met_a_replaced_session_is_told_whether_the_checkpoint_is_back(
    module_pool: LocalSessionPool, tmp_path: Path, restore_checkpoint_on_loss: bool
) -> None:
    # The legacy api-version cannot ask whether a session exists: the block's own answer (a new
    # x-ms-session-guid) says the session was replaced, after the block ran.
    async with make_executor(
        module_pool, api_version=LEGACY, restore_checkpoint_on_loss=restore_checkpoint_on_loss
    ) as executor:
        assert (await run(executor, "total = 41")).exit_code == 0
        await executor.checkpoint(tmp_path / "last.ckpt", key=KEY)
        assert await module_pool.manager.delete(executor.session_id)
        met = await run(executor, "print(total)")
        again = await run(executor, "print(total + 1)")
    assert met.exit_code != 0
    assert "NameError" in met.output
    if restore_checkpoint_on_loss:
        assert "was restored after this block ran, so run it again if it needed them" in met.output
        assert again.stdout.strip() == "42", again.output
    else:
        assert "the last checkpoint" not in met.output
        assert "NameError" in again.output

"""Checkpoints of a dynamic session (``client/checkpoint.py``) against the real local pool:
files and variables come back in a new session, what cannot pickle is listed, and a checkpoint
that was changed is refused before anything reaches a session."""

from __future__ import annotations

import uuid
import zipfile
from pathlib import Path

import pytest

from autogen_aca_sessions.client import SessionsClient
from autogen_aca_sessions.client.checkpoint import (
    CheckpointError,
    CheckpointTamperedError,
    checkpoint_session,
    inspect_checkpoint,
    restore_session,
)
from autogen_aca_sessions.local import LocalSessionPool

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = b"test-key"
WORK = """
import json, socket
import pandas as pd
import numpy as np
frame = pd.DataFrame({"region": ["north", "south", "east"], "revenue": [120.5, 80.25, 99.0]})
model = {"weights": np.arange(5) * 2, "name": "demo"}
def doubled(x):
    return 2 * x
listener = socket.socket()
import os
os.makedirs("notes", exist_ok=True)
with open("notes/plan.txt", "w") as handle:
    handle.write("step 1: revenue by region")
total = float(frame.revenue.sum())
"""


def _new_id() -> str:
    return f"ckpt-{uuid.uuid4().hex[:12]}"


async def _value(client: SessionsClient, identifier: str, code: str) -> object:
    result = await client.execute(identifier, code)
    assert result.succeeded, result.stderr
    return result.result


async def test_a_restored_session_has_the_files_and_variables_of_the_checkpoint(
    module_pool: LocalSessionPool, tmp_path: Path
) -> None:
    async with SessionsClient(module_pool.endpoint, module_pool.credential) as client:
        first = _new_id()
        result = await client.execute(first, WORK)
        assert result.succeeded, result.stderr
        info = await checkpoint_session(client, first, tmp_path / "work.ckpt", key=KEY)
        assert {"frame", "model", "doubled", "total"} <= set(info.variables)
        assert info.modules["pd"] == "pandas"
        # An open socket and a closed file do not pickle: listed, with their types.
        skipped = {(s.name, s.type) for s in info.skipped}
        assert skipped == {("listener", "socket"), ("handle", "TextIOWrapper")}
        assert "notes/plan.txt" in info.files
        # The staging archive does not stay behind in the session.
        assert not [f for f in await client.list_files(first) if f.name.startswith("aca-checkpoint")]

        second = _new_id()
        restored = await restore_session(client, second, tmp_path / "work.ckpt", key=KEY)
        assert set(info.variables) <= set(restored.variables)
        code = (
            "(frame.revenue.sum(), model['weights'].tolist(), doubled(21),"
            " open('notes/plan.txt').read(), pd.__name__)"
        )
        assert await _value(client, second, code) == [
            299.75,
            [0, 2, 4, 6, 8],
            42,
            "step 1: revenue by region",
            "pandas",
        ]
        files = await client.list_files(second)
        assert not [f for f in files if f.name.startswith("aca-restore-")]
        await client.delete_session(first)
        await client.delete_session(second)


async def test_a_changed_checkpoint_is_refused_and_nothing_reaches_the_session(
    module_pool: LocalSessionPool, tmp_path: Path
) -> None:
    async with SessionsClient(module_pool.endpoint, module_pool.credential) as client:
        source = _new_id()
        assert (await client.execute(source, "secret = 41")).succeeded
        path = tmp_path / "a.ckpt"
        await checkpoint_session(client, source, path, key=KEY)

        # A different key: not ours.
        with pytest.raises(CheckpointTamperedError, match="not signed with this key"):
            await restore_session(client, _new_id(), path, key=b"another key")

        # The archive swapped for one that would run code when unpickled.
        forged = tmp_path / "forged.ckpt"
        with zipfile.ZipFile(path) as original, zipfile.ZipFile(forged, "w") as out:
            for name in original.namelist():
                data = original.read(name)
                out.writestr(name, data + b"x" if name == "session.tar" else data)
        target = _new_id()
        with pytest.raises(CheckpointTamperedError, match="does not match its signed digest"):
            await restore_session(client, target, forged, key=KEY)
        assert await client.list_files(target) == []

        (tmp_path / "junk.ckpt").write_bytes(b"not a zip")
        with pytest.raises(CheckpointTamperedError, match="cannot be read"):
            await restore_session(client, target, tmp_path / "junk.ckpt", key=KEY)


async def test_a_session_step_that_fails_is_a_clear_error(
    module_pool: LocalSessionPool, tmp_path: Path
) -> None:
    async with SessionsClient(module_pool.endpoint, module_pool.credential) as client:
        identifier = _new_id()
        # A namespace whose packing cannot finish: the data directory is not writable.
        code = "import os\nos.environ['ACA_DATA_DIR'] = '/proc'\n"
        assert (await client.execute(identifier, code)).succeeded
        with pytest.raises(CheckpointError, match="did not finish"):
            await checkpoint_session(client, identifier, tmp_path / "x.ckpt", key=KEY)
        assert not (tmp_path / "x.ckpt").exists()


async def test_without_cloudpickle_code_defined_in_the_session_is_listed_not_lost_silently(
    module_pool: LocalSessionPool, tmp_path: Path
) -> None:
    async with SessionsClient(module_pool.endpoint, module_pool.credential) as client:
        identifier = _new_id()
        code = (
            "import sys\nsys.modules['cloudpickle'] = None\nsys.modules['dill'] = None\n"
            "def helper():\n    return 1\nnumbers = [1, 2, 3]\n"
        )
        assert (await client.execute(identifier, code)).succeeded
        info = await checkpoint_session(client, identifier, tmp_path / "plain.ckpt", key=KEY)
        assert info.pickler == "pickle"
        assert "numbers" in info.variables
        (helper,) = [s for s in info.skipped if s.name == "helper"]
        assert "install cloudpickle" in helper.reason
        restored = await restore_session(client, _new_id(), tmp_path / "plain.ckpt", key=KEY)
        assert "numbers" in restored.variables


async def test_a_checkpoint_built_to_bloat_memory_is_refused_before_it_is_read(tmp_path: Path) -> None:
    # A manifest that inflates to 256 MiB from a few hundred KiB on disk: refused by its declared
    # size, before a byte of it is decompressed (and before any session is named).
    bomb = tmp_path / "bomb.ckpt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as out:
        with out.open("manifest.json", "w", force_zip64=True) as manifest:
            chunk = b" " * (1024 * 1024)
            for _ in range(256):
                manifest.write(chunk)
        out.writestr("signature", "0" * 64)
        out.writestr("session.tar", b"")
    assert bomb.stat().st_size < 2 * 1024 * 1024
    with pytest.raises(CheckpointTamperedError, match="more than a checkpoint writes"):
        await inspect_checkpoint(bomb, key=KEY)

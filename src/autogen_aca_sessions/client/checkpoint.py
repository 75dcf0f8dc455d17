"""Checkpoints of a dynamic session: its files and its picklable variables, in a local file.

A session ends on its own after its cooldown, and a restart gives a new one: a checkpoint keeps
the work. It uses the documented data plane only (execute, file upload, download, delete), so it
works against Azure as against the local pool:

1. **checkpoint**: a cell pickles each variable of the session's namespace on its own (with
   cloudpickle or dill when the session has one, else :mod:`pickle`), notes the modules imported
   under a name and the variables that would not pickle, and packs ``/mnt/data`` and the pickles
   into one tar file, which the client downloads, then deletes. The client writes a zip holding
   that tar and a manifest, signed with HMAC-SHA256 under a key only the caller holds.
2. **restore**: the client checks the signature before anything else (a file that was changed is
   refused with :class:`CheckpointTamperedError`), uploads the tar in parts under the service's
   upload limit, and a cell unpacks the files into ``/mnt/data`` and unpickles the variables
   *inside the session*: nothing of a checkpoint is ever unpickled in the caller's process.

What a checkpoint does not keep: objects that do not pickle (open files and sockets, running
threads, generators, ...; they are listed in :attr:`CheckpointInfo.skipped`), identity shared
between two variables (each is pickled on its own, so that one bad value cannot spoil the others),
processes started from the session, and anything outside ``/mnt/data``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import uuid
import zipfile
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import NotFoundError, PoolFullError, PoolNotFoundError, SessionsError
from .session_replacement import setup_lost

if TYPE_CHECKING:
    from .client import SessionsClient

__all__ = [
    "CHECKPOINT_KEY_ENV",
    "CheckpointError",
    "CheckpointInfo",
    "CheckpointSessionGoneError",
    "CheckpointTamperedError",
    "SkippedVariable",
    "checkpoint_session",
    "default_checkpoint_key",
    "inspect_checkpoint",
    "restore_session",
]

CHECKPOINT_KEY_ENV = "ACA_SESSIONS_CHECKPOINT_KEY"
"""Environment variable holding the key that signs checkpoints (any string); without it a random
key is made once and kept in ``~/.config/autogen-aca-sessions/checkpoint.key`` (mode 0600)."""
_FORMAT = "aca-session-checkpoint/1"
_MARKER = "__ACA_CHECKPOINT__"
_MAX_MANIFEST_BYTES = 32 * 1024 * 1024
"""Largest manifest read (it lists the variables and files: far below this)."""
_MAX_SIGNATURE_BYTES = 1024
"""Largest signature entry read (a hex SHA-256 HMAC is 64 characters)."""
_PART_BYTES = 64 * 1024 * 1024
"""Upload parts stay well under the service's 128 MB limit per upload."""


class CheckpointError(SessionsError):
    """A checkpoint could not be made or restored; the message says why and what to do."""


class CheckpointSessionGoneError(CheckpointError):
    """The session to checkpoint no longer exists (its cooldown ran out, or it was deleted): its
    work is lost and the checkpoint was not written."""


class CheckpointTamperedError(CheckpointError):
    """The checkpoint file is not one this key signed, or it was changed since: nothing of it
    was sent to the session."""


@dataclass(frozen=True)
class SkippedVariable:
    """A variable a checkpoint could not keep (or a restore could not bring back)."""

    name: str
    """The variable's name in the session's namespace."""
    type: str
    """The value's type name (``generator``, ``socket``, ...)."""
    reason: str
    """Why: the pickler's (or unpickler's) own message, cut to 300 characters."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint holds (after :func:`checkpoint_session`) or brought back (after
    :func:`restore_session`)."""

    path: Path
    """The checkpoint file."""
    variables: tuple[str, ...]
    """Variables kept (after a restore: those now defined in the session again)."""
    modules: dict[str, str] = field(default_factory=dict)
    """Modules imported under a name in the namespace, ``{name: module}`` (imported again on restore)."""
    skipped: tuple[SkippedVariable, ...] = ()
    """Variables that could not be kept (after a restore: also those that would not unpickle there)."""
    files: tuple[str, ...] = ()
    """Files of ``/mnt/data`` kept, relative to it."""
    pickler: str = "pickle"
    """The module that pickled the variables: ``cloudpickle``, ``dill`` or ``pickle``."""
    size_bytes: int = 0
    """Size of the session's archive inside the checkpoint file."""
    created_at: datetime | None = None
    """When the checkpoint was made (UTC)."""
    session_guid: str | None = None
    """The ``x-ms-session-guid`` of the session incarnation that was packed (or restored into),
    when the service names it; None after :func:`inspect_checkpoint`."""


def default_checkpoint_key() -> bytes:
    """The signing key: :data:`CHECKPOINT_KEY_ENV`, else the per-user key file (made on first use)."""
    configured = os.environ.get(CHECKPOINT_KEY_ENV)
    if configured:
        return configured.encode("utf-8", "surrogateescape")
    folder = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "autogen-aca-sessions"
    key_file = folder / "checkpoint.key"
    try:
        return bytes.fromhex(key_file.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise CheckpointError(f"{key_file} does not hold a hex key; delete it to make a new one") from exc
    folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key.hex() + "\n")
    return key


async def checkpoint_session(
    client: SessionsClient,
    identifier: str,
    path: str | os.PathLike[str],
    *,
    key: bytes | None = None,
    timeout_seconds: int = 180,
    exclude: Collection[str] = (),
    expected_session_guid: str | None = None,
) -> CheckpointInfo:
    """Save session ``identifier``'s files and picklable variables to ``path`` (a new zip file).

    ``key`` signs it (default :func:`default_checkpoint_key`); :func:`restore_session` needs the
    same key. ``exclude`` names variables to leave out (an adapter's injected functions, which
    it sets up again itself). ``expected_session_guid`` is the incarnation the caller worked in,
    when it knows it: a pack answered by another one means the work is gone.

    Raises :class:`CheckpointSessionGoneError` when the session no longer exists (asked first
    where the api-version can, and told by the pack's own answer), :class:`CheckpointError` when
    the session could not pack its state. Nothing is written to ``path`` then.
    """
    signing_key = key if key is not None else await asyncio.to_thread(default_checkpoint_key)
    if client.supports_session_management:
        # Executing would create a fresh, empty session under a gone identifier: ask first.
        try:
            await client.get_session(identifier)
        except NotFoundError as exc:
            if isinstance(exc, (PoolFullError, PoolNotFoundError)):
                raise
            raise CheckpointSessionGoneError(_gone(identifier)) from exc
    archive_name = f"aca-checkpoint-{uuid.uuid4().hex}.tar"
    try:
        result = await client.execute(
            identifier, _pack_code(archive_name, exclude), timeout_seconds=timeout_seconds
        )
        if setup_lost(expected_session_guid, result):
            raise CheckpointSessionGoneError(_gone(identifier))
        report = _report(result.stdout, result.stderr, "checkpoint")
        archive = await client.download_file(identifier, archive_name)
    finally:
        await _forget(client, identifier, archive_name)
    created = datetime.now(timezone.utc)
    manifest = {
        "format": _FORMAT,
        "created_at": created.isoformat(),
        "identifier": identifier,
        "pickler": report["pickler"],
        "variables": report["variables"],
        "modules": report["modules"],
        "skipped": report["skipped"],
        "files": report["files"],
        "archive_sha256": hashlib.sha256(archive).hexdigest(),
        "archive_bytes": len(archive),
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    signature = hmac.new(signing_key, manifest_bytes, hashlib.sha256).hexdigest()
    target = Path(path)
    await asyncio.to_thread(_write_checkpoint, target, manifest_bytes, signature, archive)
    return _info(target, manifest, created, result.session_guid)


def _gone(identifier: str) -> str:
    return (
        f"Session {identifier!r} no longer exists (its idle cooldown ran out, or it was deleted): "
        "its variables and files are gone, so there is nothing to checkpoint. Restore an earlier "
        "checkpoint, or run the work again."
    )


async def inspect_checkpoint(path: str | os.PathLike[str], *, key: bytes | None = None) -> CheckpointInfo:
    """What the checkpoint at ``path`` holds, after checking its signature; touches no session.

    Raises :class:`CheckpointTamperedError` as :func:`restore_session` would.
    """
    signing_key = key if key is not None else await asyncio.to_thread(default_checkpoint_key)
    source = Path(path)
    manifest, _ = await asyncio.to_thread(_read_checkpoint, source, signing_key)
    return _info(source, manifest, datetime.fromisoformat(str(manifest["created_at"])), None)


async def restore_session(
    client: SessionsClient,
    identifier: str,
    path: str | os.PathLike[str],
    *,
    key: bytes | None = None,
    timeout_seconds: int = 180,
    prelude: str = "",
) -> CheckpointInfo:
    """Put the files and variables of the checkpoint at ``path`` into session ``identifier``.

    The signature is checked first (:class:`CheckpointTamperedError`); variables are unpickled in
    the session only. The result lists what is back; :attr:`CheckpointInfo.skipped` also holds
    variables that would not unpickle in that session (a package it lacks, for example).
    ``prelude`` is code run in the same cell first (an adapter's set-up: working directory and
    injected functions, which pickled references to them need), whatever incarnation answers.
    """
    signing_key = key if key is not None else await asyncio.to_thread(default_checkpoint_key)
    source = Path(path)
    manifest, archive = await asyncio.to_thread(_read_checkpoint, source, signing_key)
    stem = f"aca-restore-{uuid.uuid4().hex}"
    parts = [f"{stem}.part{index:04d}" for index in range(max(1, -(-len(archive) // _PART_BYTES)))]
    try:
        for index, name in enumerate(parts):
            piece = archive[index * _PART_BYTES : (index + 1) * _PART_BYTES]
            await client.upload_file(identifier, name, piece)
        code = prelude + _unpack_code(parts, manifest["modules"])
        result = await client.execute(identifier, code, timeout_seconds=timeout_seconds)
    except BaseException:
        for name in parts:
            await _forget(client, identifier, name)
        raise
    report = _report(result.stdout, result.stderr, "restore")
    restored = dict(manifest)
    restored["variables"] = report["variables"]
    restored["skipped"] = [*manifest["skipped"], *report["skipped"]]
    created = datetime.fromisoformat(str(manifest["created_at"]))
    return _info(source, restored, created, result.session_guid)


async def _forget(client: SessionsClient, identifier: str, name: str) -> None:
    """Delete a staging file; one already gone (or a session that went) is not an error."""
    with contextlib.suppress(SessionsError):
        await client.delete_file(identifier, name)


def _write_checkpoint(target: Path, manifest: bytes, signature: str, archive: bytes) -> None:
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as out:
        out.writestr("manifest.json", manifest)
        out.writestr("signature", signature)
        out.writestr("session.tar", archive)
    os.replace(partial, target)


def _read_checkpoint(source: Path, key: bytes) -> tuple[dict[str, Any], bytes]:
    try:
        with zipfile.ZipFile(source) as checkpoint:
            names = set(checkpoint.namelist())
            if names != {"manifest.json", "signature", "session.tar"}:
                raise CheckpointTamperedError(
                    f"{source} is not a session checkpoint (its entries are {sorted(names)})"
                )
            # Sizes are checked before anything is read: a forged entry that inflates to
            # gigabytes is refused, not unpacked into memory.
            _check_size(source, checkpoint.getinfo("manifest.json"), _MAX_MANIFEST_BYTES)
            _check_size(source, checkpoint.getinfo("signature"), _MAX_SIGNATURE_BYTES)
            manifest_bytes = checkpoint.read("manifest.json")
            signature = checkpoint.read("signature").decode("ascii", "replace")
            expected = hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(signature, expected):
                raise CheckpointTamperedError(
                    f"{source} was not signed with this key or was changed after it was written; "
                    "refusing to restore it"
                )
            manifest: dict[str, Any] = json.loads(manifest_bytes)
            declared, held = manifest.get("archive_bytes"), checkpoint.getinfo("session.tar").file_size
            if held != declared:
                raise CheckpointTamperedError(
                    f"{source}: the session archive does not match its signed digest (it holds {held} "
                    f"bytes, the signed manifest says {declared})"
                )
            archive = checkpoint.read("session.tar")
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, zlib.error) as exc:
        raise CheckpointTamperedError(f"{source} cannot be read as a session checkpoint: {exc}") from exc
    if manifest.get("format") != _FORMAT:
        raise CheckpointError(f"{source} has format {manifest.get('format')!r}; this version reads {_FORMAT}")
    if hashlib.sha256(archive).hexdigest() != manifest.get("archive_sha256"):
        raise CheckpointTamperedError(f"{source}: the session archive does not match its signed digest")
    return manifest, archive


def _check_size(source: Path, entry: zipfile.ZipInfo, limit: int) -> None:
    if entry.file_size > limit:
        raise CheckpointTamperedError(
            f"{source}: its {entry.filename} holds {entry.file_size} bytes, more than a checkpoint "
            f"writes ({limit}); refusing to read it"
        )


def _report(stdout: str, stderr: str, step: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(_MARKER):
            report: dict[str, Any] = json.loads(line[len(_MARKER) :])
            if "error" in report:
                raise CheckpointError(f"the session could not {step}: {report['error']}")
            return report
    detail = (stderr.strip() or stdout.strip())[-1000:]
    raise CheckpointError(f"the session's {step} step did not finish: {detail or 'no output'}")


def _info(
    path: Path, manifest: dict[str, Any], created: datetime, session_guid: str | None
) -> CheckpointInfo:
    return CheckpointInfo(
        path=path,
        variables=tuple(manifest["variables"]),
        modules=dict(manifest["modules"]),
        skipped=tuple(SkippedVariable(**entry) for entry in manifest["skipped"]),
        files=tuple(manifest["files"]),
        pickler=str(manifest["pickler"]),
        size_bytes=int(manifest["archive_bytes"]),
        created_at=created,
        session_guid=session_guid,
    )


# The cells below run in the session. They only use the standard library (and cloudpickle or
# dill when present) and keep their helpers in one function's scope, so that nothing of theirs
# stays in the user's namespace.
_PACK = r"""
def __aca_checkpoint_pack(archive_name, exclude):
    import io, json, os, pickle, pickletools, tarfile, time, types
    try:
        import cloudpickle as pickler
    except ImportError:
        try:
            import dill as pickler
        except ImportError:
            pickler = pickle
    root = os.environ.get("ACA_DATA_DIR") or "/mnt/data"
    try:
        shell = get_ipython()
        namespace, hidden = shell.user_ns, set(shell.user_ns_hidden)
    except NameError:
        namespace, hidden = globals(), set()
    skip = {"In", "Out", "exit", "quit", "get_ipython"}
    pickles, modules, skipped = {}, {}, []
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in hidden or name in skip or name in exclude:
            continue
        if isinstance(value, types.ModuleType):
            modules[name] = value.__name__
            continue
        try:
            blob = pickler.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            if pickler is pickle and b"__main__" in blob:
                # Plain pickle keeps code defined in the session by reference only; a new
                # session has no such name, so this would not come back.
                strings = [arg for op, arg, _ in pickletools.genops(blob) if isinstance(arg, str)]
                if "__main__" in strings:
                    raise TypeError(
                        "it refers to code defined in the session (a function or class of "
                        "__main__), which plain pickle cannot keep; install cloudpickle in the session"
                    )
            pickles[name] = blob
        except BaseException as exc:
            reason = str(exc)[:300] or repr(exc)
            skipped.append({"name": name, "type": type(value).__name__, "reason": reason})
    state = {"pickler": pickler.__name__, "variables": pickles}
    state = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    target = os.path.join(root, archive_name)
    files = []
    with tarfile.open(target, "w") as tar:
        info = tarfile.TarInfo("state.pickle")
        info.size, info.mtime = len(state), int(time.time())
        tar.addfile(info, io.BytesIO(state))
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(folder, name)
                relative = os.path.relpath(full, root)
                if relative == archive_name or relative.startswith("aca-restore-"):
                    continue
                if os.path.islink(full) or not os.path.isfile(full):
                    continue
                tar.add(full, arcname="files/" + relative, recursive=False)
                files.append(relative)
    print(__ACA_MARKER__ + json.dumps({
        "pickler": pickler.__name__, "variables": sorted(pickles), "modules": modules,
        "skipped": skipped, "files": files,
    }))
__aca_checkpoint_pack(__ACA_ARCHIVE__, __ACA_EXCLUDE__)
del __aca_checkpoint_pack
"""

_UNPACK = r"""
def __aca_checkpoint_unpack(parts, modules):
    import importlib, io, json, os, pickle, tarfile
    root = os.environ.get("ACA_DATA_DIR") or "/mnt/data"
    data = bytearray()
    for part in parts:
        with open(os.path.join(root, part), "rb") as piece:
            data += piece.read()
        os.remove(os.path.join(root, part))
    try:
        shell = get_ipython()
        namespace = shell.user_ns
    except NameError:
        namespace = globals()
    restored, skipped = [], []
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        state = None
        for member in tar.getmembers():
            if member.name == "state.pickle":
                state = pickle.loads(tar.extractfile(member).read())
                continue
            if not member.isfile() or not member.name.startswith("files/"):
                continue
            relative = os.path.normpath(member.name[len("files/"):])
            if relative.startswith("..") or os.path.isabs(relative):
                continue
            target = os.path.join(root, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with tar.extractfile(member) as source, open(target, "wb") as out:
                out.write(source.read())
    if state is None:
        print(__ACA_MARKER__ + json.dumps({"error": "the archive holds no state"}))
        return
    loader = pickle
    if state["pickler"] != "pickle":
        try:
            loader = importlib.import_module(state["pickler"])
        except ImportError:
            pass
    for name, module in modules.items():
        try:
            namespace[name] = importlib.import_module(module)
        except BaseException as exc:
            skipped.append({"name": name, "type": "module", "reason": str(exc)[:300] or repr(exc)})
    for name, blob in state["variables"].items():
        try:
            namespace[name] = loader.loads(blob)
            restored.append(name)
        except BaseException as exc:
            skipped.append({"name": name, "type": "pickle", "reason": str(exc)[:300] or repr(exc)})
    print(__ACA_MARKER__ + json.dumps({"variables": sorted(restored), "skipped": skipped}))
__aca_checkpoint_unpack(__ACA_PARTS__, __ACA_MODULES__)
del __aca_checkpoint_unpack
"""


def _pack_code(archive_name: str, exclude: Collection[str] = ()) -> str:
    return (
        _PACK.replace("__ACA_MARKER__", repr(_MARKER))
        .replace("__ACA_ARCHIVE__", repr(archive_name))
        .replace("__ACA_EXCLUDE__", repr(frozenset(exclude)))
    )


def _unpack_code(parts: Sequence[str], modules: dict[str, str]) -> str:
    return (
        _UNPACK.replace("__ACA_MARKER__", repr(_MARKER))
        .replace("__ACA_PARTS__", repr(list(parts)))
        .replace("__ACA_MODULES__", repr(dict(modules)))
    )

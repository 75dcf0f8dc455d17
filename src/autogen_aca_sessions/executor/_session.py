"""The executor's session keeper: what it knows about its session, and the requests that keep it so.

Everything the executor knows about its session is one immutable :class:`SessionState`. The
keeper replaces it whole: :meth:`SessionKeeper.invalidate` for anything that ends what was known
(a restart, a release, a vanished session, a replaced interpreter), and small ``replace`` steps
for what a request teaches (it was sent, the set-up ran, the packages are known). The keeper
sends the set-up (reset, working directory, injected functions; the working directory with a
block's own code where it can), probes nothing before a block, and
sends a block once more when the service replaced the session under it. It renders nothing:
its answer is a :class:`SentBlock`, which the output renderer turns into text.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import shlex
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from autogen_core import CancellationToken

from autogen_aca_sessions.client import (
    ApiVersion,
    ExecutionResult,
    ExecutionTimeoutError,
    NotFoundError,
    PoolFullError,
    SessionsClient,
    SessionsError,
    SessionsHTTPError,
    UnsupportedOperationError,
)
from autogen_aca_sessions.client.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    CheckpointSessionGoneError,
    checkpoint_session,
    inspect_checkpoint,
    restore_session,
)
from autogen_aca_sessions.client.errors import left_no_session
from autogen_aca_sessions.client.limits import MAX_EXECUTION_SECONDS
from autogen_aca_sessions.client.session_replacement import failed_for_missing_functions, replaced_since
from autogen_aca_sessions.executor._functions import FunctionsModule, normalize_package_name
from autogen_aca_sessions.executor._kernel_code import packages_code, reset_code, setup_code
from autogen_aca_sessions.executor._setup_prefix import compile_failed, prefixed, unprefixed_text

__all__ = ["IDLE_PROBE_SECONDS", "Invalidation", "SentBlock", "SessionKeeper", "SessionState"]

logger = logging.getLogger("autogen_aca_sessions.executor")

T = TypeVar("T")

IDLE_PROBE_SECONDS = 300.0
"""The shortest cooldown a pool can have: after this long without a request the session may have
been deleted and a later call gets a fresh one. The executor does not ask first (the block's own
answer says so): it sends the set-up with the block where it can, and otherwise sends a block that
failed for want of the injected functions once more after setting them up."""

CHECKPOINT_SECONDS = 120
"""Least time limit of the cells that pack and unpack a checkpoint: a large namespace takes
longer than a typical block (the service's cap of 220 s still applies)."""

# Error codes with which the service says the identifier no longer names a session.
_SESSION_GONE_CODES = frozenset({"sessionwithidentifiernotfound", "sessionnotfound"})


@dataclass(frozen=True)
class SessionState:
    """What the executor knows about its session. Never changed in place: replaced whole."""

    session_id: str
    """The identifier the next request names."""
    used: bool = False
    """A request naming the session may have reached the service (so it may exist and be released)."""
    set_up: bool = False
    """The working directory and injected functions are in place in the interpreter."""
    reset_pending: bool = False
    """The interpreter's namespace is to be reset before the next block (a kept caller identifier
    restarted where the api-version cannot delete sessions)."""
    session_guid: str | None = None
    """The ``x-ms-session-guid`` of the incarnation the set-up ran in, when the service names it."""
    packages: frozenset[str] | None = None
    """Names of the distributions available in the session, once asked."""
    packages_checked: bool = False
    """The injected functions' required packages were found among :attr:`packages`."""
    last_request_at: float | None = None
    """When (on the keeper's clock) the last request naming the session went out or came back."""


class Invalidation(enum.Enum):
    """Why what the executor knew about its session no longer holds."""

    INTERPRETER_REPLACED = "interpreter replaced"
    """The service runs the session in a fresh interpreter (a new incarnation, a dead kernel):
    the set-up must run again; the pool, and so its packages, are the same."""
    SESSION_GONE = "session gone"
    """The identifier names no session any more: the next request creates a new one."""
    RESTARTED = "restarted"
    """:meth:`restart` deleted the session, or gave up on it without a delete."""
    RESTARTED_UNDELETED = "restarted, not deleted"
    """:meth:`restart` kept a caller's identifier but could not delete its session: its
    interpreter namespace is reset before the next block instead."""
    RELEASED = "released"
    """:meth:`stop` deleted the session."""


@dataclass(frozen=True)
class SentBlock:
    """How one block went out: the execution result (or the client's giving up) and the notes
    the keeper wrote about the session on the way."""

    result: ExecutionResult | None
    """The execution's result; None when the client gave up waiting (:attr:`gave_up`)."""
    gave_up: ExecutionTimeoutError | None
    """The client's timeout error when no answer came in time."""
    notes: tuple[str, ...]
    """Sentences about the session (replaced, resent) for the block's text."""
    replaced: bool
    """The block ran in another incarnation of the session than the earlier blocks."""


@dataclass(frozen=True)
class KeeperSettings:
    """What the keeper needs of the executor's configuration."""

    caller_session_id: str | None
    """The caller's identifier (kept across restarts); None when the executor makes its own."""
    api_version: ApiVersion
    """The data-plane api-version (whether sessions can be deleted)."""
    shell_pool: bool
    """The pool runs commands, not an interpreter: nothing to set up."""
    server_timeout: int
    """``timeoutInSeconds`` of every execution."""
    functions_module: str
    """Module name of the injected functions."""
    functions: FunctionsModule | None
    """The injected functions' module, when there are any."""
    required_packages: Mapping[str, str]
    """Normalised distribution name -> requirement text, of the injected functions."""
    restore_checkpoint_on_loss: bool = False
    """When the service says the session's state was lost (the session gone, the interpreter
    replaced), restore the last checkpoint made or restored by this keeper, and say so."""


@dataclass(frozen=True)
class LastCheckpoint:
    """The checkpoint the keeper restores by itself when the session's state is lost."""

    path: Path
    """The checkpoint file."""
    key: bytes | None
    """The key it is signed with (None: the default key)."""


class SessionKeeper:
    """Keeps one session of one pool ready for blocks; the executor's only holder of session state.

    Not safe for concurrent use: the executor serialises calls with its lock.
    """

    def __init__(
        self,
        settings: KeeperSettings,
        client: Callable[[], SessionsClient],
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self._client = client
        self.clock = clock
        """Where time comes from (monotonic seconds); injectable so tests can step over idleness."""
        self.state = SessionState(session_id=settings.caller_session_id or str(uuid.uuid4()))
        """What is known about the session; replaced whole, never changed in place."""
        self.last_checkpoint: LastCheckpoint | None = None
        """The latest checkpoint made or restored here (what a lost session gets back, when
        ``restore_checkpoint_on_loss``); forgotten on :meth:`restart`, which asks for a fresh start."""

    # ----------------------------------------------------------------- state transitions

    def invalidate(self, reason: Invalidation) -> None:
        """Forget what ``reason`` ends, by replacing the state whole."""
        old = self.state
        own = self.settings.caller_session_id is None
        if reason is Invalidation.INTERPRETER_REPLACED:
            self.state = replace(old, set_up=False)
        elif reason is Invalidation.SESSION_GONE:
            self.state = replace(old, set_up=False, packages=None, packages_checked=False)
        elif own and reason in (
            Invalidation.RESTARTED,
            Invalidation.RESTARTED_UNDELETED,
            Invalidation.RELEASED,
        ):
            # An identifier of our own is never used again: the next call starts a new session.
            self.state = SessionState(session_id=str(uuid.uuid4()), last_request_at=old.last_request_at)
        elif reason is Invalidation.RELEASED:
            self.state = SessionState(session_id=old.session_id, last_request_at=old.last_request_at)
        else:
            # A caller's identifier is kept: a deleted session comes back fresh under it; one that
            # could not be deleted keeps its interpreter, whose namespace is reset instead.
            reset = old.reset_pending or (
                reason is Invalidation.RESTARTED_UNDELETED and not self.settings.shell_pool
            )
            self.state = SessionState(
                session_id=old.session_id,
                used=old.used,
                reset_pending=reset,
                last_request_at=old.last_request_at,
            )
        logger.debug("Session %s: %s", old.session_id, reason.value)

    def touch(self) -> None:
        """Record that a request naming the session is about to go out. Called *before* the request:
        once it may have reached the service, the session may exist and must be released on stop."""
        self.state = replace(self.state, used=True, last_request_at=self.clock())

    @contextlib.contextmanager
    def naming_session(self) -> Iterator[None]:
        """Around one request naming the session: :meth:`touch` before it, and back to unused
        when it failed in a way that created no session (never sent, or refused with 401, 403,
        pool full, no pool), so that :meth:`should_release` sends no ``DELETE`` for it."""
        before = self.state
        self.touch()
        try:
            yield
        except Exception as exc:
            if not before.used and left_no_session(exc) and self.state.session_id == before.session_id:
                self.state = replace(self.state, used=False)
            raise

    def answered(self) -> None:
        """Record that an answer about the session came back now."""
        self.state = replace(self.state, last_request_at=self.clock())

    # ----------------------------------------------------------------- queries

    @property
    def session_id(self) -> str:
        """The identifier the next request names."""
        return self.state.session_id

    def should_release(self, policy: bool | None) -> bool:
        """Whether :meth:`stop` deletes the session under ``release_session_on_stop=policy``."""
        if policy is False:
            return False
        own = self.settings.caller_session_id is None
        if policy is None and not own:
            return False
        if own and not self.state.used:
            return False
        if not self.settings.api_version.supports_session_management:
            logger.debug(
                "Not releasing session %s: api-version %s has no session management",
                self.state.session_id,
                self.settings.api_version.value,
            )
            return False
        return True

    def _idle_too_long(self) -> bool:
        last = self.state.last_request_at
        return last is not None and self.clock() - last >= IDLE_PROBE_SECONDS

    def _is_replaced(self, result: ExecutionResult) -> bool:
        """Whether ``result`` came from another incarnation of the session than the one set up
        (a Shell pool has nothing set up to lose)."""
        return not self.settings.shell_pool and replaced_since(self.state.session_guid, result)

    def _failed_for_missing_setup(self, result: ExecutionResult) -> bool:
        """Whether a failed block failed because the injected functions were not loaded (it ran in
        a fresh interpreter): then sending it again after the setup cannot repeat any state."""
        module = self.settings.functions
        return module is not None and failed_for_missing_functions(
            result, self.settings.functions_module, module.names
        )

    # ----------------------------------------------------------------- requests

    async def _execute(self, code: str, cancellation_token: CancellationToken | None) -> ExecutionResult:
        """Run ``code`` in the interpreter (set-up, resets, package listing)."""
        with self.naming_session():
            return await linked(
                self._client().execute(
                    self.state.session_id, code, timeout_seconds=self.settings.server_timeout
                ),
                cancellation_token,
            )

    async def _send(self, code: str, cancellation_token: CancellationToken | None) -> ExecutionResult:
        """Send one block: as a command on a Shell pool, as code in the interpreter otherwise.
        The one place a block goes out (a span around one block wraps this)."""
        client = self._client()
        seconds = self.settings.server_timeout
        with self.naming_session():
            if self.settings.shell_pool:
                sent = client.execute_shell(self.state.session_id, code, timeout_seconds=seconds)
            else:
                sent = client.execute(self.state.session_id, code, timeout_seconds=seconds)
            return await linked(sent, cancellation_token)

    async def delete_logged(self, *, reason: str) -> bool:
        """Delete the session; True when it is gone (also when it did not exist)."""
        identifier = self.state.session_id
        try:
            await self._client().delete_session(identifier)
        except NotFoundError:
            return True
        except Exception:
            logger.warning("Releasing session %s on %s failed", identifier, reason, exc_info=True)
            return False
        logger.debug("Released session %s on %s", identifier, reason)
        return True

    async def restart(self) -> None:
        """A fresh interpreter for the next call (the executor's "Session policy")."""
        self.last_checkpoint = None
        own = self.settings.caller_session_id is None
        deleted = False
        if self.settings.api_version.supports_session_management and (self.state.used or not own):
            deleted = await self.delete_logged(reason="restart")
        self.invalidate(Invalidation.RESTARTED if deleted else Invalidation.RESTARTED_UNDELETED)

    async def upload(self, name: str, data: bytes, cancellation_token: CancellationToken | None) -> None:
        """Upload ``data`` into ``/mnt/data`` of the session."""
        with self.naming_session():
            await linked(self._client().upload_file(self.state.session_id, name, data), cancellation_token)

    # ----------------------------------------------------------------- checkpoints

    def _checkpoint_timeout(self) -> int:
        return min(MAX_EXECUTION_SECONDS, max(self.settings.server_timeout, CHECKPOINT_SECONDS))

    async def checkpoint(
        self,
        path: str | os.PathLike[str],
        key: bytes | None,
        cancellation_token: CancellationToken | None,
    ) -> CheckpointInfo:
        """Save the session's files and picklable variables to ``path`` (the injected functions
        are left out: a restore sets them up again)."""
        identifier = self.state.session_id
        if self.settings.shell_pool:
            raise CheckpointError(
                "A Shell pool has no interpreter whose variables could be kept; copy the files of "
                "/mnt/data with download_files instead."
            )
        if not self.state.used and self.settings.caller_session_id is None:
            raise CheckpointError(
                f"Session {identifier!r} has run nothing yet: there is nothing to checkpoint."
            )
        module = self.settings.functions
        try:
            with self.naming_session():
                info = await linked(
                    checkpoint_session(
                        self._client(),
                        identifier,
                        path,
                        key=key,
                        timeout_seconds=self._checkpoint_timeout(),
                        exclude=module.names if module else (),
                        expected_session_guid=self.state.session_guid if self.state.set_up else None,
                    ),
                    cancellation_token,
                )
        except CheckpointSessionGoneError:
            # Whatever answered (if anything) is a new, never set-up session.
            self.invalidate(Invalidation.SESSION_GONE)
            raise
        self.answered()
        self.last_checkpoint = LastCheckpoint(path=Path(path), key=key)
        return info

    async def restore(
        self,
        path: str | os.PathLike[str],
        key: bytes | None,
        cancellation_token: CancellationToken | None,
    ) -> CheckpointInfo:
        """Put the checkpoint's files and variables into the session, set up (working directory,
        injected functions) in the same cell, so that pickled references to them resolve."""
        if self.settings.shell_pool:
            raise CheckpointError("A Shell pool has no interpreter to restore variables into.")
        # The signature first: a file that is not ours reaches no session, not even its set-up.
        await inspect_checkpoint(path, key=key)
        if self.state.reset_pending:
            # A reset after the restore would wipe what it brought back.
            await self.ensure_setup(cancellation_token)
        info = await self._restore_checked(path, key, cancellation_token)
        self.last_checkpoint = LastCheckpoint(path=Path(path), key=key)
        return info

    async def _restore_checked(
        self,
        path: str | os.PathLike[str],
        key: bytes | None,
        cancellation_token: CancellationToken | None,
    ) -> CheckpointInfo:
        """Restore a checkpoint whose signature was checked, set-up in the same cell."""
        if self.settings.required_packages and not self.state.packages_checked:
            await self._check_required_packages(cancellation_token)
        with self.naming_session():
            info = await linked(
                restore_session(
                    self._client(),
                    self.state.session_id,
                    path,
                    key=key,
                    timeout_seconds=self._checkpoint_timeout(),
                    prelude=self.setup_source(),
                ),
                cancellation_token,
            )
        self.answered()
        self.state = replace(self.state, set_up=True, session_guid=info.session_guid)
        return info

    async def _restore_after_loss(
        self, cancellation_token: CancellationToken | None, *, before_block: bool
    ) -> str | None:
        """When enabled and a checkpoint is known, restore it into the session whose state was
        just lost; the sentence for the block's output (None when nothing was tried)."""
        last = self.last_checkpoint
        if not self.settings.restore_checkpoint_on_loss or last is None or self.settings.shell_pool:
            return None
        try:
            await inspect_checkpoint(last.path, key=last.key)
            info = await self._restore_checked(last.path, last.key, cancellation_token)
        except (SessionsError, ValueError, OSError) as exc:
            return f"Restoring the last checkpoint {str(last.path)!r} failed, so nothing of it is back: {exc}"
        names = ", ".join(info.variables) or "none"
        when = f" (made {info.created_at:%Y-%m-%d %H:%M:%S} UTC)" if info.created_at else ""
        lost = f"; not restored: {', '.join(s.name for s in info.skipped)}" if info.skipped else ""
        after = (
            "before this block ran"
            if before_block
            else "after this block ran, so run it again if it needed them"
        )
        return (
            f"The session's state was lost, so the last checkpoint {str(last.path)!r}{when} was restored "
            f"{after}: variables {names} and {len(info.files)} file(s) are back; work done after that "
            f"checkpoint is gone{lost}."
        )

    async def _gone_while_idle(self, cancellation_token: CancellationToken | None) -> bool:
        """After an idle gap, whether the session is gone (asked only where the api-version can,
        and only when a checkpoint would be restored: otherwise nothing is probed)."""
        if (
            not self.settings.restore_checkpoint_on_loss
            or self.last_checkpoint is None
            or not self.settings.api_version.supports_session_management
            or not self.state.used
            or not self._idle_too_long()
        ):
            return False
        try:
            await linked(self._client().get_session(self.state.session_id), cancellation_token)
        except NotFoundError as exc:
            return not isinstance(exc, PoolFullError)
        return False

    # ----------------------------------------------------------------- set-up

    def _setup_due(self) -> bool:
        """Whether the set-up must run before the next block."""
        return not self.state.set_up or self.state.reset_pending

    def _with_setup(self, code: str) -> str | None:
        """``code`` carrying the set-up in its own request, when the set-up is due (or the session
        may have been replaced while idle) and can travel that way; else None.

        Only the working directory travels with a block: injected functions (whose loading can
        fail on its own) and a pending reset go in requests of their own.
        """
        settings = self.settings
        if settings.shell_pool or settings.functions is not None or self.state.reset_pending:
            return None
        if self.state.set_up and not self._idle_too_long():
            return None
        return prefixed(code)

    def setup_source(self) -> str:
        """The code that sets an interpreter up: working directory and injected functions.

        Kept apart from sending it, so that it can also travel in front of a block's own code.
        """
        module = self.settings.functions
        return setup_code(
            self.settings.functions_module if module else None,
            module.source if module else None,
            module.names if module else (),
        )

    async def ensure_setup(self, cancellation_token: CancellationToken | None) -> bool:
        """Reset (when pending), change to /mnt/data and load the injected functions.

        Nothing is probed first: whether the session was replaced while idle is told by the
        block's own answer (:meth:`run_block`). Returns False (kept for callers that report a
        replacement found on the way).
        """
        if not self._setup_due():
            return False
        if self.settings.shell_pool:
            # Commands start in /mnt/data and share nothing but files: there is nothing to set up.
            self.state = replace(self.state, set_up=True, reset_pending=False)
            return False
        replaced = False
        if self.state.reset_pending:
            reset = await self._execute(reset_code(), cancellation_token)
            if not reset.succeeded and not reset.state_lost:
                raise RuntimeError(
                    f"Resetting the interpreter of session {self.state.session_id!r} failed: "
                    f"{(reset.stderr or reset.error_message or '').strip()}"
                )
            self.state = replace(self.state, reset_pending=False)
        if self.settings.required_packages and not self.state.packages_checked:
            await self._check_required_packages(cancellation_token)
        outcome = await self._execute(self.setup_source(), cancellation_token)
        if not outcome.succeeded:
            detail = (outcome.stderr or outcome.error_message or outcome.stdout).strip()
            if self.settings.functions is not None:
                raise ValueError(f"Functions failed to load: {detail}")
            raise RuntimeError(f"Failed to set up the working directory in the session: {detail}")
        self.state = replace(self.state, session_guid=outcome.session_guid, set_up=True)
        return replaced

    async def _check_required_packages(self, cancellation_token: CancellationToken | None) -> None:
        available = {normalize_package_name(name) for name in await self.packages(cancellation_token)}
        required = self.settings.required_packages
        missing = sorted(spec for name, spec in required.items() if name not in available)
        if missing:
            raise ValueError(
                "Packages unavailable in environment: "
                + ", ".join(missing)
                + ". The injected functions need them, but the session pool does not have them "
                "installed (a pool's package set is fixed)."
            )
        self.state = replace(self.state, packages_checked=True)

    async def packages(self, cancellation_token: CancellationToken | None) -> frozenset[str]:
        """Names of the distributions in the session: the pool's metadata where the api-version
        has it, else asked of the interpreter (or of ``python3`` on a Shell pool). Cached."""
        if self.state.packages is not None:
            return self.state.packages
        client = self._client()
        names: set[str] = set()
        if self.settings.api_version.supports_session_management:
            try:
                metadata = await linked(client.get_metadata(), cancellation_token)
                names = {package.name for package in metadata.preinstalled_packages if package.name}
            except (UnsupportedOperationError, SessionsHTTPError) as exc:
                logger.debug("Pool metadata unavailable (%s); asking the interpreter", exc)
        if not names and self.settings.shell_pool:
            names = await self._packages_from_shell(cancellation_token)
        elif not names:
            outcome = await self._execute(packages_code(), cancellation_token)
            if not outcome.succeeded or not isinstance(outcome.result, list):
                detail = (outcome.stderr or outcome.error_message or repr(outcome.result)).strip()
                raise ValueError(f"Failed to get list of available packages: {detail}")
            names = {str(name) for name in outcome.result}
        found = frozenset(names)
        self.state = replace(self.state, packages=found)
        return found

    async def _packages_from_shell(self, cancellation_token: CancellationToken | None) -> set[str]:
        command = "python3 -c " + shlex.quote(
            "import json, importlib.metadata as m; "
            "print(json.dumps(sorted({d.metadata['Name'] or '' for d in m.distributions()} - {''})))"
        )
        with self.naming_session():
            outcome = await linked(
                self._client().execute_shell(
                    self.state.session_id, command, timeout_seconds=self.settings.server_timeout
                ),
                cancellation_token,
            )
        try:
            listed = json.loads(outcome.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            detail = (outcome.stderr or outcome.stdout).strip()
            raise ValueError(f"Failed to get list of available packages: {detail}") from None
        return {str(name) for name in listed}

    # ----------------------------------------------------------------- blocks

    async def run_block(self, code: str, cancellation_token: CancellationToken | None) -> SentBlock:
        """Set the session up where due, send one block and, where the service replaced the session
        under it, set up again and send it once more when that cannot repeat any state.

        Where it can (see :meth:`_with_setup`), the set-up travels in the block's own request: a
        new session's first block is one request. Otherwise the set-up goes first, on its own.
        """
        notes: list[str] = []
        gone = (
            f"The session {self.state.session_id!r} was replaced by the service (its idle timeout expired "
            "or it was deleted), so earlier variables and imports are gone"
        )
        if await self._gone_while_idle(cancellation_token):
            # The cooldown ended the session: bring the checkpoint back before the block runs.
            self.invalidate(Invalidation.SESSION_GONE)
            await self.ensure_setup(cancellation_token)
            note = await self._restore_after_loss(cancellation_token, before_block=True)
            notes.append(f"The session {self.state.session_id!r} had ended (its idle timeout expired).")
            if note is not None:
                notes.append(note)
        idle = self._idle_too_long()
        carrying = self._with_setup(code)
        replaced = False
        if carrying is None:
            replaced = await self.ensure_setup(cancellation_token)
        try:
            try:
                result = await self._send(carrying or code, cancellation_token)
                if carrying is not None:
                    result, replaced = self._took_setup(result, gone, notes)
            except SessionsHTTPError as exc:
                if not _session_gone(exc):
                    raise
                # The request never ran: set the new session up and send the block once more.
                notes.append(
                    f"The session {self.state.session_id!r} no longer existed; a new one was set up "
                    "(working directory, injected functions) and the block was sent again."
                )
                self.invalidate(Invalidation.SESSION_GONE)
                await self.ensure_setup(cancellation_token)
                note = await self._restore_after_loss(cancellation_token, before_block=True)
                if note is not None:
                    notes.append(note)
                result = await self._send(code, cancellation_token)
            # After an idle gap a block failing for want of the injected functions says the
            # interpreter is new even where the service names no incarnation.
            new_incarnation = self._is_replaced(result) or (idle and self._failed_for_missing_setup(result))
            if carrying is None and new_incarnation:
                # The block ran in a new incarnation of the session that was never set up.
                replaced = True
                self.invalidate(Invalidation.INTERPRETER_REPLACED)
                if self._failed_for_missing_setup(result):
                    # It failed only for want of the injected functions, in a fresh interpreter:
                    # sending it again after the setup cannot repeat any interpreter state.
                    await self.ensure_setup(cancellation_token)
                    result = await self._send(code, cancellation_token)
                    notes.append(
                        f"{gone}; this block first ran without the injected functions, so they were "
                        "set up again and the block was sent once more."
                    )
                else:
                    notes.append(
                        f"{gone}; this block ran in the new session before the working directory and "
                        "injected functions were set up again (they are before the next block)."
                    )
        except ExecutionTimeoutError as exc:
            return SentBlock(result=None, gave_up=exc, notes=tuple(notes), replaced=replaced)
        self.answered()
        if result.state_lost:
            self.invalidate(Invalidation.INTERPRETER_REPLACED)
        if replaced or result.state_lost:
            # The block met a session without the earlier state: it has run, so it is not sent
            # again (that could repeat its effects); the model is told to.
            note = await self._restore_after_loss(cancellation_token, before_block=False)
            if note is not None:
                notes.append(note)
        return SentBlock(result=result, gave_up=None, notes=tuple(notes), replaced=replaced)

    def _took_setup(
        self, result: ExecutionResult, gone: str, notes: list[str]
    ) -> tuple[ExecutionResult, bool]:
        """Read the answer of a block that carried the set-up: its text as the block's own, the set-up
        done unless the cell did not compile, and whether it ran in a new incarnation."""
        result = replace(
            result,
            stderr=unprefixed_text(result.stderr),
            error_message=unprefixed_text(result.error_message)
            if result.error_message
            else result.error_message,
        )
        if not result.succeeded and compile_failed(result.error_code, result.error_message, result.stderr):
            return result, False
        replaced = self._is_replaced(result)
        if replaced:
            notes.append(f"{gone}; the working directory was set up again with this block.")
        self.state = replace(self.state, set_up=True, session_guid=result.session_guid)
        return result, replaced


async def linked(awaitable: Awaitable[T], cancellation_token: CancellationToken | None) -> T:
    """Await ``awaitable`` as a task the token can cancel at once."""
    task = asyncio.ensure_future(awaitable)
    if cancellation_token is not None:
        cancellation_token.link_future(task)
    return await task


def _session_gone(exc: SessionsHTTPError) -> bool:
    if isinstance(exc, PoolFullError):
        return False
    code = (exc.error_code or "").lower()
    return code in _SESSION_GONE_CODES

"""The executor's session state: one frozen value, replaced whole by ``invalidate(reason)``."""

from __future__ import annotations

import dataclasses

import pytest

from autogen_aca_sessions.client import ApiVersion, SessionsClient
from autogen_aca_sessions.executor._session import (
    Invalidation,
    KeeperSettings,
    SessionKeeper,
    SessionState,
)


def keeper(caller_session_id: str | None = None, *, shell_pool: bool = False) -> SessionKeeper:
    settings = KeeperSettings(
        caller_session_id=caller_session_id,
        api_version=ApiVersion.V2024_10_02_PREVIEW,
        shell_pool=shell_pool,
        server_timeout=60,
        functions_module="functions",
        functions=None,
        required_packages={},
    )

    def no_client() -> SessionsClient:
        raise AssertionError("no request is expected")

    made = SessionKeeper(settings, client=no_client, clock=lambda: 7.0)
    made.touch()
    made.state = dataclasses.replace(
        made.state, set_up=True, session_guid="g1", packages=frozenset({"numpy"}), packages_checked=True
    )
    return made


def test_the_state_cannot_be_changed_in_place() -> None:
    state = SessionState(session_id="s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.set_up = True  # type: ignore[misc]


def test_a_replaced_interpreter_needs_the_set_up_again_but_keeps_the_pools_packages() -> None:
    target = keeper("mine")
    target.invalidate(Invalidation.INTERPRETER_REPLACED)
    state = target.state
    assert (state.set_up, state.packages, state.packages_checked) == (False, frozenset({"numpy"}), True)
    assert (state.session_id, state.used, state.session_guid) == ("mine", True, "g1")


def test_a_vanished_session_forgets_its_packages_too() -> None:
    target = keeper("mine")
    target.invalidate(Invalidation.SESSION_GONE)
    state = target.state
    assert (state.set_up, state.packages, state.packages_checked) == (False, None, False)
    assert state.used


@pytest.mark.parametrize(
    "reason", [Invalidation.RESTARTED, Invalidation.RESTARTED_UNDELETED, Invalidation.RELEASED]
)
def test_an_own_identifier_is_never_used_again(reason: Invalidation) -> None:
    target = keeper()
    before = target.state.session_id
    target.invalidate(reason)
    assert target.state.session_id != before
    assert target.state == SessionState(session_id=target.state.session_id, last_request_at=7.0)


def test_a_callers_undeleted_session_gets_its_namespace_reset() -> None:
    target = keeper("mine")
    target.invalidate(Invalidation.RESTARTED_UNDELETED)
    state = target.state
    assert (state.session_id, state.used, state.reset_pending, state.set_up) == ("mine", True, True, False)
    assert (state.session_guid, state.packages) == (None, None)


def test_a_shell_pool_has_no_namespace_to_reset() -> None:
    target = keeper("mine", shell_pool=True)
    target.invalidate(Invalidation.RESTARTED_UNDELETED)
    assert not target.state.reset_pending


def test_a_released_callers_session_starts_over_under_the_same_identifier() -> None:
    target = keeper("mine")
    target.invalidate(Invalidation.RELEASED)
    assert target.state == SessionState(session_id="mine", last_request_at=7.0)

"""Checkpoints of an Agent Framework conversation's dynamic session (``DynamicSessions.checkpoint``
/ ``restore``) on the real local pool: the work of one conversation comes back in another one,
with another ``DynamicSessions`` (as in a new process), the injected functions set up again."""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

pytest.importorskip("agent_framework")

from agent_framework import AgentSession

from autogen_aca_sessions.agent_framework import (
    CheckpointError,
    CheckpointSessionGoneError,
    CheckpointTamperedError,
    DynamicSessions,
    DynamicSessionsConfig,
    ExecuteCodeTool,
)
from autogen_aca_sessions.local import LocalSessionPool
from tests.af_adapter._helpers import call, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")
POOL_OPTIONS = {"ready_sessions": 1}
KEY = b"af-checkpoint-key"


def tax(amount: float) -> float:
    """A fifth of the amount."""
    return round(amount * 0.2, 2)


@pytest_asyncio.fixture(loop_scope="module")
async def sessions(module_pool: LocalSessionPool) -> AsyncIterator[DynamicSessions]:
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint)
    async with DynamicSessions(config, credential=module_pool.async_credential, functions=[tax]) as owned:
        yield owned


async def test_a_conversations_work_comes_back_in_another_conversation_after_a_restart(
    module_pool: LocalSessionPool, sessions: DynamicSessions, tmp_path: Path
) -> None:
    conversation = AgentSession()
    code = ExecuteCodeTool(sessions)
    ran = await call(
        code,
        conversation,
        code="prices = {'tea': 3.5, 'cake': 4.25}\ndef bill():\n    return tax(sum(prices.values()))\n"
        "open('order.txt', 'w').write('tea, cake')",
    )
    assert "status: succeeded" in text_of(ran)
    saved = await sessions.checkpoint(conversation, tmp_path / "conversation.ckpt", key=KEY)
    assert {"prices", "bill"} <= set(saved.variables)
    assert "tax" not in saved.variables
    assert "order.txt" in saved.files

    # Another DynamicSessions (as a new process would have) and a new conversation.
    config = DynamicSessionsConfig(pool_management_endpoint=module_pool.endpoint)
    async with DynamicSessions(config, credential=module_pool.async_credential, functions=[tax]) as later:
        resumed = AgentSession()
        restored = await later.restore(resumed, tmp_path / "conversation.ckpt", key=KEY)
        assert {"prices", "bill"} <= set(restored.variables)
        assert later.identifier_for(resumed) != sessions.identifier_for(conversation)
        after = await call(ExecuteCodeTool(later), resumed, code="print(bill(), open('order.txt').read())")
    assert "stdout:\n1.55 tea, cake" in text_of(after)


async def test_a_changed_checkpoint_is_refused_before_any_session_exists(
    module_pool: LocalSessionPool, sessions: DynamicSessions, tmp_path: Path
) -> None:
    conversation = AgentSession()
    await call(ExecuteCodeTool(sessions), conversation, code="secret = 41")
    path = tmp_path / "a.ckpt"
    await sessions.checkpoint(conversation, path, key=KEY)
    changed = tmp_path / "changed.ckpt"
    with zipfile.ZipFile(path) as original, zipfile.ZipFile(changed, "w") as out:
        for name in original.namelist():
            data = original.read(name)
            out.writestr(name, data.replace(b"secret", b"sekret") if name == "manifest.json" else data)

    target = AgentSession()
    with pytest.raises(CheckpointTamperedError):
        await sessions.restore(target, changed, key=KEY)
    assert module_pool.manager.get(sessions.identifier_for(target)) is None


async def test_a_conversation_whose_session_is_gone_or_never_ran_has_nothing_to_checkpoint(
    module_pool: LocalSessionPool, sessions: DynamicSessions, tmp_path: Path
) -> None:
    with pytest.raises(CheckpointError, match="run nothing yet"):
        await sessions.checkpoint(AgentSession(), tmp_path / "none.ckpt", key=KEY)

    conversation = AgentSession()
    await call(ExecuteCodeTool(sessions), conversation, code="work = 1")
    assert await module_pool.manager.delete(sessions.identifier_for(conversation))
    with pytest.raises(CheckpointSessionGoneError, match="no longer exists"):
        await sessions.checkpoint(conversation, tmp_path / "gone.ckpt", key=KEY)
    assert not (tmp_path / "gone.ckpt").exists()
    # The conversation goes on in a new session, set up again (injected functions included).
    after = await call(ExecuteCodeTool(sessions), conversation, code="print(tax(10), 'work' in globals())")
    assert "stdout:\n2.0 False" in text_of(after)


async def test_with_restore_on_loss_a_lost_session_gets_the_last_checkpoint_back_and_the_model_is_told(
    module_pool: LocalSessionPool, tmp_path: Path
) -> None:
    config = DynamicSessionsConfig(
        pool_management_endpoint=module_pool.endpoint, restore_checkpoint_on_loss=True
    )
    async with DynamicSessions(config, credential=module_pool.async_credential, functions=[tax]) as owned:
        conversation = AgentSession()
        code = ExecuteCodeTool(owned)
        await call(code, conversation, code="total = 41")
        await owned.checkpoint(conversation, tmp_path / "last.ckpt", key=KEY)
        # The pool ends the session (its cooldown, or a delete); the next call meets a new one.
        assert await module_pool.manager.delete(owned.identifier_for(conversation))
        met = text_of(await call(code, conversation, code="print(total)"))
        again = text_of(await call(code, conversation, code="print(total + 1, tax(10))"))
    assert "NameError" in met
    assert "The last checkpoint was restored after this call ran: variables total" in met
    assert "stdout:\n42 2.0" in again

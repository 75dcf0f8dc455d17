"""``execute_shell`` with a program and its arguments: ``execCommandAndArgs`` on 2025-10,
the same words quoted into ``shellCommand`` before."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

import pytest

from autogen_aca_sessions.client import SessionsClient
from tests.unit.conftest import FakePool

Factory = Callable[..., SessionsClient]
ARGV = ["python3", "-c", "import sys; print(sys.argv)", "it's", "a b"]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2025-10-02-preview", {"execCommandAndArgs": ARGV, "outputStreamsMaxLength": 9000}),
        ("2025-02-02-preview", {"shellCommand": shlex.join(ARGV)}),
    ],
)
async def test_an_argument_list_is_sent_as_the_version_takes_it(
    version: str, expected: dict[str, Any], make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"id": "e", "status": "0", "result": {"stdout": "", "stderr": ""}})
    client = make_client(api_version=version, max_output_chars=9000)
    await client.execute_shell("sess-1", tuple(ARGV), timeout_seconds=30)
    assert len(fake_pool.requests) == 1
    assert fake_pool.requests[0].json() == {
        "executionType": "Synchronous",
        "timeoutInSeconds": 30,
        **expected,
    }


@pytest.mark.parametrize("bad", [[], ["ls", 3], [b"ls"]])
async def test_a_bad_argument_list_is_refused_locally(
    bad: Any, make_client: Factory, fake_pool: FakePool
) -> None:
    with pytest.raises(TypeError, match="sequence of strings"):
        await make_client().execute_shell("sess-1", bad)
    assert fake_pool.requests == []

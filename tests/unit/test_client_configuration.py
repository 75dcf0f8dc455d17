"""Settings that cannot go into a request are refused up front, with a typed error naming them."""

from __future__ import annotations

import pytest

from autogen_aca_sessions.client import ConfigurationError, SessionsClient, SessionsError

ENDPOINT = "http://127.0.0.1:9/subscriptions/s/resourceGroups/r/sessionPools/p"
SECRET = "s3cret-key"


@pytest.mark.parametrize(
    ("token", "said"),
    [
        (SECRET + "\n", "a newline at character 11 (at its start or end, as when pasted from a file"),
        (SECRET + "\r\n", "a carriage return"),
        ("s3cret\x00key", "a NUL byte"),
        ("s3cret\x1bkey", "U+001B"),
        ("s3cret key", "a space"),
        ("s3crét", "a non-ASCII character"),
    ],
)
def test_a_token_string_with_a_control_character_or_space_is_refused_without_echoing_it(
    token: str, said: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SessionsClient(ENDPOINT, token)

    assert caught.value.setting.startswith("credential")
    assert said in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert isinstance(caught.value, SessionsError)
    assert isinstance(caught.value, ValueError)  # what callers caught before


async def test_a_credential_returning_a_token_with_a_newline_is_refused_before_sending() -> None:
    async with SessionsClient(ENDPOINT, lambda: SECRET + "\n", max_retries=0) as client:
        with pytest.raises(ConfigurationError, match="a newline") as caught:
            await client.execute("session", "1")

    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "endpoint", [ENDPOINT + "\n", "http://127.0.0.1:9/sub\tscriptions/p", "http://127.0.0.1:9/a b/p"]
)
def test_an_endpoint_with_a_control_character_or_space_is_refused(endpoint: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SessionsClient(endpoint, SECRET)

    assert caught.value.setting == "pool_management_endpoint"


@pytest.mark.parametrize("identifier", ["abc\n", "a\tb", "a\x7fb"])
async def test_a_session_identifier_with_a_control_character_is_refused(identifier: str) -> None:
    async with SessionsClient(ENDPOINT, SECRET, max_retries=0) as client:
        with pytest.raises(ConfigurationError) as caught:
            await client.execute(identifier, "1")

    assert caught.value.setting == "session identifier"


def test_an_unknown_api_version_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="supported: 2024-02-02-preview") as caught:
        SessionsClient(ENDPOINT, SECRET, api_version="2025-10-02-preview\n")

    assert caught.value.setting == "api_version"


def test_a_user_agent_with_a_newline_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="user_agent"):
        SessionsClient(ENDPOINT, SECRET, user_agent="my-app\nX-Injected: 1")

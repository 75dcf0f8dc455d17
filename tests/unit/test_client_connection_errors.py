"""The kinds of transport failure are types (never sent, may have run, upload outcome unknown),
each still a ``SessionsConnectionError`` and a builtin ``ConnectionError`` for code written
against the single class; the tests of each failure (test_client_retries, test_client_lifecycle)
pin which kind it raises."""

from __future__ import annotations

from autogen_aca_sessions import PoolFullError as TopLevelPoolFullError
from autogen_aca_sessions.client import (
    PoolFullError,
    RequestMayHaveRunError,
    RequestNotSentError,
    SessionsConnectionError,
    UploadOutcomeUnknownError,
)


def test_every_kind_is_a_connection_error() -> None:
    for kind in (RequestNotSentError, RequestMayHaveRunError, UploadOutcomeUnknownError):
        assert issubclass(kind, SessionsConnectionError)
        assert issubclass(kind, ConnectionError)
    assert issubclass(UploadOutcomeUnknownError, RequestMayHaveRunError)
    assert not issubclass(RequestNotSentError, RequestMayHaveRunError)


def test_the_top_level_pool_full_error_is_the_clients() -> None:
    assert TopLevelPoolFullError is PoolFullError

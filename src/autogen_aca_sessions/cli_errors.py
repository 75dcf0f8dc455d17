"""What ``aca-sessions exec`` prints when a request fails: one line, the advice first.

The client's exceptions are written for Python callers (their text names methods and settings of
the Python API, and carries the whole response body). On the command line the user needs to know
what to change in the command, so each failure becomes one line: what went wrong and what to do,
then, in brackets, the HTTP status, the service's error code and the service's own message, once.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from autogen_aca_sessions.client import (
    AuthenticationError,
    CredentialError,
    NotFoundError,
    PermissionDeniedError,
    PoolFullError,
    ServiceUnavailableError,
    SessionsConnectionError,
    SessionsError,
    SessionsHTTPError,
    ThrottledError,
)
from autogen_aca_sessions.client.errors import left_no_session

__all__ = [
    "EXECUTOR_ROLE",
    "LOCAL_POOL_WANTS_A_KEY",
    "POOL_ENDPOINT_SHAPE",
    "Failure",
    "KeySource",
    "classify",
    "describe_failure",
    "is_local_endpoint",
    "nothing_was_created",
]

EXECUTOR_ROLE = "Azure ContainerApps Session Executor"
POOL_ENDPOINT_SHAPE = ".../subscriptions/S/resourceGroups/R/sessionPools/P"
LOCAL_POOL_WANTS_A_KEY = "a local pool wants --api-key (or ACA_SESSIONS_API_KEY)"

# Operation paths users paste onto the endpoint (the seed's /python/execute among them); the
# client appends the operation itself.
_OPERATION_SUFFIX = re.compile(
    r"/(?:python/execute|code/execute|executions(?:/[^/]*)?|files(?:/.*)?|session|listsessions|metadata"
    r"|mcp)/?$",
    re.IGNORECASE,
)
_ARM_RESOURCE_PATH = re.compile(r"/providers/Microsoft\.App/sessionPools/", re.IGNORECASE)
_SANDBOX_GROUP_PATH = re.compile(r"/sandboxGroups/", re.IGNORECASE)
_SERVICE_MESSAGE_CHARS = 300


class Failure(enum.Enum):
    """What kind of failure a ``SessionsError`` is, as far as the command line is concerned."""

    CREDENTIAL = "credential"
    """No token could be obtained (DefaultAzureCredential not signed in); nothing was sent."""
    AUTHENTICATION = "authentication"
    """401: the key or token was refused."""
    PERMISSION = "permission"
    """403: the identity lacks the executor role on the pool."""
    POOL_FULL = "pool full"
    """The pool is at its maximum of concurrent sessions."""
    POOL_NOT_FOUND = "pool not found"
    """404 that is not "pool full": nothing serves a pool at this URL."""
    BUSY = "busy"
    """429 or 503 after the client's retries."""
    UNTRUSTED_CERTIFICATE = "untrusted certificate"
    """TLS verification failed."""
    UNREACHABLE = "unreachable"
    """No HTTP answer at all."""
    OTHER = "other"
    """Anything else the pool refused."""


class KeySource(enum.Enum):
    """Where the CLI's credential came from, so that advice names the right knob."""

    FLAG = "--api-key"
    """The ``--api-key`` flag."""
    ENVIRONMENT = "$ACA_SESSIONS_API_KEY"
    """The ``ACA_SESSIONS_API_KEY`` variable."""
    AZURE = "DefaultAzureCredential"
    """No key: azure-identity's ``DefaultAzureCredential``."""


@dataclass(frozen=True)
class _Detail:
    status: int | None
    """HTTP status, when the service answered."""
    code: str | None
    """The service's error code."""
    said: str
    """The service's own message (or the transport's), shortened, on one line."""


def is_local_endpoint(endpoint: str) -> bool:
    """Whether ``endpoint`` names this machine (a pool from ``aca-sessions serve``, never Azure)."""
    try:
        host = urlsplit(endpoint.strip()).hostname
    except ValueError:
        return False  # a malformed URL: the client names what is wrong with it
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def classify(exc: SessionsError) -> Failure:
    """The command-line kind of ``exc``."""
    if isinstance(exc, CredentialError):
        return Failure.CREDENTIAL
    if isinstance(exc, AuthenticationError):
        return Failure.AUTHENTICATION
    if isinstance(exc, PermissionDeniedError):
        return Failure.PERMISSION
    if isinstance(exc, PoolFullError):
        return Failure.POOL_FULL
    if isinstance(exc, NotFoundError):
        # PoolNotFoundError, or a 404 on the one call exec makes: either way no pool answered.
        return Failure.POOL_NOT_FOUND
    if isinstance(exc, ThrottledError | ServiceUnavailableError):
        return Failure.BUSY
    if isinstance(exc, SessionsConnectionError):
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return Failure.UNTRUSTED_CERTIFICATE
        return Failure.UNREACHABLE
    return Failure.OTHER


def nothing_was_created(exc: SessionsError) -> bool:
    """Whether the failed call certainly created no session, so there is none to delete.

    The client's rule (the executor's too); deleting after these would only send a request that
    fails the same way (a wrong key twice).
    """
    return left_no_session(exc)


def describe_failure(exc: SessionsError, endpoint: str, key_source: KeySource) -> str:
    """One line for ``exc``: what to do first, then the service's status, code and message."""
    kind = classify(exc)
    if kind is Failure.CREDENTIAL:
        return (
            "no Azure token: DefaultAzureCredential could not sign in; run `az login` (or use a managed "
            f"identity or AZURE_* variables); {LOCAL_POOL_WANTS_A_KEY}" + _bracketed(_credential_detail(exc))
        )
    if kind is Failure.AUTHENTICATION:
        if key_source is KeySource.AZURE:
            advice = (
                "the pool refused the Azure token; sign in to the pool's tenant (az login), "
                f"and note that {LOCAL_POOL_WANTS_A_KEY}"
            )
        else:
            advice = (
                f"the pool refused the key from {key_source.value}; "
                "pass the key the pool printed (`aca-sessions serve` shows it)"
            )
        return advice + _bracketed(_detail(exc))
    if kind is Failure.PERMISSION:
        return (
            f"the identity lacks the role '{EXECUTOR_ROLE}' on the pool; grant it: az role assignment "
            f"create --role '{EXECUTOR_ROLE}' --assignee <object-id> --scope <session pool resource id>"
            + _bracketed(_detail(exc))
        )
    if kind is Failure.POOL_FULL:
        return (
            "the pool is at its maximum of concurrent sessions; delete idle sessions, wait for their "
            "cooldown to end, or raise the pool's maxConcurrentSessions" + _bracketed(_detail(exc))
        )
    if kind is Failure.POOL_NOT_FOUND:
        return (
            f"no session pool at this endpoint; check the URL (a pool endpoint looks like "
            f"{POOL_ENDPOINT_SHAPE}){_endpoint_advice(endpoint)}" + _bracketed(_detail(exc))
        )
    if kind is Failure.BUSY:
        return "the pool is busy and kept refusing after retries; try again later" + _bracketed(_detail(exc))
    if kind is Failure.UNTRUSTED_CERTIFICATE:
        return (
            "the pool's certificate is not trusted; for a local pool started with --tls pass "
            "--cafile <the certificate it printed> (or set SSL_CERT_FILE)" + _bracketed(_detail(exc))
        )
    if kind is Failure.UNREACHABLE:
        return (
            "could not reach the pool; is the endpoint right and the pool running? "
            "(`aca-sessions serve` prints its endpoint)" + _bracketed(_detail(exc))
        )
    return "the pool refused the request" + _bracketed(_detail(exc))


def _endpoint_advice(endpoint: str) -> str:
    """A further hint for endpoints that are a known wrong shape."""
    try:
        path = urlsplit(endpoint.strip()).path
    except ValueError:
        return ""
    if not path.strip("/"):
        return (
            "; this is a server's root (the management plane's base URL), not a pool: use the "
            "pool's poolManagementEndpoint"
        )
    if _SANDBOX_GROUP_PATH.search(path):
        # The same server serves both, and a sandbox group's URL looks like a pool's to a new user.
        return (
            "; this is a sandbox group (ACA Sandboxes), not a session pool: exec runs code in "
            "session pools only; reach a sandbox with the azure-containerapps-sandbox SDK or SandboxesClient"
        )
    if _ARM_RESOURCE_PATH.search(path):
        return (
            "; this is the pool's ARM resource id, not its endpoint: use the pool's "
            "properties.poolManagementEndpoint"
        )
    suffix = _OPERATION_SUFFIX.search(path)
    if suffix:
        return f"; drop {suffix.group(0).rstrip('/')!r} from it: the operation path is added for you"
    return ""


def _detail(exc: SessionsError) -> _Detail:
    if isinstance(exc, SessionsHTTPError):
        return _Detail(exc.status_code, exc.error_code, _service_message(exc))
    return _Detail(None, None, _one_line(str(exc)))


def _credential_detail(exc: SessionsError) -> _Detail:
    # azure-identity lists every credential it tried over a dozen lines; the first says enough.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return _Detail(None, None, _one_line(first))


def _service_message(exc: SessionsHTTPError) -> str:
    """The service's own words: ``error.message`` (or ``message``) of the body, else its text."""
    if exc.service_message is not None:
        return _one_line(exc.service_message)
    body = exc.body.strip()
    said = ""
    if body:
        try:
            document = json.loads(body)
        except ValueError:
            said = body if not body.startswith("<") else ""  # an HTML error page says nothing useful
        else:
            said = _message_of(document)
    return _one_line(said)


def _message_of(document: object) -> str:
    if not isinstance(document, dict):
        return ""
    error = document.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    for key in ("message", "Message", "detail", "title"):
        if isinstance(document.get(key), str):
            return str(document[key])
    return ""


def _bracketed(detail: _Detail) -> str:
    parts = []
    if detail.status is not None:
        parts.append(f"HTTP {detail.status}")
    if detail.code:
        parts.append(detail.code)
    head = " ".join(parts)
    if head and detail.said:
        return f" [{head}: {detail.said}]"
    if head or detail.said:
        return f" [{head or detail.said}]"
    return ""


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _SERVICE_MESSAGE_CHARS:
        text = text[:_SERVICE_MESSAGE_CHARS] + "..."
    return text

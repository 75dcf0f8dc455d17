"""Refusals of the local pool: authentication, api-versions, identifiers, bodies, routes, limits."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
import pytest
from _http_helpers import ALL_VERSIONS, CURRENT_VERSIONS, LEGACY_VERSIONS, call, current_body

from autogen_aca_sessions.local import LocalSessionPool

pytestmark = pytest.mark.asyncio(loop_scope="module")

POOL_OPTIONS = {"ready_sessions": 1, "max_execution_seconds": 30, "max_json_bytes": 64 * 1024}

V = "2025-10-02-preview"


# ---------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-key", "Basic dXNlcjpwYXNz", "bearer  "],
)
@pytest.mark.parametrize(
    ("method", "op"),
    [("POST", "executions"), ("GET", "files"), ("GET", "metadata"), ("GET", "no/such/route")],
)
async def test_requests_without_the_pool_key_are_401_with_a_challenge(
    module_pool: LocalSessionPool, authorization: str | None, method: str, op: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with aiohttp.ClientSession(headers=headers) as http:
        reply = await call(
            http, method, f"{module_pool.endpoint}/{op}", version=V, identifier="sess", json=current_body("1")
        )
    assert reply.status == 401
    err = reply.error
    assert err["code"] in ("AuthenticationFailed", "InvalidAuthenticationToken")
    assert err["target"] == "Authorization"
    assert reply.headers["WWW-Authenticate"].startswith("Bearer ")


async def test_a_refused_request_creates_no_session(module_pool: LocalSessionPool) -> None:
    identifier = str(uuid.uuid4())
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer nope"}) as http:
        reply = await call(
            http,
            "POST",
            f"{module_pool.endpoint}/executions",
            version=V,
            identifier=identifier,
            json=current_body("1"),
        )
    assert reply.status == 401
    assert module_pool.manager.get(identifier) is None


async def test_the_key_is_accepted_with_any_scheme_casing(
    module_pool: LocalSessionPool, session_id: str
) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"bearer {module_pool.api_key}"}) as http:
        reply = await call(http, "GET", f"{module_pool.endpoint}/files", version=V, identifier=session_id)
    assert reply.status == 200


# ---------------------------------------------------------------------------- api-version


async def test_missing_api_version_is_400(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession
) -> None:
    reply = await call(module_http, "GET", f"{module_pool.endpoint}/files", identifier="abc")
    assert reply.status == 400
    err = reply.error
    assert err["code"] == "MissingApiVersionParameter"
    assert err["target"] == "api-version"


@pytest.mark.parametrize("version", ["2023-01-01", "2025-10-02", "latest", " "])
async def test_unknown_api_version_is_400_naming_the_supported_ones(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, version: str
) -> None:
    reply = await call(module_http, "GET", f"{module_pool.endpoint}/files", version=version, identifier="abc")
    assert reply.status == 400
    err = reply.error
    assert err["code"] in ("UnsupportedApiVersion", "MissingApiVersionParameter")
    assert err["target"] == "api-version"
    assert all(v in err["message"] for v in ALL_VERSIONS)


async def test_api_version_compares_case_insensitively(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    reply = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files",
        version="2025-10-02-PREVIEW",
        identifier=session_id,
    )
    assert reply.status == 200


# ---------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    "identifier",
    ["", "has space", "a/b", "a\\b", "x" * 257, "tab\tin", "caf\u00e9", "ctl\x01", "new\nline"],
)
@pytest.mark.parametrize(("method", "op"), [("POST", "executions"), ("GET", "files"), ("GET", "session")])
async def test_bad_identifier_is_400_with_target_identifier(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, identifier: str, method: str, op: str
) -> None:
    reply = await call(
        module_http,
        method,
        f"{module_pool.endpoint}/{op}",
        version=V,
        identifier=identifier,
        json=current_body("1"),
    )
    assert reply.status == 400
    err = reply.error
    assert err["code"] == "SessionRequestValidationFailed"
    assert err["target"] == "identifier"
    assert module_pool.manager.get(identifier) is None


@pytest.mark.parametrize(
    "identifier",
    ["0b8e2a5c-6f1d-4c3e-9a7b-2d4f6e8a1c3b", "x" * 256, "a", "A-b_c.d~!$&'()*+,;=:@%#?[]{}|^`\"<>"],
)
async def test_acceptable_identifiers_pass_validation(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, identifier: str
) -> None:
    # GET /session never creates: a 404 "not found" proves the identifier passed validation.
    reply = await call(
        module_http, "GET", f"{module_pool.endpoint}/session", version=V, identifier=identifier
    )
    assert reply.status == 404
    assert reply.error["code"] == "SessionWithIdentifierNotFound"


@pytest.mark.parametrize(
    ("method", "op", "version"),
    [
        ("POST", "executions", V),
        ("POST", "code/execute", LEGACY_VERSIONS[0]),
        ("GET", "files", V),
        ("GET", "files", LEGACY_VERSIONS[1]),
        ("GET", "session", V),
        ("DELETE", "session", V),
        ("GET", "executions/abc", V),
    ],
)
async def test_missing_identifier_is_400(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, method: str, op: str, version: str
) -> None:
    reply = await call(
        module_http, method, f"{module_pool.endpoint}/{op}", version=version, json=current_body("1")
    )
    assert reply.status == 400
    assert reply.error["target"] == "identifier"


# ---------------------------------------------------------------------------- bodies

BAD_BODIES: list[tuple[str, str | None]] = [
    ("", "body"),
    ("{", "body"),
    ("not json at all", "body"),
    ("[]", "body"),
    ('"code"', "body"),
    ("null", "body"),
    ("42", "body"),
    ('{"properties": 5}', "properties"),
    ("{}", "code"),
    ('{"code": null}', "code"),
    ('{"code": 5}', "code"),
    ('{"code": ["print(1)"]}', "code"),
    ('{"code": "1", "timeoutInSeconds": 0}', "timeoutInSeconds"),
    ('{"code": "1", "timeoutInSeconds": -5}', "timeoutInSeconds"),
    ('{"code": "1", "timeoutInSeconds": "60"}', "timeoutInSeconds"),
    ('{"code": "1", "timeoutInSeconds": 1.5}', "timeoutInSeconds"),
    ('{"code": "1", "timeoutInSeconds": true}', "timeoutInSeconds"),
    ('{"code": "1", "timeoutInSeconds": []}', "timeoutInSeconds"),
    ('{"code": "1", "codeInputType": "Remote"}', "codeInputType"),
    ('{"code": "1", "codeInputType": 3}', "codeInputType"),
    ('{"code": "1", "executionType": "Later"}', "executionType"),
    ('{"code": "1", "executionType": false}', "executionType"),
    ('{"code": "!!!", "codeInputType": "InlineBase64"}', "code"),
    ('{"code": "1\\u0000"}', "code"),
]


@pytest.mark.parametrize(("raw", "target"), BAD_BODIES)
async def test_malformed_execute_body_is_400_naming_the_field(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, raw: str, target: str
) -> None:
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/executions",
        version=V,
        identifier=session_id,
        data=raw.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 400, reply.body
    err = reply.error
    assert err["target"] == target
    assert err["code"] in ("SessionRequestValidationFailed", "InvalidRequestContent")


@pytest.mark.parametrize(
    ("raw", "target"),
    # InlineBase64 is not a legacy input type at all (refused on codeInputType instead).
    [b for b in BAD_BODIES if b[1] not in ("body", "properties") and "InlineBase64" not in b[0]],
)
async def test_malformed_legacy_body_is_400_naming_the_field(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, raw: str, target: str
) -> None:
    fields: dict[str, Any] = json.loads(raw)
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/code/execute",
        version=LEGACY_VERSIONS[0],
        identifier=session_id,
        json={"properties": fields},
    )
    assert reply.status == 400, reply.body
    assert reply.error["target"] == target


@pytest.mark.parametrize(
    ("fields", "target"),
    [
        ({"outputStreamsMaxLength": -1}, "outputStreamsMaxLength"),
        ({"outputStreamsMaxLength": "big"}, "outputStreamsMaxLength"),
        ({"useEmptyKernel": "yes"}, "useEmptyKernel"),
    ],
)
async def test_2025_10_fields_are_type_checked(
    module_pool: LocalSessionPool,
    module_http: aiohttp.ClientSession,
    session_id: str,
    fields: dict[str, Any],
    target: str,
) -> None:
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/executions",
        version=V,
        identifier=session_id,
        json=current_body("1", **fields),
    )
    assert reply.status == 400
    assert reply.error["target"] == target


async def test_json_body_over_the_limit_is_413(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    big = current_body("x = '" + "a" * (80 * 1024) + "'")
    reply = await call(
        module_http, "POST", f"{module_pool.endpoint}/executions", version=V, identifier=session_id, json=big
    )
    assert reply.status == 413
    assert reply.error["code"] == "RequestBodyTooLarge"


# ---------------------------------------------------------------------------- routes


@pytest.mark.parametrize("version", [V, None])
async def test_unknown_route_is_404_with_error_body(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, version: str | None
) -> None:
    reply = await call(module_http, "GET", f"{module_pool.endpoint}/no/such/thing", version=version)
    assert reply.status == 404
    assert reply.error["code"] == "NotFound"


async def test_another_pool_name_is_404(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession
) -> None:
    other = module_pool.endpoint.rsplit("/", 1)[0] + "/other-pool"
    reply = await call(module_http, "GET", f"{other}/files", version=V, identifier="abc")
    assert reply.status == 404
    assert reply.error["code"] == "SessionPoolNotFound"


async def test_wrong_method_is_405_with_allow(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession
) -> None:
    reply = await call(module_http, "PUT", f"{module_pool.endpoint}/executions", version=V, identifier="abc")
    assert reply.status == 405
    assert reply.error["code"] == "MethodNotAllowed"
    assert reply.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("method", "op", "version"),
    [
        ("GET", "session", "2024-10-02-preview"),
        ("GET", "listSessions", "2024-10-02-preview"),
        ("GET", "metadata", LEGACY_VERSIONS[1]),
        ("GET", "files/a.txt", LEGACY_VERSIONS[0]),
        ("DELETE", "files/a.txt", LEGACY_VERSIONS[0]),
        ("POST", "code/execute", V),
        ("POST", "executions", LEGACY_VERSIONS[1]),
        ("POST", "files/upload", CURRENT_VERSIONS[0]),
    ],
)
async def test_operation_of_another_api_version_is_404_naming_where_it_exists(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, method: str, op: str, version: str
) -> None:
    reply = await call(module_http, method, f"{module_pool.endpoint}/{op}", version=version, identifier="abc")
    assert reply.status == 404
    err = reply.error
    assert err["code"] == "OperationNotSupported"
    assert version in err["message"]


async def test_runtime_failure_becomes_a_500_error_body(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(identifier: str) -> Any:
        raise RuntimeError("runtime exploded")

    monkeypatch.setattr(module_pool.manager, "get_or_create", broken)
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/executions",
        version=V,
        identifier="abc",
        json=current_body("1"),
    )
    assert reply.status == 500
    err = reply.error
    assert err["code"] == "InternalServerError"
    assert "exploded" not in err["message"]  # internals stay in the log


@pytest.mark.parametrize(
    "op", ["python/execute", "Python/Execute", "python/execute/code/execute", "python/execute/executions"]
)
async def test_the_seeds_python_execute_endpoint_form_is_a_404_pointing_to_the_current_operations(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, op: str
) -> None:
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/{op}",
        version=V,
        identifier="abc",
        json=current_body("1"),
    )
    assert reply.status == 404
    err = reply.error
    assert err["code"] == "NotFound"
    assert "/python/execute" in err["message"]
    assert "/code/execute" in err["message"]
    assert "/executions" in err["message"]


async def test_an_unknown_path_is_still_a_bare_404(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession
) -> None:
    reply = await call(module_http, "POST", f"{module_pool.endpoint}/python/run", version=V, identifier="abc")
    assert reply.status == 404
    assert reply.error["message"] == "There is no operation at '/python/run'."

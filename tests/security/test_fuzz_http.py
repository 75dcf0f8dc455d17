"""Property-based fuzzing of the pool's HTTP surface with hypothesis.

Every route, api-version, identifier, header and body shape is drawn at random (valid and
invalid mixed). The properties: the pool never answers 5xx, every 4xx carries the Azure.Core
error body with a matching ``x-ms-error-code``, every request is answered (client timeout), and
the pool serves a valid call afterwards. Examples are bounded so the suite stays fast in CI.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security._support import PoolProcess, is_error_body, record

VERSIONS = [
    "2024-02-02-preview",
    "2024-08-02-preview",
    "2024-10-02-preview",
    "2025-02-02-preview",
    "2025-10-02-preview",
]
# Identifiers that exist (made once) or are refused; random valid ones are kept few so that the
# fuzzer does not spend its time starting kernels (the pool is small and answers "full" anyway).
EXISTING = ["fuzz-a", "fuzz-b"]
SAFE_CODE = ["1+1", "print('x')", "x = 5", "raise ValueError('f')", "import os; os.getcwd()", "", "\n"]
OPERATIONS = [
    ("POST", "executions"),
    ("GET", "executions/{eid}"),
    ("POST", "code/execute"),
    ("POST", "files"),
    ("POST", "files/upload"),
    ("GET", "files"),
    ("GET", "files/{name}"),
    ("GET", "files/{name}/content"),
    ("GET", "files/content/{name}"),
    ("DELETE", "files/{name}"),
    ("GET", "session"),
    ("GET", "listSessions"),
    ("GET", "metadata"),
    ("POST", ".management/getSession"),
    ("POST", ".management/listSessions"),
]
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


POOL_PROCESS = {"name": "fuzz", "sandbox": "auto", "ready_sessions": 1, "max_concurrent_sessions": 4}


def prepare_pool(pool: PoolProcess) -> None:
    """Create the sessions the fuzzer's requests name (``EXISTING``)."""
    for identifier in EXISTING:
        status, _, _ = _send(
            pool,
            "POST",
            _path(pool, "executions"),
            f"api-version={VERSIONS[-1]}&identifier={identifier}",
            {"Content-Type": "application/json"},
            json.dumps({"code": "1"}).encode(),
            True,
        )
        assert status == 200


def _path(pool: PoolProcess, tail: str) -> str:
    return urlsplit(pool.endpoint).path.rstrip("/") + "/" + tail


def _send(
    pool: PoolProcess,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes | None,
    auth: bool,
) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", pool.port, timeout=60)
    try:
        conn.putrequest(method, f"{path}?{query}" if query else path, skip_accept_encoding=True)
        all_headers = dict(headers)
        if auth:
            all_headers["Authorization"] = f"Bearer {pool.api_key}"
        all_headers["Content-Length"] = str(len(body or b""))
        for name, value in all_headers.items():
            conn.putheader(name, value)
        conn.endheaders(body or b"")
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def _check(method: str, status: int, body: bytes, headers: dict[str, str], what: str) -> None:
    assert status < 500, f"{what} -> {status} {body[:300]!r}"
    if status >= 400 and method != "HEAD":
        data = json.loads(body)
        assert is_error_body(data), f"{what} -> {status} {body[:300]!r}"
        assert headers.get("x-ms-error-code") == data["error"]["code"], what


segment = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=20
).map(lambda s: quote(s, safe=""))
identifiers = st.one_of(
    st.sampled_from(EXISTING),
    st.sampled_from(["", " ", "a/b", "a\\b", "é", "x" * 257, "\x00", "..", "%2e%2e"]),
    st.text(max_size=300),
)
versions = st.one_of(
    st.sampled_from(VERSIONS), st.text(max_size=30), st.sampled_from([v.upper() for v in VERSIONS])
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(SAFE_CODE),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
execute_bodies = st.fixed_dictionaries(
    {},
    optional={
        "code": st.one_of(st.sampled_from(SAFE_CODE), json_values),
        "codeInputType": st.one_of(
            st.sampled_from(["Inline", "inline", "InlineBase64", "InlineText", "x"]), json_values
        ),
        "executionType": st.one_of(st.sampled_from(["Synchronous", "asynchronous", "Other"]), json_values),
        "timeoutInSeconds": st.one_of(st.integers(min_value=-5, max_value=10**12), json_values),
        "outputStreamsMaxLength": st.one_of(st.integers(min_value=-5, max_value=10**12), json_values),
        "shellCommand": st.one_of(st.text(max_size=20), json_values),
        "useEmptyKernel": json_values,
        "properties": json_values,
    },
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=300),
    execute_bodies.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "text/plain",
        "multipart/form-data",
        "multipart/form-data; boundary=zz",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
    ]
)


def _timeout_safe(body: bytes | None) -> bytes | None:
    """Keep drawn execute bodies from asking for long runs: the fuzzer tests parsing, not time."""
    if not body:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if (
        isinstance(data, dict)
        and isinstance(data.get("timeoutInSeconds"), int)
        and data["timeoutInSeconds"] > 5
    ):
        data["timeoutInSeconds"] = 5
        return json.dumps(data).encode()
    return body


@SETTINGS
@given(
    op=st.sampled_from(OPERATIONS),
    version=st.one_of(st.none(), versions),
    identifier=st.one_of(st.none(), identifiers),
    name=segment,
    eid=segment,
    path_param=st.one_of(st.none(), st.text(max_size=30)),
    body=bodies,
    content_type=content_types,
    operation_id=st.one_of(
        st.none(), st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=300)
    ),
    auth=st.sampled_from([True, True, True, False]),
)
def test_every_route_answers_without_5xx_and_errors_carry_the_error_body(
    pool: PoolProcess,
    op: tuple[str, str],
    version: str | None,
    identifier: str | None,
    name: str,
    eid: str,
    path_param: str | None,
    body: bytes | None,
    content_type: str | None,
    operation_id: str | None,
    auth: bool,
) -> None:
    method, tail = op
    tail = tail.format(name=name or "x", eid=eid or "e")
    params: list[tuple[str, str]] = []
    if version is not None:
        params.append(("api-version", version))
    if identifier is not None:
        params.append(("identifier", identifier))
    if path_param is not None:
        params.append(("path", path_param))
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params)
    headers: dict[str, str] = {}
    if content_type:
        headers["Content-Type"] = content_type
    if operation_id:
        headers["operation-id"] = operation_id
    body = _timeout_safe(body)
    status, data, resp_headers = _send(pool, method, _path(pool, tail), query, headers, body, auth)
    record("fuzz requests (routes x versions x identifiers x bodies)")
    _check(method, status, data, resp_headers, f"{method} {tail}?{query} body={body!r:.200}")


@SETTINGS
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
    segments=st.lists(segment, max_size=6),
    query=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=40)), max_size=5),
    root=st.booleans(),
    body=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_arbitrary_paths_and_queries_get_4xx_or_success_never_5xx(
    pool: PoolProcess,
    method: str,
    segments: list[str],
    query: list[tuple[str, str]],
    root: bool,
    body: bytes | None,
) -> None:
    tail = "/".join(segments)
    path = "/" + tail if root else _path(pool, tail)
    qs = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    status, data, headers = _send(pool, method, path, qs, {}, body, True)
    record("fuzz requests (arbitrary paths)")
    _check(method, status, data, headers, f"{method} {path}?{qs}")


header_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-ABCXYZ0123456789", min_size=1, max_size=20)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200)


@SETTINGS
@given(
    headers=st.dictionaries(header_names, header_values, max_size=8),
    authorization=st.one_of(
        st.none(), header_values, st.just("Bearer "), header_values.map(lambda v: "Bearer " + v)
    ),
    op=st.sampled_from(OPERATIONS),
)
def test_headers_and_tokens_never_cause_5xx_and_bad_tokens_get_401(
    pool: PoolProcess, headers: dict[str, str], authorization: str | None, op: tuple[str, str]
) -> None:
    method, tail = op
    tail = tail.format(name="x", eid="e")
    headers = {
        k: v for k, v in headers.items() if k.lower() not in ("content-length", "transfer-encoding", "host")
    }
    headers.pop("Authorization", None)
    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization
    status, data, resp_headers = _send(
        pool, method, _path(pool, tail), f"api-version={VERSIONS[-1]}&identifier=fuzz-a", headers, None, False
    )
    record("fuzz requests (headers and tokens)")
    _check(method, status, data, resp_headers, f"{method} {tail} headers={headers}")
    if authorization != f"Bearer {pool.api_key}":
        assert status == 401, (status, authorization)


def test_pool_still_serves_after_fuzzing(pool: PoolProcess) -> None:
    status, data, _ = _send(
        pool,
        "POST",
        _path(pool, "executions"),
        f"api-version={VERSIONS[-1]}&identifier=fuzz-a",
        {"Content-Type": "application/json"},
        json.dumps({"code": "6*7"}).encode(),
        True,
    )
    assert status == 200, data
    assert json.loads(data)["result"]["executionResult"] == 42
    assert pool.alive()
    unexpected = [line for line in pool.stderr_lines if "unexpected error" in line]
    assert not unexpected, pool.log_tail(80)

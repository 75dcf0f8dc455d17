"""Every documented response variant (and the undocumented ones the local pool emits) is
parsed into the same typed results."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from autogen_aca_sessions.client import (
    ExecutionResult,
    ExecutionStatus,
    ImageOutput,
    PackageInfo,
    SessionFile,
    SessionsClient,
    SessionsError,
)
from autogen_aca_sessions.client.contracts._common import (
    decode_base64,
    image_from,
    parse_datetime,
    parse_error_body,
)
from tests.unit.conftest import FakePool

Factory = Callable[..., SessionsClient]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
PNG_B64 = base64.b64encode(PNG).decode()
NEWEST = "2025-10-02-preview"
LEGACY = "2024-02-02-preview"


async def run(
    make_client: Factory, pool: FakePool, body: Any, version: str = NEWEST, status: int = 200, **kw: Any
) -> ExecutionResult:
    pool.reply(status, body)
    return await make_client(api_version=version, **kw).execute("sess-1", "code", operation_id="op-1")


async def test_new_contract_sample_is_parsed(make_client: Factory, fake_pool: FakePool) -> None:
    result = await run(
        make_client,
        fake_pool,
        {
            "id": "exec-1",
            "identifier": "sess-1",
            "executionType": "Synchronous",
            "status": "Succeeded",
            "result": {
                "stdout": "63\n",
                "stderr": "",
                "executionResult": "",
                "executionTimeInMilliseconds": 4,
            },
        },
    )
    assert result.execution_id == "exec-1"
    assert result.identifier == "sess-1"
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.succeeded
    assert (result.stdout, result.stderr, result.result) == ("63\n", "", "")
    assert result.execution_time_ms == 4
    assert result.images == []
    assert not result.timed_out
    assert not result.state_lost
    assert not result.stdout_truncated
    assert not result.stderr_truncated
    assert result.exit_code is None
    assert result.raw["id"] == "exec-1"


async def test_legacy_sample_with_dollar_ids_is_parsed(make_client: Factory, fake_pool: FakePool) -> None:
    body = {
        "$id": "1",
        "properties": {
            "$id": "2",
            "status": "Success",
            "stdout": "2\n",
            "stderr": "",
            "result": "",
            "executionTimeInMilliseconds": 11,
        },
    }
    result = await run(make_client, fake_pool, body, LEGACY)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert (result.stdout, result.result, result.execution_time_ms) == ("2\n", "", 11)
    assert result.execution_id == "op-1"  # legacy has no id: the operation-id we sent


async def test_legacy_failure_keeps_traceback_and_null_result(
    make_client: Factory, fake_pool: FakePool
) -> None:
    body = {
        "properties": {
            "status": "Failure",
            "stdout": "",
            "stderr": "Traceback...\nZeroDivisionError",
            "result": None,
        }
    }
    result = await run(make_client, fake_pool, body, LEGACY)
    assert result.status is ExecutionStatus.FAILED
    assert not result.succeeded
    assert result.stderr.endswith("ZeroDivisionError")
    assert result.result is None


async def test_legacy_202_with_a_body_is_final_and_not_polled(
    make_client: Factory, fake_pool: FakePool
) -> None:
    body = {"properties": {"status": "Success", "stdout": "ok\n", "stderr": "", "result": 4}}
    result = await run(make_client, fake_pool, body, "2024-08-02-preview", status=202)
    assert result.succeeded
    assert result.result == 4
    assert len(fake_pool.requests) == 1


@pytest.mark.parametrize("version", [LEGACY, NEWEST])
async def test_execution_result_named_execution_result_or_result(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    bodies: list[dict[str, Any]]
    if version == LEGACY:
        bodies = [
            {"properties": {"status": "Success", "executionResult": 4}},
            {"properties": {"status": "Success", "result": 4}},
        ]
    else:
        bodies = [
            {"status": "Succeeded", "result": {"executionResult": 4}},
            {"status": "Succeeded", "result": {"result": 4}},
        ]
    for body in bodies:
        assert (await run(make_client, fake_pool, body, version)).result == 4


async def test_non_string_results_keep_their_json_types(make_client: Factory, fake_pool: FakePool) -> None:
    for value in [4, 2.5, "nan", None, [1, 2], {"a": 1}, True]:
        body = {"status": "Succeeded", "result": {"stdout": "", "stderr": "", "executionResult": value}}
        assert (await run(make_client, fake_pool, body)).result == value


async def test_missing_result_means_no_value(make_client: Factory, fake_pool: FakePool) -> None:
    result = await run(make_client, fake_pool, {"status": "Succeeded", "result": {"stdout": "x"}})
    assert result.result == ""


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("succeeded", ExecutionStatus.SUCCEEDED),
        ("SUCCEEDED", ExecutionStatus.SUCCEEDED),
        ("Success", ExecutionStatus.SUCCEEDED),
        ("failed", ExecutionStatus.FAILED),
        ("FAILURE", ExecutionStatus.FAILED),
        ("Canceled", ExecutionStatus.CANCELED),
        ("cancelled", ExecutionStatus.CANCELED),
    ],
)
async def test_status_casing_and_synonyms(
    status: str, expected: ExecutionStatus, make_client: Factory, fake_pool: FakePool
) -> None:
    assert (await run(make_client, fake_pool, {"status": status, "result": {}})).status is expected


async def test_unknown_fields_are_ignored(make_client: Factory, fake_pool: FakePool) -> None:
    body = {
        "id": "e",
        "sessionId": "internal",
        "status": "Succeeded",
        "futureField": {"nested": [1, 2]},
        "result": {
            "stdout": "hi\n",
            "stderr": "",
            "executionResult": "",
            "rawResult": {"error_name": None, "error_message": None, "error_stack_trace": None},
            "somethingNew": 1,
        },
    }
    result = await run(make_client, fake_pool, body)
    assert result.succeeded
    assert result.stdout == "hi\n"
    assert result.raw["futureField"] == {"nested": [1, 2]}


@pytest.mark.parametrize(
    ("status", "exit_code", "expected"),
    [("0", 0, ExecutionStatus.SUCCEEDED), ("2", 2, ExecutionStatus.FAILED)],
)
async def test_shell_exit_code_comes_from_string_status(
    status: str, exit_code: int, expected: ExecutionStatus, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"id": "e", "status": status, "result": {"stdout": "out\n", "stderr": "err\n"}})
    result = await make_client(api_version="2025-02-02-preview").execute_shell("sess-1", "ls")
    assert result.exit_code == exit_code
    assert result.status is expected
    assert (result.stdout, result.stderr) == ("out\n", "err\n")


async def test_shell_exit_code_field_is_accepted_with_a_named_status(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"status": "Failed", "result": {"stdout": "", "stderr": "", "exitCode": 124}})
    result = await make_client().execute_shell("sess-1", "sleep 999")
    assert result.exit_code == 124
    assert result.status is ExecutionStatus.FAILED


@pytest.mark.parametrize("version", [LEGACY, NEWEST])
async def test_image_result_object_becomes_decoded_image(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    image = {"type": "image", "format": "png", "base64_data": PNG_B64}
    if version == LEGACY:
        body: dict[str, Any] = {
            "properties": {"status": "Success", "stdout": "", "stderr": "", "result": image}
        }
    else:
        body = {"status": "Succeeded", "result": {"stdout": "", "stderr": "", "executionResult": image}}
    result = await run(make_client, fake_pool, body, version)
    assert result.images == [ImageOutput(format="png", data=PNG)]
    assert result.images[0].mime_type == "image/png"
    assert result.result == ""


async def test_undocumented_image_list_is_accepted(make_client: Factory, fake_pool: FakePool) -> None:
    body = {
        "status": "Succeeded",
        "result": {
            "stdout": "",
            "executionResult": 3,
            "images": [
                {"format": "png", "data": PNG_B64},
                PNG_B64,
                {"format": "jpeg", "base64_data": PNG_B64},
                7,
            ],
        },
    }
    result = await run(make_client, fake_pool, body)
    assert [i.format for i in result.images] == ["png", "png", "jpeg"]
    assert all(i.data == PNG for i in result.images)
    assert result.images[2].mime_type == "image/jpeg"
    assert result.result == 3


async def test_image_object_plus_image_list_keeps_both_in_order(
    make_client: Factory, fake_pool: FakePool
) -> None:
    body = {
        "properties": {
            "status": "Success",
            "result": {"type": "IMAGE", "format": "svg", "base64_data": PNG_B64},
            "images": [PNG_B64],
        }
    }
    result = await run(make_client, fake_pool, body, LEGACY)
    assert [i.format for i in result.images] == ["svg", "png"]
    assert result.images[0].mime_type == "image/svg+xml"


@pytest.mark.parametrize(
    "code", ["ExecutionTimeout", "ExecutionTimedOut", "Timeout", "executiontimeout", "CodeTimeoutExceeded"]
)
async def test_timeout_error_codes_set_timed_out(
    code: str, make_client: Factory, fake_pool: FakePool
) -> None:
    body = {
        "status": "Failed",
        "error": {"code": code, "message": "took too long"},
        "result": {"stderr": "x"},
    }
    result = await run(make_client, fake_pool, body)
    assert result.timed_out
    assert not result.state_lost
    assert (result.error_code, result.error_message) == (code, "took too long")
    assert result.status is ExecutionStatus.FAILED


@pytest.mark.parametrize("code", ["KernelRestarted", "KernelDied", "SessionRestarted", "kernel_died"])
async def test_state_lost_error_codes_set_state_lost(
    code: str, make_client: Factory, fake_pool: FakePool
) -> None:
    result = await run(make_client, fake_pool, {"status": "Failed", "error": {"code": code, "message": "m"}})
    assert result.state_lost
    assert not result.timed_out


async def test_state_lost_flag_in_body_is_honoured(make_client: Factory, fake_pool: FakePool) -> None:
    result = await run(
        make_client, fake_pool, {"status": "Succeeded", "stateLost": True, "result": {"stdout": ""}}
    )
    assert result.state_lost
    assert result.succeeded


async def test_legacy_error_object_and_flags_are_read(make_client: Factory, fake_pool: FakePool) -> None:
    body = {
        "properties": {
            "status": "Failure",
            "error": {"code": "ExecutionTimeout", "message": "m"},
            "stateLost": "true",
        }
    }
    result = await run(make_client, fake_pool, body, LEGACY)
    assert result.timed_out
    assert result.state_lost
    assert result.error_code == "ExecutionTimeout"


async def test_ordinary_error_code_sets_neither_flag(make_client: Factory, fake_pool: FakePool) -> None:
    result = await run(
        make_client, fake_pool, {"status": "Failed", "error": {"code": "UserCodeError", "message": "m"}}
    )
    assert not result.timed_out
    assert not result.state_lost


async def test_error_without_status_means_failed(make_client: Factory, fake_pool: FakePool) -> None:
    result = await run(make_client, fake_pool, {"error": {"code": "X", "message": "m"}})
    assert result.status is ExecutionStatus.FAILED


async def test_output_reaching_the_requested_limit_is_flagged_truncated(
    make_client: Factory, fake_pool: FakePool
) -> None:
    body = {"status": "Succeeded", "result": {"stdout": "x" * 10, "stderr": "y" * 9}}
    result = await run(make_client, fake_pool, body, max_output_chars=10)
    assert result.stdout_truncated
    assert not result.stderr_truncated


@pytest.mark.parametrize("version", ["2024-10-02-preview", "2025-02-02-preview"])
async def test_4096_characters_without_a_flag_is_possibly_not_certainly_truncated(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    body = {"status": "Succeeded", "result": {"stdout": "x" * 4096, "stderr": "y" * 5000}}
    result = await run(make_client, fake_pool, body, version, max_output_chars=10)
    # These versions cannot ask for a limit, so nothing is known to be cut...
    assert not result.stdout_truncated
    assert not result.stderr_truncated
    # ...but exactly the service's default cap may be a silent cut; 5000 cannot be.
    assert result.stdout_possibly_truncated
    assert not result.stderr_possibly_truncated


@pytest.mark.parametrize("version", [LEGACY, "2025-02-02-preview", NEWEST])
async def test_server_truncation_flags_are_honoured(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    if version == LEGACY:
        body: dict[str, Any] = {"properties": {"status": "Success", "stdout": "a", "stderrTruncated": True}}
    else:
        body = {"status": "Succeeded", "result": {"stdout": "a", "stderr": "b", "stdoutTruncated": True}}
    result = await run(make_client, fake_pool, body, version)
    if version == LEGACY:
        assert (result.stdout_truncated, result.stderr_truncated) == (False, True)
    else:
        assert (result.stdout_truncated, result.stderr_truncated) == (True, False)


async def test_streams_at_top_level_are_tolerated(make_client: Factory, fake_pool: FakePool) -> None:
    result = await run(make_client, fake_pool, {"status": "Succeeded", "stdout": "top\n", "result": 5})
    assert result.stdout == "top\n"
    assert result.result == 5


async def test_non_json_success_body_on_execute_is_an_error(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(200, text="<html>gateway</html>")
    with pytest.raises(SessionsError, match="not a JSON object"):
        await make_client().execute("sess-1", "1")


# ---------------------------------------------------------------- files, sessions, metadata


async def test_new_file_listing_is_parsed(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(
        json_body={
            "value": [
                {
                    "name": "README.md",
                    "type": "File",
                    "sizeInBytes": 133,
                    "lastModifiedAt": "2024-11-02T12:33:05.677Z",
                    "contentType": "text/markdown; charset=utf-8",
                },
                {"name": "level2", "type": "Directory", "directory": "level1", "extra": 1},
            ],
            "nextLink": None,
        }
    )
    files = await make_client().list_files("sess-1")
    assert files[0].name == "README.md"
    assert files[0].size_in_bytes == 133
    assert files[0].last_modified_at == datetime(2024, 11, 2, 12, 33, 5, 677000, tzinfo=timezone.utc)
    assert files[0].content_type == "text/markdown; charset=utf-8"
    assert not files[0].is_directory
    assert files[1].is_directory
    assert files[1].directory == "level1"
    assert files[1].relative_path == "level1/level2"
    assert files[0].relative_path == "README.md"


async def test_legacy_file_listing_is_parsed(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(
        json_body={
            "$id": "1",
            "value": [
                {
                    "$id": "2",
                    "properties": {
                        "$id": "3",
                        "filename": "a.csv",
                        "size": 16,
                        "lastModifiedTime": "2024-05-02T07:21:07.9922617Z",
                    },
                }
            ],
        }
    )
    (entry,) = await make_client(api_version=LEGACY).list_files("sess-1")
    assert entry == SessionFile(
        name="a.csv",
        type="File",
        size_in_bytes=16,
        last_modified_at=datetime(2024, 5, 2, 7, 21, 7, 992261, tzinfo=timezone.utc),
        raw=entry.raw,
    )


async def test_legacy_upload_answer_picks_the_uploaded_entry(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(
        json_body={
            "value": [
                {"properties": {"filename": "other.txt", "size": 1}},
                {"properties": {"filename": "a.csv", "size": 3}},
            ]
        }
    )
    entry = await make_client(api_version=LEGACY).upload_file("sess-1", "a.csv", b"1,2")
    assert (entry.name, entry.size_in_bytes) == ("a.csv", 3)


async def test_new_upload_answer_is_a_single_entry(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"name": "a.csv", "type": "File", "sizeInBytes": 3, "contentType": "text/csv"})
    entry = await make_client().upload_file("sess-1", "a.csv", b"1,2")
    assert (entry.name, entry.size_in_bytes, entry.content_type) == ("a.csv", 3, "text/csv")


async def test_upload_answer_without_body_still_names_the_file(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(200)
    entry = await make_client().upload_file("sess-1", "a.csv", b"1,2")
    assert entry.name == "a.csv"


async def test_file_listing_follows_next_link(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(
        json_body={
            "value": [{"name": "a"}],
            "nextLink": "/files?api-version=2025-10-02-preview&identifier=sess-1&skip=1",
        },
        path=r"^/files\?api-version=2025-10-02-preview&identifier=sess-1$",
    )
    fake_pool.reply(json_body={"value": [{"name": "b"}], "nextLink": None}, path=r"skip=1")
    files = await make_client().list_files("sess-1")
    assert [f.name for f in files] == ["a", "b"]
    assert fake_pool.requests[1].raw == "/files?api-version=2025-10-02-preview&identifier=sess-1&skip=1"


async def test_session_and_session_list_are_parsed(make_client: Factory, fake_pool: FakePool) -> None:
    session = {
        "identifier": "sess-1",
        "createdAt": "2025-03-01T10:00:00Z",
        "lastAccessedAt": "2025-03-01T10:05:00+01:00",
        "expireAt": "2025-03-01T10:10:00.5Z",
        "etag": "W/1",
    }
    fake_pool.reply(json_body=session, path=r"^/session\?")
    fake_pool.reply(
        json_body={"sessions": [session, {"identifier": "s2"}], "nextLink": "listSessions?skip=2"},
        path=r"^/listSessions\?api-version=[^&]*$",
    )
    fake_pool.reply(json_body={"sessions": [{"identifier": "s3"}]}, path=r"skip=2")
    client = make_client()
    info = await client.get_session("sess-1")
    assert info.identifier == "sess-1"
    assert info.created_at == datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert info.last_accessed_at == datetime(2025, 3, 1, 10, 5, tzinfo=timezone(timedelta(hours=1)))
    assert info.expire_at == datetime(2025, 3, 1, 10, 10, 0, 500000, tzinfo=timezone.utc)
    assert info.etag == "W/1"
    listed = await client.list_sessions()
    assert [s.identifier for s in listed] == ["sess-1", "s2", "s3"]
    assert fake_pool.requests[2].raw == "/listSessions?skip=2&api-version=2025-10-02-preview"


async def test_old_management_list_shape_is_accepted(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(
        json_body={"value": [{"identifier": "a"}, {"properties": {"identifier": "b"}}], "count": 2}
    )
    assert [s.identifier for s in await make_client().list_sessions()] == ["a", "b"]


async def test_metadata_is_parsed(make_client: Factory, fake_pool: FakePool) -> None:
    body = {
        "runtimes": [{"name": "python", "version": "3.12.1"}],
        "preInstalledPackages": [{"name": "numpy", "version": "2.1.0"}, {"name": "pandas"}, "scipy", 5],
        "jupyterKernel": {"name": "python3", "version": "6.29"},
        "createdAt": "2025-01-01T00:00:00Z",
        "lastUpdatedAt": "2025-02-01T00:00:00Z",
        "unknown": True,
    }
    fake_pool.reply(json_body=body)
    meta = await make_client().get_metadata()
    assert meta.runtimes == [PackageInfo("python", "3.12.1")]
    assert meta.preinstalled_packages == [
        PackageInfo("numpy", "2.1.0"),
        PackageInfo("pandas", None),
        PackageInfo("scipy", None),
    ]
    assert meta.jupyter_kernel == {"name": "python3", "version": "6.29"}
    assert meta.created_at == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert meta.last_updated_at == datetime(2025, 2, 1, tzinfo=timezone.utc)
    assert meta.raw["unknown"] is True


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-02T07:21:07.9922617Z", datetime(2024, 5, 2, 7, 21, 7, 992261, tzinfo=timezone.utc)),
        ("2024-05-02T07:21:07Z", datetime(2024, 5, 2, 7, 21, 7, tzinfo=timezone.utc)),
        (
            "2024-05-02T07:21:07-0230",
            datetime(2024, 5, 2, 7, 21, 7, tzinfo=timezone(-timedelta(hours=2, minutes=30))),
        ),
        ("2024-05-02 07:21", datetime(2024, 5, 2, 7, 21, tzinfo=timezone.utc)),
        ("not a date", None),
        ("2024-13-40T00:00:00Z", None),
        ("", None),
        (None, None),
        (5, None),
    ],
)
def test_parse_datetime(text: Any, expected: datetime | None) -> None:
    assert parse_datetime(text) == expected


def test_base64_variants_decode() -> None:
    assert decode_base64(PNG_B64) == PNG
    assert decode_base64(PNG_B64.rstrip("=")) == PNG
    assert decode_base64(base64.urlsafe_b64encode(b"\xfb\xff\xfe").decode()) == b"\xfb\xff\xfe"
    assert decode_base64("data:image/png;base64," + PNG_B64) == PNG
    assert decode_base64("not base64!") is None
    assert decode_base64(None) is None
    assert image_from({"type": "image", "base64_data": PNG_B64, "mimeType": "image/jpeg"}) == ImageOutput(
        "jpeg", PNG
    )
    assert image_from({"type": "image"}) is None
    assert image_from(3) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"error": {"code": "SessionRequestValidationFailed", "message": "bad", "target": "id"}}',
            ("SessionRequestValidationFailed", "bad"),
        ),
        (b'{"code": "X", "message": "flat"}', ("X", "flat")),
        (b'{"message": "file deleted successfully"}', (None, "file deleted successfully")),
        (b'{"error": "plain string"}', (None, "plain string")),
        (b"Internal failure, try later", (None, "Internal failure, try later")),
        (b"", (None, None)),
    ],
)
def test_error_body_variants(body: bytes, expected: tuple[str | None, str | None]) -> None:
    assert parse_error_body(body) == expected


async def test_legacy_answer_without_status_is_success_unless_it_has_an_error(
    make_client: Factory, fake_pool: FakePool
) -> None:
    assert (await run(make_client, fake_pool, {"properties": {"stdout": "x"}}, LEGACY)).succeeded
    failed = await run(
        make_client, fake_pool, {"properties": {"error": {"code": "E", "message": "m"}}}, LEGACY
    )
    assert failed.status is ExecutionStatus.FAILED


async def test_new_upload_answer_in_list_shape_is_accepted(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"value": [{"name": "x"}, {"name": "a.csv", "sizeInBytes": 3}]})
    fake_pool.reply(json_body={"value": [{"name": "other"}]})
    client = make_client()
    assert (await client.upload_file("sess-1", "a.csv", b"1,2")).size_in_bytes == 3
    assert (await client.upload_file("sess-1", "a.csv", b"1,2")).name == "other"


async def test_session_guid_header_is_kept_on_the_result(make_client: Factory, fake_pool: FakePool) -> None:
    body = {"id": "e1", "status": "Succeeded", "result": {"stdout": "", "stderr": "", "executionResult": ""}}
    fake_pool.reply(200, body, headers={"x-ms-session-guid": "guid-1"})
    fake_pool.reply(200, body)
    client = make_client()
    assert (await client.execute("sess-1", "1")).session_guid == "guid-1"
    # A response without the header says nothing about the incarnation.
    assert (await client.execute("sess-1", "1")).session_guid is None


async def test_session_guid_of_the_accepting_answer_survives_polling(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(
        202,
        {"id": "e1", "status": "Running"},
        headers={"x-ms-session-guid": "guid-7", "Operation-Location": "/executions/e1"},
    )
    fake_pool.reply(200, {"id": "e1", "status": "Succeeded", "result": {"stdout": "done"}})
    result = await make_client(api_version="2024-10-02-preview").execute("sess-1", "1")
    assert result.stdout == "done"
    assert result.session_guid == "guid-7"


@pytest.mark.parametrize(
    ("version", "limit", "expected"),
    [
        # 2024-10 / 2025-02 cannot ask for more: exactly 4096 may be the service's silent cap.
        ("2024-10-02-preview", 1_000_000, True),
        ("2025-02-02-preview", 1_000_000, True),
        # 2025-10 asked for more than 4096, so exactly 4096 is suspicious too.
        (NEWEST, 1_000_000, True),
        # Asked for exactly 4096: reaching it is a plain (flagged) truncation, not a "maybe".
        (NEWEST, 4096, False),
    ],
)
async def test_exactly_4096_characters_is_marked_possibly_truncated(
    version: str, limit: int, expected: bool, make_client: Factory, fake_pool: FakePool
) -> None:
    body = {"status": "Succeeded", "result": {"stdout": "x" * 4096, "stderr": "y" * 4095}}
    result = await run(make_client, fake_pool, body, version, max_output_chars=limit)
    assert result.stdout_possibly_truncated is expected
    assert result.stdout_truncated is (limit == 4096)
    assert not result.stderr_possibly_truncated


async def test_a_flagged_stream_is_not_also_possibly_truncated(
    make_client: Factory, fake_pool: FakePool
) -> None:
    body = {"status": "Succeeded", "result": {"stdout": "x" * 4096, "stdoutTruncated": True}}
    result = await run(make_client, fake_pool, body, "2025-02-02-preview")
    assert result.stdout_truncated
    assert not result.stdout_possibly_truncated

"""Properties of the HTTP layer's pure parts: path containment, identifiers, api-version registry."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autogen_aca_sessions.local.frontends.dataplane.endpoint import PoolPrefix, split_endpoint, split_path
from autogen_aca_sessions.local.frontends.dataplane.operations import Operation
from autogen_aca_sessions.local.frontends.dataplane.routes import ROUTES
from autogen_aca_sessions.local.frontends.dataplane.routing import resolve
from autogen_aca_sessions.local.frontends.dataplane.wire.errors import WireError
from autogen_aca_sessions.local.frontends.dataplane.wire.versions import API_VERSIONS, lookup_api_version
from autogen_aca_sessions.local.runtime.files import relative_dir, relative_name, upload_basename
from autogen_aca_sessions.local.runtime.identifiers import identifier_problem

path_text = st.lists(
    st.sampled_from(["a", "b", ".", "/", "\\", "\x00", "%2e", "..", "/mnt/data", "mnt", "../"]), max_size=12
).map("".join)


def _contained(rel: PurePosixPath) -> bool:
    return not rel.is_absolute() and ".." not in rel.parts


@given(path_text)
def test_a_path_parameter_either_is_refused_or_stays_below_mnt_data(value: str) -> None:
    outcome: PurePosixPath | WireError
    try:
        outcome = relative_dir(value)
    except WireError as err:
        outcome = err
    if isinstance(outcome, WireError):
        assert outcome.status == 400
        assert outcome.target == "path"
    else:
        assert _contained(outcome)


@given(path_text, path_text)
def test_a_file_name_either_is_refused_or_stays_below_mnt_data(directory: str, name: str) -> None:
    outcome: PurePosixPath | WireError
    try:
        outcome = relative_name(relative_dir(directory), name)
    except WireError as err:
        outcome = err
    if isinstance(outcome, WireError):
        assert outcome.status == 400
    else:
        assert _contained(outcome)
        assert outcome.parts  # never the data root itself


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, PurePosixPath()),
        ("", PurePosixPath()),
        ("/mnt/data", PurePosixPath()),
        ("/mnt/data/", PurePosixPath()),
        ("/mnt/data/a/b", PurePosixPath("a/b")),
        ("a//b/./", PurePosixPath("a/b")),
    ],
)
def test_path_parameter_spellings_of_the_same_directory(value: str | None, expected: PurePosixPath) -> None:
    assert relative_dir(value) == expected


@pytest.mark.parametrize(
    ("filename", "stored"),
    [
        ("a.csv", "a.csv"),
        ("/mnt/data/x/a.csv", "a.csv"),
        ("C:\\Users\\me\\a.csv", "a.csv"),
        # Taken as sent (RFC 7578): percent signs are literal characters of the name.
        ("my%20file.txt", "my%20file.txt"),
        ("50% off.txt", "50% off.txt"),
        ("%2Fmnt%2Fdata%2Fb.txt", "%2Fmnt%2Fdata%2Fb.txt"),
    ],
)
def test_upload_filenames_keep_only_their_base_name(filename: str, stored: str) -> None:
    assert upload_basename(filename) == stored


@pytest.mark.parametrize("filename", [None, "", ".", "..", "/mnt/data/..", "a\x00b", "x/.."])
def test_unusable_upload_filenames_are_refused(filename: str | None) -> None:
    with pytest.raises(WireError) as caught:
        upload_basename(filename)
    assert caught.value.status == 400


@given(st.uuids())
def test_every_uuid_is_an_acceptable_identifier(value: uuid.UUID) -> None:
    assert identifier_problem(str(value)) is None


@given(st.text(min_size=1, max_size=300))
def test_accepted_identifiers_are_short_printable_ascii_without_slashes(value: str) -> None:
    if identifier_problem(value) is None:
        assert len(value) <= 256
        assert all("\x21" <= ch <= "\x7e" for ch in value)
        assert "/" not in value
        assert "\\" not in value


def test_the_registry_holds_exactly_the_reference_versions() -> None:
    assert list(API_VERSIONS) == [
        "2024-02-02-preview",
        "2024-08-02-preview",
        "2024-10-02-preview",
        "2025-02-02-preview",
        "2025-10-02-preview",
    ]
    assert [v.contract for v in API_VERSIONS.values()] == [
        "legacy",
        "legacy",
        "current",
        "current",
        "current",
    ]
    assert [v.execute_status for v in API_VERSIONS.values()] == [200, 200, 202, 200, 200]
    assert lookup_api_version(" 2025-10-02-PREVIEW ") is API_VERSIONS["2025-10-02-preview"]
    assert lookup_api_version("2025-10-02") is None


@pytest.mark.parametrize(
    ("path", "prefix", "rest"),
    [
        ("/subscriptions/S/resourceGroups/RG/sessionPools/P/files/a", ("S", "RG", "P"), ["files", "a"]),
        ("/SUBSCRIPTIONS/S/resourcegroups/RG/SESSIONPOOLS/P", ("S", "RG", "P"), []),
        ("//subscriptions/S/resourceGroups/RG/sessionPools/P//executions/", ("S", "RG", "P"), ["executions"]),
        ("/executions", None, ["executions"]),
        ("/subscriptions/S/resourceGroups/RG/providers/Microsoft.App", None, None),
        ("/subscriptions/S/resourceGroups/RG/sessionPools", None, None),
    ],
)
def test_the_pool_prefix_is_split_off_a_data_plane_path_in_one_place(
    path: str, prefix: tuple[str, str, str] | None, rest: list[str] | None
) -> None:
    found, below = split_endpoint(split_path(path))
    if prefix is None:
        assert found is None
        assert below == (rest if rest is not None else split_path(path))
    else:
        assert found == PoolPrefix(*prefix)
        assert found.folded == tuple(p.lower() for p in prefix)
        assert below == rest


def test_a_resolved_route_names_operation_template_and_session_once() -> None:
    resolved = resolve(
        ROUTES,
        "get",
        "/subscriptions/s/resourceGroups/r/sessionPools/pool/files/a%20b/content",
        pool_name="POOL",
        identifier="sess",
        api_version="2025-10-02-preview",
    )
    assert not resolved.other_pool
    assert resolved.path == "files/a%20b/content"
    assert resolved.operation is Operation.FILES
    assert resolved.template == "/files/{name}/content"
    assert resolved.identifier == "sess"
    assert [m.params for m in resolved.matches if m.route is resolved.route] == [{"name": "a%20b"}]
    # Without an api-version it is the first route of the method in any contract (legacy here).
    assert resolve(ROUTES, "GET", "/files/a/content", pool_name=None).template == "/files/{name}"


def test_a_path_naming_another_pool_resolves_as_such_and_keeps_its_operation() -> None:
    resolved = resolve(
        ROUTES, "POST", "/subscriptions/s/resourceGroups/r/sessionPools/other/executions", pool_name="pool"
    )
    assert resolved.other_pool
    assert resolved.template == "(other pool)"
    assert resolved.operation is Operation.EXECUTE  # fault plans pick calls by it, as before


def test_a_path_no_route_fits_resolves_to_other_and_unknown() -> None:
    resolved = resolve(ROUTES, "GET", "/nothing/here", pool_name="pool")
    assert resolved.matches == ()
    assert resolved.operation is Operation.OTHER
    assert resolved.template == "(unknown)"

"""The Sandboxes data plane's wire, pinned as literal JSON for each api-version: the SDK's
``2026-02-01-preview`` (create and write with PUT, as the SDK sends) and the spec's
``2026-09-01-preview`` (create and write with POST), against the reference's field names
(``aca-sandboxes.md`` sections 3 to 5), on the real server over loopback HTTP.

Values the server cannot know in advance (ids, timestamps, byte counts of live processes) are
pinned by their form (:class:`Like`, :class:`Count`); every key and every other value is literal.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from autogen_aca_sessions.local import LocalSessionsServer
from tests.sandboxes._wire_helpers import RG, SDK_API, SPEC_API, SUB, Raw, Reply

pytestmark = pytest.mark.asyncio(loop_scope="module")

GROUP = "wire"
GROUP_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.App/sandboxGroups/{GROUP}"


class Like:
    """Equal to any string that fully matches ``pattern``."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None

    def __hash__(self) -> int:
        return hash(self.pattern.pattern)

    def __repr__(self) -> str:
        return f"Like({self.pattern.pattern!r})"


class Count:
    """Equal to any integer (not bool) from ``low`` up."""

    def __init__(self, low: int = 0) -> None:
        self.low = low

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and not isinstance(other, bool) and other >= self.low

    def __hash__(self) -> int:
        return self.low

    def __repr__(self) -> str:
        return f"Count({self.low})"


UUID = Like(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = Like(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
TEXT = Like(r"(?s).+")


@dataclass(frozen=True)
class Version:
    """One api-version and how its clients write."""

    api: str
    """The api-version query value."""
    create_method: str
    """How its clients create a sandbox (and a disk image)."""
    write_method: str
    """How its clients write a file."""
    suspended: str
    """What it calls a memory-mode stopped sandbox."""
    mode_644: str | int
    """A 0644 file's ``mode`` in its FileInfo."""
    mode_755: str | int
    """A 0755 directory's ``mode`` in its FileInfo."""


SDK = Version(SDK_API, "PUT", "PUT", "Suspended", "0644", "0755")
SPEC = Version(SPEC_API, "POST", "POST", "Stopped", 0o644, 0o755)
VERSIONS = [pytest.param(SDK, id="sdk-2026-02-01-preview"), pytest.param(SPEC, id="spec-2026-09-01-preview")]

_DENY_ALL = {"defaultAction": "Deny", "hostRules": [], "rules": [], "enforcementMode": "Enforced"}
DEFAULT_EGRESS = {**_DENY_ALL, "http": _DENY_ALL}
"""A sandbox's egress policy when its create names none: deny everything, flat (SDK) and under
``http`` (spec)."""

CREATE_BODY = {
    "sourcesRef": {"diskImage": {"name": "python-3.12", "isPublic": True}},
    "resources": {"cpu": "500m", "memory": "1024Mi", "disk": "2Gi"},
    "lifecycle": {"autoSuspendPolicy": {"enabled": True, "interval": 300, "mode": "Memory"}},
    "labels": {"team": "wire"},
    "environment": {"GREETING": "hi"},
    "customerVnetConnectionName": "vn1",
}
"""The reference's section 3.2 create body (the SDK's keys; ports and volumes are refused here)."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def raw() -> AsyncIterator[Raw]:
    async with LocalSessionsServer() as server, aiohttp.ClientSession() as http:
        await server.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        yield Raw(server, http)


def url(raw: Raw, v: Version, tail: str, query: str = "") -> str:
    return raw.group_url(GROUP, tail + (f"?{query}" if query else ""), version=v.api)


def sandbox_body(
    raw: Raw, sandbox_id: str, *, state: str, stopped: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The literal Sandbox resource of a sandbox made from :data:`CREATE_BODY`."""
    return {
        "id": sandbox_id,
        "name": sandbox_id,
        "state": state,
        "stateDetails": stopped,
        "labels": {"team": "wire"},
        "resources": {"cpu": "500m", "memory": "1Gi", "disk": "2Gi"},
        "lifecycle": {
            "autoSuspendPolicy": {
                "enabled": True,
                "interval": 300,
                "idleTimeoutInSeconds": 300,
                "mode": "Memory",
            },
            "autoDeletePolicy": {"enabled": False, "deleteIntervalInSeconds": 0, "trigger": "AfterSuspend"},
        },
        "sourcesRef": {"diskImage": {"name": "python-3.12", "isPublic": True}},
        "environment": {"GREETING": "hi"},
        "egressPolicy": DEFAULT_EGRESS,
        "ports": [],
        "volumes": [],
        "connections": [],
        "entrypoint": [],
        "cmd": [],
        "hostname": f"sandbox-{sandbox_id[:8]}",
        "createdAt": TIME,
        "lastActivityAt": TIME,
        "region": "local",
        "sandboxGroupId": GROUP_ID,
        "managementUrl": raw.group_url(GROUP, f"sandboxes/{sandbox_id}", version=None),
        "vmmType": "Bubblewrap",
        "snapshotId": None,
        "outboundIpAddresses": [],
        "customerVnetConnectionName": "vn1",
        "vnetConnectionName": "vn1",
    }


def error_body(status: int, title: str, code: str, message: str, target: str | None) -> dict[str, Any]:
    """The reference's section 5 error: Azure.Core's ``error`` with ProblemDetails alongside."""
    return {
        "error": {"code": code, "message": message, "target": target, "details": []},
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": message,
    }


def json_of(reply: Reply, status: int) -> Any:
    assert reply.status == status, reply.body[:500]
    assert reply.headers["Content-Type"].startswith("application/json")
    return reply.json()


async def create(raw: Raw, v: Version, body: dict[str, Any] | None = None) -> str:
    made = json_of(await raw.call(v.create_method, url(raw, v, "sandboxes"), body=body or CREATE_BODY), 201)
    assert isinstance(made["id"], str)
    return made["id"]


@pytest.mark.parametrize("v", VERSIONS)
async def test_create_answers_201_with_the_running_sandbox_and_get_answers_the_same(
    raw: Raw, v: Version
) -> None:
    reply = await raw.call(v.create_method, url(raw, v, "sandboxes"), body=CREATE_BODY)
    made = json_of(reply, 201)
    sandbox_id = made["id"]
    assert made == sandbox_body(raw, sandbox_id, state="Running")
    assert sandbox_id == UUID
    got = json_of(await raw.call("GET", url(raw, v, f"sandboxes/{sandbox_id}")), 200)
    assert got == sandbox_body(raw, sandbox_id, state="Running")


@pytest.mark.parametrize("v", VERSIONS)
async def test_create_accepts_the_other_versions_method_too(raw: Raw, v: Version) -> None:
    other = "POST" if v.create_method == "PUT" else "PUT"
    made = json_of(await raw.call(other, url(raw, v, "sandboxes"), body=CREATE_BODY), 201)
    assert made["state"] == "Running"


@pytest.mark.parametrize("v", VERSIONS)
async def test_the_spec_vnet_name_is_echoed_under_both_names(raw: Raw, v: Version) -> None:
    body = {k: val for k, val in CREATE_BODY.items() if k != "customerVnetConnectionName"}
    made = json_of(
        await raw.call(v.create_method, url(raw, v, "sandboxes"), body=body | {"vnetConnectionName": "vn2"}),
        201,
    )
    assert (made["customerVnetConnectionName"], made["vnetConnectionName"]) == ("vn2", "vn2")


@pytest.mark.parametrize("v", VERSIONS)
async def test_list_filters_by_labels_and_the_count_routes_count(raw: Raw, v: Version) -> None:
    label = f"list-{v.api}"
    wanted = await create(raw, v, CREATE_BODY | {"labels": {"team": "wire", "pick": label}})
    await create(raw, v, CREATE_BODY | {"labels": {"team": "wire", "pick": "other"}})
    listed = json_of(await raw.call("GET", url(raw, v, "sandboxes", f"labels=pick={label},team=wire")), 200)
    assert listed == [
        sandbox_body(raw, wanted, state="Running") | {"labels": {"team": "wire", "pick": label}}
    ]
    assert json_of(await raw.call("GET", url(raw, v, "sandboxes", "labels=pick=nobody")), 200) == []

    every = json_of(await raw.call("GET", url(raw, v, "sandboxes")), 200)
    assert json_of(await raw.call("GET", url(raw, v, "sandboxes/count")), 200) == len(every)
    snapshots = json_of(await raw.call("GET", url(raw, v, "snapshots")), 200)
    assert json_of(await raw.call("GET", url(raw, v, "snapshots/count")), 200) == len(snapshots)


@pytest.mark.parametrize("v", VERSIONS)
async def test_delete_answers_204_and_then_the_sandbox_is_a_404_with_the_error_body(
    raw: Raw, v: Version
) -> None:
    sandbox_id = await create(raw, v)
    deleted = await raw.call("DELETE", url(raw, v, f"sandboxes/{sandbox_id}"))
    assert (deleted.status, deleted.body) == (204, b"")
    gone = await raw.call("GET", url(raw, v, f"sandboxes/{sandbox_id}"))
    assert json_of(gone, 404) == error_body(
        404, "Not Found", "SandboxNotFound", f"Sandbox '{sandbox_id}' was not found.", None
    )
    assert gone.headers["x-ms-error-code"] == "SandboxNotFound"


@pytest.mark.parametrize("v", VERSIONS)
async def test_execute_shell_and_execute_command_answer_exit_code_output_and_duration(
    raw: Raw, v: Version
) -> None:
    sandbox_id = await create(raw, v)
    shell = await raw.call(
        "POST",
        url(raw, v, f"sandboxes/{sandbox_id}/executeShellCommand"),
        body={"command": 'echo "$GREETING $PWD"; echo err >&2; exit 3', "workingDirectory": "/tmp"},
    )
    assert json_of(shell, 200) == {
        "exitCode": 3,
        "stdout": "hi /tmp\n",
        "stderr": "err\n",
        "executionTimeMs": Count(),
        "timedOut": False,
        "truncated": False,
    }
    argv = await raw.call(
        "POST",
        url(raw, v, f"sandboxes/{sandbox_id}/executeCommand"),
        body={"command": "printf", "args": ["%s|%s", "a b", "$HOME"], "environment": {"X": "1"}},
    )
    assert json_of(argv, 200) == {
        "exitCode": 0,
        "stdout": "a b|$HOME",
        "stderr": "",
        "executionTimeMs": Count(),
        "timedOut": False,
        "truncated": False,
    }


@pytest.mark.parametrize("v", VERSIONS)
async def test_stop_and_resume_answer_their_final_state_and_exec_while_stopped_is_409(
    raw: Raw, v: Version
) -> None:
    sandbox_id = await create(raw, v)
    stopped = json_of(await raw.call("POST", url(raw, v, f"sandboxes/{sandbox_id}/stop")), 200)
    details = {"stoppedReason": "UserStopped", "stoppedAt": TIME}
    assert stopped == sandbox_body(raw, sandbox_id, state=v.suspended, stopped=details)

    refused = await raw.call(
        "POST", url(raw, v, f"sandboxes/{sandbox_id}/executeShellCommand"), body={"command": "true"}
    )
    assert json_of(refused, 409) == error_body(
        409,
        "Conflict",
        "SandboxNotRunning",
        f"Sandbox '{sandbox_id}' is Suspended, not Running; resume it first.",
        None,
    )

    resumed = json_of(await raw.call("POST", url(raw, v, f"sandboxes/{sandbox_id}/resume")), 200)
    assert resumed == sandbox_body(raw, sandbox_id, state="Running")


@pytest.mark.parametrize("v", VERSIONS)
async def test_disk_mode_stop_is_stopped_in_both_versions(raw: Raw, v: Version) -> None:
    disk = {"autoSuspendPolicy": {"enabled": True, "interval": 300, "mode": "Disk"}}
    sandbox_id = await create(raw, v, CREATE_BODY | {"lifecycle": disk})
    stopped = json_of(await raw.call("POST", url(raw, v, f"sandboxes/{sandbox_id}/stop")), 200)
    assert (stopped["state"], stopped["stateDetails"]["stoppedReason"]) == ("Stopped", "UserStopped")


@pytest.mark.parametrize("v", VERSIONS)
async def test_lifecycle_answers_the_sandbox_with_the_policy_under_both_spellings(
    raw: Raw, v: Version
) -> None:
    sandbox_id = await create(raw, v)
    reply = await raw.call(
        "POST",
        url(raw, v, f"sandboxes/{sandbox_id}/lifecycle"),
        body={"autoDeletePolicy": {"enabled": True, "deleteIntervalInSeconds": 3600}},
    )
    policy = {
        "autoSuspendPolicy": {
            "enabled": True,
            "interval": 300,
            "idleTimeoutInSeconds": 300,
            "mode": "Memory",
        },
        "autoDeletePolicy": {"enabled": True, "deleteIntervalInSeconds": 3600, "trigger": "AfterSuspend"},
    }
    assert (
        json_of(reply, 200) == sandbox_body(raw, sandbox_id, state="Running") | {"lifecycle": policy} | policy
    )


@pytest.mark.parametrize("v", VERSIONS)
async def test_stats_answer_the_union_of_the_sdk_and_spec_fields(raw: Raw, v: Version) -> None:
    sandbox_id = await create(raw, v)
    stats = json_of(await raw.call("GET", url(raw, v, f"sandboxes/{sandbox_id}/stats")), 200)
    storage = {"usedBytes": Count(), "totalBytes": 2 * 1024**3, "availableBytes": Count()}
    assert stats == {
        "cpu": {"usageNanoCores": Count(), "usageCoreNanoSeconds": Count()},
        "memory": {"usedBytes": Count(1), "totalBytes": 1024**3, "availableBytes": Count()},
        "storage": storage,
        "disk": [{"mountPoint": "/", "filesystem": "sandbox", "label": "sandbox", **storage}],
        "network": {"rxBytes": 0, "txBytes": 0, "rxPackets": 0, "txPackets": 0},
        "processes": Count(1),
        "uptimeSecs": Count(),
        "source": Like("cgroup|proc"),
    }


@pytest.mark.parametrize("v", VERSIONS)
async def test_files_write_list_stat_mkdir_delete_with_both_fileinfo_spellings(raw: Raw, v: Version) -> None:
    sandbox_id = await create(raw, v)
    files = f"sandboxes/{sandbox_id}/files"
    wrote = await raw.call(
        v.write_method,
        url(raw, v, files, "path=/root/w/a.txt&createDirs=true&mode=0644"),
        raw=b"hello",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert json_of(wrote, 201) == {"success": True, "bytesWritten": 5, "path": "/root/w/a.txt"}
    file_info = {
        "name": "a.txt",
        "path": "/root/w/a.txt",
        "size": 5,
        "isDirectory": False,
        "isDir": False,
        "isSymlink": False,
        "symlinkTarget": None,
        "modifiedAt": TIME,
        "modifiedTime": Count(1),
        "mode": v.mode_644,
        "permissions": 0o644,
    }
    listed = json_of(await raw.call("GET", url(raw, v, f"{files}/list", "path=/root/w")), 200)
    assert listed == {"path": "/root/w", "entries": [file_info]}
    assert (
        json_of(await raw.call("GET", url(raw, v, f"{files}/stat", "path=/root/w/a.txt")), 200) == file_info
    )
    read = await raw.call("GET", url(raw, v, files, "path=/root/w/a.txt"))
    assert (read.status, read.body) == (200, b"hello")

    made = await raw.call("POST", url(raw, v, f"{files}/mkdir"), body={"path": "/root/w/d"})
    assert json_of(made, 200) == file_info | {
        "name": "d",
        "path": "/root/w/d",
        "size": Count(),
        "isDirectory": True,
        "isDir": True,
        "mode": v.mode_755,
        "permissions": 0o755,
        "success": True,
    }
    removed = await raw.call("DELETE", url(raw, v, files, "path=/root/w/d"))
    assert json_of(removed, 200) == {"success": True, "path": "/root/w/d"}
    missing = await raw.call("GET", url(raw, v, f"{files}/stat", "path=/root/w/d"))
    assert json_of(missing, 404)["error"]["code"] == "FileNotFound"


@pytest.mark.parametrize("v", VERSIONS)
async def test_snapshot_and_commit_answer_ready_records_the_pollers_accept(raw: Raw, v: Version) -> None:
    sandbox_id = await create(raw, v)
    snap = await raw.call(
        "POST", url(raw, v, f"sandboxes/{sandbox_id}/snapshot"), body={"labels": {"name": "s1"}}
    )
    snapshot = {
        "id": UUID,
        "labels": {"name": "s1"},
        "sandboxId": sandbox_id,
        "status": "Ready",
        "vmmType": "Bubblewrap",
        "createdAtUtc": TIME,
        "resources": {"cpu": "500m", "memory": "1Gi", "disk": "2Gi"},
        "sizeInMB": Count(),
        "keeps": ["Disk"],
    }
    taken = json_of(snap, 200)
    assert taken == snapshot
    got = json_of(await raw.call("GET", url(raw, v, f"snapshots/{taken['id']}")), 200)
    assert got == taken

    committed = json_of(await raw.call("POST", url(raw, v, f"sandboxes/{sandbox_id}/commit"), body={}), 200)
    image = {
        "id": UUID,
        "name": UUID,
        "labels": {},
        "image": None,
        "status": {
            "state": "Ready",
            "message": None,
            "errorMessage": None,
            "createdAt": TIME,
            "updatedAt": TIME,
        },
        "sourceSandboxId": sandbox_id,
        "sizeInMB": Count(),
    }
    assert committed == {"diskImage": image, "diskImageId": UUID}
    image_id = committed["diskImageId"]
    assert committed["diskImage"]["id"] == image_id
    assert (
        json_of(await raw.call("GET", url(raw, v, f"diskimages/{image_id}")), 200) == committed["diskImage"]
    )
    assert committed["diskImage"] in json_of(await raw.call("GET", url(raw, v, "diskimages")), 200)

    # An image a sandbox was made from cannot be deleted while that sandbox exists: 409.
    user = await create(raw, v, {"sourcesRef": {"diskImage": {"id": image_id}}})
    in_use = await raw.call("DELETE", url(raw, v, f"diskimages/{image_id}"))
    assert json_of(in_use, 409) == error_body(
        409, "Conflict", "ResourceInUse", f"Disk image '{image_id}' is used by sandbox(es) {user}.", None
    )


@pytest.mark.parametrize("v", VERSIONS)
async def test_public_disk_images_list_the_python_image_and_a_missing_one_is_404(
    raw: Raw, v: Version
) -> None:
    listed = json_of(await raw.call("GET", url(raw, v, "diskimages/public")), 200)
    public = {
        "name": "python-3.12",
        "id": "python-3.12",
        "description": TEXT,
        "tags": {"python": TEXT, "interpreter": TEXT, "os": TEXT},
        "status": {"state": "Ready"},
    }
    assert [i["name"] for i in listed] == ["python-3.12", "python-3.13", "python-3.14", "ubuntu"]
    assert listed[0] == public
    assert json_of(await raw.call("GET", url(raw, v, "diskimages/public/python-3.12")), 200) == public
    missing = await raw.call("GET", url(raw, v, "diskimages/public/nosuch"))
    assert json_of(missing, 404) == error_body(
        404, "Not Found", "DiskImageNotFound", "There is no public disk image 'nosuch'.", "image"
    )


@pytest.mark.parametrize("v", VERSIONS)
async def test_a_registry_disk_image_is_recorded_failed_with_the_reason_under_both_names(
    raw: Raw, v: Version
) -> None:
    body = (
        {"image": {"base": "mcr.microsoft.com/x:1"}, "labels": {"name": "reg"}}
        if v is SDK
        else {"source": {"kind": "registry", "imageUrl": "mcr.microsoft.com/x:1"}, "name": "reg"}
    )
    made = json_of(await raw.call(v.create_method, url(raw, v, "diskimages"), body=body), 201)
    reason = Like(r"The local server cannot pull 'mcr\.microsoft\.com/x:1': .+")
    assert made == {
        "id": UUID,
        "name": "reg",
        "labels": {"name": "reg"},
        "image": {"base": "mcr.microsoft.com/x:1"},
        "status": {
            "state": "Failed",
            "message": reason,
            "errorMessage": reason,
            "createdAt": TIME,
            "updatedAt": TIME,
        },
        "sourceSandboxId": None,
        "sizeInMB": 0,
    }


@pytest.mark.parametrize("v", VERSIONS)
@pytest.mark.parametrize("path", ["egress-decisions", "egressDecisions"])
async def test_egress_decisions_answer_on_both_paths_under_both_keys(raw: Raw, v: Version, path: str) -> None:
    sandbox_id = await create(raw, v)
    decisions = json_of(await raw.call("GET", url(raw, v, f"sandboxes/{sandbox_id}/{path}")), 200)
    assert decisions == {
        "networkEgress": {"allowed": [], "denied": []},
        "http": {"allowed": [], "denied": []},
        "lastUpdated": TIME,
    }


@pytest.mark.parametrize("v", VERSIONS)
async def test_bad_bodies_ids_and_versions_get_the_documented_400_404_and_405(raw: Raw, v: Version) -> None:
    sandbox_id = await create(raw, v)
    no_command = await raw.call(
        "POST", url(raw, v, f"sandboxes/{sandbox_id}/executeShellCommand"), body={"cmd": 1}
    )
    assert json_of(no_command, 400) == error_body(
        400, "Bad Request", "InvalidRequest", "'command' must be a non-empty string.", "command"
    )
    not_json = await raw.call(
        "POST",
        url(raw, v, f"sandboxes/{sandbox_id}/executeShellCommand"),
        raw=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert json_of(not_json, 400)["error"] == {
        "code": "InvalidRequest",
        "message": Like(r"The request body is not valid JSON: .+"),
        "target": "body",
        "details": [],
    }
    bad_id = await raw.call("GET", url(raw, v, "sandboxes/a..b"))
    assert json_of(bad_id, 400)["error"]["code"] == "InvalidIdentifier"
    unknown_snapshot = await raw.call("GET", url(raw, v, "snapshots/nosuch"))
    assert json_of(unknown_snapshot, 404)["error"]["code"] == "SnapshotNotFound"

    no_version = await raw.call("GET", raw.group_url(GROUP, "sandboxes", version=None))
    assert json_of(no_version, 400) == error_body(
        400,
        "Bad Request",
        "MissingApiVersionParameter",
        "The 'api-version' query parameter is required; supported: 2026-02-01-preview, 2026-09-01-preview.",
        "api-version",
    )
    wrong_method = await raw.call("PATCH", url(raw, v, f"sandboxes/{sandbox_id}/stats"))
    assert json_of(wrong_method, 405)["error"]["code"] == "MethodNotAllowed"
    assert wrong_method.headers["Allow"] == "GET"

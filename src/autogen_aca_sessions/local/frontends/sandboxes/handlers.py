"""The handlers of the Sandboxes data plane: one function per operation of the reference's
operation map (section 3.1), each reading with ``wire.common`` and rendering with the
request's :class:`~.wire.common.VersionWire`.

Create, stop and resume finish before they answer and answer the final state (``Running``,
``Suspended``/``Stopped``, ``Running``), so the SDK's pollers, which look again only after 3 s
unless the first answer shows the target state, return at once.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...runtime.sandboxes.errors import FileTooLarge
from ...runtime.sandboxes.models import SandboxInfo, SnapshotContent
from ..dataplane.wire.errors import WireError
from .call import SandboxCall, json_response, runtime_await, runtime_call
from .wire.common import (
    bad_request,
    read_create,
    read_exec,
    read_image_create,
    read_labels_body,
    read_lifecycle,
    read_mkdir,
    read_mode,
    render_disk_image,
    render_exec,
    render_public_image,
    render_snapshot,
    render_stats,
)

__all__ = ["MAX_FILE_BYTES"]

MAX_FILE_BYTES = 256 * 1024 * 1024
"""Largest file write (the spec answers 413 above its limit; it names none)."""


def _sandbox_body(call: SandboxCall, info: SandboxInfo) -> dict[str, Any]:
    url = f"{call.base_url}{call.group.path}/sandboxes/{info.id}"
    return call.wire.render_sandbox(
        info, group_id=call.group.resource_id, management_url=url, region=call.group.region
    )


def _labels_filter(call: SandboxCall) -> dict[str, str]:
    raw = call.query("labels")
    if raw is None or raw == "":
        return {}
    labels: dict[str, str] = {}
    for part in raw.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise bad_request("'labels' must be key=value pairs separated by commas.", "labels")
        labels[key.strip()] = value.strip()
    return labels


# ------------------------------------------------------------------------------------------ sandboxes


async def list_sandboxes(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/sandboxes[?labels=k=v,...]``: a bare array (both the SDK and the spec take it)."""
    labels = _labels_filter(call)
    sandboxes = runtime_call(lambda: call.runtime.list_sandboxes(call.group.runtime_id, labels))
    return json_response([_sandbox_body(call, s) for s in sandboxes])


async def count_sandboxes(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/sandboxes/count``: the number as JSON."""
    sandboxes = runtime_call(lambda: call.runtime.list_sandboxes(call.group.runtime_id))
    return json_response(len(sandboxes))


async def create_sandbox(call: SandboxCall) -> web.StreamResponse:
    """``PUT`` (SDK) or ``POST`` (spec) ``{g}/sandboxes``: answered once the sandbox runs."""
    spec = read_create(await call.json())
    info = await runtime_await(call.runtime.create(call.group.runtime_id, spec))
    return json_response(_sandbox_body(call, info), call.wire.create_status)


async def get_sandbox(call: SandboxCall) -> web.StreamResponse:
    """``GET {s}``."""
    return json_response(_sandbox_body(call, call.sandbox().info))


async def delete_sandbox(call: SandboxCall) -> web.StreamResponse:
    """``DELETE {s}``: answered once it is gone (a GET then is 404, as the SDK's poller wants)."""
    sandbox_id = call.ident("sandbox_id")
    await runtime_await(call.runtime.delete(call.group.runtime_id, sandbox_id))
    return web.Response(status=204)


async def stop_sandbox(call: SandboxCall) -> web.StreamResponse:
    """``POST {s}/stop`` (and the spec's ``/stop/async``): the lifecycle's suspend mode decides
    what is kept; answered with the stopped sandbox."""
    info = await runtime_await(call.sandbox().stop())
    return json_response(_sandbox_body(call, info))


async def resume_sandbox(call: SandboxCall) -> web.StreamResponse:
    """``POST {s}/resume``: answered once it runs again."""
    info = await runtime_await(call.sandbox().resume())
    return json_response(_sandbox_body(call, info))


async def set_lifecycle(call: SandboxCall) -> web.StreamResponse:
    """``POST {s}/lifecycle``: the policy in force, under both spellings (the SDK parses it as a
    policy, the spec's clients as a Sandbox; the body is both)."""
    sandbox = call.sandbox()
    policy = read_lifecycle(await call.json(), sandbox.lifecycle)
    info = runtime_call(lambda: sandbox.set_lifecycle(policy))
    body = _sandbox_body(call, info)
    body.update(body["lifecycle"])
    return json_response(body)


async def stats(call: SandboxCall) -> web.StreamResponse:
    """``GET {s}/stats``."""
    sandbox = call.sandbox()
    return json_response(render_stats(await runtime_await(sandbox.stats())))


# ------------------------------------------------------------------------------------------ commands


async def execute_shell(call: SandboxCall) -> web.StreamResponse:
    """``POST {s}/executeShellCommand`` ``{command, workingDirectory?, environment?, timeoutInSeconds?}``."""
    sandbox = call.sandbox()
    request = read_exec(await call.json(), argv=False)
    assert request.command is not None
    result = await runtime_await(
        sandbox.exec_shell(
            request.command,
            cwd=request.working_directory,
            env=request.environment,
            timeout=request.timeout_seconds,
        )
    )
    return json_response(render_exec(result))


async def execute_command(call: SandboxCall) -> web.StreamResponse:
    """``POST {s}/executeCommand`` ``{command, args[], environment, workingDirectory}``: no shell."""
    sandbox = call.sandbox()
    request = read_exec(await call.json(), argv=True)
    assert request.argv is not None
    result = await runtime_await(
        sandbox.exec_argv(
            list(request.argv),
            cwd=request.working_directory,
            env=request.environment,
            timeout=request.timeout_seconds,
        )
    )
    return json_response(render_exec(result))


# ------------------------------------------------------------------------------------------ snapshots, images


async def snapshot(call: SandboxCall) -> web.StreamResponse:
    """``POST {s}/snapshot`` ``{}`` or ``{"labels": {"name"}}``: a copy of the disk (never memory)."""
    sandbox_id = call.ident("sandbox_id")
    labels, keep = read_labels_body(await call.json(required=False))
    record = await runtime_await(call.runtime.snapshot(call.group.runtime_id, sandbox_id, labels, keep=keep))
    return json_response(render_snapshot(record))


async def commit(call: SandboxCall) -> web.StreamResponse:
    """``POST {s}/commit``: ``{"diskImage": {...}}`` (the SDK unwraps it), already ``Ready``."""
    sandbox_id = call.ident("sandbox_id")
    labels, keep = read_labels_body(await call.json(required=False))
    if SnapshotContent.MEMORY in keep:
        raise bad_request("A disk image holds a disk only; process memory cannot be committed.", "memory")
    record = await runtime_await(call.runtime.commit(call.group.runtime_id, sandbox_id, labels))
    image = render_disk_image(record)
    return json_response({"diskImage": image, "diskImageId": record.id})


async def list_snapshots(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/snapshots``."""
    records = runtime_call(lambda: call.runtime.list_snapshots(call.group.runtime_id))
    return json_response([render_snapshot(r) for r in records])


async def count_snapshots(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/snapshots/count``."""
    records = runtime_call(lambda: call.runtime.list_snapshots(call.group.runtime_id))
    return json_response(len(records))


async def get_snapshot(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/snapshots/{id}``."""
    snapshot_id = call.ident("snapshot_id")
    record = runtime_call(lambda: call.runtime.get_snapshot(call.group.runtime_id, snapshot_id))
    return json_response(render_snapshot(record))


async def delete_snapshot(call: SandboxCall) -> web.StreamResponse:
    """``DELETE {g}/snapshots/{id}``."""
    snapshot_id = call.ident("snapshot_id")
    await runtime_await(call.runtime.delete_snapshot(call.group.runtime_id, snapshot_id))
    return web.Response(status=204)


async def list_disk_images(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/diskimages``: the group's private images (from ``commit``)."""
    records = runtime_call(lambda: call.runtime.list_disk_images(call.group.runtime_id))
    return json_response([render_disk_image(r) for r in records])


async def get_disk_image(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/diskimages/{id}``."""
    image_id = call.ident("image_id")
    record = runtime_call(lambda: call.runtime.get_disk_image(call.group.runtime_id, image_id))
    return json_response(render_disk_image(record))


async def delete_disk_image(call: SandboxCall) -> web.StreamResponse:
    """``DELETE {g}/diskimages/{id}`` (409 while a sandbox uses it)."""
    image_id = call.ident("image_id")
    await runtime_await(call.runtime.delete_disk_image(call.group.runtime_id, image_id))
    return web.Response(status=204)


async def create_disk_image(call: SandboxCall) -> web.StreamResponse:
    """``PUT`` (SDK, ``{"image": {"base"}}``) or ``POST`` (spec, ``{"source": {"kind":
    "registry", "imageUrl"}}``) ``{g}/diskimages``: the local server reaches no registry, so the
    image is recorded ``Failed`` with a message saying so (the SDK's poller raises it); ``commit``
    is how images are made here."""
    body = await call.json()
    base, labels = read_image_create(body)
    record = runtime_call(lambda: call.runtime.create_registry_image(call.group.runtime_id, base, labels))
    return json_response(render_disk_image(record), 201)


async def list_public_images(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/diskimages/public``: what this server can create sandboxes from."""
    return json_response([render_public_image(i) for i in call.runtime.public_images()])


async def get_public_image(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/diskimages/public/{name}``."""
    name = call.ident("image")
    for image in call.runtime.public_images():
        if image.name.lower() == name.lower():
            return json_response(render_public_image(image))
    raise WireError(404, "DiskImageNotFound", f"There is no public disk image '{name}'.", target="image")


# ------------------------------------------------------------------------------------------ files


async def read_file(call: SandboxCall) -> web.StreamResponse:
    """``GET {s}/files?path=``: the raw bytes, streamed."""
    sandbox = call.sandbox()
    path = call.path_query()
    chunks, size = await runtime_await(sandbox.open_file(path))
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = size
    await response.prepare(call.request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


def _file_too_large() -> str:
    return f"Files are limited to {MAX_FILE_BYTES} bytes ({MAX_FILE_BYTES // 2**20} MiB) per write."


async def _limited_body(call: SandboxCall) -> Any:
    # Raised inside the runtime's write as a runtime error, not a WireError: the file helpers
    # turn their own 413 into "over the disk quota", which would hide which limit was hit.
    total = 0
    while chunk := await call.request.content.readany():
        total += len(chunk)
        if total > MAX_FILE_BYTES:
            raise FileTooLarge(_file_too_large(), target="body")
        yield chunk


async def write_file(call: SandboxCall) -> web.StreamResponse:
    """``PUT`` (SDK) or ``POST`` (spec) ``{s}/files?path=&createDirs=&mode=``, raw body."""
    sandbox = call.sandbox()
    path = call.path_query()
    create_dirs = call.flag("createDirs", True)
    mode = read_mode(call.query("mode"))
    if call.request.content_length is not None and call.request.content_length > MAX_FILE_BYTES:
        # Refused before the sandbox's disk is touched (and before the body is read).
        raise WireError(413, "RequestBodyTooLarge", _file_too_large(), target="body")
    written = await runtime_await(
        sandbox.write_file(path, _limited_body(call), create_dirs=create_dirs, mode=mode)
    )
    return json_response({"success": True, "bytesWritten": written, "path": path}, call.wire.write_status)


async def delete_file(call: SandboxCall) -> web.StreamResponse:
    """``DELETE {s}/files?path=&recursive=``."""
    sandbox = call.sandbox()
    path = call.path_query()
    recursive = call.flag("recursive", False)
    await runtime_await(sandbox.delete_file(path, recursive=recursive))
    return json_response({"success": True, "path": path})


async def list_files(call: SandboxCall) -> web.StreamResponse:
    """``GET {s}/files/list?path=``: ``{path, entries}``."""
    sandbox = call.sandbox()
    path = call.query("path") or "/"
    entries = await runtime_await(sandbox.list_files(path))
    return json_response({"path": path, "entries": [call.wire.render_file(e) for e in entries]})


async def stat_file(call: SandboxCall) -> web.StreamResponse:
    """``GET {s}/files/stat?path=``."""
    sandbox = call.sandbox()
    entry = await runtime_await(sandbox.stat_file(call.path_query()))
    return json_response(call.wire.render_file(entry))


async def mkdir(call: SandboxCall) -> web.StreamResponse:
    """``POST {s}/files/mkdir`` ``{path, createParents?, mode?}``."""
    sandbox = call.sandbox()
    path, parents, mode = read_mkdir(await call.json())
    entry = await runtime_await(sandbox.mkdir(path, parents=parents, mode=mode))
    body = call.wire.render_file(entry)
    body["success"] = True
    return json_response(body)


# ------------------------------------------------------------------------------------------ egress, refusals


async def not_served(call: SandboxCall) -> web.StreamResponse:
    """Operations the local server does not serve (ports, volumes, connections): a clear 400
    naming what is missing, never a silent success (egress and secrets: ``egress.py``,
    ``secrets.py``)."""
    await call.json(required=False)
    raise WireError(
        400,
        "OperationNotSupportedLocally",
        f"'{call.request.method} .../{call.params.get('what', 'this operation')}' is not served by the "
        "local server: sandboxes have a loopback-only network whose only way out is the egress proxy "
        "(no ports), and there are no volumes or connections. See the README's 'Sandboxes' section.",
        target="path",
    )


async def not_streamed(call: SandboxCall) -> web.StreamResponse:
    """``{s}/logstream`` and ``{s}/processes/stream`` (spec-only WebSockets): a clear 400.

    Both stream what a container's main process writes, or its process table. A local sandbox has
    no main process of its own (its processes are the commands it is sent), so there is nothing
    to stream; a command's output is streamed by ``exec/stream``. The refusal comes before any
    upgrade, so a client sees the error body."""
    raise WireError(
        400,
        "OperationNotSupportedLocally",
        f"'GET .../{call.params.get('what', 'this stream')}' is not served by the local server: a local "
        "sandbox runs no container entrypoint whose log or process table could be streamed. Stream a "
        "command's output with the 'exec/stream' WebSocket (README, 'Streaming output').",
        target="path",
    )


async def empty_list(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/volumes``: none exist here."""
    return json_response([])

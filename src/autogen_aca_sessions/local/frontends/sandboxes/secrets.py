"""The secrets routes of the Sandboxes data plane (reference section 3.8), per group, in memory.

``GET {g}/secrets`` → ``{"secrets": [{id, keys, createdAt, updatedAt}]}`` (a bare array crashes
the SDK); ``PUT {g}/secrets/{id}`` ``{"values": {key: value}}`` → 201 new / 200 replaced, with
the metadata (values are not echoed: they travel the wire only when written and when peeked);
``DELETE {g}/secrets/{id}`` → 204; ``GET {g}/secrets/{id}/keys`` → ``{"keys"}``;
``POST {g}/secrets/{id}/peek`` → ``{id, values}``. Secret values are used by egress Transform
rules at the edge and never enter a sandbox.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...runtime.sandboxes.secrets import SecretRecord, check_secret_id
from .call import SandboxCall, json_response, runtime_call
from .wire.common import bad_request, iso

__all__ = ["delete_secret", "list_secrets", "peek_secret", "put_secret", "secret_keys"]


def _metadata(record: SecretRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.id,
        "keys": record.keys,
        "createdAt": iso(record.created_at),
        "updatedAt": iso(record.updated_at),
    }


def _secret_id(call: SandboxCall) -> str:
    return str(runtime_call(lambda: check_secret_id(call.params["secret_id"])))


async def list_secrets(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/secrets``: ids and keys, never values."""
    records = runtime_call(lambda: call.runtime.secrets(call.group.runtime_id).list())
    return json_response({"secrets": [_metadata(r) for r in records]})


async def put_secret(call: SandboxCall) -> web.StreamResponse:
    """``PUT {g}/secrets/{id}`` ``{"values": {...}}``: create or replace the values whole."""
    secret_id = _secret_id(call)
    body = await call.json()
    if not isinstance(body, dict) or "values" not in body:
        raise bad_request('The body must be {"values": {"<key>": "<value>", ...}}.', "values")
    store = runtime_call(lambda: call.runtime.secrets(call.group.runtime_id))
    record, created = runtime_call(lambda: store.put(secret_id, body["values"]))
    return json_response(_metadata(record), 201 if created else 200)


async def delete_secret(call: SandboxCall) -> web.StreamResponse:
    """``DELETE {g}/secrets/{id}``: 204; a Transform naming it then fails closed."""
    secret_id = _secret_id(call)
    store = runtime_call(lambda: call.runtime.secrets(call.group.runtime_id))
    runtime_call(lambda: store.delete(secret_id))
    return web.Response(status=204)


async def secret_keys(call: SandboxCall) -> web.StreamResponse:
    """``GET {g}/secrets/{id}/keys``: ``{"id", "keys"}``."""
    secret_id = _secret_id(call)
    record = runtime_call(lambda: call.runtime.secrets(call.group.runtime_id).get(secret_id))
    return json_response({"id": record.id, "keys": record.keys})


async def peek_secret(call: SandboxCall) -> web.StreamResponse:
    """``POST {g}/secrets/{id}/peek`` (no body): ``{"id", "values"}`` for the key holder."""
    secret_id = _secret_id(call)
    await call.json(required=False)
    record = runtime_call(lambda: call.runtime.secrets(call.group.runtime_id).get(secret_id))
    return json_response({"id": record.id, "values": dict(record.values)})

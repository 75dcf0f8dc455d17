"""``LocalSessionsServer``: many session pools on one port, and the ARM management plane.

::

    async with LocalSessionsServer() as server:
        pool = await server.create_pool("tenanta", container_type="Shell")
        client = SessionsClient(pool.endpoint, server.async_credential)
        ...
        await server.delete_pool("tenanta")

Each pool's data plane is served at ``{base}/subscriptions/{sub}/resourceGroups/{rg}/sessionPools/{name}``
(the shape of ``LocalSessionPool.endpoint``) by the same application a ``LocalSessionPool``
runs; with ``management_plane=True`` (the default) ``Microsoft.App/sessionPools`` is served at
``{base}/subscriptions/...`` so that ``curl``, the az CLI's polling and azure-mgmt-appcontainers
(``ContainerAppsAPIClient(credential, subscription_id, base_url=server.base_url)``) create, change
and delete pools as on Azure. One bearer key (:attr:`api_key`) authenticates both planes.

Pools live as long as the server process: nothing is persisted (sessions are ephemeral on
Azure too).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import shutil
import ssl
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from aiohttp import web

from ..config import PoolConfig
from ..frontends.access_log import access_log_middleware
from ..frontends.auth import check_authorization
from ..frontends.dataplane.endpoint import split_endpoint
from ..frontends.dataplane.wire.errors import WireError
from ..frontends.expect import expect_handler
from ..frontends.mcp.keys import McpKey
from .arm.errors import ArmError, arm_error_response
from .arm.model import (
    ContainerType,
    EgressStatus,
    LifecycleType,
    PoolSettings,
    ProvisioningState,
    ResourceKey,
    location_problem,
    name_problem,
    resource_group_problem,
    subscription_problem,
)
from .arm.operations import ArmOperation, ArmOperationKind, ArmOperationStore, location_segment
from .arm.paths import is_management_path, parse_arm_path
from .arm.routes import SESSION_POOLS, ManagementRoutes
from .arm.sandbox_groups.model import SandboxGroupSettings, group_name_problem, group_resource_id
from .arm.sandbox_groups.routes import SANDBOX_GROUPS, SandboxGroupRoutes
from .hosted import HostedPool, PoolFrontends, RuntimeOptions, config_with_settings, settings_from_config
from .listener import LocalListener, make_root, serve, tls_server_context

if TYPE_CHECKING:
    # The Sandboxes runtime and data plane (with the egress proxy they pull in) are imported
    # when the server first opens or answers a sandbox group, not with the server: ~90 ms of
    # import a pool that never hosts a sandbox would pay before its first kernel starts.
    from .sandbox_groups import HostedSandboxGroup, SandboxGroupHost

__all__ = ["LOCAL_RESOURCE_GROUP", "LOCAL_SUBSCRIPTION", "LocalSessionsServer"]

logger = logging.getLogger("autogen_aca_sessions.local")

LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
"""The subscription id in a Python-API pool's endpoint path (a local pool has none; Azure's shape is kept)."""

LOCAL_RESOURCE_GROUP = "local"
"""The resource group in a Python-API pool's endpoint path."""

PROVISIONING_WAIT_SECONDS = 120.0
"""How long a data-plane request for a pool still being provisioned waits for it."""


def _segments(request: web.Request) -> list[str]:
    """The path's segments, split before percent-decoding (so '%2F' inside a name stays in it)."""
    raw_path = request.raw_path.split("?", 1)[0]
    return [unquote(s) for s in raw_path.split("/") if s]


DataPlane = Callable[[web.Request, list[str]], Awaitable[web.StreamResponse]]
"""Serves the requests of one data-plane collection (given the path's segments)."""


def _data_plane_kind(segments: list[str]) -> str | None:
    """The folded collection of ``/subscriptions/{sub}/resourceGroups/{rg}/{collection}/{name}/...``
    (``sessionpools``), ``""`` for another path under ``/subscriptions``, None at the root."""
    if segments and segments[0].lower() == "subscriptions":
        if len(segments) >= 6 and segments[2].lower() == "resourcegroups":
            return segments[4].lower()
        return ""
    return None


def _is_execution_poll(method: str, segments: list[str]) -> bool:
    """``GET /executions/{id}``: the relative ``Operation-Location`` the 2024-10 contract hands
    out, which RFC 3986 resolves against the origin. The root answers it (for the default pool)
    even without ``serve_at_root``: it reads a result and runs nothing."""
    return method == "GET" and len(segments) == 2 and segments[0].lower() == "executions"


_ENDPOINTS_SHOWN = 5
"""Pool endpoints a 404 at the server root names."""


_E = TypeVar("_E", bound=enum.Enum)


def _enum(kind: type[_E], value: _E | str, what: str) -> _E:
    """The member of ``kind`` that ``value`` is or names (any letter case)."""
    if isinstance(value, kind):
        return value
    for member in kind:
        if str(member.value).lower() == str(value).lower():
            return member
    allowed = ", ".join(str(m.value) for m in kind)
    raise ValueError(f"{what} must be one of {allowed}, not {value!r}")


class LocalSessionsServer(LocalListener):
    """A local server hosting any number of session pools, with the ARM management plane.

    This is the one pool host: ``LocalSessionPool`` is this server with one pool of its own
    (:attr:`default_pool`), and ``aca-sessions serve`` runs exactly that.
    """

    _what = "local session server"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        management_plane: bool = True,
        pool_defaults: PoolConfig | None = None,
        tls: bool = False,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        allow_remote: bool = False,
        root_dir: str | Path | None = None,
        retry_after_seconds: int = 1,
        list_page_size: int = 100,
        max_pools: int = 100,
        serve_at_root: bool = False,
    ) -> None:
        """Configure the server; nothing starts until :meth:`start` (or ``async with``).

        ``pool_defaults`` is the configuration every pool starts from: its sandbox, kernel
        launcher, execution cap, resource limits and body caps apply to every pool; type,
        name, session limits, lifetime and egress come from each pool's own settings.

        ``retry_after_seconds`` is the ``Retry-After`` of long-running operations (provisioning
        takes well under a second locally); at least 1, because azure-core reads ``0`` as "no
        delay given" and then waits its default 30 s. ``list_page_size`` is the pools per list page.
        ``max_pools`` bounds how many pools may exist at once (each holds kernels and files);
        one more is refused with 409 ``SessionPoolQuotaExceeded``, as a subscription quota would.

        ``serve_at_root=True`` also serves the :attr:`default_pool`'s data plane at the server
        root (``{base_url}/executions``). Off (the default) the root answers 404 naming the pool
        endpoints, as Azure does: an application configured with the bare base URL fails here
        as it would on Azure, instead of working only locally. One root path is answered
        either way: ``GET /executions/{id}``, the relative ``Operation-Location`` of the
        2024-10 contract as RFC 3986 resolves it (it runs nothing).
        """
        super().__init__(
            host=host,
            port=port,
            api_key=api_key,
            tls=tls,
            tls_cert=tls_cert,
            tls_key=tls_key,
            allow_remote=allow_remote,
            root_dir=root_dir,
        )
        if retry_after_seconds < 1 or list_page_size < 1 or max_pools < 1:
            raise ValueError("retry_after_seconds, list_page_size and max_pools must be at least 1")
        self.max_pools = max_pools
        """Most pools at once."""
        self.management_plane = management_plane
        """Whether ``Microsoft.App/sessionPools`` is served."""
        self.serve_at_root = serve_at_root
        """Whether the default pool's data plane also answers at the server root."""
        self.pool_defaults = pool_defaults if pool_defaults is not None else PoolConfig()
        """The configuration every pool starts from."""
        self.operations = ArmOperationStore()
        """Long-running management operations (their status URLs)."""
        self._routes: ManagementRoutes[HostedPool] = ManagementRoutes(
            self,
            retry_after_seconds=retry_after_seconds,
            page_size=list_page_size,
            origin=lambda: self.base_url,
        )
        self._pools: dict[tuple[str, str, str], HostedPool] = {}
        self._default: HostedPool | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._options: RuntimeOptions | None = None
        self._access_log = access_log_middleware(self._route_of)
        # Sandboxes (Microsoft.App/sandboxGroups and their data plane): the runtime is opened on
        # first use, so a server that never hosts a sandbox pays nothing for it.
        self._sandbox_host: SandboxGroupHost | None = None
        self._sandbox_lock = asyncio.Lock()
        self._sandbox_failure: str | None = None
        self._routes.resource_types[SANDBOX_GROUPS] = SandboxGroupRoutes(
            self._sandbox_host_for_arm, page_size=list_page_size
        )
        self.data_planes: dict[str, DataPlane] = {
            SESSION_POOLS: self._session_pool_data_plane,
            SANDBOX_GROUPS: self._sandbox_data_plane,
        }
        """Data planes served under ``/subscriptions/{sub}/resourceGroups/{rg}/{collection}/{name}``,
        keyed by the folded collection (``sessionpools``); another product's data plane is one
        more entry (ARM resource types are the same kind of table: ``ManagementRoutes.resource_types``)."""

    # ------------------------------------------------------------------ properties

    @property
    def default_pool(self) -> HostedPool | None:
        """The host's own pool (``LocalSessionPool``'s, ``aca-sessions serve``'s); with
        ``serve_at_root`` it also answers data-plane paths without a pool prefix (``/executions``)."""
        return self._default

    def endpoint_for(self, key: ResourceKey) -> str:
        """The ``poolManagementEndpoint`` of the pool at ``key``."""
        return self.base_url + key.data_plane_path

    # ------------------------------------------------------------------ Python API

    async def create_pool(
        self,
        name: str,
        *,
        container_type: ContainerType | str = ContainerType.PYTHON_LTS,
        max_concurrent_sessions: int = 10,
        ready_session_instances: int = 1,
        lifecycle_type: LifecycleType | str = LifecycleType.TIMED,
        cooldown_period_seconds: int = 300,
        max_alive_period_seconds: int = 3600,
        egress: bool = False,
        mcp_enabled: bool = False,
        resource_group: str = LOCAL_RESOURCE_GROUP,
        subscription: str = LOCAL_SUBSCRIPTION,
        location: str = "local",
        default: bool = False,
    ) -> HostedPool:
        """Create (or replace) a pool with ARM-style settings and wait until it serves.

        Raises ``ValueError`` for settings the server cannot run, ``ArmError`` (409) where the
        management plane would refuse too (too many pools, another operation running, a move to
        another location), ``RuntimeError`` when the pool could not be started.

        Unlike the management plane, periods are not held to Azure's 300-3600 s (tests want
        short ones). ``default=True`` makes it the :attr:`default_pool`.
        """
        kind = _enum(ContainerType, container_type, "container_type")
        if kind not in (ContainerType.PYTHON_LTS, ContainerType.SHELL):
            raise ValueError(f"The local server runs PythonLTS and Shell pools, not {kind.value}")
        if max_concurrent_sessions < 1 or ready_session_instances < 0:
            raise ValueError("max_concurrent_sessions must be >= 1 and ready_session_instances >= 0")
        if cooldown_period_seconds < 1 or max_alive_period_seconds < 1:
            raise ValueError("cooldown and max alive periods must be at least 1 second")
        problem = location_problem(location)
        if problem is not None:
            raise ValueError(f"location {problem}")
        settings = PoolSettings(
            location=location,
            container_type=kind,
            max_concurrent_sessions=max_concurrent_sessions,
            ready_session_instances=ready_session_instances,
            lifecycle_type=_enum(LifecycleType, lifecycle_type, "lifecycle_type"),
            cooldown_seconds=cooldown_period_seconds,
            max_alive_seconds=max_alive_period_seconds,
            egress=EgressStatus.ENABLED if egress else EgressStatus.DISABLED,
            mcp_enabled=mcp_enabled,
        )
        key = self._key(subscription, resource_group, name)
        pool, operation = await self.begin_create_or_replace(key, settings)
        await operation.wait()
        if pool.state is not ProvisioningState.SUCCEEDED:
            raise RuntimeError(f"The pool {name!r} could not be provisioned: {pool.failure}")
        if default:
            self._default = pool
        return pool

    async def add_pool(
        self,
        config: PoolConfig,
        *,
        default: bool = False,
        mcp_key: McpKey | None = None,
        frontends: PoolFrontends | None = None,
        resource_group: str = LOCAL_RESOURCE_GROUP,
        subscription: str = LOCAL_SUBSCRIPTION,
    ) -> HostedPool:
        """Host a pool made from ``config`` as it is (its name, exact periods, limits) and wait
        until it serves; ``default=True`` makes it the :attr:`default_pool`.

        ``mcp_key`` is its MCP key (generated unless given), ``frontends`` its faults and extra
        middlewares. A pool that cannot start raises what stopped it (``RuntimeError`` when
        bubblewrap is required and missing, ...).
        """
        options = self._require_running()
        key = ResourceKey(subscription, resource_group, config.pool_name)
        if self.find_pool(key) is not None:
            raise ValueError(f"A pool named {config.pool_name!r} already exists in {resource_group!r}")
        pool = self._new_pool(key, config, settings_from_config(config), mcp_key=mcp_key, frontends=frontends)
        operation = self.operations.start(ArmOperationKind.CREATE, key, pool.settings.location)
        self._run(pool, operation, pool.provision(options))
        await operation.wait()
        if pool.error is not None:
            await self._delete(pool)
            raise pool.error
        if default:
            self._default = pool
        return pool

    def get_pool(
        self, name: str, *, resource_group: str = LOCAL_RESOURCE_GROUP, subscription: str = LOCAL_SUBSCRIPTION
    ) -> HostedPool | None:
        """The pool named so, or None."""
        return self.find_pool(ResourceKey(subscription, resource_group, name))

    def list_pools(
        self, *, subscription: str | None = None, resource_group: str | None = None
    ) -> list[HostedPool]:
        """Pools (of a subscription, of a resource group), sorted by resource group and name."""
        found = [
            pool
            for pool in self._pools.values()
            if (subscription is None or pool.key.subscription.lower() == subscription.lower())
            and (resource_group is None or pool.key.resource_group.lower() == resource_group.lower())
        ]
        return sorted(
            found, key=lambda p: (p.key.subscription.lower(), p.key.resource_group.lower(), p.key.name)
        )

    async def delete_pool(
        self, name: str, *, resource_group: str = LOCAL_RESOURCE_GROUP, subscription: str = LOCAL_SUBSCRIPTION
    ) -> bool:
        """Delete a pool (its kernels stop, its files go) and wait for it; False if none."""
        pool = self.get_pool(name, resource_group=resource_group, subscription=subscription)
        if pool is None:
            return False
        await self.begin_delete(pool).wait()
        return True

    # ------------------------------------------------------------------ sandbox groups

    async def sandbox_groups(self) -> SandboxGroupHost:
        """The server's sandbox groups (the Sandboxes runtime is opened on first use).

        Raises :class:`~..runtime.sandboxes.errors.SandboxStartFailed` when this machine cannot
        run sandboxes (no working bubblewrap)."""
        self._require_running()
        from ..runtime.sandboxes.errors import SandboxStartFailed
        from ..runtime.sandboxes.runtime import SandboxRuntime
        from .sandbox_groups import SandboxGroupHost

        async with self._sandbox_lock:
            if self._sandbox_host is None:
                if self._sandbox_failure is not None:
                    raise SandboxStartFailed(self._sandbox_failure)
                try:
                    # Sandboxes' egress proxy never reaches this server's port (data plane,
                    # ARM, MCP), whatever a policy says.
                    runtime = await SandboxRuntime.open(
                        self.root_dir / "sandboxes",
                        hide=(self.root_dir,),
                        protected_ports=(self.port,),
                    )
                except SandboxStartFailed as exc:
                    self._sandbox_failure = exc.message
                    raise
                self._sandbox_host = SandboxGroupHost(runtime, self.operations)
                self._sandbox_host.default_domain = self._host
            return self._sandbox_host

    async def create_sandbox_group(
        self,
        name: str,
        *,
        max_sandbox_count: int | None = None,
        resource_group: str = LOCAL_RESOURCE_GROUP,
        subscription: str = LOCAL_SUBSCRIPTION,
        location: str = "local",
    ) -> HostedSandboxGroup:
        """Create (or replace) a sandbox group, as ``PUT .../Microsoft.App/sandboxGroups/{name}``
        does; its data plane is at :attr:`base_url` with the SDK's ``subscription_id``,
        ``resource_group`` and ``sandbox_group``. Raises ``ValueError`` for a bad name."""
        for problem, what in (
            (subscription_problem(subscription), "subscription"),
            (resource_group_problem(resource_group), "resource_group"),
            (group_name_problem(name), "name"),
        ):
            if problem is not None:
                raise ValueError(f"{what} {problem}")
        properties: dict[str, Any] = (
            {} if max_sandbox_count is None else {"maxSandboxCount": max_sandbox_count}
        )
        settings = SandboxGroupSettings(
            location=location, properties=properties, max_sandbox_count=max_sandbox_count
        )
        host = await self.sandbox_groups()
        group, _, _ = await host.create_or_replace(ResourceKey(subscription, resource_group, name), settings)
        return group

    async def delete_sandbox_group(
        self, name: str, *, resource_group: str = LOCAL_RESOURCE_GROUP, subscription: str = LOCAL_SUBSCRIPTION
    ) -> bool:
        """Delete a sandbox group and its sandboxes, and wait; False if there is none."""
        host = await self.sandbox_groups()
        return await host.delete(ResourceKey(subscription, resource_group, name))

    async def _sandbox_host_for_arm(self) -> SandboxGroupHost:
        from ..runtime.sandboxes.errors import SandboxStartFailed

        try:
            return await self.sandbox_groups()
        except SandboxStartFailed as exc:
            raise ArmError(
                409,
                "SandboxesUnavailable",
                f"This server cannot run sandboxes: {exc.message}",
                target="sandboxGroup",
            ) from exc

    async def _sandbox_data_plane(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        """``/subscriptions/{sub}/resourceGroups/{rg}/sandboxGroups/{group}/...``: the Sandboxes
        data plane of that group (logged as the server's own answers are)."""
        from ..frontends.sandboxes.errors import sandbox_error_response

        async def answer(request: web.Request) -> web.StreamResponse:
            try:
                check_authorization(request.headers.get("Authorization"), self.api_key)
                return await self._serve_sandboxes(request, segments)
            except WireError as err:
                return sandbox_error_response(err)

        return await self._access_log(request, answer)

    async def _serve_sandboxes(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        from ..frontends.sandboxes.call import GroupRef
        from ..frontends.sandboxes.routes import dispatch as dispatch_sandboxes

        key = ResourceKey(segments[1], segments[3], segments[5])
        host = self._sandbox_host
        group = host.find(key) if host is not None else None
        if host is None or group is None or group.deleting:
            raise WireError(
                404,
                "SandboxGroupNotFound",
                f"There is no sandbox group '{segments[5][:80]}' in resource group '{segments[3][:90]}'; "
                "create it with PUT .../providers/Microsoft.App/sandboxGroups/{name} first.",
                target="sandboxGroup",
            )
        ref = GroupRef(
            runtime_id=group.runtime_id,
            path="/" + "/".join(request.raw_path.split("?", 1)[0].split("/")[1:7]),
            resource_id=group_resource_id(group.key),
            region=group.resource.settings.location,
            server_origin=self.base_url,
        )
        return await dispatch_sandboxes(request, segments[6:], host.runtime, ref)

    # ------------------------------------------------------------------ management operations

    def find_pool(self, key: ResourceKey) -> HostedPool | None:
        """The pool at ``key`` (case-insensitive), or None."""
        return self._pools.get(key.folded)

    def _key(self, subscription: str, resource_group: str, name: str) -> ResourceKey:
        for problem, what in (
            (subscription_problem(subscription), "subscription"),
            (resource_group_problem(resource_group), "resource_group"),
            (name_problem(name), "name"),
        ):
            if problem is not None:
                raise ValueError(f"{what} {problem}")
        return ResourceKey(subscription, resource_group, name)

    def _conflict(self, pool: HostedPool) -> ArmError:
        return ArmError(
            409,
            "AnotherOperationInProgress",
            f"Another operation is in progress on session pool '{pool.name}' "
            f"(provisioningState {pool.state.value}); retry when it has finished.",
            target="sessionPoolName",
            headers={"Retry-After": "1"},
        )

    def _require_running(self) -> RuntimeOptions:
        if self._options is None or self._closed:
            raise RuntimeError(f"The {self._what} is not running")
        return self._options

    def _new_pool(
        self,
        key: ResourceKey,
        config: PoolConfig,
        settings: PoolSettings,
        *,
        mcp_key: McpKey | None = None,
        frontends: PoolFrontends | None = None,
    ) -> HostedPool:
        if len(self._pools) >= self.max_pools:
            raise ArmError(
                409,
                "SessionPoolQuotaExceeded",
                f"This server already hosts {len(self._pools)} session pools, its limit (max_pools); "
                "delete one first.",
                target="sessionPoolName",
            )
        root = self.root_dir / "pools" / f"{key.name}-{uuid.uuid4().hex[:12]}"
        pool = HostedPool(
            key,
            config,
            settings,
            endpoint=self.endpoint_for(key),
            root=root,
            mcp_key=mcp_key,
            frontends=frontends,
        )
        self._pools[key.folded] = pool
        return pool

    async def begin_create_or_replace(
        self, key: ResourceKey, settings: PoolSettings
    ) -> tuple[HostedPool, ArmOperation]:
        """Start creating the pool (or replacing its settings); returns it and the operation."""
        options = self._require_running()
        pool = self.find_pool(key)
        if pool is not None and pool.busy:
            raise self._conflict(pool)
        if pool is not None and location_segment(pool.settings.location) != location_segment(
            settings.location
        ):
            raise ArmError(
                409,
                "InvalidResourceLocation",
                f"The session pool '{key.name}' already exists in location '{pool.settings.location}'; "
                f"it cannot be moved to '{settings.location}' (delete it first).",
                target="location",
            )
        if pool is None:
            base = dataclasses.replace(self.pool_defaults, pool_name=key.name)
            pool = self._new_pool(key, config_with_settings(base, None, settings), settings)
            operation = self.operations.start(ArmOperationKind.CREATE, key, settings.location)
            self._run(pool, operation, pool.provision(options))
        else:
            operation = self.operations.start(ArmOperationKind.UPDATE, pool.key, settings.location)
            pool.state = ProvisioningState.IN_PROGRESS
            self._run(pool, operation, pool.apply(settings, options))
        return pool, operation

    async def begin_update(self, pool: HostedPool, settings: PoolSettings) -> ArmOperation:
        """Start applying ``settings`` to ``pool``."""
        options = self._require_running()
        if pool.busy:
            raise self._conflict(pool)
        operation = self.operations.start(ArmOperationKind.UPDATE, pool.key, pool.settings.location)
        self._run(pool, operation, pool.apply(settings, options))
        return operation

    def begin_delete(self, pool: HostedPool) -> ArmOperation:
        """Start deleting ``pool``."""
        self._require_running()
        running = pool.operation
        if running is not None and running.kind is ArmOperationKind.DELETE and not running.done:
            return running  # DELETE is idempotent: the delete already under way answers
        if pool.busy:
            raise self._conflict(pool)
        operation = self.operations.start(ArmOperationKind.DELETE, pool.key, pool.settings.location)
        pool.state = ProvisioningState.DELETING
        self._run(pool, operation, self._delete(pool))
        return operation

    async def _delete(self, pool: HostedPool) -> None:
        await pool.remove()
        if self._pools.get(pool.key.folded) is pool:
            del self._pools[pool.key.folded]
        if self._default is pool:
            self._default = None

    def _run(self, pool: HostedPool, operation: ArmOperation, work: Coroutine[Any, Any, None]) -> None:
        pool.busy = True
        pool.operation = operation

        async def run() -> None:
            try:
                await work
            except Exception as exc:
                logger.exception("operation %s on %s failed", operation.kind.value, pool.key.resource_id)
                operation.fail(ArmError(409, "SessionPoolOperationError", f"The operation failed: {exc}"))
                return
            finally:
                pool.busy = False
            if operation.kind is not ArmOperationKind.DELETE and pool.state is ProvisioningState.FAILED:
                operation.fail(
                    ArmError(
                        409,
                        "SessionPoolProvisioningFailed",
                        f"The session pool could not be started: {pool.failure}",
                        target="sessionPoolName",
                    )
                )
            else:
                operation.succeed()

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        segments = _segments(request)
        if self.management_plane and is_management_path(segments):
            return await self._answer_logged(request)
        kind = _data_plane_kind(segments)
        if kind is None:  # the server root
            root_pool = (
                self._default if self.serve_at_root or _is_execution_poll(request.method, segments) else None
            )
            if root_pool is None:
                return await self._answer_logged(request)
            return await self._serve_pool(request, root_pool)
        serve = self.data_planes.get(kind)
        if serve is None:
            return await self._answer_logged(request)
        return await serve(request, segments)

    async def _answer_logged(self, request: web.Request) -> web.StreamResponse:
        # The server answers itself (ARM, or no pool here): logged here, since no pool's access
        # log sees it; a pool's requests are logged by that pool's application.
        return await self._access_log(request, self._answer)

    async def _session_pool_data_plane(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        """``/subscriptions/{sub}/resourceGroups/{rg}/sessionPools/{name}/...``: that pool's data plane."""
        pool = self._pools.get((segments[1].lower(), segments[3].lower(), segments[5].lower()))
        if pool is None:
            return await self._answer_logged(request)
        return await self._serve_pool(request, pool)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        segments = _segments(request)
        try:
            check_authorization(request.headers.get("Authorization"), self.api_key)
            if self.management_plane:
                arm_path = parse_arm_path(request.path, segments)
                if arm_path is not None:
                    return await self._routes.handle(request, arm_path)
            raise self._no_pool_here(segments)
        except WireError as err:
            return arm_error_response(err)

    def _route_of(self, request: web.Request) -> tuple[str, str]:
        """The access log's route and operation of a request the server answers itself."""
        segments = _segments(request)
        if self.management_plane and is_management_path(segments):
            return "(management plane)", "management"
        if _data_plane_kind(segments) == SANDBOX_GROUPS:
            return "(sandboxes)", "sandboxes"
        if segments and segments[0].lower() == "subscriptions":
            return "(other pool)", "other"
        return "(server root)", "other"

    async def _serve_pool(self, request: web.Request, pool: HostedPool) -> web.StreamResponse:
        if pool.app is None:
            if pool.state is ProvisioningState.IN_PROGRESS:
                await pool.wait_ready(PROVISIONING_WAIT_SECONDS)
            if pool.app is None:
                check_authorization(request.headers.get("Authorization"), self.api_key)
                raise WireError(
                    409,
                    "SessionPoolNotReady",
                    f"The session pool '{pool.name}' is {pool.state.value}"
                    + (f": {pool.failure}" if pool.failure else "")
                    + ".",
                    target="sessionPool",
                    headers={"Retry-After": "1"},
                )
        # aiohttp freezes a router once serving, so pools made later cannot be added as
        # sub-applications; the pool's own application (its middlewares, auth and dispatch)
        # serves the request instead, exactly as when it runs alone. Its JSON body cap is the
        # pool's own, not the server's.
        app = pool.app
        if pool.config.max_json_bytes != request.client_max_size:
            request = request.clone(client_max_size=pool.config.max_json_bytes)
        response = await app._handle(request)
        if response.status >= 500 and not response.prepared:
            # The pool was deleted or rebuilt while this request ran, and its runtime went with
            # it: the caller's "no such pool" (or "retry"), not a failure of the server.
            if self.find_pool(pool.key) is not pool:
                raise WireError(404, "SessionPoolNotFound", f"The session pool '{pool.name}' was deleted.")
            if pool.app is not app:
                raise WireError(
                    409,
                    "SessionPoolReconfigured",
                    f"The session pool '{pool.name}' was reconfigured while the request ran; retry it.",
                    headers={"Retry-After": "1"},
                )
        return response

    def _no_pool_here(self, segments: list[str]) -> WireError:
        shown = [p.endpoint for p in self.list_pools()[:_ENDPOINTS_SHOWN]]
        where = ("; its pool endpoints: " + ", ".join(shown)) if shown else ""
        more = f" (and {len(self._pools) - len(shown)} more)" if len(self._pools) > len(shown) else ""
        if segments and segments[0].lower() == "subscriptions":
            prefix, _ = split_endpoint(segments)
            named = f" '{prefix.pool}'" if prefix is not None and prefix.pool.isprintable() else ""
            return WireError(
                404,
                "SessionPoolNotFound",
                f"This server hosts no session pool{named} at this path; pool endpoints look like "
                "/subscriptions/{sub}/resourceGroups/{rg}/sessionPools/{name}" + where + more + ".",
                target="sessionPool",
            )
        # The server root is no pool endpoint, as on Azure: name the ones it has.
        return WireError(
            404,
            "SessionPoolNotFound",
            "This is the server root, not a session pool endpoint: send data-plane calls to a pool "
            "endpoint, /subscriptions/{sub}/resourceGroups/{rg}/sessionPools/{name}" + where + more + ".",
            target="sessionPool",
        )

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except WireError as err:
            return arm_error_response(err)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return arm_error_response(
                WireError(exc.status, exc.reason.replace(" ", ""), exc.text or exc.reason)
            )
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            logger.exception("unexpected error serving %s %s", request.method, request.path)
            return web.Response(
                status=500,
                text=json.dumps(
                    {
                        "error": {
                            "code": "InternalServerError",
                            "message": "The local server failed; see its log.",
                            "target": None,
                            "details": [],
                        }
                    }
                ),
                content_type="application/json",
            )

    # ------------------------------------------------------------------ lifecycle

    async def _start(self) -> None:
        """Start serving (no pools yet: create them with :meth:`create_pool` or over ARM)."""
        root_dir = self._root_dir.absolute() if self._root_dir is not None else None
        self._root, self._owns_root = await make_root(root_dir, prefix="aca-local-server-")
        private = self._root / "server"
        await asyncio.to_thread(private.mkdir, mode=0o700, parents=True, exist_ok=True)
        server_context: ssl.SSLContext | None = None
        if self.tls:
            self.tls_cert_path, server_context = await tls_server_context(
                self._host, private / "tls", self._tls_cert, self._tls_key
            )
        app = web.Application(middlewares=[self._errors], client_max_size=self.pool_defaults.max_json_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle, expect_handler=expect_handler)
        self._runner, self._bound_port = await serve(app, self._host, self._port, server_context)
        # Made once the port is known: pools' egress proxies refuse it whatever their allowlist.
        self._options = RuntimeOptions(
            api_key=self.api_key, hide_paths=(self._root,), protected_ports=(self._bound_port,)
        )
        logger.info("local session server at %s (management plane %s)", self.base_url, self.management_plane)

    async def close(self) -> None:
        """Stop serving, delete every pool (kernels stopped, files removed). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
            self._runner = None
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._sandbox_host is not None:
            with contextlib.suppress(Exception):
                await self._sandbox_host.close()
            with contextlib.suppress(Exception):
                await self._sandbox_host.runtime.aclose()
            self._sandbox_host = None
        for pool in list(self._pools.values()):
            try:
                await pool.remove()
            except Exception:
                logger.exception("removing %s failed", pool.key.resource_id)
        self._pools.clear()
        self._default = None
        if self._owns_root and self._root is not None:
            await asyncio.to_thread(shutil.rmtree, self._root, True)

    def __repr__(self) -> str:
        where = self.base_url if self._bound_port is not None else "not started"
        return f"LocalSessionsServer({where}, {len(self._pools)} pools)"

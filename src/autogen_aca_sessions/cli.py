"""The ``aca-sessions`` command line.

``aca-sessions serve`` runs a local session pool (the Azure Container Apps dynamic sessions
data-plane API on this machine) until SIGINT or SIGTERM; with ``--management-plane`` it also
serves ARM's ``Microsoft.App/sessionPools``, so that more pools can be created and deleted.

``aca-sessions exec`` runs a file or a snippet in a session of any pool, local or Azure, and
prints what came back; it is the quickest way to check a pool from the shell.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import json
import logging
import os
import shlex
import signal
import ssl
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from autogen_aca_sessions.local import LocalSessionPool
    from autogen_aca_sessions.local.config import PoolConfig
    from autogen_aca_sessions.local.hosting.host import HostDescription, McpAccess, PoolHost

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SERVICE_ERROR",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
"""The code (or shell command) ran and succeeded; ``serve`` shut down cleanly."""
EXIT_FAILED = 1
"""The code raised, or a shell command failed without an exit code of its own; ``serve`` could not start."""
EXIT_USAGE = 2
"""Bad command line (argparse's convention), missing endpoint, unreadable input."""
EXIT_SERVICE_ERROR = 125
"""The pool refused the request or could not be reached (auth, role, pool full, network...).
125, like ``timeout(1)`` and ``docker run`` use for their own failures, so that it does not
collide with the small exit statuses shell commands pass through."""
EXIT_TIMEOUT = 124
"""The execution hit its time limit (the convention of coreutils ``timeout``)."""
EXIT_INTERRUPTED = 130
"""Ctrl+C during ``exec`` (128 + SIGINT, as shells report an interrupted command)."""

ENDPOINT_ENV = "ACA_POOL_MANAGEMENT_ENDPOINT"
API_KEY_ENV = "ACA_SESSIONS_API_KEY"
MCP_ENDPOINT_ENV = "ACA_SESSIONS_MCP_ENDPOINT"
MCP_API_KEY_ENV = "ACA_SESSIONS_MCP_API_KEY"


# --------------------------------------------------------------------------------------------
# Argument parsing


def _timeout_seconds(text: str) -> int:
    from autogen_aca_sessions.client.limits import MAX_EXECUTION_SECONDS

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}") from None
    if not 1 <= value <= MAX_EXECUTION_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be between 1 and {MAX_EXECUTION_SECONDS} (the service's limit per execution), got {value}"
        )
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def _api_versions() -> list[str]:
    from autogen_aca_sessions.client import ApiVersion

    return [version.value for version in ApiVersion]


def build_parser() -> argparse.ArgumentParser:
    """The ``aca-sessions`` argument parser (exposed for the docs and the tests)."""
    from autogen_aca_sessions import __version__
    from autogen_aca_sessions.client.limits import DEFAULT_API_VERSION, MAX_EXECUTION_SECONDS
    from autogen_aca_sessions.local.config import KernelLauncherKind, PoolConfig, PoolType, SandboxMode

    defaults = PoolConfig()
    parser = argparse.ArgumentParser(
        prog="aca-sessions",
        description=(
            "Azure Container Apps dynamic sessions: a local session pool, "
            "and a client to run code in any pool."
        ),
    )
    parser.add_argument("--version", action="version", version=f"aca-sessions {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="run a local session pool until SIGINT/SIGTERM",
        description=(
            "Serve the dynamic sessions data-plane API on this machine, backed by one sandboxed "
            "Jupyter kernel per session. Prints the endpoint and how to authenticate, runs until "
            "SIGINT (Ctrl+C) or SIGTERM, then stops every kernel and removes every session directory."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, default=8321, help="TCP port; 0 picks a free one (default: 8321)"
    )
    serve.add_argument(
        "--api-key",
        default=None,
        help=f"the bearer token clients must send (default: ${API_KEY_ENV}, or a generated one)",
    )
    serve.add_argument(
        "--pool-type",
        choices=[m.value for m in PoolType],
        default=defaults.pool_type.value,
        help=(
            "PythonLTS: code interpreter sessions; Shell: shellCommand sessions "
            f"(default: {defaults.pool_type})"
        ),
    )
    serve.add_argument(
        "--max-concurrent-sessions",
        type=_positive_int,
        default=None,
        help=(
            "sessions allowed at once; one more gets 404 like the real service "
            f"(default: {defaults.max_concurrent_sessions})"
        ),
    )
    serve.add_argument(
        "--ready-sessions",
        type=_non_negative_int,
        default=None,
        help=(
            "pre-started kernels kept waiting so that a new session starts at once "
            f"(default: {defaults.ready_sessions})"
        ),
    )
    serve.add_argument(
        "--cooldown-period",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help=f"idle time after which a session is deleted (default: {defaults.cooldown_period_seconds:g})",
    )
    serve.add_argument(
        "--max-execution-seconds",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help=(
            "cap on any execution's timeoutInSeconds "
            f"(default: {defaults.max_execution_seconds:g}, the service's limit)"
        ),
    )
    serve.add_argument(
        "--egress", action="store_true", help="let session code reach the network (default: no network)"
    )
    serve.add_argument(
        "--egress-allow",
        action="append",
        default=None,
        metavar="HOST",
        help=(
            "local extension: without --egress, let session code reach HOST (a name or *.domain "
            "pattern; repeat the flag) over HTTP/HTTPS through the server's egress proxy, deny the "
            "rest (needs bubblewrap; default: off, no network)"
        ),
    )
    serve.add_argument(
        "--sandbox",
        choices=[m.value for m in SandboxMode],
        default=defaults.sandbox.value,
        help=(
            "auto: bubblewrap when installed, else unsandboxed with a warning; "
            f"bwrap: require it; none: no sandbox (default: {defaults.sandbox})"
        ),
    )
    serve.add_argument(
        "--kernel-launcher",
        choices=[m.value for m in KernelLauncherKind],
        default=defaults.kernel_launcher.value,
        help=(
            "plain: a fresh interpreter per kernel; fork: kernels forked from a template that "
            "imported numpy/pandas/matplotlib once (same sandbox, far less memory) "
            f"(default: {defaults.kernel_launcher})"
        ),
    )
    serve.add_argument(
        "--tls", action="store_true", help="serve https (a self-signed certificate unless given)"
    )
    serve.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate for --tls")
    serve.add_argument("--tls-key", type=Path, default=None, help="PEM private key for --tls-cert")
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow --host to be a non-loopback address (anyone who can reach it and has the key runs code)",
    )
    serve.add_argument(
        "--root-dir",
        type=Path,
        default=None,
        help="where session directories are created (default: a temporary directory)",
    )
    serve.add_argument(
        "--faults",
        metavar="PLAN",
        default=None,
        help=(
            "answer some calls the way Azure fails, to test agents offline, e.g. "
            "'429=0.2,503=0.1,latency=200ms,drop=0.05,seed=7' (see SECURITY.md)"
        ),
    )
    serve.add_argument(
        "--mcp",
        action="store_true",
        help="also serve the pool's MCP server at <endpoint>/mcp (key in x-ms-apikey; printed at start)",
    )
    serve.add_argument(
        "--mcp-api-key",
        default=None,
        help=f"the MCP server's key (default: ${MCP_API_KEY_ENV}, else a random one); implies --mcp",
    )
    serve.add_argument(
        "--wire-extensions",
        action="store_true",
        help="add result fields Azure does not send (stdoutTruncated, stderrTruncated, later images)",
    )
    serve.add_argument(
        "--management-plane",
        action="store_true",
        help=(
            "also serve the ARM management plane (Microsoft.App/sessionPools: create, change and "
            "delete more pools with curl, az-style polling or azure-mgmt-appcontainers); the "
            "server's API key authenticates both planes"
        ),
    )
    serve.add_argument(
        "--serve-at-root",
        action="store_true",
        help=(
            "also answer data-plane calls at the bare base URL (http://HOST:PORT/executions); off, "
            "the root answers 404 naming the pool endpoint, as Azure would"
        ),
    )
    serve.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default="WARNING",
        help="log level of the pool's messages on stderr (default: WARNING)",
    )

    run = commands.add_parser(
        "exec",
        help="run a file or snippet in a session of any pool and print the result",
        description=(
            "Run code in a session of a pool (a local one from `aca-sessions serve`, or an Azure one) "
            "and print its stdout, stderr and result. Exit status: 0 success, 1 the code failed "
            "(shell: the command's exit status), 2 usage error, 124 the execution timed out, 125 the "
            "pool refused the request or could not be reached."
        ),
    )
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", default=None, help="file to run ('-' reads standard input)")
    source.add_argument("-c", "--code", default=None, help="code (or with --shell, a command) to run")
    run.add_argument(
        "--endpoint",
        default=os.environ.get(ENDPOINT_ENV),
        help=f"pool management endpoint (default: ${ENDPOINT_ENV})",
    )
    run.add_argument(
        "--api-key",
        # None, not the variable's value: an explicit empty --api-key is an error, an empty
        # variable is treated as unset (see _exec).
        default=None,
        help=(
            f"bearer key of a local pool, which needs one (default: ${API_KEY_ENV}); "
            "without one, DefaultAzureCredential is used (Azure pools)"
        ),
    )
    run.add_argument(
        "--session-id",
        default=None,
        help=(
            "session identifier; reuse one to keep state between runs "
            "(default: a new session, deleted afterwards)"
        ),
    )
    run.add_argument(
        "--keep-session",
        action="store_true",
        help="do not delete a generated session afterwards (its id is printed on stderr)",
    )
    run.add_argument(
        "--api-version",
        choices=_api_versions(),
        default=DEFAULT_API_VERSION.value,
        help=f"data-plane api-version (default: {DEFAULT_API_VERSION.value})",
    )
    run.add_argument(
        "--timeout",
        type=_timeout_seconds,
        default=60,
        metavar="SECONDS",
        help=f"execution time limit, 1-{MAX_EXECUTION_SECONDS} (default: 60)",
    )
    run.add_argument(
        "--shell", action="store_true", help="run a shell command (Shell pools) instead of Python"
    )
    run.add_argument(
        "--save-images",
        type=Path,
        default=None,
        metavar="DIR",
        help="write images the code displayed into DIR (default: only mention them)",
    )
    run.add_argument("--json", action="store_true", help="print the whole result as JSON on stdout")
    run.add_argument(
        "--cafile", type=Path, default=None, help="CA certificate to trust (a local pool's --tls)"
    )
    run.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    run.add_argument(
        "-v", "--verbose", action="store_true", help="print session, status and timing on stderr"
    )
    return parser


# --------------------------------------------------------------------------------------------
# serve


def _egress_summary(host: HostDescription) -> str:
    """The banner's egress line."""
    if host.egress:
        return "enabled"
    if host.egress_allowlist:
        return f"allowlist {', '.join(host.egress_allowlist)} (through the egress proxy; local extension)"
    return "disabled (no network inside sessions)"


def _pool_config(args: argparse.Namespace) -> PoolConfig:
    """The served pool's configuration; options left unset keep the configuration's defaults."""
    from autogen_aca_sessions.local.config import PoolConfig

    chosen = {
        "pool_type": args.pool_type,
        "egress": args.egress,
        "egress_allowlist": tuple(args.egress_allow) if args.egress_allow else None,
        "sandbox": args.sandbox,
        "kernel_launcher": args.kernel_launcher,
        "max_concurrent_sessions": args.max_concurrent_sessions,
        "ready_sessions": args.ready_sessions,
        "cooldown_period_seconds": args.cooldown_period,
        "max_execution_seconds": args.max_execution_seconds,
        "mcp": True if args.mcp or args.mcp_api_key else None,
        "wire_extensions": True if args.wire_extensions else None,
    }
    return PoolConfig(**{name: value for name, value in chosen.items() if value is not None})


def _pool_host(args: argparse.Namespace) -> LocalSessionPool:
    """The pool host ``serve`` runs: one pool made from the whole configuration, with ARM when
    ``--management-plane`` is given (ARM pools then start from that configuration)."""
    from autogen_aca_sessions.local import LocalSessionPool
    from autogen_aca_sessions.local.frontends.auth import generate_api_key

    mcp_key = None
    if args.mcp or args.mcp_api_key:
        mcp_key = args.mcp_api_key or os.environ.get(MCP_API_KEY_ENV) or generate_api_key()
    tls = bool(args.tls or args.tls_cert is not None)
    return LocalSessionPool(
        config=_pool_config(args),
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or generate_api_key(),
        allow_remote=args.allow_remote,
        root_dir=args.root_dir,
        tls=tls,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key if args.tls_cert is not None else None,
        faults=args.faults,
        mcp_api_key=mcp_key,
        management_plane=args.management_plane,
        serve_at_root=args.serve_at_root,
    )


def _banner(host: HostDescription) -> str:
    """What ``serve`` prints once its host runs: the pool, how to call it, ARM and MCP when on."""
    from autogen_aca_sessions.local.config import Isolation

    endpoint, key, ca_file = host.endpoint, host.api_key, host.tls_ca_file
    unsandboxed = "   WARNING: session code runs unsandboxed with your user's rights"
    lines = [
        "aca-sessions: local session pool running",
        "",
        f"  Endpoint:   {endpoint}",
        f"  API key:    {key}",
        f"  Isolation:  {host.isolation}" + (unsandboxed if host.isolation is Isolation.NONE else ""),
        f"  Pool type:  {host.pool_type}",
        f"  Egress:     {_egress_summary(host)}",
    ]
    if host.fault_plan is not None:
        lines.append(f"  Faults:     {host.fault_plan}   (some calls fail on purpose, as Azure can)")
    if host.serves_root:
        lines.append(f"  Also at:    {host.base_url}   (--serve-at-root: Azure has no such endpoint)")
    if ca_file is not None:
        lines += [
            f"  TLS:        certificate {ca_file}",
            f"              trust it: curl --cacert {ca_file} ..., SSL_CERT_FILE={ca_file},",
            f"              or `aca-sessions exec --cafile {ca_file} ...`",
        ]
    quoted_key = shlex.quote(f"Authorization: Bearer {key}")
    curl_tls = f" --cacert {shlex.quote(str(ca_file))}" if ca_file is not None else ""
    body = (
        '{"codeInputType":"Inline","executionType":"Synchronous","code":"print(6*7)","timeoutInSeconds":60}'
    )
    lines += [
        "",
        "Every request needs the header  Authorization: Bearer <API key>",
        "",
        "curl:",
        f"  curl{curl_tls} -X POST "
        + shlex.quote(f"{endpoint}/executions?api-version=2025-10-02-preview&identifier=demo")
        + " \\",
        f"       -H {quoted_key} -H 'Content-Type: application/json' -d '{body}'",
        "",
        "Python (AutoGen):",
        "  from autogen_aca_sessions import ACADynamicSessionsCodeExecutor",
        "  executor = ACADynamicSessionsCodeExecutor(",
        f'      pool_management_endpoint="{endpoint}",',
        f'      credential="{key}",',
        "  )",
        "",
        "Environment (for `aca-sessions exec` and the examples):",
        f"  export {ENDPOINT_ENV}={shlex.quote(endpoint)}",
        f"  export {API_KEY_ENV}={shlex.quote(key)}",
    ]
    if host.mcp is not None:
        lines += ["", *_mcp_banner(host.mcp, curl_tls)]
    if host.management_plane:
        lines += _management_banner(host.base_url, key, ca_file)
    lines += ["", "Press Ctrl+C (or send SIGTERM) to stop; every kernel and session directory is removed."]
    return "\n".join(lines)


def _mcp_banner(mcp: McpAccess, curl_tls: str) -> list[str]:
    from autogen_aca_sessions.client.mcp import McpConnection

    conn = McpConnection(mcp.endpoint, mcp.api_key, "aca-sessions")
    body = '{"jsonrpc":"2.0","id":"1","method":"initialize"}'
    return [
        "MCP server (launchShell, runPythonCodeInRemoteEnvironment, runShellCommandInRemoteEnvironment):",
        f"  MCP endpoint: {conn.url}",
        f"  MCP API key:  {conn.api_key}   (header x-ms-apikey; not the bearer key above)",
        "",
        "  curl:",
        f"    curl{curl_tls} -X POST {shlex.quote(conn.url)} -H 'Content-Type: application/json' \\",
        f"         -H {shlex.quote('x-ms-apikey: ' + conn.api_key)} -d '{body}'",
        "",
        "  VS Code (.vscode/mcp.json):",
        *("    " + line for line in conn.vscode_mcp_json().splitlines()),
        "",
        "  Environment (for examples/mcp_agent.py):",
        f"    export {MCP_ENDPOINT_ENV}={shlex.quote(conn.url)}",
        f"    export {MCP_API_KEY_ENV}={shlex.quote(conn.api_key)}",
    ]


_CREDENTIAL_IMPORT = "from autogen_aca_sessions.local import StaticKeyCredential"
"""The azure-core credential whose token is a key (the SDKs' banner lines name it, not a bare
``credential`` a reader has no way to make)."""


def _credential(key: str) -> str:
    return f"StaticKeyCredential({json.dumps(key)})"


def _management_banner(base_url: str, key: str, ca_file: Path | None) -> list[str]:
    sub = "00000000-0000-0000-0000-000000000000"
    url = f"{base_url}/subscriptions/{sub}/resourceGroups/demo/providers/Microsoft.App/sessionPools/mypool"
    curl_tls = f" --cacert {shlex.quote(str(ca_file))}" if ca_file else ""
    body = (
        '{"location":"local","properties":{"poolManagementType":"Dynamic","containerType":"PythonLTS",'
        '"scaleConfiguration":{"maxConcurrentSessions":10}}}'
    )
    lines = [
        "",
        "Management plane (ARM, Microsoft.App/sessionPools):",
        f"  ARM base URL: {base_url}   (any subscription GUID and resource group)",
        "  Pools created here last as long as this process.",
        "",
        "  create a pool (then read properties.poolManagementEndpoint):",
        f"  curl{curl_tls} -X PUT " + shlex.quote(url + "?api-version=2025-10-02-preview") + " \\",
        f"       -H {shlex.quote(f'Authorization: Bearer {key}')} -H 'Content-Type: application/json'"
        f" -d '{body}'",
        "",
        "  azure-mgmt-appcontainers:",
        f"  {_CREDENTIAL_IMPORT}",
        f'  ContainerAppsAPIClient({_credential(key)}, "{sub}", base_url="{base_url}"'
        + (f', connection_verify="{ca_file}")' if ca_file else ")"),
    ]
    if not ca_file:
        lines.append("  (the SDK sends its bearer key only over https: add --tls)")
    return lines + _sandboxes_banner(base_url, key, ca_file, curl_tls, sub)


def _sandboxes_banner(base_url: str, key: str, ca_file: Path | None, curl_tls: str, sub: str) -> list[str]:
    """How to reach Sandboxes (``Microsoft.App/sandboxGroups`` and its data plane)."""
    api = "?api-version=2026-02-01-preview"
    group = (
        f"{base_url}/subscriptions/{sub}/resourceGroups/demo/providers/Microsoft.App/sandboxGroups/mygroup"
    )
    data = f"{base_url}/subscriptions/{sub}/resourceGroups/demo/sandboxGroups/mygroup/sandboxes"
    auth = f"-H {shlex.quote(f'Authorization: Bearer {key}')} -H 'Content-Type: application/json'"
    lines = [
        "",
        "Sandboxes (ARM Microsoft.App/sandboxGroups and their data plane):",
        "  create a group, then a sandbox in it:",
        f'  curl{curl_tls} -X PUT {shlex.quote(group + api)} {auth} -d \'{{"location":"local"}}\'',
        f"  curl{curl_tls} -X PUT {shlex.quote(data + api)} {auth} \\",
        '       -d \'{"sourcesRef":{"diskImage":{"name":"python-3.12","isPublic":true}}}\'',
        "",
        "  azure-containerapps-sandbox (pip install azure-containerapps-sandbox):",
        "  from azure.containerapps.sandbox import SandboxGroupClient",
        f"  {_CREDENTIAL_IMPORT}",
        f'  client = SandboxGroupClient("{base_url}", {_credential(key)}, subscription_id="{sub}",',
        '                              resource_group="demo", sandbox_group="mygroup"'
        + (f', connection_verify="{ca_file}")' if ca_file else ")"),
    ]
    if ca_file:
        lines.append("  (AsyncStaticKeyCredential with the SDK's .aio clients)")
    else:
        lines.append("  (the Sandboxes SDK refuses http: add --tls)")
    return lines


READY_LINE = "aca-sessions: ready (a session kernel is started; a new session's first call waits for none)"
"""What ``serve`` prints once its pool is ready (the README says what ready means)."""


async def _announce_ready(host: PoolHost) -> None:
    """Print :data:`READY_LINE` once the pool has a ready session (after the banner: it is
    started only once the host runs, and the banner is printed before any await)."""
    await host.wait_ready()
    print(READY_LINE, flush=True)


def _bind_advice(exc: OSError, args: argparse.Namespace) -> str:
    """What to do when the port is taken (a second ``serve`` on the default port, usually)."""
    if exc.errno != errno.EADDRINUSE:
        return ""
    return (
        f"; port {args.port} is taken (another `aca-sessions serve`?): stop that one, or pass "
        "--port 0 for any free port, or another --port"
    )


async def _serve(args: argparse.Namespace) -> int:
    try:
        from autogen_aca_sessions.local import FaultPlanError
    except ImportError as exc:
        print(
            f"aca-sessions serve: the local pool needs the 'local' extra ({exc}); "
            "install it with: pip install -e '.[local]' (in a clone of the repository)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from autogen_aca_sessions.client.checks import check_token
    from autogen_aca_sessions.client.errors import ConfigurationError

    key = args.api_key or os.environ.get(API_KEY_ENV)
    if key:
        try:
            check_token("the API key", key)
        except ConfigurationError as exc:
            where = f"${API_KEY_ENV}" if os.environ.get(API_KEY_ENV) == key else "--api-key"
            print(f"aca-sessions serve: bad {where}: {exc}", file=sys.stderr)
            return EXIT_USAGE

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def request_stop(signum: int) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    installed: list[signal.Signals] = []
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows loops
            loop.add_signal_handler(stop_signal, request_stop, stop_signal)
            installed.append(stop_signal)
    try:
        try:
            host: PoolHost = _pool_host(args)
        except FaultPlanError as exc:
            print(f"aca-sessions serve: --faults: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except ValueError as exc:
            print(f"aca-sessions serve: could not start the pool: {exc}", file=sys.stderr)
            return EXIT_FAILED
        try:
            await host.start()
        except OSError as exc:
            print(
                f"aca-sessions serve: could not start the pool: {exc}{_bind_advice(exc, args)}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        except (ValueError, RuntimeError) as exc:
            print(f"aca-sessions serve: could not start the pool: {exc}", file=sys.stderr)
            return EXIT_FAILED
        announce = asyncio.ensure_future(_announce_ready(host))
        try:
            print(_banner(host.describe()), flush=True)
            await stop.wait()
            print(f"\nReceived {received[0] if received else 'stop'}; shutting down...", flush=True)
        finally:
            announce.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await announce
            await host.close()
        print("Stopped.", flush=True)
        return EXIT_OK
    finally:
        for stop_signal in installed:
            loop.remove_signal_handler(stop_signal)


# --------------------------------------------------------------------------------------------
# exec


def _read_source(args: argparse.Namespace) -> str:
    """The code to run: ``-c``, standard input or a file, the last two read as UTF-8 (a BOM is
    dropped, as Python does). Raises ``OSError`` or ``UnicodeDecodeError``."""
    if args.code is not None:
        return str(args.code)
    if args.file == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:  # replaced by a text-only stream (an embedding program, a test)
            return sys.stdin.read()
        data: bytes = stdin.read()
    else:
        data = Path(args.file).read_bytes()
    return data.decode("utf-8-sig")


def _ssl_option(args: argparse.Namespace) -> ssl.SSLContext | bool | None:
    if args.insecure:
        return False
    if args.cafile is not None:
        return ssl.create_default_context(cafile=str(args.cafile))
    return None


def _result_json(result: Any) -> str:
    document = dataclasses.asdict(result)
    # The raw body repeats every field and carries images as base64: leave it out.
    document.pop("raw", None)
    document["status"] = str(result.status)
    document["images"] = [{"format": image.format, "size": len(image.data)} for image in result.images]
    return json.dumps(document, indent=2, default=str, ensure_ascii=False)


def _write(stream: TextIO, text: str) -> None:
    if text:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()


def _exit_code_for(result: Any) -> int:
    if result.timed_out:
        return EXIT_TIMEOUT
    if result.exit_code is not None:  # shell pools report the command's own status
        return int(result.exit_code)
    return EXIT_OK if result.succeeded else EXIT_FAILED


def _configuration_problem(exc: Any, args: argparse.Namespace) -> str:
    """One line naming where the bad setting came from (a flag or an environment variable)."""

    def source(flag: str, env: str | None, value: str | None) -> str:
        return f"${env}" if env is not None and value is not None and os.environ.get(env) == value else flag

    setting = str(getattr(exc, "setting", ""))
    if setting == "pool_management_endpoint":
        where = source("--endpoint", ENDPOINT_ENV, args.endpoint)
    elif setting.startswith("credential"):
        where = source("--api-key", API_KEY_ENV, args.api_key)
    elif setting == "session identifier":
        where = "--session-id"
    elif setting == "api_version":
        where = "--api-version"
    else:
        where = setting or "configuration"
    return f"aca-sessions exec: bad {where}: {exc}"


async def _exec(args: argparse.Namespace) -> int:
    from autogen_aca_sessions.cli_errors import (
        LOCAL_POOL_WANTS_A_KEY,
        KeySource,
        describe_failure,
        is_local_endpoint,
        nothing_was_created,
    )
    from autogen_aca_sessions.client import (
        ConfigurationError,
        ExecutionTimeoutError,
        SessionsClient,
        SessionsError,
        UnsupportedOperationError,
    )

    if not args.endpoint:
        print(
            f"aca-sessions exec: no pool endpoint: pass --endpoint or set {ENDPOINT_ENV} "
            "(`aca-sessions serve` prints a local one)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    key_source = KeySource.FLAG
    if args.api_key is None:
        # An empty variable counts as unset, as it does for `serve`.
        args.api_key = os.environ.get(API_KEY_ENV) or None
        key_source = KeySource.ENVIRONMENT if args.api_key is not None else KeySource.AZURE
    if args.api_key is None and is_local_endpoint(args.endpoint):
        # Azure pools are never on this machine: DefaultAzureCredential could only fail here, at
        # length, and the pool would refuse its token anyway.
        print(f"aca-sessions exec: {LOCAL_POOL_WANTS_A_KEY}", file=sys.stderr)
        return EXIT_USAGE
    try:
        code = _read_source(args)
    except OSError as exc:
        print(f"aca-sessions exec: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UnicodeDecodeError as exc:
        where = "standard input" if args.file == "-" else args.file
        print(
            f"aca-sessions exec: cannot read {where}: it is not UTF-8 text "
            f"(byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
            file=sys.stderr,
        )
        return EXIT_USAGE

    generated = args.session_id is None
    session_id: str = args.session_id or f"cli-{uuid.uuid4()}"
    if args.save_images is not None and args.save_images.exists() and not args.save_images.is_dir():
        # Checked before the code runs: its images would otherwise be lost after the fact.
        print(f"aca-sessions exec: bad --save-images: {args.save_images} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    try:
        tls = _ssl_option(args)
    except OSError as exc:  # ssl.SSLError is one too: not a PEM certificate
        print(
            f"aca-sessions exec: bad --cafile: cannot load {args.cafile}: {_os_reason(exc)}", file=sys.stderr
        )
        return EXIT_USAGE
    try:
        client = SessionsClient(args.endpoint, args.api_key, api_version=args.api_version, ssl=tls)
    except ConfigurationError as exc:
        print(_configuration_problem(exc, args), file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError) as exc:
        print(f"aca-sessions exec: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async with client:
        # Whether the throw-away session may exist and so should be deleted afterwards.
        created = True
        try:
            if args.shell:
                result = await client.execute_shell(session_id, code, timeout_seconds=args.timeout)
            else:
                result = await client.execute(session_id, code, timeout_seconds=args.timeout)
        except ConfigurationError as exc:
            created = False  # nothing was sent
            print(_configuration_problem(exc, args), file=sys.stderr)
            return EXIT_USAGE
        except ExecutionTimeoutError as exc:
            print(f"aca-sessions exec: {exc}", file=sys.stderr)
            return EXIT_TIMEOUT
        except UnsupportedOperationError as exc:
            created = False  # nothing was sent
            print(
                f"aca-sessions exec: bad --api-version: {exc.operation} is not available on "
                f"{exc.api_version}; it needs {exc.needed}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        except SessionsError as exc:
            created = not nothing_was_created(exc)
            print(f"aca-sessions exec: {describe_failure(exc, args.endpoint, key_source)}", file=sys.stderr)
            if args.verbose:
                _print_request_of(exc)
            return EXIT_SERVICE_ERROR
        finally:
            if generated and created and not args.keep_session and client.supports_session_management:
                # A throw-away session would otherwise hold a pool slot until its cooldown ends.
                with contextlib.suppress(SessionsError):
                    await client.delete_session(session_id)

    if args.json:
        _write(sys.stdout, _result_json(result))
    else:
        _write(sys.stdout, result.stdout)
        _write(sys.stderr, result.stderr)
        if result.result not in ("", None):
            value = result.result
            _write(sys.stdout, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        if result.stdout_truncated or result.stderr_truncated:
            print("aca-sessions exec: the service cut the output (output limit reached)", file=sys.stderr)
        if result.error_message and result.error_message not in result.stderr:
            print(f"aca-sessions exec: {result.error_message}", file=sys.stderr)
    try:
        _report_images(result, args)
    except OSError as exc:
        print(
            f"aca-sessions exec: cannot save images to {args.save_images}: {_os_reason(exc)}", file=sys.stderr
        )
        return EXIT_USAGE
    if args.verbose or (generated and args.keep_session):
        timing = f" in {result.execution_time_ms} ms" if result.execution_time_ms is not None else ""
        print(f"[session {session_id}: {result.status}{timing}]", file=sys.stderr)
    if result.state_lost:
        print(
            "aca-sessions exec: the session's interpreter was replaced; earlier state is gone",
            file=sys.stderr,
        )
    return _exit_code_for(result)


def _os_reason(exc: OSError) -> str:
    """An ``OSError``'s reason without the ``[Errno N]`` prefix (the path is printed already)."""
    if isinstance(exc, ssl.SSLError):
        return f"{exc.reason or 'unreadable'} (a PEM certificate is expected)"
    return str(exc.strerror or exc)


def _print_request_of(exc: Exception) -> None:
    """``-v``: the request that failed, for a bug report or a look with curl."""
    method = str(getattr(exc, "method", "") or "")
    url = str(getattr(exc, "url", "") or "")
    if method or url:
        print(f"aca-sessions exec: the failed request: {method} {url}".rstrip(), file=sys.stderr)


def _report_images(result: Any, args: argparse.Namespace) -> None:
    if not result.images:
        return
    if args.save_images is None:
        sizes = ", ".join(f"{image.format} {len(image.data)} bytes" for image in result.images)
        print(f"[{len(result.images)} image(s): {sizes}; --save-images DIR writes them]", file=sys.stderr)
        return
    args.save_images.mkdir(parents=True, exist_ok=True)
    for number, image in enumerate(result.images, start=1):
        target = args.save_images / f"image-{number}.{image.format.lower()}"
        target.write_bytes(image.data)
        print(f"[image saved to {target}]", file=sys.stderr)


# --------------------------------------------------------------------------------------------


# Where a string option's value can come from besides its flag (the parser's default).
_OPTION_VARIABLES = {"endpoint": ENDPOINT_ENV}
# Options that name files: any bytes are a valid file name on POSIX, so they are not checked.
_FILE_OPTIONS = frozenset({"file"})


def _undecodable_argument(args: argparse.Namespace) -> str | None:
    """The error line for a text option whose bytes are not UTF-8, if any.

    Python hands such argv bytes over as lone surrogates, which no request can carry: left
    alone they end in a ``UnicodeEncodeError`` traceback deep in the client.
    """
    for name, value in vars(args).items():
        if not isinstance(value, str) or name in _FILE_OPTIONS:
            continue
        bad = next((ch for ch in value if "\udc80" <= ch <= "\udcff"), None)
        if bad is None:
            continue
        variable = _OPTION_VARIABLES.get(name)
        if variable is not None and os.environ.get(variable) == value:
            where = f"${variable}"
        else:
            where = "-c" if name == "code" else "--" + name.replace("_", "-")
        return (
            f"aca-sessions {args.command}: bad {where}: it is not UTF-8 text (byte 0x{ord(bad) - 0xDC00:02x})"
        )
    return None


def _empty_key_flag(args: argparse.Namespace) -> str | None:
    """The error line for a key flag given as ``""`` (usually an unset shell variable), if any.

    Treating it as "no key" would silently generate one (``serve``) or fall back to
    DefaultAzureCredential (``exec``), neither of which the user asked for.
    """
    if args.command == "serve":
        instead = "leave the flag out for a generated key"
    else:
        instead = (
            f"pass the pool's key, or leave the flag out to use ${API_KEY_ENV} or DefaultAzureCredential"
        )
    for flag, value in (("--api-key", args.api_key), ("--mcp-api-key", getattr(args, "mcp_api_key", None))):
        if value == "":
            return f"aca-sessions {args.command}: bad {flag}: it is empty ({instead})"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``aca-sessions``; returns the process exit status."""
    args = build_parser().parse_args(argv)
    refused = _undecodable_argument(args) or _empty_key_flag(args)
    if refused is not None:
        print(refused, file=sys.stderr)
        return EXIT_USAGE
    if args.command == "serve":
        logging.basicConfig(
            level=getattr(logging, args.log_level), format="%(levelname)s %(name)s: %(message)s"
        )
        from autogen_aca_sessions.local.address import is_loopback_host

        if not is_loopback_host(args.host) and not args.allow_remote:
            print(
                f"aca-sessions serve: refusing to listen on {args.host}: it is not a loopback address, so "
                "anyone who can reach this machine and learns the key could run code here. "
                "Pass --allow-remote to do it anyway (and consider --tls).",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if args.tls_key is not None and args.tls_cert is None:
            print("aca-sessions serve: --tls-key needs --tls-cert", file=sys.stderr)
            return EXIT_USAGE
        return asyncio.run(_serve(args))
    if args.command == "exec":
        try:
            return asyncio.run(_exec(args))
        except KeyboardInterrupt:
            # asyncio.run cancelled _exec first, so its clean-up (deleting a generated session)
            # ran; the traceback through the client's internals would tell the user nothing.
            print("aca-sessions exec: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
    raise AssertionError(f"unknown command {args.command!r}")  # argparse enforces the choices


if __name__ == "__main__":
    sys.exit(main())

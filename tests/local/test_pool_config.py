"""The pool's one configuration value: defaults, validation, enums, and how the pool and CLI build it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from autogen_aca_sessions.cli import EXIT_USAGE, main
from autogen_aca_sessions.local import FaultPlan, FaultPlanError, LocalSessionPool
from autogen_aca_sessions.local.address import is_loopback_host
from autogen_aca_sessions.local.config import (
    Isolation,
    KernelLauncherKind,
    PoolConfig,
    PoolType,
    SandboxMode,
)
from autogen_aca_sessions.local.frontends.dataplane.app import ROUTES, operation_of
from autogen_aca_sessions.local.frontends.dataplane.operations import Operation
from autogen_aca_sessions.local.limits import MAX_EXECUTION_SECONDS, ResourceLimits


def test_defaults_live_in_one_place_and_match_the_service() -> None:
    config = PoolConfig()
    assert config.pool_type is PoolType.PYTHON_LTS
    assert config.max_execution_seconds == MAX_EXECUTION_SECONDS == 220
    assert config.sandbox is SandboxMode.AUTO
    assert config.kernel_launcher is KernelLauncherKind.FORK
    assert config.limits == ResourceLimits()
    assert (config.max_concurrent_sessions, config.ready_sessions, config.cooldown_period_seconds) == (
        100,
        2,
        300,
    )


def test_strings_are_normalised_to_enums_that_still_equal_their_wire_strings() -> None:
    as_strings: dict[str, Any] = {"pool_type": "shell", "sandbox": "NONE", "kernel_launcher": "Fork"}
    config = PoolConfig(**as_strings)
    assert config.pool_type is PoolType.SHELL
    assert str.__eq__(config.pool_type, "Shell")
    assert f"{config.pool_type}" == "Shell"
    assert config.sandbox is SandboxMode.NONE
    assert config.kernel_launcher is KernelLauncherKind.FORK
    assert config.is_shell
    assert str.__eq__(Isolation.BWRAP, "bwrap")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pool_type": "NodeLTS"}, "pool_type must be 'PythonLTS' or 'Shell'"),
        ({"sandbox": "docker"}, "sandbox must be"),
        ({"kernel_launcher": "spawn"}, "kernel_launcher must be 'plain' or 'fork'"),
        ({"pool_name": "a b"}, "pool_name"),
        ({"max_execution_seconds": 0.5}, "max_execution_seconds"),
    ],
)
def test_bad_values_are_refused_once_on_creation(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PoolConfig(**options)


def test_replace_makes_a_validated_variant_and_leaves_the_original() -> None:
    base = PoolConfig()
    shell = dataclasses.replace(base, pool_type=PoolType.SHELL, pool_name="shell-pool")
    assert shell.pool_type is PoolType.SHELL
    assert base.pool_type is PoolType.PYTHON_LTS
    with pytest.raises(ValueError, match="pool_name"):
        dataclasses.replace(base, pool_name="a/b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.egress = True  # type: ignore[misc]


def test_the_pool_builds_one_config_from_its_options_and_shows_it_through_its_attributes() -> None:
    pool = LocalSessionPool(pool_type="shell", ready_sessions=0, max_execution_seconds=30, sandbox="none")
    assert pool.config == PoolConfig(
        pool_type=PoolType.SHELL, ready_sessions=0, max_execution_seconds=30, sandbox=SandboxMode.NONE
    )
    assert str(pool.pool_type) == "Shell"
    assert pool.max_execution_seconds == 30
    assert str(pool.sandbox) == "none"


def test_the_pool_takes_a_config_value_and_refuses_options_beside_it() -> None:
    config = PoolConfig(pool_name="from-config", egress=True)
    pool = LocalSessionPool(config=config)
    assert pool.config is config
    assert pool.pool_name == "from-config"
    assert pool.egress is True
    with pytest.raises(ValueError, match="config"):
        LocalSessionPool(config=config, egress=False, ready_sessions=0)


def test_the_pool_takes_a_fault_plan_string_and_refuses_anything_else_at_construction() -> None:
    pool = LocalSessionPool(faults="429=0.5,seed=7")
    assert pool.faults is not None
    assert pool.faults.plan == FaultPlan.parse("429=0.5,seed=7")
    with pytest.raises(FaultPlanError):
        LocalSessionPool(faults="429=lots")
    for wrong in (0.5, {"429": 0.5}, FaultPlan.parse("429=0.5")):
        with pytest.raises(TypeError, match="faults must be a FaultInjector or a fault plan string"):
            LocalSessionPool(faults=wrong)  # type: ignore[arg-type]


def test_the_cli_hands_the_pool_host_one_whole_config() -> None:
    from autogen_aca_sessions.cli import _pool_host, build_parser

    args = build_parser().parse_args(
        ["serve", "--pool-type", "Shell", "--cooldown-period", "0.5", "--management-plane", "--mcp"]
    )
    host = _pool_host(args)
    assert host.config == PoolConfig(pool_type=PoolType.SHELL, cooldown_period_seconds=0.5, mcp=True)
    assert host.pool_defaults is host.config
    assert host.management_plane is True
    assert host.serve_at_root is False


@pytest.mark.parametrize("host", ["::1", "[::1]", "127.0.0.1", "LOCALHOST"])
def test_one_loopback_check_accepts_bracketed_ipv6(host: str) -> None:
    assert is_loopback_host(host)


def test_the_cli_accepts_a_bracketed_ipv6_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    # --tls-key without --tls-cert is refused after the loopback check: reaching it shows the
    # host passed (a refused host would be reported first).
    assert main(["serve", "--host", "[::1]", "--port", "0", "--tls-key", "k.pem"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--tls-key needs --tls-cert" in err
    assert "refusing" not in err


def test_every_route_carries_an_operation_and_faults_name_calls_by_it() -> None:
    assert {route.operation for route in ROUTES} == set(Operation) - {Operation.OTHER}
    assert (
        operation_of("POST", "/subscriptions/s/resourceGroups/r/sessionPools/p/executions")
        is Operation.EXECUTE
    )
    assert operation_of("GET", "/executions/abc") is Operation.POLL
    assert operation_of("PATCH", "/executions") is Operation.OTHER
    # Nothing serves stopSession, so it is no operation.
    assert operation_of("POST", "/.management/stopSession") is Operation.OTHER

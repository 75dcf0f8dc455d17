"""The executor is a drop-in for autogen-ext 0.7.5's ACADynamicSessionsCodeExecutor."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import pytest
from autogen_core.code_executor import CodeExecutor, FunctionWithRequirements, with_requirements
from autogen_ext.code_executors.azure import ACADynamicSessionsCodeExecutor as UpstreamExecutor

from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor, ACADynamicSessionsCodeResult

ENDPOINT = "https://eastus.dynamicsessions.io/subscriptions/s/resourceGroups/r/sessionPools/p"


def test_constructor_starts_with_upstreams_parameters_in_order_with_same_defaults() -> None:
    ours = list(inspect.signature(ACADynamicSessionsCodeExecutor.__init__).parameters.values())
    upstream = list(inspect.signature(UpstreamExecutor.__init__).parameters.values())
    assert [p.name for p in ours[: len(upstream)]] == [p.name for p in upstream]
    for mine, theirs in zip(ours, upstream, strict=False):
        assert mine.kind == theirs.kind, mine.name
        assert mine.default == theirs.default, mine.name
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in ours[len(upstream) :])


def test_public_methods_and_properties_of_upstream_exist() -> None:
    names = [
        "upload_files",
        "download_files",
        "get_file_list",
        "get_available_packages",
        "format_functions_for_prompt",
        "execute_code_blocks",
        "start",
        "stop",
        "restart",
        "FUNCTION_PROMPT_TEMPLATE",
        "SUPPORTED_LANGUAGES",
        "timeout",
        "work_dir",
        "functions_module",
        "functions",
    ]
    for name in names:
        assert hasattr(ACADynamicSessionsCodeExecutor, name), name
    for method in ["upload_files", "download_files", "get_file_list", "get_available_packages"]:
        ours = list(inspect.signature(getattr(ACADynamicSessionsCodeExecutor, method)).parameters)
        theirs = list(inspect.signature(getattr(UpstreamExecutor, method)).parameters)
        assert ours == theirs, method
    assert (
        ACADynamicSessionsCodeExecutor.FUNCTION_PROMPT_TEMPLATE == UpstreamExecutor.FUNCTION_PROMPT_TEMPLATE
    )
    assert "python" in ACADynamicSessionsCodeExecutor.SUPPORTED_LANGUAGES


def test_positional_upstream_style_call_constructs(tmp_path: Path) -> None:
    def credential() -> str:
        return "token"

    executor = ACADynamicSessionsCodeExecutor(ENDPOINT, credential, 30, tmp_path, [], "tools", True, "sess-1")
    assert executor.timeout == 30
    assert executor.work_dir == tmp_path
    assert executor.functions_module == "tools"
    assert executor.session_id == "sess-1"
    assert isinstance(executor, CodeExecutor)


def test_default_work_dir_is_a_temporary_directory() -> None:
    executor = ACADynamicSessionsCodeExecutor(ENDPOINT, "token")
    assert executor.work_dir.is_dir()
    assert executor.work_dir != Path(".")


def test_timeout_below_one_is_rejected_like_upstream() -> None:
    with pytest.raises(ValueError, match="Timeout"):
        ACADynamicSessionsCodeExecutor(ENDPOINT, "token", timeout=0)


def test_timeout_over_the_service_cap_warns() -> None:
    with pytest.warns(UserWarning, match="220"):
        ACADynamicSessionsCodeExecutor(ENDPOINT, "token", timeout=300)


def test_result_type_is_an_autogen_code_result() -> None:
    from autogen_core.code_executor import CodeResult

    result = ACADynamicSessionsCodeResult(exit_code=0, output="x")
    assert isinstance(result, CodeResult)
    assert result.blocks == []
    assert result.image_paths == []


def test_format_functions_for_prompt_lists_stubs_with_docstrings() -> None:
    @with_requirements(python_packages=["numpy"])
    def scale(values: list[float], factor: float = 2.0) -> list[float]:
        """Multiply every value by factor."""
        return [v * factor for v in values]

    def plain(x: int) -> int:
        """Plain function."""
        return x

    executor = ACADynamicSessionsCodeExecutor(
        ENDPOINT, "token", functions=[scale, plain, FunctionWithRequirements.from_callable(plain)]
    )
    prompt = executor.format_functions_for_prompt()
    assert prompt.startswith("You have access to the following user defined functions.")
    # Annotations read as strings here (this module uses postponed evaluation), as to_stub gives them.
    assert "def scale(values: 'list[float]', factor: 'float' = 2.0) -> 'list[float]':" in prompt
    assert "Multiply every value by factor." in prompt
    assert prompt.count("def plain(x: 'int') -> 'int':") == 2
    assert executor.functions == ["scale", "plain"]


def test_unreadable_function_source_fails_at_construction() -> None:
    namespace: dict[str, object] = {}
    exec("def made_at_runtime():\n    return 1\n", namespace)
    with pytest.raises(ValueError, match="made_at_runtime"):
        ACADynamicSessionsCodeExecutor(ENDPOINT, "token", functions=[namespace["made_at_runtime"]])  # type: ignore[list-item]


def test_dump_component_has_no_credential_and_warns_that_functions_are_not_serialised() -> None:
    def helper() -> int:
        return 1

    executor = ACADynamicSessionsCodeExecutor(
        ENDPOINT, "very-secret-token", functions=[helper], api_key_env="TOKEN_VAR"
    )
    with pytest.warns(UserWarning, match="not serialised"):
        model = executor.dump_component()
    assert "very-secret-token" not in model.model_dump_json()
    assert model.config["api_key_env"] == "TOKEN_VAR"
    assert "session_id" not in model.config  # an executor-generated id is never written


def test_load_component_round_trips_every_option(tmp_path: Path) -> None:
    executor = ACADynamicSessionsCodeExecutor(
        ENDPOINT,
        None,
        timeout=12,
        work_dir=tmp_path,
        functions_module="tools",
        suppress_result_output=True,
        session_id="caller-id",
        api_version="2024-08-02-preview",
        max_output_chars=777,
        release_session_on_stop=False,
        api_key_env="MY_TOKEN",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = executor.dump_component()
    loaded = ACADynamicSessionsCodeExecutor.load_component(model)
    assert loaded.dump_component().config == model.config
    assert loaded.session_id == "caller-id"
    assert loaded.api_version.value == "2024-08-02-preview"
    assert loaded.max_output_chars == 777


def test_load_component_keeps_shell_pool_mode() -> None:
    executor = ACADynamicSessionsCodeExecutor(
        ENDPOINT, None, shell_pool=True, api_version="2025-02-02-preview"
    )
    loaded = ACADynamicSessionsCodeExecutor.load_component(executor.dump_component())
    assert loaded.dump_component().config["shell_pool"] is True

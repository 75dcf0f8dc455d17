"""Every example runs, as a user would run it, against a local session pool with the scripted model."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Anything that would make an example call a real model or a real Azure pool.
_REAL_SERVICE_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_MODEL",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_DEPLOYMENT",
    "ACA_POOL_MANAGEMENT_ENDPOINT",
    "ACA_SESSIONS_API_KEY",
    "EXAMPLES_SCRIPTED_MODEL",
    "ACA_SESSIONS_SANDBOX",
    "AZURE_SUBSCRIPTION_ID",
    "ACA_RESOURCE_GROUP",
    "ACA_SESSIONS_MCP_ENDPOINT",
    "ACA_SESSIONS_MCP_API_KEY",
    "ACA_SANDBOXES_ENDPOINT",
    "ACA_SANDBOXES_SUBSCRIPTION",
    "ACA_SANDBOXES_SUBSCRIPTION_ID",
    "ACA_SANDBOXES_RESOURCE_GROUP",
    "ACA_SANDBOX_GROUP",
    "ACA_SANDBOXES_API_KEY",
)

TESTED_EXAMPLES = {
    "quickstart.py",
    "group_chat.py",
    "restart_between_tasks.py",
    "injected_functions.py",
    "save_and_resume.py",
    "checkpoint_dynamic_session.py",
    "suspend_between_tasks.py",
    "concurrent_agents.py",
    "azure_pool.py",
    "provision_pool.py",
    "agent_framework_quickstart.py",
    "agent_framework_workflow.py",
    "agent_framework_sandbox.py",
    "mcp_agent.py",
    "stream_sandbox_progress.py",
}


def example_env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _REAL_SERVICE_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_example(
    name: str, *args: str, timeout: float = 280, sandbox: str = "auto"
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=REPO,
        env={**example_env(), "ACA_SESSIONS_SANDBOX": sandbox},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return completed


def explain(completed: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {completed.returncode}\n--- stdout (tail)\n{completed.stdout[-4000:]}"
        f"\n--- stderr (tail)\n{completed.stderr[-4000:]}"
    )


# What asyncio's child watcher logs when another waitpid() reaped its child first
# (3.10/3.11 threaded watcher; 3.12+ pidfd watcher).
CHILD_WATCHER_LINES = ("Unknown child process pid", "exit status already read")
SANDBOX_WARNING = "RUNNING SESSION CODE WITHOUT A SANDBOX"


def assert_clean_console(stderr: str) -> None:
    """No stray line on the main job's stderr: none from the child watcher, nothing at all when sandboxed."""
    for line in stderr.splitlines():
        assert not any(marker in line for marker in CHILD_WATCHER_LINES), stderr[-4000:]
    if SANDBOX_WARNING not in stderr:
        assert stderr.strip() == "", stderr[-4000:]


def test_every_example_has_a_test() -> None:
    examples = {path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("_")}

    assert examples == TESTED_EXAMPLES


# "none" is what a machine without bubblewrap gets: the main job must work there too.
@pytest.mark.parametrize("sandbox", ["auto", "none"])
def test_quickstart_prints_the_conversation_and_downloads_a_png_chart(tmp_path: Path, sandbox: str) -> None:
    completed = run_example("quickstart.py", "--output-dir", str(tmp_path), sandbox=sandbox)

    assert completed.returncode == 0, explain(completed)
    chart = tmp_path / "revenue_by_region.png"
    data = chart.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000  # a real bar chart, not an empty figure
    assert (tmp_path / "sales.csv").read_text().startswith("date,region,product,units,unit_price\n")
    out = completed.stdout
    assert "(analyst)" in out
    assert "(executor)" in out
    assert "Top region:" in out  # output of the analysis code, computed in the session
    assert f"Chart saved to {chart.resolve()}" in out
    assert_clean_console(completed.stderr)


@pytest.mark.parametrize("sandbox", ["auto", "none"])
def test_agent_framework_quickstart_downloads_the_chart_with_an_agent_framework_agent(
    tmp_path: Path, sandbox: str
) -> None:
    pytest.importorskip("agent_framework")
    completed = run_example("agent_framework_quickstart.py", "--output-dir", str(tmp_path), sandbox=sandbox)

    assert completed.returncode == 0, explain(completed)
    chart = tmp_path / "revenue_by_region.png"
    data = chart.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000
    out = completed.stdout
    assert "(analyst) calls execute_code:" in out
    assert "Top region:" in out  # computed in the session
    assert "[image image-1.png image/png]" in out  # the figure reached the model as an image
    assert "(analyst) calls download_file:" in out
    assert f"Chart saved to {chart.resolve()}" in out


def test_agent_framework_workflow_steps_share_one_session() -> None:
    pytest.importorskip("agent_framework")
    completed = run_example("agent_framework_workflow.py")

    assert completed.returncode == 0, explain(completed)
    out = completed.stdout
    assert "(engineer) calls execute_code:" in out
    assert "(analyst) calls execute_code:" in out
    assert "spikes dropped" in out
    # The analyst's code used the engineer's DataFrame: it only works in the same interpreter.
    assert "Warmest hour:" in out
    assert "Both steps ran in one session (workflow-" in out


def test_agent_framework_sandbox_continues_from_memory_after_a_suspend_with_new_agent_objects() -> None:
    pytest.importorskip("agent_framework")
    completed = run_example("agent_framework_sandbox.py")

    assert completed.returncode == 0, explain(completed)
    out = completed.stdout
    assert "(analyst) calls execute_code:" in out
    assert "90 orders, revenue 10,052.50" in out  # turn 1, computed in the sandbox
    # Between the turns the sandbox was suspended, and the second turn found it by its saved id.
    turns = [line for line in out.splitlines() if line.startswith("Sandbox ") and "after the turn" in line]
    assert len(turns) == 2
    assert all(line.endswith(": Suspended") for line in turns)
    assert turns[0].split()[1] == turns[1].split()[1]
    # Turn 2 used `orders` from the interpreter's memory (its code never rebuilds them).
    assert "Best day: Wed (1,945.00)" in out
    assert "(analyst) calls run_shell:" in out
    assert "orders.json" in out
    assert f"Sandbox {turns[0].split()[1]} deleted." in out
    assert_clean_console(completed.stderr)


def test_group_chat_runs_the_plan_step_by_step_in_one_session() -> None:
    completed = run_example("group_chat.py")

    assert completed.returncode == 0, explain(completed)
    out = completed.stdout
    assert "(planner)" in out
    assert "(coder)" in out
    assert "(executor)" in out
    assert "chi-square = " in out
    assert "3 code executions in one session" in out
    assert "dice_sums.csv" in out


def test_restart_between_tasks_leaks_nothing() -> None:
    completed = run_example("restart_between_tasks.py")

    assert completed.returncode == 0, explain(completed)
    assert "restart(): session " in completed.stdout
    assert "No state leaked between the tasks" in completed.stdout


def test_injected_functions_are_importable_from_model_code() -> None:
    completed = run_example("injected_functions.py")

    assert completed.returncode == 0, explain(completed)
    out = completed.stdout
    assert "def make_orders(n: int = 200, seed: int = 1)" in out  # the prompt shows the stubs
    assert "electronics" in out
    assert " EUR" in out
    assert "gross(100, 0.19) -> 119.0" in out


def _interpreter_pids(stdout: str) -> list[str]:
    """The pids the suspend example's blocks printed (one per task)."""
    return [line.split()[2] for line in stdout.splitlines() if line.startswith("interpreter pid ")]


def test_suspend_between_tasks_continues_from_the_dataframe_in_the_suspended_sandbox() -> None:
    completed = run_example("suspend_between_tasks.py")

    assert completed.returncode == 0, explain(completed)
    out = completed.stdout
    assert "=== Suspended sandbox " in out
    assert "=== A new team and executor resume sandbox " in out
    # Task 2's block ran in the very interpreter task 1 left, on the DataFrame it loaded.
    first, second = _interpreter_pids(out)
    assert first == second
    assert "(rows still in memory: 1200)" in out
    assert "fastest growing region: " in out
    assert "No code blocks found" not in out
    # The long block's progress reached the console from on_output, before the team's message
    # with the block's whole result.
    live = out.index("[live] loaded month 6/6\n")
    assert live < out.index("loaded month 6/6", live + len("[live] loaded month 6/6"))
    assert_clean_console(completed.stderr)


async def test_suspend_between_tasks_resumes_across_two_processes_on_a_running_server(tmp_path: Path) -> None:
    from autogen_aca_sessions.local import LocalSessionsServer

    subscription = "00000000-0000-0000-0000-000000000000"
    state = tmp_path / "work.json"
    async with LocalSessionsServer() as server:
        await server.create_sandbox_group("twoprocs", subscription=subscription, resource_group="examples")
        env = {
            **example_env(),
            "ACA_SANDBOXES_ENDPOINT": server.base_url,
            "ACA_SANDBOXES_SUBSCRIPTION_ID": subscription,
            "ACA_SANDBOXES_RESOURCE_GROUP": "examples",
            "ACA_SANDBOX_GROUP": "twoprocs",
            "ACA_SANDBOXES_API_KEY": server.api_key,
        }
        runs: list[tuple[int, str, str]] = []
        for _ in range(2):
            # Not subprocess.run: the server answering the example runs on this event loop.
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(EXAMPLES / "suspend_between_tasks.py"),
                "--state",
                str(state),
                cwd=REPO,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), timeout=280)
            runs.append((process.returncode or 0, out.decode(), err.decode()))
            assert runs[-1][0] == 0, runs[-1]
    (_, first, _), (_, second, _) = runs
    assert f"Run again with --state {state} to resume." in first
    assert "Task 2 used the DataFrame" in second
    assert not state.exists()  # the second run finished the work and removed the state
    # The second process's block ran in the interpreter the first process's block started.
    assert _interpreter_pids(first) == _interpreter_pids(second)
    assert "(rows still in memory: 1200)" in second


def test_save_and_resume_continues_on_the_saved_session(tmp_path: Path) -> None:
    completed = run_example("save_and_resume.py", "--checkpoint-dir", str(tmp_path))

    assert completed.returncode == 0, explain(completed)
    checkpoint = json.loads((tmp_path / "team_checkpoint.json").read_text())
    assert checkpoint["session_id"].startswith("resume-demo-")
    assert checkpoint["team_state"]["type"] == "TeamState"
    assert f"on session {checkpoint['session_id']}" in completed.stdout
    assert "threshold" in completed.stdout  # step 2's code ran and used step 1's variable
    # The resumed team continues with the analyst, not with an executor that has no code to run.
    assert "No code blocks found" not in completed.stdout


def test_concurrent_agents_use_separate_sessions() -> None:
    completed = run_example("concurrent_agents.py")

    assert completed.returncode == 0, explain(completed)
    assert "3 workers ran at once in 3 separate sessions; no cross-talk." in completed.stdout


def test_azure_pool_without_an_endpoint_explains_what_to_set_and_exits_0() -> None:
    completed = run_example("azure_pool.py", timeout=60)

    assert completed.returncode == 0, explain(completed)
    out = completed.stdout
    assert "ACA_POOL_MANAGEMENT_ENDPOINT is not set" in out
    assert "Azure ContainerApps Session Executor" in out
    assert "az role assignment create" in out


def test_quickstart_exits_non_zero_when_the_pool_cannot_be_reached(tmp_path: Path) -> None:
    env = example_env()
    # A closed loopback port: the example must say it failed and exit non-zero, not hang or pass.
    env["ACA_POOL_MANAGEMENT_ENDPOINT"] = "http://127.0.0.1:9/subscriptions/s/resourceGroups/r/sessionPools/p"
    env["ACA_SESSIONS_API_KEY"] = "unused-key"

    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "--output-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert completed.returncode == 1, explain(completed)
    assert "FAILED:" in completed.stderr
    assert not (tmp_path / "revenue_by_region.png").exists()


def test_a_console_trace_of_the_quickstart_shows_each_execution_under_the_agents_span(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    env = {**example_env(), "ACA_SESSIONS_SANDBOX": "auto", "OTEL_TRACES_EXPORTER": "console"}

    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "--output-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert completed.returncode == 0, explain(completed)
    spans = console_spans(completed.stdout)
    by_id = {span["context"]["span_id"]: span for span in spans}
    executions = [span for span in spans if span["name"] == "execute_tool ACADynamicSessionsCodeExecutor"]
    assert len(executions) >= 2  # the quickstart's analysis and its chart
    for execution in executions:
        chain, current = [], execution
        while current.get("parent_id") in by_id:
            current = by_id[current["parent_id"]]
            chain.append(current["name"])
        assert chain[0] == "invoke_agent executor", chain
    clients = {span["name"] for span in spans if span["name"].startswith("aca_sessions ")}
    assert "aca_sessions execute" in clients
    assert "aca_sessions upload_file" in clients


def console_spans(stdout: str) -> list[dict[str, Any]]:
    """The spans the SDK's console exporter printed (JSON objects among the example's output)."""
    decoder = json.JSONDecoder()
    spans: list[dict[str, Any]] = []
    position = 0
    while (start := stdout.find('{\n    "name"', position)) >= 0:
        span, position = decoder.raw_decode(stdout, start)
        spans.append(span)
    return spans


def test_provision_pool_creates_a_pool_through_the_sdk_runs_the_agent_in_it_and_deletes_it() -> None:
    completed = run_example("provision_pool.py")

    assert completed.returncode == 0, explain(completed)
    out = completed.stdout
    assert "local management plane at https://127.0.0.1:" in out
    assert "provisioningState Succeeded; endpoint https://127.0.0.1:" in out
    assert "pi ~ 3.1" in out  # computed in the provisioned pool's session
    assert "deleted (GET answers 404)" in out


def test_mcp_agent_uses_the_pool_through_mcp_only() -> None:
    # Agent Framework's MCP tool needs mcp 2.x, which the main environment (AutoGen's mcp 1.x
    # world) does not install: `nox -s mcp_sdk` runs this test where it works.
    pytest.importorskip("agent_framework", reason="needs Agent Framework and mcp 2.x: run `nox -s mcp_sdk`")
    pytest.importorskip("mcp.client.client", reason="needs mcp 2.x: run `nox -s mcp_sdk`")
    completed = run_example("mcp_agent.py")

    assert completed.returncode == 0, explain(completed)
    out = completed.stdout
    assert "[tool call] launchShell({})" in out
    assert "[tool call] runPythonCodeInRemoteEnvironment(" in out
    assert "[tool call] runShellCommandInRemoteEnvironment(" in out
    # Computed in the sandbox and read back from the tool results by the scripted model.
    assert "The sum of the first 100 primes is 24133." in out
    assert "The environment runs Python 3." in out
    assert "MCPDeprecationWarning" not in completed.stderr
    assert_clean_console(completed.stderr)


# ------------------------------------------------------------------------- missing optional packages

AUTOGEN_INSTALL = "pip install -e '.[local,examples]'"
AGENT_FRAMEWORK_INSTALL = "pip install -e '.[local,agent-framework]'"
MCP_AGENT_INSTALL = "pip install -e '.[local]' agent-framework-core 'mcp>=2.3,<3' 'tenacity>=9.1.4,<9.2'"
# Each example that needs an extra, a module of that extra, and the command the example must print.
MISSING_PACKAGE_CASES = [
    ("quickstart.py", "autogen_agentchat", AUTOGEN_INSTALL),
    ("quickstart.py", "jupyter_client", AUTOGEN_INSTALL),  # the local pool's extra
    ("group_chat.py", "autogen_agentchat", AUTOGEN_INSTALL),
    ("restart_between_tasks.py", "autogen_ext", AUTOGEN_INSTALL),
    ("injected_functions.py", "autogen_agentchat", AUTOGEN_INSTALL),
    ("save_and_resume.py", "autogen_agentchat", AUTOGEN_INSTALL),
    ("checkpoint_dynamic_session.py", "autogen_agentchat", AUTOGEN_INSTALL),
    ("suspend_between_tasks.py", "autogen_agentchat", AUTOGEN_INSTALL),
    ("concurrent_agents.py", "autogen_agentchat", AUTOGEN_INSTALL),
    ("provision_pool.py", "azure.mgmt.appcontainers", AUTOGEN_INSTALL),
    ("agent_framework_quickstart.py", "agent_framework", AGENT_FRAMEWORK_INSTALL),
    ("agent_framework_workflow.py", "agent_framework", AGENT_FRAMEWORK_INSTALL),
    ("agent_framework_sandbox.py", "agent_framework", AGENT_FRAMEWORK_INSTALL),
    ("mcp_agent.py", "mcp", MCP_AGENT_INSTALL),
    ("mcp_agent.py", "agent_framework", MCP_AGENT_INSTALL),
    ("stream_sandbox_progress.py", "autogen_agentchat", AUTOGEN_INSTALL),
]
# Runs an example as `python examples/NAME` would, with the named modules unimportable (an entry of
# None in sys.modules makes every import of them, and of their submodules, raise ImportError).
_HIDING_RUNNER = """
import runpy, sys
example, hidden = sys.argv[1], sys.argv[2].split(",")
for name in hidden:
    sys.modules[name] = None
sys.argv = [example]
sys.path.insert(0, str(__import__("pathlib").Path(example).parent))
runpy.run_path(example, run_name="__main__")
"""


def run_example_without(name: str, *hidden: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _HIDING_RUNNER, str(EXAMPLES / name), ",".join(hidden)],
        cwd=REPO,
        env=example_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_example_that_needs_an_extra_is_run_without_it() -> None:
    # azure_pool.py needs only the package's own dependencies.
    assert {case[0] for case in MISSING_PACKAGE_CASES} == TESTED_EXAMPLES - {"azure_pool.py"}


@pytest.mark.parametrize(("example", "hidden", "install"), MISSING_PACKAGE_CASES)
def test_an_example_without_its_extra_prints_the_install_command_and_exits_2(
    example: str, hidden: str, install: str
) -> None:
    completed = run_example_without(example, hidden)

    assert completed.returncode == 2, explain(completed)
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""
    [line] = completed.stderr.strip().splitlines()
    assert line.startswith(f"{example} needs "), line
    assert line.endswith(f"install it with: {install}"), line


@pytest.mark.parametrize("example", ["quickstart.py", "agent_framework_quickstart.py"])
def test_an_example_pointed_at_a_local_pool_without_a_key_asks_for_it_in_one_line(example: str) -> None:
    # Port 9: nothing listens, and nothing may be sent; DefaultAzureCredential must not be tried.
    endpoint = "http://127.0.0.1:9/subscriptions/s/resourceGroups/r/sessionPools/p"
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / example)],
        cwd=REPO,
        env={**example_env(), "ACA_POOL_MANAGEMENT_ENDPOINT": endpoint},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 1, explain(completed)
    assert completed.stderr.strip() == (
        "FAILED: a local pool wants ACA_SESSIONS_API_KEY as well as ACA_POOL_MANAGEMENT_ENDPOINT "
        "(`aca-sessions serve` prints both)"
    ), explain(completed)


def test_checkpoint_dynamic_session_continues_in_a_new_session_and_lists_what_was_not_kept(
    tmp_path: Path,
) -> None:
    # The checkpoint key is made in the (temporary) user configuration, not the real home.
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "checkpoint_dynamic_session.py"), "--checkpoint-dir", str(tmp_path)],
        cwd=REPO,
        env={**example_env(), "XDG_CONFIG_HOME": str(tmp_path / "config")},
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert completed.returncode == 0, explain(completed)
    assert (tmp_path / "config" / "autogen-aca-sessions" / "checkpoint.key").exists()
    assert (tmp_path / "energy.ckpt").exists()
    out = completed.stdout
    assert "variables: days, rng, trend, usage" in out
    assert "files:     notes.log, usage.csv" in out
    # The open log file cannot be pickled: said, with the reason, not lost silently.
    assert "NOT KEPT:  log (TextIOWrapper)" in out
    assert "Restored into the new session" in out
    # Computed in the new session from the restored DataFrame and trend and the restored CSV.
    assert "60 days of history (usage.csv: 60 rows)" in out
    assert "forecast for day 73:" in out
    assert_clean_console(completed.stderr)


def test_stream_sandbox_progress_prints_each_step_before_the_block_ends() -> None:
    completed = run_example("stream_sandbox_progress.py", sandbox="bwrap")

    assert completed.returncode == 0, explain(completed)
    out = completed.stdout
    steps = [out.index(f"epoch {n}/5: loss") for n in range(1, 6)]
    ended = out.index("--- the block ended with exit code 0")
    # The agent's events come in order: each step's output event came before the execution
    # event, which the agent yields only once the block has returned.
    assert steps == sorted(steps)
    assert steps[-1] < ended
    assert "trainer: Training finished after 5 epochs" in out[ended:]
    assert_clean_console(completed.stderr)

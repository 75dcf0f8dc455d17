"""Developer sessions: `nox -s tests`, `nox -s lint`, `nox -s typecheck`, `nox -s bench`,
`nox -s agent_framework`, and the Python matrix: `nox -s matrix` (the suite on every supported
interpreter installed here) and `nox -s fast` (the fast subset on each).

`nox -s "fast(3.10)"` picks one interpreter; `nox -l` lists those found.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = ["3.11"]

SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
"""What ``requires-python`` promises; .ci/run runs the fast subset on the first and the last."""

FAST_TESTS = (
    "tests/unit",  # the client (wire contracts, retries, auth, errors) and the executor, scripted
    "tests/local/test_http_execute.py",  # the local pool over HTTP with real kernels
    "tests/local/test_process_signals.py",
    "tests/local/test_access_log.py",
    "tests/e2e/test_executor_execution.py",  # the executor against the real local pool
    "tests/e2e/test_pytest_plugin.py",  # the plugin in a user's pytest, through its entry point
    "tests/e2e/test_telemetry.py",
    "tests/e2e/test_cli_configuration.py",
)
"""The fast subset: client, executor and real-kernel local pool basics, in a few minutes."""


def _interpreter(version: str) -> str | None:
    """The path of an installed ``python<version>`` that runs (a PATH entry, else pyenv's)."""
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    pattern = os.path.join(pyenv_root, "versions", f"{version}.*", "bin", f"python{version}")
    candidates += sorted(glob.glob(pattern))
    for candidate in candidates:
        # A pyenv shim exists for every version pyenv knows but fails for those not selected.
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


INSTALLED_PYTHONS = {v: path for v in SUPPORTED_PYTHONS if (path := _interpreter(v)) is not None}


@nox.session
@nox.parametrize("python", list(INSTALLED_PYTHONS.values()), ids=list(INSTALLED_PYTHONS))
def matrix(session: nox.Session) -> None:
    """The test suite (everything but the soak) on each supported interpreter installed here."""
    session.install("-e", ".[local,dev]")
    session.run("pytest", "-m", "not slow", *session.posargs)


@nox.session
@nox.parametrize("python", list(INSTALLED_PYTHONS.values()), ids=list(INSTALLED_PYTHONS))
def fast(session: nox.Session) -> None:
    """The fast subset (:data:`FAST_TESTS`) on each supported interpreter installed here."""
    session.install("-e", ".[local,dev]")
    session.run("pytest", "-m", "not slow", *FAST_TESTS, *session.posargs)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (everything but the long soak)."""
    session.install("-e", ".[local,dev]")
    session.run("pytest", "-m", "not slow", *session.posargs)


@nox.session(python=PYTHON, name="agent_framework")
def agent_framework(session: nox.Session) -> None:
    """The Agent Framework adapter as its users install it: `.[local,agent-framework]`, no AutoGen extras.

    The default `tests` session runs these tests too (`dev` includes agent-framework-core, which
    installs beside autogen-ext 0.7.5 without conflict: core needs no mcp); this one proves the
    extra alone is enough.
    """
    # pytest-xdist: pyproject's addopts spread every run over workers.
    session.install(
        "-e",
        ".[local,agent-framework]",
        "pytest>=8",
        "pytest-asyncio>=0.24",
        "pytest-timeout>=2.3",
        "pytest-xdist>=3.6",
    )
    session.run("pytest", "tests/af_adapter", *session.posargs)


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """The long soak test of the local pool."""
    session.install("-e", ".[local,dev]")
    session.run("pytest", "-m", "slow", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and format check."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "src", "tests", "examples", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "examples", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[local,dev]")
    session.run("mypy")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmark suite: prints figures, baselines, ratios and targets."""
    # autogen-ext's executor (the baseline of the `upstream` benchmark) lists the session's
    # packages with pkg_resources, which setuptools 81 and later no longer ship; the kernels
    # run in this environment, so it needs a setuptools that still has it.
    session.install("-e", ".[local,dev]", "setuptools<81")
    session.run("python", "benchmarks/run.py", *session.posargs)


# The MCP clients need the `mcp` SDK, whose majors split the ecosystem: Agent Framework's MCP
# tools need mcp 2.x, autogen-ext 0.7.5's McpWorkbench imports mcp 1.x APIs. The package itself
# depends on neither (only on `mcp-types`), so each client is tested in an environment of its own.
MCP_SDK_TESTS = ["tests/mcp_clients/test_mcp_sdk_client.py", "tests/mcp_clients/test_agent_framework_mcp.py"]
MCP_AUTOGEN_TESTS = ["tests/mcp_clients/test_autogen_mcp_workbench.py"]


@nox.session(python=PYTHON)
def mcp_sdk(session: nox.Session) -> None:
    """The pool's MCP server with the official MCP SDK 2.x and Agent Framework's MCP tool."""
    # Agent Framework lists mcp and tenacity (its MCP tools need both) only in its "all" extra.
    session.install(
        "-e", ".[local,dev]", "mcp>=2.3,<3", "agent-framework-core>=1.23,<2", "tenacity>=9.1.4,<9.2"
    )
    session.run("pytest", *MCP_SDK_TESTS, "tests/e2e/test_examples.py", "-k", "mcp", *session.posargs)


@nox.session(python=PYTHON)
def mcp_autogen(session: nox.Session) -> None:
    """The pool's MCP server with AutoGen's McpWorkbench (autogen-ext 0.7.5, mcp 1.x)."""
    session.install("-e", ".[local,dev]", "autogen-ext[mcp]==0.7.5", "mcp>=1.11,<2")
    session.run("pytest", *MCP_AUTOGEN_TESTS, *session.posargs)

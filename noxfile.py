"""Developer sessions: `nox -s tests`, `nox -s lint`, `nox -s typecheck`, `nox -s bench`,
`nox -s agent_framework`."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = ["3.11"]


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
    session.install(
        "-e", ".[local,agent-framework]", "pytest>=8", "pytest-asyncio>=0.24", "pytest-timeout>=2.3"
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

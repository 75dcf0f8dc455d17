"""Bad settings end `aca-sessions` with one line and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from test_cli import cli, cli_env

from autogen_aca_sessions.cli import EXIT_USAGE, build_parser

# Nothing listens on port 9: a request that got sent would fail differently (status 125).
ENDPOINT = "http://127.0.0.1:9/subscriptions/s/resourceGroups/r/sessionPools/p"
KEY = "0123456789abcdef"


def assert_one_line_usage_error(completed: subprocess.CompletedProcess[str], *expected: str) -> None:
    stderr = completed.stderr
    assert completed.returncode == EXIT_USAGE, stderr
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    for text in expected:
        assert text in stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ACA_SESSIONS_API_KEY", KEY + "\n", ("bad $ACA_SESSIONS_API_KEY", "a newline")),
        ("ACA_SESSIONS_API_KEY", KEY + "\r", ("bad $ACA_SESSIONS_API_KEY", "a carriage return")),
        ("ACA_POOL_MANAGEMENT_ENDPOINT", ENDPOINT + "\n", ("bad $ACA_POOL_MANAGEMENT_ENDPOINT", "a newline")),
    ],
)
def test_exec_refuses_an_environment_variable_pasted_with_a_newline(
    variable: str, value: str, expected: tuple[str, ...]
) -> None:
    env = {
        **cli_env(),
        "ACA_POOL_MANAGEMENT_ENDPOINT": ENDPOINT,
        "ACA_SESSIONS_API_KEY": KEY,
        variable: value,
    }

    completed = cli("exec", "-c", "1", env=env)

    assert_one_line_usage_error(completed, *expected)
    assert KEY not in completed.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--api-key", "two words"), ("bad --api-key", "a space")),
        (("--api-key", KEY, "--session-id", "mine\n"), ("bad --session-id", "a newline")),
        (("--api-key", KEY, "--session-id", "a\x1bb"), ("bad --session-id", "U+001B")),
    ],
)
def test_exec_refuses_bad_flags_with_one_line(args: tuple[str, ...], expected: tuple[str, ...]) -> None:
    completed = cli("exec", "--endpoint", ENDPOINT, *args, "-c", "1")

    assert_one_line_usage_error(completed, *expected)


def test_serve_refuses_an_api_key_no_client_could_send() -> None:
    completed = cli("serve", "--port", "0", env={**cli_env(), "ACA_SESSIONS_API_KEY": KEY + "\n"})

    assert_one_line_usage_error(completed, "aca-sessions serve: bad $ACA_SESSIONS_API_KEY", "a newline")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("exec", "--endpoint", ENDPOINT, "--api-key", "", "-c", "1"), "aca-sessions exec: bad --api-key"),
        (("serve", "--port", "0", "--api-key", ""), "aca-sessions serve: bad --api-key"),
        (("serve", "--port", "0", "--mcp-api-key", ""), "aca-sessions serve: bad --mcp-api-key"),
    ],
    ids=["exec", "serve", "serve-mcp"],
)
def test_an_empty_key_flag_is_a_usage_error_not_a_generated_key(args: tuple[str, ...], expected: str) -> None:
    # `--api-key "$KEY"` with KEY unset: silently generating a key (serve) or falling back to
    # DefaultAzureCredential (exec) would hide the mistake.
    completed = cli(*args)

    assert_one_line_usage_error(completed, expected, "it is empty")
    assert "API key:" not in completed.stdout


def test_version_prints_the_installed_package_version() -> None:
    completed = cli("--version")

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"aca-sessions {metadata.version('autogen-aca-sessions')}"


def readme_section(heading: str) -> str:
    """The README's text under ``heading``, up to the next heading of the same or a higher level."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    level = heading.split(" ", 1)[0]
    after = readme.split(f"\n{heading}\n", 1)[1]
    ends = [after.find(f"\n{'#' * depth} ") for depth in range(1, len(level) + 1)]
    return after[: min((end for end in ends if end >= 0), default=len(after))]


@pytest.mark.parametrize("command", ["serve", "exec"])
def test_the_readme_section_of_each_command_names_every_flag(command: str) -> None:
    section = readme_section(f"### `aca-sessions {command}`")
    parser = build_parser()
    [commands] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    # Each option by one of its spellings (`-c` stands for `--code`).
    missing = [
        "/".join(action.option_strings)
        for action in commands.choices[command]._actions
        if action.option_strings
        and "--help" not in action.option_strings
        and not any(f"`{flag}" in section for flag in action.option_strings)
    ]

    assert not missing, missing


# Bytes that are not UTF-8, as a shell hands them over (Python decodes argv with surrogateescape).
NOT_UTF8 = os.fsdecode(b"a\xffb")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("exec", "--endpoint", ENDPOINT, "--api-key", KEY, "-c", NOT_UTF8), "bad -c"),
        (
            ("exec", "--endpoint", ENDPOINT, "--api-key", KEY, "--session-id", NOT_UTF8, "-c", "1"),
            "bad --session-id",
        ),
        (("exec", "--endpoint", ENDPOINT + NOT_UTF8, "--api-key", KEY, "-c", "1"), "bad --endpoint"),
        (("serve", "--port", "0", "--host", NOT_UTF8), "bad --host"),
    ],
    ids=["code", "session-id", "endpoint", "serve-host"],
)
def test_an_argument_that_is_not_utf8_is_a_usage_error(args: tuple[str, ...], expected: str) -> None:
    completed = cli(*args)

    assert_one_line_usage_error(completed, expected, "not UTF-8 text (byte 0xff)")


def test_an_endpoint_variable_that_is_not_utf8_names_the_variable() -> None:
    env = {**cli_env(), "ACA_POOL_MANAGEMENT_ENDPOINT": ENDPOINT + NOT_UTF8}

    completed = cli("exec", "--api-key", KEY, "-c", "1", env=env)

    assert_one_line_usage_error(completed, "bad $ACA_POOL_MANAGEMENT_ENDPOINT", "not UTF-8 text")


def test_a_source_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    source = tmp_path / "latin1.py"
    source.write_bytes(b"print('caf\xe9')\n")

    completed = cli("exec", "--endpoint", ENDPOINT, "--api-key", KEY, str(source))

    assert_one_line_usage_error(completed, f"cannot read {source}", "not UTF-8 text (byte 0xe9 at offset 10)")


def test_standard_input_that_is_not_utf8_is_a_usage_error() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "autogen_aca_sessions.cli",
            "exec",
            "--endpoint",
            ENDPOINT,
            "--api-key",
            KEY,
            "-",
        ],
        env=cli_env(),
        input=b"print(1)\xfe",
        capture_output=True,
        timeout=120,
    )

    stderr = completed.stderr.decode()
    assert completed.returncode == EXIT_USAGE, stderr
    assert (
        stderr.strip()
        == "aca-sessions exec: cannot read standard input: it is not UTF-8 text (byte 0xfe at offset 8)"
    )


def test_a_missing_or_non_pem_cafile_is_a_usage_error(tmp_path: Path) -> None:
    not_pem = tmp_path / "not-a-certificate.pem"
    not_pem.write_text("hello\n")

    missing = cli(
        "exec", "--endpoint", ENDPOINT, "--api-key", KEY, "--cafile", str(tmp_path / "none.pem"), "-c", "1"
    )
    junk = cli("exec", "--endpoint", ENDPOINT, "--api-key", KEY, "--cafile", str(not_pem), "-c", "1")

    assert_one_line_usage_error(missing, "bad --cafile: cannot load", "No such file or directory")
    assert_one_line_usage_error(junk, "bad --cafile: cannot load", "a PEM certificate is expected")


def test_save_images_into_a_file_is_refused_before_the_code_runs(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")

    completed = cli("exec", "--endpoint", ENDPOINT, "--api-key", KEY, "--save-images", str(a_file), "-c", "1")

    assert_one_line_usage_error(completed, f"bad --save-images: {a_file} is not a directory")


def test_an_operation_the_api_version_lacks_is_a_usage_error_naming_the_version_needed() -> None:
    completed = cli(
        "exec",
        "--endpoint",
        ENDPOINT,
        "--api-key",
        KEY,
        "--api-version",
        "2024-02-02-preview",
        "--shell",
        "-c",
        "ls",
    )

    assert_one_line_usage_error(completed, "bad --api-version:", "2024-02-02-preview", "2025-02-02-preview")
    assert "Construct the client" not in completed.stderr

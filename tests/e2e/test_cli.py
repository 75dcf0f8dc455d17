"""End to end: ``aca-sessions serve`` as a real process, ``aca-sessions exec`` against it."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from autogen_aca_sessions.client import SessionsClient

REPO = Path(__file__).resolve().parents[2]
# Variables that would point the CLI at another pool or key than the one a test starts.
_FOREIGN_ENV = ("ACA_POOL_MANAGEMENT_ENDPOINT", "ACA_SESSIONS_API_KEY")
STARTUP_SECONDS = 120.0


def cli_env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _FOREIGN_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autogen_aca_sessions.cli", *args],
        cwd=REPO,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class ServedPool:
    """A running ``aca-sessions serve`` process and what it printed."""

    process: subprocess.Popen[str]
    endpoint: str
    api_key: str
    banner: str
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def exec(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # "--api-key=KEY": a generated key may start with "-", which argparse would take for an option.
        return cli("exec", f"--endpoint={self.endpoint}", f"--api-key={self.api_key}", *args, timeout=timeout)

    def rest_of_output(self, timeout: float = 30) -> str:
        """Everything printed after the banner, up to the end of the process's stdout."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
        return "".join(seen)


def _pump(stream: object, sink: queue.Queue[str | None]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        sink.put(line)
    sink.put(None)


def start_serve(*args: str) -> ServedPool:
    process = subprocess.Popen(
        [sys.executable, "-m", "autogen_aca_sessions.cli", "serve", "--port", "0", *args],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    banner: list[str] = []
    endpoint = api_key = None
    deadline = time.monotonic() + STARTUP_SECONDS
    while api_key is None or endpoint is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            process.kill()
            raise AssertionError("serve printed no endpoint and key in time:\n" + "".join(banner))
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError(
                f"serve exited with {process.wait()} before it was ready:\n" + "".join(banner)
            )
        banner.append(line)
        exported = re.match(r"\s*export (ACA_POOL_MANAGEMENT_ENDPOINT|ACA_SESSIONS_API_KEY)=(.+)$", line)
        if exported:
            value = shlex.split(exported.group(2))[0]
            if exported.group(1) == "ACA_POOL_MANAGEMENT_ENDPOINT":
                endpoint = value
            else:
                api_key = value
    # The banner ends with the line saying how to stop; collect it so assertions see all of it.
    while not banner[-1].startswith("Press Ctrl+C"):
        line = lines.get(timeout=10)
        if line is None:
            break
        banner.append(line)
    return ServedPool(
        process=process, endpoint=endpoint, api_key=api_key, banner="".join(banner), lines=lines
    )


def stop_serve(pool: ServedPool) -> None:
    if pool.process.poll() is None:
        pool.process.send_signal(signal.SIGTERM)
        try:
            pool.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pool.process.kill()
            pool.process.wait(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedPool]:
    pool = start_serve("--ready-sessions", "1", "--root-dir", str(tmp_path_factory.mktemp("serve-root")))
    try:
        yield pool
    finally:
        stop_serve(pool)


# ------------------------------------------------------------------------------------------ serve


def test_serve_prints_endpoint_key_isolation_and_how_to_authenticate(served: ServedPool) -> None:
    assert re.match(
        r"^http://127\.0\.0\.1:\d+/subscriptions/[^/]+/resourceGroups/[^/]+/sessionPools/[^/]+$",
        served.endpoint,
    )
    assert f"Endpoint:   {served.endpoint}" in served.banner
    assert f"API key:    {served.api_key}" in served.banner
    assert re.search(r"Isolation:\s+(bwrap|none)", served.banner)
    assert f"Authorization: Bearer {served.api_key}" in served.banner
    assert "curl" in served.banner
    assert "ACADynamicSessionsCodeExecutor(" in served.banner


def test_serve_prints_the_ready_line_once_a_session_kernel_is_free(served: ServedPool) -> None:
    from autogen_aca_sessions.cli import READY_LINE

    seen: list[str] = []
    while READY_LINE + "\n" not in seen:
        line = served.lines.get(timeout=STARTUP_SECONDS)  # a bound for a hang, not a figure
        assert line is not None, "serve ended without its ready line:\n" + "".join(seen)
        seen.append(line)
    # The line comes after the banner, and then the session it announced answers.
    assert READY_LINE not in served.banner
    result = served.exec("-c", "print(6 * 7)")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "42\n"


def test_serve_generates_a_key_that_cannot_be_mistaken_for_an_option() -> None:
    from autogen_aca_sessions.local.frontends.auth import generate_api_key

    keys = {generate_api_key() for _ in range(2000)}

    assert len(keys) == 2000
    assert not [key for key in keys if key.startswith("-")]


def test_serve_refuses_a_non_loopback_host_without_allow_remote() -> None:
    completed = cli("serve", "--host", "0.0.0.0", "--port", "0", timeout=60)

    assert completed.returncode == 2
    assert "--allow-remote" in completed.stderr
    assert "0.0.0.0" in completed.stderr
    assert "Endpoint:" not in completed.stdout


def test_serve_on_a_port_in_use_fails_clearly(served: ServedPool) -> None:
    port = re.search(r"://127\.0\.0\.1:(\d+)/", served.endpoint)
    assert port

    completed = cli("serve", "--port", port.group(1), "--ready-sessions", "0", timeout=60)

    assert completed.returncode == 1
    assert "could not start the pool" in completed.stderr
    assert f"port {port.group(1)} is taken" in completed.stderr
    assert "--port 0" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert "Endpoint:" not in completed.stdout


def _wait_for_file(root: Path, name: str, *, present: bool, seconds: float = 120) -> list[Path]:
    """The files called ``name`` under ``root`` once there are some (``present``) or none left."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = list(root.rglob(name))
        if bool(found) == present:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{name} under {root} never became {'present' if present else 'absent'}")


def test_exec_interrupted_by_ctrl_c_says_so_in_one_line_and_deletes_its_session(tmp_path: Path) -> None:
    pool = start_serve("--ready-sessions", "0", "--root-dir", str(tmp_path))
    try:
        # As from a terminal: SIGINT raises KeyboardInterrupt (a background child ignores it).
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autogen_aca_sessions.cli",
                "exec",
                f"--endpoint={pool.endpoint}",
                f"--api-key={pool.api_key}",
                "-c",
                "import time; open('exec-started', 'w').close(); time.sleep(600)",
            ],
            cwd=REPO,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        _wait_for_file(tmp_path, "exec-started", present=True)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
        # The session exec generated was deleted: its directory (and the marker) went with it.
        _wait_for_file(tmp_path, "exec-started", present=False)
    finally:
        stop_serve(pool)
    assert process.returncode == 130, err
    assert err == "aca-sessions exec: interrupted\n"
    assert out == ""


def test_serve_rejects_a_tls_key_without_a_certificate(tmp_path: Path) -> None:
    completed = cli("serve", "--port", "0", "--tls-key", str(tmp_path / "key.pem"), timeout=60)

    assert completed.returncode == 2
    assert "--tls-cert" in completed.stderr


def test_serve_rejects_a_malformed_fault_plan_as_a_usage_error() -> None:
    completed = cli("serve", "--port", "0", "--ready-sessions", "0", "--faults", "429=lots", timeout=60)

    assert completed.returncode == 2
    assert "--faults" in completed.stderr
    assert "Endpoint:" not in completed.stdout


def test_serve_with_faults_fails_executions_the_way_the_plan_says(tmp_path: Path) -> None:
    pool = start_serve(
        "--ready-sessions", "0", "--root-dir", str(tmp_path), "--faults", "500=1.0,ops=execute"
    )
    try:
        assert "Faults:" in pool.banner
        completed = pool.exec("-c", "print('never runs')")
        assert completed.returncode == 125, completed.stdout + completed.stderr
        assert "500" in completed.stderr
        assert "never runs" not in completed.stdout
    finally:
        stop_serve(pool)


# ------------------------------------------------------------------------------------------ exec


def test_exec_snippet_prints_stdout_and_result(served: ServedPool) -> None:
    completed = served.exec("-c", "print(6 * 7)\n{'answer': 42}")

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["42", '{"answer": 42}']


def test_exec_runs_a_file(served: ServedPool, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("import os\nprint('cwd', os.getcwd())\nprint(sum(range(10)))\n")

    completed = served.exec(str(script))

    assert completed.returncode == 0, completed.stderr
    cwd, total = completed.stdout.splitlines()
    assert total == "45"
    if "Isolation:  bwrap" in served.banner:
        assert cwd == "cwd /mnt/data"
    else:  # unsandboxed sessions run in their own directory under the pool root
        assert cwd.startswith("cwd /")
        assert cwd != "cwd /mnt/data"


def test_exec_runs_a_file_saved_with_a_utf8_byte_order_mark(served: ServedPool, tmp_path: Path) -> None:
    # Windows editors save one; Python itself accepts it, so the session must see plain code.
    script = tmp_path / "bom.py"
    script.write_bytes(b"\xef\xbb\xbfprint('\xe6\x9d\xb1\xe4\xba\xac')\n")

    completed = served.exec(str(script))

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "東京\n"


def test_exec_reads_code_from_stdin(served: ServedPool) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "autogen_aca_sessions.cli", "exec", "-", "--endpoint", served.endpoint],
        input="print('from stdin')\n",
        env={**cli_env(), "ACA_SESSIONS_API_KEY": served.api_key},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "from stdin\n"


def test_exec_failing_code_exits_1_with_the_traceback_on_stderr(served: ServedPool) -> None:
    completed = served.exec("-c", "print('before')\n1 / 0")

    assert completed.returncode == 1
    assert completed.stdout == "before\n"
    assert "ZeroDivisionError" in completed.stderr


def test_exec_timeout_exits_124(served: ServedPool) -> None:
    completed = served.exec(
        "-c", "import time\nprint('started', flush=True)\ntime.sleep(60)", "--timeout", "1"
    )

    assert completed.returncode == 124, completed.stdout + completed.stderr
    assert "started" in completed.stdout


def test_exec_keeps_state_in_a_named_session(served: ServedPool) -> None:
    first = served.exec("--session-id", "cli-state-test", "-c", "counter = 41")
    second = served.exec("--session-id", "cli-state-test", "-c", "counter + 1")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert second.stdout == "42\n"


def test_exec_deletes_the_session_it_generated(served: ServedPool) -> None:
    completed = served.exec("-c", "print('x')")
    assert completed.returncode == 0, completed.stderr

    async def identifiers() -> list[str]:
        async with SessionsClient(served.endpoint, served.api_key) as client:
            return [info.identifier for info in await client.list_sessions()]

    assert not [
        name for name in asyncio.run(identifiers()) if name.startswith("cli-") and name != "cli-state-test"
    ]


def test_exec_with_a_wrong_key_exits_125_and_explains(served: ServedPool) -> None:
    completed = cli("exec", "--endpoint", served.endpoint, "--api-key", "wrong-key", "-c", "print(1)")

    assert completed.returncode == 125
    assert "401" in completed.stderr
    assert "--api-key" in completed.stderr


def test_exec_saves_displayed_images_with_save_images(served: ServedPool, tmp_path: Path) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"

    completed = served.exec("-c", code, "--save-images", str(tmp_path))

    assert completed.returncode == 0, completed.stderr
    image = tmp_path / "image-1.png"
    assert image.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"[image saved to {image}]" in completed.stderr


def test_exec_that_cannot_save_its_images_says_so_in_one_line(served: ServedPool, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"

    completed = served.exec("--save-images", str(blocker / "images"), "-c", code)

    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert (
        f"aca-sessions exec: cannot save images to {blocker / 'images'}: Not a directory" in completed.stderr
    )


def test_the_python_snippet_in_the_banner_works(served: ServedPool) -> None:
    start = served.banner.index("  from autogen_aca_sessions import")
    snippet = textwrap.dedent(served.banner[start : served.banner.index("\n\n", start)])
    program = snippet + textwrap.dedent(
        """
        import asyncio
        from autogen_core import CancellationToken
        from autogen_core.code_executor import CodeBlock

        async def main() -> None:
            async with executor:
                result = await executor.execute_code_blocks(
                    [CodeBlock(code="print('snippet ok')", language="python")], CancellationToken()
                )
            print(result.exit_code, result.stdout.strip())

        asyncio.run(main())
        """
    )

    completed = subprocess.run(
        [sys.executable, "-c", program], cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "0 snippet ok"


def test_the_examples_use_a_served_pool_through_the_printed_variables(
    served: ServedPool, tmp_path: Path
) -> None:
    env = {
        **cli_env(),
        "ACA_POOL_MANAGEMENT_ENDPOINT": served.endpoint,
        "ACA_SESSIONS_API_KEY": served.api_key,
    }
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT"):
        env.pop(name, None)

    completed = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py"), "--output-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert f"Pool: session pool {served.endpoint}" in completed.stdout
    assert (tmp_path / "revenue_by_region.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_an_example_with_a_wrong_key_ends_with_one_line_naming_the_variable(
    served: ServedPool, tmp_path: Path
) -> None:
    env = {**cli_env(), "ACA_POOL_MANAGEMENT_ENDPOINT": served.endpoint, "ACA_SESSIONS_API_KEY": "wrong-key"}
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT"):
        env.pop(name, None)

    completed = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py"), "--output-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert completed.returncode == 1, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr, completed.stderr
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("FAILED: the pool refused the key in ACA_SESSIONS_API_KEY;"), completed.stderr
    assert "HTTP 401" in last
    assert "body:" not in last


def test_exec_json_prints_the_whole_result(served: ServedPool) -> None:
    import json

    completed = served.exec("--json", "-c", "print('hi')\n3 * 3")

    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["stdout"] == "hi\n"
    assert document["result"] == 9
    assert document["status"].lower() == "succeeded"


def test_exec_without_an_endpoint_is_a_usage_error() -> None:
    completed = cli("exec", "-c", "print(1)")

    assert completed.returncode == 2
    assert "ACA_POOL_MANAGEMENT_ENDPOINT" in completed.stderr


@pytest.mark.parametrize("value", ["0", "221", "soon"])
def test_exec_rejects_a_timeout_outside_1_to_220(value: str) -> None:
    completed = cli("exec", "--endpoint", "http://127.0.0.1:9/x", "--timeout", value, "-c", "print(1)")

    assert completed.returncode == 2
    assert "--timeout" in completed.stderr


def test_exec_on_an_unreachable_pool_exits_125() -> None:
    completed = cli("exec", "--endpoint", "http://127.0.0.1:9/sessionPools/none", "--api-key", "k", "-c", "1")

    assert completed.returncode == 125
    assert "aca-sessions exec:" in completed.stderr


# ------------------------------------------------------------------------------------------ TLS


def test_serve_tls_prints_its_certificate_and_exec_trusts_it_with_cafile(tmp_path: Path) -> None:
    pool = start_serve("--tls", "--ready-sessions", "0", "--root-dir", str(tmp_path))
    try:
        found = re.search(r"TLS:\s+certificate (\S+)", pool.banner)
        assert found, pool.banner
        certificate = found.group(1)
        trusted = pool.exec("--cafile", certificate, "-c", "print('over https')")
        untrusted = pool.exec("-c", "print('over https')")
        via_env = cli(
            "exec",
            "--endpoint",
            pool.endpoint,
            f"--api-key={pool.api_key}",
            "-c",
            "print('env')",
            env={**cli_env(), "SSL_CERT_FILE": certificate},
        )
    finally:
        stop_serve(pool)

    assert pool.endpoint.startswith("https://127.0.0.1:")
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout == "over https\n"
    assert untrusted.returncode == 125
    assert "--cafile" in untrusted.stderr
    assert via_env.returncode == 0, via_env.stderr


# ------------------------------------------------------------------------------------ shell pools


def test_exec_shell_passes_the_command_exit_status_through(tmp_path: Path) -> None:
    pool = start_serve("--pool-type", "Shell", "--ready-sessions", "0", "--root-dir", str(tmp_path))
    try:
        completed = pool.exec("--shell", "-c", "echo out; echo err >&2; exit 3")
    finally:
        stop_serve(pool)

    assert completed.returncode == 3, completed.stderr
    assert completed.stdout == "out\n"
    assert "err" in completed.stderr


# ------------------------------------------------------------------------------------ shutdown


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_cleanly_on_signal_leaving_no_kernel(tmp_path: Path, stop_signal: signal.Signals) -> None:
    root = tmp_path / "root"
    pool = start_serve("--ready-sessions", "2", "--root-dir", str(root))
    try:
        ran = pool.exec("--session-id", "kept", "-c", "print('alive')")
        assert ran.returncode == 0, ran.stderr
        children = psutil.Process(pool.process.pid).children(recursive=True)
        assert children, "a pool with a session and ready kernels must have kernel processes"

        pool.process.send_signal(stop_signal)
        returncode = pool.process.wait(timeout=60)
        tail = pool.rest_of_output()
    finally:
        stop_serve(pool)

    assert returncode == 0, tail
    assert "Stopped." in tail
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"processes left behind: {[p.pid for p in alive]}"


# ------------------------------------------------------------------------------ management plane


def test_serve_management_plane_prints_the_arm_url_and_a_curl_that_makes_a_pool(
    tmp_path: Path,
) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("the banner's curl example needs the curl binary")
    pool = start_serve("--management-plane", "--ready-sessions", "0", "--root-dir", str(tmp_path))
    try:
        base = re.search(r"ARM base URL: (http://127\.0\.0\.1:\d+)", pool.banner)
        assert base, pool.banner
        lines = pool.banner.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("curl -X PUT"))
        command = lines[start].strip().rstrip("\\") + " " + lines[start + 1].strip()
        argv = shlex.split(command)
        assert argv[0] == "curl"
        created = subprocess.run([curl, "-sS", *argv[1:]], capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        body = json.loads(created.stdout)
        endpoint = body["properties"]["poolManagementEndpoint"]
        assert endpoint.startswith(base.group(1) + "/subscriptions/")
        in_new_pool = cli("exec", f"--endpoint={endpoint}", f"--api-key={pool.api_key}", "-c", "print(6*7)")
        in_fixed_pool = pool.exec("-c", "print('fixed')")
    finally:
        stop_serve(pool)
    assert in_new_pool.returncode == 0, in_new_pool.stderr
    assert in_new_pool.stdout == "42\n"
    assert in_fixed_pool.returncode == 0, in_fixed_pool.stderr
    assert in_fixed_pool.stdout == "fixed\n"
    assert "Pools created here last as long as this process" in pool.banner


def test_serve_management_plane_prints_curls_that_make_a_sandbox_group_and_a_running_sandbox(
    tmp_path: Path,
) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("the banner's curl examples need the curl binary")
    pool = start_serve("--management-plane", "--ready-sessions", "0", "--root-dir", str(tmp_path))
    try:
        lines = pool.banner.splitlines()
        start = lines.index("Sandboxes (ARM Microsoft.App/sandboxGroups and their data plane):")
        group_command = lines[start + 2].strip()
        sandbox_command = lines[start + 3].strip().rstrip("\\") + " " + lines[start + 4].strip()
        replies = []
        for command in (group_command, sandbox_command):
            argv = shlex.split(command)
            assert argv[0] == "curl"
            done = subprocess.run([curl, "-sS", *argv[1:]], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            replies.append(json.loads(done.stdout))
    finally:
        stop_serve(pool)
    group, sandbox = replies
    assert group["type"] == "Microsoft.App/sandboxGroups"
    assert group["properties"]["provisioningState"] == "Succeeded"
    assert sandbox["state"] == "Running"
    assert "SandboxGroupClient(" in pool.banner


def test_serve_tls_prints_sdk_lines_that_run_as_printed_with_the_key_as_credential(tmp_path: Path) -> None:
    # A reader of the banner copies its SDK lines into a script: they must name a credential
    # they can make (not a bare ``credential``) and run as printed against this server.
    pytest.importorskip("azure.containerapps.sandbox")
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("the banner's curl examples need the curl binary")
    pool = start_serve("--management-plane", "--tls", "--ready-sessions", "0", "--root-dir", str(tmp_path))
    try:
        lines = pool.banner.splitlines()
        start = lines.index("Sandboxes (ARM Microsoft.App/sandboxGroups and their data plane):")
        made = subprocess.run(
            [curl, "-sS", *shlex.split(lines[start + 2].strip())[1:]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        sdk = next(
            i for i, line in enumerate(lines) if line.strip().startswith("azure-containerapps-sandbox")
        )
        printed = [line.strip() for line in lines[sdk + 1 : sdk + 5]]
        script = "\n".join(
            [
                *printed,
                'sandbox = client.begin_create_sandbox(disk="python-3.12").result()',
                'print(sandbox.exec("echo 6x7").stdout, end="")',
            ]
        )
        ran = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=cli_env()
        )
    finally:
        stop_serve(pool)
    assert ran.returncode == 0, (script, ran.stderr[-2000:])
    assert ran.stdout == "6x7\n"
    assert f"StaticKeyCredential({json.dumps(pool.api_key)})" in pool.banner
    assert "ContainerAppsAPIClient(credential" not in pool.banner


def test_serve_management_plane_takes_faults_for_its_own_pool(tmp_path: Path) -> None:
    # One pool host: --faults applies to the served pool with or without the management plane.
    pool = start_serve(
        "--management-plane", "--faults", "503=1", "--ready-sessions", "0", "--root-dir", str(tmp_path)
    )
    try:
        refused = pool.exec("-c", "print(1)")
    finally:
        stop_serve(pool)
    assert "Faults:     503=1" in pool.banner
    assert "ARM base URL:" in pool.banner
    assert refused.returncode == 125, refused.stderr


def test_the_server_root_runs_nothing_unless_serve_at_root_is_given(
    served: ServedPool, tmp_path: Path
) -> None:
    # As on Azure, the base URL is no pool endpoint: an app configured with it fails here too.
    root = served.endpoint.split("/subscriptions/", 1)[0]
    refused = cli("exec", f"--endpoint={root}", f"--api-key={served.api_key}", "-c", "print('at root')")
    assert refused.returncode == 125, refused.stdout
    assert "at root" not in refused.stdout
    opted_in = start_serve("--serve-at-root", "--ready-sessions", "0", "--root-dir", str(tmp_path))
    try:
        opted_root = opted_in.endpoint.split("/subscriptions/", 1)[0]
        served_root = cli(
            "exec", f"--endpoint={opted_root}", f"--api-key={opted_in.api_key}", "-c", "print(6*7)"
        )
    finally:
        stop_serve(opted_in)
    assert served_root.returncode == 0, served_root.stderr
    assert served_root.stdout == "42\n"
    assert f"Also at:    {opted_root}" in opted_in.banner


def test_serve_management_plane_with_mcp_serves_the_fixed_pools_mcp_server(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("the banner's MCP curl example needs the curl binary")
    pool = start_serve("--management-plane", "--mcp", "--ready-sessions", "0", "--root-dir", str(tmp_path))
    try:
        found = re.search(r"MCP endpoint: (\S+)\s+MCP API key:\s+(\S+)", pool.banner)
        assert found, pool.banner
        url, key = found.groups()
        assert url == pool.endpoint + "/mcp"
        reply = subprocess.run(
            [
                "curl",
                "-sS",
                "-X",
                "POST",
                url,
                "-H",
                "Content-Type: application/json",
                "-H",
                f"x-ms-apikey: {key}",
                "-d",
                '{"jsonrpc":"2.0","id":"1","method":"initialize"}',
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stop_serve(pool)
    assert reply.returncode == 0, reply.stderr
    assert json.loads(reply.stdout)["result"]["serverInfo"]["name"] == "Microsoft Container Apps MCP Server"

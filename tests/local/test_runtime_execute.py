"""Executing code in real sandboxed kernels: output, values, images, errors, caps, ordering, timeouts."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.runtime.outcome import NO_RESULT, Outcome
from autogen_aca_sessions.local.runtime.sessions import Session, SessionManager

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


MANAGER_CONFIG = PoolConfig(
    ready_sessions=1, sandbox="bwrap", max_execution_seconds=60, cooldown_period_seconds=600
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session(manager: SessionManager) -> Session:
    return await manager.get_or_create("runtime-main")


async def run(session: Session, code: str, *, timeout: float = 30, cap: int = 100_000) -> Any:
    return await session.execute(code, timeout=timeout, max_output_chars=cap)


async def test_stdout_stderr_and_the_last_value_come_back(session: Session) -> None:
    out = await run(session, "import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n6 * 7")
    assert out.outcome is Outcome.SUCCEEDED
    assert out.stdout == "to out\n"
    assert out.stderr == "to err\n"
    assert out.result == 42
    assert (out.stdout_length, out.stderr_length) == (7, 7)
    assert not out.stdout_truncated
    assert out.error_name is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("None", None),
        ("x_unused = 1", NO_RESULT),
        ("1 + 1;", NO_RESULT),
        ("1 + 1  # a comment", 2),
        ("if True:\n    5", NO_RESULT),
        # A call whose value is None displays nothing (the 2025-10 sample: print(7*9) -> "").
        ("print('hi')", NO_RESULT),
        ("def f():\n    pass\nf()", NO_RESULT),
        ("d = {}\nd.get('missing')", NO_RESULT),
        # A bare None or a name bound to None is a value: null.
        ("nothing = None\nnothing", None),
        ("def g():\n    return 3\ng()", 3),
        ("print('a') or None", None),
        ("float('nan')", "nan"),
        ("float('inf')", "inf"),
        ("-float('inf')", "-inf"),
        ("'text'", "text"),
        ("[1, 2.5, True, None]", [1, 2.5, True, None]),
        ("{'a': (1, 2), 3: 'three'}", {"a": [1, 2], "3": "three"}),
        ("import numpy as np\nnp.int64(7)", 7),
        ("import numpy as np\nnp.float32(0.5)", 0.5),
        ("import numpy as np\nnp.bool_(True)", True),
        ("import numpy as np\n[np.float64('nan')]", ["nan"]),
        ("class Thing:\n    def __repr__(self): return 'a thing'\nThing()", "a thing"),
    ],
)
async def test_last_value_is_json_ready_and_none_differs_from_no_value(
    session: Session, code: str, expected: Any
) -> None:
    out = await run(session, code)
    assert out.outcome is Outcome.SUCCEEDED, out.stderr
    if expected is NO_RESULT:
        assert out.result is NO_RESULT
    else:
        assert out.result == expected
        assert type(out.result) is type(expected)


async def test_numpy_array_value_falls_back_to_its_text(session: Session) -> None:
    out = await run(session, "import numpy as np\nnp.arange(3)")
    assert out.result == "array([0, 1, 2])"


async def test_a_raising_cell_fails_with_a_plain_text_traceback(session: Session) -> None:
    out = await run(session, "print('before')\ndef f():\n    return 1 / 0\nf()")
    assert out.outcome is Outcome.FAILED
    assert out.error_name == "ZeroDivisionError"
    assert out.error_value == "division by zero"
    assert out.stdout == "before\n"
    assert "ZeroDivisionError" in out.stderr
    assert "return 1 / 0" in out.stderr
    assert "\x1b[" not in out.stderr
    assert out.result is None
    assert not out.state_lost


async def test_a_syntax_error_fails_cleanly(session: Session) -> None:
    out = await run(session, "def broken(:\n    pass")
    assert out.outcome is Outcome.FAILED
    assert out.error_name == "SyntaxError"


async def test_state_persists_between_calls(session: Session) -> None:
    await run(session, "counter = 10\nimport math")
    await run(session, "counter += 5")
    out = await run(session, "counter, math.floor(2.7)")
    assert out.result == [15, 2]


async def test_code_runs_in_mnt_data_which_is_the_sessions_data_dir(session: Session) -> None:
    out = await run(session, "import os\nopen('made-here.txt', 'w').write('hello')\nos.getcwd()")
    assert out.result == "/mnt/data"
    assert (session.data_dir / "made-here.txt").read_text() == "hello"
    out = await run(session, "import sys\nsys.path[0]")
    assert out.result == "/mnt/data"


async def test_a_file_the_server_put_in_data_dir_can_be_changed_by_the_code(session: Session) -> None:
    # Uploads are written by the server (root) and handed to the session's uid as they are
    # written; nothing fixes ownership before a call any more.
    from pathlib import PurePosixPath

    from autogen_aca_sessions.local.runtime import files

    async def chunks(data: bytes) -> AsyncIterator[bytes]:
        yield data

    for rel_dir, name, data in ((".", "uploaded.csv", b"a,b\n"), ("sub", "inner.txt", b"x")):
        target = await files.open_upload_dir(session.data_dir, PurePosixPath(rel_dir))
        try:
            await files.write_upload(target, name, chunks(data), max_bytes=1024)
        finally:
            await files.close_upload_dir(target)
    assert (session.data_dir / "sub").stat().st_uid == session.uid
    out = await run(
        session,
        "open('uploaded.csv', 'a').write('1,2\\n')\n"
        "open('sub/new.txt', 'w').write('y')\n"
        "open('uploaded.csv').read()",
    )
    assert out.outcome is Outcome.SUCCEEDED, out.stderr
    assert out.result == "a,b\n1,2\n"


async def test_matplotlib_figures_come_back_as_png_images(session: Session) -> None:
    out = await run(
        session,
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n"
        "fig = plt.figure()\nplt.bar([1, 2], [3, 4])\n'done'",
        timeout=60,
    )
    assert out.outcome is Outcome.SUCCEEDED, out.stderr
    # One shown explicitly, one left open at the end of the cell (the inline backend shows it).
    assert len(out.images) == 2
    assert all(image.data.startswith(b"\x89PNG\r\n\x1a\n") for image in out.images)
    assert all(image.format == "png" for image in out.images)
    assert out.result == "done"


async def test_output_is_capped_in_memory_but_counted_in_full(session: Session) -> None:
    out = await run(
        session,
        "import sys\nprint('x' * 5_000_000)\nsys.stderr.write('e' * 3000)\nfor i in range(1000): print(i)",
        cap=1000,
    )
    assert out.outcome is Outcome.SUCCEEDED
    assert out.stdout == "x" * 1000
    expected_tail = sum(len(str(i)) + 1 for i in range(1000))
    assert out.stdout_length == 5_000_001 + expected_tail
    assert out.stdout_truncated
    assert out.stderr == "e" * 1000
    assert out.stderr_length == 3000
    assert out.stderr_truncated


async def test_output_of_child_processes_is_captured_and_capped(session: Session) -> None:
    out = await run(
        session,
        "import subprocess\nsubprocess.run('yes | head -c 20000; echo oops >&2', shell=True)\n0",
        cap=500,
    )
    assert out.outcome is Outcome.SUCCEEDED
    assert out.stdout == "y\n" * 250
    assert out.stdout_length == 20000
    assert out.stderr == "oops\n"


async def test_a_huge_print_does_not_grow_the_server(session: Session) -> None:
    import psutil

    before = psutil.Process().memory_info().rss
    out = await run(session, "print('z' * 200_000_000)", cap=4096, timeout=60)
    after = psutil.Process().memory_info().rss
    assert out.outcome is Outcome.SUCCEEDED
    assert out.stdout_length == 200_000_001
    assert len(out.stdout) == 4096
    print(f"server RSS grew by {(after - before) / 2**20:.1f} MiB for a 200 MB print")
    assert after - before < 100 * 2**20


async def test_calls_on_one_session_run_one_at_a_time_in_arrival_order(session: Session) -> None:
    await run(session, "order = []")
    calls = [
        asyncio.ensure_future(run(session, f"import time\ntime.sleep(0.05)\norder.append({i})\n{i}"))
        for i in range(5)
    ]
    results = await asyncio.gather(*calls)
    assert [r.result for r in results] == [0, 1, 2, 3, 4]
    out = await run(session, "order")
    assert out.result == [0, 1, 2, 3, 4]


@pytest.mark.usefixtures("patient_interrupts")
async def test_a_timeout_interrupts_the_cell_and_keeps_the_state(session: Session) -> None:
    await run(session, "kept = 'still here'")
    out = await run(session, "import time\nprint('started', flush=True)\ntime.sleep(30)", timeout=1)
    assert out.outcome is Outcome.TIMED_OUT_INTERRUPTED
    assert not out.state_lost
    assert out.stdout == "started\n"
    assert out.message is not None
    assert "interrupted" in out.message
    assert out.message in out.stderr
    began = time.monotonic()
    after = await run(session, "kept")
    print(f"first call after an honoured interrupt took {1000 * (time.monotonic() - began):.0f} ms")
    assert after.result == "still here"
    assert not after.state_lost


@pytest.mark.usefixtures("patient_interrupts")
async def test_a_zero_timeout_still_returns_a_timeout_outcome(session: Session) -> None:
    out = await run(session, "import time\ntime.sleep(5)", timeout=0)
    assert out.outcome is Outcome.TIMED_OUT_INTERRUPTED


@pytest.mark.usefixtures("patient_interrupts")
async def test_a_timeout_longer_than_the_pool_maximum_is_capped(
    manager: SessionManager, session: Session
) -> None:
    previous = manager.config
    manager.config = dataclasses.replace(previous, max_execution_seconds=1)
    try:
        out = await run(session, "import time\ntime.sleep(10)", timeout=120)
    finally:
        manager.config = previous
    assert out.outcome is Outcome.TIMED_OUT_INTERRUPTED


async def test_sessions_have_separate_interpreters(manager: SessionManager) -> None:
    a = await manager.get_or_create("separate-a")
    b = await manager.get_or_create("separate-b")
    await run(a, "secret = 'only in a'")
    out = await run(b, "'secret' in globals()")
    assert out.result is False
    assert a.data_dir != b.data_dir


async def test_reading_stdin_fails_instead_of_hanging(session: Session) -> None:
    out = await run(session, "input('name? ')", timeout=20)
    assert out.outcome is Outcome.FAILED
    assert out.error_name == "StdinNotImplementedError"


async def test_a_cancelled_call_stops_its_cell(session: Session) -> None:
    await run(session, "import time\nmarks = []")
    call = asyncio.ensure_future(
        run(session, "for _ in range(300):\n    marks.append(1)\n    time.sleep(0.1)", timeout=60)
    )
    await asyncio.sleep(1.0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    out = await run(session, "n = len(marks)\ntime.sleep(0.5)\n[n, len(marks)]")
    assert out.outcome is Outcome.SUCCEEDED, (out.stdout, out.stderr)
    first, second = out.result
    assert first == second  # the cancelled loop no longer runs
    assert first < 300


async def test_a_storm_of_flushed_prints_comes_back_exactly(session: Session) -> None:
    # iopub loses and repeats stream messages under this load; the reply's record does not.
    out = await run(session, "for i in range(15000):\n    print(i, flush=True)", timeout=120, cap=1_000_000)
    expected = "".join(f"{i}\n" for i in range(15000))
    assert out.outcome is Outcome.SUCCEEDED
    assert out.stdout_length == len(expected)
    assert out.stdout == expected

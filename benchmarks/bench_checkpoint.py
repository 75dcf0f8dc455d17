"""Checkpoint and restore of a dynamic session holding a large DataFrame.

Issue 19's target: checkpoint + restore of a session holding a 50 MB DataFrame in under 3 s.
The baseline, measured in the same run, is the floor of the same bytes' trip without any
checkpoint logic: the session pickles the frame to a file, the client downloads it and uploads
it to a second session, which unpickles it.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

from harness import Config, Row, dist_row, log, open_pool, pool_available, pool_credential, ratio, summarise

NAME = "checkpoint"
DESCRIPTION = "checkpoint + restore of a session holding a ~50 MB DataFrame vs the bare pickle trip"
FRAME = (
    "import numpy as np, pandas as pd\n"
    "frame = pd.DataFrame(np.random.default_rng(7).random((655_360, 10)))\n"  # 50 MiB of float64
    "int(frame.memory_usage(deep=True).sum())"
)
KEY = b"benchmark"


async def run(cfg: Config) -> list[Row]:
    from autogen_aca_sessions.client import SessionsClient
    from autogen_aca_sessions.client.checkpoint import checkpoint_session, restore_session

    why = pool_available()
    if why is not None:
        return [Row(benchmark=NAME, figure="all figures", note=f"skipped: {why}")]
    count = cfg.n(5, 1)
    both: list[float] = []
    checkpoints: list[float] = []
    bare: list[float] = []
    size = 0
    with tempfile.TemporaryDirectory() as folder:
        async with (
            open_pool(ready_sessions=2, max_concurrent_sessions=8) as pool,
            SessionsClient(pool.endpoint, pool_credential(pool)) as client,
        ):
            for i in range(count):
                source, target = str(uuid.uuid4()), str(uuid.uuid4())
                made = await client.execute(source, FRAME, timeout_seconds=120)
                assert made.succeeded, made.stderr
                size = int(made.result)
                path = Path(folder) / f"{i}.ckpt"
                start = time.perf_counter()
                await checkpoint_session(client, source, path, key=KEY)
                checkpoints.append(time.perf_counter() - start)
                restored = await restore_session(client, target, path, key=KEY)
                both.append(time.perf_counter() - start)
                assert "frame" in restored.variables

                start = time.perf_counter()
                dumped = await client.execute(source, "frame.to_pickle('bare.pkl')", timeout_seconds=120)
                assert dumped.succeeded, dumped.stderr
                data = await client.download_file(source, "bare.pkl")
                await client.upload_file(target, "bare.pkl", data)
                loaded = await client.execute(target, "import pandas as pd\nx = pd.read_pickle('bare.pkl')")
                assert loaded.succeeded, loaded.stderr
                bare.append(time.perf_counter() - start)
                for identifier in (source, target):
                    await client.delete_session(identifier)
                log(cfg, f"checkpoint sample {i + 1}/{count}: {both[-1]:.2f} s, bare trip {bare[-1]:.2f} s")
    bare_p50, _ = summarise(bare)
    p50, _ = summarise(both)
    return [
        dist_row(NAME, "baseline: the frame's bare pickle trip (dump, download, upload, load)", bare),
        dist_row(NAME, f"checkpoint alone ({size / 2**20:.0f} MiB frame)", checkpoints),
        dist_row(
            NAME,
            f"checkpoint + restore ({size / 2**20:.0f} MiB frame)",
            both,
            baseline="bare pickle trip",
            baseline_value=bare_p50,
            ratio=ratio(p50, bare_p50),
            target="< 3 s",
            met=p50 < 3000,
        ),
    ]

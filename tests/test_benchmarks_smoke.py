"""The benchmark harness runs end to end and prints its figures (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.early
REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "benchmarks" / "run.py"


@pytest.mark.timeout(240)
def test_quick_run_of_warm_and_upstream_prints_every_figure_with_baseline_and_target(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--quick",
            "--only",
            "warm,upstream",
            "--samples",
            "5",
            "--upstream-blocks",
            "4",
            "--quiet",
            "--json",
            str(out_json),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stdout = proc.stdout
    # The table and its columns.
    assert "| benchmark | figure | p50 / value | p99 |" in stdout
    assert "baseline: raw jupyter_client execute + wait idle" in stdout
    assert "executor.execute_code_blocks via the local pool" in stdout
    assert "p50 <= 1.1x raw floor" in stdout
    assert "upstream executor: 4 blocks" in stdout
    assert ">= 2x faster" in stdout
    assert "Targets met:" in stdout

    payload = json.loads(out_json.read_text())
    assert payload["benchmarks"] == ["warm", "upstream"]
    rows = {(r["benchmark"], r["figure"]): r for r in payload["rows"]}
    assert not any(r["figure"] == "FAILED" for r in payload["rows"])
    warm = rows[("warm", "executor.execute_code_blocks via the local pool")]
    assert warm["samples"] == 5
    assert warm["p50"] > 0
    assert warm["p99"] >= warm["p50"]
    assert warm["baseline_value"] > 0
    assert warm["ratio"] > 0
    assert warm["met"] in (True, False)
    ours = next(r for (b, f), r in rows.items() if b == "upstream" and f.startswith("our executor: 4 blocks"))
    assert ours["value"] > 0
    assert ours["ratio"] > 0
    assert ours["met"] in (True, False)


@pytest.mark.timeout(400)
def test_quick_run_of_wan_and_density_prints_round_trips_and_the_held_sessions(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--quick",
            "--only",
            "wan,density",
            "--density-sessions",
            "2",
            "--quiet",
            "--json",
            str(out_json),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=380,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out_json.read_text())["rows"]
    assert not any(r["figure"] == "FAILED" for r in rows)
    figures = {(r["benchmark"], r["figure"]): r for r in rows}
    warm_trips = figures[("wan", "our executor: round trips the link adds to a warm block")]
    assert warm_trips["unit"] == "RTT"
    assert warm_trips["note"].startswith("1 requests")
    net = figures[
        ("wan", "our executor: warm block round trips net of the link's excess (warm - calibration + 1)")
    ]
    calibration = figures[
        ("wan", "calibration: round trips the link adds to a bare GET /metadata (connection kept)")
    ]
    assert net["value"] == pytest.approx(warm_trips["value"] - calibration["value"] + 1, abs=0.01)
    assert net["met"] == (net["value"] <= 1.1)
    assert ("wan", "round trips per warm block, autogen-ext / ours") in figures
    held = next(
        r for (b, f), r in figures.items() if b == "density" and f.startswith("sessions held at once")
    )
    assert held["value"] == 2
    assert any(b == "density" and f.startswith("USS per session") for b, f in figures)
    assert figures[("density", "5xx answers during the whole run")]["value"] == 0


def test_unknown_benchmark_name_is_refused_with_the_known_names() -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN), "--only", "nonsense"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "unknown benchmark(s): nonsense" in proc.stderr
    assert "new_session" in proc.stderr


@pytest.mark.timeout(240)
def test_quick_run_of_startup_prints_launch_to_first_result_against_the_data_stack_import(
    tmp_path: Path,
) -> None:
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only", "startup", "--quiet", "--json", str(out_json)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["figure"]: r for r in json.loads(out_json.read_text())["rows"]}
    assert not any(figure == "FAILED" for figure in rows)
    for figure in (
        "LocalSessionPool: launch -> first block result",
        "aca-sessions serve: launch -> first block result",
    ):
        row = rows[figure]
        assert row["samples"] == 2
        assert row["p50"] > 0
        assert row["baseline_value"] > 0
        assert row["target"] == "p50 <= 1000 ms"
        assert row["met"] in (True, False)
    # The intermediate points are printed too.
    assert rows["LocalSessionPool: launch -> async with returns"]["p50"] > 0
    assert rows["aca-sessions serve: launch -> banner"]["p50"] > 0


@pytest.mark.timeout(240)
def test_quick_run_of_sandboxes_http_prints_both_clients_the_shell_baseline_and_the_held_sandboxes(
    tmp_path: Path,
) -> None:
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--quick",
            "--only",
            "sandboxes_http",
            "--samples",
            "2",
            "--quiet",
            "--json",
            str(out_json),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["figure"]: r for r in json.loads(out_json.read_text())["rows"]}
    assert not any(figure == "FAILED" for figure in rows)
    sdk_create = next(
        r for f, r in rows.items() if f.startswith("create (python-3.12) -> first command result, official")
    )
    # The SDK's create is one PUT: its poller never looked again (a GET would be listed).
    assert sdk_create["note"] == "SDK requests: PUT sandboxes"
    assert sdk_create["samples"] == 2
    ours = rows["create (python-3.12) -> first command result, SandboxesClient"]
    assert ours["p50"] > 0
    assert ours["met"] in (True, False)
    raw = rows["executeShellCommand 'true' (aiohttp, same session)"]
    assert raw["baseline_value"] > 0
    assert raw["ratio"] > 0
    assert raw["target"] == "<= 1.5x the Shell pool"
    resumed = next(r for f, r in rows.items() if f.startswith("Disk-mode resume -> file read through HTTP"))
    assert resumed["note"] == "0 lost"


def test_quick_run_of_egress_prints_the_proxys_added_latency_against_the_hosts_own_get(
    tmp_path: Path,
) -> None:
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only", "egress", "--quiet", "--json", str(out_json)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (row,) = json.loads(out_json.read_text())["rows"]
    assert row["figure"].startswith("GET through forwarder + proxy"), row
    assert row["samples"] == 40
    assert row["baseline_value"] > 0
    assert row["target"] == "at most +1 ms"
    assert row["met"] in (True, False)

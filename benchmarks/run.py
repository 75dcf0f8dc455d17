"""Run the benchmark suite and print the figures, their baselines, ratios and targets.

    python benchmarks/run.py                      # everything, default sizes (~5-10 min on 2 cores)
    python benchmarks/run.py --quick              # smallest sizes (a minute or two)
    python benchmarks/run.py --only warm,upstream # some benchmarks
    python benchmarks/run.py --json               # also write benchmarks/results/<time>.json

    python benchmarks/run.py --only wan --rtt-ms 20
    python benchmarks/run.py --only density --density-sessions 600

Benchmarks: new_session, warm, upstream, wan, concurrency, memory, recovery, mcp,
provision, density, checkpoint, startup, sandboxes_http, sandbox_executor,
egress (see README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import Config, Row, log, machine_description  # noqa: E402

BENCHMARKS = [
    "new_session",
    "warm",
    "upstream",
    "wan",
    "concurrency",
    "memory",
    "recovery",
    "mcp",
    "provision",
    "density",
    "checkpoint",
    "startup",
    "sandboxes_http",
    "sandbox_executor",
    "egress",
]
"""Run order. Each name is the module ``bench_<name>.py``."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="autogen-aca-sessions benchmark suite")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument("--quick", action="store_true", help="smallest sizes (smoke run)")
    parser.add_argument("--samples", type=int, default=None, help="override every sample count")
    parser.add_argument("--agents", default=None, help="concurrency levels N, e.g. 1,10,50,100")
    parser.add_argument("--blocks", type=int, default=None, help="M: blocks per agent (concurrency)")
    parser.add_argument("--upstream-blocks", type=int, default=None, help="blocks of the upstream workload")
    parser.add_argument(
        "--rtt-ms", type=float, default=None, help="round trip of the wan benchmark's link (20)"
    )
    parser.add_argument("--wan-blocks", type=int, default=None, help="blocks per executor and round (wan)")
    parser.add_argument("--density-sessions", type=int, default=None, help="sessions held at once (density)")
    parser.add_argument("--profile", action="store_true", help="profile the warm hot path (pyinstrument)")
    parser.add_argument(
        "--json",
        nargs="?",
        const="auto",
        default=None,
        help="write the rows as JSON (default path: benchmarks/results/<timestamp>.json)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> Config:
    cfg = Config(quick=args.quick, samples=args.samples, verbose=not args.quiet, profile=args.profile)
    if args.quick:
        cfg.agents = [1, 4]
        cfg.blocks_per_agent = 2
        cfg.upstream_blocks = 20
    if args.agents:
        cfg.agents = [int(x) for x in args.agents.split(",") if x.strip()]
    if args.blocks is not None:
        cfg.blocks_per_agent = args.blocks
    if args.upstream_blocks is not None:
        cfg.upstream_blocks = args.upstream_blocks
    if args.quick:
        cfg.density_sessions = 8
    if args.rtt_ms is not None:
        cfg.rtt_ms = args.rtt_ms
    if args.wan_blocks is not None:
        cfg.wan_blocks = args.wan_blocks
    if args.density_sessions is not None:
        cfg.density_sessions = args.density_sessions
    return cfg


def selected(args: argparse.Namespace) -> list[str]:
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    unknown = [x for x in [*only, *skip] if x not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    names = only or BENCHMARKS
    return [n for n in BENCHMARKS if n in names and n not in skip]


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def render_table(rows: list[Row]) -> str:
    """A Markdown table: figure, p50, p99 (or value), baseline, ratio, target, met."""
    header = "| benchmark | figure | p50 / value | p99 | n | baseline (same run) | ratio | target | met? |"
    lines = [header, "|" + "---|" * 9]
    for r in rows:
        main = _fmt(r.p50, r.unit) if r.p50 is not None else _fmt(r.value, r.unit)
        p99 = _fmt(r.p99, r.unit) if r.p99 is not None else "-"
        base = "-"
        if r.baseline:
            base = r.baseline + (
                f": {_fmt(r.baseline_value, r.unit)}" if r.baseline_value is not None else ""
            )
        rat = "-" if r.ratio is None else f"{r.ratio:.2f}x" + (f" ({r.ratio_note})" if r.ratio_note else "")
        met = {True: "YES", False: "NO", None: "-"}[r.met]
        figure = r.figure + (f" [{r.note}]" if r.note else "")
        lines.append(
            f"| {r.benchmark} | {figure} | {main} | {p99} | {r.samples or '-'} | {base} | {rat} | "
            f"{r.target or '-'} | {met} |"
        )
    return "\n".join(lines)


async def run_all(names: list[str], cfg: Config) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        module: Any = importlib.import_module(f"bench_{name}")
        log(cfg, f"== {name}: {module.DESCRIPTION}")
        start = time.perf_counter()
        try:
            rows.extend(await module.run(cfg))
        except Exception as exc:
            # One broken benchmark must not hide the figures of the others.
            traceback.print_exc()
            rows.append(Row(benchmark=name, figure="FAILED", note=f"{type(exc).__name__}: {exc}"[:200]))
        log(cfg, f"== {name} done in {time.perf_counter() - start:.1f} s")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = build_config(args)
    names = selected(args)
    machine = machine_description()
    log(cfg, f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB")
    started = time.time()
    load_before = os.getloadavg()
    rows = asyncio.run(run_all(names, cfg))
    load_after = os.getloadavg()
    elapsed = time.time() - started
    print()
    print(
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"Python {machine['python']}; run took {elapsed:.0f} s{' (--quick)' if cfg.quick else ''}"
    )
    print(
        f"Load average (1/5/15 min) before: {'/'.join(f'{x:.1f}' for x in load_before)}, "
        f"after: {'/'.join(f'{x:.1f}' for x in load_after)} (the machine is shared: above "
        f"{machine['cores']} every figure is inflated)"
    )
    print()
    print(render_table(rows))
    targets = [r for r in rows if r.met is not None]
    met = sum(1 for r in targets if r.met)
    print()
    print(f"Targets met: {met} of {len(targets)}")
    if args.json:
        path = (
            HERE / "results" / time.strftime("%Y%m%dT%H%M%S.json", time.gmtime(started))
            if args.json == "auto"
            else Path(args.json)
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "started": started,
            "elapsed_s": elapsed,
            "quick": cfg.quick,
            "benchmarks": names,
            "machine": machine,
            "load_before": load_before,
            "load_after": load_after,
            "rows": [r.to_json() for r in rows],
        }
        path.write_text(json.dumps(payload, indent=2))
        print(f"JSON written to {path}")
    failed = [r for r in rows if r.figure == "FAILED"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

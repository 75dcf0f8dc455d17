"""Quickstart: an AutoGen team analyses a CSV in a dynamic session and brings back a chart.

Runs anywhere with no Azure subscription and no API key::

    pip install -e '.[local,examples]'
    python examples/quickstart.py

What happens:

1. A local session pool starts (``LocalSessionPool``: the Azure Container Apps dynamic
   sessions REST API served on this machine, one sandboxed Jupyter kernel per session).
2. The example writes a small sales dataset (``sales.csv``) and uploads it to the session's
   ``/mnt/data``.
3. A two-agent team takes turns: an ``AssistantAgent`` (the analyst) writes code, a
   ``CodeExecutorAgent`` runs it in the session with ``ACADynamicSessionsCodeExecutor``.
   The analyst loads the data with pandas, computes revenue by region, month and product,
   and draws a matplotlib chart into ``/mnt/data``.
4. The chart is downloaded into the output directory (``./quickstart_output`` by default).

With ``OPENAI_API_KEY`` (or ``AZURE_OPENAI_ENDPOINT`` + ``AZURE_OPENAI_DEPLOYMENT``) a real
model writes the code; without, a scripted model replays the turns below, whose code really
runs. With ``ACA_POOL_MANAGEMENT_ENDPOINT`` the code runs in that Azure pool instead. The
example exits non-zero when any step fails.
"""

from __future__ import annotations

import argparse
import asyncio
import warnings
from pathlib import Path

from _requirements import AUTOGEN, AUTOGEN_INSTALL, POOL_ENDPOINT_ENV, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AUTOGEN, install=AUTOGEN_INSTALL, local_pool_unless=POOL_ENDPOINT_ENV)

from _common import (
    EXECUTOR_SYSTEM_HINT,
    FINISH_HINT,
    extract_code_result_failures,
    fail,
    model_client,
    model_description,
    run_main,
    session_pool,
    uses_scripted_model,
)
from _sales import write_sales_csv
from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_agentchat.ui import Console
from autogen_core import CancellationToken

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor

# The code runs in a sandboxed remote session: that is the point of this package, so the
# "no approval function" warning of CodeExecutorAgent is noise here.
warnings.filterwarnings("ignore", message="No approval function set for CodeExecutorAgent")

CSV_NAME = "sales.csv"
CHART_NAME = "revenue_by_region.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

TASK = (
    f"A CSV file of sales orders is in /mnt/data/{CSV_NAME} (columns: date, region, product, "
    "units, unit_price). Analyse it with pandas: total revenue (units * unit_price) per region, "
    "per month and per product, and name the top region and the top product. Then draw a bar chart "
    "of monthly revenue per region with matplotlib and save it as "
    f"/mnt/data/{CHART_NAME}."
)

# What a capable model answers to TASK, turn by turn. The code in these turns runs for real in
# the session; the analyst reads the results from the executor's replies.
SCRIPTED_ANALYST_TURNS = [
    """I'll start by loading the data and checking its structure.

```python
import pandas as pd

df = pd.read_csv("sales.csv", parse_dates=["date"])
print(df.shape)
print(df.dtypes.to_string())
print(df.head().to_string(index=False))
```""",
    """One row per order, no missing columns. Next: revenue per order, then totals by region, \
by month and by product.

```python
df["revenue"] = df["units"] * df["unit_price"]
df["month"] = df["date"].dt.to_period("M").astype(str)

by_region = df.groupby("region")["revenue"].sum().sort_values(ascending=False)
monthly = df.pivot_table(index="month", columns="region", values="revenue", aggfunc="sum").round(2)
by_product = (
    df.groupby("product")
    .agg(orders=("units", "size"), units=("units", "sum"), revenue=("revenue", "sum"))
    .sort_values("revenue", ascending=False)
)

print("Revenue by region:")
print(by_region.round(2).to_string())
print("\\nMonthly revenue by region:")
print(monthly.to_string())
print("\\nProducts:")
print(by_product.round(2).to_string())
totals = monthly.sum(axis=1)
change = (totals.iloc[-1] / totals.iloc[-2] - 1) * 100
print(
    f"\\nTop region: {by_region.index[0]} ({by_region.iloc[0]:,.2f}); "
    f"top product: {by_product.index[0]} ({by_product['revenue'].iloc[0]:,.2f}); "
    f"last month vs the one before: {change:+.1f}%"
)
```""",
    """Now the chart: monthly revenue per region as grouped bars, saved next to the data.

```python
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(9, 5))
monthly.plot(kind="bar", ax=ax, width=0.8, rot=0)
ax.set_title("Monthly revenue by region")
ax.set_xlabel("Month")
ax.set_ylabel("Revenue (USD)")
ax.legend(title="Region")
fig.tight_layout()
fig.savefig("revenue_by_region.png", dpi=120)
plt.close(fig)
print("saved revenue_by_region.png,", os.path.getsize("revenue_by_region.png"), "bytes")
```""",
    """Done. The tables above give revenue by region, by month and by product; the last line of \
the analysis names the top region and the top product and the change in the latest month. The \
chart of monthly revenue per region is saved as /mnt/data/revenue_by_region.png.

TERMINATE""",
]


def _newest_png(directory: Path) -> Path | None:
    images = sorted(directory.glob("*.png"), key=lambda path: path.stat().st_mtime)
    return images[-1] if images else None


async def download_chart(
    executor: ACADynamicSessionsCodeExecutor, output_dir: Path, cancel: CancellationToken
) -> Path:
    """Bring the chart home: the file the task asked for, else any PNG the model saved instead."""
    try:
        return Path((await executor.download_files([CHART_NAME], cancel))[0])
    except FileNotFoundError:
        if uses_scripted_model():
            fail(f"the scripted analyst did not save /mnt/data/{CHART_NAME}")
    # A real model may pick another file name, or show the figure instead of saving it (the
    # executor then saves displayed images into work_dir itself).
    saved = [name for name in await executor.get_file_list(cancel) if name.lower().endswith(".png")]
    if saved:
        return Path((await executor.download_files([saved[0]], cancel))[0])
    shown = await asyncio.to_thread(_newest_png, output_dir)
    if shown is not None:
        return shown
    fail("the team produced no chart: no PNG in /mnt/data and no figure displayed")


async def main(output_dir: Path) -> None:
    # Local file work before the event loop has anything else to do: run it in a thread anyway,
    # as any blocking call in async code should be.
    await asyncio.to_thread(output_dir.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread((output_dir / CHART_NAME).unlink, missing_ok=True)
    rows = await asyncio.to_thread(write_sales_csv, output_dir / CSV_NAME)
    print(f"Model: {model_description()}", flush=True)

    async with session_pool(ready_sessions=1) as target:
        print(f"Pool: {target.description}", flush=True)
        # work_dir is where upload_files reads from and download_files writes to.
        async with ACADynamicSessionsCodeExecutor(
            pool_management_endpoint=target.endpoint,
            credential=target.credential,
            timeout=120,
            work_dir=output_dir,
        ) as executor:
            cancel = CancellationToken()
            await executor.upload_files([CSV_NAME], cancel)
            print(f"Uploaded {CSV_NAME} ({rows} orders) to /mnt/data\n", flush=True)

            analyst = AssistantAgent(
                "analyst",
                model_client=model_client(SCRIPTED_ANALYST_TURNS),
                system_message="You are a careful data analyst. " + EXECUTOR_SYSTEM_HINT + FINISH_HINT,
            )
            runner = CodeExecutorAgent("executor", code_executor=executor)
            team = RoundRobinGroupChat(
                [analyst, runner],
                termination_condition=TextMentionTermination("TERMINATE", sources=["analyst"])
                | MaxMessageTermination(20),
            )
            try:
                result = await Console(team.run_stream(task=TASK))
            except Exception as exc:  # a model or transport error ends the run: say which
                fail(f"the team run raised {type(exc).__name__}: {exc}")

            failures = extract_code_result_failures(result.messages, "executor")
            if failures and uses_scripted_model():
                # The scripted turns are known-good code: any failure is a real fault.
                fail(f"{len(failures)} code execution(s) failed; first:\n{failures[0]}")

            chart = await download_chart(executor, output_dir, cancel)
            data = await asyncio.to_thread(chart.read_bytes)
            if not data.startswith(PNG_SIGNATURE):
                fail(f"{chart} is not a PNG image ({len(data)} bytes)")

    print(f"\nStop reason: {result.stop_reason}")
    print(f"Chart saved to {chart.resolve()} ({len(data):,} bytes)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("quickstart_output"),
        help="where the dataset is written and the chart is downloaded (default: ./quickstart_output)",
    )
    args = parser.parse_args()
    run_main(main(args.output_dir))

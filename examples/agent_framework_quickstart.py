"""Quickstart for Microsoft Agent Framework: an agent analyses a CSV in a dynamic session, draws a chart.

The same task as ``quickstart.py`` (AutoGen), with an Agent Framework ``Agent``. Runs anywhere with
no Azure subscription and no API key::

    pip install -e '.[local,agent-framework]'
    python examples/agent_framework_quickstart.py

What happens:

1. A local session pool starts (``LocalSessionPool``: the Azure Container Apps dynamic sessions
   REST API served on this machine, one sandboxed Jupyter kernel per session).
2. The example writes a small sales dataset (``sales.csv``) and uploads it into the conversation's
   session.
3. An Agent Framework ``Agent`` with ``DynamicSessionsCodeActProvider`` gets the ``execute_code``,
   ``list_files`` and ``download_file`` tools and instructions naming the session's packages and
   files. It loads the data with pandas, computes revenue by region, month and product, draws a
   matplotlib chart (which comes back to the model as an image) and downloads it.
4. The chart lands in the output directory (``./agent_framework_quickstart_output`` by default).

With ``OPENAI_API_KEY`` (or ``AZURE_OPENAI_ENDPOINT`` + ``AZURE_OPENAI_DEPLOYMENT``) and
``pip install agent-framework-openai`` a real model writes the code; without, a scripted model
replays the turns below, whose code really runs. With ``ACA_POOL_MANAGEMENT_ENDPOINT`` the code runs
in that Azure pool instead: only the endpoint and the credential change. Exits non-zero when any
step fails.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from _requirements import AGENT_FRAMEWORK, AGENT_FRAMEWORK_INSTALL, POOL_ENDPOINT_ENV, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AGENT_FRAMEWORK, install=AGENT_FRAMEWORK_INSTALL, local_pool_unless=POOL_ENDPOINT_ENV)

from _agent_framework_common import CODE_HINT, chat_client, print_run, tool_failures
from _common import fail, model_description, run_main, session_pool, uses_scripted_model
from _sales import write_sales_csv
from agent_framework import Agent

from autogen_aca_sessions.agent_framework import DynamicSessionsCodeActProvider, DynamicSessionsConfig
from autogen_aca_sessions.agent_framework.testing import ToolCall

CSV_NAME = "sales.csv"
CHART_NAME = "revenue_by_region.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

TASK = (
    f"A CSV file of sales orders is in /mnt/data/{CSV_NAME} (columns: date, region, product, units, "
    "unit_price). Analyse it with pandas: total revenue (units * unit_price) per region, per month "
    "and per product, and name the top region and the top product. Then draw a bar chart of monthly "
    f"revenue per region with matplotlib, save it as /mnt/data/{CHART_NAME}, show it, and download it."
)

LOAD = """import pandas as pd

df = pd.read_csv("sales.csv", parse_dates=["date"])
print(df.shape)
print(df.dtypes.to_string())
print(df.head().to_string(index=False))"""

ANALYSE = """df["revenue"] = df["units"] * df["unit_price"]
df["month"] = df["date"].dt.to_period("M").astype(str)

by_region = df.groupby("region")["revenue"].sum().sort_values(ascending=False)
monthly = df.pivot_table(index="month", columns="region", values="revenue", aggfunc="sum").round(2)
by_product = df.groupby("product")["revenue"].sum().sort_values(ascending=False)

print("Revenue by region:")
print(by_region.round(2).to_string())
print("\\nMonthly revenue by region:")
print(monthly.to_string())
print("\\nRevenue by product:")
print(by_product.round(2).to_string())
print(
    f"\\nTop region: {by_region.index[0]} ({by_region.iloc[0]:,.2f}); "
    f"top product: {by_product.index[0]} ({by_product.iloc[0]:,.2f})"
)"""

CHART = """import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(9, 5))
monthly.plot(kind="bar", ax=ax, width=0.8, rot=0)
ax.set_title("Monthly revenue by region")
ax.set_xlabel("Month")
ax.set_ylabel("Revenue (USD)")
ax.legend(title="Region")
fig.tight_layout()
fig.savefig("revenue_by_region.png", dpi=120)
plt.show()"""

# What a capable model does with TASK, call by call. The code really runs in the session.
SCRIPTED_TURNS = [
    ToolCall("execute_code", {"code": LOAD}),
    ToolCall("execute_code", {"code": ANALYSE}),
    ToolCall("execute_code", {"code": CHART}),
    ToolCall("download_file", {"name": CHART_NAME}),
    "Done. Revenue by region, month and product is above, with the top region and product on its "
    f"last line; the chart of monthly revenue per region is saved as {CHART_NAME} and downloaded.",
]


async def main(output_dir: Path) -> None:
    await asyncio.to_thread(output_dir.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread((output_dir / CHART_NAME).unlink, missing_ok=True)
    rows = await asyncio.to_thread(write_sales_csv, output_dir / CSV_NAME)
    print(f"Model: {model_description()}", flush=True)

    async with session_pool(ready_sessions=1) as target:
        print(f"Pool: {target.description}", flush=True)
        config = DynamicSessionsConfig(
            pool_management_endpoint=target.endpoint,
            timeout_seconds=120,
            download_dir=str(output_dir),
        )
        # Leaving the block deletes the session the conversation used.
        async with DynamicSessionsCodeActProvider(config, credential=target.credential) as codeact:
            agent = Agent(
                client=chat_client(SCRIPTED_TURNS),
                name="analyst",
                instructions="You are a careful data analyst. " + CODE_HINT,
                context_providers=[codeact],
            )
            conversation = agent.create_session()
            csv_bytes = await asyncio.to_thread((output_dir / CSV_NAME).read_bytes)
            await codeact.sessions.upload(conversation, CSV_NAME, csv_bytes)
            print(f"Uploaded {CSV_NAME} ({rows} orders) to /mnt/data\n", flush=True)

            try:
                response = await agent.run(TASK, session=conversation)
            except Exception as exc:  # a model or transport error ends the run: say which
                fail(f"the agent run raised {type(exc).__name__}: {exc}")
            print_run("analyst", response)

            failures = tool_failures(response)
            if failures and uses_scripted_model():
                fail(f"{len(failures)} tool call(s) failed; first: {failures[0]}")
            chart = output_dir / CHART_NAME
            if not await asyncio.to_thread(chart.exists):
                # A real model may have skipped the download: fetch the chart ourselves.
                try:
                    data = await codeact.sessions.download(conversation, CHART_NAME)
                except Exception as exc:
                    fail(f"no chart: {CHART_NAME} was not saved in the session ({exc})")
                await asyncio.to_thread(chart.write_bytes, data)

    data = await asyncio.to_thread(chart.read_bytes)
    if not data.startswith(PNG_SIGNATURE):
        fail(f"{chart} is not a PNG image ({len(data)} bytes)")
    print(f"\nChart saved to {chart.resolve()} ({len(data):,} bytes)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("agent_framework_quickstart_output"),
        help="where the dataset is written and the chart is downloaded",
    )
    args = parser.parse_args()
    run_main(main(args.output_dir))

"""Give model-written code your own helper functions: ``from functions import ...`` in the session.

``ACADynamicSessionsCodeExecutor(functions=[...])`` writes the functions into a module named
``functions`` inside the session before the first code block runs (and again if the session is
ever replaced). The model is told their signatures with ``format_functions_for_prompt()`` and
imports them like any module. Three kinds are accepted, as in autogen-ext:

* a function decorated with ``@with_requirements`` (declares packages and global imports; the
  executor checks the packages are installed in the pool);
* a plain function;
* ``FunctionWithRequirements.from_str(...)``, a function given as source text.

::

    python examples/injected_functions.py
"""

# No `from __future__ import annotations` here: the stubs shown to the model are built from the
# functions' signatures, and real annotations read better there than quoted strings.
import warnings
from collections.abc import Callable
from typing import Any

from _requirements import AUTOGEN, AUTOGEN_INSTALL, POOL_ENDPOINT_ENV, require

# Before anything an extra provides: a missing package is one line saying what to install.
require(*AUTOGEN, install=AUTOGEN_INSTALL, local_pool_unless=POOL_ENDPOINT_ENV)

import numpy
import pandas
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
from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_agentchat.ui import Console
from autogen_core import CancellationToken
from autogen_core.code_executor import (
    CodeBlock,
    FunctionWithRequirements,
    FunctionWithRequirementsStr,
    with_requirements,
)

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor

warnings.filterwarnings("ignore", message="No approval function set for CodeExecutorAgent")


@with_requirements(python_packages=["pandas", "numpy"], global_imports=["numpy", "pandas"])
def make_orders(n: int = 200, seed: int = 1) -> pandas.DataFrame:
    """A reproducible table of n orders: order id, category, net amount (EUR) and VAT rate."""
    rng = numpy.random.default_rng(seed)
    categories = numpy.array(["books", "food", "electronics", "toys"])
    rates = {"books": 0.07, "food": 0.07, "electronics": 0.19, "toys": 0.19}
    category = rng.choice(categories, size=n)
    return pandas.DataFrame(
        {
            "order": numpy.arange(1, n + 1),
            "category": category,
            "net": rng.gamma(2.0, 30.0, size=n).round(2),
            "vat_rate": [rates[c] for c in category],
        }
    )


def gross(net: float, vat_rate: float) -> float:
    """The gross amount for a net amount at a VAT rate, rounded to cents."""
    return round(net * (1 + vat_rate), 2)


format_money = FunctionWithRequirements.from_str(
    '''
def format_money(value: float, currency: str = "EUR") -> str:
    """An amount with thousands separators and its currency code."""
    return f"{value:,.2f} {currency}"
'''
)

HELPERS: list[FunctionWithRequirements[Any, Any] | Callable[..., Any] | FunctionWithRequirementsStr] = [
    make_orders,
    gross,
    format_money,
]
"""What the session gets as the ``functions`` module."""

TASK = (
    "Generate 500 orders with seed 11 using the helper functions, compute the gross amount of every "
    "order, and report net and gross revenue per category, formatted as money, largest first."
)

SCRIPTED_ANALYST_TURNS = [
    """The helpers do most of the work: make_orders builds the table, gross adds VAT, format_money \
formats the totals.

```python
from functions import format_money, gross, make_orders

orders = make_orders(500, seed=11)
orders["gross"] = [gross(n, r) for n, r in zip(orders["net"], orders["vat_rate"])]
totals = orders.groupby("category")[["net", "gross"]].sum().sort_values("gross", ascending=False)
for category, row in totals.iterrows():
    print(f"{category:<12} net {format_money(row['net']):>14}   gross {format_money(row['gross']):>14}")
net_total, gross_total = format_money(totals["net"].sum()), format_money(totals["gross"].sum())
print(f"{'all':<12} net {net_total:>14}   gross {gross_total:>14}")
```""",
    """Net and gross revenue per category are listed above, largest first, with the overall totals \
on the last line.

TERMINATE""",
]


async def main() -> None:
    print(f"Model: {model_description()}", flush=True)
    async with session_pool(ready_sessions=1) as target:
        print(f"Pool: {target.description}\n", flush=True)
        async with ACADynamicSessionsCodeExecutor(
            pool_management_endpoint=target.endpoint,
            credential=target.credential,
            timeout=60,
            functions=HELPERS,
        ) as executor:
            functions_prompt = executor.format_functions_for_prompt()
            print("The model is told:\n" + functions_prompt + "\n", flush=True)
            analyst = AssistantAgent(
                "analyst",
                model_client=model_client(SCRIPTED_ANALYST_TURNS),
                system_message=(
                    "You are a data analyst. "
                    + EXECUTOR_SYSTEM_HINT
                    + " Import these helpers with `from functions import ...`.\n"
                    + functions_prompt
                    + "\n"
                    + FINISH_HINT
                ),
            )
            runner = CodeExecutorAgent("executor", code_executor=executor)
            team = RoundRobinGroupChat(
                [analyst, runner],
                termination_condition=TextMentionTermination("TERMINATE", sources=["analyst"])
                | MaxMessageTermination(12),
            )
            try:
                result = await Console(team.run_stream(task=TASK))
            except Exception as exc:
                fail(f"the team run raised {type(exc).__name__}: {exc}")
            failures = extract_code_result_failures(result.messages, "executor")
            if failures and uses_scripted_model():
                fail(f"{len(failures)} code execution(s) failed; first:\n{failures[0]}")

            # The helpers are a real module in the session, importable from any later code too.
            check = await executor.execute_code_blocks(
                [CodeBlock(code="from functions import gross\nprint(gross(100, 0.19))", language="python")],
                CancellationToken(),
            )
    if check.exit_code != 0 or check.stdout.strip() != "119.0":
        fail(f"`from functions import gross` did not work in the session: {check.output!r}")
    print("\n`from functions import ...` works in the session: gross(100, 0.19) ->", check.stdout.strip())


if __name__ == "__main__":
    run_main(main())

"""The quickstarts' dataset: a small, reproducible table of sales orders."""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

__all__ = ["write_sales_csv"]


def write_sales_csv(path: Path, *, seed: int = 7) -> int:
    """Write a small, reproducible sales dataset (January-June 2024); returns the row count."""
    rng = random.Random(seed)
    products = {"Widget": 19.99, "Gadget": 34.50, "Gizmo": 12.25, "Doohickey": 54.00}
    # Regions grow at different rates so that the chart has a story to tell.
    regions = {"North": 1.00, "South": 1.06, "East": 0.97, "West": 1.12}
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "region", "product", "units", "unit_price"])
        day = dt.date(2024, 1, 1)
        while day <= dt.date(2024, 6, 30):
            for _ in range(rng.randint(2, 5)):
                region = rng.choice(list(regions))
                product = rng.choice(list(products))
                trend = regions[region] ** (day.month - 1)
                units = max(1, round(rng.gauss(8, 3) * trend))
                writer.writerow([day.isoformat(), region, product, units, products[product]])
                rows += 1
            day += dt.timedelta(days=1)
    return rows

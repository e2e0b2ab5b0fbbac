"""Numeric materialization metadata the UI plots over partitions.

Metadata is attached per partition (per charge day), also when one run covers a range of days, so
each day's point on a plot is that day's figure. Money is one series per currency.
"""

from collections.abc import Mapping
from datetime import date, timedelta

import dagster as dg

from finops_assets.lib.totals import Totals


def days_between(days: tuple[date, date]) -> list[date]:
    return [days[0] + timedelta(days=i) for i in range((days[1] - days[0]).days + 1)]


def add_daily_money_metadata(
    context: dg.AssetExecutionContext,
    totals: Mapping[tuple[date, str], Totals],
    days: tuple[date, date],
    extra: Mapping[date, Mapping[str, dg.MetadataValue]] | None = None,
) -> None:
    for day in days_between(days):
        per_currency = {c: t for (d, c), t in totals.items() if d == day}
        metadata: dict[str, dg.MetadataValue] = {
            "dagster/row_count": dg.MetadataValue.int(sum(t.rows for t in per_currency.values())),
        }
        for currency, t in sorted(per_currency.items()):
            metadata[f"billed_cost_{currency}"] = dg.MetadataValue.float(float(round(t.billed, 2)))
            metadata[f"effective_cost_{currency}"] = dg.MetadataValue.float(
                float(round(t.effective, 2))
            )
        metadata.update((extra or {}).get(day, {}))
        context.add_asset_metadata(metadata, partition_key=day.isoformat())

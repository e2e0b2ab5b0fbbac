"""What every raw source does the same way."""

import dagster as dg

from finops_assets.metadata import add_daily_money_metadata, days_between
from finops_assets.resources.warehouse import Warehouse


def no_deliveries_result(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    table: str,
    days,
    where: str,
) -> dg.MaterializeResult:
    """A landing zone that carries none of this source's exports (the team does not use it):
    the days are stored empty instead of failing, and the run log says why."""
    cleared = warehouse.clear_partitions(table, days_between(days))
    context.log.info(f"No deliveries under {where}: {table} stays empty for these days.")
    add_daily_money_metadata(context, {}, days)
    return dg.MaterializeResult(
        metadata={"deliveries": dg.MetadataValue.text(""), "rows_cleared": cleared}
    )

"""core/cost_facts: one row per charge in FOCUS 1.2 columns, whatever the source."""

import dagster as dg
import duckdb

from finops_assets.contracts.checks import WAREHOUSE_POOL, partition_window
from finops_assets.lib.deliveries import DeliveryError
from finops_assets.lib.facts import (
    FACT_SOURCES,
    empty_cost_facts_sql,
    invalid_tags_sql,
    with_source_sql,
)
from finops_assets.lib.warehouse import table_columns
from finops_assets.metadata import add_daily_money_metadata, days_between
from finops_assets.partitions import daily_partitions
from finops_assets.resources.warehouse import Warehouse

COST_FACTS_TABLE = "core.cost_facts"


def unknown_line_items_by_day(warehouse: Warehouse, days) -> dict:
    """Rows whose provider charge type we do not know (kept at billed cost, counted per day)."""
    with warehouse.get_connection() as con:
        if "x_UnknownLineItemType" not in table_columns(con, COST_FACTS_TABLE):
            return {}
        rows = con.execute(
            f"SELECT charge_date, count_if(x_UnknownLineItemType) FROM {COST_FACTS_TABLE} "
            "WHERE charge_date BETWEEN ? AND ? GROUP BY 1",
            [days[0], days[1]],
        ).fetchall()
    return {day: {"unknown_line_item_rows": dg.MetadataValue.int(int(n))} for day, n in rows}


@dg.asset(
    key=["core", "cost_facts"],
    group_name="core",
    kinds={"duckdb"},
    deps=[
        dg.AssetKey(["raw", "focus"]),
        dg.AssetKey(["raw", "aws_cur"]),
        dg.AssetKey(["raw", "azure_cost"]),
        dg.AssetKey(["raw", "gcp_billing"]),
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    description=(
        "Every charge of the day in FOCUS 1.2 columns (BilledCost, EffectiveCost, ...) from every "
        "source (FOCUS exports, AWS CUR and Data Exports, Azure cost exports, GCP billing "
        "export), with Tags as JSON and the delivery and file it came from. The base for every "
        "cost figure."
    ),
)
def cost_facts(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    days = partition_window(context)
    sources = [s for s in FACT_SOURCES if warehouse.has_table(s.raw_table)]
    # Without any source table yet the partition is written empty (and the table created typed).
    select_sql = "\n UNION ALL BY NAME \n".join(
        [with_source_sql(s, days) for s in sources] or [empty_cost_facts_sql()]
    )

    def validate(con: duckdb.DuckDBPyConnection) -> None:
        bad = con.execute(invalid_tags_sql(COST_FACTS_TABLE, days)).fetchall()
        if bad:
            raise DeliveryError(
                "; ".join(
                    f"{f}: column Tags is not a JSON object in {n} row(s), e.g. {s}"
                    for f, n, s in bad
                )
                + ". Fix: the producer must send Tags as a JSON object (FOCUS), e.g. "
                '{"team": "payments"}; re-deliver the file.'
            )

    write = warehouse.replace_partitions(
        COST_FACTS_TABLE, select_sql, days_between(days), validate=validate
    )
    add_daily_money_metadata(
        context,
        warehouse.partition_totals(COST_FACTS_TABLE, days),
        days,
        extra=unknown_line_items_by_day(warehouse, days),
    )
    return dg.MaterializeResult(
        metadata={
            "rows_replaced": dg.MetadataValue.int(write.rows_deleted),
            "sources": dg.MetadataValue.text(", ".join(s.name for s in sources)),
        }
    )

"""Checks on the insights: the usage each monitor scored is the usage in core.allocated_costs."""

import dagster as dg
import pandas as pd

from finops_assets.contracts.checks import WAREHOUSE_POOL, markdown_table, partition_window
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.core.assets import ALLOCATED_COSTS_TABLE
from finops_assets.defs.insights.assets import (
    ANOMALIES,
    ANOMALY_DAYS_TABLE,
    FORECASTS,
    FORECASTS_TABLE,
)
from finops_assets.lib.forecast_scopes import actual_conserved_sql
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse


def usage_conserved_sql(first, last) -> tuple[str, list]:
    """Per monitor, day and currency: Σ scored actual against Σ usage EffectiveCost upstream;
    each series' actual is rounded to the cent, so the bound is half a cent per series."""
    return (
        f"""
        WITH scored AS (
            SELECT monitor, charge_date, BillingCurrency, sum(actual) AS scored,
                   count(*) AS series
            FROM {ANOMALY_DAYS_TABLE} WHERE charge_date BETWEEN ? AND ? GROUP BY ALL
        ),
        upstream AS (
            SELECT charge_date, BillingCurrency,
                   CAST(sum(EffectiveCost) AS DOUBLE) AS usage
            FROM {ALLOCATED_COSTS_TABLE}
            WHERE charge_date BETWEEN ? AND ? AND ChargeCategory = 'Usage'
            GROUP BY ALL
        ),
        monitors AS (SELECT DISTINCT monitor FROM scored)
        SELECT m.monitor, u.charge_date, u.BillingCurrency, u.usage,
               coalesce(s.scored, 0) AS scored, coalesce(s.series, 0) AS series
        FROM upstream u CROSS JOIN monitors m
        LEFT JOIN scored s ON s.monitor = m.monitor AND s.charge_date = u.charge_date
             AND s.BillingCurrency = u.BillingCurrency
        WHERE abs(coalesce(s.scored, 0) - u.usage) > 0.005 * greatest(coalesce(s.series, 0), 1)
                                                  + 0.000001
        ORDER BY 2, 1, 3
        """,
        [first, last, first, last],
    )


def _result(mismatches: pd.DataFrame, what: str) -> dg.AssetCheckResult:
    """Passed when nothing differs; otherwise how many ``what``, the first in words and up to 50
    as a table."""
    metadata = {"mismatches": dg.MetadataValue.int(len(mismatches))}
    if len(mismatches):
        metadata["details"] = dg.MetadataValue.md(markdown_table(mismatches.head(50)))
    return dg.AssetCheckResult(
        passed=mismatches.empty,
        metadata=metadata,
        description=(
            None
            if mismatches.empty
            else f"{len(mismatches)} {what}, e.g. {mismatches.iloc[0].to_dict()}"
        ),
    )


def build(ctx: DefsContext) -> dg.Definitions:
    @dg.asset_check(
        asset=ANOMALIES,
        name="usage_conserved",
        blocking=True,
        partitions_def=ctx.partitions,
        pool=WAREHOUSE_POOL,
        description=(
            "Per monitor, day and currency, the usage the series scored adds up to the usage "
            "EffectiveCost of core.allocated_costs (to the cent per series): no cost is lost "
            "between the warehouse and the anomaly scores, and currencies are never added."
        ),
    )
    def usage_conserved(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        first, last = partition_window(context)
        sql, params = usage_conserved_sql(first, last)
        mismatches = warehouse.query(sql, params).to_pandas()
        return _result(
            mismatches,
            f"monitor/day/currency totals differ from {ALLOCATED_COSTS_TABLE}'s usage",
        )

    @dg.asset_check(
        asset=FORECASTS,
        name="actual_conserved",
        blocking=True,
        partitions_def=ctx.partitions,
        pool=WAREHOUSE_POOL,
        description=(
            "Per scope, series, currency and basis, each forecast's actual to date is the cost "
            "core.allocated_costs holds for that series over the period's complete days (to "
            "the cent): the number a forecast starts from is the warehouse's, never summed "
            "across currencies."
        ),
    )
    def actual_conserved(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse, rules: RulesResource
    ) -> dg.AssetCheckResult:
        first, last = partition_window(context)
        frames = [
            warehouse.query(
                actual_conserved_sql(
                    scope.by, scope.name, FORECASTS_TABLE, ALLOCATED_COSTS_TABLE, first, last
                )
            )
            .to_pandas()
            .assign(scope=scope.name)
            for scope in rules.load().forecasts.scopes
        ]
        mismatches = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return _result(
            mismatches, f"forecasts start from an actual that is not {ALLOCATED_COSTS_TABLE}'s cost"
        )

    return definitions_of(usage_conserved, actual_conserved)

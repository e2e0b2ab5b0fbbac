"""Daily marts: cost per team and untagged spend, with tag dimensions from the rules YAML."""

import dagster as dg

from finops_assets.automation import RESTATED_DAYS_PROPAGATE
from finops_assets.contracts.checks import WAREHOUSE_POOL, partition_window
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.core.assets import ALLOCATED_COSTS_TABLE, AMORTIZED_COSTS_TABLE
from finops_assets.lib.amortization import commitment_coverage_sql, commitment_utilization_sql
from finops_assets.lib.rollups import daily_cost_by_team_sql, untagged_spend_sql
from finops_assets.metadata import add_daily_money_metadata, days_between
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse

DAILY_COST_BY_TEAM_TABLE = "mart.daily_cost_by_team"
UNTAGGED_SPEND_TABLE = "mart.untagged_spend"
COMMITMENT_UTILIZATION_TABLE = "mart.commitment_utilization"
COMMITMENT_COVERAGE_TABLE = "mart.commitment_coverage"


def write_mart(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    table: str,
    select_sql: str,
    money_columns: tuple[str, str],
    extra_metadata=None,
) -> int:
    """Replace the run's days of a mart and attach its per-day money metadata."""
    days = partition_window(context)
    write = warehouse.replace_partitions(table, select_sql, days_between(days))
    add_daily_money_metadata(
        context,
        warehouse.partition_totals(table, days, *money_columns),
        days,
        extra=extra_metadata(days) if extra_metadata else None,
    )
    return write.rows_inserted


def untagged_share_by_day(warehouse: Warehouse, days) -> dict:
    """Per day: untagged share of effective cost in %, one series per currency."""
    rows = warehouse.query(
        f"SELECT charge_date, BillingCurrency, sum(untagged_effective_cost), "
        f"sum(total_effective_cost), sum(unallocated_effective_cost) FROM {UNTAGGED_SPEND_TABLE} "
        "WHERE charge_date BETWEEN ? AND ? GROUP BY ALL",
        [days[0], days[1]],
    ).to_pylist()
    shares: dict = {}
    for row in rows:
        day, currency, untagged, total, unallocated = row.values()
        day_meta = shares.setdefault(day, {})
        if total:
            day_meta[f"untagged_pct_{currency}"] = dg.MetadataValue.float(
                round(float(100 * untagged / total), 2)
            )
        # For ops/pipeline_health's unallocated share (Σ / Σ per currency over its window).
        day_meta[f"unallocated_effective_{currency}"] = dg.MetadataValue.text(
            f"{unallocated or 0:f}"
        )
        day_meta[f"total_effective_{currency}"] = dg.MetadataValue.text(f"{total or 0:f}")
    return shares


def build_commitment_mart(
    name: str,
    table: str,
    select_sql,
    money_columns: tuple[str, str],
    description: str,
    partitions: dg.PartitionsDefinition,
) -> dg.AssetsDefinition:
    """A daily mart over core.amortized_costs: one SQL builder, its per-day money metadata."""

    @dg.asset(
        key=["mart", name],
        group_name="mart",
        kinds={"duckdb"},
        deps=[dg.AssetKey(["core", "amortized_costs"])],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=RESTATED_DAYS_PROPAGATE,
        pool=WAREHOUSE_POOL,
        description=description,
    )
    def commitment_mart(
        context: dg.AssetExecutionContext, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        days = partition_window(context)
        rows = write_mart(
            context, warehouse, table, select_sql(AMORTIZED_COSTS_TABLE, days), money_columns
        )
        return dg.MaterializeResult(metadata={"rows_written": dg.MetadataValue.int(rows)})

    return commitment_mart


def build(ctx: DefsContext) -> dg.Definitions:
    @dg.asset(
        key=["mart", "daily_cost_by_team"],
        group_name="mart",
        kinds={"duckdb"},
        deps=[dg.AssetKey(["core", "allocated_costs"])],
        partitions_def=ctx.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=RESTATED_DAYS_PROPAGATE,
        pool=WAREHOUSE_POOL,
        description=(
            "Billed and effective cost per day, provider, currency, department, team, environment, "
            "cost center and service category. Owners come from resource tags via the alias table "
            "in the rules YAML, then the allocation chain (hierarchy, shared pools); cost no rule "
            "assigns is kept as __untagged__. allocation_rule says which rule set the owner."
        ),
    )
    def daily_cost_by_team(
        context: dg.AssetExecutionContext, warehouse: Warehouse, rules: RulesResource
    ) -> dg.MaterializeResult:
        days = partition_window(context)
        rows = write_mart(
            context,
            warehouse,
            DAILY_COST_BY_TEAM_TABLE,
            daily_cost_by_team_sql(rules.load(), ALLOCATED_COSTS_TABLE, days),
            ("billed_cost", "effective_cost"),
        )
        return dg.MaterializeResult(
            metadata={
                "rows_written": dg.MetadataValue.int(rows),
                "rules_file": dg.MetadataValue.path(rules.resolved_path()),
            }
        )

    @dg.asset(
        key=["mart", "untagged_spend"],
        group_name="mart",
        kinds={"duckdb"},
        deps=[dg.AssetKey(["core", "allocated_costs"])],
        partitions_def=ctx.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=RESTATED_DAYS_PROPAGATE,
        pool=WAREHOUSE_POOL,
        description=(
            "Per day, provider and currency: cost with no owner tag, the total, and the untagged "
            "share of effective cost in %."
        ),
    )
    def untagged_spend(
        context: dg.AssetExecutionContext, warehouse: Warehouse, rules: RulesResource
    ) -> dg.MaterializeResult:
        days = partition_window(context)
        rows = write_mart(
            context,
            warehouse,
            UNTAGGED_SPEND_TABLE,
            untagged_spend_sql(rules.load(), ALLOCATED_COSTS_TABLE, days),
            ("total_billed_cost", "total_effective_cost"),
            extra_metadata=lambda days: untagged_share_by_day(warehouse, days),
        )
        return dg.MaterializeResult(metadata={"rows_written": dg.MetadataValue.int(rows)})

    commitment_utilization = build_commitment_mart(
        "commitment_utilization",
        COMMITMENT_UTILIZATION_TABLE,
        commitment_utilization_sql,
        ("amortized_cost", "used_cost"),
        "Per commitment (reservation, savings plan, committed use) and day: amortized cost, used "
        "and unused cost and utilization %. Utilization is empty where the provider does not say "
        "what was used (purchases the platform spreads).",
        ctx.partitions,
    )

    commitment_coverage = build_commitment_mart(
        "commitment_coverage",
        COMMITMENT_COVERAGE_TABLE,
        commitment_coverage_sql,
        ("covered_cost", "eligible_cost"),
        "Per day, provider, service and currency: usage a commitment covered, the eligible usage "
        "(covered plus on-demand of services a commitment covers that day), at list price, and "
        "coverage %.",
        ctx.partitions,
    )

    return definitions_of(
        daily_cost_by_team, untagged_spend, commitment_utilization, commitment_coverage
    )

"""core/cost_facts: one row per charge in FOCUS 1.2 columns, whatever the source."""

import dagster as dg
import duckdb

from finops_assets.automation import RESTATED_DAYS_PROPAGATE
from finops_assets.contracts.checks import WAREHOUSE_POOL, partition_window
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.lib.allocation import ALLOCATION_RULES, allocated_costs_sql
from finops_assets.lib.amortization import amortized_costs_sql
from finops_assets.lib.deliveries import DeliveryError
from finops_assets.lib.facts import (
    empty_cost_facts_sql,
    fact_sources,
    invalid_tags_sql,
    with_source_sql,
)
from finops_assets.lib.warehouse import table_columns
from finops_assets.metadata import add_daily_money_metadata, days_between
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse
from finops_assets.sources import SOURCES

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


AMORTIZED_COSTS_TABLE = "core.amortized_costs"
ALLOCATED_COSTS_TABLE = "core.allocated_costs"


def amortization_policy_metadata(rules) -> dict:
    policy = rules.amortization
    return {
        "spread_purchases": dg.MetadataValue.text(policy.spread_purchases),
        "min_term_days": dg.MetadataValue.int(policy.min_term_days),
        "unused_commitment_cost": dg.MetadataValue.text(policy.unused_commitment_cost),
        "commitment_pool": dg.MetadataValue.text(policy.commitment_pool),
    }


def per_day_counts(warehouse: Warehouse, table: str, days, conditions: dict[str, str]) -> dict:
    """Per day, the number of rows meeting each named condition (numeric metadata for the UI)."""
    counts = ", ".join(
        f"count_if(coalesce({condition}, false))" for condition in conditions.values()
    )
    rows = warehouse.query(
        f"SELECT charge_date, {counts} FROM {table} WHERE charge_date BETWEEN ? AND ? GROUP BY 1",
        [days[0], days[1]],
    ).to_pylist()
    return {
        row["charge_date"]: {
            name: dg.MetadataValue.int(int(value))
            for name, value in zip(conditions, list(row.values())[1:], strict=True)
        }
        for row in rows
    }


def allocation_rules_metadata(rules) -> dict:
    """The allocation rules in effect, as the UI shows them next to the asset."""
    return {
        "ownership_dimension": dg.MetadataValue.text(rules.ownership_dimension),
        "owners": dg.MetadataValue.json(
            {name: owner.dimensions for name, owner in rules.owners.items()}
        ),
        "hierarchy": dg.MetadataValue.json(
            {
                node_id: node.model_dump(exclude_defaults=True)
                for node_id, node in rules.hierarchy.items()
            }
        ),
        "shared_pools": dg.MetadataValue.json(
            [pool.model_dump(mode="json", exclude_defaults=True) for pool in rules.shared_pools]
        ),
        "default_pool": dg.MetadataValue.text(rules.default_pool or "(none: kept as missing)"),
        "unused_commitment_cost": dg.MetadataValue.text(rules.amortization.unused_commitment_cost),
    }


def build(ctx: DefsContext) -> dg.Definitions:
    @dg.asset(
        key=["core", "cost_facts"],
        group_name="core",
        kinds={"duckdb"},
        deps=[dg.AssetKey.from_user_string(spec.raw_key) for spec in SOURCES],
        partitions_def=ctx.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=RESTATED_DAYS_PROPAGATE,
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
        sources = [s for s in fact_sources() if warehouse.has_table(s.raw_table)]
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

    @dg.asset(
        key=["core", "amortized_costs"],
        group_name="core",
        kinds={"duckdb"},
        deps=[dg.AssetKey(["core", "cost_facts"])],
        partitions_def=ctx.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=RESTATED_DAYS_PROPAGATE,
        pool=WAREHOUSE_POOL,
        description=(
            "Every charge of the day with commitment purchases spread the way accountants expect: "
            "the provider's amortization where it has one, an even daily spread (rules YAML, "
            "`amortization`) where it has not, and unused commitment cost kept central or "
            "redistributed. x_AmortizationClass marks Principal and Amortized Charge rows."
        ),
    )
    def amortized_costs(
        context: dg.AssetExecutionContext, warehouse: Warehouse, rules: RulesResource
    ) -> dg.MaterializeResult:
        days = partition_window(context)
        policy = rules.load().amortization
        write = warehouse.replace_partitions(
            AMORTIZED_COSTS_TABLE,
            amortized_costs_sql(policy, COST_FACTS_TABLE, days),
            days_between(days),
        )
        counts = per_day_counts(
            warehouse,
            AMORTIZED_COSTS_TABLE,
            days,
            {
                "platform_spread_rows": "x_AmortizedFromDate IS NOT NULL",
                "unused_commitment_rows": "CommitmentDiscountStatus = 'Unused'",
            },
        )
        add_daily_money_metadata(
            context, warehouse.partition_totals(AMORTIZED_COSTS_TABLE, days), days, extra=counts
        )
        return dg.MaterializeResult(
            metadata={
                "rows_replaced": dg.MetadataValue.int(write.rows_deleted),
                **amortization_policy_metadata(rules.load()),
                "rules_file": dg.MetadataValue.path(rules.resolved_path()),
            }
        )

    @dg.asset(
        key=["core", "allocated_costs"],
        group_name="core",
        kinds={"duckdb"},
        deps=[dg.AssetKey(["core", "amortized_costs"])],
        partitions_def=ctx.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=RESTATED_DAYS_PROPAGATE,
        pool=WAREHOUSE_POOL,
        description=(
            "Every amortized cost on an owner (department, team, environment, cost center) by the "
            "first rule that applies: resource tag, account/subscription/project hierarchy or "
            "provider-inherited tags, a shared-cost pool split in whole cents, or the default pool. "
            "x_AllocationRule and x_AllocationDetail say which rule assigned each row."
        ),
    )
    def allocated_costs(
        context: dg.AssetExecutionContext, warehouse: Warehouse, rules: RulesResource
    ) -> dg.MaterializeResult:
        days = partition_window(context)
        loaded = rules.load()
        with warehouse.get_connection() as con:
            columns = table_columns(con, AMORTIZED_COSTS_TABLE)
        write = warehouse.replace_partitions(
            ALLOCATED_COSTS_TABLE,
            allocated_costs_sql(loaded, AMORTIZED_COSTS_TABLE, days, columns),
            days_between(days),
        )
        counts = per_day_counts(
            warehouse,
            ALLOCATED_COSTS_TABLE,
            days,
            {f"rows_{rule}": f"x_AllocationRule = '{rule}'" for rule in ALLOCATION_RULES},
        )
        add_daily_money_metadata(
            context, warehouse.partition_totals(ALLOCATED_COSTS_TABLE, days), days, extra=counts
        )
        return dg.MaterializeResult(
            metadata={
                "rows_replaced": dg.MetadataValue.int(write.rows_deleted),
                **allocation_rules_metadata(loaded),
                "rules_file": dg.MetadataValue.path(rules.resolved_path()),
            }
        )

    return definitions_of(cost_facts, amortized_costs, allocated_costs)

"""Checks on core/amortized_costs: money conserved through amortization, cent-exact spread
schedules, and commitments whose purchases equal their amortized cost."""

from datetime import date

import dagster as dg
import pandas as pd

from finops_assets.contracts.checks import WAREHOUSE_POOL, markdown_table, partition_window
from finops_assets.lib.amortization import commitment_balance_sql, spread_schedule_sql
from finops_assets.lib.totals import CENT
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse


def _window(days: tuple[date, date]) -> str:
    return f"charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'"


def day_currency_comparison_sql(expected_sql: str, actual_sql: str) -> str:
    """Two (charge_date, currency, amount) queries side by side; a day or currency only one of
    them has counts as 0 on the other side."""
    return f"""
        WITH expected(charge_date, currency, amount) AS ({expected_sql}),
             actual(charge_date, currency, amount) AS ({actual_sql})
        SELECT coalesce(e.charge_date, a.charge_date) AS charge_date,
               coalesce(e.currency, a.currency) AS currency,
               coalesce(e.amount, 0) AS expected, coalesce(a.amount, 0) AS actual
        FROM expected AS e FULL OUTER JOIN actual AS a
          ON e.charge_date = a.charge_date AND e.currency = a.currency
        ORDER BY ALL
    """


def amortization_balance_sql(facts_table: str, table: str, days: tuple[date, date]) -> str:
    """Per day and currency: what came in from the facts, what amortization moved (purchases the
    platform spreads give up their effective cost, spread rows bring it back day by day), and
    what came out. Unchanged rows must carry the facts' effective cost in x_SourceEffectiveCost."""
    return f"""
        WITH facts AS (
            SELECT charge_date, BillingCurrency, sum(BilledCost) AS billed,
                   sum(EffectiveCost) AS effective
            FROM {facts_table} WHERE {_window(days)} GROUP BY ALL
        ), amortized AS (
            SELECT charge_date, BillingCurrency, sum(BilledCost) AS billed,
                   sum(EffectiveCost) AS effective,
                   coalesce(sum(x_SourceEffectiveCost) FILTER (WHERE x_AmortizedFromDate IS NULL), 0)
                       AS source_effective,
                   coalesce(sum(x_SourceEffectiveCost - EffectiveCost) FILTER (
                       WHERE x_AmortizedBy = 'platform' AND x_AmortizationClass = 'Principal'), 0)
                       AS moved_out,
                   coalesce(sum(EffectiveCost) FILTER (WHERE x_AmortizedFromDate IS NOT NULL), 0)
                       AS spread_in
            FROM {table} WHERE {_window(days)} GROUP BY ALL
        )
        SELECT coalesce(facts.charge_date, amortized.charge_date) AS charge_date,
               coalesce(facts.BillingCurrency, amortized.BillingCurrency) AS currency,
               coalesce(facts.billed, 0) AS facts_billed,
               coalesce(amortized.billed, 0) AS amortized_billed,
               coalesce(facts.effective, 0) AS facts_effective,
               coalesce(amortized.source_effective, 0) AS carried_effective,
               coalesce(amortized.moved_out, 0) AS moved_out,
               coalesce(amortized.spread_in, 0) AS spread_in,
               coalesce(amortized.effective, 0) AS amortized_effective,
               coalesce(facts.effective, 0) - coalesce(amortized.moved_out, 0)
                   + coalesce(amortized.spread_in, 0) AS expected_effective
        FROM facts FULL OUTER JOIN amortized
          ON facts.charge_date = amortized.charge_date
         AND facts.BillingCurrency = amortized.BillingCurrency
        ORDER BY ALL
    """


def amortization_balance(
    warehouse: Warehouse, facts_table: str, table: str, days: tuple[date, date]
) -> pd.DataFrame:
    return warehouse.query(amortization_balance_sql(facts_table, table, days)).to_pandas()


def unbalanced(frame: pd.DataFrame) -> pd.DataFrame:
    """The (day, currency) rows of ``amortization_balance`` that break conservation by a cent."""
    return frame[
        ((frame["facts_billed"] - frame["amortized_billed"]).abs() >= CENT)
        | ((frame["facts_effective"] - frame["carried_effective"]).abs() >= CENT)
        | ((frame["expected_effective"] - frame["amortized_effective"]).abs() >= CENT)
    ]


def commitment_mart_balance(
    warehouse: Warehouse, table: str, amortized_table: str, days: tuple[date, date]
) -> pd.DataFrame:
    """Per day and currency: Σ EffectiveCost of the commitment rows vs the mart's amortized_cost."""
    return warehouse.query(
        day_currency_comparison_sql(
            f"""SELECT charge_date, BillingCurrency, sum(EffectiveCost)
                FROM {amortized_table}
                WHERE {_window(days)} AND CommitmentDiscountId IS NOT NULL
                  AND x_AmortizationClass IS NOT NULL
                GROUP BY ALL""",
            f"""SELECT charge_date, BillingCurrency, sum(amortized_cost)
                FROM {table} WHERE {_window(days)} GROUP BY ALL""",
        )
    ).to_pandas()


def _result(mismatches: pd.DataFrame, what: str, checked: int, **extra) -> dg.AssetCheckResult:
    metadata = {
        "mismatches": dg.MetadataValue.int(len(mismatches)),
        "checked": dg.MetadataValue.int(checked),
        **extra,
    }
    if len(mismatches):
        metadata["details"] = dg.MetadataValue.md(markdown_table(mismatches.head(50).astype(str)))
    return dg.AssetCheckResult(
        passed=not len(mismatches),
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(mismatches)} {what}" if len(mismatches) else None,
        metadata=metadata,
    )


def build_amortization_conservation_check(
    *, asset_key: dg.AssetKey, table: str, facts_table: str, partitions_def
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name="money_conserved",
        blocking=True,
        partitions_def=partitions_def,
        pool=WAREHOUSE_POOL,
        description=(
            f"Per day and currency, to the cent: Σ BilledCost equals {facts_table}; every row "
            "keeps the facts' EffectiveCost in x_SourceEffectiveCost; Σ EffectiveCost equals "
            "the facts minus what spread purchases gave up plus the day's spread rows (and "
            "redistributed unused cost nets to zero)."
        ),
    )
    def amortization_conserved(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        frame = amortization_balance(warehouse, facts_table, table, partition_window(context))
        return _result(unbalanced(frame), "(day, currency) totals do not balance", len(frame))

    return amortization_conserved


def build_spread_schedule_check(
    *, asset_key: dg.AssetKey, table: str, facts_table: str, partitions_def
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name="spread_schedules_exact",
        blocking=True,
        partitions_def=partitions_def,
        pool=WAREHOUSE_POOL,
        description=(
            "Every purchase the platform spreads: its daily amounts over the whole term add up to "
            "the purchase exactly, each day is within a cent of an even share (the first day also "
            "takes the sub-cent rest), and the spread rows written for the checked days equal "
            "the schedule per day and currency."
        ),
    )
    def spread_schedules_exact(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse, rules: RulesResource
    ) -> dg.AssetCheckResult:
        days = partition_window(context)
        if not warehouse.has_table(facts_table) or not warehouse.has_table(table):
            return dg.AssetCheckResult(passed=True, metadata={"purchases": 0})
        schedule = spread_schedule_sql(rules.load().amortization, facts_table)
        per_purchase = warehouse.query(
            f"""
            WITH schedule AS ({schedule})
            SELECT x_SourceFile, purchase_date, CommitmentDiscountId, ResourceId,
                   BillingCurrency, any_value(purchase_amount) AS purchase_amount,
                   any_value(term_days) AS term_days, count(*) AS days_scheduled,
                   sum(amount) AS scheduled,
                   max(abs(amount - purchase_amount / term_days)
                       - CASE WHEN spread_date = purchase_first_day THEN 0.01 ELSE 0 END)
                       AS worst_day_deviation
            FROM (SELECT *, min(spread_date) OVER (PARTITION BY x_SourceFile, purchase_date,
                         CommitmentDiscountId, ResourceId, BillingCurrency, purchase_amount)
                         AS purchase_first_day FROM schedule)
            GROUP BY ALL
            HAVING max(spread_date) >= DATE '{days[0].isoformat()}'
               AND min(spread_date) <= DATE '{days[1].isoformat()}'
            """
        ).to_pandas()
        bad = per_purchase[
            ((per_purchase["scheduled"] - per_purchase["purchase_amount"]).abs() >= CENT)
            | (per_purchase["days_scheduled"] != per_purchase["term_days"])
            | (per_purchase["worst_day_deviation"] >= 0.01)
        ]
        written = warehouse.query(
            day_currency_comparison_sql(
                f"""SELECT spread_date AS charge_date, BillingCurrency, sum(amount)
                    FROM ({schedule})
                    WHERE spread_date BETWEEN DATE '{days[0].isoformat()}'
                                          AND DATE '{days[1].isoformat()}'
                    GROUP BY ALL""",
                f"""SELECT charge_date, BillingCurrency, sum(EffectiveCost)
                    FROM {table} WHERE {_window(days)} AND x_AmortizedFromDate IS NOT NULL
                    GROUP BY ALL""",
            )
        ).to_pandas()
        bad_days = written[(written["expected"] - written["actual"]).abs() >= CENT]
        mismatches = pd.concat(
            [bad.assign(problem="schedule"), bad_days.assign(problem="written rows")]
        )
        return _result(
            mismatches,
            "spread schedule problem(s)",
            len(per_purchase),
            purchases_spread=dg.MetadataValue.int(len(per_purchase)),
        )

    return spread_schedules_exact


def build_commitment_balance_check(
    *, asset_key: dg.AssetKey, table: str, partitions_def
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name="commitments_balance",
        blocking=False,
        partitions_def=partitions_def,
        pool=WAREHOUSE_POOL,
        description=(
            "For each commitment (CommitmentDiscountId), currency and fully loaded billing month "
            "touched by the checked days: Σ BilledCost of its purchases in the month (a one-time "
            "purchase pro rata to its term days in the month) equals Σ EffectiveCost of its Used, "
            "Unused, spread and fee rows in the month, within amortization.balance_tolerance "
            "(default 0.01). Months not fully loaded, and commitments bought before the loaded "
            "history, are reported but not judged."
        ),
    )
    def commitments_balance(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse, rules: RulesResource
    ) -> dg.AssetCheckResult:
        days = partition_window(context)
        tolerance = rules.load().amortization.balance_tolerance
        frame = warehouse.query(commitment_balance_sql(table, days, tolerance)).to_pandas()
        judged = frame[frame["complete"].fillna(False).astype(bool)]
        bad = judged[~judged["within_tolerance"].fillna(False).astype(bool)]
        return _result(
            bad,
            "commitment month(s) where purchases and amortized cost differ",
            len(judged),
            not_judged=dg.MetadataValue.int(len(frame) - len(judged)),
            tolerance=dg.MetadataValue.text(str(tolerance)),
        )

    return commitments_balance


def build_commitment_mart_conservation_check(
    *, asset_key: dg.AssetKey, table: str, amortized_table: str, partitions_def
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name="money_conserved",
        blocking=True,
        partitions_def=partitions_def,
        pool=WAREHOUSE_POOL,
        description=(
            f"Per day and currency, to the cent: Σ amortized_cost equals Σ EffectiveCost of the "
            f"commitment rows of {amortized_table} (a commitment id and an amortization class)."
        ),
    )
    def commitment_mart_conserved(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        frame = commitment_mart_balance(
            warehouse, table, amortized_table, partition_window(context)
        )
        bad = frame[(frame["expected"] - frame["actual"]).abs() >= CENT]
        return _result(bad, "(day, currency) totals differ", len(frame))

    return commitment_mart_conserved

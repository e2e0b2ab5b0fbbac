"""Money checks: conservation between stages (to the cent, per day and currency) and duplicates."""

import dagster as dg
import pandas as pd

from finops_assets.contracts.checks import WAREHOUSE_POOL, markdown_table, partition_window
from finops_assets.lib.focus import FOCUS_COLUMNS
from finops_assets.lib.totals import compare_totals
from finops_assets.lib.warehouse import quote_identifier as q
from finops_assets.resources.warehouse import Warehouse


def build_conservation_check(
    *,
    asset_key: dg.AssetKey,
    table: str,
    source_table: str,
    partitions_def: dg.PartitionsDefinition,
    billed: str = "BilledCost",
    effective: str = "EffectiveCost",
    source_rows_column: str | None = None,
    name: str = "money_conserved",
) -> dg.AssetChecksDefinition:
    """Σ billed and Σ effective per day and currency in ``table`` equal ``source_table``'s.

    With ``source_rows_column`` the row counts must match too (``table`` counts its source rows in
    that column, e.g. a rollup's row_count)."""

    @dg.asset_check(
        asset=asset_key,
        name=name,
        blocking=True,
        partitions_def=partitions_def,
        pool=WAREHOUSE_POOL,
        description=(
            f"Σ {billed} and Σ {effective} per day and currency equal {source_table}'s BilledCost "
            "and EffectiveCost, to the cent. Currencies are never added together."
        ),
    )
    def conservation_check(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        days = partition_window(context)
        expected = warehouse.partition_totals(source_table, days)
        actual = warehouse.partition_totals(
            table,
            days,
            billed,
            effective,
            f"sum({q(source_rows_column)})" if source_rows_column else "count(*)",
        )
        mismatches = compare_totals(expected, actual)
        if source_rows_column:
            mismatches += [
                {
                    "charge_date": k[0].isoformat(),
                    "currency": k[1],
                    "measure": "rows",
                    "expected": str(expected[k].rows),
                    "actual": str(actual.get(k).rows if k in actual else 0),
                    "difference": "",
                }
                for k in expected
                if k not in actual or actual[k].rows != expected[k].rows
            ]
        metadata = {
            "mismatches": dg.MetadataValue.int(len(mismatches)),
            "day_currency_pairs": dg.MetadataValue.int(len(expected)),
        }
        for (day, currency), totals in sorted(actual.items()):
            if day == days[1]:
                metadata[f"billed_cost_{currency}"] = dg.MetadataValue.float(
                    float(round(totals.billed, 2))
                )
        if mismatches:
            metadata["details"] = dg.MetadataValue.md(markdown_table(pd.DataFrame(mismatches[:50])))
        return dg.AssetCheckResult(
            passed=not mismatches,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{len(mismatches)} (day, currency, measure) totals differ from {source_table}"
                if mismatches
                else None
            ),
            metadata=metadata,
        )

    return conservation_check


def build_duplicate_charges_check(
    *, asset_key: dg.AssetKey, table: str, partitions_def: dg.PartitionsDefinition
) -> dg.AssetChecksDefinition:
    """The same charge (every FOCUS column equal) loaded from two different files: a delivery
    dropped twice into different folders, or a file copied inside a delivery."""

    charge = ", ".join(q(c) for c in FOCUS_COLUMNS)

    @dg.asset_check(
        asset=asset_key,
        name="no_duplicate_charges",
        blocking=True,
        partitions_def=partitions_def,
        pool=WAREHOUSE_POOL,
        description=(
            "No charge appears in more than one source file: every FOCUS column identical in two "
            "files means the same export was delivered twice."
        ),
    )
    def duplicate_charges_check(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        days = partition_window(context)
        schema, name = table.split(".")
        rows = warehouse.query(
            f"""
            SELECT charge_date, BillingCurrency, count(*) AS duplicate_charges,
                   string_agg(DISTINCT files, ' | ') AS files
            FROM (
                SELECT any_value(charge_date) AS charge_date, any_value(BillingCurrency) AS BillingCurrency,
                       string_agg(DISTINCT x_SourceFile, ', ' ORDER BY x_SourceFile) AS files
                FROM {q(schema)}.{q(name)}
                WHERE charge_date BETWEEN ? AND ?
                GROUP BY hash({charge})
                HAVING count(DISTINCT x_SourceFile) > 1
            )
            GROUP BY ALL ORDER BY ALL
            """,
            [days[0], days[1]],
        ).to_pandas()
        duplicates = int(rows["duplicate_charges"].sum()) if len(rows) else 0
        return dg.AssetCheckResult(
            passed=duplicates == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{duplicates} charge(s) appear in more than one file; remove the duplicate "
                "delivery from the landing zone and re-materialize"
                if duplicates
                else None
            ),
            metadata={
                "duplicate_charges": dg.MetadataValue.int(duplicates),
                "details": dg.MetadataValue.md(markdown_table(rows.head(20))),
            },
        )

    return duplicate_charges_check

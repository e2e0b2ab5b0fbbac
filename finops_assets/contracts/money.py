"""Money checks: conservation between stages (to the cent, per day and currency) and duplicates."""

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import dagster as dg
import pandas as pd

from finops_assets.contracts.checks import WAREHOUSE_POOL, markdown_table, partition_window
from finops_assets.lib.facts import (
    FactSource,
    account_totals_sql,
    day_totals_sql,
    facts_account_totals_sql,
)
from finops_assets.lib.focus import FOCUS_COLUMNS
from finops_assets.lib.totals import Totals, compare_totals, to_keyed_totals
from finops_assets.lib.warehouse import quote_identifier as q
from finops_assets.resources.warehouse import Warehouse


def source_basis_totals(
    warehouse: Warehouse, sources: Sequence[FactSource], days: tuple[date, date]
) -> dict[tuple[date, str], Totals]:
    """Σ of every source's own basis totals per (day, currency), for sources that have data."""
    merged: dict[tuple[date, str], Totals] = {}
    for source in sources:
        if not warehouse.has_table(source.raw_table):
            continue
        for key, t in warehouse.totals(
            day_totals_sql(source.basis_totals_sql(source.raw_table, days))
        ).items():
            m = merged.get(key, Totals(0, Decimal(0), Decimal(0)))
            merged[key] = Totals(m.rows + t.rows, m.billed + t.billed, m.effective + t.effective)
    return merged


def build_conservation_check(
    *,
    asset_key: dg.AssetKey,
    table: str,
    partitions_def: dg.PartitionsDefinition,
    source_table: str | None = None,
    sources: Sequence[FactSource] = (),
    billed: str = "BilledCost",
    effective: str = "EffectiveCost",
    source_rows_column: str | None = None,
    name: str = "money_conserved",
) -> dg.AssetChecksDefinition:
    """Σ billed and Σ effective per day and currency in ``table`` equal the upstream's, to the cent.

    The upstream is ``source_table`` (its BilledCost/EffectiveCost), or the ``sources``' own basis
    totals (what each provider's export says, computed independently of the FOCUS mapping). With
    ``source_rows_column`` the row counts must match too (``table`` counts its upstream rows in
    that column, e.g. a rollup's row_count)."""
    upstream = source_table or " + ".join(f"{s.raw_table} basis" for s in sources)

    @dg.asset_check(
        asset=asset_key,
        name=name,
        blocking=True,
        partitions_def=partitions_def,
        pool=WAREHOUSE_POOL,
        description=(
            f"Σ {billed} and Σ {effective} per day and currency equal {upstream}, to the cent. "
            "Currencies are never added together."
        ),
    )
    def conservation_check(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        days = partition_window(context)
        if source_table:
            expected = warehouse.partition_totals(source_table, days)
        else:
            expected = source_basis_totals(warehouse, sources, days)
        rows = f"sum({q(source_rows_column)})" if source_rows_column else "count(*)"
        actual = warehouse.partition_totals(table, days, billed, effective, rows)
        mismatches = compare_totals(expected, actual)
        if source_rows_column:
            mismatches += [
                {
                    "charge_date": k[0].isoformat(),
                    "currency": k[1],
                    "measure": "rows",
                    "expected": str(expected[k].rows),
                    "actual": str(actual[k].rows if k in actual else 0),
                    "difference": "",
                }
                for k in expected
                if k not in actual or actual[k].rows != expected[k].rows
            ]
        metadata = {
            "mismatches": dg.MetadataValue.int(len(mismatches)),
            "day_currency_pairs": dg.MetadataValue.int(len(expected)),
        }
        if mismatches:
            metadata["details"] = dg.MetadataValue.md(markdown_table(pd.DataFrame(mismatches[:50])))
        return dg.AssetCheckResult(
            passed=not mismatches,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{len(mismatches)} (day, currency, measure) totals differ from {upstream}"
                if mismatches
                else None
            ),
            metadata=metadata,
        )

    return conservation_check


def duplicate_charges_sql(table: str) -> str:
    """Two signs that an export was delivered twice, per day and currency:

    - the same charge (every FOCUS column equal) from two different datasets, e.g. an export
      copied into a second dataset folder;
    - two files with the same fingerprint (row count, cost sums and the XOR of row hashes), e.g. a
      part file copied under another name.

    Identical rows inside one delivery are not flagged: providers aggregate line items on columns
    FOCUS does not carry, so two real charges can agree on every FOCUS column.

    One row per day and currency: ``duplicate_rows`` counts the rows involved (every copy), each
    once even when both signs find it, and ``reason`` lists the signs.
    """
    schema, name = table.split(".")
    charge = ", ".join(q(c) for c in FOCUS_COLUMNS)
    cheap = ", ".join(q(c) for c in _CHEAP_CHARGE_COLUMNS)
    source = f"{q(schema)}.{q(name)}"
    # Hashing every FOCUS column of every row costs about 0.8 s per million rows, so both tests
    # first narrow the rows cheaply: equal charges agree on a few columns, copied files on their
    # row count and sums. Only the rows and files that pass are hashed whole; on a clean day that
    # is none of them.
    return f"""
        WITH day AS NOT MATERIALIZED (
            SELECT rowid AS _rid, * FROM {source} WHERE charge_date BETWEEN ? AND ?),
        cheap_keys AS (
            SELECT hash({cheap}) AS cheap_hash FROM day
            GROUP BY 1 HAVING count(DISTINCT x_Dataset) > 1
        ),
        hashed AS (
            SELECT _rid, charge_date, BillingCurrency, x_Dataset, hash({charge}) AS charge_hash
            FROM day WHERE hash({cheap}) IN (SELECT cheap_hash FROM cheap_keys)
        ),
        across_groups AS (
            SELECT charge_hash,
                   'same charge in ' || string_agg(DISTINCT x_Dataset, ' and ' ORDER BY x_Dataset) AS reason
            FROM hashed GROUP BY charge_hash HAVING count(DISTINCT x_Dataset) > 1
        ),
        across_rows AS (
            SELECT _rid, charge_date, BillingCurrency, reason
            FROM hashed JOIN across_groups USING (charge_hash)
        ),
        file_sums AS (
            SELECT x_SourceFile, count(*) AS rows, sum(BilledCost) AS billed,
                   sum(EffectiveCost) AS effective
            FROM day GROUP BY x_SourceFile
        ),
        twin_files AS (
            SELECT x_SourceFile FROM file_sums
            QUALIFY count(*) OVER (PARTITION BY rows, billed, effective) > 1
        ),
        fingerprints AS (
            SELECT x_SourceFile, count(*) AS rows, sum(BilledCost) AS billed,
                   sum(EffectiveCost) AS effective, bit_xor(hash({charge})) AS fingerprint
            FROM day
            WHERE EXISTS (SELECT 1 FROM twin_files AS t
                          WHERE t.x_SourceFile IS NOT DISTINCT FROM day.x_SourceFile)
            GROUP BY x_SourceFile
        ),
        copied_groups AS (
            SELECT rows, billed, effective, fingerprint,
                   'identical files ' || string_agg(x_SourceFile, ' and ' ORDER BY x_SourceFile) AS reason
            FROM fingerprints GROUP BY rows, billed, effective, fingerprint
            HAVING count(*) > 1
        ),
        copied_rows AS (
            SELECT day._rid, day.charge_date, day.BillingCurrency, g.reason
            FROM fingerprints AS f
            JOIN copied_groups AS g USING (rows, billed, effective, fingerprint)
            JOIN day ON day.x_SourceFile IS NOT DISTINCT FROM f.x_SourceFile
        )
        -- A row both detectors find (a file copied into another dataset) is counted once.
        SELECT charge_date, BillingCurrency,
               string_agg(DISTINCT reason, '; ' ORDER BY reason DESC) AS reason,
               count(DISTINCT _rid)::BIGINT AS duplicate_rows
        FROM (SELECT * FROM across_rows UNION ALL SELECT * FROM copied_rows)
        GROUP BY charge_date, BillingCurrency ORDER BY ALL
    """


# FOCUS columns equal charges agree on, cheap to hash: the first filter of duplicate_charges_sql.
_CHEAP_CHARGE_COLUMNS = (
    "BilledCost",
    "EffectiveCost",
    "ChargePeriodStart",
    "ChargeCategory",
    "SubAccountId",
    "ResourceId",
    "SkuId",
)


def build_duplicate_charges_check(
    *, asset_key: dg.AssetKey, table: str, partitions_def: dg.PartitionsDefinition
) -> dg.AssetChecksDefinition:
    """An export delivered twice (see ``duplicate_charges_sql``)."""

    @dg.asset_check(
        asset=asset_key,
        name="no_duplicate_charges",
        blocking=True,
        partitions_def=partitions_def,
        pool=WAREHOUSE_POOL,
        description=(
            "No export is counted twice: the same charge may not come from two datasets, and no "
            "two files may hold the same rows."
        ),
    )
    def duplicate_charges_check(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        days = partition_window(context)
        rows = warehouse.query(duplicate_charges_sql(table), [days[0], days[1]]).to_pandas()
        duplicates = int(rows["duplicate_rows"].sum()) if len(rows) else 0
        return dg.AssetCheckResult(
            passed=duplicates == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{duplicates} row(s) look delivered twice; remove the duplicate export from the "
                "landing zone and re-materialize"
                if duplicates
                else None
            ),
            metadata={
                "duplicate_rows": dg.MetadataValue.int(duplicates),
                "details": dg.MetadataValue.md(markdown_table(rows.head(20))),
            },
        )

    return duplicate_charges_check


def build_reconciliation_check(
    *,
    asset_key: dg.AssetKey,
    table: str,
    source: FactSource,
    partitions_def: dg.PartitionsDefinition,
) -> dg.AssetChecksDefinition:
    """core.cost_facts reconciles with one source's own invoice and amortized basis, per billing
    account, invoice month and currency, over the days checked (a month's backfill checks the
    whole invoice month)."""

    @dg.asset_check(
        asset=asset_key,
        name=f"reconciles_with_{source.name}",
        blocking=True,
        partitions_def=partitions_def,
        pool=WAREHOUSE_POOL,
        description=(
            f"Per billing account, invoice month and currency, Σ BilledCost and Σ EffectiveCost "
            f"of the {source.name} rows equal {source.invoice_basis}, to the cent."
        ),
    )
    def reconciliation_check(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        days = partition_window(context)
        if not warehouse.has_table(source.raw_table):
            return dg.AssetCheckResult(
                passed=True,
                metadata={"accounts": 0},
                description=f"No {source.name} data loaded yet.",
            )
        with warehouse.get_connection() as con:
            expected = to_keyed_totals(
                con.execute(
                    account_totals_sql(source.basis_totals_sql(source.raw_table, days))
                ).fetchall()
            )
            actual = to_keyed_totals(
                con.execute(facts_account_totals_sql(table, source.name, days)).fetchall()
            )
        mismatches = compare_totals(
            expected, actual, ("billing_account", "invoice_month", "currency")
        )
        rows = [
            {
                "billing_account": k[0],
                "invoice_month": k[1],
                "currency": k[2],
                "billed": str(t.billed),
                "effective": str(t.effective),
                "rows": t.rows,
            }
            for k, t in sorted(expected.items(), key=lambda kv: tuple(map(str, kv[0])))
        ]
        metadata = {
            "mismatches": dg.MetadataValue.int(len(mismatches)),
            "accounts": dg.MetadataValue.int(len({k[0] for k in expected})),
            "basis": dg.MetadataValue.md(markdown_table(pd.DataFrame(rows[:50]))),
        }
        if mismatches:
            metadata["details"] = dg.MetadataValue.md(markdown_table(pd.DataFrame(mismatches[:50])))
        return dg.AssetCheckResult(
            passed=not mismatches,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{len(mismatches)} (account, month, currency, measure) totals differ from "
                f"{source.invoice_basis}"
                if mismatches
                else None
            ),
            metadata=metadata,
        )

    return reconciliation_check

"""core.cost_facts: one row per charge with exactly the FOCUS 1.2 columns, from typed raw rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from finops_assets.lib.focus import ENUMERATED_COLUMNS, FOCUS_COLUMNS
from finops_assets.lib.focus_taxonomy import (
    focus_unit_sql,
    service_subcategory_sql,
    subcategory_candidate_sql,
)
from finops_assets.lib.loading import sql_literal
from finops_assets.lib.warehouse import quote_identifier as q
from finops_assets.lib.warehouse import utc_month

FACT_PLATFORM_COLUMNS = (
    "charge_date",
    "x_DeliveryId",
    "x_SourceFile",
    "x_Dataset",
    "x_BillingPeriod",
)


def cost_facts_sql(raw_table: str, days: tuple[date, date]) -> str:
    """Project raw rows onto FOCUS 1.2 + lineage. Enumerated values get the specification's
    spelling ("Usage-based" -> "Usage-Based"); unknown values pass through for the contract to
    reject. Tags become JSON object text ('{}' when the producer sent none)."""
    columns = []
    for column in FOCUS_COLUMNS:
        if column == "Tags":
            columns.append(
                "CASE WHEN Tags IS NULL OR trim(Tags) IN ('', 'null') THEN '{}' ELSE Tags END AS Tags"
            )
        elif column in ENUMERATED_COLUMNS:
            cases = " ".join(
                f"WHEN {sql_literal(v.lower())} THEN {sql_literal(v)}"
                for v in ENUMERATED_COLUMNS[column]
            )
            columns.append(
                f"CASE lower(trim({q(column)})) {cases} ELSE {q(column)} END AS {q(column)}"
            )
        else:
            columns.append(q(column))
    return f"""
        SELECT {", ".join(columns)}, {", ".join(FACT_PLATFORM_COLUMNS)}
        FROM {raw_table}
        WHERE charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'
    """


def empty_cost_facts_sql() -> str:
    """A typed, empty result with the core.cost_facts columns (a day no source delivered)."""
    types = {**FOCUS_COLUMNS, "charge_date": "DATE"}
    columns = [f"CAST(NULL AS {t}) AS {q(c)}" for c, t in types.items()]
    columns += [
        f"CAST(NULL AS VARCHAR) AS {c}"
        for c in (*FACT_PLATFORM_COLUMNS, "x_Source")
        if c != "charge_date"
    ]
    return f"SELECT {', '.join(columns)} WHERE false"


def invalid_tags_sql(table: str, days: tuple[date, date]) -> str:
    """Rows whose Tags is not a JSON object, grouped by source file (for the error message)."""
    return f"""
        SELECT x_SourceFile, count(*), list(Tags)[1:3]
        FROM {table}
        WHERE charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'
          AND NOT (json_valid(Tags) AND json_type(Tags) = 'OBJECT')
        GROUP BY x_SourceFile ORDER BY 1
    """


@dataclass(frozen=True)
class FactSource:
    """A raw table feeding core.cost_facts.

    ``focus_sql(raw_table, days)`` maps its rows to FOCUS 1.2 + lineage. ``basis_totals_sql``
    computes, independently of that mapping, what the source itself says the totals are: columns
    ``charge_date, BillingCurrency, BillingAccountId, billing_period ('YYYY-MM', the invoice
    month), rows, billed (invoice basis), effective (amortized basis)``. The conservation check
    compares core.cost_facts per day and currency against it, the reconciliation check per billing
    account, invoice month and currency (rows tagged ``x_Source = name``).
    """

    name: str
    raw_table: str
    focus_sql: Callable[[str, tuple[date, date]], str]
    basis_totals_sql: Callable[[str, tuple[date, date]], str]
    invoice_basis: str = "the source's own totals"


def day_totals_sql(basis_sql: str) -> str:
    """A source's basis per (day, currency): the shape ``to_totals`` reads."""
    return f"""
        SELECT charge_date, BillingCurrency, sum("rows"), sum(billed), sum(effective)
        FROM ({basis_sql}) GROUP BY ALL ORDER BY ALL
    """


def account_totals_sql(basis_sql: str) -> str:
    """A source's basis per (billing account, invoice month, currency)."""
    return f"""
        SELECT BillingAccountId, billing_period, BillingCurrency,
               sum("rows"), sum(billed), sum(effective)
        FROM ({basis_sql}) GROUP BY ALL ORDER BY ALL
    """


def facts_account_totals_sql(facts_table: str, source: str, days: tuple[date, date]) -> str:
    """core.cost_facts rows of one source per (billing account, invoice month, currency)."""
    return f"""
        SELECT BillingAccountId, {utc_month("BillingPeriodStart")} AS billing_period,
               BillingCurrency, count(*), sum(BilledCost), sum(EffectiveCost)
        FROM {facts_table}
        WHERE charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'
          AND x_Source = {sql_literal(source)}
        GROUP BY ALL ORDER BY ALL
    """


def with_source_sql(source: FactSource, days: tuple[date, date]) -> str:
    """A source's FOCUS rows tagged with the source's name (``x_Source``).

    ServiceSubcategory (MUST NOT be null since FOCUS 1.1) is always one of the values FOCUS allows
    under the row's ServiceCategory: a FOCUS producer's own value is kept and only an empty one
    (FOCUS 1.0 exports) is derived; a native source's candidate is checked against its category,
    with ``Other (<category>)`` as the fallback. Native units are rewritten to FOCUS UnitFormat.
    """
    by_service = subcategory_candidate_sql("ServiceName")
    if source.name == FOCUS_SOURCE_NAME:
        replace = [
            "coalesce(NULLIF(ServiceSubcategory, ''), "
            f"{service_subcategory_sql('ServiceCategory', by_service)}) AS ServiceSubcategory"
        ]
    else:
        candidate = f"coalesce(ServiceSubcategory, {by_service})"
        replace = [
            f"{service_subcategory_sql('ServiceCategory', candidate)} AS ServiceSubcategory",
            f"{focus_unit_sql('PricingUnit')} AS PricingUnit",
            f"{focus_unit_sql('ConsumedUnit')} AS ConsumedUnit",
        ]
    return (
        f"SELECT * REPLACE ({', '.join(replace)}), {sql_literal(source.name)} AS x_Source "
        f"FROM ({source.focus_sql(source.raw_table, days)})"
    )


def focus_basis_totals_sql(raw_table: str, days: tuple[date, date]) -> str:
    return f"""
        SELECT charge_date, BillingCurrency, BillingAccountId,
               {utc_month("BillingPeriodStart")} AS billing_period,
               count(*) AS "rows", sum(BilledCost) AS billed, sum(EffectiveCost) AS effective
        FROM {raw_table}
        WHERE charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'
        GROUP BY ALL ORDER BY ALL
    """


FOCUS_SOURCE_NAME = "focus"


def fact_sources() -> tuple[FactSource, ...]:
    """Every raw table feeding core.cost_facts, in the registry's order (``finops_assets.sources``)."""
    from finops_assets.sources import SOURCES

    return tuple(spec.fact_source for spec in SOURCES)

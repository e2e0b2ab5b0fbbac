"""The monthly report's figures, read from the warehouse (rendered by ``lib/report_html``).

Every figure comes from a table the pipeline already checked: spend per department and team
and top services from ``core.allocated_costs`` (the basis of ``finance.basis``, by charge month,
so the report agrees with the chargeback), untagged and unallocated cost from
``mart.untagged_spend``, commitments from ``mart.commitment_utilization``, open anomalies and
budget status from ``insights`` when those assets have run (``None`` otherwise: the page says
so), invoice status from ``finance.invoice_reconciliation``. Money stays ``Decimal`` and per
currency. Nothing here imports Dagster.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from finops_assets.lib import report_html as rh
from finops_assets.lib.month_close import period_days

TOP_SERVICES = 10


def money(value) -> Decimal | None:
    """Warehouse money as Decimal (marts keep DECIMAL; DOUBLE columns go through their text)."""
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def _previous(period: str) -> str:
    first = date.fromisoformat(f"{period}-01")
    return f"{first.year - 1}-12" if first.month == 1 else f"{first.year}-{first.month - 1:02d}"


def collect_figures(
    records: Callable[[str, list], list[dict]],
    exists: Callable[[str], bool],
    period: str,
    basis: str,
    state: str,
    footer: str = "",
) -> rh.ReportFigures:
    """``records(sql, params)`` runs a query on the warehouse, ``exists(table)`` says whether a
    table is there."""
    previous = _previous(period)
    first, last = period_days(period)
    prev_first, _ = period_days(previous)
    measure = '"EffectiveCost"' if basis == "EffectiveCost" else '"BilledCost"'
    month_of = "strftime(charge_date, '%Y-%m')"

    def by_month(group: str) -> list[dict]:
        return records(
            f"""SELECT {group}, BillingCurrency,
                       sum({measure}) FILTER (WHERE {month_of} = ?) AS cost,
                       sum({measure}) FILTER (WHERE {month_of} = ?) AS previous_cost
                FROM core.allocated_costs
                WHERE charge_date BETWEEN ? AND ?
                GROUP BY ALL HAVING count(*) FILTER (WHERE {month_of} = ?) > 0
                ORDER BY ALL""",
            [period, previous, prev_first, last, period],
        )

    spend = tuple(
        rh.SpendRow(r["department"], r["team"], r["BillingCurrency"], r["cost"], r["previous_cost"])
        for r in by_month("department, team")
    )
    services_rows = sorted(
        by_month("ProviderName, ServiceName"),
        key=lambda r: (r["BillingCurrency"], -r["cost"], r["ProviderName"], str(r["ServiceName"])),
    )
    services: list[rh.ServiceRow] = []
    per_currency: dict[str, int] = {}
    for r in services_rows:
        if per_currency.get(r["BillingCurrency"], 0) >= TOP_SERVICES:
            continue
        per_currency[r["BillingCurrency"]] = per_currency.get(r["BillingCurrency"], 0) + 1
        services.append(
            rh.ServiceRow(
                r["ProviderName"],
                r["ServiceName"] or "(no service)",
                r["BillingCurrency"],
                r["cost"],
                r["previous_cost"],
            )
        )
    prefix = "effective" if basis == "EffectiveCost" else "billed"
    untagged = tuple(
        rh.UntaggedRow(
            r["ProviderName"],
            r["BillingCurrency"],
            money(r["total"]),
            money(r["untagged"]) or Decimal(0),
            money(r["unallocated"]) or Decimal(0),
        )
        for r in (
            records(
                f"""SELECT ProviderName, BillingCurrency,
                           sum(total_{prefix}_cost) AS total,
                           sum(untagged_{prefix}_cost) AS untagged,
                           sum(unallocated_{prefix}_cost) AS unallocated
                    FROM mart.untagged_spend WHERE charge_date BETWEEN ? AND ?
                    GROUP BY ALL ORDER BY ALL""",
                [first, last],
            )
            if exists("mart.untagged_spend")
            else []
        )
    )
    commitments = tuple(
        rh.CommitmentRow(
            r["ProviderName"],
            r["commitment"],
            r["BillingCurrency"],
            money(r["amortized"]),
            money(r["used"]),
            money(r["unused"]),
        )
        for r in (
            records(
                """SELECT ProviderName,
                          coalesce(CommitmentDiscountName, CommitmentDiscountId) AS commitment,
                          BillingCurrency, sum(amortized_cost) AS amortized,
                          sum(used_cost) AS used, sum(unused_cost) AS unused
                   FROM mart.commitment_utilization WHERE charge_date BETWEEN ? AND ?
                   GROUP BY ALL ORDER BY ALL""",
                [first, last],
            )
            if exists("mart.commitment_utilization")
            else []
        )
    )
    anomalies = None
    if exists("insights.anomalies"):
        anomalies = tuple(
            rh.AnomalyRow(
                r["anomaly_id"],
                r["monitor"],
                r["series"],
                r["BillingCurrency"],
                r["kind"],
                r["status"],
                r["start_date"],
                r["end_date"],
                Decimal(str(round(r["impact"], 2))),
                r["root_causes"] or "",
            )
            for r in records(
                """SELECT * FROM insights.anomalies
                   WHERE status = 'open' AND start_date <= ? AND end_date >= ?
                   ORDER BY abs(impact) DESC LIMIT 25""",
                [last, first],
            )
        )
    budgets = None
    if exists("insights.budget_status"):

        def dec(value) -> Decimal | None:
            return None if value is None else Decimal(str(round(value, 2)))

        budgets = tuple(
            rh.BudgetRow(
                r["budget"],
                r["owner"] or "",
                r["BillingCurrency"],
                dec(r["amount"]),
                dec(r["actual"]),
                dec(r["actual_pct"]),
                dec(r["forecast"]),
                dec(r["forecast_pct"]),
                r["status"],
            )
            for r in records(
                """SELECT * FROM insights.budget_status WHERE charge_date BETWEEN ? AND ?
                   QUALIFY row_number() OVER (PARTITION BY budget, BillingCurrency
                                              ORDER BY charge_date DESC) = 1
                   ORDER BY budget, BillingCurrency""",
                [first, last],
            )
        )
    invoices = tuple(
        rh.InvoiceMatchRow(
            r["ProviderName"],
            r["BillingAccountId"],
            r["InvoiceId"] or "(none)",
            r["BillingCurrency"],
            r["invoice_pre_tax"],
            r["facts_pre_tax"],
            r["delta"],
            r["tolerance"],
            r["status"],
            r["explanation"] or "",
        )
        for r in (
            records(
                "SELECT * FROM finance.invoice_reconciliation WHERE billing_period = ? "
                "ORDER BY ProviderName, BillingAccountId, InvoiceId, BillingCurrency",
                [first],
            )
            if exists("finance.invoice_reconciliation")
            else []
        )
    )
    return rh.ReportFigures(
        period=period,
        state=state,
        basis=basis,
        previous_period=previous,
        spend=spend,
        services=tuple(services),
        untagged=untagged,
        commitments=commitments,
        anomalies=anomalies,
        budgets=budgets,
        invoices=invoices,
        footer=footer,
    )

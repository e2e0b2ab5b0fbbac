"""finance/invoice_reconciliation: the cost data against the invoices, per billing period.

Per provider, billing account, billing period, invoice and currency: Σ BilledCost of the cost rows
billed on that invoice, tax excluded, against the invoice's pre-tax total; tax against tax.

Matching. Cost rows that carry an InvoiceId (AWS once invoiced, Azure MCA, FOCUS producers) are
compared with that invoice. Rows without one (GCP, Azure EA, AWS before the bill is final) are
compared, per account and currency, with the period's invoices whose ids the cost data does not
name (``invoice_key = '*'``). The billing period is the cost data's own (``x_BillingPeriod``:
``bill/BillingPeriodStartDate``, ``invoice.month``, BillingPeriodStart), never the usage month, so
GCP usage billed on the next month's invoice is compared with that invoice.

Tolerance (FOCUS 1.4 Invoice Detail): ``MAX(100 × subunit, √rows × 0.5 × subunit)``, and at least
0.5% of the invoice (DOMAIN §11's reconciliation target). Status: ``match`` (equal to the cent),
``within rounding``, ``mismatch``, ``invoice open`` (the issuer may still change it), ``no invoice``
(cost billed on no known invoice), ``voided``.

Explanations. A delta is compared with the amounts a gap is usually made of (DOMAIN §10): rounding
rows, cost rows dated in another month (late usage, credits billed in another period), rows
delivered twice, tax billed as a charge. The smallest set of them that leaves less than the
tolerance unexplained is reported; what is left is ``unexplained_delta``. Nothing here imports
Dagster.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# ISO 4217 minor units that are not 2 (the rest are cents).
MINOR_UNITS = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
MIN_SHARE_TOLERANCE = Decimal("0.005")  # 0.5% of the invoice
STATUSES = ("match", "within rounding", "mismatch", "invoice open", "no invoice", "voided")
ACCOUNT_LEVEL = "*"


def subunit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-MINOR_UNITS.get(currency.upper(), 2))


def tolerance(currency: str, rows: int, invoice_amount: Decimal | None) -> Decimal:
    """FOCUS 1.4's rounding allowance, at least 0.5% of the invoice."""
    unit = subunit(currency)
    focus = max(100 * unit, Decimal(math.sqrt(max(rows, 0))) * Decimal("0.5") * unit)
    share = abs(invoice_amount or Decimal(0)) * MIN_SHARE_TOLERANCE
    return max(focus, share).quantize(Decimal("1e-6"))


def facts_by_invoice_sql(facts_table: str) -> str:
    """Per provider, account, currency and invoice key, the cost side of one billing period
    (parameter 1: ``YYYY-MM``), with the parts a delta is usually made of."""
    month = "strftime(charge_date, '%Y-%m')"
    rounding = (
        "ChargeCategory = 'Adjustment' AND lower(coalesce(ChargeDescription, '')) LIKE '%round%'"
    )
    return f"""
        SELECT ProviderName, BillingAccountId, BillingCurrency,
               coalesce(NULLIF(trim(InvoiceId), ''), '{ACCOUNT_LEVEL}') AS invoice_key,
               count(*) AS rows,
               coalesce(sum(BilledCost) FILTER (WHERE ChargeCategory <> 'Tax'), 0) AS facts_pre_tax,
               coalesce(sum(BilledCost) FILTER (WHERE ChargeCategory = 'Tax'), 0) AS facts_tax,
               coalesce(sum(BilledCost) FILTER (WHERE {rounding}), 0) AS rounding_cost,
               coalesce(sum(BilledCost) FILTER (
                   WHERE ChargeCategory NOT IN ('Tax', 'Credit') AND ChargeClass IS NULL
                     AND {month} < ?1), 0) AS late_usage_cost,
               coalesce(sum(BilledCost) FILTER (
                   WHERE (ChargeCategory = 'Credit' OR ChargeClass = 'Correction')
                     AND {month} <> ?1), 0) AS other_period_credit_cost,
               min(charge_date) AS first_charge_date, max(charge_date) AS last_charge_date
        FROM {facts_table}
        WHERE x_BillingPeriod = ?1
        GROUP BY ALL
    """


def duplicate_cost_sql(facts_table: str, focus_columns: Sequence[str]) -> str:
    """Σ BilledCost of the extra copies of charges that came from more than one dataset (an
    export loaded from two folders), per provider, account, currency and invoice key of one
    billing period (parameter 1). Run only when a delta is left to explain: it hashes rows."""
    charge = ", ".join(f'"{c}"' for c in focus_columns)
    return f"""
        WITH period AS (SELECT *, hash({charge}) AS charge_hash FROM {facts_table}
                        WHERE x_BillingPeriod = ?1),
        copies AS (
            SELECT charge_hash, x_Dataset, count(*) AS n FROM period GROUP BY ALL),
        twins AS (
            SELECT charge_hash, min(x_Dataset) AS first_dataset FROM copies
            GROUP BY charge_hash HAVING count(*) > 1)
        SELECT ProviderName, BillingAccountId, BillingCurrency,
               coalesce(NULLIF(trim(InvoiceId), ''), '{ACCOUNT_LEVEL}') AS invoice_key,
               sum(BilledCost) AS duplicate_cost, count(*) AS duplicate_rows,
               string_agg(DISTINCT x_Dataset, ', ' ORDER BY x_Dataset) AS duplicate_datasets
        FROM period JOIN twins USING (charge_hash)
        WHERE period.x_Dataset <> twins.first_dataset
        GROUP BY ALL
    """


@dataclass(frozen=True)
class Line:
    """One row of finance.invoice_reconciliation."""

    ProviderName: str
    BillingAccountId: str
    billing_period: date
    InvoiceId: str  # the invoice, several ids joined by ", " at account level, or ""
    BillingCurrency: str
    invoice_status: str | None
    rows: int
    facts_pre_tax: Decimal
    invoice_pre_tax: Decimal | None
    delta: Decimal | None
    facts_tax: Decimal
    invoice_tax: Decimal | None
    tax_delta: Decimal | None
    tolerance: Decimal
    status: str
    explained_delta: Decimal
    unexplained_delta: Decimal | None
    explanation: str
    rounding_cost: Decimal
    late_usage_cost: Decimal
    other_period_credit_cost: Decimal
    duplicate_cost: Decimal
    invoice_sources: str


def _money(value: Decimal, currency: str) -> str:
    return f"{value:+,.2f} {currency}"


def explain(delta: Decimal, allowed: Decimal, parts: Mapping[str, Decimal]) -> tuple[Decimal, str]:
    """The smallest set of known parts whose sum leaves |delta − sum| within ``allowed``: each
    part may count either way (late usage can be on this invoice and not the other, or the
    reverse). Returns (explained amount, text); (0, '') when no set explains the delta."""
    candidates = [(name, amount) for name, amount in parts.items() if amount]
    for size in range(1, len(candidates) + 1):
        best = None
        for subset in itertools.combinations(candidates, size):
            for signs in itertools.product((1, -1), repeat=size):
                total = sum((s * a for s, (_, a) in zip(signs, subset, strict=True)), Decimal(0))
                rest = abs(delta - total)
                if rest <= allowed and (best is None or rest < best[0]):
                    best = (rest, total, subset, signs)
        if best is not None:
            _, total, subset, signs = best
            text = "; ".join(
                f"{name} {'' if s > 0 else 'missing '}{abs(a):,.2f}"
                for s, (name, a) in zip(signs, subset, strict=True)
            )
            return total, text
    return Decimal(0), ""


def reconcile(
    period: date,
    facts: Sequence[Mapping],
    invoices: Sequence[Mapping],
    duplicates: Sequence[Mapping] = (),
) -> list[Line]:
    """Pair the cost side (``facts_by_invoice_sql`` rows) with the period's invoices
    (finance.invoices rows) and judge each pair."""
    named = {
        (f["ProviderName"], f["BillingAccountId"], f["BillingCurrency"], f["invoice_key"])
        for f in facts
        if f["invoice_key"] != ACCOUNT_LEVEL
    }
    by_key: dict[tuple, list[Mapping]] = {}
    voided = []
    for inv in invoices:
        key = (
            inv["ProviderName"],
            inv["BillingAccountId"],
            inv["BillingCurrency"],
            inv["InvoiceId"],
        )
        if inv["status"] == "voided":
            voided.append(inv)
            continue
        if key not in named:
            key = (*key[:3], ACCOUNT_LEVEL)
        by_key.setdefault(key, []).append(inv)
    fact_by_key = {
        (f["ProviderName"], f["BillingAccountId"], f["BillingCurrency"], f["invoice_key"]): f
        for f in facts
    }
    dup_by_key = {
        (d["ProviderName"], d["BillingAccountId"], d["BillingCurrency"], d["invoice_key"]): d
        for d in duplicates
    }
    zero = Decimal(0)
    lines = []
    for key in sorted(set(fact_by_key) | set(by_key)):
        provider, account, currency, invoice_key = key
        fact = fact_by_key.get(key, {})
        invs = by_key.get(key, [])
        rows = int(fact.get("rows", 0))
        facts_pre_tax = Decimal(fact.get("facts_pre_tax", zero))
        facts_tax = Decimal(fact.get("facts_tax", zero))
        invoice_pre_tax = sum((Decimal(i["pre_tax_amount"]) for i in invs), zero) if invs else None
        invoice_tax = sum((Decimal(i["tax_amount"]) for i in invs), zero) if invs else None
        allowed = tolerance(currency, rows, invoice_pre_tax)
        parts = {
            "rounding rows": Decimal(fact.get("rounding_cost", zero)),
            "late usage (used in an earlier month)": Decimal(fact.get("late_usage_cost", zero)),
            "credits dated in another period": Decimal(fact.get("other_period_credit_cost", zero)),
            "rows delivered twice": Decimal(dup_by_key.get(key, {}).get("duplicate_cost", zero)),
        }
        if invs and invoice_tax == 0 and facts_tax:
            parts["tax the invoice includes in its subtotal"] = -facts_tax
        delta = None if invoice_pre_tax is None else facts_pre_tax - invoice_pre_tax
        statuses = {i["status"] for i in invs}
        explained, explanation = zero, ""
        if delta is None:
            status = "no invoice"
        elif "open" in statuses:
            status = "invoice open"
        elif abs(delta) < subunit(currency) / 2:
            status = "match"
        elif abs(delta) <= allowed:
            status = "within rounding"
        else:
            status = "mismatch"
        if delta is not None and status in ("mismatch", "invoice open", "within rounding"):
            explained, explanation = explain(delta, subunit(currency) / 2, parts)
            if not explanation and status == "mismatch":
                explanation = "unexplained"
        if status == "no invoice":
            explanation = (
                "no invoice for this account and month yet: add it to invoices.csv, deliver the "
                "FOCUS Invoice Detail export, or wait for the issuer"
            )
        ids = sorted({i["InvoiceId"] for i in invs})
        lines.append(
            Line(
                ProviderName=provider,
                BillingAccountId=account,
                billing_period=period,
                InvoiceId=invoice_key if invoice_key != ACCOUNT_LEVEL else ", ".join(ids),
                BillingCurrency=currency,
                invoice_status=", ".join(sorted(statuses)) or None,
                rows=rows,
                facts_pre_tax=facts_pre_tax,
                invoice_pre_tax=invoice_pre_tax,
                delta=delta,
                facts_tax=facts_tax,
                invoice_tax=invoice_tax,
                tax_delta=None if invoice_tax is None else facts_tax - invoice_tax,
                tolerance=allowed,
                status=status,
                explained_delta=explained,
                unexplained_delta=None if delta is None else delta - explained,
                explanation=explanation,
                rounding_cost=parts["rounding rows"],
                late_usage_cost=parts["late usage (used in an earlier month)"],
                other_period_credit_cost=parts["credits dated in another period"],
                duplicate_cost=parts["rows delivered twice"],
                invoice_sources=", ".join(sorted({i["source"] for i in invs})),
            )
        )
    for inv in voided:
        lines.append(
            Line(
                ProviderName=inv["ProviderName"],
                BillingAccountId=inv["BillingAccountId"],
                billing_period=period,
                InvoiceId=inv["InvoiceId"],
                BillingCurrency=inv["BillingCurrency"],
                invoice_status="voided",
                rows=0,
                facts_pre_tax=zero,
                invoice_pre_tax=Decimal(inv["pre_tax_amount"]),
                delta=None,
                facts_tax=zero,
                invoice_tax=Decimal(inv["tax_amount"]),
                tax_delta=None,
                tolerance=zero,
                status="voided",
                explained_delta=zero,
                unexplained_delta=None,
                explanation="voided by the issuer: not compared",
                rounding_cost=zero,
                late_usage_cost=zero,
                other_period_credit_cost=zero,
                duplicate_cost=zero,
                invoice_sources=inv["source"],
            )
        )
    return lines


def failing_lines(lines: Sequence[Line]) -> list[Line]:
    """Issued invoices outside tolerance: what blocks the month close."""
    return [
        line
        for line in lines
        if line.status == "mismatch" and line.invoice_status and "issued" in line.invoice_status
    ]


def describe_failure(line: Line) -> str:
    unexplained = line.unexplained_delta if line.unexplained_delta is not None else line.delta
    return (
        f"{line.ProviderName} account {line.BillingAccountId} invoice {line.InvoiceId or '?'} "
        f"({line.billing_period:%Y-%m}): cost data {line.facts_pre_tax:,.2f} vs invoice "
        f"{line.invoice_pre_tax:,.2f} {line.BillingCurrency} before tax, delta "
        f"{_money(line.delta, line.BillingCurrency)} (tolerance {line.tolerance:,.2f}"
        + (
            f"; explained: {line.explanation}"
            if line.explanation not in ("", "unexplained")
            else ""
        )
        + f"; unexplained {_money(unexplained, line.BillingCurrency)})"
    )

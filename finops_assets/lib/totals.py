"""Money totals per day and currency, and their comparison to the cent.

Totals are never summed across currencies: every figure here is keyed by (day, currency).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from finops_assets.lib.warehouse import quote_identifier as q

CENT = Decimal("0.005")  # a difference that rounds to a whole cent is a real difference


@dataclass(frozen=True)
class Totals:
    rows: int
    billed: Decimal
    effective: Decimal


def totals_sql(
    table: str, days: tuple[date, date], billed: str, effective: str, rows: str = "count(*)"
) -> str:
    schema, name = table.split(".")
    return f"""
        SELECT charge_date, BillingCurrency, {rows}, sum({q(billed)}), sum({q(effective)})
        FROM {q(schema)}.{q(name)}
        WHERE charge_date BETWEEN DATE '{days[0].isoformat()}' AND DATE '{days[1].isoformat()}'
        GROUP BY ALL ORDER BY ALL
    """


def to_totals(rows: list[tuple]) -> dict[tuple[date, str], Totals]:
    return {
        (day, currency): Totals(int(n), Decimal(b or 0), Decimal(e or 0))
        for day, currency, n, b, e in rows
    }


def compare_totals(
    expected: dict[tuple, Totals],
    actual: dict[tuple, Totals],
    key_names: tuple[str, ...] = ("charge_date", "currency"),
) -> list[dict]:
    """Every key (by default (day, currency)) whose billed or effective total differs by a cent
    or more."""
    mismatches = []
    zero = Totals(0, Decimal(0), Decimal(0))
    for key in sorted(set(expected) | set(actual), key=lambda k: tuple(str(v) for v in k)):
        want, got = expected.get(key, zero), actual.get(key, zero)
        for measure in ("billed", "effective"):
            difference = getattr(got, measure) - getattr(want, measure)
            if abs(difference) >= CENT:
                mismatches.append(
                    {
                        **{
                            name: value.isoformat() if isinstance(value, date) else str(value)
                            for name, value in zip(key_names, key, strict=True)
                        },
                        "measure": measure,
                        "expected": str(getattr(want, measure)),
                        "actual": str(getattr(got, measure)),
                        "difference": str(difference),
                    }
                )
    return mismatches


def to_keyed_totals(rows: list[tuple]) -> dict[tuple, Totals]:
    """Rows of (key..., rows, billed, effective) keyed by their leading columns."""
    return {
        tuple(row[:-3]): Totals(int(row[-3]), Decimal(row[-2] or 0), Decimal(row[-1] or 0))
        for row in rows
    }


def per_currency(totals: dict[tuple[date, str], Totals]) -> dict[str, Totals]:
    merged: dict[str, Totals] = {}
    for (_, currency), t in totals.items():
        m = merged.get(currency, Totals(0, Decimal(0), Decimal(0)))
        merged[currency] = Totals(m.rows + t.rows, m.billed + t.billed, m.effective + t.effective)
    return merged

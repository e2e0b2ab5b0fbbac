"""Rows a delivery carries outside its billing period, the same rule for every source that has
one (``rules.deliveries.rows_outside_period``), without Dagster.

A delivery of billing period P is read by the loads of P and of the ``correction_months`` months
before it (late corrections are billed in a later period but dated in the month they correct).
With mode ``load`` the loads also read the deliveries of the months before, so rows dated up to
``correction_months`` after P land in their own days. Any other row would never be placed in a
day: it is counted per file with its money, and fails the load (``fail``, the default) or is
left out with a warning and metadata (``drop``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from finops_assets.lib.deliveries import DeliveryError


@dataclass(frozen=True)
class MonthRows:
    """A file's rows of one charge month and currency."""

    month: str | None  # YYYY-MM of the charge start (UTC); None when the row has none
    currency: str | None
    rows: int
    amount: Decimal
    first: date | None
    last: date | None


@dataclass
class OutsideRows:
    """A file's rows that no load places in a day: dated outside the billing period and not
    within the corrections window."""

    key: str
    period: str
    rows: int = 0
    amounts: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    first: date | None = None
    last: date | None = None

    def money(self) -> str:
        return "; ".join(f"{c} {v:.2f}" for c, v in sorted(self.amounts.items()))


def months_after(period: str, month: str) -> int:
    return (int(month[:4]) * 12 + int(month[5:7])) - (int(period[:4]) * 12 + int(period[5:7]))


def placed(period: str, month: str | None, mode: str, correction_months: int) -> bool:
    """Whether a load reads a delivery of ``period`` for ``month`` (its own, or as corrections)."""
    if month is None:
        return False
    offset = months_after(period, month)
    return (-correction_months <= offset <= 0) or (
        mode == "load" and 0 < offset <= correction_months
    )


def outside_rows(
    rows_by_file: Mapping[str, Iterable[MonthRows]], period: str, mode: str, correction_months: int
) -> list[OutsideRows]:
    """Per file, the dated rows of a ``period`` delivery that no load places in a day."""
    outside = []
    for key, rows in rows_by_file.items():
        found = OutsideRows(key, period)
        for r in rows:
            if r.month is None or placed(period, r.month, mode, correction_months):
                continue
            found.rows += r.rows
            found.amounts[r.currency or "(no currency)"] += Decimal(r.amount)
            found.first = min(d for d in (found.first, r.first) if d is not None)
            found.last = max(d for d in (found.last, r.last) if d is not None)
        if found.rows:
            outside.append(found)
    return outside


def money_by_currency(outside: Iterable[OutsideRows]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for found in outside:
        for currency, amount in found.amounts.items():
            totals[currency] += amount
    return dict(totals)


def money_text(outside: Iterable[OutsideRows]) -> str:
    """Σ per currency of the rows left out, as the run metadata shows it (``USD 5.00; EUR 1.00``)."""
    return "; ".join(f"{c} {v:.2f}" for c, v in sorted(money_by_currency(outside).items()))


def dropped_message(found: OutsideRows, where: str, measure: str) -> str:
    """The run-log warning for one file's rows left out by ``rows_outside_period = drop``."""
    return (
        f"{where}: dropped {found.rows} row(s) of billing period {found.period} dated "
        f"{found.first}..{found.last} (outside the period), Σ {measure} {found.money()} "
        "(rules.deliveries.rows_outside_period = drop)"
    )


ROWS_OUTSIDE_PERIOD_FIX = (
    "Fix: set deliveries.rows_outside_period to load (rows dated up to correction_months after "
    "their period land in their own days) or drop (left out, counted in the run's metadata) in "
    "the rules YAML (FINOPS_CONFIG), or re-deliver the {what}; nothing was written."
)


def outside_period_error(
    outside: list[OutsideRows],
    describe: Mapping[str, str],
    mode: str,
    correction_months: int,
    *,
    measure: str = "unblended",
    what: str = "report",
    window: str | None = None,
    fix: str | None = None,
) -> DeliveryError:
    """The failure naming every file, its rows' billing period, dates and money, and the fix."""
    files = "; ".join(
        f"{describe.get(o.key, o.key)}: {o.rows} row(s) of billing period {o.period} dated "
        f"{o.first}..{o.last}, Σ {measure} {o.money()}"
        for o in outside
    )
    window = window or (
        f"within correction_months = {correction_months} month(s) before or after their period"
        if mode == "load"
        else f"in the correction_months = {correction_months} month(s) before their period"
    )
    fix = fix or (
        "Fix: raise correction_months, or set deliveries.rows_outside_period to drop in the "
        "rules YAML (FINOPS_CONFIG); nothing was written."
        if mode == "load"
        else ROWS_OUTSIDE_PERIOD_FIX.format(what=what)
    )
    return DeliveryError(
        f"Rows dated outside their {what}'s billing period (rules.deliveries."
        f"rows_outside_period = {mode}): {files}. Only rows dated {window} are loaded into "
        f"their own days; these would be lost. {fix}"
    )

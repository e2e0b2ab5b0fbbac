"""finance/chargeback: what each cost center, team and department is charged per billing period.

One line per billing period, ``cost_center``, ``team``, ``department``, ``gl_account``,
``ProviderName``, ``ChargeCategory`` and ``BillingCurrency`` of ``core.allocated_costs``, with:

* ``amount``: Σ of the basis column (``finance.basis``: ``EffectiveCost`` by default, or
  ``BilledCost``), split into four parts that add up to it exactly;
* ``row_count`` and ``allocation_rules``: the distinct ``x_AllocationRule: x_AllocationDetail``
  pairs behind the line (sorted, ``'; '``-joined, the first ``MAX_LISTED_RULES`` then
  ``(+N more)``; ``allocation_rule_count`` has the full count), so a finance reviewer can trace
  every line to the allocation rules that made it.

Parts. Every row lands in exactly one part, the first that applies (``PART_PRECEDENCE``):

1. ``credit_amount``: ``ChargeCategory = 'Credit'``. A credit is reported as a credit whatever
   allocated it (a support credit split by a shared pool, a credit on a commitment), because
   finance books credits against their own line and wants to see them, not net them away.
2. ``commitment_amount``: a row with a ``CommitmentDiscountId`` or allocated by the
   ``commitment_pool`` rule: amortized commitment cost on covered usage, unused commitments kept
   in the commitments pool, and (BilledCost basis) the commitment purchases themselves.
3. ``shared_amount``: ``x_AllocationRule = 'shared_pool'`` (a team's share of a shared pool).
4. ``direct_amount``: everything else: ``resource_tag``, ``inherited`` and ``default_pool``
   (including a pool's cost that had nobody to share it with that day, which allocation records
   as ``default_pool``), and defensively any row without a known rule, so no cost is lost.

The parts are sums of disjoint row sets whose union is every row, so direct + shared +
commitment + credit = amount to the last digit of DECIMAL(38, 12), not merely to the cent.

Billing period. The caller picks the period column (``period_expression``): with the
``EffectiveCost`` basis it is the charge month, ``strftime(charge_date, '%Y-%m')``, because
amortized cost is recognised in the month the commitment or usage was consumed (accrual); with
``BilledCost`` it is ``x_BillingPeriod``, because billed cost belongs to the month whose invoice
carries it (usage of 31 December billed on January's invoice is January's). The two bases
therefore put a late row in different months, on purpose.

Parameters (DuckDB, numbered): ``?1`` is always the period ``'YYYY-MM'``. When the period column
is the charge month, ``?2`` and ``?3`` are the month's first and last day and the query adds
``charge_date BETWEEN ?2 AND ?3``: it selects the same rows as the month filter but lets DuckDB
skip row groups by their zone maps instead of formatting every row's date. Dates are passed as
parameters rather than spliced into the SQL, so the query text is the same for every period.
``period_params`` (or ``ChargebackQuery.params``) builds the list; there is no other convention.

GL accounts. ``finance.gl_accounts`` rules become one SQL ``CASE``: the first rule whose every
listed column holds one of its values (compared exactly; NULL never matches) gives the account,
a rule without a match is a catch-all, and a charge no rule takes is kept as ``'__unmapped__'``,
never dropped, so the journal still balances and the gap is visible.

Conservation. ``conservation_sql`` sums the basis of the period's source rows per currency and
``conservation_problems`` compares it with the chargeback's totals per currency (never across
currencies). Everything runs in one GROUP BY pass over the table with FILTER clauses; nothing is
computed per row in Python. Nothing here imports Dagster.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from finops_assets.lib.loading import sql_literal
from finops_assets.lib.rules import MATCHABLE_COLUMNS, GlAccountRule
from finops_assets.lib.warehouse import quote_identifier as q

Basis = Literal["EffectiveCost", "BilledCost"]
BASES: tuple[Basis, ...] = ("EffectiveCost", "BilledCost")
UNMAPPED = "__unmapped__"
MONEY = "DECIMAL(38, 12)"
# Money is conserved to the cent per currency; this leaves room only for decimal noise.
CONSERVATION_TOLERANCE = Decimal("0.000001")
MAX_LISTED_RULES = 5

BILLING_PERIOD = "x_BillingPeriod"
CHARGE_MONTH = "strftime(charge_date, '%Y-%m')"

# The line's key, in output order (billing_period first).
LINE_KEYS = (
    "cost_center",
    "team",
    "department",
    "gl_account",
    "ProviderName",
    "ChargeCategory",
    "BillingCurrency",
)
PART_PRECEDENCE = ("credit_amount", "commitment_amount", "shared_amount", "direct_amount")
LINE_COLUMNS = (
    "billing_period",
    *LINE_KEYS,
    "amount",
    "direct_amount",
    "shared_amount",
    "commitment_amount",
    "credit_amount",
    "row_count",
    "allocation_rules",
    "allocation_rule_count",
)

# Columns of core.allocated_costs a GL rule may match on: the shared-pool match columns, the
# charge's class and currency, its source, the owner dimensions and the allocation lineage.
GL_MATCH_COLUMNS = (
    *MATCHABLE_COLUMNS,
    "ChargeClass",
    "BillingCurrency",
    "x_Source",
    "department",
    "team",
    "cost_center",
    "environment",
    "x_AllocationRule",
    "x_SharedPool",
)

_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
# Part codes of the per-row CASE (small integers compare faster than text on millions of rows).
_CREDIT, _COMMITMENT, _SHARED, _DIRECT = 1, 2, 3, 4


def _check_basis(basis: str) -> Basis:
    if basis not in BASES:
        raise ValueError(f"unknown chargeback basis {basis!r}; use one of {', '.join(BASES)}")
    return basis  # type: ignore[return-value]


def period_expression(basis: str) -> str:
    """The SQL period column for ``basis``: the charge month for EffectiveCost (amortized cost
    is recognised in the month it is used), x_BillingPeriod for BilledCost (billed cost belongs
    to the month it is invoiced)."""
    return CHARGE_MONTH if _check_basis(basis) == "EffectiveCost" else BILLING_PERIOD


def _uses_charge_range(period_column: str) -> bool:
    return " ".join(period_column.split()) == CHARGE_MONTH


def period_params(period: str, period_column: str) -> list[str | date]:
    """The parameters of ``chargeback_sql`` / ``conservation_sql`` for ``period`` ('YYYY-MM'):
    [period], plus the month's first and last day when ``period_column`` is the charge month."""
    if not isinstance(period, str) or not _PERIOD.fullmatch(period):
        raise ValueError(f"billing period {period!r} must be 'YYYY-MM', e.g. '2025-01'")
    if not _uses_charge_range(period_column):
        return [period]
    year, month = int(period[:4]), int(period[5:])
    first = date(year, month, 1)
    last = date(year, month, calendar.monthrange(year, month)[1])
    return [period, first, last]


def _where(period_column: str) -> str:
    condition = f"({period_column}) = CAST(?1 AS VARCHAR)"
    if _uses_charge_range(period_column):
        condition = f"charge_date BETWEEN CAST(?2 AS DATE) AND CAST(?3 AS DATE) AND {condition}"
    return condition


def gl_account_sql(gl_rules: Sequence[GlAccountRule]) -> str:
    """The GL account of a row as a SQL expression (first matching rule wins, else
    ``'__unmapped__'``). Unknown columns are refused here, before any SQL runs: a typo would
    otherwise silently leave every charge unmapped or fail with an opaque binder error."""
    whens = []
    for index, rule in enumerate(gl_rules):
        conditions = []
        for column, values in rule.match.items():
            if column not in GL_MATCH_COLUMNS:
                raise ValueError(
                    f"gl_accounts[{index}] (account {rule.account!r}): cannot match on column "
                    f"{column!r}; use one of {', '.join(GL_MATCH_COLUMNS)}"
                )
            if values:
                listed = ", ".join(sql_literal(str(v)) for v in values)
                conditions.append(f"{q(column)} IN ({listed})")
            else:
                conditions.append("false")  # no allowed value: the rule cannot match
        condition = " AND ".join(conditions) if conditions else "true"
        whens.append(f"WHEN {condition} THEN {sql_literal(rule.account)}")
    if not whens:
        return f"CAST({sql_literal(UNMAPPED)} AS VARCHAR)"
    return f"CAST(CASE {' '.join(whens)} ELSE {sql_literal(UNMAPPED)} END AS VARCHAR)"


def _part_sql() -> str:
    """The part code of a row: the first of PART_PRECEDENCE that applies."""
    return f"""CASE WHEN ChargeCategory = 'Credit' THEN {_CREDIT}
                    WHEN CommitmentDiscountId IS NOT NULL
                         OR x_AllocationRule = 'commitment_pool' THEN {_COMMITMENT}
                    WHEN x_AllocationRule = 'shared_pool' THEN {_SHARED}
                    ELSE {_DIRECT} END"""


def _money_sum(expression: str) -> str:
    return f"CAST(coalesce(sum({expression}), 0) AS {MONEY})"


def chargeback_sql(
    allocated_table: str, basis: str, gl_rules: Sequence[GlAccountRule], period_column: str
) -> str:
    """The chargeback lines of one billing period (parameters: ``period_params``).

    ``period_column`` is inserted verbatim: pass ``period_expression(basis)`` (code, never
    configuration or user input). Two aggregations: the first is the single pass over the rows,
    per line and allocation rule; the second folds the (few) rules of a line into its text, which
    is far cheaper than a DISTINCT aggregate over millions of rows.
    """
    measure = q(_check_basis(basis))
    keys = ", ".join(q(k) for k in LINE_KEYS)
    parts = {
        "direct_amount": _DIRECT,
        "shared_amount": _SHARED,
        "commitment_amount": _COMMITMENT,
        "credit_amount": _CREDIT,
    }
    inner_parts = ",\n               ".join(
        f"CAST(sum(_measure) FILTER (WHERE _part = {code}) AS {MONEY}) AS {name}"
        for name, code in parts.items()
    )
    outer_parts = ",\n           ".join(f"{_money_sum(name)} AS {name}" for name in parts)
    rule_text = (
        "coalesce(x_AllocationRule, '(no rule)') || coalesce(': ' || x_AllocationDetail, '')"
    )
    return f"""
    WITH by_rule AS (
        SELECT {keys}, allocation_rule,
               count(*) AS row_count,
               CAST(sum(_measure) AS {MONEY}) AS amount,
               {inner_parts}
        FROM (
            SELECT cost_center, team, department,
                   {gl_account_sql(gl_rules)} AS gl_account,
                   ProviderName, ChargeCategory, BillingCurrency,
                   {rule_text} AS allocation_rule,
                   {measure} AS _measure,
                   {_part_sql()} AS _part
            FROM {allocated_table}
            WHERE {_where(period_column)}
        )
        GROUP BY {keys}, allocation_rule
    ),
    lines AS (
        SELECT {keys},
               {_money_sum("amount")} AS amount,
               {outer_parts},
               CAST(sum(row_count) AS BIGINT) AS row_count,
               list_sort(list(allocation_rule)) AS _rules
        FROM by_rule
        GROUP BY {keys}
    )
    SELECT CAST(?1 AS VARCHAR) AS billing_period, {keys},
           amount, direct_amount, shared_amount, commitment_amount, credit_amount, row_count,
           array_to_string(list_slice(_rules, 1, {MAX_LISTED_RULES}), '; ')
               || CASE WHEN len(_rules) > {MAX_LISTED_RULES}
                       THEN '; (+' || (len(_rules) - {MAX_LISTED_RULES}) || ' more)'
                       ELSE '' END AS allocation_rules,
           CAST(len(_rules) AS BIGINT) AS allocation_rule_count
    FROM lines
    ORDER BY {keys}
    """


def conservation_sql(allocated_table: str, basis: str, period_column: str) -> str:
    """Σ basis and row count per currency of the period's source rows (parameters:
    ``period_params``), with the same filter as ``chargeback_sql``: what the lines must add up
    to, currency by currency."""
    measure = q(_check_basis(basis))
    return f"""
    SELECT BillingCurrency, {_money_sum(measure)} AS amount, count(*) AS row_count
    FROM {allocated_table}
    WHERE {_where(period_column)}
    GROUP BY BillingCurrency
    ORDER BY BillingCurrency
    """


def conservation_problems(
    chargeback_totals: Mapping[str, Decimal], source_totals: Mapping[str, Decimal]
) -> list[str]:
    """One message per currency whose chargeback total differs from the source total by more
    than CONSERVATION_TOLERANCE (a currency missing on one side counts as 0 there). Currencies
    are compared one by one and never added together: 1 USD and 1 EUR are not 2 of anything."""
    problems = []
    currencies = sorted({*chargeback_totals, *source_totals}, key=lambda c: (c is None, str(c)))
    for currency in currencies:
        charged = Decimal(chargeback_totals.get(currency, 0))
        source = Decimal(source_totals.get(currency, 0))
        difference = charged - source
        if abs(difference) > CONSERVATION_TOLERANCE:
            problems.append(
                f"{currency}: the chargeback lines total {charged:f} but the period's allocated "
                f"rows total {source:f} (difference {difference:+f}); a line was dropped or "
                "counted twice"
            )
    return problems


@dataclass(frozen=True)
class ChargebackQuery:
    """The chargeback of one table and basis: its SQL and the parameters for a period, so an
    asset cannot pair the charge-month query with the billing-period parameters by mistake."""

    allocated_table: str
    basis: Basis = "EffectiveCost"
    gl_rules: tuple[GlAccountRule, ...] = ()

    def __post_init__(self) -> None:
        _check_basis(self.basis)
        gl_account_sql(self.gl_rules)  # refuse unknown GL columns when the query is built

    @property
    def period_column(self) -> str:
        return period_expression(self.basis)

    def sql(self) -> str:
        return chargeback_sql(self.allocated_table, self.basis, self.gl_rules, self.period_column)

    def conservation_sql(self) -> str:
        return conservation_sql(self.allocated_table, self.basis, self.period_column)

    def params(self, period: str) -> list[str | date]:
        return period_params(period, self.period_column)

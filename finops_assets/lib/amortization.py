"""core.amortized_costs: commitment and prepaid purchases on the days they pay for, as DuckDB SQL.

Why this stage exists: a cost report by day should show what each day consumed, not when the
invoice fell. Most sources already amortize commitments (FOCUS EffectiveCost: 0 on the purchase,
the amortized rate on covered usage, "Unused" rows for the waste), some do not (EffectiveCost =
BilledCost on an All Upfront purchase), and some leave part of the story on the purchase row
(AWS CUR keeps a reservation's unused cost on its RIFee row). The rules, and why:

a) What the provider amortized is kept as it is, only classified. The provider knows the
   commitment's hourly rate and coverage; re-deriving it would be a guess.
b) A purchase the source did not amortize (``ChargeCategory = 'Purchase'``, EffectiveCost =
   BilledCost <> 0, a charge period of at least ``min_term_days`` UTC days) is spread evenly per
   day over its charge period when ``spread_purchases: daily``. The purchase row stays (the
   invoice still shows it: BilledCost unchanged) with EffectiveCost 0; one row per term day
   carries the day's share as EffectiveCost with BilledCost 0, so Σ BilledCost still matches the
   invoice and Σ EffectiveCost over the term matches the purchase. Shares are cent-exact: with
   U = floor(P * 100) cents over N days every day gets floor(U / N) cents, the first
   U - N * floor(U / N) days one cent more, and day 1 the sub-cent rest P - U / 100. floor (not
   truncation) keeps the formulas exact for refunds (negative P). Purchases are read at any
   charge date, so a purchase made before the window still spreads into it. The schedule is one
   SQL definition (``spread_schedule_sql``) shared by the asset and its checks.
c) Unused commitment cost is waste somebody has to own. ``central`` keeps it on the Unused rows
   and flags them for the commitments pool (``x_CommitmentPool``); ``redistribute`` moves it, per
   commitment, day and currency, to the commitment's Used rows in proportion to their used
   amount (largest-remainder cents, so the key's total is unchanged to the cent). A key with no
   Used row (or no positive used amount) keeps its Unused rows in the pool: there is nobody to
   charge.

Every row gets ``x_AmortizationClass`` ('Principal' / 'Amortized Charge', the names Microsoft
FinOps hubs use so List/Contracted savings sums can leave Principal rows out), ``x_AmortizedBy``
('provider' / 'platform'), ``x_SourceEffectiveCost`` (EffectiveCost as delivered, for audits and
for utilization, which must not be inflated by redistribution), ``x_CommitmentPool`` and
``x_AmortizedFromDate`` (the purchase day of a spread row). ``x_CommitmentPool`` marks cost that
belongs to the commitments pool because no consumer is known: Unused rows (unless redistributed),
spread rows of commitment purchases, and commitment purchase rows that still carry
EffectiveCost (AWS RIFee's unused part, or a short fee the source did not amortize).

Money is conserved: per day and currency Σ BilledCost is unchanged, and Σ EffectiveCost changes
only by what spreading moved (``amortization_conservation_sql`` proves it per partition).

Dates are the session's dates of the UTC timestamps: the warehouse pins ``TimeZone = 'UTC'``,
the same setting ``charge_date`` is derived with, so a term day and a partition day agree.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from finops_assets.lib.focus import MONEY, QUANTITY
from finops_assets.lib.rules import AmortizationRules
from finops_assets.lib.warehouse import utc_date

PRINCIPAL = "Principal"
AMORTIZED_CHARGE = "Amortized Charge"
BY_PROVIDER = "provider"
BY_PLATFORM = "platform"
_ONE_DAY = timedelta(days=1)

# Columns core.amortized_costs adds to the core.cost_facts columns, with their DuckDB types.
AMORTIZATION_COLUMNS: dict[str, str] = {
    "x_AmortizationClass": "VARCHAR",
    "x_AmortizedBy": "VARCHAR",
    "x_SourceEffectiveCost": MONEY,
    "x_CommitmentPool": "BOOLEAN",
    "x_AmortizedFromDate": "DATE",
}

# The UTC days a half-open charge period touches: from the start's date to the date of the last
# instant before the end (2023-01-01T00:00 -> 2024-01-01T00:00 is 365 days).
# (UTC dates from the epoch: lib/warehouse.py's utc_date, one microsecond before the end.)
TERM_START = utc_date("ChargePeriodStart")
TERM_END = "CAST(make_timestamp(epoch_us(ChargePeriodEnd) - 1) AS DATE)"
TERM_DAYS = f"({TERM_END} - {TERM_START} + 1)"

# Helper columns of the intermediate relations; never in an output.
_SPREAD_HELPERS = (
    "_amortization_term_start",
    "_amortization_term_days",
    "_amortization_cents",
    "_amortization_extra",
    "_amortization_base",
    "_amortization_day",
    "_amortization_spread_date",
    "_amortization_amount",
)
_REDISTRIBUTION_HELPERS = (
    "_amortization_row_hash",
    "_amortization_weight",
    "_amortization_unused",
    "_amortization_weight_total",
    "_amortization_moves",
    "_amortization_unused_cents",
    "_amortization_base",
    "_amortization_remainder",
    "_amortization_rest_cents",
    "_amortization_rank",
    "_amortization_heaviest",
    "_amortization_share",
)

_IS_COMMITMENT_PURCHASE = "(ChargeCategory = 'Purchase' AND CommitmentDiscountId IS NOT NULL)"
# Rows carrying a commitment's amortized cost (Used) or waste (Unused). Purchases never are,
# even if a producer filled their status: they go through the purchase rules.
_IS_COMMITMENT_USAGE = (
    "coalesce(CommitmentDiscountId IS NOT NULL AND ChargeCategory IS DISTINCT FROM 'Purchase' "
    "AND CommitmentDiscountStatus IN ('Used', 'Unused'), false)"
)


def _date(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def _window(days: tuple[date, date]) -> str:
    return f"charge_date BETWEEN {_date(days[0])} AND {_date(days[1])}"


def _cents_to_money(cents: str) -> str:
    """An integer number of cents as an exact DECIMAL amount (no DOUBLE on the way)."""
    return f"(CAST({cents} AS DECIMAL(36, 0)) * 0.01)"


def purchase_is_spread_sql(rules: AmortizationRules) -> str:
    """Boolean SQL over a facts row: the platform spreads this purchase over its term.

    EffectiveCost = BilledCost is how a purchase the source did not amortize looks (FOCUS puts 0
    on an amortized purchase). A period shorter than ``min_term_days`` is a fee for that day or
    hour (an hourly recurring commitment fee), not something prepaid for later days. NULL (a row
    without costs) means no; the plain conjunction lets DuckDB skip non-purchases cheaply.
    """
    if rules.spread_purchases == "none":
        return "false"
    return (
        "(ChargeCategory = 'Purchase' AND EffectiveCost = BilledCost AND BilledCost <> 0 "
        f"AND ChargePeriodEnd > ChargePeriodStart AND {TERM_DAYS} >= {rules.min_term_days})"
    )


def _spread_days_sql(purchases_sql: str, window: tuple[date, date] | None) -> str:
    """Each purchase row of ``purchases_sql`` once per term day (inside ``window`` when given),
    with helper columns ``_amortization_spread_date`` and ``_amortization_amount``.

    The day's amount depends only on the purchase and the day's position in the term, so a
    window sees exactly the amounts the whole-term schedule has for those days.
    """
    if window is None:
        first, last = "1", "_amortization_term_days"
    else:
        first = f"greatest(1, {_date(window[0])} - _amortization_term_start + 1)"
        last = f"least(_amortization_term_days, {_date(window[1])} - _amortization_term_start + 1)"
    day_cents = (
        "_amortization_base + CASE WHEN _amortization_day <= _amortization_extra THEN 1 ELSE 0 END"
    )
    sub_cent_rest = f"BilledCost - {_cents_to_money('_amortization_cents')}"
    return f"""
        SELECT *,
               _amortization_term_start + CAST(_amortization_day - 1 AS INTEGER)
                   AS _amortization_spread_date,
               CAST({_cents_to_money(day_cents)}
                    + CASE WHEN _amortization_day = 1 THEN {sub_cent_rest} ELSE 0 END
                    AS {MONEY}) AS _amortization_amount
        FROM (
            SELECT *, unnest(generate_series({first}, {last})) AS _amortization_day
            FROM (
                SELECT *,
                       (_amortization_cents - _amortization_extra) // _amortization_term_days
                           AS _amortization_base
                FROM (
                    SELECT *,
                           -- U mod N in [0, N) also for negative U (DuckDB's % keeps the sign).
                           ((_amortization_cents % _amortization_term_days)
                               + _amortization_term_days) % _amortization_term_days
                               AS _amortization_extra
                    FROM (
                        SELECT *,
                               {TERM_START} AS _amortization_term_start,
                               {TERM_DAYS} AS _amortization_term_days,
                               CAST(floor(BilledCost * 100) AS HUGEINT) AS _amortization_cents
                        FROM ({purchases_sql})
                    )
                )
            )
        )
    """


def _spread_purchases_sql(rules: AmortizationRules, facts_table: str) -> str:
    return f"SELECT * FROM {facts_table} WHERE {purchase_is_spread_sql(rules)}"


def spread_schedule_sql(rules: AmortizationRules, facts_table: str) -> str:
    """One row per (purchase the platform spreads, term day) over the whole term.

    Columns: ``purchase_key`` (a content hash of the purchase row, ``:n`` for exact duplicates),
    ``x_SourceFile``, ``purchase_date``, ``CommitmentDiscountId``, ``ResourceId``,
    ``BillingCurrency``, ``purchase_amount``, ``term_days``, ``day_number``, ``spread_date``,
    ``amount``. A check sums ``amount`` per purchase (must equal ``purchase_amount`` exactly) and
    compares each day with ``purchase_amount / term_days`` (within a cent): the asset uses the
    same SQL, filtered to its window, so the check proves what the asset wrote.
    """
    keyed = f"""
        SELECT *,
               CAST(hash(p) AS VARCHAR) || ':' || row_number() OVER (PARTITION BY hash(p))
                   AS _amortization_purchase_key
        FROM ({_spread_purchases_sql(rules, facts_table)}) AS p
    """
    return f"""
        SELECT _amortization_purchase_key AS purchase_key, x_SourceFile,
               charge_date AS purchase_date, CommitmentDiscountId, ResourceId, BillingCurrency,
               BilledCost AS purchase_amount, _amortization_term_days AS term_days,
               _amortization_day AS day_number, _amortization_spread_date AS spread_date,
               _amortization_amount AS amount
        FROM ({_spread_days_sql(keyed, None)})
    """


def amortized_costs_sql(rules: AmortizationRules, facts_table: str, days: tuple[date, date]) -> str:
    """core.amortized_costs rows for ``charge_date`` in ``days`` (inclusive): every column of
    ``facts_table`` (extra ``x_`` columns pass through) plus ``AMORTIZATION_COLUMNS``.

    Rows: the window's facts (purchases the platform spreads keep BilledCost and get
    EffectiveCost 0; Unused cost is moved under ``redistribute``) and one spread row per day of
    the window inside the term of each spread purchase, whenever it was bought. A spread row is
    the purchase row with the day's period and share; its quantities (PricingQuantity,
    ConsumedQuantity, CommitmentDiscountQuantity) and PricingCurrencyEffectiveCost are NULL and
    ListCost/ContractedCost 0, so summing spread rows never multiplies the purchase's figures.
    The purchase keeps its billing period and lineage columns: it is still that invoice's line.
    """
    spreads = purchase_is_spread_sql(rules)
    window_purchases = (
        f"SELECT * FROM {facts_table} WHERE {spreads} AND charge_date <= {_date(days[1])} "
        f"AND {TERM_END} >= {_date(days[0])}"
    )
    spread = "_amortization_spread"
    other_rows = f"""
        SELECT * EXCLUDE ({spread}) REPLACE (
                   CAST(CASE WHEN {spread} THEN 0 ELSE EffectiveCost END AS {MONEY})
                       AS EffectiveCost
               ),
               CAST(CASE WHEN {spread} OR {_IS_COMMITMENT_PURCHASE} THEN '{PRINCIPAL}' END
                    AS VARCHAR) AS x_AmortizationClass,
               CAST(CASE WHEN {spread} THEN '{BY_PLATFORM}'
                         WHEN {_IS_COMMITMENT_PURCHASE} THEN '{BY_PROVIDER}' END
                    AS VARCHAR) AS x_AmortizedBy,
               CAST(EffectiveCost AS {MONEY}) AS x_SourceEffectiveCost,
               -- A commitment purchase whose source left cost on it (AWS RIFee: the unused
               -- part of the reservation) holds commitment cost nobody consumed: the pool's.
               coalesce(NOT {spread} AND {_IS_COMMITMENT_PURCHASE} AND EffectiveCost <> 0,
                        false) AS x_CommitmentPool,
               CAST(NULL AS DATE) AS x_AmortizedFromDate
        FROM (
            SELECT *, coalesce({spreads}, false) AS {spread}
            FROM facts WHERE NOT {_IS_COMMITMENT_USAGE}
        )
    """
    spread_rows = f"""
        SELECT * EXCLUDE ({", ".join(_SPREAD_HELPERS)}) REPLACE (
                   CAST(0 AS {MONEY}) AS BilledCost,
                   CAST(0 AS {MONEY}) AS ListCost,
                   CAST(0 AS {MONEY}) AS ContractedCost,
                   _amortization_amount AS EffectiveCost,
                   CAST(NULL AS {MONEY}) AS PricingCurrencyEffectiveCost,
                   CAST(NULL AS {QUANTITY}) AS PricingQuantity,
                   CAST(NULL AS {QUANTITY}) AS ConsumedQuantity,
                   CAST(NULL AS {QUANTITY}) AS CommitmentDiscountQuantity,
                   date_trunc('day', ChargePeriodStart)
                       + to_days(CAST(_amortization_day - 1 AS INTEGER)) AS ChargePeriodStart,
                   date_trunc('day', ChargePeriodStart)
                       + to_days(CAST(_amortization_day AS INTEGER)) AS ChargePeriodEnd,
                   _amortization_spread_date AS charge_date,
                   'Recurring' AS ChargeFrequency
               ),
               CAST('{AMORTIZED_CHARGE}' AS VARCHAR) AS x_AmortizationClass,
               CAST('{BY_PLATFORM}' AS VARCHAR) AS x_AmortizedBy,
               CAST(NULL AS {MONEY}) AS x_SourceEffectiveCost,
               CommitmentDiscountId IS NOT NULL AS x_CommitmentPool,
               charge_date AS x_AmortizedFromDate
        FROM ({_spread_days_sql(window_purchases, days)})
    """
    # NOT MATERIALIZED: both CTEs are read twice; materialized, DuckDB would first copy the whole
    # wide day into a temporary buffer (2.4 s more per million rows than scanning it twice).
    return f"""
        WITH facts AS NOT MATERIALIZED (SELECT * FROM {facts_table} WHERE {_window(days)}),
             commitment_usage AS NOT MATERIALIZED (
                 SELECT * FROM facts WHERE {_IS_COMMITMENT_USAGE})
        {other_rows}
        UNION ALL BY NAME
        {_commitment_usage_sql(rules)}
        UNION ALL BY NAME
        {spread_rows}
    """


def _commitment_usage_sql(rules: AmortizationRules) -> str:
    """Used and Unused rows of relation ``commitment_usage``, with rule c) applied."""
    if rules.unused_commitment_cost == "central":
        return f"""
            SELECT *,
                   CAST('{AMORTIZED_CHARGE}' AS VARCHAR) AS x_AmortizationClass,
                   CAST('{BY_PROVIDER}' AS VARCHAR) AS x_AmortizedBy,
                   CAST(EffectiveCost AS {MONEY}) AS x_SourceEffectiveCost,
                   CommitmentDiscountStatus = 'Unused' AS x_CommitmentPool,
                   CAST(NULL AS DATE) AS x_AmortizedFromDate
            FROM commitment_usage
        """
    key = "PARTITION BY CommitmentDiscountId, charge_date, BillingCurrency"
    used_key = f"{key}, CommitmentDiscountStatus"
    weight_total = "_amortization_weight_total"
    # floor(U * w / W) and its remainder, exact in integers (weights scaled by 10^12).
    numerator = "(_amortization_unused_cents * _amortization_weight)"
    remainder = f"((({numerator} % {weight_total}) + {weight_total}) % {weight_total})"
    is_used = "CommitmentDiscountStatus = 'Used'"
    is_unused = "CommitmentDiscountStatus = 'Unused'"
    share_cents = (
        "_amortization_base + CASE WHEN _amortization_rank <= _amortization_rest_cents "
        "THEN 1 ELSE 0 END"
    )
    sub_cent_rest = f"_amortization_unused - {_cents_to_money('_amortization_unused_cents')}"
    return f"""
        SELECT * EXCLUDE ({", ".join(_REDISTRIBUTION_HELPERS)}) REPLACE (
                   CAST(CASE WHEN NOT _amortization_moves THEN EffectiveCost
                             WHEN {is_unused} THEN 0
                             ELSE EffectiveCost + _amortization_share END AS {MONEY})
                       AS EffectiveCost
               ),
               CAST('{AMORTIZED_CHARGE}' AS VARCHAR) AS x_AmortizationClass,
               CAST(CASE WHEN _amortization_moves AND ({is_unused} OR _amortization_share <> 0)
                         THEN '{BY_PLATFORM}' ELSE '{BY_PROVIDER}' END AS VARCHAR)
                   AS x_AmortizedBy,
               CAST(EffectiveCost AS {MONEY}) AS x_SourceEffectiveCost,
               {is_unused} AND NOT _amortization_moves AS x_CommitmentPool,
               CAST(NULL AS DATE) AS x_AmortizedFromDate
        FROM (
            SELECT *,
                   CASE WHEN _amortization_moves AND {is_used} THEN CAST(
                       {_cents_to_money(share_cents)}
                       + CASE WHEN _amortization_heaviest = 1 THEN {sub_cent_rest} ELSE 0 END
                       AS {MONEY}) ELSE 0 END AS _amortization_share
            FROM (
                SELECT *,
                       _amortization_unused_cents
                           - sum(_amortization_base) OVER ({used_key})
                           AS _amortization_rest_cents,
                       row_number() OVER ({used_key}
                           ORDER BY _amortization_remainder DESC, _amortization_row_hash)
                           AS _amortization_rank,
                       row_number() OVER ({used_key}
                           ORDER BY _amortization_weight DESC, _amortization_row_hash)
                           AS _amortization_heaviest
                FROM (
                    SELECT *,
                           CASE WHEN _amortization_moves AND {is_used}
                                THEN ({numerator} - {remainder}) // {weight_total} END
                               AS _amortization_base,
                           CASE WHEN _amortization_moves AND {is_used} THEN {remainder} END
                               AS _amortization_remainder
                    FROM (
                        SELECT *,
                               coalesce({weight_total} > 0 AND _amortization_unused <> 0, false)
                                   AS _amortization_moves,
                               CAST(floor(_amortization_unused * 100) AS HUGEINT)
                                   AS _amortization_unused_cents
                        FROM (
                            SELECT *,
                                   sum(CASE WHEN {is_unused} THEN EffectiveCost END)
                                       OVER ({key}) AS _amortization_unused,
                                   sum(_amortization_weight) OVER ({key}) AS {weight_total}
                                FROM (
                                    -- Weight = the row's used amount. A negative one (a
                                    -- correction) takes no share: it would flip the sign.
                                    SELECT *,
                                           hash(commitment_usage) AS _amortization_row_hash,
                                           CASE WHEN {is_used} THEN CAST(
                                               greatest(EffectiveCost, 0) * 1000000000000
                                               AS HUGEINT) ELSE 0 END AS _amortization_weight
                                    FROM commitment_usage
                                )
                        )
                    )
                )
            )
        )
    """


def amortization_conservation_sql(
    facts_table: str, amortized_table: str, days: tuple[date, date]
) -> str:
    """Per (charge_date, BillingCurrency) of ``days``: what came in, what spreading moved, what
    went out, and the differences (``balanced`` when both are exactly 0).

    Columns: ``charge_date, BillingCurrency, facts_billed, facts_effective, spread_in,
    principal_moved_out, amortized_billed, amortized_effective, expected_effective,
    billed_difference, effective_difference, balanced``. BilledCost must not change at all (it
    is the invoice); EffectiveCost may change only by the principal taken off purchases the
    platform spreads and the spread rows landing on the day (redistribution moves cost between
    rows of the same day and currency, so it must not show here).
    """
    zero = f"CAST(0 AS {MONEY})"
    return f"""
        WITH facts AS (
            SELECT charge_date, BillingCurrency,
                   sum(BilledCost) AS facts_billed, sum(EffectiveCost) AS facts_effective
            FROM {facts_table} WHERE {_window(days)}
            GROUP BY ALL
        ),
        amortized AS (
            SELECT charge_date, BillingCurrency,
                   sum(BilledCost) AS amortized_billed,
                   sum(EffectiveCost) AS amortized_effective,
                   sum(EffectiveCost) FILTER (WHERE x_AmortizedFromDate IS NOT NULL)
                       AS spread_in,
                   sum(x_SourceEffectiveCost) FILTER (
                       WHERE x_AmortizationClass = '{PRINCIPAL}'
                         AND x_AmortizedBy = '{BY_PLATFORM}') AS principal_moved_out
            FROM {amortized_table} WHERE {_window(days)}
            GROUP BY ALL
        ),
        joined AS (
            SELECT coalesce(f.charge_date, a.charge_date) AS charge_date,
                   coalesce(f.BillingCurrency, a.BillingCurrency) AS BillingCurrency,
                   CAST(coalesce(facts_billed, {zero}) AS {MONEY}) AS facts_billed,
                   CAST(coalesce(facts_effective, {zero}) AS {MONEY}) AS facts_effective,
                   CAST(coalesce(spread_in, {zero}) AS {MONEY}) AS spread_in,
                   CAST(coalesce(principal_moved_out, {zero}) AS {MONEY})
                       AS principal_moved_out,
                   CAST(coalesce(amortized_billed, {zero}) AS {MONEY}) AS amortized_billed,
                   CAST(coalesce(amortized_effective, {zero}) AS {MONEY})
                       AS amortized_effective
            FROM facts AS f FULL OUTER JOIN amortized AS a
              ON f.charge_date = a.charge_date
             AND f.BillingCurrency IS NOT DISTINCT FROM a.BillingCurrency
        )
        SELECT *,
               CAST(facts_effective - principal_moved_out + spread_in AS {MONEY})
                   AS expected_effective,
               CAST(amortized_billed - facts_billed AS {MONEY}) AS billed_difference,
               CAST(amortized_effective - (facts_effective - principal_moved_out + spread_in)
                    AS {MONEY}) AS effective_difference,
               amortized_billed = facts_billed
                   AND amortized_effective = facts_effective - principal_moved_out + spread_in
                   AS balanced
        FROM joined
        ORDER BY charge_date, BillingCurrency
    """


def _months(days: tuple[date, date]) -> list[tuple[str, date, date]]:
    """(``'YYYY-MM'``, first day, last day) of every month the window touches."""
    months = []
    year, month = days[0].year, days[0].month
    while (year, month) <= (days[1].year, days[1].month):
        following = date(year + month // 12, month % 12 + 1, 1)
        months.append((f"{year:04d}-{month:02d}", date(year, month, 1), following - _ONE_DAY))
        year, month = following.year, following.month
    return months


def commitment_balance_sql(
    amortized_table: str, days: tuple[date, date], tolerance: Decimal
) -> str:
    """Per commitment, currency and billing month the window touches, over the whole month:
    did the amortized cost add up to what was paid? (FOCUS: Σ BilledCost of a commitment's
    purchases = Σ EffectiveCost of its Used and Unused charges.)

    Columns: ``CommitmentDiscountId, BillingCurrency, billing_month, days_loaded,
    days_in_month, complete, purchase_basis, amortized, difference (amortized -
    purchase_basis), within_tolerance, status``.

    * purchase_basis: what the month paid for. A purchase covering only days of this month
      (recurring fees, AWS RIFee) counts in full; one spanning months counts the part of its
      term inside the month: for a purchase the platform spread, exactly the spread schedule's
      amounts of those days (its cents are front-loaded, so a pro-rata share could miss by
      several cents); for one the provider amortized, BilledCost × term days inside / term days.
    * amortized: Σ EffectiveCost of every row of the commitment in the month: Used, Unused,
      spread rows, and purchase rows' own EffectiveCost (AWS CUR keeps the unused part of a
      reservation on its RIFee purchase row).
    * complete is false, and the row never fails (``within_tolerance`` true), when the answer
      is unknowable from the loaded data: the month is not fully loaded; the commitment has no
      purchase row in the table (bought before the loaded history: ``purchase_basis`` NULL); a
      one-time purchase was amortized by the provider but its charge period does not state the
      term (AWS's one-day upfront Fee / SavingsPlanUpfrontFee), so the month's share of it
      cannot be known; or the commitment has only recurring purchases loaded and more was
      amortized than they paid (an upfront paid before the loaded history: AWS puts a partial
      upfront reservation's amortized upfront into its covered usage, not on the RIFee row).
      Less amortized than paid is always judged: no missing upfront explains it.
    ``status`` says which: 'balanced', 'unbalanced', 'month incomplete', 'no purchase loaded',
    'upfront term unknown', 'upfront before history'.
    """
    months = _months(days)
    month_rows = ", ".join(
        f"('{name}', {_date(first)}, {_date(last)}, {last.day})" for name, first, last in months
    )
    span = (months[0][1], months[-1][2])
    term_end = f"greatest({TERM_END}, {TERM_START})"
    term_days = f"({term_end} - {TERM_START} + 1)"
    in_month = "charge_date BETWEEN m.month_start AND m.month_end"
    provider_share = """CASE WHEN days_inside = term_days THEN BilledCost
             ELSE CAST(CAST(CAST(BilledCost * 1000000000000 AS HUGEINT) * days_inside
                            // term_days AS DECIMAL(38, 0)) * 0.000000000001 AS {money}) END"""
    spread_purchases = (
        "SELECT * FROM purchases "
        f"WHERE x_AmortizationClass = '{PRINCIPAL}' AND x_AmortizedBy = '{BY_PLATFORM}'"
    )
    tolerance_sql = f"CAST('{Decimal(tolerance)}' AS {MONEY})"
    return f"""
        WITH months AS (
            SELECT * FROM (VALUES {month_rows})
                AS m(billing_month, month_start, month_end, days_in_month)
        ),
        loaded AS (
            SELECT m.billing_month, count(DISTINCT a.charge_date) AS days_loaded
            FROM months AS m LEFT JOIN {amortized_table} AS a
              ON a.charge_date BETWEEN m.month_start AND m.month_end
            GROUP BY ALL
        ),
        amortized AS (
            SELECT CommitmentDiscountId, BillingCurrency, m.billing_month,
                   sum(EffectiveCost) AS amortized
            FROM {amortized_table} JOIN months AS m ON {in_month}
            WHERE CommitmentDiscountId IS NOT NULL
            GROUP BY ALL
        ),
        purchases AS (
            SELECT * FROM {amortized_table}
            WHERE ChargeCategory = 'Purchase' AND CommitmentDiscountId IS NOT NULL
        ),
        spread_basis AS (
            SELECT CommitmentDiscountId, BillingCurrency, m.billing_month,
                   sum(_amortization_amount) AS basis
            FROM ({_spread_days_sql(spread_purchases, span)}) AS s
            JOIN months AS m
              ON s._amortization_spread_date BETWEEN m.month_start AND m.month_end
            GROUP BY ALL
        ),
        provider_basis AS (
            SELECT CommitmentDiscountId, BillingCurrency, billing_month,
                   sum({provider_share.format(money=MONEY)}) AS basis
            FROM (
                SELECT p.CommitmentDiscountId, p.BillingCurrency, p.BilledCost, m.billing_month,
                       {term_days} AS term_days,
                       least({term_end}, m.month_end)
                           - greatest({TERM_START}, m.month_start) + 1 AS days_inside
                FROM purchases AS p JOIN months AS m
                  ON {TERM_START} <= m.month_end AND {term_end} >= m.month_start
                WHERE p.x_AmortizedBy IS DISTINCT FROM '{BY_PLATFORM}'
            )
            GROUP BY ALL
        ),
        purchased AS (
            SELECT CommitmentDiscountId, BillingCurrency,
                   -- First day from which an amortized upfront fee of unstated term exists.
                   min(charge_date) FILTER (
                       WHERE ChargeFrequency = 'One-Time' AND BilledCost <> 0
                         AND EffectiveCost <> BilledCost AND {term_days} < 2
                   ) AS unknown_term_from,
                   count(*) FILTER (WHERE ChargeFrequency = 'One-Time') > 0 AS has_upfront
            FROM purchases GROUP BY ALL
        ),
        keys AS (
            SELECT CommitmentDiscountId, BillingCurrency, billing_month FROM amortized
            UNION SELECT CommitmentDiscountId, BillingCurrency, billing_month FROM spread_basis
            UNION SELECT CommitmentDiscountId, BillingCurrency, billing_month FROM provider_basis
        ),
        measured AS (
            SELECT k.CommitmentDiscountId, k.BillingCurrency, k.billing_month,
                   coalesce(l.days_loaded, 0) AS days_loaded, m.days_in_month,
                   p.CommitmentDiscountId IS NOT NULL AS has_purchase,
                   coalesce(p.unknown_term_from <= m.month_end, false) AS unknown_term,
                   coalesce(p.has_upfront, false) AS has_upfront,
                   CASE WHEN p.CommitmentDiscountId IS NOT NULL THEN CAST(
                       coalesce(sb.basis, 0) + coalesce(pb.basis, 0) AS {MONEY}) END
                       AS purchase_basis,
                   CAST(coalesce(a.amortized, 0) AS {MONEY}) AS amortized
            FROM keys AS k
            JOIN months AS m USING (billing_month)
            LEFT JOIN loaded AS l USING (billing_month)
            LEFT JOIN amortized AS a USING (CommitmentDiscountId, BillingCurrency, billing_month)
            LEFT JOIN spread_basis AS sb
                USING (CommitmentDiscountId, BillingCurrency, billing_month)
            LEFT JOIN provider_basis AS pb
                USING (CommitmentDiscountId, BillingCurrency, billing_month)
            LEFT JOIN purchased AS p USING (CommitmentDiscountId, BillingCurrency)
        )
        SELECT CommitmentDiscountId, BillingCurrency, billing_month, days_loaded, days_in_month,
               complete, purchase_basis, amortized, difference,
               NOT complete OR abs(difference) <= {tolerance_sql} AS within_tolerance,
               CASE WHEN NOT has_purchase THEN 'no purchase loaded'
                    WHEN days_loaded < days_in_month THEN 'month incomplete'
                    WHEN unknown_term THEN 'upfront term unknown'
                    WHEN upfront_before_history THEN 'upfront before history'
                    WHEN abs(difference) <= {tolerance_sql} THEN 'balanced'
                    ELSE 'unbalanced' END AS status
        FROM (
            SELECT *,
                   has_purchase AND NOT unknown_term AND NOT upfront_before_history
                       AND days_loaded = days_in_month AS complete
            FROM (
                SELECT *,
                       CAST(amortized - purchase_basis AS {MONEY}) AS difference,
                       -- More amortized than the (recurring) purchases paid, and no upfront
                       -- payment loaded: the excess is most likely the amortization of an
                       -- upfront paid before the loaded history (AWS partial-upfront RIs keep
                       -- it in covered usage, not on the RIFee row).
                       coalesce(NOT has_upfront
                                AND amortized - purchase_basis > {tolerance_sql}, false)
                           AS upfront_before_history
                FROM measured
            )
        )
        ORDER BY CommitmentDiscountId, BillingCurrency, billing_month
    """


def commitment_utilization_sql(amortized_table: str, days: tuple[date, date]) -> str:
    """mart.commitment_utilization rows: per charge_date, ProviderName, BillingCurrency and
    CommitmentDiscountId, how much of the commitment was used.

    * amortized_cost: everything the commitment cost that day on the amortized basis (its
      Amortized Charge rows plus what purchase rows still carry): the figure finance sees.
    * used_cost: Σ EffectiveCost of Used rows as delivered (``x_SourceEffectiveCost``), so
      that redistributing the waste onto consumers does not make the commitment look better
      used than it was.
    * unused_cost: Σ delivered EffectiveCost of Unused rows, plus the residual a provider left
      on a purchase row that the platform did not spread (AWS CUR's RIFee keeps the
      reservation's unused part there; EffectiveCost <> BilledCost tells a residual from a fee
      that was simply not amortized, whose consumption is unknown).
    * utilization_pct: 100 × used / (used + unused), NULL when both are 0: a commitment only
      known from a purchase the platform spread has no consumption data, and 0% would be a lie.
      AWS RIFee residuals are monthly and land on the RIFee's day, so CUR utilization is exact
      per month, not per day.
    """
    used = "CommitmentDiscountStatus = 'Used' AND ChargeCategory IS DISTINCT FROM 'Purchase'"
    unused = "CommitmentDiscountStatus = 'Unused' AND ChargeCategory IS DISTINCT FROM 'Purchase'"
    residual = (
        f"ChargeCategory = 'Purchase' AND x_AmortizedBy IS DISTINCT FROM '{BY_PLATFORM}' "
        "AND EffectiveCost <> 0 AND EffectiveCost <> BilledCost"
    )
    return f"""
        SELECT *,
               CASE WHEN used_cost + unused_cost <> 0
                    THEN round(100 * used_cost::DOUBLE / (used_cost + unused_cost)::DOUBLE, 4)
               END AS utilization_pct
        FROM (
            SELECT charge_date, ProviderName, BillingCurrency, CommitmentDiscountId,
                   max(CommitmentDiscountType) AS CommitmentDiscountType,
                   max(CommitmentDiscountCategory) AS CommitmentDiscountCategory,
                   max(CommitmentDiscountName) AS CommitmentDiscountName,
                   CAST(coalesce(sum(EffectiveCost) FILTER (
                       WHERE x_AmortizationClass IN ('{AMORTIZED_CHARGE}', '{PRINCIPAL}')), 0)
                       AS {MONEY}) AS amortized_cost,
                   CAST(coalesce(sum(x_SourceEffectiveCost) FILTER (WHERE {used}), 0)
                       AS {MONEY}) AS used_cost,
                   CAST(coalesce(sum(x_SourceEffectiveCost) FILTER (WHERE {unused}), 0)
                        + coalesce(sum(EffectiveCost) FILTER (WHERE {residual}), 0)
                       AS {MONEY}) AS unused_cost,
                   count(*) AS row_count,
                   string_agg(DISTINCT x_DeliveryId, ',' ORDER BY x_DeliveryId) AS x_DeliveryId,
                   string_agg(DISTINCT x_SourceFile, ',' ORDER BY x_SourceFile) AS x_SourceFile
            FROM {amortized_table}
            WHERE {_window(days)} AND CommitmentDiscountId IS NOT NULL
            GROUP BY charge_date, ProviderName, BillingCurrency, CommitmentDiscountId
        )
        ORDER BY charge_date, ProviderName, BillingCurrency, CommitmentDiscountId
    """


def commitment_coverage_sql(amortized_table: str, days: tuple[date, date]) -> str:
    """Per charge_date, ProviderName, ServiceName and BillingCurrency: how much of the usage a
    commitment could have covered it did cover.

    Measured at list price (``ListCost``; EffectiveCost when a source has no list price), so a
    dollar of covered usage and a dollar of on-demand usage weigh the same although the
    commitment made the first one cheaper.

    * covered_cost: Usage rows a commitment paid for (CommitmentDiscountStatus 'Used').
    * eligible_cost: covered_cost plus the on-demand usage (PricingCategory 'Standard', no
      commitment) of the same service and day. FOCUS does not say which SKUs a commitment
      could cover, so a service counts as eligible on a day it had some covered usage; days
      and services without any covered usage are not reported (their coverage is not 0%, it
      is unknown).
    * coverage_pct: 100 × covered / eligible, NULL when eligible is 0.
    """
    at_list = "coalesce(ListCost, EffectiveCost)"
    covered = (
        "ChargeCategory = 'Usage' AND CommitmentDiscountId IS NOT NULL "
        "AND CommitmentDiscountStatus = 'Used'"
    )
    on_demand = (
        "ChargeCategory = 'Usage' AND PricingCategory = 'Standard' "
        "AND CommitmentDiscountStatus IS NULL"
    )
    return f"""
        SELECT *,
               CASE WHEN eligible_cost <> 0
                    THEN round(100 * covered_cost::DOUBLE / eligible_cost::DOUBLE, 4)
               END AS coverage_pct
        FROM (
            SELECT charge_date, ProviderName, ServiceName, BillingCurrency,
                   CAST(coalesce(sum({at_list}) FILTER (WHERE {covered}), 0) AS {MONEY})
                       AS covered_cost,
                   CAST(coalesce(sum({at_list}) FILTER (WHERE {covered}), 0)
                        + coalesce(sum({at_list}) FILTER (WHERE {on_demand}), 0)
                       AS {MONEY}) AS eligible_cost,
                   CAST(coalesce(sum({at_list}) FILTER (WHERE {on_demand}), 0) AS {MONEY})
                       AS on_demand_cost,
                   string_agg(DISTINCT x_DeliveryId, ',' ORDER BY x_DeliveryId) AS x_DeliveryId,
                   string_agg(DISTINCT x_SourceFile, ',' ORDER BY x_SourceFile) AS x_SourceFile
            FROM {amortized_table}
            WHERE {_window(days)} AND ChargeCategory = 'Usage'
            GROUP BY charge_date, ProviderName, ServiceName, BillingCurrency
            HAVING count_if({covered}) > 0
        )
        ORDER BY charge_date, ProviderName, ServiceName, BillingCurrency
    """

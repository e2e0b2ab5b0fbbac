"""The restatement guard: may a newer delivery replace the month slice that is loaded?

Providers restate whole months (DOMAIN §1), so a newer delivery replacing the loaded rows is
normal. A newer delivery that *removes* the rows (a header-only Azure run, an empty FOCUS part) or
cuts their billed cost by a lot is not: it is held, the loaded rows stay, and a person accepts it.

What belongs here (no Dagster): the totals of a slice (``x_Dataset``, ``x_BillingPeriod``,
currency) read from a raw table, the decision between the loaded and the staged totals, the
wording a FinOps engineer reads, and ``RestatementGuard.replace_partitions``, a drop-in for
``lib.warehouse.replace_partitions`` that applies the decision inside the write transaction.

How it hooks into the write: the loaded totals are read on the same locked connection just before
the transaction (no other writer can come between: ``lib.warehouse.connect`` holds the file
lock); the staged totals are read inside the transaction, after the caller's own validation, from
the rows that would replace them, with the slices' rows on the other days (which the write
keeps). A hold raises ``RestatementHeld`` there, so the transaction rolls back exactly like a
failed validation and the previous rows stay to the cent; the guard
catches it, records the decision and returns ``None``: the asset goes on with its next month chunk
and does not fail. The raw asset then records each day's decisions as materialization metadata
(``restatement``, and ``restatement_held`` when held), and the blocking ``restatement_guard``
check (``defs/sources/shared.py``) reads that metadata back from the latest materialization of
each day in its window. Reading the asset's own record, rather than recomputing, is the simplest
robust choice: the held rows are never written anywhere, so only the asset saw both sides, and a
later successful load of the same day replaces the record (the check passes again).

Rules: each slice is judged on its whole month, i.e. the table's rows of that dataset and billing
period before the write against the same after it (the days being loaded plus the slice's rows on
other days, which the write keeps: a newer delivery without charges on one day of a month is a
small drop, one without any charges a removal). Compared per currency, never across currencies.
Held when the month would be left with 0 rows where it had rows, or when Σ billed of a currency
drops by more than ``rules.deliveries.max_restatement_drop_pct`` percent (a currency that
disappears is a 100% drop; a currency whose loaded Σ is zero or negative, i.e. credits, has no
percentage to drop). A bound of 100 switches the guard off. Accepted by the run tag
``finops/accept_restatement=<delivery id>[,<delivery id>...]`` naming the newer (or, when the
slice has no newer delivery, the loaded) delivery, or ``*`` for every slice of the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import duckdb

from finops_assets.lib import warehouse as wh

ACCEPT_TAG = "finops/accept_restatement"
ACCEPT_ALL = "*"
RULE_SETTING = "deliveries.max_restatement_drop_pct"
# Guard off: any drop, and any removal, is accepted.
NO_BOUND_PCT = 100.0
_SHOWN_IDS = 4


@dataclass(frozen=True)
class Measure:
    """How a raw table states a row's billed cost and its currency (SQL over the table's columns)."""

    billed: str
    currency: str


FOCUS_MEASURE = Measure(billed="BilledCost", currency="BillingCurrency")


@dataclass(frozen=True)
class CurrencyTotals:
    rows: int
    billed: Decimal


@dataclass(frozen=True)
class SliceTotals:
    """One (dataset, billing period) slice of the days being replaced: per currency totals and
    the deliveries its rows came from."""

    currencies: Mapping[str, CurrencyTotals] = field(default_factory=dict)
    delivery_ids: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.currencies.values())


SliceKey = tuple[str, str]  # (x_Dataset, x_BillingPeriod)


@dataclass(frozen=True)
class Incoming:
    """A delivery the write would load: lets a slice the delivery leaves empty (a header-only
    run) still name it. ``billing_period`` None means any period of the dataset (GCP, whose
    period comes from the rows)."""

    dataset: str
    billing_period: str | None
    delivery_id: str


@dataclass(frozen=True)
class CurrencyChange:
    currency: str
    loaded: CurrencyTotals | None
    incoming: CurrencyTotals | None
    drop_pct: Decimal | None  # None: no loaded positive cost to drop from

    @property
    def disappeared(self) -> bool:
        return self.loaded is not None and self.loaded.rows > 0 and self.incoming is None


def format_money(amount: Decimal) -> str:
    """At least cents, more digits only when the amount has them (1.261369265057, 8.55)."""
    normalized = Decimal(amount).normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        normalized = normalized.quantize(Decimal("0.01"))
    return f"{normalized:f}"


def _ids(ids: Sequence[str]) -> str:
    if not ids:
        return "(none)"
    shown = ", ".join(ids[:_SHOWN_IDS])
    return shown + (f" (+{len(ids) - _SHOWN_IDS} more)" if len(ids) > _SHOWN_IDS else "")


def summarize(totals: SliceTotals) -> str:
    """``27 rows, CAD 1.261369265057`` or ``5 rows, EUR 10.00, USD 5.00`` (never one sum)."""
    money = ", ".join(
        f"{currency or '(no currency)'} {format_money(t.billed)}"
        for currency, t in sorted(totals.currencies.items())
    )
    return f"{totals.rows} rows" + (f", {money}" if money else "")


@dataclass(frozen=True)
class Decision:
    dataset: str
    billing_period: str
    days: tuple[date, date]
    loaded: SliceTotals
    incoming: SliceTotals
    changes: tuple[CurrencyChange, ...]
    breaches: tuple[str, ...]  # why the newer delivery would be held, in words
    held: bool
    accepted_by: str | None  # how a breach was accepted (run tag or rules bound)
    max_drop_pct: float

    @property
    def accept_ids(self) -> tuple[str, ...]:
        """The ids the run tag should name: the newer delivery, else the loaded one."""
        return self.incoming.delivery_ids or self.loaded.delivery_ids

    @property
    def needed_bound_pct(self) -> int:
        drops = [c.drop_pct for c in self.changes if c.drop_pct is not None]
        if self.incoming.rows == 0 and self.loaded.rows > 0:
            drops.append(Decimal(100))
        return min(int(NO_BOUND_PCT), math.ceil(max(drops, default=Decimal(0))))

    @property
    def window(self) -> str:
        return f"{self.days[0].isoformat()}..{self.days[1].isoformat()}"

    @property
    def message(self) -> str:
        """Totals are the month slice's (every loaded day of the dataset and billing period), before
        and after the write; the deliveries named are those of the days being loaded."""
        old, new = _ids(self.loaded.delivery_ids), _ids(self.incoming.delivery_ids)
        before, after = summarize(self.loaded), summarize(self.incoming)
        name = f"{self.dataset} billing period {self.billing_period}"
        if self.held:
            tag = f"{ACCEPT_TAG}={','.join(self.accept_ids) or ACCEPT_ALL}"
            return (
                f"Restatement held for {name}: loading {self.window} from the newer delivery "
                f"{new} would take the month from {before} (delivery {old}) to {after}, i.e. "
                f"{'; '.join(self.breaches)} (bound: {RULE_SETTING} = {self.max_drop_pct:g}%). "
                "The loaded rows stay. If the provider really restated it so, re-launch the run "
                f"with the tag {tag}, or set {RULE_SETTING} to {self.needed_bound_pct} or more in "
                "the rules YAML."
            )
        if self.loaded.rows == 0:
            return f"{name}, {self.window}: first load from delivery {new}; month {after}."
        text = f"{name}, {self.window}: delivery {old} → delivery {new}; month {before} → {after}"
        if self.breaches:
            text += f"; accepted by {self.accepted_by} although it would {'; '.join(self.breaches)}"
        return text + "."


def accepted_deliveries(tags: Mapping[str, str]) -> frozenset[str]:
    """The delivery ids a run's ``finops/accept_restatement`` tag accepts (``*``: all)."""
    return frozenset(i.strip() for i in tags.get(ACCEPT_TAG, "").split(",") if i.strip())


def _currency_changes(loaded: SliceTotals, incoming: SliceTotals) -> list[CurrencyChange]:
    changes = []
    for currency in sorted(set(loaded.currencies) | set(incoming.currencies)):
        old, new = loaded.currencies.get(currency), incoming.currencies.get(currency)
        drop = None
        if old is not None and old.rows > 0 and new is None:
            drop = Decimal(100)
        elif old is not None and old.billed > 0:
            drop = (old.billed - (new.billed if new else Decimal(0))) / old.billed * 100
        changes.append(CurrencyChange(currency, old, new, drop))
    return changes


def decide(
    dataset: str,
    billing_period: str,
    days: tuple[date, date],
    loaded: SliceTotals,
    incoming: SliceTotals,
    *,
    max_drop_pct: float,
    accepted: frozenset[str] = frozenset(),
) -> Decision:
    """Replace or hold one slice (see the module docstring for the rules)."""
    changes = _currency_changes(loaded, incoming)
    breaches = []
    if loaded.rows > 0 and incoming.rows == 0:
        breaches.append(f"remove all {loaded.rows} loaded rows")
    bound = Decimal(str(max_drop_pct))
    for change in changes:
        if change.drop_pct is None or change.drop_pct <= bound:
            continue
        old = format_money(change.loaded.billed)
        if change.disappeared:
            if incoming.rows > 0:  # a removal already says it for every currency
                breaches.append(
                    f"drop {change.currency} entirely ({change.loaded.rows} rows, "
                    f"{change.currency} {old} loaded)"
                )
        else:
            breaches.append(
                f"cut Σ billed {change.currency} by {change.drop_pct:.1f}% "
                f"({change.currency} {old} → {format_money(change.incoming.billed)})"
            )
    accepted_by = None
    if breaches:
        if max_drop_pct >= NO_BOUND_PCT:
            accepted_by = f"the rules ({RULE_SETTING} = {max_drop_pct:g}: guard off)"
        elif ACCEPT_ALL in accepted:
            accepted_by = f"the run tag {ACCEPT_TAG}={ACCEPT_ALL}"
        else:
            named = sorted(accepted & set(incoming.delivery_ids + loaded.delivery_ids))
            if named:
                accepted_by = f"the run tag {ACCEPT_TAG}={','.join(named)}"
    return Decision(
        dataset=dataset,
        billing_period=billing_period,
        days=days,
        loaded=loaded,
        incoming=incoming,
        changes=tuple(changes),
        breaches=tuple(breaches),
        held=bool(breaches) and accepted_by is None,
        accepted_by=accepted_by,
        max_drop_pct=max_drop_pct,
    )


def combine(*parts: SliceTotals, delivery_ids: Iterable[str] = ()) -> SliceTotals:
    """Totals of several parts of one slice (per currency, never across currencies)."""
    currencies: dict[str, CurrencyTotals] = {}
    for part in parts:
        for currency, t in part.currencies.items():
            have = currencies.get(currency, CurrencyTotals(0, Decimal(0)))
            currencies[currency] = CurrencyTotals(have.rows + t.rows, have.billed + t.billed)
    return SliceTotals(currencies, tuple(sorted(set(delivery_ids))))


def compare_slices(
    loaded: Mapping[SliceKey, SliceTotals],
    staged: Mapping[SliceKey, SliceTotals],
    days: tuple[date, date],
    *,
    untouched: Mapping[SliceKey, SliceTotals] | None = None,
    not_loaded: Mapping[SliceKey, SliceTotals] | None = None,
    incoming: Iterable[Incoming] = (),
    max_drop_pct: float,
    accepted: frozenset[str] = frozenset(),
) -> list[Decision]:
    """A decision for every slice with rows in the days being replaced, before (``loaded``) or
    after (``staged``). Each is judged on its whole month: ``untouched`` holds the slice's rows on
    the other days, which the write keeps, so removing one day of a month is a small drop and
    removing every day is a removal; ``not_loaded`` holds the newer deliveries' rows on days the
    table does not hold yet, which count in the month after. A staged slice names the deliveries
    declared for it even when it has no rows of theirs."""
    declared = list(incoming)
    untouched, not_loaded = untouched or {}, not_loaded or {}
    decisions = []
    for key in sorted(set(loaded) | set(staged)):
        dataset, period = key
        old, new, rest = (m.get(key, SliceTotals()) for m in (loaded, staged, untouched))
        later = not_loaded.get(key, SliceTotals())
        new_ids = list(new.delivery_ids) + [
            d.delivery_id
            for d in declared
            if d.dataset == dataset and d.billing_period in (period, None)
        ]
        decisions.append(
            decide(
                dataset,
                period,
                days,
                combine(old, rest, delivery_ids=old.delivery_ids or rest.delivery_ids),
                combine(new, rest, later, delivery_ids=new_ids),
                max_drop_pct=max_drop_pct,
                accepted=accepted,
            )
        )
    return decisions


def slice_totals_sql(table: str, measure: Measure, *, other_days: bool = False) -> str:
    """Per (dataset, billing period, currency) of the days ``?`` (a DATE list), or with
    ``other_days`` of every other day of the billing periods ``?`` (a text list): rows, Σ billed
    and the deliveries, from a raw table's lineage columns."""
    where = (
        f"{wh.PARTITION_COLUMN} NOT IN (SELECT unnest(?::DATE[])) "
        "AND coalesce(x_BillingPeriod, '') IN (SELECT unnest(?::VARCHAR[]))"
        if other_days
        else f"{wh.PARTITION_COLUMN} IN (SELECT unnest(?::DATE[]))"
    )
    return (
        f"SELECT {_totals_columns(measure)} FROM {wh.qualified(table)} WHERE {where} GROUP BY ALL"
    )


def _totals_columns(measure: Measure) -> str:
    return f"""
        coalesce(x_Dataset, '') AS dataset,
        coalesce(x_BillingPeriod, '') AS billing_period,
        coalesce(CAST(({measure.currency}) AS VARCHAR), '') AS currency,
        count(*) AS "rows",
        coalesce(sum(CAST(({measure.billed}) AS DECIMAL(38, 12))), 0) AS billed,
        list(DISTINCT x_DeliveryId ORDER BY x_DeliveryId)
            FILTER (WHERE x_DeliveryId IS NOT NULL) AS delivery_ids
    """


def not_loaded_totals_sql(table: str, delivered_sql: str, measure: Measure) -> str:
    """Per slice: the delivered rows (``delivered_sql``, every day of the deliveries) on days
    outside the days ``?`` where ``table`` holds no row of that slice: what the newer deliveries
    add to the month once their other days are loaded too."""
    return f"""
        SELECT {_totals_columns(measure)}
        FROM ({delivered_sql}) AS delivered
        WHERE {wh.PARTITION_COLUMN} NOT IN (SELECT unnest(?::DATE[]))
          AND NOT EXISTS (
              SELECT 1 FROM {wh.qualified(table)} AS loaded
              WHERE loaded.{wh.PARTITION_COLUMN} = delivered.{wh.PARTITION_COLUMN}
                AND coalesce(loaded.x_Dataset, '') = coalesce(delivered.x_Dataset, '')
                AND coalesce(loaded.x_BillingPeriod, '') = coalesce(delivered.x_BillingPeriod, ''))
        GROUP BY ALL
    """


def read_slice_totals(
    con: duckdb.DuckDBPyConnection,
    table: str,
    days: Sequence[date],
    measure: Measure,
    *,
    other_days_of: Iterable[SliceKey] | None = None,
) -> dict[SliceKey, SliceTotals]:
    """The slices' totals on ``days``, or with ``other_days_of`` the totals of those slices on
    every other day (what a write of ``days`` leaves untouched)."""
    if not wh.table_exists(con, table):
        return {}
    wanted = None if other_days_of is None else set(other_days_of)
    params: list = [sorted(set(days))]
    if wanted is not None:
        if not wanted:
            return {}
        params.append(sorted({period for _, period in wanted}))
    sql = slice_totals_sql(table, measure, other_days=wanted is not None)
    return _collect(con.execute(sql, params).fetchall(), wanted)


def _collect(
    rows: Iterable[tuple], wanted: set[SliceKey] | None = None
) -> dict[SliceKey, SliceTotals]:
    currencies: dict[SliceKey, dict[str, CurrencyTotals]] = {}
    ids: dict[SliceKey, set[str]] = {}
    for dataset, period, currency, count, billed, delivery_ids in rows:
        key = (dataset, period)
        if wanted is not None and key not in wanted:
            continue
        currencies.setdefault(key, {})[currency] = CurrencyTotals(int(count), Decimal(billed))
        ids.setdefault(key, set()).update(delivery_ids or ())
    return {key: SliceTotals(currencies[key], tuple(sorted(ids[key]))) for key in currencies}


class RestatementHeld(Exception):
    """Raised inside the write transaction to roll it back: a slice is held."""

    def __init__(self, decisions: Sequence[Decision]):
        self.decisions = tuple(decisions)
        super().__init__(" ".join(d.message for d in self.decisions if d.held))


@dataclass
class RestatementGuard:
    """The guard of one asset run: apply it to each month chunk's write, then record
    ``metadata_by_day()`` on the materialization."""

    measure: Measure
    max_drop_pct: float
    accepted: frozenset[str] = frozenset()
    decisions: list[Decision] = field(default_factory=list)
    # Per day: the decisions of its month chunk and whether the chunk was held (not written).
    _by_day: dict[date, list[tuple[Decision, bool]]] = field(default_factory=dict)

    def replace_partitions(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        select_sql: str,
        days: Sequence[date],
        *,
        incoming: Iterable[Incoming] = (),
        delivered_sql: str | None = None,
        params: Sequence | None = None,
        validate: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        describe_error: Callable[[duckdb.DuckDBPyConnection, Exception], Exception | None]
        | None = None,
        writer: Callable[..., wh.PartitionWrite] | None = None,
    ) -> wh.PartitionWrite | None:
        """``lib.warehouse.replace_partitions`` unless the restatement is held: then nothing is
        written and ``None`` is returned (the decision is in ``decisions``).

        ``delivered_sql`` (optional): the same staging as ``select_sql`` over every day of the
        deliveries. Read only when a slice would be held, it adds the newer deliveries' charges on
        days not loaded yet, so loading one day that a newer delivery leaves empty (while the rest
        of its month is there) is not taken for the removal of the month.

        ``writer`` (optional) replaces the table write: called as ``writer(con, validate=...,
        describe_error=...)`` with the same contract as ``lib.warehouse.replace_partitions`` (a
        snapshot-backed raw table, ``lib.snapshots``); ``select_sql`` is then only the staging
        the guard reads when it needs the deliveries' other days."""
        day_list = sorted(set(days))
        window = (day_list[0], day_list[-1])
        declared = list(incoming)
        loaded = read_slice_totals(con, table, day_list, self.measure)
        found: list[Decision] = []

        def guarded_validate(con: duckdb.DuckDBPyConnection) -> None:
            if validate is not None:
                validate(con)  # bad data is reported as such before any restatement question
            staged = read_slice_totals(con, table, day_list, self.measure)
            untouched = read_slice_totals(
                con, table, day_list, self.measure, other_days_of=set(loaded) | set(staged)
            )
            found[:] = compare_slices(
                loaded,
                staged,
                window,
                untouched=untouched,
                incoming=declared,
                max_drop_pct=self.max_drop_pct,
                accepted=self.accepted,
            )
            if any(d.held for d in found) and delivered_sql is not None:
                try:
                    sql = not_loaded_totals_sql(table, delivered_sql, self.measure)
                    rows = con.execute(sql, [*(params or []), day_list]).fetchall()
                except duckdb.Error:
                    rows = []  # unreadable outside the window: judge on the loaded days alone
                found[:] = compare_slices(
                    loaded,
                    staged,
                    window,
                    untouched=untouched,
                    not_loaded=_collect(rows),
                    incoming=declared,
                    max_drop_pct=self.max_drop_pct,
                    accepted=self.accepted,
                )
            if any(d.held for d in found):
                raise RestatementHeld(found)

        def guarded_describe(con: duckdb.DuckDBPyConnection, error: Exception) -> Exception | None:
            if isinstance(error, RestatementHeld) or describe_error is None:
                return None
            return describe_error(con, error)

        try:
            if writer is not None:
                write = writer(con, validate=guarded_validate, describe_error=guarded_describe)
            else:
                write = wh.replace_partitions(
                    con,
                    table,
                    select_sql,
                    day_list,
                    params=params,
                    validate=guarded_validate,
                    describe_error=guarded_describe,
                )
        except RestatementHeld as held:
            self._record(day_list, held.decisions)
            return None
        self._record(day_list, found)
        return write

    def _record(self, days: Sequence[date], decisions: Sequence[Decision]) -> None:
        self.decisions.extend(decisions)
        chunk_held = any(d.held for d in decisions)
        for day in days:
            self._by_day.setdefault(day, []).extend((d, chunk_held) for d in decisions)

    @property
    def held(self) -> list[Decision]:
        return [d for d in self.decisions if d.held]

    def metadata_by_day(self) -> dict[date, dict[str, str]]:
        """Per day written or held: ``restatement`` (every slice's decision) and, when a slice of
        the day was held, ``restatement_held`` (the held decisions, for the check)."""
        out = {}
        for day, decisions in sorted(self._by_day.items()):
            lines = [
                d.message
                if d.held or not chunk_held
                else f"Not written either (its month is held): {d.message}"
                for d, chunk_held in decisions
            ]
            metadata = {
                "restatement": "\n".join(lines) or "Nothing loaded before or after for these days."
            }
            held = [d.message for d, _ in decisions if d.held]
            if held:
                metadata["restatement_held"] = "\n".join(held)
            out[day] = metadata
        return out

"""insights/anomalies and insights/anomaly_quality.

``insights/anomalies`` (daily partitions): each run scores every monitor series of the rules
YAML over the 120 days before its first day through the newest loaded day (``lib/monitors``) and
writes, in one transaction:

- ``insights.anomaly_days``: per day, monitor series and currency, actual usage, expected, σ, z
  and status (ok, anomaly, incomplete with the sources it waits on, insufficient history, below
  floor), for the run's days and the 7 days before them (their completeness may have changed:
  yesterday's day becomes complete when today's arrives);
- ``insights.anomalies``: one row per event (start, end, expected, actual, impact, score, status,
  kind, root causes, owner, completeness, model version) for events that touch the run's days.

Its ``new_anomalies`` check fails (warn) once per new event whose last day is recent, with the
events and their root causes in the description, so the alert targets send each anomaly once;
``insights.anomaly_alerts`` records what was alerted. A level shift is alerted on its first day
and then adopted, never alerted again.

``insights/anomaly_quality``: per monitor and month, events, people's verdicts
(``finops-assets anomaly feedback ID yes|no|planned``) and the false-positive rate.
"""

from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from finops_assets.automation import RESTATED_DAYS_PROPAGATE
from finops_assets.contracts.checks import WAREHOUSE_POOL, markdown_table, partition_window
from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.core.assets import ALLOCATED_COSTS_TABLE
from finops_assets.lib import anomalies as an
from finops_assets.lib import forecasts as fc
from finops_assets.lib import warehouse as wh
from finops_assets.lib.anomaly_feedback import (
    ANOMALIES_TABLE,
    ANOMALY_ALERTS_TABLE,
    FEEDBACK_TABLE,
    create_side_tables,
)
from finops_assets.lib.budgets import BUDGET_SCHEMA, budget_rows
from finops_assets.lib.forecast_scopes import forecast_rows
from finops_assets.lib.monitors import EVENT_MARGIN_DAYS, KIND_CORRECTION, run_monitors
from finops_assets.metadata import days_between
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse

ANOMALIES = dg.AssetKey(["insights", "anomalies"])
ANOMALY_QUALITY = dg.AssetKey(["insights", "anomaly_quality"])
FORECASTS = dg.AssetKey(["insights", "forecasts"])
FORECASTS_TABLE = "insights.forecasts"
ANOMALY_DAYS_TABLE = "insights.anomaly_days"
ANOMALY_QUALITY_TABLE = "insights.anomaly_quality"
NEW_ANOMALIES_CHECK = "new_anomalies"
# Days before a run's first day whose scores are written again (completeness catches up).
RESCORED_DAYS = 7
TABLE_ROWS = 25  # events shown in the UI's markdown table


def _money(value: float | None, currency: str) -> str:
    return "" if value is None else f"{value:,.2f} {currency}"


def describe_event(row: dict) -> str:
    """One line a person can act on."""
    pct = f" ({row['impact_pct']:+.0f}%)" if row.get("impact_pct") is not None else ""
    span = (
        row["start_date"].isoformat()
        if row["start_date"] == row["end_date"]
        else f"{row['start_date']}..{row['end_date']}"
    )
    score = f", z {row['score']:.1f}" if row.get("score") is not None else ""
    causes = f" Top: {row['root_causes']}." if row.get("root_causes") else ""
    owner = f" Owner: {row['owner']}." if row.get("owner") else ""
    return (
        f"[{row['anomaly_id']}] {row['monitor']} {row['series']} ({row['BillingCurrency']}): "
        f"{row['kind']} {span}, {row['status']}, impact "
        f"{row['impact']:+,.2f} {row['BillingCurrency']}{pct}{score} "
        f"(expected {_money(row['expected'], row['BillingCurrency'])}, actual "
        f"{_money(row['actual'], row['BillingCurrency'])}).{causes}{owner}"
    )


def events_markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no anomalies)"
    frame = pd.DataFrame(
        [
            {
                "id": r["anomaly_id"],
                "monitor": r["monitor"],
                "series": r["series"],
                "kind": r["kind"],
                "status": r["status"],
                "days": f"{r['start_date']}..{r['end_date']}",
                "impact": f"{r['impact']:+,.2f} {r['BillingCurrency']}",
                "impact %": "" if r["impact_pct"] is None else f"{r['impact_pct']:+.0f}%",
                "z": "" if r["score"] is None else f"{r['score']:.1f}",
                "root causes": r["root_causes"] or "",
                "owner": r["owner"] or "",
            }
            for r in rows
        ]
    )
    return markdown_table(frame)


def build(ctx: DefsContext) -> dg.Definitions:
    @dg.asset(
        key=ANOMALIES,
        group_name="insights",
        kinds={"duckdb"},
        deps=[dg.AssetKey(["core", "allocated_costs"])],
        partitions_def=ctx.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=RESTATED_DAYS_PROPAGATE,
        pool=WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                NEW_ANOMALIES_CHECK,
                asset=ANOMALIES,
                description=(
                    "Fails (warn) once for each new anomaly whose last day is recent, naming it "
                    "with its impact and root causes; the alert targets send it."
                ),
            )
        ],
        description=(
            "Spend anomalies per monitor series (rules YAML anomalies:), scored on complete days "
            "only: usage against a weekday-adjusted robust 8-week baseline with three gates (z, "
            "impact floor, impact %), credits that stop, large corrections and tax. One row per "
            "event in insights.anomalies with its root causes; per-day scores in "
            "insights.anomaly_days."
        ),
    )
    def anomalies(context: dg.AssetExecutionContext, warehouse: Warehouse, rules: RulesResource):
        first, last = partition_window(context)
        loaded_rules = rules.load()
        with warehouse.get_connection() as con:
            if not wh.table_exists(con, ALLOCATED_COSTS_TABLE):
                raise dg.Failure(
                    f"{ALLOCATED_COSTS_TABLE} does not exist yet; materialize core/allocated_costs "
                    "for these days first."
                )
            newest = con.execute(
                f"SELECT max(charge_date) FROM {ALLOCATED_COSTS_TABLE}"
            ).fetchall()[0][0]
            through = max(last, newest) if newest else last
            write_start = first - timedelta(days=RESCORED_DAYS)
            run = run_monitors(
                con,
                loaded_rules.anomalies,
                loaded_rules.completeness,
                ALLOCATED_COSTS_TABLE,
                write_start,
                through,
            )
            day_rows = run.day_rows()
            day_rows = day_rows.filter(pc.less_equal(day_rows["charge_date"], last))
            events = run.event_rows(loaded_rules.ownership_dimension)
            events = events.filter(pc.less_equal(events["start_date"], last))
            cutoff = write_start - timedelta(days=EVENT_MARGIN_DAYS)
            con.register("_anomaly_days", day_rows)
            con.register("_anomalies", events)
            create_side_tables(con)

            def write_events(con) -> None:
                # Inside the day rows' transaction: both tables change together or not at all.
                wh.evolve_schema(
                    con, ANOMALIES_TABLE, wh.query_columns(con, "SELECT * FROM _anomalies")
                )
                con.execute(
                    f"DELETE FROM {ANOMALIES_TABLE} WHERE anomaly_id IN "
                    "(SELECT anomaly_id FROM _anomalies) OR (end_date >= ? AND start_date <= ?)",
                    [cutoff, last],
                )
                con.execute(f"INSERT INTO {ANOMALIES_TABLE} BY NAME SELECT * FROM _anomalies")

            wh.replace_partitions(
                con,
                ANOMALY_DAYS_TABLE,
                "SELECT * FROM _anomaly_days",
                days_between((write_start, last)),
                validate=write_events,
            )
            # Alert once per event, and only for recent ones: a backfill of last year finds
            # last year's anomalies without paging anyone about them.
            complete_through = max(
                (run.completeness.complete_through(s) for s in run.completeness.sources),
                default=last,
            )
            recent = complete_through - timedelta(days=loaded_rules.anomalies.alert_recent_days + 1)
            new = (
                con.sql(
                    f"SELECT * FROM _anomalies WHERE end_date >= ? AND anomaly_id NOT IN "
                    f"(SELECT anomaly_id FROM {ANOMALY_ALERTS_TABLE}) "
                    "ORDER BY abs(impact) DESC, anomaly_id",
                    params=[recent],
                )
                .to_arrow_table()
                .to_pylist()
            )
            if new:
                con.executemany(
                    f"INSERT INTO {ANOMALY_ALERTS_TABLE} VALUES (?, ?, now())",
                    [[row["anomaly_id"], context.run_id] for row in new],
                )
            shown = (
                con.sql(
                    f"SELECT * FROM {ANOMALIES_TABLE} WHERE end_date >= ? OR status = 'open' "
                    "ORDER BY end_date DESC, abs(impact) DESC LIMIT ?",
                    params=[through - timedelta(days=30), TABLE_ROWS],
                )
                .to_arrow_table()
                .to_pylist()
            )
            first_monitor = loaded_rules.anomalies.monitors[0].name
            per_day = con.execute(
                "SELECT charge_date, BillingCurrency, sum(actual) FILTER (WHERE monitor = ?), "
                "sum(expected) FILTER (WHERE monitor = ?), count(*) FILTER (WHERE status = ?), "
                "count(*) "
                "FROM _anomaly_days WHERE charge_date >= ? GROUP BY ALL",
                [first_monitor, first_monitor, an.ANOMALY, first],
            ).fetchall()
            con.unregister("_anomaly_days")
            con.unregister("_anomalies")
        _add_daily_metadata(context, per_day, (first, last))
        yield dg.MaterializeResult(
            asset_key=ANOMALIES,
            metadata={
                "series_scored": dg.MetadataValue.int(len(run.results)),
                "events_written": dg.MetadataValue.int(events.num_rows),
                "open_anomalies": dg.MetadataValue.int(
                    sum(1 for r in shown if r["status"] == an.OPEN)
                ),
                "scored_through": dg.MetadataValue.text(through.isoformat()),
                "completeness": dg.MetadataValue.text(run.completeness.summary()),
                "model_version": dg.MetadataValue.text(an.MODEL_VERSION),
                "recent_anomalies": dg.MetadataValue.md(events_markdown(shown)),
            },
        )
        yield dg.AssetCheckResult(
            asset_key=ANOMALIES,
            check_name=NEW_ANOMALIES_CHECK,
            passed=not new,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{len(new)} new anomal{'y' if len(new) == 1 else 'ies'}:\n"
                + "\n".join(describe_event(r) for r in new[:10])
                + (f"\n... and {len(new) - 10} more" if len(new) > 10 else "")
                if new
                else "No new anomalies."
            ),
            metadata={
                "new_anomalies": dg.MetadataValue.int(len(new)),
                # The owners of the new anomalies' series get the alert too (owners: in rules).
                "finops/route_to": dg.MetadataValue.text(
                    ",".join(sorted({r["owner"] for r in new if r["owner"]}))
                ),
                "impact": dg.MetadataValue.text(
                    "; ".join(
                        f"{c}: {sum(r['impact'] for r in new if r['BillingCurrency'] == c):+,.2f}"
                        for c in sorted({r["BillingCurrency"] for r in new})
                    )
                ),
                "anomalies": dg.MetadataValue.md(events_markdown(new)),
            },
        )

    @dg.asset(
        key=ANOMALY_QUALITY,
        group_name="insights",
        kinds={"duckdb"},
        deps=[ANOMALIES],
        automation_condition=dg.AutomationCondition.eager(),
        # Lets `dagster asset materialize --select '*' --partition-range ...` include it.
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        description=(
            "Per monitor and month: anomalies, how many people rated (finops-assets anomaly "
            "feedback ID yes|no|planned), and the false-positive rate (no / rated). Planned "
            "changes are counted apart: real, but not a surprise."
        ),
    )
    def anomaly_quality(warehouse: Warehouse) -> dg.MaterializeResult:
        with warehouse.get_connection() as con:
            create_side_tables(con)
            if not wh.table_exists(con, ANOMALIES_TABLE):
                raise dg.Failure("insights.anomalies does not exist yet; materialize it first.")
            con.execute(f"CREATE OR REPLACE TABLE {ANOMALY_QUALITY_TABLE} AS {quality_sql()}")
            rows = con.sql(
                f"SELECT * FROM {ANOMALY_QUALITY_TABLE} ORDER BY month DESC, monitor LIMIT 40"
            ).to_df()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(len(rows)),
                "quality": dg.MetadataValue.md(markdown_table(rows)),
            }
        )

    return definitions_of(
        anomalies, anomaly_quality, build_forecasts(ctx.partitions), build_budget_status(ctx)
    )


def quality_sql() -> str:
    """Per monitor and month of the event's start: the latest verdict per anomaly counts."""
    return f"""
        WITH latest AS (
            SELECT anomaly_id, arg_max(verdict, recorded_at) AS verdict
            FROM {FEEDBACK_TABLE} GROUP BY anomaly_id
        )
        SELECT a.monitor, strftime(a.start_date, '%Y-%m') AS month,
               count(*) AS anomalies,
               count(*) FILTER (WHERE al.anomaly_id IS NOT NULL) AS alerted,
               count(l.verdict) AS rated,
               count(*) FILTER (WHERE l.verdict = 'yes') AS confirmed,
               count(*) FILTER (WHERE l.verdict = 'no') AS false_positives,
               count(*) FILTER (WHERE l.verdict = 'planned') AS planned,
               round(count(*) FILTER (WHERE l.verdict = 'no') / nullif(count(l.verdict), 0), 3)
                   AS false_positive_rate
        FROM {ANOMALIES_TABLE} a
        LEFT JOIN latest l USING (anomaly_id)
        LEFT JOIN {ANOMALY_ALERTS_TABLE} al USING (anomaly_id)
        WHERE a.kind <> '{KIND_CORRECTION}'
        GROUP BY ALL
    """


def _add_daily_metadata(context, per_day, window: tuple[date, date]) -> None:
    """Per partition: the first monitor's (the total's) actual and expected usage per currency
    and how many series were anomalous that day, so the UI plots them over days."""
    by_day: dict[date, dict[str, dg.MetadataValue]] = {}
    for day, currency, actual, expected, count, rows in per_day:
        values = by_day.setdefault(day, {})
        values["dagster/row_count"] = dg.MetadataValue.int(
            int(rows) + int(values.get("dagster/row_count", dg.MetadataValue.int(0)).value)
        )
        values[f"usage_actual_{currency}"] = dg.MetadataValue.float(round(float(actual or 0), 2))
        if expected is not None:
            values[f"usage_expected_{currency}"] = dg.MetadataValue.float(round(float(expected), 2))
        values["anomalous_series"] = dg.MetadataValue.int(
            int(count) + int(values.get("anomalous_series", dg.MetadataValue.int(0)).value)
        )
    for day in days_between(window):
        context.add_asset_metadata(
            by_day.get(
                day,
                {
                    "dagster/row_count": dg.MetadataValue.int(0),
                    "anomalous_series": dg.MetadataValue.int(0),
                },
            ),
            partition_key=day.isoformat(),
        )


def build_forecasts(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=FORECASTS,
        group_name="insights",
        kinds={"duckdb"},
        deps=[dg.AssetKey(["core", "allocated_costs"])],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=RESTATED_DAYS_PROPAGATE,
        pool=WAREHOUSE_POOL,
        description=(
            "Month-end forecasts as of each day per scope (rules YAML forecasts.scopes: total, "
            "team, cost center, provider) and currency, on EffectiveCost and BilledCost: actual "
            "on complete days + usage by weekday profile × damped trend + recurring charges on "
            "their day (one-time purchases never extrapolated), with an 80% interval; "
            "'insufficient history' under 28 complete days."
        ),
    )
    def forecasts(context: dg.AssetExecutionContext, warehouse: Warehouse, rules: RulesResource):
        first, last = partition_window(context)
        loaded = rules.load()
        with warehouse.get_connection() as con:
            if not wh.table_exists(con, ALLOCATED_COSTS_TABLE):
                raise dg.Failure(f"{ALLOCATED_COSTS_TABLE} does not exist yet.")
            table = forecast_rows(con, loaded, ALLOCATED_COSTS_TABLE, first, last)
            con.register("_forecasts", table)
            wh.replace_partitions(
                con, FORECASTS_TABLE, "SELECT * FROM _forecasts", days_between((first, last))
            )
            con.unregister("_forecasts")
        frame = table.to_pandas()
        counts = frame.groupby("charge_date").size()
        headline = frame[
            (frame["scope"] == loaded.forecasts.scopes[0].name)
            & (frame["basis"] == "EffectiveCost")
            & frame["forecast"].notna()
        ]
        for day in days_between((first, last)):
            metadata = {"dagster/row_count": dg.MetadataValue.int(int(counts.get(day, 0)))}
            for r in headline[headline["charge_date"] == day].itertuples():
                metadata[f"forecast_{r.BillingCurrency}"] = dg.MetadataValue.float(r.forecast)
                metadata[f"actual_to_date_{r.BillingCurrency}"] = dg.MetadataValue.float(
                    r.actual_to_date
                )
            context.add_asset_metadata(metadata, partition_key=day.isoformat())
        latest = frame[(frame["charge_date"] == last) & (frame["basis"] == "EffectiveCost")]
        shown = latest[
            [
                "scope",
                "series",
                "BillingCurrency",
                "status",
                "actual_to_date",
                "forecast",
                "lower_80",
                "upper_80",
                "complete_through",
            ]
        ].head(40)
        return dg.MaterializeResult(
            metadata={
                "forecasts": dg.MetadataValue.md(markdown_table(shown)),
                "model_version": dg.MetadataValue.text(fc.MODEL_VERSION),
            }
        )

    return forecasts


BUDGET_STATUS = dg.AssetKey(["insights", "budget_status"])
BUDGET_STATUS_TABLE = "insights.budget_status"
BUDGET_ALERTS_TABLE = "insights.budget_alerts"
BUDGET_CHECK = "budget_thresholds"
PLOTTED_BUDGETS = 20


def crossing_text(row: dict, crossing) -> str:
    cur = row["BillingCurrency"]
    owner = f" Owner: {row['owner']}." if row["owner"] else ""
    head = f"Budget {row['budget']} ({row['scope']}, {row['period_start']}..{row['period_end']}"
    if crossing.kind == "burn rate":
        return (
            f"{head}): burn rate {crossing.value:.1f}x the projected daily rate on "
            f"{row['burn_rate_day']} (pages at {crossing.threshold:g}x); actual "
            f"{row['actual']:,.2f} of {row['amount']:,.2f} {cur}.{owner}"
        )
    interval = (
        f" (80%: {row['forecast_lower_80']:,.2f}-{row['forecast_upper_80']:,.2f})"
        if row["forecast_lower_80"] is not None
        else ""
    )
    forecast = (
        f"forecast {row['forecast']:,.2f} {cur}{interval}" if row["forecast"] is not None else ""
    )
    when = f", 100% projected on {row['crosses_100_on']}" if row["crosses_100_on"] else ""
    return (
        f"{head}): {crossing.kind} crossed {crossing.threshold:g}% on {row['charge_date']} "
        f"({crossing.value:.0f}%): actual {row['actual']:,.2f} {cur} of {row['amount']:,.2f}; "
        f"{forecast}{when}.{owner}"
    )


def build_budget_status(ctx: DefsContext) -> dg.AssetsDefinition:
    @dg.asset(
        key=BUDGET_STATUS,
        group_name="insights",
        kinds={"duckdb"},
        deps=[dg.AssetKey(["core", "allocated_costs"])],
        partitions_def=ctx.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=RESTATED_DAYS_PROPAGATE,
        pool=WAREHOUSE_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                BUDGET_CHECK,
                asset=BUDGET_STATUS,
                description=(
                    "Fails once per budget threshold crossed (actual 50/80/100%, forecast "
                    "80/100%, re-armed 5 points below) and per runaway day (burn rate >= 3x), "
                    "routed to the budget's owner and every alert target; error at 100% and for "
                    "burn rate, warn below."
                ),
            )
        ],
        description=(
            "Per budget of the rules YAML (scope, month/quarter/year, amount and currency, "
            "EffectiveCost or BilledCost) as of each day: actual, forecast with its 80% "
            "interval, % of the amount, status (on track, at risk, over budget), the day the "
            "projection reaches 100%, thresholds fired, burn rate. Other currencies are shown, "
            "never converted."
        ),
    )
    def budget_status(
        context: dg.AssetExecutionContext, warehouse: Warehouse, rules: RulesResource
    ):
        first, last = partition_window(context)
        loaded = rules.load()
        budgets = list(loaded.budgets)
        table, new = pa.Table.from_pylist([], schema=BUDGET_SCHEMA), []
        with warehouse.get_connection() as con:
            if not wh.table_exists(con, ALLOCATED_COSTS_TABLE):
                raise dg.Failure(f"{ALLOCATED_COSTS_TABLE} does not exist yet.")
            con.execute("CREATE SCHEMA IF NOT EXISTS insights")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {BUDGET_ALERTS_TABLE} (alert_key VARCHAR PRIMARY "
                "KEY, budget VARCHAR, kind VARCHAR, threshold DOUBLE, as_of DATE, "
                "alerted_in_run VARCHAR, alerted_at TIMESTAMPTZ)"
            )
            if budgets:
                table, crossings = budget_rows(
                    con, loaded, ALLOCATED_COSTS_TABLE, BUDGET_STATUS_TABLE, first, last
                )
                newest = con.execute(
                    f"SELECT max(charge_date) FROM {ALLOCATED_COSTS_TABLE}"
                ).fetchall()[0][0]
                recent = (newest or last) - timedelta(days=loaded.budget_alerts.alert_recent_days)
                known = {
                    r[0]
                    for r in con.execute(f"SELECT alert_key FROM {BUDGET_ALERTS_TABLE}").fetchall()
                }
                new = [
                    (key, row, c)
                    for key, row, c in crossings
                    if row["charge_date"] >= recent and key not in known
                ]
            con.register("_budget_status", table)
            wh.replace_partitions(
                con,
                BUDGET_STATUS_TABLE,
                "SELECT * FROM _budget_status",
                days_between((first, last)),
            )
            con.unregister("_budget_status")
            # Days of one period may be built out of order (a backfill, two delivery runs): a
            # threshold alerted earlier in the period is alerted again only if the stored days
            # since show it fell rearm_points below (re-armed).
            new = [
                (key, row, c)
                for key, row, c in new
                if c.kind == "burn rate"
                or not _alerted_and_not_rearmed(con, row, c, loaded.budget_alerts.rearm_points)
            ]
            if new:
                con.executemany(
                    f"INSERT INTO {BUDGET_ALERTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, now())",
                    [
                        [
                            key,
                            row["budget"],
                            c.kind,
                            c.threshold,
                            row["charge_date"],
                            context.run_id,
                        ]
                        for key, row, c in new
                    ],
                )
        frame = table.to_pandas()
        counts = frame.groupby("charge_date").size()
        # The UI plots these per partition: the first budgets of the rules, not a thousand.
        plotted = frame[frame["budget"].isin([b.name for b in budgets[:PLOTTED_BUDGETS]])]
        by_day = dict(list(plotted.groupby("charge_date")))
        for day in days_between((first, last)):
            rows = by_day.get(day, plotted.iloc[:0])
            metadata = {"dagster/row_count": dg.MetadataValue.int(int(counts.get(day, 0)))}
            for r in rows.itertuples():
                metadata[f"{r.budget}_actual_pct"] = dg.MetadataValue.float(float(r.actual_pct))
                if r.forecast_pct == r.forecast_pct and r.forecast_pct is not None:
                    metadata[f"{r.budget}_forecast_pct"] = dg.MetadataValue.float(
                        float(r.forecast_pct)
                    )
            context.add_asset_metadata(metadata, partition_key=day.isoformat())
        latest = frame[frame["charge_date"] == last]
        shown = latest[
            [
                "budget",
                "scope",
                "owner",
                "period_start",
                "BillingCurrency",
                "amount",
                "actual",
                "actual_pct",
                "forecast",
                "forecast_pct",
                "status",
                "crosses_100_on",
                "other_currencies",
            ]
        ]
        yield dg.MaterializeResult(
            asset_key=BUDGET_STATUS,
            metadata={
                "budgets": dg.MetadataValue.int(len(budgets)),
                "budget_status": dg.MetadataValue.md(
                    markdown_table(shown) if budgets else "(no budgets in the rules YAML)"
                ),
            },
        )
        severe = any(c.kind == "burn rate" or c.threshold >= 100 for _, _, c in new)
        owners = sorted({row["owner"] for _, row, _ in new if row["owner"]})
        yield dg.AssetCheckResult(
            asset_key=BUDGET_STATUS,
            check_name=BUDGET_CHECK,
            passed=not new,
            severity=dg.AssetCheckSeverity.ERROR if severe else dg.AssetCheckSeverity.WARN,
            description=(
                "\n".join(crossing_text(row, c) for _, row, c in new[:10])
                + (f"\n... and {len(new) - 10} more" if len(new) > 10 else "")
                if new
                else "No budget threshold crossed."
            ),
            metadata={
                "crossings": dg.MetadataValue.int(len(new)),
                "finops/route_to": dg.MetadataValue.text(",".join(owners)),
            },
        )

    return budget_status


def _alerted_and_not_rearmed(con, row: dict, crossing, rearm_points: float) -> bool:
    alerted = con.execute(
        f"SELECT max(as_of) FROM {BUDGET_ALERTS_TABLE} WHERE budget = ? AND kind = ? AND "
        "threshold = ? AND as_of BETWEEN ? AND ?",
        [row["budget"], crossing.kind, crossing.threshold, row["period_start"], row["period_end"]],
    ).fetchall()[0][0]
    if alerted is None:
        return False
    column = "actual_pct" if crossing.kind == "actual" else "forecast_pct"
    lowest = con.execute(
        f"SELECT min({column}) FROM {BUDGET_STATUS_TABLE} WHERE budget = ? AND charge_date "
        "BETWEEN ? AND ?",
        [row["budget"], min(alerted, row["charge_date"]), max(alerted, row["charge_date"])],
    ).fetchall()[0][0]
    return lowest is None or lowest >= crossing.threshold - rearm_points

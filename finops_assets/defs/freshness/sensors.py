"""Freshness: one ``delivered_on_time`` check per raw source, and a sensor that evaluates them
every minute without launching runs (its evaluations reach the alerts sensor)."""

import json
from datetime import UTC, date, datetime

import dagster as dg

from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.defs.freshness.deadlines import CHECK_NAME, RAW_KEYS, evaluate_freshness
from finops_assets.lib.rules import Rules
from finops_assets.resources.rules import RulesResource
from finops_assets.sources import SOURCE_NAMES

FRESHNESS_INTERVAL_SECONDS = 60


def _evaluation(instance: dg.DagsterInstance, rules: Rules, source: str, now: datetime, first_day):
    sla = rules.freshness.get(source)
    if sla is None:
        return None, None
    state = evaluate_freshness(instance, source, sla, now, first_day)
    return state, dg.AssetCheckResult(
        asset_key=RAW_KEYS[source],
        check_name=CHECK_NAME,
        passed=state.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=state.description,
        metadata=state.metadata(sla),
    )


def build_freshness_check(source: str, first_day: date) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=RAW_KEYS[source],
        name=CHECK_NAME,
        blocking=False,
        description=(
            f"Yesterday's {source} partition arrives by its deadline: day D must be loaded "
            "freshness.<source>.sla_hours after D ends (UTC). Evaluated by the freshness sensor "
            "every minute and after every load."
        ),
    )
    def _check(context: dg.AssetCheckExecutionContext, rules: RulesResource) -> dg.AssetCheckResult:
        _, result = _evaluation(
            context.instance, rules.load(), source, datetime.now(UTC), first_day
        )
        if result is None:
            return dg.AssetCheckResult(
                passed=True, description=f"No freshness SLA for {source} in the rules."
            )
        return result

    return _check


def _already_recorded(instance: dg.DagsterInstance, source: str, state) -> bool:
    """The check ran inside a run (a load launched by hand) and recorded this very result."""
    record = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(RAW_KEYS[source], CHECK_NAME)
    )
    event = record.event.dagster_event if record and record.event else None
    evaluation = event.event_specific_data if event else None
    if evaluation is None or not hasattr(evaluation, "passed"):
        return False
    due = evaluation.metadata.get("due_day")
    return evaluation.passed == state.passed and (
        state.passed or (due is not None and due.value == state.due.isoformat())
    )


def freshness_tick(
    instance: dg.DagsterInstance, rules: Rules, cursor: str | None, now: datetime, first_day: date
) -> dg.SensorResult:
    """One evaluation of every source's deadline at ``now``: a check evaluation for each source
    whose result changed (or, while late, whose due day moved), so each late day alerts once."""
    previous = json.loads(cursor) if cursor else {}
    current, events, notes = {}, [], []
    for source in SOURCE_NAMES:
        state, result = _evaluation(instance, rules, source, now, first_day)
        if state is None:
            continue
        signature = [state.passed, state.due.isoformat() if not state.passed else None]
        current[source] = signature
        notes.append(f"{source}: {'on time' if state.passed else 'LATE'}")
        if previous.get(source) != signature and not _already_recorded(instance, source, state):
            events.append(
                dg.AssetCheckEvaluation(
                    asset_key=result.asset_key,
                    check_name=CHECK_NAME,
                    passed=result.passed,
                    severity=result.severity,
                    description=result.description,
                    metadata=result.metadata,
                )
            )
    new_cursor = json.dumps(current, sort_keys=True)
    if events:
        return dg.SensorResult(asset_events=events, cursor=new_cursor)
    return dg.SensorResult(
        skip_reason="No change: " + (", ".join(notes) or "no source has an SLA"),
        cursor=new_cursor,
    )


def build_freshness_sensor(first_day: date) -> dg.SensorDefinition:
    @dg.sensor(
        name="freshness",
        minimum_interval_seconds=FRESHNESS_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Evaluates each source's delivered_on_time check and records the result when it "
            "changes (or when a new day becomes due while late), so each late day alerts once."
        ),
    )
    def freshness_sensor(context: dg.SensorEvaluationContext, rules: RulesResource):
        return freshness_tick(
            context.instance, rules.load(), context.cursor, datetime.now(UTC), first_day
        )

    return freshness_sensor


def build(ctx: DefsContext) -> dg.Definitions:
    first_day = ctx.partitions.start.date()
    return definitions_of(
        [build_freshness_check(source, first_day) for source in SOURCE_NAMES],
        build_freshness_sensor(first_day),
    )

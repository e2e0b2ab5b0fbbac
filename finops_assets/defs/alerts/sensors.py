"""alerts_sensor: every failed asset check and every failed run reaches a person, once.

The sensor reads the instance event log after its cursor (an event storage id), turns each failure
into an :class:`~finops_assets.lib.alerts.Alert` and sends it to the webhooks and email addresses
in the rules' ``alerts:`` section. It launches nothing. A target that fails keeps the alert in the
cursor's pending list and gets it again on the next tick, up to ``alerts.max_attempts`` ticks, so a
dead Slack webhook delays nothing else and never makes the email target see a duplicate.
"""

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from finops_assets.defs.context import DefsContext, definitions_of
from finops_assets.lib.alerts import (
    OWNER_TARGET_PREFIX,
    Alert,
    AlertsConfig,
    DeliveryCursor,
    DeliveryError,
    PendingDelivery,
    Severity,
    check_failed_alert,
    owner_targets,
    partition_label,
    run_failed_alert,
    send,
    targets_for,
)
from finops_assets.resources.rules import RulesResource

# The SLI asset the delivery counts are recorded on (defs/ops/sensors.py).
PIPELINE_HEALTH = dg.AssetKey(["ops", "pipeline_health"])

# Events of each type read per tick; more wait for the next tick (the cursor stops before them).
EVENTS_PER_TICK = 100
# Alerts held for retry in the cursor at most; beyond it the oldest are given up (and logged).
MAX_PENDING = 500
# Stop sending well before the daemon's 60 s sensor evaluation timeout: a tick that times out
# does not save its cursor, and every alert it sent would go out again.
TICK_BUDGET_SECONDS = 30.0


def _error_summary(error) -> str | None:
    """The root cause of a SerializableErrorInfo (the user's exception, not Dagster's wrapper)."""
    if error is None:
        return None
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return (error.message or "").strip() or None


class _AlertBuilder:
    """Turns event log entries into alerts, reading each run once per tick."""

    def __init__(self, instance: dg.DagsterInstance, config: AlertsConfig):
        self._instance = instance
        self._config = config
        self._runs: dict[str, dg.DagsterRun | None] = {}

    def _run(self, run_id: str | None) -> dg.DagsterRun | None:
        if not run_id:
            return None
        if run_id not in self._runs:
            self._runs[run_id] = self._instance.get_run_by_id(run_id)
        return self._runs[run_id]

    def build(self, storage_id: int, entry: dg.EventLogEntry) -> Alert | None:
        """The alert for a failure event, or None when it is not one the config asks for."""
        event = entry.dagster_event
        if event is None:
            return None
        timestamp = datetime.fromtimestamp(entry.timestamp, UTC)
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            severity: Severity = (
                "warn" if evaluation.severity == dg.AssetCheckSeverity.WARN else "error"
            )
            if evaluation.passed or not self._config.wants(severity):
                return None
            run = self._run(entry.run_id)
            return check_failed_alert(
                storage_id=storage_id,
                asset_key=evaluation.asset_key.to_user_string(),
                check_name=evaluation.check_name,
                severity=severity,
                timestamp=timestamp,
                description=evaluation.description,
                partition=evaluation.partition or (partition_label(run.tags) if run else None),
                run_id=entry.run_id,
                job_name=event.job_name or None,
                metadata={key: value.value for key, value in evaluation.metadata.items()},
                ui_base_url=self._config.ui_base_url,
            )
        if event.event_type == dg.DagsterEventType.RUN_FAILURE:
            if not self._config.include_run_failures:
                return None
            run = self._run(entry.run_id)
            return run_failed_alert(
                storage_id=storage_id,
                run_id=entry.run_id,
                job_name=event.job_name or (run.job_name if run else "unknown job"),
                assets=self._run_assets(run),
                timestamp=timestamp,
                message=self._failure_message(entry, run),
                partition=partition_label(run.tags) if run else None,
                ui_base_url=self._config.ui_base_url,
            )
        return None

    def _run_assets(self, run: dg.DagsterRun | None) -> list[str]:
        """The assets a run targeted: its selection, else those it planned to materialize."""
        if run is None:
            return []
        keys = run.asset_selection or self._instance.get_asset_keys_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        )
        return sorted(key.to_user_string() for key in keys)

    def _failure_message(self, entry: dg.EventLogEntry, run: dg.DagsterRun | None) -> str:
        """Dagster's run failure message plus the first failed step's root-cause error."""
        event = entry.dagster_event
        lines = [(event.message if event else None) or entry.user_message or "The run failed."]
        data = event.event_specific_data if event else None
        step_event = getattr(data, "first_step_failure_event", None)
        if step_event is None:
            step_failures = self._instance.all_logs(
                entry.run_id, of_type=dg.DagsterEventType.STEP_FAILURE
            )
            step_event = step_failures[0].dagster_event if step_failures else None
        step_error = (
            _error_summary(getattr(step_event.event_specific_data, "error", None))
            if (step_event is not None)
            else None
        )
        run_error = _error_summary(getattr(data, "error", None))
        if step_error:
            lines.append(f"{step_event.step_key}: {step_error[:1500]}")
        elif run_error:
            lines.append(run_error[:1500])
        if run is not None and run.tags.get("dagster/will_retry") == "true":
            lines.append("Dagster will retry this run.")
        return "\n".join(lines)


def _fetch_new_failures(
    storage, after: int, ceiling: int, include_runs: bool
) -> tuple[dict[int, dg.EventLogEntry], int]:
    """Failure events after ``after``, and the storage id every event type has been read up to
    (events above it are read next tick, so nothing falls between two pages)."""
    event_types = [dg.DagsterEventType.ASSET_CHECK_EVALUATION]
    if include_runs:
        event_types.append(dg.DagsterEventType.RUN_FAILURE)
    frontier = ceiling
    fetched: dict[int, dg.EventLogEntry] = {}
    for event_type in event_types:
        page = storage.get_logs_for_all_runs_by_log_id(
            after_cursor=after, dagster_event_type=event_type, limit=EVENTS_PER_TICK
        )
        if len(page) >= EVENTS_PER_TICK:
            frontier = min(frontier, max(page))
        fetched.update(page)
    return {i: e for i, e in fetched.items() if i <= frontier}, frontier


def replay_start(storage, ceiling: int, since_timestamp: float) -> int:
    """The storage id to start after on a first tick: the last one recorded before
    ``since_timestamp`` (a binary search over the log, whose ids grow with time), so every event
    from then on is read; ``ceiling`` when nothing that recent exists."""

    def recent_after(storage_id: int) -> bool:
        page = storage.get_logs_for_all_runs_by_log_id(after_cursor=storage_id, limit=1)
        return not page or next(iter(page.values())).timestamp >= since_timestamp

    low, high = -1, ceiling  # recent_after(high) holds: nothing is after the ceiling
    if recent_after(low):
        return low
    while high - low > 1:
        middle = (low + high) // 2
        if recent_after(middle):
            high = middle
        else:
            low = middle
    return high


def _refetch(storage, storage_id: int) -> dg.EventLogEntry | None:
    page = storage.get_logs_for_all_runs_by_log_id(after_cursor=storage_id - 1, limit=1)
    return page.get(storage_id)


def _summary(
    alerts: int,
    deliveries: int,
    failures: int,
    given_up: int,
    pending: Mapping[int, PendingDelivery],
    down: set[str],
) -> str:
    if not alerts:
        return "Nothing to deliver: no new failed asset checks or failed runs."
    parts = [f"{alerts} alert(s): {deliveries} delivered, {failures} delivery error(s)"]
    if pending:
        failing = f" (failing: {', '.join(sorted(down))})" if down else ""
        parts.append(f"{len(pending)} held for retry{failing}")
    if given_up:
        parts.append(f"{given_up} given up")
    return "; ".join(parts) + "."


@dg.sensor(
    name="alerts_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Sends each failed asset check and each failed run once to the webhooks and email "
        "addresses in the rules' alerts: section (FINOPS_CONFIG)."
    ),
)
def alerts_sensor(context: dg.SensorEvaluationContext, rules: RulesResource):
    config = rules.load().alerts
    storage = context.instance.event_log_storage
    ceiling = storage.get_maximum_record_id() or 0
    state = DeliveryCursor.parse(context.cursor)

    if state is None:
        # First tick: start near the end of the event log rather than replaying its history, but
        # keep the failures of the last replay_minutes (a load the daemon ran before this sensor's
        # first evaluation must still reach a person).
        start = replay_start(
            storage,
            ceiling,
            time.time() - config.replay_minutes * 60,
        )
        context.update_cursor(DeliveryCursor(after=start).dumps())
        kept = (
            f"the {config.replay_minutes:g} minutes before it are sent from the next tick"
            if start < ceiling
            else f"none was recorded in the {config.replay_minutes:g} minutes before it"
        )
        return dg.SkipReason(
            f"First tick: alerting starts after event storage id {start}; of the failures "
            f"recorded before the sensor started, {kept} (alerts.replay_minutes; set the cursor "
            "to an earlier id to send older ones)."
        )
    if ceiling < state.after:
        context.log.warning(
            f"The event log ends at storage id {ceiling}, before the cursor ({state.after}): it "
            "was wiped or replaced. Restarting from its end; pending retries are dropped."
        )
        state = DeliveryCursor(after=ceiling)
    if not config.targets:
        context.update_cursor(DeliveryCursor(after=ceiling).dumps())
        return dg.SkipReason(
            f"No alert targets configured in {rules.resolved_path()} (alerts.webhooks, "
            "alerts.email): failed checks and runs are only visible in the Dagster UI."
        )

    base = tuple(target.name for target in config.targets)
    owners, owner_problems = owner_targets(
        config,
        {
            name: (owner.alert_recipients, owner.alert_webhook_env)
            for name, owner in rules.load().owners.items()
        },
    )
    for problem in owner_problems:
        context.log.warning(problem)
    targets = {**{target.name: target for target in config.targets}, **owners}
    new_events, after = _fetch_new_failures(
        storage, state.after, ceiling, config.include_run_failures
    )
    # Retries first (oldest failures first), then the new events in the order they happened.
    # Targets owed per event: known for retries; for new events (None) decided once the alert is
    # built (every target, plus the owners it is routed to).
    work: list[tuple[int, tuple[str, ...] | None, int]] = []
    for storage_id, entry in sorted(state.pending.items()):
        owed = tuple(name for name in entry.targets if name in targets)
        if owed:
            work.append((storage_id, owed, entry.attempts))
        else:
            context.log.info(
                f"Event {storage_id}: its pending targets {', '.join(entry.targets)} are no "
                "longer configured; dropping the retry."
            )
    work += [(storage_id, None, 0) for storage_id in sorted(new_events)]

    builder = _AlertBuilder(context.instance, config)
    deadline = time.monotonic() + TICK_BUDGET_SECONDS
    pending: dict[int, PendingDelivery] = {}
    down: set[str] = set()  # targets that failed this tick: later alerts wait for the next tick
    alerts = deliveries = failures = given_up = 0
    for position, (storage_id, owed, attempts) in enumerate(work):
        if time.monotonic() > deadline:
            for later_id, later_owed, later_attempts in work[position:]:
                if later_id in state.pending and later_owed is not None:
                    pending[later_id] = PendingDelivery(later_owed, later_attempts)
                else:
                    after = min(after, later_id - 1)
            context.log.warning(
                f"Stopped after {TICK_BUDGET_SECONDS:.0f} s; "
                f"{len(work) - position} event(s) wait for the next tick."
            )
            break
        entry = new_events.get(storage_id) or _refetch(storage, storage_id)
        if entry is None:
            context.log.warning(f"Event {storage_id} is no longer in the event log; dropping it.")
            continue
        try:
            alert = builder.build(storage_id, entry)
        except Exception:
            # One unreadable event must not block every later alert: log it loudly, move on.
            context.log.exception(f"Cannot build an alert from event {storage_id}; skipping it.")
            continue
        if alert is None:
            continue
        if owed is None:
            owed = targets_for(alert, base, owners)
            unknown = [
                o
                for o in alert.route_to
                if not any(n.startswith(f"{OWNER_TARGET_PREFIX}{o}:") for n in owners)
            ]
            if unknown:
                context.log.info(
                    f"{alert.alert_id}: owner(s) {', '.join(unknown)} have no alert_recipients "
                    "or alert_webhook_env under owners:; sent to the alert targets only."
                )
        alerts += 1
        still_owed: list[str] = []
        for name in owed:
            if name in down:
                still_owed.append(name)
                continue
            try:
                send(alert, targets[name], os.environ)
                deliveries += 1
            except DeliveryError as error:  # already redacted
                failures += 1
                context.log.warning(f"{alert.alert_id} ({alert.title}): {error}")
                if error.retry:
                    down.add(name)
                    still_owed.append(name)
        if not still_owed:
            continue
        if attempts + 1 >= config.max_attempts:
            given_up += 1
            context.log.error(
                f"Giving up on {alert.alert_id} ({alert.title}) for {', '.join(still_owed)} "
                f"after {attempts + 1} attempt(s); the errors are in this sensor's earlier logs."
            )
        else:
            pending[storage_id] = PendingDelivery(tuple(still_owed), attempts + 1)

    if len(pending) > MAX_PENDING:
        oldest = sorted(pending)[: len(pending) - MAX_PENDING]
        context.log.error(
            f"{len(pending)} alerts wait for retry, more than {MAX_PENDING}; giving up the "
            f"{len(oldest)} oldest (event storage ids {oldest[0]}..{oldest[-1]})."
        )
        given_up += len(oldest)
        for storage_id in oldest:
            del pending[storage_id]

    context.update_cursor(DeliveryCursor(after=after, pending=pending).dumps())
    summary = _summary(alerts, deliveries, failures, given_up, pending, down)
    if not alerts:
        return dg.SkipReason(summary)
    context.log.info(summary)
    # What was attempted and delivered, for ops/pipeline_health's alert_delivery_success.
    observation = dg.AssetObservation(
        asset_key=PIPELINE_HEALTH,
        metadata={
            "alerts_attempted": dg.MetadataValue.int(deliveries + failures),
            "alerts_delivered": dg.MetadataValue.int(deliveries),
            "alerts_given_up": dg.MetadataValue.int(given_up),
            "failing_targets": dg.MetadataValue.text(", ".join(sorted(down))),
        },
    )
    return dg.SensorResult(skip_reason=summary, asset_events=[observation])


def build(ctx: DefsContext) -> dg.Definitions:
    return definitions_of(alerts_sensor)

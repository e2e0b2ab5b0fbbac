"""ops/pipeline_health: the pipeline's own SLIs, evaluated by a sensor every minute.

Each tick gathers what the instance already records (delivery observations, materializations per
partition, the duplicate and contract checks, failed load steps, publish runs, the alerts
sensor's delivery counts; ``gather``) and computes every indicator of ``lib/pipeline_health``
against the rules' ``slos:``. One check per indicator (``slo_<name>``) on ``ops/pipeline_health``
records its result when it changes, so a breach reaches the alerts sensor within one tick, and
the day's values are recorded as a materialization of the asset (plotted per partition in the UI).
"""

import itertools
import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import dagster as dg

from finops_assets.defs.context import DefsContext
from finops_assets.defs.freshness.deadlines import RAW_KEYS
from finops_assets.lib import pipeline_health as ph
from finops_assets.lib.rules import Rules
from finops_assets.resources.rules import RulesResource
from finops_assets.sources import SOURCE_NAMES

PIPELINE_HEALTH = dg.AssetKey(["ops", "pipeline_health"])
SLI_NAMES = (
    "delivery_success_rate",
    "delivery_latency_hours",
    "mart_latency_hours",
    "data_to_display_hours",
    "duplicate_line_rate",
    "overlapping_deliveries",
    "backfill_backlog",
    "schema_failures",
    "silent_zero_loads",
    "unallocated_share",
    "alert_delivery_success",
)
INTERVAL_SECONDS = 60
COST_FACTS = dg.AssetKey(["core", "cost_facts"])
CHAIN = [
    COST_FACTS,
    dg.AssetKey(["core", "amortized_costs"]),
    dg.AssetKey(["core", "allocated_costs"]),
    dg.AssetKey(["mart", "daily_cost_by_team"]),
]
UNTAGGED = dg.AssetKey(["mart", "untagged_spend"])
RECORDS_LIMIT = 5000
_DAY = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def _parse_time(text) -> datetime | None:
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _at(record) -> datetime:
    return datetime.fromtimestamp(record.timestamp, UTC)


def _day_events(instance, key, days: list[str]) -> list[ph.DayEvent]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=days), limit=RECORDS_LIMIT
    ).records
    events = []
    for record in records:
        meta = record.asset_materialization.metadata
        rows = meta.get("dagster/row_count")
        events.append(
            ph.DayEvent(
                date.fromisoformat(record.partition_key),
                _at(record),
                None if rows is None else int(rows.value),
            )
        )
    return events


def _latest_ids(instance, key, days: set[str]) -> dict[str, int]:
    return dict(
        instance.get_latest_storage_id_by_partition(
            key, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=days
        )
    )


def _newer(upstream: dict[str, int], downstream: dict[str, int]) -> int:
    return sum(1 for day, uid in upstream.items() if uid > downstream.get(day, -1))


def _check_metadata(instance, key: dg.AssetKey, name: str):
    record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(key, name))
    event = record.event.dagster_event if record and record.event else None
    evaluation = event.event_specific_data if event else None
    return evaluation if evaluation is not None and hasattr(evaluation, "passed") else None


def gather(instance: dg.DagsterInstance, rules: Rules, now: datetime, first_day: date):
    """The signals of the window ending yesterday, from the instance's event log."""
    start, end = ph.window(now, rules.slos.window_days)
    start = max(start, first_day)
    days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    since = datetime.combine(start, datetime.min.time(), UTC).timestamp()
    signals = ph.Signals(now=now, sla_hours={})
    raw_loads, deliveries, failures, mismatches, backlog = {}, [], [], [], {}
    facts_ids = _latest_ids(instance, COST_FACTS, set(days)) if days else {}
    for source in SOURCE_NAMES:
        sla = rules.freshness.get(source)
        key = RAW_KEYS[source]
        observations = instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=key, after_timestamp=since - 40 * 86400),
            limit=RECORDS_LIMIT,
        ).records
        for record in observations:
            meta = record.asset_observation.metadata
            requested = meta.get("requested_days")
            if requested is None or not isinstance(requested.value, list):
                continue
            deliveries.append(
                ph.DeliverySeen(
                    source,
                    str(meta["stream"].value) if "stream" in meta else "",
                    str(meta["delivery_id"].value) if "delivery_id" in meta else "",
                    _parse_time(meta["created_at"].value) if "created_at" in meta else None,
                    tuple(date.fromisoformat(d) for d in requested.value),
                )
            )
        loads = _day_events(instance, key, days) if days else []
        for record in instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_timestamp=since), limit=RECORDS_LIMIT
        ).records:
            found = record.asset_materialization.metadata.get("manifest_row_count_mismatches")
            for delivery, counts in ((found.value or {}) if found else {}).items():
                mismatches.append(
                    ph.RowCountMismatch(source, delivery, counts["declared"], counts["loaded"])
                )
        if sla is None or not (loads or any(d.source == source for d in deliveries)):
            continue
        signals.sla_hours[source] = sla.sla_hours
        raw_loads[source] = loads
        backlog[source] = _newer(_latest_ids(instance, key, set(days)), facts_ids)
        contract = _check_metadata(instance, key, "contract")
        if contract is not None and not contract.passed:
            failures.append(ph.Failure(source, "contract: " + (contract.description or ""), now))
    # Failed load steps of the window, by source.
    for run in instance.get_run_records(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE], updated_after=datetime.fromtimestamp(since, UTC)
        ),
        limit=200,
    ):
        for record in instance.get_records_for_run(
            run.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE
        ).records:
            event = record.event_log_entry.dagster_event
            for source in SOURCE_NAMES:
                if event.step_key == f"raw__{source}":
                    error = event.event_specific_data.error
                    while getattr(error, "cause", None) is not None:
                        error = error.cause
                    failures.append(ph.Failure(source, (error.message or "").strip(), now))
    # The shared stages.
    if days:
        ids = [_latest_ids(instance, key, set(days)) for key in CHAIN]
        backlog[ph.ALL] = sum(_newer(up, down) for up, down in itertools.pairwise(ids))
        signals.fact_rows = {
            e.day: e.rows or 0 for e in _day_events(instance, COST_FACTS, days) if e.rows
        }
        signals.mart_loads = _day_events(instance, CHAIN[-1], days)
        unallocated: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for record in instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=UNTAGGED, asset_partitions=days), limit=RECORDS_LIMIT
        ).records:
            for name, value in record.asset_materialization.metadata.items():
                for prefix, index in (("unallocated_effective_", 0), ("total_effective_", 1)):
                    if name.startswith(prefix):
                        unallocated[name[len(prefix) :]][index] += Decimal(str(value.value))
        signals.unallocated = {c: (u, t) for c, (u, t) in unallocated.items()}
    duplicates = _check_metadata(instance, COST_FACTS, "no_duplicate_charges")
    if duplicates is not None and not duplicates.passed:
        details = duplicates.metadata.get("details")
        per_day: dict[date, int] = defaultdict(int)
        overlapping = set()
        for line in str(details.value if details else "").splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) >= 4 and _DAY.fullmatch(cells[0]):
                day = date.fromisoformat(cells[0])
                per_day[day] += int(cells[-1]) if cells[-1].isdigit() else 0
                if "same charge in" in cells[2]:
                    overlapping.add(day)
        signals.duplicate_rows = dict(per_day)
        signals.overlapping_days = overlapping
    # Published days: successful publish runs of the window (no days = every day).
    published = []
    for run in instance.get_run_records(
        dg.RunsFilter(
            job_name="publish_serving",
            statuses=[dg.DagsterRunStatus.SUCCESS],
            updated_after=datetime.fromtimestamp(since, UTC),
        ),
        limit=500,
    ):
        config = run.dagster_run.run_config.get("ops", {})
        asked = next(iter(config.values()), {}).get("config", {}).get("days") or days
        at = datetime.fromtimestamp(run.end_time or run.update_timestamp.timestamp(), UTC)
        published += [ph.DayEvent(date.fromisoformat(d), at) for d in asked if d in days]
    signals.published = published
    # What the alerts sensor attempted and delivered.
    for record in instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=PIPELINE_HEALTH, after_timestamp=since),
        limit=RECORDS_LIMIT,
    ).records:
        meta = record.asset_observation.metadata
        if "alerts_attempted" in meta:
            signals.alerts_attempted += int(meta["alerts_attempted"].value)
            signals.alerts_delivered += int(meta["alerts_delivered"].value)
    signals.deliveries = deliveries
    signals.raw_loads = raw_loads
    signals.failures = failures
    signals.row_count_mismatches = mismatches
    signals.backlog = backlog
    return signals


def _results(slis: list[ph.Sli]) -> dict[str, dg.AssetCheckResult]:
    by_name: dict[str, list[ph.Sli]] = defaultdict(list)
    for sli in slis:
        by_name[sli.name].append(sli)
    results = {}
    for name in SLI_NAMES:
        found = by_name.get(name, [])
        breached = [s for s in found if s.breached]
        results[name] = dg.AssetCheckResult(
            asset_key=PIPELINE_HEALTH,
            check_name=f"slo_{name}",
            passed=not breached,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                "; ".join(s.describe() for s in breached)
                if breached
                else ("; ".join(s.describe() for s in found) or f"{name}: nothing to measure")
            ),
            metadata={
                s.source: dg.MetadataValue.float(float(s.value))
                for s in found
                if s.value is not None
            },
        )
    return results


def health_tick(
    instance: dg.DagsterInstance, rules: Rules, cursor: str | None, now: datetime, first_day
) -> dg.SensorResult:
    """One evaluation: a check evaluation for every indicator whose result changed, and the
    day's values as a materialization of ops/pipeline_health when any value changed."""
    previous = json.loads(cursor) if cursor else {}
    slis = ph.compute(gather(instance, rules, now, first_day), rules.slos)
    results = _results(slis)
    current = {
        name: [r.passed, sorted(f"{s.source}:{s.value}" for s in slis if s.name == name)]
        for name, r in results.items()
    }
    events: list = []
    for name, result in results.items():
        if previous.get(name, [None])[0] != result.passed or (
            not result.passed and previous.get(name) != current[name]
        ):
            events.append(
                dg.AssetCheckEvaluation(
                    asset_key=PIPELINE_HEALTH,
                    check_name=result.check_name,
                    passed=result.passed,
                    severity=result.severity,
                    description=result.description,
                    metadata=result.metadata,
                )
            )
    values = {f"{s.source}/{s.name}": s.value for s in slis if s.value is not None}
    if values != previous.get("_values"):
        yesterday = (now.date() - timedelta(days=1)).isoformat()
        events.append(
            dg.AssetMaterialization(
                asset_key=PIPELINE_HEALTH,
                partition=yesterday if now.date() - timedelta(days=1) >= first_day else None,
                metadata={k: dg.MetadataValue.float(float(v)) for k, v in sorted(values.items())},
            )
        )
    new_cursor = json.dumps({**current, "_values": values}, sort_keys=True, default=str)
    breached = [s.describe() for s in slis if s.breached]
    if events:
        return dg.SensorResult(asset_events=events, cursor=new_cursor)
    return dg.SensorResult(
        skip_reason="No change: " + ("; ".join(breached) if breached else "every SLO met"),
        cursor=new_cursor,
    )


def build(ctx: DefsContext) -> dg.Definitions:
    first_day = ctx.partitions.start.date()

    @dg.asset(
        key=PIPELINE_HEALTH,
        group_name="ops",
        partitions_def=ctx.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=(
            "The pipeline's own SLIs (delivery success and latency, duplicates, overlaps, "
            "backlog, schema failures, row-count mismatches, unallocated share, data-to-display, "
            "alert delivery) over the window of the rules' slos:, as of now. The "
            "pipeline_health sensor records them every minute; materialize it to record them "
            "by hand."
        ),
    )
    def pipeline_health(
        context: dg.AssetExecutionContext, rules: RulesResource
    ) -> dg.MaterializeResult:
        loaded = rules.load()
        slis = ph.compute(
            gather(context.instance, loaded, datetime.now(UTC), first_day), loaded.slos
        )
        breached = [s.describe() for s in slis if s.breached]
        for line in breached:
            context.log.warning(line)
        return dg.MaterializeResult(
            metadata={
                **{
                    f"{s.source}/{s.name}": dg.MetadataValue.float(float(s.value))
                    for s in slis
                    if s.value is not None
                },
                "breached": dg.MetadataValue.text("; ".join(breached) or "none"),
            }
        )

    def build_check(name: str):
        @dg.asset_check(
            asset=PIPELINE_HEALTH,
            name=f"slo_{name}",
            blocking=False,
            description=f"{name} meets its objective in the rules' slos: section.",
        )
        def _check(context: dg.AssetCheckExecutionContext, rules: RulesResource):
            loaded = rules.load()
            slis = ph.compute(
                gather(context.instance, loaded, datetime.now(UTC), first_day), loaded.slos
            )
            return _results(slis)[name]

        return _check

    @dg.sensor(
        name="pipeline_health",
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Evaluates the pipeline's SLOs every minute; a breach fails its check.",
    )
    def pipeline_health_sensor(context: dg.SensorEvaluationContext, rules: RulesResource):
        return health_tick(
            context.instance, rules.load(), context.cursor, datetime.now(UTC), first_day
        )

    return dg.Definitions(
        assets=[pipeline_health],
        asset_checks=[build_check(name) for name in SLI_NAMES],
        sensors=[pipeline_health_sensor],
    )

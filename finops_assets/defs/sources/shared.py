"""Dagster glue every raw source shares: the empty result of a source a team does not use, and
the delivery sensor every source builds from its own pure ``scan`` (``lib/delivery_watch.py``
decides; this module turns the decision into run requests, observations and a cursor)."""

from collections.abc import Callable
from datetime import UTC, date, datetime

import dagster as dg

from finops_assets.contracts.checks import WAREHOUSE_POOL, build_contract_check
from finops_assets.defs.context import DefsContext
from finops_assets.defs.freshness.deadlines import CHECK_NAME
from finops_assets.lib.accounting import Accounted, summary
from finops_assets.lib.delivery_watch import Candidate, WatchState, plan
from finops_assets.lib.restatement import Measure, RestatementGuard, accepted_deliveries
from finops_assets.lib.rules import Rules
from finops_assets.metadata import add_daily_money_metadata, days_between
from finops_assets.resources.landing import LandingZone
from finops_assets.resources.rules import RulesResource
from finops_assets.resources.warehouse import Warehouse

SENSOR_INTERVAL_SECONDS = 30
# The run tags of a ranged (single-run) backfill, as Dagster's docs name them.
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
# A source's pure scan of its landing layout: (landing, rules, now) -> candidates.
Scan = Callable[[LandingZone, Rules, datetime], list[Candidate]]


def raw_asset(ctx: DefsContext, source: str, *, kinds: set[str], description: str):
    """The decorator of a source's ``raw/<source>`` asset: group ``raw``, the daily partitions,
    the source's freshness policy, a ranged backfill as one run, the warehouse pool."""
    return dg.asset(
        key=["raw", source],
        freshness_policy=ctx.freshness_policy(source),
        group_name="raw",
        kinds=kinds,
        partitions_def=ctx.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        description=description,
    )


def no_deliveries_result(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    table: str,
    days,
    where: str,
) -> dg.MaterializeResult:
    """A landing zone that carries none of this source's exports (the team does not use it):
    the days are stored empty instead of failing, and the run log says why."""
    cleared = warehouse.clear_partitions(table, days_between(days))
    context.log.info(f"No deliveries under {where}: {table} stays empty for these days.")
    add_daily_money_metadata(context, {}, days)
    return dg.MaterializeResult(
        metadata={"deliveries": dg.MetadataValue.text(""), "rows_cleared": cleared}
    )


def _run_request(
    request, checks: Callable[[dg.AssetKey], list[dg.AssetCheckKey] | None]
) -> dg.RunRequest:
    ids = sorted({c.delivery_id for c in request.deliveries})
    tags = {
        "finops/deliveries": ",".join(ids)[:250],
        "finops/streams": ",".join(sorted({c.stream for c in request.deliveries}))[:250],
    }
    target = dg.AssetKey.from_user_string(request.target)
    common = {
        "run_key": request.run_key,
        "asset_selection": [target],
        "asset_check_keys": checks(target),
        "tags": tags,
    }
    if request.start == request.end:
        return dg.RunRequest(partition_key=request.start.isoformat(), **common)
    tags[ASSET_PARTITION_RANGE_START_TAG] = request.start.isoformat()
    tags[ASSET_PARTITION_RANGE_END_TAG] = request.end.isoformat()
    return dg.RunRequest(**common)


def evaluate(
    scan: Scan,
    landing: LandingZone,
    rules: Rules,
    cursor: str | None,
    log: dg.DagsterLogManager,
    *,
    partitions: dg.DailyPartitionsDefinition,
    now: datetime | None = None,
    repository: dg.RepositoryDefinition | None = None,
) -> dg.SensorResult | dg.SkipReason:
    now = now or datetime.now(UTC)
    state = WatchState.from_cursor(cursor)
    candidates = scan(landing, rules, now)
    with dg.partition_loading_context(effective_dt=now):
        last_key = partitions.get_last_partition_key()
    first_day = partitions.start.date()
    result = plan(candidates, state, first_day, date.fromisoformat(last_key) if last_key else None)
    events = [
        dg.AssetObservation(
            asset_key=dg.AssetKey.from_user_string(c.target),
            description=f"Delivery {c.delivery_id} of {c.stream} {c.period}: {s['status']}",
            metadata={
                "delivery_id": dg.MetadataValue.text(s["delivery_id"]),
                "stream": dg.MetadataValue.text(s["stream"]),
                "billing_period": dg.MetadataValue.text(s["period"]),
                "completeness": dg.MetadataValue.text(s["status"]),
                "detail": dg.MetadataValue.text(s["detail"]),
                "created_at": dg.MetadataValue.text(s["created_at"]),
                "files": dg.MetadataValue.int(s["files"]),
                "days_covered": dg.MetadataValue.int(s["days_covered"]),
                "days_incomplete": dg.MetadataValue.int(s["days_incomplete"]),
                "days_requested": dg.MetadataValue.int(len(s["days_requested"])),
                # The days themselves (ops/pipeline_health: when each day was first delivered).
                "requested_days": dg.MetadataValue.json(s["days_requested"]),
                "location": dg.MetadataValue.text(s["where"]),
            },
        )
        for c, s in result.observations
    ]
    for line in result.skips:
        log.info(f"Not loaded: {line}")

    def checks(target: dg.AssetKey) -> list[dg.AssetCheckKey] | None:
        # The load's own checks; delivered_on_time is left to the freshness sensor so one late
        # day gives one alert.
        if repository is None:
            return None
        keys = repository.asset_graph.get_check_keys_for_assets({target})
        return sorted((k for k in keys if k.name != CHECK_NAME), key=str)

    requests = [_run_request(r, checks) for r in result.requests]
    for r in result.requests:
        log.info(
            f"Requesting {r.target} {r.start}..{r.end} for "
            + ", ".join(f"{c.stream} {c.period} delivery {c.delivery_id}" for c in r.deliveries)
        )
    if requests:
        return dg.SensorResult(run_requests=requests, asset_events=events, cursor=state.to_cursor())
    reason = (
        "; ".join(result.skips[:5])
        + (f" (+{len(result.skips) - 5} more)" if len(result.skips) > 5 else "")
        if result.skips
        else f"No new complete delivery ({len(candidates)} known, all already requested)."
    )
    return dg.SensorResult(skip_reason=reason, asset_events=events, cursor=state.to_cursor())


def build_delivery_sensor(
    name: str,
    scan: Scan,
    targets: list[str],
    description: str,
    partitions: dg.DailyPartitionsDefinition,
) -> dg.SensorDefinition:
    """The delivery sensor of one source: ``scan`` describes the landing layout, the shared
    rule (``lib/delivery_watch.plan``) decides which days of which delivery to load."""

    @dg.sensor(
        name=name,
        target=[dg.AssetKey.from_user_string(t) for t in targets],
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingZone, rules: RulesResource):
        return evaluate(
            scan,
            landing,
            rules.load(),
            context.cursor,
            context.log,
            partitions=partitions,
            repository=context.repository_def,
        )

    return _sensor


# An account of a source's landing root: (landing, rules, now) -> every object with its status.
Account = Callable[[LandingZone, Rules, datetime], list[Accounted]]


def build_landing_accounted_check(
    source: str, root_description: str, account: Account
) -> dg.AssetChecksDefinition:
    """``landing_accounted_for`` on ``raw/<source>`` (warning): every object under the source's
    landing roots is loaded, superseded, waiting, metadata, or listed as not understood with the
    reason and the layout expected. Files a team drops in a layout we do not read never vanish
    silently."""

    @dg.asset_check(
        asset=dg.AssetKey(["raw", source]),
        name="landing_accounted_for",
        blocking=False,
        description=(
            f"Every object under {root_description} is loaded, superseded by a newer delivery, "
            "waiting to complete, or listed here as not understood with the layout expected."
        ),
    )
    def _check(
        context: dg.AssetCheckExecutionContext, landing: LandingZone, rules: RulesResource
    ) -> dg.AssetCheckResult:
        rows = account(landing, rules.load(), datetime.now(UTC))
        counts, unknown = summary(rows)
        table = "\n".join(
            ["| object | why not loaded |", "| --- | --- |"]
            + [f"| {landing.url(r.key)} | {r.reason} |" for r in unknown[:50]]
        )
        return dg.AssetCheckResult(
            passed=not unknown,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{len(unknown)} object(s) under {root_description} are not understood; "
                f"e.g. {landing.url(unknown[0].key)}: {unknown[0].reason}"
                if unknown
                else f"All {len(rows)} object(s) under {root_description} accounted for."
            ),
            metadata={
                **{f"objects_{status}": dg.MetadataValue.int(n) for status, n in counts.items()},
                "not_understood": dg.MetadataValue.md(table if unknown else "(none)"),
            },
        )

    return _check


RESTATEMENT_CHECK = "restatement_guard"


def restatement_guard(
    context: dg.AssetExecutionContext, measure: Measure, rules: Rules
) -> RestatementGuard:
    """The run's guard (``lib/restatement.py``): the rules' bound and the run's accept tag."""
    return RestatementGuard(
        measure,
        rules.deliveries.max_restatement_drop_pct,
        accepted_deliveries(context.run.tags),
    )


def record_restatement(context: dg.AssetExecutionContext, guard: RestatementGuard) -> None:
    """Each day's decisions as materialization metadata (what ``restatement_guard`` reads), and
    every held slice as a warning in the run log."""
    for decision in guard.held:
        context.log.warning(decision.message)
    for day, metadata in guard.metadata_by_day().items():
        context.add_asset_metadata(metadata, partition_key=day.isoformat())


def build_restatement_guard_check(
    source: str, partitions_def: dg.PartitionsDefinition
) -> dg.AssetChecksDefinition:
    """``restatement_guard`` on ``raw/<source>`` (blocking, error): fails while the latest load of
    a day in the window held a newer delivery that would remove the month's rows or cut its
    billed cost beyond the bound, naming both deliveries and their totals. It reads the
    decisions the asset recorded on each day's latest materialization (the held rows were never
    written, so only the asset saw both sides); a later accepted load replaces them."""
    asset_key = dg.AssetKey(["raw", source])

    @dg.asset_check(
        asset=asset_key,
        name=RESTATEMENT_CHECK,
        blocking=True,
        partitions_def=partitions_def,
        description=(
            "A newer delivery that would remove a loaded month's rows or cut its billed cost "
            "beyond deliveries.max_restatement_drop_pct is held: the loaded rows stay and this "
            "check fails until a person accepts it (run tag finops/accept_restatement)."
        ),
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        key_range = context.partition_key_range
        days = days_between(
            (date.fromisoformat(key_range.start), date.fromisoformat(key_range.end))
        )
        wanted = {d.isoformat() for d in days}
        latest: dict[str, dict] = {}
        cursor = None
        while len(latest) < len(wanted):
            page = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=sorted(wanted)),
                limit=max(100, len(wanted)),
                cursor=cursor,
            )
            for record in page.records:
                materialization = record.asset_materialization
                if materialization is not None and materialization.partition not in latest:
                    latest[materialization.partition] = dict(materialization.metadata)
            if not page.has_more:
                break
            cursor = page.cursor

        def texts(name: str) -> list[str]:
            values = (m[name].value for _, m in sorted(latest.items()) if name in m)
            return list(dict.fromkeys(line for v in values for line in str(v).splitlines()))

        held, decisions = texts("restatement_held"), texts("restatement")
        return dg.AssetCheckResult(
            passed=not held,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                " ".join(held)
                if held
                else "; ".join(decisions[:5])
                + (f" (+{len(decisions) - 5} more)" if len(decisions) > 5 else "")
                if decisions
                else f"No restatement compared for {key_range.start}..{key_range.end}."
            ),
            metadata={
                "held_slices": dg.MetadataValue.int(len(held)),
                "held": dg.MetadataValue.md("\n\n".join(held) or "(none)"),
                "decisions": dg.MetadataValue.md("\n\n".join(decisions) or "(none)"),
                "days_with_a_load": dg.MetadataValue.int(len(latest)),
            },
        )

    return _check


def build_raw_source_checks(
    source: str,
    model,
    table: str,
    root_description: str,
    account: Account,
    partitions_def: dg.PartitionsDefinition,
) -> list[dg.AssetChecksDefinition]:
    """The checks every raw source carries: its pandera contract (blocking), the restatement
    guard (blocking) and every landing object accounted for (warning)."""
    return [
        build_contract_check(model, dg.AssetKey(["raw", source]), table, partitions_def),
        build_restatement_guard_check(source, partitions_def),
        build_landing_accounted_check(source, root_description, account),
    ]

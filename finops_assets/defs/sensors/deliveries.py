"""One sensor per source: load a day when, and only when, its delivery is complete.

Each sensor scans its part of the landing zone, describes what it finds as candidates
(``finops_assets.lib.delivery_watch``) and requests the raw asset for the days of every new
complete delivery: one run per delivery and contiguous day range, with a run key made of the
stream, billing period, delivery id and days, so no (day, delivery) is requested twice. The days
downstream follow through the automation condition on the core and mart assets.
"""

import re
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import duckdb
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from finops_assets.defs.sources.aws.assets import CUR_ROOT, discover_cur
from finops_assets.defs.sources.azure.assets import discover_azure
from finops_assets.defs.sources.shared import discover_data_exports
from finops_assets.freshness import CHECK_NAME
from finops_assets.lib.deliveries import (
    AZURE_ROOT,
    DeliveryError,
    group_focus_folders,
    parse_focus_manifest,
)
from finops_assets.lib.delivery_watch import (
    Candidate,
    RecencyError,
    WatchState,
    month_days,
    plan,
    recency_incomplete_days,
)
from finops_assets.lib.focus_load import describe_file, reader_sql
from finops_assets.lib.gcp_deliveries import GCP_ROOT, find_gcp_dump_files
from finops_assets.lib.rules import Rules
from finops_assets.partitions import daily_partitions
from finops_assets.resources.landing import LandingZone
from finops_assets.resources.rules import RulesResource

SENSOR_INTERVAL_SECONDS = 30
RAW_AWS_CUR = dg.AssetKey(["raw", "aws_cur"])
RAW_AZURE = dg.AssetKey(["raw", "azure_cost"])
RAW_GCP = dg.AssetKey(["raw", "gcp_billing"])
RAW_FOCUS = dg.AssetKey(["raw", "focus"])
STATUS_COLUMN = "x_DatasetCompletionStatus"

Scan = Callable[[LandingZone, Rules, datetime], list[Candidate]]


# --- AWS legacy CUR ---------------------------------------------------------------------------
_CUR_ASSEMBLY_FILE = re.compile(
    r"^aws-cur/(?P<report>[^/]+)/(?P<period>\d{8}-\d{8})/(?P<assembly>[^/]+)/[^/]+$"
)


def _period_of_folder(folder: str) -> str:
    return f"{folder[:4]}-{folder[4:6]}"


def scan_aws_cur(landing, rules, now) -> list[Candidate]:
    reports, broken, _ = discover_cur(landing)
    candidates = [
        Candidate(
            stream=f"{CUR_ROOT}/{d.report}",
            period=d.billing_period,
            delivery_id=d.assembly_id,
            created_at=d.created_at,
            where=landing.url(d.manifest_key),
            days=month_days(d.billing_period),
            files=len(d.files),
            target=RAW_AWS_CUR.to_user_string(),
        )
        for d in reports
    ]
    for period, error in broken:
        candidates.append(_broken(CUR_ROOT, period, error, RAW_AWS_CUR))
    # Assemblies whose files arrived but that no manifest names yet (AWS writes the manifest last).
    current = {(f"{CUR_ROOT}/{d.report}", d.billing_period): d for d in reports}
    assemblies: dict[tuple[str, str, str], list] = defaultdict(list)
    for obj in landing.list(CUR_ROOT):
        match = _CUR_ASSEMBLY_FILE.match(obj.key)
        if match:
            stream = f"{CUR_ROOT}/{match['report']}"
            assemblies[(stream, _period_of_folder(match["period"]), match["assembly"])].append(obj)
    for (stream, period, assembly), objects in sorted(assemblies.items()):
        delivery = current.get((stream, period))
        newest = max(o.modified for o in objects)
        if delivery is not None and (
            delivery.assembly_id == assembly or newest <= delivery.created_at
        ):
            continue  # the current assembly, or an older one kept as history
        candidates.append(
            Candidate(
                stream=stream,
                period=period,
                delivery_id=assembly,
                created_at=newest,
                where=landing.url(objects[0].key.rsplit("/", 1)[0]),
                complete=False,
                reason=(
                    f"assembly {assembly} has {len(objects)} file(s) but the period's "
                    "<report>-Manifest.json does not name it yet (AWS writes the manifest last)"
                ),
                files=len(objects),
                target=RAW_AWS_CUR.to_user_string(),
            )
        )
    return candidates


def _broken(root: str, period: str, error: Exception, target: dg.AssetKey) -> Candidate:
    return Candidate(
        stream=root,
        period=period or "unknown",
        delivery_id="unreadable-manifest",
        created_at=None,
        where=root,
        complete=False,
        reason=str(error),
        target=target.to_user_string(),
    )


# --- AWS Data Exports (CUR 2.0 -> raw/aws_cur, FOCUS 1.0 -> raw/focus) ------------------------
def scan_aws_data_exports(landing, rules, now) -> list[Candidate]:
    exports, broken = discover_data_exports(landing)
    candidates = [
        Candidate(
            stream=e.dataset,
            period=e.billing_period,
            delivery_id=e.execution_id,
            created_at=e.created_at,
            where=landing.url(e.manifest_key),
            days=month_days(e.billing_period),
            files=len(e.files),
            target=(RAW_FOCUS if e.kind == "focus" else RAW_AWS_CUR).to_user_string(),
        )
        for e in exports
    ]
    for period, error in broken:
        candidates.append(_broken("aws-data-exports", period, error, RAW_AWS_CUR))
    return candidates


# --- Azure Cost Management exports -------------------------------------------------------------
_AZURE_PART = re.compile(
    r"^azure/(?P<scope>[^/]+)/(?P<export>[^/]+)/(?P<start>\d{8})-(?P<end>\d{8})/(?P<run>[^/]+)/[^/]+$"
)


def scan_azure(landing, rules, now) -> list[Candidate]:
    runs, broken, _ = discover_azure(landing)
    candidates = [
        Candidate(
            stream=r.dataset,
            period=r.billing_period,
            delivery_id=r.run_id,
            created_at=r.submitted_at,
            where=landing.url(r.manifest_key),
            days=month_days(r.billing_period),
            files=len(r.files),
            target=RAW_AZURE.to_user_string(),
        )
        for r in runs
    ]
    for month, (scope, export), manifest_time, error in broken:
        candidates.append(
            Candidate(
                stream=f"{AZURE_ROOT}/{scope}/{export}",
                period=month,
                delivery_id="unreadable-manifest",
                created_at=manifest_time,
                where=f"{AZURE_ROOT}/{scope}/{export}",
                complete=False,
                reason=str(error),
                target=RAW_AZURE.to_user_string(),
            )
        )
    # Run folders with parts but no manifest.json yet (Azure writes it after the data files).
    folders: dict[str, list] = defaultdict(list)
    for obj in landing.list(AZURE_ROOT):
        match = _AZURE_PART.match(obj.key)
        if match:
            folders[obj.key.rsplit("/", 1)[0]].append((match, obj))
    for folder, entries in sorted(folders.items()):
        if any(obj.key.endswith("/manifest.json") for _, obj in entries):
            continue
        match = entries[0][0]
        candidates.append(
            Candidate(
                stream=f"{AZURE_ROOT}/{match['scope']}/{match['export']}",
                period=_period_of_folder(match["start"]),
                delivery_id=match["run"],
                created_at=max(obj.modified for _, obj in entries),
                where=landing.url(folder),
                complete=False,
                reason=f"{len(entries)} file(s) but no manifest.json yet (export run still writing)",
                files=len(entries),
                target=RAW_AZURE.to_user_string(),
            )
        )
    return candidates


# --- GCP billing export dumps ------------------------------------------------------------------
# Scans reuse what earlier ticks read (the sensor runs in the long-lived code server process):
# a delivery's files are read once per (landing zone, files with their sizes and times).
_READ_CACHE: dict[tuple, object] = {}


def _cached(key: tuple, compute: Callable[[], object]):
    if key not in _READ_CACHE:
        if len(_READ_CACHE) > 4096:
            _READ_CACHE.clear()
        _READ_CACHE[key] = compute()
    return _READ_CACHE[key]


def _gcp_watermark(landing: LandingZone, fingerprint: tuple[tuple[str, int, str], ...]) -> str:
    return _cached(
        ("gcp", landing.url(), fingerprint), lambda: _read_gcp_watermark(landing, fingerprint)
    )


def _read_gcp_watermark(landing: LandingZone, fingerprint: tuple[tuple[str, int, str], ...]) -> str:
    keys = [k for k, _, _ in fingerprint]
    with landing.local_files(keys) as paths, duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        try:
            (value,) = con.execute(
                "SELECT max(export_time) FROM read_parquet(?, union_by_name = true)",
                [[paths[k] for k in keys]],
            ).fetchone()
        except duckdb.Error as error:
            raise DeliveryError(
                f"cannot read export_time from {', '.join(landing.url(k) for k in keys[:3])}: "
                f"{str(error).splitlines()[0]}. Fix: re-run the dump of this usage day."
            ) from None
    if value is None:
        raise DeliveryError("export_time is empty in every row")
    return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat() + "+00:00"


def scan_gcp(landing, rules, now) -> list[Candidate]:
    settle = timedelta(minutes=rules.deliveries.gcp_settle_minutes)
    by_day: dict[tuple[str, date], list] = defaultdict(list)
    objects = {o.key: o for o in landing.list(GCP_ROOT)}
    for f in find_gcp_dump_files(objects.values(), lambda message: None):
        by_day[(f.dataset, f.usage_date)].append(objects[f.key])
    candidates = []
    for (dataset, day), files in sorted(by_day.items()):
        fingerprint = tuple(sorted((o.key, o.size, o.modified.isoformat()) for o in files))
        where = landing.url(f"{dataset}/usage_date={day.isoformat()}")
        try:
            watermark = _gcp_watermark(landing, fingerprint)
        except DeliveryError as error:
            candidates.append(
                Candidate(
                    stream=dataset,
                    period=day.isoformat(),
                    delivery_id="unreadable",
                    created_at=None,
                    where=where,
                    complete=False,
                    reason=str(error),
                    files=len(files),
                    target=RAW_GCP.to_user_string(),
                )
            )
            continue
        # The watermark only moves when BigQuery exports newer rows for the day, so "not moved
        # for the settle time" is "the newest export_time is at least that old".
        settles_at = datetime.fromisoformat(watermark) + settle
        settled = now >= settles_at
        candidates.append(
            Candidate(
                stream=dataset,
                period=day.isoformat(),
                delivery_id=f"export_time={watermark}",
                created_at=datetime.fromisoformat(watermark),
                where=where,
                days=(day,),
                complete=settled,
                reason=(
                    ""
                    if settled
                    else f"export_time watermark {watermark} is recent: the day may still "
                    f"change; loaded once it settles at {settles_at.isoformat()} "
                    "(deliveries.gcp_settle_minutes)"
                ),
                files=len(files),
                target=RAW_GCP.to_user_string(),
            )
        )
    return candidates


# --- FOCUS from any producer -------------------------------------------------------------------
def _focus_days(
    landing: LandingZone, files: tuple[tuple[str, str, int], ...]
) -> tuple[tuple[date, ...], tuple[tuple[date, str], ...]]:
    return _cached(("focus", landing.url(), files), lambda: _read_focus_days(landing, files))


def _read_focus_days(
    landing: LandingZone, files: tuple[tuple[str, str, int], ...]
) -> tuple[tuple[date, ...], tuple[tuple[date, str], ...]]:
    """Charge days in a delivery's files, and the days x_DatasetCompletionStatus marks
    Incomplete (with the file that says so)."""
    days: set[date] = set()
    incomplete: dict[date, str] = {}
    by_format: dict[str, list[str]] = defaultdict(list)
    for key, fmt, _ in files:
        by_format[fmt].append(key)
    with landing.local_files([k for k, _, _ in files]) as paths, duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        for fmt, keys in by_format.items():
            columns: dict[str, str] = {}
            for k in keys:
                columns.update(
                    {c.lower(): c for c in describe_file(con, paths[k], fmt, landing.url(k))}
                )
            start = columns.get("chargeperiodstart")
            if start is None:
                continue  # the load reports the missing column with the file named
            status = columns.get(STATUS_COLUMN.lower())
            status_sql = (
                f"count_if(lower(trim(CAST(\"{status}\" AS VARCHAR))) = 'incomplete'), "
                f"min(filename) FILTER (lower(trim(CAST(\"{status}\" AS VARCHAR))) = 'incomplete')"
                if status
                else "0, NULL"
            )
            rows = con.execute(
                f'SELECT CAST(TRY_CAST("{start}" AS TIMESTAMPTZ) AS DATE) AS day, {status_sql} '
                f"FROM {reader_sql(fmt, [paths[k] for k in keys])} GROUP BY 1"
            ).fetchall()
            by_path = {paths[k]: k for k in keys}
            for day, incomplete_rows, path in rows:
                if day is None:
                    continue
                days.add(day)
                if incomplete_rows:
                    incomplete[day] = (
                        f"{STATUS_COLUMN} is Incomplete in {incomplete_rows} row(s) of "
                        f"{landing.url(by_path.get(path, path))}"
                    )
    return tuple(sorted(days)), tuple(sorted(incomplete.items()))


def _recency_for(landing, folder, metadata_objects) -> tuple[str, bytes] | None:
    """The Recency JSON of a delivery: a recency*.json in its folder, else the newest under
    focus/<provider>/<dataset>/metadata/."""
    local = [o for o in folder.objects if o.key.rsplit("/", 1)[-1].lower().startswith("recency")]
    local = [o for o in local if o.key.lower().endswith(".json")]
    chosen = max(local, key=lambda o: o.modified, default=None)
    if chosen is None:
        prefix = f"focus/{folder.provider}/{folder.dataset}/metadata/"
        shared = [o for o in metadata_objects if o.key.startswith(prefix)]
        chosen = max(shared, key=lambda o: o.modified, default=None)
    if chosen is None:
        return None
    return landing.url(chosen.key), landing.read_bytes(chosen.key)


def scan_focus(landing, rules, now) -> list[Candidate]:
    objects = landing.list("focus")
    metadata_objects = [
        o
        for o in objects
        if re.match(r"^focus/[^/]+/[^/]+/metadata/recency[^/]*\.json$", o.key, re.IGNORECASE)
    ]
    candidates = []
    for folder in group_focus_folders(objects):
        base = {
            "stream": f"focus/{folder.provider}/{folder.dataset}",
            "period": folder.billing_period,
            "delivery_id": folder.delivery_id,
            "target": RAW_FOCUS.to_user_string(),
        }
        if folder.manifest is None:
            candidates.append(
                Candidate(
                    **base,
                    created_at=max(o.modified for o in folder.objects),
                    where=landing.url(folder.prefix),
                    complete=False,
                    reason=f"{len(folder.objects)} file(s) but no manifest.json yet "
                    "(the producer writes it last)",
                    files=len(folder.objects),
                )
            )
            continue
        where = landing.url(folder.manifest_key)
        try:
            delivery = parse_focus_manifest(folder, landing.read_bytes(folder.manifest_key), where)
            files = tuple((f.key, f.format, f.size) for f in delivery.files)
            file_days, incomplete = _focus_days(landing, files)
            incomplete_days = dict(incomplete)
            days = tuple(sorted(set(month_days(folder.billing_period)) | set(file_days)))
            recency = _recency_for(landing, folder, metadata_objects)
            if recency is not None:
                for day, reason in recency_incomplete_days(recency[1], recency[0], days).items():
                    incomplete_days.setdefault(day, f"{reason} ({recency[0]})")
        except (DeliveryError, RecencyError) as error:
            candidates.append(
                Candidate(
                    **base,
                    created_at=folder.manifest.modified,
                    where=where,
                    complete=False,
                    reason=str(error),
                    files=len(folder.objects),
                )
            )
            continue
        candidates.append(
            Candidate(
                **base,
                created_at=delivery.created_at,
                where=where,
                days=days,
                incomplete_days=incomplete_days,
                files=len(delivery.files),
            )
        )
    return candidates


# --- the sensors -------------------------------------------------------------------------------
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
    now: datetime | None = None,
    repository: dg.RepositoryDefinition | None = None,
) -> dg.SensorResult | dg.SkipReason:
    now = now or datetime.now(UTC)
    state = WatchState.from_cursor(cursor)
    candidates = scan(landing, rules, now)
    with dg.partition_loading_context(effective_dt=now):
        last_key = daily_partitions.get_last_partition_key()
    first_day = daily_partitions.start.date()
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
    name: str, scan: Scan, targets: list[dg.AssetKey], description: str
) -> dg.SensorDefinition:
    @dg.sensor(
        name=name,
        target=targets,
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
            repository=context.repository_def,
        )

    return _sensor


aws_cur_deliveries = build_delivery_sensor(
    "aws_cur_deliveries",
    scan_aws_cur,
    [RAW_AWS_CUR],
    "Legacy CUR: loads a month's days when its period manifest names a new assemblyId whose "
    "reportKeys are all present.",
)
aws_data_exports_deliveries = build_delivery_sensor(
    "aws_data_exports_deliveries",
    scan_aws_data_exports,
    [RAW_AWS_CUR, RAW_FOCUS],
    "AWS Data Exports (CUR 2.0 into raw/aws_cur, FOCUS into raw/focus): loads a month's days "
    "when its manifest is rewritten with every dataFile present.",
)
azure_deliveries = build_delivery_sensor(
    "azure_deliveries",
    scan_azure,
    [RAW_AZURE],
    "Azure exports: loads a month's days when a run's manifest.json (new runId) lists only "
    "present blobs.",
)
gcp_deliveries = build_delivery_sensor(
    "gcp_deliveries",
    scan_gcp,
    [RAW_GCP],
    "GCP billing export dumps: loads a usage day when its max(export_time) watermark moved and "
    "then stayed put for deliveries.gcp_settle_minutes.",
)
focus_deliveries = build_delivery_sensor(
    "focus_deliveries",
    scan_focus,
    [RAW_FOCUS],
    "FOCUS deliveries: loads a month's days when manifest.json lists only present files; days "
    "that FOCUS 1.3 Recency or x_DatasetCompletionStatus mark incomplete wait.",
)

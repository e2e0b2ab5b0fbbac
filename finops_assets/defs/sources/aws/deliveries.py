"""AWS deliveries in a landing zone, without Dagster: legacy Cost and Usage Reports (period
manifest, assemblies; or, with the Athena integration, year=/month= folders rewritten in place and
the cost_and_usage_data_status table), AWS Data Exports (CUR 2.0 and FOCUS 1.0, manifest
dataFiles), the sensor scans, and the account of every object under aws-cur/ and
aws-data-exports/ (``account_landing``).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

import duckdb

from finops_assets.lib.accounting import Accounted, account
from finops_assets.lib.deliveries import (
    DeliveryError,
    DeliveryFile,
    ListedFiles,
    ObjectLike,
    data_format,
    load_manifest_json,
    period_of_folder,
)
from finops_assets.lib.delivery_watch import (
    Candidate,
    month_days,
)
from finops_assets.lib.loading import (
    describe_file,
)
from finops_assets.resources.landing import LandingZone

# The raw assets these deliveries load (asset key paths).
RAW_AWS_CUR = "raw/aws_cur"
RAW_FOCUS = "raw/focus"

# --- AWS legacy Cost and Usage Reports --------------------------------------------------------
#   aws-cur/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json        (current assembly)
#   aws-cur/<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-N.csv.gz (or .parquet)
# AWS rebuilds the whole month several times a day; the period manifest names the current
# assemblyId and its reportKeys. Exactly those keys are loaded; older assemblies stay on disk.
_CUR_MANIFEST = re.compile(
    r"^aws-cur/(?P<report>[^/]+)/(?P<start>\d{8})-(?P<end>\d{8})/(?P<name>.+)-Manifest\.json$"
)


# Legacy CUR with the Athena integration (Parquet, one folder per month, rewritten in place):
#   aws-cur/<report>/<report>/year=YYYY/month=M/<report>-0000N.snappy.parquet
#   aws-cur/<report>/cost_and_usage_data_status/cost_and_usage_data_status.parquet  (READY|UPDATING)
#   aws-cur/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json  (reportKeys into year=/month=)
# AWS's own completeness signal is the status table: nothing of the report loads while it says
# UPDATING. The delivery id is the manifest's assemblyId, or (no manifest, or none in it) a
# fingerprint of the month's files, so a rewrite in place is a new delivery.
_ATHENA_KEY = re.compile(
    r"(?:^|/)(?P<report>[^/]+)/(?P=report)/year=(?P<year>\d{4})/month=(?P<month>\d{1,2})/"
    r"(?P<file>[^/]+)$"
)
_ATHENA_FILE = re.compile(
    r"^aws-cur/(?P<report>[^/]+)/(?P=report)/year=(?P<year>\d{4})/month=(?P<month>\d{1,2})/"
    r"(?P<file>[^/]+)$"
)
STATUS_FOLDER = "cost_and_usage_data_status"
_STATUS_FILE = re.compile(r"^aws-cur/(?P<report>[^/]+)/" + STATUS_FOLDER + r"/[^/]+$")


@dataclass(frozen=True)
class CurDelivery:
    report: str
    billing_period: str  # YYYY-MM
    assembly_id: str
    files: tuple[DeliveryFile, ...]
    manifest_key: str  # "" for an Athena month without a manifest
    created_at: datetime
    layout: str = "assembly"  # "assembly" (<period>/<assemblyId>/) | "athena" (year=/month=)
    folder_key: str = ""  # the files' folder (for messages when there is no manifest)
    status_keys: tuple[str, ...] = ()  # athena: the status table's files
    not_ready: str = ""  # athena: why the report must not be loaded now (status table)

    @property
    def stream(self) -> tuple[str, str]:
        return ("aws-cur", self.report)

    @property
    def where_key(self) -> str:
        return self.manifest_key or self.folder_key


def athena_period(year: str, month: str) -> str:
    return f"{int(year):04d}-{int(month):02d}"


def files_fingerprint(objects: Iterable[ObjectLike]) -> str:
    """A delivery id for files rewritten in place: changes when any key, size or mtime does."""
    lines = sorted(f"{o.key}|{o.size}|{o.modified.isoformat()}" for o in objects)
    return "files-" + hashlib.sha1("\n".join(lines).encode()).hexdigest()[:16]


def find_cur_manifests(objects: Iterable[ObjectLike]) -> list[ObjectLike]:
    """Period manifests (``<report>-Manifest.json`` directly in a period folder of its report)."""
    found = []
    for obj in objects:
        match = _CUR_MANIFEST.match(obj.key)
        if match and match["name"] == match["report"]:
            found.append(obj)
    return sorted(found, key=lambda o: o.key)


def parse_cur_manifest(
    manifest: ObjectLike,
    manifest_bytes: bytes,
    present: dict[str, ObjectLike],
    where: str,
) -> CurDelivery:
    """Resolve a CUR manifest's reportKeys to landing keys and check every file is there.

    reportKeys are S3 keys under the report's own S3 prefix, which need not match the landing
    layout, so each key is resolved by its suffix: ``<report>/<period>/<assemblyId>/<file>``
    (classic reports) or ``<report>/<report>/year=YYYY/month=M/<file>`` (Athena integration,
    rewritten in place; the id is then the assemblyId or, without one, the files' fingerprint).
    """
    match = _CUR_MANIFEST.match(manifest.key)
    assert match is not None, "parse_cur_manifest needs a period manifest key"
    report, start = match["report"], match["start"]
    period = f"{start[:4]}-{start[4:6]}"
    period_folder = f"{report}/{start}-{match['end']}"
    data = load_manifest_json(
        manifest_bytes,
        where,
        "CUR manifest",
        "AWS rewrites it on the next refresh; until then the month keeps its previous data.",
    )
    assembly = data.get("assemblyId") if isinstance(data, dict) else None
    keys = data.get("reportKeys") if isinstance(data, dict) else None
    valid_assembly = (
        isinstance(assembly, str)
        and bool(assembly)
        and "/" not in assembly
        and assembly not in (".", "..")
    )
    if not isinstance(keys, list) or not keys:
        raise DeliveryError(f"{where}: CUR manifest lists no reportKeys")
    athena = all(isinstance(k, str) and _ATHENA_KEY.search(k) for k in keys)
    if not athena and not valid_assembly:
        raise DeliveryError(f"{where}: CUR manifest has no valid assemblyId")
    listed = ListedFiles(
        present,
        where,
        "wait for AWS to finish the delivery (or re-copy the file from the CUR bucket); until "
        "then the month keeps its previous data.",
    )
    for key in keys:
        if not isinstance(key, str):
            raise DeliveryError(f"{where}: reportKey {key!r} is not a string")
        if athena:
            landing_key = _athena_landing_key(key, report, period, where)
        else:
            marker = f"/{period_folder}/"
            position = ("/" + key).rfind(marker)
            remainder = ("/" + key)[position + len(marker) :] if position >= 0 else ""
            parts = remainder.split("/")
            if (
                position < 0
                or len(parts) < 2
                or parts[0] != assembly
                or any(p in ("", ".", "..") for p in parts)
                or "\\" in remainder
            ):
                raise DeliveryError(
                    f"{where}: reportKey {key!r} is not inside {period_folder}/{assembly}/; a "
                    "manifest may only point at files of its own assembly (or, for a report with "
                    f"the Athena integration, at {report}/{report}/year=YYYY/month=M/)"
                )
            landing_key = f"aws-cur/{period_folder}/{remainder}"
        listed.add(landing_key, landing_key)
    files, objects = listed.files, listed.objects
    if athena:
        return CurDelivery(
            report=report,
            billing_period=period,
            assembly_id=assembly if valid_assembly else files_fingerprint(objects),
            files=tuple(files),
            manifest_key=manifest.key,
            # Files rewritten in place after the manifest make the delivery newer.
            created_at=max([manifest.modified, *(o.modified for o in objects)]),
            layout="athena",
            folder_key=files[0].key.rsplit("/", 1)[0],
        )
    return CurDelivery(
        report=report,
        billing_period=period,
        assembly_id=assembly,
        files=tuple(files),
        manifest_key=manifest.key,
        created_at=manifest.modified,
    )


def _athena_landing_key(key: str, report: str, period: str, where: str) -> str:
    found = _ATHENA_KEY.search(key)
    assert found is not None
    if (
        found["report"] != report
        or athena_period(found["year"], found["month"]) != period
        or found["file"] in (".", "..")
        or "\\" in key
    ):
        raise DeliveryError(
            f"{where}: reportKey {key!r} is not inside {report}/{report}/year="
            f"{period[:4]}/month={int(period[5:])}/; a manifest may only point at its own "
            "report's month"
        )
    return f"aws-cur/{report}/{report}/year={found['year']}/month={found['month']}/{found['file']}"


def athena_months(
    objects: Iterable[ObjectLike],
) -> dict[tuple[str, str], list[ObjectLike]]:
    """Objects in the Athena month folders, per (report, billing period)."""
    months: dict[tuple[str, str], list[ObjectLike]] = defaultdict(list)
    for obj in objects:
        found = _ATHENA_FILE.match(obj.key)
        if found:
            months[(found["report"], athena_period(found["year"], found["month"]))].append(obj)
    return months


def athena_month_delivery(
    report: str, period: str, objects: list[ObjectLike], where: str
) -> CurDelivery:
    """An Athena month folder that no period manifest names: its Parquet files are the month,
    identified by their fingerprint (AWS rewrites them in place)."""
    data = [o for o in objects if data_format(o.key) is not None]
    if not data:
        raise DeliveryError(f"{where}: no Parquet data file in the month folder")
    empty = [o.key for o in data if o.size == 0]
    if empty:
        raise DeliveryError(
            f"{where}: {empty[0]} is empty (0 bytes); the upload was cut short. Fix: re-copy "
            "the file from the CUR bucket."
        )
    return CurDelivery(
        report=report,
        billing_period=period,
        assembly_id=files_fingerprint(data),
        files=tuple(
            DeliveryFile(key=o.key, size=o.size, format=str(data_format(o.key)))
            for o in sorted(data, key=lambda o: o.key)
        ),
        manifest_key="",
        created_at=max(o.modified for o in data),
        layout="athena",
        folder_key=data[0].key.rsplit("/", 1)[0],
    )


def status_files(objects: Iterable[ObjectLike]) -> dict[str, list[ObjectLike]]:
    """The Athena status table's Parquet files per report."""
    found: dict[str, list[ObjectLike]] = defaultdict(list)
    for obj in objects:
        match = _STATUS_FILE.match(obj.key)
        if match and data_format(obj.key) == "parquet":
            found[match["report"]].append(obj)
    return found


def read_report_status(landing: LandingZone, report: str, objects: list[ObjectLike]) -> str:
    """Why the Athena report must not be loaded now ("" when its status table says READY)."""
    folder = landing.url(f"{CUR_ROOT}/{report}/{STATUS_FOLDER}/")
    if not objects:
        return (
            f"{folder} (the report's cost_and_usage_data_status table) is missing, so nothing "
            "says AWS has finished rewriting the year=/month= files. Fix: copy the status table "
            "with the report (AWS writes it beside the data)"
        )
    keys = [o.key for o in objects]
    try:
        with landing.local_files(keys) as paths, duckdb.connect() as con:
            statuses = [
                row[0]
                for row in con.execute(
                    "SELECT DISTINCT CAST(status AS VARCHAR) FROM read_parquet(?) ORDER BY 1",
                    [[paths[k] for k in keys]],
                ).fetchall()
            ]
    except duckdb.Error as error:
        return (
            f"{folder}: the cost_and_usage_data_status table cannot be read "
            f"({str(error).splitlines()[0]}); AWS rewrites it on the next refresh"
        )
    if statuses == ["READY"]:
        return ""
    shown = ", ".join(repr(s) for s in statuses) or "no row"
    return (
        f"{folder}: cost_and_usage_data_status says {shown}, not 'READY': AWS is rewriting the "
        "report's year=/month= files in place. It loads once the status table says READY; until "
        "then the days keep their previous data"
    )


# --- AWS Data Exports (CUR 2.0 and FOCUS 1.0) -------------------------------------------------
#   aws-data-exports/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json
#   aws-data-exports/<export>/data/BILLING_PERIOD=YYYY-MM/<export>-0000N.snappy.parquet
# The export rewrites the month's files and its manifest on every refresh (no assembly folders).
# Both casings of the partition folder occur. Zero-byte Parquet files are leftovers of an earlier
# refresh (a valid Parquet file is never empty): they are skipped and reported, not loaded.
_EXPORT_MANIFEST = re.compile(
    r"^aws-data-exports/(?P<export>[^/]+)/metadata/"
    r"(?:BILLING_PERIOD|billing_period)=(?P<period>\d{4}-\d{2})/(?P<name>[^/]+)-Manifest\.json$"
)
_EXPORT_PARTITION = re.compile(r"^(?:BILLING_PERIOD|billing_period)=(?P<period>\d{4}-\d{2})$")
EXPORT_ROOT = "aws-data-exports"


@dataclass(frozen=True)
class DataExportDelivery:
    export: str
    billing_period: str  # YYYY-MM
    execution_id: str
    files: tuple[DeliveryFile, ...]
    manifest_key: str
    created_at: datetime
    kind: str | None  # "cur2" | "focus" when the manifest's columns tell; else probe a file
    skipped_empty: tuple[str, ...] = ()

    @property
    def dataset(self) -> str:
        return f"{EXPORT_ROOT}/{self.export}"


def find_data_export_manifests(objects: Iterable[ObjectLike]) -> list[ObjectLike]:
    """``<export>-Manifest.json`` files in a billing-period folder of their export's metadata."""
    found = []
    for obj in objects:
        match = _EXPORT_MANIFEST.match(obj.key)
        if match and match["name"] == match["export"]:
            found.append(obj)
    return sorted(found, key=lambda o: o.key)


def export_period_of(manifest_key: str) -> str | None:
    match = _EXPORT_MANIFEST.match(manifest_key)
    return match["period"] if match else None


def export_kind(column_names: Iterable[str]) -> str | None:
    """'focus' for a FOCUS export, 'cur2' for CUR 2.0 (or a CUR 1 Athena layout), else None."""
    lowered = {name.lower() for name in column_names}
    if {"billedcost", "chargeperiodstart"} <= lowered:
        return "focus"
    if "line_item_unblended_cost" in lowered or "lineitem/unblendedcost" in lowered:
        return "cur2"
    return None


def _manifest_columns(data: dict) -> list[str]:
    """Column names a Data Exports manifest declares (the key name varies between versions)."""
    names: list[str] = []
    for key in ("columns", "reportColumns", "exportColumns", "schema"):
        value = data.get(key)
        if isinstance(value, list):
            for column in value:
                if isinstance(column, str):
                    names.append(column)
                elif isinstance(column, dict) and isinstance(column.get("name"), str):
                    names.append(column["name"])
    return names


def parse_data_export_manifest(
    manifest: ObjectLike,
    manifest_bytes: bytes,
    present: dict[str, ObjectLike],
    where: str,
) -> DataExportDelivery:
    """Resolve a Data Exports manifest's ``dataFiles`` (S3 URIs or keys under the export's own
    prefix) to landing keys by their ``<export>/data/BILLING_PERIOD=YYYY-MM/<file>`` suffix."""
    match = _EXPORT_MANIFEST.match(manifest.key)
    assert match is not None, "parse_data_export_manifest needs a Data Exports manifest key"
    export, period = match["export"], match["period"]
    data = load_manifest_json(
        manifest_bytes,
        where,
        "Data Exports manifest",
        "AWS rewrites it on the next refresh; until then the month keeps its previous data.",
    )
    if not isinstance(data, dict) or not isinstance(data.get("dataFiles"), list):
        raise DeliveryError(
            f'{where}: Data Exports manifest must be a JSON object with a "dataFiles" list'
        )
    declared = data.get("billingPeriod")
    if isinstance(declared, str) and declared and declared[:7] != period:
        raise DeliveryError(
            f"{where}: manifest billingPeriod {declared!r} does not match its folder "
            f"BILLING_PERIOD={period}; move the manifest or fix it"
        )
    marker = f"/{export}/data/"
    listed = ListedFiles(
        present,
        where,
        "wait for AWS to finish the refresh (or copy the file); until then the month keeps its "
        "previous data.",
        skip_empty=True,
    )
    for entry in data["dataFiles"]:
        if not isinstance(entry, str) or not entry:
            raise DeliveryError(f"{where}: dataFiles entry {entry!r} is not a file path")
        path = "/" + entry.split("://", 1)[-1]
        position = path.rfind(marker)
        remainder = path[position + len(marker) :] if position >= 0 else ""
        parts = remainder.split("/")
        partition = _EXPORT_PARTITION.match(parts[0]) if parts else None
        if (
            position < 0
            or len(parts) < 2
            or partition is None
            or partition["period"] != period
            or any(p in ("", ".", "..") for p in parts)
            or "\\" in remainder
        ):
            raise DeliveryError(
                f"{where}: dataFiles entry {entry!r} is not inside {export}/data/"
                f"BILLING_PERIOD={period}/; a manifest may only point at its own month's files"
            )
        rest = "/".join(parts[1:])
        candidates = [
            f"{EXPORT_ROOT}/{export}/data/{casing}={period}/{rest}"
            for casing in ("BILLING_PERIOD", "billing_period")
        ]
        landing_key = next((k for k in candidates if k in present), candidates[0])
        listed.add(landing_key, landing_key)
    files, skipped = listed.files, listed.skipped
    if not files:
        raise DeliveryError(
            f"{where}: the manifest lists no non-empty data file"
            + (f" ({len(skipped)} zero-byte leftover(s) skipped)" if skipped else "")
            + "; wait for AWS's next refresh."
        )
    execution = data.get("executionId")
    created_at = manifest.modified
    return DataExportDelivery(
        export=export,
        billing_period=period,
        execution_id=(
            execution
            if isinstance(execution, str) and execution
            else f"{export}@{created_at:%Y%m%dT%H%M%SZ}"
        ),
        files=tuple(files),
        manifest_key=manifest.key,
        created_at=created_at,
        kind=export_kind(_manifest_columns(data)),
        skipped_empty=tuple(skipped),
    )


# --- AWS legacy CUR ---------------------------------------------------------------------------
_CUR_ASSEMBLY_FILE = re.compile(
    r"^aws-cur/(?P<report>[^/]+)/(?P<period>\d{8}-\d{8})/(?P<assembly>[^/]+)/[^/]+$"
)


def scan_aws_cur(landing, rules, now) -> list[Candidate]:
    reports, broken, _ = discover_cur(landing)
    candidates = [
        Candidate(
            stream=f"{CUR_ROOT}/{d.report}",
            period=d.billing_period,
            delivery_id=d.assembly_id,
            created_at=d.created_at,
            where=landing.url(d.where_key),
            days=month_days(d.billing_period),
            complete=not d.not_ready,
            reason=d.not_ready,
            files=len(d.files),
            target=RAW_AWS_CUR,
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
            assemblies[(stream, period_of_folder(match["period"]), match["assembly"])].append(obj)
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
                target=RAW_AWS_CUR,
            )
        )
    return candidates


def _broken(root: str, period: str, error: Exception, target: str) -> Candidate:
    return Candidate(
        stream=root,
        period=period or "unknown",
        delivery_id="unreadable-manifest",
        created_at=None,
        where=root,
        complete=False,
        reason=str(error),
        target=target,
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
            target=RAW_FOCUS if e.kind == "focus" else RAW_AWS_CUR,
        )
        for e in exports
    ]
    for period, error in broken:
        candidates.append(_broken("aws-data-exports", period, error, RAW_AWS_CUR))
    return candidates


CUR_ROOT = "aws-cur"


def discover_cur(
    landing: LandingZone,
) -> tuple[list[CurDelivery], list[tuple[str, DeliveryError]], bool]:
    """Current CUR deliveries, manifests that cannot be loaded (billing period, error), and
    whether the landing zone carries CUR reports at all.

    Athena-integrated months come from their period manifest when one names them, else from the
    month folder itself; their ``not_ready`` says why the report must not load now (its status
    table is not READY)."""
    objects = landing.list(CUR_ROOT)
    present = {o.key: o for o in objects}
    deliveries: list[CurDelivery] = []
    broken: list[tuple[str, DeliveryError]] = []
    for manifest in find_cur_manifests(objects):
        try:
            deliveries.append(
                parse_cur_manifest(
                    manifest, landing.read_bytes(manifest.key), present, landing.url(manifest.key)
                )
            )
        except DeliveryError as error:
            start = manifest.key.split("/")[2][:6]
            broken.append((f"{start[:4]}-{start[4:6]}", error))
    covered = {(d.report, d.billing_period) for d in deliveries}
    covered |= {
        (manifest.key.split("/")[1], period)
        for manifest in find_cur_manifests(objects)
        for period in [period_of_folder(manifest.key.split("/")[2])]
    }
    for (report, period), month_objects in sorted(athena_months(objects).items()):
        if (report, period) in covered:
            continue
        folder = month_objects[0].key.rsplit("/", 1)[0]
        try:
            deliveries.append(
                athena_month_delivery(report, period, month_objects, landing.url(folder))
            )
        except DeliveryError as error:
            broken.append((period, error))
    statuses = status_files(objects)
    reasons = {
        report: read_report_status(landing, report, statuses.get(report, []))
        for report in sorted({d.report for d in deliveries if d.layout == "athena"})
    }
    deliveries = [
        replace(
            d,
            status_keys=tuple(o.key for o in statuses.get(d.report, [])),
            not_ready=reasons[d.report],
        )
        if d.layout == "athena"
        else d
        for d in deliveries
    ]
    return deliveries, broken, bool(objects)


def discover_data_exports(
    landing: LandingZone,
) -> tuple[list[DataExportDelivery], list[tuple[str, DeliveryError]]]:
    """AWS Data Exports deliveries (CUR 2.0 and FOCUS 1.0) with their kind resolved, and the
    manifests that cannot be loaded as (billing period, error).

    The kind comes from the columns the manifest declares or, when it declares none, from the
    first data file's header. A broken manifest's kind is unknown, so it stops both AWS loads
    (raw/aws_cur and raw/focus) for its month rather than risk loading an outdated month.
    """
    objects = landing.list(EXPORT_ROOT)
    present = {o.key: o for o in objects}
    deliveries, broken = [], []
    for manifest in find_data_export_manifests(objects):
        where = landing.url(manifest.key)
        try:
            delivery = parse_data_export_manifest(
                manifest, landing.read_bytes(manifest.key), present, where
            )
            if delivery.kind is None:
                first = delivery.files[0]
                with landing.local_files([first.key]) as paths, duckdb.connect() as con:
                    columns = describe_file(
                        con, paths[first.key], first.format, landing.url(first.key)
                    )
                kind = export_kind(columns)
                if kind is None:
                    raise DeliveryError(
                        f"{where}: {landing.url(first.key)} is neither CUR 2.0 (line_item_* "
                        "columns) nor FOCUS (BilledCost, ChargePeriodStart); only those two "
                        "Data Exports tables are supported."
                    )
                delivery = replace(delivery, kind=kind)
            deliveries.append(delivery)
        except DeliveryError as error:
            broken.append((export_period_of(manifest.key) or "", error))
    return deliveries, broken


# --- Every object under aws-cur/ and aws-data-exports/ accounted for ----------------------------
CUR_LAYOUTS = (
    "aws-cur/<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-N.csv.gz (or .parquet) with "
    "aws-cur/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json, or (Athena integration) "
    "aws-cur/<report>/<report>/year=YYYY/month=M/<report>-0000N.snappy.parquet with "
    "aws-cur/<report>/cost_and_usage_data_status/*.parquet"
)
EXPORT_LAYOUTS = (
    "aws-data-exports/<export>/data/BILLING_PERIOD=YYYY-MM/<export>-0000N.snappy.parquet with "
    "aws-data-exports/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json"
)
# Side files AWS writes beside a report (manifest copies in assembly folders, the Athena crawler
# template, Redshift/QuickSight artifacts): read by nobody, expected there.
_CUR_SIDE_FILE = re.compile(
    r"^aws-cur/[^/]+/(?:[^/]+/(?:[^/]+/)?|[^/]+/year=\d{4}/month=\d{1,2}/)?"
    r"[^/]+\.(?:json|sql|ya?ml)$"
)
_EXPORT_DATA_FILE = re.compile(
    r"^aws-data-exports/(?P<export>[^/]+)/data/(?:BILLING_PERIOD|billing_period)="
    r"(?P<period>\d{4}-\d{2})/[^/]+$"
)
_EXPORT_METADATA_FILE = re.compile(r"^aws-data-exports/[^/]+/metadata/.+$")


def account_landing(landing: LandingZone, rules, now: datetime) -> list[Accounted]:
    """Every object under ``aws-cur/`` and ``aws-data-exports/``: loaded (files of the current
    deliveries), superseded (older assemblies, leftovers a newer manifest no longer names),
    waiting (an assembly no manifest names yet, a report whose status table is not READY, a
    manifest naming a missing file), metadata (manifests, status tables, AWS side files) or not
    understood, with the layouts expected."""
    cur_objects = landing.list(CUR_ROOT)
    export_objects = landing.list(EXPORT_ROOT)
    reports, broken, _ = discover_cur(landing) if cur_objects else ([], [], False)
    exports, broken_exports = discover_data_exports(landing) if export_objects else ([], [])
    loaded: set[str] = set()
    superseded: set[str] = set()
    metadata: set[str] = set()
    waiting: dict[str, str] = {}

    # Legacy CUR, classic assemblies and Athena months.
    current = {(d.report, d.billing_period): d for d in reports}
    broken_periods = {}
    for manifest in find_cur_manifests(cur_objects):
        metadata.add(manifest.key)
    for period, error in broken:
        broken_periods.setdefault(period, str(error))
    for delivery in reports:
        keys = {f.key for f in delivery.files}
        if delivery.not_ready:
            waiting.update(dict.fromkeys(keys, delivery.not_ready))
        else:
            loaded |= keys
    for obj in cur_objects:
        if obj.key in loaded or obj.key in waiting:
            continue
        if _STATUS_FILE.match(obj.key) or _CUR_SIDE_FILE.match(obj.key):
            metadata.add(obj.key)
            continue
        assembly = _CUR_ASSEMBLY_FILE.match(obj.key)
        athena = _ATHENA_FILE.match(obj.key)
        if assembly:
            report, period = assembly["report"], period_of_folder(assembly["period"])
        elif athena:
            report, period = athena["report"], athena_period(athena["year"], athena["month"])
        else:
            continue
        delivery = current.get((report, period))
        if delivery is None:
            waiting[obj.key] = broken_periods.get(
                period,
                f"no {report}-Manifest.json in the period folder names it yet (AWS writes the "
                "manifest last)",
            )
        elif (
            assembly
            and assembly["assembly"] != delivery.assembly_id
            and (obj.modified > delivery.created_at)
        ):
            waiting[obj.key] = (
                f"assembly {assembly['assembly']} is newer than the one the period's manifest "
                f"names ({delivery.assembly_id}); AWS writes the manifest last"
            )
        else:
            superseded.add(obj.key)

    # AWS Data Exports.
    listed = {e.manifest_key for e in exports}
    by_period = {(e.export, e.billing_period): e for e in exports}
    broken_export_periods = {}
    for period, error in broken_exports:
        broken_export_periods.setdefault(period, str(error))
    for export in exports:
        loaded |= {f.key for f in export.files}
        superseded |= set(export.skipped_empty)
    for obj in export_objects:
        if obj.key in loaded or obj.key in superseded:
            continue
        if obj.key in listed or _EXPORT_METADATA_FILE.match(obj.key):
            metadata.add(obj.key)
            continue
        data = _EXPORT_DATA_FILE.match(obj.key)
        if data is None:
            continue
        if (data["export"], data["period"]) in by_period:
            superseded.add(obj.key)  # a file of an earlier refresh the manifest no longer names
        else:
            waiting[obj.key] = broken_export_periods.get(
                data["period"],
                f"no {data['export']}-Manifest.json in metadata/BILLING_PERIOD={data['period']}/ "
                "lists it yet (AWS writes the manifest last)",
            )
    return [
        *account(
            [o.key for o in cur_objects],
            loaded=loaded,
            superseded=superseded,
            metadata=metadata,
            waiting=waiting,
            not_understood_reason=f"not a layout AWS delivers; expected {CUR_LAYOUTS}",
        ),
        *account(
            [o.key for o in export_objects],
            loaded=loaded,
            superseded=superseded,
            metadata=metadata,
            waiting=waiting,
            not_understood_reason=f"not a layout AWS delivers; expected {EXPORT_LAYOUTS}",
        ),
    ]

"""FOCUS deliveries in a landing zone: which exist, which are complete, which one wins a day.

Layout (DESIGN §3)::

    focus/<provider>/<dataset>/billing_period=YYYY-MM/<delivery_id>/part-*.{parquet,csv,csv.gz}
    focus/<provider>/<dataset>/billing_period=YYYY-MM/<delivery_id>/manifest.json   (written last)

A delivery is complete when its manifest is present and every file it lists is there and
non-empty. Providers rewrite whole months (DOMAIN §1), so per (provider, dataset, billing period)
only the newest complete delivery counts; older ones stay on disk as history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

MANIFEST_NAME = "manifest.json"
_FOLDER = re.compile(
    r"^focus/(?P<provider>[^/]+)/(?P<dataset>[^/]+)/"
    r"(?:billing_period|BILLING_PERIOD)=(?P<period>\d{4}-\d{2})/(?P<delivery>[^/]+)/(?P<name>.+)$"
)
DATA_SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".csv.gz": "csv"}  # .snappy.parquet too


class DeliveryError(ValueError):
    """A delivery that claims to be complete but cannot be loaded as it is."""


def load_manifest_json(manifest_bytes: bytes, where: str, what: str, until: str) -> object:
    """A manifest's JSON, or a DeliveryError naming the manifest and what happens until it is
    rewritten (``until``)."""
    try:
        return json.loads(manifest_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeliveryError(f"{where}: {what} is not valid JSON ({error}). {until}") from None


class ObjectLike(Protocol):
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class DeliveryFile:
    key: str
    size: int
    format: str  # "parquet" | "csv"


@dataclass(frozen=True)
class DeliveryFolder:
    provider: str
    dataset: str
    billing_period: str
    delivery_id: str
    prefix: str
    objects: tuple[ObjectLike, ...]

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}/{MANIFEST_NAME}"

    @property
    def manifest(self) -> ObjectLike | None:
        return next((o for o in self.objects if o.key == self.manifest_key), None)

    @property
    def stream(self) -> tuple[str, str]:
        return (self.provider, self.dataset)


@dataclass(frozen=True)
class FocusDelivery:
    provider: str
    dataset: str
    billing_period: str
    delivery_id: str
    created_at: datetime
    files: tuple[DeliveryFile, ...]
    prefix: str

    @property
    def stream(self) -> tuple[str, str]:
        return (self.provider, self.dataset)

    @property
    def sort_key(self) -> tuple[datetime, str]:
        return (self.created_at, self.delivery_id)


def data_format(name: str) -> str | None:
    lowered = name.lower()
    for suffix, fmt in DATA_SUFFIXES.items():
        if lowered.endswith(suffix):
            return fmt
    return None


def group_focus_folders(objects: Iterable[ObjectLike]) -> list[DeliveryFolder]:
    """Group a landing listing into delivery folders (complete or not)."""
    grouped: dict[str, dict] = {}
    for obj in objects:
        match = _FOLDER.match(obj.key)
        if not match:
            continue
        prefix = obj.key[: len(obj.key) - len(match["name"]) - 1]
        entry = grouped.setdefault(
            prefix,
            {
                "provider": match["provider"],
                "dataset": match["dataset"],
                "billing_period": match["period"],
                "delivery_id": match["delivery"],
                "objects": [],
            },
        )
        entry["objects"].append(obj)
    return [
        DeliveryFolder(prefix=prefix, objects=tuple(e.pop("objects")), **e)
        for prefix, e in sorted(grouped.items())
    ]


def parse_timestamp(
    value: object,
    where: str,
    name: str,
    example: str = "2025-02-01T06:00:00Z",
    error: type[ValueError] = DeliveryError,
) -> datetime:
    """An ISO-8601 timestamp from a manifest or metadata file, in UTC when it names no zone.
    Lenient where producers are: a lowercase ``z``, and single-digit hours as in the FOCUS
    specification's own examples (``T0:00:00Z``). Anything else raises ``error`` naming ``where``
    and ``name``."""
    if not isinstance(value, str):
        raise error(f"{where}: {name} must be an ISO-8601 timestamp, got {value!r}")
    text = value.strip().replace("z", "Z").replace("Z", "+00:00")
    if "T" in text:
        day, _, clock = text.partition("T")
        hour, _, rest = clock.partition(":")
        if len(hour) == 1:
            text = f"{day}T0{hour}:{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise error(
            f"{where}: {name} {value!r} is not an ISO-8601 timestamp (e.g. {example})"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_focus_manifest(
    folder: DeliveryFolder, manifest_bytes: bytes, where: str
) -> FocusDelivery:
    """Validate a delivery's manifest against the files actually present."""
    manifest_object = folder.manifest
    assert manifest_object is not None, "parse_focus_manifest needs a folder with a manifest"
    manifest = load_manifest_json(
        manifest_bytes,
        where,
        "manifest",
        "Fix: let the producer rewrite it; until then this delivery is not loaded.",
    )
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise DeliveryError(
            f'{where}: manifest must be a JSON object with a "files" list of data file names'
        )
    period = manifest.get("billingPeriod")
    if period is not None and period != folder.billing_period:
        raise DeliveryError(
            f"{where}: manifest billingPeriod {period!r} does not match its folder "
            f"billing_period={folder.billing_period}; move the delivery or fix the manifest"
        )
    present = {o.key: o for o in folder.objects}
    files: list[DeliveryFile] = []
    seen: set[str] = set()
    for name in manifest["files"]:
        if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
            raise DeliveryError(f"{where}: file entry {name!r} must be a relative file name")
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise DeliveryError(
                f"{where}: file entry {name!r} escapes the delivery folder; a manifest may only "
                "list files inside its own folder"
            )
        key = f"{folder.prefix}/{name}"
        if key in seen:
            raise DeliveryError(f"{where}: file {name!r} is listed twice; each file counts once")
        seen.add(key)
        fmt = data_format(name)
        if fmt is None:
            raise DeliveryError(
                f"{where}: file {name!r} is neither Parquet nor CSV (.parquet, .csv, .csv.gz)"
            )
        obj = present.get(key)
        if obj is None:
            raise DeliveryError(
                f"{where}: manifest lists {name!r} but the file is missing. Fix: re-deliver the "
                "file, or remove this delivery's manifest so the previous delivery is used."
            )
        if obj.size == 0:
            raise DeliveryError(
                f"{where}: {name!r} is empty (0 bytes); the upload was cut short. Fix: re-deliver "
                "the file, or remove this delivery's manifest so the previous delivery is used."
            )
        files.append(DeliveryFile(key=key, size=obj.size, format=fmt))
    return FocusDelivery(
        provider=folder.provider,
        dataset=folder.dataset,
        billing_period=folder.billing_period,
        delivery_id=folder.delivery_id,
        created_at=(
            manifest_object.modified
            if manifest.get("createdAt") is None
            else parse_timestamp(manifest["createdAt"], where, "createdAt")
        ),
        files=tuple(files),
        prefix=folder.prefix,
    )


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def add_months(period: str, months: int) -> str:
    year, month = int(period[:4]), int(period[5:7])
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def newest_per_period(deliveries: Iterable[FocusDelivery]) -> list[FocusDelivery]:
    """The newest complete delivery of each (provider, dataset, billing period)."""
    newest: dict[tuple[str, str, str], FocusDelivery] = {}
    for delivery in deliveries:
        key = (*delivery.stream, delivery.billing_period)
        if key not in newest or delivery.sort_key > newest[key].sort_key:
            newest[key] = delivery
    return sorted(newest.values(), key=lambda d: (d.stream, d.billing_period))


def deliveries_for_month(
    newest: Sequence[FocusDelivery], month: str, correction_months: int
) -> list[FocusDelivery]:
    """Deliveries whose rows may fall in ``month``: its own billing period and the following
    ``correction_months`` (late charges and corrections are billed in later periods)."""
    periods = {add_months(month, k) for k in range(correction_months + 1)}
    return [d for d in newest if d.billing_period in periods]


# --- AWS legacy Cost and Usage Reports --------------------------------------------------------
#   aws-cur/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json        (current assembly)
#   aws-cur/<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-N.csv.gz (or .parquet)
# AWS rebuilds the whole month several times a day; the period manifest names the current
# assemblyId and its reportKeys. Exactly those keys are loaded; older assemblies stay on disk.
_CUR_MANIFEST = re.compile(
    r"^aws-cur/(?P<report>[^/]+)/(?P<start>\d{8})-(?P<end>\d{8})/(?P<name>.+)-Manifest\.json$"
)


@dataclass(frozen=True)
class CurDelivery:
    report: str
    billing_period: str  # YYYY-MM
    assembly_id: str
    files: tuple[DeliveryFile, ...]
    manifest_key: str
    created_at: datetime

    @property
    def stream(self) -> tuple[str, str]:
        return ("aws-cur", self.report)


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
    layout, so each key is resolved by its ``<report>/<period>/<assemblyId>/<file>`` suffix.
    """
    match = _CUR_MANIFEST.match(manifest.key)
    assert match is not None, "parse_cur_manifest needs a period manifest key"
    report, start = match["report"], match["start"]
    period_folder = f"{report}/{start}-{match['end']}"
    data = load_manifest_json(
        manifest_bytes,
        where,
        "CUR manifest",
        "AWS rewrites it on the next refresh; until then the month keeps its previous data.",
    )
    assembly = data.get("assemblyId") if isinstance(data, dict) else None
    keys = data.get("reportKeys") if isinstance(data, dict) else None
    if not isinstance(assembly, str) or not assembly or "/" in assembly or assembly in (".", ".."):
        raise DeliveryError(f"{where}: CUR manifest has no valid assemblyId")
    if not isinstance(keys, list) or not keys:
        raise DeliveryError(f"{where}: CUR manifest lists no reportKeys")
    files: list[DeliveryFile] = []
    seen: set[str] = set()
    for key in keys:
        if not isinstance(key, str):
            raise DeliveryError(f"{where}: reportKey {key!r} is not a string")
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
                f"{where}: reportKey {key!r} is not inside {period_folder}/{assembly}/; a manifest "
                "may only point at files of its own assembly"
            )
        landing_key = f"aws-cur/{period_folder}/{remainder}"
        if landing_key in seen:
            raise DeliveryError(f"{where}: reportKey {key!r} is listed twice")
        seen.add(landing_key)
        fmt = data_format(landing_key)
        if fmt is None:
            raise DeliveryError(f"{where}: reportKey {key!r} is neither CSV (.csv.gz) nor Parquet")
        obj = present.get(landing_key)
        if obj is None:
            raise DeliveryError(
                f"{where}: manifest lists {landing_key} but the file is missing. Fix: wait for AWS "
                "to finish the delivery (or copy the file); until then the month keeps its "
                "previous data."
            )
        if obj.size == 0:
            raise DeliveryError(
                f"{where}: {landing_key} is empty (0 bytes); the upload was cut short. Fix: "
                "re-copy the file from the CUR bucket."
            )
        files.append(DeliveryFile(key=landing_key, size=obj.size, format=fmt))
    return CurDelivery(
        report=report,
        billing_period=f"{start[:4]}-{start[4:6]}",
        assembly_id=assembly,
        files=tuple(files),
        manifest_key=manifest.key,
        created_at=manifest.modified,
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
    files: list[DeliveryFile] = []
    skipped: list[str] = []
    seen: set[str] = set()
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
        if landing_key in seen:
            raise DeliveryError(f"{where}: dataFiles entry {entry!r} is listed twice")
        seen.add(landing_key)
        fmt = data_format(landing_key)
        if fmt is None:
            raise DeliveryError(
                f"{where}: dataFiles entry {entry!r} is neither Parquet nor CSV (.csv.gz)"
            )
        obj = present.get(landing_key)
        if obj is None:
            raise DeliveryError(
                f"{where}: manifest lists {landing_key} but the file is missing. Fix: wait for AWS "
                "to finish the refresh (or copy the file); until then the month keeps its "
                "previous data."
            )
        if obj.size == 0:
            skipped.append(landing_key)
            continue
        files.append(DeliveryFile(key=landing_key, size=obj.size, format=fmt))
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


# --- Azure Cost Management exports --------------------------------------------------------------
#   azure/<scope>/<export>/<yyyymmdd-yyyymmdd>/<runId>/part_*.{csv.gz,parquet}
#   azure/<scope>/<export>/<yyyymmdd-yyyymmdd>/<runId>/manifest.json   (written after the parts)
# A month-to-date export re-exports the whole month on every run: per (scope, export, month) the
# newest run wins and replaces the month. The manifest's dataRowCount is never trusted (newer
# manifests carry null); the loader counts rows itself.
AZURE_ROOT = "azure"
AZURE_EXPORT_TYPES = ("ActualCost", "AmortizedCost", "FocusCost")
_AZURE_MANIFEST = re.compile(
    r"^azure/(?P<scope>[^/]+)/(?P<export>[^/]+)/(?P<start>\d{8})-(?P<end>\d{8})/"
    r"(?P<run>[^/]+)/manifest\.json$"
)


@dataclass(frozen=True)
class AzureRun:
    scope: str
    export: str
    export_type: str  # ActualCost | AmortizedCost | FocusCost
    billing_period: str  # YYYY-MM, runInfo.startDate[:7]
    run_id: str
    submitted_at: datetime
    files: tuple[DeliveryFile, ...]
    manifest_key: str
    declared_rows: int | None  # dataRowCount as the manifest says it (informational only)

    @property
    def stream(self) -> tuple[str, str]:
        return (self.scope, self.export)

    @property
    def sort_key(self) -> tuple[datetime, str]:
        return (self.submitted_at, self.run_id)

    @property
    def dataset(self) -> str:
        return f"{AZURE_ROOT}/{self.scope}/{self.export}"


@dataclass(frozen=True)
class AzureScopeMonth:
    """The runs that make one scope's month, and which cost basis they give (x_CostBasis):
    ``merged`` (ActualCost + AmortizedCost), ``actual_only``, ``amortized_only`` or ``focus``."""

    scope: str
    billing_period: str
    cost_basis: str
    runs: tuple[AzureRun, ...]
    ignored: tuple[AzureRun, ...] = ()


def find_azure_manifests(objects: Iterable[ObjectLike]) -> list[ObjectLike]:
    return sorted((o for o in objects if _AZURE_MANIFEST.match(o.key)), key=lambda o: o.key)


def _blob_key(blob: object, run_folder: str, where: str) -> str:
    """A manifest blob name (relative to the run folder, or the full container path ending in
    ``<export>/<yyyymmdd-yyyymmdd>/<runId>/<file>``) as a landing key inside the run folder."""
    if not isinstance(blob, str) or not blob.strip() or "\\" in blob or "\x00" in blob:
        raise DeliveryError(f"{where}: blob {blob!r} is not a blob name")
    name = blob.strip()
    tail = "/".join(run_folder.split("/")[2:])  # <export>/<yyyymmdd-yyyymmdd>/<runId>
    position = ("/" + name).rfind(f"/{tail}/")
    remainder = ("/" + name)[position + len(tail) + 2 :] if position >= 0 else name
    parts = remainder.split("/")
    if (name.startswith("/") and position < 0) or any(p in ("", ".", "..") for p in parts):
        raise DeliveryError(
            f"{where}: blob {blob!r} escapes its run folder {run_folder}/; a manifest may only "
            "list files of its own run. Fix: correct or remove this manifest."
        )
    return f"{run_folder}/{remainder}"


def _azure_timestamp(value: object, fallback: datetime, where: str, field_name: str) -> datetime:
    if value is None:
        return fallback
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise DeliveryError(f"{where}: {field_name} {value!r} is not an ISO-8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_azure_manifest(
    manifest: ObjectLike, manifest_bytes: bytes, present: dict[str, ObjectLike], where: str
) -> AzureRun:
    """Validate an Azure export run's manifest against the files actually present."""
    match = _AZURE_MANIFEST.match(manifest.key)
    assert match is not None, "parse_azure_manifest needs a run manifest key"
    run_folder = manifest.key[: -len("/manifest.json")]
    data = load_manifest_json(
        manifest_bytes,
        where,
        "manifest",
        "Azure writes it after the data files; until it is complete the month keeps its previous data.",
    )
    if not isinstance(data, dict):
        raise DeliveryError(f"{where}: manifest must be a JSON object")
    config = data.get("exportConfig") if isinstance(data.get("exportConfig"), dict) else {}
    run_info = data.get("runInfo") if isinstance(data.get("runInfo"), dict) else {}
    export_type = config.get("type")
    if export_type not in AZURE_EXPORT_TYPES:
        raise DeliveryError(
            f"{where}: exportConfig.type is {export_type!r}; expected one of "
            f"{', '.join(AZURE_EXPORT_TYPES)} (cost and usage details exports)"
        )
    start = run_info.get("startDate")
    if not isinstance(start, str) or not re.match(r"^\d{4}-\d{2}", start):
        raise DeliveryError(
            f"{where}: runInfo.startDate {start!r} is not a date; it decides the month the run "
            "replaces"
        )
    run_id = run_info.get("runId") or match["run"]
    blobs = data.get("blobs")
    if not isinstance(blobs, list) or not blobs:
        raise DeliveryError(f"{where}: manifest lists no blobs")
    files: list[DeliveryFile] = []
    seen: set[str] = set()
    for blob in blobs:
        name = blob.get("blobName") if isinstance(blob, dict) else blob
        key = _blob_key(name, run_folder, where)
        if key in seen:
            raise DeliveryError(f"{where}: blob {name!r} is listed twice; each file counts once")
        seen.add(key)
        fmt = data_format(key)
        if fmt is None:
            raise DeliveryError(
                f"{where}: blob {name!r} is neither CSV (.csv, .csv.gz) nor Parquet (.parquet)"
            )
        obj = present.get(key)
        if obj is None:
            raise DeliveryError(
                f"{where}: manifest lists blob {name!r} but the file is missing. Fix: copy the "
                "blob from the export's storage container (or re-run the export); until then "
                "the month keeps its previous data."
            )
        if obj.size == 0:
            raise DeliveryError(
                f"{where}: blob {name!r} is empty (0 bytes); the copy was cut short. Fix: copy "
                "it again from the export's storage container."
            )
        files.append(DeliveryFile(key=key, size=obj.size, format=fmt))
    declared = data.get("dataRowCount")
    return AzureRun(
        scope=match["scope"],
        export=match["export"],
        export_type=export_type,
        billing_period=start[:7],
        run_id=str(run_id),
        submitted_at=_azure_timestamp(
            run_info.get("submittedTime"), manifest.modified, where, "runInfo.submittedTime"
        ),
        files=tuple(files),
        manifest_key=manifest.key,
        declared_rows=declared if isinstance(declared, int) else None,
    )


def newest_azure_runs(runs: Iterable[AzureRun]) -> list[AzureRun]:
    """The newest run of each (scope, export, month): a newer run restates the whole month."""
    newest: dict[tuple[str, str, str], AzureRun] = {}
    for run in runs:
        key = (*run.stream, run.billing_period)
        if key not in newest or run.sort_key > newest[key].sort_key:
            newest[key] = run
    return sorted(newest.values(), key=lambda r: (r.stream, r.billing_period))


def azure_scope_months(newest: Sequence[AzureRun], month: str) -> list[AzureScopeMonth]:
    """Pair the newest runs of ``month`` per scope. A FocusCost export holds both cost bases and
    wins over ActualCost/AmortizedCost exports of the same scope (those are listed as ignored);
    otherwise the ActualCost and AmortizedCost runs are merged. Two exports of one type for one
    scope and month would count the money twice: that is an error, not a guess."""
    by_scope: dict[str, list[AzureRun]] = {}
    for run in newest:
        if run.billing_period == month:
            by_scope.setdefault(run.scope, []).append(run)
    result = []
    for scope, runs in sorted(by_scope.items()):
        by_type: dict[str, AzureRun] = {}
        for run in runs:
            other = by_type.get(run.export_type)
            if other is not None:
                raise DeliveryError(
                    f"azure/{scope}: exports {other.export!r} and {run.export!r} are both "
                    f"{run.export_type} for {month}; loading both would count its cost twice. "
                    "Fix: keep one export per type and scope (move the other to its own scope "
                    "folder if it covers a different scope)."
                )
            by_type[run.export_type] = run
        if "FocusCost" in by_type:
            ignored = tuple(r for t, r in by_type.items() if t != "FocusCost")
            result.append(AzureScopeMonth(scope, month, "focus", (by_type["FocusCost"],), ignored))
            continue
        actual, amortized = by_type.get("ActualCost"), by_type.get("AmortizedCost")
        basis = {
            (True, True): "merged",
            (True, False): "actual_only",
            (False, True): "amortized_only",
        }[(actual is not None, amortized is not None)]
        result.append(
            AzureScopeMonth(scope, month, basis, tuple(r for r in (actual, amortized) if r))
        )
    return result


def azure_run_time(manifest: ObjectLike, manifest_bytes: bytes) -> datetime:
    """When a run was submitted (runInfo.submittedTime), best effort for a manifest that failed
    validation; the manifest's modification time when it does not say."""
    try:
        value = json.loads(manifest_bytes)["runInfo"]["submittedTime"]
        return _azure_timestamp(value, manifest.modified, "", "")
    except (ValueError, KeyError, TypeError, DeliveryError):
        return manifest.modified

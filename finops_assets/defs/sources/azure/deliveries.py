"""Azure Cost Management export runs in a landing zone, without Dagster: manifests, runs, which
run wins a scope and month.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from finops_assets.lib.deliveries import (
    DeliveryError,
    DeliveryFile,
    ObjectLike,
    data_format,
    load_manifest_json,
    period_of_folder,
)
from finops_assets.lib.delivery_watch import (
    Candidate,
    month_days,
)
from finops_assets.resources.landing import LandingZone

# The raw assets these deliveries load (asset key paths).
RAW_AZURE = "raw/azure_cost"

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
            target=RAW_AZURE,
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
                target=RAW_AZURE,
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
                period=period_of_folder(match["start"]),
                delivery_id=match["run"],
                created_at=max(obj.modified for _, obj in entries),
                where=landing.url(folder),
                complete=False,
                reason=f"{len(entries)} file(s) but no manifest.json yet (export run still writing)",
                files=len(entries),
                target=RAW_AZURE,
            )
        )
    return candidates






def discover_azure(
    landing: LandingZone,
) -> tuple[list[AzureRun], list[tuple[str, tuple[str, str], datetime, DeliveryError]], bool]:
    """Complete export runs, manifests that cannot be loaded (month, (scope, export), manifest
    time, error), and whether the landing zone carries Azure exports at all."""
    objects = landing.list(AZURE_ROOT)
    present = {o.key: o for o in objects}
    runs, broken = [], []
    for manifest in find_azure_manifests(objects):
        manifest_bytes = landing.read_bytes(manifest.key)
        try:
            runs.append(
                parse_azure_manifest(manifest, manifest_bytes, present, landing.url(manifest.key))
            )
        except DeliveryError as error:
            _, scope, export, period, _ = manifest.key.split("/", 4)
            month = f"{period[:4]}-{period[4:6]}"
            broken.append((month, (scope, export), azure_run_time(manifest, manifest_bytes), error))
    return runs, broken, bool(objects)


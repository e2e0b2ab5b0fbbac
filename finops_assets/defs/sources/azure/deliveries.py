"""Azure Cost Management export runs in a landing zone, without Dagster: manifests, runs, which
run wins a scope and month, and the account of every object under ``azure/``.

Two layouts, which may coexist in one landing zone (even in one export folder: each file or
manifest is one run of its export, and the newest run of an export and month wins):

* Exports with a manifest (the current exports): ``azure/<scope>/<export>/<YYYYMMDD-YYYYMMDD>/
  <runId>/part_*.{csv.gz,parquet}`` and ``manifest.json`` (written last), which names the export
  type (``exportConfig.type``), the month (``runInfo.startDate``) and the parts.
* Classic exports (no manifest, still what most tenants have): ``azure/<directory>/<export>/
  <YYYYMMDD-YYYYMMDD>/<export>_<guid>.csv``, one file per run. The date folder spans one calendar
  month: it starts on the 1st and ends on the month's last day (``20240301-20240331``) or on the
  1st of the next month. The newest file of an export and month, by modification time (never by
  name: guids do not sort by time), is the run that replaces the month, once it has not changed
  for ``rules.deliveries.settle_minutes``; until then it is waiting (the sensor reports when it
  settles) and the newest settled file stays current. Older files are superseded. A header-only
  file is a real run with zero rows (the restatement guard decides whether it may empty a
  loaded month); a 0-byte file is a broken copy. The run id is the file name plus a fingerprint
  of its size and modification time (``<name>@<size>-<YYYYMMDDTHHMMSSZ>``), so a file rewritten
  in place is a new run.

  Export type of a classic file (there is no manifest to say it). The header tells which
  header set the file uses (EA, MCA, MPA/CSP partner, pay-as-you-go: ``cost_details.
  resolve_azure_layout``), but not the cost basis: an AmortizedCost export has exactly the columns
  of an ActualCost one. So the export folder name decides: a name containing ``amortized`` (any
  case) is AmortizedCost, anything else ActualCost; name the amortized export accordingly. A
  classic file with a FOCUS header is refused with a pointer to the FocusCost export (which
  Azure only writes with a manifest) or to ``focus/``: classic exports are cost details only.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from finops_assets.lib.accounting import Accounted
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
from finops_assets.lib.rules import Rules
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
    # The run's manifest.json; for a classic run (no manifest) the run's one file.
    manifest_key: str
    declared_rows: int | None  # dataRowCount as the manifest says it (informational only)
    layout: str = "manifest"  # "manifest" | "classic"

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
    listed = ListedFiles(
        present,
        where,
        "copy the blob again from the export's storage container (or re-run the export); "
        "until then the month keeps its previous data.",
    )
    for blob in blobs:
        name = blob.get("blobName") if isinstance(blob, dict) else blob
        listed.add(_blob_key(name, run_folder, where), f"blob {name!r}")
    files = listed.files
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


# --- Azure exports, classic (no manifest) ------------------------------------------------------
#   azure/<directory>/<export>/<yyyymmdd-yyyymmdd>/<export>_<guid>.csv   (one file per run)
_AZURE_CLASSIC = re.compile(
    r"^azure/(?P<scope>[^/]+)/(?P<export>[^/]+)/(?P<start>\d{8})-(?P<end>\d{8})/(?P<name>[^/]+)$"
)
# Parts of a manifest run (the run folder's manifest.json may not be there yet).
_AZURE_PART = re.compile(
    r"^azure/(?P<scope>[^/]+)/(?P<export>[^/]+)/(?P<start>\d{8})-(?P<end>\d{8})/(?P<run>[^/]+)/[^/]+$"
)
CLASSIC_LAYOUT = "azure/<directory>/<export>/<YYYYMMDD-YYYYMMDD>/<export>_<guid>.csv"
MANIFEST_LAYOUT = (
    "azure/<scope>/<export>/<YYYYMMDD-YYYYMMDD>/<runId>/part_*.{csv.gz,parquet} with the run's "
    "manifest.json beside them"
)


def classic_billing_period(start: str, end: str) -> str | None:
    """The month a classic date folder ``<start>-<end>`` covers: it starts on the 1st and ends on
    the month's last day (Azure's own naming) or on the next month's 1st; else None."""
    try:
        first = datetime.strptime(start, "%Y%m%d").date()
        last = datetime.strptime(end, "%Y%m%d").date()
    except ValueError:
        return None
    if first.day != 1:
        return None
    period = f"{first:%Y-%m}"
    month_end = month_days(period)[-1]
    return period if last in (month_end, month_end + timedelta(days=1)) else None


def classic_export_type(export: str) -> str:
    """AmortizedCost when the export folder's name contains 'amortized', else ActualCost: the two
    cost-details exports share one header, and a classic run has no manifest to say it."""
    return "AmortizedCost" if "amortized" in export.lower() else "ActualCost"


def classic_delivery_id(obj: ObjectLike) -> str:
    """File name + size + modification time: a file rewritten in place is a new run."""
    name = obj.key.rsplit("/", 1)[-1]
    return f"{name}@{obj.size}-{obj.modified.astimezone(UTC):%Y%m%dT%H%M%SZ}"


@dataclass(frozen=True)
class BrokenRun:
    """A run that claims to be complete but cannot be loaded: a manifest that fails validation,
    or a settled classic file of 0 bytes. It fails its month unless a newer good run of the same
    export replaced it."""

    billing_period: str
    stream: tuple[str, str]
    modified: datetime
    error: DeliveryError
    keys: tuple[str, ...]  # the run's objects (manifest and run folder, or the classic file)
    delivery_id: str = "unreadable-manifest"
    where: str = ""  # for the sensor: the URL of the classic file ('' for a manifest run)


@dataclass(frozen=True)
class WaitingFile:
    """The newest classic file(s) of an export and month that changed less than
    ``settle_minutes`` ago: not loaded yet."""

    obj: ObjectLike
    scope: str
    export: str
    billing_period: str
    settles_at: datetime

    @property
    def delivery_id(self) -> str:
        return classic_delivery_id(self.obj)


@dataclass(frozen=True)
class AzureLanding:
    """What ``discover_azure`` found under ``azure/``."""

    objects: tuple[ObjectLike, ...]
    runs: tuple[AzureRun, ...]  # complete runs of both layouts (classic: settled files)
    broken: tuple[BrokenRun, ...]
    waiting: tuple[WaitingFile, ...]
    # Files in a classic date folder that cannot be a classic run, with the reason.
    not_understood: dict[str, str]

    @property
    def any_azure(self) -> bool:
        return bool(self.objects)


def _classic_runs(
    objects: Iterable[ObjectLike], landing: LandingZone, settle: timedelta, now: datetime
) -> tuple[list[AzureRun], list[BrokenRun], list[WaitingFile], dict[str, str]]:
    groups: dict[tuple[str, str, str], list[ObjectLike]] = defaultdict(list)
    not_understood: dict[str, str] = {}
    for obj in objects:
        match = _AZURE_CLASSIC.match(obj.key)
        if not match:
            continue
        folder = obj.key.rsplit("/", 1)[0]
        name, export = match["name"], match["export"]
        if name == "manifest.json" or name.lower().endswith(".json"):
            not_understood[obj.key] = (
                f"a JSON file directly in the date folder {folder}/: a run's manifest.json "
                f"belongs in its run folder ({MANIFEST_LAYOUT}); classic exports have none"
            )
            continue
        if data_format(name) != "csv" or not name.lower().startswith(export.lower() + "_"):
            not_understood[obj.key] = (
                f"not a classic export file: expected {export}_<guid>.csv directly in "
                f"{folder}/ ({CLASSIC_LAYOUT}), or a run folder ({MANIFEST_LAYOUT})"
            )
            continue
        period = classic_billing_period(match["start"], match["end"])
        if period is None:
            not_understood[obj.key] = (
                f"date folder {match['start']}-{match['end']} does not span one calendar month: "
                "a classic export folder starts on the 1st and ends on the month's last day "
                f"(e.g. 20240301-20240331) or the next month's 1st ({CLASSIC_LAYOUT})"
            )
            continue
        groups[(match["scope"], export, period)].append(obj)
    runs, broken, waiting = [], [], []
    for (scope, export, period), files in sorted(groups.items()):
        for obj in sorted(files, key=lambda o: (o.modified, o.key)):
            settles_at = obj.modified + settle
            if now < settles_at:
                waiting.append(WaitingFile(obj, scope, export, period, settles_at))
            elif obj.size == 0:
                broken.append(
                    BrokenRun(
                        period,
                        (scope, export),
                        obj.modified,
                        DeliveryError(
                            f"{landing.url(obj.key)}: the export file is empty (0 bytes): the "
                            "copy was cut short (a run with no charges still has its header "
                            "line). Fix: copy it again from the export's storage container, or "
                            "remove it so the previous run of the month is used."
                        ),
                        (obj.key,),
                        classic_delivery_id(obj),
                        landing.url(obj.key),
                    )
                )
            else:
                runs.append(
                    AzureRun(
                        scope=scope,
                        export=export,
                        export_type=classic_export_type(export),
                        billing_period=period,
                        run_id=classic_delivery_id(obj),
                        submitted_at=obj.modified,
                        files=(DeliveryFile(key=obj.key, size=obj.size, format="csv"),),
                        manifest_key=obj.key,
                        declared_rows=None,
                        layout="classic",
                    )
                )
    return runs, broken, waiting, not_understood


def discover_azure(landing: LandingZone, settle_minutes: float, now: datetime) -> AzureLanding:
    """Complete export runs of both layouts, runs that cannot be loaded, classic files still
    settling at ``now``, and classic-looking files that cannot be runs."""
    objects = landing.list(AZURE_ROOT)
    present = {o.key: o for o in objects}
    runs: list[AzureRun] = []
    broken: list[BrokenRun] = []
    for manifest in find_azure_manifests(objects):
        manifest_bytes = landing.read_bytes(manifest.key)
        try:
            runs.append(
                parse_azure_manifest(manifest, manifest_bytes, present, landing.url(manifest.key))
            )
        except DeliveryError as error:
            _, scope, export, period, _ = manifest.key.split("/", 4)
            folder = manifest.key[: -len("manifest.json")]
            broken.append(
                BrokenRun(
                    f"{period[:4]}-{period[4:6]}",
                    (scope, export),
                    azure_run_time(manifest, manifest_bytes),
                    error,
                    tuple(o.key for o in objects if o.key.startswith(folder)),
                )
            )
    classic, classic_broken, waiting, not_understood = _classic_runs(
        objects, landing, timedelta(minutes=settle_minutes), now
    )
    return AzureLanding(
        objects=tuple(objects),
        runs=tuple(runs + classic),
        broken=tuple(broken + classic_broken),
        waiting=tuple(waiting),
        not_understood=not_understood,
    )


def superseded_by(broken: BrokenRun, newest: Iterable[AzureRun]) -> AzureRun | None:
    """The newer good run of the same export and month that makes a broken run irrelevant (an
    old run whose blobs were cleaned up does not matter any more)."""
    return next(
        (
            r
            for r in newest
            if r.stream == broken.stream
            and r.billing_period == broken.billing_period
            and r.submitted_at > broken.modified
        ),
        None,
    )


def _parts_without_manifest(objects: Iterable[ObjectLike]) -> dict[str, list]:
    """Run folders with parts but no manifest.json yet (Azure writes it after the data files)."""
    folders: dict[str, list] = defaultdict(list)
    for obj in objects:
        match = _AZURE_PART.match(obj.key)
        if match:
            folders[obj.key.rsplit("/", 1)[0]].append((match, obj))
    return {
        folder: entries
        for folder, entries in sorted(folders.items())
        if not any(obj.key.endswith("/manifest.json") for _, obj in entries)
    }


def scan_azure(landing, rules, now) -> list[Candidate]:
    settle_minutes = rules.deliveries.settle_minutes
    found = discover_azure(landing, settle_minutes, now)
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
        for r in found.runs
    ]
    for b in found.broken:
        scope, export = b.stream
        candidates.append(
            Candidate(
                stream=f"{AZURE_ROOT}/{scope}/{export}",
                period=b.billing_period,
                delivery_id=b.delivery_id,
                created_at=b.modified,
                where=b.where or f"{AZURE_ROOT}/{scope}/{export}",
                complete=False,
                reason=str(b.error),
                target=RAW_AZURE,
            )
        )
    for w in found.waiting:
        candidates.append(
            Candidate(
                stream=f"{AZURE_ROOT}/{w.scope}/{w.export}",
                period=w.billing_period,
                delivery_id=w.delivery_id,
                created_at=w.obj.modified,
                where=landing.url(w.obj.key),
                days=month_days(w.billing_period),
                complete=False,
                reason=(
                    f"classic export file changed at {w.obj.modified.isoformat()}; it is loaded "
                    f"once it has not changed for {settle_minutes:g} minutes, at "
                    f"{w.settles_at.isoformat()} (deliveries.settle_minutes)"
                ),
                files=1,
                target=RAW_AZURE,
            )
        )
    for folder, entries in _parts_without_manifest(found.objects).items():
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


# --- Every object under azure/ accounted for ---------------------------------------------------
def account_landing(landing: LandingZone, rules: Rules, now: datetime) -> list[Accounted]:
    """Every object under ``azure/``: loaded (a file of the newest run of its export and month),
    superseded (older runs, a cost-details export a FocusCost export of its scope replaces, a
    broken run a newer one replaced), waiting (a classic file still settling, parts whose
    manifest.json has not arrived), metadata (manifest.json) or not understood, with the reason
    and the layout expected."""
    found = discover_azure(landing, rules.deliveries.settle_minutes, now)
    newest = newest_azure_runs(found.runs)
    rows: dict[str, Accounted] = {}
    ignored: dict[str, str] = {}  # run_id -> why a newest run is not loaded
    conflicts: dict[str, str] = {}
    for month in sorted({r.billing_period for r in newest}):
        try:
            scope_months = azure_scope_months(newest, month)
        except DeliveryError as error:
            for run in newest:
                if run.billing_period == month:
                    conflicts.setdefault(run.run_id, str(error))
            continue
        for scope_month in scope_months:
            for run in scope_month.ignored:
                ignored[run.run_id] = (
                    f"the FocusCost export of {scope_month.scope} holds both cost bases for "
                    f"{month}; this {run.export_type} export is not loaded"
                )
    current = {r.run_id for r in newest}
    for run in found.runs:
        delivery = run.run_id
        if run.layout == "manifest":
            rows[run.manifest_key] = Accounted(run.manifest_key, "metadata", "", delivery)
        for file in run.files:
            if delivery in conflicts:
                rows[file.key] = Accounted(
                    file.key, "not_understood", conflicts[delivery], delivery
                )
            elif delivery in ignored:
                rows[file.key] = Accounted(file.key, "superseded", ignored[delivery], delivery)
            elif delivery in current:
                rows[file.key] = Accounted(file.key, "loaded", "", delivery)
            else:
                winner = next(
                    r
                    for r in newest
                    if r.stream == run.stream and r.billing_period == run.billing_period
                )
                rows[file.key] = Accounted(
                    file.key,
                    "superseded",
                    f"a newer run of {run.export} for {run.billing_period} replaces it "
                    f"({winner.run_id})",
                    delivery,
                )
    for b in found.broken:
        winner = superseded_by(b, newest)
        for key in b.keys:
            if key in rows:
                continue
            if winner is not None:
                rows[key] = Accounted(
                    key,
                    "superseded",
                    f"a broken run a newer run replaces ({winner.run_id})",
                    b.delivery_id,
                )
            else:
                rows[key] = Accounted(key, "not_understood", str(b.error), b.delivery_id)
    for w in found.waiting:
        rows[w.obj.key] = Accounted(
            w.obj.key,
            "waiting",
            f"classic export file still settling: loaded once unchanged for "
            f"{rules.deliveries.settle_minutes:g} minutes, at {w.settles_at.isoformat()} "
            "(deliveries.settle_minutes)",
            w.delivery_id,
        )
    for entries in _parts_without_manifest(found.objects).values():
        for match, obj in entries:
            rows.setdefault(
                obj.key,
                Accounted(
                    obj.key,
                    "waiting",
                    f"run {match['run']} has no manifest.json yet (Azure writes it after the data "
                    "files); loaded once it arrives",
                    match["run"],
                ),
            )
    for key, reason in found.not_understood.items():
        rows.setdefault(key, Accounted(key, "not_understood", reason))
    run_folders = {r.manifest_key.rsplit("/", 1)[0] for r in found.runs if r.layout == "manifest"}
    for obj in found.objects:
        if obj.key in rows:
            continue
        folder = obj.key.rsplit("/", 1)[0]
        if folder in run_folders:
            reason = (
                f"in run folder {folder}/ but not listed in its manifest.json: the run's "
                "manifest names every file the run wrote"
            )
        else:
            reason = (
                "not in an Azure export layout: expected a classic export file "
                f"({CLASSIC_LAYOUT}) or an export run ({MANIFEST_LAYOUT})"
            )
        rows[obj.key] = Accounted(obj.key, "not_understood", reason)
    return [rows[key] for key in sorted(rows)]

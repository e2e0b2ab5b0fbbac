"""FOCUS deliveries in a landing zone: which exist, which are complete, which one wins a day.

Layout (DESIGN §3)::

    focus/<provider>/<dataset>/billing_period=YYYY-MM/<delivery_id>/part-*.{parquet,csv,csv.gz}
    focus/<provider>/<dataset>/billing_period=YYYY-MM/<delivery_id>/manifest.json   (written last)

A delivery is complete when its manifest is present and every file it lists is there and
non-empty. Providers rewrite whole months (DOMAIN §1), so per (provider, dataset, billing period)
only the newest complete delivery counts; older ones stay on disk as history.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from finops_assets.defs.sources.aws.deliveries import EXPORT_ROOT, DataExportDelivery
from finops_assets.lib.deliveries import (
    DeliveryError,
    DeliveryFile,
    ObjectLike,
    add_months,
    data_format,
    load_manifest_json,
    parse_timestamp,
)
from finops_assets.lib.delivery_watch import (
    Candidate,
    RecencyError,
    cached,
    month_days,
    recency_incomplete_days,
)
from finops_assets.lib.loading import (
    describe_file,
    reader_sql,
)
from finops_assets.resources.landing import LandingZone

# The raw assets these deliveries load (asset key paths).
RAW_FOCUS = "raw/focus"
STATUS_COLUMN = "x_DatasetCompletionStatus"

MANIFEST_NAME = "manifest.json"
_FOLDER = re.compile(
    r"^focus/(?P<provider>[^/]+)/(?P<dataset>[^/]+)/"
    r"(?:billing_period|BILLING_PERIOD)=(?P<period>\d{4}-\d{2})/(?P<delivery>[^/]+)/(?P<name>.+)$"
)


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






# --- FOCUS from any producer -------------------------------------------------------------------
def _focus_days(
    landing: LandingZone, files: tuple[tuple[str, str, int], ...]
) -> tuple[tuple[date, ...], tuple[tuple[date, str], ...]]:
    return cached(("focus", landing.url(), files), lambda: _read_focus_days(landing, files))


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
            "target": RAW_FOCUS,
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






def discover_deliveries(
    landing: LandingZone, log: logging.Logger | logging.LoggerAdapter
) -> tuple[list[FocusDelivery], list[tuple[DeliveryFolder, DeliveryError]]]:
    """Complete deliveries, plus folders whose manifest claims completeness but is broken."""
    complete, broken = [], []
    for folder in group_focus_folders(landing.list("focus")):
        if folder.manifest is None:
            log.info(
                f"Skipping {landing.url(folder.prefix)}: no manifest.json yet (delivery incomplete)."
            )
            continue
        try:
            complete.append(
                parse_focus_manifest(
                    folder,
                    landing.read_bytes(folder.manifest_key),
                    landing.url(folder.manifest_key),
                )
            )
        except DeliveryError as error:
            broken.append((folder, error))
    return complete, broken


def select_month_deliveries(
    month: str,
    complete: list[FocusDelivery],
    broken: list[tuple[DeliveryFolder, DeliveryError]],
    correction_months: int,
) -> list[FocusDelivery]:
    """The newest complete delivery per stream and billing period that may hold ``month``'s rows.

    A broken delivery newer than the one we would use fails the load instead of being skipped:
    loading the older data would silently undo the provider's restatement.
    """
    chosen = deliveries_for_month(newest_per_period(complete), month, correction_months)
    for folder, error in broken:
        if not deliveries_for_month([_placeholder(folder)], month, correction_months):
            continue
        current = next(
            (
                d
                for d in chosen
                if d.stream == folder.stream and d.billing_period == folder.billing_period
            ),
            None,
        )
        manifest = folder.manifest
        if current is None or (manifest is not None and manifest.modified >= current.created_at):
            raise error
    return chosen


def _placeholder(folder: DeliveryFolder) -> FocusDelivery:
    manifest = folder.manifest
    assert manifest is not None
    return FocusDelivery(
        provider=folder.provider,
        dataset=folder.dataset,
        billing_period=folder.billing_period,
        delivery_id=folder.delivery_id,
        created_at=manifest.modified,
        files=(),
        prefix=folder.prefix,
    )


def export_as_focus_delivery(export: DataExportDelivery) -> FocusDelivery:
    """An AWS Data Exports FOCUS export month, as a delivery of the stream
    ``aws-data-exports/<export>`` (its manifest is rewritten in place on every refresh)."""
    return FocusDelivery(
        provider=EXPORT_ROOT,
        dataset=export.export,
        billing_period=export.billing_period,
        delivery_id=export.execution_id,
        created_at=export.created_at,
        files=export.files,
        prefix=export.manifest_key.rsplit("/", 1)[0],
    )


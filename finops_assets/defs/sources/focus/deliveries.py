"""FOCUS deliveries in a landing zone: which exist, which are complete, which files win a day,
and the account of every object under ``focus/`` (no Dagster here).

Everything lives under ``focus/<provider>/<dataset>/``; below the dataset folder any structure is
read. Two kinds of dataset:

**Manifest datasets** (our own layout, unchanged; a dataset is one as soon as it holds one of
these manifests)::

    focus/<provider>/<dataset>/billing_period=YYYY-MM/<delivery_id>/part-*.{parquet,csv,csv.gz}
    focus/<provider>/<dataset>/billing_period=YYYY-MM/<delivery_id>/manifest.json   (written last)

A delivery is complete when its manifest is present and every file it lists is there and
non-empty. Providers rewrite whole months (DOMAIN §1), so per (provider, dataset, billing period)
only the newest complete delivery counts; older ones stay on disk as history (superseded). A
delivery folder without ``manifest.json`` is waiting for it. A data file of a manifest dataset
outside a delivery folder, or in one but not listed by its manifest, is not understood.

**Manifest-less datasets** (what producers write when nobody asked them for a manifest): files
flat in the dataset folder, in dated folders (``2024-03/``, ``20240301-20240401/``,
``billing_period=2024-03/`` without manifest, ``2024-03-02/``, Oracle OCI's ``YYYY/MM/DD/``,
``year=2024/month=3/``; folder names may contain spaces), Parquet or CSV (.gz). Every data file
is read for its billing periods (month of ``BillingPeriodStart``) and charge days (UTC date of
``ChargePeriodStart``). Then:

* *Delivery*: per dataset and billing month, the set of current files carrying rows of that
  billing period; only those rows are loaded from each file (a file holding two billing periods
  belongs to two deliveries, each taking its own rows). Its id is ``files-`` + a fingerprint of
  the billing period and the files' keys, sizes and modification times, so any rewrite, added or
  removed file is a new delivery that replaces the month slice.
* *Current vs superseded* (simple and safe; we never merge rows across rewrites): each file has a
  folder-derived period, the first dated folder on its path below the dataset (none for flat
  files). Files in **day folders** (``2024-03-02/``, ``YYYY/MM/DD/``) are incremental, as OCI
  writes them: they are never superseded, all of them are summed. Otherwise, among the files of
  the same folder-derived period carrying rows of the same billing period, the newest write wins:
  a file modified more than ``rules.deliveries.settle_minutes`` before the newest such file is
  superseded for that billing period (files written within one settle window of each other are
  the parts of one write). A producer that rewrites a month into a new file (flat
  ``export_2024-03-05.csv`` after ``export_2024-03-04.csv``, a new run folder under
  ``20240301-20240331/``) thus replaces it; parts of one export are summed. A producer writing
  month-to-date snapshots into *day* folders would be summed twice: put such snapshots in a month
  folder (or flat), or write our manifest layout.
* *Completeness*, in this order: a ``x_DatasetCompletionStatus`` column (days with Incomplete
  rows wait, the others load), FOCUS 1.3 Recency metadata (``recency*.json`` anywhere in the
  dataset, e.g. ``<dataset>/metadata/recency/recency-<DatasetInstanceId>.json``: days not covered
  by complete time sectors wait), or failing both the settle time: a file modified less than
  ``settle_minutes`` ago is waiting (it neither loads nor supersedes anything yet).
* A data file that cannot be read, lacks ``BillingPeriodStart``/``ChargePeriodStart`` or has rows
  where they are empty or unparseable is a broken delivery: the load of the months it may hold
  fails naming it (never a silent skip). A 0-byte file waits for the settle time, then is broken.

Every object is accounted for (``account_landing``): loaded, superseded, waiting, metadata
(manifests, Recency JSON, ``_SUCCESS`` markers) or not understood with the reason and the layout
expected. ``survey_focus`` is the one discovery both the sensor (``scan_focus``) and the asset
(``discover_deliveries``) use.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import duckdb

from finops_assets.defs.sources.aws.deliveries import EXPORT_ROOT, DataExportDelivery
from finops_assets.lib.accounting import Accounted
from finops_assets.lib.deliveries import (
    DeliveryError,
    DeliveryFile,
    ListedFiles,
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
from finops_assets.lib.rules import Rules
from finops_assets.lib.warehouse import quote_identifier as q
from finops_assets.lib.warehouse import utc_date, utc_month
from finops_assets.resources.landing import LandingZone

# The raw assets these deliveries load (asset key paths).
RAW_FOCUS = "raw/focus"
STATUS_COLUMN = "x_DatasetCompletionStatus"

MANIFEST_NAME = "manifest.json"
_FOLDER = re.compile(
    r"^focus/(?P<provider>[^/]+)/(?P<dataset>[^/]+)/"
    r"(?:billing_period|BILLING_PERIOD)=(?P<period>\d{4}-\d{2})/(?P<delivery>[^/]+)/(?P<name>.+)$"
)
# FOCUS 1.3 Recency metadata: recency-<DatasetInstanceId>.json (any folder of the dataset).
_RECENCY_NAME = re.compile(r"^recency[^/]*\.json$", re.IGNORECASE)
# Completion markers some writers (Spark, Hadoop) leave beside the data: metadata, never data.
_MARKER_NAMES = {"_success", "_committed", "_started"}
DATASET_LAYOUT = (
    "focus/<provider>/<dataset>/<FOCUS files, flat or in any folders below the dataset>"
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
    # Manifest-less deliveries: only the rows of ``billing_period`` are theirs (a file may carry
    # several billing periods), and what the survey read from their files.
    from_files: bool = False
    days: tuple[date, ...] | None = None  # charge days of its rows (None: not read yet)
    status_incomplete: tuple[tuple[date, str], ...] = ()  # x_DatasetCompletionStatus
    recency: tuple[str, bytes] | None = None  # (URL, bytes) of the Recency JSON that applies

    @property
    def stream(self) -> tuple[str, str]:
        return (self.provider, self.dataset)

    @property
    def sort_key(self) -> tuple[datetime, str]:
        return (self.created_at, self.delivery_id)


@dataclass(frozen=True)
class BrokenDelivery:
    """A delivery that claims completeness but cannot be loaded: a broken manifest, or a settled
    manifest-less file that cannot be read as FOCUS. ``billing_period`` None: the file's billing
    periods are unknown, so it may hold rows of any month."""

    provider: str
    dataset: str
    billing_period: str | None
    delivery_id: str
    created_at: datetime
    where: str
    error: DeliveryError
    files: int = 1
    from_manifest: bool = True

    @property
    def stream(self) -> tuple[str, str]:
        return (self.provider, self.dataset)


@dataclass(frozen=True)
class WaitingDelivery:
    """Files that are not complete yet (no manifest yet, or changed within the settle time)."""

    provider: str
    dataset: str
    billing_period: str
    delivery_id: str
    created_at: datetime
    where: str
    reason: str
    files: int


@dataclass
class FocusLanding:
    """What ``survey_focus`` found under ``focus/``."""

    complete: list[FocusDelivery] = field(default_factory=list)
    broken: list[BrokenDelivery] = field(default_factory=list)
    waiting: list[WaitingDelivery] = field(default_factory=list)
    accounted: list[Accounted] = field(default_factory=list)


def group_focus_folders(objects: Iterable[ObjectLike]) -> list[DeliveryFolder]:
    """Group a landing listing into delivery folders of our manifest layout (complete or not)."""
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
    listed = ListedFiles(
        present,
        where,
        "re-deliver the file, or remove this delivery's manifest so the previous delivery is used.",
    )
    for name in manifest["files"]:
        if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
            raise DeliveryError(f"{where}: file entry {name!r} must be a relative file name")
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise DeliveryError(
                f"{where}: file entry {name!r} escapes the delivery folder; a manifest may only "
                "list files inside its own folder"
            )
        listed.add(f"{folder.prefix}/{name}", repr(name))
    files = listed.files
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
    newest: Sequence[FocusDelivery], month: str, correction_months: int, earlier: int = 0
) -> list[FocusDelivery]:
    """Deliveries whose rows may fall in ``month``: its own billing period and the following
    ``correction_months`` (late charges and corrections are billed in later periods), and the
    ``earlier`` periods before it (``rows_outside_period = load``: rows dated after their
    period)."""
    periods = {add_months(month, k) for k in range(-earlier, correction_months + 1)}
    return [d for d in newest if d.billing_period in periods]


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
                f"SELECT {utc_date(f'TRY_CAST({q(start)} AS TIMESTAMPTZ)')} AS day, {status_sql} "
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


def delivery_days(
    landing: LandingZone, delivery: FocusDelivery
) -> tuple[tuple[date, ...], tuple[tuple[date, str], ...]]:
    """The charge days a delivery's rows carry, and the days x_DatasetCompletionStatus marks
    Incomplete: what the survey read for manifest-less deliveries, else read now (cached)."""
    if delivery.days is not None:
        return delivery.days, delivery.status_incomplete
    return _focus_days(landing, tuple((f.key, f.format, f.size) for f in delivery.files))


def claimed_days_without_rows(
    claimed: Iterable[date], loaded: Iterable[date], window: tuple[date, date]
) -> list[date]:
    """Days of ``window`` a delivery's files carry rows for that the load did not store from it."""
    have = set(loaded)
    return sorted(d for d in set(claimed) if window[0] <= d <= window[1] and d not in have)


# --- Manifest-less layouts ---------------------------------------------------------------------
_YEAR = r"(?:19|20)\d\d"


def _valid_date(year: str, month: str, day: str = "1") -> bool:
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def folder_period(folders: Sequence[str]) -> tuple[str, bool]:
    """The period a file's folders (below the dataset) name, and whether it is a day folder
    (incremental: never superseded). ``("", False)`` for flat files and undated folders."""
    values = [f.split("=", 1)[1] if "=" in f else f for f in folders]
    day = month = None
    for i, value in enumerate(values):
        nxt = values[i + 1] if i + 1 < len(values) else ""
        if re.fullmatch(_YEAR, value) and re.fullmatch(r"\d{1,2}", nxt) and _valid_date(value, nxt):
            ym = f"{value}-{int(nxt):02d}"
            third = values[i + 2] if i + 2 < len(values) else ""
            if re.fullmatch(r"\d{1,2}", third) and _valid_date(value, nxt, third):
                day = day or f"{ym}-{int(third):02d}"
            else:
                month = month or ym
            continue
        if m := re.fullmatch(rf"({_YEAR})-?(\d\d)-?(\d\d)", value):
            if _valid_date(*m.groups()):
                day = day or "-".join(m.groups())
        elif re.fullmatch(rf"{_YEAR}-?\d\d-?\d\d[-_]{_YEAR}-?\d\d-?\d\d", value):
            month = month or value
        elif (m := re.fullmatch(rf"({_YEAR})-?(\d\d)", value)) and _valid_date(*m.groups()):
            month = month or "-".join(m.groups())
    if day:
        return day, True
    return month or "", False


@dataclass(frozen=True)
class FileContent:
    """What a manifest-less file holds: rows per (billing month, charge day), and how many of them
    x_DatasetCompletionStatus marks Incomplete."""

    rows: tuple[tuple[str, date, int, int], ...]  # (billing month, day, rows, incomplete rows)
    has_status: bool

    @property
    def periods(self) -> tuple[str, ...]:
        return tuple(sorted({r[0] for r in self.rows}))


def _timestamp_sql(column: str, data_type: str) -> str:
    quoted = '"' + column.replace('"', '""') + '"'
    if data_type == "VARCHAR":
        return f"TRY_CAST(NULLIF(trim({quoted}), '') AS TIMESTAMPTZ)"
    return f"TRY_CAST({quoted} AS TIMESTAMPTZ)"


def _read_file_content(landing: LandingZone, key: str, fmt: str) -> FileContent | DeliveryError:
    where = landing.url(key)
    try:
        with landing.local_files([key]) as paths, duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            path = paths[key]
            columns = describe_file(con, path, fmt, where)
            by_lower = {c.lower(): c for c in columns}
            missing = [
                c for c in ("BillingPeriodStart", "ChargePeriodStart") if c.lower() not in by_lower
            ]
            if missing and {"invoiceissuestatus", "invoiceissuername"} <= set(by_lower):
                return DeliveryError(
                    f"{where}: a FOCUS Invoice Detail file (it has InvoiceIssueStatus and "
                    "InvoiceIssuerName but no ChargePeriodStart), not cost and usage rows. Fix: "
                    "deliver it under the landing zone's invoices/ folder (finance.invoices_prefix), "
                    "where finance/invoices reads it for the month close."
                )
            if missing:
                return DeliveryError(
                    f"{where}: not a FOCUS file, it has no {' and no '.join(missing)} column "
                    f"(columns: {', '.join(list(columns)[:8])}{', ...' if len(columns) > 8 else ''}). "
                    "Fix: export the dataset in FOCUS format, or move the file out of focus/."
                )
            billing = by_lower["billingperiodstart"]
            charge = by_lower["chargeperiodstart"]
            billing_sql = _timestamp_sql(billing, columns[billing])
            charge_sql = _timestamp_sql(charge, columns[charge])
            source = reader_sql(fmt, [path])
            status = by_lower.get(STATUS_COLUMN.lower())
            incomplete = (
                f"count_if(lower(trim(CAST(\"{status}\" AS VARCHAR))) = 'incomplete')"
                if status
                else "0"
            )
            rows = con.execute(
                f"SELECT {utc_month(billing_sql)}, "
                f"{utc_date(charge_sql)}, count(*), {incomplete} FROM {source} GROUP BY 1, 2"
            ).fetchall()
            for column, expression in ((billing, billing_sql), (charge, charge_sql)):
                count, samples = con.execute(
                    f'SELECT count(*), list(CAST("{column}" AS VARCHAR))[1:3] FROM {source} '
                    f"WHERE {expression} IS NULL"
                ).fetchone()
                if count:
                    return DeliveryError(
                        f"{where}: column {column} is empty or not a timestamp in {count} row(s), "
                        f"e.g. {samples}; a FOCUS row needs it to know its billing period and "
                        "charge day. Fix: correct the export and re-deliver the file."
                    )
    except DeliveryError as error:
        return error
    except duckdb.Error as error:
        return DeliveryError(
            f"{where}: cannot be read to the end ({str(error).splitlines()[0]}). The file is "
            "truncated or malformed. Fix: re-deliver it (or delete it)."
        )
    return FileContent(
        rows=tuple(sorted((p, d, int(n), int(i)) for p, d, n, i in rows)), has_status=bool(status)
    )


def file_content(landing: LandingZone, obj: ObjectLike, fmt: str) -> FileContent | DeliveryError:
    """``_read_file_content`` once per file version (key, size, modification time)."""
    return cached(
        ("focus-file", landing.url(), obj.key, obj.size, obj.modified),
        lambda: _read_file_content(landing, obj.key, fmt),
    )


def _fingerprint(period: str, objects: Iterable[ObjectLike]) -> str:
    lines = [period, *sorted(f"{o.key}|{o.size}|{o.modified.isoformat()}" for o in objects)]
    return "files-" + hashlib.sha1("\n".join(lines).encode()).hexdigest()[:16]


def _is_recency(key: str) -> bool:
    return bool(_RECENCY_NAME.match(key.rsplit("/", 1)[-1]))


def _newest_recency(
    landing: LandingZone, objects: Iterable[ObjectLike]
) -> tuple[str, bytes] | None:
    chosen = max(objects, key=lambda o: (o.modified, o.key), default=None)
    if chosen is None:
        return None
    return landing.url(chosen.key), landing.read_bytes(chosen.key)


def _recency_for(landing, folder, recency_objects) -> tuple[str, bytes] | None:
    """The Recency JSON of a manifest delivery: a recency*.json in its folder, else the newest
    under focus/<provider>/<dataset>/metadata/ (at any depth, e.g. metadata/recency/)."""
    local = [o for o in folder.objects if _is_recency(o.key)]
    if local:
        return _newest_recency(landing, local)
    prefix = f"focus/{folder.provider}/{folder.dataset}/metadata/"
    return _newest_recency(landing, [o for o in recency_objects if o.key.startswith(prefix)])


def _survey_manifest_dataset(
    landing: LandingZone, out: FocusLanding, objects: list[ObjectLike]
) -> None:
    recency_objects = [o for o in objects if _is_recency(o.key)]
    complete: list[tuple[FocusDelivery, DeliveryFolder]] = []
    in_folders: set[str] = set()
    for folder in group_focus_folders(objects):
        in_folders.update(o.key for o in folder.objects)
        manifest = folder.manifest
        if manifest is None:
            reason = (
                f"{len(folder.objects)} file(s) but no manifest.json yet (the producer writes it "
                "last)"
            )
            out.waiting.append(
                WaitingDelivery(
                    folder.provider,
                    folder.dataset,
                    folder.billing_period,
                    folder.delivery_id,
                    max(o.modified for o in folder.objects),
                    landing.url(folder.prefix),
                    reason,
                    len(folder.objects),
                )
            )
            out.accounted += [
                Accounted(o.key, "waiting", reason, folder.delivery_id) for o in folder.objects
            ]
            continue
        where = landing.url(folder.manifest_key)
        try:
            delivery = parse_focus_manifest(folder, landing.read_bytes(folder.manifest_key), where)
        except DeliveryError as error:
            out.broken.append(
                BrokenDelivery(
                    folder.provider,
                    folder.dataset,
                    folder.billing_period,
                    folder.delivery_id,
                    manifest.modified,
                    where,
                    error,
                    len(folder.objects),
                )
            )
            out.accounted.append(Accounted(manifest.key, "metadata", "", folder.delivery_id))
            out.accounted += [
                Accounted(o.key, "not_understood", str(error), folder.delivery_id)
                for o in folder.objects
                if o.key != manifest.key
            ]
            continue
        delivery = replace(delivery, recency=_recency_for(landing, folder, recency_objects))
        complete.append((delivery, folder))
    newest = {d.delivery_id + "|" + d.prefix for d in newest_per_period(d for d, _ in complete)}
    for delivery, folder in complete:
        out.complete.append(delivery)
        listed = {f.key for f in delivery.files}
        status = "loaded" if f"{delivery.delivery_id}|{delivery.prefix}" in newest else "superseded"
        for obj in folder.objects:
            if obj.key in listed:
                out.accounted.append(Accounted(obj.key, status, "", delivery.delivery_id))
            elif obj.key == folder.manifest_key or _is_recency(obj.key):
                out.accounted.append(Accounted(obj.key, "metadata", "", delivery.delivery_id))
            else:
                out.accounted.append(
                    Accounted(
                        obj.key,
                        "not_understood",
                        f"in delivery folder {folder.prefix}/ but not listed in its manifest.json "
                        "(only listed files are loaded); list it, or move it out",
                        delivery.delivery_id,
                    )
                )
    for obj in objects:
        if obj.key in in_folders:
            continue
        if _is_recency(obj.key) or obj.key.rsplit("/", 1)[-1].lower() in _MARKER_NAMES:
            out.accounted.append(Accounted(obj.key, "metadata"))
        else:
            out.accounted.append(
                Accounted(
                    obj.key,
                    "not_understood",
                    "this dataset delivers with manifests (billing_period=YYYY-MM/<delivery_id>/"
                    "manifest.json) and this file is in no delivery folder; expected "
                    "focus/<provider>/<dataset>/billing_period=YYYY-MM/<delivery_id>/<file> "
                    "listed by that folder's manifest.json",
                )
            )


@dataclass(frozen=True)
class _DataFile:
    obj: ObjectLike
    fmt: str
    group: tuple[str, ...]  # folder-derived period, or the key itself for day folders
    folder_month: str | None
    content: FileContent


def _survey_file_dataset(
    landing: LandingZone,
    out: FocusLanding,
    provider: str,
    dataset: str,
    objects: list[ObjectLike],
    settle: timedelta,
    now: datetime,
) -> None:
    prefix = f"focus/{provider}/{dataset}"
    where = landing.url(prefix)
    recency_objects = [o for o in objects if _is_recency(o.key)]
    try:
        recency = _newest_recency(landing, recency_objects)
    except OSError as error:  # a Recency file that vanished or cannot be read
        recency = None
        out.accounted += [
            Accounted(o.key, "not_understood", f"Recency metadata cannot be read ({error})")
            for o in recency_objects
        ]
        recency_objects = []
    ready: list[_DataFile] = []
    waiting: dict[str, list[ObjectLike]] = defaultdict(list)
    waiting_reason: dict[str, str] = {}
    for obj in objects:
        relative = obj.key[len(prefix) + 1 :].split("/")
        name, folders = relative[-1], relative[:-1]
        if _is_recency(obj.key) or name.lower() in _MARKER_NAMES or name == MANIFEST_NAME:
            out.accounted.append(Accounted(obj.key, "metadata"))
            continue
        fmt = data_format(name)
        if fmt is None:
            out.accounted.append(
                Accounted(
                    obj.key,
                    "not_understood",
                    "neither a FOCUS data file (.parquet, .csv, .csv.gz) nor metadata "
                    "(manifest.json, recency*.json); expected " + DATASET_LAYOUT,
                )
            )
            continue
        period, incremental = folder_period(folders)
        folder_month = period[:7] if re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", period) else None
        settled = obj.modified <= now - settle
        settles_at = f"{obj.modified + settle:%Y-%m-%d %H:%M}Z"
        content = (
            DeliveryError(
                f"{landing.url(obj.key)}: is empty (0 bytes); the upload was cut short. Fix: "
                "re-deliver the file, or delete it."
            )
            if obj.size == 0
            else file_content(landing, obj, fmt)
        )
        marked = isinstance(content, FileContent) and content.has_status
        if not settled and not marked and recency is None:
            periods = content.periods if isinstance(content, FileContent) else ()
            reason = (
                f"modified {obj.modified:%Y-%m-%d %H:%M}Z, less than deliveries.settle_minutes "
                f"({settle.total_seconds() / 60:g}) ago; loads once unchanged until {settles_at} "
                f"(no manifest, {STATUS_COLUMN} or Recency says it is complete)"
            )
            for p in periods or (folder_month or "unknown",):
                waiting[p].append(obj)
                waiting_reason.setdefault(p, reason)
            out.accounted.append(Accounted(obj.key, "waiting", reason))
            continue
        if isinstance(content, DeliveryError):
            out.broken.append(
                BrokenDelivery(
                    provider,
                    dataset,
                    folder_month,
                    _fingerprint(folder_month or "", [obj]),
                    obj.modified,
                    landing.url(obj.key),
                    content,
                    from_manifest=False,
                )
            )
            out.accounted.append(Accounted(obj.key, "not_understood", str(content)))
            continue
        group = ("file", obj.key) if incremental else ("folder", period)
        ready.append(_DataFile(obj, fmt, group, folder_month, content))
    # Per billing period: the newest write of each folder-derived period wins.
    current: dict[str, list[_DataFile]] = defaultdict(list)
    for period in sorted({p for f in ready for p in f.content.periods}):
        groups: dict[tuple[str, ...], list[_DataFile]] = defaultdict(list)
        for f in ready:
            if period in f.content.periods:
                groups[f.group].append(f)
        for members in groups.values():
            newest = max(f.obj.modified for f in members)
            current[period] += [f for f in members if f.obj.modified >= newest - settle]
    loaded_keys = {f.obj.key for files in current.values() for f in files}
    for f in ready:
        if f.obj.key in loaded_keys:
            out.accounted.append(Accounted(f.obj.key, "loaded"))
        elif not f.content.periods:
            out.accounted.append(Accounted(f.obj.key, "loaded", "no rows (header only)"))
        else:
            out.accounted.append(Accounted(f.obj.key, "superseded"))
    for period, files in sorted(current.items()):
        days = sorted({r[1] for f in files for r in f.content.rows if r[0] == period})
        incomplete: dict[date, str] = {}
        for f in files:
            for p, day, _rows, marked_rows in f.content.rows:
                if p == period and marked_rows and day not in incomplete:
                    incomplete[day] = (
                        f"{STATUS_COLUMN} is Incomplete in {marked_rows} row(s) of "
                        f"{landing.url(f.obj.key)}"
                    )
        out.complete.append(
            FocusDelivery(
                provider=provider,
                dataset=dataset,
                billing_period=period,
                delivery_id=_fingerprint(period, [f.obj for f in files]),
                created_at=max(f.obj.modified for f in files),
                files=tuple(
                    DeliveryFile(key=f.obj.key, size=f.obj.size, format=f.fmt)
                    for f in sorted(files, key=lambda f: f.obj.key)
                ),
                prefix=prefix,
                from_files=True,
                days=tuple(days),
                status_incomplete=tuple(sorted(incomplete.items())),
                recency=recency,
            )
        )
    for period, objs in sorted(waiting.items()):
        out.waiting.append(
            WaitingDelivery(
                provider,
                dataset,
                period,
                _fingerprint(period, objs),
                max(o.modified for o in objs),
                where,
                f"{len(objs)} file(s) {waiting_reason[period]}",
                len(objs),
            )
        )


def survey_focus(landing: LandingZone, rules: Rules, now: datetime) -> FocusLanding:
    """Every delivery under ``focus/`` (complete, broken, waiting) and the account of every
    object: the one discovery the sensor, the asset and the landing check share."""
    out = FocusLanding()
    settle = timedelta(minutes=rules.deliveries.settle_minutes)
    datasets: dict[tuple[str, str], list[ObjectLike]] = defaultdict(list)
    for obj in landing.list("focus"):
        parts = obj.key.split("/")
        if parts[0] != "focus":
            continue
        if len(parts) < 4:
            where = (
                "directly under focus/" if len(parts) == 2 else f"directly under focus/{parts[1]}/"
            )
            out.accounted.append(
                Accounted(
                    obj.key,
                    "not_understood",
                    f"a file {where} belongs to no dataset; expected {DATASET_LAYOUT}",
                )
            )
            continue
        datasets[(parts[1], parts[2])].append(obj)
    for (provider, dataset), objects in sorted(datasets.items()):
        if any((m := _FOLDER.match(o.key)) and m["name"] == MANIFEST_NAME for o in objects):
            _survey_manifest_dataset(landing, out, objects)
        else:
            _survey_file_dataset(landing, out, provider, dataset, objects, settle, now)
    return out


def account_landing(landing: LandingZone, rules: Rules, now: datetime) -> list[Accounted]:
    """Every object under ``focus/``: loaded, superseded, waiting, metadata or not understood
    (with the reason and the layout expected)."""
    return sorted(survey_focus(landing, rules, now).accounted, key=lambda a: a.key)


def _where(landing: LandingZone, delivery: FocusDelivery) -> str:
    if delivery.from_files:
        return landing.url(delivery.prefix)
    return landing.url(f"{delivery.prefix}/{MANIFEST_NAME}")


def scan_focus(landing, rules, now) -> list[Candidate]:
    surveyed = survey_focus(landing, rules, now)
    candidates = []
    for delivery in surveyed.complete:
        base = {
            "stream": f"focus/{delivery.provider}/{delivery.dataset}",
            "period": delivery.billing_period,
            "delivery_id": delivery.delivery_id,
            "target": RAW_FOCUS,
            "created_at": delivery.created_at,
            "where": _where(landing, delivery),
            "files": len(delivery.files),
        }
        try:
            file_days, status_incomplete = delivery_days(landing, delivery)
            incomplete_days = dict(status_incomplete)
            days = tuple(sorted(set(month_days(delivery.billing_period)) | set(file_days)))
            if delivery.recency is not None:
                url, recency_bytes = delivery.recency
                for day, reason in recency_incomplete_days(recency_bytes, url, days).items():
                    incomplete_days.setdefault(day, f"{reason} ({url})")
        except (DeliveryError, RecencyError) as error:
            candidates.append(Candidate(**base, complete=False, reason=str(error)))
            continue
        candidates.append(Candidate(**base, days=days, incomplete_days=incomplete_days))
    for broken in surveyed.broken:
        candidates.append(
            Candidate(
                stream=f"focus/{broken.provider}/{broken.dataset}",
                period=broken.billing_period or "unknown",
                delivery_id=broken.delivery_id,
                created_at=broken.created_at,
                where=broken.where,
                complete=False,
                reason=str(broken.error),
                files=broken.files,
                target=RAW_FOCUS,
            )
        )
    for waiting in surveyed.waiting:
        candidates.append(
            Candidate(
                stream=f"focus/{waiting.provider}/{waiting.dataset}",
                period=waiting.billing_period,
                delivery_id=waiting.delivery_id,
                created_at=waiting.created_at,
                where=waiting.where,
                complete=False,
                reason=waiting.reason,
                files=waiting.files,
                target=RAW_FOCUS,
            )
        )
    return candidates


def discover_deliveries(landing: LandingZone, rules: Rules, now: datetime) -> FocusLanding:
    """Complete deliveries, broken ones (a manifest or file claiming completeness that cannot be
    loaded) and waiting ones, from the same survey the sensor uses."""
    return survey_focus(landing, rules, now)


def select_month_deliveries(
    month: str,
    complete: list[FocusDelivery],
    broken: list[BrokenDelivery],
    correction_months: int,
    earlier: int = 0,
) -> list[FocusDelivery]:
    """The newest complete delivery per stream and billing period that may hold ``month``'s rows
    (``earlier``: also the deliveries of that many periods before, see ``deliveries_for_month``).

    A broken manifest delivery newer than the one we would use fails the load instead of being
    skipped: loading the older data would silently undo the provider's restatement. A broken
    manifest-less file fails the load of every month it may hold (its folder's month and the
    months it corrects, or every month when its folder names none).
    """
    chosen = deliveries_for_month(newest_per_period(complete), month, correction_months, earlier)
    periods = {add_months(month, k) for k in range(correction_months + 1)}
    for item in broken:
        if not item.from_manifest:
            if item.billing_period is None or item.billing_period in periods:
                raise item.error
            continue
        if item.billing_period not in periods:
            continue
        current = next(
            (
                d
                for d in chosen
                if d.stream == item.stream and d.billing_period == item.billing_period
            ),
            None,
        )
        if current is None or item.created_at >= current.created_at:
            raise item.error
    return chosen


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

"""GCP billing export dumps in a landing zone: which files belong to which usage day and dump,
each day's ``export_time`` watermark, and the account of every object under ``gcp/``.

Layout (DESIGN §3)::

    gcp/<billing_account>/usage_date=YYYY-MM-DD/<dump>-<shard>.parquet
    gcp/<billing_account>/usage_date=YYYY-MM-DD/<dump>-<shard>.json[.gz]   (also .jsonl, .ndjson)

Google has no manifest for this export. Teams dump a usage day from BigQuery with
``EXPORT DATA OPTIONS (uri = '.../usage_date=2025-01-05/export-<timestamp>-*.parquet', ...) AS
SELECT * FROM <export table> WHERE DATE(usage_start_time) = '2025-01-05'`` or with
``bq extract --destination_format NEWLINE_DELIMITED_JSON [--compression GZIP]`` of a per-day
table: one run writes one dump of several shards (the ``*`` becomes a 12-digit shard number). A
later run writes a newer dump of the same day. Which rows count is decided on the rows'
``export_time`` (see ``gcp_billing.latest_dump_rows_sql``): a full re-export supersedes older
dumps, an incremental dump adds to them, and no row counts twice either way. Parquet and NDJSON
dumps may sit side by side in one day's folder (their rows are merged by column name).

Zero-byte files (a cut upload), Avro dumps (no Avro reader here) and files of other formats are
skipped with a log line (and reported by ``account_landing``); unreadable Parquet or JSON fails
the load with the file named.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import duckdb

from finops_assets.defs.sources.gcp.billing_export import (
    ndjson_columns,
    ndjson_reader_sql,
    timestamp_sql,
)
from finops_assets.lib.accounting import Accounted
from finops_assets.lib.deliveries import DeliveryError, ObjectLike
from finops_assets.lib.delivery_watch import (
    Candidate,
    cached,
)
from finops_assets.resources.landing import LandingZone

# The raw assets these deliveries load (asset key paths).
RAW_GCP = "raw/gcp_billing"

GCP_ROOT = "gcp"
LAYOUT = (
    "gcp/<billing_account>/usage_date=YYYY-MM-DD/<dump>-<shard>.{parquet,json,json.gz,jsonl,ndjson}"
)
_FILE = re.compile(
    r"^gcp/(?P<account>[A-Za-z0-9_-]+)/usage_date=(?P<day>\d{4}-\d{2}-\d{2})/(?P<name>[^/]+)$"
)
_SHARD = re.compile(r"^(?P<dump>.+)[-_](?P<shard>\d{6,})$")
# File name suffix -> how the dump is read (longest first).
DUMP_SUFFIXES = (
    (".snappy.parquet", "parquet"),
    (".parquet", "parquet"),
    (".json.gz", "ndjson"),
    (".jsonl.gz", "ndjson"),
    (".ndjson.gz", "ndjson"),
    (".json", "ndjson"),
    (".jsonl", "ndjson"),
    (".ndjson", "ndjson"),
)
FIX_FORMAT = (
    "dump the export as Parquet (EXPORT DATA format PARQUET, bq extract --destination_format "
    "PARQUET) or newline-delimited JSON (bq extract --destination_format NEWLINE_DELIMITED_JSON)"
)


@dataclass(frozen=True)
class GcpDumpFile:
    key: str
    billing_account: str
    usage_date: date
    dump: str  # the EXPORT DATA run the file belongs to (its name without the shard number)
    size: int
    format: str = "parquet"  # "parquet" | "ndjson" (newline-delimited JSON, maybe gzipped)

    @property
    def dataset(self) -> str:
        return f"{GCP_ROOT}/{self.billing_account}"

    @property
    def delivery_id(self) -> str:
        return f"{self.billing_account}/usage_date={self.usage_date.isoformat()}/{self.dump}"


def dump_format(file_name: str) -> tuple[str, str] | None:
    """(format, name without its suffix) of a dump file name, or None for another format."""
    lowered = file_name.lower()
    for suffix, fmt in DUMP_SUFFIXES:
        if lowered.endswith(suffix):
            return fmt, file_name[: -len(suffix)]
    return None


def dump_name(file_name: str) -> str:
    """``export-20250106T040000-000000000001.parquet`` -> ``export-20250106T040000``;
    ``gcp_billing_export_v1_X-000000000000.json.gz`` -> ``gcp_billing_export_v1_X``."""
    found = dump_format(file_name)
    stem = found[1] if found else file_name
    match = _SHARD.match(stem)
    if match:
        return match["dump"]
    # Bare shard names (uri '.../usage_date=D/*.parquet'): a new run overwrites the old one, so
    # every bare shard in the folder belongs to the one dump.
    return "export" if stem.isdigit() else stem


def classify(obj: ObjectLike) -> GcpDumpFile | str:
    """The dump file ``obj`` is, or why it is not one (a sentence naming the fix)."""
    match = _FILE.match(obj.key)
    if not match:
        return "not in the GCP layout (a file in a usage_date=YYYY-MM-DD folder of an account)."
    name = match["name"]
    found = dump_format(name)
    if found is None:
        if name.lower().endswith(".avro"):
            return f"an Avro dump, which is not read here; {FIX_FORMAT}."
        return f"not a Parquet or newline-delimited JSON file; {FIX_FORMAT}."
    if obj.size == 0:
        return "empty file (0 bytes), a cut upload; re-run the dump."
    try:
        day = date.fromisoformat(match["day"])
    except ValueError:
        return f"usage_date={match['day']} is not a calendar date."
    return GcpDumpFile(
        key=obj.key,
        billing_account=match["account"],
        usage_date=day,
        dump=dump_name(name),
        size=obj.size,
        format=found[0],
    )


def find_gcp_dump_files(
    objects: Iterable[ObjectLike], log: Callable[[str], None]
) -> list[GcpDumpFile]:
    """The dump files (Parquet, NDJSON) under ``gcp/``, sorted by key; anything else is logged
    and skipped."""
    found = []
    for obj in objects:
        classified = classify(obj)
        if isinstance(classified, str):
            log(f"Skipping {obj.key}: {classified} Expected layout: {LAYOUT}")
        else:
            found.append(classified)
    return sorted(found, key=lambda f: f.key)


# ----------------------------------------------------------------------------------------------
# Reading newline-delimited JSON, and saying which line is broken


def _open_maybe_gzipped(path: str):
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def first_malformed_line(path: str) -> tuple[int, str, str] | None:
    """(line number, what is wrong, the line's start) of the first line of an NDJSON file that
    is not one JSON object; None when every line is. Only used after DuckDB refused the file:
    its own line numbers are not reliable for malformed JSON, these are exact (blank lines
    count, as in an editor)."""
    number = 0
    try:
        with _open_maybe_gzipped(path) as lines:
            for number, line in enumerate(lines, start=1):
                text = line.strip()
                if not text:
                    continue
                try:
                    value = json.loads(text)
                except UnicodeDecodeError:
                    return number, "not UTF-8 text", repr(text[:80])[2:-1]
                except json.JSONDecodeError as error:
                    return (
                        number,
                        f"column {error.colno}: {error.msg}",
                        text[:80].decode("utf-8", "replace"),
                    )
                if not isinstance(value, dict):
                    return number, "not a JSON object", text[:80].decode("utf-8", "replace")
    except (EOFError, OSError, zlib.error) as error:
        return number + 1, f"the gzip stream is cut or corrupt ({error})", ""
    return None


def ndjson_error(error: duckdb.Error, path: str, where: str) -> DeliveryError:
    """A DeliveryError naming the file, the line (when one is to blame) and the fix."""
    bad = first_malformed_line(path)
    if bad is not None:
        number, problem, text = bad
        detail = f"line {number} is not valid JSON ({problem})" + (f": {text}" if text else "")
    else:
        # Valid JSON that does not fit the export's schema: DuckDB names the line and value.
        first = str(error).splitlines()[0].replace(f' in file "{path}"', "")
        detail = re.sub(r"^[A-Za-z ]+ Error: ", "", first)  # "Invalid Input Error: ..."
    return DeliveryError(
        f"{where}: cannot read this newline-delimited JSON dump: {detail}. Fix: every line must "
        "be one export row as a JSON object, as `bq extract --destination_format "
        "NEWLINE_DELIMITED_JSON` writes it; re-run the extract of this usage day (a cut copy or "
        "an edited file) and re-deliver it; until then the day is not (re)loaded."
    )


# ----------------------------------------------------------------------------------------------
# The export_time watermark of a usage day


def _gcp_watermark(landing: LandingZone, fingerprint: tuple[tuple[str, int, str], ...]) -> str:
    return cached(
        ("gcp", landing.url(), fingerprint), lambda: _read_gcp_watermark(landing, fingerprint)
    )


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _read_gcp_watermark(landing: LandingZone, fingerprint: tuple[tuple[str, int, str], ...]) -> str:
    keys = [k for k, _, _ in fingerprint]
    formats = {k: (dump_format(k.rsplit("/", 1)[-1]) or ("parquet", ""))[0] for k in keys}
    parquet = [k for k in keys if formats[k] == "parquet"]
    ndjson = [k for k in keys if formats[k] == "ndjson"]
    values: list[datetime] = []
    with landing.local_files(keys) as paths, duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        if parquet:
            try:
                (value,) = con.execute(
                    "SELECT max(export_time) FROM read_parquet(?, union_by_name = true)",
                    [[paths[k] for k in parquet]],
                ).fetchone()
            except duckdb.Error as error:
                raise DeliveryError(
                    f"cannot read export_time from "
                    f"{', '.join(landing.url(k) for k in parquet[:3])}: "
                    f"{str(error).splitlines()[0]}. Fix: re-run the dump of this usage day."
                ) from None
            if value is not None:
                values.append(_as_utc(value))
        # One file at a time, so that a broken file is named (and its line found).
        reader_columns = ndjson_columns(["export_time"])
        export_time = timestamp_sql("export_time", "VARCHAR")
        for key in ndjson:
            try:
                (value,) = con.execute(
                    f"SELECT max({export_time}) "
                    f"FROM {ndjson_reader_sql([paths[key]], reader_columns)}"
                ).fetchone()
            except duckdb.Error as error:
                raise ndjson_error(error, paths[key], landing.url(key)) from None
            if value is not None:
                values.append(_as_utc(value))
    if not values:
        raise DeliveryError("export_time is empty in every row")
    return max(values).isoformat()


# ----------------------------------------------------------------------------------------------
# What the sensor and the landing account see, per usage day


@dataclass(frozen=True)
class _UsageDay:
    dataset: str
    day: date
    files: tuple[ObjectLike, ...]
    watermark: str | None  # ISO, None when unreadable
    error: str  # why the watermark could not be read
    settles_at: datetime | None

    def settled(self, now: datetime) -> bool:
        return self.settles_at is not None and now >= self.settles_at

    def waiting_reason(self) -> str:
        return (
            f"export_time watermark {self.watermark} is recent: the day may still "
            f"change; loaded once it settles at {self.settles_at.isoformat()} "
            "(deliveries.gcp_settle_minutes)"
        )


def _usage_days(
    landing: LandingZone, objects: dict[str, ObjectLike], rules
) -> tuple[list[_UsageDay], dict[str, str]]:
    """Each usage day's files and watermark, and the objects that are not dump files (with why)."""
    settle = timedelta(minutes=rules.deliveries.gcp_settle_minutes)
    by_day: dict[tuple[str, date], list] = defaultdict(list)
    skipped: dict[str, str] = {}
    for obj in objects.values():
        classified = classify(obj)
        if isinstance(classified, str):
            skipped[obj.key] = classified
        else:
            by_day[(classified.dataset, classified.usage_date)].append(obj)
    days = []
    for (dataset, day), files in sorted(by_day.items()):
        fingerprint = tuple(sorted((o.key, o.size, o.modified.isoformat()) for o in files))
        try:
            watermark = _gcp_watermark(landing, fingerprint)
        except DeliveryError as error:
            days.append(_UsageDay(dataset, day, tuple(files), None, str(error), None))
            continue
        # The watermark only moves when BigQuery exports newer rows for the day, so "not moved
        # for the settle time" is "the newest export_time is at least that old".
        settles_at = datetime.fromisoformat(watermark) + settle
        days.append(_UsageDay(dataset, day, tuple(files), watermark, "", settles_at))
    return days, skipped


def scan_gcp(landing, rules, now) -> list[Candidate]:
    objects = {o.key: o for o in landing.list(GCP_ROOT)}
    days, _ = _usage_days(landing, objects, rules)
    candidates = []
    for usage_day in days:
        where = landing.url(f"{usage_day.dataset}/usage_date={usage_day.day.isoformat()}")
        if usage_day.watermark is None:
            candidates.append(
                Candidate(
                    stream=usage_day.dataset,
                    period=usage_day.day.isoformat(),
                    delivery_id="unreadable",
                    created_at=None,
                    where=where,
                    complete=False,
                    reason=usage_day.error,
                    files=len(usage_day.files),
                    target=RAW_GCP,
                )
            )
            continue
        settled = usage_day.settled(now)
        candidates.append(
            Candidate(
                stream=usage_day.dataset,
                period=usage_day.day.isoformat(),
                delivery_id=f"export_time={usage_day.watermark}",
                created_at=datetime.fromisoformat(usage_day.watermark),
                where=where,
                days=(usage_day.day,),
                complete=settled,
                reason="" if settled else usage_day.waiting_reason(),
                files=len(usage_day.files),
                target=RAW_GCP,
            )
        )
    return candidates


def account_landing(landing: LandingZone, rules, now: datetime) -> list[Accounted]:
    """Every object under ``gcp/``: ``loaded`` (a dump file of a usage day whose watermark has
    settled), ``waiting`` (its day's watermark is still recent), or ``not_understood`` (not a
    dump file of the layout, an empty or Avro file, or a day whose files cannot be read), with
    the reason and the layout expected."""
    objects = {o.key: o for o in landing.list(GCP_ROOT)}
    days, skipped = _usage_days(landing, objects, rules)
    rows = [
        Accounted(key, "not_understood", f"{reason} Expected layout: {LAYOUT}")
        for key, reason in skipped.items()
    ]
    for usage_day in days:
        for obj in usage_day.files:
            if usage_day.watermark is None:
                rows.append(Accounted(obj.key, "not_understood", usage_day.error))
            elif usage_day.settled(now):
                rows.append(
                    Accounted(obj.key, "loaded", delivery_id=f"export_time={usage_day.watermark}")
                )
            else:
                rows.append(
                    Accounted(
                        obj.key,
                        "waiting",
                        usage_day.waiting_reason(),
                        delivery_id=f"export_time={usage_day.watermark}",
                    )
                )
    return sorted(rows, key=lambda r: r.key)

"""GCP billing export dumps in a landing zone: which files belong to which usage day and dump.

Layout (DESIGN §3)::

    gcp/<billing_account>/usage_date=YYYY-MM-DD/<dump>-<shard>.parquet

Google has no manifest for this export. Teams dump a usage day from BigQuery with
``EXPORT DATA OPTIONS (uri = '.../usage_date=2025-01-05/export-<timestamp>-*.parquet', ...) AS
SELECT * FROM <export table> WHERE DATE(usage_start_time) = '2025-01-05'``: one run writes one
dump of several shards (the ``*`` becomes a 12-digit shard number). A later run writes a newer
dump of the same day. Which rows count is decided on the rows' ``export_time`` (see
``gcp_billing.latest_dump_rows_sql``): a full re-export supersedes older dumps, an incremental
dump adds to them, and no row counts twice either way.

Zero-byte files (a cut upload) and files that are not Parquet are skipped with a log line;
unreadable Parquet fails the load with the file named.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import duckdb

from finops_assets.lib.deliveries import DeliveryError, ObjectLike
from finops_assets.lib.delivery_watch import (
    Candidate,
    cached,
)
from finops_assets.resources.landing import LandingZone

# The raw assets these deliveries load (asset key paths).
RAW_GCP = "raw/gcp_billing"

GCP_ROOT = "gcp"
_FILE = re.compile(
    r"^gcp/(?P<account>[A-Za-z0-9_-]+)/usage_date=(?P<day>\d{4}-\d{2}-\d{2})/(?P<name>[^/]+)$"
)
_SHARD = re.compile(r"^(?P<dump>.+)[-_](?P<shard>\d{6,})$")


@dataclass(frozen=True)
class GcpDumpFile:
    key: str
    billing_account: str
    usage_date: date
    dump: str  # the EXPORT DATA run the file belongs to (its name without the shard number)
    size: int

    @property
    def dataset(self) -> str:
        return f"{GCP_ROOT}/{self.billing_account}"

    @property
    def delivery_id(self) -> str:
        return f"{self.billing_account}/usage_date={self.usage_date.isoformat()}/{self.dump}"


def dump_name(file_name: str) -> str:
    """``export-20250106T040000-000000000001.parquet`` -> ``export-20250106T040000``."""
    stem = re.sub(r"(\.snappy)?\.parquet$", "", file_name, flags=re.IGNORECASE)
    match = _SHARD.match(stem)
    if match:
        return match["dump"]
    # Bare shard names (uri '.../usage_date=D/*.parquet'): a new run overwrites the old one, so
    # every bare shard in the folder belongs to the one dump.
    return "export" if stem.isdigit() else stem


def find_gcp_dump_files(
    objects: Iterable[ObjectLike], log: Callable[[str], None]
) -> list[GcpDumpFile]:
    """The Parquet dump files under ``gcp/``, sorted by key; anything else is logged and skipped."""
    found = []
    for obj in objects:
        match = _FILE.match(obj.key)
        if not match:
            log(
                f"Skipping {obj.key}: not in the GCP layout "
                "gcp/<billing_account>/usage_date=YYYY-MM-DD/<dump>-<shard>.parquet."
            )
            continue
        if not match["name"].lower().endswith(".parquet"):
            log(f"Skipping {obj.key}: not a Parquet file (dump the export with format PARQUET).")
            continue
        if obj.size == 0:
            log(f"Skipping {obj.key}: empty file (0 bytes), a cut upload; re-run the dump.")
            continue
        try:
            day = date.fromisoformat(match["day"])
        except ValueError:
            log(f"Skipping {obj.key}: usage_date={match['day']} is not a calendar date.")
            continue
        found.append(
            GcpDumpFile(
                key=obj.key,
                billing_account=match["account"],
                usage_date=day,
                dump=dump_name(match["name"]),
                size=obj.size,
            )
        )
    return sorted(found, key=lambda f: f.key)



def _gcp_watermark(landing: LandingZone, fingerprint: tuple[tuple[str, int, str], ...]) -> str:
    return cached(
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
                    target=RAW_GCP,
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
                target=RAW_GCP,
            )
        )
    return candidates





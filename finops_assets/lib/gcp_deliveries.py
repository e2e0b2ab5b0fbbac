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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from finops_assets.lib.deliveries import ObjectLike

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

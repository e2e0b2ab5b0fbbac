"""One publish, wherever readers are: the local serving zone (lib/serving.py), then the bucket
mirror of it (FINOPS_SERVING_URL, lib/serving_mirror.py), then PostgreSQL (FINOPS_PUBLISH_URL,
lib/pg_publish.py). The daemon's ``publish_serving`` op and ``finops-assets publish`` both call
``publish_all``, so a hand-run publish reaches every target a scheduled one does.

Each target fails on its own error (``serving_mirror.MirrorError``, ``pg_publish.PublishError``)
after the targets before it were published: the local zone is never held back by a bucket or a
database that is down, and each remote target catches up on the next publish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from finops_assets.lib import pg_publish as pg
from finops_assets.lib import serving
from finops_assets.lib import serving_mirror as mirror
from finops_assets.lib.warehouse import qualified


@dataclass
class PublishSummary:
    tables: list[serving.TablePublish] = field(default_factory=list)
    mirrored: mirror.MirrorResult | None = None
    replicated: list = field(default_factory=list)  # pg_publish results, one per table-day


class TargetError(Exception):
    """A remote target failed after the local zone was published; ``summary`` says what was."""

    def __init__(self, message: str, summary: PublishSummary) -> None:
        super().__init__(message)
        self.summary = summary


def publish_all(
    con: duckdb.DuckDBPyConnection,
    serving_dir: Path,
    *,
    schemas: Iterable[str] = serving.SERVED_SCHEMAS,
    days: Sequence[date] | None = None,
    serving_url: str | None = None,
    publish_url: str | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> PublishSummary:
    summary = PublishSummary()
    summary.tables = serving.publish(con, serving_dir, schemas=schemas, days=days)
    for table in summary.tables:
        log(
            f"{table.table}: {table.rows:,} rows, {table.days_written} file(s) written"
            + (f", {table.days_removed} removed" if table.days_removed else "")
        )
    if serving_url:
        try:
            summary.mirrored = mirror.mirror(serving_dir, mirror.bucket_for(serving_url))
        except mirror.MirrorError as error:
            raise TargetError(f"serving bucket: {error}", summary) from None
        m = summary.mirrored
        log(
            f"{m.url}: {m.uploaded} object(s) uploaded ({m.bytes_uploaded:,} bytes), "
            f"{m.deleted} deleted, {m.unchanged} unchanged"
        )
    if publish_url:
        targets = [
            t for t in summary.tables if t.daily and t.table.split(".")[0] in pg.PUBLISHED_SCHEMAS
        ]
        for table in targets:
            table_days = days or [
                d
                for (d,) in con.execute(
                    f"SELECT DISTINCT charge_date FROM {qualified(table.table)} ORDER BY 1"
                ).fetchall()
            ]
            try:
                summary.replicated += pg.publish_days(con, publish_url, table.table, table_days)
            except pg.PublishError as error:
                raise TargetError(f"PostgreSQL publish failed: {error}", summary) from None
        log(
            f"PostgreSQL {pg.describe_url(publish_url)}: {len(summary.replicated)} table-day(s), "
            f"{sum(r.rows for r in summary.replicated):,} rows"
        )
    return summary

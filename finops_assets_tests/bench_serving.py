"""`make bench-serving`: what publishing the serving zone costs, against a plain-DuckDB floor.

The warehouse of `make bench-close` (35 days of sample exports loaded through the daily assets,
January replicated to ``--rows`` rows in ``core.cost_facts`` and ``core.allocated_costs``) is
published three ways, each timed in this process with its peak RSS:

* the first publish of everything (``finops-assets publish`` after an upgrade);
* the publish a one-day run asks for (every served table, that day only), with the snapshot as
  large as the first publish made it;
* the floor: one DuckDB ``COPY`` of the same day's rows of the same tables to Parquet, which is
  the least any publish of that day has to write.

Both publishes include copying the DuckDB snapshot (the price of readers never seeing a half
applied publish); its size is reported.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import psutil

from finops_assets.lib import serving
from finops_assets.lib import warehouse as wh
from finops_assets_tests import bench_close

DAY = date(2025, 1, 15)


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def floor(con: duckdb.DuckDBPyConnection, out: Path, tables: dict[str, bool]) -> float:
    started = time.perf_counter()
    for table, daily in tables.items():
        where = f"WHERE charge_date = DATE '{DAY}'" if daily else ""
        target = out / f"{table}.parquet"
        con.execute(
            f"COPY (SELECT * FROM {table} {where}) TO '{target}' ({serving.PARQUET_OPTIONS})"
        ).fetchall()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    args = bench_close.month_arguments(__doc__.splitlines()[0], argv)

    with tempfile.TemporaryDirectory(prefix="bench_serving_") as tmp:
        root = Path(tmp)
        pipeline = bench_close.load(root, args.rows_per_day, args.seed)
        counts = bench_close.replicate(pipeline.warehouse, args.rows)
        pipeline.instance.dispose()
        folder = root / "serving"
        with wh.connect(pipeline.warehouse) as con:
            tables = serving.served_tables(con)
            (day_rows,) = con.execute(
                "SELECT count(*) FROM core.cost_facts WHERE charge_date = ?", [DAY]
            ).fetchone()
            first_seconds, first = timed(lambda: serving.publish(con, folder))
            snapshot_mb = serving.snapshot_path(folder).stat().st_size / 2**20
            day_seconds, _ = timed(lambda: serving.publish(con, folder, days=[DAY]))
            out = root / "floor"
            out.mkdir()
            floor_seconds = floor(con, out, tables)
        parquet_mb = sum(p.stat().st_size for p in folder.rglob("*.parquet")) / 2**20
        peak = psutil.Process().memory_info().rss / 2**20

    figures = {
        "month_rows": counts,
        "day_rows_cost_facts": day_rows,
        "tables": len(tables),
        "rows_published_first": sum(t.rows for t in first),
        "first_publish_seconds": round(first_seconds, 2),
        "one_day_publish_seconds": round(day_seconds, 2),
        "one_day_floor_seconds": round(floor_seconds, 2),
        "one_day_over_floor": round(day_seconds / floor_seconds, 1),
        "snapshot_mb": round(snapshot_mb),
        "parquet_mb": round(parquet_mb),
        "process_rss_mb_at_end": round(peak),
    }
    print(json.dumps(figures, indent=2))
    print(
        f"\nfirst publish of {figures['rows_published_first']:,} rows in {len(tables)} tables: "
        f"{first_seconds:.1f} s (snapshot {snapshot_mb:,.0f} MB, Parquet {parquet_mb:,.0f} MB); "
        f"one day ({day_rows:,} fact rows): {day_seconds:.2f} s, floor {floor_seconds:.2f} s "
        f"({figures['one_day_over_floor']}x)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: the chain on one generated day, against a plain DuckDB floor.

    python -m finops_assets_tests.bench [--rows 1000000] [--rows 5000000] [--keep DIR]

For each size: generate one day of FOCUS exports (in a subprocess, so the generator's memory does
not count), run raw/focus -> core/cost_facts -> marts for that day in-process through Dagster, and
report per stage wall time, rows/s and peak RSS (sampled every 10 ms). The floor is one plain
DuckDB session doing the same projection (files -> typed FOCUS table) and the same rollup on the
same files. Checks are timed separately: they are not part of the chain's throughput.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

DAY = "2025-01-15"


class PeakSampler:
    """Samples this process's RSS; reports the peak within [start, end] windows."""

    def __init__(self, interval: float = 0.01) -> None:
        self.samples: list[tuple[float, int]] = []
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._process.memory_info().rss))
            time.sleep(self._interval)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float, end: float) -> int:
        window = [rss for t, rss in self.samples if start <= t <= end]
        return max(window) if window else self._process.memory_info().rss


@dataclass
class Stage:
    name: str
    seconds: float
    peak_rss: int
    rows: int


@dataclass
class SizeResult:
    rows_requested: int
    rows_loaded: int
    stages: list[Stage] = field(default_factory=list)
    checks: list[Stage] = field(default_factory=list)
    chain: Stage | None = None
    floor: Stage | None = None


def generate(out: Path, rows: int) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "finops_assets.cli",
            "sample-data",
            "--out",
            str(out),
            "--start",
            DAY,
            "--days",
            "1",
            "--rows-per-day",
            str(rows),
            "--seed",
            "42",
            "--sources",
            "focus",
        ],
        check=True,
    )


def newest_files(landing: Path) -> list[Path]:
    newest = {}
    for manifest in sorted(landing.glob("focus/*/*/billing_period=*/*/manifest.json")):
        newest[manifest.parent.parent] = manifest.parent
    return sorted(p for folder in newest.values() for p in folder.glob("part-*"))


def run_floor(files: list[Path], workdir: Path, sampler: PeakSampler) -> Stage:
    """The same projection and rollup, as plain DuckDB, on the same files."""
    import duckdb

    from finops_assets.lib.focus import FOCUS_COLUMNS

    def projection(source: str, varchar: bool) -> str:
        columns = []
        for column, data_type in FOCUS_COLUMNS.items():
            expr = f'"{column}"'
            columns.append(f"CAST({expr} AS {data_type}) AS {expr}")
        columns.append("CAST(CAST(ChargePeriodStart AS TIMESTAMPTZ) AS DATE) AS charge_date")
        return f"SELECT {', '.join(columns)} FROM {source}"

    parquet = [str(f) for f in files if f.name.endswith(".parquet")]
    csv = [str(f) for f in files if not f.name.endswith(".parquet")]
    selects = []
    if parquet:
        selects.append(projection(f"read_parquet({parquet}, union_by_name = true)", False))
    if csv:
        selects.append(
            projection(
                f"read_csv({csv}, header = true, all_varchar = true, union_by_name = true)", True
            )
        )
    start = time.time()
    con = duckdb.connect(
        str(workdir / "floor.duckdb"), config={"memory_limit": "1GB", "threads": 2}
    )
    con.execute("SET TimeZone = 'UTC'; SET preserve_insertion_order = false")
    con.execute("CREATE TABLE facts AS " + " UNION ALL BY NAME ".join(selects))
    con.execute(
        """CREATE TABLE rollup AS
           SELECT charge_date, ProviderName, BillingCurrency, ServiceCategory,
                  json_extract_string(Tags, '$.team') AS team,
                  json_extract_string(Tags, '$.env') AS environment,
                  sum(BilledCost), sum(EffectiveCost), count(DISTINCT ResourceId), count(*)
           FROM facts GROUP BY ALL"""
    )
    rows = con.execute("SELECT count(*) FROM facts").fetchone()[0]
    con.close()
    end = time.time()
    return Stage("floor (plain DuckDB)", end - start, sampler.peak(start, end), rows)


def run_chain(landing: Path, workdir: Path, sampler: PeakSampler) -> SizeResult:
    import dagster as dg
    import duckdb

    from finops_assets.definitions import build_defs
    from finops_assets.settings import Settings

    warehouse = str(workdir / "warehouse.duckdb")
    start_date = os.environ.get("FINOPS_START_DATE") or "2025-01-01"
    defs = build_defs(
        Settings(landing_url=str(landing), warehouse=warehouse, start_date=start_date)
    )
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        start = time.time()
        result = job.execute_in_process(instance=instance, partition_key=DAY, raise_on_error=True)
        end = time.time()
        entries = [e for e in instance.all_logs(result.run_id) if e.dagster_event is not None]
    rows = (
        duckdb.connect(warehouse, read_only=True)
        .execute("SELECT count(*) FROM core.cost_facts")
        .fetchone()[0]
    )
    size = SizeResult(rows_requested=0, rows_loaded=rows)
    starts: dict[str, float] = {}
    for entry in entries:
        event = entry.dagster_event
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            begin = starts[event.step_key]
            stage = Stage(
                event.step_key.replace("__", "/"),
                entry.timestamp - begin,
                sampler.peak(begin, entry.timestamp),
                rows,
            )
            is_check = any(
                event.step_key.endswith(s)
                for s in ("_contract", "_conserved", "_from_sources", "_charges")
            )
            (size.checks if is_check else size.stages).append(stage)
    chain_seconds = sum(s.seconds for s in size.stages)
    size.chain = Stage(
        "chain (all assets)", chain_seconds, max(s.peak_rss for s in size.stages), rows
    )
    size.checks.append(
        Stage(
            "all checks",
            sum(s.seconds for s in size.checks),
            max(s.peak_rss for s in size.checks),
            rows,
        )
    )
    size.checks.append(
        Stage("run incl. checks + Dagster", end - start, sampler.peak(start, end), rows)
    )
    return size


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def report(size: SizeResult) -> str:
    lines = [
        f"\n## {size.rows_loaded:,} rows in one day ({DAY})",
        f"{'stage':<45}{'seconds':>9}{'rows/s':>13}{'peak RSS':>12}",
    ]
    for stage in [*size.stages, size.chain, size.floor, *size.checks]:
        lines.append(
            f"{stage.name:<45}{stage.seconds:>9.2f}{stage.rows / stage.seconds:>13,.0f}{mib(stage.peak_rss):>12}"
        )
    ratio = size.chain.seconds / size.floor.seconds
    lines.append(
        f"chain / floor = {ratio:.2f}x (target <= 3x); chain peak RSS {mib(size.chain.peak_rss)}"
    )
    return "\n".join(lines)


def bench_size(rows: int, keep: Path | None) -> SizeResult:
    workdir = Path(keep or tempfile.mkdtemp(prefix=f"finops-bench-{rows}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    landing = workdir / "landing"
    if not landing.exists():
        t0 = time.time()
        generate(landing, rows)
        print(
            f"generated {rows:,} rows/day (+ restatement) in {time.time() - t0:.1f} s", flush=True
        )
    for stale in ("warehouse.duckdb", "warehouse.duckdb.wal", "floor.duckdb", "floor.duckdb.wal"):
        (workdir / stale).unlink(missing_ok=True)
    with PeakSampler() as sampler:
        floor = run_floor(newest_files(landing), workdir, sampler)
        size = run_chain(landing, workdir, sampler)
    size.rows_requested = rows
    size.floor = floor
    return size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, action="append", help="rows per day (repeatable); default 1,000,000"
    )
    parser.add_argument("--keep", type=Path, help="work folder to keep (reuses generated data)")
    parser.add_argument("--json", type=Path, default=Path("bench-results/latest.json"))
    args = parser.parse_args(argv)
    results = []
    for rows in args.rows or [1_000_000]:
        # Each size in its own process so peak RSS of one does not carry into the next.
        if len(args.rows or []) > 1:
            cmd = [
                sys.executable,
                "-m",
                "finops_assets_tests.bench",
                "--rows",
                str(rows),
                "--json",
                str(args.json.with_name(f"{rows}.json")),
            ]
            if args.keep:
                cmd += ["--keep", str(args.keep / str(rows))]
            subprocess.run(cmd, check=True)
            continue
        size = bench_size(rows, args.keep)
        print(report(size), flush=True)
        results.append(size)
    if results:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                [
                    {
                        "rows": r.rows_loaded,
                        "chain_seconds": r.chain.seconds,
                        "floor_seconds": r.floor.seconds,
                        "ratio": r.chain.seconds / r.floor.seconds,
                        "chain_peak_rss": r.chain.peak_rss,
                        "stages": [s.__dict__ for s in r.stages],
                        "checks": [s.__dict__ for s in r.checks],
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

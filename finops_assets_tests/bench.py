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
    amortize_allocate: Stage | None = None
    allocation_rules: dict = field(default_factory=dict)


def generate(out: Path, rows: int, *sources: str) -> None:
    """One generated day, in a subprocess (its memory must not count), ``sources`` as CLI args."""
    command = [sys.executable, "-m", "finops_assets.cli", "sample-data", "--out", str(out)]
    command += ["--start", DAY, "--days", "1", "--rows-per-day", str(rows), "--seed", "42"]
    subprocess.run([*command, *(sources or ("--sources", "focus"))], check=True)


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
    con.execute(
        "SET TimeZone = 'UTC'; SET preserve_insertion_order = false; SET enable_progress_bar = false"
    )
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


NEW_STAGES = ("core/amortized_costs", "core/allocated_costs")


def bench_rules(landing: Path, workdir: Path) -> Path:
    """The shipped rules plus an allocation setup of realistic shape: three owners, the first
    twelve sub-accounts of the generated day in the hierarchy (half of them under a folder),
    and three shared pools (networking per provider, storage evenly, databases by usage)."""
    import duckdb

    from finops_assets.lib.rules import default_rules_path

    files = [str(p) for p in newest_files(landing) if p.suffix == ".parquet"]
    accounts = [
        r[0]
        for r in duckdb.sql(
            f"SELECT DISTINCT SubAccountId FROM read_parquet({files!r}, union_by_name = true) "
            "WHERE SubAccountId IS NOT NULL ORDER BY 1 LIMIT 12"
        ).fetchall()
    ]
    teams = ["payments", "search", "platform"]
    hierarchy = "\n".join(
        f'  "{a}": {{parent: ou-{teams[i % 3]}}}'
        if i % 2
        else f'  "{a}": {{owner: {teams[i % 3]}}}'
        for i, a in enumerate(accounts)
    )
    text = (
        default_rules_path().read_text()
        + f"""
owners:
  payments: {{dimensions: {{department: fintech}}}}
  search: {{dimensions: {{department: product}}}}
  platform: {{dimensions: {{department: engineering}}}}
hierarchy:
{hierarchy}
  ou-payments: {{owner: payments}}
  ou-search: {{owner: search}}
  ou-platform: {{owner: platform}}
shared_pools:
  - name: networking
    match: {{ServiceCategory: [Networking]}}
    split: proportional
    per_provider: true
  - name: storage
    match: {{ServiceCategory: [Storage]}}
    split: even
    owners: [payments, search, platform]
  - name: databases
    match: {{ServiceCategory: [Databases]}}
    split: metric
    metric: ConsumedQuantity
    metric_match: {{ServiceCategory: [Compute]}}
"""
    )
    path = workdir / "bench-rules.yaml"
    path.write_text(text)
    return path


def run_chain(landing: Path, workdir: Path, sampler: PeakSampler) -> SizeResult:
    import dagster as dg
    import duckdb

    from finops_assets.definitions import build_defs
    from finops_assets.settings import Settings

    warehouse = str(workdir / "warehouse.duckdb")
    start_date = os.environ.get("FINOPS_START_DATE") or "2025-01-01"
    defs = build_defs(
        Settings(
            landing_url=str(landing),
            warehouse=warehouse,
            start_date=start_date,
            config_path=str(bench_rules(landing, workdir)),
        )
    )
    job = defs.resolve_implicit_global_asset_job_def()
    # Step keys of assets are their key paths joined by '__'; every other step is a check.
    asset_steps = {"__".join(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
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
            is_check = event.step_key not in asset_steps
            (size.checks if is_check else size.stages).append(stage)
    chain_seconds = sum(s.seconds for s in size.stages)
    size.chain = Stage(
        "chain (all assets)", chain_seconds, max(s.peak_rss for s in size.stages), rows
    )
    new = [s for s in size.stages if s.name in NEW_STAGES]
    size.amortize_allocate = Stage(
        "amortization + allocation",
        sum(s.seconds for s in new),
        max(s.peak_rss for s in new),
        rows,
    )
    allocated = (
        duckdb.connect(warehouse, read_only=True)
        .execute(
            "SELECT x_AllocationRule, count(*) FROM core.allocated_costs GROUP BY 1 ORDER BY 1"
        )
        .fetchall()
    )
    size.allocation_rules = dict(allocated)
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
    for stage in [*size.stages, size.chain, size.amortize_allocate, size.floor, *size.checks]:
        lines.append(
            f"{stage.name:<45}{stage.seconds:>9.2f}{stage.rows / stage.seconds:>13,.0f}{mib(stage.peak_rss):>12}"
        )
    ratio = size.chain.seconds / size.floor.seconds
    # The floor projects and rolls up; it does not amortize or allocate, so the like-for-like
    # ratio leaves those stages (and the commitment mart) out.
    extra = size.amortize_allocate.seconds + sum(
        s.seconds
        for s in size.stages
        if s.name in ("mart/commitment_utilization", "mart/commitment_coverage")
    )
    lines.append(
        f"chain / floor = {ratio:.2f}x; without amortization, allocation and the commitment "
        f"mart {(size.chain.seconds - extra) / size.floor.seconds:.2f}x (target <= 3x); "
        f"chain peak RSS {mib(size.chain.peak_rss)}"
    )
    lines.append(
        "allocated rows by rule: "
        + ", ".join(f"{rule} {n:,}" for rule, n in size.allocation_rules.items())
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
    parser.add_argument("--cur", action="store_true", help="also the CUR -> FOCUS stage")
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
            if args.cur:
                cmd += ["--cur"]
            subprocess.run(cmd, check=True)
            continue
        size = bench_size(rows, args.keep)
        print(report(size), flush=True)
        results.append(size)
        if args.cur:
            print(bench_cur(rows, args.keep, size.amortize_allocate), flush=True)
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
                        "amortization_allocation_seconds": r.amortize_allocate.seconds,
                        "allocation_rules": r.allocation_rules,
                        "stages": [s.__dict__ for s in r.stages],
                        "checks": [s.__dict__ for s in r.checks],
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    return 0


# --- CUR -> FOCUS stage ------------------------------------------------------------------------
FOCUS_CONVERTER = Path(
    os.environ.get("FOCUS_CONVERTER", ".tools/focus-converter/bin/focus-converter")
)


def current_assembly(landing: Path) -> Path:
    (manifest,) = landing.glob("aws-cur/*/*/*-Manifest.json")
    return manifest.parent / json.loads(manifest.read_text())["assemblyId"]


def run_cur_floor(files: list[Path], workdir: Path, sampler: PeakSampler) -> Stage:
    """The same CUR -> FOCUS projection (amortization CASE, categories, tags JSON, split rows out)
    as one plain DuckDB statement."""
    import duckdb

    paths = [str(f) for f in files]
    start = time.time()
    con = duckdb.connect(
        str(workdir / "cur_floor.duckdb"), config={"memory_limit": "1GB", "threads": 2}
    )
    con.execute(
        "SET TimeZone = 'UTC'; SET preserve_insertion_order = false; SET enable_progress_bar = false"
    )
    columns = [
        r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({paths})").fetchall()
    ]
    tags = [c for c in columns if c.startswith("resource_tags_")]
    # The fastest plain-SQL tags JSON we know (string assembly; a MAP per row is ~1.5x slower
    # for the whole statement): the floor is the best single statement, not a strawman.
    tag_json = (
        "'{' || concat_ws(',', "
        + ", ".join(
            f"CASE WHEN NULLIF({t}, '') IS NOT NULL "
            f"THEN '\"{t[len('resource_tags_') :]}\":' || to_json({t}) END"
            for t in tags
        )
        + ") || '}'"
        if tags
        else "'{}'"
    )
    money = "DECIMAL(38, 12)"
    con.execute(f"""
        CREATE TABLE facts AS
        SELECT CAST(line_item_unblended_cost AS {money}) AS BilledCost,
               CAST(CASE line_item_line_item_type
                   WHEN 'SavingsPlanCoveredUsage' THEN savings_plan_savings_plan_effective_cost
                   WHEN 'SavingsPlanRecurringFee' THEN savings_plan_total_commitment_to_date - savings_plan_used_commitment
                   WHEN 'SavingsPlanNegation' THEN 0 WHEN 'SavingsPlanUpfrontFee' THEN 0
                   WHEN 'DiscountedUsage' THEN reservation_effective_cost
                   WHEN 'RIFee' THEN reservation_unused_amortized_upfront_fee_for_billing_period + reservation_unused_recurring_fee
                   WHEN 'Fee' THEN CASE WHEN coalesce(reservation_reservation_a_r_n, '') <> '' THEN 0 ELSE line_item_unblended_cost END
                   ELSE line_item_unblended_cost END AS {money}) AS EffectiveCost,
               CAST(pricing_public_on_demand_cost AS {money}) AS ListCost,
               CAST(line_item_unblended_cost AS {money}) AS ContractedCost,
               CAST(bill_payer_account_id AS VARCHAR) AS BillingAccountId,
               CAST(line_item_usage_account_id AS VARCHAR) AS SubAccountId,
               line_item_currency_code AS BillingCurrency,
               CAST(bill_billing_period_start_date AS TIMESTAMPTZ) AS BillingPeriodStart,
               CAST(bill_billing_period_end_date AS TIMESTAMPTZ) AS BillingPeriodEnd,
               CAST(line_item_usage_start_date AS TIMESTAMPTZ) AS ChargePeriodStart,
               CAST(line_item_usage_end_date AS TIMESTAMPTZ) AS ChargePeriodEnd,
               CASE WHEN line_item_line_item_type IN ('Tax') THEN 'Tax'
                    WHEN line_item_line_item_type IN ('Credit', 'Refund', 'EdpDiscount', 'BundledDiscount') THEN 'Credit'
                    WHEN line_item_line_item_type IN ('RIFee', 'Fee', 'SavingsPlanRecurringFee', 'SavingsPlanUpfrontFee') THEN 'Purchase'
                    ELSE 'Usage' END AS ChargeCategory,
               'AWS' AS ProviderName, 'AWS' AS PublisherName, bill_invoicing_entity AS InvoiceIssuerName,
               line_item_product_code AS ServiceName, product_region AS RegionId,
               line_item_availability_zone AS AvailabilityZone, line_item_resource_id AS ResourceId,
               product_sku AS SkuId, pricing_unit AS PricingUnit,
               CAST(line_item_usage_amount AS {money}) AS PricingQuantity,
               coalesce(reservation_reservation_a_r_n, savings_plan_savings_plan_a_r_n) AS CommitmentDiscountId,
               {tag_json} AS Tags,
               CAST(CAST(line_item_usage_start_date AS TIMESTAMPTZ) AS DATE) AS charge_date
        FROM read_parquet({paths})
        WHERE coalesce(line_item_operation, '') NOT IN ('EKSPod-EC2', 'ECSTask-EC2')
    """)
    rows = con.execute("SELECT count(*) FROM facts").fetchone()[0]
    con.close()
    end = time.time()
    return Stage("CUR floor (plain DuckDB)", end - start, sampler.peak(start, end), rows)


def run_raw_copy(files: list[Path], workdir: Path, sampler: PeakSampler) -> Stage:
    """What keeping a typed raw copy costs at the least: the delivered columns raw.aws_cur keeps,
    stored once in a DuckDB table as delivered (no casts, no tags JSON). Any design with DESIGN's
    typed `raw.aws_cur` pays this on top of the floor."""
    import duckdb

    from finops_assets.defs.sources.aws.cur import RAW_CUR_COLUMNS

    paths = [str(f) for f in files]
    start = time.time()
    con = duckdb.connect(
        str(workdir / "cur_raw_copy.duckdb"), config={"memory_limit": "1GB", "threads": 2}
    )
    con.execute("SET preserve_insertion_order = false; SET enable_progress_bar = false")
    delivered = [
        r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({paths})").fetchall()
    ]
    kept = [c for c in delivered if c in RAW_CUR_COLUMNS or c.startswith("resource_tags_")]
    con.execute(f"CREATE TABLE raw_copy AS SELECT {', '.join(kept)} FROM read_parquet({paths})")
    rows = con.execute("SELECT count(*) FROM raw_copy").fetchone()[0]
    con.close()
    end = time.time()
    return Stage(
        f"raw copy, {len(kept)} delivered cols (lower bound)",
        end - start,
        sampler.peak(start, end),
        rows,
    )


def run_cur_chain(landing: Path, workdir: Path, sampler: PeakSampler) -> list[Stage]:
    import dagster as dg

    from finops_assets.definitions import build_defs
    from finops_assets.settings import Settings

    start_date = os.environ.get("FINOPS_START_DATE") or "2025-01-01"
    warehouse = str(workdir / "cur_warehouse.duckdb")
    defs = build_defs(
        Settings(landing_url=str(landing), warehouse=warehouse, start_date=start_date)
    )
    job = defs.resolve_implicit_global_asset_job_def()
    keys = [dg.AssetKey(["raw", "aws_cur"]), dg.AssetKey(["core", "cost_facts"])]
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance, partition_key=DAY, asset_selection=keys, raise_on_error=True
        )
        entries = [e for e in instance.all_logs(result.run_id) if e.dagster_event is not None]
    import duckdb

    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM raw.aws_cur").fetchone()[0]
    stages, starts = [], {}
    for entry in entries:
        event = entry.dagster_event
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS" and event.step_key in (
            "raw__aws_cur",
            "core__cost_facts",
        ):
            begin = starts[event.step_key]
            stages.append(
                Stage(
                    event.step_key.replace("__", "/") + " (CUR)",
                    entry.timestamp - begin,
                    sampler.peak(begin, entry.timestamp),
                    rows,
                )
            )
    total = Stage(
        "CUR -> FOCUS (raw/aws_cur + core/cost_facts)",
        sum(s.seconds for s in stages),
        max(s.peak_rss for s in stages),
        rows,
    )
    return [*stages, total]


def run_focus_converter(assembly: Path, workdir: Path, rows: int) -> Stage | None:
    """The FinOps Foundation converter in its fastest mode, in its own virtualenv."""
    if not FOCUS_CONVERTER.exists():
        print(f"(focus-converter not found at {FOCUS_CONVERTER}; `make bench` installs it)")
        return None
    out = workdir / "focus_converter_out"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    start = time.time()
    process = psutil.Popen(
        [
            str(FOCUS_CONVERTER),
            "convert",
            "--provider",
            "aws",
            "--data-path",
            str(assembly),
            "--data-format",
            "parquet",
            "--parquet-data-format",
            "dataset",
            "--export-path",
            str(out),
            "--no-export-include-source-columns",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.05)
    if process.returncode != 0:
        print(f"(focus-converter failed with exit code {process.returncode})")
        return None
    return Stage("focus-converter 1.0.0 (fastest mode)", time.time() - start, peak, rows)


def bench_cur(rows: int, keep: Path | None, amortize_allocate: Stage | None = None) -> str:
    workdir = Path(keep or tempfile.mkdtemp(prefix=f"finops-bench-cur-{rows}-")) / "cur"
    workdir.mkdir(parents=True, exist_ok=True)
    landing = workdir / "landing"
    if not landing.exists():
        t0 = time.time()
        generate(
            landing,
            rows,
            *("--sources", "aws-cur", "--cur-rows-per-day", str(rows), "--cur-flavour", "parquet"),
        )
        print(
            f"generated {rows:,} CUR rows/day (+ restatement) in {time.time() - t0:.1f} s",
            flush=True,
        )
    for stale in workdir.glob("*.duckdb*"):
        stale.unlink()
    assembly = current_assembly(landing)
    with PeakSampler() as sampler:
        files = sorted(assembly.glob("*.parquet"))
        floor = run_cur_floor(files, workdir, sampler)
        raw_copy = run_raw_copy(files, workdir, sampler)
        ours = run_cur_chain(landing, workdir, sampler)
    converter = run_focus_converter(assembly, workdir, ours[-1].rows)
    lines = [
        f"\n## CUR -> FOCUS, {ours[-1].rows:,} legacy CUR rows (Athena Parquet, one day)",
        f"{'stage':<48}{'seconds':>9}{'rows/s':>13}{'peak RSS':>12}",
    ]
    for stage in [*ours, floor, raw_copy, *([converter] if converter else [])]:
        lines.append(
            f"{stage.name:<48}{stage.seconds:>9.2f}{stage.rows / stage.seconds:>13,.0f}{mib(stage.peak_rss):>12}"
        )
    total = ours[-1]
    lines.append(f"ours / floor = {total.seconds / floor.seconds:.2f}x (target <= 1.5x)")
    bound = floor.seconds + raw_copy.seconds
    lines.append(
        f"ours / (floor + raw copy) = {total.seconds / bound:.2f}x: the least a typed raw copy "
        f"plus FOCUS facts can cost is {bound / floor.seconds:.2f}x the floor"
    )
    if converter:
        lines.append(
            f"focus-converter / ours = {converter.seconds / total.seconds:.2f}x (target >= 4x); "
            f"focus-converter / floor = {converter.seconds / floor.seconds:.2f}x"
        )
    if amortize_allocate is not None:
        lines.append(
            f"amortization + allocation of the {amortize_allocate.rows:,}-row day: "
            f"{amortize_allocate.seconds:.2f} s = {amortize_allocate.seconds / total.seconds:.2f}x "
            f"the CUR -> FOCUS stage (target <= 1x)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

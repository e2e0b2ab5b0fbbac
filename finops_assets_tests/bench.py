"""`make bench`: the pipeline against plain DuckDB floors, paired in one run.

    python -m finops_assets_tests.bench [--rows N ...] [--cur-rows N ...] [--cur-month N]
                                        [--backfill DAYS [--backfill-rows N]] [--keep DIR]

* ``--rows N``: one generated day of N FOCUS rows through every asset and check, in-process
  through Dagster: per stage wall time, rows/s and peak RSS (sampled every 10 ms), against the
  floor (one plain DuckDB session doing the projection files -> typed FOCUS table and the rollup
  on the same files).
* ``--cur-rows N``: CUR -> FOCUS (raw/aws_cur + core/cost_facts) on one day of N legacy CUR rows
  in Athena Parquet, against the CUR floor (one plain statement: the 27-column projection), the
  same-output floor (our FOCUS SQL as one plain statement, no pipeline) and focus-converter.
* ``--cur-month N``: a month of N CUR rows, raw + facts with their checks through
  ``dagster asset materialize --partition-range`` (a fresh process, as a user runs it).
* ``--backfill DAYS``: DAYS days of ``--backfill-rows`` FOCUS rows, every asset and check, as one
  ranged run; its time and Dagster's share of it.

Each piece runs in its own process (peak RSS of one does not carry into the next); generation
runs in a subprocess and is not timed. Figures go to ``bench-results.json`` (``--json``) as well
as the tables printed.
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
from datetime import date, timedelta
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


def chain_keys(defs) -> list:
    """The assets the floors are compared with: raw to marts (the insights are measured by
    ``make bench-insights``)."""
    return sorted(
        k
        for k in defs.resolve_asset_graph().get_all_asset_keys()
        if k.path[0] not in ("insights", "finance", "ops")
    )


def settle() -> None:
    """Flush the page cache's dirty pages before a timed piece, so the writeback of what the
    previous piece (or the generator) wrote does not land inside this piece's time: on this
    2-core VM that alone moved a stage by 25% between runs."""
    os.sync()
    time.sleep(1)


def generate(out: Path, rows: int, *sources: str, start: str = DAY, days: int = 1) -> None:
    """Generated days, in a subprocess (its memory must not count), ``sources`` as CLI args."""
    command = [sys.executable, "-m", "finops_assets.cli", "sample-data", "--out", str(out)]
    command += ["--start", start, "--days", str(days), "--rows-per-day", str(rows), "--seed", "42"]
    subprocess.run([*command, *(sources or ("--sources", "focus"))], check=True)


def newest_files(landing: Path) -> list[Path]:
    newest = {}
    for manifest in sorted(landing.glob("focus/*/*/billing_period=*/*/manifest.json")):
        newest[manifest.parent.parent] = manifest.parent
    return sorted(p for folder in newest.values() for p in folder.glob("part-*"))


def run_floor(
    files: list[Path], workdir: Path, sampler: PeakSampler, memory_limit: str = "1GB"
) -> Stage:
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
        str(workdir / "floor.duckdb"), config={"memory_limit": memory_limit, "threads": 2}
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
        result = job.execute_in_process(
            instance=instance,
            partition_key=DAY,
            asset_selection=chain_keys(defs),
            raise_on_error=True,
        )
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
    clean_warehouses(workdir)
    with PeakSampler() as sampler:
        settle()
        floor = run_floor(newest_files(landing), workdir, sampler)
        settle()
        size = run_chain(landing, workdir, sampler)
    size.rows_requested = rows
    size.floor = floor
    return size


def focus_figures(r: SizeResult) -> dict:
    return {
        "rows": r.rows_loaded,
        "chain_seconds": r.chain.seconds,
        "floor_seconds": r.floor.seconds,
        "ratio": r.chain.seconds / r.floor.seconds,
        "run_seconds": r.checks[-1].seconds,
        "run_ratio": r.checks[-1].seconds / r.floor.seconds,
        "checks_seconds": r.checks[-2].seconds,
        "contracts_seconds": sum(s.seconds for s in r.checks if s.name.endswith("_contract")),
        "chain_peak_rss": r.chain.peak_rss,
        "amortization_allocation_seconds": r.amortize_allocate.seconds,
        "allocation_rules": r.allocation_rules,
        "stages": [s.__dict__ for s in r.stages],
        "checks": [s.__dict__ for s in r.checks],
    }


def run_job(kind: str, rows: int, keep: Path | None, days: int = 0) -> dict:
    """One piece of the bench in this process: its report printed, its figures returned."""
    if kind == "focus":
        size = bench_size(rows, keep)
        print(report(size), flush=True)
        return {"focus_day": [focus_figures(size)]}
    if kind == "cur":
        text, figures = bench_cur(rows, keep)
        print(text, flush=True)
        return {"cur_day": [figures]}
    if kind == "cur_month":
        text, figures = bench_cur_month(rows, keep)
        print(text, flush=True)
        return {"cur_month": figures}
    if kind == "backfill":
        text, figures = bench_backfill(days, rows, keep)
        print(text, flush=True)
        return {"backfill": figures}
    raise ValueError(kind)


def merge_figures(into: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, list):
            into.setdefault(key, []).extend(value)
        else:
            into[key] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, action="append", help="FOCUS rows per day (repeatable)")
    parser.add_argument(
        "--cur-rows", type=int, action="append", help="CUR -> FOCUS: CUR rows of one day"
    )
    parser.add_argument(
        "--cur", action="store_true", help="also the CUR -> FOCUS stage at each --rows size"
    )
    parser.add_argument(
        "--cur-month", type=int, help="a month of this many CUR rows, raw + facts via the CLI"
    )
    parser.add_argument(
        "--backfill", type=int, metavar="DAYS", help="a backfill of DAYS FOCUS days as one run"
    )
    parser.add_argument("--backfill-rows", type=int, default=100_000, help="rows per day")
    parser.add_argument("--keep", type=Path, help="work folder to keep (reuses generated data)")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--job", help=argparse.SUPPRESS)  # kind:rows[:days], one subprocess
    args = parser.parse_args(argv)
    if args.job:
        kind, rows, *days = args.job.split(":")
        figures = run_job(kind, int(rows), args.keep, int(days[0]) if days else 0)
        args.json.write_text(json.dumps(figures, indent=2))
        return 0
    jobs = [("focus", n) for n in args.rows or []]
    jobs += [("cur", n) for n in [*(args.cur_rows or []), *((args.rows or []) if args.cur else [])]]
    if args.cur_month:
        jobs.append(("cur_month", args.cur_month))
    if args.backfill:
        jobs.append(("backfill", args.backfill_rows, args.backfill))
    if not jobs:
        jobs = [("focus", 1_000_000)]
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    started = time.time()
    for kind, rows, *days in jobs:
        keep = args.keep / f"{kind}-{rows}" if args.keep else None
        if len(jobs) == 1:
            merge_figures(results, run_job(kind, rows, keep, *days))
            continue
        # Each job in its own process, so the peak RSS of one does not carry into the next.
        with tempfile.TemporaryDirectory() as tmp:
            part = Path(tmp) / "part.json"
            job = ":".join(str(x) for x in (kind, rows, *days))
            cmd = [sys.executable, "-m", "finops_assets_tests.bench", "--job", job]
            cmd += ["--json", str(part), *(["--keep", str(keep)] if keep else [])]
            subprocess.run(cmd, check=True)
            merge_figures(results, json.loads(part.read_text()))
        # Written after every piece: a later piece failing keeps the figures measured so far.
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
    results["bench_seconds"] = time.time() - started
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nfigures written to {args.json} ({results['bench_seconds']:.0f} s)", flush=True)
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


def run_same_output_floor(files: list[Path], workdir: Path, sampler: PeakSampler) -> Stage:
    """Our exact CUR -> FOCUS output (every FOCUS 1.2 column core.cost_facts holds) as one plain
    DuckDB statement over the delivered files: no pipeline, no raw zone, no checks, no Dagster.
    The floor above projects 27 columns; this one does all of our work once, so
    ours / this floor is what the pipeline itself costs."""
    import duckdb

    from finops_assets.defs.sources.aws.cur import cur_staging_select, resolve_cur_layout
    from finops_assets.lib.facts import fact_sources, with_source_sql
    from finops_assets.lib.loading import describe_file

    start = time.time()
    con = duckdb.connect(
        str(workdir / "cur_same_output.duckdb"), config={"memory_limit": "1GB", "threads": 2}
    )
    con.execute(
        "SET TimeZone = 'UTC'; SET preserve_insertion_order = false; SET enable_progress_bar = false"
    )
    selects = []
    for f in files:
        layout = resolve_cur_layout(describe_file(con, str(f), "parquet", str(f)))
        source = (
            f"(SELECT *, 'delivery' AS x_DeliveryId, '{f.name}' AS x_SourceFile "
            f"FROM read_parquet('{f}'))"
        )
        selects.append(
            f"SELECT *, 'aws-cur/bench' AS x_Dataset, '2025-01' AS x_BillingPeriod "
            f"FROM ({cur_staging_select(source, layout)})"
        )
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE VIEW raw.aws_cur AS " + " UNION ALL BY NAME ".join(selects))
    (source,) = [s for s in fact_sources() if s.raw_table == "raw.aws_cur"]
    days = con.execute("SELECT min(charge_date), max(charge_date) FROM raw.aws_cur").fetchone()
    con.execute(f"CREATE TABLE facts AS {with_source_sql(source, days)}")
    rows = con.execute("SELECT count(*) FROM facts").fetchone()[0]
    con.close()
    end = time.time()
    return Stage("same FOCUS output, one statement", end - start, sampler.peak(start, end), rows)


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
        fact_rows = con.execute("SELECT count(*) FROM core.cost_facts").fetchone()[0]
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
    total.fact_rows = fact_rows  # split-cost rows (EKS/ECS) stay in raw, not in the facts
    return [*stages, total]


def wait_with_peak(process: psutil.Popen) -> int:
    """Wait for ``process``; the peak RSS of it and its children, sampled every 50 ms."""
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.05)
    return peak


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
    peak = wait_with_peak(process)
    if process.returncode != 0:
        print(f"(focus-converter failed with exit code {process.returncode})")
        return None
    return Stage("focus-converter 1.0.0 (fastest mode)", time.time() - start, peak, rows)


def bench_cur(
    rows: int, keep: Path | None, amortize_allocate: Stage | None = None
) -> tuple[str, dict]:
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
    clean_warehouses(workdir)
    assembly = current_assembly(landing)
    with PeakSampler() as sampler:
        files = sorted(assembly.glob("*.parquet"))
        settle()
        floor = run_cur_floor(files, workdir, sampler)
        settle()
        same = run_same_output_floor(files, workdir, sampler)
        settle()
        ours = run_cur_chain(landing, workdir, sampler)
    settle()
    converter = run_focus_converter(assembly, workdir, ours[-1].rows)
    lines = [
        f"\n## CUR -> FOCUS, {ours[-1].rows:,} legacy CUR rows (Athena Parquet, one day)",
        f"{'stage':<48}{'seconds':>9}{'rows/s':>13}{'peak RSS':>12}",
    ]
    for stage in [*ours, floor, same, *([converter] if converter else [])]:
        lines.append(
            f"{stage.name:<48}{stage.seconds:>9.2f}{stage.rows / stage.seconds:>13,.0f}{mib(stage.peak_rss):>12}"
        )
    total = ours[-1]
    lines.append(f"ours / floor = {total.seconds / floor.seconds:.2f}x (target <= 1.5x)")
    lines.append(
        f"ours / same-output floor = {total.seconds / same.seconds:.2f}x (what the pipeline "
        f"adds to our own projection); same-output floor / floor = "
        f"{same.seconds / floor.seconds:.2f}x (FOCUS 1.2's full column set vs 27 columns)"
    )
    figures = {
        "rows": total.rows,
        "fact_rows": total.fact_rows,
        "stages": [s.__dict__ for s in ours],
        "floor": floor.__dict__,
        "same_output_floor": same.__dict__,
        "ratio": total.seconds / floor.seconds,
        "ratio_same_output": total.seconds / same.seconds,
    }
    if converter:
        lines.append(
            f"focus-converter / ours = {converter.seconds / total.seconds:.2f}x (target >= 2x); "
            f"focus-converter / floor = {converter.seconds / floor.seconds:.2f}x"
        )
        figures["focus_converter"] = converter.__dict__
        figures["converter_over_ours"] = converter.seconds / total.seconds
    if amortize_allocate is not None:
        lines.append(
            f"amortization + allocation of the {amortize_allocate.rows:,}-row day: "
            f"{amortize_allocate.seconds:.2f} s = {amortize_allocate.seconds / total.seconds:.2f}x "
            f"the CUR -> FOCUS stage"
        )
    return "\n".join(lines), figures


def clean_warehouses(workdir: Path) -> None:
    for stale in workdir.glob("*.duckdb*"):
        stale.unlink()
    for zone in workdir.glob("*.raw"):
        import shutil

        shutil.rmtree(zone)


# --- a month of CUR through the CLI, and a long backfill as one run ----------------------------
MONTH_START, MONTH_END = "2025-01-01", "2025-01-31"


def run_process(command: list[str], env: dict) -> tuple[float, int]:
    """Wall seconds and peak RSS (the process and its children) of a command that must pass."""
    start = time.time()
    process = psutil.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = []
    reader = threading.Thread(target=lambda: output.append(process.stdout.read()), daemon=True)
    reader.start()
    peak = wait_with_peak(process)
    reader.join()
    if process.returncode != 0:
        tail = b"".join(output).decode(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{tail}")
    return time.time() - start, peak


def step_seconds(instance, run_id: str) -> tuple[float, int]:
    """Seconds spent inside the run's asset and check steps, and how many checks it evaluated."""
    steps, starts, checks = 0.0, {}, 0
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            steps += entry.timestamp - starts[event.step_key]
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            checks += 1
    return steps, checks


def run_shares(dagster_home: Path) -> dict:
    """From the instance the CLI wrote: run wall time, time inside asset and check steps, and
    how many checks ran."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (run,) = instance.get_runs()
        stats = instance.get_run_stats(run.run_id)
        steps, checks = step_seconds(instance, run.run_id)
        return {
            "run_seconds": stats.end_time - stats.start_time,
            "step_seconds": steps,
            "checks_evaluated": checks,
        }


def bench_cur_month(rows: int, keep: Path | None) -> tuple[str, dict]:
    """A month of ``rows`` CUR rows (Athena Parquet): raw/aws_cur + core/cost_facts with their
    checks through `dagster asset materialize --partition-range`, against the CUR floor on the
    month's files."""
    workdir = Path(keep or tempfile.mkdtemp(prefix=f"finops-bench-month-{rows}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    landing = workdir / "landing"
    per_day = max(1, rows // 31)
    if not landing.exists():
        t0 = time.time()
        generate(
            landing,
            per_day,
            *("--sources", "aws-cur", "--cur-rows-per-day", str(per_day)),
            *("--cur-flavour", "parquet"),
            start=MONTH_START,
            days=31,
        )
        print(f"generated a month of {per_day * 31:,} CUR rows in {time.time() - t0:.1f} s")
    clean_warehouses(workdir)
    home = workdir / "dagster_home"
    if home.exists():
        import shutil

        shutil.rmtree(home)
    home.mkdir()
    with PeakSampler() as sampler:
        settle()
        floor = run_cur_floor(sorted(current_assembly(landing).glob("*.parquet")), workdir, sampler)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FINOPS_LANDING_URL": str(landing),
        "FINOPS_WAREHOUSE": str(workdir / "month_warehouse.duckdb"),
        "FINOPS_START_DATE": MONTH_START,
    }
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "asset", "materialize", "-m", "finops_assets.definitions"]
    command += ["--select", "raw/aws_cur,core/cost_facts"]
    command += ["--partition-range", f"{MONTH_START}...{MONTH_END}"]
    settle()
    seconds, peak = run_process(command, env)
    shares = run_shares(home)
    import duckdb

    with duckdb.connect(str(workdir / "month_warehouse.duckdb"), read_only=True) as con:
        loaded = con.execute("SELECT count(*) FROM core.cost_facts").fetchone()[0]
    lines = [
        f"\n## A month of {floor.rows:,} CUR rows: raw + facts with checks, CLI, one run",
        f"`dagster asset materialize --select raw/aws_cur,core/cost_facts --partition-range "
        f"{MONTH_START}...{MONTH_END}`: {seconds:.1f} s wall (run {shares['run_seconds']:.1f} s, "
        f"steps {shares['step_seconds']:.1f} s, {shares['checks_evaluated']} check evaluations), "
        f"peak RSS {mib(peak)}, {loaded:,} fact rows",
        f"CUR floor on the month's files: {floor.seconds:.2f} s",
        f"CLI / floor = {seconds / floor.seconds:.2f}x (target <= 2x); process start, imports and "
        f"definitions {seconds - shares['run_seconds']:.1f} s, Dagster inside the run "
        f"{shares['run_seconds'] - shares['step_seconds']:.1f} s",
    ]
    figures = {
        "rows": floor.rows,
        "cli_seconds": seconds,
        "cli_peak_rss": peak,
        "floor_seconds": floor.seconds,
        "ratio": seconds / floor.seconds,
        **shares,
    }
    return "\n".join(lines), figures


def bench_backfill(days: int, rows: int, keep: Path | None) -> tuple[str, dict]:
    """``days`` days of ``rows`` FOCUS rows each, every asset and check, as one ranged run."""
    import dagster as dg

    from finops_assets.definitions import build_defs
    from finops_assets.settings import Settings

    workdir = Path(keep or tempfile.mkdtemp(prefix=f"finops-bench-backfill-{days}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    landing = workdir / "landing"
    start_day = "2024-01-01"
    if not landing.exists():
        t0 = time.time()
        generate(landing, rows, start=start_day, days=days)
        print(f"generated {days} days of {rows:,} FOCUS rows in {time.time() - t0:.1f} s")
    clean_warehouses(workdir)
    end_day = (date.fromisoformat(start_day) + timedelta(days=days - 1)).isoformat()
    with PeakSampler() as sampler:
        # Hundreds of files in one statement: the floor gets the memory the pipeline may use.
        settle()
        floor = run_floor(newest_files(landing), workdir, sampler, memory_limit="8GB")
        settle()
        warehouse = str(workdir / "warehouse.duckdb")
        defs = build_defs(
            Settings(landing_url=str(landing), warehouse=warehouse, start_date=start_day)
        )
        job = defs.resolve_implicit_global_asset_job_def()
        with dg.instance_for_test() as instance:
            t0 = time.time()
            result = job.execute_in_process(
                instance=instance,
                tags={
                    "dagster/asset_partition_range_start": start_day,
                    "dagster/asset_partition_range_end": end_day,
                },
                asset_selection=chain_keys(defs),
                raise_on_error=True,
            )
            seconds = time.time() - t0
            peak = sampler.peak(t0, time.time())
            steps, _ = step_seconds(instance, result.run_id)
            runs = len(instance.get_runs())
    dagster_share = (seconds - steps) / seconds
    text = (
        f"\n## Backfill: {days} days x {rows:,} FOCUS rows ({floor.rows:,} rows) as {runs} run\n"
        f"whole chain + checks: {seconds:.1f} s ({floor.rows / seconds:,.0f} rows/s), steps "
        f"{steps:.1f} s, Dagster {seconds - steps:.1f} s = {dagster_share:.1%}; peak RSS "
        f"{mib(peak)}; floor (projection + rollup of every day) {floor.seconds:.1f} s"
    )
    figures = {
        "days": days,
        "rows": floor.rows,
        "runs": runs,
        "seconds": seconds,
        "step_seconds": steps,
        "dagster_share": dagster_share,
        "peak_rss": peak,
        "floor_seconds": floor.seconds,
    }
    return text, figures


if __name__ == "__main__":
    raise SystemExit(main())

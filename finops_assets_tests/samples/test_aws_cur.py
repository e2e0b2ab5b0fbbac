"""The AWS legacy CUR generator writes deliveries that behave like real CUR exports in S3.

Files are found through the manifests and read back with DuckDB (all columns as text, explicit
CSV options) or pyarrow, never with the generator's own readers.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from finops_assets.samples.aws_cur import CurSampleSummary, generate_aws_cur
from finops_assets_tests.paths import REAL_SAMPLES

# Main scenario: 5 days of January (the restated month, final) and 3 of February (open).
START = date(2025, 1, 27)
DAYS = 8
ROWS_PER_DAY = 2_000
SEED = 5
REPORT = "finops-cur"
JANUARY = "20250101-20250201"
FEBRUARY = "20250201-20250301"
DAYS_PER_PERIOD = {JANUARY: 5, FEBRUARY: 3}
FIRST_DAYS = {"2025-01-27", "2025-02-01"}  # first generated day of each month
REPO_ROOT = Path(__file__).resolve().parents[2]  # the repository
LINE_ITEM_TYPES = {
    "Usage",
    "DiscountedUsage",
    "RIFee",
    "Fee",
    "SavingsPlanCoveredUsage",
    "SavingsPlanNegation",
    "SavingsPlanUpfrontFee",
    "SavingsPlanRecurringFee",
    "Tax",
    "Credit",
    "Refund",
    "EdpDiscount",
    "BundledDiscount",
}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# DOMAIN §4: amortized cost per line item type, split-cost rows (EKSPod-EC2/ECSTask-EC2) excluded.
AMORTIZED = """
    SELECT substr("lineItem/UsageStartDate", 1, 10) AS day,
           sum(TRY_CAST("lineItem/UnblendedCost" AS DOUBLE)) AS unblended,
           sum(CASE
               WHEN "lineItem/LineItemType" = 'SavingsPlanCoveredUsage'
                   THEN TRY_CAST("savingsPlan/SavingsPlanEffectiveCost" AS DOUBLE)
               WHEN "lineItem/LineItemType" = 'SavingsPlanRecurringFee'
                   THEN TRY_CAST("savingsPlan/TotalCommitmentToDate" AS DOUBLE)
                        - TRY_CAST("savingsPlan/UsedCommitment" AS DOUBLE)
               WHEN "lineItem/LineItemType" IN ('SavingsPlanNegation', 'SavingsPlanUpfrontFee')
                   THEN 0
               WHEN "lineItem/LineItemType" = 'DiscountedUsage'
                   THEN TRY_CAST("reservation/EffectiveCost" AS DOUBLE)
               WHEN "lineItem/LineItemType" = 'RIFee'
                   THEN TRY_CAST("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod" AS DOUBLE)
                        + TRY_CAST("reservation/UnusedRecurringFee" AS DOUBLE)
               WHEN "lineItem/LineItemType" = 'Fee'
                    AND coalesce("reservation/ReservationARN", '') <> '' THEN 0
               ELSE TRY_CAST("lineItem/UnblendedCost" AS DOUBLE)
           END) AS amortized
    FROM cur
    WHERE coalesce("lineItem/Operation", '') NOT IN ('EKSPod-EC2', 'ECSTask-EC2')
    GROUP BY day ORDER BY day
"""


def _manifest(out: Path, period: str, report: str = REPORT) -> dict:
    path = out / "aws-cur" / report / period / f"{report}-Manifest.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _resolve(out: Path, key: str) -> Path:
    """A report key by its `<report>/<period>/<assemblyId>/<file>` suffix, under the landing."""
    return out.joinpath("aws-cur", *key.split("/")[-4:])


def _current_files(out: Path, report: str = REPORT) -> list[Path]:
    return [
        _resolve(out, key)
        for period in DAYS_PER_PERIOD
        for key in _manifest(out, period, report)["reportKeys"]
    ]


def _csv_reader(files: list[Path]) -> str:
    paths = "[" + ", ".join(f"'{f.as_posix()}'" for f in files) + "]"
    return (
        f"read_csv({paths}, header = true, delim = ',', quote = '\"', escape = '\"', "
        "all_varchar = true, compression = 'gzip')"
    )


def _connect(files: list[Path]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW cur AS SELECT * FROM {_csv_reader(files)}")
    return con


@pytest.fixture(scope="module")
def cur(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CurSampleSummary]:
    out = tmp_path_factory.mktemp("cur")
    return out, generate_aws_cur(out, START, DAYS, ROWS_PER_DAY, SEED)


@pytest.fixture(scope="module")
def con(cur: tuple[Path, CurSampleSummary]) -> duckdb.DuckDBPyConnection:
    return _connect(_current_files(cur[0]))


def test_layout_manifest_points_at_newest_assembly_and_keys_resolve(cur) -> None:
    out, summary = cur
    # January: old + new assembly, February: one.
    assert len(summary.assemblies) == 3
    assert [Path(a).parent.name for a in summary.assemblies] == [JANUARY, JANUARY, FEBRUARY]
    assert all(UUID.match(Path(a).name) for a in summary.assemblies)
    assert summary.restated_period == JANUARY
    for period, newest in ((JANUARY, summary.assemblies[1]), (FEBRUARY, summary.assemblies[2])):
        manifest = _manifest(out, period)
        assert manifest["assemblyId"] == Path(newest).name
        assert manifest["reportName"] == REPORT
        assert manifest["contentType"] == "text/csv"
        assert manifest["compression"] == "GZIP"
        assert manifest["charset"] == "UTF-8"
        assert manifest["bucket"] == "example-cur-bucket"
        assert manifest["additionalArtifactKeys"] == []
        assert re.fullmatch(r"\d{12}", manifest["account"])
        start, end = period.split("-")
        assert manifest["billingPeriod"] == {
            "start": f"{start}T000000.000Z",
            "end": f"{end}T000000.000Z",
        }
        # Keys carry the S3 report prefix, not the landing folder: resolve them by suffix.
        assembly_dir = out / newest
        for index, key in enumerate(manifest["reportKeys"], start=1):
            assert (
                key == f"cur/{REPORT}/{period}/{manifest['assemblyId']}/{REPORT}-{index:05d}.csv.gz"
            )
            assert not key.startswith("aws-cur/")
            assert _resolve(out, key).is_file()
        listed = {key.rsplit("/", 1)[1] for key in manifest["reportKeys"]}
        assert {p.name for p in assembly_dir.iterdir()} == listed
        # The manifest is written after every file it lists.
        manifest_path = out / "aws-cur" / REPORT / period / f"{REPORT}-Manifest.json"
        assert all(
            manifest_path.stat().st_mtime_ns >= _resolve(out, k).stat().st_mtime_ns
            for k in manifest["reportKeys"]
        )
        header = _header(_resolve(out, manifest["reportKeys"][0]))
        assert [f"{c['category']}/{c['name']}" for c in manifest["columns"]] == header
    # AWS leaves the old assembly in place; the manifest just stops pointing at it.
    old = out / summary.assemblies[0]
    old_parts = sorted(old.glob(f"{REPORT}-*.csv.gz"))
    assert [p.name for p in old_parts] == [f"{REPORT}-00001.csv.gz"]
    assert _header(old_parts[0]) == _header(_current_files(out)[0])
    assert (
        summary.rows_by_assembly[summary.assemblies[0]]
        == (summary.rows_by_assembly[summary.assemblies[1]])
    )
    assert sorted(p.name for p in (out / "aws-cur" / REPORT / JANUARY).iterdir()) == sorted(
        [
            Path(summary.assemblies[0]).name,
            Path(summary.assemblies[1]).name,
            f"{REPORT}-Manifest.json",
        ]
    )
    assert sum(summary.rows_by_assembly.values()) == summary.total_rows


def _header(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.readline().rstrip("\n").split(",")


def _all_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_writes_identical_bytes_and_another_seed_does_not(cur, tmp_path: Path) -> None:
    out, summary = cur
    again = generate_aws_cur(tmp_path / "again", START, DAYS, ROWS_PER_DAY, SEED)
    assert again.assemblies == summary.assemblies
    assert _all_bytes(tmp_path / "again") == _all_bytes(out)
    other = generate_aws_cur(tmp_path / "other", START, DAYS, ROWS_PER_DAY, SEED + 1)
    assert other.assemblies != summary.assemblies
    first = _current_files(tmp_path / "other")[0]
    assert first.read_bytes() != _current_files(out)[0].read_bytes()


def test_row_counts_follow_rows_per_day(cur, con) -> None:
    _, summary = cur
    per_day = con.execute(
        'SELECT substr("lineItem/UsageStartDate", 1, 10) AS d, count(*) FROM cur GROUP BY d'
    ).fetchall()
    assert len(per_day) == DAYS
    # About 2,000 rows per charge day (+/- 3%: fixed rows depend on the day's commitments).
    assert all(1_940 <= n <= 2_060 for _, n in per_day), per_day
    assert summary.total_rows == sum(summary.rows_by_assembly.values())
    assert (
        summary.total_rows
        == sum(n for _, n in per_day) + summary.rows_by_assembly[summary.assemblies[0]]
    )


def test_csv_has_aws_columns_case_sensitive_tags_and_aws_text_formats(cur, con) -> None:
    out, _ = cur
    header = _header(_current_files(out)[0])
    assert len(header) == 129  # 94 of the real sample + resource id, ARNs, tags, split cost, ...
    real = REAL_SAMPLES / "aws_legacy_cur_anonymized.csv"
    sample_header = real.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert len(sample_header) == 94
    assert set(sample_header) <= set(header)
    assert "resourceTags/user:Team" in header and "resourceTags/user:team" in header
    assert not any(h.startswith("lineItem/Net") or "/Net" in h for h in header)
    # DuckDB names columns case-insensitively: the second tag column becomes `..._1`.
    described = [d[0] for d in con.execute("SELECT * FROM cur LIMIT 0").description]
    assert "resourceTags/user:team_1" in described
    upper, lower, both = con.execute(
        'SELECT count("resourceTags/user:Team"), count("resourceTags/user:team_1"), '
        'count(*) FILTER ("resourceTags/user:Team" IS NOT NULL '
        'AND "resourceTags/user:team_1" IS NOT NULL) FROM cur'
    ).fetchone()
    assert upper > 0 and lower > 0 and both == 0
    # Java-style numbers (1.0, 0.0416, 4.0E-7), .000Z timestamps, daily interval text.
    numbers = con.execute(
        'SELECT DISTINCT "lineItem/UnblendedCost" FROM cur UNION SELECT DISTINCT '
        '"lineItem/UnblendedRate" FROM cur WHERE "lineItem/UnblendedRate" IS NOT NULL'
    ).fetchall()
    assert all(re.fullmatch(r"-?\d+\.\d+(E-?\d+)?", v) for (v,) in numbers), numbers[:5]
    assert any("E-" in v for (v,) in numbers)
    assert ("0.0",) in numbers
    bad_times = con.execute(
        'SELECT count(*) FROM cur WHERE NOT regexp_full_match("lineItem/UsageStartDate", '
        "'\\d{4}-\\d\\d-\\d\\dT\\d\\d:00:00\\.000Z') OR NOT regexp_full_match("
        "\"identity/TimeInterval\", '\\d{4}-\\d\\d-\\d\\dT00:00:00Z/\\d{4}-\\d\\d-\\d\\dT00:00:00Z')"
    ).fetchone()[0]
    assert bad_times == 0
    # Text with commas is quoted only where needed (as in the real file).
    with gzip.open(_current_files(out)[0], "rt", encoding="utf-8") as f:
        f.readline()
        line = f.readline()
    assert ',"Amazon Web Services, Inc.",AWS,Anniversary,' in line


def test_every_line_item_type_each_month_and_split_cost_rows(con) -> None:
    rows = con.execute(
        'SELECT "bill/BillingPeriodStartDate", list(DISTINCT "lineItem/LineItemType"), '
        "count(*) FILTER (\"lineItem/Operation\" = 'EKSPod-EC2'), "
        "count(*) FILTER (\"lineItem/Operation\" = 'ECSTask-EC2') FROM cur GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in rows] == ["2025-01-01T00:00:00.000Z", "2025-02-01T00:00:00.000Z"]
    for _, types, eks, ecs in rows:
        assert set(types) >= LINE_ITEM_TYPES, LINE_ITEM_TYPES - set(types)
        assert eks > 0 and ecs > 0
    # Split rows duplicate part of an instance's cost: their parent is an instance billed as Usage.
    orphans = con.execute(
        """SELECT count(*) FROM cur s WHERE s."lineItem/Operation" IN ('EKSPod-EC2', 'ECSTask-EC2')
           AND (s."splitLineItem/ParentResourceId" NOT IN (
                   SELECT "lineItem/ResourceId" FROM cur WHERE "lineItem/LineItemType" = 'Usage'
                   AND "lineItem/Operation" = 'RunInstances')
                OR TRY_CAST(s."lineItem/UnblendedCost" AS DOUBLE)
                   <> TRY_CAST(s."splitLineItem/SplitCost" AS DOUBLE))"""
    ).fetchone()[0]
    assert orphans == 0
    fee_without_arn = con.execute(
        "SELECT count(*) FROM cur WHERE \"lineItem/LineItemType\" = 'Fee' "
        'AND "reservation/ReservationARN" IS NULL'
    ).fetchone()[0]
    assert fee_without_arn == 0


def test_account_ids_keep_leading_zeros_and_invoice_ids_mark_final_months(con) -> None:
    ids = [
        v
        for (v,) in con.execute(
            'SELECT DISTINCT "lineItem/UsageAccountId" FROM cur UNION '
            'SELECT DISTINCT "bill/PayerAccountId" FROM cur'
        ).fetchall()
    ]
    assert all(re.fullmatch(r"\d{12}", v) for v in ids), ids
    assert any(v.startswith("0") for v in ids)
    assert len(ids) == 5  # the payer and 4 linked accounts at 2,000 rows/day
    invoices = dict(
        con.execute(
            'SELECT "bill/BillingPeriodStartDate", list(DISTINCT coalesce("bill/InvoiceId", \'\')) '
            "FROM cur GROUP BY 1"
        ).fetchall()
    )
    january, february = invoices["2025-01-01T00:00:00.000Z"], invoices["2025-02-01T00:00:00.000Z"]
    assert len(january) == 1 and re.fullmatch(r"\d{10}", january[0])  # final: one invoice id
    assert february == [""]  # the last month is still open


def test_savings_plan_negation_offsets_covered_usage_per_plan(con) -> None:
    rows = con.execute(
        """SELECT "savingsPlan/SavingsPlanARN",
                  sum(TRY_CAST("lineItem/UnblendedCost" AS DOUBLE))
                      FILTER ("lineItem/LineItemType" = 'SavingsPlanCoveredUsage'),
                  sum(TRY_CAST("lineItem/UnblendedCost" AS DOUBLE))
                      FILTER ("lineItem/LineItemType" = 'SavingsPlanNegation'),
                  count(*) FILTER ("lineItem/LineItemType" = 'SavingsPlanCoveredUsage'),
                  count(*) FILTER ("lineItem/LineItemType" = 'SavingsPlanNegation')
           FROM cur WHERE "savingsPlan/SavingsPlanARN" IS NOT NULL GROUP BY 1"""
    ).fetchall()
    # One 3-year Compute Savings Plan plus one small plan bought in each of the 2 months.
    assert len(rows) == 3
    for arn, covered, negation, n_covered, n_negation in rows:
        assert arn.startswith("arn:aws:savingsplans::")
        assert covered > 0 and n_covered == n_negation
        assert negation == pytest.approx(-covered, abs=1e-6)
    # The daily recurring fee row reports the commitment used by that day's covered usage.
    mismatched = con.execute(
        """WITH used AS (
               SELECT "savingsPlan/SavingsPlanARN" AS arn, substr("lineItem/UsageStartDate", 1, 10) AS d,
                      sum(TRY_CAST("savingsPlan/SavingsPlanEffectiveCost" AS DOUBLE)) AS effective
               FROM cur WHERE "lineItem/LineItemType" = 'SavingsPlanCoveredUsage' GROUP BY ALL),
           fee AS (
               SELECT "savingsPlan/SavingsPlanARN" AS arn, substr("lineItem/UsageStartDate", 1, 10) AS d,
                      TRY_CAST("savingsPlan/UsedCommitment" AS DOUBLE) AS used,
                      TRY_CAST("savingsPlan/TotalCommitmentToDate" AS DOUBLE) AS total
               FROM cur WHERE "lineItem/LineItemType" = 'SavingsPlanRecurringFee')
           SELECT count(*) FROM fee FULL JOIN used USING (arn, d)
           WHERE abs(fee.used - used.effective) > 1e-6 OR fee.used > fee.total
              OR fee.used IS NULL OR used.effective IS NULL"""
    ).fetchone()[0]
    assert mismatched == 0


def test_reservation_rows_are_consistent(con) -> None:
    covered = con.execute(
        """SELECT count(*), max(abs(TRY_CAST("lineItem/UnblendedCost" AS DOUBLE))),
                  min(TRY_CAST("reservation/EffectiveCost" AS DOUBLE))
           FROM cur WHERE "lineItem/LineItemType" = 'DiscountedUsage'"""
    ).fetchone()
    assert covered[0] > 0 and covered[1] == 0 and covered[2] > 0
    # RIFee: one row per reservation and month; unused amounts never exceed the period's fees.
    fees = con.execute(
        """SELECT "bill/BillingPeriodStartDate", "reservation/ReservationARN",
                  TRY_CAST("reservation/UnusedQuantity" AS DOUBLE) AS unused,
                  TRY_CAST("lineItem/UsageAmount" AS DOUBLE) AS hours,
                  TRY_CAST("reservation/UnusedRecurringFee" AS DOUBLE) AS unused_fee,
                  TRY_CAST("lineItem/UnblendedCost" AS DOUBLE) AS fee
           FROM cur WHERE "lineItem/LineItemType" = 'RIFee'"""
    ).fetchall()
    # 2 long-running reservations in both months + one bought each month (Jan: 3, Feb: 4).
    assert len(fees) == 7
    assert len({(f[0], f[1]) for f in fees}) == 7
    for _, _, unused, hours, unused_fee, fee in fees:
        assert 0 <= unused < hours and 0 <= unused_fee <= fee


def test_amortized_cost_per_day_is_plausible(con) -> None:
    for day, unblended, amortized in con.execute(AMORTIZED).fetchall():
        ratio = amortized / unblended
        if day in FIRST_DAYS:
            # The month's RIFee rows and the upfront fees of the commitments bought that day are
            # billed in full on it, but amortized away: amortized is clearly lower.
            assert 0.5 <= ratio <= 0.95, (day, unblended, amortized)
        else:
            # Other days: amortized adds the spread upfront of RIs and Savings Plans.
            assert 1.0 <= ratio <= 1.1, (day, unblended, amortized)


def test_restatement_changes_only_the_restated_days(cur) -> None:
    out, summary = cur
    old, new = (sorted((out / a).glob("*.csv.gz")) for a in summary.assemblies[:2])
    assert 1 <= len(summary.restated_days) <= 3
    assert all(date(2025, 1, 27) <= d <= date(2025, 1, 31) for d in summary.restated_days)
    con = duckdb.connect()
    per_day = {}
    for label, files in (("old", old), ("new", new)):
        per_day[label] = {
            day: (n, cost, digest)
            for day, n, cost, digest in con.execute(
                f"""SELECT substr("lineItem/UsageStartDate", 1, 10) AS d, count(*),
                           sum(TRY_CAST("lineItem/UnblendedCost" AS DOUBLE)), sum(hash(t))
                    FROM {_csv_reader(files)} t GROUP BY d"""
            ).fetchall()
        }
    assert per_day["old"].keys() == per_day["new"].keys()
    assert len(per_day["old"]) == DAYS_PER_PERIOD[JANUARY]
    restated = {d.isoformat() for d in summary.restated_days}
    for day, (n_old, cost_old, digest_old) in per_day["old"].items():
        n_new, cost_new, digest_new = per_day["new"][day]
        assert n_old == n_new  # same rows, late usage raises amounts
        if day in restated:
            assert cost_new > cost_old * 1.02, day
        else:
            assert (cost_new, digest_new) == (cost_old, digest_old), day


def test_parquet_flavour_uses_athena_names(tmp_path: Path) -> None:
    summary = generate_aws_cur(tmp_path, date(2025, 3, 1), 2, 500, seed=3, flavour="parquet")
    manifest = _manifest(tmp_path, "20250301-20250401")
    assert manifest["contentType"] == "Parquet"
    assert manifest["assemblyId"] == Path(summary.assemblies[-1]).name
    files = [_resolve(tmp_path, key) for key in manifest["reportKeys"]]
    assert [f.name for f in files] == [f"{REPORT}-00001.snappy.parquet"]
    schema = pq.read_schema(files[0])
    names = schema.names
    assert len(names) == 129
    assert all(re.fullmatch(r"[a-z0-9_]+", n) for n in names)
    for expected in (
        "identity_line_item_id",
        "line_item_unblended_cost",
        "line_item_usage_account_id",
        "resource_tags_user_team",
        "resource_tags_user_team_1",  # `user:team` after `user:Team`: same Athena name
        "resource_tags_user_cost_center",
        "savings_plan_savings_plan_a_r_n",
        "reservation_reservation_a_r_n",
        "split_line_item_split_cost",
        "pricing_public_on_demand_cost",
    ):
        assert expected in names, expected
    assert str(schema.field("line_item_unblended_cost").type) == "double"
    assert str(schema.field("line_item_unblended_rate").type) == "string"  # as Athena's CUR
    assert str(schema.field("line_item_usage_start_date").type) == "timestamp[ms]"
    con = duckdb.connect()
    paths = "[" + ", ".join(f"'{f.as_posix()}'" for f in files) + "]"
    types, accounts = con.execute(
        f"SELECT list(DISTINCT line_item_line_item_type), list(DISTINCT line_item_usage_account_id) "
        f"FROM read_parquet({paths})"
    ).fetchone()
    assert set(types) >= LINE_ITEM_TYPES
    assert all(re.fullmatch(r"\d{12}", a) for a in accounts)
    assert any(a.startswith("0") for a in accounts)


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="flavour"):
        generate_aws_cur(tmp_path, START, 1, 10, 1, flavour="orc")
    with pytest.raises(ValueError, match="days"):
        generate_aws_cur(tmp_path, START, 0, 10, 1)
    with pytest.raises(ValueError, match="report"):
        generate_aws_cur(tmp_path, START, 1, 10, 1, report="a/b")


SPEED_SCRIPT = """
import json, resource, sys
from datetime import date
from pathlib import Path
from finops_assets.samples.aws_cur import generate_aws_cur
summary = generate_aws_cur(Path(sys.argv[1]), date(2025, 3, 1), 1, 1_000_000, seed=1)
print(json.dumps({
    "rows": summary.total_rows,
    "restated": [d.isoformat() for d in summary.restated_days],
    "files": summary.files,
    "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


@pytest.mark.timing
def test_one_million_cur_rows_per_day_generate_quickly(tmp_path: Path) -> None:
    # Not marked slow: it must stay in the normal suite (2 cores). Own process, so the peak RSS
    # is the generator's alone.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", SPEED_SCRIPT, str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    elapsed = time.perf_counter() - began
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert elapsed < 60, f"1M CUR rows took {elapsed:.1f} s"
    assert result["max_rss_kib"] < 3 * 1024 * 1024, result["max_rss_kib"]
    # One day, in the old and the new assembly of its (restated) month.
    assert result["restated"] == ["2025-03-01"]
    assert 1_990_000 <= result["rows"] <= 2_010_000
    parts = [f for f in result["files"] if f.endswith(".csv.gz")]
    assert len(parts) == 6  # ~1M rows per assembly in parts of at most 500,000 rows
    manifest = _manifest(tmp_path, "20250301-20250401")
    counted = (
        duckdb.connect()
        .execute(
            "SELECT count(*) FROM "
            + _csv_reader([_resolve(tmp_path, k) for k in manifest["reportKeys"]])
        )
        .fetchone()[0]
    )
    assert counted == result["rows"] // 2

"""raw/aws_cur → core/cost_facts on the real anonymized legacy CUR, delivered as AWS delivers it."""

import csv
import gzip
import io
import json
import shutil
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from finops_assets_tests.conftest import failed_checks, failure_messages, load_once
from finops_assets_tests.paths import REAL_SAMPLES

REAL_CUR = REAL_SAMPLES / "aws_legacy_cur_anonymized.csv"
REPORT = "finops-cur"
PERIOD = "20231101-20231201"
REAL_TOTAL = Decimal("1.682308697400")


def deliver_cur(landing: Path, assembly: str, text: str, parts: int = 1) -> Path:
    """Write `text` (a CUR CSV) as gzipped parts of one assembly, then point the period manifest
    at it, the way AWS does (reportKeys carry the bucket's own S3 prefix)."""
    period = landing / "aws-cur" / REPORT / PERIOD
    folder = period / assembly
    folder.mkdir(parents=True)
    header, *rows = text.splitlines(keepends=True)
    keys = []
    for n in range(parts):
        name = f"{REPORT}-{n + 1:05d}.csv.gz"
        with gzip.open(folder / name, "wt", newline="") as f:
            f.write(header + "".join(rows[n::parts]))
        keys.append(f"billing/cur/{REPORT}/{PERIOD}/{assembly}/{name}")
    manifest = {
        "assemblyId": assembly,
        "reportKeys": keys,
        "reportName": REPORT,
        "billingPeriod": {"start": "20231101T000000.000Z", "end": "20231201T000000.000Z"},
    }
    (period / f"{REPORT}-Manifest.json").write_text(json.dumps(manifest))
    return folder


def edited_cur(edit) -> str:
    """The real CUR with `edit(row_dict)` applied to every row."""
    reader = csv.DictReader(io.StringIO(REAL_CUR.read_text()))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\n")
    writer.writeheader()
    for row in reader:
        edit(row)
        writer.writerow(row)
    return out.getvalue()


def deliver_real_cur(landing: Path) -> None:
    deliver_cur(landing, "assembly-1", REAL_CUR.read_text(), parts=2)


@pytest.fixture
def cur_pipeline(pipeline):
    deliver_real_cur(pipeline.landing)
    return pipeline


@pytest.fixture(scope="module")
def cur_loaded_once(tmp_path_factory):
    return load_once(
        tmp_path_factory.mktemp("cur_loaded"), deliver_real_cur, "2023-11-01", "2023-11-30"
    )


@pytest.fixture
def cur_loaded(pipeline, cur_loaded_once):
    """The real CUR month delivered and loaded through every asset (a copy for this test)."""
    return pipeline.restore(cur_loaded_once)


def facts_total(pipeline):
    return pipeline.query("SELECT count(*), sum(BilledCost) FROM core.cost_facts")[0]


def test_real_cur_keeps_every_cent(cur_pipeline):
    result = cur_pipeline.materialize("2023-11-01", "2023-11-30")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert facts_total(cur_pipeline) == (1281, REAL_TOTAL)
    assert cur_pipeline.query("SELECT sum(billed_cost) FROM mart.daily_cost_by_team") == [
        (REAL_TOTAL,)
    ]
    assert cur_pipeline.query(
        "SELECT DISTINCT BillingAccountId, ProviderName, BillingCurrency FROM core.cost_facts"
    ) == [("123412340534", "AWS", "USD")]
    assert cur_pipeline.query(
        "SELECT ChargeCategory, count(*) FROM core.cost_facts GROUP BY 1 ORDER BY 1"
    ) == [("Tax", 12), ("Usage", 1269)]


def test_a_new_assembly_replaces_the_month(cur_loaded):
    def double_tax(row):
        if row["lineItem/LineItemType"] == "Tax":
            row["lineItem/UnblendedCost"] = str(Decimal(row["lineItem/UnblendedCost"]) * 2)

    deliver_cur(cur_loaded.landing, "assembly-2", edited_cur(double_tax))
    result = cur_loaded.materialize("2023-11-01", "2023-11-30")
    assert result.success, failure_messages(result)
    # Σ Tax in the sample is 0.08: the restated month carries it twice, and no row of assembly-1.
    assert facts_total(cur_loaded) == (1281, REAL_TOTAL + Decimal("0.08"))
    assert cur_loaded.query("SELECT DISTINCT x_DeliveryId FROM raw.aws_cur") == [("assembly-2",)]


def test_manifest_naming_a_missing_file_keeps_the_month(cur_loaded):
    folder = deliver_cur(cur_loaded.landing, "assembly-2", REAL_CUR.read_text())
    (folder / f"{REPORT}-00001.csv.gz").unlink()
    result = cur_loaded.materialize("2023-11-01", "2023-11-30")
    assert not result.success
    assert "but the file is missing" in failure_messages(result)
    assert facts_total(cur_loaded) == (1281, REAL_TOTAL)


def test_manifest_key_escaping_the_landing_root_is_refused(cur_loaded):
    manifest = cur_loaded.landing / "aws-cur" / REPORT / PERIOD / f"{REPORT}-Manifest.json"
    data = json.loads(manifest.read_text())
    data["reportKeys"] = [f"cur/{REPORT}/{PERIOD}/assembly-1/../../../../../etc/passwd.csv.gz"]
    manifest.write_text(json.dumps(data))
    result = cur_loaded.materialize("2023-11-15")
    assert not result.success
    assert "not inside" in failure_messages(result)
    assert facts_total(cur_loaded) == (1281, REAL_TOTAL)


def test_renamed_cost_column_is_a_clear_error(cur_loaded):
    text = REAL_CUR.read_text().replace("lineItem/UnblendedCost", "lineItem/UnblendedCostUSD", 1)
    deliver_cur(cur_loaded.landing, "assembly-2", text)
    result = cur_loaded.materialize("2023-11-01", "2023-11-30")
    assert not result.success
    message = failure_messages(result)
    assert "assembly-2/finops-cur-00001.csv.gz" in message and "UnblendedCost" in message
    assert facts_total(cur_loaded) == (1281, REAL_TOTAL)


def test_unknown_line_item_type_is_kept_at_unblended_cost_and_counted(cur_pipeline):
    def rename_tax(row):
        if row["lineItem/LineItemType"] == "Tax":
            row["lineItem/LineItemType"] = "FutureChargeType"

    shutil.rmtree(cur_pipeline.landing / "aws-cur")
    deliver_cur(cur_pipeline.landing, "assembly-1", edited_cur(rename_tax))
    result = cur_pipeline.materialize("2023-11-01", "2023-11-30")
    assert result.success, failure_messages(result)
    assert facts_total(cur_pipeline) == (1281, REAL_TOTAL)
    assert cur_pipeline.query(
        "SELECT count(*) FROM core.cost_facts WHERE x_UnknownLineItemType"
    ) == [(12,)]
    counted = sum(
        e.materialization.metadata["unknown_line_item_rows"].value
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(["core", "cost_facts"])
        and "unknown_line_item_rows" in e.materialization.metadata
    )
    assert counted == 12


def test_refund_billed_in_next_months_report_lands_on_its_usage_day(cur_pipeline):
    """A November refund delivered in December's report belongs to November's partition."""
    rows = list(csv.DictReader(io.StringIO(REAL_CUR.read_text())))
    refund = dict(rows[0])
    refund.update(
        {
            "identity/LineItemId": "refund-1",
            "bill/BillingPeriodStartDate": "2023-12-01T00:00:00.000Z",
            "bill/BillingPeriodEndDate": "2024-01-01T00:00:00.000Z",
            "lineItem/LineItemType": "Refund",
            "lineItem/UsageStartDate": "2023-11-10T00:00:00.000Z",
            "lineItem/UsageEndDate": "2023-11-11T00:00:00.000Z",
            "lineItem/UnblendedCost": "-0.05",
            "pricing/publicOnDemandCost": "",
        }
    )
    december = cur_pipeline.landing / "aws-cur" / REPORT / "20231201-20240101"
    (december / "dec-1").mkdir(parents=True)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerow(refund)
    with gzip.open(december / "dec-1" / f"{REPORT}-00001.csv.gz", "wt", newline="") as f:
        f.write(out.getvalue())
    (december / f"{REPORT}-Manifest.json").write_text(
        json.dumps(
            {
                "assemblyId": "dec-1",
                "reportKeys": [f"cur/{REPORT}/20231201-20240101/dec-1/{REPORT}-00001.csv.gz"],
            }
        )
    )
    result = cur_pipeline.materialize("2023-11-01", "2023-11-30")
    assert result.success, failure_messages(result)
    assert facts_total(cur_pipeline) == (1282, REAL_TOTAL - Decimal("0.05"))
    assert cur_pipeline.query(
        "SELECT ChargeCategory, ChargeClass, charge_date::VARCHAR FROM core.cost_facts WHERE x_LineItemType = 'Refund'"
    ) == [("Credit", "Correction", "2023-11-10")]


@pytest.mark.parametrize("flavour", ["csv", "parquet"])
def test_generated_cur_month_reconciles(pipeline, flavour):
    """A generated month with every line item type, a restated assembly and split rows: all
    checks pass and Σ BilledCost is the current assembly's Σ unblended without split rows,
    computed here straight from the files the manifest names."""
    from datetime import date

    import duckdb

    from finops_assets.samples.aws_cur import generate_aws_cur

    generate_aws_cur(pipeline.landing, date(2025, 1, 1), 31, 600, 9, flavour=flavour)
    result = pipeline.materialize("2025-01-01", "2025-01-31")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    (reconciled,) = [  # a single-run backfill checks the whole invoice month at once
        e.metadata
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name == "reconciles_with_aws_cur"
    ]
    assert (reconciled["mismatches"].value, reconciled["accounts"].value) == (0, 1)

    period = pipeline.landing / "aws-cur" / "finops-cur" / "20250101-20250201"
    manifest = json.loads((period / "finops-cur-Manifest.json").read_text())
    files = sorted(str(p) for p in (period / manifest["assemblyId"]).iterdir())
    if flavour == "csv":
        source = f"read_csv({files}, all_varchar = true, header = true)"
        cost, operation = '"lineItem/UnblendedCost"', '"lineItem/Operation"'
    else:
        source = f"read_parquet({files})"
        cost, operation = "line_item_unblended_cost", "line_item_operation"
    (expected,) = duckdb.sql(
        f"SELECT sum(CAST({cost} AS DECIMAL(38, 12))) FROM {source} "
        f"WHERE coalesce({operation}, '') NOT IN ('EKSPod-EC2', 'ECSTask-EC2')"
    ).fetchall()[0]
    assert pipeline.query("SELECT sum(BilledCost) FROM core.cost_facts") == [(expected,)]
    assert pipeline.query("SELECT sum(billed_cost) FROM mart.daily_cost_by_team") == [(expected,)]
    assert pipeline.query("SELECT DISTINCT x_DeliveryId FROM raw.aws_cur") == [
        (manifest["assemblyId"],)
    ]
    # Every line item type made it through, and none was unknown.
    types = {t for (t,) in pipeline.query("SELECT DISTINCT x_LineItemType FROM core.cost_facts")}
    assert {
        "Usage",
        "DiscountedUsage",
        "SavingsPlanCoveredUsage",
        "RIFee",
        "Tax",
        "Refund",
    } <= types
    assert pipeline.query("SELECT count(*) FROM core.cost_facts WHERE x_UnknownLineItemType") == [
        (0,)
    ]
    # AWS "user:" tag keys reach the owner dimensions.
    assert (
        pipeline.query("SELECT count(*) FROM mart.daily_cost_by_team WHERE team <> '__untagged__'")[
            0
        ][0]
        > 0
    )

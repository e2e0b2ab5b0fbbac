"""raw/azure_cost → core/cost_facts: the real anonymized EA cost details, delivered the way an
Azure export writes them, and a generated month with every charge type."""

import gzip
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_assets.samples.azure import MCA_ACCOUNT
from finops_assets_tests.conftest import failed_checks, failure_messages, load_once
from finops_assets_tests.paths import REAL_SAMPLES

REAL_AZURE = REAL_SAMPLES / "azure_ea_cost_details_anonymized.csv"
# Σ CostInBillingCurrency of the 27 rows: 1.26136926505726 in the file, 1.261369265057 once each
# value is stored as the warehouse's DECIMAL(38, 12) money type (1.2613692651 to 10 places).
REAL_TOTAL = Decimal("1.261369265057")
SCOPE = "ea-12345678"
EXPORT = "daily-actual"
RANGE = "20230901-20230930"


def deliver_azure(
    landing: Path,
    run_id: str,
    parts: dict[str, bytes],
    *,
    export: str = EXPORT,
    export_type: str = "ActualCost",
    date_range: str = RANGE,
    submitted: str = "2023-10-02T06:00:00Z",
    blobs: list[str] | None = None,
) -> Path:
    """Write the parts, then the manifest beside them (Azure writes it last). Blob names are the
    full container paths, as Azure writes them."""
    folder = landing / "azure" / SCOPE / export / date_range / run_id
    folder.mkdir(parents=True)
    for name, data in parts.items():
        (folder / name).write_bytes(data)
    start = f"{date_range[:4]}-{date_range[4:6]}-{date_range[6:8]}T00:00:00"
    manifest = {
        "manifestVersion": "2024-04-01",
        "dataRowCount": None,
        "exportConfig": {"exportName": export, "type": export_type, "dataVersion": "2021-10-01"},
        "runInfo": {"runId": run_id, "startDate": start, "submittedTime": submitted},
        "blobs": [
            {"blobName": name}
            for name in (
                blobs or [f"costexports/{export}/{date_range}/{run_id}/{n}" for n in parts]
            )
        ],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def gz(text: str) -> bytes:
    return gzip.compress(text.encode())


def deliver_real_export(landing: Path) -> None:
    deliver_azure(landing, "run-1", {"part_0_0001.csv.gz": gz(REAL_AZURE.read_text())})


@pytest.fixture
def real_pipeline(pipeline):
    deliver_real_export(pipeline.landing)
    return pipeline


@pytest.fixture(scope="module")
def real_loaded_once(tmp_path_factory):
    return load_once(
        tmp_path_factory.mktemp("azure_loaded"), deliver_real_export, "2023-09-01", "2023-09-30"
    )


@pytest.fixture
def real_loaded(pipeline, real_loaded_once):
    """The real EA month delivered and loaded through every asset (a copy for this test)."""
    return pipeline.restore(real_loaded_once)


def facts_total(pipeline) -> tuple:
    return pipeline.query("SELECT count(*), sum(BilledCost) FROM core.cost_facts")[0]


def test_real_ea_export_keeps_every_cent(real_pipeline):
    # The expected total straight from the file, on DuckDB's own path (no loader involved).
    (from_file,) = duckdb.sql(
        "SELECT sum(CAST(CostInBillingCurrency AS DECIMAL(38, 12))) "
        f"FROM read_csv('{REAL_AZURE}', header = true, all_varchar = true)"
    ).fetchall()[0]
    assert from_file == REAL_TOTAL
    result = real_pipeline.materialize("2023-09-01", "2023-09-30")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert facts_total(real_pipeline) == (27, REAL_TOTAL)
    assert round(REAL_TOTAL, 10) == Decimal("1.2613692651")
    # Actual export only: EffectiveCost = BilledCost (nothing to amortize over), flagged.
    assert real_pipeline.query(
        "SELECT sum(EffectiveCost), any_value(x_CostBasis) FROM core.cost_facts"
    ) == [(REAL_TOTAL, "actual_only")]
    assert real_pipeline.query("SELECT sum(billed_cost) FROM mart.daily_cost_by_team") == [
        (REAL_TOTAL,)
    ]
    # M/D/YYYY dates: every charge on 2 September, one day long; the billing month is September.
    assert real_pipeline.query(
        "SELECT DISTINCT charge_date::VARCHAR, ChargePeriodStart::VARCHAR, "
        "ChargePeriodEnd::VARCHAR, BillingPeriodStart::VARCHAR, BillingPeriodEnd::VARCHAR, "
        "BillingAccountId, BillingCurrency, ProviderName FROM core.cost_facts"
    ) == [
        (
            "2023-09-02",
            "2023-09-02 00:00:00+00",
            "2023-09-03 00:00:00+00",
            "2023-09-01 00:00:00+00",
            "2023-10-01 00:00:00+00",
            "12345678",
            "CAD",
            "Microsoft",
        )
    ]
    # Braces-less tags became a JSON object.
    assert real_pipeline.query("SELECT DISTINCT Tags FROM core.cost_facts") == [
        ('{"tagA": "valueA","tagB": "valueB","tagC": "valueC"}',)
    ]
    assert real_pipeline.query("SELECT DISTINCT x_Schema, x_DeliveryId FROM raw.azure_cost") == [
        ("EA", "run-1")
    ]


def test_a_newer_run_replaces_the_month(real_loaded):
    # Run 2 restates the month with one row less (the first data row dropped).
    header, _first, *rest = REAL_AZURE.read_text().splitlines(keepends=True)
    (dropped,) = duckdb.sql(
        "SELECT CAST(CostInBillingCurrency AS DECIMAL(38, 12)) "
        f"FROM read_csv('{REAL_AZURE}', header = true, all_varchar = true) LIMIT 1"
    ).fetchall()[0]
    assert dropped == Decimal("0.000305367000")
    deliver_azure(
        real_loaded.landing,
        "run-2",
        {"part_0_0001.csv.gz": gz(header + "".join(rest))},
        submitted="2023-10-03T06:00:00Z",
    )
    result = real_loaded.materialize("2023-09-01", "2023-09-30")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    assert facts_total(real_loaded) == (26, REAL_TOTAL - dropped)
    assert real_loaded.query("SELECT DISTINCT x_DeliveryId FROM raw.azure_cost") == [("run-2",)]


def _month_snapshot(pipeline) -> list[tuple]:
    return pipeline.query(
        "SELECT 'raw', count(*), sum(CostInBillingCurrency) FROM raw.azure_cost UNION ALL "
        "SELECT 'facts', count(*), sum(BilledCost) FROM core.cost_facts UNION ALL "
        "SELECT 'mart', sum(row_count), sum(billed_cost) FROM mart.daily_cost_by_team "
        "ORDER BY 1"
    )


def test_manifest_listing_a_missing_blob_keeps_the_month(real_loaded):
    before = _month_snapshot(real_loaded)
    assert before == [("facts", 27, REAL_TOTAL), ("mart", 27, REAL_TOTAL), ("raw", 27, REAL_TOTAL)]
    folder = deliver_azure(
        real_loaded.landing,
        "run-2",
        {"part_0_0001.csv.gz": gz(REAL_AZURE.read_text())},
        submitted="2023-10-03T06:00:00Z",
        blobs=[f"costexports/{EXPORT}/{RANGE}/run-2/part_0_0001.csv.gz", "part_0_0002.csv.gz"],
    )
    result = real_loaded.materialize("2023-09-01", "2023-09-30")
    assert not result.success
    message = failure_messages(result)
    assert str(folder / "manifest.json") in message
    assert "'part_0_0002.csv.gz' but the file is missing" in message
    assert _month_snapshot(real_loaded) == before


def test_blob_escaping_the_landing_root_is_refused(real_loaded):
    before = _month_snapshot(real_loaded)
    folder = deliver_azure(
        real_loaded.landing,
        "run-2",
        {"part_0_0001.csv.gz": gz(REAL_AZURE.read_text())},
        submitted="2023-10-03T06:00:00Z",
        blobs=["../../../../../../etc/passwd.csv.gz"],
    )
    result = real_loaded.materialize("2023-09-02")
    assert not result.success
    message = failure_messages(result)
    assert str(folder / "manifest.json") in message
    assert "'../../../../../../etc/passwd.csv.gz' escapes its run folder" in message
    assert _month_snapshot(real_loaded) == before


def test_renamed_cost_column_is_a_clear_error(real_loaded):
    before = _month_snapshot(real_loaded)
    text = REAL_AZURE.read_text().replace("CostInBillingCurrency", "CostInBillingCurrencyEUR", 1)
    folder = deliver_azure(
        real_loaded.landing,
        "run-2",
        {"part_0_0001.csv.gz": gz(text)},
        submitted="2023-10-03T06:00:00Z",
    )
    result = real_loaded.materialize("2023-09-01", "2023-09-30")
    assert not result.success
    message = failure_messages(result)
    assert str(folder / "part_0_0001.csv.gz") in message
    assert "missing column(s) CostInBillingCurrency" in message
    assert "look like it: CostInBillingCurrencyEUR" in message
    assert "Fix:" in message
    assert _month_snapshot(real_loaded) == before


def test_an_older_broken_run_does_not_block_a_newer_good_one(real_pipeline):
    folder = deliver_azure(
        real_pipeline.landing,
        "run-0",
        {"part_0_0001.csv.gz": gz(REAL_AZURE.read_text())},
        submitted="2023-09-15T06:00:00Z",
    )
    (folder / "part_0_0001.csv.gz").unlink()  # cleaned up after run-1 replaced it
    result = real_pipeline.materialize("2023-09-01", "2023-09-30")
    assert result.success, failure_messages(result)
    assert facts_total(real_pipeline) == (27, REAL_TOTAL)


def test_generated_month_reconciles_through_the_pipeline(pipeline):
    """Actual + Amortized merged (EA names and MCA camelCase names, CSV), and a FocusCost export
    (Parquet): every check passes, BilledCost is the ActualCost exports' Σ and EffectiveCost the
    AmortizedCost exports' Σ, computed here straight from the newest runs' files."""
    from finops_assets.samples.azure import generate_azure_cost

    summary = generate_azure_cost(pipeline.landing, date(2025, 1, 1), 31, 200, 5)
    result = pipeline.materialize("2025-01-01", "2025-01-31")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    (reconciled,) = [
        e.metadata
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name == "reconciles_with_azure_cost"
    ]
    # The EA enrollment, and the MCA billing account both MCA profiles belong to.
    assert (reconciled["mismatches"].value, reconciled["accounts"].value) == (0, 2)

    newest = {}  # per export folder, the run whose manifest was submitted last
    for run in summary.runs:
        manifest = json.loads((pipeline.landing / run / "manifest.json").read_text())
        export = run.rsplit("/", 1)[0]
        if export not in newest or manifest["runInfo"]["submittedTime"] > newest[export][0]:
            newest[export] = (manifest["runInfo"]["submittedTime"], run)
    assert len(newest) == 5

    def sum_of(export: str, column: str) -> Decimal:
        folder = pipeline.landing / newest[export][1]
        files = sorted(str(p) for p in folder.glob("part_*"))
        reader = (
            f"read_parquet({files})"
            if files[0].endswith(".parquet")
            else f"read_csv({files}, header = true, all_varchar = true)"
        )
        return duckdb.sql(
            f"SELECT sum(CAST({column} AS DECIMAL(38, 12))) FROM {reader}"
        ).fetchall()[0][0]

    ea = "azure/ea-100200300"
    billed_eur = sum_of(f"{ea}/daily-actual/20250101-20250131", "CostInBillingCurrency")
    effective_eur = sum_of(f"{ea}/daily-amortized/20250101-20250131", "CostInBillingCurrency")
    focus = "azure/mca-profile-ABCD-EFGH/focus-daily/20250101-20250131"
    focus_usd = sum_of(focus, "BilledCost")
    mca = "azure/mca-profile-IJKL-MNOP-BG7-TGB"
    mca_billed = sum_of(f"{mca}/daily-actual/20250101-20250131", "costInBillingCurrency")
    mca_effective = sum_of(f"{mca}/daily-amortized/20250101-20250131", "costInBillingCurrency")
    assert pipeline.query(
        "SELECT BillingCurrency, sum(BilledCost), sum(EffectiveCost) FROM core.cost_facts "
        "GROUP BY 1 ORDER BY 1"
    ) == [
        ("EUR", billed_eur, effective_eur),
        ("USD", focus_usd + mca_billed, focus_usd + mca_effective),
    ]
    # The MCA files were read as MCA: billing profile and invoice section kept, account as text.
    assert pipeline.query(
        "SELECT DISTINCT x_Schema, BillingAccountId, BillingProfileId, InvoiceSectionId "
        "FROM raw.azure_cost WHERE x_SourceFile LIKE ? ORDER BY 1",
        [f"{mca}/%"],
    ) == [("MCA", MCA_ACCOUNT, "IJKL-MNOP-BG7-TGB", "RSRC-AAAA-PJA-TGB")]
    # Commitments: Σ purchases = Σ used + Σ unused effective cost, per commitment, to the cent.
    commitments = pipeline.query(
        "SELECT BillingCurrency, CommitmentDiscountType, CommitmentDiscountCategory, "
        "sum(BilledCost) FILTER (ChargeCategory = 'Purchase' AND ChargeClass IS NULL), "
        "sum(EffectiveCost) FILTER (CommitmentDiscountStatus IN ('Used', 'Unused')) "
        "FROM core.cost_facts WHERE CommitmentDiscountId IS NOT NULL GROUP BY ALL ORDER BY 1, 2"
    )
    ri, sp = Decimal("1240.000000000000"), Decimal("775.000000000000")
    assert commitments == [
        ("EUR", "Reservation", "Usage", ri, ri),
        ("EUR", "Savings Plan", "Spend", sp, sp),
        ("USD", "Reservation", "Usage", ri, ri),
        ("USD", "Savings Plan", "Spend", sp, sp),
    ]
    assert (
        pipeline.query(
            "SELECT ChargeCategory, ChargeClass, BilledCost, EffectiveCost FROM core.cost_facts "
            "WHERE x_LineItemType = 'Refund'"
        )
        == [("Purchase", "Correction", Decimal("-30.000000000000"), Decimal("0E-12"))] * 2
    )
    assert pipeline.query(
        "SELECT count(*) FROM core.cost_facts WHERE x_LineItemType IN "
        "('UnusedReservation', 'UnusedSavingsPlan') AND (CommitmentDiscountStatus <> 'Unused' "
        "OR ChargeCategory <> 'Usage' OR ConsumedQuantity IS NOT NULL)"
    ) == [(0,)]
    # The restated days come from run 2 only.
    assert pipeline.query(
        "SELECT count(DISTINCT x_DeliveryId) FROM raw.azure_cost WHERE x_ExportType = 'ActualCost' "
        "AND x_SourceFile LIKE 'azure/ea-%'"
    ) == [(1,)]
    assert summary.restated_days == [date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)]
    # Tags in both forms reach the owner dimensions.
    assert pipeline.query(
        "SELECT count(DISTINCT team) > 3 FROM mart.daily_cost_by_team WHERE ProviderName = 'Microsoft'"
    ) == [(True,)]


def test_a_manifest_row_count_that_disagrees_is_recorded_for_pipeline_health(pipeline):
    """Azure's dataRowCount is never trusted (the files are counted), but a manifest that says
    something else than its files is a delivery problem: the load records it (ops/pipeline_health
    counts it as a silent zero load) while loading the files as they are."""
    folder = deliver_azure(
        pipeline.landing, "run-1", {"part_0_0001.csv.gz": gz(REAL_AZURE.read_text())}
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["dataRowCount"] = 40
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = pipeline.materialize("2023-09-01", "2023-09-30", assets=["raw/azure_cost"])
    assert result.success, failure_messages(result)
    event = next(  # the run's metadata is on each of its partitions
        e
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.path == ["raw", "azure_cost"]
    )
    mismatches = event.materialization.metadata["manifest_row_count_mismatches"].value
    assert mismatches == {f"{SCOPE}/{EXPORT}/run-1": {"declared": 40, "loaded": 27}}
    assert pipeline.query("SELECT count(*) FROM raw.azure_cost") == [(27,)]

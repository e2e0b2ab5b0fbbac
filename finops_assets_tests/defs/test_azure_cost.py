"""raw/azure_cost → core/cost_facts: the real anonymized EA cost details, delivered the way an
Azure export writes them, and a generated month with every charge type."""

import gzip
import json
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_assets_tests.conftest import failed_checks, failure_messages

REAL_AZURE = (
    Path(__file__).parents[3]
    / "shared"
    / "data"
    / "real_samples"
    / "azure_ea_cost_details_anonymized.csv"
)
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


@pytest.fixture
def real_pipeline(pipeline):
    deliver_azure(pipeline.landing, "run-1", {"part_0_0001.csv.gz": gz(REAL_AZURE.read_text())})
    return pipeline


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
    assert real_pipeline.query(
        "SELECT DISTINCT x_Schema, x_DeliveryId FROM raw.azure_cost"
    ) == [("EA", "run-1")]

"""The restatement guard through the pipeline: a newer delivery that collapses a loaded month is
held (the previous rows stay to the cent, the raw asset still materializes, the blocking
``restatement_guard`` check fails naming both deliveries so nothing downstream runs on it), and
a re-launched run with the tag ``finops/accept_restatement=<delivery id>`` takes it."""

import gzip
import json
import os
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow as pa

from finops_assets.samples.focus import delivery_path, write_delivery
from finops_assets_tests.conftest import Pipeline, failed_checks, failure_messages
from finops_assets_tests.paths import LAYOUTS, REAL_SAMPLES

FIRST, SECOND = "20250203T060000Z-00000001", "20250210T060000Z-00000002"
DAYS = ("2025-01-05", "2025-01-06")
# (charge day, billed cost) of the first delivery; the second restates each row at 20%.
ROWS = [("2025-01-05", "60.00"), ("2025-01-05", "40.00"), ("2025-01-06", "25.00")]


def focus_table(share: Decimal) -> pa.Table:
    money = [Decimal(cost) * share for _, cost in ROWS]
    starts = [datetime.fromisoformat(day).replace(tzinfo=UTC) for day, _ in ROWS]
    n = len(ROWS)
    text = {
        "BillingAccountId": ["111122223333"] * n,
        "BillingCurrency": ["USD"] * n,
        "ChargeCategory": ["Usage"] * n,
        "ChargeFrequency": ["Usage-Based"] * n,
        "ProviderName": ["AWS"] * n,
        "PublisherName": ["AWS"] * n,
        "InvoiceIssuerName": ["AWS"] * n,
        "ServiceName": ["Amazon EC2"] * n,
        "ServiceCategory": ["Compute"] * n,
        "SubAccountId": ["111122223333"] * n,
        "ResourceId": [f"i-000{i}" for i in range(n)],
        "Tags": ['{"team": "payments", "env": "prod"}'] * n,
    }
    columns = {
        **{c: pa.array(money, pa.decimal128(20, 4)) for c in ("BilledCost", "EffectiveCost")},
        **{c: pa.array(money, pa.decimal128(20, 4)) for c in ("ListCost", "ContractedCost")},
        **{c: pa.array(v, pa.string()) for c, v in text.items()},
        "ChargePeriodStart": pa.array(starts, pa.timestamp("us", tz="UTC")),
        "ChargePeriodEnd": pa.array(
            [s.replace(day=s.day + 1) for s in starts], pa.timestamp("us", tz="UTC")
        ),
        "BillingPeriodStart": pa.array([datetime(2025, 1, 1, tzinfo=UTC)] * n),
        "BillingPeriodEnd": pa.array([datetime(2025, 2, 1, tzinfo=UTC)] * n),
    }
    return pa.table(columns)


def deliver_focus(landing: Path, delivery_id: str, share: str, created: datetime) -> None:
    folder = delivery_path(landing, "acme", "costs", "2025-01", delivery_id)
    write_delivery(
        folder, focus_table(Decimal(share)), "AWS", "costs", "2025-01", created, "parquet"
    )


def materialize_tagged(pipeline: Pipeline, start: str, end: str, tags: dict[str, str]):
    defs = pipeline.defs
    job = defs.resolve_implicit_global_asset_job_def()
    daily = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] != "finance"]
    return job.execute_in_process(
        asset_selection=daily,
        instance=pipeline.instance,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
            **tags,
        },
        raise_on_error=False,
    )


def guard_evaluation(result, source: str) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key == dg.AssetCheckKey(dg.AssetKey(["raw", source]), "restatement_guard")
    ]
    return evaluation


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_focus_month_cut_by_80_percent_is_held_until_accepted_by_the_run_tag(pipeline):
    deliver_focus(pipeline.landing, FIRST, "1", datetime(2025, 2, 3, 6, tzinfo=UTC))
    first = pipeline.materialize(*DAYS)
    assert first.success, failure_messages(first)
    assert failed_checks(first) == []
    loaded = [("USD", 3, Decimal("125.000000000000"), FIRST)]
    totals = (
        "SELECT BillingCurrency, count(*), sum(BilledCost), string_agg(DISTINCT x_DeliveryId) "
        "FROM {} GROUP BY 1"
    )
    assert pipeline.query(totals.format("raw.focus")) == loaded
    assert pipeline.query(totals.format("core.cost_facts")) == loaded

    deliver_focus(pipeline.landing, SECOND, "0.2", datetime(2025, 2, 10, 6, tzinfo=UTC))
    held = pipeline.materialize(*DAYS)
    # raw/focus itself succeeds (the previous rows stay); the blocking check stops the rest.
    assert "raw/focus" in materialized(held)
    assert "core/cost_facts" not in materialized(held)
    assert "raw/focus:restatement_guard" in failed_checks(held)
    evaluation = guard_evaluation(held, "focus")
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.description == (
        "Restatement held for acme/costs billing period 2025-01: loading 2025-01-05..2025-01-06 "
        f"from the newer delivery {SECOND} would take the month from 3 rows, USD 125.00 "
        f"(delivery {FIRST}) to 3 rows, USD 25.00, i.e. cut Σ billed USD by 80.0% "
        "(USD 125.00 → 25.00) (bound: "
        "deliveries.max_restatement_drop_pct = 50%). The loaded rows stay. If the provider "
        "really restated it so, re-launch the run with the tag "
        f"finops/accept_restatement={SECOND}, or set deliveries.max_restatement_drop_pct to 80 "
        "or more in the rules YAML."
    )
    recorded = [
        m.metadata["restatement_held"].value
        for m in held.asset_materializations_for_node("raw__focus")
    ]
    assert recorded == [evaluation.description] * 2  # one per day
    assert pipeline.query(totals.format("raw.focus")) == loaded
    assert pipeline.query(totals.format("core.cost_facts")) == loaded

    accepted = materialize_tagged(pipeline, *DAYS, {"finops/accept_restatement": SECOND})
    assert accepted.success, failure_messages(accepted)
    assert failed_checks(accepted) == []
    assert guard_evaluation(accepted, "focus").description == (
        f"acme/costs billing period 2025-01, 2025-01-05..2025-01-06: delivery {FIRST} → "
        f"delivery {SECOND}; month 3 rows, USD 125.00 → 3 rows, USD 25.00; accepted by the run tag "
        f"finops/accept_restatement={SECOND} although it would cut Σ billed USD by 80.0% "
        "(USD 125.00 → 25.00)."
    )
    restated = [("USD", 3, Decimal("25.000000000000"), SECOND)]
    assert pipeline.query(totals.format("raw.focus")) == restated
    assert pipeline.query(totals.format("core.cost_facts")) == restated


REAL_AZURE = REAL_SAMPLES / "azure_ea_cost_details_anonymized.csv"
REAL_TOTAL = Decimal("1.261369265057")  # Σ CostInBillingCurrency of its 27 rows (CAD)
AZURE_RUN = "azure/ea-12345678/daily-actual/20230901-20230930"


def deliver_azure_run(landing: Path, run_id: str, csv_text: str, submitted: str) -> None:
    """One manifest-layout ActualCost run: the part, then manifest.json (Azure writes it last)."""
    folder = landing / AZURE_RUN / run_id
    folder.mkdir(parents=True)
    (folder / "part_0_0001.csv.gz").write_bytes(gzip.compress(csv_text.encode()))
    manifest = {
        "manifestVersion": "2024-04-01",
        "dataRowCount": None,
        "exportConfig": {"exportName": "daily-actual", "type": "ActualCost"},
        "runInfo": {
            "runId": run_id,
            "startDate": "2023-09-01T00:00:00",
            "submittedTime": submitted,
        },
        "blobs": [
            {"blobName": f"costexports/daily-actual/20230901-20230930/{run_id}/part_0_0001.csv.gz"}
        ],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_azure_header_only_run_is_held_and_the_month_keeps_its_cost(pipeline):
    text = REAL_AZURE.read_text()
    deliver_azure_run(pipeline.landing, "run-1", text, "2023-10-02T06:00:00Z")
    first = pipeline.materialize("2023-09-01", "2023-09-30")
    assert first.success, failure_messages(first)
    assert failed_checks(first) == []
    month = (
        "SELECT 'raw', count(*), sum(CostInBillingCurrency) FROM raw.azure_cost UNION ALL "
        "SELECT 'facts', count(*), sum(BilledCost) FROM core.cost_facts ORDER BY 1"
    )
    before = [("facts", 27, REAL_TOTAL), ("raw", 27, REAL_TOTAL)]
    assert pipeline.query(month) == before

    header_only = text.splitlines(keepends=True)[0]
    deliver_azure_run(pipeline.landing, "run-2", header_only, "2023-10-03T06:00:00Z")
    held = pipeline.materialize("2023-09-01", "2023-09-30")
    assert "raw/azure_cost" in materialized(held)
    assert "core/cost_facts" not in materialized(held)
    assert "raw/azure_cost:restatement_guard" in failed_checks(held)
    assert guard_evaluation(held, "azure_cost").description == (
        "Restatement held for azure/ea-12345678/daily-actual billing period 2023-09: loading "
        "2023-09-01..2023-09-30 from the newer delivery run-2 would take the month from 27 rows, "
        "CAD 1.261369265057 (delivery run-1) to 0 rows, i.e. remove all 27 loaded rows "
        "(bound: deliveries.max_restatement_drop_pct = 50%). The loaded rows stay. If the "
        "provider really restated it so, re-launch the run with the tag "
        "finops/accept_restatement=run-2, or set deliveries.max_restatement_drop_pct to 100 or "
        "more in the rules YAML."
    )
    assert pipeline.query(month) == before
    assert pipeline.query("SELECT DISTINCT x_DeliveryId FROM raw.azure_cost") == [("run-1",)]


def test_azure_classic_header_only_run_is_held(pipeline):
    """The hand-made classic layout (no manifest: the newest blob is the run) of
    fixtures/layouts/azure_classic_header_only: an EA run with 3 rows (EUR 2.60), then a newer
    BOM + header-only run. Held: EUR 2.60 stays, as its expected.json says."""
    case = LAYOUTS / "azure_classic_header_only"
    expected = json.loads((case / "expected.json").read_text())
    shutil.copytree(case / "azure", pipeline.landing / "azure")
    apply_mtimes_of(case, pipeline.landing)
    newest = pipeline.landing / expected["newest_file"]
    header_only = newest.read_bytes()
    newest.unlink()
    first = pipeline.materialize("2024-03-01", "2024-03-02", assets=["raw/azure_cost"])
    assert first.success, failure_messages(first)
    assert failed_checks(first) == []
    raw = "SELECT BillingCurrency, count(*), sum(CostInBillingCurrency) FROM raw.azure_cost GROUP BY 1"
    assert pipeline.query(raw) == [("EUR", 3, Decimal("2.600000000000"))]

    newest.write_bytes(header_only)
    apply_mtimes_of(case, pipeline.landing)
    held = pipeline.materialize("2024-03-01", "2024-03-02", assets=["raw/azure_cost"])
    assert "raw/azure_cost" in materialized(held)
    assert "raw/azure_cost:restatement_guard" in failed_checks(held)
    description = guard_evaluation(held, "azure_cost").description
    assert "would take the month from 3 rows, EUR 2.60 (delivery " in description
    assert ") to 0 rows, i.e. remove all 3 loaded rows" in description
    assert pipeline.query(raw) == [("EUR", 3, Decimal("2.600000000000"))]


def apply_mtimes_of(case: Path, landing: Path) -> None:
    """The case's intended mtimes (expected.json) on the copies under ``landing`` that exist."""
    expected = json.loads((case / "expected.json").read_text())
    for rel, when in expected["file_mtimes_utc"].items():
        if (landing / rel).exists():
            stamp = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
            os.utime(landing / rel, (stamp, stamp))

"""Bad deliveries fail with the file, column and fix, and every table keeps its last good data."""

import json
import shutil
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_assets.samples.focus import delivery_path, write_delivery
from finops_assets_tests.conftest import failed_checks, failure_messages, load_once

DAY = "2025-01-05"
LATER = datetime(2025, 2, 20, tzinfo=UTC)
BAD_ID = "20250220T000000Z-0badbad0"


@pytest.fixture(scope="module")
def loaded_once(tmp_path_factory, sample_exports):
    """The sample month's DAY loaded through every table once, and its snapshot."""
    state = load_once(
        tmp_path_factory.mktemp("bad_input"),
        lambda landing: shutil.copytree(sample_exports[0], landing, dirs_exist_ok=True),
        DAY,
    )
    before = state.snapshot(DAY)
    assert all(rows for rows in before.values())
    return state, before


@pytest.fixture
def loaded(pipeline, loaded_once):
    """A copy of the loaded sample for one test to break, and the snapshot it must keep."""
    state, before = loaded_once
    return pipeline.restore(state), before


def newest_aws_table(landing) -> pa.Table:
    folder = sorted(landing.glob("focus/aws/aws-focus/billing_period=2025-01/*/manifest.json"))[
        -1
    ].parent
    return pa.concat_tables(pq.read_table(p) for p in sorted(folder.glob("part-*.parquet")))


def drop(landing, table, fmt="parquet", dataset="aws-focus", delivery_id=BAD_ID):
    folder = delivery_path(landing, "aws", dataset, "2025-01", delivery_id)
    return write_delivery(folder, table, "AWS", dataset, "2025-01", LATER, fmt)


def day_rows(table: pa.Table) -> list[int]:
    """Row numbers charged on DAY (a bad value on another day fails that day's load instead)."""
    return [
        i
        for i, t in enumerate(table["ChargePeriodStart"].to_pylist())
        if t.date().isoformat() == DAY
    ]


def replace_column(table: pa.Table, name: str, values: list) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values))


def assert_fails_and_keeps(pipeline, before, *fragments):
    result = pipeline.materialize(DAY)
    assert not result.success
    message = failure_messages(result)
    for fragment in fragments:
        assert fragment in message, message
    assert pipeline.snapshot(DAY) == before
    return message


def test_truncated_parquet(loaded):
    pipeline, before = loaded
    folder = drop(pipeline.landing, newest_aws_table(pipeline.landing))
    part = folder / "part-00000.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    assert_fails_and_keeps(
        pipeline, before, f"{BAD_ID}/part-00000.parquet", "truncated", "Fix: re-deliver"
    )


def test_zero_byte_parquet(loaded):
    pipeline, before = loaded
    folder = drop(pipeline.landing, newest_aws_table(pipeline.landing))
    (folder / "part-00000.parquet").write_bytes(b"")
    assert_fails_and_keeps(
        pipeline,
        before,
        "'part-00000.parquet' is empty (0 bytes)",
        "remove this delivery's manifest",
    )


def test_csv_missing_a_mandatory_column(loaded):
    pipeline, before = loaded
    table = newest_aws_table(pipeline.landing)
    table = table.rename_columns(
        ["Billed_Cost" if c == "BilledCost" else c for c in table.column_names]
    )
    drop(pipeline.landing, table, fmt="csv")
    assert_fails_and_keeps(
        pipeline,
        before,
        "part-00000.csv: missing mandatory FOCUS column(s) BilledCost",
        "BilledCost looks renamed to 'Billed_Cost'",
    )


def test_non_numeric_cost(loaded):
    pipeline, before = loaded
    table = newest_aws_table(pipeline.landing)
    costs = [str(v) for v in table["EffectiveCost"].to_pylist()]
    costs[day_rows(table)[3]] = "12,50 €"
    drop(pipeline.landing, replace_column(table, "EffectiveCost", costs), fmt="csv")
    assert_fails_and_keeps(
        pipeline,
        before,
        "column EffectiveCost has 1 value(s) that are not a number, e.g. ['12,50 €']",
    )


def test_unknown_currency_code(loaded):
    pipeline, before = loaded
    table = newest_aws_table(pipeline.landing)
    currencies = table["BillingCurrency"].to_pylist()
    for i in day_rows(table)[:2]:
        currencies[i] = "XYZ"
    drop(pipeline.landing, replace_column(table, "BillingCurrency", currencies))
    assert_fails_and_keeps(
        pipeline,
        before,
        "column BillingCurrency is not an ISO 4217 currency code in 2 row(s) e.g. ['XYZ', 'XYZ']",
    )


def test_manifest_path_trick(loaded):
    pipeline, before = loaded
    folder = drop(pipeline.landing, newest_aws_table(pipeline.landing))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = ["../../../../../../../etc/passwd.csv"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert_fails_and_keeps(pipeline, before, "escapes the delivery folder")


def test_manifest_naming_a_missing_file(loaded):
    pipeline, before = loaded
    folder = drop(pipeline.landing, newest_aws_table(pipeline.landing))
    (folder / "part-00000.parquet").unlink()
    assert_fails_and_keeps(pipeline, before, "lists 'part-00000.parquet' but the file is missing")


def test_incomplete_delivery_without_manifest_is_not_loaded(loaded):
    pipeline, before = loaded
    folder = drop(pipeline.landing, newest_aws_table(pipeline.landing).slice(0, 10))
    (folder / "manifest.json").unlink()  # still uploading
    result = pipeline.materialize(DAY)
    assert result.success, failure_messages(result)
    assert pipeline.snapshot(DAY) == before
    assert pipeline.query("SELECT count(*) FROM raw.focus WHERE x_DeliveryId = ?", [BAD_ID]) == [
        (0,)
    ]


def test_delivery_dropped_twice_counts_once(loaded):
    pipeline, before = loaded
    newest = sorted(
        pipeline.landing.glob("focus/aws/aws-focus/billing_period=2025-01/*/manifest.json")
    )[-1].parent
    shutil.copytree(newest, newest.parent / BAD_ID)  # the same export delivered again
    result = pipeline.materialize(DAY)
    assert result.success, failure_messages(result)
    assert pipeline.snapshot(DAY) == before
    assert pipeline.query(
        "SELECT count(*) FROM raw.focus WHERE x_Dataset = 'aws/aws-focus' AND x_DeliveryId <> ?",
        [BAD_ID],
    ) == [(0,)]


def test_same_export_in_two_datasets_is_caught_as_duplicate_charges(loaded):
    pipeline, before = loaded
    drop(pipeline.landing, newest_aws_table(pipeline.landing), dataset="aws-focus-copy")
    result = pipeline.materialize(DAY)
    assert not result.success
    assert "core/cost_facts:no_duplicate_charges" in failed_checks(result)
    # The blocking check stops the marts: they keep the last good figures.
    after = pipeline.snapshot(DAY)
    assert after["mart.daily_cost_by_team"] == before["mart.daily_cost_by_team"]
    assert after["mart.untagged_spend"] == before["mart.untagged_spend"]


def test_day_without_rows_is_an_explicit_empty_partition(loaded):
    pipeline, _ = loaded
    for provider, dataset in [
        ("aws", "aws-focus"),
        ("azure", "azure-focus-eu"),
        ("gcp", "gcp-focus"),
    ]:
        folder = sorted(
            pipeline.landing.glob(
                f"focus/{provider}/{dataset}/billing_period=2025-01/*/manifest.json"
            )
        )[-1].parent
        files = sorted(folder.glob("part-*"))
        fmt = "csv" if files[0].name.endswith((".csv", ".csv.gz")) else "parquet"
        if fmt == "parquet":
            table = pa.concat_tables(pq.read_table(p) for p in files)
        else:
            import pyarrow.csv as pacsv

            table = pa.concat_tables(pacsv.read_csv(p) for p in files)
        starts = table["ChargePeriodStart"].to_pylist()
        keep = [not str(s).startswith(DAY) for s in starts]
        new = delivery_path(pipeline.landing, provider, dataset, "2025-01", BAD_ID)
        write_delivery(new, table.filter(pa.array(keep)), provider, dataset, "2025-01", LATER, fmt)
    result = pipeline.materialize(DAY, insights=True)
    assert result.success, failure_messages(result)
    assert all(rows == [] for rows in pipeline.snapshot(DAY).values())
    counts = [
        e.materialization.metadata["dagster/row_count"].value
        for e in result.get_asset_materialization_events()
        # The insights score every series on every day: an empty day is a day of zeros there.
        if e.materialization.asset_key.path[0] != "insights"
    ]
    assert counts == [0] * 11  # four raw tables, facts, amortized, allocated, four marts


def test_no_delivery_for_the_month_says_what_to_do(sample_pipeline):
    result = sample_pipeline.materialize("2025-03-01", assets=["raw/focus"])
    assert not result.success
    assert "No complete FOCUS delivery covers 2025-03-01..2025-03-01" in failure_messages(result)


def test_landing_without_focus_exports_gives_empty_partitions(pipeline):
    result = pipeline.materialize("2025-03-01", insights=True)
    assert result.success, failure_messages(result)
    assert [
        e.materialization.metadata["dagster/row_count"].value
        for e in result.get_asset_materialization_events()
    ] == [0] * 15  # four raw tables, facts, amortized, allocated, four marts, four insights


def test_part_file_copied_under_another_name_is_caught(loaded):
    pipeline, before = loaded
    folder = drop(pipeline.landing, newest_aws_table(pipeline.landing))
    shutil.copy(folder / "part-00000.parquet", folder / "part-00000 (1).parquet")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"].append("part-00000 (1).parquet")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = pipeline.materialize(DAY)
    assert failed_checks(result) == ["core/cost_facts:no_duplicate_charges"]
    evaluation = next(e for e in result.get_asset_check_evaluations() if not e.passed)
    assert "identical files" in evaluation.metadata["details"].value
    assert "part-00000 (1).parquet" in evaluation.metadata["details"].value
    after = pipeline.snapshot(DAY)
    assert after["mart.daily_cost_by_team"] == before["mart.daily_cost_by_team"]

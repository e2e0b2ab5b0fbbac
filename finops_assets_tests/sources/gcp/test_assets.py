"""raw/gcp_billing -> core/cost_facts through the whole pipeline, on generated export dumps
written in the layout teams dump them from BigQuery."""

import contextlib
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster_gcp import BigQueryResource

from finops_assets.definitions import build_defs
from finops_assets.resources.rules import RulesResource
from finops_assets.samples.gcp import BILLING_ACCOUNT, generate_gcp_billing
from finops_assets.settings import Settings
from finops_assets_tests.conftest import failed_checks, failure_messages

START = date(2025, 1, 1)
ACCOUNT_DIR = Path("gcp") / BILLING_ACCOUNT
GCP_CHECKS = {
    "raw/gcp_billing:contract",
    "core/cost_facts:reconciles_with_gcp_billing",
    "core/cost_facts:money_conserved_from_sources",
}


def newest_dump_net(landing: Path) -> dict[date, Decimal]:
    """Σ cost + Σ credits per usage day straight from the files, taking per folder only the dump
    with the newest export_time (the samples' re-export is a full snapshot of the day)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    totals: dict[date, Decimal] = {}
    for folder in sorted((landing / ACCOUNT_DIR).glob("usage_date=*")):
        dumps: dict[str, list[str]] = {}
        for part in sorted(folder.glob("*.parquet")):
            dumps.setdefault(part.name.rsplit("-", 1)[0], []).append(str(part))
        newest = max(dumps)  # dump names carry their export timestamp
        (net,) = con.execute(
            "SELECT sum(CAST(cost AS DECIMAL(38, 12))) + coalesce((SELECT "
            "sum(CAST(c.amount AS DECIMAL(38, 12))) FROM (SELECT unnest(credits) AS c "
            f"FROM read_parquet({dumps[newest]}))), 0) FROM read_parquet({dumps[newest]})"
        ).fetchall()[0]
        totals[date.fromisoformat(folder.name.split("=")[1])] = net
    return totals


def facts_by_day(pipeline) -> dict[date, Decimal]:
    return dict(
        pipeline.query(
            "SELECT charge_date, sum(BilledCost) FROM core.cost_facts "
            "WHERE x_Source = 'gcp_billing' GROUP BY 1 ORDER BY 1"
        )
    )


def materialization_metadata(result, asset: str, partition: str) -> dict:
    (event,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey.from_user_string(asset)
        and e.materialization.partition == partition
    ]
    return event.metadata


@pytest.fixture(scope="module")
def gcp_month(tmp_path_factory):
    out = tmp_path_factory.mktemp("gcp_month")
    summary = generate_gcp_billing(out, START, 31, 300, seed=5)
    return out, summary


def test_generated_month_reconciles_with_the_export(pipeline, gcp_month):
    out, summary = gcp_month
    shutil.copytree(out, pipeline.landing, dirs_exist_ok=True)
    result = pipeline.materialize("2025-01-01", "2025-01-31")
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    names = {e.asset_check_key.to_user_string() for e in result.get_asset_check_evaluations()}
    assert names >= GCP_CHECKS
    (reconciled,) = [
        e.metadata
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name == "reconciles_with_gcp_billing"
    ]
    assert (reconciled["mismatches"].value, reconciled["accounts"].value) == (0, 1)

    expected = newest_dump_net(pipeline.landing)
    assert len(expected) == 31
    assert facts_by_day(pipeline) == expected
    # 31 days x 300 rows, plus the correction row of the first day's re-export.
    assert pipeline.query("SELECT count(*) FROM raw.gcp_billing") == [(9301,)]
    assert summary.total_rows == 9301
    assert pipeline.query(
        "SELECT count(*) FROM core.cost_facts WHERE x_Source = 'gcp_billing'"
    ) == [(9301,)]
    # The mart carries the same money, per day (only GCP in this landing zone).
    mart = dict(
        pipeline.query(
            "SELECT charge_date, sum(billed_cost) FROM mart.daily_cost_by_team GROUP BY 1"
        )
    )
    assert mart == expected
    # Every cost_type maps to its ChargeCategory; one correction row; CUD rows are Used.
    categories = dict(
        pipeline.query("SELECT ChargeCategory, count(*) FROM core.cost_facts GROUP BY 1 ORDER BY 1")
    )
    assert categories["Tax"] == 31 * 6
    assert categories["Purchase"] == 31
    assert categories["Adjustment"] == 31 + 1  # a rounding error per day + the correction
    assert pipeline.query(
        "SELECT count(*) FROM core.cost_facts WHERE x_AdjustmentType = 'USAGE_CORRECTION' "
        "AND BilledCost < 0"
    ) == [(1,)]
    assert pipeline.query(
        "SELECT count(*) > 0, count(*) FILTER (WHERE CommitmentDiscountStatus <> 'Used') "
        "FROM core.cost_facts WHERE CommitmentDiscountId IS NOT NULL"
    ) == [(True, 0)]
    # The watermark of the first day is the re-export's correction batch.
    metadata = materialization_metadata(result, "raw/gcp_billing", "2025-01-01")
    assert metadata["export_watermark_iso"].value == "2025-01-07T04:00:00+00:00"
    assert metadata["dagster/row_count"].value == 301
    assert metadata["billed_cost_USD"].value == float(round(expected[START], 2))
    # Resource labels reach the owner dimension ("team" key on generated rows).
    assert pipeline.query(
        "SELECT count(*) > 0 FROM mart.daily_cost_by_team WHERE team = 'checkout'"
    ) == [(True,)]


def test_correction_dump_changes_the_day_by_exactly_the_correction(pipeline):
    summary = generate_gcp_billing(pipeline.landing, START, 2, 200, seed=3)
    held_back = pipeline.landing.parent / "held_back.parquet"
    shutil.move(summary.correction_dump, held_back)
    first = pipeline.materialize("2025-01-01")
    assert first.success, failure_messages(first)
    before = facts_by_day(pipeline)[START]
    watermark_before = materialization_metadata(first, "raw/gcp_billing", "2025-01-01")

    shutil.move(held_back, summary.correction_dump)  # the later full re-export arrives
    second = pipeline.materialize("2025-01-01")
    assert second.success, failure_messages(second)
    assert failed_checks(second) == []
    after = facts_by_day(pipeline)[START]
    correction = Decimal(str(round(summary.correction_amount, 6)))
    assert correction < 0
    assert after - before == correction
    assert pipeline.query("SELECT count(*) FROM raw.gcp_billing") == [(201,)]
    watermark_after = materialization_metadata(second, "raw/gcp_billing", "2025-01-01")
    assert watermark_before["export_watermark_iso"].value == "2025-01-02T19:00:37+00:00"
    assert watermark_after["export_watermark_iso"].value == "2025-01-07T04:00:00+00:00"
    assert pipeline.query("SELECT DISTINCT x_DeliveryId FROM raw.gcp_billing ORDER BY 1") == [
        (f"{BILLING_ACCOUNT}/usage_date=2025-01-01/export-20250107T040000",)
    ]
    # The same re-export copied under another dump name counts once, not twice.
    shutil.copy(
        summary.correction_dump, summary.correction_dump.with_name("copy-000000000000.parquet")
    )
    third = pipeline.materialize("2025-01-01")
    assert third.success, failure_messages(third)
    assert facts_by_day(pipeline)[START] == after


def gcp_snapshot(pipeline, day: str):
    return pipeline.query(
        "SELECT (SELECT count(*) FROM raw.gcp_billing WHERE charge_date = ?), "
        "(SELECT sum(BilledCost) FROM core.cost_facts WHERE charge_date = ?)",
        [day, day],
    )


def _edited_dump(summary, edit, name: str) -> Path:
    """A new dump of the first day: the original rows with ``edit(rows)`` applied."""
    folder = summary.files[0].parent
    table = pq.read_table(summary.files[0])
    rows = table.to_pylist()
    edit(rows)
    schema = table.schema
    if isinstance(rows[0]["credits"], list) and any(
        isinstance(c.get("amount"), str) for r in rows for c in r["credits"]
    ):
        credit = pa.struct(
            [
                ("name", pa.string()),
                ("amount", pa.string()),
                ("full_name", pa.string()),
                ("id", pa.string()),
                ("type", pa.string()),
            ]
        )
        schema = schema.set(
            schema.get_field_index("credits"), pa.field("credits", pa.list_(credit))
        )
        for row in rows:
            for c in row["credits"]:
                c["amount"] = str(c["amount"])
    path = folder / f"{name}-000000000000.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


@pytest.mark.parametrize(
    ("case", "expected_message"),
    [
        ("null_amount", "holds a credit without an amount"),
        ("text_amount", "Could not convert string"),
    ],
)
def test_malformed_credit_fails_and_keeps_the_loaded_day(pipeline, case, expected_message):
    summary = generate_gcp_billing(pipeline.landing, START, 1, 200, seed=4)
    assert pipeline.materialize("2025-01-01").success
    good = gcp_snapshot(pipeline, "2025-01-01")
    assert good[0][0] == 201

    def break_one_credit(rows):
        row = next(r for r in rows if r["credits"])
        row["export_time"] = row["export_time"].replace(year=2025, month=1, day=20)
        row["credits"][0]["amount"] = None if case == "null_amount" else "minus three"

    bad = _edited_dump(summary, break_one_credit, "export-20250120T000000")
    result = pipeline.materialize("2025-01-01")
    assert not result.success
    message = failure_messages(result)
    assert bad.name in message and expected_message in message
    assert gcp_snapshot(pipeline, "2025-01-01") == good


def test_truncated_parquet_fails_naming_the_file(pipeline):
    summary = generate_gcp_billing(pipeline.landing, START, 1, 200, seed=4)
    assert pipeline.materialize("2025-01-01").success
    good = gcp_snapshot(pipeline, "2025-01-01")
    truncated = summary.files[0].with_name("export-20250125T000000-000000000000.parquet")
    truncated.write_bytes(summary.files[0].read_bytes()[:3000])
    result = pipeline.materialize("2025-01-01")
    assert not result.success
    message = failure_messages(result)
    assert truncated.name in message and "truncated" in message
    assert gcp_snapshot(pipeline, "2025-01-01") == good


def test_zero_byte_file_is_skipped_and_missing_column_is_named(pipeline):
    summary = generate_gcp_billing(pipeline.landing, START, 1, 200, seed=4)
    summary.files[0].with_name("export-20250126T000000-000000000000.parquet").write_bytes(b"")
    result = pipeline.materialize("2025-01-01")
    assert result.success, failure_messages(result)
    assert gcp_snapshot(pipeline, "2025-01-01")[0][0] == 201

    table = pq.read_table(summary.files[0]).drop_columns(["invoice"])
    pq.write_table(table, summary.files[0].with_name("export-20250127T000000-000000000000.parquet"))
    result = pipeline.materialize("2025-01-01")
    assert not result.success
    message = failure_messages(result)
    assert "export-20250127T000000-000000000000.parquet" in message
    assert "missing column(s) invoice" in message


class FakeBigQueryResource(BigQueryResource):
    """Stands in for BigQuery, which cannot run here: its client returns the rows of a Parquet
    file as Arrow (what ``QueryJob.to_arrow()`` returns) and records the query it was sent. This
    is the only mock in the suite; everything after the Arrow table is the real code path."""

    parquet_path: str

    @contextlib.contextmanager
    def get_client(self):
        resource = self

        class Job:
            def __init__(self, sql, job_config):
                SENT.append((sql, job_config))

            def to_arrow(self):
                return pq.read_table(resource.parquet_path)

        class Client:
            def query(self, sql, job_config=None):
                return Job(sql, job_config)

        yield Client()


SENT: list = []


def test_bigquery_mode_reads_the_export_table_through_the_same_staging(pipeline, tmp_path):
    summary = generate_gcp_billing(tmp_path / "dumps", START, 1, 200, seed=8, detailed=False)
    table_id = "finops-demo.billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(
        (Path(RulesResource().resolved_path()).read_text()).replace(
            "bigquery_table: null", f"bigquery_table: {table_id}"
        )
    )
    defs = build_defs(
        Settings(
            landing_url=str(pipeline.landing), warehouse=pipeline.warehouse, start_date="2023-01-01"
        ),
        resources={
            "rules": RulesResource(path=str(rules_path)),
            "bigquery": FakeBigQueryResource(parquet_path=str(summary.correction_dump)),
        },
    )
    SENT.clear()
    daily = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] != "finance"]
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=pipeline.instance,
        partition_key="2025-01-01",
        asset_selection=daily,
        raise_on_error=False,
    )
    assert result.success, failure_messages(result)
    assert failed_checks(result) == []
    ((sql, job_config),) = SENT
    assert f"FROM `{table_id}`" in sql and "@start" in sql and "@end" in sql
    assert [(p.name, p.type_, p.value.isoformat()) for p in job_config.query_parameters] == [
        ("start", "TIMESTAMP", "2025-01-01T00:00:00+00:00"),
        ("end", "TIMESTAMP", "2025-01-02T00:00:00+00:00"),
    ]
    # The full re-export (with its correction) arrives as one table: 201 rows, no resource column.
    assert pipeline.query("SELECT count(*), count(resource_name) FROM raw.gcp_billing") == [
        (201, 0)
    ]
    assert pipeline.query("SELECT DISTINCT x_DeliveryId FROM raw.gcp_billing") == [
        (f"bigquery:{table_id}",)
    ]
    assert facts_by_day(pipeline) == newest_dump_net(tmp_path / "dumps")

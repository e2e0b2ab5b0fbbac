"""The same ingestion through Dagster from S3 (moto's server) and GCS (fake-gcs-server) over real
HTTP on 127.0.0.1: the raw assets and core/cost_facts hold exactly what a local folder with the
same exports gives, also when only the AWS roots live in S3."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from finops_assets.cli import main as finops_assets_cli
from finops_assets.definitions import build_defs
from finops_assets.settings import Settings
from finops_assets_tests.conftest import Pipeline, failed_checks, failure_messages
from finops_assets_tests.servers import (  # noqa: F401 - registers the pytest fixtures
    fake_gcs_endpoint_fixture,
    fake_gcs_fixture,
    moto_s3_endpoint_fixture,
    moto_s3_fixture,
    s3_client,
    unique_bucket_name,
    upload_folder_to_gcs,
    upload_folder_to_s3,
)

FIRST_DAY, LAST_DAY = "2025-01-01", "2025-01-03"
ASSETS = ["raw/aws_cur", "raw/gcp_billing", "raw/azure_cost", "raw/focus", "core/cost_facts"]
RAW_TABLES = ["raw.aws_cur", "raw.gcp_billing", "raw.azure_cost", "raw.focus"]
AWS_ROOTS = ("aws-cur", "aws-data-exports")
PREFIX = "billing/exports"


@dataclass
class UrlPipeline(Pipeline):
    """A Pipeline whose landing zone comes from ``settings`` (a bucket URL, or routes); ``landing``
    is the local folder the bucket was filled from."""

    settings: Settings | None = None

    @property
    def defs(self) -> dg.Definitions:
        return build_defs(self.settings)


@pytest.fixture(scope="module")
def every_layout(tmp_path_factory) -> Path:
    """Three days of every supported delivery layout (FOCUS, legacy CUR, CUR 2.0 Data Export,
    Azure exports, GCP billing dumps), written by the documented sample-data command."""
    out = tmp_path_factory.mktemp("every_layout")
    argv = ["sample-data", "--out", str(out), "--start", FIRST_DAY, "--days", "3"]
    argv += ["--rows-per-day", "200", "--seed", "5"]
    argv += ["--sources", "focus,aws-cur,aws-exports,azure,gcp"]
    assert finops_assets_cli(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["focus", "gcp", "azure", *AWS_ROOTS])
    return out


def settings_for(landing_url: str, warehouse: Path) -> Settings:
    return Settings(landing_url=landing_url, warehouse=str(warehouse), start_date="2023-01-01")


def load(settings: Settings, landing: Path) -> dict[str, list[tuple]]:
    """Materialize the raw assets and core/cost_facts for the three days; return the money per
    day and currency in core.cost_facts and the rows per raw table."""
    with dg.DagsterInstance.ephemeral() as instance:
        pipeline = UrlPipeline(
            landing=landing, warehouse=settings.warehouse, instance=instance, settings=settings
        )
        result = pipeline.materialize(FIRST_DAY, LAST_DAY, assets=ASSETS)
        assert result.success, failure_messages(result)
        assert failed_checks(result) == []
        return {
            "cost_facts": pipeline.query(
                "SELECT charge_date, BillingCurrency, count(*), sum(BilledCost), "
                "sum(EffectiveCost) FROM core.cost_facts GROUP BY ALL ORDER BY ALL"
            ),
            "raw_rows": [
                (
                    table,
                    *pipeline.query(f"SELECT count(*), count(DISTINCT x_SourceFile) FROM {table}")[
                        0
                    ],
                )
                for table in RAW_TABLES
            ],
            "providers": pipeline.query(
                "SELECT DISTINCT ProviderName FROM core.cost_facts ORDER BY 1"
            ),
        }


@pytest.fixture(scope="module")
def local_totals(every_layout, tmp_path_factory) -> dict[str, list[tuple]]:
    totals = load(
        settings_for(str(every_layout), tmp_path_factory.mktemp("local") / "warehouse.duckdb"),
        every_layout,
    )
    # Three days in USD and EUR, from all three providers, every source table loaded.
    assert [(day.isoformat(), currency) for day, currency, *_ in totals["cost_facts"]] == [
        (day, currency)
        for day in ("2025-01-01", "2025-01-02", "2025-01-03")
        for currency in ("EUR", "USD")
    ]
    assert totals["providers"] == [("AWS",), ("Google Cloud",), ("Microsoft",)]
    assert all(rows > 0 and files > 0 for _, rows, files in totals["raw_rows"])
    return totals


def test_s3_landing_loads_the_same_money_as_a_folder(every_layout, local_totals, moto_s3, tmp_path):
    bucket = unique_bucket_name()
    upload_folder_to_s3(moto_s3, every_layout, bucket, PREFIX)
    settings = settings_for(f"s3://{bucket}/{PREFIX}", tmp_path / "warehouse.duckdb")
    assert load(settings, every_layout) == local_totals


def test_gcs_landing_loads_the_same_money_as_a_folder(
    every_layout, local_totals, fake_gcs, tmp_path
):
    bucket = unique_bucket_name()
    upload_folder_to_gcs(fake_gcs, every_layout, bucket, PREFIX)
    settings = settings_for(f"gs://{bucket}/{PREFIX}", tmp_path / "warehouse.duckdb")
    assert load(settings, every_layout) == local_totals


def test_aws_roots_in_s3_and_the_rest_local(every_layout, local_totals, moto_s3, tmp_path):
    bucket = unique_bucket_name()
    for root in AWS_ROOTS:
        upload_folder_to_s3(moto_s3, every_layout / root, bucket, f"aws/{root}")
    # The local folder has no AWS exports at all: they can only come from the bucket.
    local = tmp_path / "landing"
    shutil.copytree(every_layout, local, ignore=shutil.ignore_patterns(*AWS_ROOTS))
    assert sorted(p.name for p in local.iterdir()) == ["azure", "focus", "gcp"]
    settings = Settings.from_env(
        {
            "FINOPS_LANDING_URL": str(local),
            "FINOPS_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "FINOPS_START_DATE": "2023-01-01",
            "FINOPS_LANDING_URL_AWS_CUR": f"s3://{bucket}/aws",
            "FINOPS_LANDING_URL_AWS_DATA_EXPORTS": f"s3://{bucket}/aws",
        }
    )
    assert load(settings, local) == local_totals


def test_a_file_missing_from_the_bucket_fails_with_its_s3_url(every_layout, moto_s3, tmp_path):
    bucket = unique_bucket_name()
    upload_folder_to_s3(moto_s3, every_layout / "aws-cur", bucket, f"{PREFIX}/aws-cur")
    period = "aws-cur/finops-cur/20250101-20250201"
    manifest = json.loads((every_layout / period / "finops-cur-Manifest.json").read_text())
    part = manifest["reportKeys"][0].rsplit("/", 2)
    missing = f"{period}/{part[-2]}/{part[-1]}"
    assert part[-2] == manifest["assemblyId"]
    s3_client(moto_s3).delete_object(Bucket=bucket, Key=f"{PREFIX}/{missing}")

    with dg.DagsterInstance.ephemeral() as instance:
        settings = settings_for(f"s3://{bucket}/{PREFIX}", tmp_path / "warehouse.duckdb")
        pipeline = UrlPipeline(
            landing=every_layout, warehouse=settings.warehouse, instance=instance, settings=settings
        )
        result = pipeline.materialize(FIRST_DAY, assets=["raw/aws_cur"])
    assert not result.success
    message = failure_messages(result)
    assert f"s3://{bucket}/{PREFIX}/{period}/finops-cur-Manifest.json" in message
    assert f"manifest lists {missing} but the file is missing" in message

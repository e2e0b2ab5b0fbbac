"""Shared fixtures: a temp landing folder, a temp DuckDB warehouse, and the real definitions built
over them through build_defs (resources swapped, nothing patched)."""

import os

# Partitions are built from FINOPS_START_DATE when the definitions load; the tests use 2024 data.
os.environ["FINOPS_START_DATE"] = "2023-01-01"

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from finops_assets.definitions import build_defs
from finops_assets.samples.focus import generate_sample_exports
from finops_assets.settings import Settings

SAMPLE_START = date(2025, 1, 1)
SAMPLE_DAYS = 31
SAMPLE_ROWS_PER_DAY = 1500
SAMPLE_SEED = 11


@dataclass
class Pipeline:
    landing: Path
    warehouse: str
    instance: dg.DagsterInstance
    config_path: str | None = None

    @property
    def defs(self) -> dg.Definitions:
        return build_defs(
            Settings(
                landing_url=str(self.landing),
                warehouse=self.warehouse,
                start_date="2023-01-01",
                config_path=self.config_path,
            )
        )

    def materialize(
        self,
        start: str,
        end: str | None = None,
        assets: list[str] | None = None,
        insights: bool = False,
    ) -> dg.ExecuteInProcessResult:
        """Every daily asset over ``start..end`` (or ``assets``). The insights group only with
        ``insights=True``: its own tests (insights/, the whole graph in core/test_pipeline and
        test_bad_input, the end-to-end test) run it; the rest test the chain to the marts and
        would pay for it in every load."""
        defs = self.defs
        job = defs.resolve_implicit_global_asset_job_def()
        # The finance group is monthly (billing periods): its tests materialize it by month.
        # ops/pipeline_health reads the event log, not the data: its own tests run it.
        skipped = {"finance", "ops"} if insights else {"finance", "insights", "ops"}
        if assets:
            selection = [dg.AssetKey.from_user_string(a) for a in assets]
        else:
            selection = [
                k
                for k in defs.resolve_asset_graph().get_all_asset_keys()
                if k.path[0] not in skipped
            ]
        return job.execute_in_process(
            instance=self.instance,
            tags={
                "dagster/asset_partition_range_start": start,
                "dagster/asset_partition_range_end": end or start,
            },
            asset_selection=selection,
            raise_on_error=False,
        )

    def restore(self, state: "Pipeline") -> "Pipeline":
        """Start from ``state`` (see ``load_once``): its landing files and warehouse copied in.
        The assets keep no state outside the landing zone and the warehouse, so this is the
        same as having run the load here."""
        shutil.copytree(state.landing, self.landing, dirs_exist_ok=True)
        for suffix in ("", ".wal"):
            if Path(state.warehouse + suffix).exists():
                shutil.copy(state.warehouse + suffix, self.warehouse + suffix)
        # Snapshot-backed raw tables (lib.snapshots) keep their files beside the warehouse.
        zone = Path(state.warehouse).with_suffix(".raw")
        if zone.is_dir():
            shutil.copytree(zone, Path(self.warehouse).with_suffix(".raw"), dirs_exist_ok=True)
        return self

    def query(self, sql: str, params=None) -> list[tuple]:
        with duckdb.connect(self.warehouse, read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def snapshot(self, day: str) -> dict[str, list[tuple]]:
        """Row count and money per table for one day: what a failed load must leave untouched."""
        tables = {
            "raw.focus": "sum(BilledCost), sum(EffectiveCost)",
            "core.cost_facts": "sum(BilledCost), sum(EffectiveCost)",
            "core.amortized_costs": "sum(BilledCost), sum(EffectiveCost)",
            "core.allocated_costs": "sum(BilledCost), sum(EffectiveCost)",
            "mart.daily_cost_by_team": "sum(billed_cost), sum(effective_cost)",
            "mart.untagged_spend": "sum(total_billed_cost), sum(total_effective_cost)",
        }
        return {
            table: self.query(
                f"SELECT BillingCurrency, count(*), {sums} FROM {table} "
                "WHERE charge_date = ? GROUP BY 1 ORDER BY 1",
                [day],
            )
            for table, sums in tables.items()
        }


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        event.event_specific_data.error.message
        + "".join(
            cause.message for cause in [event.event_specific_data.error.cause] if cause is not None
        )
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE"
    )


def with_rows_outside_period(pipeline: "Pipeline", tmp_path: Path, mode: str) -> "Pipeline":
    """The pipeline with the shipped rules, but ``deliveries.rows_outside_period: <mode>``."""
    from finops_assets.lib.rules import default_rules_path

    config = tmp_path / "rules.yaml"
    text = default_rules_path().read_text()
    assert text.count("rows_outside_period: fail") == 1
    config.write_text(text.replace("rows_outside_period: fail", f"rows_outside_period: {mode}"))
    pipeline.config_path = str(config)
    return pipeline


def run_metadata(result: dg.ExecuteInProcessResult, asset: str, name: str) -> set:
    """The values of one metadata entry on ``asset``'s materializations in a run (a ranged run's
    partitions each carry the run's metadata: one value per run)."""
    return {
        e.materialization.metadata[name].value
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey.from_user_string(asset)
        and name in e.materialization.metadata
    }


# Findings about the data, not failures of the pipeline: the sample exports are random, and an
# anomaly in them is the detector doing its job (its own tests are in insights/).
FINDINGS = {"insights/anomalies:new_anomalies"}


def failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    return sorted(
        e.asset_check_key.to_user_string()
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.asset_check_key.to_user_string() not in FINDINGS
    )


def load_once(
    root: Path, deliver: Callable[[Path], None], start: str, end: str | None = None
) -> Pipeline:
    """A landing zone filled by ``deliver`` and loaded through every asset for ``start..end``:
    made once per module and handed to each test with ``Pipeline.restore``, so tests about what
    happens *after* a good load do not each pay for the load."""
    landing = root / "landing"
    landing.mkdir(parents=True)
    deliver(landing)
    with dg.DagsterInstance.ephemeral() as instance:
        state = Pipeline(
            landing=landing, warehouse=str(root / "warehouse.duckdb"), instance=instance
        )
        result = state.materialize(start, end)
        assert result.success, failure_messages(result)
        assert failed_checks(result) == []
    return state


@pytest.fixture(scope="session")
def sample_exports(tmp_path_factory) -> tuple[Path, object]:
    """One generated month of FOCUS exports (three producers, a restated month), made once."""
    out = tmp_path_factory.mktemp("sample_exports")
    summary = generate_sample_exports(
        out, SAMPLE_START, SAMPLE_DAYS, SAMPLE_ROWS_PER_DAY, SAMPLE_SEED
    )
    return out, summary


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    landing = tmp_path / "landing"
    landing.mkdir()
    # An in-memory instance: these tests read the run's events and the warehouse, not a
    # persisted event log, and SQLite writes of per-day metadata dominated their run time.
    with dg.DagsterInstance.ephemeral() as instance:
        yield Pipeline(
            landing=landing, warehouse=str(tmp_path / "warehouse.duckdb"), instance=instance
        )


@pytest.fixture
def sample_pipeline(pipeline, sample_exports) -> Pipeline:
    shutil.copytree(sample_exports[0], pipeline.landing, dirs_exist_ok=True)
    return pipeline

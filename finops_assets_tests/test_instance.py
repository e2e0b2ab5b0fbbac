"""A real Dagster instance (DAGSTER_HOME with the shipped dagster.yaml): CLI range backfills and
parallel runs on one DuckDB file. `dagster dev` (webserver + daemon) serving the graph and running
a backfill launched the way the UI launches it is part of test_end_to_end.py."""

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from finops_assets.samples.focus import generate_sample_exports

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def instance_env(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    landing = tmp_path / "landing"
    generate_sample_exports(landing, date(2025, 1, 1), 31, 800, 5)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FINOPS_LANDING_URL": str(landing),
        "FINOPS_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "FINOPS_START_DATE": "2025-01-01",
    }
    subprocess.run(
        [BIN / "dagster", "instance", "migrate"], env=env, check=True, capture_output=True
    )
    return env


def month_totals(
    warehouse: str, table="mart.daily_cost_by_team", billed="billed_cost"
) -> list[tuple]:
    """Per currency: distinct days and Σ billed cost of ``table``."""
    with duckdb.connect(warehouse, read_only=True) as con:
        return con.execute(
            f"SELECT BillingCurrency, count(DISTINCT charge_date), round(sum({billed}), 2) "
            f"FROM {table} GROUP BY 1 ORDER BY 1"
        ).fetchall()


def facts_totals(warehouse: str) -> list[tuple]:
    return month_totals(warehouse, "core.cost_facts", "BilledCost")


def cli_materialize(env, partition_range):
    return subprocess.Popen(
        [
            BIN / "dagster",
            "asset",
            "materialize",
            "-m",
            "finops_assets.definitions",
            "--select",
            "not group:finance",
            "--partition-range",
            partition_range,
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_cli_range_backfill_and_parallel_runs_share_the_warehouse(instance_env):
    whole = cli_materialize(instance_env, "2025-01-01...2025-01-31")
    output, _ = whole.communicate(timeout=600)
    assert whole.returncode == 0, output[-3000:]
    totals = month_totals(instance_env["FINOPS_WAREHOUSE"])
    assert [(c, days) for c, days, _ in totals] == [("EUR", 31), ("USD", 31)]
    assert totals == facts_totals(instance_env["FINOPS_WAREHOUSE"])

    # Two runs at once on the same DuckDB file: they queue on the warehouse lock, none fails.
    first = cli_materialize(instance_env, "2025-01-01...2025-01-15")
    second = cli_materialize(instance_env, "2025-01-16...2025-01-31")
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert not any("lock" in o.lower() and "error" in o.lower() for o in outputs)
    assert month_totals(instance_env["FINOPS_WAREHOUSE"]) == totals

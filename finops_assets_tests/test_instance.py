"""A real Dagster instance (DAGSTER_HOME with the shipped dagster.yaml): CLI backfills, parallel
runs on one DuckDB file, and `dagster dev` (webserver + daemon) serving the graph and running a
31-day backfill launched the way the UI launches it."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import duckdb
import pytest

from finops_assets.lib.sample_data import generate_sample_exports

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ASSETS = [
    ["raw", "focus"],
    ["raw", "aws_cur"],
    ["raw", "azure_cost"],
    ["raw", "gcp_billing"],
    ["core", "cost_facts"],
    ["core", "amortized_costs"],
    ["core", "allocated_costs"],
    ["mart", "daily_cost_by_team"],
    ["mart", "untagged_spend"],
    ["mart", "commitment_utilization"],
    ["mart", "commitment_coverage"],
]


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
            "*",
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture
def dagster_dev(instance_env, tmp_path):
    port = free_port()
    log = open(tmp_path / "dagster_dev.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [BIN / "dagster", "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        env=instance_env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                nodes = graphql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"]
                if nodes:
                    break
            except (OSError, AssertionError):
                pass
            assert server.poll() is None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "dagster dev did not answer within 120 s"
            time.sleep(1)
        yield port, instance_env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


@pytest.mark.slow
def test_dagster_dev_serves_the_graph_and_runs_a_ui_backfill(dagster_dev):
    port, env = dagster_dev
    nodes = graphql(
        port,
        "{ assetNodes { assetKey { path } dependencyKeys { path } "
        "assetChecksOrError { ... on AssetChecks { checks { name } } } } }",
    )["assetNodes"]
    graph = {tuple(n["assetKey"]["path"]): n for n in nodes}
    assert sorted(graph) == sorted(tuple(a) for a in ASSETS)
    assert sorted(d["path"] for d in graph[("core", "cost_facts")]["dependencyKeys"]) == [
        ["raw", "aws_cur"],
        ["raw", "azure_cost"],
        ["raw", "focus"],
        ["raw", "gcp_billing"],
    ]
    assert sorted(
        c["name"] for c in graph[("core", "cost_facts")]["assetChecksOrError"]["checks"]
    ) == [
        "contract",
        "money_conserved_from_sources",
        "no_duplicate_charges",
        "reconciles_with_aws_cur",
        "reconciles_with_azure_cost",
        "reconciles_with_focus",
        "reconciles_with_gcp_billing",
    ]
    assert [d["path"] for d in graph[("core", "allocated_costs")]["dependencyKeys"]] == [
        ["core", "amortized_costs"]
    ]
    assert [d["path"] for d in graph[("mart", "daily_cost_by_team")]["dependencyKeys"]] == [
        ["core", "allocated_costs"]
    ]
    assert sorted(
        c["name"] for c in graph[("core", "amortized_costs")]["assetChecksOrError"]["checks"]
    ) == ["commitments_balance", "contract", "money_conserved", "spread_schedules_exact"]

    launched = graphql(
        port,
        """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
             __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        {
            "params": {
                "partitionsByAssets": [
                    {
                        "assetKey": {"path": key},
                        "partitions": {"range": {"start": "2025-01-01", "end": "2025-01-31"}},
                    }
                    for key in ASSETS
                ]
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    deadline = time.monotonic() + 400
    status = None
    while time.monotonic() < deadline:
        status = graphql(
            port,
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }",
            {"id": launched["backfillId"]},
        )["partitionBackfillOrError"]["status"]
        if status not in ("REQUESTED", "CANCELING", "FAILING"):
            break
        time.sleep(2)
    assert status == "COMPLETED_SUCCESS"
    totals = month_totals(env["FINOPS_WAREHOUSE"])
    assert [(c, days) for c, days, _ in totals] == [("EUR", 31), ("USD", 31)]
    assert totals == facts_totals(env["FINOPS_WAREHOUSE"])

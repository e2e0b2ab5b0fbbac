"""The platform running itself: real webserver + daemon, deliveries landing locally and in S3,
sensors launching runs, a restatement flowing downstream, a late source alerting, a backfill
launched the way the UI launches it, the UI in Chromium.

Everything runs on 127.0.0.1 with the default sensor intervals (30 s); the test prints how long a
delivery takes from landing to rollup.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import psycopg2
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from finops_assets.cli import main as finops_cli
from finops_assets.defs.ops.sensors import SLI_NAMES
from finops_assets.lib import warehouse as wh
from finops_assets.lib.rules import default_rules_path
from finops_assets_tests.servers import (  # noqa: F401 - postgres_url_fixture is a fixture
    moto_s3_server,
    postgres_url_fixture,
    s3_test_environ,
    upload_folder_to_s3,
)

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A local webhook endpoint that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def wait_for(what: str, condition: Callable[[], object], timeout: float, log: Path) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(2)
    tail = log.read_text(errors="replace").splitlines()[-60:] if log.exists() else []
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n" + "\n".join(tail))


def materialized_days(instance: dg.DagsterInstance, key: str) -> set[str]:
    return set(instance.get_materialized_partitions(dg.AssetKey.from_user_string(key)))


def newest_materialization(instance: dg.DagsterInstance, key: str, day: str) -> int:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey.from_user_string(key), asset_partitions=[day]),
        limit=1,
    ).records
    return records[0].storage_id if records else 0


def query(warehouse: Path, sql: str, params=()) -> list[tuple]:
    """Read the warehouse the way the pipeline's own steps do: holding its lock, so this test
    never makes a run fail by holding the file open (what readers should not do: they read the
    serving snapshot, see serving())."""
    lock = wh.exclusive_lock(wh.lock_path_for(str(warehouse)), 600)
    with lock, duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def serving(warehouse: Path, sql: str) -> list[tuple] | None:
    """What a reader sees in the serving snapshot beside the warehouse (None before the first
    publish)."""
    snapshot = warehouse.with_name("serving.duckdb")
    if not snapshot.exists():
        return None
    with duckdb.connect(str(snapshot), read_only=True) as con:
        try:
            return con.execute(sql).fetchall()
        except duckdb.CatalogException:  # published, but not this table yet
            return None


def runs_in_flight(instance: dg.DagsterInstance) -> int:
    return len(
        instance.get_run_records(
            dg.RunsFilter(
                statuses=[
                    dg.DagsterRunStatus.QUEUED,
                    dg.DagsterRunStatus.NOT_STARTED,
                    dg.DagsterRunStatus.STARTING,
                    dg.DagsterRunStatus.STARTED,
                ]
            )
        )
    )


@pytest.fixture
def dagster_dev(tmp_path, postgres_url, monkeypatch) -> Iterator[dict]:
    """Landing folder + S3 bucket + webhook receiver + `dagster dev` (webserver and daemon) with a
    temp DAGSTER_HOME on the production instance configuration: deploy/dagster-postgres.yaml
    against a fresh database of the local PostgreSQL server (the SQLite default of `make run`
    is exercised by test_instance.py); everything stopped at teardown."""
    today = datetime.now(UTC).date()
    start = today - timedelta(days=8)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    database = f"e2e_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(psycopg2.connect(postgres_url)) as con:
        con.autocommit = True
        con.cursor().execute(f"CREATE DATABASE {database}")
    instance_url = postgres_url.rsplit("/", 1)[0] + f"/{database}"
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", instance_url)
    landing, staging = tmp_path / "landing", tmp_path / "staging"
    landing.mkdir()
    rules = yaml.safe_load(default_rules_path().read_text())
    rules["freshness"] = {
        "aws_cur": {"sla_hours": 48},
        "azure_cost": {"sla_hours": 24},
        "focus": {"sla_hours": 24},
    }
    rules["alerts"] = {
        "webhooks": [{"name": "local", "url_env": "E2E_WEBHOOK_URL", "format": "slack"}],
        "include_run_failures": True,
    }
    # A budget the first day already exceeds: its alert reaches the webhook once per period.
    rules["budgets"] = [{"name": "e2e-usd", "amount": 1, "currency": "USD"}]
    config = tmp_path / "rules.yaml"
    config.write_text(yaml.safe_dump(rules, sort_keys=False))
    port = free_port()
    with moto_s3_server() as s3, Receiver() as receiver:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FINOPS_", "AWS_"))},
            **{k: v for k, v in s3_test_environ(s3).items() if v is not None},
            "DAGSTER_HOME": str(home),
            "DAGSTER_POSTGRES_URL": instance_url,
            "FINOPS_START_DATE": start.isoformat(),
            "FINOPS_LANDING_URL": str(landing),
            "FINOPS_LANDING_URL_AWS_CUR": "s3://billing-exports/cur",
            "FINOPS_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "FINOPS_CONFIG": str(config),
            "E2E_WEBHOOK_URL": receiver.url,
        }
        log = tmp_path / "dagster_dev.log"
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster"),
                "dev",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                str(REPO / "workspace.yaml"),
            ],
            cwd=REPO,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Dagster maps SIGTERM to whatever SIGINT does, and a job started with `&` by a
            # non-interactive shell (a CI runner) inherits SIGINT ignored: the webserver then
            # ignores the SIGTERM below and teardown waited out the 60 s before SIGKILL.
            preexec_fn=_interrupts_as_default,
        )
        try:
            yield {
                "start": start,
                "today": today,
                "home": home,
                "landing": landing,
                "staging": staging,
                "s3": s3,
                "receiver": receiver,
                "url": f"http://127.0.0.1:{port}",
                "log": log,
                "warehouse": tmp_path / "warehouse.duckdb",
                "tmp": tmp_path,
            }
        finally:
            stopping = time.monotonic()
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
                print(f"dagster dev stopped in {time.monotonic() - stopping:.1f} s")
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _interrupts_as_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def generate(out: Path, start: date, days: int, sources: str, seed: int) -> None:
    argv = ["sample-data", "--out", str(out), "--start", start.isoformat(), "--days", str(days)]
    assert (
        finops_cli([*argv, "--rows-per-day", "300", "--seed", str(seed), "--sources", sources]) == 0
    )


def restate_focus(landing: Path, day: date) -> float:
    """A new AWS FOCUS delivery of the month holding ``day`` (not the newest month: the landed
    window spans two months on the first days of a month) in which ``day``'s costs doubled;
    returns the new Σ BilledCost of that day in USD."""
    month = landing / "focus/aws/aws-focus" / f"billing_period={day:%Y-%m}"
    newest = sorted(p for p in month.iterdir() if p.is_dir())[-1]
    # Written beside the landing zone and renamed into it whole, the way a provider's delivery
    # becomes visible complete (a sensor tick never sees the copy half made).
    staged = landing.parent / "restating" / "29991231T000000Z-restated"
    shutil.copytree(newest, staged)
    target = newest.parent / staged.name
    (part,) = staged.glob("*.parquet")
    table = pq.read_table(part)
    on_day = pc.equal(pc.cast(pc.cast(table["ChargePeriodStart"], "timestamp[s]"), "date32"), day)
    for column in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
        values = table[column]
        doubled = pc.if_else(on_day, pc.multiply(values, 2), values)
        table = table.set_column(
            table.column_names.index(column), column, doubled.cast(values.type)
        )
    pq.write_table(table, part)
    manifest = json.loads((staged / "manifest.json").read_text())
    # Newer than the delivery it restates (the sample dates its deliveries after the month).
    created = datetime.fromisoformat(manifest["createdAt"].replace("Z", "+00:00"))
    manifest.update(deliveryId=target.name, createdAt=(created + timedelta(days=1)).isoformat())
    (staged / "manifest.json").write_text(json.dumps(manifest))
    staged.rename(target)
    usd = pc.equal(table["BillingCurrency"], "USD")
    return float(pc.sum(pc.filter(table["BilledCost"], pc.and_(on_day, usd))).as_py() or 0)


def test_deliveries_flow_to_rollups_restatements_propagate_and_late_sources_alert(dagster_dev):
    env = dagster_dev
    start, today, log = env["start"], env["today"], env["log"]
    yesterday = (today - timedelta(days=1)).isoformat()
    # FOCUS (three producers) in the local folder, the legacy CUR in S3, Azure held back after
    # three days (its SLA is 24 h, so yesterday's partition is late).
    generate(env["staging"] / "main", start, 8, "focus,aws-cur", seed=21)
    generate(env["staging"] / "azure", start, 3, "azure", seed=22)
    wait_for("the UI", lambda: _ui_up(env["url"]), 180, log)

    landed = time.monotonic()
    shutil.copytree(env["staging"] / "main" / "focus", env["landing"] / "focus")
    shutil.copytree(env["staging"] / "azure" / "azure", env["landing"] / "azure")
    upload_folder_to_s3(
        env["s3"], env["staging"] / "main" / "aws-cur", "billing-exports", "cur/aws-cur"
    )

    instance = dg.DagsterInstance.from_config(str(env["home"]))
    # The production configuration: runs, events and sensor ticks in PostgreSQL.
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    wait_for(
        "raw/focus, raw/aws_cur and raw/azure_cost loaded by the sensors",
        lambda: (
            {yesterday} <= materialized_days(instance, "raw/focus")
            and {yesterday} <= materialized_days(instance, "raw/aws_cur")
            and start.isoformat() in materialized_days(instance, "raw/azure_cost")
        ),
        420,
        log,
    )
    raw_loaded = time.monotonic() - landed
    wait_for(
        "the rollup of yesterday",
        lambda: (
            yesterday in materialized_days(instance, "mart/daily_cost_by_team")
            and runs_in_flight(instance) == 0
        ),
        600,
        log,
    )
    to_rollup = time.monotonic() - landed
    print(
        f"\nlanding -> raw: {raw_loaded:.0f} s; landing -> mart/daily_cost_by_team: {to_rollup:.0f} s"
    )

    # Every run the sensors launched names its deliveries; each (day, delivery) once.
    runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": "focus_deliveries"}))
    assert runs and all(r.dagster_run.tags.get("finops/deliveries") for r in runs)
    assert len({r.dagster_run.tags["dagster/run_key"] for r in runs}) == len(runs)
    rows = query(
        env["warehouse"],
        "SELECT ProviderName, count(*) FROM core.cost_facts WHERE charge_date = ? GROUP BY 1",
        [yesterday],
    )
    assert {p for p, _ in rows} >= {"AWS", "Microsoft", "Google Cloud"} or len(rows) >= 3
    assert (
        query(
            env["warehouse"],
            "SELECT count(*) FROM raw.aws_cur WHERE charge_date = ? AND x_SourceFile LIKE 'aws-cur/%'",
            [yesterday],
        )[0][0]
        > 0
    )

    # A restated month: the provider doubles one day's cost; that day is replaced downstream.
    # First every landed day through to the rollup: "yesterday is in the mart and nothing is in
    # flight" also holds in the gap between one sensor tick's runs and the next (the landed window
    # spans two billing months on the first days of a month, so the days come in several runs).
    day = start + timedelta(days=3)
    landed_days = {(start + timedelta(days=k)).isoformat() for k in range((today - start).days)}
    usd_of_day = (
        "SELECT (SELECT sum(billed_cost) FROM mart.daily_cost_by_team WHERE charge_date = $1 "
        "AND BillingCurrency = 'USD'), (SELECT sum(BilledCost) FROM core.cost_facts "
        "WHERE charge_date = $1 AND BillingCurrency = 'USD')"
    )

    def every_day_through_the_rollup() -> bool:
        if runs_in_flight(instance) or not landed_days <= materialized_days(
            instance, "mart/daily_cost_by_team"
        ):
            return False
        mart_usd, facts_usd = query(env["warehouse"], usd_of_day, [day])[0]
        return mart_usd is not None and abs(float(mart_usd) - float(facts_usd or 0)) < 0.005

    wait_for("every landed day in the rollup", every_day_through_the_rollup, 600, log)
    print(
        f"landing -> every landed day in mart/daily_cost_by_team: {time.monotonic() - landed:.0f} s"
    )
    before = newest_materialization(instance, "mart/daily_cost_by_team", day.isoformat())
    old = query(
        env["warehouse"],
        "SELECT sum(billed_cost) FROM mart.daily_cost_by_team WHERE charge_date = ? "
        "AND BillingCurrency = 'USD'",
        [day],
    )[0][0]
    new_aws_day = restate_focus(env["landing"], day)
    restated = time.monotonic()
    restated_facts_sql = (
        "SELECT count(*) FROM core.cost_facts WHERE charge_date = ? AND x_Source = 'focus' "
        "AND x_DeliveryId = '29991231T000000Z-restated'"
    )

    def restated_through_mart() -> bool:
        # Other runs (the CUR's later assemblies restate the same day) may rebuild the mart before
        # the restated FOCUS delivery is loaded: wait for the facts to hold it and for a mart
        # materialization newer than the facts' own, with nothing left in flight.
        if runs_in_flight(instance):
            return False
        mart = newest_materialization(instance, "mart/daily_cost_by_team", day.isoformat())
        facts = newest_materialization(instance, "core/cost_facts", day.isoformat())
        return (
            mart > before
            and mart > facts
            and query(env["warehouse"], restated_facts_sql, [day])[0][0] > 0
        )

    wait_for("the restated day rebuilt in mart/daily_cost_by_team", restated_through_mart, 600, log)
    print(f"restatement -> mart/daily_cost_by_team: {time.monotonic() - restated:.0f} s")
    new = query(
        env["warehouse"],
        "SELECT sum(billed_cost) FROM mart.daily_cost_by_team WHERE charge_date = ? "
        "AND BillingCurrency = 'USD'",
        [day],
    )[0][0]
    aws_facts = query(
        env["warehouse"],
        "SELECT sum(BilledCost) FROM core.cost_facts WHERE charge_date = ? AND x_Source = 'focus' "
        "AND x_DeliveryId = '29991231T000000Z-restated' AND BillingCurrency = 'USD'",
        [day],
    )[0][0]
    assert float(aws_facts) == pytest.approx(new_aws_day, abs=0.01)
    assert float(new) == pytest.approx(float(old) + new_aws_day / 2, abs=0.02)

    # Azure stopped after three days: its freshness check fails and the webhook hears of it once.
    alert = wait_for(
        "the freshness alert on the webhook",
        lambda: [
            m
            for m in env["receiver"].received
            if "delivered_on_time" in json.dumps(m) and "azure_cost" in json.dumps(m)
        ],
        180,
        log,
    )
    assert len(alert) == 1
    assert "text" in alert[0]  # the Slack-compatible payload

    # The budget: its actual thresholds crossed, alerted once per budget period (the days were
    # built by several runs, not in order).
    budget_alerts = wait_for(
        "the budget alert on the webhook",
        lambda: [m for m in env["receiver"].received if "budget_thresholds" in json.dumps(m)],
        300,
        log,
    )
    periods = [
        re.search(r"e2e-usd \(all cost, (\d{4}-\d\d-\d\d)\.\.", json.dumps(m)).group(1)
        for m in budget_alerts
    ]
    assert len(periods) == len(set(periods)), periods
    assert "actual crossed 100%" in json.dumps(budget_alerts[0])

    # The graph the UI serves, then a backfill of every asset over the landed days launched the
    # way the UI launches it; the rollup then holds exactly the facts' money, per currency.
    check_graph(env["url"])
    # Azure delivered only its first three days: its raw table is backfilled over those (on the
    # first days of a month no Azure run covers the new month, and that load rightly fails).
    backfill_everything(
        env["url"],
        start.isoformat(),
        yesterday,
        log,
        ranges={"raw/azure_cost": (start.isoformat(), (start + timedelta(days=2)).isoformat())},
    )
    wait_for("no run in flight", lambda: runs_in_flight(instance) == 0, 300, log)
    days = (today - start).days
    rollup = query(
        env["warehouse"],
        "SELECT BillingCurrency, count(DISTINCT charge_date), round(sum(billed_cost), 2) "
        "FROM mart.daily_cost_by_team GROUP BY 1 ORDER BY 1",
    )
    facts = query(
        env["warehouse"],
        "SELECT BillingCurrency, count(DISTINCT charge_date), round(sum(BilledCost), 2) "
        "FROM core.cost_facts GROUP BY 1 ORDER BY 1",
    )
    assert {c: n for c, n, _ in rollup}["USD"] == days
    assert rollup == facts
    # The daemon published the backfill for readers (serving_after_success -> publish_serving).
    rollup_sql = (
        "SELECT BillingCurrency, count(DISTINCT charge_date), round(sum(billed_cost), 2) "
        "FROM mart.daily_cost_by_team GROUP BY 1 ORDER BY 1"
    )
    wait_for(
        "the serving snapshot to show the backfill",
        lambda: serving(env["warehouse"], rollup_sql) == rollup,
        300,
        log,
    )
    published = instance.get_run_records(dg.RunsFilter(job_name="publish_serving"))
    assert published and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in published)

    # The UI, in headless Chromium: the asset graph and one partition's metadata.
    check_ui(env["url"], yesterday, env["tmp"])


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
    ["insights", "anomalies"],
    ["insights", "forecasts"],
    ["insights", "budget_status"],
    ["ops", "pipeline_health"],
]
# Assets without partitions: in the graph, not in a partition backfill.
UNPARTITIONED = [["insights", "anomaly_quality"]]
# Monthly (billing period) assets: in the graph, closed by the close_month job, not backfilled.
MONTHLY = [
    ["finance", "invoices"],
    ["finance", "invoice_reconciliation"],
    ["finance", "chargeback"],
    ["finance", "month_close"],
    ["finance", "monthly_report"],
]


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


def check_graph(url: str) -> None:
    """The asset graph and checks as the webserver serves them to the UI."""
    nodes = graphql(
        url,
        "{ assetNodes { assetKey { path } dependencyKeys { path } "
        "assetChecksOrError { ... on AssetChecks { checks { name } } } } }",
    )["assetNodes"]
    graph = {tuple(n["assetKey"]["path"]): n for n in nodes}
    assert sorted(graph) == sorted(tuple(a) for a in ASSETS + UNPARTITIONED + MONTHLY)

    def deps(*key):
        return sorted(d["path"] for d in graph[key]["dependencyKeys"])

    def checks(*key):
        return sorted(c["name"] for c in graph[key]["assetChecksOrError"]["checks"])

    assert deps("core", "cost_facts") == [
        ["raw", "aws_cur"],
        ["raw", "azure_cost"],
        ["raw", "focus"],
        ["raw", "gcp_billing"],
    ]
    assert deps("core", "allocated_costs") == [["core", "amortized_costs"]]
    assert checks("ops", "pipeline_health") == sorted(f"slo_{n}" for n in SLI_NAMES)
    assert deps("mart", "daily_cost_by_team") == [["core", "allocated_costs"]]
    assert checks("core", "cost_facts") == [
        "contract",
        "money_conserved_from_sources",
        "no_duplicate_charges",
        "reconciles_with_aws_cur",
        "reconciles_with_azure_cost",
        "reconciles_with_focus",
        "reconciles_with_gcp_billing",
    ]
    assert checks("core", "amortized_costs") == [
        "commitments_balance",
        "contract",
        "money_conserved",
        "spread_schedules_exact",
    ]
    assert "delivered_on_time" in checks("raw", "azure_cost")


def failed_steps(url: str) -> str:
    """The error of every failed step of the instance's failed runs (for a failed backfill)."""
    data = graphql(
        url,
        "{ runsOrError(filter: {statuses: [FAILURE]}) { ... on Runs { results { runId "
        "eventConnection { events { __typename ... on ExecutionStepFailureEvent { stepKey "
        "error { message cause { message stack } } } } } } } } }",
    )
    lines = []
    for run in data["runsOrError"]["results"]:
        for event in run["eventConnection"]["events"]:
            if event["__typename"] == "ExecutionStepFailureEvent":
                error = event["error"]
                cause = error.get("cause") or {}
                lines.append(
                    f"{run['runId']} {event['stepKey']}: {error['message']} "
                    f"{cause.get('message', '')}{''.join(cause.get('stack') or [])[-1500:]}"
                )
    return "\n".join(lines) or "no failed step recorded"


def backfill_everything(
    url: str, first: str, last: str, log: Path, ranges: dict[str, tuple[str, str]] | None = None
) -> None:
    """Every asset over ``first``..``last`` (or its own range in ``ranges``) through
    ``launchPartitionBackfill``, the mutation the UI's "Materialize selected" dialog sends; waits
    for the backfill to succeed."""
    ranges = ranges or {}
    launched = graphql(
        url,
        """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
             __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        {
            "params": {
                "partitionsByAssets": [
                    {
                        "assetKey": {"path": key},
                        "partitions": {
                            "range": dict(
                                zip(
                                    ("start", "end"),
                                    ranges.get("/".join(key), (first, last)),
                                    strict=True,
                                )
                            )
                        },
                    }
                    for key in ASSETS
                ]
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def finished():
        status = graphql(
            url,
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) "
            "{ ... on PartitionBackfill { status } } }",
            {"id": launched["backfillId"]},
        )["partitionBackfillOrError"]["status"]
        return None if status in ("REQUESTED", "CANCELING", "FAILING") else status

    status = wait_for("the UI backfill", finished, 600, log)
    assert status == "COMPLETED_SUCCESS", f"{status}:\n{failed_steps(url)}"


def _ui_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def check_ui(url: str, day: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # The graph upstream of the rollup: every raw source, the core chain, the mart.
            page.goto(
                f"{url}/assets/mart/daily_cost_by_team?view=lineage&lineageScope=upstream"
                "&lineageDepth=5",
                wait_until="domcontentloaded",
            )
            for node in ("aws_cur", "azure_cost", "cost_facts", "allocated_costs"):
                page.get_by_text(node, exact=True).first.wait_for(timeout=90_000)
            page.screenshot(path=str(out / "asset-graph.png"), full_page=True)
            page.goto(
                f"{url}/assets/mart/daily_cost_by_team?view=partitions&partition={day}",
                wait_until="domcontentloaded",
            )
            page.get_by_text("billed_cost_USD").first.wait_for(timeout=90_000)
            page.screenshot(path=str(out / "partition-metadata.png"), full_page=True)
        finally:
            browser.close()
    assert (out / "asset-graph.png").stat().st_size > 10_000
    assert (out / "partition-metadata.png").stat().st_size > 10_000

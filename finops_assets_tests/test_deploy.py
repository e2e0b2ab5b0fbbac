"""deploy/: the production files agree with the code and with each other.

What cannot run here (a Kubernetes cluster, a registry to build the image from) is checked for
consistency: the Helm values name the module, environment variables, pools and volume the code
uses, and the Dockerfile starts the same code location. The Dagster chart's values schema is not
available offline (the chart is served from dagster-io.github.io/helm), so the values are not
validated against it; the PostgreSQL instance file is exercised for real below and by the
end-to-end test, which runs on it.
"""

import contextlib
import importlib
import re
import tomllib
import uuid
from pathlib import Path

import dagster as dg
import psycopg2
import yaml

from finops_assets.settings import Settings
from finops_assets_tests.servers import postgres_url_fixture  # noqa: F401 - the fixture

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"


def helm_values() -> dict:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def settings_env_vars() -> set[str]:
    text = (REPO / "finops_assets" / "settings.py").read_text()
    return set(re.findall(r'"(FINOPS_[A-Z_]+)"', text))


def test_the_helm_values_name_what_the_code_reads():
    values = helm_values()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    assert importlib.import_module(module).defs  # the code location loads
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert set(env) <= settings_env_vars(), set(env) - settings_env_vars()
    # Every value is one the settings accept (a bucket for the serving zone, a date, ...).
    settings = Settings.from_env(env)
    assert settings.serving_url and settings.serving_url.startswith(("s3://", "gs://"))
    # The warehouse (and the serving zone, closed months and reports beside it) is on the volume.
    mounts = {m["mountPath"] for m in deployment["volumeMounts"]}
    assert str(Path(env["FINOPS_WAREHOUSE"]).parent) in mounts
    assert Path(env["FINOPS_CONFIG"]).parent.as_posix() in mounts
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    assert values["postgresql"]["enabled"] is False


def test_the_code_location_loads_as_the_code_server_loads_it():
    """The repository check the code server runs (unique op, graph and job names), which
    in-process job execution skips: a duplicate name fails every sensor in production."""
    from finops_assets.definitions import defs

    repository = defs().get_repository_def()
    jobs = {job.name for job in repository.get_all_jobs()}
    assert {"publish_serving", "close_month", "__ASSET_JOB"} <= jobs
    assert "serving_after_success" in {s.name for s in repository.sensor_defs}


def test_every_instance_file_serializes_warehouse_steps_the_same_way():
    local = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["concurrency"]["pools"]
    postgres = yaml.safe_load((DEPLOY / "dagster-postgres.yaml").read_text())
    helm = helm_values()["concurrency"]
    assert local == postgres["concurrency"]["pools"] == {"granularity": "op", "default_limit": 1}
    assert helm["enabled"] is True
    assert helm["pools"] == {"defaultLimit": 1, "granularity": "op"}


def test_the_dockerfile_starts_the_same_code_location_with_pinned_extras():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "postgres" in project["optional-dependencies"]
    assert "'.[postgres]'" in dockerfile
    # dagster-k8s is released with the other dagster libraries: the same version.
    pins = dict(re.findall(r'"(dagster-[a-z]+)==([\d.]+)"', (REPO / "pyproject.toml").read_text()))
    assert f"'dagster-k8s=={pins['dagster-duckdb']}'" in dockerfile
    (deployment,) = helm_values()["dagster-user-deployments"]["deployments"]
    assert '"--module-name", "finops_assets.definitions"' in dockerfile
    assert f'"{deployment["port"]}"' in dockerfile
    for copied in re.findall(r"^COPY (.+) \./", dockerfile, flags=re.M):
        for name in copied.split():
            assert (REPO / name).exists(), name


def test_the_postgres_instance_file_runs_on_postgresql(tmp_path, postgres_url, monkeypatch):
    database = f"instance_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(psycopg2.connect(postgres_url)) as con:
        con.autocommit = True
        con.cursor().execute(f"CREATE DATABASE {database}")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_url.rsplit("/", 1)[0] + f"/{database}")
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster-postgres.yaml").read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"

        @dg.asset(pool="finops_warehouse")
        def probe() -> int:
            return 1

        result = dg.materialize([probe], instance=instance)
        assert result.success
        assert instance.get_latest_materialization_event(dg.AssetKey("probe")) is not None

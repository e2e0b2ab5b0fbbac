"""insights/anomalies through Dagster: tables written in one go, the new_anomalies check fails
once per new anomaly (what the alert targets send), usage is conserved, feedback is counted."""

from datetime import date, timedelta

import dagster as dg
import duckdb
import numpy as np
import pytest

from finops_assets.cli import main as cli
from finops_assets.definitions import build_defs
from finops_assets.settings import Settings
from finops_assets_tests.insights import synthetic

START = date(2026, 1, 1)
DAYS = 150
SPIKE = 146  # day index of a +2,500 USD spike on the payments team's EC2 instance (recent)
LAST = START + timedelta(days=DAYS - 1)


@pytest.fixture()
def warehouse(tmp_path):
    path = str(tmp_path / "warehouse.duckdb")
    rows = synthetic.frame(
        np.random.default_rng(7), START, DAYS, spikes=[(SPIKE, "i-pay-1", 2500.0)]
    )
    with duckdb.connect(path) as con:
        synthetic.create_table(con, "core.allocated_costs", rows)
    return path


def materialize(path, tmp_path, instance, first, last, assets=("insights/anomalies",), config=None):
    defs = build_defs(
        Settings(
            landing_url=str(tmp_path / "landing"),
            warehouse=path,
            start_date="2023-01-01",
            config_path=config,
        )
    )
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        asset_selection=[dg.AssetKey.from_user_string(a) for a in assets],
        raise_on_error=False,
    )


def checks(result):
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_a_spike_alerts_once_with_its_root_cause_and_feedback_is_counted(
    warehouse, tmp_path, capsys
):
    with dg.instance_for_test() as instance:
        result = materialize(warehouse, tmp_path, instance, LAST - timedelta(days=29), LAST)
        assert result.success
        evaluations = checks(result)
        assert evaluations["usage_conserved"].passed
        new = evaluations["new_anomalies"]
        assert not new.passed and new.severity == dg.AssetCheckSeverity.WARN
        day = (START + timedelta(days=SPIKE)).isoformat()
        # One line per monitor that saw it, each naming the day, impact and the instance.
        lines = new.description.splitlines()[1:]
        assert len(lines) == 5, new.description
        team = next(line for line in lines if "] team team=payments (USD)" in line)
        assert f"spike {day}" in team and "Owner: payments." in team
        assert "ResourceId=i-pay-1 +2," in team or "ServiceName=Amazon EC2 +2," in team

        with duckdb.connect(warehouse, read_only=True) as con:
            events = con.execute(
                "SELECT anomaly_id, monitor, kind, status, impact, completeness, model_version "
                "FROM insights.anomalies ORDER BY monitor"
            ).fetchall()
            days = con.execute(
                "SELECT min(charge_date), max(charge_date), count(DISTINCT monitor) "
                "FROM insights.anomaly_days"
            ).fetchone()
            newest = con.execute(
                "SELECT status, waiting_on FROM insights.anomaly_days "
                "WHERE charge_date = ? AND monitor = 'team' AND series = 'team=payments'",
                [LAST],
            ).fetchone()
        assert [e[1] for e in events] == [
            "service_category",
            "sub_account",
            "team",
            "team_service",
            "total",
        ]
        assert all(e[2] == "spike" and e[4] == pytest.approx(2500, rel=0.15) for e in events)
        assert "aws_cur complete through" in events[0][5] and events[0][6]
        # Written: the run's days and the 7 before them; all five monitors.
        assert days == (LAST - timedelta(days=36), LAST, 5)
        # The newest AWS day is still filling in: not scored, and it says what it waits for.
        assert newest[0] == "incomplete" and "aws_cur delivered through" in newest[1]

        # The next day's run finds the same anomaly and does not alert it again.
        again = materialize(warehouse, tmp_path, instance, LAST, LAST)
        assert again.success and checks(again)["new_anomalies"].passed

        team_id = next(e[0] for e in events if e[1] == "team")
        assert (
            cli(
                [
                    "anomaly",
                    "feedback",
                    team_id,
                    "no",
                    "--note",
                    "load test",
                    "--warehouse",
                    warehouse,
                ]
            )
            == 0
        )
        assert "Recorded no for anomaly" in capsys.readouterr().out
        assert (
            cli(["anomaly", "feedback", "20990101-deadbeef", "yes", "--warehouse", warehouse]) == 2
        )
        assert "no anomaly '20990101-deadbeef'" in capsys.readouterr().err
        quality = materialize(
            warehouse, tmp_path, instance, LAST, LAST, assets=("insights/anomaly_quality",)
        )
        assert quality.success
        with duckdb.connect(warehouse, read_only=True) as con:
            rates = dict(
                con.execute(
                    "SELECT monitor, false_positive_rate FROM insights.anomaly_quality "
                    "WHERE rated > 0"
                ).fetchall()
            )
        assert rates == {"team": 1.0}

"""`make bench` keeps working: a tiny day through the same code path, with sane figures."""

import json

from finops_assets_tests import bench


def test_bench_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "result.json"
    assert bench.main(["--rows", "3000", "--keep", str(tmp_path / "work"), "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    (result,) = figures["focus_day"]
    assert figures["bench_seconds"] > 0
    assert 0 < result["contracts_seconds"] < result["checks_seconds"] < result["run_seconds"]
    assert result["rows"] == 3000
    assert sorted(s["name"] for s in result["stages"]) == [
        "core/allocated_costs",
        "core/amortized_costs",
        "core/cost_facts",
        "mart/commitment_coverage",
        "mart/commitment_utilization",
        "mart/daily_cost_by_team",
        "mart/untagged_spend",
        "raw/aws_cur",
        "raw/azure_cost",
        "raw/focus",
        "raw/gcp_billing",
    ]
    assert result["chain_seconds"] > 0 and result["floor_seconds"] > 0
    assert result["amortization_allocation_seconds"] > 0
    # the bench rules put rows on every rung the generated day can reach
    assert {"resource_tag", "inherited", "shared_pool"} <= set(result["allocation_rules"])
    assert 0 < result["chain_peak_rss"] < 4 * 2**30
    assert "chain / floor" in capsys.readouterr().out


def test_cur_stage_runs_and_reports_every_figure(tmp_path, monkeypatch):
    # No converter here: the stage must still report ours and both floors.
    monkeypatch.setattr(bench, "FOCUS_CONVERTER", tmp_path / "absent")
    text, figures = bench.bench_cur(2000, tmp_path / "work")
    for needle in (
        "raw/aws_cur (CUR)",
        "core/cost_facts (CUR)",
        "CUR floor (plain DuckDB)",
        "same FOCUS output, one statement",
        "ours / floor = ",
        "ours / same-output floor = ",
    ):
        assert needle in text, text
    rows = [line.split() for line in text.splitlines() if "(CUR)" in line]
    # name ... seconds rows/s peak "MiB": seconds is the fourth token from the end.
    assert len(rows) == 2 and all(float(r[-4]) > 0 for r in rows), text
    # The same-output floor writes what core.cost_facts holds for the day, row for row.
    assert figures["same_output_floor"]["rows"] == figures["fact_rows"] > 0
    assert figures["ratio"] > 0 and "focus_converter" not in figures


def test_cur_month_through_the_cli(tmp_path):
    text, figures = bench.bench_cur_month(3100, tmp_path / "month")
    assert "CLI / floor = " in text, text
    assert figures["rows"] > 0 and figures["cli_seconds"] > figures["run_seconds"] > 0
    # raw/aws_cur and core/cost_facts checks ran inside the one run
    assert figures["checks_evaluated"] >= 5


def test_backfill_is_one_run(tmp_path):
    text, figures = bench.bench_backfill(3, 500, tmp_path / "backfill")
    assert figures["runs"] == 1 and figures["rows"] == 1500, text
    assert 0 < figures["dagster_share"] < 1


def test_bench_close_runs_and_reports(tmp_path):
    """`make bench-close` on a small month: the three closes run in their own processes and
    the figures are sane (the 5M-row figure itself is `make bench-close`)."""
    from finops_assets_tests import bench_close

    out = tmp_path / "close.json"
    assert bench_close.main(["--rows", "30000", "--rows-per-day", "30", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["month_rows"]["core.allocated_costs"] >= 30000
    assert figures["month_rows"]["core.cost_facts"] >= 30000
    assert figures["invoices"] == 3  # one per provider and account of the sample
    assert figures["close"]["exit_code"] == 0
    assert "2025-01 closed as v1" in " ".join(figures["close"]["output"])
    assert "2025-01 unchanged, kept v1" in " ".join(figures["reclose_unchanged"]["output"])
    assert figures["close_refused"]["exit_code"] == 1
    assert "outside tolerance" in " ".join(figures["close_refused"]["output"])
    for run in ("close", "reclose_unchanged", "close_refused"):
        assert 0 < figures[run]["seconds"] < 120
        assert 50 < figures[run]["peak_rss_mb"] < 4096
    assert figures["floor_seconds"] > 0 and figures["startup_seconds"] > 0

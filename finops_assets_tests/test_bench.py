"""`make bench` keeps working: a tiny day through the same code path, with sane figures."""

import json

from finops_assets_tests import bench


def test_bench_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "result.json"
    assert bench.main(["--rows", "3000", "--keep", str(tmp_path / "work"), "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
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
    # No converter here: the stage must still report ours, the floor and the raw-copy bound.
    monkeypatch.setattr(bench, "FOCUS_CONVERTER", tmp_path / "absent")
    text = bench.bench_cur(2000, tmp_path / "work")
    for needle in (
        "raw/aws_cur (CUR)",
        "core/cost_facts (CUR)",
        "CUR floor (plain DuckDB)",
        "(lower bound)",
        "ours / floor = ",
        "ours / (floor + raw copy) = ",
    ):
        assert needle in text, text
    rows = [line.split() for line in text.splitlines() if "(CUR)" in line]
    # name ... seconds rows/s peak "MiB": seconds is the fourth token from the end.
    assert len(rows) == 2 and all(float(r[-4]) > 0 for r in rows), text

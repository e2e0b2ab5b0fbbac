"""`make bench` keeps working: a tiny day through the same code path, with sane figures."""

import json

from finops_assets_tests import bench


def test_bench_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "result.json"
    assert bench.main(["--rows", "3000", "--keep", str(tmp_path / "work"), "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert result["rows"] == 3000
    assert sorted(s["name"] for s in result["stages"]) == [
        "core/cost_facts",
        "mart/daily_cost_by_team",
        "mart/untagged_spend",
        "raw/aws_cur",
        "raw/azure_cost",
        "raw/focus",
        "raw/gcp_billing",
    ]
    assert result["chain_seconds"] > 0 and result["floor_seconds"] > 0
    assert 0 < result["chain_peak_rss"] < 4 * 2**30
    assert "chain / floor" in capsys.readouterr().out

"""The registry is the only list of sources, definitions are built from settings alone, and pure
modules stay free of Dagster."""

import ast
from datetime import timedelta
from pathlib import Path

import dagster as dg
import yaml

from finops_assets.definitions import build_defs
from finops_assets.lib.rules import default_rules_path
from finops_assets.settings import LANDING_ROUTE_ENV_VARS, Settings
from finops_assets.sources import LANDING_ROOTS, SOURCES

PACKAGE = Path(__file__).resolve().parents[1] / "finops_assets"


def test_every_source_folder_has_one_registry_line_and_the_same_shape():
    folders = {
        p.name for p in (PACKAGE / "defs" / "sources").iterdir() if (p / "__init__.py").exists()
    }
    assert folders == {spec.provider for spec in SOURCES}
    for spec in SOURCES:
        folder = PACKAGE / "defs" / "sources" / spec.provider
        for module in ("assets", "checks", "sensors", "deliveries", spec.mapping):
            assert (folder / f"{module}.py").exists(), f"{folder}/{module}.py"
        facts = spec.fact_source
        assert (facts.name, facts.raw_table) == (spec.name, spec.raw_table)
    assert sorted(LANDING_ROOTS) == ["aws-cur", "aws-data-exports", "azure", "focus", "gcp"]
    assert LANDING_ROUTE_ENV_VARS["aws-data-exports"] == "FINOPS_LANDING_URL_AWS_DATA_EXPORTS"


def test_no_private_dagster_imports_and_dagster_only_in_the_dagster_side():
    pure_in_source_folders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                assert not name.startswith("dagster._"), f"{path}: private import {name}"
                if name.split(".")[0] == "dagster" and "sources" in path.parts:
                    pure_in_source_folders.append(path.relative_to(PACKAGE).as_posix())
    assert sorted(set(pure_in_source_folders)) == sorted(
        [
            f"defs/sources/{s.provider}/{m}.py"
            for s in SOURCES
            for m in ("assets", "checks", "sensors")
        ]
        + ["defs/sources/shared.py"]
    )


def test_definitions_use_the_partitions_and_freshness_rules_of_their_settings(tmp_path):
    rules = yaml.safe_load(default_rules_path().read_text())
    rules["freshness"] = {"aws_cur": {"sla_hours": 5}}
    config = tmp_path / "rules.yaml"
    config.write_text(yaml.safe_dump(rules))
    defs = build_defs(
        Settings(landing_url=str(tmp_path), start_date="2024-06-01", config_path=str(config))
    )
    graph = defs.resolve_asset_graph()
    aws = graph.get(dg.AssetKey(["raw", "aws_cur"]))
    assert aws.partitions_def.start.date().isoformat() == "2024-06-01"
    assert aws.freshness_policy.fail_window.to_timedelta() == timedelta(hours=29)
    assert graph.get(dg.AssetKey(["raw", "focus"])).freshness_policy is None
    # A second build in the same process, other settings: its own partitions (no import state).
    other = build_defs(Settings(landing_url=str(tmp_path), start_date="2023-01-01"))
    focus = other.resolve_asset_graph().get(dg.AssetKey(["raw", "focus"]))
    assert focus.partitions_def.start.date().isoformat() == "2023-01-01"
    assert focus.freshness_policy.fail_window.to_timedelta() == timedelta(hours=48)
    # core/cost_facts reads every registered source; each has its freshness check.
    facts = graph.get(dg.AssetKey(["core", "cost_facts"]))
    assert sorted(k.to_user_string() for k in facts.parent_keys) == sorted(
        s.raw_key for s in SOURCES
    )
    for spec in SOURCES:
        key = dg.AssetCheckKey(dg.AssetKey.from_user_string(spec.raw_key), "delivered_on_time")
        assert key in graph.asset_check_keys

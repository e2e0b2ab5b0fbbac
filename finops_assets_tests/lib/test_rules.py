"""The rules YAML is validated when definitions load, with file, line and fix."""

import pytest

from finops_assets.lib.rules import RulesError, load_rules, parse_rules

VALID = """
dimensions:
  department: {aliases: [Department, dept]}
  team: {aliases: [" Team ", squad]}
  environment: {aliases: [env], missing: __unknown__, values: {Production: Prod}}
  cost_center: {aliases: [costcenter]}
"""


def test_shipped_rules_load():
    rules = load_rules()
    assert rules.ownership_dimension == "team"
    assert "squad" in rules.dimensions["team"].aliases
    assert rules.dimensions["environment"].values["production"] == "prod"


def test_aliases_and_values_are_normalized():
    rules = parse_rules(VALID)
    assert rules.dimensions["team"].aliases == ("team", "squad")
    assert rules.dimensions["environment"].values == {"production": "prod"}


def test_alias_in_two_dimensions_is_an_error():
    text = VALID.replace("[env]", "[env, squad]")
    with pytest.raises(RulesError, match="'squad' is listed under both 'team' and 'environment'"):
        parse_rules(text, "rules.yaml")


def test_unknown_key_names_the_line():
    text = VALID + "ownership_dimensoin: team\n"
    with pytest.raises(RulesError, match=r"rules\.yaml:7: ownership_dimensoin: unknown key"):
        parse_rules(text, "rules.yaml")


def test_wrong_type_names_the_line():
    text = VALID.replace("team: {aliases", "team: {aliases: 5, x").replace(
        'team: {aliases: 5, x: [" Team ", squad]}', "team: {aliases: 5}"
    )
    with pytest.raises(RulesError, match=r"rules\.yaml:4: dimensions\.team\.aliases"):
        parse_rules(text, "rules.yaml")


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(RulesError, match="Set FINOPS_CONFIG to an existing"):
        load_rules(tmp_path / "nope.yaml")

"""ServiceSubcategory always belongs to its ServiceCategory; provider units become FOCUS units."""

import duckdb
import pytest

from finops_assets.lib.focus_taxonomy import (
    SERVICE_SUBCATEGORIES,
    allowed_subcategory_pairs,
    focus_unit_sql,
    service_subcategory_sql,
    subcategory_candidate_sql,
)
from finops_assets.lib.loading import sql_literal


def _one(expression: str):
    return duckdb.execute(f"SELECT {expression}").fetchall()[0][0]


def _subcategory(category: str | None, candidate: str | None) -> str:
    c = "NULL::VARCHAR" if category is None else sql_literal(category)
    v = "NULL::VARCHAR" if candidate is None else sql_literal(candidate)
    return _one(service_subcategory_sql(c, v))


def test_the_taxonomy_is_focus_1_2s():
    # 19 categories; every one has its own 'Other (...)' value (FOCUS 1.2 allowed values).
    assert len(SERVICE_SUBCATEGORIES) == 19
    pairs = allowed_subcategory_pairs()
    assert ("Databases", "Data Warehouses") in pairs
    assert ("Mobile", "Other (Mobile)") in pairs
    assert len({v for _, v in pairs}) == len(pairs)  # one parent per subcategory


@pytest.mark.parametrize(
    ("category", "candidate", "expected"),
    [
        ("Compute", "Virtual Machines", "Virtual Machines"),
        # A candidate from another category never crosses over: the category decides.
        ("Analytics", "Data Warehouses", "Other (Analytics)"),
        ("Storage", None, "Other (Storage)"),
        ("Storage", "not a subcategory", "Other (Storage)"),
        (None, None, "Other (Other)"),
        ("", "Virtual Machines", "Other (Other)"),
    ],
)
def test_subcategory_is_always_an_allowed_child_of_the_category(category, candidate, expected):
    assert _subcategory(category, candidate) == expected


def test_candidates_by_aws_product_code_then_service_name():
    lookup = subcategory_candidate_sql("a", "b")
    rows = duckdb.sql(
        f"SELECT {lookup} FROM (VALUES ('AmazonEC2', NULL), ('awskms', NULL), "
        "('SomethingNew', 'AWSDataTransfer'), ('x', 'Cloud Storage'), ('x', 'y')) t(a, b)"
    ).fetchall()
    assert [r[0] for r in rows] == [
        "Virtual Machines",
        "Secret Management",
        "Network Connectivity",
        "Object Storage",
        None,
    ]


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("Hrs", "Hours"),
        ("GB-Mo", "GB-Months"),
        ("ReadCapacityUnit-Hrs", "ReadCapacityUnit-Hours"),
        ("NatGateway-Hours", "NatGateway-Hours"),
        ("Requests", "Requests"),
        ("gibibyte month", "GiB-Months"),
        ("hour", "Hours"),
        ("10K", "10000 Units"),
        ("1M", "1000000 Units"),
        ("100", "100 Units"),
        ("1", "Units"),
        ("1 GB/Month", "GB-Months"),
        ("10 Hours", "10 Hours"),
        (None, None),
    ],
)
def test_provider_units_become_focus_units(unit, expected):
    value = "NULL::VARCHAR" if unit is None else sql_literal(unit)
    assert _one(focus_unit_sql(value)) == expected

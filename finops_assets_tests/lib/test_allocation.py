"""Allocation: each rung of the fallback chain, shared-pool splits in whole cents, currencies kept
apart, and the rules YAML checks. Every expected figure is computed by hand in the comments."""

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from finops_assets.lib.allocation import allocated_costs_sql
from finops_assets.lib.rules import RulesError, default_rules_path, parse_rules

DAY = date(2025, 1, 1)
BASE = default_rules_path().read_text()

COLUMNS = (
    "charge_date",
    "BillingCurrency",
    "ProviderName",
    "BillingAccountId",
    "SubAccountId",
    "ServiceName",
    "ServiceCategory",
    "ChargeCategory",
    "ResourceId",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "ConsumedQuantity",
    "CommitmentDiscountId",
    "Tags",
    "x_CommitmentPool",
    "x_AccountTags",
    "x_InheritedTags",
    "x_ProjectLabels",
    "x_ProjectAncestors",
    "x_SourceFile",
    "x_DeliveryId",
    "x_Source",
    "x_AmortizationClass",
)


def row(
    cost: str,
    *,
    tags: str = "{}",
    account: str = "111111111111",
    service: str = "EC2",
    currency: str = "USD",
    provider: str = "AWS",
    category: str = "Usage",
    effective: str | None = None,
    quantity: str | None = None,
    pool: bool = False,
    inherited: str | None = None,
    labels: str | None = None,
    account_tags: str | None = None,
    ancestors: str | None = None,
    resource: str | None = None,
    day: date = DAY,
) -> tuple:
    effective = cost if effective is None else effective
    return (
        day,
        currency,
        provider,
        "payer",
        account,
        service,
        "Compute",
        category,
        resource or f"r-{service}-{account}-{cost}",
        Decimal(cost),
        Decimal(effective),
        Decimal(cost),
        Decimal(cost),
        None if quantity is None else Decimal(quantity),
        None,
        tags,
        pool,
        account_tags,
        inherited,
        labels,
        ancestors,
        "file.parquet",
        "delivery-1",
        "aws_cur" if provider == "AWS" else "gcp_billing",
        None,
    )


def allocate(rules_yaml: str, rows: list[tuple], days=(DAY, DAY)) -> list[dict]:
    rules = parse_rules(BASE + rules_yaml, "rules.yaml")
    con = duckdb.connect()
    con.execute("CREATE SCHEMA core")
    types = {
        "charge_date": "DATE",
        "BilledCost": "DECIMAL(38, 12)",
        "EffectiveCost": "DECIMAL(38, 12)",
        "ListCost": "DECIMAL(38, 12)",
        "ContractedCost": "DECIMAL(38, 12)",
        "ConsumedQuantity": "DECIMAL(38, 12)",
        "x_CommitmentPool": "BOOLEAN",
    }
    con.execute(
        "CREATE TABLE core.amortized_costs ("
        + ", ".join(f'"{c}" {types.get(c, "VARCHAR")}' for c in COLUMNS)
        + ")"
    )
    con.executemany(
        f"INSERT INTO core.amortized_costs VALUES ({', '.join('?' for _ in COLUMNS)})", rows
    )
    sql = allocated_costs_sql(rules, "core.amortized_costs", days, COLUMNS)
    relation = con.sql(
        f"SELECT * FROM ({sql}) ORDER BY team, x_AllocationRule, BillingCurrency, EffectiveCost"
    )
    return [dict(zip(relation.columns, r, strict=True)) for r in relation.fetchall()]


def totals(rows: list[dict], *keys: str, measure: str = "EffectiveCost") -> dict:
    out: dict = {}
    for r in rows:
        key = tuple(r[k] for k in keys)
        out[key] = out.get(key, Decimal(0)) + r[measure]
    return out


OWNERS = """
owners:
  payments: {dimensions: {department: fintech, cost_center: cc-100}}
  search: {dimensions: {department: product}}
  platform: {dimensions: {department: engineering}}
  shared-services: {dimensions: {department: finance}}
"""


def test_each_rung_of_the_chain_and_the_rule_it_records():
    rules = (
        OWNERS
        + """
hierarchy:
  "222222222222": {parent: ou-core}
  ou-core: {owner: platform, dimensions: {environment: prod}}
shared_pools:
  - name: support
    match: {ServiceName: [AWS Support (Business)]}
    split: proportional
"""
    )
    rows = allocate(
        rules,
        [
            row("60.00", tags='{"user:Team": " Payments ", "env": "production"}'),
            row("30.00", tags='{"squad": "search"}', account="333333333333"),
            # untagged, but its account sits under ou-core (owner platform, environment prod)
            row("10.00", account="222222222222", service="S3"),
            # the support plan: untagged, its account is not in the hierarchy -> the pool
            row("100.00", service="AWS Support (Business)", category="Purchase"),
            # untagged, unknown account, no pool -> kept visible as __untagged__
            row("5.00", account="999999999999"),
            # unused commitment cost under the central policy
            row("0", effective="7.00", pool=True, resource="ri-1"),
        ],
    )
    by_rule = totals(rows, "team", "x_AllocationRule")
    # The direct owners weigh the support plan: payments 60, search 30, platform 10 of 100.
    assert by_rule == {
        ("payments", "resource_tag"): Decimal("60.00"),
        ("search", "resource_tag"): Decimal("30.00"),
        ("platform", "inherited"): Decimal("10.00"),
        ("payments", "shared_pool"): Decimal("60.00"),
        ("search", "shared_pool"): Decimal("30.00"),
        ("platform", "shared_pool"): Decimal("10.00"),
        ("__untagged__", "default_pool"): Decimal("5.00"),
        ("__commitments__", "commitment_pool"): Decimal("7.00"),
    }
    payments = next(
        r for r in rows if r["x_AllocationRule"] == "resource_tag" and r["team"] == "payments"
    )
    # department and cost center come from the owners table, environment from the tag value map
    assert (payments["department"], payments["cost_center"], payments["environment"]) == (
        "fintech",
        "cc-100",
        "prod",
    )
    inherited = next(r for r in rows if r["x_AllocationRule"] == "inherited")
    assert inherited["x_AllocationDetail"] == "hierarchy 222222222222"
    assert (inherited["department"], inherited["environment"]) == ("engineering", "prod")
    support = [r for r in rows if r["x_AllocationRule"] == "shared_pool"]
    assert {r["x_SharedPool"] for r in support} == {"support"}
    assert sorted(r["x_AllocationShare"] for r in support) == pytest.approx([0.1, 0.3, 0.6])
    assert all(r["x_AllocationRule"] for r in rows)
    # money conserved: 60 + 30 + 10 + 100 + 5 + 7 effective, 60 + 30 + 10 + 100 + 5 billed
    assert sum(r["EffectiveCost"] for r in rows) == Decimal("212.00")
    assert sum(r["BilledCost"] for r in rows) == Decimal("205.00")


def test_even_split_rounds_to_cents_that_add_up_exactly():
    rules = (
        OWNERS
        + """
shared_pools:
  - name: logging
    match: {ServiceName: [CloudWatch]}
    split: even
    owners: [payments, search, platform]
"""
    )
    rows = allocate(rules, [row("100.00", service="CloudWatch")])
    # 10000 cents / 3 = 3333.33: each gets 3333, the largest remainder (a tie, broken by owner
    # dimensions in order) gets the 10000th cent.
    shares = sorted((r["EffectiveCost"] for r in rows), reverse=True)
    assert shares == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]
    assert sum(r["BilledCost"] for r in rows) == Decimal("100.00")


def test_sub_cent_amounts_keep_every_fraction_on_the_largest_share():
    rules = (
        OWNERS
        + """
shared_pools:
  - name: dns
    match: {ServiceName: [Route53]}
    split: fixed
    weights: {payments: 0.5, search: 0.25, platform: 0.25}
"""
    )
    rows = allocate(rules, [row("0.017", service="Route53")])
    # 1 whole cent (0.01 of 0.017) -> payments gets floor(0.5) = 0, search 0, platform 0, and the
    # one remaining cent goes to the largest remainder (payments, 0.5); the 0.007 rest joins the
    # largest weight (payments): 0.017, 0, 0.
    by_team = totals(rows, "team")
    assert by_team == {
        ("payments",): Decimal("0.017"),
        ("search",): Decimal("0.00"),
        ("platform",): Decimal("0.00"),
    }


def test_negative_pool_amounts_split_exactly():
    rules = (
        OWNERS
        + """
shared_pools:
  - name: credits
    match: {ChargeCategory: [Credit]}
    split: even
    owners: [payments, search, platform]
"""
    )
    rows = allocate(rules, [row("-10.00", category="Credit")])
    # -1000 cents / 3 = -333.33 each: floor -334 (remainder 0.67 each, sum -1002), so the rest
    # -1000 - (-1002) = 2 cents go to two shares: -3.33, -3.33, -3.34.
    assert sorted(r["EffectiveCost"] for r in rows) == [
        Decimal("-3.34"),
        Decimal("-3.33"),
        Decimal("-3.33"),
    ]


def test_currencies_are_split_separately_and_never_mixed():
    rules = (
        OWNERS
        + """
shared_pools:
  - name: support
    match: {ServiceName: [Support]}
    split: proportional
"""
    )
    rows = allocate(
        rules,
        [
            row("80.00", tags='{"team": "payments"}'),
            row("20.00", tags='{"team": "search"}'),
            row("50.00", tags='{"team": "search"}', currency="EUR"),
            row("10.00", service="Support"),
            row("9.00", service="Support", currency="EUR"),
        ],
    )
    pooled = totals(
        [r for r in rows if r["x_AllocationRule"] == "shared_pool"], "BillingCurrency", "team"
    )
    # USD pool 10.00 by USD weights 80:20; the EUR pool only has EUR owner search.
    assert pooled == {
        ("USD", "payments"): Decimal("8.00"),
        ("USD", "search"): Decimal("2.00"),
        ("EUR", "search"): Decimal("9.00"),
    }


def test_per_provider_pools_and_metric_splits():
    rules = (
        OWNERS
        + """
shared_pools:
  - name: aws-support
    match: {ServiceName: [Support], ProviderName: [AWS]}
    split: proportional
    per_provider: true
  - name: cluster
    match: {ServiceName: [EKS control plane]}
    split: metric
    metric: ConsumedQuantity
    metric_match: {ServiceName: [EC2]}
"""
    )
    rows = allocate(
        rules,
        [
            row("30.00", tags='{"team": "payments"}', quantity="3"),
            row(
                "90.00",
                tags='{"team": "search"}',
                provider="Google Cloud",
                service="Compute Engine",
            ),
            row("10.00", tags='{"team": "search"}', quantity="1"),
            row("12.00", service="Support"),
            row("8.00", service="EKS control plane"),
        ],
    )
    pooled = totals([r for r in rows if r["x_SharedPool"]], "x_SharedPool", "team")
    # aws-support weighs AWS owners only: payments 30, search 10 -> 9.00 / 3.00 (GCP's 90 ignored).
    # cluster weighs EC2 ConsumedQuantity: payments 3, search 1 -> 6.00 / 2.00.
    assert pooled == {
        ("aws-support", "payments"): Decimal("9.00"),
        ("aws-support", "search"): Decimal("3.00"),
        ("cluster", "payments"): Decimal("6.00"),
        ("cluster", "search"): Decimal("2.00"),
    }


def test_a_pool_with_nobody_to_share_with_falls_to_the_default_pool():
    rules = (
        OWNERS
        + """
default_pool: shared-services
shared_pools:
  - name: support
    match: {ServiceName: [Support]}
    split: proportional
"""
    )
    rows = allocate(rules, [row("12.00", service="Support"), row("3.00", account="999")])
    assert totals(rows, "team", "x_AllocationRule", "department") == {
        ("shared-services", "default_pool", "finance"): Decimal("15.00"),
    }
    assert any("nobody to share with" in r["x_AllocationDetail"] for r in rows)


def test_provider_inherited_tags_and_project_labels():
    rows = allocate(
        OWNERS,
        [
            row(
                "4.00",
                provider="Google Cloud",
                inherited='{"team": "search"}',
                labels='{"team": "payments"}',
            ),
            row("6.00", provider="Google Cloud", labels='{"Team": "Payments"}'),
        ],
    )
    # GCP inherited tags win over project labels; both are the "inherited" rung.
    assert totals(rows, "team", "x_AllocationDetail") == {
        ("search", "provider inherited tags"): Decimal("4.00"),
        ("payments", "project labels"): Decimal("6.00"),
    }


def test_tag_matched_pool():
    rules = (
        OWNERS
        + """
shared_pools:
  - name: shared-k8s
    match: {tags: {cost-pool: [Kubernetes]}}
    split: even
    owners: [payments, search]
"""
    )
    rows = allocate(rules, [row("5.00", tags='{"user:Cost-Pool": "kubernetes"}')])
    assert totals(rows, "team") == {("payments",): Decimal("2.50"), ("search",): Decimal("2.50")}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "shared_pools:\n  - name: x\n    match: {ServiceName: [a]}\n    split: proportionl\n",
            r"rules\.yaml:\d+: shared_pools\.0\.split: unknown split method 'proportionl'",
        ),
        (
            "shared_pools:\n  - name: x\n    match: {ServiceName: [a]}\n    split: fixed\n"
            "    weights: {payments: 0.6, search: 0.3}\n",
            r"shared_pools\.0\.weights: weights sum to 0\.9, not 1",
        ),
        (
            "shared_pools:\n  - name: x\n    match: {ServiceName: [a]}\n    split: even\n"
            "    owners: [paymnets]\n",
            r"shared_pools\.0\.owners\.0: unknown owner 'paymnets'; declare it under owners:",
        ),
        (
            'hierarchy:\n  "1": {parent: ou}\n  ou: {parent: "1"}\n',
            r"hierarchy\.1\.parent: the hierarchy has a cycle \(1 -> ou -> 1\)",
        ),
    ],
)
def test_rules_mistakes_name_the_line_and_the_fix(extra, message):
    text = BASE + OWNERS + extra
    with pytest.raises(RulesError, match=message) as error:
        parse_rules(text, "rules.yaml")
    line = int(str(error.value).split("rules.yaml:")[1].split(":")[0])
    # the reported line is inside the appended section, not the top of the file
    assert line > BASE.count("\n") + OWNERS.count("\n")


def test_gcp_folders_above_a_project_are_hierarchy_nodes():
    rules = (
        OWNERS
        + """
hierarchy:
  folders/42: {owner: search}
  organizations/7: {owner: platform, dimensions: {environment: prod}}
  billing-01: {owner: payments}
"""
    )
    chain = (
        '[{"resource_name": "projects/p1", "display_name": "p1"}, '
        '{"resource_name": "folders/42", "display_name": "data"}, '
        '{"resource_name": "organizations/7", "display_name": "example.com"}]'
    )
    only_org = '[{"resource_name": "projects/p2"}, {"resource_name": "organizations/7"}]'
    rows = allocate(
        rules,
        [
            # the nearest ancestor with an owner wins: the folder, not the organization
            row("4.00", provider="Google Cloud", account="p1", ancestors=chain),
            row("6.00", provider="Google Cloud", account="p2", ancestors=only_org),
        ],
    )
    # Both rows' billing account "payer" is not a node; were it one, the folders would still win.
    assert totals(rows, "team", "x_AllocationDetail", "environment") == {
        ("search", "hierarchy folders/42", "prod"): Decimal("4.00"),
        ("platform", "hierarchy organizations/7", "prod"): Decimal("6.00"),
    }


def test_aws_account_tags_are_inherited_by_untagged_resources():
    rules = OWNERS + 'hierarchy:\n  "222222222222": {owner: payments}\n'
    rows = allocate(
        rules,
        [
            # CUR 2.0 account tags (x_AccountTags) name the owner of an untagged resource
            row("7.00", account_tags='{"team": "search", "env": "prod"}'),
            # ...but the rules' hierarchy for the account comes first, and resource tags win
            row("2.00", account="222222222222", account_tags='{"team": "search"}'),
            row("1.00", tags='{"team": "platform"}', account_tags='{"team": "search"}'),
        ],
    )
    assert totals(rows, "team", "x_AllocationDetail", "environment") == {
        ("search", "account tags", "prod"): Decimal("7.00"),
        ("payments", "hierarchy 222222222222", "__unknown__"): Decimal("2.00"),
        ("platform", "tag team", "__unknown__"): Decimal("1.00"),
    }

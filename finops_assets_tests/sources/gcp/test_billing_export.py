"""GCP billing export (nested Parquet) -> raw.gcp_billing -> FOCUS 1.2, on tiny hand-made files.

Real DuckDB on real Parquet with the export's nested types; every expected figure is worked out
by hand next to it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_assets.defs.sources.gcp.billing_export import (
    GcpFormatError,
    bigquery_days_query,
    check_export_columns,
    gcp_basis_totals_sql,
    gcp_focus_sql,
    gcp_staging_select,
    latest_dump_rows_sql,
    struct_fields,
    validate_bigquery_table,
)
from finops_assets.defs.sources.gcp.deliveries import dump_name, find_gcp_dump_files
from finops_assets.lib.focus import FOCUS_COLUMNS
from finops_assets.lib.loading import sql_literal
from finops_assets.lib.rules import RulesError, default_rules_path, parse_rules

D = Decimal
DAY = date(2025, 3, 10)
DAYS = (DAY, DAY)
ACCOUNT = "0A1B2C-3D4E5F-6A7B8C"

KV = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
TAGS = pa.list_(
    pa.struct(
        [
            ("key", pa.string()),
            ("value", pa.string()),
            ("inherited", pa.bool_()),
            ("namespace", pa.string()),
        ]
    )
)
CREDITS = pa.list_(
    pa.struct(
        [
            ("name", pa.string()),
            ("amount", pa.float64()),
            ("full_name", pa.string()),
            ("id", pa.string()),
            ("type", pa.string()),
        ]
    )
)
TS = pa.timestamp("us", tz="UTC")
STANDARD = pa.schema(
    [
        ("billing_account_id", pa.string()),
        ("service", pa.struct([("id", pa.string()), ("description", pa.string())])),
        ("sku", pa.struct([("id", pa.string()), ("description", pa.string())])),
        ("usage_start_time", TS),
        ("usage_end_time", TS),
        (
            "project",
            pa.struct(
                [
                    ("id", pa.string()),
                    ("number", pa.string()),
                    ("name", pa.string()),
                    ("labels", KV),
                    ("ancestors", pa.list_(pa.struct([("resource_name", pa.string())]))),
                ]
            ),
        ),
        ("labels", KV),
        ("system_labels", KV),
        (
            "location",
            pa.struct([("location", pa.string()), ("region", pa.string()), ("zone", pa.string())]),
        ),
        ("tags", TAGS),
        ("export_time", TS),
        ("cost", pa.float64()),
        ("currency", pa.string()),
        ("currency_conversion_rate", pa.float64()),
        (
            "usage",
            pa.struct(
                [
                    ("amount", pa.float64()),
                    ("unit", pa.string()),
                    ("amount_in_pricing_units", pa.float64()),
                    ("pricing_unit", pa.string()),
                ]
            ),
        ),
        ("credits", CREDITS),
        ("invoice", pa.struct([("month", pa.string())])),
        ("cost_type", pa.string()),
        (
            "adjustment_info",
            pa.struct(
                [
                    ("id", pa.string()),
                    ("description", pa.string()),
                    ("mode", pa.string()),
                    ("type", pa.string()),
                ]
            ),
        ),
        ("cost_at_list", pa.float64()),
    ]
)
DETAILED = STANDARD.append(
    pa.field("resource", pa.struct([("name", pa.string()), ("global_name", pa.string())]))
)


def credit(kind: str, amount: float | None, credit_id: str | None = None) -> dict:
    return {
        "name": kind.title(),
        "amount": amount,
        "full_name": None,
        "id": credit_id,
        "type": kind,
    }


def row(**overrides) -> dict:
    base = {
        "billing_account_id": ACCOUNT,
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": "SKU-CORE", "description": "N2 Instance Core running in Americas"},
        "usage_start_time": datetime(2025, 3, 10, 5, tzinfo=UTC),
        "usage_end_time": datetime(2025, 3, 10, 6, tzinfo=UTC),
        "project": {
            "id": "payments-prod",
            "number": "1001",
            "name": "Payments",
            "labels": [{"key": "department", "value": "finance"}],
            "ancestors": [{"resource_name": "organizations/1"}],
        },
        "labels": [],
        "system_labels": [],
        "location": {"location": "us-central1", "region": "us-central1", "zone": "us-central1-a"},
        "tags": [],
        "export_time": datetime(2025, 3, 11, 4, tzinfo=UTC),
        "cost": 10.0,
        "currency": "USD",
        "currency_conversion_rate": 1.0,
        "usage": {
            "amount": 3600.0,
            "unit": "seconds",
            "amount_in_pricing_units": 1.0,
            "pricing_unit": "hour",
        },
        "credits": [],
        "invoice": {"month": "202503"},
        "cost_type": "regular",
        "adjustment_info": {"id": None, "description": None, "mode": None, "type": None},
        "cost_at_list": 12.0,
    }
    base.update(overrides)
    return base


def write(path: Path, rows: list[dict], schema: pa.Schema = STANDARD) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def stage(
    con: duckdb.DuckDBPyConnection, files: list[tuple[Path, str]], policy: str = "discount"
) -> None:
    """Load ``(file, dump)`` pairs into raw.gcp_billing the way the asset does."""
    staged = []
    for path, dump in files:
        source = (
            f"(SELECT *, 'delivery' AS x_DeliveryId, {sql_literal(path.name)} AS x_SourceFile, "
            f"'gcp/{ACCOUNT}' AS x_Dataset, '2025-03' AS x_BillingPeriod, "
            f"DATE '{DAY.isoformat()}' AS x_UsageDateFolder, {sql_literal(dump)} AS x_Dump "
            f"FROM read_parquet({sql_literal(str(path))}))"
        )
        described = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        check_export_columns(described, path.name)
        staged.append(gcp_staging_select(source, described, policy))
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("DROP TABLE IF EXISTS raw.gcp_billing")
    con.execute(
        "CREATE TABLE raw.gcp_billing AS "
        + latest_dump_rows_sql("\n UNION ALL BY NAME \n".join(staged))
    )


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'America/Los_Angeles'")  # charge days must stay UTC
    yield connection
    connection.close()


def facts(con, columns: str) -> list[tuple]:
    return con.execute(
        f"SELECT {columns} FROM ({gcp_focus_sql('raw.gcp_billing', DAYS)}) ORDER BY ALL"
    ).fetchall()


def basis(con) -> list[tuple]:
    return con.execute(gcp_basis_totals_sql("raw.gcp_billing", DAYS)).fetchall()


CREDITED_ROWS = [
    # 10.00 - 1.00 (SUD) - 2.00 (PROMOTION) - 3.00 (CUD) = 4.00 under discount, 6.00 under payment
    row(
        credits=[
            credit("SUSTAINED_USAGE_DISCOUNT", -1.0),
            credit("PROMOTION", -2.0, "promo-1"),
            credit("COMMITTED_USAGE_DISCOUNT", -3.0, "cud-cpu-1"),
        ]
    ),
    # 5.00 - 0.50 (FREE_TIER) = 4.50 either way
    row(cost=5.0, credits=[credit("FREE_TIER", -0.5)]),
    # tax 1.20, no credits
    row(cost=1.2, cost_type="tax", sku={"id": "", "description": "Tax"}, cost_at_list=None),
]


@pytest.mark.parametrize(
    ("policy", "billed", "rows"),
    [
        # 4.00 + 4.50 + 1.20
        ("discount", D("9.70"), [(D("1.20"), D("0")), (D("4.00"), D("-2")), (D("4.50"), D("0"))]),
        # 6.00 + 4.50 + 1.20: the promotion pays the bill, it does not lower the cost
        ("payment", D("11.70"), [(D("1.20"), D("0")), (D("4.50"), D("0")), (D("6.00"), D("-2"))]),
    ],
)
def test_credits_are_netted_and_promotion_follows_the_policy(con, tmp_path, policy, billed, rows):
    stage(con, [(write(tmp_path / "a.parquet", CREDITED_ROWS), "dump-1")], policy)
    (total,) = facts(con, "sum(BilledCost), sum(EffectiveCost), count(*)")
    assert total == (billed, billed, 3)
    assert basis(con) == [(DAY, "USD", ACCOUNT, "2025-03", 3, billed, billed)]
    assert facts(con, "BilledCost, x_PromotionCredits, x_PromotionPolicy") == [
        (*r, policy) for r in rows
    ]
    # Credits keep their exact amounts as JSON for allocation.
    (credits,) = [json.loads(c) for (c,) in facts(con, "x_Credits") if "PROMOTION" in c]
    assert [c["type"] for c in credits] == [
        "SUSTAINED_USAGE_DISCOUNT",
        "PROMOTION",
        "COMMITTED_USAGE_DISCOUNT",
    ]
    assert [D(str(c["amount"])) for c in credits] == [D("-1"), D("-2"), D("-3")]


def test_committed_use_credit_fills_the_commitment_columns(con, tmp_path):
    stage(con, [(write(tmp_path / "a.parquet", CREDITED_ROWS), "dump-1")])
    assert facts(
        con,
        "CommitmentDiscountId, CommitmentDiscountType, CommitmentDiscountCategory, "
        "CommitmentDiscountStatus, PricingCategory, ChargeCategory",
    ) == [
        ("cud-cpu-1", "Committed Use Discount", "Usage", "Used", "Committed", "Usage"),
        (None, None, None, None, "Standard", "Usage"),
        (None, None, None, None, None, "Tax"),
    ]


def test_cost_types_map_to_charge_categories_and_corrections_stay_negative(con, tmp_path):
    correction = {"id": "adj-1", "description": "fix", "mode": "PARTIAL_CORRECTION"}
    rows = [
        row(sku={"id": "A", "description": "N2 core"}),
        row(sku={"id": "B", "description": "Commitment v1: Cpu in Americas for 1 Year"}, cost=7.0),
        row(sku={"id": "C", "description": "Tax"}, cost_type="tax", cost=0.8),
        # A February usage fixed on the March invoice: -4.00 cost, +0.40 of credits given back.
        row(
            sku={"id": "D", "description": "correction"},
            cost_type="adjustment",
            cost=-4.0,
            credits=[credit("SUSTAINED_USAGE_DISCOUNT", 0.4)],
            adjustment_info={**correction, "type": "USAGE_CORRECTION"},
            usage_start_time=datetime(2025, 3, 10, 7, tzinfo=UTC),
            invoice={"month": "202503"},
        ),
        row(
            sku={"id": "E", "description": "goodwill"},
            cost_type="adjustment",
            cost=-2.5,
            adjustment_info={**correction, "type": "GOODWILL"},
            invoice={"month": "202504"},
        ),
        row(sku={"id": "F", "description": "rounding"}, cost_type="rounding_error", cost=0.003),
        row(sku={"id": "G", "description": "new"}, cost_type="future_type", cost=1.0),
    ]
    stage(con, [(write(tmp_path / "a.parquet", rows), "dump-1")])
    assert facts(
        con,
        "SkuId, ChargeCategory, ChargeClass, ChargeFrequency, ServiceCategory, BilledCost, "
        "x_UnknownLineItemType",
    ) == [
        ("A", "Usage", None, "Usage-Based", "Compute", D("10"), False),
        ("B", "Purchase", None, "Recurring", "Compute", D("7"), False),
        ("C", "Tax", None, "Usage-Based", "Other", D("0.8"), False),
        ("D", "Adjustment", None, "One-Time", "Compute", D("-3.6"), False),  # -4.00 + 0.40
        ("E", "Credit", "Correction", "One-Time", "Compute", D("-2.5"), False),  # April fixes March
        ("F", "Adjustment", None, "One-Time", "Compute", D("0.003"), False),
        ("G", "Usage", None, "Usage-Based", "Compute", D("1"), True),
    ]
    # 10 + 7 + 0.8 - 3.6 + 0.003 + 1 = 15.203 on the March invoice; -2.5 on April's.
    assert [(b[3], b[4], b[5]) for b in basis(con)] == [
        ("2025-03", 6, D("15.203")),
        ("2025-04", 1, D("-2.5")),
    ]
    assert con.execute(
        "SELECT strftime(timezone('UTC', BillingPeriodStart), '%Y-%m'), sum(BilledCost) "
        f"FROM ({gcp_focus_sql('raw.gcp_billing', DAYS)}) GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("2025-03", D("15.203")), ("2025-04", D("-2.5"))]


def test_tags_are_labels_plus_own_tags_with_inheritance_kept_apart(con, tmp_path):
    tagged = row(
        labels=[{"key": "Team", "value": "Checkout"}, {"key": "env", "value": "prod"}],
        tags=[
            {"key": "env", "value": "tag-loses", "inherited": False, "namespace": "p"},
            {"key": "owner", "value": "ana", "inherited": False, "namespace": "p"},
            {"key": "owner", "value": "second", "inherited": False, "namespace": "org"},
            {"key": "cost-center", "value": "cc-1", "inherited": True, "namespace": "org"},
        ],
        system_labels=[{"key": "compute.googleapis.com/machine_spec", "value": "n2-standard-4"}],
    )
    stage(con, [(write(tmp_path / "a.parquet", [tagged, row()]), "dump-1")])
    tags = facts(con, "Tags, x_InheritedTags, x_ProjectLabels, x_SystemLabels, x_ProjectAncestors")
    assert [json.loads(t[0]) for t in tags] == [
        {"Team": "Checkout", "env": "prod", "owner": "ana"},  # keys exact, label wins, first tag
        {},
    ]
    assert json.loads(tags[0][1]) == {"cost-center": "cc-1"}
    assert json.loads(tags[0][2]) == {"department": "finance"}
    assert json.loads(tags[0][3]) == {"compute.googleapis.com/machine_spec": "n2-standard-4"}
    assert json.loads(tags[0][4]) == [{"resource_name": "organizations/1"}]


def test_standard_detailed_and_older_exports_all_load(con, tmp_path):
    detailed = write(
        tmp_path / "detailed.parquet",
        [row(resource={"name": "vm-1", "global_name": "//compute/vm-1"})],  # export batch 04:00
        DETAILED,
    )
    # Other export batches (one batch is taken from one dump only: see the dump test below).
    standard = write(
        tmp_path / "standard.parquet",
        [row(cost=2.0, export_time=datetime(2025, 3, 11, 5, tzinfo=UTC))],
    )
    # An older export without cost_type, tags, system_labels and adjustment_info.
    old_schema = pa.schema(
        [
            f
            for f in STANDARD
            if f.name not in ("cost_type", "tags", "system_labels", "adjustment_info")
        ]
    )
    old = write(
        tmp_path / "old.parquet",
        [row(cost=3.0, export_time=datetime(2025, 3, 11, 6, tzinfo=UTC))],
        old_schema,
    )
    stage(con, [(detailed, "d"), (standard, "s"), (old, "o")])
    loaded = facts(con, "ResourceId, ResourceName, BilledCost, x_LineItemType, ListCost")
    assert sorted(loaded, key=lambda r: r[2], reverse=True) == [
        ("//compute/vm-1", "vm-1", D("10"), "regular", D("12")),
        (None, None, D("3"), "regular", D("12")),  # older export: cost_type taken as regular
        (None, None, D("2"), "regular", D("12")),  # standard export: no resource columns
    ]
    described = con.execute(f"DESCRIBE {gcp_focus_sql('raw.gcp_billing', DAYS)}").fetchall()
    assert [r[0] for r in described][: len(FOCUS_COLUMNS)] == list(FOCUS_COLUMNS)
    assert {r[0] for r in described} >= {
        "charge_date",
        "x_DeliveryId",
        "x_SourceFile",
        "x_Dataset",
        "x_BillingPeriod",
    }


def test_charge_day_is_the_utc_date_of_usage_start(con, tmp_path):
    late = row(
        usage_start_time=datetime(2025, 3, 10, 23, tzinfo=UTC),
        usage_end_time=datetime(2025, 3, 11, 0, tzinfo=UTC),
    )
    stage(con, [(write(tmp_path / "a.parquet", [late]), "d")])
    assert con.execute("SELECT charge_date FROM raw.gcp_billing").fetchall() == [(DAY,)]


def test_full_reexport_and_incremental_dumps_count_each_row_once(con, tmp_path):
    first = datetime(2025, 3, 11, 4, tzinfo=UTC)
    later = datetime(2025, 3, 16, 4, tzinfo=UTC)
    original = [row(cost=10.0, export_time=first), row(cost=10.0, export_time=first)]
    correction = row(cost=-4.0, cost_type="adjustment", export_time=later)
    dump_1 = write(tmp_path / "dump-1.parquet", original)
    # A full re-export: the two original rows again (identical, and both real) + the correction.
    full = write(tmp_path / "dump-2.parquet", [*original, correction])
    stage(con, [(dump_1, "export-20250311"), (full, "export-20250316")])
    assert con.execute(
        "SELECT count(*), sum(cost), max(x_ExportWatermark) FROM raw.gcp_billing"
    ).fetchall() == [(3, D("16"), later)]
    # An incremental dump (only the rows newer than the last watermark) adds to the first dump.
    increment = write(tmp_path / "dump-3.parquet", [correction])
    stage(con, [(dump_1, "export-20250311"), (increment, "export-20250316")])
    assert con.execute("SELECT count(*), sum(cost) FROM raw.gcp_billing").fetchall() == [
        (3, D("16"))
    ]
    # The same dump copied under a second name counts once.
    stage(con, [(dump_1, "export-20250311"), (dump_1, "export-20250311-copy")])
    assert con.execute("SELECT count(*), sum(cost) FROM raw.gcp_billing").fetchall() == [
        (2, D("20"))
    ]


def test_a_file_without_credits_or_invoice_is_refused_with_the_fix(tmp_path):
    with pytest.raises(GcpFormatError, match=r"missing column\(s\) credits, invoice.*SELECT \*"):
        check_export_columns(
            {c: "" for c in STANDARD.names if c not in ("credits", "invoice")}, "f"
        )


def test_struct_fields_reads_nested_type_text():
    assert struct_fields('STRUCT("key" VARCHAR, "value" VARCHAR)[]') == {
        "key": "VARCHAR",
        "value": "VARCHAR",
    }
    assert list(
        struct_fields(
            'STRUCT(id VARCHAR, labels STRUCT("key" VARCHAR, "value" VARCHAR)[], '
            "ancestors STRUCT(resource_name VARCHAR, display_name VARCHAR)[])"
        )
    ) == ["id", "labels", "ancestors"]


def test_dump_files_are_grouped_and_bad_files_skipped_with_a_reason():
    class Obj:
        def __init__(self, key, size=10):
            self.key, self.size, self.modified = key, size, datetime(2025, 1, 1, tzinfo=UTC)

    logged: list[str] = []
    found = find_gcp_dump_files(
        [
            Obj(f"gcp/{ACCOUNT}/usage_date=2025-03-10/export-20250311T040000-000000000000.parquet"),
            Obj(f"gcp/{ACCOUNT}/usage_date=2025-03-10/export-20250311T040000-000000000001.parquet"),
            Obj(f"gcp/{ACCOUNT}/usage_date=2025-03-10/empty-000000000000.parquet", size=0),
            Obj(f"gcp/{ACCOUNT}/usage_date=2025-03-10/notes.csv"),
            Obj(f"gcp/{ACCOUNT}/usage_date=2025-02-30/x.parquet"),
            Obj(f"gcp/{ACCOUNT}/stray.parquet"),
        ],
        logged.append,
    )
    assert [(f.usage_date, f.dump) for f in found] == [(DAY, "export-20250311T040000")] * 2
    assert len(logged) == 4
    assert "empty file (0 bytes)" in logged[0]
    assert "not a Parquet or newline-delimited JSON file" in logged[1]
    assert dump_name("000000000003.parquet") == "export"


def test_bigquery_query_is_parameterized_and_prunes_partitions():
    table = "finops-demo.billing.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9"
    query = bigquery_days_query(table, (date(2025, 3, 10), date(2025, 3, 12)))
    assert query.sql == (
        f"SELECT *\nFROM `{table}`\n"
        "WHERE _PARTITIONTIME >= TIMESTAMP_SUB(TIMESTAMP_TRUNC(@start, DAY), INTERVAL 1 DAY)\n"
        "  AND usage_start_time >= @start\n"
        "  AND usage_start_time < @end"
    )
    assert "2025" not in query.sql  # values travel only as parameters
    config = query.job_config()
    assert [(p.name, p.type_, p.value) for p in config.query_parameters] == [
        ("start", "TIMESTAMP", datetime(2025, 3, 10, tzinfo=UTC)),
        ("end", "TIMESTAMP", datetime(2025, 3, 13, tzinfo=UTC)),  # three whole days, end open
    ]


@pytest.mark.parametrize(
    "table",
    [
        "finops-demo.billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9`; DROP TABLE x; --",
        "finops-demo.billing.some_other_table",
        "Finops.billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9",
        "billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9",
        "finops-demo.bill ing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9",
    ],
)
def test_bigquery_table_ids_are_validated_strictly(table):
    with pytest.raises(ValueError, match="not a Cloud Billing export table id"):
        validate_bigquery_table(table)


def test_rules_name_the_line_of_a_bad_gcp_setting():
    text = (
        default_rules_path()
        .read_text()
        .replace("promotion_credits: discount", "promotion_credits: gift-card")
    )
    with pytest.raises(RulesError, match=r"rules\.yaml:\d+: gcp\.promotion_credits"):
        parse_rules(text, "rules.yaml")
    assert parse_rules(default_rules_path().read_text()).gcp.promotion_credits == "discount"

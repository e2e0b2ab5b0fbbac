"""The sample-data generator writes FOCUS deliveries that behave like real provider exports.

Files are read back with DuckDB (explicit reader options), never with the generator's own code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from finops_assets.cli import main
from finops_assets.lib.focus import ENUMERATED_COLUMNS, FOCUS_COLUMNS
from finops_assets.samples.focus import (
    SampleSummary,
    generate_sample_exports,
    write_delivery,
)

# Main scenario: 12 charge days in January (restated month) and 4 in February.
START = date(2025, 1, 20)
DAYS = 16
ROWS_PER_DAY = 2_000
SEED = 11
ROWS_PER_PROVIDER_DAY = {"aws": 1_000, "azure": 600, "gcp": 400}
DAYS_PER_MONTH = {"2025-01": 12, "2025-02": 4}
COMMITMENTS_PER_PROVIDER = {"aws": 3, "azure": 2, "gcp": 2}
DATASETS = {"aws": "aws-focus", "azure": "azure-focus-eu", "gcp": "gcp-focus"}
PROVIDER_NAMES = {"aws": "AWS", "azure": "Microsoft", "gcp": "Google Cloud"}
REPO_ROOT = Path(__file__).resolve().parents[2]  # the repository

DELIVERY_PATH = re.compile(
    r"^focus/(?P<slug>aws|azure|gcp)/(?P<dataset>[a-z0-9-]+)/billing_period=(?P<period>\d{4}-\d{2})/"
    r"(?P<delivery>\d{8}T\d{6}Z-[0-9a-f]{8})$"
)
PART_NAME = re.compile(r"^part-\d{5}\.(parquet|csv|csv\.gz)$")


def _typed_select(source: str, slug: str, delivery: str) -> str:
    """Every FOCUS column cast to the warehouse type (exact decimals), plus where it came from."""
    casts = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in FOCUS_COLUMNS.items())
    return f"SELECT '{slug}' AS slug, '{delivery}' AS delivery, {casts} FROM {source}"


def _reader(files: list[Path]) -> str:
    paths = "[" + ", ".join(f"'{f.as_posix()}'" for f in files) + "]"
    if files[0].name.endswith(".parquet"):
        return f"read_parquet({paths}, hive_partitioning = false)"
    columns = "{" + ", ".join(f"'{c}': '{t}'" for c, t in FOCUS_COLUMNS.items()) + "}"
    return (
        f"read_csv({paths}, header = true, delim = ',', quote = '\"', escape = '\"', "
        f"nullstr = '', auto_detect = false, columns = {columns}, compression = 'auto', "
        "hive_partitioning = false)"
    )


def _load(con: duckdb.DuckDBPyConnection, out: Path, summary: SampleSummary) -> None:
    """Table `charges`: every row of every delivery, typed, with slug, delivery and period."""
    selects = []
    for delivery in summary.deliveries:
        manifest = json.loads((out / delivery / "manifest.json").read_text())
        files = [out / delivery / name for name in manifest["files"]]
        slug = delivery.parts[1]
        selects.append(_typed_select(_reader(files), slug, delivery.as_posix()))
    con.execute("CREATE TABLE charges AS " + " UNION ALL BY NAME ".join(selects))
    con.execute(
        "ALTER TABLE charges ADD COLUMN charge_day DATE; "
        "UPDATE charges SET charge_day = CAST(timezone('UTC', ChargePeriodStart) AS DATE)"
    )


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleSummary]:
    out = tmp_path_factory.mktemp("landing")
    return out, generate_sample_exports(out, START, DAYS, ROWS_PER_DAY, SEED)


@pytest.fixture(scope="module")
def con(exports: tuple[Path, SampleSummary]) -> duckdb.DuckDBPyConnection:
    out, summary = exports
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    _load(connection, out, summary)
    return connection


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_writes_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    # Several days per file, so parts are assembled from many generated chunks and written on
    # background threads; the second run is a separate process with another hash seed.
    args = ["--start", "2025-01-28", "--days", "6", "--rows-per-day", "3000", "--sources", "focus"]
    first = generate_sample_exports(tmp_path / "a", date(2025, 1, 28), 6, 3_000, seed=5)
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "finops_assets.cli", "sample-data", "--out"]
    subprocess.run([*command, str(tmp_path / "b"), *args, "--seed", "5"], check=True, env=env)
    other = generate_sample_exports(tmp_path / "c", date(2025, 1, 28), 6, 3_000, seed=6)

    a, b, c = (_tree_bytes(tmp_path / name) for name in "abc")
    # 3 providers x (January original + restatement + February) = 9 deliveries of 1 part each.
    assert len(a) == 18
    assert a == b
    # Another seed: other delivery ids and other contents in every data file.
    assert len(c) == 18
    assert set(a).isdisjoint(c)
    data_a = sorted(v for k, v in a.items() if not k.endswith("manifest.json"))
    data_c = sorted(v for k, v in c.items() if not k.endswith("manifest.json"))
    assert sum(x == y for x, y in zip(data_a, data_c, strict=True)) == 0
    # 3,000 rows x 6 days, plus January's 4 days again in the restatement.
    assert first.total_rows == other.total_rows == 30_000


def test_layout_manifests_list_exactly_the_files_present(exports) -> None:
    out, summary = exports
    assert len(summary.deliveries) == 9
    assert summary.restated_month == "2025-01"
    seen: dict[tuple[str, str], list[tuple[str, datetime]]] = {}
    for delivery in summary.deliveries:
        match = DELIVERY_PATH.match(delivery.as_posix())
        assert match is not None, delivery
        folder = out / delivery
        manifest = json.loads((folder / "manifest.json").read_text())
        assert list(manifest) == [
            "deliveryId",
            "provider",
            "dataset",
            "billingPeriod",
            "createdAt",
            "focusVersion",
            "files",
        ]
        assert manifest["deliveryId"] == match["delivery"]
        assert manifest["provider"] == PROVIDER_NAMES[match["slug"]]
        assert manifest["dataset"] == DATASETS[match["slug"]] == match["dataset"]
        assert manifest["billingPeriod"] == match["period"]
        assert manifest["focusVersion"] == "1.2"
        present = sorted(p.name for p in folder.iterdir() if p.name != "manifest.json")
        assert manifest["files"] == present
        assert all(PART_NAME.match(name) for name in present)
        created = datetime.strptime(manifest["createdAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert manifest["deliveryId"].startswith(created.strftime("%Y%m%dT%H%M%SZ"))
        # createdAt lies early in the month after the billing period.
        assert (
            created.strftime("%Y-%m")
            == {"2025-01": "2025-02", "2025-02": "2025-03"}[match["period"]]
        )
        seen.setdefault((match["slug"], match["period"]), []).append(
            (manifest["deliveryId"], created)
        )

    assert {key: len(ids) for key, ids in seen.items()} == {
        ("aws", "2025-01"): 2,
        ("aws", "2025-02"): 1,
        ("azure", "2025-01"): 2,
        ("azure", "2025-02"): 1,
        ("gcp", "2025-01"): 2,
        ("gcp", "2025-02"): 1,
    }
    for ids in seen.values():
        assert sorted(ids, key=lambda i: i[0]) == sorted(ids, key=lambda i: i[1])
        assert len({created for _, created in ids}) == len(ids)

    extensions = {
        (d.parts[1], name.split(".", 1)[1])
        for d in summary.deliveries
        for name in json.loads((out / d / "manifest.json").read_text())["files"]
    }
    assert extensions == {
        ("aws", "parquet"),
        ("azure", "csv"),
        ("azure", "csv.gz"),
        ("gcp", "parquet"),
    }
    assert sorted(summary.files) == sorted(
        p.relative_to(out) for p in (out / "focus").rglob("*") if p.is_file()
    )


def test_row_counts_follow_rows_per_day(exports, con) -> None:
    _, summary = exports
    counted = dict(con.execute("SELECT delivery, count(*) FROM charges GROUP BY ALL").fetchall())
    expected = {}
    for delivery in summary.deliveries:
        slug, period = delivery.parts[1], delivery.parts[3].removeprefix("billing_period=")
        expected[delivery.as_posix()] = ROWS_PER_PROVIDER_DAY[slug] * DAYS_PER_MONTH[period]
    assert counted == expected == summary.rows_by_delivery
    # 2,000 rows x 16 days, plus January's 12 days again in the restatement.
    assert summary.total_rows == 2_000 * 16 + 2_000 * 12 == 56_000


def test_every_focus_column_is_present_with_its_type(exports) -> None:
    out, summary = exports
    con = duckdb.connect()
    parquet_part = next((out / d) for d in summary.deliveries if d.parts[1] == "aws")
    described = con.execute(
        f"DESCRIBE SELECT * FROM read_parquet("
        f"'{(parquet_part / 'part-00000.parquet').as_posix()}', hive_partitioning = false)"
    ).fetchall()
    parquet_types = {row[0]: row[1] for row in described}
    assert len(FOCUS_COLUMNS) == 57
    assert set(parquet_types) == set(FOCUS_COLUMNS)
    expected = {"DECIMAL(38, 12)": "DOUBLE", "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}
    for column, focus_type in FOCUS_COLUMNS.items():
        assert parquet_types[column] == expected.get(focus_type, "VARCHAR"), column

    for delivery in summary.deliveries:
        if delivery.parts[1] != "azure":
            continue
        for name in json.loads((out / delivery / "manifest.json").read_text())["files"]:
            header = con.execute(
                f"SELECT * FROM read_csv('{(out / delivery / name).as_posix()}', header = true, "
                "all_varchar = true, compression = 'auto', hive_partitioning = false) LIMIT 0"
            ).description
            assert [column[0] for column in header] == list(FOCUS_COLUMNS)


def test_csv_text_is_plain(exports) -> None:
    out, summary = exports
    delivery = next(d for d in summary.deliveries if d.parts[1] == "azure")
    text = (out / delivery / "part-00000.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(FOCUS_COLUMNS)
    assert re.search(r"e[+-]\d", text.split("\n", 2)[1]) is None  # no exponent notation
    # Timestamps are ISO 8601 with Z (text, so pyarrow's writer quotes them like all text).
    assert re.search(r',"2025-01-2\dT00:00:00Z",', text) is not None
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:", text) is None  # never the space-separated form
    assert ',"{""' in text  # Tags are JSON text with doubled quotes


def test_enumerated_columns_use_allowed_values(con) -> None:
    for column, values in ENUMERATED_COLUMNS.items():
        found = {v for (v,) in con.execute(f'SELECT DISTINCT "{column}" FROM charges').fetchall()}
        assert found - {None} <= set(values), column
    categories = {
        v for (v,) in con.execute("SELECT DISTINCT ChargeCategory FROM charges").fetchall()
    }
    assert categories == {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}
    for column in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ServiceName"):
        nulls = con.execute(f'SELECT count(*) FROM charges WHERE "{column}" IS NULL').fetchone()[0]
        assert nulls == 0, column


def test_commitment_status_follows_commitment_id(con) -> None:
    # FOCUS 1.2: null when the id is null; set on every Usage row that has an id. Purchase rows
    # leave it null, as in the specification's purchase examples.
    violations = con.execute(
        """
        SELECT
            count(*) FILTER (CommitmentDiscountId IS NULL AND CommitmentDiscountStatus IS NOT NULL),
            count(*) FILTER (CommitmentDiscountId IS NOT NULL AND ChargeCategory = 'Usage'
                             AND CommitmentDiscountStatus IS NULL),
            count(*) FILTER (ChargeCategory = 'Purchase' AND CommitmentDiscountStatus IS NOT NULL),
            count(*) FILTER (CommitmentDiscountId IS NOT NULL AND (CommitmentDiscountType IS NULL
                             OR CommitmentDiscountCategory IS NULL))
        FROM charges
        """
    ).fetchone()
    assert violations == (0, 0, 0, 0)
    unused_with_quantity = con.execute(
        "SELECT count(*) FROM charges WHERE CommitmentDiscountStatus = 'Unused' "
        "AND (ConsumedQuantity IS NOT NULL OR BilledCost <> 0)"
    ).fetchone()[0]
    assert unused_with_quantity == 0


def test_commitment_purchases_equal_used_plus_unused_per_commitment_and_day(con) -> None:
    rows = con.execute(
        """
        SELECT delivery, CommitmentDiscountId, charge_day,
            sum(BilledCost) FILTER (ChargeCategory = 'Purchase') AS purchased,
            sum(EffectiveCost) FILTER (CommitmentDiscountStatus = 'Used') AS used,
            sum(EffectiveCost) FILTER (CommitmentDiscountStatus = 'Unused') AS unused,
            count(*) FILTER (ChargeCategory = 'Purchase') AS purchases,
            count(*) FILTER (CommitmentDiscountStatus = 'Unused') AS unused_rows,
            sum(EffectiveCost) FILTER (ChargeCategory = 'Purchase') AS purchase_effective,
            sum(BilledCost) FILTER (CommitmentDiscountStatus = 'Used') AS used_billed
        FROM charges WHERE CommitmentDiscountId IS NOT NULL
        GROUP BY ALL
        """
    ).fetchall()
    # Per delivery: commitments x days; January has two deliveries of 12 days.
    expected_groups = sum(n * (12 * 2 + 4) for n in COMMITMENTS_PER_PROVIDER.values())
    assert len(rows) == expected_groups == 196
    for _, cid, day, purchased, used, unused, purchases, unused_rows, p_eff, u_billed in rows:
        assert purchased == used + unused, (cid, day)  # exact: DECIMAL(38, 12) sums
        assert purchased > 0 and used > 0, (cid, day)
        assert (purchases, unused_rows) == (1, 1), (cid, day)
        assert p_eff == 0 and u_billed == 0, (cid, day)
    types = con.execute(
        "SELECT DISTINCT slug, CommitmentDiscountType, CommitmentDiscountCategory FROM charges "
        "WHERE CommitmentDiscountId IS NOT NULL ORDER BY ALL"
    ).fetchall()
    assert types == [
        ("aws", "Reserved Instance", "Usage"),
        ("aws", "Savings Plan", "Spend"),
        ("azure", "Reserved Instance", "Usage"),
        ("azure", "Savings Plan", "Spend"),
        ("gcp", "Committed Use Discount", "Spend"),
        ("gcp", "Committed Use Discount", "Usage"),
    ]


def test_charge_mix_tax_credits_and_corrections(con) -> None:
    tax_with_resource = con.execute(
        "SELECT count(*) FROM charges WHERE ChargeCategory = 'Tax' "
        "AND (ResourceId IS NOT NULL OR ServiceCategory <> 'Other')"
    ).fetchone()[0]
    assert tax_with_resource == 0
    bad_credits = con.execute(
        "SELECT count(*) FROM charges WHERE ChargeCategory = 'Credit' "
        "AND NOT (BilledCost < 0 AND BilledCost = EffectiveCost)"
    ).fetchone()[0]
    assert bad_credits == 0
    # Every provider has tax, credit and correction rows in every delivery.
    per_delivery = con.execute(
        """
        SELECT delivery,
            count(*) FILTER (ChargeCategory = 'Tax') > 0,
            count(*) FILTER (ChargeCategory = 'Credit') > 0,
            count(*) FILTER (ChargeClass = 'Correction') > 0
        FROM charges GROUP BY ALL
        """
    ).fetchall()
    assert len(per_delivery) == 9
    assert [tuple(flags) for _, *flags in per_delivery] == [(True, True, True)] * 9
    corrections_outside_month = con.execute(
        "SELECT count(*) FROM charges WHERE ChargeClass = 'Correction' AND NOT "
        "(ChargePeriodStart >= BillingPeriodStart AND ChargePeriodStart < BillingPeriodEnd)"
    ).fetchone()[0]
    assert corrections_outside_month == 0
    periods = con.execute(
        """
        SELECT
            count(*) FILTER (ChargePeriodEnd <= ChargePeriodStart),
            count(*) FILTER (ChargePeriodStart < BillingPeriodStart
                             OR ChargePeriodStart >= BillingPeriodEnd),
            count(*) FILTER (charge_day < DATE '2025-01-20' OR charge_day > DATE '2025-02-04'),
            count(*) FILTER (ChargeCategory = 'Usage' AND ChargeClass IS NULL
                             AND CommitmentDiscountStatus IS NULL AND ListCost < EffectiveCost)
        FROM charges
        """
    ).fetchone()
    assert periods == (0, 0, 0, 0)


def test_untagged_cost_is_between_5_and_15_percent_per_month(con) -> None:
    shares = con.execute(
        """
        WITH marked AS (
            SELECT slug, strftime(BillingPeriodStart, '%Y-%m') AS period, delivery,
                BilledCost, EffectiveCost,
                Tags IS NULL OR len(list_filter(json_keys(Tags),
                    lambda k: lower(trim(k)) IN ('team', 'squad'))) = 0 AS untagged
            FROM charges
        )
        SELECT slug, period, delivery,
            sum(abs(BilledCost)) FILTER (untagged) / sum(abs(BilledCost)),
            sum(abs(EffectiveCost)) FILTER (untagged) / sum(abs(EffectiveCost))
        FROM marked GROUP BY ALL ORDER BY ALL
        """
    ).fetchall()
    assert len(shares) == 9
    for slug, period, _, billed_share, effective_share in shares:
        assert 0.05 <= billed_share <= 0.15, (slug, period, billed_share)
        assert 0.05 <= effective_share <= 0.15, (slug, period, effective_share)


def test_tag_keys_drift_but_each_resource_keeps_its_tags(con) -> None:
    keys = {
        k
        for (k,) in con.execute(
            "SELECT DISTINCT unnest(json_keys(Tags)) FROM charges WHERE Tags IS NOT NULL"
        ).fetchall()
    }
    assert {"Team", "team", "squad", " Team "} <= keys
    assert {"Department", "dept", "business-unit"} <= keys
    assert {"Environment", "env"} <= keys
    assert {"CostCenter", "cost-center", "costcenter"} <= keys
    unstable = con.execute(
        "SELECT count(*) FROM (SELECT ResourceId FROM charges WHERE ResourceId IS NOT NULL "
        "GROUP BY ResourceId HAVING count(DISTINCT coalesce(Tags, '<null>')) > 1)"
    ).fetchone()[0]
    assert unstable == 0


def test_identifier_styles_per_provider(con) -> None:
    aws_accounts = {
        a
        for (a,) in con.execute(
            "SELECT DISTINCT SubAccountId FROM charges WHERE slug = 'aws'"
        ).fetchall()
    }
    assert all(re.fullmatch(r"\d{12}", a) for a in aws_accounts)
    assert any(a.startswith("0") for a in aws_accounts)
    samples = dict(
        con.execute(
            "SELECT slug, any_value(ResourceId) FROM charges WHERE ResourceId IS NOT NULL "
            "AND ServiceCategory = 'Compute' AND CommitmentDiscountStatus IS NULL "
            "AND ChargeClass IS NULL GROUP BY slug"
        ).fetchall()
    )
    assert samples["aws"].startswith("arn:aws:")
    assert samples["azure"].startswith("/subscriptions/")
    assert "/resourceGroups/" in samples["azure"]
    assert samples["gcp"].startswith(("//compute.googleapis.com/projects/", "//container."))
    gcp_billing = con.execute(
        "SELECT DISTINCT BillingAccountId FROM charges WHERE slug = 'gcp'"
    ).fetchall()
    assert len(gcp_billing) == 1
    assert re.fullmatch(r"01[0-9A-F]{4}-[0-9A-F]{6}-[0-9A-F]{6}", gcp_billing[0][0])


def test_two_currencies_and_eur_only_for_azure(con) -> None:
    currencies = con.execute(
        "SELECT DISTINCT slug, BillingCurrency, PricingCurrency FROM charges ORDER BY ALL"
    ).fetchall()
    assert currencies == [("aws", "USD", "USD"), ("azure", "EUR", "EUR"), ("gcp", "USD", "USD")]


def test_restatement_changes_only_the_restated_days(exports, con) -> None:
    _, summary = exports
    assert 2 <= len(summary.restated_days) <= 3
    assert all(d.strftime("%Y-%m") == "2025-01" for d in summary.restated_days)
    for slug in ("aws", "azure", "gcp"):
        older, newer = sorted(
            d.as_posix()
            for d in summary.deliveries
            if d.parts[1] == slug and d.parts[3] == "billing_period=2025-01"
        )
        daily = con.execute(
            """
            SELECT charge_day,
                sum(BilledCost) FILTER (delivery = $older),
                sum(BilledCost) FILTER (delivery = $newer),
                count(*) FILTER (delivery = $older),
                count(*) FILTER (delivery = $newer)
            FROM charges WHERE delivery IN ($older, $newer) GROUP BY ALL ORDER BY ALL
            """,
            {"older": older, "newer": newer},
        ).fetchall()
        assert len(daily) == 12
        changed = [day for day, old, new, _, _ in daily if old != new]
        assert changed == summary.restated_days, slug
        for day, old, new, old_rows, new_rows in daily:
            assert old_rows == new_rows, (slug, day)
            if day in summary.restated_days:
                assert new > old, (slug, day)  # late usage raises the day's cost
        # Untouched days are identical row for row, not just in total.
        different_rows = con.execute(
            """
            SELECT count(*) FROM (
                (SELECT * EXCLUDE (delivery) FROM charges
                 WHERE delivery = $older AND NOT list_contains($days, charge_day)
                 EXCEPT ALL
                 SELECT * EXCLUDE (delivery) FROM charges
                 WHERE delivery = $newer AND NOT list_contains($days, charge_day))
            )
            """,
            {"older": older, "newer": newer, "days": summary.restated_days},
        ).fetchone()[0]
        assert different_rows == 0, slug


@pytest.mark.timing
def test_one_million_rows_generate_quickly(tmp_path: Path) -> None:
    # Not marked slow: it must stay in the normal suite (DESIGN §6, 2 cores).
    began = time.perf_counter()
    summary = generate_sample_exports(tmp_path, date(2025, 3, 1), 1, 1_000_000, seed=1)
    elapsed = time.perf_counter() - began
    # One day, written once and again in the restatement of its month.
    assert summary.total_rows == 2_000_000
    assert summary.restated_days == [date(2025, 3, 1)]
    assert elapsed < 30, f"1M rows took {elapsed:.1f} s"
    counted = (
        duckdb.connect()
        .execute(
            f"SELECT count(*) FROM read_parquet('{tmp_path.as_posix()}/focus/aws/**/*.parquet')"
        )
        .fetchone()[0]
    )
    assert counted == 1_000_000  # AWS: 500,000 rows per day in each of the 2 deliveries


def test_formats_option_restricts_every_provider(tmp_path: Path) -> None:
    summary = generate_sample_exports(
        tmp_path, date(2025, 5, 1), 2, 200, seed=3, formats=("parquet",)
    )
    suffixes = {p.name.split(".", 1)[1] for p in tmp_path.rglob("part-*")}
    assert suffixes == {"parquet"}
    assert len(summary.deliveries) == 6  # 3 providers x (original + restatement of May)
    azure = (
        duckdb.connect()
        .execute(
            "SELECT DISTINCT BillingCurrency FROM "
            f"read_parquet('{tmp_path.as_posix()}/focus/azure/**/*.parquet')"
        )
        .fetchall()
    )
    assert azure == [("EUR",)]
    with pytest.raises(ValueError, match="formats"):
        generate_sample_exports(tmp_path, date(2025, 5, 1), 1, 200, seed=3, formats=("json",))


def test_cli_writes_sample_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "landing"
    argv = ["sample-data", "--out", str(out), "--start", "2025-03-30", "--days", "3"]
    argv += ["--rows-per-day", "400", "--seed", "5", "--formats", "csv"]
    assert main(argv) == 0
    manifests = sorted(out.glob("focus/**/manifest.json"))
    assert len(manifests) == 9  # 3 providers x (March, its restatement, April)
    suffixes = {p.name.split(".", 1)[1] for p in out.rglob("part-*")}
    assert suffixes == {"csv", "csv.gz"}
    printed = capsys.readouterr().out
    assert "Wrote 9 deliveries, 18 files, 2,000 rows" in printed  # 400 x 3 + 400 x 2 again
    assert "Restated billing month 2025-03" in printed
    # The default sources include an AWS CUR report: one period manifest per billing month.
    cur_manifests = sorted(
        p.relative_to(out).as_posix() for p in out.glob("aws-cur/*/*/*-Manifest.json")
    )
    assert cur_manifests == [
        "aws-cur/finops-cur/20250301-20250401/finops-cur-Manifest.json",
        "aws-cur/finops-cur/20250401-20250501/finops-cur-Manifest.json",
    ]
    assert "Wrote AWS CUR report finops-cur" in printed


def test_write_delivery_splits_parts_and_does_not_validate(tmp_path: Path) -> None:
    table = pa.table({"not_focus": list(range(1_200)), "note": ["x"] * 1_200})
    created = datetime(2025, 2, 1, 6, 0, tzinfo=UTC)
    folder = tmp_path / "focus/aws/aws-focus/billing_period=2025-01/20250201T060000Z-00000001"
    returned = write_delivery(
        folder, table, "AWS", "aws-focus", "2025-01", created, "parquet", part_rows=500
    )
    assert returned == folder
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == {
        "deliveryId": "20250201T060000Z-00000001",
        "provider": "AWS",
        "dataset": "aws-focus",
        "billingPeriod": "2025-01",
        "createdAt": "2025-02-01T06:00:00Z",
        "focusVersion": "1.2",
        "files": ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"],
    }
    con = duckdb.connect()
    rows = [
        con.execute(f"SELECT count(*) FROM read_parquet('{(folder / n).as_posix()}')").fetchone()[0]
        for n in manifest["files"]
    ]
    assert rows == [500, 500, 200]

    # CSV, an explicit (mismatching) delivery id, and an empty table still give one part.
    csv_folder = tmp_path / "csv-delivery"
    write_delivery(
        csv_folder, table.slice(0, 0), "AWS", "aws-focus", "2025-01", created, "csv", "other-id"
    )
    manifest = json.loads((csv_folder / "manifest.json").read_text())
    assert (manifest["deliveryId"], manifest["files"]) == ("other-id", ["part-00000.csv"])
    assert (csv_folder / "part-00000.csv").read_text() == "not_focus,note\n"

    # Rewriting a delivery removes parts the new manifest does not list.
    write_delivery(folder, table.slice(0, 10), "AWS", "aws-focus", "2025-01", created, "csv.gz")
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "part-00000.csv.gz"]

"""The contracts compiled to SQL fail exactly the rows pandera fails.

Every model of ``contracts/models.py`` is run both ways over the same warehouse tables (one
generated month loaded through every asset), first as loaded (both pass), then with each of the
model's columns broken on its own rows in the way each of its checks forbids (null in a
non-nullable column, a value outside ``isin``, an empty string, a bad pattern, a number out of
range) and each dataframe check's columns broken: for every (column, check) the SQL counts the
same failing rows as pandera does."""

import inspect
import shutil
from collections import Counter

import duckdb
import pandera.pandas as pa
import pytest
from pandera.errors import SchemaErrors

from finops_assets.contracts import models
from finops_assets.contracts.checks import validate_in_sql
from finops_assets.contracts.sql import ContractCompileError, compile_contract
from finops_assets.lib.warehouse import table_columns
from finops_assets.resources.warehouse import Warehouse
from finops_assets_tests.conftest import SAMPLE_START, load_once

DAY = SAMPLE_START
TABLES = {
    models.RawFocus: "raw.focus",
    models.CostFacts: "core.cost_facts",
    models.AmortizedCosts: "core.amortized_costs",
    models.AllocatedCosts: "core.allocated_costs",
    models.DailyCostByTeam: "mart.daily_cost_by_team",
    models.UntaggedSpend: "mart.untagged_spend",
    models.CommitmentUtilization: "mart.commitment_utilization",
    models.CommitmentCoverage: "mart.commitment_coverage",
}


def every_model() -> list[type[pa.DataFrameModel]]:
    return [
        m
        for _, m in inspect.getmembers(models, inspect.isclass)
        if issubclass(m, pa.DataFrameModel)
        and not m.__name__.startswith("_")
        and m is not pa.DataFrameModel
    ]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, sample_exports):
    return load_once(
        tmp_path_factory.mktemp("contracts_sql"),
        lambda landing: shutil.copytree(sample_exports[0], landing, dirs_exist_ok=True),
        DAY.isoformat(),
    )


def pandera_failing_rows(model, warehouse: str, table: str) -> tuple[int, Counter]:
    """pandera itself, on the whole window as pandas: failing rows per (column, check)."""
    with duckdb.connect(warehouse, read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        present = table_columns(con, table)
        wanted = set(model.to_schema().columns)
        select = [
            f'CAST("{c}" AS DOUBLE) AS "{c}"' if t.startswith("DECIMAL") else f'"{c}"'
            for c, t in present.items()
            if c in wanted
        ]
        frame = con.sql(
            f"SELECT {', '.join(select)} FROM {table} WHERE charge_date = ?", params=[DAY]
        ).to_df()
    try:
        model.validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases.fillna({"column": "(table)"})
        # pandera lists a dataframe check's failing row once per column; it is one row.
        frame_checks = {c.error or c.name for c in model.to_schema().checks}
        cases.loc[cases["check"].isin(frame_checks), "column"] = "(table)"
        failing: Counter = Counter()
        for (column, check), group in cases.groupby(["column", "check"]):
            rows = group["index"].dropna().nunique()
            failing[(str(column), str(check))] = int(rows) or 1
        return len(frame), failing
    return len(frame), Counter()


def sql_failing_rows(model, warehouse: str, table: str) -> tuple[int, Counter]:
    rows, failures, _ = validate_in_sql(model, Warehouse(database=warehouse), table, (DAY, DAY))
    return rows, failures


def test_every_model_compiles_and_every_dataframe_check_has_its_twin():
    for model in every_model():
        names = {c.name for c in model.to_schema().checks}
        assert names <= set(models.DATAFRAME_CHECKS_SQL), model.__name__
    assert set(TABLES) | {models.RawAwsCur, models.RawAzureCost, models.RawGcpBilling} == set(
        every_model()
    )


def test_a_dataframe_check_without_a_sql_twin_is_refused():
    with pytest.raises(ContractCompileError, match="charge_period_is_ordered has no SQL twin"):
        compile_contract(models.RawFocus, {"charge_date": "DATE"}, {})


@pytest.mark.parametrize("model", list(TABLES), ids=lambda m: m.__name__)
def test_loaded_tables_pass_both_ways(loaded, model):
    table = TABLES[model]
    rows, sql = sql_failing_rows(model, loaded.warehouse, table)
    assert rows > 0
    assert sql == Counter()
    assert pandera_failing_rows(model, loaded.warehouse, table) == (rows, Counter())


def breakages(model, present: dict[str, str]) -> list[tuple[str, str]]:
    """(column, SQL value) pairs that break each check of the model's columns."""
    out = []
    for name, column in model.to_schema().columns.items():
        if name not in present or name == "charge_date":
            continue
        text = present[name].startswith("VARCHAR")
        # (pandas cannot hold a null in an integer column: pandera would see floats instead)
        if not column.nullable and not str(column.dtype).startswith("int"):
            out.append((name, "NULL"))
        for check in column.checks:
            bad = {
                "isin": "'not-an-allowed-value'",
                "str_length": "''",
                "str_matches": "'not-a-match'",
                "str_startswith": "'x'",
                "greater_than": "-1",
                "greater_than_or_equal_to": "-1",
                "less_than_or_equal_to": "1000000",
            }[check.name]
            if text or check.name.startswith(("greater", "less")):
                out.append((name, bad))
    return out


@pytest.mark.parametrize("model", list(TABLES), ids=lambda m: m.__name__)
def test_broken_rows_fail_the_same_checks_with_the_same_counts(loaded, tmp_path, model):
    table = TABLES[model]
    warehouse = str(tmp_path / "broken.duckdb")
    shutil.copy(loaded.warehouse, warehouse)
    with duckdb.connect(warehouse) as con:
        con.execute("SET TimeZone = 'UTC'")
        if (table,) in con.execute(
            "SELECT schema_name || '.' || view_name FROM duckdb_views()"
        ).fetchall():
            # A snapshot-backed raw table (lib.snapshots): broken here as a plain copy.
            con.execute(f"CREATE TABLE {table}_copy AS SELECT * FROM {table}")
            con.execute(f"DROP VIEW {table}")
            con.execute(f"DROP TABLE {table}__snapshots")
            con.execute(f"ALTER TABLE {table}_copy RENAME TO {table.split('.')[1]}")
        present = table_columns(con, table)
        cases = breakages(model, present)
        # Dataframe checks: swap the charge period, move a day, break a flag pairing.
        extra = {
            "ChargePeriodEnd": "ChargePeriodStart - INTERVAL 1 HOUR",
            "x_AllocationShare": "0.5",
            "CommitmentDiscountStatus": "NULL",
            "untagged_rows": "row_count + 1",
            "x_AmortizedFromDate": "charge_date",
        }
        if "total_rows" in present:
            extra["untagged_rows"] = "total_rows + 1"
        cases += [(c, v) for c, v in extra.items() if c in present]
        con.execute(f"ALTER TABLE {table} ADD COLUMN _n BIGINT")
        con.execute(
            f"UPDATE {table} SET _n = r FROM (SELECT rowid AS id, row_number() OVER () AS r "
            f"FROM {table} WHERE charge_date = ?) AS numbered WHERE rowid = numbered.id",
            [DAY],
        )
        (n,) = con.execute(f"SELECT count(*) FROM {table} WHERE charge_date = ?", [DAY]).fetchone()
        for i, (column, value) in enumerate(cases):
            # Two rows per case; on a small table the cases share rows (each check still counts
            # its own failing rows, both ways).
            con.execute(
                f'UPDATE {table} SET "{column}" = {value} WHERE _n IN (?, ?)',
                [(2 * i) % n + 1, (2 * i + 1) % n + 1],
            )
        con.execute(f"ALTER TABLE {table} DROP COLUMN _n")
    rows, sql = sql_failing_rows(model, warehouse, table)
    expected_rows, reference = pandera_failing_rows(model, warehouse, table)
    assert rows == expected_rows
    assert sql, "the breakages must fail something"
    assert sql == reference
